<?php
declare(strict_types=1);

namespace FaShop\Notify;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\NotifyException;

/**
 * The shop's WeChat message push endpoint (GET for the URL check, POST for pushes),
 * with no tie to a web server: the request goes in as method, query and body, the
 * HTTP answer comes out as status, headers and body. EasySwoole hands over its
 * request's parts; php-fpm calls serveGlobals().
 *
 * WeChat retries a push that was not answered `success` with 200, so only a push the
 * ledger took gets that answer: a refused one (forged, replayed, stale, unreadable)
 * answers 403, an app without push credentials 503, a store that failed 500 — and
 * WeChat's retry of that push is applied once the store is back.
 */
final class PushEndpoint
{
    /** @var callable(string): void */
    private $log;

    /**
     * @param callable(string): void|null $log where refusals and failures are written (error_log by default)
     */
    public function __construct(private Notifier $notifier, private string $appid, ?callable $log = null)
    {
        $this->log = $log ?? static fn (string $line) => error_log($line);
    }

    /**
     * Answers one request. `events` lists what the push did to the ledger (see the
     * guide), for the shop's own records; `error` is the library's message when
     * the answer is not 200 (it is logged, never sent back to the caller).
     *
     * @param array<string,mixed>|string $query the raw query string (preferred: passed on as received) or as parsed
     * @return array{status: int, headers: array<string,string>, body: string, events: list<array<string,mixed>>, error: ?string}
     */
    public function handle(string $method, array|string $query, string $body): array
    {
        try {
            $answer = $this->notifier->handlePush($this->appid, strtoupper($method), $query, $body);
        } catch (InvalidArgumentException $e) {
            return $this->refuse(403, 'forbidden', 'refused', $e);   // not from WeChat, replayed, stale or unreadable
        } catch (AppNotConfiguredException $e) {
            return $this->refuse(503, 'not configured', 'not configured', $e); // push credentials not registered yet
        } catch (NotifyException $e) {
            return $this->refuse(500, 'error', 'failed', $e);        // the store failed: WeChat retries
        }
        return [
            'status' => 200,
            'headers' => ['Content-Type' => 'text/plain; charset=utf-8'],
            'body' => $answer['reply'],   // the echostr of the URL check, else "success"
            'events' => $answer['events'],
            'error' => null,
        ];
    }

    /**
     * php-fpm (or any SAPI with superglobals): answers the current request and
     * returns what handle() returned.
     *
     * @return array{status: int, headers: array<string,string>, body: string, events: list<array<string,mixed>>, error: ?string}
     */
    public function serveGlobals(): array
    {
        $answer = $this->handle(
            (string) ($_SERVER['REQUEST_METHOD'] ?? 'GET'),
            (string) ($_SERVER['QUERY_STRING'] ?? ''),
            (string) file_get_contents('php://input')
        );
        http_response_code($answer['status']);
        foreach ($answer['headers'] as $name => $value) {
            header("$name: $value");
        }
        echo $answer['body'];
        return $answer;
    }

    /** @return array{status: int, headers: array<string,string>, body: string, events: list<array<string,mixed>>, error: ?string} */
    private function refuse(int $status, string $body, string $what, NotifyException $e): array
    {
        ($this->log)("wechat push $what ($status): " . $e->getMessage());
        return [
            'status' => $status,
            'headers' => ['Content-Type' => 'text/plain; charset=utf-8'],
            'body' => $body,
            'events' => [],
            'error' => $e->getMessage(),
        ];
    }
}
