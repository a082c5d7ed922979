//! The structured log: JSON lines with the agreed fields, nothing secret in
//! them, level filtering, a file that cannot be written counted instead of
//! failing, rotation, and whole lines when several processes append at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fashop_notify::{Error, ManualClock, Notifier, SendRecord, TokenRecord};

use serde_json::Value;

use crate::redis_server;

const OPENID: &str = "oAbcDEFghiJKLmnoPQRsxyz";
const TOKEN: &str = "81_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "fashop-log-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn notifier_logging_to(path: &Path, level: &str) -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(1_795_464_727)));
    n.configure(&format!(
        r#"{{"log": {{"path": "{}", "level": "{level}"}}}}"#,
        path.display()
    ))
    .unwrap();
    n
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn log_failures(n: &Notifier) -> i64 {
    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    v["fashop_notify_log_write_failures_total"]
        .as_i64()
        .unwrap()
}

fn sent(elapsed_ms: u64) -> SendRecord<'static> {
    SendRecord {
        appid: "wx1",
        event: "order_pay_success",
        touser: Some(OPENID),
        status: "sent",
        errcode: 0,
        errmsg: Some("ok"),
        attempts: 1,
        elapsed: Duration::from_millis(elapsed_ms),
        permit: Some("subscribe"),
        msgid: Some(2_999_123),
    }
}

/// Sends, token fetches and store problems, with credentials where careless
/// code would leak them.
fn traffic(n: &Notifier) {
    n.observe_send(&sent(42));
    let leaky =
        format!("invalid credential, access_token is invalid or not latest, access_token={TOKEN}");
    n.observe_send(&SendRecord {
        status: "failed",
        errcode: 40001,
        errmsg: Some(&leaky),
        attempts: 2,
        ..sent(130)
    });
    n.observe_send(&SendRecord {
        status: "no_permit",
        errmsg: None,
        attempts: 0,
        permit: None,
        msgid: None,
        ..sent(0)
    });
    n.observe_token_fetch(&TokenRecord {
        appid: "wx1",
        mode: "stable",
        ok: true,
        errcode: None,
        errmsg: None,
        attempts: 1,
        elapsed: Duration::from_millis(15),
    });
    let body = format!(r#"{{"grant_type":"client_credential","appid":"wx1","secret":"{SECRET}"}}"#);
    n.observe_token_fetch(&TokenRecord {
        appid: "wx1",
        mode: "classic",
        ok: false,
        errcode: Some(40125),
        errmsg: Some(&body),
        attempts: 3,
        elapsed: Duration::from_millis(900),
    });
    n.journal().store_problem(
        "redis://shop:hunter2@127.0.0.1:6379/0",
        "take_permit",
        "connection refused (os error 111)",
    );
}

#[test]
fn one_json_line_per_record_with_the_agreed_fields() {
    let dir = tempdir("fields");
    let path = dir.join("notify.jsonl");
    let n = notifier_logging_to(&path, "info");
    traffic(&n);
    let l = lines(&path);
    assert_eq!(l.len(), 6, "{l:?}");

    let s = &l[0];
    assert_eq!(s["time"], "2026-11-23T20:12:07.000Z");
    assert_eq!(s["level"], "info");
    assert_eq!(s["kind"], "send");
    assert_eq!(s["pid"], std::process::id());
    assert_eq!(s["appid"], "wx1");
    assert_eq!(s["event"], "order_pay_success");
    assert_eq!(s["touser"], "oAbc…xyz");
    assert_eq!(s["status"], "sent");
    assert_eq!(s["errcode"], 0);
    assert_eq!(s["errmsg"], "ok");
    assert_eq!(s["attempts"], 1);
    assert_eq!(s["elapsed_ms"], 42);
    assert_eq!(s["permit"], "subscribe");
    assert_eq!(s["msgid"], 2_999_123);

    assert_eq!(l[1]["level"], "warn");
    assert_eq!(l[1]["errcode"], 40001);
    assert_eq!(l[1]["attempts"], 2);
    assert_eq!(
        l[1]["errmsg"],
        "invalid credential, access_token is invalid or not latest, access_token=***"
    );
    assert_eq!(l[2]["status"], "no_permit");
    assert_eq!(l[2]["level"], "info");
    assert!(l[2].get("permit").is_none());

    assert_eq!(l[3]["kind"], "token");
    assert_eq!(l[3]["mode"], "stable");
    assert_eq!(l[3]["status"], "ok");
    assert_eq!(l[3]["elapsed_ms"], 15);
    assert_eq!(l[4]["level"], "warn");
    assert_eq!(l[4]["errcode"], 40125);
    assert_eq!(l[4]["status"], "error");

    assert_eq!(l[5]["kind"], "store");
    assert_eq!(l[5]["level"], "error");
    assert_eq!(l[5]["store"], "redis://***@127.0.0.1:6379/0");
    assert_eq!(l[5]["operation"], "take_permit");
    assert_eq!(l[5]["errmsg"], "connection refused (os error 111)");

    // The observe_* calls counted in metrics too.
    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    let sends: i64 = v["fashop_notify_sends_total"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_i64().unwrap())
        .sum();
    assert_eq!(sends, 3);
    assert_eq!(v["fashop_notify_send_duration_seconds"]["count"], 2);
    assert_eq!(
        v["fashop_notify_token_fetches_total"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(log_failures(&n), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_file_holds_no_secret_no_token_no_openid() {
    let dir = tempdir("leak");
    let path = dir.join("notify.jsonl");
    let n = notifier_logging_to(&path, "debug");
    traffic(&n);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.is_empty());
    for needle in [
        TOKEN,
        SECRET,
        OPENID,
        "hunter2",
        "81_AbCd",
        "0123456789abcdef",
    ] {
        assert!(
            !text.contains(needle),
            "{needle} leaked into the log:\n{text}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn levels_filter_lines() {
    let dir = tempdir("levels");
    let path = dir.join("warn.jsonl");
    let n = notifier_logging_to(&path, "warn");
    traffic(&n);
    let kinds: Vec<String> = lines(&path)
        .iter()
        .map(|l| {
            format!(
                "{}/{}",
                l["kind"].as_str().unwrap(),
                l["status"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(kinds, ["send/failed", "token/error", "store/-"]);

    let path = dir.join("error.jsonl");
    let n = notifier_logging_to(&path, "error");
    traffic(&n);
    assert_eq!(lines(&path).len(), 1);

    let path = dir.join("off.jsonl");
    let n = notifier_logging_to(&path, "off");
    traffic(&n);
    assert!(!path.exists());
    assert_eq!(log_failures(&n), 0);

    // No log configured: nothing written, nothing counted.
    let n = Notifier::new();
    traffic(&n);
    assert_eq!(log_failures(&n), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unwritable_log_is_counted_and_fails_nothing() {
    let dir = tempdir("unwritable");
    // A directory where the file should be, and a path under a missing directory.
    for path in [dir.clone(), dir.join("missing").join("notify.jsonl")] {
        let n = notifier_logging_to(&path, "info");
        traffic(&n);
        assert_eq!(log_failures(&n), 6, "{}", path.display());
        n.observe_send(&sent(1));
        assert_eq!(log_failures(&n), 7);
    }
    // Once the directory appears, lines go out again.
    let path = dir.join("later").join("notify.jsonl");
    let n = notifier_logging_to(&path, "info");
    n.observe_send(&sent(1));
    assert_eq!(log_failures(&n), 1);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    n.observe_send(&sent(1));
    assert_eq!(lines(&path).len(), 1);
    assert_eq!(log_failures(&n), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rotated_file_is_reopened() {
    let dir = tempdir("rotate");
    let path = dir.join("notify.jsonl");
    let n = notifier_logging_to(&path, "info");
    n.observe_send(&sent(1));
    std::fs::rename(&path, dir.join("notify.jsonl.1")).unwrap();
    n.observe_send(&sent(2));
    n.observe_send(&sent(3));
    assert_eq!(lines(&dir.join("notify.jsonl.1")).len(), 1);
    let fresh = lines(&path);
    assert_eq!(fresh.len(), 2);
    assert_eq!(fresh[1]["elapsed_ms"], 3);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn long_values_keep_lines_short() {
    let dir = tempdir("long");
    let path = dir.join("notify.jsonl");
    let n = notifier_logging_to(&path, "info");
    let huge = "界".repeat(10_000);
    let quotes = "\"\\\u{1}".repeat(3_000);
    n.observe_send(&SendRecord {
        appid: &huge,
        event: &quotes,
        touser: Some(&huge),
        status: &quotes,
        errmsg: Some(&quotes),
        permit: Some(&huge),
        ..sent(1)
    });
    n.journal().store_problem(&huge, &quotes, &huge);
    let text = std::fs::read_to_string(&path).unwrap();
    for line in text.lines() {
        assert!(line.len() < 4096, "a line of {} bytes", line.len());
        serde_json::from_str::<Value>(line).unwrap();
    }
    assert_eq!(text.lines().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_log_settings_are_refused_and_change_nothing() {
    let n = Notifier::new();
    n.configure(r#"{"log": {"path": "/tmp/fashop-notify-kept.jsonl"}}"#)
        .unwrap();
    let msg = |json: &str| match n.configure(json) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{json}: {other:?}"),
    };
    assert!(msg(r#"{"log": {"path": ""}}"#).contains("log.path must not be empty"));
    assert!(msg(r#"{"log": {"level": "loud"}}"#).contains("log.level: unknown variant `loud`"));
    assert!(msg(r#"{"log": {"file": "/tmp/x"}}"#).contains("unknown field `file`"));
    assert!(msg(r#"{"log": {"path": 5}}"#).contains("log.path: invalid type"));
    assert!(msg(r#"{"log": "/tmp/x"}"#).contains("log: invalid type"));
    let long = "x".repeat(5000);
    assert!(msg(&format!(r#"{{"log": {{"path": "{long}"}}}}"#)).contains("longer than"));
    let s = n.journal().settings();
    assert_eq!(s.path.as_deref(), Some("/tmp/fashop-notify-kept.jsonl"));
    assert_eq!(s.level, fashop_notify::LogLevel::Info);
    n.configure(r#"{"log": {"level": "error"}}"#).unwrap();
    let s = n.journal().settings();
    assert_eq!(s.path.as_deref(), Some("/tmp/fashop-notify-kept.jsonl"));
    assert_eq!(s.level, fashop_notify::LogLevel::Error);
}

const WRITER_LOG: &str = "FASHOP_LOG_WRITER_PATH";
const LINES_PER_WRITER: usize = 400;

/// One process's share of `many_processes_and_threads_append_whole_lines`;
/// run alone it checks its own lines.
#[test]
fn log_writer_process() {
    let (path, alone) = match std::env::var(WRITER_LOG) {
        Ok(p) => (PathBuf::from(p), false),
        Err(_) => (tempdir("writer").join("w.jsonl"), true),
    };
    let n = notifier_logging_to(&path, "info");
    let errmsg = "x".repeat(2000);
    std::thread::scope(|s| {
        for t in 0..4 {
            let n = &n;
            let errmsg = &errmsg;
            s.spawn(move || {
                for i in 0..LINES_PER_WRITER / 4 {
                    n.observe_send(&SendRecord {
                        errmsg: Some(errmsg),
                        attempts: t,
                        elapsed: Duration::from_millis(i as u64),
                        ..sent(0)
                    });
                }
            });
        }
    });
    assert_eq!(log_failures(&n), 0);
    if alone {
        assert_eq!(lines(&path).len(), LINES_PER_WRITER);
    }
}

#[test]
fn many_processes_and_threads_append_whole_lines() {
    let dir = tempdir("many");
    let path = dir.join("shared.jsonl");
    let exe = std::env::current_exe().unwrap();
    let writers: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "metrics_log::log_writer_process", "--nocapture"])
                .env(WRITER_LOG, &path)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut pids = Vec::new();
    for mut w in writers {
        pids.push(w.id());
        assert!(w.wait().unwrap().success(), "a writer process failed");
    }
    let l = lines(&path);
    assert_eq!(l.len(), 3 * LINES_PER_WRITER);
    for pid in pids {
        let n = l.iter().filter(|x| x["pid"] == pid).count();
        assert_eq!(n, LINES_PER_WRITER, "lines of process {pid}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_store_that_fails_is_a_log_line_too() {
    let dir = tempdir("store-down");
    let path = dir.join("notify.jsonl");
    let n = notifier_logging_to(&path, "info");
    let mut redis = redis_server::RedisServer::start();
    n.configure(&format!(r#"{{"store": "{}"}}"#, redis.url()))
        .unwrap();
    n.register_app(r#"{"appid":"wxlogstore0000001","secret":"log-store-secret"}"#)
        .unwrap();
    let permit = r#"{"openid":"o-log-store","kind":"subscribe","template_id":"tpl-1"}"#;
    n.add_permit("wxlogstore0000001", permit).unwrap();
    redis.kill();
    let e = n.add_permit("wxlogstore0000001", permit).unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    let problems: Vec<Value> = lines(&path)
        .into_iter()
        .filter(|l| l["kind"] == "store")
        .collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    let line = problems[0].to_string();
    assert!(line.contains("add_permit"), "{line}");
    assert!(
        line.contains(&format!("127.0.0.1:{}", redis.port)),
        "{line}"
    );
}
