//! The outbox: messages rendered and kept durably now (in the pay callback,
//! without touching the network) and sent later by `flush` from a cron or task
//! worker. Here: the store in force, the kept form of a message, when a message
//! is due again, and the flush report; `send_machine` decides how a flushed
//! message settles and `notifier/outbox.rs` carries that out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::{Config, StoreSpec};
use crate::error::{Error, Result};
use crate::message::{MessageKind, RenderedMessage};
// The memory outbox belongs to its process as the memory ledger does.
pub(crate) use crate::store::OwnerProcess;
use crate::store::StoreSlot;
use crate::wechat::errcodes::{next_china_midnight, next_minute};

mod memory;
mod redis;
#[cfg(test)]
#[path = "../../tests/redis_server/mod.rs"]
mod redis_server;
mod sqlite;
mod store;

pub use store::{
    Claimed, Counts, Enqueued, NewMessage, OutboxStats, OutboxStore, Settlement, ABANDONED,
    SENT_KEPT_MS,
};

/// Opens the outbox in the store a `configure` document names.
pub fn open(spec: &StoreSpec) -> Result<Arc<dyn OutboxStore>> {
    Ok(match spec {
        StoreSpec::Memory => Arc::new(memory::MemoryOutbox::default()),
        StoreSpec::Sqlite(path) => Arc::new(sqlite::SqliteOutbox::open(path)?),
        StoreSpec::Redis(url) => Arc::new(redis::RedisOutbox::open(url)?),
    })
}

/// Dead letters `outbox_stats` lists at most.
pub const DEAD_LETTERS_LISTED: usize = 100;
/// The longest pause between two attempts, whatever the doubling says.
pub const MAX_BACKOFF_MS: i64 = 3600 * 1000;
/// WeChat's daily quotas reset at midnight in China (UTC+8); the released
/// messages spread over this many ms after it.
const MIDNIGHT_SPREAD_MS: i64 = 300_000;

/// The outbox of one notifier: the store it keeps messages in.
#[derive(Debug)]
pub struct Outbox {
    store: StoreSlot<dyn OutboxStore>,
    claims: AtomicU64,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            store: StoreSlot::new(
                Arc::new(memory::MemoryOutbox::default()),
                "messages were enqueued",
                "enqueue",
            ),
            claims: AtomicU64::new(0),
        }
    }
}

impl Outbox {
    /// Refuses a new `store` setting once a message was enqueued in the
    /// current store (it would be stranded). Checked before the ledger opens
    /// the new store, so a refused switch creates nothing.
    pub fn check_switch(&self, config: &Config) -> Result<()> {
        self.store.check_switch(&config.store)
    }

    /// Opens the outbox in the store the settings name, when it changed (after
    /// the ledger opened it: the SQLite file is the ledger's).
    pub fn configure(&self, config: &Config) -> Result<()> {
        self.store.switch(&config.store, open)
    }

    pub fn store(&self) -> Arc<dyn OutboxStore> {
        self.store.current()
    }

    /// Keeps a message in the store the settings name.
    pub fn enqueue(&self, new: &NewMessage, now_ms: i64) -> Result<Enqueued> {
        self.store.for_records().enqueue(new, now_ms)
    }

    /// A claim token no other flush, in this process or another, will use.
    pub fn claim_token(&self, now_ms: i64) -> i64 {
        let n = self.claims.fetch_add(1, Ordering::Relaxed);
        let seed = (u64::from(std::process::id()) << 40) ^ (now_ms as u64) ^ n.rotate_left(20);
        (mix(seed) >> 1) as i64
    }
}

/// SplitMix64's finalizer: spreads near seeds far apart.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A rendered message as the outbox keeps it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stored {
    kind: String,
    template_id: String,
    touser: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_sn: Option<String>,
    body: Map<String, Value>,
}

impl Stored {
    pub fn of(msg: &RenderedMessage) -> Stored {
        Stored {
            kind: match msg.kind {
                MessageKind::Subscribe => "subscribe",
                MessageKind::Template => "template",
            }
            .to_string(),
            template_id: msg.template_id.clone(),
            touser: msg.touser.clone(),
            order_sn: msg.order_sn.clone(),
            body: msg.body.clone(),
        }
    }

    /// A service card update as the outbox keeps it (kind "card").
    pub fn of_card(touser: &str, update: Map<String, Value>) -> Stored {
        Stored {
            kind: "card".to_string(),
            template_id: String::new(),
            touser: touser.to_string(),
            order_sn: None,
            body: update,
        }
    }

    /// The card update this is, when it is one.
    pub fn card_update(&self) -> Option<&Map<String, Value>> {
        (self.kind == "card").then_some(&self.body)
    }

    pub fn into_message(self, key: String) -> Result<RenderedMessage> {
        let kind = match self.kind.as_str() {
            "subscribe" => MessageKind::Subscribe,
            "template" => MessageKind::Template,
            other => {
                return Err(Error::store(format!(
                    "outbox message of unknown kind {other:?} in store"
                )))
            }
        };
        Ok(RenderedMessage {
            kind,
            template_id: self.template_id,
            touser: self.touser,
            order_sn: self.order_sn,
            idempotency_key: key,
            body: self.body,
            // A flushed message stays in the outbox when the network fails.
            enqueue_on_network_error: false,
        })
    }
}

/// The next moment a daily quota is back: after the coming midnight in China.
pub fn after_quota_reset(now_ms: i64, spread: u64) -> i64 {
    next_china_midnight(now_ms) + (spread % MIDNIGHT_SPREAD_MS as u64) as i64
}

/// The start of the next minute, spread over its first second: WeChat's
/// per-minute quota says "retry next minute".
pub fn after_minute_quota(now_ms: i64, spread: u64) -> i64 {
    next_minute(now_ms) + (spread % 1_000) as i64
}

/// The pause before attempt `failed + 1`: `retry` doubled per failed attempt,
/// capped, and spread by ±20% so that messages failing together come back apart.
pub fn backoff_ms(retry_ms: i64, failed: u32, spread: u64) -> i64 {
    let doubled = retry_ms.saturating_mul(1i64 << failed.saturating_sub(1).min(30));
    let base = doubled.min(MAX_BACKOFF_MS);
    let fifth = (base / 5).max(1);
    base - fifth + (spread % (2 * fifth as u64 + 1)) as i64
}

/// What one flushed message came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlushStatus {
    Sent,
    /// Already sent under its idempotency key.
    Duplicate,
    /// Due again later.
    Retry,
    /// Given up (attempt limit, or WeChat refused it for good).
    Dead,
    /// May have been delivered: never sent again.
    Uncertain,
    /// The claim ran out and another flush took the message over.
    Lost,
}

impl FlushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FlushStatus::Sent => "sent",
            FlushStatus::Duplicate => "duplicate",
            FlushStatus::Retry => "retry",
            FlushStatus::Dead => "dead",
            FlushStatus::Uncertain => "uncertain",
            FlushStatus::Lost => "lost",
        }
    }
}

impl std::fmt::Display for FlushStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status as the flush report's JSON spells it.
impl PartialEq<&str> for FlushStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One flushed message.
#[derive(Debug, Clone, Serialize)]
pub struct Flushed {
    pub id: u64,
    pub appid: String,
    pub event: String,
    pub status: FlushStatus,
    pub errcode: i64,
    pub errmsg: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt, for `retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
    /// WeChat was not reached (the request did not leave) or did not answer
    /// (timed out after it left): what makes a flush stop early.
    #[serde(skip)]
    pub unreachable: bool,
}

/// What a flush did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlushReport {
    pub sent: u64,
    pub duplicate: u64,
    pub retry: u64,
    pub dead: u64,
    pub uncertain: u64,
    pub lost: u64,
    /// Due messages left for the next flush (beyond `max_messages`).
    pub due_left: u64,
    /// Why the flush stopped before `max_messages` with messages still due:
    /// WeChat was not reached or did not answer for `outbox.stop_after_unreachable`
    /// messages in a row. Absent when it did not stop early.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    pub messages: Vec<Flushed>,
}

impl FlushReport {
    pub fn count(&mut self, f: Flushed) {
        match f.status {
            FlushStatus::Sent => self.sent += 1,
            FlushStatus::Duplicate => self.duplicate += 1,
            FlushStatus::Retry => self.retry += 1,
            FlushStatus::Dead => self.dead += 1,
            FlushStatus::Uncertain => self.uncertain += 1,
            FlushStatus::Lost => self.lost += 1,
        }
        self.messages.push(f);
    }
}

pub fn stats_json(appid: Option<&str>, s: &OutboxStats) -> String {
    let mut doc = serde_json::to_value(s.total).unwrap_or_default();
    doc["appid"] = json!(appid);
    doc["by_event"] = serde_json::to_value(&s.by_event).unwrap_or_default();
    doc["dead_letters"] = serde_json::to_value(&s.dead_letters).unwrap_or_default();
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wechat::errcodes::DAY_MS;

    #[test]
    fn quota_resets_at_midnight_in_china() {
        // 2026-11-23 15:59:59 UTC is 23:59:59 in China: one second to go.
        let before = 1_795_449_599_000;
        assert_eq!(after_quota_reset(before, 0), before + 1000);
        // 16:00:00 UTC is midnight there: the next reset is a day later.
        assert_eq!(after_quota_reset(before + 1000, 0), before + 1000 + DAY_MS);
        let spread = after_quota_reset(before, u64::MAX);
        assert!(spread > before + 1000 && spread < before + 1000 + MIDNIGHT_SPREAD_MS);
    }

    #[test]
    fn minute_quota_defers_to_the_next_minute() {
        let at = 1_795_449_599_000 - 30_500;
        assert_eq!(after_minute_quota(at, 0), 1_795_449_600_000);
        let spread = after_minute_quota(at, u64::MAX);
        assert!((1_795_449_600_000..1_795_449_601_000).contains(&spread));
        assert_eq!(after_minute_quota(1_795_449_540_000, 7), 1_795_449_600_007);
    }

    #[test]
    fn backoff_doubles_within_a_fifth_and_stops_at_an_hour() {
        for (failed, base) in [(1, 30_000), (2, 60_000), (3, 120_000), (10, MAX_BACKOFF_MS)] {
            for spread in [0, 1, 12_345, u64::MAX] {
                let b = backoff_ms(30_000, failed, spread);
                assert!(b >= base - base / 5 && b <= base + base / 5, "{failed} {b}");
            }
        }
        assert_ne!(backoff_ms(30_000, 1, 1), backoff_ms(30_000, 1, 7));
        assert!(backoff_ms(30_000, 100, 3) <= MAX_BACKOFF_MS + MAX_BACKOFF_MS / 5);
    }

    /// A message for the stores' own tests (here and in `sqlite`).
    pub(super) fn message(key: &str) -> NewMessage {
        NewMessage {
            appid: "wxa".into(),
            event: "order_pay_success".into(),
            touser: "o1".into(),
            idempotency_key: key.into(),
            message: "{}".into(),
            due_ms: 1_000,
        }
    }

    /// A claim that ran out may be taken over; the old holder can then
    /// neither mark the request as on its way nor settle the message.
    fn lost_claims_cannot_post_or_settle(store: &dyn OutboxStore) {
        let apps = ["wxa".to_string()];
        let id = store.enqueue(&message("k1"), 1_000).unwrap().id;
        let first = store.claim(Some(&apps), 1_000, 500, 11).unwrap();
        assert_eq!(first.message.as_ref().map(|m| m.id), Some(id));
        assert!(store
            .claim(Some(&apps), 1_499, 500, 12)
            .unwrap()
            .message
            .is_none());
        assert!(store
            .claim(Some(&["wxb".to_string()]), 2_000, 500, 12)
            .unwrap()
            .message
            .is_none());
        let second = store.claim(Some(&apps), 1_500, 500, 13).unwrap();
        assert_eq!(second.message.map(|m| m.token), Some(13));
        assert!(store.mark_posting(id, 11).is_err());
        assert!(!store.settle(id, 11, &Settlement::Sent, 1_600).unwrap());
        store.mark_posting(id, 13).unwrap();
        // The holder itself vanished after marking: the next claim makes it uncertain.
        let third = store.claim(None, 2_000, 500, 14).unwrap();
        assert!(third.message.is_none());
        assert_eq!(third.abandoned.len(), 1);
        assert!(!store.settle(id, 13, &Settlement::Sent, 2_000).unwrap());
        let stats = store.stats(Some("wxa"), 2_000, 10).unwrap();
        assert_eq!((stats.total.uncertain, stats.total.pending), (1, 0));
        assert_eq!(stats.dead_letters[0].state, "uncertain");
        assert!(store.requeue("wxa", id, 2_000).is_err());
        assert_eq!(store.count_due(None, 2_000).unwrap(), 0);
        store.remove("wxa", id, 2_000).unwrap();
        // Gone with its key: the same key may come again.
        assert!(!store.enqueue(&message("k1"), 3_000).unwrap().duplicate);
    }

    /// A flush's lanes claim a batch in one step and settle together: each
    /// message once, oldest first, and a settlement of a lost claim is refused
    /// alone.
    fn batches_claim_and_settle_each_message_once(store: &dyn OutboxStore) {
        let apps = ["wxa".to_string()];
        let ids: Vec<u64> = (0..5)
            .map(|i| store.enqueue(&message(&format!("b{i}")), 1_000).unwrap().id)
            .collect();
        let some = store.claim_some(Some(&apps), 1_000, 500, 21, 3).unwrap();
        let got: Vec<u64> = some.messages.iter().map(|m| m.id).collect();
        assert_eq!(got, ids[..3]);
        assert!(some.messages.iter().all(|m| m.token == 21));
        let rest = store.claim_some(Some(&apps), 1_000, 500, 22, 10).unwrap();
        let got: Vec<u64> = rest.messages.iter().map(|m| m.id).collect();
        assert_eq!(got, ids[3..]);
        assert!(store
            .claim_some(Some(&apps), 1_000, 500, 23, 10)
            .unwrap()
            .messages
            .is_empty());
        let answers = store
            .settle_all(
                &[
                    (ids[0], 21, Settlement::Sent),
                    (ids[3], 21, Settlement::Sent),
                    (ids[4], 22, Settlement::Release),
                ],
                1_100,
            )
            .unwrap();
        assert_eq!(answers, [true, false, true]);
        let stats = store.stats(Some("wxa"), 1_100, 10).unwrap();
        assert_eq!((stats.total.sent, stats.total.pending), (1, 4));
        assert_eq!(store.count_due(None, 1_100).unwrap(), 1);
    }

    #[test]
    fn lost_claims_on_every_store() {
        batches_claim_and_settle_each_message_once(&memory::MemoryOutbox::default());
        lost_claims_cannot_post_or_settle(&memory::MemoryOutbox::default());
        let dir = std::env::temp_dir().join(format!("outbox-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.db");
        let store = sqlite::SqliteOutbox::open(path.to_str().unwrap()).unwrap();
        lost_claims_cannot_post_or_settle(&store);
        drop(store);
        let batches = sqlite::SqliteOutbox::open(dir.join("b.db").to_str().unwrap()).unwrap();
        batches_claim_and_settle_each_message_once(&batches);
        drop(batches);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lost_claims_on_redis() {
        let server = super::redis_server::RedisServer::start();
        let store = super::redis::RedisOutbox::open(&server.spec("unit")).unwrap();
        lost_claims_cannot_post_or_settle(&store);
        let batches = super::redis::RedisOutbox::open(&server.spec("batches")).unwrap();
        batches_claim_and_settle_each_message_once(&batches);
    }

    #[test]
    fn claim_tokens_differ() {
        let o = Outbox::default();
        let a: std::collections::HashSet<i64> = (0..1000).map(|_| o.claim_token(5)).collect();
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|t| *t >= 0));
    }
}
