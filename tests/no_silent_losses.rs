//! What a shop trying the library found lost or sent twice without a word:
//! each case must now be impossible or loud. Sandbox on 127.0.0.1, clock
//! under the test's control.
#![cfg(feature = "sandbox")]

use std::sync::Arc;

use fashop_notify::sandbox::{Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use fashop_notify::{Clock, Error, ManualClock, Notifier, SystemClock};
use serde_json::json;

const BUYER: &str = "oBuyer_no_silent_loss";

fn notifier() -> Notifier {
    Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())))
}

fn ready(n: &Notifier, sb: &Sandbox) {
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 10);
}

fn payload(order_sn: &str) -> String {
    json!({"touser": BUYER, "fields": {"order_id": 1, "order_sn": order_sn,
        "order_amount": "9.90", "order_total_goods_name": "goods", "pay_time": 1795426265}})
    .to_string()
}

fn grant(n: &Notifier) -> fashop_notify::Result<()> {
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 10})
            .to_string(),
    )
}

fn assert_refused_for_configure(r: fashop_notify::Result<impl std::fmt::Debug>, call: &str) {
    match r {
        Err(Error::Store(m)) => {
            assert!(m.starts_with(&format!("{call}: ")), "{m}");
            assert!(m.contains("configure failed"), "{m}");
            assert!(m.contains("/nonexistent-fashop-dir/notify.db"), "{m}");
        }
        other => panic!("{call} was not refused: {other:?}"),
    }
}

/// A first configure whose store could not be opened left the defaults (the
/// real WeChat host, the memory store) in force: grants and queued messages
/// went into memory and were lost at exit.
#[test]
fn a_failed_first_configure_refuses_store_and_network_calls_until_one_succeeds() {
    let sb = Sandbox::start();
    let n = notifier();
    let bad = json!({"api_base": sb.url(), "store": "sqlite:/nonexistent-fashop-dir/notify.db"});
    assert!(matches!(
        n.configure(&bad.to_string()),
        Err(Error::Store(_))
    ));
    // Registering and mapping touch neither store nor network.
    ready(&n, &sb);
    assert_refused_for_configure(grant(&n), "add_permit");
    assert_refused_for_configure(n.ledger_stats(DEMO_APPID, None), "ledger_stats");
    assert_refused_for_configure(n.ledger_purge(DEMO_APPID), "ledger_purge");
    assert_refused_for_configure(
        n.enqueue(DEMO_APPID, "order_pay_success", &payload("SN-CFG-1")),
        "enqueue",
    );
    assert_refused_for_configure(n.flush(Some(DEMO_APPID), 10), "flush");
    assert_refused_for_configure(n.outbox_stats(None), "outbox_stats");
    assert_refused_for_configure(n.access_token(DEMO_APPID), "access_token");
    assert_refused_for_configure(
        n.call_api(DEMO_APPID, "GET", "/cgi-bin/get_api_domain_ip", None),
        "call_api",
    );
    let (sent, outcome) = n.send_json(DEMO_APPID, "order_pay_success", &payload("SN-CFG-1"));
    assert_refused_for_configure(sent, "send");
    assert!(outcome.is_none());
    // A second failed configure says why too.
    assert!(n.configure(r#"{"timeout_ms": 0}"#).is_err());
    match grant(&n) {
        Err(Error::Store(m)) => assert!(m.contains("timeout_ms"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sb.counters().token_fetches.len(),
        0,
        "nothing reached WeChat"
    );

    // A configure that succeeds lifts the refusal.
    n.configure(&json!({"api_base": sb.url()}).to_string())
        .unwrap();
    grant(&n).unwrap();
    let report = n.send(DEMO_APPID, "order_pay_success", &payload("SN-CFG-1"));
    report.result.unwrap();
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 1);

    // A later failed configure keeps the settings in force.
    assert!(n.configure(&bad.to_string()).is_err());
    assert_eq!(n.config().api_base, sb.url().trim_end_matches('/'));
    grant(&n).unwrap();
    n.send(DEMO_APPID, "order_pay_success", &payload("SN-CFG-2"))
        .result
        .unwrap();
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 2);
}
