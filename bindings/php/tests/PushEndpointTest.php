<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Notifier;
use FaShop\Notify\PushEndpoint;
use PHPUnit\Framework\TestCase;

/**
 * PushEndpoint answers as WeChat needs (200 `success` only for a push the ledger took,
 * an HTTP error otherwise so WeChat retries), from method, query and body alone; and
 * Notifier::storeHealth on a working and a stopped store. A Redis store that goes away
 * (redis-server started here and killed) is the store error.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class PushEndpointTest extends TestCase
{
    private const TOKEN = 'endpointtoken';

    /** @var resource|null */
    private $redis = null;
    private string $redisDir = '';

    protected function tearDown(): void
    {
        $this->stopRedis();
        if ($this->redisDir !== '') {
            array_map('unlink', glob("{$this->redisDir}/*") ?: []);
            @rmdir($this->redisDir);
        }
    }

    /** redis-server on a free port, ready once it says so; returns its URL. */
    private function startRedis(string $password): string
    {
        $probe = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr((string) strrchr((string) stream_socket_get_name($probe, false), ':'), 1);
        fclose($probe);
        $this->redisDir = sys_get_temp_dir() . '/fashop-notify-php-redis-' . bin2hex(random_bytes(4));
        mkdir($this->redisDir, 0700);
        $this->redis = proc_open(['redis-server', '--bind', '127.0.0.1', '--port', (string) $port, '--save', '', '--appendonly', 'no',
            '--dir', $this->redisDir, '--requirepass', $password, '--logfile', ''], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['file', '/dev/null', 'w']], $pipes);
        stream_set_timeout($pipes[1], 30);
        while (($line = fgets($pipes[1])) !== false && !str_contains($line, 'Ready to accept connections')) {
        }
        $this->assertNotFalse($line, 'redis-server did not start');
        return "redis://:$password@127.0.0.1:$port/0";
    }

    private function stopRedis(): void
    {
        if ($this->redis !== null) {
            proc_terminate($this->redis, SIGKILL);
            proc_close($this->redis);
            $this->redis = null;
        }
    }

    /** A signed plain-mode query string, as WeChat puts it on the URL. */
    private static function query(array $extra = []): string
    {
        $ts = (string) time();
        $nonce = bin2hex(random_bytes(4));
        $parts = [self::TOKEN, $ts, $nonce];
        sort($parts, SORT_STRING);
        return http_build_query(['signature' => sha1(implode('', $parts)), 'timestamp' => $ts, 'nonce' => $nonce] + $extra);
    }

    private static function popup(string $openid, string $template): string
    {
        return (string) json_encode(['ToUserName' => 'gh_1', 'FromUserName' => $openid, 'CreateTime' => (string) time(), 'MsgType' => 'event',
            'Event' => 'subscribe_msg_popup_event', 'List' => [['TemplateId' => $template, 'SubscribeStatusString' => 'accept', 'PopupScene' => '0']]]);
    }

    private function app(Notifier $n): string
    {
        $appid = 'wx' . bin2hex(random_bytes(8));
        $n->registerApp(['appid' => $appid, 'secret' => 's', 'grants' => 'push', 'push' => ['token' => self::TOKEN, 'format' => 'json']]);
        return $appid;
    }

    public function testAnswersFromMethodQueryAndBody(): void
    {
        $n = Notifier::load();
        $appid = $this->app($n);
        $logged = [];
        $endpoint = new PushEndpoint($n, $appid, function (string $l) use (&$logged) {
            $logged[] = $l;
        });

        $check = $endpoint->handle('GET', self::query(['echostr' => 'echo-42']), '');
        $this->assertSame([200, 'echo-42', null], [$check['status'], $check['body'], $check['error']]);
        $this->assertSame('text/plain; charset=utf-8', $check['headers']['Content-Type']);

        $q = self::query(['openid' => 'o-ep']);
        $applied = $endpoint->handle('post', $q, self::popup('o-ep', 'T1'));
        $this->assertSame([200, 'success'], [$applied['status'], $applied['body']]);
        $this->assertSame('grant_added', $applied['events'][0]['effect']);
        $this->assertSame(1, $n->ledgerStats($appid, 'o-ep')['subscribe']['templates']['T1']);
        // The query as parsed ($_GET) works the same.
        parse_str(self::query(), $parsed);
        $this->assertSame(200, $endpoint->handle('POST', $parsed, self::popup('o-ep', 'T2'))['status']);

        $forged = $endpoint->handle('POST', preg_replace('/signature=\w+/', 'signature=' . str_repeat('0', 40), self::query()), self::popup('o-ep', 'T1'));
        $this->assertSame([403, 'forbidden', []], [$forged['status'], $forged['body'], $forged['events']]);
        $this->assertStringContainsString('signature does not match', (string) $forged['error']);
        $this->assertStringContainsString('wechat push refused (403): ', $logged[0]);
        $this->assertStringNotContainsString('signature', $forged['body'], 'the reason is logged, not told to the caller');
        $this->assertSame(1, $n->ledgerStats($appid, 'o-ep')['subscribe']['templates']['T1'], 'nothing applied');

        $plain = 'wx' . bin2hex(random_bytes(8));
        $n->registerApp(['appid' => $plain, 'secret' => 's']);
        $this->assertSame(503, (new PushEndpoint($n, $plain, fn () => null))->handle('GET', self::query(['echostr' => 'x']), '')['status']);
    }

    public function testAStoreThatFailsAnswers500AndHealthSaysSo(): void
    {
        $n = Notifier::load();
        $url = $this->startRedis('health-pw-42');
        $n->configure(['store' => $url]);
        $health = $n->storeHealth();
        $this->assertTrue($health['ok'], (string) $health['error']);
        $this->assertNull($health['error']);
        $this->assertStringStartsWith('redis://', $health['store']);
        $this->assertStringNotContainsString('health-pw-42', $health['store'], 'the password is left out');
        $this->assertGreaterThanOrEqual(0.0, $health['latency_ms']);

        $appid = $this->app($n);
        $endpoint = new PushEndpoint($n, $appid, fn () => null);
        $this->assertSame(200, $endpoint->handle('POST', self::query(), self::popup('o-down', 'T1'))['status']);
        $this->stopRedis();
        $failed = $endpoint->handle('POST', self::query(), self::popup('o-down', 'T1'));
        $this->assertSame(500, $failed['status'], 'WeChat retries the push');
        $this->assertNotSame('success', $failed['body']);
        $health = $n->storeHealth();
        $this->assertFalse($health['ok']);
        $this->assertStringContainsString('redis', (string) $health['error']);
        $this->assertStringNotContainsString('health-pw-42', (string) $health['error']);
    }

    public function testHealthOfASqliteStore(): void
    {
        $dir = sys_get_temp_dir() . '/fashop-notify-health-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        $n = Notifier::load();
        $n->configure(['store' => "sqlite:$dir/notify.db"]);
        $health = $n->storeHealth();
        $this->assertSame([true, "sqlite:$dir/notify.db", null], [$health['ok'], $health['store'], $health['error']]);
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }
}
