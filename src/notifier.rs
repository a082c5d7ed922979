//! The process-wide notifier: settings, apps, mappings, the permit ledger and
//! the WeChat client. The C boundary holds one; Rust tests build their own with
//! a clock they control. Each concept adds its methods in its own module.

use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::json;

use crate::apps::{AppRegistry, AppSpec, Registered};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigPatch};
use crate::error::Result;
use crate::http::HttpClient;
use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::mapping::MappingRegistry;
use crate::metrics::Metrics;
use crate::outbox::Outbox;

#[derive(Debug)]
pub struct Notifier {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RwLock<Arc<Config>>,
    pub(crate) apps: AppRegistry,
    pub(crate) mappings: MappingRegistry,
    pub(crate) ledger: Ledger,
    pub(crate) http: HttpClient,
    pub(crate) metrics: Metrics,
    pub(crate) journal: Journal,
    pub(crate) outbox: Outbox,
}

impl Default for Notifier {
    fn default() -> Self {
        Notifier::with_clock(Arc::new(SystemClock))
    }
}

impl Notifier {
    pub fn new() -> Self {
        Notifier::default()
    }

    /// A notifier whose idea of time is `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let metrics = Metrics::default();
        metrics.on_scrape(Arc::new(|n: &Notifier| n.refresh_outbox_depth()));
        Notifier {
            ledger: Ledger::new(clock.clone()),
            journal: Journal::new(clock.clone(), metrics.clone()),
            clock,
            config: RwLock::new(Arc::new(Config::default())),
            apps: AppRegistry::default(),
            mappings: MappingRegistry::default(),
            http: HttpClient::default(),
            metrics,
            outbox: Outbox::default(),
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The settings in force.
    pub fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    /// Applies a `configure` document; nothing changes when it is invalid or
    /// when the new store cannot be opened.
    pub fn configure(&self, json: &str) -> Result<()> {
        let patch = ConfigPatch::parse(json)?;
        let mut config = self.config.write();
        let next = patch.apply_to(&config);
        self.outbox.check_switch(&next)?;
        self.ledger.configure(&next)?;
        self.outbox.configure(&next)?;
        self.http.configure(&next);
        self.metrics.configure(&next);
        self.journal.configure(&next.log);
        *config = Arc::new(next);
        Ok(())
    }

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

    #[test]
    fn invalid_configure_changes_nothing() {
        let n = Notifier::new();
        n.configure(r#"{"timeout_ms":1234}"#).unwrap();
        assert!(n.configure(r#"{"timeout_ms":1,"bogus":1}"#).is_err());
        assert_eq!(n.config().timeout_ms, 1234);
    }
}
