<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Admin;
use FaShop\Notify\Admin\FileMappingStore;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** The admin's 服务卡片 choice: an event mapped to a card status, listed, previewed and checked. */
final class AdminCardsTest extends TestCase
{
    private const CARD = ['notify_type' => 2001, 'status' => 4, 'fields' => ['wxa_path_query' => 'pages/order/detail?id={order_id}']];

    private Notifier $n;
    private string $dir;
    private Admin $admin;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->dir = sys_get_temp_dir() . '/fashop-admin-cards-' . bin2hex(random_bytes(6));
        mkdir($this->dir);
        $this->admin = new Admin($this->n, new FileMappingStore($this->dir . '/mapping.json'), $appid);
    }

    protected function tearDown(): void
    {
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            unlink($f);
        }
        rmdir($this->dir);
    }

    public function testAnEventMappedToACardStatusIsSavedListedAndPreviewed(): void
    {
        $saved = $this->admin->saveMapping('order_delivered', ['channel' => 'card', 'card' => self::CARD]);
        $this->assertTrue($saved['ok'], json_encode($saved, JSON_UNESCAPED_UNICODE));
        $this->assertSame(['channel' => 'card', 'card' => self::CARD], $saved['data']['mapping']);
        $events = array_column($this->admin->events()['data']['events'], null, 'event');
        $this->assertSame('enabled', $events['order_delivered']['state']);
        $this->assertSame('card', $events['order_delivered']['channel']);
        $this->assertSame(['notify_type' => 2001, 'status' => 4], $events['order_delivered']['card']);
        $this->assertNull($events['order_delivered']['template_id']);

        $preview = $this->admin->preview('order_delivered');
        $this->assertTrue($preview['ok'], json_encode($preview, JSON_UNESCAPED_UNICODE));
        $this->assertTrue($preview['data']['valid']);
        $this->assertSame(2001, $preview['data']['card']['notify_type']);
        $this->assertSame(['cur_status' => 4, 'wxa_path_query' => 'pages/order/detail?id=10086'], $preview['data']['card']['fields']);
    }

    public function testABadCardIsRefusedWithItsPathAndNothingIsSaved(): void
    {
        $bad = self::CARD;
        $bad['status'] = 42;
        $r = $this->admin->saveMapping('order_delivered', ['channel' => 'card', 'card' => $bad]);
        $this->assertFalse($r['ok']);
        $this->assertStringContainsString('events.order_delivered.card.status', json_encode($r['error'], JSON_UNESCAPED_UNICODE));
        $r = $this->admin->saveMapping('order_delivered', ['channel' => 'card']);
        $this->assertFalse($r['ok']);
        $this->assertStringContainsString('card must be an object', $r['error']['message']);
        $events = array_column($this->admin->events()['data']['events'], null, 'event');
        $this->assertSame('unmapped', $events['order_delivered']['state']);
    }
}
