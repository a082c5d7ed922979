//! Whole sends from Rust, over HTTP to a WeChat-shaped server, one permit per
//! message. `bench/run.py` runs this binary as a worker (`--worker …`) against
//! nginx and the sandbox; plain `cargo bench --bench send` runs a short
//! self-contained round against an in-process sandbox.
//!
//! Worker protocol (shared with the PHP and Python workers in `bench/`): set
//! up, print `ready`, wait for a line on stdin, send one phase of messages,
//! print `phase` and wait for the next line between phases, and finally print
//! one JSON line with what was measured. Latencies go to `--lat-file` as
//! nanoseconds, one per line.

use std::io::{BufRead, Write};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use fashop_notify::Notifier;
use fashop_notify_sandbox::{Sandbox, SandboxOptions, TPL_PAY_SUCCESS};

const EVENT: &str = "order_pay_success";
/// Most uses one add_permit may bring (the ledger's limit).
const PERMITS_PER_ADD: u64 = 1000;

struct Args {
    api_base: String,
    appid: String,
    secret: String,
    store: String,
    threads: usize,
    /// Messages per thread per phase.
    per_thread: u64,
    phases: u32,
    worker: String,
    lat_file: Option<String>,
    token_margin_secs: Option<i64>,
    /// Add permits to the ledger before the run (off when another worker on
    /// the same store already did, or when measuring the token alone).
    seed_ledger: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: send --worker ID --api-base URL --appid A --secret S [--store memory|sqlite:PATH] \
         [--threads T] [--per-thread N] [--phases P] [--lat-file PATH] [--token-margin-secs S] [--no-seed]"
    );
    std::process::exit(2)
}

fn parse_args(raw: &[String]) -> Args {
    let mut a = Args {
        api_base: String::new(),
        appid: String::new(),
        secret: String::new(),
        store: "memory".into(),
        threads: 1,
        per_thread: 100,
        phases: 1,
        worker: String::new(),
        lat_file: None,
        token_margin_secs: None,
        seed_ledger: true,
    };
    let mut it = raw.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--worker" => a.worker = value(),
            "--api-base" => a.api_base = value(),
            "--appid" => a.appid = value(),
            "--secret" => a.secret = value(),
            "--store" => a.store = value(),
            "--threads" => a.threads = value().parse().unwrap_or_else(|_| usage()),
            "--per-thread" => a.per_thread = value().parse().unwrap_or_else(|_| usage()),
            "--phases" => a.phases = value().parse().unwrap_or_else(|_| usage()),
            "--lat-file" => a.lat_file = Some(value()),
            "--token-margin-secs" => {
                a.token_margin_secs = Some(value().parse().unwrap_or_else(|_| usage()))
            }
            "--no-seed" => a.seed_ledger = false,
            // What `cargo bench` passes to every bench target.
            "--bench" => {}
            _ => usage(),
        }
    }
    if a.api_base.is_empty() || a.appid.is_empty() || a.threads == 0 || a.phases == 0 {
        usage();
    }
    a
}

/// The openid a worker thread sends to; the bench script seeds the same names.
fn openid(worker: &str, thread: usize) -> String {
    format!("oBench_{worker}_t{thread}")
}

/// A FaShop order-paid payload; the order_sn differs per message, so every
/// send has its own idempotency key, as in the shop.
fn payload(openid: &str, worker: &str, thread: usize, i: u64) -> String {
    format!(
        r#"{{"touser":"{openid}","fields":{{"order_id":10086,"order_sn":"SN{worker}T{thread}N{i:09}","order_amount":"128.50","order_total_goods_name":"法式碎花连衣裙 等2件","order_total_goods_num":2,"pay_time":1795354200}}}}"#
    )
}

/// Seconds of CPU this process used (user + system), from /proc.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which may hold spaces, closed by ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident set size in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn setup(a: &Args) -> Notifier {
    let n = Notifier::new();
    let mut config = serde_json::json!({"api_base": a.api_base, "store": a.store});
    if let Some(m) = a.token_margin_secs {
        config["token_margin_secs"] = m.into();
    }
    n.configure(&config.to_string()).expect("configure");
    n.register_app(&serde_json::json!({"appid": a.appid, "secret": a.secret}).to_string())
        .expect("register_app");
    n.load_mappings(&a.appid, include_str!("../examples/mappings.json"))
        .expect("load_mappings");
    if a.seed_ledger {
        let total = a.per_thread * u64::from(a.phases);
        for t in 0..a.threads {
            let mut left = total;
            while left > 0 {
                let count = left.min(PERMITS_PER_ADD);
                let permit = serde_json::json!({"openid": openid(&a.worker, t), "kind": "subscribe",
                    "template_id": TPL_PAY_SUCCESS, "count": count});
                n.add_permit(&a.appid, &permit.to_string())
                    .expect("add_permit");
                left -= count;
            }
        }
    }
    n
}

/// What the threads of one worker measured.
#[derive(Default)]
struct Tally {
    sent: u64,
    failed: u64,
    first_error: Option<String>,
    latencies_ns: Vec<u64>,
}

fn send_phase(n: &Notifier, a: &Args, thread: usize, phase: u32, tally: &mut Tally) {
    let to = openid(&a.worker, thread);
    let start = u64::from(phase) * a.per_thread;
    for i in start..start + a.per_thread {
        let body = payload(&to, &a.worker, thread, i);
        let t0 = Instant::now();
        let report = n.send(&a.appid, EVENT, &body);
        tally.latencies_ns.push(t0.elapsed().as_nanos() as u64);
        let sent = report.result.is_ok()
            && report.outcome.as_ref().map(|o| o.status.as_str()) == Some("sent");
        if sent {
            tally.sent += 1;
        } else {
            tally.failed += 1;
            if tally.first_error.is_none() {
                tally.first_error = Some(match report.result {
                    Err(e) => e.to_string(),
                    Ok(()) => format!("status {:?}", report.outcome.map(|o| o.status)),
                });
            }
        }
    }
}

fn wait_for_line(stdin: &mut impl BufRead) {
    let mut line = String::new();
    if stdin.read_line(&mut line).unwrap_or(0) == 0 {
        std::process::exit(3);
    }
}

fn worker(a: Args) {
    let n = setup(&a);
    let mut stdout = std::io::stdout();
    let mut stdin = std::io::stdin().lock();
    writeln!(stdout, "ready").and_then(|_| stdout.flush()).ok();
    wait_for_line(&mut stdin);

    // Threads meet at a barrier at the start of each phase; the main thread
    // talks to the bench script in between.
    let start_gate = Arc::new(Barrier::new(a.threads + 1));
    let end_gate = Arc::new(Barrier::new(a.threads + 1));
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..a.threads)
            .map(|t| {
                let (n, a) = (&n, &a);
                let (start_gate, end_gate) = (start_gate.clone(), end_gate.clone());
                s.spawn(move || {
                    let mut tally = Tally::default();
                    for phase in 0..a.phases {
                        start_gate.wait();
                        send_phase(n, a, t, phase, &mut tally);
                        end_gate.wait();
                    }
                    tally
                })
            })
            .collect();
        for phase in 0..a.phases {
            start_gate.wait();
            end_gate.wait();
            if phase + 1 < a.phases {
                writeln!(stdout, "phase").and_then(|_| stdout.flush()).ok();
                wait_for_line(&mut stdin);
            }
        }
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let elapsed = t0.elapsed();
    let cpu = cpu_secs() - cpu0;

    let mut all = Tally::default();
    for t in tallies {
        all.sent += t.sent;
        all.failed += t.failed;
        all.first_error = all.first_error.or(t.first_error);
        all.latencies_ns.extend(t.latencies_ns);
    }
    if let Some(path) = &a.lat_file {
        let mut text = String::with_capacity(all.latencies_ns.len() * 8);
        for l in &all.latencies_ns {
            text.push_str(&l.to_string());
            text.push('\n');
        }
        std::fs::write(path, text).expect("latency file");
    }
    let result = serde_json::json!({
        "sent": all.sent,
        "failed": all.failed,
        "first_error": all.first_error,
        "elapsed_s": elapsed.as_secs_f64(),
        "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib(),
    });
    writeln!(stdout, "{result}")
        .and_then(|_| stdout.flush())
        .ok();
}

/// `cargo bench --bench send`: a short round against an in-process sandbox,
/// enough to see the binary works and to get a first figure.
fn standalone() {
    const PER_THREAD: u64 = 2_000;
    let sandbox = Sandbox::start_with(SandboxOptions::default());
    let appid = "wxbench000000001";
    sandbox.seed_app(appid, "bench-secret");
    for threads in [1usize, 8] {
        let a = Args {
            api_base: sandbox.url(),
            appid: appid.into(),
            secret: "bench-secret".into(),
            store: "memory".into(),
            threads,
            per_thread: PER_THREAD,
            phases: 1,
            worker: format!("standalone{threads}"),
            lat_file: None,
            token_margin_secs: None,
            seed_ledger: true,
        };
        for t in 0..threads {
            sandbox.grant(appid, &openid(&a.worker, t), TPL_PAY_SUCCESS, PER_THREAD);
        }
        let n = setup(&a);
        let t0 = Instant::now();
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (n, a) = (&n, &a);
                    s.spawn(move || {
                        let mut tally = Tally::default();
                        send_phase(n, a, t, 0, &mut tally);
                        tally
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let elapsed = t0.elapsed().max(Duration::from_nanos(1));
        let sent: u64 = tallies.iter().map(|t| t.sent).sum();
        let failed: u64 = tallies.iter().map(|t| t.failed).sum();
        assert_eq!(
            failed,
            0,
            "{:?}",
            tallies.iter().find_map(|t| t.first_error.clone())
        );
        println!(
            "send/sandbox/{threads} threads: {sent} messages in {:.2} s = {:.0} messages/s",
            elapsed.as_secs_f64(),
            sent as f64 / elapsed.as_secs_f64()
        );
    }
}

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if raw.iter().any(|a| a == "--worker") {
        worker(parse_args(&raw));
    } else {
        standalone();
    }
}
