//! The templates every sandbox app starts with, and the public template library
//! that `addtemplate` picks from. The ids are fixed so that mappings written for
//! the sandbox keep working across restarts.

/// Payment success: `character_string1` order no., `amount2` amount, `thing3` goods, `time4` pay time.
pub const TPL_PAY_SUCCESS: &str = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";
/// Order shipped: `character_string1` order no., `thing2` express company,
/// `character_string3` tracking no., `time4` shipping time.
pub const TPL_DELIVERED: &str = "Ib27Mxy85v0eqHp2ERuLGQZx3NAcZCf_jCmhQdY7Ez-";
/// Order cancelled: `character_string1` order no., `amount2` amount, `thing3` reason, `time4` time.
pub const TPL_CANCEL: &str = "zFZQHNIcOQTBP6tUWfm0kOqpQyP1OlFdyKhlIB3opX3";
/// Refund requested: `character_string1` order no., `amount2` refund amount, `thing3` reason, `time4` time.
pub const TPL_REFUND: &str = "AKcL1rxIu4sHSC-GUMEPYZNFeHFXlwDpvt1lYmzB5Uv";
/// Payment failed: `character_string1` order no., `amount2` amount, `thing3` reason.
pub const TPL_PAY_FAIL: &str = "oad_-q5QMegD5vfX3r1HDY0hWokTpXtZVuRT_L_K4kx";
/// A long-term template (type 3: a grant is not used up by a send) with an
/// enum keyword: `character_string1` order no., `enum_string2` status (one of
/// `ORDER_STATUS_VALUES`), `thing3` note, `time4` time.
pub const TPL_ORDER_STATUS: &str = "Lt3kQ9vYx2mWnB7cR5sDfH8jK1pZ4aE6uG0iO_tNq-w";
/// The values of `TPL_ORDER_STATUS`'s `enum_string2`.
pub const ORDER_STATUS_VALUES: &[&str] = &["已支付", "已发货", "已签收", "已取消"];

/// Legacy payment success: `keyword1` order no., `keyword2` amount, `keyword3` goods, `keyword4` pay time.
pub const LEGACY_TPL_PAY_SUCCESS: &str = "egm7LKhgiXWnhiId2BJKKO8NqOmXFjpzUukMrMTvcfe";
/// Legacy order shipped: `keyword1` order no., `keyword2` express company, `keyword3` tracking no., `keyword4` time.
pub const LEGACY_TPL_DELIVERED: &str = "M-W7nafAf63dXFq9fYVPHyUmvmTVcvFKXMhbzlEd4Vv";
/// Legacy order cancelled: `keyword1` order no., `keyword2` amount, `keyword3` reason, `keyword4` time.
pub const LEGACY_TPL_CANCEL: &str = "OzuYFl7iKCyZQeG-JDWxCOQ2fgrlaQJx3dfqSwAExxC";
/// Legacy refund: `keyword1` order no., `keyword2` amount, `keyword3` reason, `keyword4` time.
pub const LEGACY_TPL_REFUND: &str = "0nLfYmF9jA7ej3QrZP1IWbz1db74J50b-BTZF4agJo9";

/// The demo app the binary seeds when it is given no app.
pub const DEMO_APPID: &str = "wxdemo0000000001";
/// The demo app's secret (a sandbox value, not a real credential).
pub const DEMO_SECRET: &str = "demo-app-secret-0001";

/// A keyword of a public library template: WeChat's `kid`, label, example and
/// value rule (the prefix of the keyword's name), and for an enum keyword its
/// values (`keywordEnumValueList` of gettemplate).
#[derive(Debug, Clone, Copy)]
pub struct LibraryKeyword {
    pub kid: u32,
    pub name: &'static str,
    pub example: &'static str,
    pub rule: &'static str,
    pub enum_values: &'static [&'static str],
}

/// A template of WeChat's public subscribe-message library.
#[derive(Debug, Clone, Copy)]
pub struct LibraryTemplate {
    pub tid: u32,
    pub title: &'static str,
    pub category_id: u32,
    /// WeChat's `type`: 2 one-time, 3 long-term (grants are not used up).
    pub kind: u8,
    pub keywords: &'static [LibraryKeyword],
}

/// tids of WeChat's new one-time templates, whose `addtemplate` takes an empty
/// kidList (all keywords): https://developers.weixin.qq.com/miniprogram/dev/api-backend/open-api/subscribe-message/subscribeMessage.addTemplate.html
pub const NEW_ONE_TIME_TIDS: std::ops::Range<u32> = 10_000_001..20_000_000;

const fn kw(
    kid: u32,
    name: &'static str,
    example: &'static str,
    rule: &'static str,
) -> LibraryKeyword {
    LibraryKeyword {
        kid,
        name,
        example,
        rule,
        enum_values: &[],
    }
}

const fn enum_kw(
    kid: u32,
    name: &'static str,
    example: &'static str,
    values: &'static [&'static str],
) -> LibraryKeyword {
    LibraryKeyword {
        kid,
        name,
        example,
        rule: "enum_string",
        enum_values: values,
    }
}

/// Categories of the public library; an app's own (`getcategory`) are all
/// of them unless seeded with fewer.
pub const CATEGORIES: &[(u32, &str)] =
    &[(307, "服装/鞋/箱包"), (616, "电商平台"), (1130, "交通服务")];

/// Long-term (type 3) templates are only for offline public services:
/// 政务民生, 医疗, 交通, 金融, 教育 (WeChat's subscribe-message guide). Of the
/// sandbox's categories only 交通服务 is one; a shop (服装, 电商平台) gets none.
pub fn is_public_service(category_id: u32) -> bool {
    category_id == 1130
}

/// The public library (`getpubtemplatetitles`, `getpubtemplatekeywords`, `addtemplate`).
pub const LIBRARY: &[LibraryTemplate] = &[
    LibraryTemplate {
        tid: 1754,
        title: "支付成功通知",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "支付金额", "¥199.00", "amount"),
            kw(3, "商品名称", "秋冬加厚连衣裙", "thing"),
            kw(4, "支付时间", "2026-11-23 20:10", "time"),
            kw(5, "备注", "感谢您的购买", "thing"),
            kw(6, "订单状态", "已支付", "phrase"),
        ],
    },
    LibraryTemplate {
        tid: 1856,
        title: "订单发货通知",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "快递公司", "顺丰速运", "thing"),
            kw(3, "快递单号", "SF1234567890", "character_string"),
            kw(4, "发货时间", "2026-11-23 20:10", "time"),
            kw(5, "收货地址", "上海市徐汇区漕溪北路1号", "thing"),
            kw(6, "收货人", "张三", "name"),
            kw(7, "联系电话", "138-0013-8000", "phone_number"),
        ],
    },
    LibraryTemplate {
        tid: 2103,
        title: "订单取消通知",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "订单金额", "¥199.00", "amount"),
            kw(3, "取消原因", "超时未支付", "thing"),
            kw(4, "取消时间", "2026-11-23 20:10", "time"),
            kw(5, "商品数量", "2", "number"),
        ],
    },
    LibraryTemplate {
        tid: 2331,
        title: "退款申请通知",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "退款金额", "¥199.00", "amount"),
            kw(3, "退款原因", "尺码不合适", "thing"),
            kw(4, "申请时间", "2026-11-23 20:10", "time"),
            kw(5, "预计到账", "2026-11-30", "date"),
        ],
    },
    LibraryTemplate {
        tid: 2476,
        title: "支付失败提醒",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "订单金额", "¥199.00", "amount"),
            kw(3, "失败原因", "余额不足", "thing"),
            kw(4, "失败时间", "2026-11-23 20:10", "time"),
        ],
    },
    LibraryTemplate {
        tid: 3012,
        title: "上新提醒",
        category_id: 307,
        kind: 2,
        keywords: &[
            kw(1, "商品名称", "羊毛大衣", "thing"),
            kw(2, "上新日期", "2026-11-23", "date"),
            kw(3, "款号", "A1024", "letter"),
        ],
    },
    LibraryTemplate {
        tid: 3120,
        title: "订单状态提醒",
        category_id: 1130,
        kind: 3,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            enum_kw(2, "订单状态", "已发货", ORDER_STATUS_VALUES),
            kw(3, "备注", "请留意查收", "thing"),
            kw(4, "更新时间", "2026-11-23 20:10", "time"),
        ],
    },
    LibraryTemplate {
        tid: 10_000_024,
        title: "订单进度通知",
        category_id: 616,
        kind: 2,
        keywords: &[
            kw(1, "订单号", "SN202611230001", "character_string"),
            kw(2, "进度", "已接单", "short_thing"),
            kw(3, "更新时间", "2026-11-23 20:10", "time"),
        ],
    },
    // The service cards' templates: no keywords at all (addtemplate takes an
    // empty kidList, gettemplate shows an empty content) and never sent with
    // subscribeMessage.send (docs/spec/wechat.md, service cards).
    card_template(10_000_001, "购物(实体物流)服务动态"),
    card_template(10_000_002, "购物(自提)服务动态"),
    card_template(10_000_003, "购物(虚拟发货)服务动态"),
];

const fn card_template(tid: u32, title: &'static str) -> LibraryTemplate {
    LibraryTemplate {
        tid,
        title,
        category_id: 616,
        kind: 2,
        keywords: &[],
    }
}

/// A private subscribe template seeded into every app: (priTmplId, library tid, kidList).
pub const SEEDED: &[(&str, u32, &[u32])] = &[
    (TPL_PAY_SUCCESS, 1754, &[1, 2, 3, 4]),
    (TPL_DELIVERED, 1856, &[1, 2, 3, 4]),
    (TPL_CANCEL, 2103, &[1, 2, 3, 4]),
    (TPL_REFUND, 2331, &[1, 2, 3, 4]),
    (TPL_PAY_FAIL, 2476, &[1, 2, 3]),
    (TPL_ORDER_STATUS, 3120, &[1, 2, 3, 4]),
];

/// A legacy template seeded into every app: (template_id, title, keyword labels).
pub const SEEDED_LEGACY: &[(&str, &str, &[&str])] = &[
    (
        LEGACY_TPL_PAY_SUCCESS,
        "购买成功通知",
        &["订单号", "支付金额", "商品名称", "支付时间"],
    ),
    (
        LEGACY_TPL_DELIVERED,
        "订单发货提醒",
        &["订单号", "快递公司", "快递单号", "发货时间"],
    ),
    (
        LEGACY_TPL_CANCEL,
        "订单取消通知",
        &["订单号", "订单金额", "取消原因", "取消时间"],
    ),
    (
        LEGACY_TPL_REFUND,
        "退款申请通知",
        &["订单号", "退款金额", "退款原因", "申请时间"],
    ),
];

/// The library template with this `tid`.
pub fn library(tid: u32) -> Option<&'static LibraryTemplate> {
    LIBRARY.iter().find(|t| t.tid == tid)
}

/// A template of the legacy template library (`/cgi-bin/wxopen/template/library/…`).
#[derive(Debug, Clone, Copy)]
pub struct LegacyLibraryTemplate {
    pub id: &'static str,
    pub title: &'static str,
    /// (keyword_id, name, example)
    pub keywords: &'static [(u32, &'static str, &'static str)],
}

/// The legacy template library.
pub const LEGACY_LIBRARY: &[LegacyLibraryTemplate] = &[
    LegacyLibraryTemplate {
        id: "AT0002",
        title: "购买成功通知",
        keywords: &[
            (1, "订单号", "SN202611230001"),
            (2, "支付金额", "199.00元"),
            (3, "商品名称", "秋冬加厚连衣裙"),
            (4, "支付时间", "2026-11-23 20:10"),
            (5, "购买地点", "FaShop 旗舰店"),
        ],
    },
    LegacyLibraryTemplate {
        id: "AT0007",
        title: "订单发货提醒",
        keywords: &[
            (1, "订单号", "SN202611230001"),
            (2, "快递公司", "顺丰速运"),
            (3, "快递单号", "SF1234567890"),
            (4, "发货时间", "2026-11-23 20:10"),
        ],
    },
    LegacyLibraryTemplate {
        id: "AT0024",
        title: "订单取消通知",
        keywords: &[
            (1, "订单号", "SN202611230001"),
            (2, "订单金额", "199.00元"),
            (3, "取消原因", "超时未支付"),
            (4, "取消时间", "2026-11-23 20:10"),
        ],
    },
    LegacyLibraryTemplate {
        id: "AT0036",
        title: "退款申请通知",
        keywords: &[
            (1, "订单号", "SN202611230001"),
            (2, "退款金额", "199.00元"),
            (3, "退款原因", "尺码不合适"),
            (4, "申请时间", "2026-11-23 20:10"),
        ],
    },
];

/// The legacy library template with this id.
pub fn legacy_library(id: &str) -> Option<&'static LegacyLibraryTemplate> {
    LEGACY_LIBRARY.iter().find(|t| t.id == id)
}
