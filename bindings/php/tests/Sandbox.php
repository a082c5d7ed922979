<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

/** The WeChat sandbox the tests talk to, and its control API. */
final class Sandbox
{
    /** The app the sandbox binary seeds when started without --app. */
    public const APPID = 'wxdemo0000000001';
    public const SECRET = 'demo-app-secret-0001';

    private static ?string $url = null;
    /** @var resource|null */
    private static $process = null;

    public static function boot(string $binary): void
    {
        $url = getenv('FASHOP_NOTIFY_SANDBOX_URL');
        if (is_string($url) && $url !== '') {
            self::$url = $url;
            return;
        }
        $pipes = [];
        $proc = proc_open([$binary, '--host', '127.0.0.1', '--port', '0'], [1 => ['pipe', 'w'], 2 => STDERR], $pipes);
        if (!is_resource($proc)) {
            throw new \RuntimeException("cannot start the sandbox $binary");
        }
        $line = fgets($pipes[1]);
        if ($line === false || !str_starts_with($line, 'listening on ')) {
            throw new \RuntimeException("the sandbox did not start: " . var_export($line, true));
        }
        self::$process = $proc;
        self::$url = trim(substr($line, strlen('listening on ')));
        putenv('FASHOP_NOTIFY_SANDBOX_URL=' . self::$url);
        $owner = getmypid();
        register_shutdown_function(static function () use ($owner): void {
            // A forked child exiting must not stop the sandbox its parent started.
            if (getmypid() === $owner && is_resource(self::$process)) {
                proc_terminate(self::$process);
                proc_close(self::$process);
            }
        });
    }

    public static function url(): string
    {
        return (string) self::$url;
    }

    /**
     * Calls the control API (`/sandbox/...`).
     *
     * @param array<string,mixed>|null $body
     * @return array<mixed>
     */
    public static function control(string $method, string $path, ?array $body = null): array
    {
        $opts = ['http' => [
            'method' => $method,
            'header' => "Content-Type: application/json\r\n",
            'ignore_errors' => true,
            'timeout' => 10,
        ]];
        if ($body !== null) {
            $opts['http']['content'] = json_encode($body, JSON_THROW_ON_ERROR);
        }
        $text = file_get_contents(self::url() . $path, false, stream_context_create($opts));
        if ($text === false) {
            throw new \RuntimeException("sandbox control $method $path failed");
        }
        $v = json_decode($text, true, 512, JSON_THROW_ON_ERROR);
        return is_array($v) ? $v : [];
    }
}
