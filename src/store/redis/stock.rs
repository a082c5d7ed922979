//! The grant stock per subscribe template (the owner's report), read from every
//! buyer's hash of the app as `stats` reads them.

use std::collections::{BTreeMap, HashMap};

use super::{RedisStore, Rerun};
use crate::error::Result;
use crate::store::{usable, TemplateStock};

/// A subscribe permit's fields as stored: uses|leased|paid|created|expires.
fn uses_and_created(data: &str) -> Option<(i64, i64, i64)> {
    let mut parts = data.splitn(6, '|').map(|p| p.parse::<i64>().ok());
    let uses = parts.next()??;
    let (_leased, _paid) = (parts.next()??, parts.next()??);
    Some((uses, parts.next()??, parts.next()??))
}

impl RedisStore {
    pub(super) fn stock_of(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<TemplateStock>> {
        let users: Vec<String> = self.run_as(Rerun::Safe, |c| {
            redis::cmd("SMEMBERS").arg(self.users_key(appid)).query(c)
        })?;
        let mut out: BTreeMap<String, TemplateStock> = BTreeMap::new();
        for u in &users {
            let hash: HashMap<String, String> = self.run_as(Rerun::Safe, |c| {
                redis::cmd("HGETALL").arg(self.user_key(appid, u)).query(c)
            })?;
            for (f, d) in &hash {
                let (Some(template), Some((uses, created, expires))) =
                    (f.strip_prefix("0:"), uses_and_created(d))
                else {
                    continue;
                };
                if uses <= 0 || !usable((expires >= 0).then_some(expires), now_ms) {
                    continue;
                }
                let s = out.entry(template.to_string()).or_default();
                s.holders += 1;
                s.uses += uses as u64;
                if accepted_before.is_some_and(|t| created < t) {
                    s.lapsing += uses as u64;
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(t, s)| TemplateStock {
                template_id: t,
                ..s
            })
            .collect())
    }
}
