//! Access tokens against the WeChat sandbox over real HTTP: single-flight and
//! refresh counted by the sandbox, token-error recovery, transport failures
//! and recovery, redaction at the C boundary and in log output, and several
//! processes sharing one app for a simulated day (each on its own, and through
//! a shared SQLite or Redis store).

use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use fashop_notify::{Error, ManualClock, Notifier, FETCH_BACKOFF_MS};
use fashop_notify_sandbox::{Fault, Sandbox, SandboxOptions};

use crate::redis_server;
use crate::store_suite;

const APPID: &str = "wxdemo0000000001";
const SECRET: &str = "demo-app-secret-0001";
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const LIFETIME: i64 = 7200;
/// The workers' `token_margin_secs` (the default).
const MARGIN: i64 = 300;

/// A sandbox with a manual clock at T0, and a notifier whose clock stands there too.
fn setup(mode: &str) -> (Sandbox, Notifier, Arc<ManualClock>) {
    let sandbox = Sandbox::start_with(SandboxOptions {
        clock_start: Some(T0),
        ..SandboxOptions::default()
    });
    let clock = Arc::new(ManualClock::at(T0));
    let n = Notifier::with_clock(clock.clone());
    n.configure(r#"{"timeout_ms": 2000, "token_margin_secs": 300}"#)
        .unwrap();
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"{mode}","api_base":"{}"}}"#,
        sandbox.url()
    ))
    .unwrap();
    (sandbox, n, clock)
}

/// Moves both clocks.
fn advance(sandbox: &Sandbox, clock: &ManualClock, secs: i64) {
    sandbox.advance_clock(secs);
    clock.advance_secs(secs);
}

fn stable_fetches(sandbox: &Sandbox) -> u64 {
    sandbox.counters().token_fetches(APPID, "stable_token")
}

fn gettemplate(n: &Notifier) -> fashop_notify::Result<String> {
    n.call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None)
}

#[test]
fn sixty_four_threads_make_one_fetch_and_the_margin_one_more() {
    let (sandbox, n, clock) = setup("stable");
    // A slow token endpoint, so that all threads ask while the fetch is out.
    sandbox.inject(Fault::on("/cgi-bin/stable_token").latency_ms(300).count(1));
    let n = Arc::new(n);
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (n, barrier) = (n.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                n.access_token(APPID).unwrap().expose().to_string()
            })
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(stable_fetches(&sandbox), 1);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    let first = tokens[0].clone();

    advance(&sandbox, &clock, LIFETIME - 300 - 1);
    gettemplate(&n).unwrap();
    assert_eq!(stable_fetches(&sandbox), 1);
    advance(&sandbox, &clock, 2);
    for _ in 0..10 {
        gettemplate(&n).unwrap();
    }
    assert_eq!(stable_fetches(&sandbox), 2);
    // In a token's last 300 s stable_token hands out the next one.
    let second = n.access_token(APPID).unwrap().expose().to_string();
    assert_ne!(second, first);
    advance(&sandbox, &clock, LIFETIME - 300 - 1);
    gettemplate(&n).unwrap();
    assert_eq!(stable_fetches(&sandbox), 2);
    advance(&sandbox, &clock, 2);
    assert_ne!(n.access_token(APPID).unwrap().expose(), second);
    assert_eq!(stable_fetches(&sandbox), 3);
    assert_eq!(sandbox.counters().errors(40001), 0);
    assert_eq!(sandbox.counters().errors(42001), 0);
}

/// A margin longer than WeChat's 300 s asks while stable_token still hands
/// back the same token: that token is then kept to its end, not asked for
/// again at every call.
#[test]
fn a_stable_token_handed_back_unchanged_is_kept_to_its_end() {
    let (sandbox, n, clock) = setup("stable");
    n.configure(r#"{"token_margin_secs": 900}"#).unwrap();
    let first = n.access_token(APPID).unwrap().expose().to_string();
    advance(&sandbox, &clock, LIFETIME - 900);
    for _ in 0..10 {
        gettemplate(&n).unwrap();
    }
    assert_eq!(stable_fetches(&sandbox), 2);
    assert_eq!(n.access_token(APPID).unwrap().expose(), first);
    advance(&sandbox, &clock, 899);
    gettemplate(&n).unwrap();
    assert_eq!(stable_fetches(&sandbox), 2, "kept to its end");
    advance(&sandbox, &clock, 1);
    assert_ne!(n.access_token(APPID).unwrap().expose(), first);
    assert_eq!(stable_fetches(&sandbox), 3);
    assert_eq!(sandbox.counters().errors(40001), 0);
}

#[test]
fn classic_mode_fetches_from_the_classic_endpoint() {
    let (sandbox, n, _) = setup("classic");
    let t = n.access_token(APPID).unwrap();
    gettemplate(&n).unwrap();
    assert_eq!(n.access_token(APPID).unwrap(), t);
    let c = sandbox.counters();
    assert_eq!(c.token_fetches(APPID, "token"), 1);
    assert_eq!(c.token_fetches(APPID, "stable_token"), 0);
}

#[test]
fn one_token_error_means_one_refresh_and_success() {
    for errcode in [40001, 40014, 42001] {
        let (sandbox, n, _) = setup("stable");
        n.access_token(APPID).unwrap();
        sandbox.inject(
            Fault::on("/wxaapi/newtmpl/gettemplate")
                .errcode(errcode)
                .count(1),
        );
        let body = gettemplate(&n).unwrap();
        assert!(body.contains("\"errcode\":0"), "{body}");
        assert_eq!(stable_fetches(&sandbox), 2);
        assert_eq!(sandbox.counters().errors(errcode), 1);
        assert_eq!(n.token_stats(APPID).unwrap().recovered, 1);
    }
}

#[test]
fn a_persistent_token_error_is_retried_exactly_once() {
    let (sandbox, n, _) = setup("stable");
    sandbox.inject(Fault::on("/wxaapi/newtmpl/gettemplate").errcode(40001));
    let (r, body) = n.call_api_reply(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None);
    let e = r.unwrap_err();
    assert_eq!(e.errcode(), Some(40001), "{e}");
    assert!(body.unwrap().contains("40001"));
    let c = sandbox.counters();
    assert_eq!(c.errors(40001), 2, "one call and exactly one retry");
    assert_eq!(c.token_fetches(APPID, "stable_token"), 2);
    sandbox.clear_faults();
    gettemplate(&n).unwrap();
}

/// Token fetch failures: NETWORK_ERROR or WECHAT_ERROR with a clear message,
/// no hammering within the backoff window, and recovery afterwards.
#[test]
fn token_endpoint_failures_are_clear_and_recover() {
    let (sandbox, n, clock) = setup("stable");
    n.configure(r#"{"timeout_ms": 300}"#).unwrap();
    let cases: Vec<(Fault, &str)> = vec![
        (
            Fault::on("/cgi-bin/stable_token").http_status(503),
            "WeChat answered HTTP 503",
        ),
        (
            Fault::on("/cgi-bin/stable_token").malformed_body(),
            "malformed JSON",
        ),
        (
            Fault::on("/cgi-bin/stable_token").latency_ms(1500),
            "timed out waiting for the answer",
        ),
        (
            Fault::on("/cgi-bin/stable_token").close_before_answer(),
            "/cgi-bin/stable_token",
        ),
        (Fault::on("/cgi-bin/stable_token").errcode(-1), "errcode -1"),
    ];
    for (fault, needle) in cases {
        sandbox.clear_faults();
        sandbox.inject(fault);
        let before = stable_fetches(&sandbox);
        let e = n.access_token(APPID).unwrap_err();
        assert!(
            matches!(e, Error::Network(_) | Error::WeChat { .. }),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(msg.contains(needle), "{msg}");
        assert!(msg.contains("access token of wxdemo0000000001"), "{msg}");
        assert!(msg.contains("token_mode stable"), "{msg}");
        assert!(!msg.contains(SECRET), "{msg}");
        // Within the backoff window: the same error, no request.
        assert_eq!(n.access_token(APPID).unwrap_err(), e);
        assert_eq!(stable_fetches(&sandbox), before + 1);
        sandbox.clear_faults();
        clock.advance_ms(FETCH_BACKOFF_MS);
        let t = n.access_token(APPID).unwrap();
        assert!(!t.expose().is_empty());
        assert!(n.invalidate_token(APPID, t.expose()).unwrap());
    }
}

#[test]
fn token_fetch_failures_back_off_by_errcode_and_say_what_to_do() {
    // T0 is 08:00 in China: the daily quota comes back in 16 hours.
    let cases: &[(i64, i64, &str)] = &[
        (45009, 16 * 3600, "until midnight China time"),
        // Seconds at first (a person fixing the whitelist must not wait ten
        // minutes), doubling with each failure in a row.
        (40164, 5, "IP whitelist"),
        (89503, 5, "admin must approve"),
        (89506, 24 * 3600, "retry after 24 hours"),
        (89507, 3600, "retry after 1 hour"),
    ];
    for &(errcode, pause_secs, advice) in cases {
        let (sandbox, n, clock) = setup("stable");
        sandbox.inject(Fault::on("/cgi-bin/stable_token").errcode(errcode));
        let e = n.access_token(APPID).unwrap_err();
        assert_eq!(e.errcode(), Some(errcode));
        let msg = e.to_string();
        assert!(msg.contains(advice), "{errcode}: {msg}");
        clock.advance_secs(pause_secs - 1);
        assert_eq!(n.access_token(APPID).unwrap_err(), e);
        assert_eq!(stable_fetches(&sandbox), 1, "{errcode}");
        sandbox.clear_faults();
        clock.advance_secs(1);
        n.access_token(APPID).unwrap();
        assert_eq!(stable_fetches(&sandbox), 2, "{errcode}");
    }
    // Wrong credentials stop fetches until the app is registered again.
    for errcode in [40013, 40125] {
        let (sandbox, n, clock) = setup("stable");
        sandbox.inject(Fault::on("/cgi-bin/stable_token").errcode(errcode));
        let e = n.access_token(APPID).unwrap_err();
        assert!(e.to_string().contains("registered again"), "{e}");
        sandbox.clear_faults();
        clock.advance_secs(30 * 86_400);
        assert_eq!(n.access_token(APPID).unwrap_err(), e);
        assert_eq!(stable_fetches(&sandbox), 1);
        n.register_app(&format!(
            r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"classic","api_base":"{}"}}"#,
            sandbox.url()
        ))
        .unwrap();
        n.access_token(APPID).unwrap();
    }
}

#[test]
fn call_failures_say_whether_wechat_may_have_acted() {
    let (sandbox, n, _) = setup("stable");
    n.configure(r#"{"timeout_ms": 300}"#).unwrap();
    n.access_token(APPID).unwrap();
    let path = "/wxaapi/newtmpl/gettemplate";
    let network = |e: &Error, needle: &str| {
        assert!(
            matches!(e, Error::Network(m) if m.contains(needle)),
            "{e:?}"
        );
    };

    sandbox.inject(Fault::on(path).http_status(502).count(1));
    network(&gettemplate(&n).unwrap_err(), "WeChat answered HTTP 502");
    sandbox.inject(Fault::on(path).malformed_body().count(1));
    network(&gettemplate(&n).unwrap_err(), "malformed JSON");
    sandbox.inject(Fault::on(path).latency_ms(1500).count(1));
    let e = gettemplate(&n).unwrap_err();
    assert!(
        matches!(&e, Error::Uncertain(m) if m.contains("timed out waiting for the answer") && m.contains("may have received it")),
        "{e:?}"
    );
    sandbox.inject(Fault::on(path).close_after_read().count(1));
    let e = gettemplate(&n).unwrap_err();
    assert!(
        matches!(&e, Error::Uncertain(m) if m.contains("may have received it")),
        "{e:?}"
    );
    // After each: the next call works.
    gettemplate(&n).unwrap();
    assert_eq!(stable_fetches(&sandbox), 1);
}

#[test]
fn sandbox_down_then_back() {
    // A port nothing listens on, until the sandbox starts there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let clock = Arc::new(ManualClock::at(T0));
    let n = Notifier::with_clock(clock.clone());
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"{SECRET}","api_base":"http://127.0.0.1:{port}"}}"#
    ))
    .unwrap();
    let e = n.access_token(APPID).unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("connection refused")),
        "{e:?}"
    );
    assert!(e.to_string().contains(&format!(
        "POST http://127.0.0.1:{port}/cgi-bin/stable_token"
    )));
    let e = n
        .call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None)
        .unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("connection refused")),
        "{e:?}"
    );
    let sandbox = Sandbox::start_with(SandboxOptions {
        port,
        clock_start: Some(T0),
        ..SandboxOptions::default()
    });
    assert!(n.access_token(APPID).is_err(), "within the backoff window");
    assert_eq!(stable_fetches(&sandbox), 0);
    clock.advance_ms(FETCH_BACKOFF_MS);
    gettemplate(&n).unwrap();
    assert_eq!(stable_fetches(&sandbox), 1);
}

// ---------------------------------------------------------------------------
// the C boundary and log output

extern "C" {
    fn fashop_notify_configure(config_json: *const c_char) -> i32;
    fn fashop_notify_register_app(app_json: *const c_char) -> i32;
    fn fashop_notify_access_token(appid: *const c_char, out: *mut *mut c_char) -> i32;
    fn fashop_notify_invalidate_token(appid: *const c_char, token: *const c_char) -> i32;
    fn fashop_notify_set_access_token(
        appid: *const c_char,
        token: *const c_char,
        expires_in_secs: i64,
    ) -> i32;
    fn fashop_notify_call_api(
        appid: *const c_char,
        method: *const c_char,
        path: *const c_char,
        body: *const c_char,
        out: *mut *mut c_char,
    ) -> i32;
    fn fashop_notify_last_error() -> *const c_char;
    fn fashop_notify_string_free(s: *mut c_char);
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Status, out text and last_error of one call through the C ABI.
fn c_call(f: impl FnOnce(*mut *mut c_char) -> i32) -> (i32, Option<String>, String) {
    let mut out: *mut c_char = std::ptr::null_mut();
    let status = f(&mut out);
    // SAFETY: last_error is valid until the next call on this thread.
    let last = unsafe { CStr::from_ptr(fashop_notify_last_error()) }
        .to_string_lossy()
        .into_owned();
    let text = (!out.is_null()).then(|| {
        // SAFETY: written by the library, NUL-terminated, freed once below.
        let t = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: from the library, not freed before.
        unsafe { fashop_notify_string_free(out) };
        t
    });
    (status, text, last)
}

struct Capture(parking_lot::Mutex<Vec<String>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        self.0.lock().push(format!(
            "{} {}: {}",
            record.level(),
            record.target(),
            record.args()
        ));
    }
    fn flush(&self) {}
}

/// Every error path through the C ABI with the sandbox's known secret and the
/// token it hands out: neither may appear in last_error, an out string that is
/// not the token itself, or any log record (at the most verbose level).
#[test]
fn secret_and_token_never_reach_last_error_or_logs() {
    static LOGS: once_cell::sync::Lazy<&'static Capture> = once_cell::sync::Lazy::new(|| {
        Box::leak(Box::new(Capture(parking_lot::Mutex::new(Vec::new()))))
    });
    log::set_logger(*LOGS).unwrap();
    log::set_max_level(log::LevelFilter::Trace);

    let sandbox = Sandbox::start();
    let appid = c(APPID);
    let cfg = c(r#"{"timeout_ms": 300}"#);
    let register = |mode: &str| {
        let app = c(&format!(
            r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"{mode}","api_base":"{}"}}"#,
            sandbox.url()
        ));
        // SAFETY: NUL-terminated strings alive for the call.
        assert_eq!(unsafe { fashop_notify_register_app(app.as_ptr()) }, 0);
    };
    // SAFETY: as above.
    assert_eq!(unsafe { fashop_notify_configure(cfg.as_ptr()) }, 0);
    register("classic");
    // SAFETY: valid arguments; out handled by c_call.
    let (st, token, _) = c_call(|out| unsafe { fashop_notify_access_token(appid.as_ptr(), out) });
    assert_eq!(st, 0);
    let token = token.unwrap();

    let mut seen: Vec<(i32, Option<String>, String)> = Vec::new();
    let get = c("GET");
    let post = c("POST");
    let call = |method: &CString, path: &str, body: Option<&str>| {
        let path = c(path);
        let body = body.map(c);
        // SAFETY: NUL-terminated strings alive for the call.
        c_call(|out| unsafe {
            fashop_notify_call_api(
                appid.as_ptr(),
                method.as_ptr(),
                path.as_ptr(),
                body.as_ref().map_or(std::ptr::null(), |b| b.as_ptr()),
                out,
            )
        })
    };
    for fault in [
        Fault::on("/wxaapi/newtmpl/gettemplate").errcode(40001),
        Fault::on("/wxaapi/newtmpl/gettemplate")
            .errcode(42001)
            .count(1),
        Fault::on("/wxaapi/newtmpl/gettemplate").http_status(500),
        Fault::on("/wxaapi/newtmpl/gettemplate").malformed_body(),
        Fault::on("/wxaapi/newtmpl/gettemplate").latency_ms(1000),
        Fault::on("/wxaapi/newtmpl/gettemplate").close_after_read(),
    ] {
        sandbox.clear_faults();
        sandbox.inject(fault);
        seen.push(call(&get, "/wxaapi/newtmpl/gettemplate", None));
    }
    sandbox.clear_faults();
    seen.push(call(
        &post,
        "/wxaapi/newtmpl/deltemplate",
        Some(r#"{"priTmplId":"none"}"#),
    ));
    seen.push(call(&post, "/x?access_token=abc", None));
    seen.push(call(&get, "/wxaapi/newtmpl/gettemplate", Some("{}")));

    // Token endpoint failures in both modes, and a wrong secret.
    for mode in ["stable", "classic"] {
        for fault in [
            Fault::on("/cgi-bin/*").http_status(503),
            Fault::on("/cgi-bin/*").malformed_body(),
            Fault::on("/cgi-bin/*").latency_ms(1000),
            Fault::on("/cgi-bin/*").close_before_answer(),
            Fault::on("/cgi-bin/*").errcode(40013),
        ] {
            // A new secret each time drops the cached token and the backoff.
            let other = c(&format!(
                r#"{{"appid":"{APPID}","secret":"{SECRET}-{}","token_mode":"{mode}","api_base":"{}"}}"#,
                seen.len(),
                sandbox.url()
            ));
            // SAFETY: NUL-terminated string alive for the call.
            assert_eq!(unsafe { fashop_notify_register_app(other.as_ptr()) }, 0);
            sandbox.clear_faults();
            sandbox.inject(fault);
            // SAFETY: valid arguments; out handled by c_call.
            seen.push(c_call(|out| unsafe {
                fashop_notify_access_token(appid.as_ptr(), out)
            }));
        }
        sandbox.clear_faults();
        register(mode);
        // SAFETY: valid arguments; out handled by c_call.
        let (st, _, _) = c_call(|out| unsafe { fashop_notify_access_token(appid.as_ptr(), out) });
        assert_eq!(st, 0);
    }

    // External mode: a supplied token WeChat refuses, bad supplied tokens.
    const EXT_TOKEN: &str = "EXT-TOKEN-redaction-check";
    let ext = c("wxredactext00001");
    let ext_app = c(&format!(
        r#"{{"appid":"wxredactext00001","token_mode":"external","api_base":"{}"}}"#,
        sandbox.url()
    ));
    // SAFETY: NUL-terminated strings alive for the calls.
    unsafe {
        assert_eq!(fashop_notify_register_app(ext_app.as_ptr()), 0);
        let t = c(EXT_TOKEN);
        assert_eq!(
            fashop_notify_set_access_token(ext.as_ptr(), t.as_ptr(), 60),
            0
        );
        let bad = c(&format!("{token} {SECRET}"));
        seen.push(c_call(|_| {
            fashop_notify_set_access_token(ext.as_ptr(), bad.as_ptr(), 60)
        }));
        seen.push(c_call(|_| {
            fashop_notify_invalidate_token(ext.as_ptr(), bad.as_ptr())
        }));
        let path = c("/wxaapi/newtmpl/gettemplate");
        seen.push(c_call(|out| {
            fashop_notify_call_api(
                ext.as_ptr(),
                get.as_ptr(),
                path.as_ptr(),
                std::ptr::null(),
                out,
            )
        }));
    }

    let failures = seen.iter().filter(|(st, _, _)| *st != 0).count();
    assert!(failures >= 20, "{failures} failures");
    for (st, out, last) in &seen {
        for text in [last, out.as_ref().unwrap_or(&String::new())] {
            assert!(!text.contains(SECRET), "secret in {st}: {text}");
            assert!(!text.contains(&token), "token in {st}: {text}");
            assert!(!text.contains(EXT_TOKEN), "supplied token in {st}: {text}");
        }
    }
    let statuses: Vec<i32> = seen.iter().map(|s| s.0).collect();
    for wanted in [1, 2, 5, 6, 7] {
        assert!(
            statuses.contains(&wanted),
            "no status {wanted} in {statuses:?}"
        );
    }
    let logs = LOGS.0.lock();
    for line in logs.iter() {
        assert!(!line.contains(SECRET), "secret in log: {line}");
        assert!(!line.contains(&token), "token in log: {line}");
        assert!(!line.contains("access_token="), "token URL in log: {line}");
    }
}

// ---------------------------------------------------------------------------
// several processes

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(sandbox: &Sandbox, mode: &str, store: &str) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fashop-notify-token-worker"))
            .args([
                "--api-base",
                &sandbox.url(),
                "--appid",
                APPID,
                "--secret",
                SECRET,
            ])
            .args(["--mode", mode, "--clock-start", &T0.to_string()])
            .args(["--store", store])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the token worker");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Worker {
            child,
            stdin,
            stdout,
        }
    }

    fn send(&mut self, commands: &str) {
        self.stdin.write_all(commands.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn answer(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the worker ended");
        line.trim_end().to_string()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
struct Day {
    calls: usize,
    failed: Vec<String>,
    fetches: u64,
    distinct_tokens: usize,
    errors_40001: u64,
    recovered: u64,
    per_worker_fetches: Vec<u64>,
    adopted: u64,
}

/// Simulated seconds between two calls of each process.
const STEP: i64 = 180;

/// 8 processes share one app for a day: every `step` seconds each makes one call.
fn simulate_day(mode: &str, step: i64, store: &str) -> Day {
    let sandbox = Sandbox::start_with(SandboxOptions {
        clock_start: Some(T0),
        ..SandboxOptions::default()
    });
    let mut workers: Vec<Worker> = (0..8)
        .map(|_| Worker::start(&sandbox, mode, store))
        .collect();
    let mut tokens = std::collections::HashSet::new();
    let mut failed = Vec::new();
    let calls = AtomicUsize::new(0);
    let mut record = |t: i64, w: &mut Worker| {
        assert_eq!(w.answer(), "ok");
        let a = w.answer();
        calls.fetch_add(1, Ordering::Relaxed);
        match a.strip_prefix("ok ") {
            Some(hash) => {
                tokens.insert(hash.to_string());
            }
            None => failed.push(format!("t={t}: {a}")),
        }
    };
    // The first calls open the connections one after another: tiny_http,
    // under the sandbox, can lose the wake-up of one of a burst of new
    // connections, which then waits for a free thread (seconds).
    for w in &mut workers {
        w.send("advance 0\ncall\n");
        record(0, w);
    }
    let mut t = step;
    while t < 86_400 {
        sandbox.advance_clock(step);
        for w in &mut workers {
            w.send(&format!("advance {step}\ncall\n"));
        }
        for w in &mut workers {
            record(t, w);
        }
        t += step;
    }
    let mut recovered = 0;
    let mut adopted = 0;
    let mut per_worker_fetches = Vec::new();
    for w in &mut workers {
        w.send("stats\n");
        let a = w.answer();
        let parts: Vec<u64> = a
            .strip_prefix("stats ")
            .unwrap_or_else(|| panic!("{a}"))
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        per_worker_fetches.push(parts[0]);
        recovered += parts[1];
        adopted += parts[2];
    }
    let counters = sandbox.counters();
    Day {
        calls: calls.into_inner(),
        failed,
        fetches: counters.token_fetches_total(APPID),
        distinct_tokens: tokens.len(),
        errors_40001: counters.errors(40001),
        recovered,
        per_worker_fetches,
        adopted,
    }
}

#[test]
fn eight_processes_share_one_stable_token_per_lifetime() {
    let day = simulate_day("stable", STEP, "memory");
    eprintln!("stable day: {day:?}");
    let lifetimes = tokens_in_a_day();
    assert_eq!(day.calls, 8 * (86_400 / STEP) as usize);
    assert!(day.failed.is_empty(), "{:?}", day.failed);
    assert_eq!(
        day.distinct_tokens as u64, lifetimes,
        "one token per lifetime for all 8 processes"
    );
    assert_eq!(day.errors_40001, 0);
    assert_eq!(day.recovered, 0);
    // Without a shared store each process fetches every token once itself:
    // 8 times the requests of a shared store, none of them harmful.
    assert_eq!(day.per_worker_fetches, vec![lifetimes; 8]);
    assert_eq!(day.fetches, 8 * lifetimes);
}

#[test]
fn eight_processes_in_classic_mode_knock_each_other_out_but_every_call_succeeds() {
    let day = simulate_day("classic", STEP, "memory");
    eprintln!("classic day: {day:?}");
    let lifetimes = (86_400 / LIFETIME) as usize;
    assert_eq!(day.calls, 8 * (86_400 / STEP) as usize);
    assert!(day.failed.is_empty(), "{:?}", day.failed);
    assert!(
        day.distinct_tokens > 8 * lifetimes,
        "{}",
        day.distinct_tokens
    );
    assert!(day.errors_40001 > 0);
    assert_eq!(
        day.recovered, day.errors_40001,
        "every refused call recovered"
    );
    assert_eq!(day.fetches, day.per_worker_fetches.iter().sum::<u64>());
    assert!(day.fetches > 2 * 8 * lifetimes as u64, "{}", day.fetches);
}

/// The tokens a day needs when each is replaced at the refresh margin: a
/// call every `STEP` s from 0, a token fetched at the first call at or after
/// `fetched + LIFETIME - MARGIN` (WeChat hands out the next stable token in
/// the old one's last 300 s, so the margin refresh brings a new token).
fn tokens_in_a_day() -> u64 {
    let (mut fetched, mut tokens) = (0, 1);
    loop {
        let refresh_at = fetched + LIFETIME - MARGIN;
        let call = (refresh_at + STEP - 1) / STEP * STEP;
        if call >= 86_400 {
            return tokens;
        }
        fetched = call;
        tokens += 1;
    }
}

/// Through a shared store the 8 processes fetch as one: one request per token
/// lifetime, each bringing a new token, whatever the process count; every
/// other process adopts the token from the store.
fn shared_stable_day(store: &str) {
    let day = simulate_day("stable", STEP, store);
    eprintln!("stable day on {store}: {day:?}");
    let lifetimes = tokens_in_a_day();
    assert_eq!(day.calls, 8 * (86_400 / STEP) as usize);
    assert!(day.failed.is_empty(), "{:?}", day.failed);
    assert_eq!(day.distinct_tokens as u64, lifetimes);
    assert_eq!(
        day.fetches, lifetimes,
        "one fetch per token lifetime; per worker {:?}",
        day.per_worker_fetches
    );
    assert_eq!(day.fetches, day.per_worker_fetches.iter().sum::<u64>());
    assert_eq!((day.errors_40001, day.recovered), (0, 0));
    // Every process but the fetching one adopts each new token.
    assert!(day.adopted >= 7 * (lifetimes - 1), "{}", day.adopted);
}

#[test]
fn eight_processes_on_one_sqlite_store_fetch_once_per_lifetime() {
    let dir = store_suite::TempDir::new("token-day");
    shared_stable_day(&format!("sqlite:{}", dir.file("ledger.db")));
}

#[test]
fn eight_processes_on_one_redis_store_fetch_once_per_lifetime() {
    let server = redis_server::RedisServer::start();
    shared_stable_day(&server.spec("token-day"));
}

/// Classic tokens through a shared store: one token for all processes, so
/// nobody knocks anybody out; one fetch per refresh.
#[test]
fn eight_processes_in_classic_mode_on_one_sqlite_store_share_one_token() {
    let dir = store_suite::TempDir::new("token-classic-day");
    let day = simulate_day(
        "classic",
        STEP,
        &format!("sqlite:{}", dir.file("ledger.db")),
    );
    eprintln!("classic day on sqlite: {day:?}");
    assert!(day.failed.is_empty(), "{:?}", day.failed);
    assert_eq!((day.errors_40001, day.recovered), (0, 0));
    // Refreshed at the margin: every (LIFETIME - 300) s, rounded up to a call.
    let refresh_every = (LIFETIME - 300 + STEP - 1) / STEP * STEP;
    let expected = (86_400 + refresh_every - 1) / refresh_every;
    assert_eq!(day.fetches, expected as u64);
    assert_eq!(day.distinct_tokens as u64, day.fetches);
}
