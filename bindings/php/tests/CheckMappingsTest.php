<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Exception\MappingException;
use FaShop\Notify\Exception\WeChatException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/** checkMappings() and keywordTypes() against the sandbox: every kind of problem, with its path. */
final class CheckMappingsTest extends TestCase
{
    private const TPL_CANCEL = 'zFZQHNIcOQTBP6tUWfm0kOqpQyP1OlFdyKhlIB3opX3';
    private const TPL_ORDER_STATUS = 'Lt3kQ9vYx2mWnB7cR5sDfH8jK1pZ4aE6uG0iO_tNq-w';

    private Notifier $n;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        Sandbox::control('DELETE', '/sandbox/faults');
    }

    /** @return list<string> "path kind" of each finding, sorted */
    private static function found(array $findings): array
    {
        $out = [];
        foreach ($findings as $f) {
            self::assertNotSame('', $f['message']);
            $out[] = $f['path'] . ' ' . $f['kind'];
        }
        sort($out);
        return $out;
    }

    public function testTheExampleMappingFitsTheSeededTemplates(): void
    {
        $appid = Shop::registered($this->n);
        $report = $this->n->checkMappings($appid);
        $this->assertTrue($report['ok'], json_encode($report, JSON_UNESCAPED_UNICODE));
        $this->assertSame($appid, $report['appid']);
        $this->assertSame([], $report['problems']);
        $this->assertSame([], $report['warnings']);
        $this->assertFalse($report['templates']['cached']);
        $this->assertTrue($this->n->checkMappings($appid, Shop::mappings())['templates']['cached']);
        $this->assertFalse($this->n->checkMappings($appid, null, true)['templates']['cached']);
    }

    public function testEveryKindOfProblemIsReportedWithItsPath(): void
    {
        $appid = Shop::registered($this->n);
        $doc = ['version' => 1, 'events' => [
            'order_pay_success' => ['template_id' => 'no-such-template', 'data' => ['thing3' => '{order_total_goods_name}']],
            'order_delivered' => ['template_id' => Shop::TPL_DELIVERED, 'data' => [
                'character_string1' => '{order_sn}', 'thing2' => '{express_company}',
                'character_string3' => '{tracking_no}', 'thing9' => '{order_total_goods_name}',
                'site01' => '{express_company}',
            ]],
            'order_cancel' => ['template_id' => self::TPL_CANCEL, 'data' => [
                'character_string1' => '{order_sn}', 'amount2' => '{order_sn}',
                'thing3' => '{cancel_reason}', 'time4' => '{order_cancel_time|datetime}',
            ]],
            'order_refund_apply' => ['template_id' => self::TPL_ORDER_STATUS, 'data' => [
                'character_string1' => '{order_sn}', 'enum_string2' => '已退款',
                'thing3' => '退款处理中', 'time4' => '{refund_apply_time|datetime}',
            ]],
            'order_pay_fail' => ['template_id' => self::TPL_ORDER_STATUS, 'data' => [
                'character_string1' => '{order_sn}', 'enum_string2' => '{fail_reason}',
                'thing3' => '支付失败', 'time4' => '{order_create_time|datetime}',
            ]],
        ]];
        $report = $this->n->checkMappings($appid, $doc);
        $this->assertFalse($report['ok']);
        $this->assertSame([
            'events.order_cancel.data.amount2 value_cannot_fit',
            'events.order_delivered.data.site01 keyword_not_in_template',
            'events.order_delivered.data.thing9 keyword_not_in_template',
            'events.order_delivered.data.time4 keyword_not_mapped',
            'events.order_pay_fail.data.enum_string2 enum_value_not_allowed',
            'events.order_pay_success.template_id unknown_template',
            'events.order_refund_apply.data.enum_string2 enum_value_not_allowed',
        ], self::found($report['problems']));
        $this->assertSame(['events.order_delivered.data.site01 unknown_keyword_type'], self::found($report['warnings']));
        $byPath = array_column($report['problems'], 'message', 'path');
        $this->assertStringContainsString('2026112221300001', $byPath['events.order_cancel.data.amount2']);
        $this->assertStringContainsString('已支付, 已发货, 已签收, 已取消', $byPath['events.order_refund_apply.data.enum_string2']);

        // A document that does not load reports its own problems; the loaded one stays.
        $report = $this->n->checkMappings($appid, '{"version": 1, "events": {"order_cancel": {"template_id": "t", "data": {"thing1": "{x}"}}}}');
        $this->assertSame(['events.order_cancel.data.thing1 invalid_mapping'], self::found($report['problems']));
        $this->assertNull($report['templates']);
        $this->assertSame(Shop::TPL_PAY_SUCCESS, $this->n->getMappings($appid)['events']['order_pay_success']['template_id']);
    }

    public function testBadInputIsRefusedClearly(): void
    {
        $appid = Shop::registered($this->n);
        foreach ([
            ['{"version": ', 'mappings_json is not valid JSON'],
            ["\xff\xfe", 'mappings_json is not valid UTF-8'],
        ] as [$doc, $want]) {
            try {
                $this->n->checkMappings($appid, $doc);
                $this->fail("no exception for $want");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($want, $e->getMessage());
                $this->assertSame($e->getMessage(), $this->n->lastError());
            }
        }
    }

    public function testUnknownAppNoDocumentAndWeChatFailures(): void
    {
        try {
            $this->n->checkMappings('wxunknown0000001');
            $this->fail('no exception');
        } catch (AppNotConfiguredException $e) {
            $this->assertStringContainsString('wxunknown0000001', $e->getMessage());
        }
        [$appid, $secret] = Shop::newApp();
        $this->n->registerApp(['appid' => $appid, 'secret' => $secret, 'api_base' => Sandbox::url()]);
        try {
            $this->n->checkMappings($appid);
            $this->fail('no exception');
        } catch (MappingException $e) {
            $this->assertStringContainsString('no mapping document is loaded', $e->getMessage());
        }
        try {
            $this->n->checkMappings($appid, "{\"version\":1\0}");
            $this->fail('no exception');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('NUL', $e->getMessage());
        }
        Sandbox::control('POST', '/sandbox/faults', ['path' => '/wxaapi/newtmpl/gettemplate', 'errcode' => -1, 'count' => 1]);
        try {
            $this->n->checkMappings($appid, Shop::mappings(), true);
            $this->fail('no exception');
        } catch (WeChatException $e) {
            $this->assertSame(-1, $e->getErrcode());
        }
        $this->assertTrue($this->n->checkMappings($appid, Shop::mappings())['ok']);
    }

    public function testKeywordTypesListEveryRuleWithItsSource(): void
    {
        $types = array_column($this->n->keywordTypes(), null, 'type');
        foreach (['thing', 'number', 'letter', 'symbol', 'character_string', 'time', 'date', 'amount',
                  'phone_number', 'car_number', 'name', 'phrase', 'const', 'enum_string', 'short_thing', 'other'] as $type) {
            $this->assertArrayHasKey($type, $types);
            $source = $types[$type]['source'];
            $this->assertTrue($source === 'unverified' || str_starts_with($source, 'https://'), $source);
        }
        $this->assertSame(20, $types['thing']['limit']);
        $this->assertSame(5, $types['short_thing']['limit']);
        $this->assertSame('unverified', $types['short_thing']['source']);
        $this->assertSame(['enum_string', 'enum'], $types['enum_string']['prefixes']);
        $this->assertContains('2018.01.01', $types['date']['examples']);
    }
}
