//! Metric figures: exact values after scripted recordings, both output forms,
//! `promtool check metrics`, sharing through a store, and figures summed over
//! two processes on one SQLite file.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fashop_notify::{
    Config, CounterSink, ManualClock, MemorySink, Metrics, MetricsFormat, Notifier,
};
use serde_json::Value;

/// The value of one exact series line (`name{labels}`) in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("sample value is a number"))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A day of a small shop: sends with WeChat faults, token fetches, permits.
fn scripted(m: &Metrics) {
    m.record_permits_added("subscribe", 3);
    m.record_permit_added("form_id");
    m.record_permit_added("form_id");
    m.record_token_fetch("wx1", "stable", true);
    m.record_send("wx1", "order_pay_success", "sent", 0, ms(3));
    m.record_permit_consumed("subscribe");
    m.record_send("wx1", "order_pay_success", "sent", 0, ms(40));
    m.record_permit_consumed("subscribe");
    m.record_send("wx1", "order_pay_success", "failed", 43101, ms(120));
    m.record_token_fetch("wx1", "stable", false);
    m.record_token_fetch("wx1", "stable", true);
    m.record_token_error_recovered("wx1");
    m.record_send("wx1", "order_delivered", "sent", 0, ms(7_000));
    m.record_permit_consumed("form_id");
    m.record_send("wx1", "order_delivered", "uncertain", 0, ms(20_000));
    m.record_send("wx1", "order_delivered", "no_permit", 0, ms(1));
    m.record_send("wx1", "order_pay_success", "duplicate", 0, ms(1));
    m.record_send("wx2", "order_cancel", "failed", -1, ms(5));
    m.record_permit_expired("form_id", 1);
    m.set_permit_stock("subscribe", 1);
    m.set_permit_stock("form_id", 0);
    m.set_outbox_depth("pending", 4);
    m.set_outbox_depth("dead", 1);
    m.set_outbox_depth("pending", 2);
    m.record_log_failure();
}

#[test]
fn prometheus_text_has_exactly_what_happened() {
    let m = Metrics::new();
    scripted(&m);
    let t = m.render(MetricsFormat::Prometheus).unwrap();
    let s = |series: &str| sample(&t, series).unwrap_or_else(|| panic!("{series} missing in\n{t}"));
    let sends = |labels: &str| s(&format!("fashop_notify_sends_total{{{labels}}}"));
    assert_eq!(
        sends(r#"appid="wx1",event="order_pay_success",status="sent",errcode="0""#),
        2.0
    );
    assert_eq!(
        sends(r#"appid="wx1",event="order_pay_success",status="failed",errcode="43101""#),
        1.0
    );
    assert_eq!(
        sends(r#"appid="wx1",event="order_delivered",status="sent",errcode="0""#),
        1.0
    );
    assert_eq!(
        sends(r#"appid="wx1",event="order_delivered",status="uncertain",errcode="0""#),
        1.0
    );
    assert_eq!(
        sends(r#"appid="wx1",event="order_delivered",status="no_permit",errcode="0""#),
        1.0
    );
    assert_eq!(
        sends(r#"appid="wx1",event="order_pay_success",status="duplicate",errcode="0""#),
        1.0
    );
    assert_eq!(
        sends(r#"appid="wx2",event="order_cancel",status="failed",errcode="-1""#),
        1.0
    );
    assert_eq!(t.matches("fashop_notify_sends_total{").count(), 7);

    // Durations 3ms, 5ms, 40ms, 120ms, 7s, 20s (no_permit and duplicate left out).
    let bucket = |le: &str| {
        s(&format!(
            "fashop_notify_send_duration_seconds_bucket{{le=\"{le}\"}}"
        ))
    };
    assert_eq!(bucket("0.005"), 2.0);
    assert_eq!(bucket("0.01"), 2.0);
    assert_eq!(bucket("0.05"), 3.0);
    assert_eq!(bucket("0.1"), 3.0);
    assert_eq!(bucket("0.25"), 4.0);
    assert_eq!(bucket("5"), 4.0);
    assert_eq!(bucket("10"), 5.0);
    assert_eq!(bucket("+Inf"), 6.0);
    assert_eq!(s("fashop_notify_send_duration_seconds_count"), 6.0);
    assert_eq!(s("fashop_notify_send_duration_seconds_sum"), 27.168);

    assert_eq!(
        s(r#"fashop_notify_token_fetches_total{appid="wx1",mode="stable",result="ok"}"#),
        2.0
    );
    assert_eq!(
        s(r#"fashop_notify_token_fetches_total{appid="wx1",mode="stable",result="error"}"#),
        1.0
    );
    assert_eq!(
        s(r#"fashop_notify_token_errors_recovered_total{appid="wx1"}"#),
        1.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_added_total{kind="subscribe"}"#),
        3.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_added_total{kind="form_id"}"#),
        2.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_consumed_total{kind="subscribe"}"#),
        2.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_consumed_total{kind="form_id"}"#),
        1.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_expired_total{kind="form_id"}"#),
        1.0
    );
    assert_eq!(
        sample(
            &t,
            r#"fashop_notify_permits_expired_total{kind="subscribe"}"#
        ),
        None
    );
    assert_eq!(s(r#"fashop_notify_permit_stock{kind="subscribe"}"#), 1.0);
    assert_eq!(s(r#"fashop_notify_permit_stock{kind="form_id"}"#), 0.0);
    assert_eq!(s(r#"fashop_notify_outbox_messages{state="pending"}"#), 2.0);
    assert_eq!(s(r#"fashop_notify_outbox_messages{state="dead"}"#), 1.0);
    assert_eq!(s("fashop_notify_log_write_failures_total"), 1.0);
    assert_eq!(s("fashop_notify_metrics_flush_failures_total"), 0.0);

    let help = t
        .lines()
        .find(|l| l.starts_with("# HELP fashop_notify_sends_total "))
        .unwrap();
    assert!(help.contains("this process only"), "{help}");
    assert!(t.contains("# TYPE fashop_notify_send_duration_seconds histogram"));
    assert!(t.contains("# TYPE fashop_notify_permit_stock gauge"));
    assert!(t.contains("# TYPE fashop_notify_sends_total counter"));
}

#[test]
fn json_has_the_same_figures() {
    let m = Metrics::new();
    scripted(&m);
    let v: Value = serde_json::from_str(&m.render(MetricsFormat::Json).unwrap()).unwrap();
    assert_eq!(v["scope"], "process");
    assert_eq!(v["store"], "memory");
    let sends = v["fashop_notify_sends_total"].as_array().unwrap();
    assert_eq!(sends.len(), 7);
    let failed = sends
        .iter()
        .find(|r| r["errcode"] == 43101)
        .expect("a 43101 row");
    assert_eq!(failed["appid"], "wx1");
    assert_eq!(failed["event"], "order_pay_success");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["value"], 1);
    let total: i64 = sends.iter().map(|r| r["value"].as_i64().unwrap()).sum();
    assert_eq!(total, 8);
    let h = &v["fashop_notify_send_duration_seconds"];
    assert_eq!(h["count"], 6);
    assert!((h["sum"].as_f64().unwrap() - 27.168).abs() < 1e-9);
    assert_eq!(
        h["buckets"][0],
        serde_json::json!({"le": "0.005", "count": 2})
    );
    assert_eq!(
        h["buckets"][11],
        serde_json::json!({"le": "+Inf", "count": 6})
    );
    assert_eq!(
        v["fashop_notify_permit_stock"],
        serde_json::json!([{"kind": "form_id", "value": 0}, {"kind": "subscribe", "value": 1}])
    );
    assert_eq!(v["fashop_notify_log_write_failures_total"], 1);
    assert_eq!(
        v["fashop_notify_token_fetches_total"][0],
        serde_json::json!({"appid": "wx1", "mode": "stable", "result": "error", "value": 1})
    );
}

#[test]
fn a_fresh_notifier_prints_zeroes_and_rejects_unknown_formats() {
    let n = Notifier::new();
    let t = n.metrics_text("prometheus").unwrap();
    assert_eq!(
        sample(&t, "fashop_notify_send_duration_seconds_count"),
        Some(0.0)
    );
    assert_eq!(
        sample(&t, "fashop_notify_log_write_failures_total"),
        Some(0.0)
    );
    let e = n.metrics_text("xml").unwrap_err();
    assert!(matches!(e, fashop_notify::Error::InvalidArgument(_)));
    assert!(
        e.to_string()
            .contains("format must be \"prometheus\" or \"json\""),
        "{e}"
    );
    assert!(n.metrics_text("").is_err());
    assert!(n.metrics_text("JSON").is_err());
}

#[test]
fn recordings_from_many_threads_all_count() {
    let m = Metrics::new();
    std::thread::scope(|s| {
        for t in 0..8 {
            let m = &m;
            s.spawn(move || {
                for i in 0..1000u64 {
                    let event = if i % 2 == 0 {
                        "order_cancel"
                    } else {
                        "order_delivered"
                    };
                    m.record_send(&format!("wx{}", t % 2), event, "sent", 0, ms(i % 50));
                }
            });
        }
    });
    let v: Value = serde_json::from_str(&m.render(MetricsFormat::Json).unwrap()).unwrap();
    let rows = v["fashop_notify_sends_total"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for r in rows {
        assert_eq!(r["value"], 2000, "{r}");
    }
    assert_eq!(v["fashop_notify_send_duration_seconds"]["count"], 8000);
}

#[test]
fn label_values_are_escaped_and_bounded() {
    let m = Metrics::new();
    m.record_send("wx\"1", "a\\b\nc", "sent", 0, ms(1));
    let t = m.render(MetricsFormat::Prometheus).unwrap();
    assert!(
        t.contains(r#"fashop_notify_sends_total{appid="wx\"1",event="a\\b\nc",status="sent",errcode="0"} 1"#),
        "{t}"
    );
    promtool_check(&t);
}

/// Runs `promtool check metrics` on `text`; promtool is a test dependency
/// (Debian package `prometheus`, installed by `make deps`).
fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is needed for this test and could not be run ({e}); \
             install it with `make deps` (Debian package `prometheus`)"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_text() {
    let m = Metrics::new();
    promtool_check(&m.render(MetricsFormat::Prometheus).unwrap());
    scripted(&m);
    promtool_check(&m.render(MetricsFormat::Prometheus).unwrap());
    let dir = tempdir("promtool");
    let m = sqlite_metrics(&format!("{}/m.db", dir.display()));
    scripted(&m);
    let t = m.render(MetricsFormat::Prometheus).unwrap();
    assert!(t.contains("all processes sharing sqlite:"), "{t}");
    promtool_check(&t);
}

#[test]
fn a_shared_store_sees_every_increment_once() {
    let sink = Arc::new(MemorySink::default());
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let a = Metrics::with_sink_on(sink.clone(), clock.clone());
    let b = Metrics::with_sink_on(sink.clone(), clock.clone());
    scripted(&a);
    scripted(&b);
    // Within a second nothing is merged: no store write per recording.
    assert_eq!(sink.snapshot().unwrap(), vec![]);
    clock.advance_ms(1_000);
    {
        let _batch = b.batch();
        b.record_send("wx2", "order_cancel", "failed", -1, ms(5));
        b.record_permit_consumed("form_id");
    }
    // The second passed: b's recordings went out when its batch ended, a's wait.
    let merged = sink.snapshot().unwrap();
    let consumed = |kind: &str| {
        merged
            .iter()
            .find(|s| s.name == "fashop_notify_permits_consumed_total" && s.labels == [kind])
            .map(|s| s.value)
    };
    assert_eq!(consumed("form_id"), Some(2));
    // Either process prints the sum of both (a scrape merges its own first).
    for m in [&a, &b] {
        let t = m.render(MetricsFormat::Prometheus).unwrap();
        let s = |series: &str| sample(&t, series).unwrap();
        assert_eq!(
            s(
                r#"fashop_notify_sends_total{appid="wx2",event="order_cancel",status="failed",errcode="-1"}"#
            ),
            3.0
        );
        assert_eq!(
            s(
                r#"fashop_notify_sends_total{appid="wx1",event="order_pay_success",status="sent",errcode="0"}"#
            ),
            4.0
        );
        assert_eq!(
            s(r#"fashop_notify_permits_consumed_total{kind="form_id"}"#),
            3.0
        );
        assert_eq!(s("fashop_notify_send_duration_seconds_count"), 13.0);
        assert_eq!(
            s(r#"fashop_notify_send_duration_seconds_bucket{le="0.005"}"#),
            5.0
        );
        assert_eq!(s("fashop_notify_send_duration_seconds_sum"), 54.341);
        assert_eq!(s("fashop_notify_log_write_failures_total"), 2.0);
        // A gauge is the store's state, not a sum.
        assert_eq!(s(r#"fashop_notify_outbox_messages{state="pending"}"#), 2.0);
        assert!(t.contains("all processes sharing test-sink"));
    }
}

#[test]
fn a_store_that_is_down_loses_no_increment() {
    let sink = Arc::new(MemorySink::default());
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let m = Metrics::with_sink_on(sink.clone(), clock.clone());
    clock.advance_ms(1_000);
    m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
    sink.set_failing(true);
    clock.advance_ms(1_000);
    m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
    clock.advance_ms(1_000);
    m.set_permit_stock("subscribe", 7);
    let e = m.render(MetricsFormat::Json).unwrap_err();
    assert!(matches!(e, fashop_notify::Error::Store(_)), "{e:?}");
    assert!(e.to_string().contains("store unavailable"), "{e}");
    sink.set_failing(false);
    m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
    let v: Value = serde_json::from_str(&m.render(MetricsFormat::Json).unwrap()).unwrap();
    assert_eq!(v["scope"], "shared");
    assert_eq!(v["fashop_notify_sends_total"][0]["value"], 3);
    assert_eq!(v["fashop_notify_send_duration_seconds"]["count"], 3);
    assert_eq!(v["fashop_notify_permit_stock"][0]["value"], 7);
    // Failed: the second recording, the stock, the failed scrape.
    assert_eq!(v["fashop_notify_metrics_flush_failures_total"], 3);
}

/// Metrics following a `sqlite:` store setting, as `configure` gives them.
fn sqlite_metrics(db: &str) -> Metrics {
    let m = Metrics::new();
    let config = Config {
        store: fashop_notify::StoreSpec::Sqlite(db.to_string()),
        ..Config::default()
    };
    m.configure(&config);
    m
}

/// A notifier on a SQLite store with app `wx1` registered, as a worker has it.
fn sqlite_notifier(db: &str) -> Notifier {
    let n = Notifier::new();
    n.configure(&format!(r#"{{"store":"sqlite:{db}"}}"#))
        .unwrap();
    n.register_app(r#"{"appid":"wx1","secret":"worker-secret"}"#)
        .unwrap();
    n
}

#[test]
fn permit_stock_is_read_from_the_ledger_at_scrape_time() {
    let n = Notifier::new();
    let stock = |n: &Notifier| {
        let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
        v["fashop_notify_permit_stock"].clone()
    };
    // No app: nothing to read.
    assert_eq!(stock(&n), serde_json::json!([]));
    n.register_app(r#"{"appid":"wx1","secret":"s1"}"#).unwrap();
    n.register_app(r#"{"appid":"wx2","secret":"s2"}"#).unwrap();
    n.add_permit(
        "wx1",
        r#"{"openid":"oA","kind":"subscribe","template_id":"T1","count":3}"#,
    )
    .unwrap();
    n.add_permit(
        "wx2",
        r#"{"openid":"oB","kind":"subscribe","template_id":"T2"}"#,
    )
    .unwrap();
    n.add_permit("wx1", r#"{"openid":"oA","kind":"form_id","value":"f-1"}"#)
        .unwrap();
    assert_eq!(
        stock(&n),
        serde_json::json!([
            {"kind": "form_id", "value": 1},
            {"kind": "prepay_id", "value": 0},
            {"kind": "subscribe", "value": 4},
        ])
    );
}

#[test]
fn a_store_url_with_a_password_is_not_printed() {
    // Nothing listens on port 1: the figures cannot be read, and the
    // message names the store without its password.
    let m = Metrics::new();
    let config = Config {
        store: fashop_notify::StoreSpec::Redis("redis://shop:hunter2@127.0.0.1:1/0".to_string()),
        ..Config::default()
    };
    m.configure(&config);
    m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
    for format in [MetricsFormat::Prometheus, MetricsFormat::Json] {
        let e = m.render(format).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.contains("redis://***@127.0.0.1:1/0"), "{e}");
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fashop-metrics-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const WORKER_DB: &str = "FASHOP_METRICS_WORKER_DB";
const WORKER_SENDS: u64 = 150;

/// One worker's traffic on a SQLite store. Run as a child process by
/// `two_processes_on_one_sqlite_file_add_up`; run alone it checks its own figures.
#[test]
fn sqlite_worker_process() {
    let (db, alone) = match std::env::var(WORKER_DB) {
        Ok(db) => (db, false),
        Err(_) => {
            let dir = tempdir("worker");
            (dir.join("w.db").display().to_string(), true)
        }
    };
    let n = sqlite_notifier(&db);
    n.add_permit(
        "wx1",
        r#"{"openid":"oWorker","kind":"subscribe","template_id":"T1","count":2}"#,
    )
    .unwrap();
    let m = n.metrics();
    for i in 0..WORKER_SENDS {
        let _batch = m.batch();
        let status = if i % 3 == 0 { "failed" } else { "sent" };
        m.record_send(
            "wx1",
            "order_delivered",
            status,
            if i % 3 == 0 { 45009 } else { 0 },
            ms(20),
        );
        m.record_permit_consumed("subscribe");
    }
    m.record_token_fetch("wx1", "stable", true);
    // What a short wait on a busy store left behind goes out before exit.
    m.flush().unwrap();
    if alone {
        let t = n.metrics_text("prometheus").unwrap();
        assert_eq!(
            sample(
                &t,
                r#"fashop_notify_sends_total{appid="wx1",event="order_delivered",status="sent",errcode="0"}"#
            ),
            Some(100.0)
        );
        assert_eq!(
            sample(&t, "fashop_notify_send_duration_seconds_count"),
            Some(150.0)
        );
    }
}

#[test]
fn two_processes_on_one_sqlite_file_add_up() {
    let dir = tempdir("two");
    let db = dir.join("shop.db").display().to_string();
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "metrics::sqlite_worker_process", "--nocapture"])
                .env(WORKER_DB, &db)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success(), "a worker process failed");
    }
    // A third process (this one) scrapes the whole shop.
    let n = sqlite_notifier(&db);
    let t = n.metrics_text("prometheus").unwrap();
    let s = |series: &str| sample(&t, series).unwrap_or_else(|| panic!("{series} missing in\n{t}"));
    assert_eq!(
        s(
            r#"fashop_notify_sends_total{appid="wx1",event="order_delivered",status="sent",errcode="0"}"#
        ),
        200.0
    );
    assert_eq!(
        s(
            r#"fashop_notify_sends_total{appid="wx1",event="order_delivered",status="failed",errcode="45009"}"#
        ),
        100.0
    );
    assert_eq!(
        s(r#"fashop_notify_permits_consumed_total{kind="subscribe"}"#),
        300.0
    );
    assert_eq!(
        s(r#"fashop_notify_token_fetches_total{appid="wx1",mode="stable",result="ok"}"#),
        2.0
    );
    assert_eq!(
        s(r#"fashop_notify_send_duration_seconds_bucket{le="0.025"}"#),
        300.0
    );
    assert_eq!(
        s(r#"fashop_notify_send_duration_seconds_bucket{le="0.01"}"#),
        0.0
    );
    assert_eq!(s("fashop_notify_send_duration_seconds_sum"), 6.0);
    // Both workers' grants, read from the shared store at scrape time.
    assert_eq!(s(r#"fashop_notify_permit_stock{kind="subscribe"}"#), 4.0);
    assert!(t.contains("(all processes sharing sqlite:"), "{t}");
    promtool_check(&t);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recordings_are_merged_once_a_second_and_when_dropped() {
    let sink = Arc::new(MemorySink::default());
    let clock = Arc::new(ManualClock::at(1_700_000_000));
    let sends = |sink: &MemorySink| {
        sink.snapshot()
            .unwrap()
            .iter()
            .filter(|s| s.name == "fashop_notify_sends_total")
            .map(|s| s.value)
            .sum::<i64>()
    };
    let m = Metrics::with_sink_on(sink.clone(), clock.clone());
    for _ in 0..50 {
        m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
        clock.advance_ms(10);
    }
    // 500 ms of sends: nothing merged yet.
    assert_eq!(sends(&sink), 0);
    for _ in 0..60 {
        m.record_send("wx1", "order_cancel", "sent", 0, ms(5));
        clock.advance_ms(10);
    }
    // One merge when the second was up (the 51st send saw 500 ms; the 101st 1 s).
    assert_eq!(sends(&sink), 101);
    let clone = m.clone();
    drop(m);
    // A clone still holds the figures: nothing merged, nothing lost.
    assert_eq!(sends(&sink), 101);
    drop(clone);
    assert_eq!(sends(&sink), 110);
}

#[test]
fn a_dropped_notifier_leaves_its_figures_in_the_sqlite_store_once() {
    let dir = tempdir("drop-merge");
    let db = format!("{}/shop.db", dir.display());
    let before = fashop_notify::sqlite_write_transactions();
    {
        let n = sqlite_notifier(&db);
        for i in 0..20 {
            n.add_permit(
                "wx1",
                &format!(r#"{{"openid":"oA","kind":"form_id","value":"f-{i}"}}"#),
            )
            .unwrap();
        }
    }
    // 20 adds, one transaction each, and at most the merges at configure,
    // after a second (the wall clock) and at drop: not one per recording.
    let written = fashop_notify::sqlite_write_transactions() - before;
    assert!((21..=23).contains(&written), "{written} write transactions");
    let scraper = sqlite_notifier(&db);
    let v: Value = serde_json::from_str(&scraper.metrics_text("json").unwrap()).unwrap();
    let added = v["fashop_notify_permits_added_total"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "form_id")
        .map(|s| s["value"].as_i64().unwrap());
    assert_eq!(added, Some(20), "{v}");
}

/// In the child run of the test below: a PHP worker's life through the C
/// boundary (configure, register, add permits), then a normal exit.
#[test]
fn exit_child_adds_permits_through_the_c_boundary() {
    let Ok(db) = std::env::var("FASHOP_EXIT_CHILD_DB") else {
        return;
    };
    use std::ffi::{c_char, CString};
    extern "C" {
        fn fashop_notify_configure(config_json: *const c_char) -> i32;
        fn fashop_notify_register_app(app_json: *const c_char) -> i32;
        fn fashop_notify_add_permit(appid: *const c_char, permit_json: *const c_char) -> i32;
    }
    let c = |s: &str| CString::new(s).unwrap();
    // SAFETY: every argument is a live NUL-terminated string.
    unsafe {
        let config = c(&format!(r#"{{"store":"sqlite:{db}"}}"#));
        assert_eq!(fashop_notify_configure(config.as_ptr()), 0);
        let app = c(r#"{"appid":"wx1","secret":"worker-secret"}"#);
        assert_eq!(fashop_notify_register_app(app.as_ptr()), 0);
        for i in 0..7 {
            let tag = std::env::var("FASHOP_EXIT_CHILD_TAG").unwrap();
            let permit = format!(r#"{{"openid":"oA","kind":"form_id","value":"f-{tag}-{i}"}}"#);
            let (appid, permit) = (c("wx1"), c(&permit));
            assert_eq!(fashop_notify_add_permit(appid.as_ptr(), permit.as_ptr()), 0);
        }
    }
}

#[test]
fn a_worker_that_exits_normally_leaves_its_figures_once() {
    let dir = tempdir("exit-merge");
    let db = format!("{}/shop.db", dir.display());
    for tag in ["a", "b"] {
        let status = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "metrics::exit_child_adds_permits_through_the_c_boundary",
                "--nocapture",
            ])
            .env("FASHOP_EXIT_CHILD_DB", &db)
            .env("FASHOP_EXIT_CHILD_TAG", tag)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let scraper = sqlite_notifier(&db);
    let v: Value = serde_json::from_str(&scraper.metrics_text("json").unwrap()).unwrap();
    let added = v["fashop_notify_permits_added_total"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "form_id")
        .map(|s| s["value"].as_i64().unwrap());
    // Two workers of 7 adds each: every add counted, none twice.
    assert_eq!(added, Some(14), "{v}");
}
