//! Rendering: every keyword rule and filter through the public API, the payload
//! format, the rendered message and its body.

use fashop_notify::{Error, MessageKind, Notifier};
use serde_json::{json, Value};

const APP: &str = "wxrender00000001";
const EXAMPLE: &str = include_str!("../examples/mappings.json");
const EVENT: &str = "order_pay_success";

fn notifier() -> Notifier {
    let n = Notifier::new();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"s3cret"}}"#))
        .unwrap();
    n
}

/// Maps `keyword` of order_pay_success to `pattern`, renders `fields`, and
/// returns the keyword's value.
fn one(
    n: &Notifier,
    keyword: &str,
    pattern: &str,
    overflow: &str,
    fields: Value,
) -> Result<String, Error> {
    let doc = json!({"version": 1, "events": {EVENT: {
        "template_id": "tmplOne", "overflow": overflow, "data": {keyword: pattern}
    }}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let body = n.render(
        APP,
        EVENT,
        &json!({"touser": "oOne", "fields": fields}).to_string(),
    )?;
    let body: Value = serde_json::from_str(&body).unwrap();
    Ok(body["data"][keyword]["value"].as_str().unwrap().to_string())
}

type Case = (
    &'static str,
    &'static str,
    &'static str,
    Value,
    Result<String, &'static str>,
);

fn ok(s: impl Into<String>) -> Result<String, &'static str> {
    Ok(s.into())
}

fn run(cases: Vec<Case>) {
    let n = notifier();
    for (keyword, pattern, overflow, value, want) in cases {
        let field = pattern
            .trim_start_matches('{')
            .split(['|', '}'])
            .next()
            .unwrap()
            .to_string();
        let got = one(
            &n,
            keyword,
            pattern,
            overflow,
            json!({ field: value.clone() }),
        );
        match (&got, &want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{keyword} {pattern} {value}"),
            (Err(Error::Mapping(m)), Err(w)) => {
                assert!(
                    m.contains(w),
                    "{keyword} {pattern} {value}: {m:?} lacks {w:?}"
                );
                assert!(m.len() < 600, "message too long: {} bytes", m.len());
            }
            _ => panic!("{keyword} {pattern} {value}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn text_keywords_are_checked_and_shortened() {
    let twenty = "一二三四五六七八九十一二三四五六七八九十";
    let long = format!("{twenty}多");
    let big = "字".repeat(1 << 20);
    let t = "{order_total_goods_name}";
    run(vec![
        ("thing3", t, "truncate", json!("连衣裙 x2"), ok("连衣裙 x2")),
        ("thing3", t, "truncate", json!(twenty), ok(twenty)),
        (
            "thing3",
            t,
            "truncate",
            json!(long),
            ok(format!("{}…", &twenty[..19 * 3])),
        ),
        (
            "thing3",
            t,
            "error",
            json!(long),
            Err("keyword thing3 (field order_total_goods_name): value \"一二三"),
        ),
        (
            "thing3",
            t,
            "error",
            json!(long),
            Err("thing value must be at most 20 characters (the mapping's overflow is \"error\")"),
        ),
        (
            "thing3",
            t,
            "truncate",
            json!("👗".repeat(25)),
            ok(format!("{}…", "👗".repeat(19))),
        ),
        (
            "thing3",
            t,
            "truncate",
            json!("a👗b\u{301}c"),
            ok("a👗b\u{301}c"),
        ),
        (
            "thing3",
            t,
            "truncate",
            json!(""),
            Err("thing value must be non-empty"),
        ),
        (
            "thing3",
            t,
            "truncate",
            json!(big),
            ok(format!("{}…", "字".repeat(19))),
        ),
        (
            "thing3",
            t,
            "error",
            json!(big),
            Err("at most 20 characters"),
        ),
        ("thing3", t, "truncate", json!(true), ok("是")),
        ("thing3", t, "truncate", json!(false), ok("否")),
        ("thing3", t, "truncate", json!(7), ok("7")),
        (
            "thing3",
            t,
            "truncate",
            json!({"a": 1}),
            Err("field order_total_goods_name: is an object, not a string"),
        ),
        ("thing3", t, "truncate", json!([1]), Err("is an array")),
        (
            "thing3",
            t,
            "truncate",
            json!(null),
            Err("field order_total_goods_name is missing"),
        ),
        ("name5", t, "truncate", json!("张三"), ok("张三")),
        (
            "name5",
            t,
            "truncate",
            json!("欧阳一二三四五六七八九"),
            ok("欧阳一二三四五六七八"),
        ),
        (
            "name5",
            t,
            "truncate",
            json!("Alexander Maximilian Smith"),
            ok("Alexander Maximilia…"),
        ),
        (
            "name5",
            t,
            "error",
            json!("欧阳一二三四五六七八九"),
            Err("name value must be at most 10 characters (it has Chinese)"),
        ),
        ("name5", t, "truncate", json!("张三Tom"), ok("张三Tom")),
        (
            "name5",
            t,
            "truncate",
            json!("user25"),
            Err("name value must be Chinese characters, letters and symbols, without digits"),
        ),
        ("phrase6", t, "truncate", json!("已发货"), ok("已发货")),
        (
            "phrase6",
            t,
            "truncate",
            json!("已发货了吗呀"),
            ok("已发货了吗"),
        ),
        (
            "phrase6",
            t,
            "truncate",
            json!("shipped"),
            Err("phrase value must be Chinese characters only"),
        ),
        (
            "phrase6",
            t,
            "error",
            json!("已发货了吗呀"),
            Err("at most 5 Chinese characters"),
        ),
    ]);
}

#[test]
fn typed_keywords_are_never_mended() {
    let sn = "{order_sn}";
    run(vec![
        ("character_string1", sn, "truncate", json!("SN-2026-0001"), ok("SN-2026-0001")),
        ("character_string1", sn, "truncate", json!(2026112221300001u64), ok("2026112221300001")),
        ("character_string1", sn, "truncate", json!("订单1"), Err("keyword character_string1 (field order_sn): value \"订单1\" breaks the rule: character_string value must be letters, digits and symbols only")),
        ("character_string1", sn, "truncate", json!("x".repeat(33)), Err("character_string value must be at most 32 characters")),
        ("character_string1", sn, "truncate", json!("9".repeat(1 << 20)), Err("at most 32 characters")),
        ("number7", "{order_total_goods_num}", "truncate", json!(2), ok("2")),
        ("number7", "{order_total_goods_num}", "truncate", json!(-2), ok("-2")),
        ("number7", "{order_total_goods_num}", "truncate", json!(12.5), ok("12.5")),
        ("number7", "{order_total_goods_num}", "truncate", json!("2件"), Err("number value must be digits with an optional decimal part")),
        ("letter8", sn, "truncate", json!("ABC"), ok("ABC")),
        ("letter8", sn, "truncate", json!("AB1"), Err("letter value must be letters only")),
        ("symbol9", sn, "truncate", json!("+-"), ok("+-")),
        ("symbol9", sn, "truncate", json!("+-*/%^"), Err("symbol value must be at most 5 characters")),
        ("phone_number10", sn, "truncate", json!("+86-13800138000"), ok("+86-13800138000")),
        ("phone_number10", sn, "truncate", json!("call me"), Err("phone_number value must be digits and symbols only")),
        ("car_number11", sn, "truncate", json!("粤A12345"), ok("粤A12345")),
        ("car_number11", sn, "truncate", json!("A粤1234"), Err("car_number value")),
    ]);
}

#[test]
fn money_time_and_date_keywords() {
    let money = "{order_amount|money}";
    let time = "{pay_time|datetime}";
    run(vec![
        ("amount2", money, "truncate", json!(12.345), ok("¥12.35")),
        ("amount2", money, "truncate", json!("12.345"), ok("¥12.35")),
        ("amount2", money, "truncate", json!(1.005), ok("¥1.01")),
        ("amount2", money, "truncate", json!(128), ok("¥128.00")),
        ("amount2", money, "truncate", json!(0), ok("¥0.00")),
        ("amount2", money, "truncate", json!("9999999999.99"), ok("¥9999999999.99")),
        ("amount2", money, "truncate", json!(-1), Err("keyword amount2, field order_amount: money: amount `-1` is negative")),
        ("amount2", money, "truncate", json!("abc"), Err("money: `abc` is not an amount")),
        ("amount2", money, "truncate", json!(""), Err("money: `` is not an amount")),
        ("amount2", money, "truncate", json!(1e300), Err("more than 10 digits")),
        ("amount2", money, "truncate", json!("1".repeat(1 << 20)), Err("more than 10 digits")),
        ("amount2", money, "truncate", json!(true), Err("money: `是` is not an amount")),
        ("amount2", "{order_amount}", "truncate", json!("12.50元"), ok("12.50元")),
        ("amount2", "{order_amount}", "truncate", json!("abc"), Err("amount value must be an optional currency symbol and at most 10 digits, decimals allowed, optionally ending in 元 (the money filter formats amounts)")),
        ("time4", time, "truncate", json!(1795354200), ok("2026-11-22 21:30")),
        ("time4", time, "truncate", json!("1795354200"), ok("2026-11-22 21:30")),
        ("time4", time, "truncate", json!(1795354200.75), ok("2026-11-22 21:30")),
        ("time4", time, "truncate", json!("2026-11-22 21:30:00"), ok("2026-11-22 21:30")),
        ("time4", time, "truncate", json!(1795354200000u64), Err("keyword time4, field pay_time: datetime: `1795354200000` is out of range for unix seconds (milliseconds? divide by 1000)")),
        ("time4", time, "truncate", json!(-1), Err("datetime: `-1` is before 1970")),
        ("time4", time, "truncate", json!("soon"), Err("datetime: `soon` is neither unix seconds nor a time")),
        ("time4", "{pay_time}", "truncate", json!("2026-11-22 21:30:00"), ok("2026-11-22 21:30:00")),
        ("time4", "{pay_time}", "truncate", json!(1795354200), Err("time value must be a 24-hour time, optionally with a date, or a range joined by ~ (the datetime filter formats times)")),
        ("date5", "{pay_time|date}", "truncate", json!(1795363200), ok("2026-11-23")),
        ("date5", "{pay_time|date}", "truncate", json!("2026-11-22"), ok("2026-11-22")),
        ("date5", "{pay_time}", "truncate", json!(1795363200), Err("(the date filter formats dates)")),
    ]);
}

#[test]
fn filters_chain_and_defaults_fill_gaps() {
    let n = notifier();
    let r = |pattern: &str, fields: Value| one(&n, "thing3", pattern, "truncate", fields);
    assert_eq!(
        r("{order_total_goods_name|default:无}", json!({})).unwrap(),
        "无"
    );
    assert_eq!(
        r(
            "{order_total_goods_name|default:无}",
            json!({"order_total_goods_name": null})
        )
        .unwrap(),
        "无"
    );
    assert_eq!(
        r(
            "{order_total_goods_name|default:无}",
            json!({"order_total_goods_name": ""})
        )
        .unwrap(),
        "无"
    );
    assert_eq!(
        r(
            "{order_total_goods_name|default:无}",
            json!({"order_total_goods_name": "太贵"})
        )
        .unwrap(),
        "太贵"
    );
    assert_eq!(
        r(
            "{order_sn|truncate:5}",
            json!({"order_sn": "法式碎花连衣裙"})
        )
        .unwrap(),
        "法式碎花…"
    );
    assert_eq!(
        r("{order_sn|truncate:5}", json!({"order_sn": "👗👗👗👗👗👗"})).unwrap(),
        "👗👗👗👗…"
    );
    assert_eq!(
        r("{order_sn|truncate:5}", json!({"order_sn": "短"})).unwrap(),
        "短"
    );
    assert_eq!(
        r("共{order_total_goods_num|default:1}件", json!({})).unwrap(),
        "共1件"
    );
    assert_eq!(
        r("{order_amount|default:0|money}", json!({})).unwrap(),
        "¥0.00"
    );
    assert_eq!(
        r("{{{order_sn}}}", json!({"order_sn": "x"})).unwrap(),
        "{x}"
    );
    assert_eq!(
        r(
            "{order_sn} {order_total_goods_name|truncate:3}",
            json!({"order_sn": "SN1", "order_total_goods_name": "连衣裙裙"})
        )
        .unwrap(),
        "SN1 连衣…"
    );
    // A keyword over several fields names them all when its value breaks the rule.
    let err = one(
        &n,
        "character_string1",
        "{order_sn}-{order_total_goods_name}",
        "truncate",
        json!({"order_sn": "SN1", "order_total_goods_name": "裙"}),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("keyword character_string1 (fields order_sn, order_total_goods_name)"),
        "{err}"
    );
    // A missing field names the event, the keyword and the field.
    let err = r("{order_total_goods_name}", json!({"other": 1})).unwrap_err();
    assert_eq!(
        err,
        Error::Mapping("event order_pay_success, keyword thing3: field order_total_goods_name is missing from the payload (add it to fields, or give a default such as {order_total_goods_name|default:无})".into())
    );
}

fn seed_payload() -> Value {
    json!({"touser": "oSeedUser01", "fields": {
        "order_sn": "2026112221300001", "order_amount": "128.50",
        "order_total_goods_name": "法式碎花连衣裙 等2件", "order_total_goods_num": 2,
        "order_create_time": "2026-11-22 21:28:05", "pay_time": 1795354200, "order_id": 10086,
        "some_extra_field": {"nested": [1, 2, 3]}
    }})
}

#[test]
fn the_rendered_message_carries_what_send_needs() {
    let n = notifier();
    n.load_mappings(APP, EXAMPLE).unwrap();
    let payload = seed_payload().to_string();
    let m = n.render_message(APP, EVENT, &payload).unwrap();
    assert_eq!(m.kind, MessageKind::Subscribe);
    assert_eq!(m.template_id, "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C");
    assert_eq!(m.touser, "oSeedUser01");
    assert_eq!(m.order_sn.as_deref(), Some("2026112221300001"));
    assert_eq!(
        m.idempotency_key,
        format!("{APP}:{EVENT}:oSeedUser01:2026112221300001")
    );
    let want = json!({
        "touser": "oSeedUser01",
        "template_id": "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C",
        "page": "pages/order/detail?id=10086",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "data": {
            "character_string1": {"value": "2026112221300001"},
            "amount2": {"value": "¥128.50"},
            "thing3": {"value": "法式碎花连衣裙 等2件"},
            "time4": {"value": "2026-11-22 21:30"}
        }
    });
    assert_eq!(Value::Object(m.body.clone()), want);
    // render writes exactly the text of the message's body.
    assert_eq!(
        n.render(APP, EVENT, &payload).unwrap(),
        serde_json::to_string(&m.body).unwrap()
    );

    let mut p = seed_payload();
    p["idempotency_key"] = json!("order-1-paid");
    assert_eq!(
        n.render_message(APP, EVENT, &p.to_string())
            .unwrap()
            .idempotency_key,
        "order-1-paid"
    );
    // No order_sn and no key: refused, naming the missing key field (each
    // repeat would be delivered again).
    let doc = json!({"version": 1, "events": {"order_cancel": {"template_id": "t", "data": {"thing1": "{cancel_reason|default:已取消}"}}}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    match n.render_message(APP, "order_cancel", r#"{"touser":"o1"}"#) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("fields.order_sn is missing"), "{m}");
            assert!(m.contains("\"idempotency_key\": false"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // An empty order_sn is no key either.
    assert!(n
        .render_message(
            APP,
            "order_cancel",
            r#"{"touser":"o1","fields":{"order_sn":""}}"#
        )
        .is_err());
    // Saying so explicitly: no idempotency (each send is a new message).
    let m = n
        .render_message(
            APP,
            "order_cancel",
            r#"{"touser":"o1","idempotency_key":false}"#,
        )
        .unwrap();
    assert_eq!((m.order_sn, m.idempotency_key.as_str()), (None, ""));
    match n.render_message(
        APP,
        "order_cancel",
        r#"{"touser":"o1","idempotency_key":true}"#,
    ) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("or false"), "{m}"),
        other => panic!("{other:?}"),
    }
    let m = n
        .render_message(
            APP,
            "order_cancel",
            r#"{"touser":"o1","fields":{"order_sn":12}}"#,
        )
        .unwrap();
    assert_eq!(m.idempotency_key, format!("{APP}:order_cancel:o1:12"));
    // A huge order_sn does not make a huge key.
    let long = json!({"touser": "o1", "fields": {"order_sn": "9".repeat(1 << 20)}}).to_string();
    match n.render_message(APP, "order_cancel", &long) {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("fields.order_sn is longer than 128"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let keyed = json!({"touser": "o1", "idempotency_key": "k", "fields": {"order_sn": "9".repeat(1 << 20)}});
    assert_eq!(
        n.render_message(APP, "order_cancel", &keyed.to_string())
            .unwrap()
            .idempotency_key,
        "k"
    );
}

#[test]
fn legacy_template_bodies() {
    let n = notifier();
    let doc = json!({"version": 1, "events": {"order_delivered": {
        "kind": "template", "template_id": "legacyT", "page": "/pages/order/detail?id={order_id}",
        "data": {"keyword1": "{order_sn}", "keyword2": "{express_company} {tracking_no}", "keyword3": "{order_total_goods_name}"},
        "emphasis_keyword": "keyword1.DATA"
    }}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let fields = |goods: &str| {
        json!({"touser": "oL", "fields": {"order_sn": "SN1", "express_company": "顺丰",
        "tracking_no": "SF1", "order_id": "a b/中", "order_total_goods_name": goods}})
        .to_string()
    };
    let m = n
        .render_message(APP, "order_delivered", &fields("连衣裙"))
        .unwrap();
    assert_eq!(m.kind, MessageKind::Template);
    assert_eq!(
        Value::Object(m.body),
        json!({
            "touser": "oL", "template_id": "legacyT",
            "page": "pages/order/detail?id=a%20b%2F%E4%B8%AD",
            "data": {"keyword1": {"value": "SN1"}, "keyword2": {"value": "顺丰 SF1"}, "keyword3": {"value": "连衣裙"}},
            "emphasis_keyword": "keyword1.DATA"
        })
    );
    // Legacy values have no typed rule but are kept to 200 characters.
    let m = n
        .render_message(APP, "order_delivered", &fields(&"裙".repeat(5000)))
        .unwrap();
    let v = m.body["data"]["keyword3"]["value"].as_str().unwrap();
    assert_eq!(v.chars().count(), 200);
    assert!(v.ends_with('…'));
}

#[test]
fn a_page_too_long_after_rendering_is_refused() {
    let n = notifier();
    let doc = json!({"version": 1, "events": {EVENT: {"template_id": "t", "page": "/p?goods={order_total_goods_name}",
        "data": {"thing1": "{order_sn}"}}}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let payload = json!({"touser": "o", "fields": {"order_sn": "x", "order_total_goods_name": "裙".repeat(400)}});
    match n.render(APP, EVENT, &payload.to_string()) {
        Err(Error::Mapping(m)) => assert!(
            m.contains("event order_pay_success, page: the rendered page is longer than 1024"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let payload = json!({"touser": "o", "fields": {"order_sn": "x"}});
    match n.render(APP, EVENT, &payload.to_string()) {
        Err(Error::Mapping(m)) => assert!(
            m.contains("event order_pay_success, page: field order_total_goods_name is missing"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn payload_problems_are_invalid_arguments() {
    let n = notifier();
    n.load_mappings(APP, EXAMPLE).unwrap();
    let f = r#""fields":{"order_sn":"SN1","order_amount":1,"order_total_goods_name":"x","pay_time":0,"order_id":1}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{{{f}}}"),
            "payload_json: missing field `touser` (the user's openid)",
        ),
        (
            format!(r#"{{"touser":null,{f}}}"#),
            "missing field `touser`",
        ),
        (
            format!(r#"{{"touser":"",{f}}}"#),
            "payload_json: touser must not be empty",
        ),
        (
            format!(r#"{{"touser":5,{f}}}"#),
            "payload_json: touser must be a string",
        ),
        (
            format!(r#"{{"touser":"o 1",{f}}}"#),
            "touser must not contain spaces or control characters",
        ),
        (
            format!(r#"{{"touser":"{}",{f}}}"#, "o".repeat(129)),
            "touser is longer than 128 characters",
        ),
        (
            format!(r#"{{"touser":"o1","idempotency_key":"",{f}}}"#),
            "idempotency_key must not be empty",
        ),
        (
            format!(r#"{{"touser":"o1","idempotency_key":7,{f}}}"#),
            "idempotency_key must be a string",
        ),
        (
            format!(
                r#"{{"touser":"o1","idempotency_key":"{}",{f}}}"#,
                "k".repeat(257)
            ),
            "idempotency_key is longer than 256",
        ),
        (
            r#"{"touser":"o1","fields":"x"}"#.into(),
            "payload_json: invalid type: string \"x\", expected `fields` to be an object",
        ),
        (
            r#"{"touser":"o1","fields":[1]}"#.into(),
            "expected `fields` to be an object",
        ),
        (r#"[]"#.into(), "payload_json: invalid type: sequence"),
        (r#""x""#.into(), "payload_json: invalid type: string"),
        (
            r#"{"touser":"o1"} x"#.into(),
            "payload_json: trailing characters",
        ),
        (r#"{"touser":"o1","#.into(), "payload_json: EOF"),
        ("".into(), "payload_json: EOF"),
        (
            r#"{"touser":"o1","fields":{"order_sn":"\ud800"}}"#.into(),
            "payload_json: ",
        ),
    ];
    for (payload, want) in cases {
        match n.render(APP, EVENT, &payload) {
            Err(Error::InvalidArgument(m)) => {
                assert!(m.contains(want), "{payload}: {m:?} lacks {want:?}")
            }
            other => panic!("{payload}: {other:?}"),
        }
    }
    // Accepted shapes: extra keys, escaped keys and values, `[]` or null for no fields.
    let body = n
        .render(
            APP,
            EVENT,
            &format!(r#"{{"touser":"o1","extra":{{"a":[1]}},{f}}}"#),
        )
        .unwrap();
    assert!(body.contains(r#""character_string1":{"value":"SN1"}"#));
    let body = n
        .render(APP, EVENT, r#"{"touser":"o1","fields":{"order\u005fsn":"S\u004e2","order_amount":1,"order_total_goods_name":"x\"y","pay_time":0,"order_id":1}}"#)
        .unwrap();
    assert!(
        body.contains(r#""character_string1":{"value":"SN2"}"#) && body.contains(r#"x\"y"#),
        "{body}"
    );
    let doc = json!({"version": 1, "events": {"order_cancel": {"template_id": "t", "data": {"thing1": "{cancel_reason|default:已取消}"}}}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    for fields in ["[]", "null", "{}"] {
        let body = n
            .render(
                APP,
                "order_cancel",
                &format!(r#"{{"touser":"o1","fields":{fields}}}"#),
            )
            .unwrap();
        assert!(body.contains("已取消"), "{fields}: {body}");
    }
}

#[test]
fn events_must_be_mapped_and_enabled() {
    let n = notifier();
    let p = seed_payload().to_string();
    assert!(
        matches!(n.render(APP, EVENT, &p), Err(Error::Mapping(m)) if m.contains("no mapping document is loaded"))
    );
    assert!(matches!(
        n.render("wxnope", EVENT, &p),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.render_message("", EVENT, &p),
        Err(Error::InvalidArgument(_))
    ));
    let doc = json!({"version": 1, "events": {
        EVENT: {"template_id": "t", "enabled": false, "data": {"thing1": "{order_sn}"}}}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    assert_eq!(
        n.render(APP, EVENT, &p),
        Err(Error::Mapping(format!(
            "event order_pay_success is disabled in the mapping of app {APP}"
        )))
    );
    assert_eq!(
        n.render(APP, "order_cancel", &p),
        Err(Error::Mapping(format!(
            "event order_cancel is not mapped for app {APP} (add it to the mapping document)"
        )))
    );
    match n.render(APP, "order_paid", &p) {
        Err(Error::InvalidArgument(m)) => assert!(
            m.contains("event `order_paid` is not in the catalog (events: order_pay_success"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_example_renders_every_seed_event() {
    let n = notifier();
    n.load_mappings(APP, EXAMPLE).unwrap();
    let catalog: Value = serde_json::from_str(n.event_catalog()).unwrap();
    for event in catalog["events"].as_array().unwrap() {
        // The catalog's examples are a payload every seed mapping renders.
        let fields: serde_json::Map<String, Value> = event["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    f["example"].clone(),
                )
            })
            .collect();
        let name = event["event"].as_str().unwrap();
        let body = n
            .render(
                APP,
                name,
                &json!({"touser": "oEx", "fields": fields}).to_string(),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["page"], "pages/order/detail?id=10086", "{name}");
        assert_eq!(
            body["data"]["character_string1"]["value"],
            "2026112221300001"
        );
        for (keyword, value) in body["data"].as_object().unwrap() {
            let rule = fashop_notify::rules::KeywordType::of_keyword(keyword).unwrap();
            rule.check(value["value"].as_str().unwrap()).unwrap();
        }
    }
}

/// A template with `name`/`phone_number` keywords could not be mapped for
/// order_delivered (`{receiver_name}` was an unknown placeholder), and a
/// host field the catalog lacks could not be used at all.
#[test]
fn delivery_fields_and_host_fields_of_the_document_render() {
    let n = notifier();
    let doc = json!({"version": 1,
        "fields": [{"name": "pickup_code", "label": "取件码", "type": "string"}],
        "events": {"order_delivered": {"template_id": "tpl-delivered",
            "data": {"name1": "{receiver_name}", "phone_number2": "{receiver_phone}",
                     "thing3": "{receiver_address|truncate:20}", "character_string4": "{tracking_no}",
                     "time5": "{pay_time|datetime}", "character_string6": "{pickup_code}"}}}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let got: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
    assert_eq!(got["fields"], doc["fields"]);
    let payload = json!({"touser": "o1", "fields": {"order_sn": "SN1", "receiver_name": "张三",
        "receiver_phone": "13800138000", "receiver_address": "上海市浦东新区世纪大道100号",
        "tracking_no": "SF1234567890123", "pay_time": 1795354200, "pickup_code": "A-1024"}});
    let body: Value = serde_json::from_str(
        &n.render(APP, "order_delivered", &payload.to_string())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["data"]["name1"]["value"], "张三");
    assert_eq!(body["data"]["phone_number2"]["value"], "13800138000");
    assert_eq!(
        body["data"]["thing3"]["value"],
        "上海市浦东新区世纪大道100号"
    );
    assert_eq!(body["data"]["character_string6"]["value"], "A-1024");
    // The catalog lists the new fields with labels.
    let catalog: Value = serde_json::from_str(n.event_catalog()).unwrap();
    let delivered = catalog["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == "order_delivered")
        .unwrap();
    let names: Vec<&str> = delivered["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    for f in [
        "receiver_name",
        "receiver_phone",
        "receiver_address",
        "pay_time",
        "express_company",
    ] {
        assert!(names.contains(&f), "{f}: {names:?}");
    }

    // Host fields are checked, each problem with its path.
    let bad = json!({"version": 1,
        "fields": [{"name": "order_sn", "label": "x", "type": "string"},
                   {"name": "Bad-Name", "label": "x", "type": "string"},
                   {"name": "ok_name", "label": "", "type": "color"},
                   {"name": "extra", "label": "x", "type": "text", "size": 3}],
        "events": {}});
    match n.load_mappings(APP, &bad.to_string()) {
        Err(Error::Mapping(m)) | Err(Error::InvalidArgument(m)) => {
            assert!(
                m.contains("fields[0].name: order_sn is a catalog field already"),
                "{m}"
            );
            assert!(m.contains("fields[1].name: must be 1 to 64"), "{m}");
            assert!(m.contains("fields[2].label"), "{m}");
            assert!(m.contains("fields[2].type: must be one of"), "{m}");
            assert!(m.contains("fields[3].size: unknown field"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // Undeclared, a host field is still an unknown placeholder.
    let mut undeclared = doc.clone();
    undeclared.as_object_mut().unwrap().remove("fields");
    assert!(n
        .load_mappings(APP, &undeclared.to_string())
        .unwrap_err()
        .to_string()
        .contains("pickup_code"));
}
