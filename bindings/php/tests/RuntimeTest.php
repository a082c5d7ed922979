<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use PHPUnit\Framework\TestCase;

/**
 * The shop endpoint served by the real runtimes: php-fpm with opcache preload
 * (the library loaded once in the master, workers forked after) and PHP's
 * built-in web server (no preload: loaded by each request). 1,000 requests each:
 * grants recorded by one request are used by another through the SQLite ledger.
 */
final class RuntimeTest extends TestCase
{
    private const ORDERS = 500;          // a grant request and a send request each
    private const WARM_UP = 200;         // requests before RSS is watched
    // Allocator noise of a php-fpm worker on a busy machine reached 1.5 MiB; a leak per call is
    // LeakTest's job (100,000 calls); this only checks that workers do not keep growing.
    private const RSS_TOLERANCE_KIB = 3072;
    private const FPM_WORKERS = 2;

    private string $dir;
    /** @var list<resource> */
    private array $procs = [];

    protected function setUp(): void
    {
        $this->dir = sys_get_temp_dir() . '/fashop-notify-rt-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700);
    }

    protected function tearDown(): void
    {
        foreach ($this->procs as $proc) {
            proc_terminate($proc, SIGTERM);
            proc_close($proc);
        }
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            unlink($f);
        }
        rmdir($this->dir);
    }

    public function testPhpFpmWithPreload(): void
    {
        if (!is_executable('/usr/sbin/php-fpm8.2') || !is_executable('/usr/bin/cgi-fcgi')) {
            $this->fail('php-fpm8.2 and cgi-fcgi are needed (scripts/deps.sh installs them)');
        }
        [$appid, $secret] = Shop::newApp();
        $env = $this->shopEnv($appid, $secret);
        $sock = $this->dir . '/fpm.sock';
        $pool = "[global]\nerror_log = /proc/self/fd/2\ndaemonize = no\n\n[shop]\nlisten = $sock\n"
            . "pm = static\npm.max_children = " . self::FPM_WORKERS . "\nclear_env = yes\ncatch_workers_output = yes\n";
        foreach ($env as $k => $v) {
            $pool .= "env[$k] = \"$v\"\n";
        }
        file_put_contents($this->dir . '/fpm.conf', $pool);
        // The master runs as root here, as in most installs: the deploy step writes the
        // scoped header and ffi.preload declares it (PHP refuses FFI::load under preload_user).
        $header = rtrim((string) shell_exec(escapeshellarg(PHP_BINARY) . ' ' . escapeshellarg(dirname(__DIR__) . '/preload.php')
            . ' --header ' . escapeshellarg($this->dir) . ' ' . escapeshellarg(Shop::library())));
        $this->assertSame($this->dir . '/fashop_notify.scope.h', $header);
        [$log] = $this->start(
            ['/usr/sbin/php-fpm8.2', '-R', '-F', '-y', $this->dir . '/fpm.conf',
                '-d', 'opcache.enable=1', '-d', 'opcache.preload=' . dirname(__DIR__) . '/preload.php',
                '-d', 'opcache.preload_user=root', '-d', 'ffi.enable=preload', '-d', "ffi.preload=$header"],
            $env,
            '/ready to handle connections/'
        );
        $endpoint = __DIR__ . '/fixtures/shop_endpoint.php';
        $request = function (array $query) use ($sock, $endpoint): array {
            $pipes = [];
            $proc = proc_open(['/usr/bin/cgi-fcgi', '-bind', '-connect', $sock], [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, [
                'SCRIPT_FILENAME' => $endpoint, 'SCRIPT_NAME' => '/shop_endpoint.php', 'REQUEST_METHOD' => 'GET',
                'QUERY_STRING' => http_build_query($query), 'SERVER_PROTOCOL' => 'HTTP/1.1', 'GATEWAY_INTERFACE' => 'CGI/1.1',
            ]);
            $out = Pipes::readAll([1 => $pipes[1], 2 => $pipes[2]], 30);
            proc_close($proc);
            [$head, $body] = explode("\r\n\r\n", $out[1], 2) + [1 => ''];
            $status = preg_match('/^Status: (\d+)/m', $head, $m) ? (int) $m[1] : 200;
            return [$status, $body, $out[2]];
        };
        $responses = $this->drive($appid, $request, $log);

        $pids = array_unique(array_column($responses, 'pid'));
        $this->assertCount(self::FPM_WORKERS, $pids, 'the same workers served every request: none crashed or was replaced');
        $this->assertSame([true], array_values(array_unique(array_column($responses, 'preloaded'))), 'workers used the preloaded FFI scope');
        // At most once per worker (a worker whose first request came after another's fetch may
        // even be handed the same stable token without asking; never more than one each).
        $fetches = Shop::tokenFetches($appid);
        $this->assertGreaterThanOrEqual(1, $fetches);
        $this->assertLessThanOrEqual(count($pids), $fetches, 'each worker fetched the token at most once in its lifetime');
        $this->assertRssFlat('php-fpm', $responses);
        $this->assertStringNotContainsString('signal', $this->drain($log), 'no worker died on a signal');
        fwrite(STDERR, sprintf("[runtime] php-fpm: %d workers, token fetches %d\n", count($pids), Shop::tokenFetches($appid)));
    }

    public function testBuiltInWebServerLoadsTheLibraryPerRequest(): void
    {
        [$appid, $secret] = Shop::newApp();
        $env = $this->shopEnv($appid, $secret);
        [$log, $port] = $this->start(
            [PHP_BINARY, '-d', 'ffi.enable=1', '-S', '127.0.0.1:0', '-t', __DIR__ . '/fixtures'],
            $env,
            '/Development Server \(http:\/\/127\.0\.0\.1:(\d+)\) started/'
        );
        $request = function (array $query) use ($port): array {
            $body = file_get_contents("http://127.0.0.1:$port/shop_endpoint.php?" . http_build_query($query), false, stream_context_create(['http' => ['ignore_errors' => true, 'timeout' => 30]]));
            preg_match('/^HTTP\/\S+ (\d+)/', $http_response_header[0] ?? '', $m);
            return [(int) ($m[1] ?? 0), (string) $body, ''];
        };
        $responses = $this->drive($appid, $request, $log);

        $this->assertCount(1, array_unique(array_column($responses, 'pid')), 'one server process throughout: no crash');
        $this->assertSame([false], array_values(array_unique(array_column($responses, 'preloaded'))));
        $this->assertSame(1, Shop::tokenFetches($appid), 'the token was fetched once in the server\'s lifetime');
        $this->assertRssFlat('php -S', $responses);
        fwrite(STDERR, sprintf("[runtime] php -S: token fetches %d\n", Shop::tokenFetches($appid)));
    }

    public function testPreloadScriptDeclaresTheScopeWithFfiLoad(): void
    {
        // The other form: preload.php calls FFI::load itself, which PHP allows only
        // without opcache.preload_user, i.e. when PHP does not run as root.
        $cmd = [PHP_BINARY, '-d', 'opcache.enable_cli=1', '-d', 'opcache.preload=' . dirname(__DIR__) . '/preload.php',
            '-d', 'ffi.enable=preload', '-r', 'require "' . dirname(__DIR__) . '/autoload.php"; $n = FaShop\\Notify\\Notifier::load(); '
            . 'echo json_encode([$n->isPreloaded(), $n->version(), count($n->listApps())]);'];
        if (posix_geteuid() === 0) {
            chmod($this->dir, 0777);
            $cmd = array_merge(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'], $cmd);
        }
        $pipes = [];
        $proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, [
            'FASHOP_NOTIFY_LIB' => Shop::library(), 'FASHOP_NOTIFY_FFI_HEADER_DIR' => $this->dir, 'PATH' => (string) getenv('PATH'),
        ]);
        $out = Pipes::readAll([1 => $pipes[1], 2 => $pipes[2]], 30);
        $this->assertSame(0, proc_close($proc), $out[2]);
        $this->assertSame([true, json_decode('"' . $this->versionOf() . '"'), 0], json_decode($out[1], true, 512, JSON_THROW_ON_ERROR));
        $this->assertFileExists($this->dir . '/fashop_notify.scope.h');
    }

    private function versionOf(): string
    {
        preg_match('/^version = "([^"]+)"/m', (string) file_get_contents(Shop::root() . '/Cargo.toml'), $m);
        return $m[1];
    }

    /** @return array<string,string> */
    private function shopEnv(string $appid, string $secret): array
    {
        return [
            'SHOP_APPID' => $appid,
            'SHOP_SECRET' => $secret,
            'SHOP_DB' => $this->dir . '/notify.db',
            'FASHOP_NOTIFY_SANDBOX_URL' => Sandbox::url(),
            'FASHOP_NOTIFY_LIB' => Shop::library(),
        ];
    }

    /**
     * Starts a server and reads its stderr until the line saying it is ready.
     *
     * @param list<string> $cmd
     * @param array<string,string> $env
     * @return array{0: resource, 1: string} its stderr (kept drained) and the regex's first group
     */
    private function start(array $cmd, array $env, string $ready): array
    {
        $pipes = [];
        $proc = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => ['file', '/dev/null', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env + ['PATH' => (string) getenv('PATH')]);
        $this->assertIsResource($proc);
        $this->procs[] = $proc;
        $seen = '';
        $deadline = microtime(true) + 30;
        while (!preg_match($ready, $seen, $m)) {
            $r = [$pipes[2]];
            $w = $e = null;
            if (microtime(true) > $deadline || stream_select($r, $w, $e, 30) !== 1) {
                $this->fail("not ready: $seen");
            }
            $line = fgets($pipes[2]);
            if ($line === false) {
                $this->fail("exited before it was ready: $seen");
            }
            $seen .= $line;
        }
        stream_set_blocking($pipes[2], false);
        return [$pipes[2], $m[1] ?? ''];
    }

    /** @param resource $log */
    private function drain($log): string
    {
        $text = '';
        while (($chunk = fread($log, 65536)) !== false && $chunk !== '') {
            $text .= $chunk;
        }
        return $text;
    }

    /**
     * The grant-collection request, then the send request, per order; each answer checked.
     *
     * @param callable(array<string,string|int>): array{0:int,1:string,2:string} $request
     * @param resource $log
     * @return list<array<string,mixed>>
     */
    private function drive(string $appid, callable $request, $log): array
    {
        $openid = 'o-runtime-buyer';
        // The buyer's taps, as WeChat records them; the shop learns of each through its endpoint.
        Sandbox::control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => Shop::TPL_PAY_SUCCESS, 'count' => self::ORDERS]);
        $responses = [];
        $logText = '';
        for ($i = 0; $i < self::ORDERS; $i++) {
            foreach ([
                ['action' => 'grant', 'openid' => $openid, 'template_id' => Shop::TPL_PAY_SUCCESS],
                ['action' => 'send', 'openid' => $openid, 'order' => $i],
            ] as $query) {
                [$code, $body, $stderr] = $request($query);
                $logText .= $this->drain($log);
                $this->assertSame(200, $code, "request $i {$query['action']}: $body $stderr $logText");
                $answer = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
                $this->assertSame($query['action'] === 'grant' ? 'recorded' : 'sent', $answer['status'], "request $i");
                $responses[] = $answer;
            }
        }
        $this->assertCount(2 * self::ORDERS, $responses);
        $this->assertCount(self::ORDERS, Shop::delivered($appid, $openid));
        $this->assertSame(0, Shop::grantsLeft($appid, $openid), 'every grant recorded by one request was used by another');
        // Both requests of an order were served by different workers at least sometimes (php-fpm), or by the same process (php -S).
        return $responses;
    }

    /** @param list<array<string,mixed>> $responses */
    private function assertRssFlat(string $runtime, array $responses): void
    {
        $byPid = [];
        foreach (array_slice($responses, self::WARM_UP) as $r) {
            $byPid[$r['pid']][] = $r['rss_kib'];
        }
        foreach ($byPid as $pid => $rss) {
            $growth = max($rss) - $rss[0];
            fwrite(STDERR, sprintf("[runtime] %s worker %d: VmRSS after warm-up %d KiB, max %d KiB (%+d) over %d requests\n", $runtime, $pid, $rss[0], max($rss), $growth, count($rss)));
            $this->assertLessThan(self::RSS_TOLERANCE_KIB, $growth, "$runtime worker $pid RSS grew");
        }
    }
}
