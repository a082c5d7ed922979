//! The grant stock per subscribe template (the owner's report): one grouped read.

use rusqlite::params;

use super::SqliteStore;
use crate::error::Result;
use crate::store::TemplateStock;

impl SqliteStore {
    pub(super) fn stock_of(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<TemplateStock>> {
        self.write(|tx| {
            let mut q = tx.prepare_cached(
                "SELECT value, COUNT(DISTINCT openid), SUM(uses),
                        SUM(CASE WHEN ?3 IS NOT NULL AND created_at < ?3 THEN uses ELSE 0 END)
                 FROM permits WHERE appid = ?1 AND kind = 0 AND uses > 0
                   AND (expires_at IS NULL OR expires_at > ?2)
                 GROUP BY value ORDER BY value",
            )?;
            let rows = q.query_map(
                params![appid, now_ms.div_euclid(1000), accepted_before],
                |r| {
                    Ok(TemplateStock {
                        template_id: r.get(0)?,
                        holders: r.get::<_, i64>(1)?.max(0) as u64,
                        uses: r.get::<_, i64>(2)?.max(0) as u64,
                        lapsing: r.get::<_, i64>(3)?.max(0) as u64,
                    })
                },
            )?;
            rows.collect()
        })
    }
}
