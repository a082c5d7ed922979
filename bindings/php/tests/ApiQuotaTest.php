<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Admin;
use FaShop\Notify\Admin\AdminError;
use FaShop\Notify\Admin\FileMappingStore;
use FaShop\Notify\Admin\Router;
use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\WeChatException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** Notifier::apiQuota against the sandbox's openapi/quota/get, and its bad input. */
final class ApiQuotaTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        Sandbox::control('DELETE', '/sandbox/faults');
    }

    public function testTheSendApisQuotaCountsTheSends(): void
    {
        $appid = Shop::registered($this->n);
        $before = $this->n->apiQuota($appid);
        $this->assertSame('/cgi-bin/message/subscribe/send', $before['cgi_path']);
        $this->assertSame(100000, $before['daily_limit']);
        Shop::grant($this->n, $appid, 'o-quota');
        $this->n->send($appid, 'order_pay_success', Shop::payload('o-quota', 1));
        $after = $this->n->apiQuota($appid, '/cgi-bin/message/subscribe/send');
        $this->assertSame($before['used'] + 1, $after['used']);
        $this->assertSame($after['daily_limit'] - $after['used'], $after['remain']);
    }

    public function testBadInputIsRefusedBeforeAnyCall(): void
    {
        $appid = Shop::registered($this->n);
        foreach ([
            'a full URL' => ['https://api.weixin.qq.com/cgi-bin/token', 'without https://'],
            'no leading slash' => ['cgi-bin/token', "start with one '/'"],
            'a query' => ['/cgi-bin/token?access_token=x', 'without a query'],
            'empty' => ['', 'must not be empty'],
            'NUL' => ["/cgi-bin/token\0", 'NUL'],
            'invalid UTF-8' => ["/cgi-bin/\xff", 'UTF-8'],
        ] as $what => [$path, $words]) {
            try {
                $this->n->apiQuota($appid, $path);
                $this->fail("$what: no exception");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($words, $e->getMessage(), $what);
            }
        }
        $this->expectException(AppNotConfiguredException::class);
        $this->n->apiQuota('wxnotregistered02');
    }

    public function testAnUnknownApiCarriesWeChatsAnswer(): void
    {
        $appid = Shop::registered($this->n);
        try {
            $this->n->apiQuota($appid, '/cgi-bin/no/such/api');
            $this->fail('no exception');
        } catch (WeChatException $e) {
            $this->assertSame(76021, $e->getErrcode());
            $this->assertSame(76021, $e->getAnswer()['errcode']);
        }
    }

    /** The editor's outbox panel reads the send quota through its own route. */
    public function testTheEditorsQuotaRoute(): void
    {
        $appid = Shop::registered($this->n);
        $dir = sys_get_temp_dir() . '/fashop-quota-' . getmypid();
        @mkdir($dir);
        $admin = new Admin($this->n, new FileMappingStore($dir . '/mapping.json'), $appid);
        $router = new Router('s3cret', fn () => $admin, Shop::root() . '/bindings/php/admin/editor.html');
        $a = $router->handle('GET', '/api/outbox/quota', [], '', ['X-Admin-Secret' => 's3cret']);
        $this->assertSame(200, $a['status'], $a['body']);
        $q = json_decode($a['body'], true)['data'];
        $this->assertSame(100000, $q['daily_limit']);
        $this->assertSame($q['daily_limit'] - $q['used'], $q['remain']);
        $unknown = new Admin($this->n, new FileMappingStore($dir . '/mapping.json'), 'wxnotregistered03');
        $r = $unknown->outboxQuota();
        $this->assertFalse($r['ok']);
        $this->assertSame(AdminError::MINI_PROGRAM_NOT_CONFIGURED, $r['error']['code']);
        @unlink($dir . '/mapping.json');
        @rmdir($dir);
    }
}
