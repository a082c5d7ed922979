<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\WeChatException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** 43107 (the subscribe capability banned) as a PHP shop meets it. */
final class BannedCapabilityTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        Sandbox::control('DELETE', '/sandbox/faults');
    }

    public function testABannedCapabilityFailsOnceSaysWhatToCheckAndIsCountedApart(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-banned');
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 43107, 'count' => 3]);
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-banned', 1));
            $this->fail('no exception');
        } catch (WeChatException $e) {
            $this->assertSame(43107, $e->getErrcode());
            $this->assertStringContainsString('banned the subscribe-message capability', $e->getMessage());
            $this->assertStringContainsString('mp.weixin.qq.com', $e->getMessage());
            $this->assertSame(1, $e->getOutcome()->attempts, 'not retried');
        }
        Sandbox::control('DELETE', '/sandbox/faults');
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-banned')['total_uses'], 'permit given back');
        $this->assertStringContainsString(
            'fashop_notify_subscribe_banned_total{appid="' . $appid . '",event="order_pay_success"} 1',
            $this->n->metrics()
        );
    }
}
