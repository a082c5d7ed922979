//! Card records in the SQLite file the ledger uses (one host, many worker
//! processes): one row per card, each change one immediate transaction.

use std::fmt;

use rusqlite::{params, OptionalExtension, Transaction};

use super::cards::{
    claim_rule, queue_rule, settle_rule, statuses_of, statuses_text, CardClaim, CardRecord,
    CardStore,
};
use crate::error::Result;
use crate::sqlite_conn::{Schema, StoreFile};

const MIGRATIONS: &[&str] = &["
    CREATE TABLE cards (
        appid TEXT NOT NULL,
        code TEXT NOT NULL,
        notify_type INTEGER NOT NULL,
        -- The applied statuses, oldest first: `1,4`.
        statuses TEXT NOT NULL DEFAULT '',
        pending INTEGER,
        pending_until INTEGER NOT NULL DEFAULT 0,
        stopped INTEGER NOT NULL DEFAULT 0,
        -- Statuses waiting in the outbox, in the order they came.
        queued TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (appid, code)
    );"];

static SCHEMA: Schema = Schema {
    name: "card schema",
    version_table: "cards_schema_version",
    migrations: MIGRATIONS,
};

pub struct SqliteCards {
    file: StoreFile,
}

impl fmt::Debug for SqliteCards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteCards")
            .field("path", &self.file.path())
            .finish()
    }
}

impl SqliteCards {
    pub fn open(path: &str) -> Result<SqliteCards> {
        Ok(SqliteCards {
            file: StoreFile::open(path, &SCHEMA)?,
        })
    }
}

/// The record and its lease's end.
fn read(
    tx: &rusqlite::Connection,
    appid: &str,
    code: &str,
) -> rusqlite::Result<Option<(CardRecord, i64)>> {
    tx.query_row(
        "SELECT notify_type, statuses, pending, pending_until, stopped, queued FROM cards WHERE appid = ?1 AND code = ?2",
        params![appid, code],
        |r| {
            let rec = CardRecord {
                notify_type: r.get(0)?,
                statuses: statuses_of(&r.get::<_, String>(1)?),
                pending: r.get(2)?,
                stopped: r.get::<_, i64>(4)? != 0,
                queued: statuses_of(&r.get::<_, String>(5)?),
            };
            Ok((rec, r.get(3)?))
        },
    )
    .optional()
}

fn write(
    tx: &Transaction<'_>,
    appid: &str,
    code: &str,
    rec: &CardRecord,
    until: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO cards (appid, code, notify_type, statuses, pending, pending_until, stopped, queued)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (appid, code) DO UPDATE SET notify_type = ?3, statuses = ?4, pending = ?5,
             pending_until = ?6, stopped = ?7, queued = ?8",
        params![
            appid,
            code,
            rec.notify_type,
            statuses_text(&rec.statuses),
            rec.pending,
            until,
            rec.stopped as i64,
            statuses_text(&rec.queued)
        ],
    )?;
    Ok(())
}

impl CardStore for SqliteCards {
    fn card_claim(
        &self,
        appid: &str,
        code: &str,
        notify_type: u32,
        status: u32,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<CardClaim> {
        self.file.write(|tx| {
            let (mut rec, until) = read(tx, appid, code)?.unwrap_or_default();
            rec.notify_type = notify_type;
            let claim = claim_rule(&rec, until, status, now_ms);
            match claim {
                CardClaim::Fresh { .. } => {
                    rec.pending = Some(status);
                    write(tx, appid, code, &rec, now_ms + lease_ms)?;
                }
                CardClaim::Done if rec.queued.contains(&status) => {
                    queue_rule(&mut rec, status, false);
                    write(tx, appid, code, &rec, until)?;
                }
                _ => {}
            }
            Ok(claim)
        })
    }

    fn card_settle(&self, appid: &str, code: &str, status: u32, applied: bool) -> Result<()> {
        self.file.write(|tx| {
            let Some((mut rec, until)) = read(tx, appid, code)? else {
                return Ok(());
            };
            settle_rule(&mut rec, status, applied);
            write(tx, appid, code, &rec, until)
        })
    }

    fn card_queue(&self, appid: &str, code: &str, status: u32, add: bool) -> Result<()> {
        self.file.write(|tx| {
            let (mut rec, until) = read(tx, appid, code)?.unwrap_or_default();
            queue_rule(&mut rec, status, add);
            write(tx, appid, code, &rec, until)
        })
    }

    fn card_stop(&self, appid: &str, code: &str) -> Result<()> {
        self.file.write(|tx| {
            let (mut rec, _) = read(tx, appid, code)?.unwrap_or_default();
            rec.stopped = true;
            rec.pending = None;
            write(tx, appid, code, &rec, 0)
        })
    }

    fn card_get(&self, appid: &str, code: &str, now_ms: i64) -> Result<Option<CardRecord>> {
        let found = self.file.read_raw(|c| read(c, appid, code)).map_err(|e| {
            crate::error::Error::store(format!("sqlite store {}: {e}", self.file.path().display()))
        })?;
        Ok(found.map(|(mut rec, until)| {
            if until <= now_ms {
                rec.pending = None;
            }
            rec
        }))
    }
}
