<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\MappingException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** enqueue / flush / outboxStats / outboxRequeue / outboxDrop from PHP against the sandbox. */
final class OutboxTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
    }

    public function testQueuedNoticesGoOutOnceAtTheFlush(): void
    {
        $appid = Shop::registered($this->n);
        $openid = 'o-outbox-buyer';
        Shop::grant($this->n, $appid, $openid, Shop::TPL_PAY_SUCCESS, 3);
        $ids = [];
        for ($i = 1; $i <= 3; $i++) {
            $q = $this->n->enqueue($appid, 'order_pay_success', Shop::payload($openid, $i));
            $this->assertFalse($q['duplicate']);
            $ids[] = $q['id'];
        }
        $again = $this->n->enqueue($appid, 'order_pay_success', Shop::payload($openid, 1));
        $this->assertTrue($again['duplicate'], 'a repeated pay notify queues nothing');
        $this->assertSame($ids[0], $again['id']);
        $this->assertSame([], Shop::delivered($appid), 'enqueue does no network');
        $stats = $this->n->outboxStats($appid);
        $this->assertSame(3, $stats['pending']);
        $this->assertSame(3, $stats['due']);

        $report = $this->n->flush($appid, 10);
        $this->assertSame(3, $report['sent']);
        $this->assertCount(3, Shop::delivered($appid, $openid));
        $this->assertSame(0, $this->n->flush($appid, 10)['sent']);
        $stats = $this->n->outboxStats($appid);
        $this->assertSame(0, $stats['pending']);
        $this->assertSame(3, $stats['sent']);
        $this->assertSame(3, $stats['by_event']['order_pay_success']['sent']);
    }

    public function testDeadLettersAreListedRequeuedAndDropped(): void
    {
        $appid = Shop::registered($this->n);
        $openid = 'o-outbox-dead';
        Shop::grant($this->n, $appid, $openid, Shop::TPL_PAY_SUCCESS, 1);
        $first = $this->n->enqueue($appid, 'order_pay_success', Shop::payload($openid, 1))['id'];
        $second = $this->n->enqueue($appid, 'order_pay_success', Shop::payload($openid, 2))['id'];
        // WeChat refuses the first for good (invalid openid): a dead letter at once.
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 40003, 'count' => 1]);
        $report = $this->n->flush($appid, 1);
        $this->assertSame(1, $report['dead']);
        $dead = $this->n->outboxStats($appid)['dead_letters'];
        $this->assertCount(1, $dead);
        $this->assertSame($first, $dead[0]['id']);
        $this->assertSame(40003, $dead[0]['errcode']);

        $this->n->outboxRequeue($appid, $first);
        $this->assertSame([], $this->n->outboxStats($appid)['dead_letters']);
        $this->n->outboxDrop($appid, $second);
        $this->assertSame(1, $this->n->outboxStats($appid)['pending']);
        $this->assertSame(1, $this->n->flush($appid, 10)['sent'], 'the requeued message goes out with the grant that was given back');
        $this->assertSame(0, $this->n->outboxStats($appid)['pending']);
        $delivered = Shop::delivered($appid, $openid);
        $this->assertCount(1, $delivered);
        $this->assertSame(Shop::payload($openid, 1)['fields']['order_sn'], $delivered[0]['data']['character_string1']['value']);

        foreach ([fn () => $this->n->outboxRequeue($appid, 0), fn () => $this->n->outboxDrop($appid, 999999), fn () => $this->n->outboxRequeue($appid, $first)] as $call) {
            try {
                $call();
                $this->fail('no exception');
            } catch (InvalidArgumentException $e) {
                $this->assertNotSame('', $e->getMessage());
            }
        }
    }

    public function testBadNoticesFailAtEnqueue(): void
    {
        $appid = Shop::registered($this->n);
        $this->expectException(MappingException::class);
        $this->expectExceptionMessage('order_sn');
        $payload = Shop::payload('o-outbox-bad', 1);
        unset($payload['fields']['order_sn']);
        $this->n->enqueue($appid, 'order_pay_success', $payload);
    }
}
