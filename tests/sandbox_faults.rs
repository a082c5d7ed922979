//! Injected faults, driven over HTTP: errcodes, HTTP statuses, latency, closed
//! connections, malformed bodies, counts and probabilities.

use std::time::{Duration, Instant};

use fashop_notify_sandbox::*;
use serde_json::json;

use crate::sandbox_support::*;

fn ready() -> (Sandbox, Client, String) {
    let sb = Sandbox::start();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 100);
    (sb, c, tok)
}

#[test]
fn errcode_fault_fires_count_times_and_does_nothing() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).errcode(45011).count(2));
    for _ in 0..2 {
        let v = c.send(&tok, &pay_message("o1"));
        assert_eq!(errcode(&v), 45011);
        assert!(errmsg(&v).contains("minute-quota"), "{v}");
        assert_rid(&v);
    }
    assert!(
        sb.all_delivered().is_empty(),
        "a faulted send is not delivered"
    );
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 100);
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        0,
        "count used up"
    );
    let counters = sb.counters();
    assert_eq!(counters.errors(45011), 2);
    assert_eq!(counters.faults_fired, 2);
    assert_eq!(counters.sends, 1);
}

#[test]
fn every_listed_errcode_can_be_injected() {
    let (sb, c, tok) = ready();
    for code in [-1, 40001, 42001, 43101, 43108, 45009, 45011, 47003] {
        sb.inject(Fault::on(SEND).errcode(code).count(1));
        assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), code);
    }
    sb.inject(Fault::on("/cgi-bin/token").errcode(-1).count(1));
    let (_, v) = c.get(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    ));
    assert_eq!(errcode(&v), -1);
    assert_eq!(
        sb.counters().token_fetches(APPID, "token"),
        2,
        "faulted fetches count"
    );
}

#[test]
fn faults_without_count_stay_until_cleared() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).errcode(-1));
    for _ in 0..5 {
        assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), -1);
    }
    sb.clear_faults();
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}

#[test]
fn faults_are_scoped_to_their_path() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on("/cgi-bin/stable_token").errcode(-1));
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    sb.inject(Fault::on("/wxaapi/newtmpl/*").http_status(502));
    let (status, _) = c
        .try_get(&format!("/wxaapi/newtmpl/getcategory?access_token={tok}"))
        .unwrap();
    assert_eq!(status, 502, "prefix match");
    let (_, v) = c.get("/sandbox/counters");
    assert_eq!(v["ok"], true, "the control API never faults");
}

#[test]
fn http_status_fault_answers_that_status() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).http_status(503).count(1));
    let (status, body) = c
        .try_post(
            &format!("{SEND}?access_token={tok}"),
            &pay_message("o1").to_string(),
        )
        .unwrap();
    assert_eq!(status, 503);
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "an HTML error page"
    );
    assert!(sb.all_delivered().is_empty());
    assert_eq!(sb.counters().http_errors.get(&503), Some(&1));
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}

#[test]
fn latency_fault_delays_the_answer_but_not_other_requests() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).latency_ms(300).count(1));
    let started = Instant::now();
    let slow = std::thread::scope(|s| {
        let slow = s.spawn(|| c.send(&tok, &pay_message("o1")));
        slow.join().unwrap()
    });
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(errcode(&slow), 0, "answered normally after the delay");
    assert_eq!(sb.all_delivered().len(), 1);

    // A held answer does not hold a worker: with more slow answers than
    // workers in flight, a plain request is still served.
    sb.inject(Fault::on(SEND).latency_ms(60_000).count(8));
    let raw: Vec<_> = (0..8)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(sb.addr()).unwrap();
            let body = pay_message("o1").to_string();
            let req = format!(
                "POST {SEND}?access_token={tok} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
            s
        })
        .collect();
    // Every slow send has been handled (delivered) before its answer waits.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sb.counters().faults_fired < 9 {
        assert!(
            Instant::now() < deadline,
            "slow sends were not taken: {:?}",
            sb.counters()
        );
        std::thread::yield_now();
    }
    let (_, v) = c.get("/sandbox/counters");
    assert_eq!(v["ok"], true);
    drop(raw);
}

#[test]
fn close_before_answer_drops_the_connection_and_delivers_nothing() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).close_before_answer().count(1));
    let err = c
        .try_post(
            &format!("{SEND}?access_token={tok}"),
            &pay_message("o1").to_string(),
        )
        .expect_err("no answer");
    assert!(
        matches!(err, ureq::Error::Io(_) | ureq::Error::Protocol(_)),
        "{err:?}"
    );
    assert!(sb.all_delivered().is_empty());
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 100);
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        0,
        "next request is served"
    );
}

#[test]
fn close_after_read_delivers_but_never_answers() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).close_after_read().count(1));
    let err = c
        .try_post(
            &format!("{SEND}?access_token={tok}"),
            &pay_message("o1").to_string(),
        )
        .expect_err("no answer");
    assert!(
        matches!(err, ureq::Error::Io(_) | ureq::Error::Protocol(_)),
        "{err:?}"
    );
    assert_eq!(
        sb.all_delivered().len(),
        1,
        "the maybe-delivered case: it was delivered"
    );
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 99);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}

#[test]
fn malformed_body_fault_truncates_the_json() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).malformed_body().count(1));
    let (status, body) = c
        .try_post(
            &format!("{SEND}?access_token={tok}"),
            &pay_message("o1").to_string(),
        )
        .unwrap();
    assert_eq!(status, 200);
    assert!(!body.is_empty());
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "{body:?}"
    );
    assert_eq!(sb.all_delivered().len(), 1);
}

#[test]
fn probability_zero_never_fires_and_one_always_does() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).errcode(-1).probability(0.0));
    for _ in 0..20 {
        assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    }
    sb.clear_faults();
    sb.inject(Fault::on(SEND).errcode(-1).probability(1.0).count(3));
    for _ in 0..3 {
        assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), -1);
    }
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}

#[test]
fn probability_half_fires_sometimes_and_deterministically() {
    let run = || {
        let (sb, c, tok) = ready();
        sb.inject(Fault::on(SEND).errcode(-1).probability(0.5));
        (0..200)
            .map(|_| errcode(&c.send(&tok, &pay_message("o1"))) == -1)
            .collect::<Vec<_>>()
    };
    let a = run();
    let fired = a.iter().filter(|f| **f).count();
    assert!((50..=150).contains(&fired), "fired {fired} of 200");
    assert_eq!(a, run(), "same seed, same choices");
}

#[test]
fn faults_over_http_control_api() {
    let (sb, c, tok) = ready();
    let (status, v) = c.post_json(
        "/sandbox/faults",
        &json!({"path": SEND, "errcode": 45009, "count": 1}),
    );
    assert_eq!((status, v["ok"].clone()), (200, json!(true)));
    let (_, v) = c.get("/sandbox/faults");
    assert_eq!(v["faults"][0]["left"], 1);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 45009);
    c.post_json("/sandbox/faults", &json!({"path": SEND, "errcode": -1}));
    let (_, v) = c.delete("/sandbox/faults");
    assert_eq!(v["ok"], true);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    for bad in [
        json!({"path": SEND}),
        json!({"path": SEND, "errcode": -1, "http_status": 500}),
        json!({"path": "/sandbox/counters", "errcode": -1}),
        json!({"path": "nope", "errcode": -1}),
        json!({"path": SEND, "errcode": -1, "probability": 2.0}),
        json!({"path": SEND, "http_status": 99}),
        json!({"path": SEND, "errcode": -1, "count": 0}),
        json!({"path": SEND, "errcode": -1, "colour": "red"}),
        json!({"path": SEND, "errcode": "x"}),
    ] {
        let (status, v) = c.post_json("/sandbox/faults", &bad);
        assert_eq!(status, 400, "{bad}");
        assert_eq!(v["ok"], false);
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    assert!(sb.counters().faults_fired >= 1);
}

#[test]
#[should_panic(expected = "sandbox inject")]
fn inject_panics_on_a_bad_fault() {
    let sb = Sandbox::start();
    sb.inject(Fault::on(SEND));
}

#[test]
fn close_after_read_on_the_token_endpoint_still_rotates_the_token() {
    let sb = Sandbox::start_with(SandboxOptions {
        clock_start: Some(1_790_000_000),
        token_grace_secs: 0,
        ..SandboxOptions::default()
    });
    let c = client(&sb);
    let old = c.demo_token();
    sb.inject(Fault::on("/cgi-bin/token").close_after_read().count(1));
    let err = c
        .try_get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
        ))
        .expect_err("no answer");
    assert!(
        matches!(err, ureq::Error::Io(_) | ureq::Error::Protocol(_)),
        "{err:?}"
    );
    // The unseen new token replaced the old one (no grace here).
    assert_eq!(errcode(&c.send(&old, &pay_message("nobody"))), 40001);
    assert_eq!(sb.counters().token_fetches(APPID, "token"), 2);
}

#[test]
fn latency_combines_with_an_errcode() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).errcode(-1).latency_ms(50).count(1));
    let started = Instant::now();
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), -1);
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert!(sb.all_delivered().is_empty());
}

#[test]
fn the_first_matching_fault_that_fires_wins() {
    let (sb, c, tok) = ready();
    sb.inject(Fault::on(SEND).errcode(45011).count(1));
    sb.inject(Fault::on("/cgi-bin/*").errcode(45009).count(1));
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 45011);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 45009);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}
