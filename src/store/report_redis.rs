//! The report's counts on the Redis store: one hash per app and China day that
//! every worker process, on any host, adds to (HINCRBY), with an expiry at the
//! end of the kept days so Redis forgets old days by itself. Its connections
//! come from a `RedisStore` of its own (the store backend's pool and error
//! rules; this file only names keys and commands).

use std::collections::HashMap;

use super::redis::{RedisStore, Rerun};
use super::report::{ReachCount, ReachStore};
use crate::error::Result;

const FIELD_SEPARATOR: char = '\u{1f}';
const DAY_SECS: i64 = 86_400;

#[derive(Debug)]
pub struct RedisReach {
    store: RedisStore,
}

impl RedisReach {
    pub fn open(url: &str) -> Result<RedisReach> {
        Ok(RedisReach {
            store: RedisStore::open(url)?,
        })
    }

    fn day_key(&self, appid: &str, day: i64) -> String {
        format!(
            "{}reach:{}:{day}",
            self.store.prefix(),
            self.store.slot(appid)
        )
    }
}

fn field(c: &ReachCount) -> String {
    format!(
        "{}{FIELD_SEPARATOR}{}{FIELD_SEPARATOR}{}",
        c.event, c.outcome, c.errcode
    )
}

fn parse_field(day: i64, f: &str, n: i64) -> Option<ReachCount> {
    let mut parts = f.split(FIELD_SEPARATOR);
    let (event, outcome, errcode) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    Some(ReachCount {
        day,
        event: event.to_string(),
        outcome: outcome.to_string(),
        errcode,
        count: n.max(0) as u64,
    })
}

impl ReachStore for RedisReach {
    fn add(&self, appid: &str, c: &ReachCount, keep_from_day: i64) -> Result<()> {
        let key = self.day_key(appid, c.day);
        // The day is forgotten when it falls out of the kept days (a day more
        // for a clock or host that is a little behind).
        let ttl = ((c.day - keep_from_day + 2).max(1)) * DAY_SECS;
        let f = field(c);
        self.store.run(|conn| {
            redis::pipe()
                .atomic()
                .cmd("HINCRBY")
                .arg(&key)
                .arg(&f)
                .arg(c.count)
                .ignore()
                .cmd("EXPIRE")
                .arg(&key)
                .arg(ttl)
                .ignore()
                .query::<()>(conn)
        })
    }

    fn range(&self, appid: &str, from_day: i64, to_day: i64) -> Result<Vec<ReachCount>> {
        let days: Vec<i64> = (from_day..=to_day).collect();
        let hashes: Vec<HashMap<String, i64>> = self.store.run_as(Rerun::Safe, |conn| {
            // Each day's hash may live on another node of a cluster: one command each.
            days.iter()
                .map(|d| {
                    redis::cmd("HGETALL")
                        .arg(self.day_key(appid, *d))
                        .query(conn)
                })
                .collect()
        })?;
        Ok(days
            .iter()
            .zip(&hashes)
            .flat_map(|(day, h)| h.iter().filter_map(|(f, n)| parse_field(*day, f, *n)))
            .collect())
    }
}
