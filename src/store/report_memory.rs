//! The report's counts inside this process (the memory store: tests, demos).

use std::collections::BTreeMap;

use parking_lot::Mutex;

use super::report::{ReachCount, ReachStore};
use crate::error::Result;

type Key = (String, i64, String, String, i64);

#[derive(Debug, Default)]
pub struct MemoryReach {
    counts: Mutex<BTreeMap<Key, u64>>,
}

impl ReachStore for MemoryReach {
    fn add(&self, appid: &str, c: &ReachCount, keep_from_day: i64) -> Result<()> {
        let mut counts = self.counts.lock();
        counts.retain(|k, _| k.0 != appid || k.1 >= keep_from_day);
        let key = (
            appid.to_string(),
            c.day,
            c.event.clone(),
            c.outcome.clone(),
            c.errcode,
        );
        *counts.entry(key).or_default() += c.count;
        Ok(())
    }

    fn range(&self, appid: &str, from_day: i64, to_day: i64) -> Result<Vec<ReachCount>> {
        Ok(self
            .counts
            .lock()
            .iter()
            .filter(|(k, _)| k.0 == appid && (from_day..=to_day).contains(&k.1))
            .map(|(k, n)| ReachCount {
                day: k.1,
                event: k.2.clone(),
                outcome: k.3.clone(),
                errcode: k.4,
                count: *n,
            })
            .collect())
    }
}
