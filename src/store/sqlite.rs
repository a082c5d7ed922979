//! The SQLite store, for the worker processes of one host: every operation is
//! one `BEGIN IMMEDIATE` transaction, so processes sharing the file queue on
//! SQLite's write lock (WAL, busy timeout) instead of ever taking the same use.
//! A connection belongs to the process that opened it and is opened on first
//! use (`crate::sqlite_conn` says why, and how a forked child gets its own).

mod stock;

use std::fmt;

use rusqlite::{params, OptionalExtension, Transaction};

use super::{
    consume_and_complete_in_steps, new_lease_id, Added, ClaimedTake, KeyClaim, Kind, Lease,
    NewPermit, PermitRequest, PermitStats, Remaining, SharedToken, SpentAndRecorded, Store,
    TokenStore, TokenTurn, IDEMPOTENCY_KEEP_MS, RETURNED_KEEP_MS,
};
use crate::error::Result;
use crate::secret::Secret;
use crate::sqlite_conn::{Schema, StoreFile};

/// Each entry brings the schema from the version before it to its own number.
const MIGRATIONS: &[&str] = &[
    // 1: permits, their leases, send's idempotency records.
    "CREATE TABLE permits (
        id INTEGER PRIMARY KEY,
        appid TEXT NOT NULL,
        openid TEXT NOT NULL,
        kind INTEGER NOT NULL,
        value TEXT NOT NULL,
        order_sn TEXT,
        paid INTEGER NOT NULL,
        uses INTEGER NOT NULL,
        leased INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        UNIQUE (appid, openid, kind, value)
    );
    -- Picks look at one user's permits of one kind, soonest expiry first;
    -- purges at one app's expired permits.
    CREATE INDEX permits_by_user ON permits (appid, openid, kind, expires_at);
    CREATE INDEX permits_by_expiry ON permits (appid, expires_at);
    -- AUTOINCREMENT: a lease id is never reused, so a late settlement of an
    -- old lease can never hit a newer one.
    CREATE TABLE leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        permit_id INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL
    );
    CREATE INDEX leases_by_expiry ON leases (expires_ms);
    CREATE INDEX leases_by_permit ON leases (permit_id);
    CREATE TABLE idempotency (
        key TEXT PRIMARY KEY,
        done INTEGER NOT NULL,
        outcome TEXT,
        until_ms INTEGER NOT NULL
    );",
    // 2: a lease that ran out stays a while, marked returned, so that a late
    // consume spends its use exactly once.
    "ALTER TABLE leases ADD COLUMN returned INTEGER NOT NULL DEFAULT 0;",
    // 3: one access token per app and token mode for all worker processes,
    // and the lease of the one process fetching it.
    "CREATE TABLE tokens (
        appid TEXT NOT NULL,
        mode TEXT NOT NULL,
        token TEXT,
        expires_at_ms INTEGER,
        refresh_at_ms INTEGER,
        holder TEXT,
        lease_until_ms INTEGER,
        PRIMARY KEY (appid, mode)
    );",
    // 4: fewer pages written per send. Idempotency records live in their key's
    // b-tree (WITHOUT ROWID: one page per write, not the table's and its
    // key index's). Leases lose their indexes: the table holds only the uses
    // in flight (and, for a day, those returned after a crash), so a scan
    // reads a page or two, while every take and consume wrote each index.
    // Their ids come from the store (random, never reused in practice)
    // instead of AUTOINCREMENT, which wrote sqlite_sequence on every take.
    "CREATE TABLE idempotency_v4 (
        key TEXT PRIMARY KEY,
        done INTEGER NOT NULL,
        outcome TEXT,
        until_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO idempotency_v4 (key, done, outcome, until_ms)
        SELECT key, done, outcome, until_ms FROM idempotency;
    DROP TABLE idempotency;
    ALTER TABLE idempotency_v4 RENAME TO idempotency;
    CREATE TABLE leases_v4 (
        id INTEGER PRIMARY KEY,
        permit_id INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        returned INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO leases_v4 (id, permit_id, expires_ms, returned)
        SELECT id, permit_id, expires_ms, returned FROM leases;
    DROP TABLE leases;
    ALTER TABLE leases_v4 RENAME TO leases;",
    // 5: fewer pages written per send. A permit's uses in flight are its
    // leases not returned, counted where needed (stats, purges, the delete
    // of a used-up permit) instead of kept in a `leased` column that every
    // consume wrote: a consume now writes the lease's page and the key's,
    // not the permit's. permits_by_user served the picks, which name the
    // user and the kind as the unique key's index starts with (it then sorts
    // that user's few permits of the kind, at most the cap per openid); it
    // was written with every permit added or used up.
    "DROP INDEX permits_by_user;
    ALTER TABLE permits DROP COLUMN leased;",
];

/// No use of `permits.id` in flight: no lease of it that was not returned
/// (leases is small: the uses in flight and, for a day, those returned
/// after a crash). A macro, for `concat!` into the statements' text.
macro_rules! not_leased {
    () => {
        "NOT EXISTS (SELECT 1 FROM leases WHERE permit_id = permits.id AND returned = 0)"
    };
}

static SCHEMA: Schema = Schema {
    name: "schema",
    version_table: "schema_version",
    migrations: MIGRATIONS,
};

pub struct SqliteStore {
    file: StoreFile,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.file.path())
            .finish()
    }
}

impl SqliteStore {
    /// Checks the file (creating it with mode 0600 when missing) and brings
    /// its tables up to date; the connection the operations use is opened on
    /// first use.
    pub fn open(path: &str) -> Result<SqliteStore> {
        Ok(SqliteStore {
            file: StoreFile::open(path, &SCHEMA)?,
        })
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.file.write(f)
    }
}

fn now_secs(now_ms: i64) -> i64 {
    now_ms.div_euclid(1000)
}

/// Returns the uses of leases that ran out to their permits, and forgets
/// returned leases after a day (their `expires_ms` then says when).
fn reclaim(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
    let due: Vec<(i64, i64, bool)> = tx
        .prepare_cached("SELECT id, permit_id, returned FROM leases WHERE expires_ms <= ?1")?
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (lease, permit, returned) in due {
        if returned {
            tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
                .execute([lease])?;
        } else {
            tx.prepare_cached("UPDATE permits SET uses = uses + 1 WHERE id = ?1")?
                .execute([permit])?;
            tx.prepare_cached("UPDATE leases SET returned = 1, expires_ms = ?2 WHERE id = ?1")?
                .execute([lease, now_ms.saturating_add(RETURNED_KEEP_MS)])?;
        }
    }
    Ok(())
}

/// The lease's permit and whether its use already went back.
fn lease_row(tx: &Transaction<'_>, lease: &Lease) -> rusqlite::Result<Option<(i64, bool)>> {
    tx.prepare_cached("SELECT permit_id, returned FROM leases WHERE id = ?1")?
        .query_row([lease.id as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

fn permit_id(tx: &Transaction<'_>, lease: &Lease) -> rusqlite::Result<Option<i64>> {
    tx.prepare_cached(
        "SELECT id FROM permits WHERE appid = ?1 AND openid = ?2 AND kind = ?3 AND value = ?4",
    )?
    .query_row(
        params![lease.appid, lease.openid, lease.kind.code(), lease.value],
        |r| r.get(0),
    )
    .optional()
}

fn remaining(tx: &Transaction<'_>, lease: &Lease, now_ms: i64) -> rusqlite::Result<Remaining> {
    let uses: i64 = match lease.kind {
        Kind::Subscribe => tx
            .prepare_cached(
                "SELECT COALESCE(SUM(uses), 0) FROM permits
                 WHERE appid = ?1 AND openid = ?2 AND kind = 0 AND value = ?3",
            )?
            .query_row(params![lease.appid, lease.openid, lease.value], |r| {
                r.get(0)
            })?,
        kind => tx
            .prepare_cached(
                "SELECT COALESCE(SUM(uses), 0) FROM permits
                 WHERE appid = ?1 AND openid = ?2 AND kind = ?3 AND expires_at > ?4
                   AND (kind = 1 OR paid = 1)",
            )?
            .query_row(
                params![lease.appid, lease.openid, kind.code(), now_secs(now_ms)],
                |r| r.get(0),
            )?,
    };
    Ok(Remaining {
        kind: lease.kind,
        uses: uses.max(0) as u64,
    })
}

/// Takes one use of the best permit for the request (see `Store::take`).
fn take_in(
    tx: &Transaction<'_>,
    appid: &str,
    openid: &str,
    request: &PermitRequest,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<Option<Lease>> {
    reclaim(tx, now_ms)?;
    let now_s = now_secs(now_ms);
    type Row = (i64, i64, String, Option<String>);
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    };
    let pick: Option<Row> = match request {
        PermitRequest::Subscribe { template_id } => tx
            .prepare_cached(
                "SELECT id, kind, value, order_sn FROM permits
                 WHERE appid = ?1 AND openid = ?2 AND kind = 0 AND value = ?3 AND uses > 0",
            )?
            .query_row(params![appid, openid, template_id], row)
            .optional()?,
        PermitRequest::Legacy { order_sn } => {
            let prepay = match order_sn {
                Some(sn) => tx
                    .prepare_cached(
                        "SELECT id, kind, value, order_sn FROM permits
                         WHERE appid = ?1 AND openid = ?2 AND kind = 2 AND order_sn = ?3
                           AND paid = 1 AND uses > 0 AND expires_at > ?4
                         ORDER BY expires_at, created_at, id LIMIT 1",
                    )?
                    .query_row(params![appid, openid, sn, now_s], row)
                    .optional()?,
                None => None,
            };
            match prepay {
                Some(p) => Some(p),
                None => tx
                    .prepare_cached(
                        "SELECT id, kind, value, order_sn FROM permits
                         WHERE appid = ?1 AND openid = ?2 AND kind = 1
                           AND uses > 0 AND expires_at > ?3
                         ORDER BY expires_at, created_at, id LIMIT 1",
                    )?
                    .query_row(params![appid, openid, now_s], row)
                    .optional()?,
            }
        }
    };
    let Some((id, kind, value, order_sn)) = pick else {
        return Ok(None);
    };
    tx.prepare_cached("UPDATE permits SET uses = uses - 1 WHERE id = ?1")?
        .execute([id])?;
    let expires_at_ms = now_ms.saturating_add(lease_ms);
    let mut insert = tx.prepare_cached(
        "INSERT INTO leases (id, permit_id, expires_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO NOTHING",
    )?;
    // A taken id (once in 2^63) is skipped, never overwritten.
    while insert.execute([new_lease_id(now_ms), id, expires_at_ms])? == 0 {}
    drop(insert);
    let kind = Kind::from_code(kind).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Integer,
            e.to_string().into(),
        )
    })?;
    Ok(Some(Lease {
        id: tx.last_insert_rowid() as u64,
        appid: appid.to_string(),
        openid: openid.to_string(),
        kind,
        value,
        order_sn,
        expires_at_ms,
    }))
}

/// Spends the leased use (see `Store::consume`).
fn consume_in(tx: &Transaction<'_>, lease: &Lease, now_ms: i64) -> rusqlite::Result<Remaining> {
    reclaim(tx, now_ms)?;
    // A lease settled before (or never known) changes nothing.
    if let Some((id, returned)) = lease_row(tx, lease)? {
        tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
            .execute([lease.id as i64])?;
        if returned {
            // The lease ran out and its use went back, yet it was spent.
            tx.prepare_cached("UPDATE permits SET uses = MAX(uses - 1, 0) WHERE id = ?1")?
                .execute([id])?;
        }
        // Otherwise the use left the permit when it was taken: with the
        // lease gone it is spent, and the permit's row is not written.
        tx.prepare_cached(concat!(
            "DELETE FROM permits WHERE id = ?1 AND uses = 0 AND ",
            not_leased!()
        ))?
        .execute([id])?;
    }
    remaining(tx, lease, now_ms)
}

fn claim_in(
    tx: &Transaction<'_>,
    key: &str,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<KeyClaim> {
    let claim = claim_state_in(tx, key, now_ms)?;
    if let KeyClaim::Fresh = claim {
        insert_claim_in(tx, key, now_ms, lease_ms)?;
    }
    Ok(claim)
}

/// Whether `key` is done, in flight, or free, without claiming it.
fn claim_state_in(tx: &Transaction<'_>, key: &str, now_ms: i64) -> rusqlite::Result<KeyClaim> {
    let known: Option<(bool, Option<String>, i64)> = tx
        .prepare_cached("SELECT done, outcome, until_ms FROM idempotency WHERE key = ?1")?
        .query_row([key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(match known {
        Some((true, outcome, until)) if until > now_ms => {
            KeyClaim::Done(outcome.unwrap_or_default())
        }
        Some((false, _, until)) if until > now_ms => KeyClaim::InFlight,
        _ => KeyClaim::Fresh,
    })
}

fn insert_claim_in(
    tx: &Transaction<'_>,
    key: &str,
    now_ms: i64,
    lease_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (key, done, outcome, until_ms) VALUES (?1, 0, NULL, ?2)",
    )?
    .execute(params![key, now_ms.saturating_add(lease_ms)])?;
    Ok(())
}

fn complete_in(
    tx: &Transaction<'_>,
    key: &str,
    outcome: &str,
    now_ms: i64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO idempotency (key, done, outcome, until_ms) VALUES (?1, 1, ?2, ?3)",
    )?
    .execute(params![
        key,
        outcome,
        now_ms.saturating_add(IDEMPOTENCY_KEEP_MS)
    ])?;
    Ok(())
}

fn release_in(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM idempotency WHERE key = ?1 AND done = 0")?
        .execute([key])?;
    Ok(())
}

impl Store for SqliteStore {
    fn template_stock(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<super::TemplateStock>> {
        self.stock_of(appid, now_ms, accepted_before)
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.file.path().display())
    }

    fn add(&self, appid: &str, p: &NewPermit, now_ms: i64, cap: usize) -> Result<Added> {
        self.write(|tx| {
            let known: Option<(i64, bool)> = tx
                .prepare_cached(
                    "SELECT id, paid FROM permits
                     WHERE appid = ?1 AND openid = ?2 AND kind = ?3 AND value = ?4",
                )?
                .query_row(params![appid, p.openid, p.kind.code(), p.value], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            if let Some((id, paid)) = known {
                return Ok(match p.kind {
                    Kind::Subscribe => {
                        tx.prepare_cached("UPDATE permits SET uses = MAX(uses, MIN(uses + ?2, ?3)), created_at = MAX(created_at, ?4) WHERE id = ?1")?
                            .execute(params![id, p.uses, p.max_uses, p.created_at])?;
                        Added::Counted
                    }
                    Kind::PrepayId if p.paid && !paid => {
                        tx.prepare_cached("UPDATE permits SET paid = 1 WHERE id = ?1")?
                            .execute([id])?;
                        Added::MarkedPaid
                    }
                    _ => Added::Duplicate,
                });
            }
            tx.prepare_cached(
                "INSERT INTO permits (appid, openid, kind, value, order_sn, paid, uses, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                appid,
                p.openid,
                p.kind.code(),
                p.value,
                p.order_sn,
                p.paid,
                p.uses,
                p.created_at,
                p.expires_at
            ])?;
            if p.kind != Kind::Subscribe {
                tx.prepare_cached(concat!(
                    "DELETE FROM permits WHERE appid = ?1 AND openid = ?2 AND kind = ?3
                       AND expires_at <= ?4 AND ",
                    not_leased!()
                ))?
                .execute(params![appid, p.openid, p.kind.code(), now_secs(now_ms)])?;
                let oldest: Vec<i64> = tx
                    .prepare_cached(
                        "SELECT id FROM permits WHERE appid = ?1 AND openid = ?2 AND kind = ?3
                         ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?4",
                    )?
                    .query_map(params![appid, p.openid, p.kind.code(), cap as i64], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for id in oldest {
                    tx.prepare_cached("DELETE FROM leases WHERE permit_id = ?1")?
                        .execute([id])?;
                    tx.prepare_cached("DELETE FROM permits WHERE id = ?1")?
                        .execute([id])?;
                }
            }
            Ok(Added::Stored)
        })
    }

    fn take(
        &self,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Lease>> {
        self.write(|tx| take_in(tx, appid, openid, request, now_ms, lease_ms))
    }

    fn consume(&self, lease: &Lease, now_ms: i64) -> Result<Remaining> {
        self.write(|tx| consume_in(tx, lease, now_ms))
    }

    fn give_back(&self, lease: &Lease) -> Result<()> {
        self.write(|tx| {
            if let Some((permit, returned)) = lease_row(tx, lease)? {
                tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
                    .execute([lease.id as i64])?;
                if !returned {
                    tx.prepare_cached("UPDATE permits SET uses = uses + 1 WHERE id = ?1")?
                        .execute([permit])?;
                }
            }
            Ok(())
        })
    }

    fn discard(&self, lease: &Lease) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("DELETE FROM leases WHERE id = ?1")?
                .execute([lease.id as i64])?;
            if let Some(id) = permit_id(tx, lease)? {
                tx.prepare_cached("DELETE FROM leases WHERE permit_id = ?1")?
                    .execute([id])?;
                tx.prepare_cached("DELETE FROM permits WHERE id = ?1")?
                    .execute([id])?;
            }
            Ok(())
        })
    }

    fn drop_grants(&self, appid: &str, openid: &str, template_id: &str) -> Result<u64> {
        self.write(|tx| {
            let found: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT id, uses FROM permits
                     WHERE appid = ?1 AND openid = ?2 AND kind = 0 AND value = ?3",
                )?
                .query_row(params![appid, openid, template_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((id, uses)) = found else {
                return Ok(0);
            };
            tx.prepare_cached("DELETE FROM leases WHERE permit_id = ?1")?
                .execute([id])?;
            tx.prepare_cached("DELETE FROM permits WHERE id = ?1")?
                .execute([id])?;
            Ok(uses.max(0) as u64)
        })
    }

    fn stats(&self, appid: &str, openid: Option<&str>, now_ms: i64) -> Result<PermitStats> {
        self.write(|tx| {
            reclaim(tx, now_ms)?;
            let now_s = now_secs(now_ms);
            let user = if openid.is_some() { "AND openid = ?3" } else { "AND ?3 IS NULL" };
            let mut stats = PermitStats::default();
            let live = format!(
                "SELECT kind, paid, CASE WHEN kind = 0 THEN value END, COUNT(*), SUM(uses), MIN(expires_at)
                 FROM permits WHERE appid = ?1 {user} AND uses > 0
                   AND (expires_at IS NULL OR expires_at > ?2)
                 GROUP BY 1, 2, 3"
            );
            let mut q = tx.prepare_cached(&live)?;
            let mut rows = q.query(params![appid, now_s, openid])?;
            while let Some(r) = rows.next()? {
                let kind: i64 = r.get(0)?;
                let paid: bool = r.get(1)?;
                let template: Option<String> = r.get(2)?;
                let permits: i64 = r.get(3)?;
                let uses: i64 = r.get(4)?;
                let soonest: Option<i64> = r.get(5)?;
                let (permits, uses) = (permits as u64, uses as u64);
                match (kind, paid) {
                    (0, _) => {
                        *stats.subscribe.entry(template.unwrap_or_default()).or_default() += uses
                    }
                    (1, _) => stats.form_id_permits += permits,
                    (_, false) => stats.prepay_id_unpaid += permits,
                    (_, true) => {
                        stats.prepay_id_permits += permits;
                        stats.prepay_id_uses += uses;
                    }
                }
                if let Some(s) = soonest {
                    stats.soonest_expiry = Some(stats.soonest_expiry.map_or(s, |m| m.min(s)));
                }
            }
            let totals = format!(
                "SELECT (SELECT COUNT(*) FROM leases JOIN permits ON permits.id = leases.permit_id
                         WHERE leases.returned = 0 AND appid = ?1 {user}),
                   COALESCE(SUM(expires_at <= ?2), 0)
                 FROM permits WHERE appid = ?1 {user}"
            );
            let (leased, expired): (i64, i64) = tx
                .prepare_cached(&totals)?
                .query_row(params![appid, now_s, openid], |r| Ok((r.get(0)?, r.get(1)?)))?;
            stats.leased = leased as u64;
            stats.expired = expired as u64;
            Ok(stats)
        })
    }

    fn purge(&self, appid: &str, now_ms: i64, grants_before: Option<i64>) -> Result<u64> {
        self.write(|tx| {
            reclaim(tx, now_ms)?;
            tx.prepare_cached("DELETE FROM idempotency WHERE until_ms <= ?1")?
                .execute([now_ms])?;
            let removed = tx
                .prepare_cached(concat!(
                    "DELETE FROM permits WHERE appid = ?1 AND expires_at <= ?2 AND ",
                    not_leased!()
                ))?
                .execute(params![appid, now_secs(now_ms)])?;
            let old = match grants_before {
                Some(before) => tx
                    .prepare_cached(concat!(
                        "DELETE FROM permits WHERE appid = ?1 AND kind = 0 AND created_at < ?2 AND ",
                        not_leased!()
                    ))?
                    .execute(params![appid, before])?,
                None => 0,
            };
            Ok((removed + old) as u64)
        })
    }

    fn idempotency_claim(&self, key: &str, now_ms: i64, lease_ms: i64) -> Result<KeyClaim> {
        self.write(|tx| claim_in(tx, key, now_ms, lease_ms))
    }

    fn idempotency_complete(&self, key: &str, outcome: &str, now_ms: i64) -> Result<()> {
        self.write(|tx| complete_in(tx, key, outcome, now_ms))
    }

    fn idempotency_release(&self, key: &str) -> Result<()> {
        self.write(|tx| release_in(tx, key))
    }

    fn claim_and_take(
        &self,
        key: &str,
        claim_ms: i64,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<ClaimedTake> {
        // A failed take leaves the key unclaimed (the claim is written after
        // it) and is reported as the take's failure (the send's outcome), as
        // two transactions would.
        let mut take_failed = false;
        let done = self.write(|tx| {
            Ok(match claim_state_in(tx, key, now_ms)? {
                KeyClaim::Done(outcome) => ClaimedTake::Done(outcome),
                KeyClaim::InFlight => ClaimedTake::InFlight,
                KeyClaim::Fresh => {
                    let taken = take_in(tx, appid, openid, request, now_ms, lease_ms)
                        .inspect_err(|_| take_failed = true)?;
                    // Without a permit nothing is sent: the key stays free.
                    if taken.is_some() {
                        insert_claim_in(tx, key, now_ms, claim_ms)?;
                    }
                    ClaimedTake::Fresh(Ok(taken))
                }
            })
        });
        match done {
            Err(e) if take_failed => Ok(ClaimedTake::Fresh(Err(e))),
            other => other,
        }
    }

    fn consume_and_complete(
        &self,
        lease: &Lease,
        key: &str,
        outcome: &mut dyn FnMut(Option<&Remaining>) -> String,
        now_ms: i64,
    ) -> SpentAndRecorded {
        let mut consumed = false;
        let done = self.write(|tx| {
            let left = consume_in(tx, lease, now_ms)?;
            consumed = true;
            let text = outcome(Some(&left));
            complete_in(tx, key, &text, now_ms)?;
            Ok((left, text))
        });
        match done {
            Ok((left, text)) => SpentAndRecorded {
                spent: Ok(left),
                recorded: Ok(()),
                outcome: text,
            },
            // The use was spent but recording the outcome failed, and the
            // transaction rolled both back: settle them step by step, so each
            // part reports its own result.
            Err(_) if consumed => consume_and_complete_in_steps(self, lease, key, outcome, now_ms),
            // The use could not be spent; the outcome is still recorded.
            Err(e) => {
                let text = outcome(None);
                let recorded = self.idempotency_complete(key, &text, now_ms);
                SpentAndRecorded {
                    spent: Err(e),
                    recorded,
                    outcome: text,
                }
            }
        }
    }

    fn tokens(&self) -> Option<&dyn TokenStore> {
        Some(self)
    }
}

/// A row of `tokens`: the shared token (if any), the fetch lease holder and its end.
struct TokenRow {
    current: Option<SharedToken>,
    holder: Option<String>,
    lease_until_ms: i64,
}

fn token_row(tx: &Transaction<'_>, appid: &str, mode: &str) -> rusqlite::Result<Option<TokenRow>> {
    tx.prepare_cached(
        "SELECT token, expires_at_ms, refresh_at_ms, holder, lease_until_ms
         FROM tokens WHERE appid = ?1 AND mode = ?2",
    )?
    .query_row(params![appid, mode], |r| {
        let token: Option<String> = r.get(0)?;
        let current = match token {
            Some(t) => Some(SharedToken {
                token: Secret::new(t),
                expires_at_ms: r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                refresh_at_ms: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            }),
            None => None,
        };
        Ok(TokenRow {
            current,
            holder: r.get(3)?,
            lease_until_ms: r.get::<_, Option<i64>>(4)?.unwrap_or(0),
        })
    })
    .optional()
}

impl TokenStore for SqliteStore {
    fn token_turn(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<TokenTurn> {
        self.write(|tx| {
            let row = token_row(tx, appid, mode)?;
            let (current, other) = match row {
                Some(row) => {
                    let other = row
                        .holder
                        .filter(|h| h != holder && row.lease_until_ms > now_ms)
                        .map(|_| row.lease_until_ms);
                    (row.current, other)
                }
                None => (None, None),
            };
            if let Some(t) = current.as_ref().filter(|t| now_ms < t.refresh_at_ms) {
                return Ok(TokenTurn::Fresh(t.clone()));
            }
            if let Some(until_ms) = other {
                return Ok(TokenTurn::Wait { until_ms, current });
            }
            tx.prepare_cached(
                "INSERT INTO tokens (appid, mode, holder, lease_until_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (appid, mode)
                 DO UPDATE SET holder = excluded.holder, lease_until_ms = excluded.lease_until_ms",
            )?
            .execute(params![
                appid,
                mode,
                holder,
                now_ms.saturating_add(lease_ms)
            ])?;
            Ok(TokenTurn::Fetch { current })
        })
    }

    fn token_publish(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        token: &SharedToken,
        _now_ms: i64,
    ) -> Result<()> {
        self.write(|tx| {
            let row = token_row(tx, appid, mode)?;
            // A fetch that started earlier than the stored token's (a lease
            // that ran out while its holder was slow) must not replace it.
            let newer = match row.as_ref().and_then(|r| r.current.as_ref()) {
                Some(t) => t.token == token.token || t.expires_at_ms <= token.expires_at_ms,
                None => true,
            };
            if newer {
                tx.prepare_cached(
                    "INSERT INTO tokens (appid, mode, token, expires_at_ms, refresh_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (appid, mode) DO UPDATE SET token = excluded.token,
                       expires_at_ms = excluded.expires_at_ms,
                       refresh_at_ms = excluded.refresh_at_ms",
                )?
                .execute(params![
                    appid,
                    mode,
                    token.token.expose(),
                    token.expires_at_ms,
                    token.refresh_at_ms
                ])?;
            }
            end_lease(tx, appid, mode, holder)
        })
    }

    fn token_release(&self, appid: &str, mode: &str, holder: &str) -> Result<()> {
        self.write(|tx| end_lease(tx, appid, mode, holder))
    }

    fn token_drop_if(&self, appid: &str, mode: &str, failed: &str) -> Result<bool> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(
                    "UPDATE tokens SET token = NULL, expires_at_ms = NULL, refresh_at_ms = NULL
                     WHERE appid = ?1 AND mode = ?2 AND token = ?3",
                )?
                .execute(params![appid, mode, failed])?;
            Ok(n > 0)
        })
    }
}

fn end_lease(tx: &Transaction<'_>, appid: &str, mode: &str, holder: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "UPDATE tokens SET holder = NULL, lease_until_ms = NULL
         WHERE appid = ?1 AND mode = ?2 AND holder = ?3",
    )?
    .execute(params![appid, mode, holder])?;
    Ok(())
}
