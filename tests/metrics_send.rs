//! A scripted run of real sends against the WeChat sandbox, with injected
//! faults: the metric figures and the log lines equal what the sends
//! returned, and neither the log nor the figures hold the app secret, the
//! access token or a full openid.

use std::collections::BTreeMap;
use std::sync::Arc;

use fashop_notify::{Clock, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Fault, Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const BUYER: &str = "oBuyer_metrics_scripted_01";

fn payload(order_sn: &str) -> String {
    json!({"touser": BUYER, "fields": {
        "order_id": 42, "order_sn": order_sn, "order_amount": "12.34",
        "order_total_goods_name": "羊毛围巾 x2", "order_total_goods_num": 2,
        "order_create_time": 1795426200, "pay_time": 1795426265,
        "express_company": "顺丰速运", "tracking_no": "SF1234567890123",
        "delivery_time": "2026-11-24 09:30:00"}})
    .to_string()
}

#[test]
fn figures_and_log_lines_equal_what_the_sends_returned() {
    let dir = std::env::temp_dir().join(format!("fashop-metrics-send-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("notify.jsonl");

    let sb = Sandbox::start();
    // Retries "sleep" by moving this clock, so no backoff is waited for.
    let n = Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())));
    n.configure(
        &json!({"api_base": sb.url(), "max_retries": 2, "timeout_ms": 700,
                "connect_timeout_ms": 1000, "log": {"path": log, "level": "info"}})
        .to_string(),
    )
    .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 20);
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 20})
            .to_string(),
    )
    .unwrap();

    // (event, order_sn, fault before the send)
    let script: Vec<(&str, &str, Option<Fault>)> = vec![
        ("order_pay_success", "SN-1", None),
        (
            "order_pay_success",
            "SN-2",
            Some(Fault::on(SEND).errcode(-1).count(1)),
        ),
        (
            "order_pay_success",
            "SN-3",
            Some(Fault::on(SEND).errcode(43101).count(1)),
        ),
        (
            "order_pay_success",
            "SN-4",
            Some(Fault::on(SEND).http_status(502).count(5)),
        ),
        (
            "order_pay_success",
            "SN-5",
            Some(Fault::on(SEND).errcode(40001).count(1)),
        ),
        (
            "order_pay_success",
            "SN-6",
            Some(Fault::on(SEND).latency_ms(1500).count(1)),
        ),
        (
            "order_pay_success",
            "SN-7",
            Some(Fault::on(SEND).errcode(45009).count(1)),
        ),
        ("order_pay_success", "SN-1", None),
        ("order_delivered", "SN-8", None),
        ("order_pay_success", "SN-9", None),
    ];
    let mut happened: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut timed = 0;
    for (event, sn, fault) in script {
        if let Some(f) = fault {
            sb.inject(f);
        }
        let report = n.send(DEMO_APPID, event, &payload(sn));
        sb.clear_faults();
        let o = report.outcome.expect("every scripted send has an outcome");
        *happened
            .entry((event.to_string(), o.status.to_string(), o.errcode))
            .or_default() += 1;
        if o.status != "duplicate" && o.status != "no_permit" {
            timed += 1;
        }
        outcomes.push((event, o.status.as_str(), o.errcode, o.attempts));
    }
    // The script reaches every outcome status.
    let statuses: std::collections::BTreeSet<_> = outcomes.iter().map(|o| o.1).collect();
    for s in ["sent", "failed", "uncertain", "duplicate", "no_permit"] {
        assert!(statuses.contains(s), "no {s} outcome in {outcomes:?}");
    }

    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    let mut recorded: BTreeMap<(String, String, i64), i64> = BTreeMap::new();
    for row in v["fashop_notify_sends_total"].as_array().unwrap() {
        assert_eq!(row["appid"], DEMO_APPID);
        recorded.insert(
            (
                row["event"].as_str().unwrap().to_string(),
                row["status"].as_str().unwrap().to_string(),
                row["errcode"].as_i64().unwrap(),
            ),
            row["value"].as_i64().unwrap(),
        );
    }
    assert_eq!(recorded, happened, "outcomes: {outcomes:?}");
    assert_eq!(v["fashop_notify_send_duration_seconds"]["count"], timed);
    let stock = v["fashop_notify_permit_stock"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "subscribe")
        .unwrap()["value"]
        .as_i64()
        .unwrap();
    let consumed: i64 = v["fashop_notify_permits_consumed_total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .sum();
    assert_eq!(stock + consumed, 20, "stock {stock}, consumed {consumed}");
    assert_eq!(v["fashop_notify_log_write_failures_total"], 0);

    // One log line per send, in order, saying what the send returned.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["kind"] == "send")
        .collect();
    assert_eq!(lines.len(), outcomes.len());
    for (line, (event, status, errcode, attempts)) in lines.iter().zip(&outcomes) {
        assert_eq!(line["appid"], DEMO_APPID);
        assert_eq!(line["event"], *event);
        assert_eq!(line["status"], *status);
        assert_eq!(line["errcode"], *errcode);
        assert_eq!(line["attempts"], *attempts);
        assert_eq!(line["touser"], "oBuy…_01");
    }

    // Leak scan: the log file and both forms of the figures.
    let token = n.access_token(DEMO_APPID).unwrap();
    let prom = n.metrics_text("prometheus").unwrap();
    let json_text = n.metrics_text("json").unwrap();
    for (what, haystack) in [("log", &text), ("prometheus", &prom), ("json", &json_text)] {
        for needle in [DEMO_SECRET, token.expose(), BUYER] {
            assert!(!haystack.contains(needle), "{what} holds {needle:?}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
