//! WeChat's message push through `Notifier::handle_push`: the URL check, plain
//! and safe mode in JSON and XML, every refusal, retries applied once, and what
//! each subscribe event does to the ledger. Time through a ManualClock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fashop_notify::push::{encrypt, signature, AesKey};
use fashop_notify::{Error, ManualClock, Notifier, PermitRequest};
use serde_json::Value;

const APP: &str = "wxb11529c136998cb6";
const TOKEN: &str = "pamtest";
// WeChat's sample EncodingAESKey from its "消息加解密" documentation.
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const NOW: i64 = 1_409_304_348;
const NONCE: &str = "xxxxxx";

struct Shop {
    n: Notifier,
    clock: Arc<ManualClock>,
}

/// An app in compatible mode (plain and safe bodies both taken), with the
/// 300 s window these tests were written for.
fn shop_with(grants: &str) -> Shop {
    let clock = Arc::new(ManualClock::at(NOW));
    let n = Notifier::with_clock(clock.clone());
    n.register_app(&format!(
        r#"{{"appid":"{APP}","secret":"app-secret","grants":"{grants}","push":{{"token":"{TOKEN}","encoding_aes_key":"{AES_KEY}","format":"json","mode":"compatible","max_skew_secs":300}}}}"#
    ))
    .unwrap();
    Shop { n, clock }
}

fn shop() -> Shop {
    shop_with("push")
}

/// A nonce no other request of this test binary used: WeChat's nonces are
/// random, and a (timestamp, nonce) pair is taken once per app.
fn fresh_nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("n{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn plain_query(ts: i64) -> String {
    let ts = ts.to_string();
    let nonce = fresh_nonce();
    format!(
        "signature={}&timestamp={ts}&nonce={nonce}&openid=o1",
        signature(&[TOKEN, &ts, &nonce])
    )
}

fn key() -> AesKey {
    AesKey::from_encoding_aes_key(AES_KEY).unwrap()
}

/// A safe-mode request for `message` (JSON or XML envelope like the message).
fn sealed(message: &str, appid: &str, ts: i64) -> (String, String) {
    let ts = ts.to_string();
    let ct = encrypt(&key(), b"0123456789abcdef", message, appid);
    let body = if message.starts_with('<') {
        format!("<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[{ct}]]></Encrypt></xml>")
    } else {
        format!(r#"{{"ToUserName":"gh_1","Encrypt":"{ct}"}}"#)
    };
    let nonce = fresh_nonce();
    let query = format!(
        "signature={}&timestamp={ts}&nonce={nonce}&openid=o1&encrypt_type=aes&msg_signature={}",
        signature(&[TOKEN, &ts, &nonce]),
        signature(&[TOKEN, &ts, &nonce, &ct])
    );
    (query, body)
}

fn popup_json(openid: &str, create_time: i64, template: &str, status: &str) -> String {
    format!(
        r#"{{"ToUserName":"gh_1","FromUserName":"{openid}","CreateTime":"{create_time}","MsgType":"event","Event":"subscribe_msg_popup_event","List":[{{"TemplateId":"{template}","SubscribeStatusString":"{status}","PopupScene":"0"}}]}}"#
    )
}

fn event_json(openid: &str, create_time: i64, event: &str, list: &str) -> String {
    format!(
        r#"{{"ToUserName":"gh_1","FromUserName":"{openid}","CreateTime":{create_time},"MsgType":"event","Event":"{event}","List":{list}}}"#
    )
}

fn answer(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn grants(s: &Shop, openid: &str, template: &str) -> u64 {
    let v: Value = serde_json::from_str(&s.n.ledger_stats(APP, Some(openid)).unwrap()).unwrap();
    v["subscribe"]["templates"][template].as_u64().unwrap_or(0)
}

fn post(s: &Shop, body: &str) -> Value {
    answer(
        &s.n.handle_push(APP, "POST", &plain_query(NOW), body)
            .unwrap(),
    )
}

fn refusal(r: fashop_notify::Result<String>) -> String {
    match r {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn url_check_answers_echostr_when_signed() {
    let s = shop();
    let q = format!("{}&echostr=5837397349581234", plain_query(NOW));
    let a = answer(&s.n.handle_push(APP, "GET", &q, "").unwrap());
    assert_eq!(a["reply"], "5837397349581234");
    assert_eq!(a["events"], serde_json::json!([]));
    let forged = q.replace("signature=", "signature=0");
    assert!(refusal(s.n.handle_push(APP, "GET", &forged, "")).contains("signature does not match"));
    assert!(refusal(s.n.handle_push(APP, "GET", &plain_query(NOW), "")).contains("no `echostr`"));
    assert!(refusal(s.n.handle_push(APP, "GET", "", "")).contains("no `timestamp`"));
    assert!(refusal(s.n.handle_push(APP, "PUT", &q, "")).contains("method must be"));
}

#[test]
fn plain_json_popup_accept_grants_once_per_template() {
    let s = shop();
    let a = post(&s, &popup_json("o1", NOW, "T1", "accept"));
    assert_eq!(a["reply"], "success");
    let e = &a["events"][0];
    assert_eq!(e["event"], "subscribe_msg_popup_event");
    assert_eq!(e["openid"], "o1");
    assert_eq!(e["template_id"], "T1");
    assert_eq!(e["status"], "accept");
    assert_eq!(e["popup_scene"], "0");
    assert_eq!(e["effect"], "grant_added");
    assert_eq!(grants(&s, "o1", "T1"), 1);
    assert!(s
        .n
        .ledger()
        .take(APP, "o1", &PermitRequest::subscribe("T1"))
        .unwrap()
        .is_some());
    // acceptWithAudio grants too; reject grants nothing.
    post(&s, &popup_json("o2", NOW, "T1", "acceptWithAudio"));
    assert_eq!(grants(&s, "o2", "T1"), 1);
    let a = post(&s, &popup_json("o3", NOW, "T1", "reject"));
    assert_eq!(a["events"][0]["effect"], "none");
    assert_eq!(grants(&s, "o3", "T1"), 0);
}

#[test]
fn plain_xml_popup_as_the_guide_shows_it() {
    let s = shop();
    // The guide's XML example (two templates: accept, reject), CreateTime moved to now.
    let body = format!(
        "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName><CreateTime>{NOW}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>2</PopupScene></List><List><TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId><SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString><PopupScene>2</PopupScene></List></SubscribeMsgPopupEvent></xml>"
    );
    let a = post(&s, &body);
    assert_eq!(a["events"].as_array().unwrap().len(), 2);
    assert_eq!(a["events"][0]["effect"], "grant_added");
    assert_eq!(a["events"][1]["effect"], "none");
    let o = "otFpruAK8D-E6EfStSYonYSBZ8_4";
    assert_eq!(
        grants(&s, o, "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"),
        1
    );
    assert_eq!(
        grants(&s, o, "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"),
        0
    );
}

#[test]
fn safe_mode_known_answer() {
    // Computed independently at test-writing time with Python's `cryptography`:
    // key = b64decode(AES_KEY + "="), IV = key[:16], plaintext
    // b"0123456789abcdef" + pack(">I", len(msg)) + msg + b"wxb11529c136998cb6"
    // padded PKCS#7 to 32 bytes, msg the popup JSON below; msg_signature =
    // sha1 of sorted(["pamtest", "1409304348", "xxxxxx", ciphertext]).
    const CT: &str = "Q3stYC6hdFzMh9T8HCvyDG8ro7Krd28HJvmk52M5SkdH6z4vw4S7+HitRhNHOgU9bjVIKHmPbbvpKQplns7++gtYCbCOdygSzHNhUSljvx57EQZAFrp7C9rmBB8x2v1/Xx11gjjrUfoG7IC+5gpdmNmujTlXUW4wPWmvzctlW5b8aQ8xOWEaagLVPMukfCwuTnl1UTCMe0/iheMBPGQIzz4nhS+iasRYH9mEvk3VSO52E6aSunsg1EFYSfCKtJ6ZWweiaYhswWwdiENwojrLCZpThxBMu4SSUTi8p2OV2nr5m7GYh/2DZnxmDFqAkntS9fvi735ekcutEFqXA9Phbg==";
    const MSG_SIGNATURE: &str = "dc7de126cc4c81271e454e2ad149bc4667a1d336";
    let s = shop();
    let query = format!(
        "signature=x&timestamp={NOW}&nonce={NONCE}&openid=o1&encrypt_type=aes&msg_signature={MSG_SIGNATURE}"
    );
    let body = format!(r#"{{"ToUserName":"gh_123456789abc","Encrypt":"{CT}"}}"#);
    let a = answer(&s.n.handle_push(APP, "POST", &query, &body).unwrap());
    assert_eq!(a["reply"], "success");
    assert_eq!(a["events"][0]["effect"], "grant_added");
    assert_eq!(a["events"][0]["create_time"], 1_700_000_000);
    assert_eq!(grants(&s, "o1", "T1"), 1);
    // Our encryption gives the same ciphertext for the same random bytes.
    let msg = r#"{"ToUserName":"gh_123456789abc","FromUserName":"o1","CreateTime":1700000000,"MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"T1","SubscribeStatusString":"accept","PopupScene":"0"}]}"#;
    assert_eq!(encrypt(&key(), b"0123456789abcdef", msg, APP), CT);
}

#[test]
fn safe_mode_xml_and_json() {
    let s = shop();
    let xml = format!(
        "<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>{NOW}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_popup_event]]></Event><SubscribeMsgPopupEvent><List><TemplateId><![CDATA[TX]]></TemplateId><SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>"
    );
    let (q, body) = sealed(&xml, APP, NOW);
    assert!(body.starts_with("<xml>"));
    let a = answer(&s.n.handle_push(APP, "POST", &q, &body).unwrap());
    assert_eq!(a["events"][0]["effect"], "grant_added");
    let (q, body) = sealed(&popup_json("o1", NOW, "TJ", "accept"), APP, NOW);
    s.n.handle_push(APP, "POST", &q, &body).unwrap();
    assert_eq!((grants(&s, "o1", "TX"), grants(&s, "o1", "TJ")), (1, 1));
}

#[test]
fn refusals_say_why_and_change_nothing() {
    let s = shop();
    let body = popup_json("o1", NOW, "T1", "accept");
    // Bad plain signature.
    let forged = plain_query(NOW).replace("signature=", "signature=f");
    assert!(
        refusal(s.n.handle_push(APP, "POST", &forged, &body)).contains("signature does not match")
    );
    // Bad msg_signature.
    let (q, sealed_body) = sealed(&body, APP, NOW);
    let q_bad = q.replace("msg_signature=", "msg_signature=0");
    assert!(refusal(s.n.handle_push(APP, "POST", &q_bad, &sealed_body))
        .contains("msg_signature does not match"));
    // Encrypted for another app.
    let (q, other) = sealed(&body, "wxother000000000", NOW);
    assert!(refusal(s.n.handle_push(APP, "POST", &q, &other))
        .contains("encrypted for appid \"wxother000000000\""));
    // Encrypted with another key (signed correctly, so it reaches decryption).
    let wrong =
        AesKey::from_encoding_aes_key("bbcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").unwrap();
    let ct = encrypt(&wrong, b"0123456789abcdef", &body, APP);
    let ts = NOW.to_string();
    let q = format!(
        "timestamp={ts}&nonce={NONCE}&encrypt_type=aes&msg_signature={}",
        signature(&[TOKEN, &ts, NONCE, &ct])
    );
    assert!(
        refusal(s.n.handle_push(APP, "POST", &q, &format!(r#"{{"Encrypt":"{ct}"}}"#)))
            .contains("does not decrypt")
    );
    // Unparseable bodies, plain and sealed.
    assert!(
        refusal(s.n.handle_push(APP, "POST", &plain_query(NOW), "not a body"))
            .contains("neither XML nor JSON")
    );
    assert!(
        refusal(s.n.handle_push(APP, "POST", &plain_query(NOW), "{\"List\":"))
            .contains("not valid JSON")
    );
    // A body quoting the Token and the key (found by the fuzz target): the message never shows them.
    let quoting = format!("<xml><A{TOKEN}{AES_KEY}>x</B></xml>");
    let m = refusal(s.n.handle_push(APP, "POST", &plain_query(NOW), &quoting));
    assert!(m.contains("not valid XML"), "{m}");
    assert!(!m.contains(TOKEN) && !m.contains(AES_KEY), "{m}");
    let long = format!("<xml><{}>x</B></xml>", "A".repeat(5000));
    assert!(refusal(s.n.handle_push(APP, "POST", &plain_query(NOW), &long)).len() < 400);
    let (q, b) = sealed("<xml><A></B></xml>", APP, NOW);
    assert!(refusal(s.n.handle_push(APP, "POST", &q, &b)).contains("not valid XML"));
    assert!(refusal(s.n.handle_push(APP, "POST", &q, "{}")).contains("no `Encrypt`"));
    // Timestamps far from now, either way; 300 s is still accepted.
    for ts in [NOW - 301, NOW + 301] {
        assert!(
            refusal(s.n.handle_push(APP, "POST", &plain_query(ts), &body))
                .contains("more than 300 s")
        );
    }
    assert!(refusal(s.n.handle_push(
        APP,
        "POST",
        &plain_query(NOW).replace(&NOW.to_string(), "soon"),
        &body
    ))
    .contains("timestamp must be unix seconds"));
    assert!(refusal(s.n.handle_push(
        APP,
        "POST",
        "encrypt_type=des&timestamp=1409304348&nonce=x",
        &body
    ))
    .contains("encrypt_type must be"));
    assert_eq!(grants(&s, "o1", "T1"), 0, "nothing refused was applied");
    s.n.handle_push(APP, "POST", &plain_query(NOW - 300), &body)
        .unwrap();
    s.clock.advance_secs(300);
    s.n.handle_push(
        APP,
        "POST",
        &plain_query(NOW),
        &popup_json("o1", NOW + 1, "T1", "accept"),
    )
    .unwrap();
    assert_eq!(grants(&s, "o1", "T1"), 2);
    // An unknown app, an app without push credentials.
    assert!(matches!(
        s.n.handle_push("wxnone", "POST", &plain_query(NOW), &body),
        Err(Error::AppNotConfigured(_))
    ));
    s.n.register_app(r#"{"appid":"wxplain","secret":"s"}"#)
        .unwrap();
    match s.n.handle_push("wxplain", "POST", &plain_query(NOW), &body) {
        Err(Error::AppNotConfigured(m)) => assert!(m.contains("no push credentials"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn safe_mode_needs_the_key() {
    let clock = Arc::new(ManualClock::at(NOW));
    let n = Notifier::with_clock(clock);
    n.register_app(&format!(
        r#"{{"appid":"{APP}","secret":"s","push":{{"token":"{TOKEN}"}}}}"#
    ))
    .unwrap();
    let (q, body) = sealed(&popup_json("o1", NOW, "T1", "accept"), APP, NOW);
    assert!(refusal(n.handle_push(APP, "POST", &q, &body)).contains("no push.encoding_aes_key"));
}

#[test]
fn a_retried_push_is_applied_once() {
    let s = shop();
    let body = popup_json("o1", NOW, "T1", "accept");
    assert_eq!(post(&s, &body)["events"][0]["effect"], "grant_added");
    // WeChat retries with a new nonce and signature: still the same push.
    let ts = (NOW + 5).to_string();
    let q = format!(
        "signature={}&timestamp={ts}&nonce=other",
        signature(&[TOKEN, &ts, "other"])
    );
    let again = answer(&s.n.handle_push(APP, "POST", &q, &body).unwrap());
    assert_eq!(again["reply"], "success");
    assert_eq!(again["events"][0]["effect"], "duplicate");
    assert_eq!(grants(&s, "o1", "T1"), 1);
    // Safe mode carries the same push: also a duplicate.
    let (q, sealed_body) = sealed(&body, APP, NOW);
    assert_eq!(
        answer(&s.n.handle_push(APP, "POST", &q, &sealed_body).unwrap())["events"][0]["effect"],
        "duplicate"
    );
    // Another tap, a second later, is a new push.
    post(&s, &popup_json("o1", NOW + 1, "T1", "accept"));
    assert_eq!(grants(&s, "o1", "T1"), 2);
}

#[test]
fn a_withdrawn_template_drops_the_buyers_grants() {
    let s = shop();
    post(&s, &popup_json("o1", NOW, "T1", "accept"));
    post(&s, &popup_json("o1", NOW + 1, "T1", "accept"));
    post(&s, &popup_json("o1", NOW + 2, "T2", "accept"));
    post(&s, &popup_json("o2", NOW, "T1", "accept"));
    let a = post(
        &s,
        &event_json(
            "o1",
            NOW + 3,
            "subscribe_msg_change_event",
            r#"{"TemplateId":"T1","SubscribeStatusString":"reject"}"#,
        ),
    );
    assert_eq!(a["events"][0]["effect"], "grants_dropped");
    assert_eq!(a["events"][0]["dropped"], 2);
    assert!(s
        .n
        .ledger()
        .take(APP, "o1", &PermitRequest::subscribe("T1"))
        .unwrap()
        .is_none());
    assert_eq!((grants(&s, "o1", "T2"), grants(&s, "o2", "T1")), (1, 1));
    // A new accept grants again.
    post(&s, &popup_json("o1", NOW + 4, "T1", "accept"));
    assert_eq!(grants(&s, "o1", "T1"), 1);
}

#[test]
fn sent_results_are_reported_and_a_block_drops_grants() {
    let s = shop();
    let dir = std::env::temp_dir().join(format!("fashop-notify-push-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("push.jsonl");
    s.n.configure(&format!(
        r#"{{"log":{{"path":{}}}}}"#,
        Value::from(log.to_str().unwrap())
    ))
    .unwrap();
    post(&s, &popup_json("o1", NOW, "T1", "accept"));
    post(&s, &popup_json("o1", NOW + 1, "T1", "accept"));
    let sent = |t: i64, code: i64, status: &str| {
        event_json(
            "o1",
            t,
            "subscribe_msg_sent_event",
            &format!(
                r#"{{"TemplateId":"T1","MsgID":"2794188253209100289","ErrorCode":"{code}","ErrorStatus":"{status}"}}"#
            ),
        )
    };
    let a = post(&s, &sent(NOW + 2, 0, "success"));
    assert_eq!(a["events"][0]["effect"], "delivered");
    assert_eq!(a["events"][0]["msgid"], "2794188253209100289");
    assert_eq!(a["events"][0]["errcode"], 0);
    let a = post(&s, &sent(NOW + 3, 10005, "failed:system failed"));
    assert_eq!(a["events"][0]["effect"], "system_failed");
    assert_eq!(grants(&s, "o1", "T1"), 2);
    let a = post(&s, &sent(NOW + 4, 10004, "failed:user block"));
    assert_eq!(a["events"][0]["effect"], "user_block");
    assert_eq!(a["events"][0]["dropped"], 2);
    assert_eq!(grants(&s, "o1", "T1"), 0);
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["kind"] == "push" && l["event"] == "subscribe_msg_sent_event")
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["status"], "success");
    assert_eq!(lines[0]["level"], "info");
    assert_eq!(lines[0]["msgid"], 2794188253209100289i64);
    assert_eq!(lines[2]["status"], "failed:user block");
    assert_eq!(lines[2]["level"], "warn");
    assert_eq!(lines[2]["operation"], "user_block");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains(TOKEN) && !text.contains(AES_KEY));
    let m = s.n.metrics_text("prometheus").unwrap();
    for (effect, n) in [("delivered", 1), ("system_failed", 1), ("user_block", 1)] {
        let line = format!(
            "fashop_notify_push_events_total{{event=\"subscribe_msg_sent_event\",effect=\"{effect}\"}} {n}"
        );
        assert!(m.contains(&line), "{line} in\n{m}");
    }
    assert!(m.contains(
        "fashop_notify_push_events_total{event=\"subscribe_msg_popup_event\",effect=\"grant_added\"} 2"
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_pushes_are_answered_success_and_reported() {
    let s = shop();
    let a = post(
        &s,
        &format!(
            r#"{{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":{NOW},"MsgType":"event","Event":"user_enter_tempsession","SessionFrom":"x"}}"#
        ),
    );
    assert_eq!(a["reply"], "success");
    assert_eq!(a["events"][0]["event"], "user_enter_tempsession");
    assert_eq!(a["events"][0]["effect"], "ignored");
    let a = post(
        &s,
        "<xml><MsgType><![CDATA[text]]></MsgType><Content>hi</Content></xml>",
    );
    assert_eq!(a["events"][0]["event"], "text");
    // An unknown status in a known event is reported, not applied.
    let a = post(&s, &popup_json("o1", NOW, "T1", "maybe"));
    assert_eq!(a["events"][0]["effect"], "ignored");
    assert_eq!(grants(&s, "o1", "T1"), 0);
}

#[test]
fn grants_from_push_or_from_the_client_never_both() {
    // "push": the client's own report of a subscribe grant is refused.
    let s = shop();
    let m = refusal(
        s.n.add_permit(
            APP,
            r#"{"openid":"o1","kind":"subscribe","template_id":"T1"}"#,
        )
        .map(|_| String::new()),
    );
    assert!(m.contains("only from WeChat's message push"), "{m}");
    s.n.add_permit(APP, r#"{"openid":"o1","kind":"form_id","value":"fid-1"}"#)
        .unwrap();
    // "client": the push reports the tap, the client's report grants.
    let c = shop_with("client");
    let a = post(&c, &popup_json("o1", NOW, "T1", "accept"));
    assert_eq!(a["events"][0]["effect"], "reported");
    assert_eq!(grants(&c, "o1", "T1"), 0);
    c.n.add_permit(
        APP,
        r#"{"openid":"o1","kind":"subscribe","template_id":"T1"}"#,
    )
    .unwrap();
    assert_eq!(grants(&c, "o1", "T1"), 1);
    // Withdrawals apply whatever the source.
    post(
        &c,
        &event_json(
            "o1",
            NOW + 1,
            "subscribe_msg_change_event",
            r#"[{"TemplateId":"T1","SubscribeStatusString":"reject"}]"#,
        ),
    );
    assert_eq!(grants(&c, "o1", "T1"), 0);
}

/// A notifier at NOW with the app registered with `push` (the object's JSON).
fn app_with_push(push: &str) -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(NOW)));
    n.register_app(&format!(
        r#"{{"appid":"{APP}","secret":"app-secret","grants":"push","push":{push}}}"#
    ))
    .unwrap();
    n
}

fn push_count(n: &Notifier, event: &str, effect: &str) -> u64 {
    let m = n.metrics_text("prometheus").unwrap();
    let head = format!("fashop_notify_push_events_total{{event=\"{event}\",effect=\"{effect}\"}} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&head))
        .map_or(0, |v| v.parse().unwrap())
}

fn grants_of(n: &Notifier, openid: &str, template: &str) -> u64 {
    let v: Value = serde_json::from_str(&n.ledger_stats(APP, Some(openid)).unwrap()).unwrap();
    v["subscribe"]["templates"][template].as_u64().unwrap_or(0)
}

#[test]
fn a_safe_mode_app_refuses_plain_bodies() {
    // Registered with its EncodingAESKey and no mode: safe mode.
    let n = app_with_push(&format!(
        r#"{{"token":"{TOKEN}","encoding_aes_key":"{AES_KEY}"}}"#
    ));
    // A real, encrypted tap grants.
    let (q, body) = sealed(&popup_json("o1", NOW, "T1", "accept"), APP, NOW);
    n.handle_push(APP, "POST", &q, &body).unwrap();
    assert_eq!(grants_of(&n, "o1", "T1"), 1);
    // Forged plain bodies signed with a captured signature/timestamp/nonce:
    // accepts that WeChat never pushed, a withdrawal the buyer never made.
    for (i, forged) in [
        popup_json("o2", NOW, "T1", "accept"),
        event_json(
            "o1",
            NOW + 1,
            "subscribe_msg_change_event",
            r#"[{"TemplateId":"T1","SubscribeStatusString":"reject"}]"#,
        ),
    ]
    .iter()
    .enumerate()
    {
        let m = refusal(n.handle_push(APP, "POST", &plain_query(NOW), forged));
        assert!(m.contains("takes only safe-mode pushes"), "{m}");
        assert_eq!(push_count(&n, "refused", "not_encrypted"), i as u64 + 1);
    }
    assert_eq!(grants_of(&n, "o2", "T1"), 0, "no forged grant");
    assert_eq!(grants_of(&n, "o1", "T1"), 1, "the real grant kept");
    // "raw" is plain too; a safe body without msg_signature is refused.
    let q = plain_query(NOW) + "&encrypt_type=raw";
    assert!(
        refusal(n.handle_push(APP, "POST", &q, &popup_json("o2", NOW, "T1", "accept")))
            .contains("takes only safe-mode pushes")
    );
    let (q, body) = sealed(&popup_json("o2", NOW, "T1", "accept"), APP, NOW);
    let without = q
        .split('&')
        .filter(|p| !p.starts_with("msg_signature="))
        .collect::<Vec<_>>()
        .join("&");
    assert!(refusal(n.handle_push(APP, "POST", &without, &body)).contains("no `msg_signature`"));
    assert_eq!(grants_of(&n, "o2", "T1"), 0);
    // The URL check (GET, signed with `signature`) still works in safe mode.
    let q = format!("{}&echostr=e1", plain_query(NOW));
    assert_eq!(
        answer(&n.handle_push(APP, "GET", &q, "").unwrap())["reply"],
        "e1"
    );
}

#[test]
fn modes_are_chosen_by_name_and_checked() {
    // Compatible mode (switching from plain to safe) takes both, by name only.
    let n = app_with_push(&format!(
        r#"{{"token":"{TOKEN}","encoding_aes_key":"{AES_KEY}","mode":"compatible"}}"#
    ));
    n.handle_push(
        APP,
        "POST",
        &plain_query(NOW),
        &popup_json("o1", NOW, "T1", "accept"),
    )
    .unwrap();
    let (q, body) = sealed(&popup_json("o1", NOW + 1, "T1", "accept"), APP, NOW);
    n.handle_push(APP, "POST", &q, &body).unwrap();
    assert_eq!(grants_of(&n, "o1", "T1"), 2);
    let n = Notifier::with_clock(Arc::new(ManualClock::at(NOW)));
    let refused = |push: String| match n.register_app(&format!(
        r#"{{"appid":"{APP}","secret":"s","push":{push}}}"#
    )) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(refused(format!(r#"{{"token":"{TOKEN}","mode":"safe"}}"#))
        .contains("push.mode \"safe\" needs push.encoding_aes_key"));
    assert!(
        refused(format!(r#"{{"token":"{TOKEN}","mode":"compatible"}}"#))
            .contains("push.mode \"compatible\" needs push.encoding_aes_key")
    );
    let m = refused(format!(
        r#"{{"token":"{TOKEN}","encoding_aes_key":"{AES_KEY}","mode":"plain"}}"#
    ));
    assert!(
        m.contains("push.mode \"plain\" takes no encoding_aes_key"),
        "{m}"
    );
    assert!(!m.contains(AES_KEY));
    assert!(refused(format!(r#"{{"token":"{TOKEN}","mode":"open"}}"#)).contains("unknown variant"));
    for bad in ["0", "259201", "-1", "\"60\""] {
        let m = refused(format!(r#"{{"token":"{TOKEN}","max_skew_secs":{bad}}}"#));
        assert!(m.contains("max_skew_secs"), "{bad}: {m}");
    }
}

#[test]
fn a_captured_query_cannot_carry_another_body() {
    // Plain mode: the signature covers the timestamp and nonce, not the body.
    let n = app_with_push(&format!(r#"{{"token":"{TOKEN}"}}"#));
    let q = plain_query(NOW);
    let tap = popup_json("o1", NOW, "T1", "accept");
    assert_eq!(
        answer(&n.handle_push(APP, "POST", &q, &tap).unwrap())["events"][0]["effect"],
        "grant_added"
    );
    // WeChat repeating the very request: answered, applied once.
    assert_eq!(
        answer(&n.handle_push(APP, "POST", &q, &tap).unwrap())["events"][0]["effect"],
        "duplicate"
    );
    // The captured query with a body of the forger's choosing.
    let withdraw = event_json(
        "o1",
        NOW,
        "subscribe_msg_change_event",
        r#"[{"TemplateId":"T1","SubscribeStatusString":"reject"}]"#,
    );
    let m = refusal(n.handle_push(APP, "POST", &q, &withdraw));
    assert!(m.contains("already used by another push"), "{m}");
    let m = refusal(n.handle_push(APP, "POST", &q, &popup_json("o9", NOW, "T1", "accept")));
    assert!(m.contains("already used by another push"), "{m}");
    assert_eq!(grants_of(&n, "o1", "T1"), 1);
    assert_eq!(grants_of(&n, "o9", "T1"), 0);
    assert_eq!(push_count(&n, "refused", "replayed"), 2);
    // A push that could not be applied leaves its nonce free for WeChat's retry.
    let q2 = plain_query(NOW);
    assert!(n.handle_push(APP, "POST", &q2, "{\"List\":").is_err());
    n.handle_push(APP, "POST", &q2, &popup_json("o3", NOW, "T1", "accept"))
        .unwrap();
    assert_eq!(grants_of(&n, "o3", "T1"), 1);
}

#[test]
fn workers_sharing_a_store_agree_on_used_nonces() {
    let dir = std::env::temp_dir().join(format!("fashop-notify-nonces-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!(
        r#"{{"store":"sqlite:{}"}}"#,
        dir.join("notify.db").display()
    );
    let worker = || {
        let n = Notifier::with_clock(Arc::new(ManualClock::at(NOW)));
        n.configure(&store).unwrap();
        n.register_app(&format!(
            r#"{{"appid":"{APP}","secret":"s","grants":"push","push":{{"token":"{TOKEN}"}}}}"#
        ))
        .unwrap();
        n
    };
    let (a, b) = (worker(), worker());
    let q = plain_query(NOW);
    a.handle_push(APP, "POST", &q, &popup_json("o1", NOW, "T1", "accept"))
        .unwrap();
    let m = refusal(b.handle_push(APP, "POST", &q, &popup_json("o2", NOW, "T1", "accept")));
    assert!(m.contains("already used by another push"), "{m}");
    assert_eq!(grants_of(&b, "o1", "T1"), 1);
    assert_eq!(grants_of(&b, "o2", "T1"), 0);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_clock_window_is_a_setting_and_refusals_are_logged() {
    let dir = std::env::temp_dir().join(format!("fashop-notify-skew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("notify.jsonl");
    // The default window: a day. A server clock 7,500 s off keeps its pushes.
    let n = app_with_push(&format!(r#"{{"token":"{TOKEN}"}}"#));
    n.configure(&format!(r#"{{"log": {{"path": "{}"}}}}"#, log.display()))
        .unwrap();
    n.handle_push(
        APP,
        "POST",
        &plain_query(NOW - 7_500),
        &popup_json("o1", NOW, "T1", "accept"),
    )
    .unwrap();
    assert_eq!(grants_of(&n, "o1", "T1"), 1);
    let m = refusal(n.handle_push(
        APP,
        "POST",
        &plain_query(NOW - 86_401),
        &popup_json("o2", NOW, "T1", "accept"),
    ));
    assert!(m.contains("86401 s behind this server's clock"), "{m}");
    assert!(m.contains("more than 86400 s (push.max_skew_secs)"), "{m}");
    // The URL check is the signature alone (WeChat's rule): a clock a day
    // off still answers it.
    let a = n
        .handle_push(APP, "GET", &(plain_query(NOW + 90_000) + "&echostr=x"), "")
        .unwrap();
    assert_eq!(answer(&a)["reply"], "x");
    let m = refusal(n.handle_push(
        APP,
        "POST",
        &plain_query(NOW + 90_000),
        &popup_json("o2", NOW, "T1", "accept"),
    ));
    assert!(m.contains("90000 s ahead of this server's clock"), "{m}");
    assert_eq!(push_count(&n, "refused", "timestamp_out_of_window"), 2);
    let lines: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|l: &Value| l["status"] == "refused")
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["kind"], "push");
    assert_eq!(lines[0]["level"], "warn");
    assert_eq!(lines[0]["operation"], "timestamp_out_of_window");
    assert!(lines[0]["errmsg"]
        .as_str()
        .unwrap()
        .contains("86401 s behind"));
    // A shop may narrow it.
    let n = app_with_push(&format!(r#"{{"token":"{TOKEN}","max_skew_secs":60}}"#));
    let m = refusal(n.handle_push(
        APP,
        "POST",
        &plain_query(NOW - 61),
        &popup_json("o1", NOW, "T1", "accept"),
    ));
    assert!(m.contains("more than 60 s"), "{m}");
    let _ = std::fs::remove_dir_all(&dir);
}
