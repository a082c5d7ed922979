<?php
declare(strict_types=1);

namespace FaShop\Notify\Tests;

use FaShop\Notify\Exception\AppNotConfiguredException;
use FaShop\Notify\Exception\InvalidArgumentException;
use FaShop\Notify\Notifier;
use PHPUnit\Framework\TestCase;

/**
 * WeChat's message push through Notifier::handlePush, as a PHP endpoint calls it with
 * $_SERVER['REQUEST_METHOD'], $_GET and php://input. Requests are signed (sha1) and, in
 * safe mode, encrypted (openssl) here, independently of the library.
 */
final class PushTest extends TestCase
{
    private const TOKEN = 'phppushtoken';
    // WeChat's sample EncodingAESKey from its "消息加解密" documentation.
    private const AES_KEY = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG';

    private Notifier $n;
    private string $appid;

    protected function setUp(): void
    {
        $this->n = Notifier::load();
        $this->appid = 'wx' . bin2hex(random_bytes(8));
        $this->n->registerApp([
            'appid' => $this->appid,
            'secret' => 'php-push-secret',
            'grants' => 'push',
            'push' => ['token' => self::TOKEN, 'encoding_aes_key' => self::AES_KEY, 'format' => 'json', 'mode' => 'compatible', 'max_skew_secs' => 300],
        ]);
    }

    /** @return array<string,string> what $_GET holds for a signed plain request */
    private static function query(array $extra = []): array
    {
        $ts = (string) time();
        $nonce = bin2hex(random_bytes(4));
        $parts = [self::TOKEN, $ts, $nonce];
        sort($parts, SORT_STRING);
        return ['signature' => sha1(implode('', $parts)), 'timestamp' => $ts, 'nonce' => $nonce] + $extra;
    }

    /** A safe-mode request: [$_GET, body], encrypted as WeChat does (AES-256-CBC, PKCS#7 to 32 bytes). */
    private function sealed(string $message, ?string $appid = null): array
    {
        $key = base64_decode(self::AES_KEY . '=');
        $plain = random_bytes(16) . pack('N', strlen($message)) . $message . ($appid ?? $this->appid);
        $pad = 32 - strlen($plain) % 32;
        $plain .= str_repeat(chr($pad), $pad);
        $cipher = base64_encode((string) openssl_encrypt($plain, 'aes-256-cbc', $key, OPENSSL_RAW_DATA | OPENSSL_ZERO_PADDING, substr($key, 0, 16)));
        $q = self::query(['encrypt_type' => 'aes', 'openid' => 'o1']);
        $parts = [self::TOKEN, $q['timestamp'], $q['nonce'], $cipher];
        sort($parts, SORT_STRING);
        $q['msg_signature'] = sha1(implode('', $parts));
        return [$q, '<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[' . $cipher . ']]></Encrypt></xml>'];
    }

    private static function event(string $openid, int $createTime, string $event, array $list): string
    {
        return (string) json_encode([
            'ToUserName' => 'gh_1', 'FromUserName' => $openid, 'CreateTime' => (string) $createTime,
            'MsgType' => 'event', 'Event' => $event, 'List' => $list,
        ]);
    }

    private function grants(string $openid, string $template): int
    {
        return (int) ($this->n->ledgerStats($this->appid, $openid)['subscribe']['templates'][$template] ?? 0);
    }

    public function testUrlCheckEchoesWhenSigned(): void
    {
        $answer = $this->n->handlePush($this->appid, 'GET', self::query(['echostr' => 'php-echo-1']), '');
        $this->assertSame(['reply' => 'php-echo-1', 'events' => []], $answer);
        try {
            $this->n->handlePush($this->appid, 'GET', ['signature' => str_repeat('0', 40)] + self::query(['echostr' => 'x']), '');
            $this->fail('a forged URL check was answered');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('signature does not match', $e->getMessage());
        }
    }

    public function testPlainAndSafePushesGrantOnceAndRetriesAreDuplicates(): void
    {
        $body = self::event('o1', time(), 'subscribe_msg_popup_event', [['TemplateId' => 'T1', 'SubscribeStatusString' => 'accept', 'PopupScene' => '0']]);
        $answer = $this->n->handlePush($this->appid, 'POST', self::query(['openid' => 'o1']), $body);
        $this->assertSame('success', $answer['reply']);
        $this->assertSame('grant_added', $answer['events'][0]['effect']);
        $this->assertSame('T1', $answer['events'][0]['template_id']);
        $again = $this->n->handlePush($this->appid, 'POST', self::query(['openid' => 'o1']), $body);
        $this->assertSame('duplicate', $again['events'][0]['effect']);
        $this->assertSame(1, $this->grants('o1', 'T1'));

        $xml = '<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>' . time()
            . '</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event>'
            . '<SubscribeMsgPopupEvent><List><TemplateId><![CDATA[T2]]></TemplateId><SubscribeStatusString><![CDATA[acceptWithAudio]]></SubscribeStatusString>'
            . '<PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>';
        [$q, $sealed] = $this->sealed($xml);
        $this->assertSame('grant_added', $this->n->handlePush($this->appid, 'POST', $q, $sealed)['events'][0]['effect']);
        $this->assertSame(1, $this->grants('o1', 'T2'));
    }

    public function testWithdrawalsAndBlocksDropGrants(): void
    {
        $t = time();
        foreach ([0, 1] as $i) {
            $this->n->handlePush($this->appid, 'POST', self::query(), self::event('o2', $t + $i, 'subscribe_msg_popup_event', [['TemplateId' => 'T1', 'SubscribeStatusString' => 'accept']]));
        }
        $this->assertSame(2, $this->grants('o2', 'T1'));
        // One entry as an object, as WeChat sends it.
        $answer = $this->n->handlePush($this->appid, 'POST', self::query(), self::event('o2', $t + 2, 'subscribe_msg_change_event', ['TemplateId' => 'T1', 'SubscribeStatusString' => 'reject']));
        $this->assertSame('grants_dropped', $answer['events'][0]['effect']);
        $this->assertSame(2, $answer['events'][0]['dropped']);
        $this->assertSame(0, $this->grants('o2', 'T1'));

        $this->n->handlePush($this->appid, 'POST', self::query(), self::event('o2', $t + 3, 'subscribe_msg_popup_event', [['TemplateId' => 'T1', 'SubscribeStatusString' => 'accept']]));
        $sent = self::event('o2', $t + 4, 'subscribe_msg_sent_event', ['TemplateId' => 'T1', 'MsgID' => '2794188253209100289', 'ErrorCode' => '10004', 'ErrorStatus' => 'failed:user block']);
        $answer = $this->n->handlePush($this->appid, 'POST', self::query(), $sent);
        $this->assertSame('user_block', $answer['events'][0]['effect']);
        $this->assertSame('2794188253209100289', $answer['events'][0]['msgid']);
        $this->assertSame(0, $this->grants('o2', 'T1'));
    }

    public function testRefusalsAndTheClientGrantRule(): void
    {
        $body = self::event('o3', time(), 'subscribe_msg_popup_event', [['TemplateId' => 'T1', 'SubscribeStatusString' => 'accept']]);
        $refused = function (callable $call, string $needle): void {
            try {
                $call();
                $this->fail("not refused: $needle");
            } catch (InvalidArgumentException $e) {
                $this->assertStringContainsString($needle, $e->getMessage());
            }
        };
        $refused(fn () => $this->n->handlePush($this->appid, 'POST', ['signature' => 'bad'] + self::query(), $body), 'signature does not match');
        $refused(fn () => $this->n->handlePush($this->appid, 'POST', ['timestamp' => (string) (time() - 3600)] + self::query(), $body), 'timestamp');
        [$q, $sealed] = $this->sealed($body, 'wx0000000000other');
        $refused(fn () => $this->n->handlePush($this->appid, 'POST', $q, $sealed), 'encrypted for appid');
        $refused(fn () => $this->n->handlePush($this->appid, 'POST', self::query(), 'garbage'), 'neither XML nor JSON');
        $refused(fn () => $this->n->handlePush($this->appid, 'POST', self::query(), "{\0}"), 'NUL bytes');
        $refused(
            fn () => $this->n->addPermit($this->appid, ['openid' => 'o3', 'kind' => 'subscribe', 'template_id' => 'T1']),
            "only from WeChat's message push"
        );
        $this->assertSame(0, $this->grants('o3', 'T1'));

        $plain = 'wx' . bin2hex(random_bytes(8));
        $this->n->registerApp(['appid' => $plain, 'secret' => 's']);
        $this->expectException(AppNotConfiguredException::class);
        $this->n->handlePush($plain, 'POST', self::query(), $body);
    }

    public function testSafeModeRefusesPlainBodiesAndCapturedQueriesCarryNoOtherBody(): void
    {
        $safe = 'wx' . bin2hex(random_bytes(8));
        $this->n->registerApp([
            'appid' => $safe, 'secret' => 's', 'grants' => 'push',
            'push' => ['token' => self::TOKEN, 'encoding_aes_key' => self::AES_KEY],
        ]);
        $tap = self::event('o5', time(), 'subscribe_msg_popup_event', [['TemplateId' => 'T1', 'SubscribeStatusString' => 'accept']]);
        try {
            $this->n->handlePush($safe, 'POST', self::query(), $tap);
            $this->fail('a plain body was taken by a safe-mode app');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('takes only safe-mode pushes', $e->getMessage());
        }
        $this->assertSame(0, (int) ($this->n->ledgerStats($safe, 'o5')['subscribe']['templates']['T1'] ?? 0));

        // Compatible mode (this test's app): a captured query with another body is a replay.
        $q = self::query();
        $this->assertSame('grant_added', $this->n->handlePush($this->appid, 'POST', $q, $tap)['events'][0]['effect']);
        $this->assertSame('duplicate', $this->n->handlePush($this->appid, 'POST', $q, $tap)['events'][0]['effect']);
        $withdraw = self::event('o5', time(), 'subscribe_msg_change_event', ['TemplateId' => 'T1', 'SubscribeStatusString' => 'reject']);
        try {
            $this->n->handlePush($this->appid, 'POST', $q, $withdraw);
            $this->fail('a captured query carried another body');
        } catch (InvalidArgumentException $e) {
            $this->assertStringContainsString('already used by another push', $e->getMessage());
        }
        $this->assertSame(1, $this->grants('o5', 'T1'));
    }

    public function testListAppsShowsThePushModeNeverTheSecrets(): void
    {
        $apps = array_column($this->n->listApps(), null, 'appid');
        $this->assertSame('push', $apps[$this->appid]['grants']);
        $this->assertSame(['format' => 'json', 'safe_mode' => true], $apps[$this->appid]['push']);
        $text = (string) json_encode($apps);
        $this->assertStringNotContainsString(self::TOKEN, $text);
        $this->assertStringNotContainsString(self::AES_KEY, $text);
    }
}
