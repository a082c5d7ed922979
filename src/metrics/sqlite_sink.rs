//! Metric figures shared through the SQLite store file: one `metrics` table
//! that every worker process adds its increments to (UPSERT value + delta), so
//! a scrape from any process shows the whole shop.

use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, TransactionBehavior};

use super::sink::{CounterSink, Sample};
use crate::error::{Error, Result};

/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct SqliteSink {
    path: String,
    conn: Mutex<Connection>,
}

fn store_error(path: &str, e: rusqlite::Error) -> Error {
    Error::store(format!("metrics: sqlite store {path}: {e}"))
}

impl SqliteSink {
    /// Opens (creating if needed) the database file and the `metrics` table.
    pub fn open(path: &str) -> Result<SqliteSink> {
        let conn = Connection::open(path).map_err(|e| store_error(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| store_error(path, e))?;
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
        )
        .map_err(|e| store_error(path, e))?;
        Ok(SqliteSink {
            path: path.to_string(),
            conn: Mutex::new(conn),
        })
    }

    fn labels_text(labels: &[String]) -> String {
        serde_json::Value::from(labels.to_vec()).to_string()
    }
}

impl CounterSink for SqliteSink {
    fn apply(&self, adds: &[Sample], sets: &[Sample]) -> Result<()> {
        let mut conn = self.conn.lock();
        let err = |e| store_error(&self.path, e);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut add = tx
                .prepare_cached(
                    "INSERT INTO metrics (name, labels, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name, labels) DO UPDATE SET value = value + excluded.value",
                )
                .map_err(err)?;
            for s in adds {
                add.execute(params![s.name, Self::labels_text(&s.labels), s.value])
                    .map_err(err)?;
            }
            let mut set = tx
                .prepare_cached(
                    "INSERT INTO metrics (name, labels, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (name, labels) DO UPDATE SET value = excluded.value",
                )
                .map_err(err)?;
            for s in sets {
                set.execute(params![s.name, Self::labels_text(&s.labels), s.value])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    fn snapshot(&self) -> Result<Vec<Sample>> {
        let conn = self.conn.lock();
        let err = |e| store_error(&self.path, e);
        let mut stmt = conn
            .prepare_cached("SELECT name, labels, value FROM metrics ORDER BY name, labels")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (name, labels, value) = row.map_err(err)?;
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
        )
        .unwrap();
        b.apply(
            &[sample("c_total", &["wx1", "e\"1"], 3)],
            &[sample("g", &["subscribe"], 4)],
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
    fn an_unopenable_file_is_a_store_error() {
        let e = SqliteSink::open("/nonexistent-dir/x/metrics.db").unwrap_err();
        assert!(matches!(e, Error::Store(_)), "{e:?}");
        assert!(e.to_string().contains("/nonexistent-dir/x/metrics.db"));
    }
}
