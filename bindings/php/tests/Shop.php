<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Notifier;

/** A shop's fixtures on the sandbox: a fresh mini program per test, its buyers' grants, orders. */
final class Shop
{
    public const TPL_PAY_SUCCESS = '_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C';
    public const TPL_DELIVERED = 'Ib27Mxy85v0eqHp2ERuLGQZx3NAcZCf_jCmhQdY7Ez-';

    public static function root(): string
    {
        return dirname(__DIR__, 3);
    }

    public static function library(): string
    {
        return (string) getenv('FASHOP_NOTIFY_LIB');
    }

    /** A new app known to the sandbox: [appid, secret]. */
    public static function newApp(): array
    {
        $appid = 'wx' . bin2hex(random_bytes(8));
        $secret = 'secret-' . bin2hex(random_bytes(8));
        Sandbox::control('POST', '/sandbox/apps', ['appid' => $appid, 'secret' => $secret]);
        return [$appid, $secret];
    }

    /** A new app registered with the library (memory store unless configured otherwise) and the example mappings loaded. */
    public static function registered(Notifier $n): string
    {
        [$appid, $secret] = self::newApp();
        $n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $n->loadMappings($appid, self::mappings());
        return $appid;
    }

    public static function mappings(): string
    {
        return (string) file_get_contents(self::root() . '/examples/mappings.json');
    }

    /** The buyer taps "allow" `$count` times: WeChat (the sandbox) and the ledger both learn it. */
    public static function grant(Notifier $n, string $appid, string $openid, string $templateId = self::TPL_PAY_SUCCESS, int $count = 1): void
    {
        // add_permit takes at most 1000 taps at once; taps add up.
        for ($left = $count; $left > 0; $left -= 1000) {
            $taps = min($left, 1000);
            Sandbox::control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => $templateId, 'count' => $taps]);
            $n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => $templateId, 'count' => $taps]);
        }
    }

    /** @return array<string,mixed> an order's fields, as FaShop reads them from fa_order */
    public static function order(int $i): array
    {
        return [
            'order_id' => $i,
            'order_sn' => sprintf('SN20261123%08d', $i),
            'order_amount' => '199.00',
            'order_total_goods_name' => '秋冬加厚连衣裙 x1',
            'order_total_goods_num' => 1,
            'order_create_time' => 1795426200,
            'pay_time' => 1795426265,
            'express_company' => '顺丰速运',
            'tracking_no' => 'SF1234567890123',
            'delivery_time' => '2026-11-24 09:30:00',
        ];
    }

    /** @return array<string,mixed> */
    public static function payload(string $openid, int $order): array
    {
        return ['touser' => $openid, 'fields' => self::order($order)];
    }

    /** Token fetches the sandbox counted for the app (both endpoints). */
    public static function tokenFetches(string $appid): int
    {
        $c = Sandbox::control('GET', '/sandbox/counters')['counters']['token_fetches'][$appid] ?? [];
        return (int) ($c['token'] ?? 0) + (int) ($c['stable_token'] ?? 0);
    }

    /** @return list<array<string,mixed>> */
    public static function delivered(string $appid, ?string $openid = null): array
    {
        $q = 'appid=' . rawurlencode($appid) . ($openid === null ? '' : '&openid=' . rawurlencode($openid));
        return Sandbox::control('GET', '/sandbox/delivered?' . $q)['messages'];
    }

    public static function grantsLeft(string $appid, string $openid, string $templateId = self::TPL_PAY_SUCCESS): int
    {
        $q = http_build_query(['appid' => $appid, 'openid' => $openid, 'template_id' => $templateId]);
        return (int) Sandbox::control('GET', '/sandbox/grants?' . $q)['left'];
    }
}
