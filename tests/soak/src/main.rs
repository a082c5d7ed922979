//! The soak: PHP-like worker processes on one SQLite (or Redis) ledger send without pause
//! through the C ABI while the sandbox injects, at random, every fault of the
//! errcode policy table and every transport failure. At the end the permits
//! the ledger lost, what the sandbox delivered and what the library answered
//! must add up, and no worker may have grown.
//!
//! `fashop-notify-soak [SECS] [PROCS] [sqlite|redis]` (defaults 600, 8 and
//! sqlite; redis starts a `redis-server` of its own; exits 1 when an
//! invariant fails). `fashop-notify-soak worker …` is one worker process.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

#[path = "../../redis_server/mod.rs"]
mod redis_server;

use fashop_notify::Notifier;
use fashop_notify_sandbox::{Fault, Sandbox, SandboxOptions, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

const APPID: &str = "wxsoak0000000001";
const SECRET: &str = "soak-app-secret-0001";
const USERS: usize = 4;
const SEND: &str = "/cgi-bin/message/subscribe/send";
const TOKEN: &str = "/cgi-bin/stable_token";
/// Uses granted in the ledger before the workers start, per user.
const INITIAL_USES: u64 = 5_000;
/// Uses a worker adds when its user has none left.
const REFILL: u64 = 200;

// The exports as the PHP worker calls them; the status is read as a plain int.
extern "C" {
    fn fashop_notify_last_error() -> *const c_char;
    fn fashop_notify_string_free(s: *mut c_char);
    fn fashop_notify_configure(config_json: *const c_char) -> i32;
    fn fashop_notify_register_app(app_json: *const c_char) -> i32;
    fn fashop_notify_load_mappings(appid: *const c_char, json: *const c_char) -> i32;
    fn fashop_notify_add_permit(appid: *const c_char, json: *const c_char) -> i32;
    fn fashop_notify_send(
        appid: *const c_char,
        event: *const c_char,
        payload: *const c_char,
        out: *mut *mut c_char,
    ) -> i32;
}

const OK: i32 = 0;
const NO_PERMIT: i32 = 4;
const INTERNAL: i32 = 9;

fn user(i: usize) -> String {
    format!("o-soak-user-{i}")
}

/// Every errcode of the policy table (docs/spec/wechat.md) on the send path,
/// the transport failures, and failures of the token endpoint.
fn faults() -> Vec<Fault> {
    let mut f: Vec<Fault> = [
        -1, 40001, 40014, 42001, 40003, 40037, 41028, 41029, 41030, 43101, 43108, 45009, 45011,
        45103, 45109, 47003,
    ]
    .iter()
    .map(|&code| Fault::on(SEND).errcode(code).probability(0.008))
    .collect();
    f.push(Fault::on(SEND).http_status(502).probability(0.008));
    f.push(Fault::on(SEND).http_status(503).probability(0.008));
    f.push(Fault::on(SEND).http_status(500).probability(0.005));
    f.push(Fault::on(SEND).close_before_answer().probability(0.008));
    f.push(Fault::on(SEND).close_after_read().probability(0.008));
    f.push(Fault::on(SEND).malformed_body().probability(0.008));
    // Longer than the workers' timeout: delivered, answer never read in time.
    f.push(Fault::on(SEND).latency_ms(1_500).probability(0.002));
    f.push(Fault::on(SEND).latency_ms(50).probability(0.01));
    // Rare: a failed fetch makes the app back off for 2 s (by design), and
    // every send of that process fails fast meanwhile.
    f.push(Fault::on(TOKEN).errcode(-1).probability(0.01));
    f.push(Fault::on(TOKEN).http_status(502).probability(0.01));
    f.push(Fault::on(TOKEN).close_before_answer().probability(0.01));
    f
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

fn last_error() -> String {
    // SAFETY: valid until the next call on this thread; copied at once.
    unsafe { CStr::from_ptr(fashop_notify_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// One send through the C ABI: the status and the outcome JSON, if written.
fn send(payload: &str) -> (i32, Option<Value>) {
    let (appid, event, payload) = (c(APPID), c("order_pay_success"), c(payload));
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: NUL-terminated strings alive for the call; `out` is freed once below.
    let status =
        unsafe { fashop_notify_send(appid.as_ptr(), event.as_ptr(), payload.as_ptr(), &mut out) };
    let outcome = (!out.is_null()).then(|| {
        // SAFETY: written by the library; read, then freed once.
        let text = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { fashop_notify_string_free(out) };
        serde_json::from_str(&text).unwrap_or(Value::Null)
    });
    (status, outcome)
}

fn setup_worker(url: &str, store: &str, log: &Path) -> Result<(), String> {
    let config = json!({
        "api_base": url, "store": store,
        "timeout_ms": 1000, "connect_timeout_ms": 1000, "max_retries": 2,
        // Bulk grants per buyer, far beyond a real buyer's taps.
        "subscribe_cap_per_template": 100_000,
        "log": {"path": log.display().to_string()},
    });
    let app = json!({"appid": APPID, "secret": SECRET});
    let doc = include_str!("../../../examples/mappings.json");
    // SAFETY: NUL-terminated strings alive for each call.
    unsafe {
        if fashop_notify_configure(c(&config.to_string()).as_ptr()) != OK
            || fashop_notify_register_app(c(&app.to_string()).as_ptr()) != OK
            || fashop_notify_load_mappings(c(APPID).as_ptr(), c(doc).as_ptr()) != OK
        {
            return Err(last_error());
        }
    }
    Ok(())
}

/// A worker: sends for `secs`, one line per send to `out`
/// (`key<TAB>status<TAB>outcome_status<TAB>errcode`), then a summary line.
fn worker(idx: usize, url: &str, store: &str, secs: u64, out: &Path) -> Result<(), String> {
    setup_worker(url, store, &out.with_extension("log"))?;
    let mut file = BufWriter::new(std::fs::File::create(out).map_err(|e| e.to_string())?);
    // The messages of failed calls, each once, for the secret scan at the end.
    let mut errors = BufWriter::new(
        std::fs::File::create(out.with_extension("errors")).map_err(|e| e.to_string())?,
    );
    let mut seen_errors = std::collections::HashSet::new();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let warmup = Duration::from_secs((secs / 4).max(10));
    let (mut rss_warm, mut rss_max, mut rss_last) = (0u64, 0u64, 0u64);
    let mut next_sample = started;
    let (mut added, mut calls, mut slowest_ms) = (0u64, 0u64, 0u128);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let touser = user((idx + i as usize) % USERS);
        let key = format!("w{idx}-{i}");
        let payload = json!({"touser": touser, "fields": {
            "order_sn": key, "order_id": i, "order_amount": "19.90",
            "order_total_goods_name": "soak goods", "pay_time": 1_700_000_000 + i as i64,
        }})
        .to_string();
        // Every fifth order is sent twice, as a PHP request retried by the shop.
        let tries = if i.is_multiple_of(5) { 2 } else { 1 };
        for _ in 0..tries {
            let t = Instant::now();
            let (status, outcome) = send(&payload);
            slowest_ms = slowest_ms.max(t.elapsed().as_millis());
            calls += 1;
            if !(0..INTERNAL).contains(&status) {
                return Err(format!("send {key}: status {status}: {}", last_error()));
            }
            if status != OK {
                // Shapes of messages, not every order number: bounded memory.
                let msg = last_error();
                let shape: String = msg
                    .chars()
                    .filter(|c| !c.is_ascii_digit())
                    .take(300)
                    .collect();
                if seen_errors.len() < 10_000 && seen_errors.insert(shape) {
                    writeln!(errors, "{msg}").map_err(|e| e.to_string())?;
                }
            }
            let o = outcome.unwrap_or(Value::Null);
            let ostatus = o["status"].as_str().unwrap_or("-");
            let errcode = o["errcode"].as_i64().unwrap_or(0);
            writeln!(file, "{key}\t{status}\t{ostatus}\t{errcode}").map_err(|e| e.to_string())?;
            if status == NO_PERMIT && ostatus == "no_permit" {
                let permit = json!({"openid": touser, "kind": "subscribe",
                                    "template_id": TPL_PAY_SUCCESS, "count": REFILL});
                // SAFETY: NUL-terminated strings alive for the call.
                let s = unsafe {
                    fashop_notify_add_permit(c(APPID).as_ptr(), c(&permit.to_string()).as_ptr())
                };
                if s != OK {
                    return Err(format!("add_permit: status {s}: {}", last_error()));
                }
                added += REFILL;
            }
        }
        i += 1;
        let now = Instant::now();
        if now >= next_sample {
            rss_last = rss_bytes();
            if now.duration_since(started) >= warmup {
                if rss_warm == 0 {
                    rss_warm = rss_last;
                }
                rss_max = rss_max.max(rss_last);
            }
            next_sample = now + Duration::from_secs(1);
        }
    }
    writeln!(
        file,
        "#summary\t{added}\t{calls}\t{rss_warm}\t{rss_max}\t{}\t{slowest_ms}",
        rss_bytes().max(rss_last)
    )
    .map_err(|e| e.to_string())?;
    errors.flush().map_err(|e| e.to_string())?;
    file.flush().map_err(|e| e.to_string())
}

/// Lines of the workers' logs, error messages and results that show the app
/// secret or a token the sandbox issued (`86_` and 133 more characters).
fn leaks(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![format!("cannot read {}", dir.display())];
    };
    for e in entries.flatten() {
        let path = e.path();
        if path
            .extension()
            .is_some_and(|x| x == "db" || x.to_string_lossy().starts_with("db-"))
        {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let token = line.match_indices("86_").any(|(at, _)| {
                line[at + 3..]
                    .chars()
                    .take(40)
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .count()
                    == 40
            });
            if line.contains(SECRET) || token {
                hits.push(format!(
                    "{}: {}",
                    path.display(),
                    line.chars().take(200).collect::<String>()
                ));
            }
        }
    }
    hits
}

#[derive(Default)]
struct Tally {
    calls: u64,
    by_status: BTreeMap<String, u64>,
    /// Uses the outcomes say were spent: sent, uncertain, refused (43101).
    spent: u64,
    uncertain: u64,
    refused: u64,
    added: u64,
    /// Final outcome of each key's sends: whether any was sent / uncertain.
    keys: HashMap<String, (bool, bool)>,
    duplicates_resent: u64,
    problems: Vec<String>,
}

fn read_worker(path: &Path, idx: usize, tally: &mut Tally) {
    let Ok(f) = std::fs::File::open(path) else {
        tally.problems.push(format!("worker {idx}: no results"));
        return;
    };
    let mut summary = false;
    let mut seen: HashMap<String, &'static str> = HashMap::new();
    for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols[0] == "#summary" {
            summary = true;
            let n: Vec<u64> = cols[1..].iter().map(|v| v.parse().unwrap_or(0)).collect();
            let (added, calls, warm, max, end, slowest) = (n[0], n[1], n[2], n[3], n[4], n[5]);
            tally.added += added;
            tally.calls += calls;
            let grew = max as f64 / warm.max(1) as f64 - 1.0;
            let end_ratio = end as f64 / warm.max(1) as f64 - 1.0;
            println!(
                "  worker {idx}: {calls} calls, RSS after warm-up {:.1} MiB, max {:.1} MiB ({:+.1}%), at the end {:.1} MiB ({:+.1}%), slowest call {slowest} ms",
                warm as f64 / 1048576.0,
                max as f64 / 1048576.0,
                grew * 100.0,
                end as f64 / 1048576.0,
                end_ratio * 100.0
            );
            if warm == 0 || grew > 0.05 || end_ratio.abs() > 0.05 {
                tally.problems.push(format!(
                    "worker {idx}: RSS not flat after warm-up ({warm} -> max {max}, end {end})"
                ));
            }
            continue;
        }
        let [key, status, ostatus, errcode] = cols[..] else {
            tally
                .problems
                .push(format!("worker {idx}: bad line {line:?}"));
            continue;
        };
        let status: i32 = status.parse().unwrap_or(-1);
        *tally
            .by_status
            .entry(format!("{status}/{ostatus}"))
            .or_default() += 1;
        // The ABI: an outcome whenever a send returns OK, NO_PERMIT, WECHAT_ERROR,
        // NETWORK_ERROR or UNCERTAIN.
        if matches!(status, 0 | 4 | 5 | 6 | 7) && ostatus == "-" {
            tally
                .problems
                .push(format!("{key}: status {status} without an outcome"));
        }
        let entry = tally.keys.entry(key.to_string()).or_default();
        match ostatus {
            "sent" => {
                tally.spent += 1;
                entry.0 = true;
            }
            "uncertain" => {
                tally.spent += 1;
                tally.uncertain += 1;
                entry.1 = true;
            }
            "failed" if errcode == "43101" => {
                tally.spent += 1;
                tally.refused += 1;
            }
            "duplicate" => {
                tally.duplicates_resent += 1;
                if !matches!(seen.get(key), Some(&"sent") | Some(&"uncertain")) {
                    tally.problems.push(format!(
                        "{key}: duplicate without an earlier sent/uncertain send"
                    ));
                }
            }
            _ => {}
        }
        if let Some(prev @ ("sent" | "uncertain")) = seen.get(key).copied() {
            if ostatus != "duplicate" {
                tally.problems.push(format!(
                    "{key}: sent again ({ostatus}) after an earlier {prev}"
                ));
            }
        }
        if matches!(ostatus, "sent" | "uncertain") {
            seen.insert(
                key.to_string(),
                if ostatus == "sent" {
                    "sent"
                } else {
                    "uncertain"
                },
            );
        }
    }
    if !summary {
        tally
            .problems
            .push(format!("worker {idx}: no summary (it died before the end)"));
    }
}

fn stock(n: &Notifier) -> (u64, u64) {
    let stats: Value =
        serde_json::from_str(&n.ledger_stats(APPID, None).expect("ledger_stats")).expect("JSON");
    let left = stats["subscribe"]["templates"][TPL_PAY_SUCCESS]
        .as_u64()
        .unwrap_or(0);
    (left, stats["leased"].as_u64().unwrap_or(0))
}

fn run(secs: u64, procs: usize, kind: &str) -> Result<bool, String> {
    let dir = std::env::temp_dir().join(format!("fashop-notify-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let db = dir.join("ledger.db");
    // Kept until the end of the run: the server stops when dropped.
    let redis = (kind == "redis").then(redis_server::RedisServer::start);
    let store = match &redis {
        Some(server) => server.spec("soak"),
        None => format!("sqlite:{}", db.display()),
    };
    let sb = Sandbox::start_with(SandboxOptions {
        apps: vec![(APPID.into(), SECRET.into())],
        random_seed: std::process::id() as u64,
        workers: 4,
        ..SandboxOptions::default()
    });
    for u in 0..USERS {
        // WeChat's side never runs out: the ledger is what limits sends.
        sb.grant(APPID, &user(u), TPL_PAY_SUCCESS, 100_000_000);
    }
    let faults = faults();
    println!(
        "soak: {procs} processes, {secs} s, one ledger {store}, {} fault kinds at random",
        faults.len()
    );
    for f in faults {
        sb.inject(f);
    }
    let owner = Notifier::new();
    owner
        .configure(&json!({"store": store, "subscribe_cap_per_template": 100_000}).to_string())
        .map_err(|e| e.to_string())?;
    owner
        .register_app(&json!({"appid": APPID, "secret": SECRET}).to_string())
        .map_err(|e| e.to_string())?;
    let mut initial = 0;
    for u in 0..USERS {
        for _ in 0..INITIAL_USES / 1000 {
            let p = json!({"openid": user(u), "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 1000});
            owner
                .add_permit(APPID, &p.to_string())
                .map_err(|e| e.to_string())?;
            initial += 1000;
        }
    }
    let (stock_before, _) = stock(&owner);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let results: Vec<PathBuf> = (0..procs)
        .map(|i| dir.join(format!("worker-{i}.tsv")))
        .collect();
    let children: Vec<_> = (0..procs)
        .map(|i| {
            Command::new(&exe)
                .args(["worker", &i.to_string(), &sb.url()])
                .arg(&store)
                .arg(secs.to_string())
                .arg(&results[i])
                .spawn()
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let mut tally = Tally::default();
    for (i, mut child) in children.into_iter().enumerate() {
        let st = child.wait().map_err(|e| e.to_string())?;
        if !st.success() {
            tally.problems.push(format!("worker {i} exited with {st}"));
        }
    }
    sb.clear_faults();
    println!("workers:");
    for (i, r) in results.iter().enumerate() {
        read_worker(r, i, &mut tally);
    }
    let (stock_after, leased) = stock(&owner);
    let leaked = leaks(&dir);
    let log_lines: usize = (0..procs)
        .map(|i| {
            std::fs::read_to_string(dir.join(format!("worker-{i}.log")))
                .map_or(0, |t| t.lines().count())
        })
        .sum();
    let counters = sb.counters();
    let delivered = sb.all_delivered();
    let mut per_key: HashMap<String, u64> = HashMap::new();
    for m in &delivered {
        let key = m.data["character_string1"]["value"].as_str().unwrap_or("?");
        *per_key.entry(key.to_string()).or_default() += 1;
    }
    let consumed = (stock_before + tally.added).saturating_sub(stock_after + leased) as i128;
    let delivered_n = delivered.len() as u64;
    let twice: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    let mut uncertain_delivered = 0u64;
    let mut sent_missing = 0u64;
    let mut delivered_unclaimed = 0u64;
    for (key, (sent, uncertain)) in &tally.keys {
        let got = per_key.get(key).copied().unwrap_or(0);
        if *sent && got == 0 {
            sent_missing += 1;
        }
        if !*sent && *uncertain && got > 0 {
            uncertain_delivered += 1;
        }
        if got > 0 && !*sent && !*uncertain {
            delivered_unclaimed += 1;
        }
    }
    let sent = tally.by_status.get("0/sent").copied().unwrap_or(0);
    println!("calls answered: {} ({:?})", tally.calls, tally.by_status);
    println!(
        "sandbox: {} requests, {} send attempts, {} faults fired, errors {:?}, http errors {:?}",
        counters.requests,
        counters.send_attempts,
        counters.faults_fired,
        counters.errors,
        counters.http_errors
    );
    println!("permits: {initial} granted at start + {} refilled; {stock_after} left, {leased} still leased", tally.added);
    println!("invariants:");
    let mut ok = tally.problems.is_empty();
    let mut check = |name: String, holds: bool| {
        println!("  [{}] {name}", if holds { "ok" } else { "FAILED" });
        ok &= holds;
    };
    check(
        format!(
            "every call answered with a status of the ABI, never INTERNAL ({} calls)",
            tally.calls
        ),
        tally.calls > 0 && !tally.problems.iter().any(|p| p.contains("status")),
    );
    check(
        format!("no permit left leased at the end ({leased})"),
        leased == 0,
    );
    check(
        format!(
            "permits consumed by the ledger ({consumed}) = sent ({sent}) + uncertain ({}) + refused 43101 ({}): no use spent twice or lost",
            tally.uncertain, tally.refused
        ),
        consumed == tally.spent as i128,
    );
    check(
        format!(
            "delivered by the sandbox ({delivered_n}) = sent ({sent}) + uncertain that arrived ({uncertain_delivered}) <= consumed ({consumed})"
        ),
        delivered_n == sent + uncertain_delivered && (delivered_n as i128) <= consumed,
    );
    check(
        format!(
            "consumed - delivered ({}) = uncertain that did not arrive ({}) + refused ({})",
            consumed - delivered_n as i128,
            tally.uncertain - uncertain_delivered,
            tally.refused
        ),
        consumed - delivered_n as i128
            == (tally.uncertain - uncertain_delivered + tally.refused) as i128,
    );
    check(
        format!(
            "no idempotency key delivered twice ({} keys, {} delivered twice)",
            per_key.len(),
            twice.len()
        ),
        twice.is_empty(),
    );
    check(
        format!("every sent key was delivered ({sent_missing} missing); nothing delivered that the library called failed ({delivered_unclaimed})"),
        sent_missing == 0 && delivered_unclaimed == 0,
    );
    check(
        format!(
            "a retried order after sent/uncertain is a duplicate ({} duplicates)",
            tally.duplicates_resent
        ),
        !tally
            .problems
            .iter()
            .any(|p| p.contains("sent again") || p.contains("duplicate without")),
    );
    check(
        "RSS of every worker flat after warm-up (within 5%)".to_string(),
        !tally
            .problems
            .iter()
            .any(|p| p.contains("RSS") || p.contains("summary")),
    );
    check(
        format!("no secret or token in {log_lines} structured log lines, the error messages and the results ({} hits)", leaked.len()),
        log_lines > 0 && leaked.is_empty(),
    );
    for l in leaked.iter().take(10) {
        println!("  leak: {l}");
    }
    for p in tally.problems.iter().take(20) {
        println!("  problem: {p}");
    }
    if ok && std::env::var_os("FASHOP_SOAK_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("results kept in {}", dir.display());
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        let [_, idx, url, store, secs, out] = &args[..] else {
            eprintln!("usage: fashop-notify-soak worker IDX URL STORE SECS OUT");
            return ExitCode::from(2);
        };
        let run = worker(
            idx.parse().unwrap_or(0),
            url,
            store,
            secs.parse().unwrap_or(60),
            Path::new(out),
        );
        return match run {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("soak worker {idx}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let secs = args.first().and_then(|s| s.parse().ok()).unwrap_or(600);
    let procs = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(8);
    let kind = args.get(2).map_or("sqlite", String::as_str);
    if kind != "sqlite" && kind != "redis" {
        eprintln!("soak: the store is sqlite or redis, got {kind:?}");
        return ExitCode::from(2);
    }
    match run(secs, procs, kind) {
        Ok(true) => {
            println!("soak: all invariants hold");
            ExitCode::SUCCESS
        }
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}
