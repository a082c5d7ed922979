<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\MappingException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * Every string the library hands back is freed: 100,000 calls that return one
 * leave PHP's heap and the process RSS where they were after warm-up.
 */
final class LeakTest extends TestCase
{
    private const CALLS = 100_000;
    private const WARM_UP = 5_000;
    /** A leak of the ~400-byte rendered body would grow RSS by ~38 MiB; allocator noise stays far below this. */
    private const RSS_TOLERANCE_KIB = 1024;
    private const HEAP_TOLERANCE_BYTES = 16 * 1024;

    public static function rssKib(): int
    {
        preg_match('/^VmRSS:\s+(\d+) kB$/m', (string) file_get_contents('/proc/self/status'), $m);
        return (int) $m[1];
    }

    public function testHundredThousandCallsReturningStringsLeakNothing(): void
    {
        $n = Notifier::load();
        $appid = Shop::registered($n);
        $payload = Shop::payload('o-leak', 1);
        $bytes = 0;
        for ($i = 0; $i < self::WARM_UP; $i++) {
            $bytes += strlen(json_encode($n->render($appid, 'order_pay_success', $payload)));
        }
        gc_collect_cycles();
        $heap0 = memory_get_usage();
        $rss0 = self::rssKib();
        for ($i = 0; $i < self::CALLS; $i++) {
            $body = $n->render($appid, 'order_pay_success', $payload);
            $bytes += count($body);
        }
        gc_collect_cycles();
        $heap1 = memory_get_usage();
        $rss1 = self::rssKib();
        fwrite(STDERR, sprintf(
            "\n[leak] %d render calls: heap %d -> %d bytes (%+d), VmRSS %d -> %d KiB (%+d)\n",
            self::CALLS, $heap0, $heap1, $heap1 - $heap0, $rss0, $rss1, $rss1 - $rss0
        ));
        $this->assertGreaterThan(self::CALLS, $bytes);
        $this->assertLessThan(self::HEAP_TOLERANCE_BYTES, $heap1 - $heap0, 'PHP heap grew');
        $this->assertLessThan(self::RSS_TOLERANCE_KIB, $rss1 - $rss0, 'process RSS grew: strings not freed?');
    }

    public function testFailingCallsLeakNothingEither(): void
    {
        $n = Notifier::load();
        $appid = Shop::registered($n);
        $bad = ['touser' => 'o-leak', 'fields' => ['order_sn' => str_repeat('SN', 200)]];
        $fail = static function () use ($n, $appid, $bad): int {
            try {
                $n->render($appid, 'order_pay_success', $bad);
            } catch (MappingException $e) {
                return strlen($e->getMessage());
            }
            return 0;
        };
        for ($i = 0; $i < self::WARM_UP; $i++) {
            $fail();
        }
        gc_collect_cycles();
        $heap0 = memory_get_usage();
        $rss0 = self::rssKib();
        $chars = 0;
        for ($i = 0; $i < 20_000; $i++) {
            $chars += $fail();
            $chars += count($n->listApps());
        }
        gc_collect_cycles();
        $heap1 = memory_get_usage();
        $rss1 = self::rssKib();
        fwrite(STDERR, sprintf("[leak] 20000 failed renders + 20000 listApps: heap %+d bytes, VmRSS %+d KiB\n", $heap1 - $heap0, $rss1 - $rss0));
        $this->assertGreaterThan(20_000, $chars);
        $this->assertLessThan(self::HEAP_TOLERANCE_BYTES, $heap1 - $heap0);
        $this->assertLessThan(self::RSS_TOLERANCE_KIB, $rss1 - $rss0);
    }
}
