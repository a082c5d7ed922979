//! Metric figures shared through the SQLite store file: one `metrics` table
//! that every worker process adds its increments to (UPSERT value + delta), so
//! a scrape from any process shows the whole shop. Each process writes through
//! its own connection, opened on first use (`crate::sqlite_conn` says why).

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, TransactionBehavior};

use super::sink::{CounterSink, Sample};
use crate::error::{Error, Result};
use crate::sqlite_conn::{self, ProcessConnection};

/// How long a scrape waits for other processes' transactions.
const SCRAPE_PATIENCE: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SqliteSink {
    path: String,
    conn: ProcessConnection,
    /// How long the current call may wait for the write lock, in microseconds
    /// (read by the busy handler, which SQLite wants `'static`).
    patience_micros: Arc<AtomicU64>,
}

fn store_error(path: &str, e: rusqlite::Error) -> Error {
    Error::store(format!("metrics: sqlite store {path}: {e}"))
}

impl SqliteSink {
    /// Checks (creating if needed) the database file and the `metrics` table.
    pub fn open(path: &str) -> Result<SqliteSink> {
        if !Path::new(path).exists() {
            // The store's file holds users' permits: readable by its owner only.
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::store(format!("metrics: sqlite store {path}: {e}")))?;
        }
        let patience_micros = Arc::new(AtomicU64::new(SCRAPE_PATIENCE.as_micros() as u64));
        sqlite_conn::check(|| connect(path, &patience_micros)).map_err(|e| store_error(path, e))?;
        Ok(SqliteSink {
            path: path.to_string(),
            conn: ProcessConnection::new(),
            patience_micros,
        })
    }

    fn labels_text(labels: &[String]) -> String {
        serde_json::Value::from(labels.to_vec()).to_string()
    }
}

fn connect(path: &str, patience_micros: &Arc<AtomicU64>) -> rusqlite::Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.busy_handler(Some(wait_for_the_lock(patience_micros.clone())))?;
    // WAL lets readers scrape while workers write; the ledger wants the same.
    // Another connection holding the file may keep it from switching, which is fine.
    let _ = conn.pragma_update(None, "journal_mode", "WAL");
    let _ = conn.pragma_update(None, "synchronous", "NORMAL");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS metrics (
             name   TEXT NOT NULL,
             labels TEXT NOT NULL,
             value  INTEGER NOT NULL,
             PRIMARY KEY (name, labels)
         ) WITHOUT ROWID;",
    )?;
    Ok(conn)
}

/// Short jittered sleeps while another process holds the write lock (SQLite's
/// own busy timeout backs off to 100 ms steps, letting one process starve),
/// up to the patience of the call.
fn wait_for_the_lock(patience_micros: Arc<AtomicU64>) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    let jitter = u64::from(std::process::id());
    move |attempt| {
        if attempt == 0 {
            since = Instant::now();
        }
        let patience = Duration::from_micros(patience_micros.load(Ordering::Relaxed));
        if since.elapsed() >= patience {
            return false;
        }
        let micros = 20 + jitter.wrapping_mul(31).wrapping_add(attempt as u64 * 7919) % 200;
        std::thread::sleep(Duration::from_micros(micros));
        true
    }
}

impl CounterSink for SqliteSink {
    fn apply(&self, adds: &[Sample], sets: &[Sample], patience: Duration) -> Result<()> {
        let patience = u64::try_from(patience.as_micros()).unwrap_or(u64::MAX);
        let open = || connect(&self.path, &self.patience_micros);
        self.conn
            .with(open, |conn| {
                self.patience_micros.store(patience, Ordering::Relaxed);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                {
                    let mut add = tx.prepare_cached(
                        "INSERT INTO metrics (name, labels, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
                    )?;
                    for s in adds {
                        add.execute(params![s.name, Self::labels_text(&s.labels), s.value])?;
                    }
                    let mut set = tx.prepare_cached(
                        "INSERT INTO metrics (name, labels, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (name, labels) DO UPDATE SET value = excluded.value",
                    )?;
                    for s in sets {
                        set.execute(params![s.name, Self::labels_text(&s.labels), s.value])?;
                    }
                }
                tx.commit()
            })
            .map_err(|e| store_error(&self.path, e))
    }

    fn snapshot(&self) -> Result<Vec<Sample>> {
        let open = || connect(&self.path, &self.patience_micros);
        let rows = self
            .conn
            .with(open, |conn| {
                self.patience_micros
                    .store(SCRAPE_PATIENCE.as_micros() as u64, Ordering::Relaxed);
                let mut stmt = conn.prepare_cached(
                    "SELECT name, labels, value FROM metrics ORDER BY name, labels",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| store_error(&self.path, e))?;
        let mut out = Vec::new();
        for (name, labels, value) in rows {
            // A row this version cannot read is skipped rather than failing the scrape.
            if let Ok(labels) = serde_json::from_str::<Vec<String>>(&labels) {
                out.push(Sample {
                    name,
                    labels,
                    value,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, labels: &[&str], value: i64) -> Sample {
        Sample {
            name: name.into(),
            labels: labels.iter().map(|s| s.to_string()).collect(),
            value,
        }
    }

    #[test]
    fn two_connections_add_up_and_gauges_take_the_last_value() {
        let dir = std::env::temp_dir().join(format!("fashop-metrics-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("shared.db");
        let _ = std::fs::remove_file(&path);
        let path = path.to_str().unwrap();
        let a = SqliteSink::open(path).unwrap();
        let b = SqliteSink::open(path).unwrap();
        a.apply(
            &[sample("c_total", &["wx1", "e\"1"], 2)],
            &[sample("g", &["subscribe"], 5)],
            Duration::from_millis(100),
        )
        .unwrap();
        b.apply(
            &[sample("c_total", &["wx1", "e\"1"], 3)],
            &[sample("g", &["subscribe"], 4)],
            Duration::from_millis(100),
        )
        .unwrap();
        let snap = a.snapshot().unwrap();
        assert_eq!(
            snap,
            vec![
                sample("c_total", &["wx1", "e\"1"], 5),
                sample("g", &["subscribe"], 4)
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_file_is_private_and_a_held_lock_is_waited_for_only_so_long() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("fashop-metrics-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("locked.db");
        let _ = std::fs::remove_file(&path);
        let path = path.to_str().unwrap();
        let sink = SqliteSink::open(path).unwrap();
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let holder = Connection::open(path).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let e = sink
            .apply(&[sample("c_total", &[], 1)], &[], Duration::from_millis(20))
            .unwrap_err();
        assert!(matches!(e, Error::Store(_)), "{e:?}");
        assert!(e.to_string().contains("locked"), "{e}");
        holder.execute_batch("COMMIT").unwrap();
        sink.apply(&[sample("c_total", &[], 1)], &[], Duration::from_millis(20))
            .unwrap();
        assert_eq!(sink.snapshot().unwrap(), vec![sample("c_total", &[], 1)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unopenable_file_is_a_store_error() {
        let e = SqliteSink::open("/nonexistent-dir/x/metrics.db").unwrap_err();
        assert!(matches!(e, Error::Store(_)), "{e:?}");
        assert!(e.to_string().contains("/nonexistent-dir/x/metrics.db"));
    }
}
