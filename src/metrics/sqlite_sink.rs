//! Metric figures shared through the SQLite store file: one `metrics` table
//! that every worker process adds its increments to (UPSERT value + delta), so
//! a scrape from any process shows the whole shop. Each process writes through
//! the one connection it keeps for the file, the ledger's and the outbox's too
//! (`crate::sqlite_conn` says why).

use std::time::Duration;

use rusqlite::params;

use super::sink::{CounterSink, Sample};
use crate::error::{Error, Result};
use crate::sqlite_conn::{Schema, StoreFile};

/// Each entry brings the metrics table from the version before it to its own
/// number. Files written before the table had a version hold it already.
const MIGRATIONS: &[&str] = &["CREATE TABLE IF NOT EXISTS metrics (
         name   TEXT NOT NULL,
         labels TEXT NOT NULL,
         value  INTEGER NOT NULL,
         PRIMARY KEY (name, labels)
     ) WITHOUT ROWID;"];

static SCHEMA: Schema = Schema {
    name: "metrics schema",
    version_table: "metrics_schema_version",
    migrations: MIGRATIONS,
};

#[derive(Debug)]
pub struct SqliteSink {
    path: String,
    file: StoreFile,
}

fn store_error(path: &str, e: rusqlite::Error) -> Error {
    Error::store(format!("sqlite store {path} (shared figures): {e}"))
}

impl SqliteSink {
    /// Checks (creating if needed, mode 0600) the database file and the
    /// `metrics` table.
    pub fn open(path: &str) -> Result<SqliteSink> {
        let file = StoreFile::open(path, &SCHEMA)?;
        Ok(SqliteSink {
            path: path.to_string(),
            file,
        })
    }

    fn labels_text(labels: &[String]) -> String {
        serde_json::Value::from(labels.to_vec()).to_string()
    }
}

impl CounterSink for SqliteSink {
    fn apply(&self, adds: &[Sample], sets: &[Sample], patience: Duration) -> Result<()> {
        self.file
            .write_raw(Some(patience), |tx| {
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
                Ok(())
            })
            .map_err(|e| store_error(&self.path, e))
    }

    fn forget(&self, figures: &[Sample]) -> Result<()> {
        self.file
            .write_raw(None, |tx| {
                let mut del =
                    tx.prepare_cached("DELETE FROM metrics WHERE name = ?1 AND labels = ?2")?;
                for s in figures {
                    del.execute(params![s.name, Self::labels_text(&s.labels)])?;
                }
                Ok(())
            })
            .map_err(|e| store_error(&self.path, e))
    }

    fn snapshot(&self) -> Result<Vec<Sample>> {
        let rows = self
            .file
            .read_raw(|conn| {
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
        let holder = rusqlite::Connection::open(path).unwrap();
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
