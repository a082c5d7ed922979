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

use fashop_notify::{every_errcode, policy_for, Notifier, Policy, TOKEN_ERRCODES};
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
/// An errcode WeChat documents (invalid openid) that the table leaves to its default.
const UNKNOWN_ERRCODE: i64 = 40003;

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

/// Every errcode of the policy table (`wechat/errcodes.rs`) on the send path,
/// the token errors, one code the table does not know, the transport
/// failures, and failures of the token endpoint.
fn faults() -> Vec<Fault> {
    let mut f: Vec<Fault> = every_errcode()
        .chain(TOKEN_ERRCODES)
        .chain([UNKNOWN_ERRCODE])
        .map(|code| Fault::on(SEND).errcode(code).probability(0.008))
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

/// A worker's resident memory, sampled once a second: after the warm-up the
/// first sample and the largest, and the last.
struct RssSampler {
    started: Instant,
    warmup: Duration,
    next: Instant,
    warm: u64,
    max: u64,
    last: u64,
}

impl RssSampler {
    fn new(secs: u64) -> RssSampler {
        let started = Instant::now();
        RssSampler {
            started,
            warmup: Duration::from_secs((secs / 4).max(10)),
            next: started,
            warm: 0,
            max: 0,
            last: 0,
        }
    }

    fn sample(&mut self) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.last = rss_bytes();
        if now.duration_since(self.started) >= self.warmup {
            if self.warm == 0 {
                self.warm = self.last;
            }
            self.max = self.max.max(self.last);
        }
        self.next = now + Duration::from_secs(1);
    }
}

/// What tells one failed call's message from another's: the message without
/// its digits and without WeChat's request id (`rid: 5f3d…-8acc…-8596…`, a new
/// one in every answer), hashed. Kept as the text, every answer carrying a
/// rid was a shape of its own, and the set grew by a few hundred bytes per
/// failed call up to 10,000 of them: the growth the 600 s soak's RSS check
/// saw (7.5 to 9 MiB per worker), which was this harness's, not the library's.
fn error_shape(msg: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut kept = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find("rid: ") {
        kept.push_str(&rest[..at]);
        rest = rest[at + 5..].trim_start_matches(|c: char| c.is_ascii_hexdigit() || c == '-');
    }
    kept.push_str(rest);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    kept.chars()
        .filter(|c| !c.is_ascii_digit())
        .take(300)
        .collect::<String>()
        .hash(&mut h);
    h.finish()
}

/// What one worker writes: a line per send, the messages of failed calls
/// (each shape once, for the secret scan at the end) and its counts.
struct WorkerOut {
    file: BufWriter<std::fs::File>,
    errors: BufWriter<std::fs::File>,
    seen_errors: std::collections::HashSet<u64>,
    added: u64,
    calls: u64,
    slowest_ms: u128,
}

impl WorkerOut {
    fn create(out: &Path) -> Result<WorkerOut, String> {
        let open = |p: PathBuf| std::fs::File::create(p).map_err(|e| e.to_string());
        Ok(WorkerOut {
            file: BufWriter::new(open(out.to_path_buf())?),
            errors: BufWriter::new(open(out.with_extension("errors"))?),
            seen_errors: std::collections::HashSet::new(),
            added: 0,
            calls: 0,
            slowest_ms: 0,
        })
    }

    /// A failed call's message, once per shape (not every order number or
    /// request id: bounded memory).
    fn note_error(&mut self) -> Result<(), String> {
        let msg = last_error();
        if self.seen_errors.len() < 10_000 && self.seen_errors.insert(error_shape(&msg)) {
            writeln!(self.errors, "{msg}").map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn finish(mut self, rss: &RssSampler) -> Result<(), String> {
        writeln!(
            self.file,
            "#summary\t{}\t{}\t{}\t{}\t{}\t{}",
            self.added,
            self.calls,
            rss.warm,
            rss.max,
            rss_bytes().max(rss.last),
            self.slowest_ms
        )
        .map_err(|e| e.to_string())?;
        self.errors.flush().map_err(|e| e.to_string())?;
        self.file.flush().map_err(|e| e.to_string())
    }
}

/// The payload of a worker's `i`-th order: its buyer, key and JSON.
fn order(idx: usize, i: u64) -> (String, String, String) {
    let touser = user((idx + i as usize) % USERS);
    let key = format!("w{idx}-{i}");
    let payload = json!({"touser": touser, "fields": {
        "order_sn": key, "order_id": i, "order_amount": "19.90",
        "order_total_goods_name": "soak goods", "pay_time": 1_700_000_000 + i as i64,
    }})
    .to_string();
    (touser, key, payload)
}

/// The buyer's grants ran out: the shop records `REFILL` more taps.
fn refill(touser: &str) -> Result<u64, String> {
    let permit = json!({"openid": touser, "kind": "subscribe",
                        "template_id": TPL_PAY_SUCCESS, "count": REFILL});
    // SAFETY: NUL-terminated strings alive for the call.
    let s = unsafe { fashop_notify_add_permit(c(APPID).as_ptr(), c(&permit.to_string()).as_ptr()) };
    if s != OK {
        return Err(format!("add_permit: status {s}: {}", last_error()));
    }
    Ok(REFILL)
}

/// One send of an order, written down (and the buyer refilled when empty).
fn send_order(out: &mut WorkerOut, touser: &str, key: &str, payload: &str) -> Result<(), String> {
    let t = Instant::now();
    let (status, outcome) = send(payload);
    out.slowest_ms = out.slowest_ms.max(t.elapsed().as_millis());
    out.calls += 1;
    if !(0..INTERNAL).contains(&status) {
        return Err(format!("send {key}: status {status}: {}", last_error()));
    }
    if status != OK {
        out.note_error()?;
    }
    let o = outcome.unwrap_or(Value::Null);
    let ostatus = o["status"].as_str().unwrap_or("-");
    let errcode = o["errcode"].as_i64().unwrap_or(0);
    writeln!(out.file, "{key}\t{status}\t{ostatus}\t{errcode}").map_err(|e| e.to_string())?;
    if status == NO_PERMIT && ostatus == "no_permit" {
        out.added += refill(touser)?;
    }
    Ok(())
}

/// A worker: sends for `secs`, one line per send to `out`
/// (`key<TAB>status<TAB>outcome_status<TAB>errcode`), then a summary line.
fn worker(idx: usize, url: &str, store: &str, secs: u64, out: &Path) -> Result<(), String> {
    setup_worker(url, store, &out.with_extension("log"))?;
    let mut written = WorkerOut::create(out)?;
    let mut rss = RssSampler::new(secs);
    let deadline = rss.started + Duration::from_secs(secs);
    let mut i = 0u64;
    while Instant::now() < deadline {
        let (touser, key, payload) = order(idx, i);
        // Every fifth order is sent twice, as a PHP request retried by the shop.
        let tries = if i.is_multiple_of(5) { 2 } else { 1 };
        for _ in 0..tries {
            send_order(&mut written, &touser, &key, &payload)?;
        }
        i += 1;
        rss.sample();
    }
    written.finish(&rss)
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

/// A worker's summary line: its counts, and whether its memory stayed flat.
fn read_summary(cols: &[&str], idx: usize, tally: &mut Tally) {
    let n: Vec<u64> = cols[1..].iter().map(|v| v.parse().unwrap_or(0)).collect();
    let [added, calls, warm, max, end, slowest] = n[..] else {
        tally
            .problems
            .push(format!("worker {idx}: bad summary {cols:?}"));
        return;
    };
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
}

/// One send's line: counted, and checked against the key's earlier sends
/// (`seen`: a key that was sent or maybe sent).
fn read_send(
    (key, status, ostatus, errcode): (&str, i32, &str, i64),
    seen: &mut HashMap<String, &'static str>,
    tally: &mut Tally,
) {
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
        // The buyer's subscription was gone: the use is spent.
        "failed" if policy_for(errcode) == Policy::Refused => {
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
    match ostatus {
        "sent" => seen.insert(key.to_string(), "sent"),
        "uncertain" => seen.insert(key.to_string(), "uncertain"),
        _ => None,
    };
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
            read_summary(&cols, idx, tally);
            continue;
        }
        let [key, status, ostatus, errcode] = cols[..] else {
            tally
                .problems
                .push(format!("worker {idx}: bad line {line:?}"));
            continue;
        };
        let status = status.parse().unwrap_or(-1);
        let errcode = errcode.parse().unwrap_or(0);
        read_send((key, status, ostatus, errcode), &mut seen, tally);
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

/// What a soak run sets up: the store (a Redis server of its own, kept until
/// the end of the run: it stops when dropped), the sandbox with its faults,
/// and the ledger's grants before the workers start.
struct World {
    _redis: Option<redis_server::RedisServer>,
    store: String,
    sb: Sandbox,
    owner: Notifier,
    initial: u64,
    stock_before: u64,
}

fn start(dir: &Path, procs: usize, secs: u64, kind: &str) -> Result<World, String> {
    let redis = (kind == "redis").then(redis_server::RedisServer::start);
    let store = match &redis {
        Some(server) => server.spec("soak"),
        None => format!("sqlite:{}", dir.join("ledger.db").display()),
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
    Ok(World {
        _redis: redis,
        store,
        sb,
        owner,
        initial,
        stock_before,
    })
}

/// Starts the worker processes, waits for them and reads what they wrote.
fn run_workers(w: &World, dir: &Path, procs: usize, secs: u64) -> Result<Tally, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let results: Vec<PathBuf> = (0..procs)
        .map(|i| dir.join(format!("worker-{i}.tsv")))
        .collect();
    let children: Vec<_> = (0..procs)
        .map(|i| {
            Command::new(&exe)
                .args(["worker", &i.to_string(), &w.sb.url()])
                .arg(&w.store)
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
    w.sb.clear_faults();
    println!("workers:");
    for (i, r) in results.iter().enumerate() {
        read_worker(r, i, &mut tally);
    }
    Ok(tally)
}

/// What the ledger, the sandbox and the workers' logs say at the end.
struct Figures {
    stock_after: u64,
    leased: u64,
    consumed: i128,
    sent: u64,
    delivered: u64,
    keys: usize,
    delivered_twice: usize,
    uncertain_delivered: u64,
    sent_missing: u64,
    delivered_unclaimed: u64,
    log_lines: usize,
    leaked: Vec<String>,
}

fn figures(w: &World, dir: &Path, procs: usize, tally: &Tally) -> Figures {
    let (stock_after, leased) = stock(&w.owner);
    let log_lines: usize = (0..procs)
        .map(|i| {
            std::fs::read_to_string(dir.join(format!("worker-{i}.log")))
                .map_or(0, |t| t.lines().count())
        })
        .sum();
    let delivered = w.sb.all_delivered();
    let mut per_key: HashMap<String, u64> = HashMap::new();
    for m in &delivered {
        let key = m.data["character_string1"]["value"].as_str().unwrap_or("?");
        *per_key.entry(key.to_string()).or_default() += 1;
    }
    let mut f = Figures {
        stock_after,
        leased,
        consumed: (w.stock_before + tally.added).saturating_sub(stock_after + leased) as i128,
        sent: tally.by_status.get("0/sent").copied().unwrap_or(0),
        delivered: delivered.len() as u64,
        keys: per_key.len(),
        delivered_twice: per_key.values().filter(|n| **n > 1).count(),
        uncertain_delivered: 0,
        sent_missing: 0,
        delivered_unclaimed: 0,
        log_lines,
        leaked: leaks(dir),
    };
    for (key, (sent, uncertain)) in &tally.keys {
        let got = per_key.get(key).copied().unwrap_or(0);
        f.sent_missing += u64::from(*sent && got == 0);
        f.uncertain_delivered += u64::from(!*sent && *uncertain && got > 0);
        f.delivered_unclaimed += u64::from(got > 0 && !*sent && !*uncertain);
    }
    f
}

fn report(w: &World, f: &Figures, tally: &Tally) {
    let counters = w.sb.counters();
    println!("calls answered: {} ({:?})", tally.calls, tally.by_status);
    println!(
        "sandbox: {} requests, {} send attempts, {} faults fired, errors {:?}, http errors {:?}",
        counters.requests,
        counters.send_attempts,
        counters.faults_fired,
        counters.errors,
        counters.http_errors
    );
    println!(
        "permits: {} granted at start + {} refilled; {} left, {} still leased",
        w.initial, tally.added, f.stock_after, f.leased
    );
}

/// The ledger's accounts: every use spent once, every delivery accounted for.
fn accounts(f: &Figures, tally: &Tally) -> Vec<(String, bool)> {
    let (consumed, delivered, sent) = (f.consumed, f.delivered, f.sent);
    vec![
        (
            format!("every call answered with a status of the ABI, never INTERNAL ({} calls)", tally.calls),
            tally.calls > 0 && !tally.problems.iter().any(|p| p.contains("status")),
        ),
        (format!("no permit left leased at the end ({})", f.leased), f.leased == 0),
        (
            format!(
                "permits consumed by the ledger ({consumed}) = sent ({sent}) + uncertain ({}) + refused 43101 ({}): no use spent twice or lost",
                tally.uncertain, tally.refused
            ),
            consumed == tally.spent as i128,
        ),
        (
            format!(
                "delivered by the sandbox ({delivered}) = sent ({sent}) + uncertain that arrived ({}) <= consumed ({consumed})",
                f.uncertain_delivered
            ),
            delivered == sent + f.uncertain_delivered && (delivered as i128) <= consumed,
        ),
        (
            format!(
                "consumed - delivered ({}) = uncertain that did not arrive ({}) + refused ({})",
                consumed - delivered as i128,
                tally.uncertain - f.uncertain_delivered,
                tally.refused
            ),
            consumed - delivered as i128
                == (tally.uncertain - f.uncertain_delivered + tally.refused) as i128,
        ),
    ]
}

/// What a shop sees: no message twice, none lost, no growth, no secret.
fn behaviour(f: &Figures, tally: &Tally) -> Vec<(String, bool)> {
    let problem = |needles: &[&str]| {
        tally
            .problems
            .iter()
            .any(|p| needles.iter().any(|n| p.contains(n)))
    };
    vec![
        (
            format!("no idempotency key delivered twice ({} keys, {} delivered twice)", f.keys, f.delivered_twice),
            f.delivered_twice == 0,
        ),
        (
            format!(
                "every sent key was delivered ({} missing); nothing delivered that the library called failed ({})",
                f.sent_missing, f.delivered_unclaimed
            ),
            f.sent_missing == 0 && f.delivered_unclaimed == 0,
        ),
        (
            format!("a retried order after sent/uncertain is a duplicate ({} duplicates)", tally.duplicates_resent),
            !problem(&["sent again", "duplicate without"]),
        ),
        (
            "RSS of every worker flat after warm-up (within 5%)".to_string(),
            !problem(&["RSS", "summary"]),
        ),
        (
            format!(
                "no secret or token in {} structured log lines, the error messages and the results ({} hits)",
                f.log_lines,
                f.leaked.len()
            ),
            f.log_lines > 0 && f.leaked.is_empty(),
        ),
    ]
}

fn run(secs: u64, procs: usize, kind: &str) -> Result<bool, String> {
    let dir = std::env::temp_dir().join(format!("fashop-notify-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let world = start(&dir, procs, secs, kind)?;
    let tally = run_workers(&world, &dir, procs, secs)?;
    let f = figures(&world, &dir, procs, &tally);
    report(&world, &f, &tally);
    println!("invariants:");
    let mut ok = tally.problems.is_empty();
    for (name, holds) in accounts(&f, &tally)
        .into_iter()
        .chain(behaviour(&f, &tally))
    {
        println!("  [{}] {name}", if holds { "ok" } else { "FAILED" });
        ok &= holds;
    }
    for l in f.leaked.iter().take(10) {
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
