//! The whole push loop through the sandbox: the sandbox checks the shop's push
//! URL, a buyer taps accept or reject, a send is delivered, a buyer switches a
//! template off; each time the sandbox pushes (signed, and in safe mode
//! encrypted) to the shop's endpoint, which hands the request to the library,
//! and the ledger follows. Pushes go out when the test flushes them.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use fashop_notify::{Error, ManualClock, Notifier};
use fashop_notify_sandbox::{
    Sandbox, SandboxOptions, DEMO_APPID, DEMO_SECRET, TPL_DELIVERED, TPL_PAY_SUCCESS,
};
use serde_json::{json, Value};

const NOW: i64 = 1_795_426_300;
const BUYER: &str = "oBuyer_push_loop_01";
const TOKEN: &str = "sandboxpush42";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const EXAMPLE_MAPPINGS: &str = include_str!("../examples/mappings.json");

/// The shop's push endpoint: every request to it goes to `handle_push`; the
/// answers (or refusals) are kept for the test to read.
struct Endpoint {
    url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    answers: Arc<Mutex<Vec<Result<Value, String>>>>,
}

impl Endpoint {
    fn start(n: Arc<Notifier>) -> Endpoint {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (server.clone(), answers.clone());
        let thread = std::thread::spawn(move || {
            for mut req in s.incoming_requests() {
                let method = req.method().to_string();
                let url = req.url().to_string();
                let query = url.split_once('?').map_or("", |(_, q)| q).to_string();
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                let (status, text) = match n.handle_push(DEMO_APPID, &method, &query, &body) {
                    Ok(answer) => {
                        let v: Value = serde_json::from_str(&answer).unwrap();
                        let reply = v["reply"].as_str().unwrap().to_string();
                        a.lock().unwrap().push(Ok(v));
                        (200, reply)
                    }
                    // A push the shop could not keep is answered 503, so that
                    // WeChat (and the sandbox) tries it again; a refused one 403.
                    Err(e) => {
                        let status = if matches!(e, Error::Store(_)) {
                            503
                        } else {
                            403
                        };
                        a.lock().unwrap().push(Err(e.to_string()));
                        (status, String::new())
                    }
                };
                let _ =
                    req.respond(tiny_http::Response::from_string(text).with_status_code(status));
            }
        });
        Endpoint {
            url: format!("http://127.0.0.1:{port}/api/wechat/push"),
            server,
            thread: Some(thread),
            answers,
        }
    }

    fn take(&self) -> Vec<Result<Value, String>> {
        std::mem::take(&mut *self.answers.lock().unwrap())
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    sb: Sandbox,
    n: Arc<Notifier>,
    endpoint: Endpoint,
    agent: ureq::Agent,
    last_sn: std::sync::Mutex<String>,
}

impl Loop {
    fn new(format: &str, mode: &str) -> Loop {
        Loop::with_store(format, mode, "memory")
    }

    fn with_store(format: &str, mode: &str, store: &str) -> Loop {
        let sb = Sandbox::start_with(SandboxOptions {
            clock_start: Some(NOW),
            ..SandboxOptions::default()
        });
        let n = Arc::new(Notifier::with_clock(Arc::new(ManualClock::at(NOW))));
        n.configure(&json!({"api_base": sb.url(), "max_retries": 0, "store": store}).to_string())
            .unwrap();
        // The app as the admin's 消息加密方式 says: a key only in safe mode.
        let push = if mode == "safe" {
            json!({"token": TOKEN, "encoding_aes_key": AES_KEY, "format": format})
        } else {
            json!({"token": TOKEN, "format": format})
        };
        n.register_app(
            &json!({
                "appid": DEMO_APPID, "secret": DEMO_SECRET, "grants": "push", "push": push,
            })
            .to_string(),
        )
        .unwrap();
        n.load_mappings(DEMO_APPID, EXAMPLE_MAPPINGS).unwrap();
        let endpoint = Endpoint::start(n.clone());
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        let l = Loop {
            sb,
            n,
            endpoint,
            agent: ureq::Agent::new_with_config(config),
            last_sn: std::sync::Mutex::new(String::new()),
        };
        // The admin's submit: the sandbox checks the URL with a signed GET.
        let (status, v) = l.control(
            "push",
            &json!({"appid": DEMO_APPID, "url": l.endpoint.url, "token": TOKEN,
                    "encoding_aes_key": AES_KEY, "format": format, "mode": mode}),
        );
        assert_eq!((status, &v["verified"]), (200, &json!(true)), "{v}");
        let check = l.endpoint.take();
        assert_eq!(check.len(), 1);
        assert!(check[0].as_ref().unwrap()["reply"].as_str().unwrap().len() > 3);
        l
    }

    fn control(&self, path: &str, body: &Value) -> (u16, Value) {
        let mut resp = self
            .agent
            .post(format!("{}/sandbox/{path}", self.sb.url()))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap(),
        )
    }

    /// Delivers the queued pushes; the library's answers to them.
    fn flush(&self) -> Vec<Value> {
        let (status, v) = self.control("pushes/flush", &json!({}));
        assert_eq!(status, 200, "{v}");
        for p in v["pushes"].as_array().unwrap() {
            assert_eq!(p["status"], 200, "{p}");
            assert_eq!(p["reply"], "success", "{p}");
        }
        self.endpoint
            .take()
            .into_iter()
            .map(|a| a.unwrap_or_else(|e| panic!("push refused: {e}")))
            .collect()
    }

    fn grants(&self, tpl: &str) -> u64 {
        let v: Value =
            serde_json::from_str(&self.n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
        v["subscribe"]["templates"][tpl].as_u64().unwrap_or(0)
    }

    fn payload(sn: &str) -> String {
        json!({"touser": BUYER, "fields": {
            "order_id": 42, "order_sn": sn, "order_amount": "12.5",
            "order_total_goods_name": "连衣裙 x1", "order_total_goods_num": 1,
            "order_create_time": NOW - 60, "pay_time": NOW - 30}})
        .to_string()
    }

    fn send(&self) -> Result<(), Error> {
        let sn = format!("SN{}", rand_suffix());
        *self.last_sn.lock().unwrap() = sn.clone();
        self.n
            .send(DEMO_APPID, "order_pay_success", &Self::payload(&sn))
            .result
    }

    fn last_order_sn(&self) -> String {
        self.last_sn.lock().unwrap().clone()
    }

    /// The last send once more (the same order, so the same idempotency key): its outcome.
    fn send_again(&self) -> Value {
        let report = self.n.send(
            DEMO_APPID,
            "order_pay_success",
            &Self::payload(&self.last_order_sn()),
        );
        serde_json::to_value(report.outcome.unwrap()).unwrap()
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

fn the_whole_loop(format: &str, mode: &str) {
    let l = Loop::new(format, mode);
    // The popup: accept one template, reject another.
    let (status, v) = l.control(
        "taps",
        &json!({"appid": DEMO_APPID, "openid": BUYER,
                "choices": {TPL_PAY_SUCCESS: "accept", TPL_DELIVERED: "reject"}}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        l.grants(TPL_PAY_SUCCESS),
        0,
        "nothing before the push arrives"
    );
    let answers = l.flush();
    assert_eq!(answers.len(), 1);
    let events = answers[0]["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let by_tpl = |t: &str| {
        events
            .iter()
            .find(|e| e["template_id"] == t)
            .unwrap()
            .clone()
    };
    assert_eq!(by_tpl(TPL_PAY_SUCCESS)["effect"], "grant_added");
    assert_eq!(by_tpl(TPL_DELIVERED)["effect"], "none");
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 1);
    assert_eq!(l.grants(TPL_DELIVERED), 0);

    // The send is delivered; the sandbox then pushes the sent event.
    l.send().unwrap();
    assert_eq!(l.sb.delivered(DEMO_APPID, BUYER).len(), 1);
    let answers = l.flush();
    assert_eq!(answers.len(), 1);
    let e = &answers[0]["events"][0];
    assert_eq!(e["event"], "subscribe_msg_sent_event");
    assert_eq!(e["effect"], "delivered");
    assert_eq!(
        e["msgid"].as_str().unwrap(),
        l.sb.delivered(DEMO_APPID, BUYER)[0].msgid.to_string()
    );
    // The result is recorded against the send that got that msgid: a repeat
    // of the send (a retried PHP request) says the message arrived.
    let sent_key = e["idempotency_key"].as_str().unwrap().to_string();
    assert!(sent_key.contains(&l.last_order_sn()), "{sent_key}");
    let again = l.send_again();
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["delivery"], "delivered");

    // Another accept, then the buyer switches the template off in the settings.
    l.control(
        "taps",
        &json!({"appid": DEMO_APPID, "openid": BUYER, "choices": {TPL_PAY_SUCCESS: "accept"}}),
    );
    l.flush();
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 1);
    let (status, v) = l.control(
        "revoke",
        &json!({"appid": DEMO_APPID, "openid": BUYER, "template_id": TPL_PAY_SUCCESS}),
    );
    assert_eq!((status, &v["dropped"]), (200, &json!(1)), "{v}");
    let answers = l.flush();
    assert_eq!(answers[0]["events"][0]["effect"], "grants_dropped");
    assert_eq!(answers[0]["events"][0]["dropped"], 1);
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 0);
    // The send answers no_permit without calling WeChat.
    let attempts = l.sb.counters().send_attempts;
    assert!(matches!(l.send(), Err(Error::NoPermit(_))));
    assert_eq!(l.sb.counters().send_attempts, attempts);
    // Nothing queued is left, and the sandbox's log has every push.
    let mut resp = l
        .agent
        .get(format!("{}/sandbox/pushes", l.sb.url()))
        .call()
        .unwrap();
    let log: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(log["queued"], 0);
    assert_eq!(log["pushes"].as_array().unwrap().len(), 4);
    for p in log["pushes"].as_array().unwrap() {
        assert_eq!(
            (&p["attempts"], &p["state"]),
            (&json!(1), &json!("delivered")),
            "{p}"
        );
    }
}

#[test]
fn plain_json_loop() {
    the_whole_loop("json", "plain");
}

#[test]
fn safe_xml_loop() {
    the_whole_loop("xml", "safe");
}

#[test]
fn safe_json_loop() {
    the_whole_loop("json", "safe");
}

#[test]
fn plain_xml_loop() {
    the_whole_loop("xml", "plain");
}

#[test]
fn a_url_that_does_not_echo_is_refused_and_bad_requests_say_why() {
    let l = Loop::new("json", "plain");
    // A token the shop does not know: the URL check fails, as in the admin.
    let (status, v) = l.control(
        "push",
        &json!({"appid": DEMO_APPID, "url": l.endpoint.url, "token": "othertoken1"}),
    );
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("push URL check failed"),
        "{v}"
    );
    assert!(l.endpoint.take()[0]
        .as_ref()
        .unwrap_err()
        .contains("signature does not match"));
    let (status, v) = l.control(
        "push",
        &json!({"appid": DEMO_APPID, "url": "http://example.com/push", "token": TOKEN}),
    );
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("127.0.0.1"), "{v}");
    let (status, v) = l.control(
        "push",
        &json!({"appid": DEMO_APPID, "url": l.endpoint.url, "token": TOKEN, "mode": "safe"}),
    );
    assert_eq!(status, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("needs encoding_aes_key"),
        "{v}"
    );
    let (status, v) = l.control(
        "taps",
        &json!({"appid": DEMO_APPID, "openid": BUYER, "choices": {TPL_PAY_SUCCESS: "accept", TPL_DELIVERED: "maybe"}}),
    );
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("a choice is"), "{v}");
    assert_eq!(
        l.sb.grants_left(DEMO_APPID, BUYER, TPL_PAY_SUCCESS),
        0,
        "a refused popup grants nothing"
    );
    // The earlier, working target stays in force.
    l.control(
        "taps",
        &json!({"appid": DEMO_APPID, "openid": BUYER, "choices": {TPL_PAY_SUCCESS: "accept"}}),
    );
    assert_eq!(l.flush()[0]["events"][0]["effect"], "grant_added");
}

impl Loop {
    /// `GET /sandbox/pushes`.
    fn pushes(&self) -> Value {
        let mut resp = self
            .agent
            .get(format!("{}/sandbox/pushes", self.sb.url()))
            .call()
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// A flush whose one push the shop cannot apply: the sandbox's record of it.
    fn flush_refused(&self, attempts: u32) -> Value {
        let (status, v) = self.control("pushes/flush", &json!({}));
        assert_eq!(status, 200, "{v}");
        let pushes = v["pushes"].as_array().unwrap();
        assert_eq!(pushes.len(), 1, "{v}");
        assert_eq!(
            pushes[0]["status"], 503,
            "the endpoint answers an error: {v}"
        );
        assert_eq!(pushes[0]["attempts"], attempts, "{v}");
        let refused = self.endpoint.take();
        assert_eq!(refused.len(), 1);
        let e = refused[0].as_ref().unwrap_err();
        assert!(e.contains("store file was deleted"), "{e}");
        pushes[0].clone()
    }
}

/// The shop's store goes away (its directory moved aside) while a buyer taps
/// accept: the endpoint cannot apply the push and answers 503; the sandbox
/// keeps the push and tries it again at each flush, as WeChat retries; once
/// the store is back the grant lands, once. A push failing 4 times (WeChat's
/// first request and 3 retries) is given up.
#[test]
fn a_push_the_shop_could_not_apply_is_retried_until_it_lands_or_is_given_up() {
    let dir = std::env::temp_dir().join(format!(
        "push-retry-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    let away = dir.with_extension("away");
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", dir.join("store.db").display());
    let l = Loop::with_store("json", "plain", &store);
    let tap = || {
        let (status, v) = l.control(
            "taps",
            &json!({"appid": DEMO_APPID, "openid": BUYER, "choices": {TPL_PAY_SUCCESS: "accept"}}),
        );
        assert_eq!(status, 200, "{v}");
    };
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 0, "the store is open");

    tap();
    std::fs::rename(&dir, &away).unwrap();
    for attempt in 1..=2 {
        assert_eq!(l.flush_refused(attempt)["state"], "retrying");
        assert_eq!(l.pushes()["queued"], 1, "the sandbox keeps it");
    }
    std::fs::rename(&away, &dir).unwrap();
    let answers = l.flush();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["events"][0]["effect"], "grant_added");
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 1);
    let log = l.pushes();
    assert_eq!(log["queued"], 0);
    assert_eq!(log["pushes"][0]["attempts"], 3);
    assert_eq!(log["pushes"][0]["state"], "delivered");
    // Delivered: nothing is retried, the grant landed exactly once.
    let (_, v) = l.control("pushes/flush", &json!({}));
    assert_eq!(v["pushes"], json!([]));
    assert!(l.endpoint.take().is_empty());
    assert_eq!(l.grants(TPL_PAY_SUCCESS), 1);

    // Four failed attempts: given up, and never tried again.
    tap();
    std::fs::rename(&dir, &away).unwrap();
    for attempt in 1..=4 {
        let state = if attempt < 4 { "retrying" } else { "given_up" };
        assert_eq!(l.flush_refused(attempt)["state"], state);
    }
    std::fs::rename(&away, &dir).unwrap();
    let (_, v) = l.control("pushes/flush", &json!({}));
    assert_eq!(v["pushes"], json!([]));
    assert!(l.endpoint.take().is_empty());
    assert_eq!(
        l.grants(TPL_PAY_SUCCESS),
        1,
        "the given-up accept never landed"
    );
    let log = l.pushes();
    assert_eq!(log["queued"], 0);
    assert_eq!(log["pushes"][1]["attempts"], 4);
    assert_eq!(log["pushes"][1]["state"], "given_up");
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
}
