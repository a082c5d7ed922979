//! The owner's reach report: counting what sends ended as, and the export of
//! the counts for a range of China days with the grant stock per template.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::json;

use super::send::SendReport;
use super::Notifier;
use crate::error::{Error, Result};
use crate::message::MessageKind;
use crate::outbox::FlushStatus;
use crate::reach::{outcome_of, report_json, LAPSE_WINDOW_DAYS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    from: String,
    to: String,
}

impl Notifier {
    /// Counts one finished send of `event` in the owner's report, by its final
    /// status (`sent`, `failed`, `no_permit`, `uncertain`, `queued`) and errcode;
    /// other statuses count nothing. The send path and the outbox's flush call
    /// it once per message ending; service card updates are to call it too,
    /// with their own event name, when they finish.
    pub fn count_reach(&self, appid: &str, event: &str, status: &str, errcode: i64) {
        if let Some(outcome) = outcome_of(status, errcode) {
            self.reach.record(appid, event, outcome, errcode);
        }
    }

    /// Counts a direct send by its final report (after an `on_failure`
    /// enqueue): a send that failed before it had an outcome counts by its
    /// error when WeChat or the network was the cause. Whether it counted.
    pub(crate) fn count_send(&self, appid: &str, event: &str, report: &SendReport) -> bool {
        let (status, errcode) = match (&report.outcome, &report.result) {
            (Some(o), _) => (o.status.as_str(), o.errcode),
            (None, Err(Error::WeChat { errcode, .. })) => ("failed", *errcode),
            (None, Err(Error::Network(_))) => ("failed", 0),
            (None, Err(Error::Uncertain(_))) => ("uncertain", 0),
            (None, Err(Error::NoPermit(_))) => ("no_permit", 0),
            _ => return false,
        };
        self.count_reach(appid, event, status, errcode);
        outcome_of(status, errcode).is_some()
    }

    /// Counts an outbox message that the flush ended (sent, dead or
    /// uncertain); one due again later has not ended yet.
    pub(crate) fn count_flushed(
        &self,
        appid: &str,
        event: &str,
        status: FlushStatus,
        errcode: i64,
        report: &SendReport,
    ) {
        match status {
            FlushStatus::Sent => self.count_reach(appid, event, "sent", 0),
            FlushStatus::Uncertain => self.count_reach(appid, event, "uncertain", errcode),
            FlushStatus::Dead => {
                if !self.count_send(appid, event, report) {
                    self.count_reach(appid, event, "failed", errcode);
                }
            }
            FlushStatus::Duplicate | FlushStatus::Retry | FlushStatus::Lost => {}
        }
    }

    /// `fashop_notify_reach_report`: `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}`
    /// (China days, within `report_keep_days`) → per event each day's counts
    /// and the range's totals, and the grant stock per subscribe template.
    pub fn reach_report(&self, appid: &str, query_json: &str) -> Result<String> {
        self.check_configured()?;
        self.apps.get(appid)?;
        let q: ReportQuery = serde_json::from_str(query_json)
            .map_err(|e| Error::invalid(format!("reach report query: {e}")))?;
        let (from_day, to_day, counts) = self.reach.counts(appid, &q.from, &q.to)?;
        let now_ms = self.clock.now_ms();
        let max_age = i64::from(self.config().subscribe_max_age_days);
        // With subscribe_max_age_days, grants last accepted this long ago are purged within the window.
        let accepted_before =
            (max_age > 0).then(|| now_ms.div_euclid(1000) - (max_age - LAPSE_WINDOW_DAYS) * 86_400);
        let stock = self
            .ledger
            .store()
            .template_stock(appid, now_ms, accepted_before)?;
        let mut template_events: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(m) = self.mappings.get(appid) {
            for (event, e) in m
                .events
                .iter()
                .filter(|(_, e)| e.kind == MessageKind::Subscribe)
            {
                template_events
                    .entry(e.template_id.to_string())
                    .or_default()
                    .push(event.to_string());
            }
        }
        let extra = json!({
            "keep_days": self.reach.keep_days(),
            "today": crate::reach::day_text(self.reach.today()),
        });
        let doc = report_json(
            appid,
            (from_day, to_day),
            &counts,
            &stock,
            &template_events,
            extra,
        );
        Ok(doc.to_string())
    }
}
