//! The sandbox's WeChat behaviour, driven over HTTP: tokens, subscribe and
//! legacy sends, template management.

use fashop_notify_sandbox::*;
use serde_json::{json, Value};

use crate::sandbox_support::*;

fn frozen() -> Sandbox {
    Sandbox::start_with(SandboxOptions {
        clock_start: Some(1_790_000_000),
        ..SandboxOptions::default()
    })
}

fn stable(c: &Client, force: bool) -> Value {
    c.post_json(
        "/cgi-bin/stable_token",
        &json!({"grant_type": "client_credential", "appid": APPID, "secret": SECRET,
                "force_refresh": force}),
    )
    .1
}

fn probe(c: &Client, token: &str) -> i64 {
    // A send to an unknown user: 40003 proves the token passed, anything else is the token's fault.
    errcode(&c.send(token, &pay_message("nobody")))
}

#[test]
fn classic_token_rotates_with_a_grace_period_then_40001() {
    let sb = frozen();
    let c = client(&sb);
    let (status, v) = c.get(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    ));
    assert_eq!(status, 200);
    assert_eq!(v["expires_in"], 7200);
    let first = v["access_token"].as_str().unwrap().to_string();
    assert!(first.len() >= 100, "token looks real: {first}");
    let second = c.demo_token();
    assert_ne!(first, second, "every classic fetch makes a new token");
    assert_eq!(probe(&c, &first), 40003, "old token works during the grace");
    sb.advance_clock(299);
    assert_eq!(probe(&c, &first), 40003);
    sb.advance_clock(1);
    let v = c.send(&first, &pay_message("nobody"));
    assert_eq!(errcode(&v), 40001);
    assert_rid(&v);
    assert_eq!(probe(&c, &second), 40003, "the newest token still works");
    sb.advance_clock(7200 - 300);
    assert_eq!(probe(&c, &second), 42001, "expired after expires_in");
    assert_eq!(sb.counters().token_fetches(APPID, "token"), 2);
}

#[test]
fn grace_and_lifetime_are_settable() {
    let sb = frozen();
    let c = client(&sb);
    sb.set_token_grace_secs(0);
    sb.set_expires_in(60);
    let first = c.demo_token();
    let second = c.demo_token();
    assert_eq!(probe(&c, &first), 40001, "no grace");
    sb.advance_clock(59);
    assert_eq!(probe(&c, &second), 40003);
    sb.advance_clock(1);
    assert_eq!(probe(&c, &second), 42001);
}

#[test]
fn token_errors_for_bad_credentials() {
    let sb = frozen();
    let c = client(&sb);
    let get = |q: &str| c.get(&format!("/cgi-bin/token?{q}")).1;
    let v = get("grant_type=client_credential&appid=wxunknown&secret=x");
    assert_eq!(errcode(&v), 40013);
    assert_rid(&v);
    let v = get(&format!(
        "grant_type=client_credential&appid={APPID}&secret=wrong"
    ));
    assert_eq!(errcode(&v), 40125);
    assert!(!errmsg(&v).contains("wrong"), "no secret echoed: {v}");
    assert_eq!(
        errcode(&get(&format!("grant_type=client_credential&appid={APPID}"))),
        41004
    );
    assert_eq!(
        errcode(&get("grant_type=client_credential&secret=x")),
        41002
    );
    assert_eq!(
        errcode(&get(&format!(
            "grant_type=password&appid={APPID}&secret={SECRET}"
        ))),
        40002
    );
    let v = stable_with(
        &c,
        json!({"grant_type": "client_credential", "appid": "wxnope", "secret": "s"}),
    );
    assert_eq!(errcode(&v), 40013);
    let v = stable_with(
        &c,
        json!({"grant_type": "client_credential", "appid": APPID, "secret": "s"}),
    );
    assert_eq!(errcode(&v), 40125);
    let counters = sb.counters();
    assert_eq!(
        counters.token_fetches("wxunknown", "token"),
        1,
        "failed fetches count"
    );
    assert_eq!(counters.token_fetches(APPID, "stable_token"), 1);
    assert_eq!(counters.errors(40125), 2);
}

fn stable_with(c: &Client, body: Value) -> Value {
    c.post_json("/cgi-bin/stable_token", &body).1
}

#[test]
fn stable_token_is_shared_and_force_refresh_is_limited() {
    let sb = frozen();
    let c = client(&sb);
    let a = stable(&c, false);
    let tok = a["access_token"].as_str().unwrap().to_string();
    assert_eq!(a["expires_in"], 7200);
    sb.advance_clock(100);
    let b = stable(&c, false);
    assert_eq!(b["access_token"], tok.as_str(), "same token while valid");
    assert_eq!(b["expires_in"], 7100, "remaining lifetime");
    // Classic fetches do not disturb the stable token.
    c.demo_token();
    c.demo_token();
    assert_eq!(probe(&c, &tok), 40003);

    let forced = stable(&c, true);
    let new_tok = forced["access_token"].as_str().unwrap().to_string();
    assert_ne!(new_tok, tok);
    assert_eq!(
        probe(&c, &tok),
        40001,
        "force_refresh retires the old token"
    );
    assert_eq!(probe(&c, &new_tok), 40003);
    sb.advance_clock(29);
    // Within 30 s a forced call does not refresh (no error either).
    let again = stable(&c, true);
    assert_eq!(again["access_token"], new_tok.as_str(), "{again}");
    assert_eq!(again["expires_in"], 7200 - 29);
    assert_eq!(probe(&c, &new_tok), 40003, "still valid");
    assert_eq!(stable(&c, false)["access_token"], new_tok.as_str());
    sb.advance_clock(1);
    let renewed = stable(&c, true);
    assert!(renewed["access_token"].is_string());
    assert_ne!(renewed["access_token"], new_tok.as_str());

    // 20 forced refreshes a day at most.
    let sb = frozen();
    let c = client(&sb);
    sb.advance_clock(-(sb.now() % 86_400)); // start of a day
    for i in 0..20 {
        assert!(stable(&c, true)["access_token"].is_string(), "refresh {i}");
        sb.advance_clock(30);
    }
    assert_eq!(errcode(&stable(&c, true)), 45009);
    sb.advance_clock(86_400);
    assert!(stable(&c, true)["access_token"].is_string(), "a new day");
}

#[test]
fn stable_token_expires_and_is_renewed() {
    let sb = frozen();
    let c = client(&sb);
    let tok = stable(&c, false)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    sb.advance_clock(7200);
    assert_eq!(probe(&c, &tok), 42001);
    let renewed = stable(&c, false)["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, tok);
    assert_eq!(probe(&c, &renewed), 40003);
}

#[test]
fn stable_token_rejects_bad_bodies() {
    let sb = frozen();
    let c = client(&sb);
    let (_, v) = c.post("/cgi-bin/stable_token", "{not json");
    assert_eq!(errcode(&v), 47001);
    let v = stable_with(
        &c,
        json!({"grant_type": "client_credential", "appid": APPID,
                                   "secret": SECRET, "force_refresh": "yes"}),
    );
    assert_eq!(errcode(&v), 47001);
    let v = stable_with(&c, json!({"appid": APPID, "secret": SECRET}));
    assert_eq!(errcode(&v), 40002);
    let (_, v) = c.get("/cgi-bin/stable_token");
    assert_eq!(errcode(&v), 43002);
}

#[test]
fn subscribe_send_delivers_and_consumes_the_grant() {
    let sb = frozen();
    let c = client(&sb);
    sb.grant(APPID, "o-alice", TPL_PAY_SUCCESS, 2);
    let tok = c.demo_token();
    let v = c.send(&tok, &pay_message("o-alice"));
    assert_eq!(errcode(&v), 0, "{v}");
    assert_eq!(v["errmsg"], "ok");
    let msgid = v["msgid"].as_u64().expect("msgid");
    assert_eq!(sb.grants_left(APPID, "o-alice", TPL_PAY_SUCCESS), 1);
    let v2 = c.send(&tok, &pay_message("o-alice"));
    assert_eq!(errcode(&v2), 0);
    assert_ne!(v2["msgid"].as_u64().unwrap(), msgid);
    let v3 = c.send(&tok, &pay_message("o-alice"));
    assert_eq!(errcode(&v3), 43101);
    assert_rid(&v3);

    let got = sb.delivered(APPID, "o-alice");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].touser, "o-alice");
    assert_eq!(got[0].template_id, TPL_PAY_SUCCESS);
    assert_eq!(got[0].page.as_deref(), Some("pages/order/detail?id=1"));
    assert_eq!(got[0].data, pay_data());
    assert_eq!(got[0].msgid, msgid);
    assert_eq!(got[0].form_id, None);
    assert!(sb.delivered(APPID, "o-bob").is_empty());
    assert_eq!(sb.all_delivered().len(), 2);
    let counters = sb.counters();
    assert_eq!(counters.sends, 2);
    assert_eq!(counters.send_attempts, 3);
    assert_eq!(counters.errors(43101), 1);
}

#[test]
fn grants_are_per_template_and_add_up() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_DELIVERED, 1);
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        43101,
        "grant is for another template"
    );
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 2);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 43101);
    assert_eq!(sb.grants_left(APPID, "o1", TPL_DELIVERED), 1);
}

#[test]
fn subscribe_send_checks_token_user_template_and_page() {
    let sb = frozen();
    let c = client(&sb);
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 10);
    let tok = c.demo_token();
    let (_, v) = c.post_json(SEND, &pay_message("o1"));
    assert_eq!(errcode(&v), 41001, "no access_token");
    assert_eq!(errcode(&c.send("86_made_up", &pay_message("o1"))), 40001);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o-stranger"))), 40003);
    let mut m = pay_message("o1");
    m["template_id"] = json!("no-such-template");
    assert_eq!(errcode(&c.send(&tok, &m)), 40037);
    m["template_id"] = json!(LEGACY_TPL_PAY_SUCCESS);
    assert_eq!(
        errcode(&c.send(&tok, &m)),
        40037,
        "legacy template is not a subscribe one"
    );

    sb.set_pages(
        APPID,
        vec!["pages/index/index".into(), "pages/order/detail".into()],
    );
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        0,
        "query string ignored"
    );
    let mut m = pay_message("o1");
    m["page"] = json!("pages/nowhere/index");
    let v = c.send(&tok, &m);
    assert_eq!(errcode(&v), 41030);
    assert_rid(&v);
    m.as_object_mut().unwrap().remove("page");
    assert_eq!(errcode(&c.send(&tok, &m)), 0, "no page is fine");

    // Another app's token cannot reach this app's users.
    sb.seed_app("wxother000000002", "other-secret");
    let other = c.token("wxother000000002", "other-secret");
    assert_eq!(errcode(&c.send(&other, &pay_message("o1"))), 40003);

    let mut m = pay_message("o1");
    m["miniprogram_state"] = json!("beta");
    assert_eq!(errcode(&c.send(&tok, &m)), 47003);
    let mut m = pay_message("o1");
    m["lang"] = json!("fr_FR");
    assert_eq!(errcode(&c.send(&tok, &m)), 47003);
    let mut m = pay_message("o1");
    m["touser"] = json!(42);
    assert_eq!(errcode(&c.send(&tok, &m)), 47001);
    let (_, v) = c.post(&format!("{SEND}?access_token={tok}"), "{\"touser\":");
    assert_eq!(errcode(&v), 47001);
    let (_, v) = c.post(&format!("{SEND}?access_token=bad"), "{\"touser\":");
    assert_eq!(errcode(&v), 40001, "token checked before the body");
    let (_, v) = c.get(&format!("{SEND}?access_token={tok}"));
    assert_eq!(errcode(&v), 43002);
    let (_, v) = c.post(&format!("{SEND}?access_token={tok}"), "");
    assert_eq!(errcode(&v), 44002);
}

#[test]
fn subscribe_send_names_the_broken_keyword() {
    let sb = frozen();
    let c = client(&sb);
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    let tok = c.demo_token();
    let cases: &[(&str, Value, &str)] = &[
        (
            "thing3",
            json!({"value": "一二三四五六七八九十一二三四五六七八九十一"}),
            "data.thing3.value invalid",
        ),
        (
            "amount2",
            json!({"value": "199 dollars"}),
            "data.amount2.value invalid",
        ),
        (
            "character_string1",
            json!({"value": "订单 1"}),
            // WeChat cuts the text before the rid to 48 characters.
            "data.character_string1.value i rid",
        ),
        (
            "time4",
            json!({"value": "tomorrow"}),
            "data.time4.value invalid",
        ),
        ("time4", json!({"value": ""}), "data.time4.value invalid"),
        ("thing3", json!({"value": 12}), "data.thing3.value invalid"),
        (
            "thing3",
            json!("not an object"),
            "data.thing3.value invalid",
        ),
    ];
    for (key, value, expect) in cases {
        let mut m = pay_message("o1");
        m["data"][key] = value.clone();
        let v = c.send(&tok, &m);
        assert_eq!(errcode(&v), 47003, "{key}={value}: {v}");
        assert!(errmsg(&v).starts_with("argument invalid! "), "{v}");
        assert!(errmsg(&v).contains(expect), "{key}: {v}");
        assert!(!errmsg(&v).contains("hint"), "no rule hints: {v}");
        let before_rid = errmsg(&v).split(" rid: ").next().unwrap();
        assert!(before_rid.chars().count() <= 48, "{v}");
        assert_rid(&v);
    }
    let mut m = pay_message("o1");
    m["data"].as_object_mut().unwrap().remove("time4");
    let v = c.send(&tok, &m);
    assert_eq!(errcode(&v), 47003);
    assert!(errmsg(&v).contains("data.time4.value is empty"), "{v}");
    let mut m = pay_message("o1");
    m["data"]["thing9"] = json!({"value": "extra"});
    let v = c.send(&tok, &m);
    assert_eq!(errcode(&v), 47003);
    assert!(errmsg(&v).contains("data.thing9"), "{v}");
    let mut m = pay_message("o1");
    m.as_object_mut().unwrap().remove("data");
    assert_eq!(errcode(&c.send(&tok, &m)), 47003);
    assert_eq!(
        sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS),
        1,
        "refused sends keep the grant"
    );
    assert!(sb.all_delivered().is_empty());
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}

#[test]
fn every_seeded_template_accepts_its_example_values() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let list = v["data"].as_array().unwrap();
    for id in [
        TPL_PAY_SUCCESS,
        TPL_DELIVERED,
        TPL_CANCEL,
        TPL_REFUND,
        TPL_PAY_FAIL,
    ] {
        let t = list.iter().find(|t| t["priTmplId"] == id).expect("seeded");
        // Build data from the example lines: "label:value" in keyword order.
        let content = t["content"].as_str().unwrap();
        let example = t["example"].as_str().unwrap();
        let mut data = serde_json::Map::new();
        for (c_line, e_line) in content.lines().zip(example.lines()) {
            let name = c_line
                .split("{{")
                .nth(1)
                .unwrap()
                .trim_end_matches(".DATA}}");
            let value = e_line.split_once(':').unwrap().1;
            data.insert(name.to_string(), json!({ "value": value }));
        }
        sb.grant(APPID, "o1", id, 1);
        let m = json!({"touser": "o1", "template_id": id, "data": data});
        assert_eq!(errcode(&c.send(&tok, &m)), 0, "{id}: {m}");
    }
    assert_eq!(sb.all_delivered().len(), 5);
}

#[test]
fn legacy_send_is_switched_off_by_default() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.add_form_id(APPID, "o1", "form-1");
    let v = c
        .post_json(
            &format!("{LEGACY_SEND}?access_token={tok}"),
            &legacy_message("o1", "form-1"),
        )
        .1;
    assert_eq!(errcode(&v), 45103);
    assert_rid(&v);
    let (_, v) = c.post_json(
        &format!("{LEGACY_SEND}?access_token=nope"),
        &legacy_message("o1", "form-1"),
    );
    assert_eq!(errcode(&v), 40001);
}

fn legacy_message(openid: &str, form_id: &str) -> Value {
    json!({
        "touser": openid,
        "template_id": LEGACY_TPL_PAY_SUCCESS,
        "page": "pages/index/index",
        "form_id": form_id,
        "data": {
            "keyword1": {"value": "SN202611230001"},
            "keyword2": {"value": "199.00元"},
            "keyword3": {"value": "连衣裙"},
            "keyword4": {"value": "2026-11-23 20:10"}
        },
        "emphasis_keyword": "keyword2.DATA"
    })
}

#[test]
fn legacy_form_ids_are_single_use_and_expire() {
    let sb = frozen();
    sb.set_legacy_mode(true);
    let c = client(&sb);
    // A fresh token per send: the test moves the clock by days.
    let send = |m: &Value| {
        let tok = c.demo_token();
        c.post_json(&format!("{LEGACY_SEND}?access_token={tok}"), m)
            .1
    };
    sb.add_form_id(APPID, "o1", "form-1");
    sb.add_form_id(APPID, "o2", "form-2");
    let v = send(&legacy_message("o1", "form-1"));
    assert_eq!(errcode(&v), 0, "{v}");
    let got = sb.delivered(APPID, "o1");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].form_id.as_deref(), Some("form-1"));
    assert_eq!(got[0].template_id, LEGACY_TPL_PAY_SUCCESS);
    let v = send(&legacy_message("o1", "form-1"));
    assert_eq!(errcode(&v), 41029);
    assert_rid(&v);
    assert_eq!(errcode(&send(&legacy_message("o1", "unknown"))), 41028);
    assert_eq!(
        errcode(&send(&legacy_message("o1", "form-2"))),
        41028,
        "another user's form_id"
    );
    sb.add_form_id(APPID, "o1", "form-3");
    sb.advance_clock(7 * 86_400 - 1);
    sb.add_form_id(APPID, "o1", "form-4");
    assert_eq!(
        errcode(&send(&legacy_message("o1", "form-3"))),
        0,
        "still within 7 days"
    );
    sb.advance_clock(7 * 86_400);
    assert_eq!(
        errcode(&send(&legacy_message("o1", "form-4"))),
        41028,
        "expired"
    );

    let mut m = legacy_message("o1", "form-x");
    m["template_id"] = json!(TPL_PAY_SUCCESS);
    assert_eq!(errcode(&send(&m)), 40037);
    let mut m = legacy_message("o1", "form-x");
    m["data"]["keyword9"] = json!({"value": "x"});
    assert_eq!(errcode(&send(&m)), 47003);
    let mut m = legacy_message("o1", "form-x");
    m["emphasis_keyword"] = json!("keyword7.DATA");
    assert_eq!(errcode(&send(&m)), 47003);
    assert_eq!(errcode(&send(&legacy_message("o-nobody", "form-x"))), 40003);
}

#[test]
fn legacy_prepay_ids_need_payment_and_allow_three_uses() {
    let sb = frozen();
    sb.set_legacy_mode(true);
    let c = client(&sb);
    // A fresh token per send: the test moves the clock by days.
    let send = |m: &Value| {
        let tok = c.demo_token();
        c.post_json(&format!("{LEGACY_SEND}?access_token={tok}"), m)
            .1
    };
    sb.add_prepay_id(APPID, "o1", "wx2026112320100001");
    let v = send(&legacy_message("o1", "wx2026112320100001"));
    assert_eq!(errcode(&v), 41028, "not paid yet");
    sb.mark_paid(APPID, "wx2026112320100001");
    for i in 0..3 {
        assert_eq!(
            errcode(&send(&legacy_message("o1", "wx2026112320100001"))),
            0,
            "use {i}"
        );
    }
    assert_eq!(
        errcode(&send(&legacy_message("o1", "wx2026112320100001"))),
        41029
    );
    assert_eq!(sb.delivered(APPID, "o1").len(), 3);

    sb.add_prepay_id(APPID, "o1", "wx-old");
    sb.mark_paid(APPID, "wx-old");
    sb.advance_clock(7 * 86_400);
    assert_eq!(
        errcode(&send(&legacy_message("o1", "wx-old"))),
        41028,
        "expired"
    );
}

#[test]
fn template_library_and_private_templates() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/getcategory?access_token={tok}"));
    assert_eq!(errcode(&v), 0);
    assert!(v["data"].as_array().unwrap().iter().any(|c| c["id"] == 616));

    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatetitles?access_token={tok}&ids=616&start=0&limit=30"
    ));
    assert_eq!(errcode(&v), 0);
    let titles = v["data"].as_array().unwrap();
    assert!(titles.iter().any(|t| t["title"] == "订单发货通知"));
    assert_eq!(v["count"].as_u64().unwrap() as usize, titles.len());
    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatetitles?access_token={tok}&ids=616&start=1&limit=2"
    ));
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "paged");
    for (query, code) in [
        ("ids=616", 200016),
        ("ids=616&start=x&limit=30", 200016),
        ("ids=616&start=0", 200017),
        ("ids=616&start=0&limit=31", 200017),
        ("ids=616&start=0&limit=0", 200017),
        ("start=0&limit=30", 200018),
        ("ids=%22616%22&start=0&limit=30", 200019),
    ] {
        let (_, v) = c.get(&format!(
            "/wxaapi/newtmpl/getpubtemplatetitles?access_token={tok}&{query}"
        ));
        assert_eq!(errcode(&v), code, "{query}: {v}");
    }

    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatekeywords?access_token={tok}&tid=1856"
    ));
    let kws = v["data"].as_array().unwrap();
    assert!(kws
        .iter()
        .any(|k| k["kid"] == 7 && k["rule"] == "phone_number"));
    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatekeywords?access_token={tok}&tid=9"
    ));
    assert_eq!(errcode(&v), 200014);

    let (_, v) = c.post_json(
        &format!("/wxaapi/newtmpl/addtemplate?access_token={tok}"),
        &json!({"tid": "1856", "kidList": [1, 6, 7], "sceneDesc": "发货提醒"}),
    );
    assert_eq!(errcode(&v), 0, "{v}");
    let id = v["priTmplId"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 43);
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let added = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["priTmplId"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        added["content"],
        "订单号:{{character_string1.DATA}}\n收货人:{{name6.DATA}}\n联系电话:{{phone_number7.DATA}}\n"
    );
    assert_eq!(added["type"], 2);
    sb.grant(APPID, "o1", &id, 1);
    let m = json!({"touser": "o1", "template_id": id, "data": {
        "character_string1": {"value": "SN1"}, "name6": {"value": "张三"},
        "phone_number7": {"value": "138-0013-8000"}}});
    assert_eq!(errcode(&c.send(&tok, &m)), 0);

    for bad in [
        json!({"tid": 1856, "kidList": [1]}),
        json!({"tid": 1856, "kidList": [1, 1]}),
        json!({"tid": 1856, "kidList": [1, 99]}),
    ] {
        let (_, v) = c.post_json(
            &format!("/wxaapi/newtmpl/addtemplate?access_token={tok}"),
            &bad,
        );
        assert_eq!(errcode(&v), 200020, "{bad}");
    }
    let (_, v) = c.post_json(
        &format!("/wxaapi/newtmpl/addtemplate?access_token={tok}"),
        &json!({"tid": 77, "kidList": [1, 2]}),
    );
    assert_eq!(errcode(&v), 200014);

    let (_, v) = c.post_json(
        &format!("/wxaapi/newtmpl/deltemplate?access_token={tok}"),
        &json!({"priTmplId": id}),
    );
    assert_eq!(errcode(&v), 0);
    let (_, v) = c.post_json(
        &format!("/wxaapi/newtmpl/deltemplate?access_token={tok}"),
        &json!({"priTmplId": id}),
    );
    assert_eq!(errcode(&v), 20001, "an id the account no longer holds");
    sb.grant(APPID, "o1", &id, 1);
    assert_eq!(errcode(&c.send(&tok, &m)), 40037, "deleted template");

    let (_, v) = c.get("/wxaapi/newtmpl/gettemplate?access_token=bad");
    assert_eq!(errcode(&v), 40001);
    let (_, v) = c.post_json(
        &format!("/cgi-bin/wxopen/template/list?access_token={tok}"),
        &json!({"offset": 0, "count": 20}),
    );
    let list = v["list"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert!(list.iter().any(|t| t["template_id"] == LEGACY_TPL_DELIVERED
        && t["content"].as_str().unwrap().contains("{{keyword4.DATA}}")));
}

#[test]
fn unknown_paths_answer_like_wechat() {
    let sb = frozen();
    let c = client(&sb);
    let (status, v) = c.get("/cgi-bin/nothing/here");
    assert_eq!(status, 200);
    assert_eq!(errcode(&v), 40066);
    assert_rid(&v);
}

#[test]
fn legacy_template_library_add_send_delete() {
    let sb = frozen();
    sb.set_legacy_mode(true);
    let c = client(&sb);
    let tok = c.demo_token();
    let post =
        |path: &str, body: Value| c.post_json(&format!("{path}?access_token={tok}"), &body).1;
    let v = post(
        "/cgi-bin/wxopen/template/library/list",
        json!({"offset": 0, "count": 20}),
    );
    assert_eq!(errcode(&v), 0);
    assert_eq!(v["total_count"], 4);
    assert!(v["list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == "AT0002"));
    let v = post(
        "/cgi-bin/wxopen/template/library/get",
        json!({"id": "AT0002"}),
    );
    assert_eq!(v["keyword_list"].as_array().unwrap().len(), 5);
    assert_eq!(
        errcode(&post(
            "/cgi-bin/wxopen/template/library/get",
            json!({"id": "AT9999"})
        )),
        40037
    );

    let v = post(
        "/cgi-bin/wxopen/template/add",
        json!({"id": "AT0002", "keyword_id_list": [5, 1]}),
    );
    assert_eq!(errcode(&v), 0, "{v}");
    let id = v["template_id"].as_str().unwrap().to_string();
    let v = post(
        "/cgi-bin/wxopen/template/list",
        json!({"offset": 0, "count": 20}),
    );
    let added = v["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["template_id"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        added["content"],
        "购买地点:{{keyword1.DATA}}\n订单号:{{keyword2.DATA}}\n"
    );

    sb.add_form_id(APPID, "o1", "form-1");
    let m = json!({"touser": "o1", "template_id": id, "form_id": "form-1",
                   "data": {"keyword1": {"value": "旗舰店"}, "keyword2": {"value": "SN1"}}});
    assert_eq!(errcode(&post(LEGACY_SEND, m)), 0);
    for bad in [
        json!({"id": "AT0002", "keyword_id_list": []}),
        json!({"id": "AT0002", "keyword_id_list": [1, 1]}),
        json!({"id": "AT0002", "keyword_id_list": [9]}),
        json!({"id": "AT0002", "keyword_id_list": ["1"]}),
    ] {
        assert_eq!(
            errcode(&post("/cgi-bin/wxopen/template/add", bad.clone())),
            47001,
            "{bad}"
        );
    }
    assert_eq!(
        errcode(&post(
            "/cgi-bin/wxopen/template/del",
            json!({"template_id": id})
        )),
        0
    );
    assert_eq!(
        errcode(&post(
            "/cgi-bin/wxopen/template/del",
            json!({"template_id": id})
        )),
        40037
    );
    assert_eq!(
        errcode(&post(
            "/cgi-bin/wxopen/template/del",
            json!({"template_id": TPL_PAY_SUCCESS})
        )),
        40037,
        "a subscribe template is not a legacy one"
    );
}
