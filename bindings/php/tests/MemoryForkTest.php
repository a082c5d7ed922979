<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\StoreException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * The EasySwoole model with the default (memory) store: a master that loaded
 * the library and used its store forks workers. A worker's copy of the
 * parent's records must never be acted on: every store call in the child is a
 * StoreException saying what happened and what to configure, and WeChat (the
 * sandbox) receives nothing twice.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class MemoryForkTest extends TestCase
{
    private const TIMEOUT_SECS = 60;

    public function testForkedFlushersDeliverNoQueuedMessageTwice(): void
    {
        $n = Notifier::load();
        $appid = Shop::registered($n);
        $openid = 'o-memfork-flush';
        Shop::grant($n, $appid, $openid, Shop::TPL_PAY_SUCCESS, 40);
        for ($i = 0; $i < 40; $i++) {
            $n->enqueue($appid, 'order_pay_success', Shop::payload($openid, 7_000 + $i));
        }

        $reports = $this->inChildren(4, function () use ($appid): array {
            $n = Notifier::load();
            $r = $n->flush($appid, 100);
            return ['sent' => $r['sent'] ?? 0];
        });

        $delivered = Shop::delivered($appid, $openid);
        $distinct = count(array_unique(array_map(fn ($m) => $m['data']['character_string1']['value'], $delivered)));
        $this->assertSame(
            [0, 0],
            [count($delivered), $distinct],
            sprintf('forked flushers delivered %d messages, %d distinct', count($delivered), $distinct)
        );
        foreach ($reports as $pid => $r) {
            $this->assertRefusedForFork($r, "flusher $pid");
        }

        // The parent still owns its records: its flush delivers each message once.
        $report = $n->flush($appid, 100);
        $this->assertSame(40, $report['sent']);
        $delivered = Shop::delivered($appid, $openid);
        $this->assertCount(40, $delivered);
        $this->assertCount(40, array_unique(array_map(fn ($m) => $m['data']['character_string1']['value'], $delivered)));
    }

    public function testTwoForkedChildrenSendingOneOrderDeliverItNeverTwice(): void
    {
        $n = Notifier::load();
        $appid = Shop::registered($n);
        $openid = 'o-memfork-send';
        Shop::grant($n, $appid, $openid, Shop::TPL_PAY_SUCCESS, 2);

        $reports = $this->inChildren(2, function () use ($appid, $openid): array {
            $n = Notifier::load();
            return ['status' => $n->send($appid, 'order_pay_success', Shop::payload($openid, 8_001))->status];
        });

        $this->assertCount(0, Shop::delivered($appid, $openid), 'the order was delivered by a forked child');
        foreach ($reports as $pid => $r) {
            $this->assertRefusedForFork($r, "sender $pid");
        }
        // A child may switch to a shared store of its own: the parent's records stay with the parent.
        $dir = sys_get_temp_dir() . '/fashop-notify-memfork-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        $reports = $this->inChildren(1, function () use ($dir): array {
            $n = Notifier::load();
            $n->configure(['store' => "sqlite:$dir/notify.db"]);
            return ['stats' => $n->outboxStats()];
        });
        $this->assertSame([], array_values($reports)[0]['error'] ?? [], 'a forked child configures a shared store');
        $this->assertSame('sent', $n->send($appid, 'order_pay_success', Shop::payload($openid, 8_001))->status);
        $this->assertCount(1, Shop::delivered($appid, $openid));
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /** @param array<string,mixed> $report */
    private function assertRefusedForFork(array $report, string $who): void
    {
        $this->assertSame(StoreException::class, $report['error'][0] ?? null, "$who was not refused: " . json_encode($report));
        $message = $report['error'][1];
        $this->assertStringContainsString('forked from it', $message);
        $this->assertStringContainsString('"sqlite:', $message);
        $this->assertStringContainsString('redis://', $message);
    }

    /**
     * Runs `$work` in `$count` forked children at once.
     *
     * @param callable():array<string,mixed> $work
     * @return array<int,array<string,mixed>> each child's report (its result, or `error`: [class, message]) by pid
     */
    private function inChildren(int $count, callable $work): array
    {
        $pipes = [];
        for ($c = 0; $c < $count; $c++) {
            $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
            $pid = pcntl_fork();
            $this->assertNotSame(-1, $pid, 'fork failed');
            if ($pid === 0) {
                fclose($pair[0]);
                try {
                    $report = $work();
                } catch (\Throwable $e) {
                    $report = ['error' => [get_class($e), $e->getMessage()]];
                }
                fwrite($pair[1], json_encode($report, JSON_THROW_ON_ERROR));
                fclose($pair[1]);
                while (ob_get_level() > 0) {
                    ob_end_clean();
                }
                exit(0);
            }
            fclose($pair[1]);
            $pipes[$pid] = $pair[0];
        }
        try {
            $texts = Pipes::readAll($pipes, self::TIMEOUT_SECS);
        } finally {
            foreach (array_keys($pipes) as $pid) {
                if (pcntl_waitpid($pid, $status, WNOHANG) === 0) {
                    posix_kill($pid, SIGKILL);
                }
                pcntl_waitpid($pid, $status);
            }
        }
        return array_map(fn ($t) => json_decode($t, true, 512, JSON_THROW_ON_ERROR), $texts);
    }
}
