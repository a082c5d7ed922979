//! The notifier's app calls: registering an app (appid, secret, token mode),
//! removing it, and listing what is registered without any credential.

use serde_json::json;

use super::Notifier;
use crate::error::Result;
use crate::wechat::{AppSpec, Registered};

impl Notifier {
    pub fn register_app(&self, json: &str) -> Result<Registered> {
        let spec = AppSpec::parse(json)?;
        Ok(self.apps.register(spec))
    }

    pub fn unregister_app(&self, appid: &str) -> Result<()> {
        self.apps.unregister(appid)
    }

    /// `[{"appid", "token_mode", "api_base", "token": {"cached", "expires_in"}}]`,
    /// never the secret or the token.
    pub fn list_apps(&self) -> Result<String> {
        let now = self.clock.now_ms();
        let apps: Vec<_> = self
            .apps
            .all()
            .iter()
            .map(|app| {
                let left = app.token.seconds_left(now);
                json!({
                    "appid": app.appid,
                    "token_mode": app.token_mode,
                    "api_base": app.api_base.clone().unwrap_or_else(|| self.config().api_base.clone()),
                    "token": {"cached": left.is_some(), "expires_in": left.unwrap_or(0)},
                    "grants": app.grants,
                    "push": app.push.as_ref().map(|p| json!({"format": p.format(), "safe_mode": p.key().is_some()})),
                })
            })
            .collect();
        Ok(serde_json::Value::Array(apps).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_apps_shows_mode_and_never_the_secret() {
        let n = Notifier::new();
        n.register_app(r#"{"appid":"wxb","secret":"sekret-b","token_mode":"classic"}"#)
            .unwrap();
        n.register_app(r#"{"appid":"wxa","secret":"sekret-a"}"#)
            .unwrap();
        let out = n.list_apps().unwrap();
        assert!(!out.contains("sekret"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["appid"], "wxa");
        assert_eq!(v[0]["token_mode"], "stable");
        assert_eq!(v[1]["token_mode"], "classic");
        assert_eq!(v[0]["token"]["cached"], false);
        assert_eq!(v[0]["api_base"], "https://api.weixin.qq.com");
    }
}
