//! The sandbox's service cards answer as WeChat's pages say: a transaction id
//! is a notify_code only a while after payment, activation checks check_json
//! against the payment, the openid must be the payer, statuses move as the
//! card allows, get_user_notify shows the last content and code_state; the
//! cards' templates (tids 10000001…) have no keywords and are refused by
//! subscribeMessage.send.

use fashop_notify_sandbox::*;
use serde_json::{json, Value};

use crate::sandbox_support::*;

const TX: &str = "4200002187202611230115268887";
const PAY_TIME: i64 = 1_790_000_000;

fn frozen() -> Sandbox {
    let sb = Sandbox::start_with(SandboxOptions {
        clock_start: Some(PAY_TIME),
        ..SandboxOptions::default()
    });
    sb.seed_user(APPID, "buyer");
    sb.seed_user(APPID, "other");
    sb
}

fn content(status: u32) -> String {
    let mut c = json!({"cur_status": status, "wxa_path_query": "pages/order/detail?id=7"});
    if status <= 2 {
        c["product_count"] = json!(1);
        c["product_list"] = json!({"info_list": [{"product_img": "https://img.example/1.png",
            "product_name": "法式碎花连衣裙", "product_path_query": "pages/goods/detail?id=9",
            "count": 1, "single_price": 12850}]});
    }
    c.to_string()
}

fn set(c: &Client, tok: &str, openid: &str, status: u32, check: Option<Value>) -> Value {
    let mut body = json!({"openid": openid, "notify_type": 2001, "notify_code": TX,
        "content_json": content(status)});
    if let Some(check) = check {
        body["check_json"] = json!(check.to_string());
    }
    c.post_json(&format!("/wxa/set_user_notify?access_token={tok}"), &body)
        .1
}

fn check() -> Option<Value> {
    Some(json!({"pay_amount": 12850, "pay_time": PAY_TIME}))
}

#[test]
fn a_card_activates_after_the_payment_is_checkable_and_moves_as_allowed() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    // Unknown before the payment, and for a while after it.
    assert_eq!(errcode(&set(&c, &tok, "buyer", 1, check())), 85437);
    sb.record_payment(APPID, TX, "buyer", 12850, PAY_TIME, 30);
    let v = set(&c, &tok, "buyer", 1, check());
    assert_eq!(errcode(&v), 85437, "{v}");
    assert!(errmsg(&v).starts_with("notify_code not exist"), "{v}");
    sb.advance_clock(30);
    // Not the payer; no or a wrong check_json at activation.
    assert_eq!(errcode(&set(&c, &tok, "other", 1, check())), 40003);
    assert_eq!(errcode(&set(&c, &tok, "buyer", 1, None)), 85433);
    let wrong = Some(json!({"pay_amount": 100, "pay_time": PAY_TIME}));
    assert_eq!(errcode(&set(&c, &tok, "buyer", 1, wrong)), 85433);
    // A status that cannot activate.
    let v = set(&c, &tok, "buyer", 4, check());
    assert_eq!(errcode(&v), 85436, "{v}");
    assert!(errmsg(&v).contains("statuses that can: 1, 2"), "{v}");
    assert_eq!(errcode(&set(&c, &tok, "buyer", 1, check())), 0);
    assert_eq!(errcode(&set(&c, &tok, "buyer", 4, None)), 0);
    // Back to 1 from 4 is not allowed.
    let v = set(&c, &tok, "buyer", 1, None);
    assert_eq!(errcode(&v), 85436, "{v}");
    assert!(errmsg(&v).contains("follows only 7"), "{v}");
    assert_eq!(sb.card_statuses(APPID, TX), vec![1, 4]);
    // get_user_notify shows the last content.
    let (_, v) = c.post_json(
        &format!("/wxa/get_user_notify?access_token={tok}"),
        &json!({"openid": "buyer", "notify_type": 2001, "notify_code": TX}),
    );
    assert_eq!(errcode(&v), 0, "{v}");
    assert_eq!(v["notify_info"]["content_json"], content(4));
    assert_eq!(v["notify_info"]["code_state"], 0);
    // An unknown card type.
    let (_, v) = c.post_json(
        &format!("/wxa/get_user_notify?access_token={tok}"),
        &json!({"openid": "buyer", "notify_type": 1001, "notify_code": TX}),
    );
    assert_eq!(errcode(&v), 85434, "{v}");
}

#[test]
fn required_fields_ext_json_and_a_refused_code() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    sb.record_payment(APPID, TX, "buyer", 12850, PAY_TIME, 0);
    let body = json!({"openid": "buyer", "notify_type": 2001, "notify_code": TX,
        "content_json": json!({"cur_status": 1, "wxa_path_query": "pages/a"}).to_string(),
        "check_json": check().unwrap().to_string()});
    let (_, v) = c.post_json(&format!("/wxa/set_user_notify?access_token={tok}"), &body);
    assert_eq!(errcode(&v), 85436, "{v}");
    assert!(
        errmsg(&v).contains("product_count: required in status 1"),
        "{v}"
    );
    let ext = |v: &str| {
        c.post_json(
            &format!("/wxa/set_user_notifyext?access_token={tok}"),
            &json!({"openid": "buyer", "notify_type": 2001, "notify_code": TX, "ext_json": v}),
        )
        .1
    };
    assert_eq!(errcode(&ext("{}")), 85437, "not activated yet");
    assert_eq!(errcode(&set(&c, &tok, "buyer", 1, check())), 0);
    assert_eq!(errcode(&ext("not json")), 85436);
    assert_eq!(errcode(&ext("{\"note\":\"x\"}")), 0);
    sb.refuse_card(APPID, TX);
    let v = set(&c, &tok, "buyer", 4, None);
    assert_eq!(errcode(&v), 85439, "{v}");
    let (_, v) = c.post_json(
        &format!("/wxa/get_user_notify?access_token={tok}"),
        &json!({"openid": "buyer", "notify_type": 2001, "notify_code": TX}),
    );
    assert_eq!(v["notify_info"]["code_state"], 10, "{v}");
    assert_eq!(sb.card_statuses(APPID, TX), vec![1]);
}

#[test]
fn card_templates_have_no_keywords_and_are_not_sent_as_subscribe_messages() {
    let sb = frozen();
    let c = client(&sb);
    let tok = c.demo_token();
    let add = format!("/wxaapi/newtmpl/addtemplate?access_token={tok}");
    let (_, v) = c.post_json(&add, &json!({"tid": 10000001, "kidList": []}));
    assert_eq!(errcode(&v), 0, "{v}");
    let id = v["priTmplId"].as_str().unwrap().to_string();
    let (_, v) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let t = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["priTmplId"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(t["content"], "");
    assert_eq!(t["title"], "购物(实体物流)服务动态");
    sb.grant(APPID, "buyer", &id, 1);
    let v = c.send(
        &tok,
        &json!({"touser": "buyer", "template_id": id, "data": {}}),
    );
    assert_eq!(errcode(&v), 40037, "{v}");
    assert!(errmsg(&v).contains("service card"), "{v}");
}

#[test]
fn the_control_api_records_payments_and_shows_cards() {
    let sb = frozen();
    let c = client(&sb);
    let (s, v) = c.post_json(
        "/sandbox/payments",
        &json!({"appid": APPID, "transaction_id": TX, "openid": "buyer", "amount": 12850,
                "pay_time": PAY_TIME, "valid_after_secs": 0}),
    );
    assert_eq!(s, 200, "{v}");
    let (s, _) = c.post_json(
        "/sandbox/payments",
        &json!({"appid": APPID, "transaction_id": TX, "openid": "nobody", "amount": 1}),
    );
    assert_eq!(s, 400);
    let tok = c.demo_token();
    assert_eq!(errcode(&set(&c, &tok, "buyer", 2, check())), 0);
    let (_, v) = c.get(&format!("/sandbox/cards?appid={APPID}&transaction_id={TX}"));
    assert_eq!(v["card"]["statuses"], json!([2]), "{v}");
    let (s, _) = c.post_json(
        "/sandbox/cards/refuse",
        &json!({"appid": APPID, "transaction_id": "4200000000000000000000000000"}),
    );
    assert_eq!(s, 400);
}
