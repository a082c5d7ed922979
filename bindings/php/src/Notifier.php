<?php
declare(strict_types=1);

namespace FaShop\Notify;

use FaShop\Notify\Exception;
use FFI;

/**
 * The fashop-notify library through PHP FFI: PHP arrays in and out, one exception
 * class per status, every string the library hands back freed here.
 *
 * State lives in the library, per process and keyed by appid: any number of
 * Notifier objects in one process share it.
 */
final class Notifier
{
    /** The FFI scope name used with opcache preload (see preload.php). */
    public const FFI_SCOPE = 'FASHOP_NOTIFY';

    private const JSON_OUT = JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION;

    private static ?FFI $shared = null;
    private static bool $fromScope = false;

    private function __construct(private FFI $ffi)
    {
    }

    /**
     * Loads the library: `$libraryPath` when given; else the FFI scope that
     * preload.php declared under opcache preload (php-fpm); else the library that
     * findLibrary() finds, loaded with FFI::cdef and kept for the rest of the request.
     */
    public static function load(?string $libraryPath = null): self
    {
        if ($libraryPath !== null) {
            return new self(self::cdef($libraryPath));
        }
        if (self::$shared === null) {
            self::$shared = self::preloadedScope() ?? self::cdef(self::findLibrary());
        }
        return new self(self::$shared);
    }

    /** True when this process serves requests from the preloaded FFI scope. */
    public function isPreloaded(): bool
    {
        return self::$shared !== null && $this->ffi === self::$shared && self::$fromScope;
    }

    /** The flattened C declarations that FFI::cdef takes. */
    public static function headerPath(): string
    {
        return dirname(__DIR__) . '/fashop_notify.ffi.h';
    }

    /**
     * The header for FFI::load: the committed declarations preceded by the two
     * defines FFI::load reads (the committed file stays plain declarations, as
     * FFI::cdef wants).
     */
    public static function scopedHeader(string $libraryPath): string
    {
        if (str_contains($libraryPath, '"') || str_contains($libraryPath, "\n") || str_contains($libraryPath, "\0")) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, 'library path must not contain quotes, newlines or NUL bytes');
        }
        return '#define FFI_SCOPE "' . self::FFI_SCOPE . "\"\n"
            . '#define FFI_LIB "' . $libraryPath . "\"\n"
            . (string) file_get_contents(self::headerPath());
    }

    /**
     * Writes the scoped header (see scopedHeader) to `$headerDir/fashop_notify.scope.h`,
     * replacing the file atomically, and returns its path: the value for `ffi.preload`.
     */
    public static function writeScopedHeader(?string $libraryPath = null, ?string $headerDir = null): string
    {
        $libraryPath ??= self::findLibrary();
        $libraryPath = realpath($libraryPath) ?: $libraryPath;
        $file = ($headerDir ?? sys_get_temp_dir()) . '/fashop_notify.scope.h';
        $tmp = $file . '.' . getmypid() . '.tmp';
        if (@file_put_contents($tmp, self::scopedHeader($libraryPath)) === false || !@rename($tmp, $file)) {
            @unlink($tmp);
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "cannot write the FFI header $file");
        }
        return $file;
    }

    /**
     * Declares the FFI scope from an opcache.preload script (preload.php), unless
     * `ffi.preload` already did. FFI::load refuses to run under `opcache.preload_user`
     * (a master started as root): there, write the header beforehand
     * (`php preload.php --header DIR`) and name it in `ffi.preload`.
     */
    public static function preload(?string $libraryPath = null, ?string $headerDir = null): void
    {
        if (self::preloadedScope() !== null) {
            return;
        }
        $file = self::writeScopedHeader($libraryPath, $headerDir);
        if (FFI::load($file) === null) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "FFI::load($file) failed (is ffi.enable=preload set?)");
        }
    }

    private static function preloadedScope(): ?FFI
    {
        try {
            $ffi = FFI::scope(self::FFI_SCOPE);
        } catch (\FFI\Exception) {
            return null; // not preloaded: load it ourselves
        }
        self::$fromScope = true;
        return $ffi;
    }

    private static function cdef(string $libraryPath): FFI
    {
        // Say what is wrong with the file itself before FFI's own message,
        // which reads like a php.ini problem whatever the cause.
        if (!is_file($libraryPath)) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "cannot load $libraryPath: no such file (check FASHOP_NOTIFY_LIB or the path given)");
        }
        $head = @file_get_contents($libraryPath, false, null, 0, 4);
        if ($head === false) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "cannot load $libraryPath: the file is not readable by this process");
        }
        if ($head !== "\x7fELF") {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "cannot load $libraryPath: not a shared library (expected libfashop_notify.so)");
        }
        try {
            return FFI::cdef((string) file_get_contents(self::headerPath()), $libraryPath);
        } catch (\FFI\Exception $e) {
            throw Exception\InvalidArgumentException::fromStatus(
                Status::INVALID_ARGUMENT,
                "cannot load $libraryPath with FFI: " . $e->getMessage() . ' (PHP 8.1+ with ext-ffi and ffi.enable=1, or preload.php with ffi.enable=preload)',
                null,
                $e
            );
        }
    }

    /**
     * The library's path when none is given: FASHOP_NOTIFY_LIB; else this package's
     * lib/ directory; else the install locations (the lib/ of the prefix this package
     * is installed under, pkg-config's libdir, /usr/local/lib, /usr/lib...). See LibraryFinder.
     */
    public static function findLibrary(): string
    {
        return LibraryFinder::forThisHost()->find();
    }

    public function version(): string
    {
        return self::cString($this->ffi->fashop_notify_version());
    }

    /** @param array<string,mixed> $config api_base, timeouts, max_retries, token_margin_secs, store */
    public function configure(array $config): void
    {
        $this->check($this->ffi->fashop_notify_configure($this->json($config, 'configure', 'config')));
    }

    /** @param array<string,mixed> $app appid, secret, token_mode (stable|classic|external), api_base */
    public function registerApp(array $app): void
    {
        $this->check($this->ffi->fashop_notify_register_app($this->json($app, 'registerApp', 'app')));
    }

    public function unregisterApp(string $appid): void
    {
        $this->check($this->ffi->fashop_notify_unregister_app($this->str($appid)));
    }

    /** @return list<array<string,mixed>> appid, token_mode, token state; never the secret */
    public function listApps(): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_list_apps($out));
    }

    /** @return array<string,mixed> the shop events with their fields */
    public function eventCatalog(): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_event_catalog($out));
    }

    /** @param array<string,mixed>|string $mappings the mapping document, as an array or JSON text */
    public function loadMappings(string $appid, array|string $mappings): void
    {
        // An empty array is what a shop has before the admin saved anything: no events.
        $doc = match (true) {
            is_string($mappings) => $this->str($mappings),
            $mappings === [] => '{"version":1,"events":{}}',
            default => $this->json($mappings, 'loadMappings', 'mappings'),
        };
        $this->check($this->ffi->fashop_notify_load_mappings($this->str($appid), $doc));
    }

    /** @return array<string,mixed> */
    public function getMappings(string $appid): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_get_mappings($this->str($appid), $out));
    }

    /**
     * Checks a mapping document against the app's live templates (gettemplate, kept a
     * minute; $refresh reads them again). $mappings null checks the loaded document.
     * Nothing is loaded or changed. Every problem and warning carries its JSON path:
     * ['appid', 'ok' => bool, 'problems' => [['path', 'kind', 'message'], …], 'warnings' => […],
     *  'templates' => ['count', 'read_at_ms', 'cached'] | null].
     *
     * @param array<string,mixed>|string|null $mappings the document, as an array or JSON text
     * @return array<string,mixed>
     */
    public function checkMappings(string $appid, array|string|null $mappings = null, bool $refresh = false): array
    {
        $doc = match (true) {
            $mappings === null => null,
            is_string($mappings) => $this->str($mappings),
            default => $this->json($mappings, 'checkMappings', 'mappings'),
        };
        $options = $refresh ? '{"refresh":true}' : null;
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_check_mappings')->fashop_notify_check_mappings(
            $this->str($appid),
            $doc,
            $options,
            $out
        ));
    }

    /**
     * Every keyword type with its rule, for an admin screen: type, prefixes, limit,
     * allowed, examples, source (a URL or "unverified"), shortened_when_too_long.
     *
     * @return list<array<string,mixed>>
     */
    public function keywordTypes(): array
    {
        $all = $this->callJson(fn ($out) => $this->newer('fashop_notify_keyword_types')->fashop_notify_keyword_types($out));
        return $all['types'] ?? [];
    }

    /**
     * The service card definitions (2001/2002/2003): each card's statuses (which
     * may activate a card, which each may follow, required and optional fields)
     * and the fields' formats, for an admin screen.
     *
     * @return array<string,mixed>
     */
    public function cardDefinitions(): array
    {
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_card_definitions')->fashop_notify_card_definitions($out));
    }

    /** @param array<string,mixed> $permit openid, kind, template_id | value, order_sn, paid, created_at, count */
    public function addPermit(string $appid, array $permit): void
    {
        $this->check($this->ffi->fashop_notify_add_permit($this->str($appid), $this->json($permit, 'addPermit', 'permit')));
    }

    /** @return array<string,mixed> */
    public function ledgerStats(string $appid, ?string $openid = null): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_ledger_stats(
            $this->str($appid),
            $openid === null ? null : $this->str($openid),
            $out
        ));
    }

    /** @return array<string,mixed> */
    public function ledgerPurge(string $appid): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_ledger_purge($this->str($appid), $out));
    }

    /**
     * The owner's reach report for China days `$from`..`$to` (YYYY-MM-DD, within
     * `report_keep_days`): per event each day's counts of what sends ended as
     * (sent, no_permit, refused, failed with failed_by_errcode, uncertain, queued,
     * not_reached, reach_rate) and the range's total; the grant stock per template
     * (holders, uses, lapsing_7d, events). A bad range throws InvalidArgumentException,
     * an unknown app AppNotConfiguredException.
     *
     * @return array<string,mixed>
     */
    public function reachReport(string $appid, string $from, string $to): array
    {
        $query = $this->json(['from' => $from, 'to' => $to], 'reachReport', 'query');
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_reach_report($this->str($appid), $query, $out));
    }

    /**
     * The exact body a send would POST, without consuming anything (admin preview).
     *
     * @param array<string,mixed> $payload touser, fields, idempotency_key
     * @return array<string,mixed>
     */
    public function render(string $appid, string $event, array $payload): array
    {
        return $this->callJson(fn ($out) => $this->ffi->fashop_notify_render(
            $this->str($appid),
            $this->str($event),
            $this->json($payload, 'render', 'payload'),
            $out
        ));
    }

    /**
     * Sends the event's message. Returns the outcome when it was sent (or had been:
     * status "duplicate"); throws NoPermitException, WeChatException, NetworkException,
     * UncertainDeliveryException, SendInProgressException (another send with the same
     * idempotency key is under way) … with the outcome attached otherwise.
     *
     * @param array<string,mixed> $payload touser, fields, idempotency_key
     */
    public function send(string $appid, string $event, array $payload): SendOutcome
    {
        $out = $this->ffi->new('char*');
        $status = $this->ffi->fashop_notify_send($this->str($appid), $this->str($event), $this->json($payload, 'send', 'payload'), FFI::addr($out));
        $text = $this->take($out);
        $outcome = $text === null ? null : SendOutcome::fromArray($this->decode($text));
        $this->check($status, $outcome);
        if ($outcome === null) {
            throw Exception\InternalException::fromStatus(Status::INTERNAL, 'send returned OK without an outcome');
        }
        return $outcome;
    }

    /** The app's current access token, for a host that calls other WeChat APIs. */
    public function accessToken(string $appid): string
    {
        $out = $this->ffi->new('char*');
        $status = $this->ffi->fashop_notify_access_token($this->str($appid), FFI::addr($out));
        $text = $this->take($out);
        $this->check($status);
        return (string) $text;
    }

    /** Supplies the token of an app in `external` token mode. */
    public function setAccessToken(string $appid, string $token, int $expiresInSecs): void
    {
        $this->check($this->ffi->fashop_notify_set_access_token($this->str($appid), $this->str($token), $expiresInSecs));
    }

    /** Drops the cached token, but only if it is still `$token`. */
    public function invalidateToken(string $appid, string $token): void
    {
        $this->check($this->ffi->fashop_notify_invalidate_token($this->str($appid), $this->str($token)));
    }

    /**
     * Any WeChat JSON API with the managed token (template management, …).
     *
     * @param array<string,mixed>|null $body
     * @return array<string,mixed> WeChat's answer
     */
    public function callApi(string $appid, string $method, string $path, ?array $body = null): array
    {
        $out = $this->ffi->new('char*');
        $status = $this->ffi->fashop_notify_call_api(
            $this->str($appid),
            $this->str($method),
            $this->str($path),
            $body === null ? null : $this->json($body, 'callApi', 'body'),
            FFI::addr($out)
        );
        return $this->answered($status, $out);
    }

    /**
     * An API's daily quota from WeChat's openapi/quota/get: the subscribe
     * send's when `$cgiPath` is null. A non-zero errcode throws
     * WeChatException carrying WeChat's answer.
     *
     * @return array<string,mixed> appid, cgi_path, daily_limit, used, remain
     */
    public function apiQuota(string $appid, ?string $cgiPath = null): array
    {
        $out = $this->ffi->new('char*');
        $status = $this->newer('fashop_notify_api_quota')->fashop_notify_api_quota(
            $this->str($appid),
            $cgiPath === null ? null : $this->str($cgiPath),
            FFI::addr($out)
        );
        return $this->answered($status, $out);
    }

    /**
     * Validates and renders now, stores the message for a later flush (no network).
     *
     * @param array<string,mixed> $payload
     * @return array<string,mixed> id, idempotency_key, due_at
     */
    public function enqueue(string $appid, string $event, array $payload): array
    {
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_enqueue')->fashop_notify_enqueue(
            $this->str($appid),
            $this->str($event),
            $this->json($payload, 'enqueue', 'payload'),
            $out
        ));
    }

    /** @return array<string,mixed> what the flush sent, rescheduled and dead-lettered */
    public function flush(?string $appid = null, int $maxMessages = 100): array
    {
        if ($maxMessages < 0 || $maxMessages > 0xFFFFFFFF) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, 'flush: maxMessages out of range');
        }
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_flush')->fashop_notify_flush(
            $appid === null ? null : $this->str($appid),
            $maxMessages,
            $out
        ));
    }

    /** A dead message becomes due again (attempts reset). */
    public function outboxRequeue(string $appid, int $id): void
    {
        $this->check($this->newer('fashop_notify_outbox_requeue')->fashop_notify_outbox_requeue($this->str($appid), $this->id($id)));
    }

    /** Removes a dead, uncertain or not yet claimed message. */
    public function outboxDrop(string $appid, int $id): void
    {
        $this->check($this->newer('fashop_notify_outbox_drop')->fashop_notify_outbox_drop($this->str($appid), $this->id($id)));
    }

    private function id(int $id): int
    {
        if ($id < 1) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "outbox message id must be 1 or more, got $id");
        }
        return $id;
    }

    /**
     * Where an order's service card stands: the statuses applied (oldest first),
     * `last`, `pending`, `stopped` (the buyer refused the card); with `$openid`
     * and `$notifyType` also WeChat's own view under `wechat` (get_user_notify).
     *
     * @return array<string,mixed>
     */
    public function cardStatus(string $appid, string $transactionId, ?string $openid = null, ?int $notifyType = null): array
    {
        $query = ['transaction_id' => $transactionId];
        if ($openid !== null && $notifyType !== null) {
            $query['openid'] = $openid;
            $query['notify_type'] = $notifyType;
        }
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_card_status')->fashop_notify_card_status(
            $this->str($appid),
            $this->str(json_encode($query, JSON_THROW_ON_ERROR | JSON_UNESCAPED_UNICODE)),
            $out
        ));
    }

    /** @return array<string,mixed> pending, due, dead, sent by event */
    public function outboxStats(?string $appid = null): array
    {
        return $this->callJson(fn ($out) => $this->newer('fashop_notify_outbox_stats')->fashop_notify_outbox_stats(
            $appid === null ? null : $this->str($appid),
            $out
        ));
    }

    /**
     * One request to the shop's WeChat push endpoint, as the server received it:
     * the method, the query (the raw query string, or as parsed: `$_GET`) and the
     * body (`file_get_contents('php://input')`). Answers `['reply' => text to echo
     * back to WeChat, 'events' => [...]]`; throws InvalidArgumentException for a
     * forged, stale or unreadable push (answer it with an HTTP error) and
     * AppNotConfiguredException for an app without push credentials.
     * PushEndpoint turns all of it into the HTTP answer.
     *
     * @param array<string,mixed>|string $query
     * @return array{reply: string, events: list<array<string,mixed>>}
     */
    public function handlePush(string $appid, string $method, array|string $query, string $body): array
    {
        $queryString = is_string($query) ? ltrim($query, '?') : http_build_query($query, '', '&', PHP_QUERY_RFC3986);
        $answer = $this->callJson(fn ($out) => $this->newer('fashop_notify_handle_push')->fashop_notify_handle_push(
            $this->str($appid),
            $this->str($method),
            $this->str($queryString),
            $this->str($body),
            $out
        ));
        return ['reply' => (string) ($answer['reply'] ?? ''), 'events' => $answer['events'] ?? []];
    }

    /**
     * Whether the store works, from a write, read and delete of a probe key on it:
     * `['ok' => bool, 'store' => 'sqlite:…' (a Redis password left out), 'error' => ?string,
     * 'latency_ms' => float]`. A failing store is `ok` false, not an exception.
     *
     * @return array{ok: bool, store: string, error: ?string, latency_ms: float}
     */
    public function storeHealth(): array
    {
        $v = $this->callJson(fn ($out) => $this->newer('fashop_notify_store_health')->fashop_notify_store_health($out));
        return [
            'ok' => ($v['ok'] ?? false) === true,
            'store' => (string) ($v['store'] ?? ''),
            'error' => isset($v['error']) ? (string) $v['error'] : null,
            'latency_ms' => (float) ($v['latency_ms'] ?? 0.0),
        ];
    }

    /** The metrics in Prometheus text form ("prometheus") or as JSON text ("json"). */
    public function metrics(string $format = 'prometheus'): string
    {
        $out = $this->ffi->new('char*');
        $status = $this->ffi->fashop_notify_metrics($this->str($format), FFI::addr($out));
        $text = $this->take($out);
        $this->check($status);
        return (string) $text;
    }

    /**
     * The FFI object, after checking that the loaded header declares `$function`:
     * a library built before that export existed gets a clear exception, not a fatal FFI error.
     */
    private function newer(string $function): FFI
    {
        static $declared = [];
        $declared[$function] ??= (bool) preg_match('/\\b' . preg_quote($function, '/') . '\\s*\\(/', (string) file_get_contents(self::headerPath()));
        if (!$declared[$function]) {
            throw Exception\InternalException::fromStatus(
                Status::INTERNAL,
                "$function is not in this build of libfashop_notify (its header " . self::headerPath() . ' does not declare it); update the library and the package together'
            );
        }
        return $this->ffi;
    }

    /** The message of the last failed call on this thread. */
    public function lastError(): string
    {
        return self::cString($this->ffi->fashop_notify_last_error());
    }

    // --- conversion -----------------------------------------------------------

    /** PHP FFI hands `const char *` results back as PHP strings already; older builds as CData. */
    private static function cString(mixed $v): string
    {
        return is_string($v) ? $v : FFI::string($v);
    }

    /** @param callable(mixed): int $call */
    private function callJson(callable $call): array
    {
        $out = $this->ffi->new('char*');
        $status = $call(FFI::addr($out));
        $text = $this->take($out);
        $this->check($status);
        return $text === null ? [] : $this->decode($text);
    }

    /** Copies a string the library wrote and frees it. */
    private function take(FFI\CData $out): ?string
    {
        if (FFI::isNull($out)) {
            return null;
        }
        $text = FFI::string($out);
        $this->ffi->fashop_notify_string_free($out);
        return $text;
    }

    /**
     * WeChat's JSON written to `$out`, decoded, once the status is checked; a
     * WeChatException carries that JSON.
     *
     * @return array<string,mixed>
     */
    private function answered(int $status, FFI\CData $out): array
    {
        $text = $this->take($out);
        $answer = $text === null ? null : $this->decode($text);
        try {
            $this->check($status);
        } catch (Exception\WeChatException $e) {
            throw $answer === null ? $e : $e->withAnswer($answer);
        }
        return $answer ?? [];
    }

    private function check(int $status, ?SendOutcome $outcome = null): void
    {
        if ($status === Status::OK) {
            return;
        }
        $message = $this->lastError();
        if ($message === '') {
            $name = array_search($status, Status::all(), true);
            $message = 'fashop-notify status ' . ($name === false ? $status : $name) . ' without a message';
        }
        $class = match ($status) {
            Status::INVALID_ARGUMENT => Exception\InvalidArgumentException::class,
            Status::APP_NOT_CONFIGURED => Exception\AppNotConfiguredException::class,
            Status::MAPPING_ERROR => Exception\MappingException::class,
            Status::NO_PERMIT => Exception\NoPermitException::class,
            Status::WECHAT_ERROR => Exception\WeChatException::class,
            Status::NETWORK_ERROR => Exception\NetworkException::class,
            Status::UNCERTAIN => $outcome?->status === 'in_progress'
                ? Exception\SendInProgressException::class
                : Exception\UncertainDeliveryException::class,
            Status::STORE_ERROR => Exception\StoreException::class,
            default => Exception\InternalException::class,
        };
        throw $class::fromStatus($status, $message, $outcome);
    }

    /** A PHP string as a C string: NUL bytes would silently cut it, so they are refused. */
    private function str(string $s): string
    {
        if (str_contains($s, "\0")) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, 'string arguments must not contain NUL bytes');
        }
        return $s;
    }

    /**
     * @param array<mixed> $value
     * @param string $call the method, and $arg its argument, named when the value cannot be encoded
     */
    private function json(array $value, string $call, string $arg): string
    {
        try {
            // An empty PHP array is a JSON object here: every document of the library is one.
            return json_encode($value === [] ? new \stdClass() : $value, self::JSON_OUT);
        } catch (\JsonException $e) {
            $where = self::unencodable($value, $arg) ?? $arg;
            throw Exception\InvalidArgumentException::fromStatus(
                Status::INVALID_ARGUMENT,
                "$call: \$$where cannot be encoded as JSON: " . $e->getMessage()
                    . ' (strings must be UTF-8: convert GBK text with mb_convert_encoding($text, \'UTF-8\', \'GBK\'))',
                null,
                $e
            );
        }
    }

    /**
     * The path of the first value in $value that json_encode refuses, e.g. `payload['fields']['goods']`.
     *
     * @param array<mixed> $value
     */
    private static function unencodable(array $value, string $path): ?string
    {
        foreach ($value as $key => $item) {
            $here = $path . '[' . var_export($key, true) . ']';
            if (is_array($item)) {
                $inner = self::unencodable($item, $here);
                if ($inner !== null) {
                    return $inner;
                }
                continue;
            }
            if (json_encode($item, self::JSON_OUT & ~JSON_THROW_ON_ERROR) === false || !is_string(json_encode((string) $key))) {
                return $here;
            }
        }
        return null;
    }

    /** @return array<mixed> */
    private function decode(string $text): array
    {
        $v = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
        return is_array($v) ? $v : [];
    }
}
