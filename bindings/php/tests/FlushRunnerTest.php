<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\FlushRunner;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * FlushRunner against the sandbox: a pass sends what is due and counts it; the lock
 * keeps a second runner out while examples/php/flush_runner.php loops in another
 * process; SIGTERM ends that loop in its sleep, and the lock is free again.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class FlushRunnerTest extends TestCase
{
    private string $dir;
    private Notifier $n;
    private string $appid;
    private string $secret;

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/fashop-notify-runner-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700);
        $this->n = Notifier::load();
        $this->n->configure(['store' => "sqlite:{$this->dir}/notify.db", 'api_base' => Sandbox::url()]);
        [$this->appid, $this->secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $this->appid, 'secret' => $this->secret]);
        $this->n->loadMappings($this->appid, Shop::mappings());
    }

    protected function tearDown(): void
    {
        array_map('unlink', glob("{$this->dir}/*") ?: []);
        rmdir($this->dir);
    }

    private function queue(string $openid, int ...$orders): void
    {
        Shop::grant($this->n, $this->appid, $openid, Shop::TPL_PAY_SUCCESS, count($orders));
        foreach ($orders as $i) {
            $this->n->enqueue($this->appid, 'order_pay_success', Shop::payload($openid, $i));
        }
    }

    public function testOnePassSendsWhatIsDueAndCountsIt(): void
    {
        $this->queue('o-runner-1', 1, 2);
        $lines = [];
        $runner = new FlushRunner($this->n, $this->appid, [
            'lock_file' => "{$this->dir}/flush.lock",
            'metrics_file' => "{$this->dir}/runner.json",
            'log' => function (string $line) use (&$lines) {
                $lines[] = $line;
            },
        ]);
        $this->assertSame(FlushRunner::EXIT_OK, $runner->runCron());
        $sent = array_map(fn ($m) => $m['data']['character_string1']['value'], Shop::delivered($this->appid, 'o-runner-1'));
        sort($sent); // messages due at the same moment go in any order
        $this->assertSame(['SN2026112300000001', 'SN2026112300000002'], $sent);
        $m = $runner->metrics();
        $this->assertSame([1, 0, 2, 0], [$m['passes'], $m['failed_passes'], $m['sent'], $m['dead']]);
        $this->assertFalse($m['holds_lock'], 'a cron pass lets go of the lock');
        $this->assertSame(FlushRunner::EXIT_OK, $runner->runCron());
        $this->assertCount(2, Shop::delivered($this->appid, 'o-runner-1'), 'sent once');
        $this->assertSame(2, $runner->metrics()['passes']);
        $written = json_decode((string) file_get_contents("{$this->dir}/runner.json"), true);
        $this->assertSame(2, $written['sent']);
        $text = FlushRunner::prometheus($written);
        $this->assertStringContainsString("fashop_notify_flush_runner_messages_total{result=\"sent\"} 2\n", $text);
        $this->assertStringContainsString("fashop_notify_flush_runner_passes_total 2\n", $text);
        $this->assertStringContainsString("fashop_notify_flush_runner_failed_passes_total 0\n", $text);
        $this->assertSame([], $lines);
        // A pass the library refuses (an app this process never registered) is counted and logged.
        $failing = new FlushRunner($this->n, 'wx-never-registered', ['lock_file' => "{$this->dir}/flush.lock", 'log' => function (string $line) use (&$lines) {
            $lines[] = $line;
        }]);
        $this->assertSame(FlushRunner::EXIT_FAILED, $failing->runCron());
        $m = $failing->metrics();
        $this->assertSame([1, 1], [$m['passes'], $m['failed_passes']]);
        $this->assertStringContainsString('wx-never-registered', (string) $m['last_error']);
        $this->assertStringStartsWith('fashop-notify flush failed: ', $lines[0]);

        // A loop of two passes ends by itself.
        $this->queue('o-runner-1', 3);
        $this->assertSame(FlushRunner::EXIT_OK, (new FlushRunner($this->n, $this->appid, ['lock_file' => "{$this->dir}/flush.lock", 'interval_secs' => 0]))->loop(2));
        $this->assertCount(3, Shop::delivered($this->appid, 'o-runner-1'));
    }

    public function testTheLockKeepsASecondRunnerOutAndSigtermStopsTheLoop(): void
    {
        $this->queue('o-runner-2', 7);
        $lock = "{$this->dir}/flush.lock";
        $env = [
            'PATH' => (string) getenv('PATH'),
            'FASHOP_NOTIFY_LIB' => Shop::library(),
            'FASHOP_NOTIFY_STORE' => "sqlite:{$this->dir}/notify.db",
            'FASHOP_NOTIFY_API_BASE' => Sandbox::url(),
            'FASHOP_NOTIFY_APPID' => $this->appid,
            'FASHOP_NOTIFY_APP_SECRET' => $this->secret,
            'FASHOP_NOTIFY_FLUSH_LOCK' => $lock,
            'FASHOP_NOTIFY_FLUSH_INTERVAL' => '3600', // only a signal ends its sleep within the test
        ];
        $script = Shop::root() . '/examples/php/flush_runner.php';
        $proc = proc_open([PHP_BINARY, '-d', 'ffi.enable=1', $script], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        $this->assertIsResource($proc);
        stream_set_timeout($pipes[1], 60);
        $first = json_decode((string) fgets($pipes[1]), true);
        $this->assertSame(1, $first['pass'] ?? null, 'the runner reports its first pass');
        $this->assertSame(1, $first['report']['sent']);
        $this->assertSame('SN2026112300000007', Shop::delivered($this->appid, 'o-runner-2')[0]['data']['character_string1']['value']);

        // The looping runner holds the lock: a second one, loop or cron, does nothing.
        $logged = [];
        $second = new FlushRunner($this->n, $this->appid, ['lock_file' => $lock, 'log' => function (string $l) use (&$logged) {
            $logged[] = $l;
        }]);
        $this->queue('o-runner-2', 8);
        $this->assertSame(FlushRunner::EXIT_LOCKED, $second->loop());
        $this->assertSame(FlushRunner::EXIT_LOCKED, $second->runCron());
        $this->assertSame(0, $second->metrics()['passes']);
        $this->assertStringContainsString('another runner holds', $logged[0]);
        $this->assertCount(1, Shop::delivered($this->appid, 'o-runner-2'));
        $this->assertSame(trim((string) file_get_contents($lock)), (string) proc_get_status($proc)['pid'], 'the lock file names its holder');

        proc_terminate($proc, SIGTERM);
        $rest = Pipes::readAll([1 => $pipes[1], 2 => $pipes[2]], 60);
        $this->assertSame(0, proc_close($proc), 'stopped by SIGTERM, cleanly: ' . $rest[2]);
        $this->assertSame('', $rest[1], 'no pass after the signal');

        // The lock is free again: the message queued meanwhile goes out.
        $this->assertSame(FlushRunner::EXIT_OK, $second->runCron());
        $this->assertCount(2, Shop::delivered($this->appid, 'o-runner-2'));
    }

    public function testTheScriptAsACronJob(): void
    {
        $this->queue('o-runner-3', 9);
        $env = ['PATH' => (string) getenv('PATH'), 'FASHOP_NOTIFY_LIB' => Shop::library(), 'FASHOP_NOTIFY_STORE' => "sqlite:{$this->dir}/notify.db",
            'FASHOP_NOTIFY_API_BASE' => Sandbox::url(), 'FASHOP_NOTIFY_APPID' => $this->appid, 'FASHOP_NOTIFY_APP_SECRET' => $this->secret,
            'FASHOP_NOTIFY_FLUSH_LOCK' => "{$this->dir}/flush.lock"];
        $proc = proc_open([PHP_BINARY, '-d', 'ffi.enable=1', Shop::root() . '/examples/php/flush_runner.php', '--once'], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        $out = Pipes::readAll([1 => $pipes[1], 2 => $pipes[2]], 60);
        $this->assertSame(0, proc_close($proc), $out[2]);
        $this->assertSame(1, json_decode($out[1], true)['report']['sent']);
        $this->assertCount(1, Shop::delivered($this->appid, 'o-runner-3'));
    }
}
