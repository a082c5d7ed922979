<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use PHPUnit\Framework\TestCase;

/**
 * Runs the PHP blocks of docs/fashop-integration.md, in order, as the shop's code,
 * through a whole order's life against the sandbox.
 *
 * @runTestsInSeparateProcesses
 * @preserveGlobalState disabled
 */
final class GuideTest extends TestCase
{
    /** The guide's ```php blocks, joined into one file with its imports hoisted. */
    public static function guideCode(): string
    {
        $doc = (string) file_get_contents(Shop::root() . '/docs/fashop-integration.md');
        preg_match_all('/^```php\n(.*?)^```$/ms', $doc, $m);
        $uses = [];
        $body = '';
        foreach ($m[1] as $block) {
            $block = preg_replace('/^<\?php\n/', '', $block);
            $block = preg_replace_callback('/^use [^;]+;\n/m', function ($u) use (&$uses) {
                $uses[$u[0]] = true;
                return '';
            }, $block);
            $body .= $block . "\n";
        }
        return "<?php\ndeclare(strict_types=1);\n" . implode('', array_keys($uses)) . "\n" . $body;
    }

    public function testTheGuideRunsAgainstTheSandbox(): void
    {
        $code = self::guideCode();
        $this->assertGreaterThanOrEqual(6, substr_count($code, "\nfunction "), 'the guide lost its snippets');
        $dir = sys_get_temp_dir() . '/fashop-notify-guide-' . bin2hex(random_bytes(4));
        mkdir($dir, 0700);
        file_put_contents("$dir/guide.php", $code);
        putenv("FASHOP_NOTIFY_STORE=sqlite:$dir/notify.db");
        putenv('FASHOP_NOTIFY_API_BASE=' . Sandbox::url());
        ini_set('error_log', "$dir/shop.log"); // the shop's log, checked below
        require "$dir/guide.php";

        [$appid, $secret] = Shop::newApp();
        $wechat = ['mini_app_id' => $appid, 'mini_app_secret' => $secret]; // fa_setting key='wechat'
        $n = \shop_notifier($wechat, Shop::mappings());
        $this->assertSame($n->getMappings($appid), \shop_notifier($wechat, Shop::mappings())->getMappings($appid));

        // Admin: templates with keywords, a bad mapping shown with its path, the preview.
        $templates = \admin_templates($n, $appid);
        $this->assertSame('支付成功通知', $templates[Shop::TPL_PAY_SUCCESS]['title']);
        $this->assertSame(['character_string1' => '订单号', 'amount2' => '支付金额', 'thing3' => '商品名称', 'time4' => '支付时间'], $templates[Shop::TPL_PAY_SUCCESS]['keywords']);
        $doc = json_decode(Shop::mappings(), true, 512, JSON_THROW_ON_ERROR);
        $bad = $doc;
        $bad['events']['order_delivered']['data']['thing2'] = '{express}';
        $this->assertStringContainsString('events.order_delivered.data.thing2', (string) \admin_save_mappings($n, $appid, $bad));
        $this->assertNull(\admin_save_mappings($n, $appid, $doc));
        $this->assertSame([], \admin_check_mappings($n, $appid));
        $misfit = $doc;
        $misfit['events']['order_cancel']['data']['amount2'] = '{order_sn}';
        unset($misfit['events']['order_delivered']['data']['time4']);
        $this->assertSame(
            ['events.order_cancel.data.amount2', 'events.order_delivered.data.time4'],
            array_keys(\admin_check_mappings($n, $appid, $misfit))
        );

        $order = ['id' => 1024, 'sn' => 'SN2026112300001024', 'amount' => '219.00', 'revise_amount' => '199.00', 'goods_num' => 3,
            'create_time' => 1795426200, 'payment_time' => 1795426265];
        $goods = [['goods_title' => '秋冬加厚连衣裙'], ['goods_title' => '羊毛围巾']];
        $fields = \order_fields($order, $goods, ['express_company' => '顺丰速运', 'tracking_no' => 'SF1234567890123', 'delivery_time' => 1795500000]);
        $this->assertSame('199.00', $fields['order_amount']);
        $this->assertSame('秋冬加厚连衣裙, 羊毛围巾', $fields['order_total_goods_name']);
        $preview = \admin_preview($n, $appid, 'order_pay_success', 'o-guide', $fields);
        $this->assertSame('¥199.00', $preview['data']['amount2']['value']);
        $this->assertSame('pages/order/detail?id=1024', $preview['page']);

        // The mini program's taps reach WeChat, and their results reach the permit endpoint.
        $openid = 'o-guide-buyer';
        foreach ([Shop::TPL_PAY_SUCCESS, Shop::TPL_DELIVERED] as $tpl) {
            Sandbox::control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => $tpl]);
        }
        $cancel = $doc['events']['order_cancel']['template_id'];
        $refund = $doc['events']['order_refund_apply']['template_id'];
        $accepted = \record_subscribe_result($n, $appid, $openid, [
            Shop::TPL_PAY_SUCCESS => 'accept', Shop::TPL_DELIVERED => 'accept', $cancel => 'reject', $refund => 'ban', 'errMsg' => 'requestSubscribeMessage:ok',
        ]);
        $this->assertSame([Shop::TPL_PAY_SUCCESS, Shop::TPL_DELIVERED], $accepted);
        // A flood of made-up template ids adds nothing.
        $flood = array_fill_keys(array_map(fn ($i) => "tpl-$i", range(1, 1000)), 'accept');
        $this->assertSame([], \record_subscribe_result($n, $appid, $openid, $flood));
        $this->assertFalse(\record_form_id($n, $appid, $openid, 'the formId is a mock one'));
        $this->assertTrue(\record_form_id($n, $appid, $openid, 'form-' . bin2hex(random_bytes(4))));
        \record_prepay_id($n, $appid, $openid, 'wx2026112300001024', $order['sn'], false);
        $stats = $n->ledgerStats($appid, $openid);
        $this->assertSame(3, $stats['total_uses'], 'two grants and a form_id; the prepay_id counts once paid');
        $this->assertSame(1, $stats['prepay_id']['unpaid']);

        // The order's life.
        $this->assertSame('sent', \notify_order_event($n, $appid, $openid, 'order_pay_success', $fields));
        $this->assertSame('duplicate', \notify_order_event($n, $appid, $openid, 'order_pay_success', $fields), 'the pay notify repeated');
        $this->assertSame('no_permit', \notify_order_event($n, $appid, $openid, 'order_cancel', $fields + ['order_cancel_time' => 1795430000]), 'the buyer rejected it');
        $this->assertSame('sent', \notify_order_event($n, $appid, $openid, 'order_delivered', $fields));
        $got = Shop::delivered($appid, $openid);
        $this->assertSame([Shop::TPL_PAY_SUCCESS, Shop::TPL_DELIVERED], array_column($got, 'template_id'));
        $this->assertSame('顺丰速运', $got[1]['data']['thing2']['value']);

        // An event still mapped to a legacy template: WeChat answers 45103.
        $legacy = $doc;
        $legacy['events']['order_refund_apply'] = ['kind' => 'template', 'template_id' => '0nLfYmF9jA7ej3QrZP1IWbz1db74J50b-BTZF4agJo9',
            'data' => ['keyword1' => '{order_sn}', 'keyword2' => '{refund_amount|money}', 'keyword3' => '{refund_reason|default:无}', 'keyword4' => '{refund_apply_time|datetime}']];
        $this->assertNull(\admin_save_mappings($n, $appid, $legacy));
        $this->assertSame('template_api_withdrawn', \notify_order_event($n, $appid, $openid, 'order_refund_apply',
            $fields + ['refund_sn' => 'RF2026112300000001', 'refund_amount' => '199.00', 'refund_apply_time' => 1795500000]));
        $this->assertCount(2, Shop::delivered($appid, $openid));
        $log = (string) file_get_contents("$dir/shop.log");
        $this->assertStringContainsString('notify order_refund_apply: switch this event to a subscribe template', $log);
        $this->assertStringContainsString('45103', $log);
        $this->assertSame(1, substr_count($log, 'notify '), 'only the withdrawn API was logged: ' . $log);

        // The pay callback queues the notice; the task worker sends it.
        Sandbox::control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => Shop::TPL_PAY_SUCCESS]);
        \record_subscribe_result($n, $appid, $openid, [Shop::TPL_PAY_SUCCESS => 'accept']);
        $next = ['order_id' => 1025, 'order_sn' => 'SN2026112300001025'] + $fields;
        $this->assertIsInt(\queue_order_event($n, $appid, $openid, 'order_pay_success', $next));
        $this->assertCount(2, Shop::delivered($appid, $openid), 'queued, not sent');
        $this->assertSame(['sent' => 1, 'retry' => 0, 'dead' => 0], \outbox_task($n, $appid));
        $this->assertSame('SN2026112300001025', Shop::delivered($appid, $openid)[2]['data']['character_string1']['value']);
        $this->assertSame(['sent' => 0, 'retry' => 0, 'dead' => 0], \outbox_task($n, $appid), 'sent once');

        // WeChat cannot be reached during the pay notify: the notice waits in the outbox.
        Sandbox::control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => Shop::TPL_PAY_SUCCESS]);
        \record_subscribe_result($n, $appid, $openid, [Shop::TPL_PAY_SUCCESS => 'accept']);
        $closed = stream_socket_server('tcp://127.0.0.1:0');
        $down = 'http://' . stream_socket_get_name($closed, false);
        fclose($closed);
        $n->configure(['api_base' => $down]);
        $late = ['order_id' => 1026, 'order_sn' => 'SN2026112300001026'] + $fields;
        $this->assertSame('queued', \notify_order_event($n, $appid, $openid, 'order_pay_success', $late));
        $this->assertSame('queued', \notify_order_event($n, $appid, $openid, 'order_pay_success', $late), 'the pay notify repeated');
        $this->assertSame(1, $n->outboxStats($appid)['pending']);
        $n->configure(['api_base' => Sandbox::url()]);
        $this->assertSame(['sent' => 1, 'retry' => 0, 'dead' => 0], \outbox_task($n, $appid));
        $this->assertSame('SN2026112300001026', Shop::delivered($appid, $openid)[3]['data']['character_string1']['value']);
        $this->assertSame('duplicate', \notify_order_event($n, $appid, $openid, 'order_pay_success', $late));

        // One token for EasyWeChat too.
        [$token, $left] = \wechat_token($n, $appid);
        $this->assertSame($n->accessToken($appid), $token);
        $this->assertGreaterThan(7000, $left);
        $this->assertSame(1, Shop::tokenFetches($appid));
        $ext = 'wx' . bin2hex(random_bytes(8));
        \share_easywechat_token($n, $ext, 'token-from-easywechat', 7200);
        $this->assertSame('token-from-easywechat', $n->accessToken($ext));

        // The ready-made admin on FaShop's tables (SQLite here, MySQL in the shop).
        $db = new \PDO('sqlite::memory:');
        $db->exec('CREATE TABLE fa_setting (`key` VARCHAR(64) PRIMARY KEY, `config` TEXT)');
        $db->exec('CREATE TABLE fa_order (id INTEGER PRIMARY KEY, sn TEXT, amount TEXT, revise_amount TEXT, goods_num INT, create_time INT, payment_time INT)');
        $db->exec('CREATE TABLE fa_order_goods (order_id INT, goods_title TEXT)');
        $db->prepare('INSERT INTO fa_order VALUES (?, ?, ?, ?, ?, ?, ?)')->execute(array_values($order));
        foreach ($goods as $g) {
            $db->prepare('INSERT INTO fa_order_goods VALUES (?, ?)')->execute([$order['id'], $g['goods_title']]);
        }
        $admin = \notify_admin($wechat, $db);
        $this->assertSame('unmapped', array_column($admin->events()['data']['events'], 'state', 'event')['order_pay_success']);
        $saved = $admin->saveMapping('order_pay_success', $doc['events']['order_pay_success']);
        $this->assertTrue($saved['ok'], json_encode($saved, JSON_UNESCAPED_UNICODE));
        $preview = $admin->preview('order_pay_success', ['order_id' => 1024])['data'];
        $this->assertSame('¥199.00', array_column($preview['keywords'], 'value', 'name')['amount2']);
        $this->assertStringEndsWith('pages/order/detail?id=1024', $preview['body']['page']);
        [$status, $json] = \notify_admin_answer($admin->event('order_paid'));
        $this->assertSame(404, $status);
        $this->assertSame('unknown_event', json_decode($json, true)['error']['code']);
        $config = json_decode((string) $db->query("SELECT `config` FROM fa_setting WHERE `key` = 'wechat_mini_template'")->fetchColumn(), true);
        $this->assertSame(Shop::TPL_PAY_SUCCESS, $config['template_list'][0]['template_id']);
        $this->assertSame('mini_program_not_configured', \notify_admin([], $db)->templates()['error']['code']);

        // The store's health route.
        [$status, $json] = \notify_health($n);
        $this->assertSame(200, $status);
        $this->assertSame("sqlite:$dir/notify.db", json_decode($json, true)['store']);

        // Once the settings row holds the push token, shop_notifier registers the push too:
        // the php-fpm endpoint answers WeChat's URL check from the superglobals.
        $pushed = $wechat + ['push_token' => 'guidepushtoken', 'push_aes_key' => 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG'];
        $pn = \shop_notifier($pushed, Shop::mappings());
        $ts = (string) time();
        $parts = ['guidepushtoken', $ts, 'guidenonce'];
        sort($parts, SORT_STRING);
        $_SERVER['REQUEST_METHOD'] = 'GET';
        $_SERVER['QUERY_STRING'] = http_build_query(['signature' => sha1(implode('', $parts)), 'timestamp' => $ts, 'nonce' => 'guidenonce', 'echostr' => 'guide-echo']);
        ob_start();
        $answer = \wechat_push($pn, $appid); // shop_notifier() without the token would answer 503: no push credentials
        $this->assertSame('guide-echo', ob_get_clean());
        $this->assertSame(200, $answer['status']);
        $_SERVER['QUERY_STRING'] = (string) preg_replace('/signature=\w+/', 'signature=' . str_repeat('0', 40), $_SERVER['QUERY_STRING']);
        ob_start();
        $this->assertSame(403, \wechat_push($pn, $appid)['status']);
        $this->assertSame('forbidden', ob_get_clean());

        // The store's file is deleted under the worker: the notice is neither sent nor
        // kept, and the WeChat Pay notify answers FAIL so that WeChat Pay notifies again.
        $this->assertStringContainsString('SUCCESS', \wechat_pay_reply('sent'));
        $this->assertStringContainsString('SUCCESS', \wechat_pay_reply('queued'));
        array_map('unlink', glob("$dir/*") ?: []);
        $gone = ['order_id' => 1027, 'order_sn' => 'SN2026112300001027'] + $fields;
        $this->assertSame('store_down', \notify_order_event($n, $appid, $openid, 'order_pay_success', $gone));
        $this->assertStringContainsString('<return_code><![CDATA[FAIL]]>', \wechat_pay_reply('store_down'));
        $this->assertStringContainsString('<return_code><![CDATA[FAIL]]>', \wechat_pay_reply('in_progress'));
        $this->assertCount(4, Shop::delivered($appid, $openid), 'nothing sent while the store is gone');

        array_map('unlink', glob("$dir/*") ?: []);
        rmdir($dir);
    }

    public function testPreloadCommandOfTheGuideWritesTheHeader(): void
    {
        $doc = (string) file_get_contents(Shop::root() . '/docs/fashop-integration.md');
        $this->assertMatchesRegularExpression('/^php \S+\/preload\.php --header (\S+) (\S+)$/m', $doc);
        $this->assertStringContainsString('ffi.preload=/etc/php/8.2/fashop-notify/fashop_notify.scope.h', $doc, 'the ini names the file the command writes');
        $dir = sys_get_temp_dir() . '/fashop-notify-hdr-' . bin2hex(random_bytes(4));
        mkdir($dir);
        $out = shell_exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(dirname(__DIR__) . '/preload.php') . ' --header ' . escapeshellarg($dir) . ' ' . escapeshellarg(Shop::library()));
        $this->assertSame("$dir/fashop_notify.scope.h\n", $out);
        $this->assertStringStartsWith('#define FFI_SCOPE "FASHOP_NOTIFY"', (string) file_get_contents("$dir/fashop_notify.scope.h"));
        unlink("$dir/fashop_notify.scope.h");
        rmdir($dir);
    }
}
