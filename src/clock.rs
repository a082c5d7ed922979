//! Time comes in through this seam, so token expiry, permit expiry and backoff are
//! tested by moving a clock instead of sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in milliseconds.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;

    /// Unix time in whole seconds.
    fn now(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// Waits `ms` milliseconds (a retry backoff). A manual clock just moves on.
    fn sleep_ms(&self, ms: u64);
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }

    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    /// A clock standing at `unix_secs`.
    pub fn at(unix_secs: i64) -> Self {
        ManualClock {
            ms: AtomicI64::new(unix_secs * 1000),
        }
    }

    pub fn advance_secs(&self, secs: i64) {
        self.ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    pub fn advance_ms(&self, ms: i64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn set_secs(&self, unix_secs: i64) {
        self.ms.store(unix_secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.ms.load(Ordering::SeqCst)
    }

    fn sleep_ms(&self, ms: u64) {
        self.advance_ms(ms as i64);
    }
}

/// China is UTC+8 all year, without daylight saving: a shop owner's days, and
/// WeChat's daily quotas, are China days.
const CHINA_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// The China day of a unix time in ms: days since 1970-01-01, China time.
pub fn china_day(unix_ms: i64) -> i64 {
    (unix_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS)
}

/// (year, month 1-12, day 1-31) of a day number in the proleptic Gregorian
/// calendar, after H. Hinnant's days-to-civil algorithm.
pub fn civil_date(day: i64) -> (i64, i64, i64) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_text(day: i64) -> String {
    let (y, m, d) = civil_date(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_700_000_000);
        assert_eq!(c.now(), 1_700_000_000);
        c.advance_ms(1500);
        assert_eq!(c.now(), 1_700_000_001);
        assert_eq!(c.now_ms(), 1_700_000_001_500);
        c.sleep_ms(2000);
        assert_eq!(c.now(), 1_700_000_003);
        c.set_secs(5);
        assert_eq!(c.now(), 5);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now() > 1_577_836_800);
    }
}
