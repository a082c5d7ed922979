//! Whatever "WeChat" answers: token fetches (stable and classic), sends and
//! call_api get arbitrary HTTP statuses and bodies from the input, through the
//! in-memory transport. The library must settle every answer into a status of
//! the ABI (never INTERNAL, never a panic), keep the secret and the token out of
//! every message, and stop after a bounded number of requests.
#![no_main]

use std::sync::{Arc, Mutex};

use fashop_notify::{Error, HttpReply, ManualClock, MemoryTransport, Notifier, TransportError};
use libfuzzer_sys::fuzz_target;

const APPID: &str = "wxfuzz0000000001";
const SECRET: &str = "fuzz-app-secret-must-never-show";
const TEMPLATE: &str = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";

/// Splits the input into answers: each starts with a byte choosing the HTTP
/// status or a transport failure, then its body up to the next `\n--\n`.
fn answers(data: &[u8]) -> Vec<Result<HttpReply, TransportError>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (chunk, tail) = match rest.windows(4).position(|w| w == b"\n--\n") {
            Some(at) => (&rest[..at], &rest[at + 4..]),
            None => (rest, &[][..]),
        };
        rest = tail;
        let Some((&sel, body)) = chunk.split_first() else {
            continue;
        };
        let status = match sel % 16 {
            0..=9 => 200,
            10 => 502,
            11 => 503,
            12 => 500,
            13 => 404,
            14 => {
                out.push(Err(TransportError::NotSent("refused (fuzz)".into())));
                continue;
            }
            _ => {
                out.push(Err(TransportError::MaybeDelivered("timeout (fuzz)".into())));
                continue;
            }
        };
        out.push(Ok(HttpReply {
            status,
            body: body.to_vec(),
        }));
    }
    out
}

fn assert_clean(what: &str, e: &Error, token: &str) {
    assert!(!matches!(e, Error::Internal(_)), "{what}: {e:?}");
    let text = e.to_string();
    assert!(!text.contains(SECRET), "{what}: {text}");
    if token.len() >= 8 {
        assert!(!shows(&text, token), "{what} shows the token: {text}");
    }
}

/// Whether `text` shows `token` by the library's redaction rule: a token of 16
/// characters or more (every real one) wherever it occurs, a shorter one (only
/// these made-up answers have them) where it stands whole, not inside a longer
/// run of letters, digits, `-` and `_` that WeChat's answer itself held.
fn shows(text: &str, token: &str) -> bool {
    if token.len() >= 16 {
        return text.contains(token);
    }
    let part = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let bytes = text.as_bytes();
    text.match_indices(token).any(|(at, _)| {
        let end = at + token.len();
        (at == 0 || !part(bytes[at - 1])) && (end == bytes.len() || !part(bytes[end]))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let queue = Arc::new(Mutex::new(answers(rest)));
    queue.lock().unwrap().reverse();
    let served = Arc::new(Mutex::new(0usize));
    let n = Notifier::with_clock(Arc::new(ManualClock::at(1_700_000_000)));
    let (q, s) = (queue.clone(), served.clone());
    n.set_transport(MemoryTransport::new(move |_req| {
        *s.lock().unwrap() += 1;
        q.lock()
            .unwrap()
            .pop()
            .unwrap_or_else(|| Err(TransportError::NotSent("no more answers (fuzz)".into())))
    }));
    n.configure(r#"{"max_retries":2}"#).expect("configure");
    let token_mode = if mode & 1 == 0 { "stable" } else { "classic" };
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"{token_mode}"}}"#
    ))
    .expect("register");
    n.load_mappings(
        APPID,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/mappings.json"
        )),
    )
    .expect("mappings");
    n.add_permit(
        APPID,
        &format!(
            r#"{{"openid":"o-fuzz","kind":"subscribe","template_id":"{TEMPLATE}","count":3}}"#
        ),
    )
    .expect("permit");
    let payload = r#"{"touser":"o-fuzz","fields":{"order_sn":"S1","order_id":7,"order_amount":"12.5","pay_time":1700000000,"order_total_goods_name":"g"}}"#;
    // Whatever token the answers handed out must not show in any message.
    let token = match n.access_token(APPID) {
        Ok(t) => t.expose().to_string(),
        Err(e) => {
            assert_clean("access_token", &e, "");
            String::new()
        }
    };
    let report = n.send(APPID, "order_pay_success", payload);
    if let Err(e) = &report.result {
        assert_clean("send", e, &token);
        // A send that got as far as a permit always says what happened.
        if matches!(
            e,
            Error::WeChat { .. } | Error::Uncertain(_) | Error::NoPermit(_)
        ) {
            assert!(report.outcome.is_some(), "send {e:?} without an outcome");
        }
    }
    if mode & 2 != 0 {
        if let Err(e) = n.call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None) {
            assert_clean("call_api", &e, &token);
        }
    }
    let stats = n.ledger_stats(APPID, Some("o-fuzz")).expect("stats");
    assert!(!stats.contains(SECRET));
    // Bounded work: retries, token recoveries and permits are all capped.
    assert!(
        *served.lock().unwrap() <= 64,
        "{} requests",
        served.lock().unwrap()
    );
});
