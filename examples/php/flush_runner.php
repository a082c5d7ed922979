<?php
// Sends what the outbox holds, as a cron job or as a service of its own.
//   cron (every minute):  php flush_runner.php --once      exit 0 done, 1 the pass failed, 75 another runner is at work
//   service (systemd):    php flush_runner.php             flushes every FASHOP_NOTIFY_FLUSH_INTERVAL seconds (5)
//                                                          until SIGTERM or SIGINT; exits 75 at once if a runner already loops
// Settings from the environment: FASHOP_NOTIFY_STORE (the shop's shared store), FASHOP_NOTIFY_API_BASE (staging and tests:
// the sandbox), FASHOP_NOTIFY_APPID and FASHOP_NOTIFY_APP_SECRET (fa_setting wechat.mini_app_id and .mini_app_secret:
// a flush fetches the app's token), FASHOP_NOTIFY_FLUSH_LOCK (the lock file), FASHOP_NOTIFY_RUNNER_METRICS (a file the
// runner's figures are written to after every pass, for metrics_endpoint.php).
declare(strict_types=1);

require __DIR__ . '/package.php';

use FaShop\Notify\FlushRunner;
use FaShop\Notify\Notifier;

$env = static fn (string $name): ?string => ($v = getenv($name)) === false || $v === '' ? null : $v;

$appid = $env('FASHOP_NOTIFY_APPID');
if ($appid === null || $env('FASHOP_NOTIFY_APP_SECRET') === null) {
    fwrite(STDERR, "flush_runner.php: set FASHOP_NOTIFY_APPID and FASHOP_NOTIFY_APP_SECRET\n");
    exit(2);
}
$n = Notifier::load();
$config = ['store' => $env('FASHOP_NOTIFY_STORE') ?? 'sqlite:/var/lib/fashop/notify.db'];
if ($env('FASHOP_NOTIFY_API_BASE') !== null) {
    $config['api_base'] = $env('FASHOP_NOTIFY_API_BASE');
}
$n->configure($config);
$n->registerApp(['appid' => $appid, 'secret' => $env('FASHOP_NOTIFY_APP_SECRET')]);

$runner = new FlushRunner($n, $appid, [
    'interval_secs' => (float) ($env('FASHOP_NOTIFY_FLUSH_INTERVAL') ?? 5),
    'lock_file' => $env('FASHOP_NOTIFY_FLUSH_LOCK') ?? sys_get_temp_dir() . '/fashop-notify-flush.lock',
    'metrics_file' => $env('FASHOP_NOTIFY_RUNNER_METRICS'),
    'log' => static fn (string $line) => fwrite(STDERR, $line . "\n"),
    // One line per pass on stdout, for the service's journal.
    'on_pass' => static function (array $report, FlushRunner $r): void {
        $m = $r->metrics();
        echo json_encode(['pass' => $m['passes'], 'report' => $report], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
    },
]);
exit(in_array('--once', $argv, true) ? $runner->runCron() : $runner->loop());
