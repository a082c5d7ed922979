//! The outbox in the ledger's SQLite file, for the worker processes of one
//! host. Its tables carry their own schema version, so the outbox and the
//! ledger migrate independently. Every operation is one `BEGIN IMMEDIATE`
//! transaction on this process's own connection, opened on first use
//! (`crate::sqlite_conn` says why, and how a forked child gets its own).

use std::fmt;

use rusqlite::{params, params_from_iter, OptionalExtension, Transaction};

use super::store::{
    lost, not_found, Abandoned, Claim, Claimed, Claims, Counts, DeadLetter, Enqueued, NewMessage,
    OutboxStats, OutboxStore, Settlement, State, ABANDONED, ABANDONED_ERRCODE,
};
use crate::error::Result;
use crate::sqlite_conn::{Schema, StoreFile};

/// Each entry brings the outbox tables from the version before it to its own number.
const MIGRATIONS: &[&str] = &[
    // 1: the messages. A sent message keeps its row (without its body) for a
    // while, so that an enqueue repeated by the shop finds it.
    "CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        appid TEXT NOT NULL,
        event TEXT NOT NULL,
        touser TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        message TEXT NOT NULL,
        state INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        errcode INTEGER NOT NULL DEFAULT 0,
        errmsg TEXT NOT NULL DEFAULT '',
        claim INTEGER,
        lease_ms INTEGER,
        posting INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        finished_ms INTEGER NOT NULL DEFAULT 0
    );
    -- Flushes look for the longest-waiting due message; sent ones are
    -- forgotten by finish time, which their due_ms then holds.
    CREATE INDEX outbox_due ON outbox (state, due_ms);
    CREATE INDEX outbox_by_app ON outbox (appid, state);
    -- Messages whose request may be on its way: few, looked at on every claim.
    CREATE INDEX outbox_posting ON outbox (lease_ms) WHERE posting = 1;",
    // 2: fewer pages written per enqueue (3 instead of 5 in steady state).
    // AUTOINCREMENT wrote sqlite_sequence on every insert; ids are now the
    // highest id ever handed out plus one, that highest id kept in
    // outbox_id_floor when a delete takes away the row holding it (so an id
    // is still never reused: the shop may hold one for a removed message).
    // outbox_by_app served no query (the app filters go through outbox_due
    // or scan for the statistics) and was written on every enqueue and
    // settlement.
    "CREATE TABLE outbox_id_floor (id INTEGER NOT NULL);
    INSERT INTO outbox_id_floor (id)
        SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),
                   COALESCE((SELECT MAX(id) FROM outbox), 0));
    CREATE TABLE outbox_v2 (
        id INTEGER PRIMARY KEY,
        appid TEXT NOT NULL,
        event TEXT NOT NULL,
        touser TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        message TEXT NOT NULL,
        state INTEGER NOT NULL,
        due_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        errcode INTEGER NOT NULL DEFAULT 0,
        errmsg TEXT NOT NULL DEFAULT '',
        claim INTEGER,
        lease_ms INTEGER,
        posting INTEGER NOT NULL DEFAULT 0,
        created_ms INTEGER NOT NULL,
        finished_ms INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO outbox_v2 (id, appid, event, touser, idempotency_key, message, state, due_ms,
            attempts, errcode, errmsg, claim, lease_ms, posting, created_ms, finished_ms)
        SELECT id, appid, event, touser, idempotency_key, message, state, due_ms,
            attempts, errcode, errmsg, claim, lease_ms, posting, created_ms, finished_ms
        FROM outbox;
    DROP TABLE outbox;
    ALTER TABLE outbox_v2 RENAME TO outbox;
    CREATE INDEX outbox_due ON outbox (state, due_ms);
    CREATE INDEX outbox_posting ON outbox (lease_ms) WHERE posting = 1;",
];

static SCHEMA: Schema = Schema {
    name: "outbox schema",
    version_table: "outbox_schema_version",
    migrations: MIGRATIONS,
};

pub struct SqliteOutbox {
    file: StoreFile,
}

impl fmt::Debug for SqliteOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOutbox")
            .field("path", &self.file.path())
            .finish()
    }
}

impl SqliteOutbox {
    /// Checks the file (creating it with mode 0600 when missing) and brings
    /// its tables up to date; the connection the operations use is opened on
    /// first use.
    pub fn open(path: &str) -> Result<SqliteOutbox> {
        Ok(SqliteOutbox {
            file: StoreFile::open(path, &SCHEMA)?,
        })
    }

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>) -> Result<T> {
        self.file.write(f)
    }

    /// `write` for operations that may refuse: the refusal rolls back.
    fn write_checked<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<Result<T>>,
    ) -> Result<T> {
        self.write(|tx| match f(tx)? {
            Ok(v) => Ok(Ok(v)),
            // Dropping the transaction without commit would roll back too,
            // but `write` commits: nothing was changed on the refusal paths.
            Err(e) => Ok(Err(e)),
        })?
    }
}

fn state_of(code: i64) -> rusqlite::Result<State> {
    State::from_code(code).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Integer,
            e.to_string().into(),
        )
    })
}

/// `AND appid IN (?2, …)` for a list of apps (the query's ?1 is the time);
/// `None` when the list is empty and nothing can match.
fn app_filter(apps: Option<&[String]>) -> Option<String> {
    match apps {
        None => Some(String::new()),
        Some([]) => None,
        Some(list) => Some(format!(
            "AND appid IN ({})",
            (0..list.len())
                .map(|i| format!("?{}", i + 2))
                .collect::<Vec<_>>()
                .join(",")
        )),
    }
}

fn app_args(now_ms: i64, apps: Option<&[String]>) -> Vec<rusqlite::types::Value> {
    let mut args: Vec<rusqlite::types::Value> = vec![now_ms.into()];
    if let Some(list) = apps {
        args.extend(list.iter().map(|a| a.clone().into()));
    }
    args
}

/// Holds message `id` under claim `token` (and still pending)?
fn held(tx: &Transaction<'_>, id: u64, token: i64) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM outbox WHERE id = ?1 AND claim = ?2 AND state = 0")?
        .query_row(params![id as i64, token], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Runs a `DELETE` of messages (`sql`, with `arg` as ?1) so that the ids it
/// frees are never handed out again: when it takes away the row with the
/// highest id, that id goes into `outbox_id_floor`, above which `enqueue`
/// draws the next. Written only then, not on every enqueue (AUTOINCREMENT's
/// `sqlite_sequence` was).
fn delete_keeping_ids(tx: &Transaction<'_>, sql: &str, arg: i64) -> rusqlite::Result<usize> {
    let top = || -> rusqlite::Result<i64> {
        tx.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM outbox")?
            .query_row([], |r| r.get(0))
    };
    let before = top()?;
    let n = tx.prepare_cached(sql)?.execute([arg])?;
    if n > 0 && top()? < before {
        tx.prepare_cached("UPDATE outbox_id_floor SET id = ?1 WHERE id < ?1")?
            .execute([before])?;
    }
    Ok(n)
}

/// Looked at on every claim. Without `INDEXED BY` SQLite prefers
/// `outbox_due` for `state = 0` and reads every pending message (all of a
/// backlog, on every claim of its drain) instead of the few being posted.
const RAN_OUT_WHILE_POSTING: &str =
    "SELECT id, idempotency_key FROM outbox INDEXED BY outbox_posting
     WHERE posting = 1 AND lease_ms <= ?1 AND state = 0";

/// The due messages a claim picks, oldest first (`filter` from `app_filter`).
fn due_sql(filter: &str, apps: usize) -> String {
    format!(
        "SELECT id, appid, event, idempotency_key, message, attempts FROM outbox
         WHERE state = 0 AND due_ms <= ?1 AND (lease_ms IS NULL OR lease_ms <= ?1) {filter}
         ORDER BY due_ms, id LIMIT ?{}",
        2 + apps
    )
}

/// Messages whose claim ran out while their request may have been on its
/// way become UNCERTAIN (never handed out again); returned for their keys.
fn abandon_in(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<Vec<Abandoned>> {
    let abandoned: Vec<(i64, String)> = tx
        .prepare_cached(RAN_OUT_WHILE_POSTING)?
        .query_map([now_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut out = Vec::with_capacity(abandoned.len());
    for (id, key) in abandoned {
        tx.prepare_cached(
            "UPDATE outbox SET state = 3, posting = 0, claim = NULL, lease_ms = NULL,
               errcode = ?4, errmsg = ?2, finished_ms = ?3, attempts = attempts + 1
             WHERE id = ?1",
        )?
        .execute(params![id, ABANDONED, now_ms, ABANDONED_ERRCODE])?;
        out.push(Abandoned {
            id: id as u64,
            idempotency_key: key,
        });
    }
    Ok(out)
}

/// Ends claim `token` of message `id` as `how` says; false when it was lost.
fn settle_in(
    tx: &Transaction<'_>,
    id: u64,
    token: i64,
    how: &Settlement,
    now_ms: i64,
) -> rusqlite::Result<bool> {
    if !held(tx, id, token)? {
        return Ok(false);
    }
    let id = id as i64;
    match how {
        Settlement::Sent => tx
            .prepare_cached(
                "UPDATE outbox SET state = 1, message = '', claim = NULL, lease_ms = NULL,
                   posting = 0, due_ms = ?2, finished_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, now_ms])?,
        Settlement::Retry {
            due_ms,
            count,
            errcode,
            errmsg,
        } => tx
            .prepare_cached(
                "UPDATE outbox SET due_ms = ?2, attempts = attempts + ?3, errcode = ?4,
                   errmsg = ?5, claim = NULL, lease_ms = NULL, posting = 0 WHERE id = ?1",
            )?
            .execute(params![id, due_ms, i64::from(*count), errcode, errmsg])?,
        Settlement::Dead { errcode, errmsg } | Settlement::Uncertain { errcode, errmsg } => {
            let state = if matches!(how, Settlement::Dead { .. }) {
                State::Dead
            } else {
                State::Uncertain
            };
            tx.prepare_cached(
                "UPDATE outbox SET state = ?2, attempts = attempts + 1, errcode = ?3,
                   errmsg = ?4, claim = NULL, lease_ms = NULL, posting = 0,
                   finished_ms = ?5 WHERE id = ?1",
            )?
            .execute(params![id, state.code(), errcode, errmsg, now_ms])?
        }
        Settlement::Release => tx
            .prepare_cached(
                "UPDATE outbox SET claim = NULL, lease_ms = NULL, posting = 0 WHERE id = ?1",
            )?
            .execute([id])?,
    };
    Ok(true)
}

impl OutboxStore for SqliteOutbox {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.file.path().display())
    }

    fn enqueue(&self, m: &NewMessage, now_ms: i64) -> Result<Enqueued> {
        self.write(|tx| {
            let added = tx
                .prepare_cached(
                    "INSERT INTO outbox (id, appid, event, touser, idempotency_key, message, state, due_ms, created_ms)
                     VALUES ((SELECT MAX(COALESCE((SELECT MAX(id) FROM outbox), 0), id) + 1
                              FROM outbox_id_floor),
                             ?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )?
                .execute(params![
                    m.appid,
                    m.event,
                    m.touser,
                    m.idempotency_key,
                    m.message,
                    m.due_ms,
                    now_ms
                ])?;
            if added == 1 {
                return Ok(Enqueued {
                    id: tx.last_insert_rowid() as u64,
                    due_ms: m.due_ms,
                    duplicate: false,
                });
            }
            let (id, due_ms): (i64, i64) = tx
                .prepare_cached("SELECT id, due_ms FROM outbox WHERE idempotency_key = ?1")?
                .query_row([&m.idempotency_key], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(Enqueued {
                id: id as u64,
                due_ms,
                duplicate: true,
            })
        })
    }

    fn claim(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
    ) -> Result<Claim> {
        let mut some = self.claim_some(apps, now_ms, lease_ms, token, 1)?;
        Ok(Claim {
            message: some.messages.pop(),
            abandoned: some.abandoned,
        })
    }

    fn claim_some(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
        max: usize,
    ) -> Result<Claims> {
        self.write(|tx| {
            let mut out = Claims {
                messages: Vec::new(),
                abandoned: abandon_in(tx, now_ms)?,
            };
            let Some(filter) = app_filter(apps) else {
                return Ok(out);
            };
            let sql = due_sql(&filter, apps.map_or(0, <[String]>::len));
            let mut args = app_args(now_ms, apps);
            args.push((max.min(i64::MAX as usize) as i64).into());
            let until = now_ms.saturating_add(lease_ms);
            let picked: Vec<Claimed> = tx
                .prepare_cached(&sql)?
                .query_map(params_from_iter(args), |r| {
                    Ok(Claimed {
                        id: r.get::<_, i64>(0)? as u64,
                        appid: r.get(1)?,
                        event: r.get(2)?,
                        idempotency_key: r.get(3)?,
                        message: r.get(4)?,
                        attempts: r.get::<_, i64>(5)?.clamp(0, i64::from(u32::MAX)) as u32,
                        token,
                        lease_until_ms: until,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut lease =
                tx.prepare_cached("UPDATE outbox SET claim = ?2, lease_ms = ?3 WHERE id = ?1")?;
            for m in &picked {
                lease.execute(params![m.id as i64, token, until])?;
            }
            out.messages = picked;
            Ok(out)
        })
    }

    fn mark_posting(&self, id: u64, token: i64) -> Result<()> {
        let marked = self.write(|tx| {
            tx.prepare_cached(
                "UPDATE outbox SET posting = 1 WHERE id = ?1 AND claim = ?2 AND state = 0",
            )?
            .execute(params![id as i64, token])
        })?;
        if marked == 1 {
            Ok(())
        } else {
            Err(lost(id))
        }
    }

    fn settle(&self, id: u64, token: i64, how: &Settlement, now_ms: i64) -> Result<bool> {
        self.write(|tx| settle_in(tx, id, token, how, now_ms))
    }

    fn settle_all(&self, each: &[(u64, i64, Settlement)], now_ms: i64) -> Result<Vec<bool>> {
        self.write(|tx| {
            each.iter()
                .map(|(id, token, how)| settle_in(tx, *id, *token, how, now_ms))
                .collect()
        })
    }

    fn stats(&self, appid: Option<&str>, now_ms: i64, dead_limit: usize) -> Result<OutboxStats> {
        self.write(|tx| {
            let mut stats = OutboxStats::default();
            let mut q = tx.prepare_cached(
                "SELECT event, state, COUNT(*),
                   COALESCE(SUM(state = 0 AND due_ms <= ?2 AND (lease_ms IS NULL OR lease_ms <= ?2)), 0),
                   COALESCE(SUM(state = 0 AND lease_ms > ?2), 0)
                 FROM outbox WHERE (?1 IS NULL OR appid = ?1) GROUP BY event, state",
            )?;
            let mut rows = q.query(params![appid, now_ms])?;
            while let Some(r) = rows.next()? {
                let event: String = r.get(0)?;
                let state = state_of(r.get(1)?)?;
                let n: i64 = r.get(2)?;
                let due: i64 = r.get(3)?;
                let in_flight: i64 = r.get(4)?;
                let (n, due, in_flight) = (n as u64, due as u64, in_flight as u64);
                stats.total.add(state, n, due, in_flight);
                stats
                    .by_event
                    .entry(event)
                    .or_insert_with(Counts::default)
                    .add(state, n, due, in_flight);
            }
            drop(rows);
            let mut q = tx.prepare_cached(
                "SELECT id, appid, event, touser, state, attempts, errcode, errmsg,
                   idempotency_key, created_ms, finished_ms
                 FROM outbox WHERE state IN (2, 3) AND (?1 IS NULL OR appid = ?1)
                 ORDER BY finished_ms DESC, id DESC LIMIT ?2",
            )?;
            let mut rows = q.query(params![appid, dead_limit as i64])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(0)?;
                let attempts: i64 = r.get(5)?;
                let created: i64 = r.get(9)?;
                let finished: i64 = r.get(10)?;
                stats.dead_letters.push(DeadLetter {
                    id: id as u64,
                    appid: r.get(1)?,
                    event: r.get(2)?,
                    touser: r.get(3)?,
                    state: state_of(r.get(4)?)?.as_str(),
                    attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                    errcode: r.get(6)?,
                    errmsg: r.get(7)?,
                    idempotency_key: r.get(8)?,
                    enqueued_at: created.div_euclid(1000),
                    failed_at: finished.div_euclid(1000),
                });
            }
            Ok(stats)
        })
    }

    fn count_due(&self, apps: Option<&[String]>, now_ms: i64) -> Result<u64> {
        let Some(filter) = app_filter(apps) else {
            return Ok(0);
        };
        self.write(|tx| {
            let sql = format!(
                "SELECT COUNT(*) FROM outbox
                 WHERE state = 0 AND due_ms <= ?1 AND (lease_ms IS NULL OR lease_ms <= ?1) {filter}"
            );
            let n: i64 = tx
                .prepare_cached(&sql)?
                .query_row(params_from_iter(app_args(now_ms, apps)), |r| r.get(0))?;
            Ok(n as u64)
        })
    }

    fn requeue(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        self.write_checked(|tx| {
            let state: Option<i64> = tx
                .prepare_cached("SELECT state FROM outbox WHERE id = ?1 AND appid = ?2")?
                .query_row(params![id as i64, appid], |r| r.get(0))
                .optional()?;
            match state.map(state_of).transpose()? {
                None => Ok(Err(not_found("outbox_requeue", appid, id, None))),
                Some(State::Dead) => {
                    tx.prepare_cached(
                        "UPDATE outbox SET state = 0, due_ms = ?2, attempts = 0, finished_ms = 0
                         WHERE id = ?1",
                    )?
                    .execute(params![id as i64, now_ms])?;
                    Ok(Ok(()))
                }
                Some(s) => Ok(Err(not_found("outbox_requeue", appid, id, Some(s)))),
            }
        })
    }

    fn remove(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        self.write_checked(|tx| {
            let row: Option<(i64, Option<i64>, bool)> = tx
                .prepare_cached(
                    "SELECT state, lease_ms, posting FROM outbox WHERE id = ?1 AND appid = ?2",
                )?
                .query_row(params![id as i64, appid], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            let Some((state, lease, posting)) = row else {
                return Ok(Err(not_found("outbox_drop", appid, id, None)));
            };
            let state = state_of(state)?;
            let claimed = state == State::Pending && lease.is_some_and(|l| l > now_ms);
            if state == State::Sent || claimed || posting {
                return Ok(Err(not_found("outbox_drop", appid, id, Some(state))));
            }
            delete_keeping_ids(tx, "DELETE FROM outbox WHERE id = ?1", id as i64)?;
            Ok(Ok(()))
        })
    }

    fn forget_sent(&self, before_ms: i64) -> Result<u64> {
        self.write(|tx| {
            let n = delete_keeping_ids(
                tx,
                "DELETE FROM outbox WHERE state = 1 AND due_ms < ?1",
                before_ms,
            )?;
            Ok(n as u64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::tests::message;

    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir =
                std::env::temp_dir().join(format!("outbox-sqlite-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn file(&self) -> String {
            self.0.join("o.db").to_str().unwrap().to_string()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// What SQLite plans for `sql` (the detail column of each step).
    fn plan(conn: &rusqlite::Connection, sql: &str) -> String {
        let mut q = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let values = std::iter::repeat_n(5, q.parameter_count());
        let steps: Vec<String> = q
            .query_map(params_from_iter(values), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        steps.join("; ")
    }

    #[test]
    fn a_claim_reads_only_what_it_picks() {
        let dir = Dir::new("plans");
        let store = SqliteOutbox::open(&dir.file()).unwrap();
        for i in 0..50 {
            store.enqueue(&message(&format!("k{i}")), 1_000).unwrap();
        }
        let conn = rusqlite::Connection::open(dir.file()).unwrap();
        let posting = plan(&conn, RAN_OUT_WHILE_POSTING);
        assert!(posting.contains("USING INDEX outbox_posting"), "{posting}");
        for apps in [None, Some(&["wxa".to_string()][..])] {
            let filter = app_filter(apps).unwrap();
            let due = plan(&conn, &due_sql(&filter, apps.map_or(0, <[String]>::len)));
            assert!(
                due.contains("USING INDEX outbox_due (state=? AND due_ms<?)"),
                "{due}"
            );
            assert!(!due.contains("TEMP B-TREE"), "{due}");
        }
    }

    #[test]
    fn an_id_is_never_handed_out_twice() {
        let dir = Dir::new("ids");
        let store = SqliteOutbox::open(&dir.file()).unwrap();
        let ids: Vec<u64> = (0..3)
            .map(|i| store.enqueue(&message(&format!("k{i}")), 1_000).unwrap().id)
            .collect();
        assert_eq!(ids, [1, 2, 3]);
        // The newest message removed: its id stays taken.
        store.remove("wxa", 3, 1_000).unwrap();
        let next = store.enqueue(&message("k3"), 1_000).unwrap();
        assert_eq!((next.id, next.duplicate), (4, false));
        assert_eq!(store.enqueue(&message("k3"), 1_000).unwrap().id, 4);
        // The newest sent and forgotten: the same.
        let due = store.claim_some(None, 1_000, 500, 8, 10).unwrap();
        let each: Vec<(u64, i64, Settlement)> = due
            .messages
            .iter()
            .map(|m| (m.id, 8, Settlement::Sent))
            .collect();
        assert_eq!(each.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(store.settle_all(&each, 1_000).unwrap(), [true; 3]);
        assert_eq!(store.forget_sent(2_000).unwrap(), 3);
        assert_eq!(store.enqueue(&message("k9"), 1_000).unwrap().id, 5);
        // A delete that leaves the newest row writes no floor.
        let conn = rusqlite::Connection::open(dir.file()).unwrap();
        let floor = || -> i64 {
            conn.query_row("SELECT id FROM outbox_id_floor", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(floor(), 4);
        store.enqueue(&message("k10"), 1_000).unwrap();
        store.remove("wxa", 5, 1_000).unwrap();
        assert_eq!(floor(), 4);
        assert_eq!(store.enqueue(&message("k11"), 1_000).unwrap().id, 7);
    }

    #[test]
    fn a_version_1_file_keeps_its_messages_and_its_ids() {
        let dir = Dir::new("v1");
        {
            let conn = rusqlite::Connection::open(dir.file()).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch(
                "CREATE TABLE outbox_schema_version (version INTEGER NOT NULL);
                 INSERT INTO outbox_schema_version VALUES (1);
                 INSERT INTO outbox (appid, event, touser, idempotency_key, message, state,
                     due_ms, created_ms) VALUES
                   ('wxa', 'e', 'o1', 'old1', '{\"a\":1}', 0, 900, 900),
                   ('wxa', 'e', 'o1', 'old2', '{}', 0, 950, 900),
                   ('wxa', 'e', 'o1', 'old3', '{}', 2, 950, 900);
                 DELETE FROM outbox WHERE id = 3;",
            )
            .unwrap();
        }
        let store = SqliteOutbox::open(&dir.file()).unwrap();
        let conn = rusqlite::Connection::open(dir.file()).unwrap();
        let version: i64 = conn
            .query_row("SELECT version FROM outbox_schema_version", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(version, 2);
        let schema: Vec<String> = conn
            .prepare("SELECT name || ': ' || sql FROM sqlite_master WHERE tbl_name = 'outbox' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let schema = schema.join("\n");
        assert!(!schema.contains("AUTOINCREMENT"), "{schema}");
        assert!(!schema.contains("outbox_by_app"), "{schema}");
        assert!(
            schema.contains("outbox_due") && schema.contains("outbox_posting"),
            "{schema}"
        );
        // The messages are there, in their order, and the key still dedups.
        let dup = store.enqueue(&message("old1"), 1_000).unwrap();
        assert_eq!((dup.id, dup.duplicate, dup.due_ms), (1, true, 900));
        let claimed = store.claim_some(None, 1_000, 500, 5, 10).unwrap();
        let got: Vec<(u64, String)> = claimed
            .messages
            .into_iter()
            .map(|m| (m.id, m.message))
            .collect();
        assert_eq!(got, [(1, "{\"a\":1}".to_string()), (2, "{}".to_string())]);
        // Id 3 was handed out before the migration: never again.
        assert_eq!(store.enqueue(&message("new"), 1_000).unwrap().id, 4);
    }
}
