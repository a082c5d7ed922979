//! Service cards as WeChat answers them (`/wxa/set_user_notify`,
//! `/wxa/set_user_notifyext`, `/wxa/get_user_notify`): a payment recorded
//! through the control API becomes a valid notify_code only after a delay on
//! the sandbox clock; activation needs check_json matching the payment; the
//! openid must be the payer; statuses move only as the card's definition
//! allows (the library's `cards.json`). Codes and rules: docs/spec/wechat.md.

use fashop_notify::cards::{card, Card};
use serde_json::{json, Map, Value};

use super::cards::{CardState, Payment};
use super::world::{wx_error, Answer, World};

/// How long a code stays usable after payment (unverified: WeChat shows a
/// `code_expire_time` but states no span).
const CODE_LIFETIME_SECS: i64 = 30 * 86_400;

/// The errcodes the card APIs answer (docs/spec/wechat.md, service cards).
const INVALID_OPENID: i64 = 40003;
const CHECK_JSON_INVALID: i64 = 85433;
const INVALID_NOTIFY_TYPE: i64 = 85434;
const CONTENT_INVALID: i64 = 85436;
const INVALID_NOTIFY_CODE: i64 = 85437;
const CODE_EXPIRED: i64 = 85438;
/// The buyer refused the code (unverified: the code WeChat answers is not
/// documented; get_user_notify's code_state 10 is).
const CODE_REFUSED: i64 = 85439;

/// What every card API checks first: the app (by its token), the card type and the code.
struct Call<'a> {
    appid: String,
    card: &'static Card,
    code: &'a str,
}

/// Token, body shape, card type, code (a payment valid by now, not expired)
/// and payer, in that order.
fn call<'a>(w: &World, token: Option<&str>, body: &'a Value, now: i64) -> Result<Call<'a>, Answer> {
    let appid = w.check_token(token, now)?;
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(openid), Some(code)) = (text("openid"), text("notify_code")) else {
        return Err(wx_error(
            47001,
            "data format error: openid and notify_code are required strings",
        ));
    };
    let card = body
        .get("notify_type")
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .and_then(card)
        .ok_or_else(|| wx_error(INVALID_NOTIFY_TYPE, "invalid notify_type"))?;
    let app = w.apps.get(&appid).expect("tokens belong to known apps");
    if !app.users.contains(openid) {
        return Err(wx_error(INVALID_OPENID, "invalid openid"));
    }
    let key = (appid.clone(), code.to_string());
    let Some(pay) = w.cards.payments.get(&key).filter(|p| now >= p.valid_from) else {
        return Err(wx_error(INVALID_NOTIFY_CODE, "notify_code not exist"));
    };
    if now >= pay.pay_time + CODE_LIFETIME_SECS {
        return Err(wx_error(CODE_EXPIRED, "notify_code expired"));
    }
    if pay.openid != openid {
        // The code is the transaction id: the openid must be the payer's.
        return Err(wx_error(
            INVALID_OPENID,
            "invalid openid: not the payer of notify_code",
        ));
    }
    Ok(Call { appid, card, code })
}

/// A string field holding JSON, parsed as an object.
fn json_object(body: &Value, key: &str) -> Option<Map<String, Value>> {
    let text = body.get(key)?.as_str()?;
    serde_json::from_str::<Value>(text)
        .ok()?
        .as_object()
        .cloned()
}

/// `POST /wxa/set_user_notify`: activates or moves a card.
pub(crate) fn set_user_notify(
    w: &mut World,
    token: Option<&str>,
    body: &Value,
    now: i64,
) -> Answer {
    let c = match call(w, token, body, now) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let key = (c.appid.clone(), c.code.to_string());
    if w.cards.refused.contains_key(&key) {
        return wx_error(CODE_REFUSED, "user refused the notify_code");
    }
    let Some(content) = json_object(body, "content_json") else {
        return wx_error(
            CONTENT_INVALID,
            "invalid content_json: not a JSON object in a string",
        );
    };
    let status = match c.card.check_content(&content) {
        Ok(s) => s,
        Err(problems) => {
            return wx_error(
                CONTENT_INVALID,
                &format!("invalid content_json: {}", problems.join("; ")),
            )
        }
    };
    let prev = w
        .cards
        .cards
        .get(&key)
        .and_then(|s| s.statuses.last().copied());
    if prev.is_none() {
        let pay = &w.cards.payments[&key];
        if let Err(why) = check_payment(body, pay) {
            return wx_error(CHECK_JSON_INVALID, &format!("invalid check_json: {why}"));
        }
    }
    if let Err(why) = c.card.check_transition(prev, status) {
        return wx_error(CONTENT_INVALID, &format!("invalid content_json: {why}"));
    }
    let state = w.cards.cards.entry(key).or_insert_with(|| CardState {
        notify_type: c.card.notify_type,
        ..CardState::default()
    });
    state.statuses.push(status);
    state.contents.push(
        body["content_json"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    );
    Answer::ok_json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// check_json `{pay_amount, pay_time}` against the payment (activation only).
fn check_payment(body: &Value, pay: &Payment) -> Result<(), String> {
    let Some(check) = json_object(body, "check_json") else {
        return Err("required at activation when notify_code is a transaction id".into());
    };
    let amount = check.get("pay_amount").and_then(Value::as_u64);
    let time = check.get("pay_time").and_then(Value::as_i64);
    if amount != Some(pay.amount) {
        return Err(format!(
            "pay_amount {amount:?} is not the payment's amount in fen"
        ));
    }
    if time != Some(pay.pay_time) {
        return Err(format!("pay_time {time:?} is not the payment's time"));
    }
    Ok(())
}

/// `POST /wxa/set_user_notifyext`: the card's extra information.
pub(crate) fn set_user_notifyext(
    w: &mut World,
    token: Option<&str>,
    body: &Value,
    now: i64,
) -> Answer {
    let c = match call(w, token, body, now) {
        Ok(c) => c,
        Err(a) => return a,
    };
    if json_object(body, "ext_json").is_none() {
        return wx_error(
            CONTENT_INVALID,
            "invalid ext_json: not a JSON object in a string",
        );
    }
    let key = (c.appid.clone(), c.code.to_string());
    let Some(state) = w.cards.cards.get_mut(&key) else {
        return wx_error(INVALID_NOTIFY_CODE, "notify_code not activated");
    };
    state.ext_json = body["ext_json"].as_str().map(str::to_string);
    Answer::ok_json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// `POST /wxa/get_user_notify`: the card's last content and code state.
pub(crate) fn get_user_notify(w: &World, token: Option<&str>, body: &Value, now: i64) -> Answer {
    let c = match call(w, token, body, now) {
        Ok(c) => c,
        Err(a) => return a,
    };
    let key = (c.appid.clone(), c.code.to_string());
    let state = w.cards.cards.get(&key);
    let refused = w.cards.refused.contains_key(&key);
    let pay = &w.cards.payments[&key];
    let content = state
        .and_then(|s| s.contents.last().cloned())
        .unwrap_or_default();
    Answer::ok_json(json!({"errcode": 0, "errmsg": "ok", "notify_info": {
        "notify_type": c.card.notify_type,
        "content_json": content,
        "code_state": if refused { 10 } else { 0 },
        "code_expire_time": pay.pay_time + CODE_LIFETIME_SECS,
    }}))
}
