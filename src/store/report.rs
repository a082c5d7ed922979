//! The owner's report as the stores keep it: counts of what sends ended as, per
//! app, China day, event, outcome and errcode, added to by every worker process
//! that shares the store and forgotten after the configured number of days. One
//! upsert per finished send; the report's rules live in `crate::reach`.

use crate::error::Result;
use std::fmt;

/// One count: `day` is the China day (days since 1970-01-01 in UTC+8).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReachCount {
    pub day: i64,
    pub event: String,
    /// `sent`, `no_permit`, `refused`, `failed`, `uncertain`, `queued`.
    pub outcome: String,
    /// WeChat's errcode for `failed` (and `refused`, `uncertain`); 0 otherwise.
    pub errcode: i64,
    pub count: u64,
}

/// The grants of one subscribe template: buyers holding at least one use,
/// the uses they hold, and the uses that lapse before a given time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateStock {
    pub template_id: String,
    pub holders: u64,
    pub uses: u64,
    pub lapsing: u64,
}

pub trait ReachStore: Send + Sync + fmt::Debug {
    /// Adds one to the count of (appid, day, event, outcome, errcode) and
    /// forgets the app's days before `keep_from_day`.
    fn add(&self, appid: &str, count: &ReachCount, keep_from_day: i64) -> Result<()>;

    /// The app's counts of the days `from_day..=to_day`, in any order.
    fn range(&self, appid: &str, from_day: i64, to_day: i64) -> Result<Vec<ReachCount>>;
}
