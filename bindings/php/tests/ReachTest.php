<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Admin;
use FaShop\Notify\Admin\FileMappingStore;
use FaShop\Notify\Admin\Reasons;
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

    public function testTheAdminPanelShowsTheSameCountsWithChineseReasons(): void
    {
        $appid = Shop::registered($this->n);
        $file = tempnam(sys_get_temp_dir(), 'reach-mapping');
        file_put_contents($file, Shop::mappings());
        $admin = new Admin($this->n, new FileMappingStore($file), $appid);
        Shop::grant($this->n, $appid, 'o-reach-admin', Shop::TPL_PAY_SUCCESS, 1);
        $this->n->send($appid, 'order_pay_success', Shop::payload('o-reach-admin', 1));
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 40037, 'count' => 1]);
        Shop::grant($this->n, $appid, 'o-reach-admin', Shop::TPL_PAY_SUCCESS, 1);
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-reach-admin', 2));
        } catch (\FaShop\Notify\Exception\WeChatException) {
        }
        $r = $admin->reach(['from' => self::chinaDay('-1 day'), 'to' => self::chinaDay()]);
        unlink($file);
        $this->assertTrue($r['ok'], json_encode($r, JSON_UNESCAPED_UNICODE));
        [$pay] = $r['data']['events'];
        $this->assertSame(['order_pay_success', 1, 1], [$pay['event'], $pay['total']['sent'], $pay['total']['not_reached']]);
        $this->assertSame('模板已被删除，请在编辑器中重新选择', $pay['total']['reasons'][0]['text']);
        $this->assertSame('invalid template_id', $pay['total']['reasons'][0]['wechat']);
        [$stock] = $r['data']['grants'];
        $this->assertSame([Shop::TPL_PAY_SUCCESS, 1, 1, true], [$stock['template_id'], $stock['holders'], $stock['uses'], $stock['low']]);
        $this->assertStringContainsString('仅 1 位买家允许', $stock['hint']);
        $bad = $admin->reach(['from' => 'soon', 'to' => self::chinaDay()]);
        $this->assertSame('invalid_request', $bad['error']['code']);
    }

    public function testReasonsKeepWeChatsTextBesideTheOwnersWords(): void
    {
        $this->assertSame('买家未授权此模板（没有允许这条通知，或允许的次数已用完）', Reasons::of('no_permit')['text']);
        $this->assertSame('user refuse to accept the msg', Reasons::of('refused', 43101)['wechat']);
        $this->assertSame('小程序未发布该页面，请检查通知的跳转页面', Reasons::of('failed', 41030)['text']);
        $this->assertSame('微信拒绝了这条通知（错误码 12345）', Reasons::of('failed', 12345)['text']);
        $letter = Reasons::ofLetter('dead', 40003, 'invalid openid rid: 6565-abc');
        $this->assertSame(['买家的 openid 无效（不是本小程序的用户）', 'invalid openid rid: 6565-abc'], [$letter['text'], $letter['wechat']]);
        $this->assertSame(Reasons::of('no_permit')['text'], Reasons::ofLetter('dead', 0, 'no usable permit for this user')['text']);
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
