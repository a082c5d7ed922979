<?php
// Bench worker: a backlog in the SQLite outbox, as a shop's pay callbacks leave
// it. Enqueues --per-thread messages (timed: the pay callback's cost), says
// ready, and on go drains them in one flush with --lanes requests side by side
// (the bench injects WeChat's latency in between). One process, as the shop's
// cron flush is.
declare(strict_types=1);

require __DIR__ . '/common.php';
require __DIR__ . '/../../bindings/php/autoload.php';

use FaShop\Notify\Notifier;

$o = getopt('', ['lanes:']);
$args = bench_args();
$worker = (string) $args['worker'];
$appid = (string) $args['appid'];
$openid = bench_openid($worker);
$count = (int) $args['per-thread'];

$n = Notifier::load(isset($args['lib']) ? (string) $args['lib'] : null);
$n->configure([
    'api_base' => (string) $args['api-base'],
    'store' => (string) $args['store'],
    'subscribe_cap_per_template' => 100_000,
    'outbox' => ['concurrency' => (int) ($o['lanes'] ?? 64)],
]);
$n->registerApp(['appid' => $appid, 'secret' => (string) $args['secret']]);
$n->loadMappings($appid, (string) file_get_contents(__DIR__ . '/../../examples/mappings.json'));
for ($left = $count; $left > 0; $left -= 1000) {
    $n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => BENCH_TEMPLATE,
        'count' => min($left, 1000)]);
}
$t0 = hrtime(true);
for ($i = 0; $i < $count; $i++) {
    $n->enqueue($appid, 'order_pay_success', ['touser' => $openid, 'fields' => bench_order($worker, $i)]);
}
$enqueueNs = (hrtime(true) - $t0) / max(1, $count);

bench_say('ready');
bench_wait();
$t0 = hrtime(true);
$report = $n->flush($appid, $count);
$elapsed = (hrtime(true) - $t0) / 1e9;
$stats = $n->outboxStats($appid);
bench_say(json_encode([
    'enqueue_us' => $enqueueNs / 1000,
    'drain_s' => $elapsed,
    'sent' => (int) ($report['sent'] ?? 0),
    'due_left' => (int) ($report['due_left'] ?? -1),
    'outbox_sent' => (int) ($stats['sent'] ?? -1),
], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES));
