//! The notifier: the one value that holds every concept (settings, apps and
//! their tokens, mappings, the ledger, the outbox, metrics, the log) and the
//! only home of its methods, one file per group of exports. The C boundary
//! holds one; Rust tests build their own with a clock they control.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigPatch};
use crate::error::Result;
use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::message::MappingRegistry;
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::wechat::http::HttpClient;
use crate::wechat::AppRegistry;

mod apps;
mod ledger;
mod mapping;
mod metrics;
mod outbox;
pub mod send;
mod token;

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
        let metrics = Metrics::with_clock(clock.clone());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_configure_changes_nothing() {
        let n = Notifier::new();
        n.configure(r#"{"timeout_ms":1234}"#).unwrap();
        assert!(n.configure(r#"{"timeout_ms":1,"bogus":1}"#).is_err());
        assert_eq!(n.config().timeout_ms, 1234);
    }
}
