<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

use FaShop\Notify\Admin;

/**
 * The admin handlers as JSON routes under `/api/…`, plus the editor page, for the
 * bundled front controller (admin/index.php) under `php -S` or php-fpm. Every API
 * request must carry the shared admin secret in `X-Admin-Secret`; without it the
 * answer is 401 and the Admin is never built (no library call, no store access,
 * no WeChat call). The page itself holds no data and is served without it.
 */
final class Router
{
    public const SECRET_HEADER = 'X-Admin-Secret';
    /** Request bodies are small JSON documents; anything bigger is refused unread. */
    public const MAX_BODY_BYTES = 1 << 20;

    /** @var callable(): Admin */
    private $adminFactory;

    /**
     * @param string $secret the shared admin secret ('' refuses every API request)
     * @param callable(): Admin $adminFactory builds the Admin once a request is let in
     */
    public function __construct(private string $secret, callable $adminFactory, private string $editorPath)
    {
        $this->adminFactory = $adminFactory;
    }

    /**
     * @param array<string,string> $query
     * @param array<string,string> $headers header name (any case) => value
     * @return array{status:int,headers:array<string,string>,body:string}
     */
    public function handle(string $method, string $path, array $query, string $body, array $headers): array
    {
        $at = strpos($path, '/api/');
        if ($at === false) {
            if ($method !== 'GET' && $method !== 'HEAD') {
                return self::json(['ok' => false, 'error' => ['code' => AdminError::METHOD_NOT_ALLOWED, 'message' => 'the editor page is GET only']], 405);
            }
            return $this->page();
        }
        $route = substr($path, $at + 4);
        if ($this->secret === '') {
            return self::error(new AdminError(AdminError::ADMIN_NOT_CONFIGURED, 'no admin secret is set (FASHOP_NOTIFY_ADMIN_SECRET): the admin API is closed'));
        }
        $given = null;
        foreach ($headers as $name => $value) {
            if (strcasecmp($name, self::SECRET_HEADER) === 0) {
                $given = (string) $value;
            }
        }
        if ($given === null || !hash_equals($this->secret, $given)) {
            return self::error(new AdminError(AdminError::UNAUTHORIZED, 'missing or wrong ' . self::SECRET_HEADER . ' header'));
        }
        if (strlen($body) > self::MAX_BODY_BYTES) {
            return self::error(new AdminError(AdminError::INVALID_REQUEST, 'request body is larger than 1 MiB'));
        }
        $input = [];
        if (trim($body) !== '') {
            $input = json_decode($body, true);
            if (!is_array($input)) {
                return self::error(new AdminError(AdminError::INVALID_REQUEST, 'request body must be a JSON object'));
            }
        }
        $call = $this->route($method, $route, $query, $input);
        if ($call instanceof AdminError) {
            return self::error($call);
        }
        $result = $call(($this->adminFactory)());
        return self::json($result, Admin::httpStatus($result));
    }

    /**
     * The handler for a route, or why there is none.
     *
     * @param array<string,string> $q
     * @param array<string,mixed> $in
     */
    private function route(string $method, string $route, array $q, array $in): callable|AdminError
    {
        $seg = array_map('rawurldecode', explode('/', trim($route, '/')));
        $table = match (true) {
            $seg === ['events'] => ['GET' => fn (Admin $a) => $a->events()],
            count($seg) === 2 && $seg[0] === 'events' => ['GET' => fn (Admin $a) => $a->event($seg[1])],
            count($seg) === 3 && $seg[0] === 'events' && $seg[2] === 'mapping' => [
                'PUT' => fn (Admin $a) => $a->saveMapping($seg[1], $in),
                'DELETE' => fn (Admin $a) => $a->removeMapping($seg[1]),
            ],
            count($seg) === 3 && $seg[0] === 'events' && $seg[2] === 'suggest' => ['GET' => fn (Admin $a) => $a->suggestMapping($seg[1], (string) ($q['template_id'] ?? ''))],
            count($seg) === 3 && $seg[0] === 'events' && $seg[2] === 'preview' => ['POST' => fn (Admin $a) => $a->preview($seg[1], $in)],
            $seg === ['templates'] => ['GET' => fn (Admin $a) => $a->templates()],
            $seg === ['cards'] => ['GET' => fn (Admin $a) => $a->cards()],
            count($seg) === 2 && $seg[0] === 'templates' => [
                'GET' => fn (Admin $a) => $a->template($seg[1]),
                'DELETE' => fn (Admin $a) => $a->deleteTemplate($seg[1]),
            ],
            $seg === ['keyword-types'] => ['GET' => fn (Admin $a) => $a->keywordTypes()],
            $seg === ['library', 'categories'] => ['GET' => fn (Admin $a) => $a->libraryCategories()],
            $seg === ['library', 'titles'] => ['GET' => fn (Admin $a) => $a->libraryTitles($q)],
            count($seg) === 4 && $seg[0] === 'library' && $seg[1] === 'titles' && $seg[3] === 'keywords' => ['GET' => fn (Admin $a) => $a->libraryKeywords($seg[2])],
            count($seg) === 3 && $seg[0] === 'library' && $seg[1] === 'suggestions' => ['GET' => fn (Admin $a) => $a->librarySuggestions($seg[2])],
            $seg === ['library', 'templates'] => ['POST' => fn (Admin $a) => $a->createTemplate($in)],
            $seg === ['outbox'] => ['GET' => fn (Admin $a) => $a->outbox()],
            $seg === ['reach'] => ['GET' => fn (Admin $a) => $a->reach($q)],
            $seg === ['outbox', 'quota'] => ['GET' => fn (Admin $a) => $a->outboxQuota()],
            $seg === ['outbox', 'requeue'] => ['POST' => fn (Admin $a) => $a->outboxRequeue($in)],
            $seg === ['outbox', 'drop'] => ['POST' => fn (Admin $a) => $a->outboxDrop($in)],
            default => null,
        };
        if ($table === null) {
            return new AdminError(AdminError::NOT_FOUND, "no admin route /api/$route");
        }
        return $table[$method] ?? new AdminError(AdminError::METHOD_NOT_ALLOWED, "/api/$route takes " . implode(', ', array_keys($table)));
    }

    /** @return array{status:int,headers:array<string,string>,body:string} */
    private function page(): array
    {
        $html = @file_get_contents($this->editorPath);
        if ($html === false) {
            return self::error(new AdminError(AdminError::INTERNAL, 'the editor page is missing'));
        }
        return ['status' => 200, 'headers' => [
            'Content-Type' => 'text/html; charset=utf-8',
            // The page is self-contained: it may talk to this server only.
            'Content-Security-Policy' => "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            'X-Content-Type-Options' => 'nosniff',
            'Referrer-Policy' => 'no-referrer',
            'Cache-Control' => 'no-store',
        ], 'body' => $html];
    }

    /** @return array{status:int,headers:array<string,string>,body:string} */
    private static function error(AdminError $e): array
    {
        return self::json($e->toResult(), AdminError::httpStatus($e->errorCode));
    }

    /** @return array{status:int,headers:array<string,string>,body:string} */
    private static function json(array $result, int $status): array
    {
        return ['status' => $status, 'headers' => [
            'Content-Type' => 'application/json; charset=utf-8',
            'Cache-Control' => 'no-store',
            'X-Content-Type-Options' => 'nosniff',
        ], 'body' => json_encode($result, JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PARTIAL_OUTPUT_ON_ERROR)];
    }
}
