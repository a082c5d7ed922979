<?php
// The in-process part of a send through the PHP package (FFI), no network:
// per iteration a send that finds no permit (render, idempotency claim and
// release, permit take, outcome JSON, the exception) and an access token
// cache hit. benches/hotpath.rs times the same calls from Rust
// (hotpath/ffi_equivalent), so the difference is the FFI and PHP wrapper.
declare(strict_types=1);

require __DIR__ . '/common.php';
require __DIR__ . '/../../bindings/php/autoload.php';

use FaShop\Notify\Exception\NoPermitException;
use FaShop\Notify\Notifier;

$args = bench_args();
$iterations = (int) ($args['iterations'] ?? 100000);
$appid = 'wxbench000000001';

// A server that answers only the token fetch: the token is cached before the
// timed loop, which then never touches the network.
$server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
if ($server === false) {
    fwrite(STDERR, "hotpath: cannot listen: $errstr\n");
    exit(1);
}
$port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);
$pid = pcntl_fork();
if ($pid === 0) {
    $conn = stream_socket_accept($server, 10);
    if ($conn !== false) {
        fread($conn, 65536);
        $body = '{"access_token":"hotpath-token-0000000000000000000000","expires_in":7200}';
        fwrite($conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " . strlen($body)
            . "\r\nConnection: close\r\n\r\n" . $body);
        fclose($conn);
    }
    exit(0);
}

$n = Notifier::load(isset($args['lib']) ? (string) $args['lib'] : null);
$n->configure(['api_base' => "http://127.0.0.1:$port"]);
$n->registerApp(['appid' => $appid, 'secret' => 'bench-secret']);
$n->loadMappings($appid, (string) file_get_contents(__DIR__ . '/../../examples/mappings.json'));
$n->accessToken($appid);
pcntl_waitpid($pid, $status);

$openid = 'oBench_hotpath_user_0001';
$payloads = [];
for ($i = 0; $i < $iterations; $i++) {
    $payloads[] = ['touser' => $openid, 'fields' => bench_order('hot', $i)];
}
$noPermit = 0;
$t0 = hrtime(true);
foreach ($payloads as $payload) {
    try {
        $n->send($appid, 'order_pay_success', $payload);
    } catch (NoPermitException) {
        $noPermit++;
    }
    $n->accessToken($appid);
}
$ns = (hrtime(true) - $t0) / $iterations;

// The render export alone, for the cost of one boundary crossing with JSON both ways.
$t0 = hrtime(true);
foreach ($payloads as $payload) {
    $n->render($appid, 'order_pay_success', $payload);
}
$renderNs = (hrtime(true) - $t0) / $iterations;

if ($noPermit !== $iterations) {
    fwrite(STDERR, "hotpath: expected every send to find no permit, $noPermit of $iterations did\n");
    exit(1);
}
echo json_encode(['iterations' => $iterations, 'send_no_permit_plus_token_ns' => $ns, 'render_ns' => $renderNs]), "\n";
