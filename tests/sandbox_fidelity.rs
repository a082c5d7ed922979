//! The sandbox answers as WeChat does where real shops meet it: template
//! management by form or JSON body, new one-time and long-term templates, enum
//! keywords, the content blacklist (45168), a user switching a template off
//! (43101), concurrent sends to one user (43108) and the published pages (41030).

use fashop_notify_sandbox::*;
use serde_json::{json, Value};

use crate::sandbox_support::*;

fn frozen() -> Sandbox {
    Sandbox::start_with(SandboxOptions {
        clock_start: Some(1_790_000_000),
        ..SandboxOptions::default()
    })
}

const ADD: &str = "/wxaapi/newtmpl/addtemplate";
const DEL: &str = "/wxaapi/newtmpl/deltemplate";
const FORM: &str = "application/x-www-form-urlencoded";

fn templates(c: &Client, tok: &str) -> Vec<Value> {
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    v["data"].as_array().unwrap().clone()
}

#[test]
fn template_management_takes_forms_and_json_only_with_its_content_type() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let add = format!("{ADD}?access_token={tok}");
    let del = format!("{DEL}?access_token={tok}");
    // A form, with repeated keys or PHP's indexed ones.
    for body in [
        "tid=1754&kidList=1&kidList=3&sceneDesc=%E6%94%AF%E4%BB%98",
        "tid=1754&kidList%5B0%5D=1&kidList%5B1%5D=3",
        "tid=1754&kidList[0]=2&kidList[1]=3",
    ] {
        let (_, v) = c.post_as(&add, Some(FORM), body);
        assert_eq!(errcode(&v), 0, "{body}: {v}");
        let id = v["priTmplId"].as_str().unwrap().to_string();
        let list = templates(&c, &tok);
        assert!(list.iter().any(|t| t["priTmplId"] == id.as_str()));
        let (_, v) = c.post_as(&del, Some(FORM), &format!("priTmplId={id}"));
        assert_eq!(errcode(&v), 0, "{v}");
    }
    // JSON with its content type (a charset is fine).
    let body = json!({"tid": 1754, "kidList": [1, 2]}).to_string();
    let (_, v) = c.post_as(&add, Some("application/json; charset=utf-8"), &body);
    assert_eq!(errcode(&v), 0, "{v}");
    let id = v["priTmplId"].as_str().unwrap().to_string();
    // JSON without it: WeChat finds no tid (or no priTmplId).
    for ct in [None, Some("text/plain"), Some(FORM)] {
        let (_, v) = c.post_as(&add, ct, &body);
        assert_eq!(errcode(&v), 200014, "{ct:?}: {v}");
        assert!(errmsg(&v).starts_with("missing parameter tid rid: "), "{v}");
        assert_rid(&v);
        let (_, v) = c.post_as(&del, ct, &json!({"priTmplId": id}).to_string());
        assert_eq!(errcode(&v), 200002, "{ct:?}: {v}");
        assert!(errmsg(&v).starts_with("missing parameter priTmplId"), "{v}");
    }
    assert!(templates(&c, &tok)
        .iter()
        .any(|t| t["priTmplId"] == id.as_str()));
    // A form with a tid WeChat does not have.
    let (_, v) = c.post_as(&add, Some(FORM), "tid=77&kidList=1&kidList=2");
    assert_eq!(errcode(&v), 200014);
    assert!(errmsg(&v).starts_with("tid does not exist"), "{v}");
}

#[test]
fn a_new_one_time_template_takes_an_empty_kid_list() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let add = format!("{ADD}?access_token={tok}");
    let (_, v) = c.post_json(
        &add,
        &json!({"tid": 10000024, "kidList": [], "sceneDesc": "进度"}),
    );
    assert_eq!(errcode(&v), 0, "{v}");
    let id = v["priTmplId"].as_str().unwrap().to_string();
    let t = templates(&c, &tok)
        .into_iter()
        .find(|t| t["priTmplId"] == id.as_str())
        .unwrap();
    assert_eq!(
        t["content"],
        "订单号:{{character_string1.DATA}}\n进度:{{short_thing2.DATA}}\n更新时间:{{time3.DATA}}\n"
    );
    let (_, v) = c.post_json(&add, &json!({"tid": 10000024, "kidList": [1, 2]}));
    assert_eq!(errcode(&v), 200020, "{v}");
    // An older tid still needs 2 to 5 kids.
    let (_, v) = c.post_json(&add, &json!({"tid": 1754, "kidList": []}));
    assert_eq!(errcode(&v), 200020, "{v}");
    // The short_thing keyword takes 5 characters at most.
    sb.grant(APPID, "o1", &id, 2);
    let send = |progress: &str| {
        c.send(
            &tok,
            &json!({"touser": "o1", "template_id": id, "data": {
                "character_string1": {"value": "SN1"}, "short_thing2": {"value": progress},
                "time3": {"value": "2026-11-23 20:10"}}}),
        )
    };
    let v = send("已接单了吗呀");
    assert_eq!(errcode(&v), 47003, "{v}");
    // Cut to 48 characters before the rid, as WeChat's samples are.
    assert!(
        errmsg(&v).starts_with("argument invalid! data.short_thing2.value invali rid: "),
        "{v}"
    );
    assert_eq!(errcode(&send("已接单")), 0);
}

#[test]
fn long_term_templates_keep_their_grant_and_check_enum_values() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let list = templates(&c, &tok);
    let t = list
        .iter()
        .find(|t| t["priTmplId"] == TPL_ORDER_STATUS)
        .expect("seeded");
    assert_eq!(t["type"], 3);
    assert_eq!(
        t["keywordEnumValueList"],
        json!([{"enumValueList": ORDER_STATUS_VALUES, "keywordCode": "enum_string2.DATA"}])
    );
    let pay = list
        .iter()
        .find(|t| t["priTmplId"] == TPL_PAY_SUCCESS)
        .unwrap();
    assert_eq!(pay["type"], 2);
    assert!(
        pay.get("keywordEnumValueList").is_none(),
        "absent without enums"
    );
    // The library shows the enum values and the type too.
    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatekeywords?access_token={tok}&tid=3120"
    ));
    let kws = v["data"].as_array().unwrap();
    assert_eq!(kws[1]["enumValueList"], json!(ORDER_STATUS_VALUES));
    assert_eq!(kws[0]["enumValueList"], json!([]));
    let (_, v) = c.get(&format!(
        "/wxaapi/newtmpl/getpubtemplatetitles?access_token={tok}&ids=616,1130&start=0&limit=30"
    ));
    let titles = v["data"].as_array().unwrap();
    assert_eq!(titles.iter().find(|t| t["tid"] == 3120).unwrap()["type"], 3);

    sb.grant(APPID, "o1", TPL_ORDER_STATUS, 1);
    let status = |value: &str| {
        json!({"touser": "o1", "template_id": TPL_ORDER_STATUS, "data": {
            "character_string1": {"value": "SN1"}, "enum_string2": {"value": value},
            "thing3": {"value": "请留意查收"}, "time4": {"value": "2026-11-23 20:10"}}})
    };
    let v = c.send(&tok, &status("已退款"));
    assert_eq!(errcode(&v), 47003);
    assert!(
        errmsg(&v).starts_with("argument invalid! data.enum_string2.value invali rid: "),
        "{v}"
    );
    for value in ["已支付", "已发货", "已签收"] {
        assert_eq!(errcode(&c.send(&tok, &status(value))), 0, "{value}");
    }
    assert_eq!(
        sb.grants_left(APPID, "o1", TPL_ORDER_STATUS),
        1,
        "a long-term grant is not used up"
    );
    assert_eq!(sb.delivered(APPID, "o1").len(), 3);
    // The seeded list of the control API names the type and the enum values.
    let (_, v) = c.get("/sandbox/templates");
    let seeded = v["templates"].as_array().unwrap();
    let st = seeded.iter().find(|t| t["id"] == TPL_ORDER_STATUS).unwrap();
    assert_eq!(st["type"], 3);
    assert_eq!(st["enums"]["enum_string2"], json!(ORDER_STATUS_VALUES));
}

#[test]
fn a_blacklisted_word_answers_45168() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    sb.set_blacklist(APPID, &["加多宝"]);
    let mut m = pay_message("o1");
    m["data"]["thing3"] = json!({"value": "加多宝凉茶 x2"});
    let v = c.send(&tok, &m);
    assert_eq!(errcode(&v), 45168, "{v}");
    assert!(errmsg(&v).starts_with("keyword in blacklist rid: "), "{v}");
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 1);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    // Over the control API, and cleared with an empty list.
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    let (status, _) = c.post_json(
        "/sandbox/blacklist",
        &json!({"appid": APPID, "words": ["秋冬"]}),
    );
    assert_eq!(status, 200);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 45168);
    c.post_json("/sandbox/blacklist", &json!({"appid": APPID, "words": []}));
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    let (status, v) = c.post_json(
        "/sandbox/blacklist",
        &json!({"appid": APPID, "words": [""]}),
    );
    assert_eq!(status, 400, "{v}");
}

#[test]
fn a_user_who_switched_the_template_off_gets_43101_whatever_the_grants() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 3);
    sb.revoke(APPID, "o1", TPL_PAY_SUCCESS);
    for _ in 0..2 {
        let v = c.send(&tok, &pay_message("o1"));
        assert_eq!(errcode(&v), 43101);
        assert!(errmsg(&v).starts_with("user refuse to accept the msg rid: "));
    }
    // Switching the template off took the grants left with it.
    assert_eq!(sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 0);
    // Another template of the same user is not affected.
    sb.grant(APPID, "o1", TPL_PAY_FAIL, 1);
    let m = json!({"touser": "o1", "template_id": TPL_PAY_FAIL, "data": {
        "character_string1": {"value": "SN1"}, "amount2": {"value": "¥1"}, "thing3": {"value": "余额不足"}}});
    assert_eq!(errcode(&c.send(&tok, &m)), 0);
    // Switched back on and tapped again.
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    // The control API does the same.
    let (status, _) = c.post_json(
        "/sandbox/revoke",
        &json!({"appid": APPID, "openid": "o1", "template_id": TPL_PAY_SUCCESS}),
    );
    assert_eq!(status, 200);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 43101);
    let (status, _) = c.post_json(
        "/sandbox/revoke",
        &json!({"appid": "wxunknown0000001", "openid": "o1", "template_id": TPL_PAY_SUCCESS}),
    );
    assert_eq!(status, 400);
}

#[test]
fn concurrent_sends_to_one_user_answer_43108() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 5);
    sb.grant(APPID, "o2", TPL_PAY_SUCCESS, 5);
    // Off by default: the frozen clock puts every send at the same instant.
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    let (status, _) = c.post_json("/sandbox/settings", &json!({"concurrent_gap_ms": 500}));
    assert_eq!(status, 200);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    let v = c.send(&tok, &pay_message("o1"));
    assert_eq!(errcode(&v), 43108);
    assert!(
        errmsg(&v)
            .starts_with("Cannot make concurrent calls to the same OpenID, please try again rid: "),
        "{v}"
    );
    // Another user is not held up; after the gap the user is free again.
    assert_eq!(errcode(&c.send(&tok, &pay_message("o2"))), 0);
    sb.advance_clock(1);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    assert_eq!(
        sb.grants_left(APPID, "o1", TPL_PAY_SUCCESS),
        1,
        "43108 used no grant"
    );
    sb.set_concurrent_gap_ms(0);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    let (status, _) = c.post_json("/sandbox/settings", &json!({"concurrent_gap_ms": -1}));
    assert_eq!(status, 400);
}

#[test]
fn a_page_missing_from_the_published_version_answers_41030() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 2);
    sb.set_pages(APPID, vec!["pages/order/detail".into()]);
    let mut m = pay_message("o1");
    m["page"] = json!("pages/order/list");
    let v = c.send(&tok, &m);
    assert_eq!(errcode(&v), 41030);
    assert!(errmsg(&v).starts_with("invalid page rid: "), "{v}");
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
}
