<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * The EasySwoole model: the master loads the library, registers the app and
 * fetches a token, then forks long-lived workers that all send through one
 * SQLite ledger. Each child must use its own HTTP connections and SQLite handle.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class ForkTest extends TestCase
{
    private const WORKERS = 8;
    private const SENDS = 200;
    private const TIMEOUT_SECS = 120;

    public function testEightForkedWorkersSendThroughOneSqliteLedger(): void
    {
        $dir = sys_get_temp_dir() . '/fashop-notify-fork-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        $n = Notifier::load();
        // One buyer receives every message: more uses than the default cap per template.
        $n->configure(['store' => "sqlite:$dir/notify.db", 'subscribe_cap_per_template' => 10_000]);
        $appid = Shop::registered($n);
        $openid = 'o-fork-buyer';
        $total = self::WORKERS * self::SENDS;
        // One more grant for the master's own send after the workers are done.
        Shop::grant($n, $appid, $openid, Shop::TPL_PAY_SUCCESS, $total + 1);
        $token = $n->accessToken($appid);
        $this->assertSame(1, Shop::tokenFetches($appid));

        $pipes = [];
        for ($w = 0; $w < self::WORKERS; $w++) {
            $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
            $pid = pcntl_fork();
            $this->assertNotSame(-1, $pid, 'fork failed');
            if ($pid === 0) {
                fclose($pair[0]);
                $this->worker($pair[1], $appid, $openid, $w, $token);
            }
            fclose($pair[1]);
            $pipes[$pid] = $pair[0];
        }

        try {
            $reports = Pipes::readAll($pipes, self::TIMEOUT_SECS);
        } finally {
            // A worker that hangs is killed, so the test ends either way.
            foreach (array_keys($pipes) as $pid) {
                if (pcntl_waitpid($pid, $status, WNOHANG) === 0) {
                    posix_kill($pid, SIGKILL);
                    pcntl_waitpid($pid, $status);
                }
            }
        }
        $sent = 0;
        $msgids = [];
        foreach ($reports as $pid => $text) {
            $report = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
            $this->assertSame($pid, $report['pid']);
            $this->assertSame([], $report['errors'], "worker $pid");
            $this->assertSame(['sent' => self::SENDS], $report['statuses'], "worker $pid");
            $this->assertTrue($report['same_token'], "worker $pid inherited the master's token");
            $sent += $report['statuses']['sent'];
            array_push($msgids, ...$report['msgids']);
        }
        foreach (array_keys($pipes) as $pid) {
            // Already reaped above when it had exited: its report was complete.
            $this->assertSame(-1, pcntl_waitpid($pid, $status, WNOHANG), "worker $pid was reaped");
        }

        $this->assertSame($total, $sent);
        $delivered = Shop::delivered($appid, $openid);
        $this->assertCount($total, $delivered, 'the sandbox delivered every message exactly once');
        $this->assertCount($total, array_unique(array_map(fn ($m) => $m['data']['character_string1']['value'], $delivered)));
        $this->assertEqualsCanonicalizing(array_column($delivered, 'msgid'), $msgids);
        $this->assertSame(1, Shop::grantsLeft($appid, $openid), 'WeChat saw each grant used once');
        $this->assertSame(1, $n->ledgerStats($appid, $openid)['total_uses'], 'the ledger agrees');
        $this->assertSame(1, Shop::tokenFetches($appid), 'no token fetch storm');

        // The master's own connections still work after its workers used theirs.
        $this->assertSame('sent', $n->send($appid, 'order_pay_success', Shop::payload($openid, 999_999))->status);
        $this->assertSame(0, Shop::grantsLeft($appid, $openid));
        $this->assertSame(0, $n->ledgerStats($appid, $openid)['total_uses']);
        $this->assertSame(1, Shop::tokenFetches($appid));
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /** @param resource $pipe */
    private function worker($pipe, string $appid, string $openid, int $w, string $token): never
    {
        $code = 1;
        $report = ['pid' => getmypid(), 'statuses' => [], 'errors' => [], 'msgids' => []];
        try {
            $n = Notifier::load();
            $report['same_token'] = $n->accessToken($appid) === $token;
            for ($i = 0; $i < self::SENDS; $i++) {
                try {
                    $o = $n->send($appid, 'order_pay_success', Shop::payload($openid, $w * 10_000 + $i));
                    $report['statuses'][$o->status] = ($report['statuses'][$o->status] ?? 0) + 1;
                    $report['msgids'][] = $o->msgid;
                } catch (\Throwable $e) {
                    $report['errors'][] = get_class($e) . ': ' . $e->getMessage();
                }
            }
            $code = 0;
        } catch (\Throwable $e) {
            $report['errors'][] = get_class($e) . ': ' . $e->getMessage();
        }
        fwrite($pipe, json_encode($report, JSON_THROW_ON_ERROR));
        fclose($pipe);
        // Leave without PHPUnit's output: the parent's result travels on the shared stdout.
        while (ob_get_level() > 0) {
            ob_end_clean();
        }
        exit($code);
    }
}
