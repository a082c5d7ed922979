<?php
// Service cards end to end against the WeChat sandbox: a buyer who never tapped
// "allow" pays, the shop ships, and the order's card shows each step (card 2001:
// 用户已支付, then 已发货) with no subscription at all. The transaction id is the
// one WeChat Pay's notify gave the shop.
//
// Run it with `make demo`, or by hand with FASHOP_NOTIFY_LIB and FASHOP_NOTIFY_SANDBOX_URL set.
declare(strict_types=1);

require __DIR__ . '/package.php';

use FaShop\Notify\Notifier;

$sandbox = rtrim((string) getenv('FASHOP_NOTIFY_SANDBOX_URL'), '/');
$appid = 'wxdemo0000000001';
$openid = 'oDemoBuyer_card_0001';          // never tapped "allow"
$transactionId = '4200002187202611231024000001'; // WeChat Pay notify: transaction_id

/** A call to the sandbox's control API (what WeChat and WeChat Pay know). */
function sandbox(string $method, string $path, ?array $body = null): array
{
    $ctx = stream_context_create(['http' => [
        'method' => $method,
        'header' => "Content-Type: application/json\r\n",
        'content' => $body === null ? '' : json_encode($body, JSON_THROW_ON_ERROR),
        'ignore_errors' => true,
    ]]);
    $answer = file_get_contents($GLOBALS['sandbox'] . $path, false, $ctx);
    return json_decode((string) $answer, true, 512, JSON_THROW_ON_ERROR);
}

$n = Notifier::load();
$n->configure(['api_base' => $sandbox]);
$n->registerApp(['appid' => $appid, 'secret' => 'demo-app-secret-0001']);
$card = static fn (int $status, array $fields): array => ['channel' => 'card', 'card' => ['notify_type' => 2001, 'status' => $status, 'fields' => $fields]];
$page = ['wxa_path_query' => 'pages/order/detail?id={order_id}'];
$n->loadMappings($appid, ['version' => 1, 'events' => [
    'order_pay_success' => $card(1, $page + ['product_count' => '{order_total_goods_num}', 'product_list' => '{order_goods}']),
    'order_delivered' => $card(4, $page),
]]);

// The buyer pays: WeChat Pay knows the payment (the sandbox is told of it).
$payTime = time();
sandbox('POST', '/sandbox/users', ['appid' => $appid, 'openid' => $openid]);
sandbox('POST', '/sandbox/payments', ['appid' => $appid, 'transaction_id' => $transactionId, 'openid' => $openid,
    'amount' => 19900, 'pay_time' => $payTime, 'valid_after_secs' => 0]);
$order = ['touser' => $openid, 'fields' => [
    'order_id' => 1024, 'order_sn' => 'SN2026112300001024', 'transaction_id' => $transactionId,
    'order_amount' => '199.00', 'pay_time' => $payTime, 'order_total_goods_num' => 1,
    'order_goods' => [['title' => '秋冬加厚连衣裙', 'image' => 'https://img.example/goods/1.png', 'count' => 1,
        'price' => '199.00', 'path' => 'pages/goods/detail?id=77']],
]];

$labels = [1 => '用户已支付', 4 => '已发货'];
foreach (['order_pay_success' => 'payment received', 'order_delivered' => 'order shipped'] as $event => $what) {
    $outcome = $n->send($appid, $event, $order);
    $c = $outcome->card();
    printf("%-16s card %d status %d (%s): %s\n", $what, $c['notify_type'], $c['status'], $labels[$c['status']], $c['result']);
}
$again = $n->send($appid, 'order_pay_success', $order)->card();
echo "pay notify again: {$again['result']}\n";

$mine = $n->cardStatus($appid, $transactionId, $openid, 2001);
echo 'the shop\'s record: statuses ', json_encode($mine['statuses']), ', WeChat\'s code_state ', $mine['wechat']['code_state'], "\n";
$wechat = sandbox('GET', "/sandbox/cards?appid=$appid&transaction_id=$transactionId")['card'];
echo 'what WeChat shows the buyer: statuses ', json_encode($wechat['statuses']), ', subscribe messages: ',
    count(sandbox('GET', "/sandbox/delivered?appid=$appid&openid=$openid")['messages']), "\n";
