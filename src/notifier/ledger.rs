//! The notifier's ledger calls: recording permits, the stock of an app or a
//! buyer, and purging expired permits.

use serde_json::json;

use super::Notifier;
use crate::error::{Error, Result};
use crate::ledger::{check_text, parse_permit, stats_json, Added, Kind, Ledger, NewPermit};
use crate::wechat::Grants;

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
        self.check_configured()?;
        let app = self.apps.get(appid)?;
        let permit = parse_permit(json, self.clock.now_ms())?;
        if permit.kind == Kind::Subscribe && app.grants == Grants::Push {
            return Err(Error::invalid(format!(
                "app {appid} takes subscribe grants only from WeChat's message push (registered with \"grants\": \"push\"); a grant reported by the mini program is not recorded, so one tap is never counted twice"
            )));
        }
        self.check_grant_is_mapped(appid, &permit)?;
        let added = self.noted("add_permit", self.ledger.add(appid, &permit))?;
        if matches!(added, Added::Stored | Added::Counted) {
            self.metrics
                .record_permits_added(permit.kind.as_str(), u64::from(permit.uses));
        }
        Ok(())
    }

    /// A subscribe grant is for a template the app's mapping sends: any other
    /// could never be used, and a client sending made-up template ids would
    /// fill the store. Without a mapping document nothing can be checked yet
    /// and the grant is kept (bounded by `subscribe_cap_per_template`).
    fn check_grant_is_mapped(&self, appid: &str, permit: &NewPermit) -> Result<()> {
        if permit.kind != Kind::Subscribe {
            return Ok(());
        }
        let Some(mappings) = self.mappings.get(appid) else {
            return Ok(());
        };
        if mappings.maps_subscribe_template(&permit.value) {
            return Ok(());
        }
        let mapped = mappings.subscribe_templates();
        Err(Error::invalid(format!(
            "template_id {:?} is not mapped to any subscribe event of app {appid} \
             (mapped: {}); a grant for it could never be used: map the template in the admin first",
            permit.value.chars().take(64).collect::<String>(),
            if mapped.is_empty() {
                "none".to_string()
            } else {
                mapped.join(", ")
            }
        )))
    }

    /// Usable stock of the app, or of one of its users: counts by kind (by
    /// template for subscribe grants) and the soonest expiry.
    pub fn ledger_stats(&self, appid: &str, openid: Option<&str>) -> Result<String> {
        self.check_configured()?;
        self.apps.get(appid)?;
        if let Some(o) = openid {
            check_text("openid", o)?;
        }
        let stats = self.noted("ledger_stats", self.ledger.stats(appid, openid))?;
        Ok(stats_json(appid, openid, &stats))
    }

    /// Removes the app's expired permits: `{"appid", "removed": n}`.
    pub fn ledger_purge(&self, appid: &str) -> Result<String> {
        self.check_configured()?;
        self.apps.get(appid)?;
        let removed = self.noted("ledger_purge", self.ledger.purge(appid))?;
        if removed > 0 {
            // The stores count what a purge removed, not by kind.
            self.metrics.record_permit_expired("any", removed);
        }
        Ok(json!({"appid": appid, "removed": removed}).to_string())
    }
}
