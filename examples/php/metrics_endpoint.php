<?php
// GET /metrics for Prometheus: the shop's notification figures. With the SQLite or
// Redis store one scrape shows what every worker process sent. Serve it as a FaShop
// route, or on its own: FASHOP_NOTIFY_STORE=sqlite:/var/lib/fashop/notify.db php -S 127.0.0.1:9464 metrics_endpoint.php
// With FASHOP_NOTIFY_RUNNER_METRICS naming the metrics_file of flush_runner.php, the runner's figures follow.
declare(strict_types=1);

require __DIR__ . '/package.php';

use FaShop\Notify\FlushRunner;
use FaShop\Notify\Notifier;

$n = Notifier::load();
$n->configure(['store' => getenv('FASHOP_NOTIFY_STORE') ?: 'sqlite:/var/lib/fashop/notify.db']);
$json = ($_GET['format'] ?? '') === 'json';
if (PHP_SAPI !== 'cli') {
    header($json ? 'Content-Type: application/json' : 'Content-Type: text/plain; version=0.0.4');
}
echo $n->metrics($json ? 'json' : 'prometheus');
$runnerFile = getenv('FASHOP_NOTIFY_RUNNER_METRICS');
if (!$json && is_string($runnerFile) && $runnerFile !== '' && is_array($runner = json_decode((string) @file_get_contents($runnerFile), true))) {
    echo FlushRunner::prometheus($runner);
}
