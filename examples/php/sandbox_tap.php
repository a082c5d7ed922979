<?php
// The mini program's side of a subscription, played against the WeChat sandbox:
// the buyer taps "allow" in wx.requestSubscribeMessage, and WeChat records one grant.
// Usage: php sandbox_tap.php APPID OPENID TEMPLATE_ID [COUNT]
declare(strict_types=1);

function sandbox_tap(string $appid, string $openid, string $templateId, int $count = 1): void
{
    $url = rtrim((string) getenv('FASHOP_NOTIFY_SANDBOX_URL'), '/') . '/sandbox/grants';
    $body = json_encode(['appid' => $appid, 'openid' => $openid, 'template_id' => $templateId, 'count' => $count], JSON_THROW_ON_ERROR);
    $ctx = stream_context_create(['http' => [
        'method' => 'POST',
        'header' => "Content-Type: application/json\r\n",
        'content' => $body,
        'ignore_errors' => true,
    ]]);
    $answer = file_get_contents($url, false, $ctx);
    if ($answer === false || !str_contains($http_response_header[0] ?? '', ' 200')) {
        throw new RuntimeException("the sandbox refused the grant: " . var_export($answer, true));
    }
}

if (realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    if ($argc < 4) {
        fwrite(STDERR, "usage: php sandbox_tap.php APPID OPENID TEMPLATE_ID [COUNT]\n");
        exit(2);
    }
    sandbox_tap($argv[1], $argv[2], $argv[3], (int) ($argv[4] ?? 1));
}
