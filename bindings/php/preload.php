<?php
// opcache.preload script for php-fpm: compiles the package's classes into shared
// memory and declares the library's FFI scope once in the master, so every worker
// starts with `Notifier::load()` answering from `FFI::scope('FASHOP_NOTIFY')`.
//
//   opcache.enable=1
//   opcache.preload=/path/to/bindings/php/preload.php
//   opcache.preload_user=www-data          ; when the master runs as root
//   ffi.enable=preload
//   env FASHOP_NOTIFY_LIB=/path/to/libfashop_notify.so   (or put the library in bindings/php/lib/)
//
// FASHOP_NOTIFY_FFI_HEADER_DIR names where the scoped header is written (default: the temp dir).
declare(strict_types=1);

require __DIR__ . '/autoload.php';

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
