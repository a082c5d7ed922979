//! The owner's reach report: a scripted week of orders through the sandbox on
//! every store, counted per China day and outcome, shared by processes that
//! share the store, forgotten after the kept days; the grant stock per
//! template; bad ranges and unknown apps refused with the reason.

use std::collections::BTreeMap;
use std::sync::Arc;

use fashop_notify::{Error, ManualClock, Notifier};
use fashop_notify_sandbox::{Fault, Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

use crate::redis_server::RedisServer;
use crate::store_suite::TempDir;

const SEND: &str = "/cgi-bin/message/subscribe/send";
/// 2026-12-01 09:00 China time (01:00 UTC).
const MONDAY_9AM: i64 = 1_796_086_800;
const DAY: i64 = 86_400;
const BUYER: &str = "oBuyer_reach_week_000001";
const STRANGER: &str = "oBuyer_reach_never_asked";

fn payload(openid: &str, sn: &str, queue: bool) -> String {
    let mut p = json!({"touser": openid, "fields": {
        "order_id": 7, "order_sn": sn, "order_amount": "99.00",
        "order_total_goods_name": "羊毛围巾", "order_total_goods_num": 1,
        "order_create_time": 1796086000, "pay_time": 1796086500}});
    if queue {
        p["on_failure"] = json!("enqueue");
    }
    p.to_string()
}

fn notifier(sb: &Sandbox, clock: &Arc<ManualClock>, store: &str) -> Notifier {
    let n = Notifier::with_clock(clock.clone());
    n.configure(
        &json!({"api_base": sb.url(), "store": store, "timeout_ms": 700, "max_retries": 0,
                "report_keep_days": 30})
        .to_string(),
    )
    .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    n
}

/// Each day's sends: (buyer, fault, queue on failure). Returns the expected
/// counts per (day, outcome, errcode).
fn scripted_day(n: &Notifier, sb: &Sandbox, day: i64) -> Vec<(&'static str, i64)> {
    let mut ended = Vec::new();
    let orders: [(&str, Option<Fault>, bool, &str, i64); 5] = [
        (BUYER, None, false, "sent", 0),
        (STRANGER, None, false, "no_permit", 0),
        (
            BUYER,
            Some(Fault::on(SEND).errcode(43101).count(1)),
            false,
            "refused",
            43101,
        ),
        (
            BUYER,
            Some(Fault::on(SEND).errcode(40003).count(1)),
            false,
            "failed",
            40003,
        ),
        (
            BUYER,
            Some(Fault::on(SEND).http_status(502).count(3)),
            true,
            "queued",
            0,
        ),
    ];
    // Day d sends d+1 orders of the list, in turn, so each day's counts differ.
    for (i, (buyer, fault, queue, outcome, errcode)) in orders.into_iter().enumerate() {
        if i as i64 > day {
            break;
        }
        if let Some(f) = fault {
            sb.inject(f);
        }
        let sn = format!("SN-{day}-{i}");
        let report = n.send(DEMO_APPID, "order_pay_success", &payload(buyer, &sn, queue));
        sb.clear_faults();
        let status = report
            .outcome
            .map(|o| o.status.to_string())
            .unwrap_or_default();
        let want = if outcome == "refused" {
            "failed"
        } else {
            outcome
        };
        assert_eq!(status, want, "day {day} order {i}: {:?}", report.result);
        ended.push((outcome, errcode));
    }
    ended
}

fn day_counts(report: &Value, day: &str) -> BTreeMap<String, u64> {
    let days = report["events"]["order_pay_success"]["days"]
        .as_array()
        .unwrap();
    let d = days.iter().find(|d| d["day"] == day).unwrap();
    let mut out = BTreeMap::new();
    for k in [
        "sent",
        "no_permit",
        "refused",
        "failed",
        "uncertain",
        "queued",
    ] {
        out.insert(k.to_string(), d[k].as_u64().unwrap());
    }
    for (code, n) in d["failed_by_errcode"].as_object().unwrap() {
        out.insert(format!("failed:{code}"), n.as_u64().unwrap());
    }
    out
}

fn expected(ended: &[(&str, i64)]) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = [
        "sent",
        "no_permit",
        "refused",
        "failed",
        "uncertain",
        "queued",
    ]
    .iter()
    .map(|k| (k.to_string(), 0))
    .collect();
    for (o, code) in ended {
        *out.get_mut(*o).unwrap() += 1;
        if *o == "failed" {
            *out.entry(format!("failed:{code}")).or_default() += 1;
        }
    }
    out
}

/// A week of orders, one China day after another; the report of the week
/// shows each day's outcomes as the sends returned them.
fn week_on(store: &str, second_store: Option<&str>) {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(MONDAY_9AM));
    let n = notifier(&sb, &clock, store);
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 100);
    let grant =
        json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 40});
    n.add_permit(DEMO_APPID, &grant.to_string()).unwrap();
    let mut want = BTreeMap::new();
    for day in 0..7 {
        want.insert(day, expected(&scripted_day(&n, &sb, day)));
        clock.advance_secs(DAY);
    }
    clock.advance_secs(-DAY); // back to Sunday, the last day of the script
    let query = json!({"from": "2026-12-01", "to": "2026-12-07"}).to_string();
    let report: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &query).unwrap()).unwrap();
    for (day, counts) in &want {
        let name = format!("2026-12-{:02}", day + 1);
        assert_eq!(&day_counts(&report, &name), counts, "{name} on {store}");
    }
    let total = &report["events"]["order_pay_success"]["total"];
    // 7 sent; not reached: 6 no permit + 5 refused + 4 failed; 3 queued are still on their way.
    assert_eq!(
        (
            total["sent"].as_u64(),
            total["not_reached"].as_u64(),
            total["queued"].as_u64()
        ),
        (Some(7), Some(15), Some(3))
    );
    assert_eq!(total["reach_rate"].as_f64().unwrap(), 7.0 / 22.0);
    let stock = &report["grants"][0];
    assert_eq!(
        (stock["template_id"].as_str(), stock["holders"].as_u64()),
        (Some(TPL_PAY_SUCCESS), Some(1))
    );
    assert_eq!(
        stock["uses"].as_u64(),
        Some(40 - 7 - 5),
        "sent and refused use up grants"
    );
    assert_eq!(stock["events"], json!(["order_pay_success"]));

    // The flush sends the queued messages: they end as sent, on the day they are flushed.
    let flushed: Value = serde_json::from_str(&n.flush(Some(DEMO_APPID), 10).unwrap()).unwrap();
    assert_eq!(flushed["sent"], 3, "{flushed}");
    let report: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &query).unwrap()).unwrap();
    assert_eq!(day_counts(&report, "2026-12-07")["sent"], 1 + 3);

    if let Some(shared) = second_store {
        // Another process on the same store sees and adds to the same counts.
        let other = notifier(&sb, &clock, shared);
        other.send(
            DEMO_APPID,
            "order_pay_success",
            &payload(STRANGER, "SN-other", false),
        );
        // Its count reaches the store with its figures: within a second, or when it ends.
        drop(other);
        let seen: Value =
            serde_json::from_str(&n.reach_report(DEMO_APPID, &query).unwrap()).unwrap();
        assert_eq!(day_counts(&seen, "2026-12-07")["no_permit"], 1 + 1);
    }
}

#[test]
fn a_scripted_week_in_memory() {
    week_on("memory", None);
}

#[test]
fn a_scripted_week_on_sqlite_shared_by_two_notifiers() {
    let dir = TempDir::new("reach-week");
    let spec = format!("sqlite:{}", dir.file("notify.db"));
    week_on(&spec, Some(&spec));
}

#[test]
fn a_scripted_week_on_redis_shared_by_two_notifiers() {
    let redis = RedisServer::start();
    let spec = redis.spec("reachweek:");
    week_on(&spec, Some(&spec));
}

#[test]
fn old_days_are_forgotten_after_the_kept_days_on_sqlite() {
    let dir = TempDir::new("reach-keep");
    forgotten_on(&format!("sqlite:{}", dir.file("notify.db")));
}

#[test]
fn old_days_are_forgotten_after_the_kept_days_on_redis() {
    let redis = RedisServer::start();
    forgotten_on(&redis.spec("reachkeep:"));
}

fn forgotten_on(store: &str) {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(MONDAY_9AM));
    let n = notifier(&sb, &clock, store);
    n.configure(r#"{"report_keep_days": 3}"#).unwrap();
    n.send(
        DEMO_APPID,
        "order_pay_success",
        &payload(STRANGER, "SN-old", false),
    );
    let monday = json!({"from": "2026-12-01", "to": "2026-12-01"}).to_string();
    let r: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &monday).unwrap()).unwrap();
    assert_eq!(r["events"]["order_pay_success"]["total"]["no_permit"], 1);
    clock.advance_secs(3 * DAY);
    let e = n.reach_report(DEMO_APPID, &monday).unwrap_err().to_string();
    assert!(e.contains("oldest day kept is 2026-12-02"), "{e}");
    // Reading the kept days forgets Monday in the store itself: keep_days 30 would show it again otherwise.
    let kept = json!({"from": "2026-12-02", "to": "2026-12-04"}).to_string();
    n.reach_report(DEMO_APPID, &kept).unwrap();
    n.configure(r#"{"report_keep_days": 30}"#).unwrap();
    let r: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &monday).unwrap()).unwrap();
    assert_eq!(r["events"], json!({}), "{r}");
}

#[test]
fn grants_about_to_lapse_are_counted() {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(MONDAY_9AM));
    let n = notifier(&sb, &clock, "memory");
    n.configure(r#"{"subscribe_max_age_days": 10}"#).unwrap();
    let add = |openid: &str, count: u32| {
        let g = json!({"openid": openid, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": count});
        n.add_permit(DEMO_APPID, &g.to_string()).unwrap();
    };
    add("oBuyer_reach_old_grant_01", 2);
    clock.advance_secs(5 * DAY);
    add("oBuyer_reach_new_grant_01", 3);
    add("oBuyer_reach_new_grant_02", 1);
    let q = json!({"from": "2026-12-06", "to": "2026-12-06"}).to_string();
    let r: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &q).unwrap()).unwrap();
    let g = &r["grants"][0];
    // Accepted 5 days ago with a 10-day limit: purged within the next 7 days.
    assert_eq!(
        (
            g["holders"].as_u64(),
            g["uses"].as_u64(),
            g["lapsing_7d"].as_u64()
        ),
        (Some(3), Some(6), Some(2))
    );
}

#[test]
fn bad_ranges_and_unknown_apps_are_refused_with_the_reason() {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(MONDAY_9AM));
    let n = notifier(&sb, &clock, "memory");
    let cases = [
        (
            r#"{"from": "2026-12-01", "to": "2026-11-30"}"#,
            "is after to",
        ),
        (
            r#"{"from": "2026-12-01", "to": "2026-12-02"}"#,
            "in the future: today is 2026-12-01",
        ),
        (
            r#"{"from": "2026-10-01", "to": "2026-12-01"}"#,
            "older than the report keeps",
        ),
        (
            r#"{"from": "2026-02-30", "to": "2026-12-01"}"#,
            "YYYY-MM-DD",
        ),
        (
            r#"{"from": "12/01/2026", "to": "2026-12-01"}"#,
            "YYYY-MM-DD",
        ),
        (r#"{"from": "2026-12-01"}"#, "missing field `to`"),
        (
            r#"{"from": "2026-12-01", "to": "2026-12-01", "app": 1}"#,
            "unknown field",
        ),
        ("not json", "reach report query"),
    ];
    for (q, why) in cases {
        match n.reach_report(DEMO_APPID, q) {
            Err(Error::InvalidArgument(m)) => assert!(m.contains(why), "{q}: {m}"),
            other => panic!("{q}: {other:?}"),
        }
    }
    let q = r#"{"from": "2026-12-01", "to": "2026-12-01"}"#;
    assert!(matches!(
        n.reach_report("wx_not_registered_01", q),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.configure(r#"{"report_keep_days": 0}"#),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn the_flush_counts_the_messages_it_ends_and_not_those_due_again() {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(MONDAY_9AM));
    let n = notifier(&sb, &clock, "memory");
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 3);
    let grant =
        json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 3});
    n.add_permit(DEMO_APPID, &grant.to_string()).unwrap();
    for sn in ["SN-q-1", "SN-q-2", "SN-q-3"] {
        n.enqueue(DEMO_APPID, "order_pay_success", &payload(BUYER, sn, false))
            .unwrap();
    }
    let query = json!({"from": "2026-12-01", "to": "2026-12-01"}).to_string();
    let total = |n: &Notifier| -> Value {
        let r: Value = serde_json::from_str(&n.reach_report(DEMO_APPID, &query).unwrap()).unwrap();
        r["events"]["order_pay_success"]["total"].clone()
    };
    // Enqueued, not ended: nothing counted yet.
    assert_eq!(
        serde_json::from_str::<Value>(&n.reach_report(DEMO_APPID, &query).unwrap()).unwrap()
            ["events"],
        json!({})
    );
    // The first is refused for good (40003), the second meets the minute quota (due again).
    sb.inject(Fault::on(SEND).errcode(40003).count(1));
    let first: Value = serde_json::from_str(&n.flush(Some(DEMO_APPID), 1).unwrap()).unwrap();
    assert_eq!(first["dead"], 1, "{first}");
    sb.inject(Fault::on(SEND).errcode(45011).count(1));
    let second: Value = serde_json::from_str(&n.flush(Some(DEMO_APPID), 1).unwrap()).unwrap();
    assert_eq!(second["retry"], 1, "{second}");
    sb.clear_faults();
    let t = total(&n);
    assert_eq!(
        (t["failed_by_errcode"].clone(), t["sent"].as_u64()),
        (json!({"40003": 1}), Some(0)),
        "{t}"
    );
    // A minute later both that one and the third go out.
    clock.advance_secs(120);
    let rest: Value = serde_json::from_str(&n.flush(Some(DEMO_APPID), 10).unwrap()).unwrap();
    assert_eq!(rest["sent"], 2, "{rest}");
    let t = total(&n);
    assert_eq!(
        (t["sent"].as_u64(), t["not_reached"].as_u64()),
        (Some(2), Some(1)),
        "{t}"
    );
}
