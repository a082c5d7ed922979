//! The outbox against the WeChat sandbox, on the memory, SQLite and Redis stores:
//! enqueue renders and keeps without network, flush sends each message once
//! with the send policy, retries with backoff, waits for the quota reset,
//! dead-letters, never resends an uncertain message; stats, requeue, drop.

use std::sync::Arc;

use fashop_notify::{Clock, Error, FlushReport, ManualClock, Notifier};
use fashop_notify_sandbox::{Fault, Sandbox, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

use crate::outbox_support::{self, notifier, payment, TempDir, APP, BUYER, NOW, SEND};
use crate::redis_server;

struct Shop {
    sb: Sandbox,
    n: Notifier,
    clock: Arc<ManualClock>,
    _dir: Option<TempDir>,
    _redis: Option<redis_server::RedisServer>,
}

fn shop(store: &str) -> Shop {
    let sb = Sandbox::start();
    let (mut dir, mut redis) = (None, None);
    let spec = match store {
        "sqlite" => dir.insert(TempDir::new("unit")).store(),
        "redis" => redis
            .insert(redis_server::RedisServer::start())
            .spec("outbox"),
        _ => "memory".to_string(),
    };
    let (n, clock) = notifier(&spec, &sb.url(), NOW);
    Shop {
        sb,
        n,
        clock,
        _dir: dir,
        _redis: redis,
    }
}

/// Runs the test body on a fresh shop of each store.
fn each_store(body: impl Fn(Shop)) {
    for store in ["memory", "sqlite", "redis"] {
        body(shop(store));
    }
}

impl Shop {
    fn grant(&self, count: u64) {
        self.sb.grant(APP, BUYER, TPL_PAY_SUCCESS, count);
        self.n
            .add_permit(
                APP,
                &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": count})
                    .to_string(),
            )
            .unwrap();
    }

    fn enqueue(&self, order_sn: &str) -> Value {
        let out = self
            .n
            .enqueue(APP, "order_pay_success", &payment(order_sn))
            .unwrap_or_else(|e| panic!("enqueue {order_sn}: {e}"));
        serde_json::from_str(&out).unwrap()
    }

    fn flush(&self) -> FlushReport {
        self.n.flush_report(None, 100).unwrap()
    }

    fn stats(&self) -> Value {
        serde_json::from_str(&self.n.outbox_stats(Some(APP)).unwrap()).unwrap()
    }

    /// The orders WeChat got, sorted: a flush's lanes send side by side, so
    /// the arrival order is theirs.
    fn delivered_orders(&self) -> Vec<String> {
        let mut orders: Vec<String> = self
            .sb
            .delivered(APP, BUYER)
            .iter()
            .map(|m| {
                m.data["character_string1"]["value"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        orders.sort();
        orders
    }

    fn statuses(report: &FlushReport) -> Vec<&'static str> {
        report.messages.iter().map(|m| m.status.as_str()).collect()
    }
}

#[test]
fn enqueue_renders_and_keeps_without_any_network() {
    each_store(|shop| {
        let got = shop.enqueue("SN-1");
        assert_eq!(got["id"], 1);
        assert_eq!(
            got["idempotency_key"],
            format!("{APP}:order_pay_success:{BUYER}:SN-1")
        );
        assert_eq!(got["due_at"], NOW);
        assert_eq!(got["duplicate"], false);
        assert_eq!(
            shop.sb.counters().requests,
            0,
            "enqueue touched the network"
        );
        let stats = shop.stats();
        assert_eq!(stats["pending"], 1);
        assert_eq!(stats["due"], 1);
        assert_eq!(stats["sent"], 0);
        assert_eq!(stats["by_event"]["order_pay_success"]["pending"], 1);

        // The pay callback comes twice: the second enqueue finds the first.
        let again = shop.enqueue("SN-1");
        assert_eq!(again["id"], 1);
        assert_eq!(again["duplicate"], true);
        assert_eq!(shop.stats()["pending"], 1);

        // No order_sn and no key, and the payload says it wants none: the
        // outbox names the message itself.
        let mut doc: Value = serde_json::from_str(outbox_support::MAPPINGS).unwrap();
        doc["events"]["order_pay_success"]["data"]["character_string1"] =
            json!("{order_sn|default:NA}");
        shop.n.load_mappings(APP, &doc.to_string()).unwrap();
        let out = shop
            .n
            .enqueue(
                APP,
                "order_pay_success",
                &json!({"touser": BUYER, "idempotency_key": false, "fields": {"order_id": 1, "order_amount": "1", "order_total_goods_name": "x", "pay_time": 1795426265}}).to_string(),
            )
            .unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(
            v["idempotency_key"]
                .as_str()
                .unwrap()
                .starts_with("outbox:"),
            "{v}"
        );
        assert_eq!(shop.stats()["pending"], 2);
    });
}

#[test]
fn bad_input_fails_at_enqueue_and_keeps_nothing() {
    each_store(|shop| {
        let n = &shop.n;
        let e = n
            .enqueue("wxunknown00000001", "order_pay_success", &payment("S"))
            .unwrap_err();
        assert!(matches!(e, Error::AppNotConfigured(_)), "{e:?}");
        let e = n
            .enqueue(APP, "order_teleported", &payment("S"))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        let e = n.enqueue(APP, "order_pay_success", "{").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        let e = n
            .enqueue(APP, "order_pay_success", r#"{"touser": 5}"#)
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
        // A goods name WeChat would refuse (thing: at most 20 characters)
        // fails now, not at 3 a.m.: this mapping is not allowed to shorten it.
        let e = n
            .enqueue(
                APP,
                "order_cancel",
                &json!({"touser": BUYER, "fields": {"order_sn": "S", "order_amount": "1", "cancel_reason": "太长的取消原因太长的取消原因太长的取消原因太长的取消原因", "order_cancel_time": 1795430000}}).to_string(),
            )
            .unwrap_err();
        assert!(matches!(e, Error::Mapping(_)), "{e:?}");
        let stats: Value = serde_json::from_str(&n.outbox_stats(None).unwrap()).unwrap();
        assert_eq!(stats["pending"], 0, "{stats}");
        assert_eq!(shop.sb.counters().requests, 0);
    });
}

#[test]
fn flush_sends_each_message_once_as_rendered() {
    each_store(|shop| {
        shop.grant(3);
        for sn in ["SN-1", "SN-2", "SN-3"] {
            shop.enqueue(sn);
        }
        let report = shop.flush();
        assert_eq!(report.sent, 3, "{report:?}");
        assert_eq!(report.due_left, 0);
        assert_eq!(shop.delivered_orders(), ["SN-1", "SN-2", "SN-3"]);
        let rendered: Value = serde_json::from_str(
            &shop
                .n
                .render(APP, "order_pay_success", &payment("SN-2"))
                .unwrap(),
        )
        .unwrap();
        let sn2 = shop
            .sb
            .delivered(APP, BUYER)
            .into_iter()
            .find(|m| m.data["character_string1"]["value"] == "SN-2")
            .unwrap();
        assert_eq!(sn2.data, rendered["data"]);

        shop.clock.advance_secs(3600);
        let report = shop.flush();
        assert!(report.messages.is_empty(), "{report:?}");
        assert_eq!(shop.delivered_orders().len(), 3);
        let stats = shop.stats();
        assert_eq!(stats["sent"], 3);
        assert_eq!(stats["pending"], 0);
        assert_eq!(stats["by_event"]["order_pay_success"]["sent"], 3);

        // A repeated enqueue of a sent message is the same message: nothing new goes out.
        let again = shop.enqueue("SN-1");
        assert_eq!(again["duplicate"], true);
        assert!(shop.flush().messages.is_empty());
        assert_eq!(shop.delivered_orders().len(), 3);
    });
}

#[test]
fn flush_of_one_app_and_at_most_max_messages() {
    each_store(|shop| {
        shop.grant(3);
        for sn in ["A", "B", "C"] {
            shop.enqueue(sn);
        }
        let report = shop.n.flush_report(Some(APP), 2).unwrap();
        assert_eq!(report.sent, 2);
        assert_eq!(report.due_left, 1);
        assert_eq!(shop.delivered_orders(), ["A", "B"]);
        let e = shop.n.flush_report(Some(APP), 0).unwrap_err();
        assert!(e.to_string().contains("max_messages"), "{e}");
        let e = shop
            .n
            .flush_report(Some("wxunknown00000001"), 5)
            .unwrap_err();
        assert!(matches!(e, Error::AppNotConfigured(_)), "{e:?}");
        let report = shop.n.flush_report(Some(APP), 5).unwrap();
        assert_eq!(report.sent, 1);
    });
}

#[test]
fn wechat_down_for_a_while_then_every_message_goes_out_once() {
    each_store(|shop| {
        // Every message tries each time (a flush otherwise stops after 3 in a
        // row that did not reach WeChat; no_silent_losses.rs checks that).
        shop.n
            .configure(r#"{"outbox": {"stop_after_unreachable": 100}}"#)
            .unwrap();
        shop.grant(20);
        for i in 0..20 {
            shop.enqueue(&format!("DOWN-{i}"));
        }
        // Down: the front end answers 503, then connections are refused outright.
        shop.sb.inject(Fault::on("/cgi-bin/*").http_status(503));
        let report = shop.flush();
        assert_eq!(report.retry, 20, "{report:?}");
        assert!(report.messages.iter().all(|m| m.attempts == 1));
        shop.sb.clear_faults();
        shop.sb
            .inject(Fault::on("/cgi-bin/*").close_before_answer());
        // Nothing is due before its backoff (30 s ± 20%).
        shop.clock.advance_secs(23);
        assert!(shop.flush().messages.is_empty());
        shop.clock.advance_secs(15);
        let report = shop.flush();
        assert_eq!(report.retry, 20, "{report:?}");
        assert!(report.messages.iter().all(|m| m.attempts == 2));
        assert_eq!(shop.sb.counters().sends, 0);

        // Back.
        shop.sb.clear_faults();
        shop.clock.advance_secs(80);
        let report = shop.flush();
        assert_eq!(report.sent, 20, "{:?}", Shop::statuses(&report));
        shop.clock.advance_secs(7200);
        assert!(shop.flush().messages.is_empty());
        let mut got = shop.delivered_orders();
        got.sort();
        let mut want: Vec<String> = (0..20).map(|i| format!("DOWN-{i}")).collect();
        want.sort();
        assert_eq!(got, want, "every message delivered exactly once");
        assert_eq!(shop.sb.grants_left(APP, BUYER, TPL_PAY_SUCCESS), 0);
    });
}

#[test]
fn retryable_errcodes_back_off_and_dead_letter_after_the_limit() {
    each_store(|shop| {
        shop.n
            .configure(r#"{"outbox": {"max_attempts": 3, "retry_secs": 10}, "max_retries": 0}"#)
            .unwrap();
        shop.grant(1);
        let id = shop.enqueue("BUSY")["id"].as_u64().unwrap();
        shop.sb.inject(Fault::on(SEND).errcode(-1));
        let first = shop.flush();
        assert_eq!(Shop::statuses(&first), ["retry"]);
        let m = &first.messages[0];
        assert_eq!((m.errcode, m.attempts), (-1, 1));
        let wait = m.due_at.unwrap() - NOW;
        assert!((8..=12).contains(&wait), "first pause {wait}");
        shop.clock.advance_secs(wait + 1);
        let second = shop.flush();
        assert_eq!(Shop::statuses(&second), ["retry"]);
        let wait = second.messages[0].due_at.unwrap() - shop.clock.now();
        assert!((15..=24).contains(&wait), "the pause doubles: {wait}");
        shop.clock.advance_secs(wait + 1);
        let third = shop.flush();
        assert_eq!(Shop::statuses(&third), ["dead"]);
        let stats = shop.stats();
        assert_eq!(stats["dead"], 1);
        assert_eq!(stats["pending"], 0);
        let dl = &stats["dead_letters"][0];
        assert_eq!(dl["id"], id);
        assert_eq!(dl["errcode"], -1);
        assert_eq!(dl["attempts"], 3);
        assert_eq!(dl["state"], "dead");
        assert_eq!(dl["touser"], BUYER);
        assert!(
            dl["errmsg"]
                .as_str()
                .unwrap()
                .contains("gave up after 3 attempts"),
            "{dl}"
        );
        shop.clock.advance_secs(3600);
        assert!(shop.flush().messages.is_empty(), "a dead letter stays dead");

        // The shop fixes things and requeues it: it goes out once.
        shop.sb.clear_faults();
        shop.n.outbox_requeue(APP, id).unwrap();
        assert_eq!(shop.stats()["due"], 1);
        let report = shop.flush();
        assert_eq!(report.sent, 1, "{report:?}");
        assert_eq!(shop.delivered_orders(), ["BUSY"]);
        let e = shop.n.outbox_requeue(APP, id).unwrap_err();
        assert!(e.to_string().contains("is sent"), "{e}");
    });
}

#[test]
fn a_refusal_is_dead_at_once_and_can_be_dropped() {
    each_store(|shop| {
        shop.grant(1);
        let id = shop.enqueue("REFUSED")["id"].as_u64().unwrap();
        shop.sb.inject(Fault::on(SEND).errcode(40003).count(1));
        let report = shop.flush();
        assert_eq!(Shop::statuses(&report), ["dead"]);
        assert_eq!(report.messages[0].errcode, 40003);
        let stats = shop.stats();
        assert_eq!(stats["dead_letters"][0]["errcode"], 40003);
        // The permit was given back.
        let ledger: Value =
            serde_json::from_str(&shop.n.ledger_stats(APP, Some(BUYER)).unwrap()).unwrap();
        assert_eq!(ledger["subscribe"]["templates"][TPL_PAY_SUCCESS], 1);

        assert!(matches!(
            shop.n.outbox_drop(APP, 0),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            shop.n.outbox_drop(APP, id + 100),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            shop.n.outbox_drop("wxunknown00000001", id),
            Err(Error::AppNotConfigured(_))
        ));
        shop.n.outbox_drop(APP, id).unwrap();
        let stats = shop.stats();
        assert_eq!(stats["dead"], 0);
        assert_eq!(stats["dead_letters"], json!([]));
        assert!(shop.n.outbox_drop(APP, id).is_err(), "dropped twice");
    });
}

#[test]
fn daily_quota_waits_for_midnight_in_china() {
    each_store(|shop| {
        shop.grant(2);
        shop.enqueue("Q-1");
        shop.enqueue("Q-2");
        shop.sb.inject(Fault::on(SEND).errcode(45009));
        let report = shop.flush();
        assert_eq!(Shop::statuses(&report), ["retry", "retry"]);
        // 23:00 in China now; the quota is back at 00:00, i.e. 16:00 UTC.
        let midnight = NOW + 3600;
        for m in &report.messages {
            let due = m.due_at.unwrap();
            assert!(due >= midnight && due < midnight + 300, "{due}");
            assert_eq!(m.attempts, 0, "a spent quota is not the message's failure");
        }
        shop.sb.clear_faults();
        shop.clock.advance_secs(3599);
        assert!(shop.flush().messages.is_empty(), "released before midnight");
        assert!(shop.delivered_orders().is_empty());
        shop.clock.advance_secs(301);
        let report = shop.flush();
        assert_eq!(report.sent, 2, "{report:?}");
        assert_eq!(shop.delivered_orders().len(), 2);
    });
}

#[test]
fn minute_quota_waits_for_the_next_minute() {
    each_store(|shop| {
        shop.n
            .configure(r#"{"outbox": {"max_attempts": 2, "retry_secs": 10}, "max_retries": 2}"#)
            .unwrap();
        shop.grant(1);
        shop.enqueue("MINUTE");
        shop.clock.advance_secs(25);
        shop.sb.inject(Fault::on(SEND).errcode(45011));
        // However often it happens, a spent minute quota is not the message's failure.
        for round in 0..3 {
            let report = shop.flush();
            assert_eq!(Shop::statuses(&report), ["retry"], "{report:?}");
            let m = &report.messages[0];
            assert_eq!((m.errcode, m.attempts), (45011, 0));
            let now = shop.clock.now();
            let next_minute = (now / 60 + 1) * 60;
            let due = m.due_at.unwrap();
            assert!(
                due >= next_minute && due <= next_minute + 1,
                "round {round}: {due} vs {now}"
            );
            assert!(shop.flush().messages.is_empty(), "not due again before it");
            shop.clock.advance_secs(due - now + 1);
        }
        shop.sb.clear_faults();
        let report = shop.flush();
        assert_eq!(report.sent, 1, "{report:?}");
        assert_eq!(shop.delivered_orders(), ["MINUTE"]);
        assert_eq!(shop.sb.grants_left(APP, BUYER, TPL_PAY_SUCCESS), 0);
    });
}

#[test]
fn an_uncertain_send_is_never_sent_again() {
    each_store(|shop| {
        shop.grant(2);
        let id = shop.enqueue("MAYBE")["id"].as_u64().unwrap();
        // WeChat takes the message and the connection dies before the answer.
        shop.sb.inject(Fault::on(SEND).close_after_read().count(1));
        let report = shop.flush();
        assert_eq!(Shop::statuses(&report), ["uncertain"], "{report:?}");
        assert_eq!(shop.delivered_orders(), ["MAYBE"]);
        for _ in 0..3 {
            shop.clock.advance_secs(24 * 3600);
            assert!(shop.flush().messages.is_empty());
        }
        assert_eq!(shop.delivered_orders(), ["MAYBE"], "resent");
        let stats = shop.stats();
        assert_eq!(stats["uncertain"], 1);
        assert_eq!(stats["dead_letters"][0]["state"], "uncertain");
        let e = shop.n.outbox_requeue(APP, id).unwrap_err();
        assert!(e.to_string().contains("may have been delivered"), "{e}");
        // A direct send with the same key does not repeat it either.
        let direct = shop.n.send(APP, "order_pay_success", &payment("MAYBE"));
        assert_eq!(direct.outcome.unwrap().status, "duplicate");
        assert_eq!(shop.delivered_orders(), ["MAYBE"]);
        shop.n.outbox_drop(APP, id).unwrap();
    });
}

#[test]
fn a_message_sent_directly_first_is_not_sent_again() {
    each_store(|shop| {
        shop.grant(2);
        shop.enqueue("BOTH");
        let direct = shop.n.send(APP, "order_pay_success", &payment("BOTH"));
        assert!(direct.result.is_ok());
        let report = shop.flush();
        assert_eq!(Shop::statuses(&report), ["duplicate"]);
        assert_eq!(shop.delivered_orders(), ["BOTH"]);
        assert_eq!(shop.stats()["sent"], 1);
    });
}

#[test]
fn no_permit_yet_is_retried_until_one_arrives() {
    each_store(|shop| {
        shop.enqueue("LATE");
        let report = shop.flush();
        assert_eq!(Shop::statuses(&report), ["retry"]);
        assert_eq!(shop.sb.counters().send_attempts, 0);
        shop.grant(1);
        shop.clock.advance_secs(60);
        let report = shop.flush();
        assert_eq!(report.sent, 1, "{report:?}");
    });
}

#[test]
fn stats_and_metrics_show_the_depth() {
    each_store(|shop| {
        // One grant per message: the flush's lanes take them side by side.
        shop.grant(2);
        shop.enqueue("M-1");
        shop.enqueue("M-2");
        shop.sb.inject(Fault::on(SEND).errcode(40037));
        shop.flush();
        let stats: Value = serde_json::from_str(&shop.n.outbox_stats(None).unwrap()).unwrap();
        assert_eq!(stats["appid"], Value::Null);
        assert_eq!(stats["dead"], 2, "{stats}");
        let m: Value = serde_json::from_str(&shop.n.metrics_text("json").unwrap()).unwrap();
        let text = m.to_string();
        assert!(text.contains("fashop_notify_outbox_messages"), "{text}");
        let prom = shop.n.metrics_text("prometheus").unwrap();
        assert!(
            prom.contains("fashop_notify_outbox_messages{state=\"dead\"} 2"),
            "{prom}"
        );
        assert!(
            prom.contains("fashop_notify_outbox_messages{state=\"pending\"} 0"),
            "{prom}"
        );
        assert!(matches!(
            shop.n.outbox_stats(Some("wxunknown00000001")),
            Err(Error::AppNotConfigured(_))
        ));
    });
}

#[test]
fn outbox_settings_are_checked() {
    let n = Notifier::new();
    for bad in [
        r#"{"outbox": {"max_attempts": 0}}"#,
        r#"{"outbox": {"max_attempts": 101}}"#,
        r#"{"outbox": {"lease_secs": 1}}"#,
        r#"{"outbox": {"retry_secs": "5"}}"#,
        r#"{"outbox": {"attempts": 3}}"#,
        r#"{"outbox": 3}"#,
    ] {
        let e = n.configure(bad).unwrap_err();
        assert!(e.to_string().contains("outbox"), "{bad}: {e}");
    }
    n.configure(r#"{"outbox": {"max_attempts": 4}}"#).unwrap();
    assert_eq!(n.config().outbox.max_attempts, 4);
    assert_eq!(n.config().outbox.lease_secs, 120);
}

#[test]
fn the_store_cannot_change_under_enqueued_messages() {
    let shop = shop("memory");
    shop.enqueue("STRAND");
    let dir = TempDir::new("switch");
    let e = shop
        .n
        .configure(&json!({"store": dir.store()}).to_string())
        .unwrap_err();
    assert!(
        e.to_string().contains("after messages were enqueued"),
        "{e}"
    );
    assert_eq!(shop.n.config().store, "memory");
    assert_eq!(shop.stats()["pending"], 1);
}

#[test]
fn on_redis_the_outbox_lives_beside_the_ledger_and_a_server_that_is_down_is_a_store_error() {
    let mut server = redis_server::RedisServer::start();
    let url = server.url();
    let n = Notifier::new();
    n.configure(&json!({ "store": url }).to_string()).unwrap();
    n.register_app(&json!({"appid": APP, "secret": "s"}).to_string())
        .unwrap();
    n.load_mappings(APP, outbox_support::MAPPINGS).unwrap();
    n.add_permit(
        APP,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS}).to_string(),
    )
    .unwrap();
    let out: Value = serde_json::from_str(
        &n.enqueue(APP, "order_pay_success", &payment("R-1"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(out["id"], 1);
    let stats: Value = serde_json::from_str(&n.outbox_stats(None).unwrap()).unwrap();
    assert_eq!(stats["pending"], 1, "{stats}");
    // The outbox gauges come with the figures, as on the other stores.
    let prom = n.metrics_text("prometheus").unwrap();
    assert!(
        prom.contains("fashop_notify_outbox_messages{state=\"pending\"} 1"),
        "{prom}"
    );

    server.kill();
    let port = format!("127.0.0.1:{}", server.port);
    for e in [
        n.enqueue(APP, "order_pay_success", &payment("R-2"))
            .unwrap_err(),
        n.flush(None, 10).unwrap_err(),
        n.outbox_stats(None).unwrap_err(),
        n.outbox_drop(APP, 1).unwrap_err(),
    ] {
        assert!(matches!(&e, Error::Store(m) if m.contains(&port)), "{e:?}");
    }
}

/// Two notifiers on one Redis server under different prefixes keep apart.
#[test]
fn redis_prefixes_keep_outboxes_apart() {
    let server = redis_server::RedisServer::start();
    let sb = Sandbox::start();
    let (a, _) = notifier(&server.spec("shop-a"), &sb.url(), NOW);
    let (b, _) = notifier(&server.spec("shop-b"), &sb.url(), NOW);
    a.enqueue(APP, "order_pay_success", &payment("A-1"))
        .unwrap();
    let got: Value = serde_json::from_str(
        &b.enqueue(APP, "order_pay_success", &payment("A-1"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(got["duplicate"], false, "{got}");
    let stats: Value = serde_json::from_str(&a.outbox_stats(None).unwrap()).unwrap();
    assert_eq!(stats["pending"], 1, "{stats}");
}

/// Sent messages are kept a week (a repeated enqueue finds them), then forgotten.
const SENT_KEPT_SECS: i64 = 7 * 24 * 3600;

#[test]
fn sent_records_are_forgotten_after_a_week() {
    each_store(|shop| {
        shop.grant(1);
        shop.enqueue("OLD");
        assert_eq!(shop.flush().sent, 1);
        shop.clock.advance_secs(SENT_KEPT_SECS - 60);
        assert!(shop.flush().messages.is_empty());
        assert_eq!(shop.stats()["sent"], 1);
        assert_eq!(shop.enqueue("OLD")["duplicate"], true);
        shop.clock.advance_secs(120);
        assert!(shop.flush().messages.is_empty());
        let stats = shop.stats();
        assert_eq!(stats["sent"], 0, "{stats}");
        assert_eq!(stats["by_event"]["order_pay_success"]["sent"], Value::Null);
        let again = shop.enqueue("OLD");
        assert_eq!(again["duplicate"], false, "{again}");
        assert_ne!(again["id"], 1, "a new message");
    });
}

/// What Redis itself holds for a sent message: a TTL beyond the week, so that
/// the server cleans up after a shop that stopped flushing; the counts stay
/// right when Redis let a record go first.
#[test]
fn sent_records_on_redis_carry_a_ttl_and_the_counts_survive_it() {
    let server = redis_server::RedisServer::start();
    let sb = Sandbox::start();
    let (n, clock) = notifier(&server.spec("ttl"), &sb.url(), NOW);
    sb.grant(APP, BUYER, TPL_PAY_SUCCESS, 2);
    n.add_permit(
        APP,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 2})
            .to_string(),
    )
    .unwrap();
    let key = |id: u64| format!("ttl:o:m:{id:016}");
    let mut redis = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut pttl = |k: &str| -> i64 { redis::cmd("PTTL").arg(k).query(&mut redis).unwrap() };
    for sn in ["T-1", "T-2"] {
        n.enqueue(APP, "order_pay_success", &payment(sn)).unwrap();
    }
    assert_eq!(pttl(&key(1)), -1, "a pending message never expires");
    assert_eq!(n.flush_report(None, 10).unwrap().sent, 2);
    let week_ms = SENT_KEPT_SECS * 1000;
    assert!(pttl(&key(1)) > week_ms, "{}", pttl(&key(1)));
    let idem = format!("ttl:o:key:{APP}:order_pay_success:{BUYER}:T-1");
    assert!(pttl(&idem) > week_ms, "{}", pttl(&idem));

    // Redis let message 1 go before the notifier's clock did.
    let mut redis = redis::Client::open(server.url())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("DEL")
        .arg(key(1))
        .arg(&idem)
        .query::<i64>(&mut redis)
        .unwrap();
    clock.advance_secs(SENT_KEPT_SECS + 60);
    assert!(n.flush_report(None, 10).unwrap().messages.is_empty());
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(APP)).unwrap()).unwrap();
    assert_eq!(stats["sent"], 0, "{stats}");
    assert_eq!(pttl(&key(2)), -2, "forgotten by the flush");
}

/// A backlog at WeChat's real pace: every answer takes 100 ms. One flush with
/// many requests in flight sends each message once (counted by WeChat).
#[test]
fn a_backlog_drains_with_requests_side_by_side_each_delivered_once() {
    const MESSAGES: u64 = 2_000;
    let shop = shop("sqlite");
    // One buyer holds a grant per message (above the default cap of 50 per template).
    shop.n
        .configure(r#"{"outbox":{"concurrency":64},"subscribe_cap_per_template":5000}"#)
        .unwrap();
    // Grants come 1,000 at most per add.
    shop.grant(MESSAGES / 2);
    shop.grant(MESSAGES / 2);
    for i in 0..MESSAGES {
        shop.enqueue(&format!("BACKLOG-{i}"));
    }
    shop.sb.inject(Fault::on(SEND).latency_ms(100));
    let report = shop.n.flush_report(None, MESSAGES as u32).unwrap();
    assert_eq!(report.sent, MESSAGES, "{:?}", report.messages.first());
    assert_eq!(report.due_left, 0);
    let orders = shop.delivered_orders();
    assert_eq!(orders.len() as u64, MESSAGES);
    let distinct: std::collections::BTreeSet<&String> = orders.iter().collect();
    assert_eq!(
        distinct.len() as u64,
        MESSAGES,
        "WeChat got a message twice"
    );
    assert_eq!(shop.stats()["sent"], MESSAGES);
    assert!(shop.flush().messages.is_empty());
}

#[test]
fn the_concurrency_setting_is_checked() {
    let shop = shop("memory");
    for bad in [0, 257] {
        let e = shop
            .n
            .configure(&format!(r#"{{"outbox":{{"concurrency":{bad}}}}}"#))
            .unwrap_err();
        assert!(e.to_string().contains("outbox.concurrency"), "{e}");
    }
    assert_eq!(shop.n.config().outbox.concurrency, 8);
    shop.n.configure(r#"{"outbox":{"concurrency":1}}"#).unwrap();
    assert_eq!(shop.n.config().outbox.concurrency, 1);
}
