//! WeChat fidelity, round three (issue #31): each rule of WeChat's pages
//! that the audit found missing, tested against the sandbox or the push
//! handler (sources in docs/spec/wechat.md).

use std::sync::Arc;

use fashop_notify::{Clock, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Fault, Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const BUYER: &str = "oBuyer_fidelity3_000001";

fn payload(order_sn: &str) -> String {
    json!({"touser": BUYER, "fields": {
        "order_id": 42, "order_sn": order_sn, "order_amount": "12.34",
        "order_total_goods_name": "羊毛围巾 x2", "order_total_goods_num": 2,
        "order_create_time": 1795426200, "pay_time": 1795426265}})
    .to_string()
}

/// A notifier on the sandbox with the example mappings and `grants` grants
/// of the pay-success template for BUYER, in both the sandbox and the ledger.
fn shop(sb: &Sandbox, grants: u64) -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())));
    n.configure(&json!({"api_base": sb.url(), "max_retries": 2}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, grants);
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": grants})
            .to_string(),
    )
    .unwrap();
    n
}

fn grants_left(n: &Notifier) -> u64 {
    let v: Value = serde_json::from_str(&n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    v["subscribe"]["templates"][TPL_PAY_SUCCESS]
        .as_u64()
        .unwrap_or(0)
}

fn banned_count(n: &Notifier) -> i64 {
    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    v["fashop_notify_subscribe_banned_total"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["appid"] == DEMO_APPID && r["event"] == "order_pay_success")
        .map(|r| r["value"].as_i64().unwrap())
        .sum()
}

/// Items 1 and 12: each code fails at once (one attempt), gives the grant
/// back, and the error says what happened and what to check.
#[test]
fn codes_a_retry_cannot_mend_fail_once_and_say_what_to_check() {
    let sb = Sandbox::start();
    let n = shop(&sb, 3);
    let cases: [(i64, &[&str]); 4] = [
        (43107, &["banned", "订阅消息", "mp.weixin.qq.com"]),
        (48001, &["lacks the permission", "订阅消息"]),
        (47001, &["could not read the body", "not retried"]),
        (40037, &["deleted it", "mapping editor"]),
    ];
    for (i, (code, words)) in cases.iter().enumerate() {
        sb.inject(Fault::on(SEND).errcode(*code).count(5));
        let report = n.send(
            DEMO_APPID,
            "order_pay_success",
            &payload(&format!("SN-{i}")),
        );
        sb.clear_faults();
        let o = report.outcome.expect("an outcome");
        assert_eq!(o.status.as_str(), "failed", "{code}");
        assert_eq!(o.errcode, *code);
        assert_eq!(o.attempts, 1, "{code} is not retried");
        let e = report.result.expect_err("a WeChat error").to_string();
        for w in *words {
            assert!(e.contains(w), "{code}: {w:?} not in {e}");
        }
        assert_eq!(grants_left(&n), 3, "{code}: the grant is given back");
    }
    // 43107 alone is counted apart.
    assert_eq!(banned_count(&n), 1);
    let ok = n.send(DEMO_APPID, "order_pay_success", &payload("SN-ok"));
    assert_eq!(ok.outcome.unwrap().status.as_str(), "sent");
    assert_eq!(banned_count(&n), 1);
    let prom = n.metrics_text("prometheus").unwrap();
    let line = format!(
        "fashop_notify_subscribe_banned_total{{appid=\"{DEMO_APPID}\",event=\"order_pay_success\"}} 1"
    );
    assert!(prom.contains(&line), "{line} in\n{prom}");
}

const PUSH_TOKEN: &str = "fidelity3token";

/// `shop` with message push set up (plain JSON), so sends link their msgid.
fn shop_with_push(sb: &Sandbox, grants: u64) -> Notifier {
    let n = shop(sb, grants);
    n.register_app(
        &json!({"appid": DEMO_APPID, "secret": DEMO_SECRET, "grants": "push",
                "push": {"token": PUSH_TOKEN, "format": "json", "max_skew_secs": 300}})
        .to_string(),
    )
    .unwrap();
    n
}

fn now_secs() -> i64 {
    SystemClock.now_ms() / 1000
}

/// A signed plain-mode query at `ts`, with a nonce used once.
fn signed(ts: i64, extra: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nonce = format!("f3n{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let ts = ts.to_string();
    let sig = fashop_notify::push::signature(&[PUSH_TOKEN, &ts, &nonce]);
    format!("signature={sig}&timestamp={ts}&nonce={nonce}{extra}")
}

fn push(n: &Notifier, body: &Value) -> Value {
    let text = n
        .handle_push(
            DEMO_APPID,
            "POST",
            &signed(now_secs(), ""),
            &body.to_string(),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sent_event(create_time: i64, msgid: &str, list: Value) -> Value {
    let mut list = list;
    list["TemplateId"] = json!(TPL_PAY_SUCCESS);
    list["MsgID"] = json!(msgid);
    json!({"ToUserName": "gh_1", "FromUserName": BUYER, "CreateTime": create_time,
           "MsgType": "event", "Event": "subscribe_msg_sent_event", "List": list})
}

fn push_effects(n: &Notifier, event: &str, effect: &str) -> i64 {
    let v: Value = serde_json::from_str(&n.metrics_text("json").unwrap()).unwrap();
    v["fashop_notify_push_events_total"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"] == event && r["effect"] == effect)
        .map(|r| r["value"].as_i64().unwrap())
        .sum()
}

/// Item 2: every `accept…` status of the popup is an acceptance.
#[test]
fn every_accept_status_adds_a_grant() {
    let sb = Sandbox::start();
    let n = shop_with_push(&sb, 1);
    for (i, status) in [
        "acceptWithAlert",
        "acceptWithForcePush",
        "acceptWithAudio",
        "accept",
    ]
    .iter()
    .enumerate()
    {
        let body = json!({"ToUserName": "gh_1", "FromUserName": BUYER,
            "CreateTime": now_secs() + i as i64, "MsgType": "event",
            "Event": "subscribe_msg_popup_event",
            "List": {"TemplateId": TPL_PAY_SUCCESS, "SubscribeStatusString": status, "PopupScene": "0"}});
        let a = push(&n, &body);
        assert_eq!(a["events"][0]["effect"], "grant_added", "{status}: {a}");
        assert_eq!(grants_left(&n), 2 + i as u64, "{status}");
    }
    // A ban or a filter is no acceptance.
    for status in ["ban", "filter"] {
        let body = json!({"ToUserName": "gh_1", "FromUserName": BUYER,
            "CreateTime": now_secs() + 9, "MsgType": "event",
            "Event": "subscribe_msg_popup_event",
            "List": {"TemplateId": TPL_PAY_SUCCESS, "SubscribeStatusString": status}});
        assert_eq!(push(&n, &body)["events"][0]["effect"], "ignored");
    }
    assert_eq!(grants_left(&n), 5);
}

/// Item 3: `ErrorCode` decides a sent event: non-zero is a failed delivery
/// whatever `ErrorStatus` says, recorded against the send and counted.
#[test]
fn a_non_zero_error_code_is_a_failed_delivery_recorded_against_the_send() {
    let sb = Sandbox::start();
    let n = shop_with_push(&sb, 3);
    let sn = "SN-sent-1";
    let first = n.send(DEMO_APPID, "order_pay_success", &payload(sn));
    let o = first.outcome.unwrap();
    assert_eq!(o.status.as_str(), "sent");
    let msgid = match o.msgid.clone().unwrap() {
        Value::Number(m) => m.to_string(),
        Value::String(m) => m,
        other => panic!("msgid {other:?}"),
    };
    // A text the handler never keyed on, with a failure code.
    let a = push(
        &n,
        &sent_event(
            now_secs(),
            &msgid,
            json!({"ErrorCode": 10005, "ErrorStatus": "failed: system failed"}),
        ),
    );
    assert_eq!(a["events"][0]["effect"], "system_failed", "{a}");
    assert_eq!(a["events"][0]["errcode"], 10005);
    let again = n.send(DEMO_APPID, "order_pay_success", &payload(sn));
    let again = serde_json::to_value(again.outcome.unwrap()).unwrap();
    assert_eq!(again["status"], "duplicate");
    assert_eq!(again["delivery"], "system_failed");
    // Only ErrorCode, no ErrorStatus: still read, still a failure.
    let a = push(
        &n,
        &sent_event(now_secs() + 1, &msgid, json!({"ErrorCode": "10006"})),
    );
    assert_eq!(a["events"][0]["effect"], "system_failed", "{a}");
    // ErrorCode 0 is a delivery.
    let a = push(
        &n,
        &sent_event(
            now_secs() + 2,
            &msgid,
            json!({"ErrorCode": "0", "ErrorStatus": "success"}),
        ),
    );
    assert_eq!(a["events"][0]["effect"], "delivered", "{a}");
    assert_eq!(
        push_effects(&n, "subscribe_msg_sent_event", "system_failed"),
        2
    );
    assert_eq!(push_effects(&n, "subscribe_msg_sent_event", "delivered"), 1);
    // A failed delivery never drops the buyer's grants.
    assert_eq!(grants_left(&n), 2);
    // Neither code nor text: refused, naming what is missing.
    let e = n
        .handle_push(
            DEMO_APPID,
            "POST",
            &signed(now_secs(), ""),
            &sent_event(now_secs() + 3, &msgid, json!({})).to_string(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("ErrorStatus"), "{e}");
}

/// Item 4: the URL check is the signature alone; a skewed clock breaks no
/// handshake, while an event outside the window is refused naming the skew.
#[test]
fn the_url_check_ignores_the_clock_and_events_name_the_skew() {
    let sb = Sandbox::start();
    let n = shop_with_push(&sb, 1);
    for skew in [-90_000, 0, 90_000] {
        let q = signed(now_secs() + skew, "&echostr=echo42");
        let a: Value =
            serde_json::from_str(&n.handle_push(DEMO_APPID, "GET", &q, "").unwrap()).unwrap();
        assert_eq!(a["reply"], "echo42", "skew {skew}");
    }
    // The signature still decides.
    let q = signed(now_secs(), "&echostr=echo42").replace("signature=", "signature=0");
    let e = n
        .handle_push(DEMO_APPID, "GET", &q, "")
        .unwrap_err()
        .to_string();
    assert!(e.contains("signature does not match"), "{e}");
    // An event 400 s old is refused and the error says by how much.
    let body = sent_event(
        now_secs(),
        "1",
        json!({"ErrorCode": 0, "ErrorStatus": "success"}),
    );
    let e = n
        .handle_push(
            DEMO_APPID,
            "POST",
            &signed(now_secs() - 400, ""),
            &body.to_string(),
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("s behind this server's clock"), "{e}");
    assert!(e.contains("more than 300 s"), "{e}");
    assert_eq!(push_effects(&n, "refused", "timestamp_out_of_window"), 1);
}

/// Item 5: an API's daily quota through the library, from the sandbox's
/// `openapi/quota/get`; bad inputs are refused before any call.
#[test]
fn the_send_apis_daily_quota_is_read_and_bad_paths_are_refused() {
    let sb = Sandbox::start();
    let n = shop(&sb, 2);
    let quota = |path: Option<&str>| {
        let (r, text) = n.api_quota(DEMO_APPID, path);
        r.map(|()| serde_json::from_str::<Value>(&text.unwrap()).unwrap())
    };
    let before = quota(None).unwrap();
    assert_eq!(before["cgi_path"], "/cgi-bin/message/subscribe/send");
    assert_eq!(before["used"], 0);
    assert_eq!(before["daily_limit"], 100_000);
    assert_eq!(
        n.send(DEMO_APPID, "order_pay_success", &payload("SN-q1"))
            .outcome
            .unwrap()
            .status
            .as_str(),
        "sent"
    );
    let after = quota(Some("/cgi-bin/message/subscribe/send")).unwrap();
    assert_eq!(after["used"], 1);
    assert_eq!(after["remain"], 100_000 - 1);
    // The token fetch counted too.
    assert!(
        quota(Some("/cgi-bin/stable_token")).unwrap()["used"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Bad paths: INVALID_ARGUMENT naming the rule, nothing asked.
    let asked = sb.counters().requests;
    for (bad, words) in [
        (
            "https://api.weixin.qq.com/cgi-bin/token",
            "without https://",
        ),
        ("cgi-bin/token", "start with one '/'"),
        ("/cgi-bin/token?access_token=x", "without a query"),
        ("", "must not be empty"),
    ] {
        match quota(Some(bad)) {
            Err(fashop_notify::Error::InvalidArgument(m)) => {
                assert!(m.contains(words), "{bad:?}: {m}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    assert_eq!(sb.counters().requests, asked);
    // An app never registered.
    assert!(matches!(
        n.api_quota("wx_not_registered_0001", None).0,
        Err(fashop_notify::Error::AppNotConfigured(_))
    ));
    // A path WeChat does not know: WECHAT_ERROR with its answer.
    let (r, text) = n.api_quota(DEMO_APPID, Some("/cgi-bin/no/such/api"));
    assert!(
        matches!(r, Err(fashop_notify::Error::WeChat { errcode: 76021, .. })),
        "{r:?}"
    );
    assert!(text.unwrap().contains("76021"));
}

/// Item 5, the sandbox: `clear_quota/v2` takes the appid and secret (no
/// token), zeroes the day's counts, and refuses the eleventh reset of a month.
#[test]
fn clear_quota_v2_resets_ten_times_a_month_then_48006() {
    let sb = Sandbox::start();
    let n = shop(&sb, 1);
    n.send(DEMO_APPID, "order_pay_success", &payload("SN-c1"));
    let used = |n: &Notifier| {
        let (_, text) = n.api_quota(DEMO_APPID, None);
        serde_json::from_str::<Value>(&text.unwrap()).unwrap()["used"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(used(&n), 1);
    let http = ureq::Agent::new_with_defaults();
    let clear = |query: &str| -> Value {
        let url = format!("{}/cgi-bin/clear_quota/v2?{query}", sb.url());
        let text = http
            .post(&url)
            .send("")
            .unwrap()
            .into_body()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    };
    assert_eq!(clear(&format!("appid={DEMO_APPID}"))["errcode"], 41004);
    assert_eq!(
        clear(&format!("appid={DEMO_APPID}&appsecret=wrong"))["errcode"],
        40125
    );
    let ok = format!("appid={DEMO_APPID}&appsecret={DEMO_SECRET}");
    assert_eq!(clear(&ok)["errcode"], 0);
    assert_eq!(used(&n), 0);
    for _ in 1..10 {
        assert_eq!(clear(&ok)["errcode"], 0);
    }
    let refused = clear(&ok);
    assert_eq!(refused["errcode"], 48006, "{refused}");
    assert!(refused["errmsg"]
        .as_str()
        .unwrap()
        .contains("reaching the limit"));
}

/// Item 6: a long-term template's grant is not used up by a send, once the
/// library has read gettemplate (in this process, or in another sharing the store).
#[test]
fn a_long_term_templates_grant_stays_after_a_send() {
    use fashop_notify_sandbox::TPL_ORDER_STATUS;
    let sb = Sandbox::start();
    let dir = std::env::temp_dir().join(format!("fashop-f3-longterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", dir.join("notify.db").display());
    let worker = |store: &str| {
        let n = Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())));
        n.configure(&json!({"api_base": sb.url(), "store": store}).to_string())
            .unwrap();
        n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
            .unwrap();
        n.load_mappings(
            DEMO_APPID,
            &json!({"version": 1, "events": {"order_delivered": {
                "template_id": TPL_ORDER_STATUS, "page": "/pages/order/detail?id={order_id}",
                "data": {"character_string1": "{order_sn}", "enum_string2": "已发货",
                         "thing3": "{express_company}", "time4": "{delivery_time|datetime}"}}}})
            .to_string(),
        )
        .unwrap();
        n
    };
    let delivered = |sn: &str| {
        json!({"touser": BUYER, "fields": {"order_id": 7, "order_sn": sn,
            "order_total_goods_name": "围巾", "express_company": "顺丰速运",
            "tracking_no": "SF1", "delivery_time": 1795426200}})
        .to_string()
    };
    let editor = worker(&store);
    sb.grant(DEMO_APPID, BUYER, TPL_ORDER_STATUS, 1);
    editor
        .add_permit(
            DEMO_APPID,
            &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_ORDER_STATUS})
                .to_string(),
        )
        .unwrap();
    // The editor reads the template list: TPL_ORDER_STATUS is type 3.
    let list = editor
        .call_api(DEMO_APPID, "GET", "/wxaapi/newtmpl/gettemplate", None)
        .unwrap();
    assert!(list.contains(TPL_ORDER_STATUS));
    // Another process sharing the store sends three times on one grant.
    let sender = worker(&store);
    for i in 0..3 {
        let r = sender.send(
            DEMO_APPID,
            "order_delivered",
            &delivered(&format!("SN-lt-{i}")),
        );
        let o = r.outcome.unwrap();
        assert_eq!(o.status.as_str(), "sent", "{i}: {:?}", r.result);
        assert_eq!(o.permit.as_ref().map(|p| p.remaining), Some(1), "{i}");
    }
    let v: Value =
        serde_json::from_str(&sender.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    assert_eq!(v["subscribe"]["templates"][TPL_ORDER_STATUS], 1);
    // A one-time template's grant is still used up.
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 1);
    sender
        .load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    sender
        .add_permit(
            DEMO_APPID,
            &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS})
                .to_string(),
        )
        .unwrap();
    let o = sender
        .send(DEMO_APPID, "order_pay_success", &payload("SN-ot"))
        .outcome
        .unwrap();
    assert_eq!(o.status.as_str(), "sent");
    assert_eq!(o.permit.as_ref().map(|p| p.remaining), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Items 6 and 10, the sandbox: long-term templates live in public-service
/// categories, so a shop's account (服装, 电商平台) gets none; getcategory
/// answers the account's own categories; addtemplate checks sceneDesc, a
/// duplicate and the private-template limit.
#[test]
fn template_management_follows_the_account_and_its_limits() {
    use crate::sandbox_support::{client, errcode};
    use fashop_notify_sandbox::{library, TPL_ORDER_STATUS};
    let sb = Sandbox::start();
    let c = client(&sb);
    // The long-term library template is a public-service one.
    assert_eq!(library(3120).unwrap().kind, 3);
    assert!(fashop_notify_sandbox::is_public_service(
        library(3120).unwrap().category_id
    ));
    // A shop: its categories only, no long-term template, none to add.
    let shop_app = "wxshop0000000031";
    let (status, v) = c.post_json(
        "/sandbox/apps",
        &json!({"appid": shop_app, "secret": "shop-secret", "categories": [307, 616]}),
    );
    assert_eq!(status, 200, "{v}");
    let tok = c.token(shop_app, "shop-secret");
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/getcategory?access_token={tok}"));
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["服装/鞋/箱包", "电商平台"]);
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let list = v["data"].as_array().unwrap();
    assert!(!list.is_empty());
    assert!(list.iter().all(|t| t["type"] == 2), "{v}");
    assert!(!v.to_string().contains(TPL_ORDER_STATUS));
    let add = format!("/wxaapi/newtmpl/addtemplate?access_token={tok}");
    let (_, v) = c.post_json(
        &add,
        &json!({"tid": 3120, "kidList": [1, 2], "sceneDesc": "状态"}),
    );
    assert_eq!(errcode(&v), 200014, "{v}");
    // sceneDesc: 15 characters at most.
    let (_, v) = c.post_json(
        &add,
        &json!({"tid": 1856, "kidList": [1, 2], "sceneDesc": "一二三四五六七八九十一二三四五六"}),
    );
    assert_eq!(errcode(&v), 200021, "{v}");
    let (_, v) = c.post_json(
        &add,
        &json!({"tid": 1856, "kidList": [1, 2], "sceneDesc": "一二三四五六七八九十一二三四五"}),
    );
    assert_eq!(errcode(&v), 0, "{v}");
    let first = v["priTmplId"].as_str().unwrap().to_string();
    // The same title and keywords again (in another order): 200022 with its id.
    let (_, v) = c.post_json(&add, &json!({"tid": 1856, "kidList": [2, 1]}));
    assert_eq!(errcode(&v), 200022, "{v}");
    assert_eq!(v["priTmplId"], first.as_str());
    // The private-template limit: 25.
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let mut held = v["data"].as_array().unwrap().len();
    let kid_sets: Vec<Vec<u32>> = (1..=7u32)
        .flat_map(|a| (a + 1..=7).map(move |b| vec![a, b]))
        .collect();
    let mut sets = kid_sets.iter();
    while held < 25 {
        let (_, v) = c.post_json(&add, &json!({"tid": 1856, "kidList": sets.next().unwrap()}));
        if errcode(&v) == 0 {
            held += 1;
        } else {
            assert_eq!(errcode(&v), 200022, "{v}");
        }
    }
    let (_, v) = c.post_json(&add, &json!({"tid": 1856, "kidList": sets.next().unwrap()}));
    assert_eq!(errcode(&v), 200012, "{v}");
    // The demo account holds a public-service category and its long-term template.
    let tok = c.demo_token();
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/getcategory?access_token={tok}"));
    assert!(v.to_string().contains("交通服务"), "{v}");
}

/// Items 8 and 9, the sandbox: a 47003 keeps `data.<keyword>.value …` to 30
/// characters; amounts take any number of decimals; a JSON number is
/// refused (send strings); the library sends an amount with three decimals.
#[test]
fn keyword_answers_and_value_rules_match_the_samples() {
    use crate::sandbox_support::{client, errcode, errmsg, pay_message};
    let sb = Sandbox::start();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(DEMO_APPID, "o1", TPL_PAY_SUCCESS, 5);
    let answer = |key: &str, value: Value| {
        let mut m = pay_message("o1");
        m["data"][key] = value;
        c.send(&tok, &m)
    };
    // The part is cut at 30 characters: `data.character_string1.value i`.
    let v = answer("character_string1", json!({"value": "订单 1"}));
    assert_eq!(errcode(&v), 47003);
    let text = errmsg(&v).split(" rid: ").next().unwrap().to_string();
    assert_eq!(text, "argument invalid! data.character_string1.value i");
    let part = text.strip_prefix("argument invalid! ").unwrap();
    assert_eq!(part.chars().count(), 30);
    // A short part stays whole.
    let v = answer("time4", json!({"value": "tomorrow"}));
    assert!(
        errmsg(&v).starts_with("argument invalid! data.time4.value invalid rid: "),
        "{v}"
    );
    // JSON numbers are refused, as in the community's samples.
    let v = answer("amount2", json!({"value": 12.5}));
    assert_eq!(errcode(&v), 47003, "{v}");
    // Amounts: decimals without a limit on their count.
    let v = answer("amount2", json!({"value": "¥12.345"}));
    assert_eq!(errcode(&v), 0, "{v}");
    // Through the library: the value as rendered, three decimals kept.
    let n = shop(&sb, 1);
    n.load_mappings(
        DEMO_APPID,
        &json!({"version": 1, "events": {"order_pay_success": {
            "template_id": TPL_PAY_SUCCESS,
            "data": {"character_string1": "{order_sn}", "amount2": "¥{order_amount}",
                     "thing3": "{order_total_goods_name}", "time4": "{pay_time|datetime}"}}}})
        .to_string(),
    )
    .unwrap();
    let mut p: Value = serde_json::from_str(&payload("SN-amt")).unwrap();
    p["fields"]["order_amount"] = json!("12.345");
    let r = n.send(DEMO_APPID, "order_pay_success", &p.to_string());
    assert_eq!(r.outcome.unwrap().status.as_str(), "sent", "{:?}", r.result);
    let sent = sb.delivered(DEMO_APPID, BUYER);
    assert_eq!(sent.last().unwrap().data["amount2"]["value"], "¥12.345");
}
