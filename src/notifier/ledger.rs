//! The notifier's ledger calls: recording permits, the stock of an app or a
//! buyer, and purging expired permits.

use serde_json::json;

use super::Notifier;
use crate::error::{Error, Result};
use crate::ledger::{check_text, parse_permit, stats_json, Added, Ledger};

impl Notifier {
    /// `r`, with a store failure also written to the structured log.
    pub(crate) fn noted<T>(&self, operation: &str, r: Result<T>) -> Result<T> {
        if let Err(Error::Store(message)) = &r {
            self.journal
                .store_problem(&self.ledger.describe_store(), operation, message);
        }
        r
    }

    /// The permit ledger, for send and the outbox.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Records a permit for a registered app (`ledger.md` for the format).
    pub fn add_permit(&self, appid: &str, json: &str) -> Result<()> {
        self.check_configured("add_permit")?;
        self.apps.get(appid)?;
        let permit = parse_permit(json, self.clock.now_ms())?;
        let added = self.noted("add_permit", self.ledger.add(appid, &permit))?;
        if matches!(added, Added::Stored | Added::Counted) {
            self.metrics
                .record_permits_added(permit.kind.as_str(), u64::from(permit.uses));
        }
        Ok(())
    }

    /// Usable stock of the app, or of one of its users: counts by kind (by
    /// template for subscribe grants) and the soonest expiry.
    pub fn ledger_stats(&self, appid: &str, openid: Option<&str>) -> Result<String> {
        self.check_configured("ledger_stats")?;
        self.apps.get(appid)?;
        if let Some(o) = openid {
            check_text("ledger_stats", "openid", o)?;
        }
        let stats = self.noted("ledger_stats", self.ledger.stats(appid, openid))?;
        Ok(stats_json(appid, openid, &stats))
    }

    /// Removes the app's expired permits: `{"appid", "removed": n}`.
    pub fn ledger_purge(&self, appid: &str) -> Result<String> {
        self.check_configured("ledger_purge")?;
        self.apps.get(appid)?;
        let removed = self.noted("ledger_purge", self.ledger.purge(appid))?;
        if removed > 0 {
            // The stores count what a purge removed, not by kind.
            self.metrics.record_permit_expired("any", removed);
        }
        Ok(json!({"appid": appid, "removed": removed}).to_string())
    }
}
