<?php
// opcache.preload script for php-fpm: compiles the package's classes into shared
// memory and declares the library's FFI scope once in the master, so every worker
// starts with `Notifier::load()` answering from `FFI::scope('FASHOP_NOTIFY')`.
//
// Master started as an ordinary user:
//   opcache.enable=1
//   opcache.preload=/path/to/bindings/php/preload.php
//   ffi.enable=preload
//   ; and FASHOP_NOTIFY_LIB in the master's environment, or the library where LibraryFinder
//   ; looks: the package's lib/, the install locations (`make install`, /usr/local/lib...)
//
// Master started as root (opcache.preload_user set; PHP then refuses FFI::load):
//   write the header once per deploy:  php /path/to/bindings/php/preload.php --header /etc/php/fashop-notify
//   opcache.enable=1
//   opcache.preload=/path/to/bindings/php/preload.php
//   opcache.preload_user=www-data
//   ffi.enable=preload
//   ffi.preload=/etc/php/fashop-notify/fashop_notify.scope.h
//
// FASHOP_NOTIFY_FFI_HEADER_DIR names where the first form writes its header (default: the temp dir).
declare(strict_types=1);

require __DIR__ . '/autoload.php';

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__ && ($argv[1] ?? '') === '--header') {
    // Deploy step: write the scoped header for ffi.preload and print its path.
    $dir = $argv[2] ?? null;
    if ($dir === null || !is_dir($dir)) {
        fwrite(STDERR, "usage: php preload.php --header EXISTING_DIR [LIBRARY_PATH]\n");
        exit(2);
    }
    echo FaShop\Notify\Notifier::writeScopedHeader($argv[3] ?? null, $dir), "\n";
    exit(0);
}

$files = new RecursiveIteratorIterator(new RecursiveDirectoryIterator(__DIR__ . '/src', FilesystemIterator::SKIP_DOTS));
foreach ($files as $file) {
    $class = 'FaShop\\Notify\\' . str_replace('/', '\\', substr($file->getPathname(), strlen(__DIR__ . '/src/'), -4));
    // Through the autoloader, so interfaces and traits are linked before the classes using them.
    class_exists($class) || interface_exists($class) || trait_exists($class);
}

$lib = getenv('FASHOP_NOTIFY_LIB');
$dir = getenv('FASHOP_NOTIFY_FFI_HEADER_DIR');
FaShop\Notify\Notifier::preload(
    is_string($lib) && $lib !== '' ? $lib : null,
    is_string($dir) && $dir !== '' ? $dir : null,
);
