//! The owner's reach report as figures: one counter per app, event, China day,
//! outcome and errcode. It rides on the figures' merge into the shared store (at
//! most once a second, at every read and when the figures are dropped), so a send
//! costs no store write of its own; the Prometheus text leaves it out (a series
//! per day is the report's business, not the scraper's).

use std::sync::atomic::Ordering;

use super::family::int_label;
use super::{Metrics, Sample};
use crate::error::Result;

/// The figures' name in the shared store.
pub(crate) const REACH: &str = "fashop_notify_reach_total";

/// One count as read back: event, day, outcome, errcode and the count.
pub type ReachSample = (String, i64, String, i64, u64);

impl Metrics {
    /// One send of `event` ended as `outcome` on China day `day`.
    pub fn record_reach(&self, appid: &str, event: &str, day: i64, outcome: &str, errcode: i64) {
        let (mut d, mut e) = ([0u8; 24], [0u8; 24]);
        let labels = [
            appid,
            event,
            int_label(&mut d, day),
            outcome,
            int_label(&mut e, errcode),
        ];
        self.inner.reach.with(labels, |c| c.add(1));
        self.written();
    }

    /// The app's counts: from the shared store (after this process's own went
    /// there) when there is one, else this process's.
    pub(crate) fn reach_counts(&self, appid: &str) -> Result<Vec<ReachSample>> {
        let mut out = Vec::new();
        if self.inner.shared.load(Ordering::Acquire) {
            for s in self.shared_reach()? {
                out.extend(parse(&s.labels, s.value, appid));
            }
        } else {
            self.inner.reach.each(|k, c| {
                out.extend(parse(&k.values(), c.get() as i64, appid));
            });
        }
        Ok(out)
    }

    /// Forgets the app's days before `oldest`, here and in the shared store.
    /// A series with counts the store has not taken yet stays until it has.
    pub(crate) fn forget_reach_before(&self, appid: &str, oldest: i64) -> Result<()> {
        let old = |labels: &[String]| {
            labels.first().is_some_and(|a| a == appid)
                && labels
                    .get(2)
                    .and_then(|d| d.parse::<i64>().ok())
                    .is_some_and(|d| d < oldest)
        };
        let shared = self.inner.shared.load(Ordering::Acquire);
        self.inner
            .reach
            .retain(|k, c| !old(&k.values()) || (shared && c.unflushed().0 > 0));
        if shared {
            let gone: Vec<Sample> = self
                .shared_reach()?
                .into_iter()
                .filter(|s| old(&s.labels))
                .collect();
            if let Some(sink) = self.inner.sink.lock().sink.clone() {
                sink.forget(&gone)?;
            }
        }
        Ok(())
    }

    fn shared_reach(&self) -> Result<Vec<Sample>> {
        self.flush()?;
        let sink = self.inner.sink.lock().sink.clone();
        let all = match sink {
            Some(s) => s.snapshot()?,
            None => Vec::new(),
        };
        Ok(all.into_iter().filter(|s| s.name == REACH).collect())
    }
}

fn parse(labels: &[String], value: i64, appid: &str) -> Option<ReachSample> {
    let [app, event, day, outcome, errcode] = labels else {
        return None;
    };
    if app != appid {
        return None;
    }
    Some((
        event.clone(),
        day.parse().ok()?,
        outcome.clone(),
        errcode.parse().ok()?,
        value.max(0) as u64,
    ))
}
