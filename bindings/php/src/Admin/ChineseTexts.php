<?php
declare(strict_types=1);

namespace FaShop\Notify\Admin;

/**
 * Chinese texts for the admin's answers: the keyword rules and the messages the
 * editor page shows. The library and the admin keep their messages in English (logs,
 * API clients, tests); the answers carry `message_zh` beside `message`, and the page
 * shows the Chinese one when there is one, the English one otherwise.
 */
final class ChineseTexts
{
    /** What each keyword type takes, as the library's `allowed` says in English. */
    public const RULES = [
        'thing' => '一行文字（汉字、字母、数字、符号均可），不能换行或含控制字符',
        'number' => '数字，可带小数',
        'letter' => '只能是字母',
        'symbol' => '汉字、字母、数字以外的常用符号，不能换行或含控制字符',
        'character_string' => '字母、数字和符号（不能有汉字和空格）',
        'time' => '24 小时制时间（HH:MM 或 HH:MM:SS），前面可带日期，或用 ~ 连接的时间段',
        'date' => 'y年m月d日、y年m月、m月d日，或用 - / . 连接（2018-01-01、2018/01/01、2018.01.01、2018-01、01-01），可带 24 小时制时间，或用 ~ 连接的日期段',
        'amount' => '可带货币符号，最多 10 位整数、2 位小数，可以“元”结尾（能否省略货币符号尚未证实）',
        'phone_number' => '数字和符号',
        'car_number' => '字母和数字；第一位和最后一位可以是汉字',
        'name' => '含汉字时最多 10 个字（汉字与字母混排按汉字计），否则最多 20 个字母或符号；不能有数字（依微信的表格，实际未经证实）',
        'phrase' => '只能是汉字',
        'const' => '由模板固定，不能设置',
        'enum_string' => '必须是模板的枚举值之一（gettemplate 的 keywordEnumValueList）；知道模板时按它检查',
        'short_thing' => '最多 5 个字的事物（上限微信未说明，沿用其他客户端的惯例）',
        'other' => '微信表格以外的前缀：只做通用的文字检查（非空、一行、最多 20 个字）；映射可以加载，但会有警告',
    ];

    /** What each kind of template check finding means, when its message has no pattern below. */
    private const KINDS = [
        'unknown_template' => '小程序没有这个模板',
        'keyword_not_in_template' => '模板没有这个关键词',
        'keyword_not_mapped' => '模板的这个关键词没有映射（微信会返回 47003）',
        'enum_value_not_allowed' => '值不是模板的枚举值之一',
        'enum_fed_a_field' => '枚举关键词由订单字段填写：发送时的值必须是模板的枚举值之一',
        'value_cannot_fit' => '这个字段的值放不进这个关键词',
        'legacy_not_checked' => '旧版模板消息不做模板检查',
        'unknown_keyword_type' => '关键词类型不在微信的表格中：只做通用检查',
    ];

    /**
     * English message patterns (the admin's own, and the library's most common) and
     * their Chinese; `$1`… are the pattern's groups.
     */
    private const MESSAGES = [
        // addtemplate (模板库)
        '/^kid_list must be a list of keyword ids/' => '请按显示顺序选择关键词（kid_list 须为关键词编号的列表）',
        '/^kid_list takes at most 5 distinct keywords/' => '最多选择 5 个不同的关键词',
        '/^scene_desc must be 1 to (\d+) characters/' => '场景说明须为 1 到 $1 个字',
        '/^tid must be a library title id/' => '请选择模板库中的标题（tid 须为正整数）',
        '/^ids must be category ids/' => '类目编号须为正整数（列表或以逗号分隔）',
        // mappings and preview
        '/^mapping must be an object/' => '映射必须是 JSON 对象',
        '/^(\w+) has no saved mapping/' => '通知 $1 还没有保存的映射：请先编辑映射再预览',
        '/^unknown mapping field (.*) \(known: /' => '未知的映射字段 $1',
        '/^template_id must be a template id/' => '请选择模板',
        '/^data must be an object/' => '关键词映射（data）须为“关键词 => 含 {字段} 的文字”',
        '/^data\.(\w+) must be a string/' => '关键词 $1 的内容须为文字',
        '/^enabled must be true or false/' => '启用状态须为是或否',
        '/^(\w+) must be a string$/' => '$1 须为文字',
        '/^the mapping does not fit the template/' => '映射与模板不符',
        '/^this admin has no order source/' => '后台没有订单来源：请用字段或示例预览',
        '/^no order (.*)$/' => '没有订单 $1',
        '/^fields must be an object/' => '字段须为“字段 => 值”的对象',
        '/mapping document for \S+ has (\d+) problems?/' => '映射有 $1 处问题',
        '/^money: amount `([^`]*)` has more than (\d+) digits/' => '金额格式：“$1”的整数部分超过 $2 位',
        '/^unknown placeholder \{([^}]*)\}/' => '未知的订单字段 {$1}',
        '/field (\w+) is missing from the payload/' => '缺少订单字段 $1',
        '/^value "(.*)" breaks the rule: (\w+) value must be at most (\d+) characters/s' => '值“$1”超过 $3 个字的上限',
        '/^value "(.*)" breaks the rule: (\w+) value/s' => '值“$1”不符合关键词的规则',
        // templates, events, outbox
        '/^template (\S+) is not among the mini program\'s templates/' => '小程序的模板中没有 $1',
        '/^(\w+) is mapped to template (\S+): /' => '通知 $1 正在使用模板 $2：请先改用其他模板，或移除它的映射',
        '/^unknown event "([^"]*)"/' => '未知通知“$1”',
        '/^the mini program (\S+) is not registered with the library/' => '小程序 $1 尚未注册到通知库：请先在微信设置中填写 AppID 和 AppSecret',
        '/^the mini program is not configured/' => '小程序尚未配置：请先在微信设置中填写 AppID 和 AppSecret',
        '/^outbox message (\d+) cannot be changed/' => '队列中的消息 $1 不能修改',
        '/^id must be an outbox message id/' => '消息编号须为 1 或以上的整数',
        '/^give id \(one message\), errcode/' => '请指定消息编号（id）、失败原因（errcode）或全部（all: true）',
        '/^(\w+) must be a number from (-?\d+) to (-?\d+)/' => '$1 须为 $2 到 $3 之间的数字',
        // the front controller
        '/^no admin secret is set/' => '服务器未设置管理密钥（FASHOP_NOTIFY_ADMIN_SECRET），管理接口已关闭',
        '/^missing or wrong /' => '缺少管理密钥，或密钥错误',
        '/^request body is larger than 1 MiB/' => '请求内容超过 1 MiB',
        '/^request body must be a JSON object/' => '请求内容须为 JSON 对象',
        '/^no admin route /' => '没有这个管理接口',
    ];

    /** The Chinese rule of a keyword type, or null for a type this table does not know. */
    public static function rule(string $type): ?string
    {
        return self::RULES[$type] ?? null;
    }

    /** The Chinese of an English message, or null when no pattern knows it. */
    public static function message(string $message, ?string $kind = null): ?string
    {
        // A value against its keyword's rule: the rule itself, in Chinese.
        if (preg_match('/^value "(.*)" breaks the rule: (\w+) value must (?!be at most \d+ characters)/s', $message, $m) && isset(self::RULES[$m[2]])) {
            return "值“{$m[1]}”不符合规则：" . self::RULES[$m[2]];
        }
        foreach (self::MESSAGES as $pattern => $zh) {
            if (preg_match($pattern, $message, $m)) {
                return preg_replace_callback('/\$(\d)/', fn ($g) => $m[(int) $g[1]] ?? '', $zh);
            }
        }
        return $kind === null ? null : (self::KINDS[$kind] ?? null);
    }

    /**
     * Findings (problems, warnings, keyword verdicts) with `message_zh` beside each message.
     *
     * @param list<array<string,mixed>> $list
     * @return list<array<string,mixed>>
     */
    public static function findings(array $list): array
    {
        foreach ($list as $i => $f) {
            if (is_array($f) && isset($f['message']) && is_string($f['message'])) {
                $list[$i]['message_zh'] = self::message($f['message'], isset($f['kind']) ? (string) $f['kind'] : null);
            }
        }
        return $list;
    }
}
