<?php
// Bench worker: this library through its PHP package (FFI), one process, one
// permit per message recorded with addPermit, as the shop's grant endpoint does.
declare(strict_types=1);

require __DIR__ . '/common.php';
require __DIR__ . '/../../bindings/php/autoload.php';

use FaShop\Notify\Exception\NotifyException;
use FaShop\Notify\Notifier;

$args = bench_args();
$worker = (string) $args['worker'];
$appid = (string) $args['appid'];
$openid = bench_openid($worker);

$n = Notifier::load(isset($args['lib']) ? (string) $args['lib'] : null);
// Bulk grants for one buyer: beyond the default cap per template.
$config = ['api_base' => (string) $args['api-base'], 'store' => (string) $args['store'], 'subscribe_cap_per_template' => 100_000];
if (isset($args['token-margin-secs'])) {
    $config['token_margin_secs'] = (int) $args['token-margin-secs'];
}
$n->configure($config);
$n->registerApp(['appid' => $appid, 'secret' => (string) $args['secret']]);
$n->loadMappings($appid, (string) file_get_contents(__DIR__ . '/../../examples/mappings.json'));
if (!isset($args['no-seed'])) {
    $left = (int) $args['per-thread'] * (int) $args['phases'];
    while ($left > 0) {
        $count = min($left, 1000);
        $n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => BENCH_TEMPLATE, 'count' => $count]);
        $left -= $count;
    }
}

bench_run($args, function (int $i) use ($n, $appid, $openid, $worker): ?string {
    try {
        $outcome = $n->send($appid, 'order_pay_success', ['touser' => $openid, 'fields' => bench_order($worker, $i)]);
        return $outcome->status === 'sent' ? null : "status {$outcome->status}";
    } catch (NotifyException $e) {
        return get_class($e) . ': ' . $e->getMessage();
    }
});
