//! Checking a mapping against the app's live templates in the sandbox: every
//! kind of problem with its JSON path, warnings, the template list's cache
//! (its TTL on the notifier's clock, refresh on demand) and WeChat's failures.

use std::sync::Arc;

use fashop_notify::{Error, ManualClock, Notifier, TEMPLATE_TTL_MS};
use fashop_notify_sandbox::{
    Fault, Sandbox, DEMO_APPID, DEMO_SECRET, ORDER_STATUS_VALUES, TPL_CANCEL, TPL_DELIVERED,
    TPL_ORDER_STATUS, TPL_PAY_SUCCESS,
};
use serde_json::{json, Value};

const EXAMPLE: &str = include_str!("../examples/mappings.json");

fn setup() -> (Sandbox, Notifier, Arc<ManualClock>) {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(1_790_000_000));
    let n = Notifier::with_clock(clock.clone());
    n.configure(&json!({"api_base": sb.url()}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    (sb, n, clock)
}

fn check(n: &Notifier, doc: Option<&Value>, options: Option<&str>) -> Value {
    let text = doc.map(Value::to_string);
    let report = n
        .check_mappings(DEMO_APPID, text.as_deref(), options)
        .unwrap();
    serde_json::from_str(&report).unwrap()
}

/// The findings of a report as `(path, kind)`.
fn found(list: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert!(!f["message"].as_str().unwrap().is_empty(), "{f}");
            (
                f["path"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn message_of<'a>(list: &'a Value, path: &str) -> &'a str {
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .and_then(|f| f["message"].as_str())
        .unwrap_or_else(|| panic!("no finding at {path}: {list}"))
}

fn pair(path: &str, kind: &str) -> (String, String) {
    (path.to_string(), kind.to_string())
}

#[test]
fn the_example_document_fits_the_seeded_templates() {
    let (_sb, n, _clock) = setup();
    let doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    let report = check(&n, Some(&doc), None);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["appid"], DEMO_APPID);
    assert_eq!(report["problems"], json!([]));
    assert_eq!(report["warnings"], json!([]));
    assert_eq!(report["templates"]["cached"], false);
    assert!(report["templates"]["count"].as_u64().unwrap() >= 6);
    // The loaded document is checked when none is given.
    n.load_mappings(DEMO_APPID, EXAMPLE).unwrap();
    let report = check(&n, None, None);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["templates"]["cached"], true);
}

#[test]
fn every_kind_of_problem_is_reported_with_its_path() {
    let (_sb, n, _clock) = setup();
    let doc = json!({"version": 1, "events": {
        "order_pay_success": {"template_id": "no-such-template",
            "data": {"thing3": "{order_total_goods_name}"}},
        "order_delivered": {"template_id": TPL_DELIVERED, "data": {
            "character_string1": "{order_sn}", "thing2": "{express_company}",
            "character_string3": "{tracking_no}", "thing9": "{order_total_goods_name}",
            "site01": "{express_company}"}},
        "order_cancel": {"template_id": TPL_CANCEL, "data": {
            "character_string1": "{order_sn}", "amount2": "{order_sn}",
            "thing3": "{cancel_reason|default:超时}", "time4": "{order_cancel_time|datetime}"}},
        "order_refund_apply": {"template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": "{order_sn}", "enum_string2": "已退款",
            "thing3": "退款处理中", "time4": "{refund_apply_time|datetime}"}},
        "order_pay_fail": {"template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": "{order_sn}", "enum_string2": "{fail_reason}",
            "thing3": "支付失败", "time4": "{order_create_time|datetime}"}}
    }});
    let report = check(&n, Some(&doc), None);
    assert_eq!(report["ok"], false, "{report}");
    let problems = &report["problems"];
    assert_eq!(
        found(problems),
        vec![
            pair("events.order_cancel.data.amount2", "value_cannot_fit"),
            pair(
                "events.order_delivered.data.site01",
                "keyword_not_in_template"
            ),
            pair(
                "events.order_delivered.data.thing9",
                "keyword_not_in_template"
            ),
            pair("events.order_delivered.data.time4", "keyword_not_mapped"),
            pair(
                "events.order_pay_fail.data.enum_string2",
                "enum_value_not_allowed"
            ),
            pair("events.order_pay_success.template_id", "unknown_template"),
            pair(
                "events.order_refund_apply.data.enum_string2",
                "enum_value_not_allowed"
            ),
        ],
        "{report}"
    );
    let amount = message_of(problems, "events.order_cancel.data.amount2");
    assert!(
        amount.contains("{order_sn}")
            && amount.contains("2026112221300001")
            && amount.contains("amount value must be"),
        "{amount}"
    );
    let unknown = message_of(problems, "events.order_pay_success.template_id");
    assert!(
        unknown.contains("no-such-template")
            && unknown.contains("40037")
            && unknown.contains(TPL_PAY_SUCCESS),
        "{unknown}"
    );
    let extra = message_of(problems, "events.order_delivered.data.thing9");
    assert!(
        extra.contains("character_string1, thing2, character_string3, time4"),
        "{extra}"
    );
    let missing = message_of(problems, "events.order_delivered.data.time4");
    assert!(missing.contains("data.time4.value is empty"), "{missing}");
    let literal = message_of(problems, "events.order_refund_apply.data.enum_string2");
    assert!(
        literal.contains("已退款") && literal.contains(&ORDER_STATUS_VALUES.join(", ")),
        "{literal}"
    );
    let field = message_of(problems, "events.order_pay_fail.data.enum_string2");
    assert!(
        field.contains("{fail_reason}") && field.contains("余额不足"),
        "{field}"
    );
    assert_eq!(
        found(&report["warnings"]),
        vec![pair(
            "events.order_delivered.data.site01",
            "unknown_keyword_type"
        )]
    );
    // The check loads nothing.
    assert!(matches!(n.get_mappings(DEMO_APPID), Err(Error::Mapping(_))));
}

#[test]
fn enum_values_fed_a_field_warn_and_legacy_events_are_not_checked() {
    let (_sb, n, _clock) = setup();
    // A literal from the list passes; a field whose example is in the list
    // (it may hold others) is a warning.
    let doc = json!({"version": 1, "events": {
        "order_refund_apply": {"template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": "{order_sn}", "enum_string2": "已取消",
            "thing3": "{refund_reason|default:无}", "time4": "{refund_apply_time|datetime}"}},
        "order_pay_fail": {"template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": "{order_sn}", "enum_string2": "{fail_reason|default:已支付}",
            "thing3": "支付失败", "time4": "{order_create_time|datetime}"}},
        "order_delivered": {"kind": "template", "template_id": "legacyT",
            "data": {"keyword1": "{order_sn}"}}
    }});
    let report = check(&n, Some(&doc), None);
    // fail_reason's example 余额不足 is not a status: still a problem.
    assert_eq!(
        found(&report["problems"]),
        vec![pair(
            "events.order_pay_fail.data.enum_string2",
            "enum_value_not_allowed"
        )],
        "{report}"
    );
    assert_eq!(
        found(&report["warnings"]),
        vec![pair("events.order_delivered.kind", "legacy_not_checked")]
    );
    let doc = json!({"version": 1, "events": {
        "order_pay_success": {"template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": "{order_sn}", "enum_string2": "{order_status}",
            "thing3": "已付款", "time4": "{pay_time|datetime}"}}
    }});
    let report = check(&n, Some(&doc), None);
    assert!(
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["kind"] == "invalid_mapping"),
        "{report}"
    );
}

#[test]
fn a_document_that_does_not_load_reports_its_problems_without_reading_templates() {
    let (sb, n, _clock) = setup();
    let before = sb.counters().requests;
    let doc = json!({"version": 2, "events": {"order_cancel": {"template_id": "t", "data": {"thing1": "{x}"}}}});
    let report = check(&n, Some(&doc), None);
    assert_eq!(report["ok"], false);
    assert_eq!(report["templates"], Value::Null);
    assert_eq!(
        found(&report["problems"]),
        vec![
            pair("events.order_cancel.data.thing1", "invalid_mapping"),
            pair("version", "invalid_mapping"),
        ]
    );
    assert_eq!(sb.counters().requests, before, "no request to WeChat");
    assert!(matches!(
        n.check_mappings(DEMO_APPID, Some("{"), None),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        n.check_mappings("wxunknown0000001", None, None),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.check_mappings(DEMO_APPID, None, None),
        Err(Error::Mapping(m)) if m.contains("no mapping document is loaded")
    ));
}

#[test]
fn the_template_list_is_cached_for_a_minute_and_refreshed_on_demand() {
    let (sb, n, clock) = setup();
    let doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    let gettemplate = |sb: &Sandbox| sb.counters().requests;
    let first = check(&n, Some(&doc), None);
    assert_eq!(first["templates"]["cached"], false);
    let after_first = gettemplate(&sb);
    let again = check(&n, Some(&doc), None);
    assert_eq!(again["templates"]["cached"], true);
    assert_eq!(
        again["templates"]["read_at_ms"],
        first["templates"]["read_at_ms"]
    );
    assert_eq!(gettemplate(&sb), after_first, "no request within the TTL");
    // A template added meanwhile is not seen until the list is read again.
    let added: Value = serde_json::from_str(
        &n.call_api(
            DEMO_APPID,
            "POST",
            "/wxaapi/newtmpl/addtemplate",
            Some(r#"{"tid": 2476, "kidList": [1, 3]}"#),
        )
        .unwrap(),
    )
    .unwrap();
    let new_id = added["priTmplId"].as_str().unwrap();
    let uses_new = json!({"version": 1, "events": {"order_pay_fail": {"template_id": new_id,
        "data": {"character_string1": "{order_sn}", "thing3": "{fail_reason}"}}}});
    let stale = check(&n, Some(&uses_new), None);
    assert_eq!(
        found(&stale["problems"]),
        vec![pair(
            "events.order_pay_fail.template_id",
            "unknown_template"
        )]
    );
    let fresh = check(&n, Some(&uses_new), Some(r#"{"refresh": true}"#));
    assert_eq!(fresh["ok"], true, "{fresh}");
    assert_eq!(fresh["templates"]["cached"], false);
    // Past the TTL the list is read again by itself.
    let before = gettemplate(&sb);
    clock.advance_ms(TEMPLATE_TTL_MS - 1);
    assert_eq!(
        check(&n, Some(&uses_new), None)["templates"]["cached"],
        true
    );
    clock.advance_ms(1);
    assert_eq!(
        check(&n, Some(&uses_new), Some(r#"{"refresh": false}"#))["templates"]["cached"],
        false
    );
    assert!(gettemplate(&sb) > before);
}

#[test]
fn wechat_failures_of_gettemplate_are_errors() {
    let (sb, n, _clock) = setup();
    let doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    sb.inject(
        Fault::on("/wxaapi/newtmpl/gettemplate")
            .errcode(-1)
            .count(1),
    );
    match n.check_mappings(DEMO_APPID, Some(&doc.to_string()), None) {
        Err(Error::WeChat { errcode: -1, .. }) => {}
        other => panic!("expected WECHAT_ERROR -1, got {other:?}"),
    }
    sb.inject(
        Fault::on("/wxaapi/newtmpl/gettemplate")
            .http_status(502)
            .count(1),
    );
    assert!(matches!(
        n.check_mappings(DEMO_APPID, Some(&doc.to_string()), None),
        Err(Error::Network(_))
    ));
    // No answer to the read is a network failure, not an uncertain one.
    n.configure(r#"{"timeout_ms": 300}"#).unwrap();
    sb.inject(
        Fault::on("/wxaapi/newtmpl/gettemplate")
            .latency_ms(1_000)
            .count(1),
    );
    assert!(matches!(
        n.check_mappings(DEMO_APPID, Some(&doc.to_string()), None),
        Err(Error::Network(_))
    ));
    // Nothing was cached from the failures.
    let report = check(&n, Some(&doc), None);
    assert_eq!(
        (report["ok"].clone(), report["templates"]["cached"].clone()),
        (json!(true), json!(false))
    );
}

#[test]
fn keyword_types_list_every_rule_with_its_source() {
    let n = Notifier::new();
    let v: Value = serde_json::from_str(n.keyword_types()).unwrap();
    let types = v["types"].as_array().unwrap();
    for name in [
        "thing",
        "number",
        "letter",
        "symbol",
        "character_string",
        "time",
        "date",
        "amount",
        "phone_number",
        "car_number",
        "name",
        "phrase",
        "const",
        "enum_string",
        "short_thing",
        "other",
    ] {
        let t = types
            .iter()
            .find(|t| t["type"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        let source = t["source"].as_str().unwrap();
        assert!(
            source == "unverified" || source.starts_with("https://"),
            "{t}"
        );
        assert!(!t["allowed"].as_str().unwrap().is_empty());
    }
    let name = types.iter().find(|t| t["type"] == "name").unwrap();
    assert_eq!(name["limit"], 20);
    assert!(name["examples"]
        .as_array()
        .unwrap()
        .contains(&json!("张三Tom")));
}
