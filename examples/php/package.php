<?php
// Loads the PHP package for the example scripts, from a clone (examples/php) or from
// the install (share/fashop-notify/examples next to share/fashop-notify/php).
declare(strict_types=1);

foreach ([__DIR__ . '/../../bindings/php/autoload.php', __DIR__ . '/../php/autoload.php'] as $autoload) {
    if (is_file($autoload)) {
        require_once $autoload;
        return;
    }
}
fwrite(STDERR, "fashop-notify: the PHP package was found neither in the clone nor in the install\n");
exit(1);
