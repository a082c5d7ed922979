<?php
// FaShop end to end against the WeChat sandbox: register the mini program, load the
// admin's keyword mappings, record the buyer's subscription grants as the shop's
// grant-collection endpoint would, fire "payment received" and "order shipped", and
// show what WeChat received.
//
// Run it with `make demo`, or by hand with FASHOP_NOTIFY_LIB and FASHOP_NOTIFY_SANDBOX_URL set.
declare(strict_types=1);

require __DIR__ . '/package.php';
require __DIR__ . '/sandbox_tap.php';

use FaShop\Notify\Exception\NoPermitException;
use FaShop\Notify\Notifier;

$sandbox = (string) getenv('FASHOP_NOTIFY_SANDBOX_URL');
$appid = 'wxdemo0000000001';          // fa_setting key='wechat': mini_app_id
$secret = 'demo-app-secret-0001';     // fa_setting key='wechat': mini_app_secret
$openid = 'oDemoBuyer_php_0001';      // fa_user_open.mini_openid

function show(string $title, mixed $value): void
{
    echo "\n== $title\n";
    echo is_string($value) ? $value : json_encode($value, JSON_PRETTY_PRINT | JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES);
    echo "\n";
}

$n = Notifier::load();
echo "fashop-notify ", $n->version(), " (PHP ", PHP_VERSION, ", FFI)\n";
$n->configure(['api_base' => $sandbox]);
$n->registerApp(['appid' => $appid, 'secret' => $secret]);
// examples/mappings.json in a clone; beside this script when installed.
$n->loadMappings($appid, (string) file_get_contents(is_file(__DIR__ . '/mappings.json') ? __DIR__ . '/mappings.json' : __DIR__ . '/../mappings.json'));
$events = $n->getMappings($appid)['events'];

// The buyer allows "payment received" and "order shipped" in the mini program;
// the shop's endpoint records each grant in the ledger.
foreach (['order_pay_success', 'order_delivered'] as $event) {
    $tpl = $events[$event]['template_id'];
    sandbox_tap($appid, $openid, $tpl);
    $n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => $tpl]);
}
show('ledger after the grants', $n->ledgerStats($appid, $openid));

$order = [
    'order_id' => 1024,
    'order_sn' => 'SN2026112300001024',
    'order_amount' => '199.00',
    'order_total_goods_name' => '秋冬加厚连衣裙 x1, 羊毛围巾 x2',
    'order_total_goods_num' => 3,
    'order_create_time' => 1795426200,
    'pay_time' => 1795426265,
    'express_company' => '顺丰速运',
    'tracking_no' => 'SF1234567890123',
    'delivery_time' => '2026-11-24 09:30:00',
    'order_cancel_time' => 1795430000,
    'cancel_reason' => '买家取消',
];
$payload = ['touser' => $openid, 'fields' => $order];

show('render order_pay_success (the admin preview)', $n->render($appid, 'order_pay_success', $payload));
$paid = $n->send($appid, 'order_pay_success', $payload);
show('send order_pay_success', $paid->raw);
$again = $n->send($appid, 'order_pay_success', $payload);
show('the pay callback retried: same idempotency key', ['status' => $again->status, 'errmsg' => $again->errmsg]);
$shipped = $n->send($appid, 'order_delivered', $payload);
show('send order_delivered', $shipped->raw);

try {
    $n->send($appid, 'order_cancel', $payload);
} catch (NoPermitException $e) {
    show('send order_cancel without a grant', get_class($e) . ': ' . $e->getMessage());
}

$received = json_decode((string) file_get_contents("$sandbox/sandbox/delivered?appid=$appid&openid=$openid"), true);
show('what WeChat (the sandbox) delivered to the buyer', $received);
show('ledger after the sends', $n->ledgerStats($appid, $openid));

$ok = $paid->status === 'sent' && $again->status === 'duplicate' && $shipped->status === 'sent';
echo $ok ? "\nPHP demo: OK\n" : "\nPHP demo: FAILED\n";
exit($ok ? 0 : 1);
