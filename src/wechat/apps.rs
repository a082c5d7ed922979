//! The registry of mini-program apps: appid, secret, token mode and the cached
//! access token. PHP registers the app on every request, so registering the same
//! app again is a cheap no-op that keeps the token.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::token_cache::TokenCache;
use super::token_mode::TokenMode;
use crate::config::{check_api_base, parse_json};
use crate::error::{Error, Result};
use crate::push::PushCredentials;
use crate::secret::Secret;

/// Where the app's subscribe grants come from. With `push`, WeChat's message
/// push (a popup accept) is the only source and a grant the mini program
/// reports itself is refused, so one tap is never counted twice; with
/// `client` (the default) the mini program's report counts and a popup accept
/// pushed by WeChat is reported, not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Grants {
    #[default]
    Client,
    Push,
}

/// The `register_app` document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub appid: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub token_mode: TokenMode,
    #[serde(default)]
    pub api_base: Option<String>,
    /// The message push's Token and EncodingAESKey, for `handle_push`.
    #[serde(default)]
    pub push: Option<PushCredentials>,
    #[serde(default)]
    pub grants: Grants,
}

impl AppSpec {
    pub fn parse(json: &str) -> Result<AppSpec> {
        let spec: AppSpec = parse_json(json)?;
        check_appid(&spec.appid)?;
        match &spec.secret {
            Some(s) if s.is_empty() => return Err(Error::invalid("secret must not be empty")),
            Some(s) if s.expose().len() > 256 => {
                return Err(Error::invalid("secret is longer than 256 bytes"))
            }
            None if spec.token_mode != TokenMode::External => {
                return Err(Error::invalid(format!(
                    "missing field `secret` (required unless token_mode is \"external\") for {}",
                    spec.appid
                )))
            }
            _ => {}
        }
        if let Some(base) = &spec.api_base {
            check_api_base("api_base", base)?;
        }
        if spec.grants == Grants::Push && spec.push.is_none() {
            return Err(Error::invalid(format!(
                "grants \"push\" needs the push credentials (\"push\": {{\"token\", \"encoding_aes_key\", \"format\"}}) for {}",
                spec.appid
            )));
        }
        Ok(spec)
    }
}

/// An appid is 1 to 64 ASCII letters, digits, `_` or `-` (WeChat's are `wx` and 16 hex digits).
pub fn check_appid(appid: &str) -> Result<()> {
    if appid.is_empty() {
        return Err(Error::invalid("appid must not be empty"));
    }
    if appid.len() > 64
        || !appid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Error::invalid(format!(
            "appid must be 1 to 64 letters, digits, '_' or '-', got {:?}",
            truncate_for_message(appid)
        )));
    }
    Ok(())
}

fn truncate_for_message(s: &str) -> String {
    if s.chars().count() > 70 {
        let head: String = s.chars().take(64).collect();
        format!("{head}…")
    } else {
        s.to_string()
    }
}

/// One registered app.
#[derive(Debug)]
pub struct App {
    pub appid: String,
    pub secret: Option<Secret>,
    pub token_mode: TokenMode,
    /// Overrides the configured `api_base` for this app.
    pub api_base: Option<String>,
    pub token: TokenCache,
    pub push: Option<PushCredentials>,
    pub grants: Grants,
}

impl App {
    fn from_spec(spec: AppSpec) -> App {
        App {
            appid: spec.appid,
            secret: spec.secret,
            token_mode: spec.token_mode,
            api_base: spec.api_base.map(|b| b.trim_end_matches('/').to_string()),
            token: TokenCache::default(),
            push: spec.push,
            grants: spec.grants,
        }
    }

    fn same_as(&self, spec: &AppSpec) -> bool {
        self.secret == spec.secret
            && self.token_mode == spec.token_mode
            && self.api_base.as_deref() == spec.api_base.as_deref().map(|b| b.trim_end_matches('/'))
            && self.push == spec.push
            && self.grants == spec.grants
    }

    /// `text` with this app's secret and cached token replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let text = match &self.secret {
            Some(s) => s.redact(text),
            None => text.to_string(),
        };
        self.token.redact(&text)
    }
}

/// What `register_app` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    New,
    Unchanged,
    Replaced,
}

/// All registered apps, keyed by appid.
#[derive(Debug, Default)]
pub struct AppRegistry {
    apps: RwLock<HashMap<String, Arc<App>>>,
}

impl AppRegistry {
    pub fn register(&self, spec: AppSpec) -> Registered {
        if let Some(app) = self.apps.read().get(&spec.appid) {
            if app.same_as(&spec) {
                return Registered::Unchanged;
            }
        }
        let mut apps = self.apps.write();
        match apps.get(&spec.appid) {
            Some(app) if app.same_as(&spec) => Registered::Unchanged,
            Some(_) => {
                apps.insert(spec.appid.clone(), Arc::new(App::from_spec(spec)));
                Registered::Replaced
            }
            None => {
                apps.insert(spec.appid.clone(), Arc::new(App::from_spec(spec)));
                Registered::New
            }
        }
    }

    pub fn unregister(&self, appid: &str) -> Result<()> {
        check_appid(appid)?;
        match self.apps.write().remove(appid) {
            Some(_) => Ok(()),
            None => Err(not_configured(appid)),
        }
    }

    /// The app, or APP_NOT_CONFIGURED.
    pub fn get(&self, appid: &str) -> Result<Arc<App>> {
        check_appid(appid)?;
        self.apps
            .read()
            .get(appid)
            .cloned()
            .ok_or_else(|| not_configured(appid))
    }

    /// Every app, sorted by appid.
    pub fn all(&self) -> Vec<Arc<App>> {
        let mut apps: Vec<Arc<App>> = self.apps.read().values().cloned().collect();
        apps.sort_by(|a, b| a.appid.cmp(&b.appid));
        apps
    }
}

fn not_configured(appid: &str) -> Error {
    Error::AppNotConfigured(format!(
        "app {appid} is not registered (call register_app with its appid and secret first)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> AppSpec {
        AppSpec::parse(json).unwrap()
    }

    #[test]
    fn same_secret_is_a_no_op_and_new_secret_replaces() {
        let reg = AppRegistry::default();
        let a = r#"{"appid":"wx1","secret":"s1"}"#;
        assert_eq!(reg.register(spec(a)), Registered::New);
        let first = reg.get("wx1").unwrap();
        assert_eq!(reg.register(spec(a)), Registered::Unchanged);
        assert!(Arc::ptr_eq(&first, &reg.get("wx1").unwrap()));
        assert_eq!(
            reg.register(spec(r#"{"appid":"wx1","secret":"s2"}"#)),
            Registered::Replaced
        );
        assert!(!Arc::ptr_eq(&first, &reg.get("wx1").unwrap()));
        assert_eq!(
            reg.register(spec(
                r#"{"appid":"wx1","secret":"s2","token_mode":"classic"}"#
            )),
            Registered::Replaced
        );
        reg.unregister("wx1").unwrap();
        assert!(matches!(reg.get("wx1"), Err(Error::AppNotConfigured(_))));
        assert!(matches!(
            reg.unregister("wx1"),
            Err(Error::AppNotConfigured(_))
        ));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let msg = |j: &str| AppSpec::parse(j).unwrap_err().to_string();
        assert!(msg(r#"{"appid":"wx1","secrett":"s"}"#).contains("unknown field `secrett`"));
        assert!(msg(r#"{"appid":"wx1"}"#).contains("missing field `secret`"));
        assert!(msg(r#"{"secret":"s"}"#).contains("missing field `appid`"));
        assert!(msg(r#"{"appid":"","secret":"s"}"#).contains("appid must not be empty"));
        assert!(msg(r#"{"appid":"wx 1","secret":"s"}"#).contains("appid must be"));
        assert!(msg(r#"{"appid":"wx1","secret":""}"#).contains("secret must not be empty"));
        assert!(msg(r#"{"appid":"wx1","secret":"s","token_mode":"x"}"#).contains("unknown variant"));
        assert!(msg(r#"{"appid":"wx1","secret":"s","api_base":"x"}"#).contains("api_base"));
        assert!(msg(r#"{"appid":1,"secret":"s"}"#).contains("invalid type"));
        AppSpec::parse(r#"{"appid":"wx1","token_mode":"external"}"#).unwrap();
        assert!(msg(r#"{"appid":"wx1","secret":"s","push":{"token":"x"}}"#)
            .contains("push: push.token must be 3 to 32"));
        assert!(msg(r#"{"appid":"wx1","secret":"s","grants":"push"}"#)
            .contains("grants \"push\" needs the push credentials"));
        assert!(msg(r#"{"appid":"wx1","secret":"s","grants":"both"}"#).contains("unknown variant"));
    }

    #[test]
    fn push_credentials_register_and_never_print() {
        let reg = AppRegistry::default();
        let with = r#"{"appid":"wx1","secret":"s1","grants":"push","push":{"token":"pushtoken1","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","format":"xml"}}"#;
        let s = spec(with);
        assert!(!format!("{s:?}").contains("pushtoken1"));
        assert!(!format!("{s:?}").contains("abcdefghij"));
        assert_eq!(reg.register(s), Registered::New);
        assert_eq!(reg.register(spec(with)), Registered::Unchanged);
        let app = reg.get("wx1").unwrap();
        assert_eq!(app.grants, Grants::Push);
        assert!(app.push.is_some());
        assert!(!format!("{app:?}").contains("pushtoken1"));
        assert_eq!(
            reg.register(spec(r#"{"appid":"wx1","secret":"s1"}"#)),
            Registered::Replaced
        );
        assert!(reg.get("wx1").unwrap().push.is_none());
        assert_eq!(reg.get("wx1").unwrap().grants, Grants::Client);
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = spec(r#"{"appid":"wx1","secret":"very-secret-value"}"#);
        assert!(!format!("{s:?}").contains("very-secret-value"));
        let reg = AppRegistry::default();
        reg.register(s);
        let app = reg.get("wx1").unwrap();
        assert!(!format!("{app:?}").contains("very-secret-value"));
        assert_eq!(app.redact("x very-secret-value"), "x ***");
    }
}
