//! What a shop trying the library found lost or sent twice without a word:
//! each case must now be impossible or loud. Sandbox on 127.0.0.1, clock
//! under the test's control.

use std::sync::Arc;

use fashop_notify::{Clock, Error, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
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
            // The export's name is added at the C boundary, not here.
            assert!(
                m.starts_with("refused because configure failed ("),
                "{call}: {m}"
            );
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

/// With `{order_sn|default:none}` in the mapping and no order_sn in the
/// payload, a message had no idempotency key: two sends and two enqueues of
/// one order delivered it four times.
#[test]
fn a_send_or_enqueue_without_a_key_is_refused_unless_it_says_it_wants_none() {
    let sb = Sandbox::start();
    let n = notifier();
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    ready(&n, &sb);
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../examples/mappings.json")).unwrap();
    doc["events"]["order_pay_success"]["data"]["character_string1"] =
        json!("{order_sn|default:none}");
    n.load_mappings(DEMO_APPID, &doc.to_string()).unwrap();
    grant(&n).unwrap();
    let unkeyed = json!({"touser": BUYER, "fields": {"order_id": 1, "order_amount": "9.90",
        "order_total_goods_name": "goods", "pay_time": 1795426265}});
    let text = unkeyed.to_string();
    let mut refused = Vec::new();
    for _ in 0..2 {
        refused.push(n.send(DEMO_APPID, "order_pay_success", &text).result);
        refused.push(n.enqueue(DEMO_APPID, "order_pay_success", &text).map(drop));
    }
    n.flush(Some(DEMO_APPID), 10).unwrap();
    let delivered = sb.delivered(DEMO_APPID, BUYER).len();
    assert_eq!(
        delivered, 0,
        "two sends and two enqueues delivered {delivered}"
    );
    for r in refused {
        match r {
            Err(Error::InvalidArgument(m)) => {
                assert!(m.contains("fields.order_sn is missing"), "{m}");
                assert!(m.contains("order_pay_success's idempotency key"), "{m}");
            }
            other => panic!("not refused: {other:?}"),
        }
    }
    // The catalog names the key fields of every event.
    let catalog: serde_json::Value = serde_json::from_str(n.event_catalog()).unwrap();
    for event in catalog["events"].as_array().unwrap() {
        // A refund is one of several an order may have.
        let want = match event["event"].as_str() {
            Some("order_refund_apply") => json!(["order_sn", "refund_sn"]),
            _ => json!(["order_sn"]),
        };
        assert_eq!(event["key_fields"], want, "{event}");
    }
    // An explicit "no key" is honoured: each call is a new message.
    let mut optout = unkeyed.clone();
    optout["idempotency_key"] = json!(false);
    n.send(DEMO_APPID, "order_pay_success", &optout.to_string())
        .result
        .unwrap();
    n.send(DEMO_APPID, "order_pay_success", &optout.to_string())
        .result
        .unwrap();
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 2);
    // A key of the host's own makes the repeat a duplicate.
    let mut keyed = unkeyed;
    keyed["idempotency_key"] = json!("pay:1");
    for _ in 0..2 {
        n.send(DEMO_APPID, "order_pay_success", &keyed.to_string())
            .result
            .unwrap();
    }
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 3);
}

/// A port nothing listens on: a connection there is refused, so the request
/// never leaves.
fn refused_base() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

/// A sync send while WeChat could not be reached failed and the message was
/// gone unless the host kept it itself.
#[test]
fn on_network_error_enqueue_keeps_exactly_that_message_for_the_next_flush() {
    let sb = Sandbox::start();
    let n = notifier();
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    ready(&n, &sb);
    grant(&n).unwrap();
    n.access_token(DEMO_APPID).unwrap();
    n.configure(&json!({"api_base": refused_base()}).to_string())
        .unwrap();

    // Without the option: the send fails and nothing is kept.
    let plain = n.send(DEMO_APPID, "order_pay_success", &payload("SN-NET-0"));
    assert!(
        matches!(plain.result, Err(Error::Network(_))),
        "{:?}",
        plain.result
    );
    let stats: serde_json::Value = serde_json::from_str(&n.outbox_stats(None).unwrap()).unwrap();
    assert_eq!(stats["pending"], 0, "{stats}");

    let mut p: serde_json::Value = serde_json::from_str(&payload("SN-NET-1")).unwrap();
    p["on_network_error"] = json!("enqueue");
    let (result, outcome) = n.send_json(DEMO_APPID, "order_pay_success", &p.to_string());
    result.unwrap();
    let outcome: serde_json::Value = serde_json::from_str(&outcome.unwrap()).unwrap();
    assert_eq!(outcome["status"], "queued", "{outcome}");
    let key = format!("{DEMO_APPID}:order_pay_success:{BUYER}:SN-NET-1");
    assert_eq!(outcome["idempotency_key"], key.as_str());
    assert!(outcome["outbox_id"].as_u64().unwrap() >= 1, "{outcome}");
    assert!(
        outcome["errmsg"]
            .as_str()
            .unwrap()
            .contains("kept in the outbox"),
        "{outcome}"
    );
    // The pay callback repeats while WeChat is still down: still one message.
    let (again, _) = n.send_json(DEMO_APPID, "order_pay_success", &p.to_string());
    again.unwrap();
    let stats: serde_json::Value = serde_json::from_str(&n.outbox_stats(None).unwrap()).unwrap();
    assert_eq!(stats["pending"], 1, "{stats}");
    assert_eq!(
        stats["by_event"]["order_pay_success"]["pending"], 1,
        "{stats}"
    );

    // WeChat is back: the flush delivers exactly the message the send rendered.
    n.configure(&json!({"api_base": sb.url()}).to_string())
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&n.flush(Some(DEMO_APPID), 10).unwrap()).unwrap();
    assert_eq!(report["sent"], 1, "{report}");
    let delivered = sb.delivered(DEMO_APPID, BUYER);
    assert_eq!(delivered.len(), 1);
    let rendered: serde_json::Value = serde_json::from_str(
        &n.render(DEMO_APPID, "order_pay_success", &payload("SN-NET-1"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(delivered[0].data, rendered["data"]);
    // And a later send of that order is a duplicate under the same key.
    let (dup, out) = n.send_json(DEMO_APPID, "order_pay_success", &p.to_string());
    dup.unwrap();
    assert!(out.unwrap().contains(r#""status":"duplicate""#));
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 1);

    // A value that is not an option is refused before anything happens.
    p["on_network_error"] = json!("retry");
    match n
        .send(DEMO_APPID, "order_pay_success", &p.to_string())
        .result
    {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("on_network_error"), "{m}"),
        other => panic!("{other:?}"),
    }
}

fn enqueue_orders(n: &Notifier, prefix: &str, count: usize) {
    for i in 0..count {
        n.enqueue(
            DEMO_APPID,
            "order_pay_success",
            &payload(&format!("{prefix}-{i}")),
        )
        .unwrap();
    }
}

/// A flush while WeChat hung waited the full timeout for every message (10 s
/// for 5 messages at a 2 s timeout).
#[test]
fn a_flush_stops_after_consecutive_unreachable_sends_and_leaves_the_rest_due() {
    let sb = Sandbox::start();
    let n = notifier();
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    ready(&n, &sb);
    grant(&n).unwrap();
    n.access_token(DEMO_APPID).unwrap();
    enqueue_orders(&n, "SN-REFUSED", 5);

    // Refused connections: the requests never left. One lane, so that "in a
    // row" is exact (with several lanes the ones already under way finish).
    n.configure(&json!({"api_base": refused_base(), "outbox": {"concurrency": 1}}).to_string())
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&n.flush(Some(DEMO_APPID), 100).unwrap()).unwrap();
    assert_eq!(report["retry"], 3, "{report}");
    assert_eq!(report["due_left"], 2, "{report}");
    assert_eq!(report["messages"].as_array().unwrap().len(), 3);
    let why = report["stopped"].as_str().unwrap_or_default();
    assert!(why.contains("3 messages in a row"), "{report}");
    assert!(why.contains("stop_after_unreachable"), "{why}");

    // The setting; a flush whose messages go out does not stop.
    n.configure(
        &json!({"api_base": sb.url(), "outbox": {"stop_after_unreachable": 1}}).to_string(),
    )
    .unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&n.flush(Some(DEMO_APPID), 100).unwrap()).unwrap();
    assert_eq!(report["sent"], 2, "{report}");
    assert!(report.get("stopped").is_none(), "{report}");

    // Timeouts after the request left count too (those messages are uncertain
    // and never sent again); with the setting at 1 the flush stops after one.
    enqueue_orders(&n, "SN-TIMEOUT", 3);
    n.configure(&json!({"timeout_ms": 50}).to_string()).unwrap();
    sb.inject(fashop_notify_sandbox::Fault::on("/cgi-bin/message/subscribe/send").latency_ms(1000));
    let report: serde_json::Value =
        serde_json::from_str(&n.flush(Some(DEMO_APPID), 100).unwrap()).unwrap();
    assert_eq!(report["uncertain"], 1, "{report}");
    assert_eq!(report["due_left"], 2, "{report}");
    assert!(
        report["stopped"]
            .as_str()
            .unwrap()
            .contains("1 messages in a row"),
        "{report}"
    );
    assert!(n
        .configure(r#"{"outbox": {"stop_after_unreachable": 0}}"#)
        .unwrap_err()
        .to_string()
        .contains("outbox.stop_after_unreachable must be between 1 and 1000"));
}

fn subscribe(n: &Notifier, template: &str, count: u32) -> fashop_notify::Result<()> {
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": template, "count": count})
            .to_string(),
    )
}

fn uses(n: &Notifier, template: &str) -> u64 {
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    stats["subscribe"]["templates"][template]
        .as_u64()
        .unwrap_or(0)
}

/// The guide's grant endpoint stored any template id the client sent: one
/// 5 MB request added 88,139 grants and ledger_stats took 1.4 s after.
#[test]
fn grants_are_for_mapped_templates_and_capped_per_buyer_and_template() {
    let dir = std::env::temp_dir().join(format!("no-silent-losses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("grants.db");
    for store in ["memory".to_string(), format!("sqlite:{}", db.display())] {
        let n = notifier();
        n.configure(&json!({"store": store}).to_string()).unwrap();
        n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
            .unwrap();
        // No mapping yet: nothing to check against; the grant is kept.
        subscribe(&n, "tpl-before-any-mapping", 1).unwrap();
        n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
            .unwrap();
        match subscribe(&n, "tpl-made-up-by-a-client", 1) {
            Err(Error::InvalidArgument(m)) => {
                assert!(
                    m.contains("\"tpl-made-up-by-a-client\" is not mapped"),
                    "{m}"
                );
                assert!(m.contains(TPL_PAY_SUCCESS), "{m}");
            }
            other => panic!("{store}: {other:?}"),
        }
        assert_eq!(uses(&n, "tpl-made-up-by-a-client"), 0);
        // Form ids are not templates: unchecked.
        n.add_permit(
            DEMO_APPID,
            &json!({"openid": BUYER, "kind": "form_id", "value": "form-1"}).to_string(),
        )
        .unwrap();

        // 50 uses per buyer and template by default; taps beyond go.
        subscribe(&n, TPL_PAY_SUCCESS, 40).unwrap();
        subscribe(&n, TPL_PAY_SUCCESS, 40).unwrap();
        assert_eq!(uses(&n, TPL_PAY_SUCCESS), 50, "{store}");
        subscribe(&n, TPL_PAY_SUCCESS, 1).unwrap();
        assert_eq!(uses(&n, TPL_PAY_SUCCESS), 50, "{store}");
        n.configure(r#"{"subscribe_cap_per_template": 120}"#)
            .unwrap();
        subscribe(&n, TPL_PAY_SUCCESS, 1000).unwrap();
        assert_eq!(uses(&n, TPL_PAY_SUCCESS), 120, "{store}");
        // A lower cap keeps what a buyer has; it only stops adding.
        n.configure(r#"{"subscribe_cap_per_template": 10}"#)
            .unwrap();
        subscribe(&n, TPL_PAY_SUCCESS, 5).unwrap();
        assert_eq!(uses(&n, TPL_PAY_SUCCESS), 120, "{store}");
        assert!(n
            .configure(r#"{"subscribe_cap_per_template": 0}"#)
            .unwrap_err()
            .to_string()
            .contains("subscribe_cap_per_template must be between 1 and 100000"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// An HTTP 413 from WeChat's front end was reported as a network error, and a
/// send took it for "maybe delivered" and spent the buyer's grant.
#[test]
fn a_request_wechat_refuses_with_a_4xx_is_not_delivered_and_says_so() {
    let sb = Sandbox::start();
    let n = notifier();
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    ready(&n, &sb);
    grant(&n).unwrap();
    n.access_token(DEMO_APPID).unwrap();
    sb.inject(
        fashop_notify_sandbox::Fault::on("/cgi-bin/message/subscribe/send")
            .http_status(413)
            .count(1),
    );
    let (result, outcome) = n.send_json(DEMO_APPID, "order_pay_success", &payload("SN-413"));
    match result {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("HTTP 413"), "{m}");
            assert!(m.contains("not delivered"), "{m}");
            assert!(m.contains("too large"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let outcome: serde_json::Value = serde_json::from_str(&outcome.unwrap()).unwrap();
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(uses(&n, TPL_PAY_SUCCESS), 10, "the grant was given back");
    // The same order goes out once WeChat takes it.
    n.send(DEMO_APPID, "order_pay_success", &payload("SN-413"))
        .result
        .unwrap();
    assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 1);
    sb.inject(fashop_notify_sandbox::Fault::on("/cgi-bin/get_api_domain_ip").http_status(413));
    assert!(matches!(
        n.call_api(DEMO_APPID, "GET", "/cgi-bin/get_api_domain_ip", None),
        Err(Error::InvalidArgument(_))
    ));
}

/// A secret that cannot be a WeChat AppSecret is refused before it is sent to
/// WeChat; the sandbox (an api_base on this machine) takes any.
#[test]
fn a_secret_that_cannot_be_an_app_secret_never_reaches_wechat() {
    let n = notifier();
    n.configure(r#"{"timeout_ms": 1000}"#).unwrap();
    n.register_app(r#"{"appid":"wxshortsecret001","secret":"s"}"#)
        .unwrap();
    match n.access_token("wxshortsecret001") {
        Err(Error::AppNotConfigured(m)) => {
            assert!(m.contains("has 1 characters"), "{m}");
            assert!(m.contains("32 letters and digits"), "{m}");
            assert!(!m.contains("\"s\""), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let sb = Sandbox::start();
    n.register_app(
        &json!({"appid": DEMO_APPID, "secret": DEMO_SECRET, "api_base": sb.url()}).to_string(),
    )
    .unwrap();
    n.access_token(DEMO_APPID).unwrap();
}
