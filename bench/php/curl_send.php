<?php
// Bench worker: the subscribe-message client a shop developer writes by hand
// with PHP's curl: one keep-alive handle, the access token cached in a file
// (read on every send, fetched from /cgi-bin/token when missing or near its
// end, fetched again once on a token error), the body built with json_encode.
// No permit bookkeeping: WeChat's 43101 is the only check.
declare(strict_types=1);

require __DIR__ . '/common.php';

$args = bench_args();
$worker = (string) $args['worker'];
$base = rtrim((string) $args['api-base'], '/');
$appid = (string) $args['appid'];
$secret = (string) $args['secret'];
$tokenFile = (string) ($args['token-file'] ?? sys_get_temp_dir() . "/wx_token_$appid.json");
$openid = bench_openid($worker);

$ch = curl_init();
curl_setopt_array($ch, [
    CURLOPT_RETURNTRANSFER => true,
    CURLOPT_CONNECTTIMEOUT => 3,
    CURLOPT_TIMEOUT => 5,
    CURLOPT_HTTPHEADER => ['Content-Type: application/json'],
]);

function get_access_token(bool $refresh = false): string
{
    global $ch, $base, $appid, $secret, $tokenFile;
    if (!$refresh && is_file($tokenFile)) {
        $cached = json_decode((string) file_get_contents($tokenFile), true);
        if (is_array($cached) && $cached['expires_at'] - 300 > time()) {
            return $cached['access_token'];
        }
    }
    curl_setopt($ch, CURLOPT_HTTPGET, true);
    curl_setopt($ch, CURLOPT_URL, "$base/cgi-bin/token?grant_type=client_credential&appid=$appid&secret=$secret");
    $res = json_decode((string) curl_exec($ch), true);
    if (!isset($res['access_token'])) {
        throw new RuntimeException('token: ' . ($res['errmsg'] ?? curl_error($ch)));
    }
    file_put_contents($tokenFile, json_encode([
        'access_token' => $res['access_token'],
        'expires_at' => time() + (int) $res['expires_in'],
    ]), LOCK_EX);
    return $res['access_token'];
}

function send_subscribe(string $touser, array $order): array
{
    global $ch, $base;
    $body = json_encode([
        'touser' => $touser,
        'template_id' => BENCH_TEMPLATE,
        'page' => '/pages/order/detail?id=' . $order['order_id'],
        'miniprogram_state' => 'formal',
        'lang' => 'zh_CN',
        'data' => [
            'character_string1' => ['value' => $order['order_sn']],
            'amount2' => ['value' => '¥' . $order['order_amount']],
            'thing3' => ['value' => mb_substr($order['order_total_goods_name'], 0, 20)],
            'time4' => ['value' => date('Y-m-d H:i', $order['pay_time'])],
        ],
    ], JSON_UNESCAPED_UNICODE);
    $res = [];
    for ($try = 0; $try < 2; $try++) {
        $token = get_access_token($try > 0);
        curl_setopt($ch, CURLOPT_URL, "$base/cgi-bin/message/subscribe/send?access_token=$token");
        curl_setopt($ch, CURLOPT_POST, true);
        curl_setopt($ch, CURLOPT_POSTFIELDS, $body);
        $res = json_decode((string) curl_exec($ch), true) ?? ['errcode' => -2, 'errmsg' => curl_error($ch)];
        if (!in_array($res['errcode'] ?? 0, [40001, 42001], true)) {
            break;
        }
    }
    return $res;
}

date_default_timezone_set('Asia/Shanghai');
bench_run($args, function (int $i) use ($openid, $worker): ?string {
    try {
        $res = send_subscribe($openid, bench_order($worker, $i));
    } catch (RuntimeException $e) {
        return $e->getMessage();
    }
    return ($res['errcode'] ?? 0) === 0 ? null : "errcode {$res['errcode']}: {$res['errmsg']}";
});
