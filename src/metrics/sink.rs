//! Where counters go when several worker processes must show one set of
//! figures: a store shared by all of them adds every process's increments.
//! Without one, the figures live in this process's atomics only.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use parking_lot::Mutex;

use crate::error::Result;

/// One figure as a shared sink keeps it: family (or sample) name, label values
/// in the family's label order, and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<String>,
    pub value: i64,
}

/// A store that adds counter increments from many processes and keeps the
/// latest value of each gauge.
pub trait CounterSink: Send + Sync + fmt::Debug {
    /// Adds each of `adds` to its counter (creating it at zero) and sets each
    /// of `sets`, all or nothing. `patience` bounds how long it may wait for
    /// other processes: on the send path a busy store must not hold up the
    /// send (the increments wait for the next flush instead).
    fn apply(&self, adds: &[Sample], sets: &[Sample], patience: Duration) -> Result<()>;

    /// Every counter and gauge the sink holds.
    fn snapshot(&self) -> Result<Vec<Sample>>;

    /// Removes these figures (`value` ignored): the reach report's days past
    /// the kept ones. Called from the report's read, never from a send.
    fn forget(&self, figures: &[Sample]) -> Result<()>;

    /// Batches the sink took but the store has not confirmed yet (sent again
    /// by the next `apply`, which a scrape then makes even with nothing new).
    fn pending(&self) -> usize {
        0
    }
}

/// A sink inside this process: the reference behaviour the store-backed sinks
/// are tested against, and a stand-in where a test needs a failing store.
#[derive(Debug, Default)]
pub struct MemorySink {
    figures: Mutex<BTreeMap<(String, Vec<String>), i64>>,
    failing: std::sync::atomic::AtomicBool,
}

impl MemorySink {
    /// From now on every call fails as a store that is down would.
    pub fn set_failing(&self, failing: bool) {
        self.failing
            .store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            Err(crate::error::Error::store(
                "metrics sink: store unavailable",
            ))
        } else {
            Ok(())
        }
    }
}

impl CounterSink for MemorySink {
    fn apply(&self, adds: &[Sample], sets: &[Sample], _patience: Duration) -> Result<()> {
        self.check()?;
        let mut f = self.figures.lock();
        for s in adds {
            *f.entry((s.name.clone(), s.labels.clone())).or_default() += s.value;
        }
        for s in sets {
            f.insert((s.name.clone(), s.labels.clone()), s.value);
        }
        Ok(())
    }

    fn forget(&self, figures: &[Sample]) -> Result<()> {
        self.check()?;
        let mut f = self.figures.lock();
        for s in figures {
            f.remove(&(s.name.clone(), s.labels.clone()));
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<Sample>> {
        self.check()?;
        Ok(self
            .figures
            .lock()
            .iter()
            .map(|((name, labels), value)| Sample {
                name: name.clone(),
                labels: labels.clone(),
                value: *value,
            })
            .collect())
    }
}
