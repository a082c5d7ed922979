<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * Why a notification did or did not reach the buyer, in the shop owner's words: the one
 * table, keyed by outcome and WeChat errcode, that the outbox panel and the reach
 * report both show. Each reason keeps WeChat's own wording beside it (`wechat`), so the
 * page can show it one click away; an outbox letter shows WeChat's actual errmsg there.
 * The errcodes' meanings follow docs/spec/wechat.md (the library's errcode table).
 */
final class Reasons
{
    /** Outcomes that say the same whatever the errcode. */
    private const OUTCOMES = [
        'sent' => ['已送达', 'ok'],
        'no_permit' => ['买家未授权此模板（没有允许这条通知，或允许的次数已用完）', 'no subscription grant recorded for this buyer and template'],
        'queued' => ['暂未发出，已进入发送队列，稍后自动发送', 'kept in the outbox: WeChat could not be reached or asked to wait'],
        'uncertain' => ['可能已送达：请求已发出但微信没有回应，为免重复不再发送', 'no answer from WeChat after the request went out'],
    ];

    /** WeChat's answers to a send: [Chinese reason, WeChat's own text]. */
    private const ERRCODES = [
        -1 => ['微信系统繁忙，稍后会再试', 'system error'],
        0 => ['无法连接微信服务器', 'network error before WeChat answered'],
        40001 => ['访问凭证失效，重新获取后仍失败，请检查 AppSecret', 'invalid credential, access_token is invalid or not latest'],
        40003 => ['买家的 openid 无效（不是本小程序的用户）', 'invalid openid'],
        40037 => ['模板已被删除，请在编辑器中重新选择', 'invalid template_id'],
        40164 => ['服务器 IP 不在小程序的白名单中，请在公众平台添加', 'invalid ip, not in whitelist'],
        41030 => ['小程序未发布该页面，请检查通知的跳转页面', 'invalid page'],
        42001 => ['访问凭证过期，重新获取后仍失败', 'access_token expired'],
        43101 => ['买家已拒收（订阅次数已用完，或关闭了这条通知）', 'user refuse to accept the msg'],
        45009 => ['今日调用次数已用完，明天自动继续', 'reach max api daily quota limit'],
        45011 => ['调用太频繁，稍后自动重试', 'api minute-quota reach limit'],
        45103 => ['旧版模板消息接口已停用，请改用订阅消息模板', 'This API has been unsupported'],
        47003 => ['消息内容不符合模板规则，请检查映射', 'argument invalid! data.xxx.value invalid'],
    ];

    /**
     * The reason for an outcome (`sent`, `no_permit`, `refused`, `failed`, `uncertain`,
     * `queued`, or an outbox state `dead`) and errcode.
     *
     * @return array{text: string, wechat: string, errcode: int}
     */
    public static function of(string $outcome, int $errcode = 0): array
    {
        if (isset(self::OUTCOMES[$outcome])) {
            [$text, $wechat] = self::OUTCOMES[$outcome];
        } elseif ($outcome === 'refused') {
            [$text, $wechat] = self::ERRCODES[43101];
        } elseif (isset(self::ERRCODES[$errcode])) {
            [$text, $wechat] = self::ERRCODES[$errcode];
        } else {
            [$text, $wechat] = ["微信拒绝了这条通知（错误码 {$errcode}）", "errcode {$errcode}"];
        }
        return ['text' => $text, 'wechat' => $wechat, 'errcode' => $errcode];
    }

    /**
     * The reason of an outbox letter (`dead` or `uncertain`), with WeChat's actual
     * errmsg as its `wechat` text. A letter without an errcode died for want of a
     * grant (the library's message says "permit") or of a connection.
     *
     * @return array{text: string, wechat: string, errcode: int}
     */
    public static function ofLetter(string $state, int $errcode, string $errmsg): array
    {
        $outcome = match (true) {
            $state === 'uncertain' => 'uncertain',
            $errcode === 0 && stripos($errmsg, 'permit') !== false => 'no_permit',
            default => 'failed',
        };
        return ['wechat' => $errmsg !== '' ? $errmsg : self::of($outcome, $errcode)['wechat']] + self::of($outcome, $errcode);
    }
}
