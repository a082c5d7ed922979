//! Access token behaviour through the in-memory transport: single-flight,
//! refresh before expiry, backoff, conditional invalidate, external mode, the
//! token-error retry and redaction. Time moves only through a ManualClock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use fashop_notify::{
    Error, HttpReply, HttpRequest, ManualClock, MemoryTransport, Method, Notifier, TransportError,
    FETCH_BACKOFF_MS,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

const APPID: &str = "wx00000000000000a1";
const SECRET: &str = "SECRET-memory-7f3a9c";
const T0: i64 = 1_700_000_000;

fn notifier(clock: &Arc<ManualClock>, mode: &str) -> Notifier {
    notifier_logging(clock, mode, None)
}

/// A notifier for the fake WeChat; with `log`, its structured log goes there.
fn notifier_logging(clock: &Arc<ManualClock>, mode: &str, log: Option<&str>) -> Notifier {
    let n = Notifier::with_clock(clock.clone());
    n.configure(r#"{"api_base":"http://wechat.test","token_margin_secs":300}"#)
        .unwrap();
    if let Some(path) = log {
        n.configure(&json!({"log": {"path": path, "level": "debug"}}).to_string())
            .unwrap();
    }
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"{mode}"}}"#
    ))
    .unwrap();
    n
}

fn token_reply(token: &str) -> Result<HttpReply, TransportError> {
    Ok(HttpReply::json(
        &json!({"access_token": token, "expires_in": 7200}),
    ))
}

fn ok_reply() -> Result<HttpReply, TransportError> {
    Ok(HttpReply::json(
        &json!({"errcode": 0, "errmsg": "ok", "data": []}),
    ))
}

fn is_token_fetch(req: &HttpRequest) -> bool {
    matches!(req.route(), "/cgi-bin/stable_token" | "/cgi-bin/token")
}

/// Numbered tokens, one per fetch.
fn minting(counter: &Arc<AtomicUsize>, req: &HttpRequest) -> Result<HttpReply, TransportError> {
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    assert!(is_token_fetch(req), "unexpected {req:?}");
    token_reply(&format!("TOKEN-{n}"))
}

#[test]
fn sixty_four_threads_with_a_cold_cache_make_one_fetch() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = Arc::new(notifier(&clock, "stable"));
    let entered = Arc::new(AtomicUsize::new(0));
    let in_fetch = entered.clone();
    let t = MemoryTransport::new(move |req| {
        assert_eq!(req.route(), "/cgi-bin/stable_token");
        // Hold the fetch open until every thread has asked, so a second fetch
        // would have every chance to happen.
        while in_fetch.load(Ordering::SeqCst) < 64 {
            std::thread::yield_now();
        }
        token_reply("TOKEN-shared")
    });
    n.set_transport(t.clone());
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (n, barrier, entered) = (n.clone(), barrier.clone(), entered.clone());
            std::thread::spawn(move || {
                barrier.wait();
                entered.fetch_add(1, Ordering::SeqCst);
                n.access_token(APPID).unwrap().expose().to_string()
            })
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(t.count("/cgi-bin/stable_token"), 1);
    assert!(tokens.iter().all(|tok| tok == "TOKEN-shared"));
}

#[test]
fn stable_fetch_sends_the_documented_body_and_never_forces() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = MemoryTransport::new(move |req| minting(&c, req));
    n.set_transport(t.clone());
    n.access_token(APPID).unwrap();
    let req = &t.requests()[0];
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.base, "http://wechat.test");
    let body: Value = serde_json::from_slice(req.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"grant_type":"client_credential","appid":APPID,"secret":SECRET,"force_refresh":false})
    );
    assert!(req.credentials.is_empty());
}

#[test]
fn classic_fetch_is_a_get_with_the_secret_as_credential() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "classic");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = MemoryTransport::new(move |req| minting(&c, req));
    n.set_transport(t.clone());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-1");
    let req = &t.requests()[0];
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.route(), "/cgi-bin/token");
    assert_eq!(req.query("grant_type"), Some("client_credential"));
    assert_eq!(req.query("appid"), Some(APPID));
    assert_eq!(req.credential_value("secret"), Some(SECRET));
    assert!(!req.path.contains(SECRET));
}

#[test]
fn refresh_happens_margin_seconds_before_expiry() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = MemoryTransport::new(move |req| minting(&c, req));
    n.set_transport(t.clone());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-1");
    clock.advance_secs(7200 - 300 - 1);
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-1");
    assert_eq!(t.count("/cgi-bin/stable_token"), 1);
    clock.advance_secs(1);
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-2");
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-2");
    assert_eq!(t.count("/cgi-bin/stable_token"), 2);
    let apps: Value = serde_json::from_str(&n.list_apps().unwrap()).unwrap();
    assert_eq!(apps[0]["token"]["cached"], true);
    assert_eq!(apps[0]["token"]["expires_in"], 7200);
}

#[test]
fn a_failed_fetch_is_not_repeated_within_the_backoff_window() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let down = Arc::new(Mutex::new(true));
    let d = down.clone();
    let t = MemoryTransport::new(move |_| {
        if *d.lock() {
            Err(TransportError::NotSent(
                "POST http://wechat.test/cgi-bin/stable_token: connection refused".into(),
            ))
        } else {
            token_reply("TOKEN-back")
        }
    });
    n.set_transport(t.clone());
    let first = n.access_token(APPID).unwrap_err();
    assert!(matches!(first, Error::Network(_)), "{first:?}");
    assert!(
        first
            .to_string()
            .contains("could not fetch the access token of wx00000000000000a1 (token_mode stable)"),
        "{first}"
    );
    assert!(first.to_string().contains("connection refused"), "{first}");
    for _ in 0..10 {
        clock.advance_ms(FETCH_BACKOFF_MS / 20);
        assert_eq!(n.access_token(APPID).unwrap_err(), first);
    }
    assert_eq!(t.count("/cgi-bin/stable_token"), 1);
    *down.lock() = false;
    assert_eq!(n.access_token(APPID).unwrap_err(), first);
    clock.advance_ms(FETCH_BACKOFF_MS / 2);
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-back");
    assert_eq!(t.count("/cgi-bin/stable_token"), 2);
}

#[test]
fn invalidate_drops_only_the_token_that_failed() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let t = MemoryTransport::new(move |req| minting(&c, req));
    n.set_transport(t.clone());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-1");
    // A late report about some other token changes nothing.
    assert!(!n.invalidate_token(APPID, "TOKEN-0").unwrap());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-1");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(n.invalidate_token(APPID, "TOKEN-1").unwrap());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-2");
    // The old token again: the fresh one stays.
    assert!(!n.invalidate_token(APPID, "TOKEN-1").unwrap());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "TOKEN-2");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert!(matches!(
        n.invalidate_token("wxnotregistered", "TOKEN-2"),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.invalidate_token(APPID, ""),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn external_mode_never_fetches() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = Notifier::with_clock(clock.clone());
    n.register_app(r#"{"appid":"wxexternal01","token_mode":"external"}"#)
        .unwrap();
    let t = MemoryTransport::new(|req| {
        if req.credential_value("access_token") == Some("HOST-TOKEN-1") {
            ok_reply()
        } else {
            Ok(HttpReply::json(
                &json!({"errcode": 40001, "errmsg": "invalid credential"}),
            ))
        }
    });
    n.set_transport(t.clone());
    let e = n.access_token("wxexternal01").unwrap_err();
    assert!(matches!(e, Error::AppNotConfigured(_)), "{e:?}");
    assert!(
        e.to_string()
            .contains("no access token supplied for wxexternal01 (token_mode external)"),
        "{e}"
    );
    n.set_access_token("wxexternal01", "HOST-TOKEN-1", 600)
        .unwrap();
    assert_eq!(
        n.access_token("wxexternal01").unwrap().expose(),
        "HOST-TOKEN-1"
    );
    let body = n
        .call_api("wxexternal01", "GET", "/wxaapi/newtmpl/gettemplate", None)
        .unwrap();
    assert!(body.contains("\"errcode\":0"));
    // No margin in external mode: valid until the last second.
    clock.advance_secs(599);
    assert_eq!(
        n.access_token("wxexternal01").unwrap().expose(),
        "HOST-TOKEN-1"
    );
    clock.advance_secs(1);
    let e = n.access_token("wxexternal01").unwrap_err();
    assert!(e.to_string().contains("expired 0 s ago"), "{e}");
    assert!(!e.to_string().contains("HOST-TOKEN"), "{e}");

    // WeChat refuses a supplied token: dropped, and nothing to fetch instead.
    n.set_access_token("wxexternal01", "HOST-TOKEN-2", 600)
        .unwrap();
    let (r, body) = n.call_api_reply("wxexternal01", "GET", "/wxaapi/newtmpl/gettemplate", None);
    let e = r.unwrap_err();
    assert!(matches!(e, Error::AppNotConfigured(_)), "{e:?}");
    assert!(e.to_string().contains("errcode 40001"), "{e}");
    assert!(body.is_none());
    assert!(n.access_token("wxexternal01").is_err());
    assert_eq!(
        t.count("/cgi-bin/stable_token") + t.count("/cgi-bin/token"),
        0
    );

    // Bad arguments.
    let msg = |r: fashop_notify::Result<()>| r.unwrap_err().to_string();
    assert!(msg(n.set_access_token("wxexternal01", "T", 0))
        .contains("expires_in_secs must be between 1 and 86400, got 0"));
    assert!(msg(n.set_access_token("wxexternal01", "T", 86_401)).contains("86400"));
    assert!(msg(n.set_access_token("wxexternal01", "", 60)).contains("token must not be empty"));
    assert!(msg(n.set_access_token("wxexternal01", "a b", 60)).contains("visible ASCII"));
    assert!(matches!(
        n.set_access_token("wxnobody", "T", 60),
        Err(Error::AppNotConfigured(_))
    ));
    n.register_app(&format!(r#"{{"appid":"{APPID}","secret":"{SECRET}"}}"#))
        .unwrap();
    assert!(msg(n.set_access_token(APPID, "T", 60)).contains("token_mode stable"));
}

/// A fake WeChat send endpoint that answers `errcode` for the first `refusals` calls.
fn refusing(refusals: usize, errcode: i64) -> (Arc<MemoryTransport>, Arc<AtomicUsize>) {
    let minted = Arc::new(AtomicUsize::new(0));
    let sends = Arc::new(AtomicUsize::new(0));
    let m = minted.clone();
    let t = MemoryTransport::new(move |req| {
        if is_token_fetch(req) {
            return minting(&m, req);
        }
        if sends.fetch_add(1, Ordering::SeqCst) < refusals {
            Ok(HttpReply::json(
                &json!({"errcode": errcode, "errmsg": "invalid credential, access_token is invalid or not latest rid: 1"}),
            ))
        } else {
            Ok(HttpReply::json(
                &json!({"errcode": 0, "errmsg": "ok", "msgid": 42}),
            ))
        }
    });
    (t, minted)
}

#[test]
fn one_token_error_is_recovered_with_one_refresh() {
    for errcode in [40001, 40014, 42001] {
        let clock = Arc::new(ManualClock::at(T0));
        let n = notifier(&clock, "stable");
        let (t, minted) = refusing(1, errcode);
        n.set_transport(t.clone());
        let body = n
            .call_api(APPID, "POST", "/cgi-bin/message/subscribe/send", Some("{}"))
            .unwrap();
        assert!(body.contains("\"msgid\":42"), "{body}");
        assert_eq!(minted.load(Ordering::SeqCst), 2);
        assert_eq!(t.count("/cgi-bin/message/subscribe/send"), 2);
        let tokens: Vec<_> = t
            .requests()
            .iter()
            .filter(|r| !is_token_fetch(r))
            .map(|r| r.credential_value("access_token").unwrap().to_string())
            .collect();
        assert_eq!(tokens, ["TOKEN-1", "TOKEN-2"]);
    }
}

#[test]
fn fetches_and_recoveries_reach_the_metrics() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "classic");
    let (t, _) = refusing(1, 40001);
    n.set_transport(t);
    n.call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None)
        .unwrap();
    let text = n.metrics_text("prometheus").unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains(APPID))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .to_string()
    };
    let fetches = line("fashop_notify_token_fetches_total");
    assert!(fetches.contains("mode=\"classic\""), "{fetches}");
    assert!(fetches.ends_with(" 2"), "{fetches}");
    assert!(line("fashop_notify_token_errors_recovered_total").ends_with(" 1"));
    let stats = n.token_stats(APPID).unwrap();
    assert_eq!((stats.fetches, stats.recovered), (2, 1));
}

#[test]
fn a_token_error_that_persists_is_retried_exactly_once() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let (t, minted) = refusing(usize::MAX, 40001);
    n.set_transport(t.clone());
    let (r, body) = n.call_api_reply(
        APPID,
        "POST",
        "/wxaapi/newtmpl/deltemplate",
        Some(r#"{"priTmplId":"x"}"#),
    );
    let e = r.unwrap_err();
    assert_eq!(e.errcode(), Some(40001));
    assert!(e.to_string().contains("40001: invalid credential"), "{e}");
    let body: Value = serde_json::from_str(&body.unwrap()).unwrap();
    assert_eq!(body["errcode"], 40001);
    assert_eq!(t.count("/wxaapi/newtmpl/deltemplate"), 2);
    assert_eq!(minted.load(Ordering::SeqCst), 2);
}

#[test]
fn transport_failures_have_their_own_status() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let answer: Arc<Mutex<Result<HttpReply, TransportError>>> = Arc::new(Mutex::new(ok_reply()));
    let a = answer.clone();
    let t = MemoryTransport::new(move |req| {
        if is_token_fetch(req) {
            token_reply("TOKEN-1")
        } else {
            a.lock().clone()
        }
    });
    n.set_transport(t.clone());
    let call = || n.call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None);

    *answer.lock() = Err(TransportError::NotSent(
        "GET http://wechat.test/wxaapi/newtmpl/gettemplate: connection refused".into(),
    ));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("connection refused")),
        "{e:?}"
    );

    *answer.lock() = Err(TransportError::MaybeDelivered(
        "GET http://wechat.test/wxaapi/newtmpl/gettemplate: timed out waiting for the answer"
            .into(),
    ));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Uncertain(m) if m.contains("timed out")),
        "{e:?}"
    );

    *answer.lock() = Ok(HttpReply::status(503, "<html>Service Unavailable</html>"));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("WeChat answered HTTP 503: <html>Service Unavailable")),
        "{e:?}"
    );

    *answer.lock() = Ok(HttpReply::status(200, "{\"errcode\":0,"));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("malformed JSON")),
        "{e:?}"
    );

    *answer.lock() = Ok(HttpReply::status(200, "[1,2]"));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("not an object")),
        "{e:?}"
    );

    *answer.lock() = Ok(HttpReply::status(200, r#"{"errcode":"zero"}"#));
    let e = call().unwrap_err();
    assert!(
        matches!(&e, Error::Network(m) if m.contains("non-integer errcode")),
        "{e:?}"
    );

    // Missing errcode means success.
    *answer.lock() = Ok(HttpReply::status(200, r#"{"data":[]}"#));
    assert_eq!(call().unwrap(), r#"{"data":[]}"#);
    // Recovery: the next call works.
    *answer.lock() = ok_reply();
    assert!(call().unwrap().contains("\"errcode\":0"));
    // None of these touched the token.
    assert_eq!(t.count("/cgi-bin/stable_token"), 1);
}

#[test]
fn call_api_checks_its_arguments() {
    let clock = Arc::new(ManualClock::at(T0));
    let n = notifier(&clock, "stable");
    let t = MemoryTransport::new(|_| panic!("no request expected"));
    n.set_transport(t.clone());
    let msg =
        |m: &str, p: &str, b: Option<&str>| n.call_api(APPID, m, p, b).unwrap_err().to_string();
    assert!(msg("PUT", "/x", None).contains("method must be \"GET\" or \"POST\", got \"PUT\""));
    assert!(msg("GET", "x", None).contains("must start with one '/'"));
    assert!(msg("GET", "/x", Some("{}")).contains("body_json must be NULL for a GET"));
    assert!(msg("POST", "/x", Some("{")).contains("body_json is not valid JSON"));
    assert!(msg("POST", "/x?access_token=abc", None).contains("must not carry access_token"));
    let e = n.call_api("wxmissing", "GET", "/x", None).unwrap_err();
    assert!(matches!(e, Error::AppNotConfigured(_)));
    let e = n.call_api("bad appid!", "GET", "/x", None).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)));
    assert!(t.requests().is_empty());
    // Lower-case methods are accepted; a POST may go without a body.
    let t = MemoryTransport::new(|req| {
        if is_token_fetch(req) {
            token_reply("TOKEN-1")
        } else {
            ok_reply()
        }
    });
    n.set_transport(t.clone());
    n.call_api(APPID, "post", "/x?a=1", None).unwrap();
    let sent = t.requests().pop().unwrap();
    assert_eq!(
        (sent.method, sent.path.as_str(), sent.body.clone()),
        (Method::Post, "/x?a=1", None)
    );
    assert_eq!(
        sent.url_with_credentials(),
        "http://wechat.test/x?a=1&access_token=TOKEN-1"
    );
}

/// Every error path with a known secret and token: neither may show up in
/// any message or Debug print, even when WeChat or the transport echo them.
#[test]
fn secret_and_token_never_appear_in_messages_or_debug() {
    const TOKEN: &str = "TOKEN-known-5d1e8b";
    let clock = Arc::new(ManualClock::at(T0));
    let mut seen: Vec<String> = Vec::new();
    let echo = format!("secret {SECRET} token {TOKEN}");
    let log = std::env::temp_dir().join(format!(
        "fashop-token-redaction-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&log);
    let log_path = log.to_str().unwrap();

    // Refresh failures whose message carries the full URL and the token held
    // so far (a careless transport).
    for maybe in [false, true] {
        for mode in ["stable", "classic"] {
            let clock = Arc::new(ManualClock::at(T0));
            let n = notifier_logging(&clock, mode, Some(log_path));
            let e2 = echo.clone();
            let fetched = AtomicUsize::new(0);
            let t = MemoryTransport::new(move |req| {
                if fetched.fetch_add(1, Ordering::SeqCst) == 0 {
                    return token_reply(TOKEN);
                }
                let m = format!("{} {}: {e2}", req.url_with_credentials(), e2);
                if maybe {
                    Err(TransportError::MaybeDelivered(m))
                } else {
                    Err(TransportError::NotSent(m))
                }
            });
            n.set_transport(t);
            assert_eq!(n.access_token(APPID).unwrap().expose(), TOKEN);
            clock.advance_secs(7200);
            seen.push(n.access_token(APPID).unwrap_err().to_string());
            seen.push(format!("{:?}", n.access_token(APPID).unwrap_err()));
            seen.push(format!("{n:?}"));
        }
    }

    // Token endpoint answers that hold the secret or a token: errcode, 5xx,
    // malformed (a cut-off token must not be quoted), no expiry.
    let answers = [
        HttpReply::json(
            &json!({"errcode": 40125, "errmsg": format!("invalid appsecret {SECRET}")}),
        ),
        HttpReply::status(502, &echo),
        HttpReply::status(200, &format!("{{{echo}")),
        HttpReply::status(
            200,
            &format!(r#"{{"access_token":"{TOKEN}","expires_in":72"#),
        ),
        HttpReply::json(&json!({"access_token": TOKEN})),
        HttpReply::json(&json!({"access_token": TOKEN, "expires_in": "7200"})),
    ];
    for answer in answers {
        for mode in ["stable", "classic"] {
            let n = notifier_logging(&clock, mode, Some(log_path));
            let a = answer.clone();
            n.set_transport(MemoryTransport::new(move |_| Ok(a.clone())));
            let e = n.access_token(APPID).unwrap_err();
            seen.push(e.to_string());
            seen.push(format!("{e:?}"));
            seen.push(format!("{n:?}"));
        }
    }

    // Calls with a valid token whose answers or failures echo both.
    let call_answers: Vec<Result<HttpReply, TransportError>> = vec![
        Ok(HttpReply::json(&json!({"errcode": 40001, "errmsg": echo}))),
        Ok(HttpReply::json(
            &json!({"errcode": 47003, "errmsg": echo, "echo": echo}),
        )),
        Ok(HttpReply::status(500, &echo)),
        Ok(HttpReply::status(200, &echo)),
        Ok(HttpReply::status(
            200,
            &format!(r#"{{"errcode":"{echo}"}}"#),
        )),
        Err(TransportError::NotSent(format!(
            "http://wechat.test/x?access_token={TOKEN} {echo}"
        ))),
        Err(TransportError::MaybeDelivered(format!(
            "http://wechat.test/x?access_token={TOKEN} {echo}"
        ))),
    ];
    for answer in call_answers {
        let n = notifier_logging(&clock, "stable", Some(log_path));
        let a = answer.clone();
        n.set_transport(MemoryTransport::new(move |req| {
            if is_token_fetch(req) {
                token_reply(TOKEN)
            } else {
                a.clone()
            }
        }));
        let (r, body) = n.call_api_reply(APPID, "POST", "/wxaapi/newtmpl/addtemplate", Some("{}"));
        let e = r.unwrap_err();
        seen.push(e.to_string());
        seen.push(format!("{e:?}"));
        seen.push(body.unwrap_or_default());
        seen.push(format!("{n:?}"));
    }

    // External mode: supplied token refused, expired, checked.
    let n = Notifier::with_clock(clock.clone());
    n.register_app(r#"{"appid":"wxexternal02","token_mode":"external"}"#)
        .unwrap();
    // This app has no secret: WeChat can only echo the token.
    let e2 = format!("token {TOKEN}");
    n.set_transport(MemoryTransport::new(move |_| {
        Ok(HttpReply::json(&json!({"errcode": 40001, "errmsg": e2})))
    }));
    n.set_access_token("wxexternal02", TOKEN, 60).unwrap();
    seen.push(format!("{n:?}"));
    let e = n.call_api("wxexternal02", "GET", "/x", None).unwrap_err();
    seen.push(e.to_string());
    n.set_access_token("wxexternal02", TOKEN, 60).unwrap();
    clock.advance_secs(61);
    seen.push(n.access_token("wxexternal02").unwrap_err().to_string());
    seen.push(
        n.set_access_token("wxexternal02", &format!("{TOKEN} {SECRET}"), 60)
            .unwrap_err()
            .to_string(),
    );

    let lines = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(lines.lines().count() >= 20, "{lines}");
    assert!(lines.contains("\"token\""), "{lines}");
    seen.extend(lines.lines().map(str::to_string));

    assert!(seen.len() > 60, "{}", seen.len());
    for text in &seen {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("access_token=T"), "token URL leaked: {text}");
    }
    // The messages still say what happened.
    let all = seen.join("\n");
    for needle in [
        "***",
        "invalid appsecret",
        "HTTP 502",
        "HTTP 500",
        "malformed JSON",
        "expires_in",
        "40001",
        "47003",
    ] {
        assert!(all.contains(needle), "no message mentions {needle}");
    }
}
