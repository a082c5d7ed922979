<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Admin;
use FaShop\Notify\Admin\AdminError;
use FaShop\Notify\Admin\ChineseTexts;
use FaShop\Notify\Admin\FileMappingStore;
use FaShop\Notify\Admin\LibraryTemplateCheck;
use FaShop\Notify\Admin\PdoSettingMappingStore;
use FaShop\Notify\Admin\Router;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** The admin handlers against the sandbox: good input and bad, one stable code per failure. */
final class AdminTest extends TestCase
{
    private const TPL_CANCEL = 'zFZQHNIcOQTBP6tUWfm0kOqpQyP1OlFdyKhlIB3opX3';
    private const TPL_REFUND = 'AKcL1rxIu4sHSC-GUMEPYZNFeHFXlwDpvt1lYmzB5Uv';
    private const TPL_PAY_FAIL = 'oad_-q5QMegD5vfX3r1HDY0hWokTpXtZVuRT_L_K4kx';

    private Notifier $n;
    private string $appid;
    private string $dir;
    private FileMappingStore $store;
    private Admin $admin;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        [$this->appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $this->appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->dir = sys_get_temp_dir() . '/fashop-admin-' . bin2hex(random_bytes(6));
        mkdir($this->dir);
        $this->store = new FileMappingStore($this->dir . '/mapping.json');
        $this->admin = new Admin($this->n, $this->store, $this->appid);
    }

    protected function tearDown(): void
    {
        Sandbox::control('DELETE', '/sandbox/faults');
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            unlink($f);
        }
        rmdir($this->dir);
    }

    // --- helpers ---------------------------------------------------------------------

    /** @return mixed the handler's data, after checking it succeeded */
    private static function ok(array $result): mixed
    {
        self::assertTrue($result['ok'], 'handler failed: ' . json_encode($result, JSON_UNESCAPED_UNICODE));
        self::assertSame(200, Admin::httpStatus($result));
        return $result['data'];
    }

    /** @return array<string,mixed> the error, after checking its code and HTTP status */
    private static function fails(string $code, int $status, array $result): array
    {
        self::assertFalse($result['ok'], 'handler succeeded: ' . json_encode($result, JSON_UNESCAPED_UNICODE));
        self::assertSame($code, $result['error']['code'], $result['error']['message']);
        self::assertSame($status, Admin::httpStatus($result));
        self::assertNotSame('', $result['error']['message']);
        return $result['error'];
    }

    /** @return array<string,mixed> */
    private static function delivered(): array
    {
        return ['template_id' => Shop::TPL_DELIVERED, 'data' => [
            'character_string1' => '{order_sn}', 'thing2' => '{express_company}',
            'character_string3' => '{tracking_no}', 'time4' => '{delivery_time|datetime}',
        ]];
    }

    /** @return array<string,mixed> */
    private static function paySuccess(): array
    {
        return ['template_id' => Shop::TPL_PAY_SUCCESS, 'data' => [
            'character_string1' => '{order_sn}', 'amount2' => '{order_amount|money}',
            'thing3' => '{order_total_goods_name}', 'time4' => '{pay_time|datetime}',
        ]];
    }

    private function checkAvailable(): bool
    {
        return (new LibraryTemplateCheck($this->n))->available();
    }

    // --- templates ----------------------------------------------------------------------

    public function testTemplatesListTheMiniProgramsTemplatesWithTheirKeywords(): void
    {
        $templates = array_column(self::ok($this->admin->templates())['templates'], null, 'id');
        $this->assertSame(array_column($this->n->callApi($this->appid, 'GET', '/wxaapi/newtmpl/gettemplate')['data'], 'priTmplId'), array_keys($templates));
        foreach ([Shop::TPL_PAY_SUCCESS, Shop::TPL_DELIVERED, self::TPL_CANCEL, self::TPL_REFUND, self::TPL_PAY_FAIL] as $id) {
            $this->assertArrayHasKey($id, $templates);
        }
        $t = $templates[Shop::TPL_DELIVERED];
        $this->assertSame('订单发货通知', $t['title']);
        $this->assertSame(['character_string1', 'thing2', 'character_string3', 'time4'], array_column($t['keywords'], 'name'));
        $this->assertSame(['订单号', '快递公司', '快递单号', '发货时间'], array_column($t['keywords'], 'label'));
        $this->assertSame(['character_string', 'thing', 'character_string', 'time'], array_column($t['keywords'], 'type'));
    }

    public function testTemplateDetailNamesTheEventsUsingIt(): void
    {
        $t = self::ok($this->admin->template(Shop::TPL_DELIVERED));
        $this->assertSame([], $t['used_by']);
        self::ok($this->admin->saveMapping('order_delivered', self::delivered()));
        $this->assertSame(['order_delivered'], self::ok($this->admin->template(Shop::TPL_DELIVERED))['used_by']);

        $e = self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->template('no-such-template'));
        $this->assertSame('no-such-template', $e['template_id']);
    }

    public function testAnUnconfiguredMiniProgramHasItsOwnCode(): void
    {
        $none = new Admin($this->n, $this->store, '');
        $unknown = new Admin($this->n, $this->store, 'wxnotregistered0001');
        foreach ([$none, $unknown] as $admin) {
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->templates());
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->template(Shop::TPL_DELIVERED));
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->saveMapping('order_delivered', self::delivered()));
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->libraryCategories());
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->outbox());
            self::fails(AdminError::MINI_PROGRAM_NOT_CONFIGURED, 409, $admin->collectGrants('o-buyer', ['subscribe' => []]));
        }
        // The event list still shows, and says why nothing can be chosen.
        $events = self::ok($none->events());
        $this->assertFalse($events['configured']);
        $this->assertCount(5, $events['events']);
        $this->assertSame(AdminError::MINI_PROGRAM_NOT_CONFIGURED, self::ok($unknown->events())['templates_error']['code']);
        $this->assertNull($this->store->load(), 'nothing was stored');
    }

    // --- events and mappings ---------------------------------------------------------------

    public function testEventsShowTheirState(): void
    {
        $states = fn () => array_column(self::ok($this->admin->events())['events'], 'state', 'event');
        $this->assertSame(array_fill_keys(Admin::EVENTS, 'unmapped'), $states());
        $this->assertSame(['支付成功', '支付失败', '订单取消', '退款申请', '订单发货'], array_column(self::ok($this->admin->events())['events'], 'label'));

        self::ok($this->admin->saveMapping('order_delivered', self::delivered()));
        self::ok($this->admin->saveMapping('order_pay_success', self::paySuccess() + ['enabled' => false]));
        $this->assertSame('enabled', $states()['order_delivered']);
        $this->assertSame('disabled', $states()['order_pay_success']);
        $row = array_column(self::ok($this->admin->events())['events'], null, 'event')['order_delivered'];
        $this->assertSame('订单发货通知', $row['template_title']);

        // The template is deleted in the mini program's console: the event says so.
        $this->n->callApi($this->appid, 'POST', '/wxaapi/newtmpl/deltemplate', ['priTmplId' => Shop::TPL_DELIVERED]);
        $this->assertSame('template_missing', $states()['order_delivered']);
    }

    public function testEventDetailListsTheFieldsWithLabelsAndThePage(): void
    {
        $e = self::ok($this->admin->event('order_delivered'));
        $this->assertSame('订单发货', $e['label']);
        $this->assertSame('/pages/order/detail?id={order_id}', $e['page']);
        $this->assertSame('发货', $e['library_search']);
        $fields = array_column($e['fields'], 'label', 'name');
        $this->assertSame('快递公司', $fields['express_company']);
        $this->assertSame('订单ID', $fields['order_id']);
        $this->assertNull($e['mapping']);
        self::ok($this->admin->saveMapping('order_delivered', self::delivered()));
        $this->assertSame(self::delivered()['data'], self::ok($this->admin->event('order_delivered'))['mapping']['data']);
    }

    public function testUnknownEventsAreRefusedByEveryEventHandler(): void
    {
        foreach (['order_paid', '', 'order_pay_success.data', 'fail_reason'] as $event) {
            $e = self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->event($event));
            $this->assertSame($event, $e['event']);
            self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->saveMapping($event, self::delivered()));
            self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->removeMapping($event));
            self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->suggestMapping($event, Shop::TPL_DELIVERED));
            self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->preview($event, ['mapping' => self::delivered()]));
            self::fails(AdminError::UNKNOWN_EVENT, 404, $this->admin->librarySuggestions($event));
        }
        $this->assertNull($this->store->load());
    }

    public function testSavesMergeOneEventAtATimeAndTheLibraryUsesThemAtOnce(): void
    {
        $saved = self::ok($this->admin->saveMapping('order_delivered', self::delivered()));
        $this->assertSame('/pages/order/detail?id={order_id}', $saved['mapping']['page'], 'the detail page by default');
        self::ok($this->admin->saveMapping('order_pay_success', self::paySuccess()));

        $doc = json_decode((string) $this->store->load(), true);
        $this->assertSame(['order_delivered', 'order_pay_success'], array_keys($doc['events']));
        $this->assertSame(self::delivered()['data'], $doc['events']['order_delivered']['data']);
        $live = $this->n->getMappings($this->appid);
        $this->assertEquals(self::paySuccess()['data'], $live['events']['order_pay_success']['data']);

        // A second save of one event replaces that event only.
        $changed = self::delivered();
        $changed['data']['thing2'] = '{express_company|default:快递}';
        self::ok($this->admin->saveMapping('order_delivered', $changed));
        $again = new Admin($this->n, new FileMappingStore($this->dir . '/mapping.json'), $this->appid);
        $this->assertSame('{express_company|default:快递}', self::ok($again->event('order_delivered'))['mapping']['data']['thing2']);
        $this->assertSame(self::paySuccess()['data'], self::ok($again->event('order_pay_success'))['mapping']['data']);

        $this->assertTrue(self::ok($this->admin->removeMapping('order_delivered'))['removed']);
        $this->assertFalse(self::ok($this->admin->removeMapping('order_delivered'))['removed']);
        $doc = json_decode((string) $this->store->load(), true);
        $this->assertSame(['order_pay_success'], array_keys($doc['events']));
        $this->assertArrayNotHasKey('order_delivered', $this->n->getMappings($this->appid)['events']);
    }

    public function testAnInvalidMappingIsRefusedWithItsPathsAndChangesNothing(): void
    {
        self::ok($this->admin->saveMapping('order_delivered', self::delivered()));
        $before = $this->store->load();

        $bad = self::delivered();
        $bad['data']['thing2'] = '{no_such_field}';
        $bad['data']['time4'] = '{delivery_time|nofilter}';
        $e = self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_delivered', $bad));
        $paths = array_column($e['problems'], 'path');
        $this->assertContains('events.order_delivered.data.thing2', $paths);
        $this->assertContains('events.order_delivered.data.time4', $paths);
        $this->assertStringNotContainsString('admin-preview', $e['message'], 'the message names the shop app');
        $this->assertSame($before, $this->store->load());
        $this->assertSame('{express_company}', $this->n->getMappings($this->appid)['events']['order_delivered']['data']['thing2']);

        $keyword = self::delivered();
        $keyword['data']['keyword'] = '{order_sn}';
        $e = self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_delivered', $keyword));
        $this->assertContains('events.order_delivered.data.keyword', array_column($e['problems'], 'path'));

        foreach ([
            ['data' => self::delivered()['data']],                                  // no template
            ['template_id' => Shop::TPL_DELIVERED],                                 // no data
            ['template_id' => Shop::TPL_DELIVERED, 'data' => ['{order_sn}']],       // data a list
            ['template_id' => Shop::TPL_DELIVERED, 'data' => ['thing2' => 7]],      // not text
            self::delivered() + ['enabled' => 'yes'],
            self::delivered() + ['colour' => 'red'],                                // unknown key
            ['template_id' => 42, 'data' => self::delivered()['data']],
        ] as $input) {
            self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->saveMapping('order_delivered', $input));
        }
        $unknown = ['template_id' => 'no-such-template'] + self::delivered();
        self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->saveMapping('order_delivered', $unknown));
        $this->assertSame($before, $this->store->load());
    }

    public function testSavesAreCheckedAgainstTheTemplate(): void
    {
        if (!$this->checkAvailable()) {
            $this->markTestIncomplete('the library has no mapping check yet (Notifier::checkMappings)');
        }
        $missing = self::delivered();
        unset($missing['data']['time4']);
        $e = self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_delivered', $missing));
        $this->assertNotSame([], array_filter($e['problems'], fn ($p) => str_starts_with($p['path'], 'events.order_delivered')));

        $extra = self::delivered();
        $extra['data']['thing9'] = '{order_sn}';
        $e = self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_delivered', $extra));
        $this->assertContains('events.order_delivered.data.thing9', array_column($e['problems'], 'path'));

        $amount = self::paySuccess();
        $amount['data']['amount2'] = '{order_sn}';
        self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_pay_success', $amount));
        $this->assertNull($this->store->load());

        $preview = self::ok($this->admin->preview('order_delivered', ['mapping' => $missing]));
        $this->assertTrue($preview['check']['available']);
        $this->assertFalse($preview['valid']);
    }

    public function testKeywordTypesComeFromTheLibrary(): void
    {
        $types = self::ok($this->admin->keywordTypes());
        if (!$this->checkAvailable()) {
            $this->assertFalse($types['available']);
            $this->assertSame([], $types['types']);
            $this->markTestIncomplete('the library has no keyword type table yet (Notifier::keywordTypes)');
        }
        $this->assertTrue($types['available']);
        $this->assertSame(20, $types['types']['thing']['max_chars']);
        $keywords = array_column(self::ok($this->admin->template(Shop::TPL_DELIVERED))['keywords'], null, 'name');
        $this->assertSame(20, $keywords['thing2']['limit']);
    }

    public function testThePageGetsChineseTextsBesideTheEnglishMessages(): void
    {
        $types = self::ok($this->admin->keywordTypes());
        if (!$types['available']) {
            $this->markTestIncomplete('the library has no keyword type table yet (Notifier::keywordTypes)');
        }
        // The rule in Chinese for the page, the library's English kept in `allowed`.
        $this->assertSame(ChineseTexts::RULES['thing'], $types['types']['thing']['rule']);
        $this->assertStringStartsWith('any text on one line', $types['types']['thing']['allowed']);
        foreach ($types['types'] as $prefix => $t) {
            $this->assertSame(ChineseTexts::RULES[$t['type']] ?? null, $t['rule'], "every keyword type has its Chinese rule: $prefix");
        }
        $keywords = array_column(self::ok($this->admin->template(Shop::TPL_DELIVERED))['keywords'], null, 'name');
        $this->assertSame(ChineseTexts::RULES['thing'], $keywords['thing2']['rule']);

        // addtemplate's refusals: the English message, and its Chinese for the page.
        $e = self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->createTemplate(['tid' => 1856, 'kid_list' => [], 'scene_desc' => '提醒']));
        $this->assertStringStartsWith('kid_list must be a list', $e['message']);
        $this->assertSame('请按显示顺序选择关键词（kid_list 须为关键词编号的列表）', $e['message_zh']);
        $e = self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->createTemplate(['tid' => 1856, 'kid_list' => [1, 2], 'scene_desc' => '']));
        $this->assertSame('场景说明须为 1 到 15 个字', $e['message_zh']);

        // A refused mapping and a preview: each problem and verdict with its Chinese.
        $bad = self::delivered();
        $bad['data']['thing2'] = '{no_such_field}';
        $e = self::fails(AdminError::INVALID_MAPPING, 422, $this->admin->saveMapping('order_delivered', $bad));
        $this->assertSame('映射有 1 处问题', $e['message_zh']);
        $this->assertSame('未知的订单字段 {no_such_field}', array_column($e['problems'], 'message_zh', 'path')['events.order_delivered.data.thing2']);
        $amount = self::delivered();
        $amount['data']['character_string1'] = '{order_total_goods_name}';
        $preview = self::ok($this->admin->preview('order_delivered', ['mapping' => $amount]));
        $verdict = array_column($preview['keywords'], null, 'name')['character_string1'];
        $this->assertSame('error', $verdict['verdict']);
        $this->assertStringContainsString('breaks the rule', $verdict['message']);
        $this->assertMatchesRegularExpression('/^值“.+”不符合规则：/u', $verdict['message_zh']);
        $this->assertStringEndsWith(ChineseTexts::RULES['character_string'], $verdict['message_zh']);
    }

    public function testSuggestedMappingsFitTheTemplatesAndSave(): void
    {
        $s = self::ok($this->admin->suggestMapping('order_pay_success', Shop::TPL_PAY_SUCCESS));
        $this->assertSame(self::paySuccess()['data'], $s['mapping']['data'], 'pay time, not order time, fills 支付时间');
        $s = self::ok($this->admin->suggestMapping('order_delivered', Shop::TPL_DELIVERED));
        $this->assertSame(self::delivered()['data'], $s['mapping']['data']);
        $s = self::ok($this->admin->suggestMapping('order_refund_apply', self::TPL_REFUND));
        $this->assertSame(['character_string1' => '{order_sn}', 'amount2' => '{refund_amount|money}', 'thing3' => '{refund_reason}', 'time4' => '{refund_apply_time|datetime}'], $s['mapping']['data']);
        $s = self::ok($this->admin->suggestMapping('order_cancel', self::TPL_CANCEL));
        $this->assertSame('{cancel_reason}', $s['mapping']['data']['thing3']);
        $this->assertSame('{order_cancel_time|datetime}', $s['mapping']['data']['time4']);
        self::ok($this->admin->saveMapping('order_cancel', $s['mapping']));
        $s = self::ok($this->admin->suggestMapping('order_pay_fail', self::TPL_PAY_FAIL));
        $this->assertSame('{fail_reason}', $s['mapping']['data']['thing3']);
        $this->assertSame(['keyword', 'field', 'placeholder', 'reason'], array_keys($s['keywords'][0]));

        self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->suggestMapping('order_delivered', 'no-such-template'));
    }

    public function testPreviewShowsWhatTheLibraryRendersWithAVerdictPerKeyword(): void
    {
        $draft = self::paySuccess();
        $p = self::ok($this->admin->preview('order_pay_success', ['mapping' => $draft]));
        $this->assertTrue($p['valid']);
        // The same mapping rendered by the library directly, on another app.
        [$other, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $other, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        $this->n->loadMappings($other, ['version' => 1, 'events' => ['order_pay_success' => $draft + ['page' => Admin::DETAIL_PAGE]]]);
        $direct = $this->n->render($other, 'order_pay_success', ['touser' => 'o-admin-preview', 'fields' => $p['fields']]);
        $this->assertSame($direct['data'], $p['body']['data']);
        $this->assertSame($direct['page'], $p['body']['page']);
        $this->assertStringEndsWith('pages/order/detail?id=10086', $p['body']['page']);
        $this->assertSame(['ok'], array_values(array_unique(array_column($p['keywords'], 'verdict'))));
        $this->assertSame('¥128.50', array_column($p['keywords'], 'value', 'name')['amount2']);
        $this->assertSame('支付时间', array_column($p['keywords'], 'label', 'name')['time4']);

        // A long goods name is shortened; an order number is no amount.
        $long = ['order_total_goods_name' => str_repeat('法式碎花连衣裙', 5)] + $p['fields'];
        $bad = $draft;
        $bad['data']['amount2'] = '{order_sn|money}';
        $p = self::ok($this->admin->preview('order_pay_success', ['mapping' => $bad, 'fields' => $long]));
        $verdicts = array_column($p['keywords'], null, 'name');
        $this->assertSame('truncated', $verdicts['thing3']['verdict']);
        $this->assertStringEndsWith('…', $verdicts['thing3']['value']);
        $this->assertSame('error', $verdicts['amount2']['verdict']);
        $this->assertNull($verdicts['amount2']['value']);
        $this->assertFalse($p['valid']);
        $this->assertContains('events.order_pay_success.data.amount2', array_column($p['problems'], 'path'));

        // Previews never touch the live mapping nor leave an app behind.
        try {
            $this->n->getMappings($this->appid);
            $this->fail('a preview loaded a mapping into the shop app');
        } catch (\FaShop\Notify\Exception\MappingException $e) {
            $this->assertStringContainsString('no mapping document', $e->getMessage());
        }
        $this->assertNotContains($this->appid . '-admin-preview', array_column($this->n->listApps(), 'appid'));
    }

    public function testPreviewOfARealOrderAndItsBadInput(): void
    {
        $orders = ['17' => ['delivery_time' => 1795500000] + Shop::order(17)];
        $admin = new Admin($this->n, $this->store, $this->appid, null, fn (string $id) => $orders[$id] ?? null);
        self::ok($admin->saveMapping('order_delivered', self::delivered()));
        $p = self::ok($admin->preview('order_delivered', ['order_id' => 17]));
        $values = array_column($p['keywords'], 'value', 'name');
        $this->assertSame(Shop::order(17)['order_sn'], $values['character_string1']);
        $this->assertSame('2026-11-24 14:00', $values['time4']);
        $this->assertStringEndsWith('pages/order/detail?id=17', $p['body']['page']);

        self::fails(AdminError::UNKNOWN_ORDER, 404, $admin->preview('order_delivered', ['order_id' => 18]));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->preview('order_delivered', ['order_id' => 17]));
        self::fails(AdminError::INVALID_REQUEST, 400, $admin->preview('order_delivered', ['mapping' => 'x']));
        self::fails(AdminError::INVALID_REQUEST, 400, $admin->preview('order_delivered', ['fields' => ['a', 'b']]));
        self::fails(AdminError::NOT_MAPPED, 409, $admin->preview('order_cancel'));
        $missing = self::ok($admin->preview('order_delivered', ['fields' => ['order_sn' => 'SN1']]));
        $this->assertFalse($missing['valid']);
        $this->assertSame('error', array_column($missing['keywords'], 'verdict', 'name')['thing2']);
    }

    // --- what the mini program collects -------------------------------------------------------

    public function testGrantsAreRecordedForMappedTemplatesOnlyAndBounded(): void
    {
        self::ok($this->admin->saveMapping('order_pay_success', self::paySuccess()));
        $r = self::ok($this->admin->collectGrants('o-buyer-1', ['subscribe' => [
            Shop::TPL_PAY_SUCCESS => 'accept', Shop::TPL_DELIVERED => 'accept', self::TPL_CANCEL => 'reject', 'errMsg' => 'requestSubscribeMessage:ok',
        ]]));
        $this->assertSame([Shop::TPL_PAY_SUCCESS], $r['accepted']);
        $this->assertSame([['template_id' => Shop::TPL_DELIVERED, 'reason' => 'not_mapped']], $r['ignored']);
        $this->assertSame([Shop::TPL_PAY_SUCCESS => 1], $this->n->ledgerStats($this->appid, 'o-buyer-1')['subscribe']['templates']);

        foreach (['order_delivered' => self::delivered(), 'order_cancel' => self::ok($this->admin->suggestMapping('order_cancel', self::TPL_CANCEL))['mapping'],
            'order_refund_apply' => self::ok($this->admin->suggestMapping('order_refund_apply', self::TPL_REFUND))['mapping']] as $event => $m) {
            self::ok($this->admin->saveMapping($event, $m));
        }
        $all = array_fill_keys([Shop::TPL_PAY_SUCCESS, Shop::TPL_DELIVERED, self::TPL_CANCEL, self::TPL_REFUND], 'accept');
        $r = self::ok($this->admin->collectGrants('o-buyer-2', ['subscribe' => $all]));
        $this->assertCount(Admin::MAX_SUBSCRIBE_PER_REQUEST, $r['accepted']);
        $this->assertSame([['template_id' => self::TPL_REFUND, 'reason' => 'over_limit']], $r['ignored']);
        $this->assertSame(3, $this->grants('o-buyer-2'));

        $formIds = ['the formId is a mock one', 'undefined'];
        for ($i = 1; $i <= 12; $i++) {
            $formIds[] = "form-$i";
        }
        $r = self::ok($this->admin->collectGrants('o-buyer-3', ['form_ids' => $formIds]));
        $this->assertSame(Admin::MAX_FORM_IDS_PER_REQUEST, $r['form_ids']);
        $this->assertSame(Admin::MAX_FORM_IDS_PER_REQUEST, $this->n->ledgerStats($this->appid, 'o-buyer-3')['form_id']['permits']);
        $this->assertSame(['mock', 'mock', 'over_limit', 'over_limit'], array_column($r['ignored'], 'reason'));

        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->collectGrants('', ['subscribe' => $all]));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->collectGrants('o-buyer-4', ['subscribe' => 'accept']));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->collectGrants('o-buyer-4', ['form_ids' => ['a' => 'b']]));
        $this->assertSame(0, $this->grants('o-buyer-4'));
    }

    /** Subscribe grants the ledger holds for a buyer (all templates). */
    private function grants(string $openid): int
    {
        return (int) $this->n->ledgerStats($this->appid, $openid)['subscribe']['uses'];
    }

    // --- WeChat's template library -------------------------------------------------------------

    public function testTheLibraryIsBrowsedPagedAndSearched(): void
    {
        $cats = array_column(self::ok($this->admin->libraryCategories())['categories'], 'name', 'id');
        $this->assertSame('电商平台', $cats[616]);

        $page = self::ok($this->admin->libraryTitles(['ids' => '616', 'start' => 0, 'limit' => 2]));
        $all = $this->n->callApi($this->appid, 'GET', '/wxaapi/newtmpl/getpubtemplatetitles?ids=616&start=0&limit=30');
        $this->assertSame($all['count'], $page['count']);
        $this->assertGreaterThan(2, $page['count']);
        $this->assertCount(2, $page['titles']);
        $next = self::ok($this->admin->libraryTitles(['ids' => '616', 'start' => '2', 'limit' => '2']));
        $this->assertNotSame(array_column($page['titles'], 'tid'), array_column($next['titles'], 'tid'));
        $found = self::ok($this->admin->libraryTitles(['keyword' => '通知']));
        $this->assertNotSame([], $found['titles']);
        $this->assertSame($found['count'], count($found['titles']));
        foreach ($found['titles'] as $t) {
            $this->assertStringContainsString('通知', $t['title']);
        }
        $this->assertContains(1856, array_column($found['titles'], 'tid'));
        $this->assertNotContains(2476, array_column($found['titles'], 'tid'), '支付失败提醒 has no 通知');

        $expect = ['order_pay_success' => 1754, 'order_pay_fail' => 2476, 'order_cancel' => 2103, 'order_refund_apply' => 2331, 'order_delivered' => 1856];
        foreach ($expect as $event => $tid) {
            $s = self::ok($this->admin->librarySuggestions($event));
            $this->assertSame([$tid], array_column($s['titles'], 'tid'), $event);
            $this->assertSame(Admin::LIBRARY_SEARCH[$event], $s['keyword']);
        }
        $kw = self::ok($this->admin->libraryKeywords(1856))['keywords'];
        $this->assertSame([1, 2, 3, 4, 5, 6, 7], array_column($kw, 'kid'));
        $this->assertSame('phone_number', $kw[6]['rule']);

        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->libraryTitles(['limit' => 31]));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->libraryTitles(['start' => -1]));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->libraryTitles(['ids' => 'clothes']));
        self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->libraryKeywords(999));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->libraryKeywords('1856; drop'));
    }

    public function testTemplatesAreCreatedFromTheLibraryAndDeleted(): void
    {
        $before = count(self::ok($this->admin->templates())['templates']);
        $c = self::ok($this->admin->createTemplate(['tid' => 1856, 'kid_list' => [3, 1, 4], 'scene_desc' => '发货后提醒买家']));
        $this->assertSame(['character_string3', 'character_string1', 'time4'], array_column($c['template']['keywords'], 'name'), 'keywords in the order chosen');
        $this->assertContains($c['template_id'], array_column(self::ok($this->admin->templates())['templates'], 'id'));
        // The new template can be mapped at once.
        $s = self::ok($this->admin->suggestMapping('order_delivered', $c['template_id']));
        $this->assertSame(['character_string3' => '{tracking_no}', 'character_string1' => '{order_sn}', 'time4' => '{delivery_time|datetime}'], $s['mapping']['data']);
        self::ok($this->admin->saveMapping('order_delivered', $s['mapping']));

        $e = self::fails(AdminError::TEMPLATE_IN_USE, 409, $this->admin->deleteTemplate($c['template_id']));
        $this->assertSame('order_delivered', $e['event']);
        self::ok($this->admin->removeMapping('order_delivered'));
        $this->assertTrue(self::ok($this->admin->deleteTemplate($c['template_id']))['deleted']);
        $this->assertNotContains($c['template_id'], array_column(self::ok($this->admin->templates())['templates'], 'id'));
        self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->deleteTemplate($c['template_id']));

        foreach ([
            ['kid_list' => [1, 2], 'scene_desc' => '提醒'],
            ['tid' => 'x', 'kid_list' => [1, 2], 'scene_desc' => '提醒'],
            ['tid' => 1856, 'kid_list' => [], 'scene_desc' => '提醒'],
            ['tid' => 1856, 'kid_list' => [1, 1], 'scene_desc' => '提醒'],
            ['tid' => 1856, 'kid_list' => [1, 2, 3, 4, 5, 6], 'scene_desc' => '提醒'],
            ['tid' => 1856, 'kid_list' => ['1', '2'], 'scene_desc' => '提醒'],
            ['tid' => 1856, 'kid_list' => [1, 2], 'scene_desc' => ''],
            ['tid' => 1856, 'kid_list' => [1, 2], 'scene_desc' => str_repeat('长', 16)],
        ] as $input) {
            self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->createTemplate($input));
        }
        self::fails(AdminError::UNKNOWN_TEMPLATE, 404, $this->admin->createTemplate(['tid' => 999, 'kid_list' => [1, 2], 'scene_desc' => '提醒']));
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->createTemplate(['tid' => 1856, 'kid_list' => [1, 99], 'scene_desc' => '提醒']));
        $this->assertCount($before, self::ok($this->admin->templates())['templates']);
    }

    // --- outbox ---------------------------------------------------------------------------------

    /** Queues a paid order's notice and lets WeChat refuse it for good with `$errcode`: one dead letter. */
    private function deadLetter(int $order, int $errcode): int
    {
        $openid = "o-dead-$order";
        Shop::grant($this->n, $this->appid, $openid, Shop::TPL_PAY_SUCCESS);
        $id = $this->n->enqueue($this->appid, 'order_pay_success', Shop::payload($openid, $order))['id'];
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => $errcode, 'count' => 1]);
        $this->assertSame(1, $this->n->flush($this->appid, 1)['dead']);
        return $id;
    }

    public function testTheOutboxShowsDeadLettersAndRequeuesThemAllByReasonOrOne(): void
    {
        self::ok($this->admin->saveMapping('order_pay_success', self::paySuccess()));
        $a = $this->deadLetter(1, 40003);
        $b = $this->deadLetter(2, 40037);
        $c = $this->deadLetter(3, 40003);
        $o = self::ok($this->admin->outbox());
        $this->assertSame(3, $o['counts']['dead']);
        $this->assertSame([$c, $b, $a], array_column($o['dead_letters'], 'id'));
        $reasons = array_column($o['reasons'], 'count', 'errcode');
        $this->assertSame([40003 => 2, 40037 => 1], $reasons);

        $r = self::ok($this->admin->outboxRequeue(['errcode' => 40003]));
        $this->assertEqualsCanonicalizing([$a, $c], $r['requeued']);
        $this->assertSame([$b], array_column(self::ok($this->admin->outbox())['dead_letters'], 'id'));
        $this->assertSame([$b], self::ok($this->admin->outboxRequeue(['id' => $b]))['requeued']);
        $this->assertSame(0, self::ok($this->admin->outbox())['counts']['dead']);
        $this->assertSame(3, self::ok($this->admin->outbox())['counts']['pending']);

        foreach ([$a, $b, $c] as $id) {
            $this->assertSame(['dropped' => $id], self::ok($this->admin->outboxDrop(['id' => $id])), 'a message not yet sent can be dropped');
        }
        $d = $this->deadLetter(4, 40003);
        $e = $this->deadLetter(5, 47003);
        $this->assertEqualsCanonicalizing([$d, $e], self::ok($this->admin->outboxRequeue(['all' => true]))['requeued']);
        $this->assertSame([], self::ok($this->admin->outboxRequeue(['all' => true]))['requeued']);
        $this->assertSame(['dropped' => $e], self::ok($this->admin->outboxDrop(['id' => $e])));
        $this->assertSame(1, self::ok($this->admin->outbox())['counts']['pending']);

        self::fails(AdminError::UNKNOWN_MESSAGE, 404, $this->admin->outboxDrop(['id' => $e]));
        self::fails(AdminError::UNKNOWN_MESSAGE, 404, $this->admin->outboxRequeue(['id' => 999999]));
        self::fails(AdminError::UNKNOWN_MESSAGE, 404, $this->admin->outboxRequeue(['id' => $d]), 'a pending message is no dead letter');
        foreach ([[], ['id' => 0], ['id' => '5'], ['errcode' => '40003'], ['all' => 'yes']] as $input) {
            self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->outboxRequeue($input));
        }
        self::fails(AdminError::INVALID_REQUEST, 400, $this->admin->outboxDrop([]));
    }

    // --- stores -----------------------------------------------------------------------------------

    public function testTheMappingLivesInFaShopsSettingRow(): void
    {
        $pdo = new \PDO('sqlite::memory:');
        $pdo->exec('CREATE TABLE fa_setting (`key` VARCHAR(64) PRIMARY KEY, `config` TEXT, `remark` VARCHAR(255))');
        $pdo->exec("INSERT INTO fa_setting (`key`, `config`) VALUES ('wechat', '{\"mini_app_id\":\"wx1\"}')");
        $legacy = ['template_list' => [['event' => 'order_pay_success', 'template_id' => 'old-id', 'template_name' => '旧模板', 'template_status' => 0]], 'note' => 'kept'];
        $pdo->prepare("INSERT INTO fa_setting (`key`, `config`, `remark`) VALUES ('wechat_mini_template', ?, '订阅消息')")->execute([json_encode($legacy, JSON_UNESCAPED_UNICODE)]);
        $store = new PdoSettingMappingStore($pdo);
        $this->assertNull($store->load(), 'FaShop\'s own row has no mapping yet');
        $admin = new Admin($this->n, $store, $this->appid);
        $this->assertSame('unmapped', self::ok($admin->events())['events'][0]['state']);

        self::ok($admin->saveMapping('order_delivered', self::delivered()));
        self::ok($admin->saveMapping('order_pay_success', self::paySuccess() + ['enabled' => false]));
        $row = $pdo->query("SELECT `config`, `remark` FROM fa_setting WHERE `key` = 'wechat_mini_template'")->fetch(\PDO::FETCH_ASSOC);
        $config = json_decode($row['config'], true);
        $this->assertSame('订阅消息', $row['remark']);
        $this->assertSame('kept', $config['note']);
        $this->assertSame(self::delivered()['data'], $config['mapping']['events']['order_delivered']['data']);
        $this->assertSame([
            ['event' => 'order_delivered', 'template_id' => Shop::TPL_DELIVERED, 'template_name' => '订单发货通知', 'template_status' => 1],
            ['event' => 'order_pay_success', 'template_id' => Shop::TPL_PAY_SUCCESS, 'template_name' => '支付成功通知', 'template_status' => 0],
        ], $config['template_list']);
        $this->assertSame(self::delivered()['data'], self::ok((new Admin($this->n, new PdoSettingMappingStore($pdo), $this->appid))->event('order_delivered'))['mapping']['data']);
        $this->assertSame('{"mini_app_id":"wx1"}', $pdo->query("SELECT `config` FROM fa_setting WHERE `key` = 'wechat'")->fetchColumn());

        // No row at all: the first save inserts it.
        $fresh = new \PDO('sqlite::memory:');
        $fresh->exec('CREATE TABLE fa_setting (`key` VARCHAR(64) PRIMARY KEY, `config` TEXT)');
        self::ok((new Admin($this->n, new PdoSettingMappingStore($fresh), $this->appid))->saveMapping('order_delivered', self::delivered()));
        $this->assertSame(1, (int) $fresh->query('SELECT COUNT(*) FROM fa_setting')->fetchColumn());

        // The database goes away: a store error, nothing half-done.
        $pdo->exec('DROP TABLE fa_setting');
        self::fails(AdminError::STORE_ERROR, 503, $admin->saveMapping('order_delivered', self::delivered()));
        self::fails(AdminError::STORE_ERROR, 503, $admin->events());
        $this->assertEquals(self::delivered()['data'], $this->n->getMappings($this->appid)['events']['order_delivered']['data'], 'the live mapping stays');
    }

    public function testAnUnwritableOrCorruptFileIsAStoreError(): void
    {
        $nowhere = new Admin($this->n, new FileMappingStore($this->dir . '/missing/dir/mapping.json'), $this->appid);
        self::fails(AdminError::STORE_ERROR, 503, $nowhere->saveMapping('order_delivered', self::delivered()));
        file_put_contents($this->dir . '/mapping.json', '{"version": 1, "events": ');
        self::fails(AdminError::STORE_ERROR, 503, $this->admin->events());
        self::fails(AdminError::STORE_ERROR, 503, $this->admin->saveMapping('order_delivered', self::delivered()));
        $this->assertSame('{"version": 1, "events": ', file_get_contents($this->dir . '/mapping.json'));
    }

    // --- the front controller -----------------------------------------------------------------------

    public function testTheApiWantsTheAdminSecretAndTouchesNothingWithoutIt(): void
    {
        $built = 0;
        $factory = function () use (&$built) {
            $built++;
            return $this->admin;
        };
        $editor = Shop::root() . '/bindings/php/admin/editor.html';
        $router = new Router('s3cret-admin', $factory, $editor);
        $put = json_encode(self::delivered());
        foreach ([[], ['X-Admin-Secret' => ''], ['X-Admin-Secret' => 's3cret-admi'], ['X-Admin-Secret' => 's3cret-admin '], ['Authorization' => 's3cret-admin']] as $headers) {
            $a = $router->handle('PUT', '/api/events/order_delivered/mapping', [], $put, $headers);
            $this->assertSame(401, $a['status']);
            $this->assertSame(AdminError::UNAUTHORIZED, json_decode($a['body'], true)['error']['code']);
        }
        $closed = (new Router('', $factory, $editor))->handle('GET', '/api/events', [], '', ['X-Admin-Secret' => '']);
        $this->assertSame(503, $closed['status']);
        $this->assertSame(AdminError::ADMIN_NOT_CONFIGURED, json_decode($closed['body'], true)['error']['code']);
        $this->assertSame(0, $built, 'no Admin was built');
        $this->assertNull($this->store->load(), 'nothing was stored');

        $ok = ['x-admin-secret' => 's3cret-admin'];
        $a = $router->handle('PUT', '/notify/index.php/api/events/order_delivered/mapping', [], $put, $ok);
        $this->assertSame(200, $a['status'], $a['body']);
        $this->assertSame('application/json; charset=utf-8', $a['headers']['Content-Type']);
        $this->assertNotNull($this->store->load());
        $a = $router->handle('GET', '/api/events/order_delivered/suggest', ['template_id' => Shop::TPL_DELIVERED], '', $ok);
        $this->assertSame(self::delivered()['data'], json_decode($a['body'], true)['data']['mapping']['data']);
        $a = $router->handle('GET', '/api/library/titles/1856/keywords', [], '', $ok);
        $this->assertCount(7, json_decode($a['body'], true)['data']['keywords']);

        $cases = [
            ['GET', '/api/events/order_paid', '', 404, AdminError::UNKNOWN_EVENT],
            ['GET', '/api/templates/nope', '', 404, AdminError::UNKNOWN_TEMPLATE],
            ['GET', '/api/nothing', '', 404, AdminError::NOT_FOUND],
            ['POST', '/api/events', '', 405, AdminError::METHOD_NOT_ALLOWED],
            ['PUT', '/api/events/order_delivered/mapping', '{"template_id":', 400, AdminError::INVALID_REQUEST],
            ['PUT', '/api/events/order_delivered/mapping', '"text"', 400, AdminError::INVALID_REQUEST],
            ['PUT', '/api/events/order_delivered/mapping', str_repeat(' ', Router::MAX_BODY_BYTES + 1), 400, AdminError::INVALID_REQUEST],
            ['POST', '/api/outbox/requeue', '{"id": 424242}', 404, AdminError::UNKNOWN_MESSAGE],
        ];
        foreach ($cases as [$method, $path, $body, $status, $code]) {
            $a = $router->handle($method, $path, [], $body, $ok);
            $this->assertSame($status, $a['status'], "$method $path");
            $this->assertSame($code, json_decode($a['body'], true)['error']['code'], "$method $path");
        }

        $page = $router->handle('GET', '/', [], '', []);
        $this->assertSame(200, $page['status']);
        $this->assertSame('text/html; charset=utf-8', $page['headers']['Content-Type']);
        $this->assertStringContainsString("connect-src 'self'", $page['headers']['Content-Security-Policy']);
        $this->assertStringContainsString('订阅消息设置', $page['body']);
        $this->assertSame(405, $router->handle('POST', '/', [], '', [])['status']);
    }

    public function testTheEditorPageFetchesNothingFromElsewhere(): void
    {
        $html = (string) file_get_contents(Shop::root() . '/bindings/php/admin/editor.html');
        $this->assertDoesNotMatchRegularExpression('~(src|href)\s*=\s*["\']?(https?:)?//~i', $html);
        $this->assertDoesNotMatchRegularExpression('~(@import|url\()\s*["\']?(https?:)?//~i', $html);
        $this->assertDoesNotMatchRegularExpression('~fetch\(\s*["\']https?:~i', $html);
        $this->assertSame(1, preg_match_all('~<script\b~i', $html), 'one inline script');
        $this->assertSame(0, preg_match('~<script[^>]+src=~i', $html));
        $this->assertSame(0, preg_match('~<link\b~i', $html));
    }

    /** @var list<resource> servers started by a test */
    private array $servers = [];

    /** The environment index.php reads, for a server of this test. */
    private function frontControllerEnv(string $secret): array
    {
        return [
            'PATH' => (string) getenv('PATH'),
            'FASHOP_NOTIFY_LIB' => Shop::library(),
            'FASHOP_NOTIFY_ADMIN_SECRET' => $secret,
            'FASHOP_NOTIFY_APPID' => Sandbox::APPID,
            'FASHOP_NOTIFY_APP_SECRET' => Sandbox::SECRET,
            'FASHOP_NOTIFY_API_BASE' => Sandbox::url(),
            'FASHOP_NOTIFY_MAPPING_FILE' => $this->dir . '/served.json',
        ];
    }

    /** Starts a server and waits for the line that says it is ready; returns the line's first group. */
    private function serve(array $cmd, array $env, string $ready): string
    {
        $pipes = [];
        $proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        $this->assertIsResource($proc);
        $this->servers[] = $proc;
        $seen = '';
        while (!preg_match($ready, $seen, $m)) {
            $line = fgets($pipes[2]);
            if ($line === false) {
                $this->fail("the server exited before it was ready: $seen");
            }
            $seen .= $line;
        }
        return $m[1] ?? '';
    }

    /**
     * The same walk through any server: 401 without the secret (and nothing stored),
     * the page, a save, the event list, a preview's problem.
     *
     * @param callable(string, string, array<string,string>, ?string): array{0:int,1:string,2:array<string,string>} $request
     */
    private function walkFrontController(callable $request, string $secret): void
    {
        [$status, $text] = $request('GET', '/api/events', [], null);
        $this->assertSame(401, $status, $text);
        $this->assertSame(AdminError::UNAUTHORIZED, json_decode($text, true)['error']['code']);
        [$status] = $request('PUT', '/api/events/order_delivered/mapping', ['X-Admin-Secret' => 'guess'], json_encode(self::delivered()));
        $this->assertSame(401, $status);
        $this->assertFileDoesNotExist($this->dir . '/served.json', 'a refused request touches nothing');

        [$status, $text, $headers] = $request('GET', '/', [], null);
        $this->assertSame(200, $status);
        $this->assertStringContainsString('<title>订阅消息设置', $text);
        $this->assertSame('text/html; charset=utf-8', $headers['content-type']);

        $auth = ['X-Admin-Secret' => $secret];
        [$status, $text] = $request('PUT', '/api/events/order_delivered/mapping', $auth, json_encode(self::delivered()));
        $this->assertSame(200, $status, $text);
        [$status, $text] = $request('GET', '/api/events', $auth, null);
        $this->assertSame(200, $status);
        $this->assertSame('enabled', array_column(json_decode($text, true)['data']['events'], 'state', 'event')['order_delivered']);
        $this->assertSame(self::delivered()['data'], json_decode((string) file_get_contents($this->dir . '/served.json'), true)['events']['order_delivered']['data']);
        [$status, $text] = $request('POST', '/api/events/order_cancel/preview', $auth, '{"mapping": {"template_id": "' . self::TPL_CANCEL . '", "data": {"thing3": "{nope}"}}}');
        $this->assertSame(200, $status);
        $this->assertSame('events.order_cancel.data.thing3', json_decode($text, true)['data']['problems'][0]['path']);
        [$status, $text] = $request('DELETE', '/api/templates/' . Shop::TPL_DELIVERED, $auth, null);
        $this->assertSame(409, $status);
        $this->assertSame(AdminError::TEMPLATE_IN_USE, json_decode($text, true)['error']['code']);
    }

    public function testTheFrontControllerServesTheEditorAndTheApiUnderPhpS(): void
    {
        $secret = 'front-controller-admin-secret';
        try {
            $port = $this->serve([PHP_BINARY, '-d', 'ffi.enable=1', '-S', '127.0.0.1:0', Shop::root() . '/bindings/php/admin/index.php'],
                $this->frontControllerEnv($secret), '/Development Server \(http:\/\/127\.0\.0\.1:(\d+)\) started/');
            $this->walkFrontController(function (string $method, string $path, array $headers, ?string $body) use ($port): array {
                $headers += ['Content-Type' => 'application/json'];
                $opts = ['http' => ['method' => $method, 'ignore_errors' => true, 'timeout' => 20,
                    'header' => implode("\r\n", array_map(fn ($k, $v) => "$k: $v", array_keys($headers), $headers))]];
                if ($body !== null) {
                    $opts['http']['content'] = $body;
                }
                $text = file_get_contents("http://127.0.0.1:$port$path", false, stream_context_create($opts));
                $status = (int) explode(' ', $http_response_header[0])[1];
                $head = [];
                foreach (array_slice($http_response_header, 1) as $h) {
                    [$k, $v] = explode(':', $h, 2) + [1 => ''];
                    $head[strtolower($k)] = trim($v);
                }
                return [$status, (string) $text, $head];
            }, $secret);
        } finally {
            $this->stopServers();
        }
    }

    public function testTheFrontControllerServesTheEditorAndTheApiUnderPhpFpm(): void
    {
        if (!is_executable('/usr/sbin/php-fpm8.2') || !is_executable('/usr/bin/cgi-fcgi')) {
            $this->fail('php-fpm8.2 and cgi-fcgi are needed (scripts/deps.sh installs them)');
        }
        $secret = 'front-controller-fpm-secret';
        $sock = $this->dir . '/fpm.sock';
        $pool = "[global]\nerror_log = /proc/self/fd/2\ndaemonize = no\n\n[admin]\nlisten = $sock\npm = static\npm.max_children = 1\nclear_env = yes\n";
        foreach ($this->frontControllerEnv($secret) as $k => $v) {
            $pool .= "env[$k] = \"$v\"\n";
        }
        file_put_contents($this->dir . '/fpm.conf', $pool);
        $script = Shop::root() . '/bindings/php/admin/index.php';
        try {
            $this->serve(['/usr/sbin/php-fpm8.2', '-R', '-F', '-y', $this->dir . '/fpm.conf', '-d', 'ffi.enable=1'],
                ['PATH' => (string) getenv('PATH')], '/ready to handle connections/');
            $this->walkFrontController(function (string $method, string $path, array $headers, ?string $body) use ($sock, $script): array {
                // nginx's `location /notify-admin/` with SCRIPT_FILENAME set to index.php.
                $env = ['SCRIPT_FILENAME' => $script, 'SCRIPT_NAME' => '/notify-admin/index.php', 'REQUEST_METHOD' => $method,
                    'REQUEST_URI' => '/notify-admin' . $path, 'QUERY_STRING' => '', 'SERVER_PROTOCOL' => 'HTTP/1.1',
                    'GATEWAY_INTERFACE' => 'CGI/1.1', 'CONTENT_TYPE' => 'application/json', 'CONTENT_LENGTH' => (string) strlen($body ?? '')];
                foreach ($headers as $k => $v) {
                    $env['HTTP_' . strtoupper(str_replace('-', '_', $k))] = $v;
                }
                $pipes = [];
                $proc = proc_open(['/usr/bin/cgi-fcgi', '-bind', '-connect', $sock], [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
                fwrite($pipes[0], $body ?? '');
                fclose($pipes[0]);
                $out = Pipes::readAll([1 => $pipes[1], 2 => $pipes[2]], 30);
                proc_close($proc);
                [$head, $text] = explode("\r\n\r\n", $out[1], 2) + [1 => ''];
                $status = preg_match('/^Status: (\d+)/m', $head, $m) ? (int) $m[1] : 200;
                $parsed = [];
                foreach (explode("\r\n", $head) as $h) {
                    [$k, $v] = explode(':', $h, 2) + [1 => ''];
                    $parsed[strtolower($k)] = trim($v);
                }
                return [$status, $text, $parsed];
            }, $secret);
        } finally {
            $this->stopServers();
        }
    }

    private function stopServers(): void
    {
        foreach ($this->servers as $proc) {
            proc_terminate($proc, SIGTERM);
            proc_close($proc);
        }
        $this->servers = [];
    }
}
