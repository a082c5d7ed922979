//! The owner's reach report: what each finished send ended as (sent, no permit,
//! refused by the buyer, failed by errcode, uncertain, queued), counted per app,
//! event and China day in the shared store, and read back for a range of days
//! with the grant stock per template. The counts ride on the figures' merge into
//! the shared store (metrics/reach.rs): a send writes nothing more.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::store::TemplateStock;
use crate::wechat::errcodes::{policy_for, Policy};

/// How far ahead the grant stock looks for uses about to lapse.
pub const LAPSE_WINDOW_DAYS: i64 = 7;

/// One count: `day` is the China day (days since 1970-01-01 in UTC+8).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReachCount {
    pub day: i64,
    pub event: String,
    /// One of `OUTCOMES`.
    pub outcome: String,
    /// WeChat's errcode for `failed` (and `refused`, `uncertain`); 0 otherwise.
    pub errcode: i64,
    pub count: u64,
}

/// What a send ended as, in the owner's terms.
pub const OUTCOMES: [&str; 6] = [
    "sent",
    "no_permit",
    "refused",
    "failed",
    "uncertain",
    "queued",
];

/// The report's outcome for a send's final status and errcode; `None` for a
/// send that did nothing (`duplicate`, `in_progress`) or a flush that will try
/// again later. `refused` is WeChat's answer that the buyer has no grant left
/// (the errcode table's `Policy::Refused`), told apart from other failures.
pub fn outcome_of(status: &str, errcode: i64) -> Option<&'static str> {
    match status {
        "sent" => Some("sent"),
        "no_permit" => Some("no_permit"),
        "queued" => Some("queued"),
        "uncertain" => Some("uncertain"),
        "failed" if errcode != 0 && policy_for(errcode) == Policy::Refused => Some("refused"),
        "failed" => Some("failed"),
        _ => None,
    }
}

pub use crate::clock::{china_day, day_text};

/// The day number of `YYYY-MM-DD`; an impossible date is refused.
pub fn parse_day(field: &str, text: &str) -> Result<i64> {
    let bad = || {
        Error::invalid(format!(
            "{field} must be a date written YYYY-MM-DD (China time), got {text:?}"
        ))
    };
    let mut parts = text.splitn(3, '-');
    let mut num = |len: usize| -> Result<i64> {
        let p = parts
            .next()
            .filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()));
        p.and_then(|p| p.parse().ok()).ok_or_else(bad)
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let (yy, mm) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = era * 146_097 + doe - 719_468;
    // 2026-02-31 would land in March: refused rather than moved.
    if day_text(day) != text {
        return Err(bad());
    }
    Ok(day)
}

/// The report's counting and its window of kept days.
#[derive(Debug)]
pub struct Reach {
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    keep_days: AtomicU32,
    /// The China day of the last count, to notice a new day once.
    last_day: AtomicI64,
}

impl Reach {
    pub fn new(clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Reach {
            clock,
            metrics,
            keep_days: AtomicU32::new(Config::default().report_keep_days),
            last_day: AtomicI64::new(i64::MIN),
        }
    }

    /// Follows the `report_keep_days` setting (the store follows the figures').
    pub fn configure(&self, config: &Config) {
        self.keep_days
            .store(config.report_keep_days, Ordering::SeqCst);
    }

    pub fn keep_days(&self) -> i64 {
        i64::from(self.keep_days.load(Ordering::SeqCst).max(1))
    }

    /// Today, China time, by the notifier's clock.
    pub fn today(&self) -> i64 {
        china_day(self.clock.now_ms())
    }

    /// Counts one finished send (or, later, card update) of `event` as
    /// `outcome` (one of `OUTCOMES`): an atomic add, merged into the shared
    /// store with the other figures.
    pub fn record(&self, appid: &str, event: &str, outcome: &str, errcode: i64) {
        let errcode = if outcome == "sent" || outcome == "no_permit" {
            0
        } else {
            errcode
        };
        let today = self.today();
        if self.last_day.swap(today, Ordering::Relaxed) != today {
            self.metrics
                .new_reach_day(today, today - self.keep_days() + 1);
        }
        self.metrics
            .record_reach(appid, event, today, outcome, errcode);
    }

    /// The counts of `from..=to` (YYYY-MM-DD, China days), checked against the
    /// kept days: a range that is reversed, in the future or older than the
    /// kept days is refused with the reason. Days past the kept ones are
    /// forgotten here, on the report's read, never on a send.
    pub fn counts(&self, appid: &str, from: &str, to: &str) -> Result<(i64, i64, Vec<ReachCount>)> {
        let (from_day, to_day) = (parse_day("from", from)?, parse_day("to", to)?);
        let (today, keep) = (self.today(), self.keep_days());
        let oldest = today - keep + 1;
        if from_day > to_day {
            return Err(Error::invalid(format!("from {from} is after to {to}")));
        }
        if to_day > today {
            return Err(Error::invalid(format!(
                "to {to} is in the future: today is {} (China time)",
                day_text(today)
            )));
        }
        if from_day < oldest {
            return Err(Error::invalid(format!(
                "from {from} is older than the report keeps: the oldest day kept is {} (report_keep_days {keep})",
                day_text(oldest)
            )));
        }
        self.metrics.forget_reach_before(appid, oldest)?;
        let counts = self
            .metrics
            .reach_counts(appid)?
            .into_iter()
            .filter(|c| (from_day..=to_day).contains(&c.1))
            .map(|(event, day, outcome, errcode, count)| ReachCount {
                day,
                event,
                outcome,
                errcode,
                count,
            })
            .collect();
        Ok((from_day, to_day, counts))
    }
}

/// One event's counts of one day (or of the whole range).
fn tally(counts: &[&ReachCount]) -> Value {
    let mut out = Map::new();
    let mut failed = BTreeMap::<String, u64>::new();
    let mut refused = 0u64;
    for o in OUTCOMES {
        out.insert(o.to_string(), json!(0));
    }
    for c in counts {
        match c.outcome.as_str() {
            "failed" => *failed.entry(c.errcode.to_string()).or_default() += c.count,
            "refused" => refused += c.count,
            o => {
                let v = out.get(o).and_then(Value::as_u64).unwrap_or(0) + c.count;
                out.insert(o.to_string(), json!(v));
            }
        }
    }
    let failed_total: u64 = failed.values().sum();
    let sent = out["sent"].as_u64().unwrap_or(0);
    let not_reached = out["no_permit"].as_u64().unwrap_or(0)
        + refused
        + failed_total
        + out["uncertain"].as_u64().unwrap_or(0);
    out.insert("refused".into(), json!(refused));
    out.insert("failed".into(), json!(failed_total));
    out.insert("failed_by_errcode".into(), json!(failed));
    out.insert("not_reached".into(), json!(not_reached));
    // Queued sends are still on their way: their end is counted when the flush ends them.
    let rate = (sent + not_reached > 0).then(|| sent as f64 / (sent + not_reached) as f64);
    out.insert("reach_rate".into(), json!(rate));
    Value::Object(out)
}

/// The report document: per event, each day of the range and the totals;
/// the grant stock per template with the events using it.
pub fn report_json(
    appid: &str,
    range: (i64, i64),
    counts: &[ReachCount],
    stock: &[TemplateStock],
    template_events: &BTreeMap<String, Vec<String>>,
    extra: Value,
) -> Value {
    let mut events: BTreeMap<&str, Vec<&ReachCount>> = BTreeMap::new();
    for c in counts {
        events.entry(c.event.as_str()).or_default().push(c);
    }
    let mut by_event = Map::new();
    for (event, cs) in &events {
        let days: Vec<Value> = (range.0..=range.1)
            .map(|d| {
                let of_day: Vec<&ReachCount> = cs.iter().copied().filter(|c| c.day == d).collect();
                let mut t = tally(&of_day);
                t["day"] = json!(day_text(d));
                t
            })
            .collect();
        by_event.insert(event.to_string(), json!({"days": days, "total": tally(cs)}));
    }
    let grants: Vec<Value> = stock
        .iter()
        .map(|s| {
            json!({"template_id": s.template_id, "holders": s.holders, "uses": s.uses,
                   "lapsing_7d": s.lapsing, "events": template_events.get(&s.template_id).cloned().unwrap_or_default()})
        })
        .collect();
    let mut doc = json!({
        "appid": appid, "from": day_text(range.0), "to": day_text(range.1),
        "timezone": "China time (UTC+8)", "events": by_event, "grants": grants,
    });
    if let (Some(d), Value::Object(e)) = (doc.as_object_mut(), extra) {
        d.extend(e);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_china_days() {
        // 2026-12-06 15:59:59 UTC is 23:59:59 in China; a second later it is the 7th.
        let before = 1_796_572_799_000;
        assert_eq!(day_text(china_day(before)), "2026-12-06");
        assert_eq!(day_text(china_day(before + 1000)), "2026-12-07");
        assert_eq!(
            parse_day("from", "2026-12-07").unwrap(),
            china_day(before + 1000)
        );
        assert_eq!(day_text(0), "1970-01-01");
        assert_eq!(
            parse_day("from", "2024-02-29").map(day_text).unwrap(),
            "2024-02-29"
        );
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "20261201",
            "",
            "2026-12-01x",
            "२०२६-12-01",
        ] {
            let e = parse_day("from", bad).unwrap_err().to_string();
            assert!(e.contains("YYYY-MM-DD"), "{bad}: {e}");
        }
    }

    #[test]
    fn outcomes_follow_the_errcode_table() {
        assert_eq!(outcome_of("failed", 43101), Some("refused"));
        assert_eq!(outcome_of("failed", 40003), Some("failed"));
        assert_eq!(outcome_of("failed", 0), Some("failed"));
        assert_eq!(outcome_of("duplicate", 0), None);
        assert_eq!(outcome_of("in_progress", 0), None);
        assert_eq!(outcome_of("queued", -1), Some("queued"));
    }
}
