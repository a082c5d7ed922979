//! Send against the WeChat sandbox: the happy path of every seed event, one case
//! per row of the errcode policy table (plus the transport failures), the legacy
//! permits, and idempotency under concurrency.

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use fashop_notify::{Clock, Error, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{
    Fault, Sandbox, DEMO_APPID, DEMO_SECRET, LEGACY_TPL_DELIVERED, TPL_CANCEL, TPL_DELIVERED,
    TPL_PAY_FAIL, TPL_PAY_SUCCESS, TPL_REFUND,
};
use serde_json::{json, Value};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const BUYER: &str = "oBuyer_send_test_01";

struct Shop {
    sb: Sandbox,
    n: Notifier,
    _ledger: Option<LedgerFile>,
}

thread_local! {
    /// Whether the shops this test thread makes keep their ledger in SQLite.
    static ON_SQLITE: Cell<bool> = const { Cell::new(false) };
}

/// Runs a test of this file with the shop's ledger in a SQLite file, where a
/// claim and its first permit, and a spent use and its recorded outcome, are
/// one transaction each.
fn on_sqlite(test: fn()) {
    ON_SQLITE.with(|s| s.set(true));
    test();
}

/// A SQLite ledger file of one shop, removed with it.
struct LedgerFile(PathBuf);

impl LedgerFile {
    fn new() -> LedgerFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fashop-send-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        LedgerFile(dir)
    }

    fn store(&self) -> String {
        format!("sqlite:{}", self.0.join("ledger.db").display())
    }
}

impl Drop for LedgerFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example mapping document: its template ids are the sandbox's seeded ones.
const EXAMPLE_MAPPINGS: &str = include_str!("../examples/mappings.json");

fn shop_with(max_retries: u32, timeout_ms: u64) -> Shop {
    let sb = Sandbox::start();
    // The notifier's clock: retries "sleep" by moving it, so no test waits on a backoff.
    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let n = Notifier::with_clock(clock);
    let ledger = ON_SQLITE.with(Cell::get).then(LedgerFile::new);
    let store = ledger
        .as_ref()
        .map_or_else(|| "memory".to_string(), LedgerFile::store);
    n.configure(
        &json!({"api_base": sb.url(), "max_retries": max_retries, "timeout_ms": timeout_ms, "connect_timeout_ms": 1000, "store": store})
            .to_string(),
    )
    .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, EXAMPLE_MAPPINGS).unwrap();
    Shop {
        sb,
        n,
        _ledger: ledger,
    }
}

fn shop() -> Shop {
    shop_with(2, 3000)
}

impl Shop {
    /// The buyer taps "allow" for `tpl` `count` times; the shop records it.
    fn grant(&self, tpl: &str, count: u64) {
        self.sb.grant(DEMO_APPID, BUYER, tpl, count);
        self.n
            .add_permit(
                DEMO_APPID,
                &json!({"openid": BUYER, "kind": "subscribe", "template_id": tpl, "count": count})
                    .to_string(),
            )
            .unwrap();
    }

    fn grants_in_ledger(&self, tpl: &str) -> u64 {
        let stats: Value =
            serde_json::from_str(&self.n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
        stats["subscribe"]["templates"][tpl].as_u64().unwrap_or(0)
    }

    fn send(&self, event: &str, order_sn: &str) -> (Result<(), Error>, Value) {
        let report = self
            .n
            .send(DEMO_APPID, event, &payload(order_sn).to_string());
        let outcome = report
            .outcome
            .map(|o| serde_json::to_value(o).unwrap())
            .unwrap_or(Value::Null);
        (report.result, outcome)
    }

    fn delivered(&self) -> usize {
        self.sb.delivered(DEMO_APPID, BUYER).len()
    }
}

fn payload(order_sn: &str) -> Value {
    json!({
        "touser": BUYER,
        "fields": {
            "order_id": 42,
            "order_sn": order_sn,
            "order_amount": "12.345",
            "order_total_goods_name": "秋冬加厚连衣裙 x1, 羊毛围巾 x2, 保温杯 x1",
            "order_total_goods_num": 4,
            "order_create_time": 1795426200,
            "pay_time": 1795426265,
            "express_company": "顺丰速运",
            "tracking_no": "SF1234567890123",
            "delivery_time": "2026-11-24 09:30:00",
            "order_cancel_time": 1795430000,
            "cancel_reason": "买家取消",
            "refund_sn": "RF0001",
            "refund_amount": 5,
            "refund_reason": "尺码不合适",
            "refund_apply_time": 1795430000,
            "fail_reason": "余额不足"
        }
    })
}

#[test]
fn every_seed_event_is_delivered_as_rendered() {
    let shop = shop();
    let events = [
        ("order_pay_success", TPL_PAY_SUCCESS),
        ("order_delivered", TPL_DELIVERED),
        ("order_cancel", TPL_CANCEL),
        ("order_refund_apply", TPL_REFUND),
        ("order_pay_fail", TPL_PAY_FAIL),
    ];
    for (i, (event, tpl)) in events.iter().enumerate() {
        shop.grant(tpl, 1);
        let (result, outcome) = shop.send(event, &format!("SN{i}"));
        assert!(result.is_ok(), "{event}: {result:?} {outcome}");
        assert_eq!(outcome["status"], "sent", "{event}: {outcome}");
        assert_eq!(
            outcome["permit"],
            json!({"kind": "subscribe", "remaining": 0})
        );
        assert_eq!(outcome["attempts"], 1);
        assert!(outcome["msgid"].is_number());
        let got = shop.sb.delivered(DEMO_APPID, BUYER);
        let last = got.last().unwrap();
        assert_eq!(last.template_id, *tpl);
        assert_eq!(last.page.as_deref(), Some("pages/order/detail?id=42"));
        let rendered: Value = serde_json::from_str(
            &shop
                .n
                .render(DEMO_APPID, event, &payload(&format!("SN{i}")).to_string())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(last.data, rendered["data"], "{event}");
    }
    let first = &shop.sb.delivered(DEMO_APPID, BUYER)[0];
    assert_eq!(first.data["amount2"]["value"], "¥12.35");
    assert_eq!(first.data["character_string1"]["value"], "SN0");
    assert_eq!(shop.delivered(), 5);
}

/// One row of the fault matrix: what was injected, and what must follow.
struct Row {
    case: &'static str,
    fault: Option<Fault>,
    status: &'static str,
    outcome: &'static str,
    /// The grant is still in the ledger afterwards (given back), or spent.
    permit_kept: bool,
    delivered: usize,
}

fn status_name(r: &Result<(), Error>) -> &'static str {
    match r {
        Ok(()) => "OK",
        Err(Error::InvalidArgument(_)) => "INVALID_ARGUMENT",
        Err(Error::AppNotConfigured(_)) => "APP_NOT_CONFIGURED",
        Err(Error::Mapping(_)) => "MAPPING_ERROR",
        Err(Error::NoPermit(_)) => "NO_PERMIT",
        Err(Error::WeChat { .. }) => "WECHAT_ERROR",
        Err(Error::Network(_)) => "NETWORK_ERROR",
        Err(Error::Uncertain(_)) => "UNCERTAIN",
        Err(Error::Store(_)) => "STORE_ERROR",
        Err(Error::Internal(_)) => "INTERNAL",
    }
}

#[test]
fn fault_matrix() {
    let errcode = |code: i64| Some(Fault::on(SEND).errcode(code));
    let once = |code: i64| Some(Fault::on(SEND).errcode(code).count(1));
    let rows = vec![
        Row {
            case: "ok",
            fault: None,
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "-1 once",
            fault: once(-1),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "-1 always",
            fault: errcode(-1),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "40001 once",
            fault: once(40001),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "40001 always",
            fault: errcode(40001),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "40014 once",
            fault: once(40014),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "42001 once",
            fault: once(42001),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "40003",
            fault: errcode(40003),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "40037",
            fault: errcode(40037),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "41030",
            fault: errcode(41030),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "43101",
            fault: errcode(43101),
            status: "NO_PERMIT",
            outcome: "failed",
            permit_kept: false,
            delivered: 0,
        },
        Row {
            case: "43108 once",
            fault: once(43108),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "45009",
            fault: errcode(45009),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        // "Retry next minute": not retried within the call.
        Row {
            case: "45011 once",
            fault: once(45011),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "45011 always",
            fault: errcode(45011),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "45168",
            fault: errcode(45168),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "45103",
            fault: errcode(45103),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "47003",
            fault: errcode(47003),
            status: "WECHAT_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "503 once",
            fault: Some(Fault::on(SEND).http_status(503).count(1)),
            status: "OK",
            outcome: "sent",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "502 always",
            fault: Some(Fault::on(SEND).http_status(502)),
            status: "NETWORK_ERROR",
            outcome: "failed",
            permit_kept: true,
            delivered: 0,
        },
        Row {
            case: "500",
            fault: Some(Fault::on(SEND).http_status(500)),
            status: "UNCERTAIN",
            outcome: "uncertain",
            permit_kept: false,
            delivered: 0,
        },
        Row {
            case: "malformed JSON",
            fault: Some(Fault::on(SEND).malformed_body()),
            status: "UNCERTAIN",
            outcome: "uncertain",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "closed after read",
            fault: Some(Fault::on(SEND).close_after_read()),
            status: "UNCERTAIN",
            outcome: "uncertain",
            permit_kept: false,
            delivered: 1,
        },
        Row {
            case: "closed unanswered",
            fault: Some(Fault::on(SEND).close_before_answer()),
            status: "UNCERTAIN",
            outcome: "uncertain",
            permit_kept: false,
            delivered: 0,
        },
        Row {
            case: "latency > timeout",
            fault: Some(Fault::on(SEND).latency_ms(1500)),
            status: "UNCERTAIN",
            outcome: "uncertain",
            permit_kept: false,
            delivered: 1,
        },
    ];
    let mut table = vec![format!(
        "{:<20} {:<14} {:<10} {:>8} {:>7} {:>9}",
        "case", "status", "outcome", "attempts", "permit", "delivered"
    )];
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let shop = shop_with(2, 700);
        shop.grant(TPL_PAY_SUCCESS, 1);
        if let Some(f) = row.fault.clone() {
            shop.sb.inject(f);
        }
        let (result, outcome) = shop.send("order_pay_success", &format!("SN-matrix-{i}"));
        shop.sb.clear_faults();
        let kept = shop.grants_in_ledger(TPL_PAY_SUCCESS) == 1;
        let delivered = shop.delivered();
        table.push(format!(
            "{:<20} {:<14} {:<10} {:>8} {:>7} {:>9}",
            row.case,
            status_name(&result),
            outcome["status"].as_str().unwrap_or("-"),
            outcome["attempts"],
            if kept { "kept" } else { "spent" },
            delivered
        ));
        if status_name(&result) != row.status
            || outcome["status"] != row.outcome
            || kept != row.permit_kept
            || delivered != row.delivered
        {
            failures.push(format!("{}: {result:?} {outcome}", row.case));
        }
        assert!(delivered <= 1, "{}: delivered twice", row.case);
    }
    println!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{}\n{}",
        table.join("\n"),
        failures.join("\n")
    );
}

#[test]
fn minute_quota_is_not_retried_within_the_call_and_says_when_to_retry() {
    let shop = shop_with(2, 3000);
    shop.grant(TPL_PAY_SUCCESS, 1);
    shop.n.access_token(DEMO_APPID).unwrap();
    shop.sb.inject(Fault::on(SEND).errcode(45011).count(1));
    let (result, outcome) = shop.send("order_pay_success", "SN-minute");
    match &result {
        Err(Error::WeChat {
            errcode: 45011,
            errmsg,
        }) => {
            assert!(
                errmsg.contains("retry from the start of the next minute"),
                "{errmsg}"
            )
        }
        other => panic!("expected 45011, got {other:?}"),
    }
    assert_eq!(outcome["attempts"], 1, "{outcome}");
    let after = outcome["retry_after_ms"].as_u64().unwrap();
    assert!((1..=60_000).contains(&after), "{outcome}");
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 1);
    // The next call goes through (the fault was one answer).
    let (result, outcome) = shop.send("order_pay_success", "SN-minute");
    assert!(result.is_ok(), "{result:?}");
    assert!(outcome.get("retry_after_ms").is_none(), "{outcome}");
}

#[test]
fn a_blacklisted_word_fails_the_send_naming_the_free_text_keywords() {
    let shop = shop_with(2, 3000);
    shop.grant(TPL_PAY_SUCCESS, 1);
    shop.sb.inject(Fault::on(SEND).errcode(45168));
    let (result, outcome) = shop.send("order_pay_success", "SN-black");
    match &result {
        Err(Error::WeChat {
            errcode: 45168,
            errmsg,
        }) => {
            assert!(errmsg.starts_with("keyword in blacklist"), "{errmsg}");
            assert!(
                errmsg.contains("content blacklist") && errmsg.contains("thing3"),
                "{errmsg}"
            );
            // Keywords that are not free text are not suspected.
            assert!(!errmsg.contains("character_string1"), "{errmsg}");
        }
        other => panic!("expected 45168, got {other:?}"),
    }
    assert_eq!(outcome["attempts"], 1, "{outcome}");
    assert_eq!(outcome["status"], "failed");
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 1);
    assert_eq!(shop.delivered(), 0);
}

#[test]
fn wechat_unreachable_is_a_network_error_and_the_permit_returns() {
    let shop = shop_with(1, 500);
    shop.grant(TPL_PAY_SUCCESS, 1);
    // Warm the token, then take WeChat away: the connection is refused before anything is written.
    shop.n.access_token(DEMO_APPID).unwrap();
    let url = shop.sb.url();
    drop(shop.sb);
    let report = shop.n.send(
        DEMO_APPID,
        "order_pay_success",
        &payload("SN-down").to_string(),
    );
    assert!(
        matches!(report.result, Err(Error::Network(_))),
        "{:?}",
        report.result
    );
    let o = serde_json::to_value(report.outcome.unwrap()).unwrap();
    assert_eq!(o["status"], "failed");
    assert_eq!(o["attempts"], 2, "one try and one retry: {o}");
    let stats: Value =
        serde_json::from_str(&shop.n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    assert_eq!(
        stats["subscribe"]["templates"][TPL_PAY_SUCCESS], 1,
        "{stats}"
    );
    assert!(
        !report
            .result
            .unwrap_err()
            .to_string()
            .contains("access_token="),
        "{url}"
    );
}

#[test]
fn no_permit_sends_nothing() {
    let shop = shop();
    let (result, outcome) = shop.send("order_pay_success", "SN-none");
    assert!(matches!(result, Err(Error::NoPermit(_))), "{result:?}");
    assert_eq!(outcome["status"], "no_permit");
    assert_eq!(outcome["attempts"], 0);
    assert_eq!(shop.sb.counters().send_attempts, 0);
}

#[test]
fn render_errors_come_before_any_permit_is_touched() {
    let shop = shop();
    shop.grant(TPL_PAY_SUCCESS, 1);
    let report = shop.n.send(
        DEMO_APPID,
        "order_pay_success",
        r#"{"touser":"x","fields":{}}"#,
    );
    assert!(
        matches!(report.result, Err(Error::Mapping(_))),
        "{:?}",
        report.result
    );
    assert!(report.outcome.is_none());
    let report = shop
        .n
        .send("wx-unknown", "order_pay_success", &payload("a").to_string());
    assert!(matches!(report.result, Err(Error::AppNotConfigured(_))));
    let report = shop.n.send(DEMO_APPID, "order_pay_success", "{nope");
    assert!(matches!(report.result, Err(Error::InvalidArgument(_))));
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 1);
}

#[test]
fn a_retried_request_is_a_duplicate() {
    let shop = shop();
    shop.grant(TPL_PAY_SUCCESS, 2);
    let (r1, o1) = shop.send("order_pay_success", "SN-dup");
    let (r2, o2) = shop.send("order_pay_success", "SN-dup");
    assert!(r1.is_ok() && r2.is_ok());
    assert_eq!(o1["status"], "sent");
    assert_eq!(o2["status"], "duplicate");
    assert_eq!(o2["msgid"], o1["msgid"]);
    assert_eq!(
        o2["idempotency_key"],
        format!("{DEMO_APPID}:order_pay_success:{BUYER}:SN-dup")
    );
    assert_eq!(shop.delivered(), 1);
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 1);
}

#[test]
fn a_failed_send_leaves_the_key_free_for_a_retry() {
    let shop = shop();
    shop.grant(TPL_PAY_SUCCESS, 1);
    shop.sb.inject(Fault::on(SEND).errcode(45009).count(1));
    let (r1, _) = shop.send("order_pay_success", "SN-retry");
    assert!(matches!(r1, Err(Error::WeChat { errcode: 45009, .. })));
    let (r2, o2) = shop.send("order_pay_success", "SN-retry");
    assert!(r2.is_ok(), "{r2:?}");
    assert_eq!(o2["status"], "sent");
}

/// A WeChat Pay retry while the first request (or the outbox's flush) is
/// still sending the same key got "maybe delivered", as a timeout does.
#[test]
fn a_repeat_while_the_key_is_being_sent_is_in_progress_not_uncertain() {
    let shop = shop();
    shop.grant(TPL_PAY_SUCCESS, 1);
    let key = format!("{DEMO_APPID}:order_pay_success:{BUYER}:SN-busy");
    // The first send holds the key (claimed, not finished).
    assert!(matches!(
        shop.n.ledger().idempotency_claim(&key, 60_000).unwrap(),
        fashop_notify::KeyClaim::Fresh
    ));
    let (r, o) = shop.send("order_pay_success", "SN-busy");
    assert!(matches!(r, Err(Error::Uncertain(_))), "{r:?}");
    assert_eq!(o["status"], "in_progress");
    assert_eq!(o["idempotency_key"], key);
    assert!(
        o["errmsg"].as_str().unwrap().contains("is under way"),
        "{o}"
    );
    assert_eq!(shop.delivered(), 0);
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 1, "nothing taken");
    // The first send gives the key up (it failed): the repeat now sends.
    shop.n.ledger().idempotency_release(&key).unwrap();
    let (r, o) = shop.send("order_pay_success", "SN-busy");
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(o["status"], "sent");
    assert_eq!(shop.delivered(), 1);
}

fn send_with(shop: &Shop, order_sn: &str, extra: Value) -> (Result<(), Error>, Value) {
    let mut p = payload(order_sn);
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    let report = shop.n.send(DEMO_APPID, "order_pay_success", &p.to_string());
    let outcome = report
        .outcome
        .map(|o| serde_json::to_value(o).unwrap())
        .unwrap_or(Value::Null);
    (report.result, outcome)
}

/// A token fetch failing with 40125 / 40164 / 89503 / 45009 ended a send as
/// `failed` for good even with `"on_network_error": "enqueue"`, with errcode 0.
#[test]
fn token_failures_carry_their_errcode_and_go_to_the_outbox_when_asked() {
    for errcode in [40164, 89503, 45009, 40125] {
        let shop = shop();
        shop.grant(TPL_PAY_SUCCESS, 1);
        shop.sb
            .inject(Fault::on("/cgi-bin/stable_token").errcode(errcode));
        // Without the option: failed, with WeChat's errcode for the host to branch on.
        let (r, o) = send_with(&shop, &format!("SN-tok-{errcode}-a"), json!({}));
        assert!(
            matches!(r, Err(Error::WeChat { errcode: c, .. }) if c == errcode),
            "{errcode}: {r:?}"
        );
        assert_eq!(o["status"], "failed");
        assert_eq!(o["errcode"], errcode);
        assert_eq!(
            shop.grants_in_ledger(TPL_PAY_SUCCESS),
            1,
            "the grant came back"
        );
        // With it (new name and first name alike): kept in the outbox.
        for (i, option) in ["on_failure", "on_network_error"].iter().enumerate() {
            let sn = format!("SN-tok-{errcode}-{i}");
            let (r, o) = send_with(&shop, &sn, json!({ *option: "enqueue" }));
            assert!(r.is_ok(), "{errcode} {option}: {r:?}");
            assert_eq!(o["status"], "queued", "{o}");
            assert_eq!(o["errcode"], errcode, "{o}");
            assert!(o["outbox_id"].as_i64().unwrap() > 0);
        }
        assert_eq!(shop.delivered(), 0);
        // The cause is fixed (whitelist, quota, secret re-entered) and the host
        // says so: the flush sends both queued messages, once each.
        shop.sb.clear_faults();
        if errcode == 40125 {
            // Wrong credentials: fetches stop until the app is registered again.
            shop.n.unregister_app(DEMO_APPID).unwrap();
            shop.n
                .register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
                .unwrap();
            shop.n.load_mappings(DEMO_APPID, EXAMPLE_MAPPINGS).unwrap();
        } else {
            shop.n
                .invalidate_token(DEMO_APPID, "whitelisted-now")
                .unwrap();
        }
        shop.sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 1);
        shop.n
            .add_permit(
                DEMO_APPID,
                &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS})
                    .to_string(),
            )
            .unwrap();
        let report: Value =
            serde_json::from_str(&shop.n.flush(Some(DEMO_APPID), 10).unwrap()).unwrap();
        assert_eq!(report["sent"], 2, "{errcode}: {report}");
        assert_eq!(shop.delivered(), 2, "{errcode}");
        // A retried PHP request for a queued order is a duplicate, not a third message.
        let (r, o) = send_with(
            &shop,
            &format!("SN-tok-{errcode}-0"),
            json!({"on_failure": "enqueue"}),
        );
        assert!(r.is_ok());
        assert_eq!(o["status"], "duplicate", "{o}");
        assert_eq!(shop.delivered(), 2);
    }
}

#[test]
fn the_failure_option_is_checked() {
    let shop = shop();
    for (extra, needle) in [
        (
            json!({"on_failure": "retry"}),
            "on_failure must be \"enqueue\" or \"fail\"",
        ),
        (json!({"on_failure": {"a": 1}}), "not a string"),
        (
            json!({"on_failure": "enqueue", "on_network_error": "fail"}),
            "disagree",
        ),
    ] {
        let (r, _) = send_with(&shop, "SN-opt", extra);
        match r {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("{other:?}"),
        }
    }
    // A message's own fault (an invalid value, no grant) is never queued.
    let (r, o) = send_with(&shop, "SN-opt2", json!({"on_failure": "enqueue"}));
    assert!(matches!(r, Err(Error::NoPermit(_))), "{r:?}");
    assert_eq!(o["status"], "no_permit");
}

#[test]
fn sixteen_threads_one_key_one_message() {
    let shop = Arc::new(shop());
    shop.grant(TPL_PAY_SUCCESS, 16);
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (shop, barrier) = (shop.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                shop.send("order_pay_success", "SN-race").1["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
        })
        .collect();
    let statuses: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "sent").count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses
        .iter()
        .all(|s| s == "sent" || s == "duplicate" || s == "in_progress"));
    assert_eq!(shop.delivered(), 1);
    assert_eq!(shop.grants_in_ledger(TPL_PAY_SUCCESS), 15);
}

fn legacy_shop() -> Shop {
    let shop = shop();
    shop.sb.set_legacy_mode(true);
    let doc = json!({"version": 1, "events": {"order_delivered": {
        "kind": "template",
        "template_id": LEGACY_TPL_DELIVERED,
        "page": "/pages/order/detail?id={order_id}",
        "data": {"keyword1": "{order_sn}", "keyword2": "{express_company}", "keyword3": "{tracking_no}", "keyword4": "{delivery_time|datetime}"},
        "emphasis_keyword": "keyword1.DATA"
    }}});
    shop.n.load_mappings(DEMO_APPID, &doc.to_string()).unwrap();
    shop
}

#[test]
fn legacy_form_id_used_once_and_stale_copy_skipped() {
    let shop = legacy_shop();
    let now = SystemClock.now();
    for (form_id, age) in [("form-stale", 3600), ("form-fresh", 60)] {
        // WeChat knows both; the stale one was already used by another system.
        shop.sb.add_form_id(DEMO_APPID, BUYER, form_id);
        shop.n
            .add_permit(
                DEMO_APPID,
                &json!({"openid": BUYER, "kind": "form_id", "value": form_id, "created_at": now - age}).to_string(),
            )
            .unwrap();
    }
    shop.sb.inject(
        Fault::on("/cgi-bin/message/wxopen/template/send")
            .errcode(41029)
            .count(1),
    );
    let (r, o) = shop.send("order_delivered", "SN-legacy");
    assert!(r.is_ok(), "{r:?} {o}");
    assert_eq!(o["permit"]["kind"], "form_id");
    let got = shop.sb.delivered(DEMO_APPID, BUYER);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].form_id.as_deref(),
        Some("form-fresh"),
        "the oldest (stale) was tried first and dropped"
    );
    let (r, o) = shop.send("order_delivered", "SN-legacy-2");
    assert!(
        matches!(r, Err(Error::NoPermit(_))),
        "both form_ids are gone: {r:?} {o}"
    );
}

#[test]
fn legacy_prepay_id_three_uses_only_after_payment() {
    let shop = legacy_shop();
    shop.sb.add_prepay_id(DEMO_APPID, BUYER, "wx-prepay-1");
    let add = |paid: bool| {
        shop.n
            .add_permit(
                DEMO_APPID,
                &json!({"openid": BUYER, "kind": "prepay_id", "value": "wx-prepay-1", "order_sn": "SN-pp", "paid": paid})
                    .to_string(),
            )
            .unwrap()
    };
    add(false);
    let (r, _) = shop.send("order_delivered", "SN-pp");
    assert!(
        matches!(r, Err(Error::NoPermit(_))),
        "unpaid prepay_id is not usable: {r:?}"
    );
    shop.sb.mark_paid(DEMO_APPID, "wx-prepay-1");
    add(true);
    for i in 0..3 {
        let mut p = payload("SN-pp");
        p["idempotency_key"] = json!(format!("pp-{i}"));
        let report = shop.n.send(DEMO_APPID, "order_delivered", &p.to_string());
        assert!(report.result.is_ok(), "use {i}: {:?}", report.result);
        let o = serde_json::to_value(report.outcome.unwrap()).unwrap();
        assert_eq!(
            o["permit"],
            json!({"kind": "prepay_id", "remaining": 2 - i})
        );
    }
    let mut p = payload("SN-pp");
    p["idempotency_key"] = json!("pp-4");
    let report = shop.n.send(DEMO_APPID, "order_delivered", &p.to_string());
    assert!(matches!(report.result, Err(Error::NoPermit(_))));
    assert_eq!(shop.delivered(), 3);
}

#[test]
fn retired_template_api_tells_what_to_do() {
    let shop = legacy_shop();
    shop.sb.set_legacy_mode(false);
    shop.sb.add_form_id(DEMO_APPID, BUYER, "form-1");
    shop.n
        .add_permit(
            DEMO_APPID,
            &json!({"openid": BUYER, "kind": "form_id", "value": "form-1"}).to_string(),
        )
        .unwrap();
    let (r, o) = shop.send("order_delivered", "SN-45103");
    let msg = r.unwrap_err().to_string();
    assert!(
        msg.contains("45103") && msg.contains("subscribe template"),
        "{msg}"
    );
    assert_eq!(o["errcode"], 45103);
}

#[test]
fn outcome_never_holds_the_secret_or_token() {
    let shop = shop();
    shop.grant(TPL_PAY_SUCCESS, 1);
    let token = shop.n.access_token(DEMO_APPID).unwrap();
    for fault in [
        Fault::on(SEND).errcode(40001),
        Fault::on(SEND).http_status(500),
        Fault::on(SEND).close_after_read(),
    ] {
        shop.sb.inject(fault);
        let report = shop.n.send(
            DEMO_APPID,
            "order_pay_success",
            &payload("SN-leak").to_string(),
        );
        shop.sb.clear_faults();
        let text = format!(
            "{:?} {}",
            report.result,
            serde_json::to_string(&report.outcome).unwrap()
        );
        assert!(!text.contains(DEMO_SECRET), "{text}");
        assert!(!text.contains(token.expose()), "{text}");
    }
}

#[test]
fn fault_matrix_on_sqlite() {
    on_sqlite(fault_matrix);
}

#[test]
fn wechat_unreachable_on_sqlite() {
    on_sqlite(wechat_unreachable_is_a_network_error_and_the_permit_returns);
}

#[test]
fn no_permit_on_sqlite() {
    on_sqlite(no_permit_sends_nothing);
}

#[test]
fn render_errors_on_sqlite() {
    on_sqlite(render_errors_come_before_any_permit_is_touched);
}

#[test]
fn a_retried_request_is_a_duplicate_on_sqlite() {
    on_sqlite(a_retried_request_is_a_duplicate);
}

#[test]
fn a_failed_send_leaves_the_key_free_on_sqlite() {
    on_sqlite(a_failed_send_leaves_the_key_free_for_a_retry);
}

#[test]
fn sixteen_threads_one_key_on_sqlite() {
    on_sqlite(sixteen_threads_one_key_one_message);
}

#[test]
fn legacy_form_id_on_sqlite() {
    on_sqlite(legacy_form_id_used_once_and_stale_copy_skipped);
}

#[test]
fn legacy_prepay_id_on_sqlite() {
    on_sqlite(legacy_prepay_id_three_uses_only_after_payment);
}

#[test]
fn a_sqlite_send_commits_two_write_transactions_and_figures_merge_once_a_second() {
    ON_SQLITE.with(|s| s.set(true));
    let shop = shop();
    // One buyer holds a grant per send (above the default cap of 50 per template).
    shop.n
        .configure(r#"{"subscribe_cap_per_template":100}"#)
        .unwrap();
    shop.grant(TPL_PAY_SUCCESS, 60);
    // The first send also fetches the token (a lease and its publication).
    shop.send("order_pay_success", "SN-W-0").0.unwrap();
    let before = fashop_notify::sqlite_write_transactions();
    for i in 1..=50 {
        let (result, outcome) = shop.send("order_pay_success", &format!("SN-W-{i}"));
        result.unwrap();
        assert_eq!(outcome["status"], "sent");
        // 100 ms of the notifier's clock per send: 5 s in all.
        shop.n.clock().sleep_ms(100);
    }
    let written = fashop_notify::sqlite_write_transactions() - before;
    // Claim + take, then consume + record: two per send; the figures go to
    // the file at most once a second of the clock (five here, plus the one
    // the first second may leave), never once per send.
    assert!(
        (100..=106).contains(&written),
        "{written} write transactions for 50 sends"
    );
    assert_eq!(shop.delivered(), 51);
}
