<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\MappingException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** Service cards from PHP against the sandbox: paid and shipped for a buyer with no grant, cardStatus, bad input. */
final class CardsTest extends TestCase
{
    private const MAPPINGS = [
        'version' => 1,
        'events' => [
            'order_pay_success' => ['channel' => 'card', 'card' => ['notify_type' => 2001, 'status' => 1, 'fields' => [
                'wxa_path_query' => 'pages/order/detail?id={order_id}',
                'product_count' => '{order_total_goods_num}',
                'product_list' => '{order_goods}',
            ]]],
            'order_delivered' => ['channel' => 'card', 'card' => ['notify_type' => 2001, 'status' => 4, 'fields' => [
                'wxa_path_query' => 'pages/order/detail?id={order_id}',
            ]]],
        ],
    ];

    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
    }

    /** @return array<string,mixed> */
    private static function payload(string $openid, string $tx, int $payTime): array
    {
        return ['touser' => $openid, 'fields' => [
            'order_sn' => 'SN-PHP-CARD', 'order_id' => 9, 'transaction_id' => $tx,
            'order_amount' => '64.25', 'pay_time' => $payTime, 'order_total_goods_num' => 1,
            'order_goods' => [['title' => '法式碎花连衣裙', 'image' => 'https://img.example/9.png', 'count' => 1, 'price' => '64.25']],
        ]];
    }

    public function testPaidAndShippedShowAsCardStatusesForABuyerWithoutGrants(): void
    {
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->n->loadMappings($appid, self::MAPPINGS);
        $openid = 'o-php-card-buyer';
        $tx = '42000021872026112301152' . random_int(10000, 99999);
        $now = time();
        Sandbox::control('POST', '/sandbox/users', ['appid' => $appid, 'openid' => $openid]);
        Sandbox::control('POST', '/sandbox/payments', [
            'appid' => $appid, 'transaction_id' => $tx, 'openid' => $openid, 'amount' => 6425,
            'pay_time' => $now, 'valid_after_secs' => 0,
        ]);
        $paid = $this->n->send($appid, 'order_pay_success', self::payload($openid, $tx, $now));
        $this->assertSame('applied', $paid->card()['result']);
        $this->assertSame('sent', $paid->status);
        $again = $this->n->send($appid, 'order_pay_success', self::payload($openid, $tx, $now));
        $this->assertSame('duplicate', $again->card()['result'], 'the pay callback retried');
        $shipped = $this->n->send($appid, 'order_delivered', self::payload($openid, $tx, $now));
        $this->assertSame(4, $shipped->card()['status']);
        $card = $this->n->cardStatus($appid, $tx);
        $this->assertSame([1, 4], $card['statuses']);
        $this->assertSame(4, $card['last']);
        $this->assertFalse($card['stopped']);
        $withWeChat = $this->n->cardStatus($appid, $tx, $openid, 2001);
        $this->assertSame(0, $withWeChat['wechat']['code_state']);
        $this->assertSame([], Shop::delivered($appid), 'no subscribe message, no grant needed');
    }

    public function testBadCardInputIsAClearErrorAndChangesNothing(): void
    {
        $appid = Shop::registered($this->n);
        try {
            $this->n->cardStatus($appid, '12345');
            $this->fail('a transaction id that is not one');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('transaction id', $e->getMessage());
        }
        try {
            $this->n->cardStatus('wxnotregistered01', '4200002187202611230115260001');
            $this->fail('an unknown app');
        } catch (AppNotConfiguredException $e) {
            $this->assertStringContainsString('not registered', $e->getMessage());
        }
        $bad = self::MAPPINGS;
        $bad['events']['order_delivered']['card']['status'] = 42;
        try {
            $this->n->loadMappings($appid, $bad);
            $this->fail('a status the card lacks');
        } catch (MappingException $e) {
            $this->assertStringContainsString('events.order_delivered.card.status: card 2001 has no status 42', $e->getMessage());
        }
        $this->n->loadMappings($appid, self::MAPPINGS);
        try {
            $this->n->send($appid, 'order_pay_success', self::payload('o-php-card-x', '2025021211194014791', time()));
            $this->fail('a code that is not a transaction id');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('is not a WeChat Pay transaction id', $e->getMessage());
        }
        $this->assertSame([], $this->n->cardStatus($appid, '4200002187202611230115260009')['statuses']);
    }
}
