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

    /// A new China day began: this process's series of earlier days leave its
    /// memory once the shared store has them (with the memory store, once they
    /// are older than `oldest`), so a worker that runs for months stays far
    /// below the family's cap of series.
    pub(crate) fn new_reach_day(&self, today: i64, oldest: i64) {
        let shared = self.inner.shared.load(Ordering::Acquire);
        let before = if shared { today } else { oldest };
        self.inner.reach.retain(|k, c| {
            let day = k.values().get(2).and_then(|d| d.parse::<i64>().ok());
            day.is_none_or(|d| d >= before) || (shared && c.unflushed().0 > 0)
        });
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::MemorySink;

    #[test]
    fn a_new_day_lets_old_series_go() {
        let local = Metrics::new();
        for day in 0..40 {
            local.record_reach("wxapp", "order_pay_success", day, "sent", 0);
        }
        local.new_reach_day(40, 11);
        assert_eq!(
            local.inner.reach.len(),
            29,
            "days 11 to 39 stay with the memory store"
        );
        let counts = local.reach_counts("wxapp").unwrap();
        assert_eq!(counts.iter().map(|c| c.1).min(), Some(11));

        // With a shared store, days before today go once the store has them.
        let sink = Arc::new(MemorySink::default());
        let shared = Metrics::with_sink(sink.clone());
        shared.record_reach("wxapp", "order_pay_success", 5, "sent", 0);
        shared.new_reach_day(6, 0);
        assert_eq!(shared.inner.reach.len(), 1, "not in the store yet: kept");
        shared.flush().unwrap();
        shared.new_reach_day(6, 0);
        assert_eq!(shared.inner.reach.len(), 0);
        assert_eq!(
            shared.reach_counts("wxapp").unwrap(),
            vec![("order_pay_success".into(), 5, "sent".into(), 0, 1)]
        );
    }
}
