//! Several processes on one SQLite file or one Redis server: every use taken
//! exactly once, a process killed between take and consume loses nothing,
//! permits outlive the process that added them.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use fashop_notify::{ManualClock, Notifier, PermitRequest};

use crate::redis_server::{RedisCluster, RedisServer};
use crate::store_suite::TempDir;

const WORKER: &str = env!("CARGO_BIN_EXE_fashop-notify-ledger-worker");
const APP: &str = "wxworker000000001";
const NOW: i64 = 1_700_000_000;

fn notifier(spec: &str) -> (Notifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(NOW));
    let n = Notifier::with_clock(clock.clone());
    n.configure(&serde_json::json!({ "store": spec }).to_string())
        .unwrap();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"s"}}"#))
        .unwrap();
    (n, clock)
}

fn worker(spec: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(WORKER);
    cmd.arg(spec).arg(NOW.to_string()).args(args);
    cmd
}

/// Runs a worker to its end; its stdout lines.
fn run(spec: &str, args: &[&str]) -> Vec<String> {
    let out = worker(spec, args).output().unwrap();
    assert!(
        out.status.success(),
        "worker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Each of the eight processes takes this many uses: enough that they take
/// side by side for most of the run (a worker starts in milliseconds, a take
/// costs about a millisecond), few enough to keep `make test` short.
const TAKES_EACH: usize = 600;

/// Fills `users` × 50 form_ids and lets `procs` processes drain them at once.
pub fn drain_with_processes(spec: &str, procs: usize, takes: usize) {
    let users = procs * takes / 50;
    let (n, _) = notifier(spec);
    let mut added = HashSet::new();
    for u in 0..users {
        for i in 0..50 {
            let value = format!("fid-{u}-{i}");
            n.add_permit(
                APP,
                &format!(
                    r#"{{"openid":"u{u}","kind":"form_id","value":"{value}","created_at":{}}}"#,
                    NOW - i
                ),
            )
            .unwrap();
            added.insert(value);
        }
    }
    assert_eq!(added.len(), procs * takes);
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(APP, None).unwrap()).unwrap();
    assert_eq!(stats["form_id"]["permits"], procs * takes);

    let children: Vec<_> = (0..procs)
        .map(|_| {
            worker(spec, &["drain", &users.to_string(), &takes.to_string()])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut taken = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a worker failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), takes, "each worker takes its share");
        taken.extend(lines);
    }
    let distinct: HashSet<String> = taken.iter().cloned().collect();
    assert_eq!(taken.len(), procs * takes);
    assert_eq!(distinct.len(), taken.len(), "a use was taken twice");
    assert_eq!(distinct, added, "every use taken, none invented");
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(APP, None).unwrap()).unwrap();
    assert_eq!(stats["total_uses"], 0, "none left");
    assert_eq!(stats["leased"], 0);
}

#[test]
fn eight_processes_take_every_sqlite_use_exactly_once() {
    let dir = TempDir::new("sqlite-procs");
    drain_with_processes(&format!("sqlite:{}", dir.file("ledger.db")), 8, TAKES_EACH);
}

pub fn killed_between_take_and_consume(spec: &str) {
    let (n, clock) = notifier(spec);
    n.add_permit(
        APP,
        r#"{"openid":"oc","kind":"form_id","value":"crash-fid"}"#,
    )
    .unwrap();
    let mut child = worker(spec, &["take-and-wait", "oc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "crash-fid");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    let legacy = PermitRequest::legacy(None);
    assert_eq!(
        n.ledger().take(APP, "oc", &legacy).unwrap(),
        None,
        "still leased"
    );
    clock.advance_ms(n.ledger().lease_ms() - 1);
    assert_eq!(n.ledger().take(APP, "oc", &legacy).unwrap(), None);
    clock.advance_ms(1);
    let lease = n.ledger().take(APP, "oc", &legacy).unwrap().unwrap();
    assert_eq!(lease.value, "crash-fid");
    n.ledger().consume(&lease).unwrap();
    assert_eq!(n.ledger().take(APP, "oc", &legacy).unwrap(), None);
}

#[test]
fn a_process_killed_between_take_and_consume_loses_nothing_sqlite() {
    let dir = TempDir::new("sqlite-crash");
    killed_between_take_and_consume(&format!("sqlite:{}", dir.file("ledger.db")));
}

pub fn permits_outlive_their_process(spec: &str) {
    run(
        spec,
        &[
            "add",
            r#"{"openid":"or","kind":"subscribe","template_id":"T","count":2}"#,
        ],
    );
    run(
        spec,
        &[
            "add",
            r#"{"openid":"or","kind":"form_id","value":"restart-fid"}"#,
        ],
    );
    let lines = run(spec, &["stats", "or"]);
    let stats: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(stats["subscribe"]["templates"]["T"], 2);
    assert_eq!(stats["form_id"]["permits"], 1);
    let (n, _) = notifier(spec);
    let lease = n
        .ledger()
        .take(APP, "or", &PermitRequest::legacy(None))
        .unwrap()
        .unwrap();
    assert_eq!(lease.value, "restart-fid");
}

#[test]
fn permits_outlive_their_process_sqlite() {
    let dir = TempDir::new("sqlite-restart");
    permits_outlive_their_process(&format!("sqlite:{}", dir.file("ledger.db")));
}

/// Worker processes started together on a file that does not exist yet (the
/// first requests after a deploy): one creates it, every one of them opens it.
#[test]
fn workers_starting_together_on_a_new_sqlite_file_all_open_it() {
    for round in 0..15 {
        let dir = TempDir::new("ledger-first-open");
        let spec = format!("sqlite:{}", dir.file("ledger.db"));
        let children: Vec<_> = (0..10)
            .map(|_| {
                worker(&spec, &["stats"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: a worker could not open the new file: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn eight_processes_take_every_redis_use_exactly_once() {
    let server = RedisServer::start();
    drain_with_processes(&server.spec("procs"), 8, TAKES_EACH);
}

#[test]
fn eight_processes_take_every_redis_cluster_use_exactly_once() {
    let cluster = RedisCluster::start();
    drain_with_processes(&cluster.spec("procs"), 8, TAKES_EACH);
}

#[test]
fn a_process_killed_between_take_and_consume_loses_nothing_redis() {
    let server = RedisServer::start();
    killed_between_take_and_consume(&server.spec("crash"));
}

#[test]
fn permits_outlive_their_process_redis() {
    let server = RedisServer::start();
    permits_outlive_their_process(&server.spec("restart"));
}
