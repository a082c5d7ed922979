<?php
/**
 * The notification admin as a plain-PHP front controller: the JSON routes of
 * FaShop\Notify\Admin\Router under `…/api/`, and the mapping editor page at the
 * directory itself. Runs under the built-in server
 * (`php -S 127.0.0.1:8090 bindings/php/admin/index.php`) and under php-fpm.
 *
 * Settings come from the environment (php-fpm: `env[...]` in the pool), or from
 * the PHP file named by FASHOP_NOTIFY_ADMIN_CONFIG returning an array of the same
 * names:
 *   FASHOP_NOTIFY_ADMIN_SECRET   the shared admin secret (required; sent as X-Admin-Secret)
 *   FASHOP_NOTIFY_APPID          the mini program's appid (fa_setting wechat.mini_app_id); unset: "not configured"
 *   FASHOP_NOTIFY_APP_SECRET     its secret (fa_setting wechat.mini_app_secret)
 *   FASHOP_NOTIFY_API_BASE       WeChat's API base (the sandbox in tests and demos)
 *   FASHOP_NOTIFY_STORE          the library's store (sqlite:/path or redis://…), shared with the shop
 *   FASHOP_NOTIFY_MAPPING_FILE   the mapping document as a JSON file, or
 *   FASHOP_NOTIFY_MAPPING_DSN    a PDO DSN of FaShop's database (row fa_setting key='wechat_mini_template'),
 *                                with FASHOP_NOTIFY_MAPPING_DB_USER and FASHOP_NOTIFY_MAPPING_DB_PASSWORD
 */
declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';

use FaShop\Notify\Admin;
use FaShop\Notify\Admin\FileMappingStore;
use FaShop\Notify\Admin\PdoSettingMappingStore;
use FaShop\Notify\Admin\Router;
use FaShop\Notify\Notifier;

$settings = (static function (): array {
    $names = ['FASHOP_NOTIFY_ADMIN_SECRET', 'FASHOP_NOTIFY_APPID', 'FASHOP_NOTIFY_APP_SECRET', 'FASHOP_NOTIFY_API_BASE',
        'FASHOP_NOTIFY_STORE', 'FASHOP_NOTIFY_MAPPING_FILE', 'FASHOP_NOTIFY_MAPPING_DSN',
        'FASHOP_NOTIFY_MAPPING_DB_USER', 'FASHOP_NOTIFY_MAPPING_DB_PASSWORD'];
    $file = getenv('FASHOP_NOTIFY_ADMIN_CONFIG');
    $fromFile = is_string($file) && $file !== '' ? (require $file) : [];
    $s = [];
    foreach ($names as $name) {
        $v = $fromFile[$name] ?? getenv($name);
        $s[$name] = is_string($v) ? $v : '';
    }
    return $s;
})();

$factory = static function () use ($settings): Admin {
    $n = Notifier::load();
    $config = [];
    if ($settings['FASHOP_NOTIFY_STORE'] !== '') {
        $config['store'] = $settings['FASHOP_NOTIFY_STORE'];
    }
    if ($settings['FASHOP_NOTIFY_API_BASE'] !== '') {
        $config['api_base'] = $settings['FASHOP_NOTIFY_API_BASE'];
    }
    if ($config !== []) {
        $n->configure($config);
    }
    if ($settings['FASHOP_NOTIFY_MAPPING_DSN'] !== '') {
        $pdo = new PDO($settings['FASHOP_NOTIFY_MAPPING_DSN'], $settings['FASHOP_NOTIFY_MAPPING_DB_USER'] ?: null, $settings['FASHOP_NOTIFY_MAPPING_DB_PASSWORD'] ?: null);
        $store = new PdoSettingMappingStore($pdo);
    } else {
        $file = $settings['FASHOP_NOTIFY_MAPPING_FILE'] ?: sys_get_temp_dir() . '/fashop-notify-mapping.json';
        $store = new FileMappingStore($file);
    }
    $appid = $settings['FASHOP_NOTIFY_APPID'];
    if ($appid !== '' && $settings['FASHOP_NOTIFY_APP_SECRET'] !== '') {
        $n->registerApp(['appid' => $appid, 'secret' => $settings['FASHOP_NOTIFY_APP_SECRET']]);
        $saved = $store->load();
        if ($saved !== null) {
            try {
                $n->loadMappings($appid, $saved);
            } catch (FaShop\Notify\Exception\NotifyException) {
                // A saved document the library now refuses: the editor shows and fixes it.
            }
        }
    } else {
        $appid = '';
    }
    return new Admin($n, $store, $appid);
};

$router = new Router($settings['FASHOP_NOTIFY_ADMIN_SECRET'], $factory, __DIR__ . '/editor.html');
$headers = [];
foreach ($_SERVER as $k => $v) {
    if (str_starts_with($k, 'HTTP_')) {
        $headers[str_replace('_', '-', substr($k, 5))] = (string) $v;
    }
}
$path = (string) ($_SERVER['PATH_INFO'] ?? '');
if ($path === '') {
    $path = (string) parse_url((string) ($_SERVER['REQUEST_URI'] ?? '/'), PHP_URL_PATH);
}
$method = (string) ($_SERVER['REQUEST_METHOD'] ?? 'GET');
$body = in_array($method, ['POST', 'PUT', 'DELETE'], true)
    ? (string) file_get_contents('php://input', false, null, 0, Router::MAX_BODY_BYTES + 1)
    : '';
$answer = $router->handle($method, $path, $_GET, $body, $headers);
http_response_code($answer['status']);
foreach ($answer['headers'] as $name => $value) {
    header("$name: $value");
}
echo $answer['body'];
