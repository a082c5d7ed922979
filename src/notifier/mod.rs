//! The notifier: the one value that holds every concept (settings, apps and
//! their tokens, mappings, the ledger, the outbox, metrics, the log) and the
//! only home of its methods, one file per group of exports. The C boundary
//! holds one; Rust tests build their own with a clock they control.

use std::sync::Arc;

use parking_lot::RwLock;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigPatch, StoreSpec};
use crate::error::{Error, Result};
use crate::journal::Journal;
use crate::ledger::Ledger;
use crate::message::{MappingRegistry, TemplateCache};
use crate::metrics::Metrics;
use crate::outbox::Outbox;
use crate::reach::Reach;
use crate::store::{open_cards, CardStore, StoreSlot};
use crate::wechat::http::HttpClient;
use crate::wechat::AppRegistry;

mod apps;
mod card;
mod health;
mod ledger;
mod mapping;
mod metrics;
mod outbox;
mod push;
mod quota;
mod reach;
mod run;
pub mod send;
mod template_types;
mod token;

#[derive(Debug)]
pub struct Notifier {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RwLock<Arc<Config>>,
    pub(crate) apps: AppRegistry,
    pub(crate) mappings: MappingRegistry,
    /// Each app's template list as gettemplate last gave it (the mapping check).
    pub(crate) templates: TemplateCache,
    pub(crate) ledger: Ledger,
    pub(crate) http: HttpClient,
    pub(crate) metrics: Metrics,
    pub(crate) journal: Journal,
    pub(crate) outbox: Outbox,
    /// The owner's reach report (counts per app, event and China day).
    pub(crate) reach: Reach,
    /// Where each order's service card stands (the store the settings name).
    pub(crate) cards: StoreSlot<dyn CardStore>,
    /// Whether a `configure` ever succeeded, and the error of the failed
    /// first one(s) until then.
    pub(crate) configured: RwLock<Configured>,
}

/// Where the settings came from, for refusing work on settings the host did
/// not mean.
#[derive(Debug, Default)]
pub(crate) enum Configured {
    /// No `configure` yet: the defaults are what the host asked for.
    #[default]
    Defaults,
    /// A `configure` succeeded.
    Yes,
    /// Every `configure` so far failed; the last one's message.
    Failed(String),
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
            reach: Reach::new(clock.clone(), metrics.clone()),
            ledger: Ledger::new(clock.clone()),
            journal: Journal::new(clock.clone(), metrics.clone()),
            clock,
            config: RwLock::new(Arc::new(Config::default())),
            apps: AppRegistry::default(),
            mappings: MappingRegistry::default(),
            templates: TemplateCache::default(),
            http: HttpClient::default(),
            metrics,
            outbox: Outbox::default(),
            cards: StoreSlot::new(
                open_cards(&StoreSpec::Memory).expect("the memory card store opens"),
                "service card updates were made",
                "send",
            ),
            configured: RwLock::new(Configured::Defaults),
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
    /// A process whose first `configure` failed refuses every store and
    /// network call until one succeeds, so nothing goes into a store or to a
    /// WeChat host the host did not name; a later failed one keeps the
    /// settings in force.
    pub fn configure(&self, json: &str) -> Result<()> {
        let result = self.apply_configure(json);
        let mut configured = self.configured.write();
        match &result {
            Ok(()) => *configured = Configured::Yes,
            Err(e) if !matches!(*configured, Configured::Yes) => {
                *configured = Configured::Failed(e.to_string());
            }
            Err(_) => {}
        }
        result
    }

    /// Refuses a store or network call while every `configure` so far failed.
    pub(crate) fn check_configured(&self) -> Result<()> {
        match &*self.configured.read() {
            Configured::Failed(why) => Err(Error::store(format!(
                "refused because configure failed ({why}) and no configure has succeeded since: \
                 nothing is stored or sent with settings the host did not mean; \
                 fix the settings and call configure again"
            ))),
            _ => Ok(()),
        }
    }

    fn apply_configure(&self, json: &str) -> Result<()> {
        let patch = ConfigPatch::parse(json)?;
        let mut config = self.config.write();
        let next = patch.apply_to(&config);
        self.outbox.check_switch(&next)?;
        self.cards.check_switch(&next.store)?;
        self.ledger.configure(&next)?;
        self.outbox.configure(&next)?;
        self.reach.configure(&next);
        self.cards.switch(&next.store, open_cards)?;
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
