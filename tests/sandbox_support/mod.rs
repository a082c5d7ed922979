//! A small blocking client for driving the sandbox over HTTP in tests.
#![allow(dead_code)]

use fashop_notify_sandbox::{Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

pub const APPID: &str = DEMO_APPID;
pub const SECRET: &str = DEMO_SECRET;
pub const SEND: &str = "/cgi-bin/message/subscribe/send";
pub const LEGACY_SEND: &str = "/cgi-bin/message/wxopen/template/send";

pub struct Client {
    agent: ureq::Agent,
    pub base: String,
}

pub fn client(sb: &Sandbox) -> Client {
    client_at(&sb.url())
}

/// A client of the sandbox at `url` (a running binary, say).
pub fn client_at(url: &str) -> Client {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build();
    Client {
        agent: ureq::Agent::new_with_config(config),
        base: url.to_string(),
    }
}

fn parse(status: u16, text: String) -> (u16, Value) {
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, v)
}

impl Client {
    pub fn try_get(&self, path: &str) -> Result<(u16, String), ureq::Error> {
        let mut resp = self.agent.get(format!("{}{path}", self.base)).call()?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string()?))
    }

    pub fn try_post(&self, path: &str, body: &str) -> Result<(u16, String), ureq::Error> {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .send(body)?;
        let status = resp.status().as_u16();
        Ok((status, resp.body_mut().read_to_string()?))
    }

    /// A POST with the given Content-Type (None: no such header).
    pub fn post_as(&self, path: &str, content_type: Option<&str>, body: &str) -> (u16, Value) {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        let mut resp = req.send(body).expect("POST reaches the sandbox");
        let status = resp.status().as_u16();
        parse(status, resp.body_mut().read_to_string().unwrap())
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (s, t) = self.try_get(path).expect("GET reaches the sandbox");
        parse(s, t)
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let (s, t) = self.try_post(path, body).expect("POST reaches the sandbox");
        parse(s, t)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post(path, &body.to_string())
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let mut resp = self
            .agent
            .delete(format!("{}{path}", self.base))
            .call()
            .expect("DELETE reaches the sandbox");
        let status = resp.status().as_u16();
        parse(status, resp.body_mut().read_to_string().unwrap())
    }

    /// A classic token for the app; panics unless WeChat would hand one out.
    pub fn token(&self, appid: &str, secret: &str) -> String {
        let (_, v) = self.get(&format!(
            "/cgi-bin/token?grant_type=client_credential&appid={appid}&secret={secret}"
        ));
        v["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {v}"))
            .to_string()
    }

    pub fn demo_token(&self) -> String {
        self.token(APPID, SECRET)
    }

    /// A subscribe send with `body`, answering WeChat's JSON.
    pub fn send(&self, token: &str, body: &Value) -> Value {
        self.post_json(&format!("{SEND}?access_token={token}"), body)
            .1
    }
}

/// Valid data for `TPL_PAY_SUCCESS`.
pub fn pay_data() -> Value {
    json!({
        "character_string1": {"value": "SN202611230001"},
        "amount2": {"value": "¥199.00"},
        "thing3": {"value": "秋冬加厚连衣裙"},
        "time4": {"value": "2026-11-23 20:10"}
    })
}

/// A valid subscribe message to `openid` with the payment-success template.
pub fn pay_message(openid: &str) -> Value {
    json!({
        "touser": openid,
        "template_id": TPL_PAY_SUCCESS,
        "page": "pages/order/detail?id=1",
        "data": pay_data(),
        "miniprogram_state": "formal",
        "lang": "zh_CN"
    })
}

pub fn errcode(v: &Value) -> i64 {
    v["errcode"]
        .as_i64()
        .unwrap_or_else(|| panic!("no errcode in {v}"))
}

pub fn errmsg(v: &Value) -> &str {
    v["errmsg"].as_str().unwrap_or_default()
}

/// WeChat ends every errmsg with ` rid: <hex>`.
pub fn assert_rid(v: &Value) {
    let msg = errmsg(v);
    let (_, rid) = msg
        .rsplit_once(" rid: ")
        .unwrap_or_else(|| panic!("errmsg without rid: {msg:?}"));
    // WeChat's shape: `63b13eeb-65c02d34-0fd76547`.
    let parts: Vec<&str> = rid.split('-').collect();
    assert!(
        parts.len() == 3
            && parts
                .iter()
                .all(|p| p.len() == 8 && p.bytes().all(|b| b.is_ascii_hexdigit())),
        "rid is not WeChat's 8-8-8 hex: {msg:?}"
    );
}
