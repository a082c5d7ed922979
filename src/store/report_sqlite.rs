//! The report's counts in the SQLite store file: one `reach` table that every
//! worker process upserts into, through the connection this process keeps for
//! the file (shared with the ledger, the outbox and the figures: `crate::sqlite_conn`
//! says why).

use rusqlite::params;

use super::report::{ReachCount, ReachStore};
use crate::error::{Error, Result};
use crate::sqlite_conn::{Schema, StoreFile};

/// Each entry brings the table from the version before it to its own number.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS reach (
         appid   TEXT NOT NULL,
         day     INTEGER NOT NULL,
         event   TEXT NOT NULL,
         outcome TEXT NOT NULL,
         errcode INTEGER NOT NULL,
         n       INTEGER NOT NULL,
         PRIMARY KEY (appid, day, event, outcome, errcode)
     ) WITHOUT ROWID;"];

static SCHEMA: Schema = Schema {
    name: "reach report schema",
    version_table: "reach_schema_version",
    migrations: MIGRATIONS,
};

#[derive(Debug)]
pub struct SqliteReach {
    path: String,
    file: StoreFile,
}

fn store_error(path: &str, e: rusqlite::Error) -> Error {
    Error::store(format!("sqlite store {path} (reach report): {e}"))
}

impl SqliteReach {
    pub fn open(path: &str) -> Result<SqliteReach> {
        Ok(SqliteReach {
            path: path.to_string(),
            file: StoreFile::open(path, &SCHEMA)?,
        })
    }
}

impl ReachStore for SqliteReach {
    fn add(&self, appid: &str, c: &ReachCount, keep_from_day: i64) -> Result<()> {
        self.file
            .write_raw(None, |tx| {
                tx.prepare_cached(
                    "INSERT INTO reach (appid, day, event, outcome, errcode, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (appid, day, event, outcome, errcode) DO UPDATE SET n = n + excluded.n",
                )?
                .execute(params![appid, c.day, c.event, c.outcome, c.errcode, c.count as i64])?;
                // Uses the primary key's order: nothing to scan when no old day is left.
                tx.prepare_cached("DELETE FROM reach WHERE appid = ?1 AND day < ?2")?
                    .execute(params![appid, keep_from_day])?;
                Ok(())
            })
            .map_err(|e| store_error(&self.path, e))
    }

    fn range(&self, appid: &str, from_day: i64, to_day: i64) -> Result<Vec<ReachCount>> {
        self.file
            .read_raw(|conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT day, event, outcome, errcode, n FROM reach
                     WHERE appid = ?1 AND day BETWEEN ?2 AND ?3",
                )?;
                let rows = stmt.query_map(params![appid, from_day, to_day], |r| {
                    Ok(ReachCount {
                        day: r.get(0)?,
                        event: r.get(1)?,
                        outcome: r.get(2)?,
                        errcode: r.get(3)?,
                        count: r.get::<_, i64>(4)?.max(0) as u64,
                    })
                })?;
                rows.collect()
            })
            .map_err(|e| store_error(&self.path, e))
    }
}
