//! `fashop_notify_api_quota`: an API's daily limit and use, from WeChat's
//! `openapi/quota/get`, so a shop sees a 45009 coming (the editor's outbox
//! panel shows the send API's) instead of meeting it.

use serde_json::{json, Value};

use super::Notifier;
use crate::error::{Error, Result};

const QUOTA_PATH: &str = "/cgi-bin/openapi/quota/get";
/// The API asked about when the caller names none: the subscribe send.
pub const DEFAULT_QUOTA_API: &str = "/cgi-bin/message/subscribe/send";
const MAX_CGI_PATH: usize = 256;

impl Notifier {
    /// The daily quota of `cgi_path` (default: the subscribe send) for the
    /// app: `{"appid", "cgi_path", "daily_limit", "used", "remain"}`. A
    /// non-zero errcode is WECHAT_ERROR with WeChat's JSON as the answer.
    pub fn api_quota(&self, appid: &str, cgi_path: Option<&str>) -> (Result<()>, Option<String>) {
        let cgi_path = cgi_path.unwrap_or(DEFAULT_QUOTA_API);
        if let Err(e) = check_cgi_path(cgi_path) {
            return (Err(e), None);
        }
        let body = json!({ "cgi_path": cgi_path }).to_string();
        match self.call_api_reply(appid, "POST", QUOTA_PATH, Some(&body)) {
            (Ok(()), Some(reply)) => match quota_json(appid, cgi_path, &reply) {
                Ok(text) => (Ok(()), Some(text)),
                Err(e) => (Err(e), None),
            },
            other => other,
        }
    }
}

/// WeChat wants the API's path alone: `/` first, no host, no query
/// (`https://…` or a missing `/` answers 76003).
fn check_cgi_path(path: &str) -> Result<()> {
    let shown: String = path.chars().take(48).collect();
    let problem = if path.is_empty() {
        Some("must not be empty")
    } else if path.len() > MAX_CGI_PATH {
        Some("is longer than 256 bytes")
    } else if path.contains("://") {
        Some("must be the API's path without https://api.weixin.qq.com")
    } else if !path.starts_with('/') || path.starts_with("//") {
        Some("must start with one '/'")
    } else if path.contains('?') {
        Some("must be a path without a query (no access_token, no '?')")
    } else if !path.chars().all(|c| c.is_ascii_graphic() && c != '#') {
        Some("may only hold printable ASCII without '#'")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(Error::invalid(format!(
            "cgi_path {p} (e.g. \"{DEFAULT_QUOTA_API}\"), got {shown:?}"
        ))),
    }
}

/// WeChat's answer (`quota: {daily_limit, used, remain}`) as the export's JSON.
fn quota_json(appid: &str, cgi_path: &str, reply: &str) -> Result<String> {
    let v: Value = serde_json::from_str(reply).unwrap_or_default();
    let figure = |k: &str| v["quota"][k].as_u64();
    match (figure("daily_limit"), figure("used"), figure("remain")) {
        (Some(daily_limit), Some(used), Some(remain)) => Ok(json!({
            "appid": appid, "cgi_path": cgi_path,
            "daily_limit": daily_limit, "used": used, "remain": remain,
        })
        .to_string()),
        _ => Err(Error::WeChat {
            errcode: 0,
            errmsg: "openapi/quota/get answered without quota.daily_limit, used and remain".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgi_paths_are_checked_before_any_call() {
        assert!(check_cgi_path(DEFAULT_QUOTA_API).is_ok());
        assert!(check_cgi_path("/wxaapi/newtmpl/gettemplate").is_ok());
        for (bad, words) in [
            ("", "must not be empty"),
            (
                "https://api.weixin.qq.com/cgi-bin/token",
                "without https://",
            ),
            ("cgi-bin/token", "start with one '/'"),
            ("//cgi-bin/token", "start with one '/'"),
            ("/cgi-bin/token?access_token=x", "without a query"),
            ("/cgi-bin/to ken", "printable ASCII"),
            ("/cgi-bin/订阅", "printable ASCII"),
        ] {
            let e = check_cgi_path(bad).unwrap_err().to_string();
            assert!(e.contains(words), "{bad:?}: {e}");
        }
        let long = format!("/{}", "a".repeat(300));
        assert!(check_cgi_path(&long)
            .unwrap_err()
            .to_string()
            .contains("256"));
    }

    #[test]
    fn an_answer_without_figures_is_an_error() {
        let ok = r#"{"errcode":0,"errmsg":"ok","quota":{"daily_limit":10,"used":3,"remain":7}}"#;
        let v: Value = serde_json::from_str(&quota_json("wx1", "/a", ok).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"appid": "wx1", "cgi_path": "/a", "daily_limit": 10, "used": 3, "remain": 7})
        );
        assert!(quota_json("wx1", "/a", r#"{"errcode":0}"#).is_err());
        assert!(quota_json("wx1", "/a", "not json").is_err());
    }
}
