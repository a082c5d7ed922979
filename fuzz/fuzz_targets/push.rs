//! WeChat's message push with arbitrary queries and bodies, plain and safe
//! mode: the input's first byte picks the method and the mode, the rest splits
//! at `\n--\n` into a query string and a body. In safe mode the body is
//! encrypted and signed with the app's real key and token half the time, so the
//! reading of decrypted messages is reached too. Every request must end in a
//! status of the ABI (never INTERNAL, never a panic), an OK answer must be the
//! documented JSON, and no error message may show the Token or the key (even
//! when the body quotes them).
#![no_main]

use std::sync::Arc;

use fashop_notify::push::{encrypt, signature, AesKey};
use fashop_notify::{Error, ManualClock, Notifier};
use libfuzzer_sys::fuzz_target;

const APPID: &str = "wxfuzz0000000002";
const TOKEN: &str = "fuzzpushtoken42";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOW: i64 = 1_700_000_000;

fn assert_clean(what: &str, e: &Error) {
    assert!(!matches!(e, Error::Internal(_)), "{what}: {e:?}");
    let text = e.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains(AES_KEY),
        "{what}: {text}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (query, body) = match rest.windows(4).position(|w| w == b"\n--\n") {
        Some(at) => (&rest[..at], &rest[at + 4..]),
        None => (&[][..], rest),
    };
    let (Ok(query), Ok(body)) = (std::str::from_utf8(query), std::str::from_utf8(body)) else {
        return;
    };
    let n = Notifier::with_clock(Arc::new(ManualClock::at(NOW)));
    let grants = if mode & 8 == 0 { "push" } else { "client" };
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"s","grants":"{grants}","push":{{"token":"{TOKEN}","encoding_aes_key":"{AES_KEY}"}}}}"#
    ))
    .expect("register");
    let method = if mode & 1 == 0 { "POST" } else { "GET" };
    let (query, body) = match mode & 6 {
        // As given.
        0 => (query.to_string(), body.to_string()),
        // Signed plain push (or URL check) with the fuzzed extra parameters.
        2 => {
            let ts = NOW.to_string();
            (
                format!(
                    "signature={}&timestamp={ts}&nonce=n&echostr=e&{query}",
                    signature(&[TOKEN, &ts, "n"])
                ),
                body.to_string(),
            )
        }
        // Safe mode, the fuzzed body encrypted and signed for real.
        _ => {
            let key = AesKey::from_encoding_aes_key(AES_KEY).expect("key");
            let appid = if mode & 4 != 0 && mode & 2 != 0 {
                APPID
            } else {
                "wxother"
            };
            let ct = encrypt(&key, b"0123456789abcdef", body, appid);
            let ts = NOW.to_string();
            let envelope = if mode & 16 == 0 {
                format!(r#"{{"ToUserName":"gh","Encrypt":"{ct}"}}"#)
            } else {
                format!("<xml><Encrypt><![CDATA[{ct}]]></Encrypt></xml>")
            };
            (
                format!(
                    "timestamp={ts}&nonce=n&encrypt_type=aes&msg_signature={}&{query}",
                    signature(&[TOKEN, &ts, "n", &ct])
                ),
                envelope,
            )
        }
    };
    match n.handle_push(APPID, method, &query, &body) {
        Ok(text) => {
            let v: serde_json::Value = serde_json::from_str(&text).expect("answer is JSON");
            assert!(v["reply"].is_string(), "{text}");
            assert!(v["events"].is_array(), "{text}");
            // An answer may echo what the push itself carried (the URL check's
            // echostr, a buyer's openid): the sender's own text, not a leak.
            // Applying the same push again changes nothing more.
            if method == "POST" {
                let stats = n.ledger_stats(APPID, None).expect("stats");
                if let Ok(again) = n.handle_push(APPID, method, &query, &body) {
                    let v: serde_json::Value = serde_json::from_str(&again).expect("JSON");
                    assert!(v["events"].is_array());
                }
                assert_eq!(n.ledger_stats(APPID, None).expect("stats"), stats);
            }
        }
        Err(e) => assert_clean("handle_push", &e),
    }
});
