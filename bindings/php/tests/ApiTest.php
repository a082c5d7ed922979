<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InternalException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\MappingException;
use FaShop\Notify\Exception\NetworkException;
use FaShop\Notify\Exception\NoPermitException;
use FaShop\Notify\Exception\NotifyException;
use FaShop\Notify\Exception\StoreException;
use FaShop\Notify\Exception\UncertainDeliveryException;
use FaShop\Notify\Exception\WeChatException;
use FaShop\Notify\Notifier;
use FaShop\Notify\SendOutcome;
use FaShop\Notify\Status;
use PHPUnit\Framework\TestCase;

/** Every method of the package against the sandbox, and every exception class from a real cause. */
final class ApiTest extends TestCase
{
    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        Sandbox::control('DELETE', '/sandbox/faults');
    }

    /**
     * @template T of \Throwable
     * @param class-string<T> $class
     * @return T
     */
    private function thrown(string $class, callable $call): \Throwable
    {
        try {
            $call();
        } catch (\Throwable $e) {
            $this->assertInstanceOf($class, $e, $e->getMessage());
            $this->assertInstanceOf(NotifyException::class, $e);
            $this->assertNotSame('', $e->getMessage());
            return $e;
        }
        $this->fail("no $class thrown");
    }

    public function testAppsRegisterOnceListWithoutSecretAndUnregister(): void
    {
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $token = $this->n->accessToken($appid);
        // The shop registers on every request: the same secret keeps the cached token.
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->assertSame($token, $this->n->accessToken($appid));
        $this->assertSame(1, Shop::tokenFetches($appid));

        $apps = array_column($this->n->listApps(), null, 'appid');
        $this->assertSame('stable', $apps[$appid]['token_mode']);
        $this->assertTrue($apps[$appid]['token']['cached']);
        $listed = json_encode($apps, JSON_THROW_ON_ERROR);
        $this->assertStringNotContainsString($secret, $listed);
        $this->assertStringNotContainsString($token, $listed);
        $this->assertSame('', $this->n->lastError());

        $this->n->unregisterApp($appid);
        $this->assertArrayNotHasKey($appid, array_column($this->n->listApps(), null, 'appid'));
        $e = $this->thrown(AppNotConfiguredException::class, fn () => $this->n->unregisterApp($appid));
        $this->assertSame(Status::APP_NOT_CONFIGURED, $e->getStatus());
        $this->assertStringContainsString($appid, $e->getMessage());
        $this->assertSame($e->getMessage(), $this->n->lastError());
        foreach ([
            fn () => $this->n->send($appid, 'order_pay_success', Shop::payload('o-x', 1)),
            fn () => $this->n->render($appid, 'order_pay_success', Shop::payload('o-x', 1)),
            fn () => $this->n->accessToken($appid),
            fn () => $this->n->addPermit($appid, ['openid' => 'o-x', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS]),
            fn () => $this->n->callApi($appid, 'GET', '/wxaapi/newtmpl/gettemplate'),
        ] as $call) {
            $this->thrown(AppNotConfiguredException::class, $call);
        }
    }

    public function testEventCatalogListsTheFiveOrderEvents(): void
    {
        $catalog = json_encode($this->n->eventCatalog(), JSON_THROW_ON_ERROR);
        foreach (['order_pay_success', 'order_pay_fail', 'order_cancel', 'order_refund_apply', 'order_delivered'] as $event) {
            $this->assertStringContainsString("\"$event\"", $catalog);
        }
    }

    public function testMappingsLoadAllOrNothingAndNameTheJsonPath(): void
    {
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $doc = json_decode(Shop::mappings(), true, 512, JSON_THROW_ON_ERROR);
        $this->n->loadMappings($appid, $doc);
        $loaded = $this->n->getMappings($appid);
        $this->assertSame(Shop::TPL_PAY_SUCCESS, $loaded['events']['order_pay_success']['template_id']);
        $this->n->loadMappings($appid, Shop::mappings()); // as JSON text too

        $bad = $doc;
        $bad['events']['order_pay_success']['data']['thing3'] = '{no_such_field}';
        $bad['events']['order_delivered']['template_id'] = 'changed';
        $e = $this->thrown(MappingException::class, fn () => $this->n->loadMappings($appid, $bad));
        $this->assertSame(Status::MAPPING_ERROR, $e->getStatus());
        $this->assertStringContainsString('events.order_pay_success.data.thing3', $e->getMessage());
        $this->assertSame($loaded, $this->n->getMappings($appid), 'a bad document changes nothing');

        unset($doc['events']['order_cancel']);
        $this->n->loadMappings($appid, $doc);
        $e = $this->thrown(MappingException::class, fn () => $this->n->render($appid, 'order_cancel', Shop::payload('o-x', 1)));
        $this->assertStringContainsString('order_cancel', $e->getMessage());
        $e = $this->thrown(MappingException::class, fn () => $this->n->send($appid, 'order_pay_success', ['touser' => 'o-x', 'fields' => ['order_sn' => 'SN1']]));
        $this->assertStringContainsString('order_amount', $e->getMessage());
        $this->thrown(InvalidArgumentException::class, fn () => $this->n->loadMappings($appid, '{"version": 1, "events": '));
    }

    public function testPermitsAreCountedOnceAndPurged(): void
    {
        $appid = Shop::registered($this->n);
        $this->n->addPermit($appid, ['openid' => 'o-a', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS, 'count' => 2]);
        $form = ['openid' => 'o-a', 'kind' => 'form_id', 'value' => 'form-' . bin2hex(random_bytes(4))];
        $this->n->addPermit($appid, $form);
        $this->n->addPermit($appid, $form); // the same form_id twice is stored once
        $this->n->addPermit($appid, ['openid' => 'o-b', 'kind' => 'subscribe', 'template_id' => Shop::TPL_DELIVERED]);

        $a = $this->n->ledgerStats($appid, 'o-a');
        $this->assertSame(2, $a['subscribe']['uses']);
        $this->assertSame(1, $a['form_id']['uses']);
        $this->assertSame(3, $a['total_uses']);
        $this->assertSame(4, $this->n->ledgerStats($appid)['total_uses']);
        $this->assertSame(0, $this->n->ledgerPurge($appid)['removed'], 'nothing has expired');

        $e = $this->thrown(InvalidArgumentException::class, fn () => $this->n->addPermit($appid, ['openid' => 'o-a', 'kind' => 'coupon']));
        $this->assertInstanceOf(\InvalidArgumentException::class, $e);
        $this->thrown(InvalidArgumentException::class, fn () => $this->n->addPermit($appid, ['openid' => 'o-a', 'kind' => 'form_id', 'value' => 'the formId is a mock one']));
        $this->assertSame(4, $this->n->ledgerStats($appid)['total_uses'], 'rejected permits are not stored');
    }

    public function testRenderIsThePreviewAndConsumesNothing(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-r');
        $body = $this->n->render($appid, 'order_pay_success', Shop::payload('o-r', 7));
        $this->assertSame('o-r', $body['touser']);
        $this->assertSame(Shop::TPL_PAY_SUCCESS, $body['template_id']);
        $this->assertSame('¥199.00', $body['data']['amount2']['value']);
        $this->assertSame('pages/order/detail?id=7', $body['page']);
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-r')['total_uses']);
        $this->assertSame([], Shop::delivered($appid));
        $this->assertSame(0, Shop::tokenFetches($appid), 'no network');
    }

    public function testSendDeliversOnceAndReportsATypedOutcome(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-s', Shop::TPL_PAY_SUCCESS, 2);
        $o = $this->n->send($appid, 'order_pay_success', Shop::payload('o-s', 1));
        $this->assertInstanceOf(SendOutcome::class, $o);
        $this->assertSame('sent', $o->status);
        $this->assertTrue($o->delivered());
        $this->assertSame(0, $o->errcode);
        $this->assertSame(1, $o->attempts);
        $this->assertSame(['kind' => 'subscribe', 'remaining' => 1], $o->permit);
        $this->assertSame("$appid:order_pay_success:o-s:SN2026112300000001", $o->idempotencyKey);
        $got = Shop::delivered($appid, 'o-s');
        $this->assertCount(1, $got);
        $this->assertSame($o->msgid, $got[0]['msgid']);
        $this->assertSame('SN2026112300000001', $got[0]['data']['character_string1']['value']);

        // The pay notify retried by WeChat Pay: the same order sends nothing again.
        $again = $this->n->send($appid, 'order_pay_success', Shop::payload('o-s', 1));
        $this->assertSame('duplicate', $again->status);
        $this->assertTrue($again->delivered());
        $this->assertCount(1, Shop::delivered($appid, 'o-s'));
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-s')['total_uses']);
    }

    public function testNoPermitCarriesTheOutcome(): void
    {
        $appid = Shop::registered($this->n);
        $e = $this->thrown(NoPermitException::class, fn () => $this->n->send($appid, 'order_delivered', Shop::payload('o-none', 1)));
        $this->assertSame(Status::NO_PERMIT, $e->getStatus());
        $this->assertNotNull($e->getOutcome());
        $this->assertSame('no_permit', $e->getOutcome()->status);
        $this->assertFalse($e->getOutcome()->delivered());
        $this->assertSame("$appid:order_delivered:o-none:SN2026112300000001", $e->getOutcome()->idempotencyKey);
        $this->assertSame([], Shop::delivered($appid));
    }

    public function testWeChatErrorCarriesTheErrcodeAndGivesThePermitBack(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-w');
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 40037, 'count' => 1]);
        $e = $this->thrown(WeChatException::class, fn () => $this->n->send($appid, 'order_pay_success', Shop::payload('o-w', 1)));
        $this->assertSame(40037, $e->getErrcode());
        $this->assertSame(Status::WECHAT_ERROR, $e->getStatus());
        $this->assertSame('failed', $e->getOutcome()->status);
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-w')['total_uses'], 'permit given back');
        // and it works once WeChat does
        $this->assertSame('sent', $this->n->send($appid, 'order_pay_success', Shop::payload('o-w', 1))->status);

        // callApi: WeChat's answer comes with the exception.
        $e = $this->thrown(WeChatException::class, fn () => $this->n->callApi($appid, 'POST', '/wxaapi/newtmpl/deltemplate', ['priTmplId' => 'no-such-template']));
        $this->assertSame(20001, $e->getErrcode());
        $this->assertSame(20001, $e->getAnswer()['errcode']);
        $this->assertNull($e->getOutcome());
    }

    public function testUncertainDeliveryWhenTheAnswerIsLost(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-u', Shop::TPL_PAY_SUCCESS, 2);
        $this->n->accessToken($appid); // the fault must hit the send, not the token fetch
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'close_after_read' => true, 'count' => 1]);
        $e = $this->thrown(UncertainDeliveryException::class, fn () => $this->n->send($appid, 'order_pay_success', Shop::payload('o-u', 1)));
        $this->assertSame(Status::UNCERTAIN, $e->getStatus());
        $this->assertSame('uncertain', $e->getOutcome()->status);
        $this->assertCount(1, Shop::delivered($appid, 'o-u'), 'the sandbox did deliver it');
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-u')['total_uses'], 'the permit counts as used');
    }

    public function testNetworkErrorWhenWeChatCannotBeReached(): void
    {
        // A port nobody listens on: bind one, note it, close it.
        $server = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int) substr((string) strrchr(stream_socket_get_name($server, false), ':'), 1);
        fclose($server);
        $appid = 'wx' . bin2hex(random_bytes(8));
        $this->n->registerApp(['appid' => $appid, 'secret' => 's', 'api_base' => "http://127.0.0.1:$port"]);
        $e = $this->thrown(NetworkException::class, fn () => $this->n->accessToken($appid));
        $this->assertSame(Status::NETWORK_ERROR, $e->getStatus());
        $this->n->unregisterApp($appid);
    }

    /**
     * The store is chosen once per process (before the first permit), so this runs in its own.
     *
     * @runInSeparateProcess
     * @preserveGlobalState disabled
     */
    public function testStoreErrorForAnUnopenableSqlitePath(): void
    {
        $file = tempnam(sys_get_temp_dir(), 'notify');
        try {
            // a directory under a regular file can never be created
            $e = $this->thrown(StoreException::class, fn () => $this->n->configure(['store' => "sqlite:$file/sub/notify.db"]));
            $this->assertSame(Status::STORE_ERROR, $e->getStatus());
            $this->assertStringContainsString("$file/sub/notify.db", $e->getMessage());
        } finally {
            unlink($file);
        }
        // the process's first configure failed: store and network calls are refused
        // (they would go to the memory store and lose the grant at exit)
        $appid = Shop::registered($this->n);
        $permit = ['openid' => 'o-st', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS];
        $e = $this->thrown(StoreException::class, fn () => $this->n->addPermit($appid, $permit));
        $this->assertStringStartsWith('add_permit: ', $e->getMessage());
        $this->assertStringContainsString('configure failed', $e->getMessage());
        $this->assertStringContainsString("$file/sub/notify.db", $e->getMessage());
        $this->thrown(StoreException::class, fn () => $this->n->enqueue($appid, 'order_pay_success', Shop::payload('o-st', 1)));
        // until a configure succeeds
        $this->n->configure(['store' => 'memory']);
        $this->n->addPermit($appid, $permit);
        $this->assertSame(1, $this->n->ledgerStats($appid, 'o-st')['total_uses']);
    }

    public function testInternalStatusMapsToInternalException(): void
    {
        // A panic caught at the boundary cannot be caused from outside; the mapping is checked directly.
        $check = new \ReflectionMethod(Notifier::class, 'check');
        $e = $this->thrown(InternalException::class, fn () => $check->invoke($this->n, Status::INTERNAL));
        $this->assertSame(Status::INTERNAL, $e->getStatus());
        $classes = [];
        foreach (Status::all() as $name => $status) {
            if ($status === Status::OK) {
                continue;
            }
            try {
                $check->invoke($this->n, $status);
            } catch (NotifyException $e) {
                $this->assertSame($status, $e->getStatus(), $name);
                $classes[$name] = get_class($e);
            }
        }
        $this->assertCount(9, array_unique($classes), 'one class per status');
    }

    public function testTokensSharedWithAnotherClient(): void
    {
        $appid = Shop::registered($this->n);
        $token = $this->n->accessToken($appid);
        $this->assertSame(136, strlen($token));
        $this->n->invalidateToken($appid, 'some-older-token');
        $this->assertSame($token, $this->n->accessToken($appid), 'a report about another token keeps this one');
        $this->assertSame(1, Shop::tokenFetches($appid));
        $this->n->invalidateToken($appid, $token);
        $this->n->accessToken($appid);
        $this->assertSame(2, Shop::tokenFetches($appid));

        // external mode: the host (EasyWeChat) owns the token
        $ext = 'wx' . bin2hex(random_bytes(8));
        $this->n->registerApp(['appid' => $ext, 'token_mode' => 'external', 'api_base' => Sandbox::url()]);
        $e = $this->thrown(AppNotConfiguredException::class, fn () => $this->n->accessToken($ext));
        $this->assertStringContainsString('set_access_token', $e->getMessage());
        $this->n->setAccessToken($ext, 'token-from-easywechat', 7200);
        $this->assertSame('token-from-easywechat', $this->n->accessToken($ext));
        $this->thrown(InvalidArgumentException::class, fn () => $this->n->setAccessToken($ext, '', 7200));
        $this->assertSame(0, Shop::tokenFetches($ext));
    }

    public function testCallApiListsTheTemplates(): void
    {
        $appid = Shop::registered($this->n);
        $list = $this->n->callApi($appid, 'GET', '/wxaapi/newtmpl/gettemplate');
        $ids = array_column($list['data'], 'priTmplId');
        $this->assertContains(Shop::TPL_PAY_SUCCESS, $ids);
        $this->assertContains(Shop::TPL_DELIVERED, $ids);
        $added = $this->n->callApi($appid, 'POST', '/wxaapi/newtmpl/addtemplate', ['tid' => 1754, 'kidList' => [1, 2, 3], 'sceneDesc' => '支付成功']);
        $this->assertSame(0, $added['errcode']);
        $this->assertContains($added['priTmplId'], array_column($this->n->callApi($appid, 'GET', '/wxaapi/newtmpl/gettemplate')['data'], 'priTmplId'));
    }

    public function testMetricsInBothFormats(): void
    {
        $appid = Shop::registered($this->n);
        Shop::grant($this->n, $appid, 'o-m');
        $this->n->send($appid, 'order_pay_success', Shop::payload('o-m', 1));
        $text = $this->n->metrics();
        $this->assertMatchesRegularExpression('/^fashop_notify_sends_total\{appid="' . $appid . '",event="order_pay_success",status="sent"[^}]*\} 1$/m', $text);
        $json = json_decode($this->n->metrics('json'), true, 512, JSON_THROW_ON_ERROR);
        $this->assertArrayHasKey('fashop_notify_sends_total', $json);
        $this->thrown(InvalidArgumentException::class, fn () => $this->n->metrics('xml'));
    }

    public function testBadInputFromPhpIsRefusedWithAClearError(): void
    {
        // Settings that worked first: the bad configure below then keeps them
        // (a process whose first configure failed refuses store and network calls).
        $this->n->configure(['timeout_ms' => 5000]);
        $appid = Shop::registered($this->n);
        foreach ([
            'NUL in appid' => fn () => $this->n->render("wx\0x", 'order_pay_success', Shop::payload('o', 1)),
            'NUL in event' => fn () => $this->n->send($appid, "order_pay_success\0", Shop::payload('o', 1)),
            'NUL in openid' => fn () => $this->n->ledgerStats($appid, "o\0x"),
            'NUL in token' => fn () => $this->n->setAccessToken($appid, "t\0x", 60),
            'NUL in path' => fn () => $this->n->callApi($appid, 'GET', "/wxaapi\0"),
            'NUL in mapping text' => fn () => $this->n->loadMappings($appid, "{\0}"),
            'invalid UTF-8 in an argument' => fn () => $this->n->invalidateToken($appid, "t\xc3\x28"),
            'invalid UTF-8 in an event' => fn () => $this->n->render($appid, "order\xff", Shop::payload('o', 1)),
            'invalid UTF-8 in mapping text' => fn () => $this->n->loadMappings($appid, "{\"version\": \"\xff\"}"),
            'not JSON' => fn () => $this->n->loadMappings($appid, 'not json'),
            'wrong type' => fn () => $this->n->configure(['timeout_ms' => 'soon']),
            'wrong payload type' => fn () => $this->n->render($appid, 'order_pay_success', ['touser' => 42, 'fields' => Shop::order(1)]),
            'unknown method' => fn () => $this->n->callApi($appid, 'PATCH', '/wxaapi/newtmpl/gettemplate'),
            'flush count' => fn () => $this->n->flush(null, -1),
        ] as $what => $call) {
            try {
                $call();
                $this->fail("$what: no exception");
            } catch (InvalidArgumentException $e) {
                $this->assertInstanceOf(\InvalidArgumentException::class, $e, $what);
                $this->assertSame(Status::INVALID_ARGUMENT, $e->getStatus(), $what);
                $this->assertNotSame('', $e->getMessage(), $what);
            }
        }
        // Values PHP cannot encode as JSON: the JsonException is kept as the cause.
        // The message names the call and the field.
        foreach ([
            'invalid UTF-8 in a field' => [['touser' => 'o', 'fields' => ['order_sn' => "SN\xff"]], "\$payload['fields']['order_sn']"],
            'NAN' => [['touser' => 'o', 'fields' => ['order_amount' => NAN]], "\$payload['fields']['order_amount']"],
            'INF' => [['touser' => 'o', 'fields' => ['order_amount' => INF]], "\$payload['fields']['order_amount']"],
            'a resource' => [['touser' => 'o', 'fields' => ['order_sn' => STDIN]], "\$payload['fields']['order_sn']"],
        ] as $what => [$payload, $field]) {
            $e = $this->thrown(InvalidArgumentException::class, fn () => $this->n->send($appid, 'order_pay_success', $payload));
            $this->assertInstanceOf(\JsonException::class, $e->getPrevious(), $what);
            $this->assertStringStartsWith("send: $field cannot be encoded as JSON", $e->getMessage(), $what);
        }
        $e = $this->thrown(InvalidArgumentException::class, fn () => $this->n->enqueue($appid, 'order_pay_success', ['touser' => 'o', 'fields' => ['goods' => ['name' => "\xc3"]]]));
        $this->assertStringStartsWith("enqueue: \$payload['fields']['goods']['name'] cannot be encoded as JSON", $e->getMessage());
        $this->assertSame([], Shop::delivered($appid), 'nothing was sent');
        $this->assertSame(0, $this->n->ledgerStats($appid)['total_uses']);
        $this->assertSame(Shop::TPL_PAY_SUCCESS, $this->n->getMappings($appid)['events']['order_pay_success']['template_id'], 'the mappings stayed');
    }

    public function testAnEmptyMappingIsNoEvents(): void
    {
        // Before the admin saved any mapping, the shop passes what it has: nothing.
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->n->loadMappings($appid, []);
        $this->assertSame([], $this->n->getMappings($appid)['events']);
        $this->n->loadMappings($appid, ['version' => 1, 'events' => []]);
        $this->assertSame([], $this->n->getMappings($appid)['events']);
        // And with it, no grant for a template could be used: refused.
        $this->thrown(InvalidArgumentException::class, fn () => $this->n->addPermit($appid, ['openid' => 'o-e', 'kind' => 'subscribe', 'template_id' => Shop::TPL_PAY_SUCCESS]));
        $this->n->unregisterApp($appid);
    }

    public function testOutboxMethodsMatchTheLibraryBuild(): void
    {
        $declared = (bool) preg_match('/\bfashop_notify_enqueue\s*\(/', (string) file_get_contents(Notifier::headerPath()));
        $unknown = 'wx' . bin2hex(random_bytes(8));
        if (!$declared) {
            // A library without the outbox: a clear exception, never a fatal FFI error.
            foreach ([
                fn () => $this->n->enqueue($unknown, 'order_pay_success', Shop::payload('o', 1)),
                fn () => $this->n->flush(),
                fn () => $this->n->outboxStats(),
            ] as $call) {
                $e = $this->thrown(InternalException::class, $call);
                $this->assertStringContainsString('is not in this build', $e->getMessage());
            }
            return;
        }
        $this->thrown(AppNotConfiguredException::class, fn () => $this->n->enqueue($unknown, 'order_pay_success', Shop::payload('o', 1)));
        $this->assertIsArray($this->n->outboxStats());
    }

    public function testPreloadHeaderIsGeneratedFromThePlainOne(): void
    {
        $plain = (string) file_get_contents(Notifier::headerPath());
        $this->assertStringNotContainsString('#', $plain, 'FFI::cdef does no preprocessing: the committed header stays plain declarations');
        $scoped = Notifier::scopedHeader('/opt/shop/lib/libfashop_notify.so');
        $this->assertStringStartsWith("#define FFI_SCOPE \"FASHOP_NOTIFY\"\n#define FFI_LIB \"/opt/shop/lib/libfashop_notify.so\"\n", $scoped);
        $this->assertStringEndsWith($plain, $scoped);
        $this->thrown(InvalidArgumentException::class, fn () => Notifier::scopedHeader("/x\"\n#define FFI_LIB \"/evil.so"));
        $e = $this->thrown(InvalidArgumentException::class, fn () => Notifier::load('/nonexistent/libfashop_notify.so'));
        $this->assertStringContainsString('/nonexistent/libfashop_notify.so: no such file', $e->getMessage());
        // A file that is not the library is named as such, not blamed on php.ini.
        $e = $this->thrown(InvalidArgumentException::class, fn () => Notifier::load(Notifier::headerPath()));
        $this->assertStringContainsString('not a shared library', $e->getMessage());
        $this->assertStringNotContainsString('ffi.enable', $e->getMessage());
    }

    /** A send racing another with its key is "in progress", not "maybe delivered". */
    public function testAnInProgressSendHasItsOwnException(): void
    {
        $check = new \ReflectionMethod(Notifier::class, 'check');
        $check->setAccessible(true);
        $busy = \FaShop\Notify\SendOutcome::fromArray(['status' => 'in_progress', 'errmsg' => 'another send with idempotency key k is under way']);
        try {
            $check->invoke($this->n, \FaShop\Notify\Status::UNCERTAIN, $busy);
            $this->fail('no exception');
        } catch (\FaShop\Notify\Exception\SendInProgressException $e) {
            $this->assertSame($busy, $e->getOutcome());
            $this->assertSame(\FaShop\Notify\Status::UNCERTAIN, $e->getStatus());
            $this->assertNotInstanceOf(\FaShop\Notify\Exception\UncertainDeliveryException::class, $e);
        }
        $maybe = \FaShop\Notify\SendOutcome::fromArray(['status' => 'uncertain']);
        $this->expectException(\FaShop\Notify\Exception\UncertainDeliveryException::class);
        $check->invoke($this->n, \FaShop\Notify\Status::UNCERTAIN, $maybe);
    }
}
