<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * php-fpm-like: independent `php` processes, each loading the library itself,
 * send through one SQLite ledger that a seventh party filled.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class ProcessesTest extends TestCase
{
    private const PROCESSES = 8;
    private const SENDS = 100;

    public function testEightPhpProcessesShareOneSqliteLedger(): void
    {
        $dir = sys_get_temp_dir() . '/fashop-notify-procs-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        $db = "$dir/notify.db";
        [$appid, $secret] = Shop::newApp();
        $openid = 'o-procs-buyer';
        $total = self::PROCESSES * self::SENDS;

        // The grant-collection endpoint ran in another process and recorded the taps.
        $n = Notifier::load();
        // One buyer receives every message: more uses than the default cap per template.
        $n->configure(['store' => "sqlite:$db", 'subscribe_cap_per_template' => 10_000]);
        $n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        Shop::grant($n, $appid, $openid, Shop::TPL_PAY_SUCCESS, $total);

        $procs = [];
        $outs = [];
        for ($p = 0; $p < self::PROCESSES; $p++) {
            $pipes = [];
            $procs[$p] = proc_open(
                [PHP_BINARY, '-d', 'ffi.enable=1', __DIR__ . '/fixtures/sender.php', $appid, $secret, $openid, $db, (string) ($p * 10_000), (string) self::SENDS],
                [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => STDERR],
                $pipes
            );
            $outs[$p] = $pipes[1];
        }
        try {
            $texts = Pipes::readAll($outs, 120);
        } catch (\RuntimeException $e) {
            foreach ($procs as $proc) {
                proc_terminate($proc, SIGKILL);
            }
            throw $e;
        }
        $msgids = [];
        foreach ($procs as $p => $proc) {
            $this->assertSame(0, proc_close($proc), "process $p exit status");
            $report = json_decode($texts[$p], true, 512, JSON_THROW_ON_ERROR);
            $this->assertSame([], $report['errors'], "process $p");
            $this->assertSame(['sent' => self::SENDS], $report['statuses'], "process $p");
            array_push($msgids, ...$report['msgids']);
        }
        $delivered = Shop::delivered($appid, $openid);
        $this->assertCount($total, $delivered);
        $this->assertEqualsCanonicalizing(array_column($delivered, 'msgid'), $msgids);
        $this->assertSame(0, Shop::grantsLeft($appid, $openid));
        $this->assertSame(0, $n->ledgerStats($appid, $openid)['total_uses']);
        // One fetch for all processes: the token is shared through the SQLite
        // store, the other processes adopted it (without the store: one each).
        $this->assertSame(1, Shop::tokenFetches($appid));
        // The example /metrics endpoint, in a process of its own, sees every worker's sends.
        $scrape = shell_exec(sprintf(
            'FASHOP_NOTIFY_STORE=%s %s -d ffi.enable=1 %s',
            escapeshellarg("sqlite:$db"),
            escapeshellarg(PHP_BINARY),
            escapeshellarg(Shop::root() . '/examples/php/metrics_endpoint.php')
        ));
        $this->assertIsString($scrape);
        $line = sprintf('fashop_notify_sends_total{appid="%s",event="order_pay_success",status="sent",errcode="0"} %d', $appid, $total);
        $this->assertStringContainsString($line, $scrape);
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }
}
