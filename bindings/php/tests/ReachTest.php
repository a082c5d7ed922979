<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** reachReport from PHP: the counts of real sends through the sandbox, and bad input refused. */
final class ReachTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
    }

    private static function chinaDay(string $shift = 'now'): string
    {
        return (new \DateTimeImmutable($shift, new \DateTimeZone('Asia/Shanghai')))->format('Y-m-d');
    }

    public function testSendsAreCountedByOutcomeWithTheGrantStock(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-reach-buyer', Shop::TPL_PAY_SUCCESS, 3);
        $this->n->send($appid, 'order_pay_success', Shop::payload('o-reach-buyer', 1));
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 40003, 'count' => 1]);
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-reach-buyer', 2));
        } catch (\FaShop\Notify\Exception\WeChatException) {
        }
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-reach-nobody', 3));
        } catch (\FaShop\Notify\Exception\NoPermitException) {
        }
        // From yesterday: a China midnight between the sends and the report moves nothing out of range.
        $report = $this->n->reachReport($appid, self::chinaDay('-1 day'), self::chinaDay());
        $total = $report['events']['order_pay_success']['total'];
        $this->assertSame([1, 1, 1, ['40003' => 1], 2], [$total['sent'], $total['no_permit'], $total['failed'], $total['failed_by_errcode'], $total['not_reached']]);
        $this->assertEqualsWithDelta(1 / 3, $total['reach_rate'], 1e-9);
        $this->assertCount(2, $report['events']['order_pay_success']['days']);
        $this->assertEquals([['template_id' => Shop::TPL_PAY_SUCCESS, 'holders' => 1, 'uses' => 2, 'lapsing_7d' => 0, 'events' => ['order_pay_success']]], $report['grants']);
    }

    public function testBadRangesAndUnknownAppsAreRefused(): void
    {
        $appid = Shop::registered($this->n);
        $cases = [
            [self::chinaDay(), self::chinaDay('-1 day'), 'is after to'],
            [self::chinaDay(), self::chinaDay('+2 days'), 'in the future'],
            [self::chinaDay('-400 days'), self::chinaDay(), 'older than the report keeps'],
            ['2026-02-30', self::chinaDay(), 'YYYY-MM-DD'],
            ['yesterday', self::chinaDay(), 'YYYY-MM-DD'],
        ];
        foreach ($cases as [$from, $to, $why]) {
            try {
                $this->n->reachReport($appid, $from, $to);
                $this->fail("$from..$to was accepted");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($why, $e->getMessage());
            }
        }
        $this->expectException(AppNotConfiguredException::class);
        $this->n->reachReport('wx0000000000000000', self::chinaDay(), self::chinaDay());
    }
}
