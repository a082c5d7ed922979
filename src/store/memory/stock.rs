//! The grant stock per subscribe template (the owner's report), from the maps.

use std::collections::BTreeMap;

use super::{Kind, MemoryStore};
use crate::error::Result;
use crate::store::TemplateStock;

impl MemoryStore {
    pub(super) fn stock_of(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<TemplateStock>> {
        let book = self.book()?;
        let mut out: BTreeMap<&str, TemplateStock> = BTreeMap::new();
        for user in book.apps.get(appid).into_iter().flat_map(|u| u.values()) {
            for e in user
                .iter()
                .filter(|e| e.kind == Kind::Subscribe && e.uses > 0)
            {
                if !e.live(now_ms) {
                    continue;
                }
                let s = out.entry(e.value()).or_default();
                s.holders += 1;
                s.uses += u64::from(e.uses);
                if accepted_before.is_some_and(|t| i64::from(e.created_at) < t) {
                    s.lapsing += u64::from(e.uses);
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(t, s)| TemplateStock {
                template_id: t.to_string(),
                ..s
            })
            .collect())
    }
}
