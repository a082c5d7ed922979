<?php
// Fixtures of the editor's browser test, run as separate PHP processes with the
// same settings as the admin server (FASHOP_NOTIFY_* from the environment):
//   php fixtures.php dead-letter              one dead letter in the outbox (WeChat refused it: 40003)
//   php fixtures.php render EVENT MAPPING     what the library renders for an event mapping (JSON) with the catalog's examples
declare(strict_types=1);

require dirname(__DIR__, 2) . '/bindings/php/autoload.php';

use FaShop\Notify\Notifier;

$n = Notifier::load();
$appid = (string) getenv('FASHOP_NOTIFY_APPID');
$sandbox = (string) getenv('FASHOP_NOTIFY_SANDBOX_URL');
$n->configure(['store' => (string) getenv('FASHOP_NOTIFY_STORE'), 'api_base' => $sandbox]);
$n->registerApp(['appid' => $appid, 'secret' => (string) getenv('FASHOP_NOTIFY_APP_SECRET')]);

function control(string $method, string $path, array $body): void
{
    $ctx = stream_context_create(['http' => ['method' => $method, 'header' => "Content-Type: application/json\r\n",
        'content' => json_encode($body), 'ignore_errors' => true, 'timeout' => 10]]);
    if (file_get_contents((string) getenv('FASHOP_NOTIFY_SANDBOX_URL') . $path, false, $ctx) === false) {
        throw new RuntimeException("sandbox $path failed");
    }
}

switch ($argv[1] ?? '') {
    case 'dead-letter':
        $n->loadMappings($appid, (string) file_get_contents(dirname(__DIR__, 2) . '/examples/mappings.json'));
        $openid = 'o-browser-dead';
        $fields = ['order_id' => 7, 'order_sn' => 'SN2026112300000007', 'order_amount' => '59.00', 'order_total_goods_name' => '羊毛围巾',
            'order_total_goods_num' => 1, 'order_create_time' => 1795426200, 'pay_time' => 1795426265];
        $template = $n->getMappings($appid)['events']['order_pay_success']['template_id'];
        control('POST', '/sandbox/grants', ['appid' => $appid, 'openid' => $openid, 'template_id' => $template]);
        $n->addPermit($appid, ['openid' => $openid, 'kind' => 'subscribe', 'template_id' => $template]);
        $id = $n->enqueue($appid, 'order_pay_success', ['touser' => $openid, 'fields' => $fields])['id'];
        control('POST', '/sandbox/faults', ['path' => '/cgi-bin/message/subscribe/send', 'errcode' => 40003, 'count' => 1]);
        $report = $n->flush($appid, 10);
        if ($report['dead'] !== 1) {
            throw new RuntimeException('expected one dead letter, got ' . json_encode($report));
        }
        echo json_encode(['id' => $id]), "\n";
        break;
    case 'render':
        $event = $argv[2];
        $mapping = json_decode($argv[3], true, 512, JSON_THROW_ON_ERROR);
        $fields = [];
        foreach ($n->eventCatalog()['events'] as $e) {
            if ($e['event'] === $event) {
                foreach ($e['fields'] as $f) {
                    $fields[$f['name']] = $f['example'];
                }
            }
        }
        $n->loadMappings($appid, ['version' => 1, 'events' => [$event => $mapping]]);
        echo json_encode($n->render($appid, $event, ['touser' => 'o-browser', 'fields' => $fields]), JSON_UNESCAPED_UNICODE), "\n";
        break;
    default:
        fwrite(STDERR, "usage: fixtures.php dead-letter | render EVENT MAPPING_JSON\n");
        exit(2);
}
