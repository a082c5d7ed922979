//! Metric figures shared through the Redis store: one hash that every worker
//! process, on any host, adds its increments to. A reply that never came
//! leaves it unknown whether Redis applied a batch, so each batch carries
//! this process's sequence number and a script applies it at most once; the
//! batch is then sent again until Redis confirms it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::sink::{CounterSink, Sample};
use crate::error::{Error, Result};
use crate::store::{split_prefix, RedisClient, RedisLink, DEFAULT_PREFIX};

/// The hash of figures: field `name \x1f labels-as-JSON`, value the figure.
const FIGURES_KEY: &str = "fashop_notify:metrics";
/// Per writing process: the last batch number applied (expires after a day
/// of silence; replays come within seconds).
const SEQ_KEY_PREFIX: &str = "fashop_notify:metrics:seq:";
/// On a Redis Cluster the figures and the sequence keys share a hash slot,
/// as the script touches both.
const CLUSTER_FIGURES_KEY: &str = "fashop_notify:{metrics}";
const CLUSTER_SEQ_KEY_PREFIX: &str = "fashop_notify:{metrics}:seq:";
const SEQ_TTL_SECS: u64 = 86_400;
const FIELD_SEPARATOR: char = '\u{1f}';
/// Batches waiting for Redis to confirm them; beyond this the oldest go.
const MAX_IN_DOUBT: usize = 1_000;
/// Shortest wait for a reply or a connection, whatever the caller allows.
const MIN_WAIT: Duration = Duration::from_millis(10);
const SCRAPE_WAIT: Duration = Duration::from_secs(5);

/// KEYS: the figures hash, the writer's sequence key. ARGV: batch number,
/// sequence key lifetime in seconds, number of additions, then field/delta
/// pairs for the additions and field/value pairs for the gauges.
const APPLY_SCRIPT: &str = r"
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[1]) <= last then return 0 end
local adds = tonumber(ARGV[3])
local i = 4
for _ = 1, adds do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return 1
";

struct Batch {
    seq: u64,
    adds: Vec<(String, i64)>,
    sets: Vec<(String, i64)>,
}

struct Link {
    pid: u32,
    /// Names this process's batches; new after a fork.
    writer: String,
    conn: Option<RedisLink>,
    in_doubt: VecDeque<Batch>,
}

pub struct RedisSink {
    client: RedisClient,
    /// The URL without credentials, for messages.
    shown: String,
    /// The figures' key and the sequence keys' prefix.
    keys: (String, String),
    script: redis::Script,
    seq: AtomicU64,
    link: Mutex<Link>,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

fn writer_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:x}", std::process::id())
}

/// The figures' key and the sequence keys' prefix for a store `prefix`:
/// the names they always had under the default prefix, else the prefix's
/// own (shops sharing a Redis under their own prefixes keep their own
/// figures, as they keep their own permits).
fn keys(cluster: bool, prefix: &str) -> (String, String) {
    match (cluster, prefix == DEFAULT_PREFIX) {
        (false, true) => (FIGURES_KEY.to_string(), SEQ_KEY_PREFIX.to_string()),
        (true, true) => (
            CLUSTER_FIGURES_KEY.to_string(),
            CLUSTER_SEQ_KEY_PREFIX.to_string(),
        ),
        (false, false) => (format!("{prefix}metrics"), format!("{prefix}metrics:seq:")),
        // One hash slot for the figures and the sequence keys, which the
        // script touches together.
        (true, false) => (
            format!("{prefix}{{metrics}}"),
            format!("{prefix}{{metrics}}:seq:"),
        ),
    }
}

fn field(name: &str, labels: &[String]) -> String {
    format!(
        "{name}{FIELD_SEPARATOR}{}",
        serde_json::Value::from(labels.to_vec())
    )
}

impl RedisSink {
    /// Checks the URL; the connection is made on first use.
    pub fn open(url: &str) -> Result<RedisSink> {
        let shown = crate::secret::redact_text(url);
        // The store's own `prefix` parameter is not the client's.
        let (url, prefix) = split_prefix(url)?;
        let client = RedisClient::open(&url)
            .map_err(|e| Error::store(format!("redis store {shown} (shared figures): {e}")))?;
        Ok(RedisSink {
            keys: keys(client.is_cluster(), &prefix),
            client,
            shown,
            script: redis::Script::new(APPLY_SCRIPT),
            seq: AtomicU64::new(0),
            link: Mutex::new(Link {
                pid: std::process::id(),
                writer: writer_name(),
                conn: None,
                in_doubt: VecDeque::new(),
            }),
        })
    }

    /// The figures' key and the sequence keys' prefix.
    fn keys(&self) -> (&str, &str) {
        (&self.keys.0, &self.keys.1)
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::store(format!(
            "redis store {} (shared figures): {}",
            self.shown,
            crate::secret::redact_text(&e.to_string())
        ))
    }

    /// This process's connection, made (again) when needed, with `wait` as
    /// its connect, read and write timeouts.
    fn connect<'a>(&self, link: &'a mut Link, wait: Duration) -> Result<&'a mut RedisLink> {
        let pid = std::process::id();
        if link.pid != pid {
            // A forked child: the parent's socket and in-doubt batches are the parent's.
            std::mem::forget(link.conn.take());
            link.in_doubt.clear();
            link.pid = pid;
            link.writer = writer_name();
        }
        let wait = wait.max(MIN_WAIT);
        if link.conn.is_none() {
            let conn = self.client.connect(wait).map_err(|e| self.error(e))?;
            link.conn = Some(conn);
        }
        let conn = link
            .conn
            .as_mut()
            .ok_or_else(|| Error::internal("the shared figures' redis connection is missing"))?;
        conn.set_timeouts(wait).map_err(|e| self.error(e))?;
        Ok(conn)
    }

    /// Sends one batch. `Ok(())` once Redis confirmed it (applied now or
    /// before); `Err(true)` when the answer was lost, so Redis may have it.
    fn send(&self, conn: &mut RedisLink, writer: &str, batch: &Batch) -> Result<(), (bool, Error)> {
        let mut call = self.script.prepare_invoke();
        let (figures, seq) = self.keys();
        call.key(figures)
            .key(format!("{seq}{writer}"))
            .arg(batch.seq)
            .arg(SEQ_TTL_SECS)
            .arg(batch.adds.len());
        for (f, v) in batch.adds.iter().chain(&batch.sets) {
            call.arg(f).arg(*v);
        }
        call.invoke::<i64>(conn).map(|_| ()).map_err(|e| {
            let lost = e.is_timeout() || e.is_connection_dropped() || e.is_io_error();
            (lost, self.error(e))
        })
    }
}

impl CounterSink for RedisSink {
    fn apply(&self, adds: &[Sample], sets: &[Sample], patience: Duration) -> Result<()> {
        let mut guard = self.link.lock();
        let link = &mut *guard;
        let batch = Batch {
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
            adds: adds
                .iter()
                .map(|s| (field(&s.name, &s.labels), s.value))
                .collect(),
            sets: sets
                .iter()
                .map(|s| (field(&s.name, &s.labels), s.value))
                .collect(),
        };
        self.connect(link, patience)?;
        let writer = link.writer.clone();
        // Earlier batches first, so that the sequence numbers reach Redis in order.
        while let Some(old) = link.in_doubt.pop_front() {
            let sent = match self.connect(link, patience) {
                Ok(conn) => self.send(conn, &writer, &old),
                Err(e) => Err((false, e)),
            };
            if let Err((_, e)) = sent {
                link.in_doubt.push_front(old);
                link.conn = None;
                return Err(e);
            }
        }
        let conn = self.connect(link, patience)?;
        match self.send(conn, &writer, &batch) {
            Ok(()) => Ok(()),
            Err((true, _)) => {
                // Redis may hold it: this sink owns the batch now and sends
                // it again (a duplicate is skipped by its number).
                link.conn = None;
                if link.in_doubt.len() >= MAX_IN_DOUBT {
                    link.in_doubt.pop_front();
                }
                link.in_doubt.push_back(batch);
                Ok(())
            }
            Err((false, e)) => Err(e),
        }
    }

    fn snapshot(&self) -> Result<Vec<Sample>> {
        let mut guard = self.link.lock();
        let link = &mut *guard;
        let conn = self.connect(link, SCRAPE_WAIT)?;
        let all: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.keys().0)
            .query(conn)
            .map_err(|e| {
                let e = self.error(e);
                link.conn = None;
                e
            })?;
        let mut out: Vec<Sample> = all
            .into_iter()
            .filter_map(|(f, value)| {
                let (name, labels) = f.split_once(FIELD_SEPARATOR)?;
                let labels = serde_json::from_str::<Vec<String>>(labels).ok()?;
                Some(Sample {
                    name: name.to_string(),
                    labels,
                    value,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        Ok(out)
    }

    fn forget(&self, figures: &[Sample]) -> Result<()> {
        if figures.is_empty() {
            return Ok(());
        }
        let mut guard = self.link.lock();
        let link = &mut *guard;
        let conn = self.connect(link, SCRAPE_WAIT)?;
        let mut del = redis::cmd("HDEL");
        del.arg(self.keys().0);
        for s in figures {
            del.arg(field(&s.name, &s.labels));
        }
        del.query::<i64>(conn).map(|_| ()).map_err(|e| {
            link.conn = None;
            self.error(e)
        })
    }

    fn pending(&self) -> usize {
        self.link.lock().in_doubt.len()
    }
}
