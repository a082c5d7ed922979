<?php
// Test bootstrap: the package's autoloader, the library built by cargo, and a WeChat
// sandbox on a free port (the one `scripts/with-sandbox.sh` started, or our own).
declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';
require __DIR__ . '/Sandbox.php';
require __DIR__ . '/Shop.php';
require __DIR__ . '/Pipes.php';

$root = dirname(__DIR__, 3);
if (getenv('FASHOP_NOTIFY_LIB') === false) {
    putenv('FASHOP_NOTIFY_LIB=' . $root . '/target/debug/libfashop_notify.so');
}
FaShop\Notify\Tests\Sandbox::boot($root . '/target/debug/fashop-notify-sandbox');
