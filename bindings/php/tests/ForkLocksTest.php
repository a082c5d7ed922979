<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * A forked worker's SQLite connection must hold its own POSIX locks (the WAL
 * index's "dead man switch" byte and the database's shared lock). The kernel
 * does not hand a parent's locks to a child; SQLite's per-process lock
 * bookkeeping, copied by fork, must not make the child skip taking them.
 * Without them, once the forking master exits, the next process to open the
 * file believes it is alone and rebuilds the WAL index under live workers.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class ForkLocksTest extends TestCase
{
    public function testAForkedWorkerHoldsItsOwnSqliteLocks(): void
    {
        $dir = sys_get_temp_dir() . '/fashop-notify-locks-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        $n = Notifier::load();
        $n->configure(['store' => "sqlite:$dir/notify.db"]);
        $appid = Shop::registered($n);
        $n->addPermit($appid, ['openid' => 'o-master', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS]);
        $this->assertTrue(self::holdsLock(getmypid(), "$dir/notify.db-shm"), 'the master holds its lock');

        $pair = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
        $pid = pcntl_fork();
        if ($pid === 0) {
            fclose($pair[0]);
            $n->addPermit($appid, ['openid' => 'o-worker', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS]);
            fwrite($pair[1], json_encode([
                'shm' => self::holdsLock(getmypid(), "$dir/notify.db-shm"),
                'db' => self::holdsLock(getmypid(), "$dir/notify.db"),
            ]));
            fclose($pair[1]);
            while (ob_get_level() > 0) {
                ob_end_clean();
            }
            exit(0);
        }
        fclose($pair[1]);
        $report = json_decode(Pipes::readAll([$pair[0]], 30)[0], true, 512, JSON_THROW_ON_ERROR);
        pcntl_waitpid($pid, $status);
        $this->assertSame(1, $n->ledgerStats($appid, 'o-worker')['total_uses'], "the worker's write landed");
        $this->assertSame(['shm' => true, 'db' => true], $report, 'the worker holds its own locks on notify.db-shm and notify.db');
        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    /** Whether process $pid holds a POSIX lock on $file (from /proc/locks). */
    private static function holdsLock(int $pid, string $file): bool
    {
        $st = stat($file);
        $id = sprintf('%02x:%02x:%d', ($st['dev'] >> 8) & 0xfff, $st['dev'] & 0xff, $st['ino']);
        foreach (file('/proc/locks') ?: [] as $line) {
            // "1: POSIX  ADVISORY  READ 1234 fe:00:5678 128 128"
            $f = preg_split('/\s+/', trim($line));
            if (($f[1] ?? '') === 'POSIX' && (int) ($f[4] ?? 0) === $pid && ($f[5] ?? '') === $id) {
                return true;
            }
        }
        return false;
    }
}
