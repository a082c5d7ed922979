<?php
// What the PHP bench workers share: arguments, the message, the worker
// protocol (ready / phase / result lines, a line on stdin to go on) and the
// figures they report.
declare(strict_types=1);

const BENCH_TEMPLATE = '_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C';

/** @return array<string,string|bool> */
function bench_args(): array
{
    $o = getopt('', ['worker:', 'api-base:', 'appid:', 'secret:', 'store:', 'per-thread:', 'phases:',
        'lat-file:', 'token-margin-secs:', 'token-file:', 'no-seed', 'threads:', 'iterations:', 'lib:']);
    if (!is_array($o)) {
        fwrite(STDERR, "bad arguments\n");
        exit(2);
    }
    return $o + ['store' => 'memory', 'per-thread' => '100', 'phases' => '1', 'worker' => 'w'];
}

function bench_openid(string $worker, int $thread = 0): string
{
    return "oBench_{$worker}_t{$thread}";
}

/** The FaShop order fields of message $i: the order_sn differs per message. */
function bench_order(string $worker, int $i): array
{
    return [
        'order_id' => 10086,
        'order_sn' => sprintf('SN%sT0N%09d', $worker, $i),
        'order_amount' => '128.50',
        'order_total_goods_name' => '法式碎花连衣裙 等2件',
        'order_total_goods_num' => 2,
        'pay_time' => 1795354200,
    ];
}

function bench_say(string $line): void
{
    fwrite(STDOUT, $line . "\n");
    fflush(STDOUT);
}

function bench_wait(): void
{
    if (fgets(STDIN) === false) {
        exit(3);
    }
}

function bench_cpu(): float
{
    $r = getrusage();
    return $r['ru_utime.tv_sec'] + $r['ru_utime.tv_usec'] / 1e6 + $r['ru_stime.tv_sec'] + $r['ru_stime.tv_usec'] / 1e6;
}

function bench_peak_rss_kib(): int
{
    $status = (string) file_get_contents('/proc/self/status');
    return preg_match('/^VmHWM:\s+(\d+) kB/m', $status, $m) ? (int) $m[1] : 0;
}

/**
 * Runs $phases phases of $perPhase messages through $send(int $i): ?string
 * (null when sent, else why not), following the worker protocol.
 */
function bench_run(array $args, callable $send): void
{
    $perPhase = (int) $args['per-thread'];
    $phases = (int) $args['phases'];
    $lat = [];
    $sent = 0;
    $failed = 0;
    $firstError = null;
    bench_say('ready');
    bench_wait();
    $cpu0 = bench_cpu();
    $t0 = hrtime(true);
    for ($p = 0; $p < $phases; $p++) {
        if ($p > 0) {
            bench_say('phase');
            bench_wait();
        }
        $end = ($p + 1) * $perPhase;
        for ($i = $p * $perPhase; $i < $end; $i++) {
            $s = hrtime(true);
            $err = $send($i);
            $lat[] = hrtime(true) - $s;
            if ($err === null) {
                $sent++;
            } else {
                $failed++;
                $firstError ??= $err;
            }
        }
    }
    $t1 = hrtime(true);
    $elapsed = ($t1 - $t0) / 1e9;
    $cpu = bench_cpu() - $cpu0;
    if (isset($args['lat-file'])) {
        file_put_contents((string) $args['lat-file'], implode("\n", $lat) . "\n");
    }
    bench_say(json_encode([
        'sent' => $sent,
        'failed' => $failed,
        'first_error' => $firstError,
        'elapsed_s' => $elapsed,
        // CLOCK_MONOTONIC, shared by every process: the batch's wall time is
        // the last worker's end minus the first one's start.
        'start_ns' => $t0,
        'end_ns' => $t1,
        'cpu_s' => $cpu,
        'peak_rss_kib' => bench_peak_rss_kib(),
    ], JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES));
}
