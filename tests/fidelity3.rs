//! WeChat fidelity, round three (issue #31): each rule of WeChat's pages
//! that the audit found missing, tested against the sandbox or the push
//! handler (sources in docs/spec/wechat.md).

use std::sync::Arc;

use fashop_notify::{Clock, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Fault, Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const BUYER: &str = "oBuyer_fidelity3_000001";

fn payload(order_sn: &str) -> String {
    json!({"touser": BUYER, "fields": {
        "order_id": 42, "order_sn": order_sn, "order_amount": "12.34",
        "order_total_goods_name": "羊毛围巾 x2", "order_total_goods_num": 2,
        "order_create_time": 1795426200, "pay_time": 1795426265}})
    .to_string()
}

/// A notifier on the sandbox with the example mappings and `grants` grants
/// of the pay-success template for BUYER, in both the sandbox and the ledger.
fn shop(sb: &Sandbox, grants: u64) -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())));
    n.configure(&json!({"api_base": sb.url(), "max_retries": 2}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, grants);
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": grants})
            .to_string(),
    )
    .unwrap();
    n
}

fn grants_left(n: &Notifier) -> u64 {
    let v: Value = serde_json::from_str(&n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    v["subscribe"]["templates"][TPL_PAY_SUCCESS]
        .as_u64()
        .unwrap_or(0)
}

fn banned_count(n: &Notifier) -> i64 {
    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    v["fashop_notify_subscribe_banned_total"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["appid"] == DEMO_APPID && r["event"] == "order_pay_success")
        .map(|r| r["value"].as_i64().unwrap())
        .sum()
}

/// Items 1 and 12: each code fails at once (one attempt), gives the grant
/// back, and the error says what happened and what to check.
#[test]
fn codes_a_retry_cannot_mend_fail_once_and_say_what_to_check() {
    let sb = Sandbox::start();
    let n = shop(&sb, 3);
    let cases: [(i64, &[&str]); 4] = [
        (43107, &["banned", "订阅消息", "mp.weixin.qq.com"]),
        (48001, &["lacks the permission", "订阅消息"]),
        (47001, &["could not read the body", "not retried"]),
        (40037, &["deleted it", "mapping editor"]),
    ];
    for (i, (code, words)) in cases.iter().enumerate() {
        sb.inject(Fault::on(SEND).errcode(*code).count(5));
        let report = n.send(
            DEMO_APPID,
            "order_pay_success",
            &payload(&format!("SN-{i}")),
        );
        sb.clear_faults();
        let o = report.outcome.expect("an outcome");
        assert_eq!(o.status.as_str(), "failed", "{code}");
        assert_eq!(o.errcode, *code);
        assert_eq!(o.attempts, 1, "{code} is not retried");
        let e = report.result.expect_err("a WeChat error").to_string();
        for w in *words {
            assert!(e.contains(w), "{code}: {w:?} not in {e}");
        }
        assert_eq!(grants_left(&n), 3, "{code}: the grant is given back");
    }
    // 43107 alone is counted apart.
    assert_eq!(banned_count(&n), 1);
    let ok = n.send(DEMO_APPID, "order_pay_success", &payload("SN-ok"));
    assert_eq!(ok.outcome.unwrap().status.as_str(), "sent");
    assert_eq!(banned_count(&n), 1);
    let prom = n.metrics_text("prometheus").unwrap();
    let line = format!(
        "fashop_notify_subscribe_banned_total{{appid=\"{DEMO_APPID}\",event=\"order_pay_success\"}} 1"
    );
    assert!(prom.contains(&line), "{line} in\n{prom}");
}
