<?php
declare(strict_types=1);

namespace FaShop\Notify;

use FaShop\Notify\Exception\NotifyException;

/**
 * Sends what the outbox holds: one pass for a cron job (runCron, an exit code), or a
 * loop for a long-running process (an EasySwoole custom process, a systemd service)
 * that flushes every `interval_secs`, holds an exclusive lock (flock on `lock_file`) so
 * that a second runner on the host stays out, and stops between passes on SIGTERM or
 * SIGINT (pcntl, when loaded) or stop(). Several flushers would be safe (each message is
 * sent at most once); the lock spares the store their idle polling.
 *
 * It counts its passes and what they did (metrics(), prometheus()); with `metrics_file`
 * it writes them there after every pass, for a metrics endpoint in another process.
 */
final class FlushRunner
{
    public const EXIT_OK = 0;
    /** A pass failed (the store or the library refused); the next run tries again. */
    public const EXIT_FAILED = 1;
    /** Another runner holds the lock (EX_TEMPFAIL): nothing was done. */
    public const EXIT_LOCKED = 75;

    private const COUNTED = ['sent', 'duplicate', 'retry', 'dead', 'uncertain', 'lost'];

    private int $maxMessages;
    private float $interval;
    private ?string $lockFile;
    private bool $signals;
    private ?string $metricsFile;
    /** @var callable(string): void */
    private $log;
    /** @var (callable(array<string,mixed>, FlushRunner): void)|null */
    private $onPass;

    /** @var resource|null the open lock file while this runner holds the lock */
    private $lock = null;
    private bool $stopping = false;
    /** @var array<string,int> */
    private array $counts = ['passes' => 0, 'failed_passes' => 0];
    private ?string $lastError = null;
    private ?float $lastPassAt = null;

    /**
     * @param string|null $appid one app's outbox, or null for every app
     * @param array{max_messages?: int, interval_secs?: float|int, lock_file?: string|null, signals?: bool,
     *              metrics_file?: string|null, log?: callable(string): void,
     *              on_pass?: callable(array<string,mixed>, FlushRunner): void} $options
     *        lock_file null: no lock; signals false: the host stops the loop itself (stop()), e.g. under Swoole
     */
    public function __construct(private Notifier $notifier, private ?string $appid = null, array $options = [])
    {
        $this->maxMessages = (int) ($options['max_messages'] ?? 100);
        $this->interval = (float) ($options['interval_secs'] ?? 5);
        $this->lockFile = array_key_exists('lock_file', $options) ? $options['lock_file'] : sys_get_temp_dir() . '/fashop-notify-flush.lock';
        $this->signals = (bool) ($options['signals'] ?? true);
        $this->metricsFile = $options['metrics_file'] ?? null;
        $this->log = $options['log'] ?? static fn (string $line) => error_log($line);
        $this->onPass = $options['on_pass'] ?? null;
        if ($this->maxMessages < 1 || $this->interval < 0) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, 'FlushRunner: max_messages must be 1 or more and interval_secs 0 or more');
        }
        $this->counts += array_fill_keys(self::COUNTED, 0);
    }

    /**
     * One flush, counted. Never throws a library error: a failed pass is counted,
     * logged and returned with `error` (the report of a flush otherwise, see the guide).
     *
     * @return array<string,mixed>
     */
    public function runOnce(): array
    {
        $this->counts['passes']++;
        $this->lastPassAt = microtime(true);
        try {
            $report = $this->notifier->flush($this->appid, $this->maxMessages);
            $this->lastError = null;
        } catch (NotifyException $e) {
            $this->counts['failed_passes']++;
            $this->lastError = $e->getMessage();
            ($this->log)('fashop-notify flush failed: ' . $e->getMessage());
            $report = ['error' => $e->getMessage()];
        }
        foreach (self::COUNTED as $k) {
            $this->counts[$k] += (int) ($report[$k] ?? 0);
        }
        if (isset($report['stopped'])) {
            ($this->log)("fashop-notify flush stopped early: {$report['stopped']}");
        }
        $this->writeMetrics();
        if ($this->onPass !== null) {
            ($this->onPass)($report, $this);
        }
        return $report;
    }

    /** A cron job's run: one pass under the lock. Returns EXIT_OK, EXIT_FAILED or EXIT_LOCKED. */
    public function runCron(): int
    {
        if (!$this->acquire()) {
            return self::EXIT_LOCKED;
        }
        try {
            return isset($this->runOnce()['error']) ? self::EXIT_FAILED : self::EXIT_OK;
        } finally {
            $this->release();
        }
    }

    /**
     * Flushes until stopped (or `$maxPasses` passes): at once again while due messages
     * are left, else after `interval_secs`. Returns EXIT_OK once stopped, EXIT_LOCKED at
     * once when another runner holds the lock.
     */
    public function loop(?int $maxPasses = null): int
    {
        if (!$this->acquire()) {
            return self::EXIT_LOCKED;
        }
        $restore = $this->trapSignals();
        try {
            for ($pass = 1; !$this->stopping; $pass++) {
                $report = $this->runOnce();
                if ($maxPasses !== null && $pass >= $maxPasses) {
                    break;
                }
                $more = !isset($report['error']) && !isset($report['stopped']) && (int) ($report['due_left'] ?? 0) > 0;
                if (!$more) {
                    $this->wait($this->interval);
                }
            }
        } finally {
            $restore();
            $this->release();
            $this->stopping = false;
        }
        return self::EXIT_OK;
    }

    /** Ends the loop after the pass under way (from a signal handler, or the host's shutdown hook). */
    public function stop(): void
    {
        $this->stopping = true;
    }

    /**
     * What this runner did since it was made.
     *
     * @return array{passes: int, failed_passes: int, sent: int, duplicate: int, retry: int, dead: int, uncertain: int, lost: int,
     *               last_pass_at: ?float, last_error: ?string, holds_lock: bool}
     */
    public function metrics(): array
    {
        return $this->counts + ['last_pass_at' => $this->lastPassAt, 'last_error' => $this->lastError, 'holds_lock' => $this->lock !== null];
    }

    /**
     * Runner figures in Prometheus text form: metrics() of this runner, or what another
     * process's runner wrote to its `metrics_file` (json_decode'd).
     *
     * @param array<string,mixed> $m
     */
    public static function prometheus(array $m): string
    {
        $out = "# HELP fashop_notify_flush_runner_passes_total Flush passes of the runner.\n"
            . "# TYPE fashop_notify_flush_runner_passes_total counter\n"
            . sprintf("fashop_notify_flush_runner_passes_total %d\n", $m['passes'] ?? 0)
            . "# HELP fashop_notify_flush_runner_failed_passes_total Flush passes that failed (the store or the library refused).\n"
            . "# TYPE fashop_notify_flush_runner_failed_passes_total counter\n"
            . sprintf("fashop_notify_flush_runner_failed_passes_total %d\n", $m['failed_passes'] ?? 0)
            . "# HELP fashop_notify_flush_runner_messages_total Outbox messages the runner's passes handled, by result.\n"
            . "# TYPE fashop_notify_flush_runner_messages_total counter\n";
        foreach (self::COUNTED as $k) {
            $out .= sprintf("fashop_notify_flush_runner_messages_total{result=\"%s\"} %d\n", $k, $m[$k] ?? 0);
        }
        return $out . "# HELP fashop_notify_flush_runner_last_pass_timestamp_seconds When the runner's last pass started.\n"
            . "# TYPE fashop_notify_flush_runner_last_pass_timestamp_seconds gauge\n"
            . sprintf("fashop_notify_flush_runner_last_pass_timestamp_seconds %.3f\n", $m['last_pass_at'] ?? 0);
    }

    /** Takes the lock without waiting; false when another runner has it. */
    private function acquire(): bool
    {
        if ($this->lockFile === null || $this->lock !== null) {
            return true;
        }
        $fh = @fopen($this->lockFile, 'c');
        if ($fh === false) {
            throw Exception\InvalidArgumentException::fromStatus(Status::INVALID_ARGUMENT, "FlushRunner: cannot open the lock file {$this->lockFile}");
        }
        if (!flock($fh, LOCK_EX | LOCK_NB)) {
            fclose($fh);
            ($this->log)("fashop-notify flush runner: another runner holds {$this->lockFile}; not starting");
            return false;
        }
        ftruncate($fh, 0);
        fwrite($fh, getmypid() . "\n"); // who holds it, for whoever looks
        $this->lock = $fh;
        return true;
    }

    private function release(): void
    {
        if ($this->lock !== null) {
            flock($this->lock, LOCK_UN);
            fclose($this->lock);
            $this->lock = null;
        }
    }

    /** Installs the SIGTERM/SIGINT handlers (when wanted and pcntl is there); returns what puts the old ones back. */
    private function trapSignals(): \Closure
    {
        if (!$this->signals || !function_exists('pcntl_signal')) {
            return static function (): void {
            };
        }
        $async = pcntl_async_signals(true);
        $old = [];
        foreach ([SIGTERM, SIGINT] as $sig) {
            $old[$sig] = pcntl_signal_get_handler($sig);
            pcntl_signal($sig, fn () => $this->stop());
        }
        return static function () use ($old, $async): void {
            foreach ($old as $sig => $handler) {
                pcntl_signal($sig, $handler);
            }
            pcntl_async_signals($async);
        };
    }

    /** Sleeps up to `$secs`; a signal cuts the sleep short and stop() ends it. */
    private function wait(float $secs): void
    {
        $until = microtime(true) + $secs;
        while (!$this->stopping && ($left = $until - microtime(true)) > 0) {
            $whole = (int) $left;
            @time_nanosleep($whole, (int) (($left - $whole) * 1e9));
        }
    }

    private function writeMetrics(): void
    {
        if ($this->metricsFile === null) {
            return;
        }
        $tmp = $this->metricsFile . '.' . getmypid() . '.tmp';
        if (@file_put_contents($tmp, json_encode($this->metrics(), JSON_UNESCAPED_SLASHES)) === false || !@rename($tmp, $this->metricsFile)) {
            @unlink($tmp);
            ($this->log)("fashop-notify flush runner: cannot write its metrics to {$this->metricsFile}");
        }
    }
}
