//! The reference mapping against the WeChat sandbox: its template ids are the
//! sandbox's seeded ones, and every body render produces is accepted by the
//! sandbox's subscribe endpoint (right keywords, each value within its rule).

use fashop_notify::Notifier;
use fashop_notify_sandbox::{
    Sandbox, TPL_CANCEL, TPL_DELIVERED, TPL_PAY_FAIL, TPL_PAY_SUCCESS, TPL_REFUND,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};

const APP: &str = "wxmapsandbox0001";
const USER: &str = "oMappingSandboxUser";
const EXAMPLE: &str = include_str!("../examples/mappings.json");
const SEND: &str = "/cgi-bin/message/subscribe/send";

const SEEDS: &[(&str, &str)] = &[
    ("order_pay_success", TPL_PAY_SUCCESS),
    ("order_delivered", TPL_DELIVERED),
    ("order_cancel", TPL_CANCEL),
    ("order_refund_apply", TPL_REFUND),
    ("order_pay_fail", TPL_PAY_FAIL),
];

/// The demo, the C and PHP examples and the tests load the example document
/// as it is: its template ids must be the sandbox's seeded ones.
#[test]
fn the_example_mappings_use_the_sandbox_templates() {
    let doc: Value = serde_json::from_str(EXAMPLE).unwrap();
    for (event, template) in SEEDS {
        assert_eq!(doc["events"][event]["template_id"], *template, "{event}");
    }
}

fn setup(grants: u64) -> (Sandbox, Notifier) {
    let sb = Sandbox::start();
    sb.seed_app(APP, "mapping-sandbox-secret");
    sb.seed_user(APP, USER);
    for (_, template) in SEEDS {
        sb.grant(APP, USER, template, grants);
    }
    let n = Notifier::new();
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": APP, "secret": "mapping-sandbox-secret"}).to_string())
        .unwrap();
    n.load_mappings(APP, EXAMPLE).unwrap();
    (sb, n)
}

/// The catalog's example values for `event`.
fn example_fields(n: &Notifier, event: &str) -> Map<String, Value> {
    let catalog: Value = serde_json::from_str(n.event_catalog()).unwrap();
    let ev = catalog["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == event)
        .unwrap();
    ev["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["example"].clone(),
            )
        })
        .collect()
}

#[test]
fn the_example_uses_the_seeded_templates_and_the_sandbox_accepts_every_seed_event() {
    let (sb, n) = setup(1);
    for (event, template) in SEEDS {
        let payload = json!({"touser": USER, "fields": example_fields(&n, event)}).to_string();
        let message = n.render_message(APP, event, &payload).unwrap();
        assert_eq!(message.template_id, *template, "{event}");
        let body = n.render(APP, event, &payload).unwrap();
        let answer: Value =
            serde_json::from_str(&n.call_api(APP, "POST", SEND, Some(&body)).unwrap()).unwrap();
        assert_eq!(answer["errcode"], 0, "{event}: {answer}");
    }
    let delivered = sb.delivered(APP, USER);
    assert_eq!(delivered.len(), SEEDS.len());
    let pay = delivered
        .iter()
        .find(|m| m.template_id == TPL_PAY_SUCCESS)
        .unwrap();
    assert_eq!(pay.data["amount2"]["value"], "¥128.50");
    assert_eq!(pay.data["time4"]["value"], "2026-11-22 21:30");
    assert_eq!(pay.page.as_deref(), Some("pages/order/detail?id=10086"));
}

/// Awkward but renderable payloads (long Chinese names, emoji, float amounts,
/// unix and text times): whatever render accepts, the sandbox accepts.
#[test]
fn whatever_render_accepts_the_sandbox_accepts() {
    let (sb, n) = setup(10_000);
    let text = prop_oneof![
        "[一-龥]{1,40}",
        "[A-Za-z0-9 ._-]{1,40}",
        "[👗🎁✨a-z一-龥]{1,30}",
        any::<String>(),
    ];
    let amount = prop_oneof![
        (0u32..100_000_000, 0u32..1000)
            .prop_map(|(a, b)| Value::from(f64::from(a) + f64::from(b) / 1000.0)),
        "[0-9]{1,10}(\\.[0-9]{1,4})?".prop_map(Value::from),
    ];
    let time = prop_oneof![
        (0u64..4_000_000_000).prop_map(Value::from),
        "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
            .prop_map(Value::from),
    ];
    let sn = "[A-Za-z0-9_-]{1,32}";
    let strategy = (
        prop::sample::select(SEEDS.iter().map(|s| s.0).collect::<Vec<_>>()),
        sn,
        amount,
        text.clone(),
        text,
        time,
    );
    let mut runner = TestRunner::new_with_rng(
        Config::with_cases(120),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let sent = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |(event, sn, amount, goods, reason, time)| {
            let fields = json!({
                "order_sn": sn, "order_id": 7, "order_amount": amount, "refund_amount": amount,
                "order_total_goods_name": goods, "express_company": goods, "tracking_no": sn,
                "cancel_reason": reason, "refund_reason": reason, "fail_reason": reason,
                "pay_time": time, "delivery_time": time, "order_cancel_time": time,
                "refund_apply_time": time
            });
            let payload = json!({"touser": USER, "fields": fields}).to_string();
            if let Ok(body) = n.render(APP, event, &payload) {
                let answer = n.call_api(APP, "POST", SEND, Some(&body));
                prop_assert!(answer.is_ok(), "{event}: {body} → {answer:?}");
                sent.set(sent.get() + 1);
            }
            Ok(())
        })
        .unwrap();
    // Most of these payloads render; the property is not vacuous.
    let sent = sent.get();
    assert!(sent >= 60, "only {sent} of 120 rendered");
    assert_eq!(sb.delivered(APP, USER).len(), sent);
}
