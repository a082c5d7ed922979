<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use PHPUnit\Framework\TestCase;

/**
 * The whole push loop: the sandbox checks and pushes to the shop's PHP endpoint
 * (fixtures/push_endpoint.php under `php -S`), which hands each request to the library;
 * the ledger of that server follows the buyer's taps, a delivered send, a withdrawal.
 */
final class PushLoopTest extends TestCase
{
    private const TOKEN = 'phploop42';
    private const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';

    /** @var resource|null */
    private $proc = null;
    /** @var resource|null */
    private $log = null;
    private string $dir = '';
    private int $port = 0;

    protected function tearDown(): void
    {
        if (is_resource($this->proc)) {
            proc_terminate($this->proc);
            proc_close($this->proc);
        }
        if ($this->dir !== '') {
            array_map('unlink', glob($this->dir . '/*') ?: []);
            rmdir($this->dir);
        }
    }

    /** @return list<array{0: string, 1: string}> the (format, mode) pairs */
    public function modes(): array
    {
        return [['json', 'plain'], ['xml', 'safe']];
    }

    /** Starts `php -S` with the endpoint for a new app; [appid, openid]. */
    private function startShop(string $format, string $mode): array
    {
        [$appid, $secret] = Shop::newApp();
        $this->dir = sys_get_temp_dir() . '/fashop-push-loop-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
        $env = [
            'SHOP_APPID' => $appid, 'SHOP_SECRET' => $secret,
            'SHOP_PUSH_TOKEN' => self::TOKEN, 'SHOP_PUSH_KEY' => $mode === 'safe' ? self::AES_KEY : '', 'SHOP_PUSH_FORMAT' => $format,
            'SHOP_PUSH_EVENTS' => $this->dir . '/events.jsonl', 'SHOP_DB' => $this->dir . '/notify.db',
            'FASHOP_NOTIFY_SANDBOX_URL' => Sandbox::url(), 'FASHOP_NOTIFY_LIB' => Shop::library(),
            'PATH' => (string) getenv('PATH'),
        ];
        $pipes = [];
        $this->proc = proc_open(
            [PHP_BINARY, '-d', 'ffi.enable=1', '-S', '127.0.0.1:0', '-t', __DIR__ . '/fixtures'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']],
            $pipes,
            null,
            $env
        );
        $this->assertIsResource($this->proc);
        $this->log = $pipes[2];
        $seen = '';
        $deadline = microtime(true) + 30;
        while (!preg_match('/Development Server \(http:\/\/127\.0\.0\.1:(\d+)\) started/', $seen, $m)) {
            $r = [$this->log];
            $w = $e = null;
            if (microtime(true) > $deadline || stream_select($r, $w, $e, 30) !== 1) {
                $this->fail("php -S not ready: $seen");
            }
            $line = fgets($this->log);
            if ($line === false) {
                $this->fail("php -S exited: $seen");
            }
            $seen .= $line;
        }
        stream_set_blocking($this->log, false);
        $this->port = (int) $m[1];
        return [$appid, 'oPushLoop' . bin2hex(random_bytes(4))];
    }

    private function url(): string
    {
        return "http://127.0.0.1:{$this->port}/push_endpoint.php";
    }

    private function probe(array $query): array
    {
        while (is_resource($this->log) && ($chunk = fread($this->log, 65536)) !== false && $chunk !== '') {
            // keep the server's request log drained
        }
        $text = file_get_contents($this->url() . '?' . http_build_query($query), false, stream_context_create(['http' => ['timeout' => 30]]));
        $this->assertIsString($text);
        return json_decode($text, true, 512, JSON_THROW_ON_ERROR);
    }

    private function grants(string $openid): int
    {
        return (int) ($this->probe(['probe' => 'ledger', 'openid' => $openid])['subscribe']['templates'][Shop::TPL_PAY_SUCCESS] ?? 0);
    }

    /** Delivers the sandbox's queued pushes; the events the endpoint got from the library. */
    private function flush(int $expected): array
    {
        $events = $this->dir . '/events.jsonl';
        @unlink($events);
        $pushes = Sandbox::control('POST', '/sandbox/pushes/flush', [])['pushes'];
        $this->assertCount($expected, $pushes);
        foreach ($pushes as $p) {
            $this->assertSame(200, $p['status'] ?? null, json_encode($p));
            $this->assertSame('success', $p['reply']);
        }
        $lines = file_exists($events) ? file($events, FILE_IGNORE_NEW_LINES) : [];
        return array_map(fn ($l) => json_decode($l, true, 512, JSON_THROW_ON_ERROR), $lines ?: []);
    }

    /** @dataProvider modes */
    public function testTapsSendsAndWithdrawalsReachTheLedger(string $format, string $mode): void
    {
        [$appid, $openid] = $this->startShop($format, $mode);
        $check = Sandbox::control('POST', '/sandbox/push', [
            'appid' => $appid, 'url' => $this->url(), 'token' => self::TOKEN,
            'encoding_aes_key' => self::AES_KEY, 'format' => $format, 'mode' => $mode,
        ]);
        $this->assertTrue($check['ok'] ?? false, json_encode($check));

        Sandbox::control('POST', '/sandbox/taps', ['appid' => $appid, 'openid' => $openid, 'choices' => [Shop::TPL_PAY_SUCCESS => 'accept']]);
        $this->assertSame(0, $this->grants($openid));
        $events = $this->flush(1);
        $this->assertSame('grant_added', $events[0][0]['effect']);
        $this->assertSame(1, $this->grants($openid));

        $this->assertSame('sent', $this->probe(['probe' => 'send', 'openid' => $openid, 'order' => 1])['status']);
        $events = $this->flush(1);
        $this->assertSame('subscribe_msg_sent_event', $events[0][0]['event']);
        $this->assertSame('delivered', $events[0][0]['effect']);

        // Another popup (the same choices within the same second would be taken for a retry).
        Sandbox::control('POST', '/sandbox/taps', ['appid' => $appid, 'openid' => $openid, 'choices' => [Shop::TPL_PAY_SUCCESS => 'accept', Shop::TPL_DELIVERED => 'reject']]);
        $this->flush(1);
        $this->assertSame(1, $this->grants($openid));
        Sandbox::control('POST', '/sandbox/revoke', ['appid' => $appid, 'openid' => $openid, 'template_id' => Shop::TPL_PAY_SUCCESS]);
        $events = $this->flush(1);
        $this->assertSame('grants_dropped', $events[0][0]['effect']);
        $this->assertSame(0, $this->grants($openid));
        $this->assertSame('FaShop\\Notify\\Exception\\NoPermitException', $this->probe(['probe' => 'send', 'openid' => $openid, 'order' => 2])['status']);
    }
}
