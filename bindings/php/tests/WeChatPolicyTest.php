<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\WeChatException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** WeChat's per-minute quota and content blacklist as a PHP shop meets them. */
final class WeChatPolicyTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        Sandbox::control('DELETE', '/sandbox/faults');
    }

    public function testMinuteQuotaFailsAtOnceAndSaysWhenToRetry(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-minute');
        $this->n->accessToken($appid);
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 45011, 'count' => 1]);
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-minute', 1));
            $this->fail('no exception');
        } catch (WeChatException $e) {
            $this->assertSame(45011, $e->getErrcode());
            $this->assertStringContainsString('retry from the start of the next minute', $e->getMessage());
            $outcome = $e->getOutcome();
            $this->assertSame(1, $outcome->attempts, 'not retried within the call');
            $this->assertGreaterThan(0, $outcome->retryAfterMs);
            $this->assertLessThanOrEqual(60000, $outcome->retryAfterMs);
        }
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-minute')['total_uses'], 'permit given back');
        $sent = $this->n->send($appid, 'order_pay_success', Shop::payload('o-minute', 1));
        $this->assertSame('sent', $sent->status);
        $this->assertNull($sent->retryAfterMs);
    }

    public function testABlacklistedWordNamesTheFreeTextKeywords(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-black');
        Sandbox::control('POST', '/sandbox/blacklist', ['appid' => $appid, 'words' => ['连衣裙']]);
        try {
            $this->n->send($appid, 'order_pay_success', Shop::payload('o-black', 2));
            $this->fail('no exception');
        } catch (WeChatException $e) {
            $this->assertSame(45168, $e->getErrcode());
            $this->assertStringContainsString('content blacklist', $e->getMessage());
            $this->assertStringContainsString('thing3', $e->getMessage());
            $this->assertSame('failed', $e->getOutcome()->status);
        }
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-black')['total_uses'], 'permit given back');
        $this->assertSame([], Shop::delivered($appid, 'o-black'));
    }
}
