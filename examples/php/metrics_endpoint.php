<?php
// GET /metrics for Prometheus: the shop's notification figures. With the SQLite or
// Redis store one scrape shows what every worker process sent. Serve it as a FaShop
// route, or on its own: FASHOP_NOTIFY_STORE=sqlite:/var/lib/fashop/notify.db php -S 127.0.0.1:9464 metrics_endpoint.php
declare(strict_types=1);

require __DIR__ . '/../../bindings/php/autoload.php';

use FaShop\Notify\Notifier;

$n = Notifier::load();
$n->configure(['store' => getenv('FASHOP_NOTIFY_STORE') ?: 'sqlite:/var/lib/fashop/notify.db']);
$json = ($_GET['format'] ?? '') === 'json';
if (PHP_SAPI !== 'cli') {
    header($json ? 'Content-Type: application/json' : 'Content-Type: text/plain; version=0.0.4');
}
echo $n->metrics($json ? 'json' : 'prometheus');
