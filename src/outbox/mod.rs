//! The outbox: messages rendered and kept durably now (in the pay callback,
//! without touching the network) and sent later by `flush` from a cron or task
//! worker, with the send policy, retries with backoff, dead letters, and claims
//! that keep several flushing processes from ever sending one message twice.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::mapping::MessageKind;
use crate::notifier::Notifier;
use crate::render::RenderedMessage;
use crate::send::SendReport;

mod memory;
mod redis;
#[cfg(test)]
#[path = "../../tests/redis_server/mod.rs"]
mod redis_server;
mod sqlite;
mod store;

pub use store::{Claimed, Counts, Enqueued, NewMessage, OutboxStore, Settlement, Stats};

/// Dead letters `outbox_stats` lists at most.
pub const DEAD_LETTERS_LISTED: usize = 100;
/// Sent messages are remembered this long (so a repeated enqueue finds them),
/// as long as send's own idempotency records.
pub const SENT_KEPT_MS: i64 = crate::store::IDEMPOTENCY_KEEP_MS;
/// The longest pause between two attempts, whatever the doubling says.
pub const MAX_BACKOFF_MS: i64 = 3600 * 1000;
/// WeChat's daily quotas (45009) reset at midnight in China (UTC+8); the
/// released messages spread over this many ms after it.
const MIDNIGHT_SPREAD_MS: i64 = 300_000;
const CHINA_OFFSET_MS: i64 = 8 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The `outbox` setting in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Failed attempts after which a message is dead-lettered.
    pub max_attempts: u32,
    /// How long a flush holds a claimed message; a flusher that dies frees it after this.
    pub lease_secs: u64,
    /// The first retry pause; each failed attempt doubles it.
    pub retry_secs: u64,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 10,
            // As long as send's idempotency claim, so a message whose flusher
            // died finds its key free when it is claimed again.
            lease_secs: 120,
            retry_secs: 30,
        }
    }
}

/// What one `configure` call says about the outbox.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxPatch {
    pub max_attempts: Option<u32>,
    pub lease_secs: Option<u64>,
    pub retry_secs: Option<u64>,
}

impl OutboxPatch {
    pub fn check(&self) -> Result<()> {
        let range = |field: &str, v: Option<u64>, min: u64, max: u64| match v {
            Some(v) if !(min..=max).contains(&v) => Err(Error::invalid(format!(
                "configure: outbox.{field} must be between {min} and {max}, got {v}"
            ))),
            _ => Ok(()),
        };
        range("max_attempts", self.max_attempts.map(u64::from), 1, 100)?;
        range("lease_secs", self.lease_secs, 5, 3600)?;
        range("retry_secs", self.retry_secs, 1, 3600)
    }

    pub fn apply_to(&self, base: &OutboxSettings) -> OutboxSettings {
        OutboxSettings {
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            lease_secs: self.lease_secs.unwrap_or(base.lease_secs),
            retry_secs: self.retry_secs.unwrap_or(base.retry_secs),
        }
    }
}

/// The outbox of one notifier: the store it keeps messages in.
#[derive(Debug)]
pub struct Outbox {
    active: RwLock<Active>,
    /// Once a message went into the store, switching stores would strand it.
    enqueued_any: AtomicBool,
    claims: AtomicU64,
}

#[derive(Debug, Clone)]
struct Active {
    spec: String,
    store: Arc<dyn OutboxStore>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            active: RwLock::new(Active {
                spec: "memory".to_string(),
                store: Arc::new(memory::MemoryOutbox::default()),
            }),
            enqueued_any: AtomicBool::new(false),
            claims: AtomicU64::new(0),
        }
    }
}

impl Outbox {
    /// Refuses a new `store` setting once a message was enqueued in the
    /// current store (it would be stranded). Checked before the ledger opens
    /// the new store, so a refused switch creates nothing.
    pub fn check_switch(&self, config: &Config) -> Result<()> {
        let active = self.active.read();
        if active.spec != config.store && self.enqueued_any.load(Ordering::SeqCst) {
            return Err(Error::invalid(format!(
                "configure: store cannot change from {:?} to {:?} after messages were enqueued (they would be stranded); configure the store before the first enqueue",
                active.spec, config.store
            )));
        }
        Ok(())
    }

    /// Opens the outbox in the store the settings name, when it changed (after
    /// the ledger opened it: the SQLite file is the ledger's).
    pub fn configure(&self, config: &Config) -> Result<()> {
        let mut active = self.active.write();
        if active.spec == config.store {
            return Ok(());
        }
        if self.enqueued_any.load(Ordering::SeqCst) {
            return Err(Error::invalid(format!(
                "configure: store cannot change from {:?} to {:?} after messages were enqueued",
                active.spec, config.store
            )));
        }
        *active = Active {
            spec: config.store.clone(),
            store: store::open(&config.store)?,
        };
        Ok(())
    }

    pub fn store(&self) -> Arc<dyn OutboxStore> {
        self.active.read().store.clone()
    }

    /// A claim token no other flush, in this process or another, will use.
    fn claim_token(&self, now_ms: i64) -> i64 {
        let n = self.claims.fetch_add(1, Ordering::Relaxed);
        let seed = (u64::from(std::process::id()) << 40) ^ (now_ms as u64) ^ n.rotate_left(20);
        (mix(seed) >> 1) as i64
    }
}

/// SplitMix64's finalizer: spreads near seeds far apart.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A rendered message as the outbox keeps it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    kind: String,
    template_id: String,
    touser: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    order_sn: Option<String>,
    body: Map<String, Value>,
}

impl Stored {
    fn of(msg: &RenderedMessage) -> Stored {
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

    fn into_message(self, key: String) -> Result<RenderedMessage> {
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
        })
    }
}

/// The next moment a 45009 quota is back: after the coming midnight in China.
pub fn after_quota_reset(now_ms: i64, spread: u64) -> i64 {
    let local_day = (now_ms + CHINA_OFFSET_MS).div_euclid(DAY_MS);
    let midnight = (local_day + 1) * DAY_MS - CHINA_OFFSET_MS;
    midnight + (spread % MIDNIGHT_SPREAD_MS as u64) as i64
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
#[derive(Debug, Clone, Serialize)]
pub struct Flushed {
    pub id: u64,
    pub appid: String,
    pub event: String,
    /// `sent`, `duplicate`, `retry`, `dead`, `uncertain`, or `lost` (the claim
    /// ran out and another flush took the message over).
    pub status: &'static str,
    pub errcode: i64,
    pub errmsg: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Unix seconds of the next attempt, for `retry`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<i64>,
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
    pub messages: Vec<Flushed>,
}

impl FlushReport {
    fn count(&mut self, f: Flushed) {
        match f.status {
            "sent" => self.sent += 1,
            "duplicate" => self.duplicate += 1,
            "retry" => self.retry += 1,
            "dead" => self.dead += 1,
            "uncertain" => self.uncertain += 1,
            _ => self.lost += 1,
        }
        self.messages.push(f);
    }
}

fn stats_json(appid: Option<&str>, s: &Stats) -> String {
    let mut doc = serde_json::to_value(s.total).unwrap_or_default();
    doc["appid"] = json!(appid);
    doc["by_event"] = serde_json::to_value(&s.by_event).unwrap_or_default();
    doc["dead_letters"] = serde_json::to_value(&s.dead_letters).unwrap_or_default();
    doc.to_string()
}

impl Notifier {
    /// Validates and renders the message now, keeps it durably, and answers
    /// `{"id", "idempotency_key", "due_at", "duplicate"}`. No network.
    pub fn enqueue(&self, appid: &str, event: &str, payload_json: &str) -> Result<String> {
        let e = self.enqueue_message(appid, event, payload_json)?;
        Ok(json!({
            "id": e.0.id,
            "idempotency_key": e.1,
            "due_at": e.0.due_ms.div_euclid(1000),
            "duplicate": e.0.duplicate,
        })
        .to_string())
    }

    /// `enqueue`, with what the store did and the message's idempotency key.
    pub fn enqueue_message(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> Result<(Enqueued, String)> {
        let mut msg = self.render_message(appid, event, payload_json)?;
        let now = self.clock.now_ms();
        if msg.idempotency_key.is_empty() {
            // A message without a key of its own still goes out once: the
            // outbox names it, and send's idempotency guards every attempt.
            let token = self.outbox.claim_token(now);
            msg.idempotency_key = format!("outbox:{appid}:{event}:{now}:{token:x}");
        }
        let message = serde_json::to_string(&Stored::of(&msg))
            .map_err(|e| Error::internal(format!("enqueue: the message did not serialize: {e}")))?;
        let new = NewMessage {
            appid: appid.to_string(),
            event: event.to_string(),
            touser: msg.touser.clone(),
            idempotency_key: msg.idempotency_key.clone(),
            message,
            due_ms: now,
        };
        // Read the store and set the flag under one lock, so a concurrent
        // `configure` either happens before this enqueue or is refused.
        let active = self.outbox.active.read();
        self.outbox.enqueued_any.store(true, Ordering::SeqCst);
        let store = active.store.clone();
        drop(active);
        let done = store.enqueue(&new, now)?;
        Ok((done, msg.idempotency_key))
    }

    /// Sends at most `max_messages` due messages of `appid` (or of every app
    /// registered in this process), applying the send policy, and answers a
    /// `FlushReport` as JSON.
    pub fn flush(&self, appid: Option<&str>, max_messages: u32) -> Result<String> {
        let report = self.flush_report(appid, max_messages)?;
        serde_json::to_string(&report)
            .map_err(|e| Error::internal(format!("flush: the report did not serialize: {e}")))
    }

    pub fn flush_report(&self, appid: Option<&str>, max_messages: u32) -> Result<FlushReport> {
        if max_messages == 0 {
            return Err(Error::invalid("flush: max_messages must be at least 1"));
        }
        let apps: Vec<String> = match appid {
            Some(a) => {
                self.apps.get(a)?;
                vec![a.to_string()]
            }
            None => self.apps.all().iter().map(|a| a.appid.clone()).collect(),
        };
        let store = self.outbox.store();
        let settings = self.config().outbox;
        let lease_ms = settings.lease_secs as i64 * 1000;
        let mut report = FlushReport::default();
        let mut seen = std::collections::HashSet::new();
        store.forget_sent(self.clock.now_ms() - SENT_KEPT_MS)?;
        while report.messages.len() < max_messages as usize {
            let now = self.clock.now_ms();
            let token = self.outbox.claim_token(now);
            let claim = store.claim(Some(&apps), now, lease_ms, token)?;
            for gone in &claim.abandoned {
                self.settle_abandoned(&gone.idempotency_key);
            }
            let Some(claimed) = claim.message else {
                break;
            };
            if !seen.insert(claimed.id) {
                // Came back at once (released): leave it to the next flush.
                store.settle(claimed.id, claimed.token, &Settlement::Release, now)?;
                break;
            }
            match self.flush_one(&*store, &claimed, &settings) {
                Ok(flushed) => report.count(flushed),
                Err(e) => {
                    let _ = store.settle(
                        claimed.id,
                        claimed.token,
                        &Settlement::Release,
                        self.clock.now_ms(),
                    );
                    return Err(e);
                }
            }
        }
        // The depth gauges are refreshed at each metrics scrape; a flush only
        // says what it left, through the index it claims by.
        report.due_left = store.count_due(Some(&apps), self.clock.now_ms())?;
        Ok(report)
    }

    /// A message whose request may have gone out before its flusher vanished:
    /// its idempotency key is settled as uncertain, so no direct send repeats it.
    fn settle_abandoned(&self, key: &str) {
        let outcome = json!({"status": "uncertain", "errcode": -1, "errmsg": memory::ABANDONED});
        let _ = self.ledger.idempotency_complete(key, &outcome.to_string());
    }

    fn flush_one(
        &self,
        store: &dyn OutboxStore,
        c: &Claimed,
        settings: &OutboxSettings,
    ) -> Result<Flushed> {
        let started = Instant::now();
        // One write of this send's figures to a shared store, as `send` does.
        let _figures = self.metrics.batch();
        let stored: Stored = serde_json::from_str(&c.message)
            .map_err(|e| Error::store(format!("outbox message {} is not readable: {e}", c.id)))?;
        let msg = stored.into_message(c.idempotency_key.clone())?;
        let posted = Cell::new(false);
        let lost = Cell::new(false);
        let app = self.apps.get(&c.appid);
        // The token first, outside the "request on its way" mark: a flusher
        // that dies while fetching it has sent nothing.
        let report = match app.map(|app| {
            let token = self.token_of(&app);
            (app, token)
        }) {
            Ok((app, Ok(_))) => self.send_rendered(&app, &c.event, &msg, started, &|| match store
                .mark_posting(c.id, c.token)
            {
                Ok(()) => {
                    posted.set(true);
                    Ok(())
                }
                Err(e) => {
                    lost.set(true);
                    Err(e)
                }
            }),
            Ok((_, Err(e))) | Err(e) => SendReport {
                result: Err(e),
                outcome: None,
            },
        };
        let now = self.clock.now_ms();
        let outcome = report.outcome.as_ref();
        let errcode = outcome.map_or(0, |o| o.errcode);
        let errmsg = match &report.result {
            Ok(()) => outcome.map(|o| o.errmsg.clone()).unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let spread = mix(c.id ^ (now as u64) ^ u64::from(c.attempts).rotate_left(32));
        let retry_ms = settings.retry_secs as i64 * 1000;
        let mut status = "retry";
        let mut due_at = None;
        let failed = c.attempts + 1;
        let settlement = match (outcome.map(|o| o.status), &report.result) {
            _ if lost.get() => {
                status = "lost";
                None
            }
            (Some("sent") | Some("duplicate"), _) => {
                status = outcome.map_or("sent", |o| o.status);
                Some(Settlement::Sent)
            }
            (_, Ok(())) => {
                status = "sent";
                Some(Settlement::Sent)
            }
            (_, Err(Error::Uncertain(_))) if posted.get() => {
                status = "uncertain";
                Some(Settlement::Uncertain {
                    errcode,
                    errmsg: errmsg.clone(),
                })
            }
            // Not this message's failure: another send holds its key, the
            // daily quota is spent, the app is not registered here just now.
            (
                _,
                Err(
                    e @ (Error::Uncertain(_)
                    | Error::AppNotConfigured(_)
                    | Error::WeChat { errcode: 45009, .. }),
                ),
            ) => {
                let due = if e.errcode() == Some(45009) {
                    after_quota_reset(now, spread)
                } else {
                    now + backoff_ms(retry_ms, 1, spread)
                };
                due_at = Some(due);
                Some(Settlement::Retry {
                    due_ms: due,
                    count: false,
                    errcode: e.errcode().unwrap_or(errcode),
                    errmsg: errmsg.clone(),
                })
            }
            (_, Err(e)) if retryable(e) && failed < settings.max_attempts => {
                let due = now + backoff_ms(retry_ms, failed, spread);
                due_at = Some(due);
                Some(Settlement::Retry {
                    due_ms: due,
                    count: true,
                    errcode: e.errcode().unwrap_or(errcode),
                    errmsg: errmsg.clone(),
                })
            }
            (_, Err(Error::Store(_))) => return Err(report.result.unwrap_err()),
            (_, Err(e)) => {
                status = "dead";
                let errmsg = if retryable(e) {
                    format!("gave up after {failed} attempts: {errmsg}")
                } else {
                    errmsg.clone()
                };
                Some(Settlement::Dead {
                    errcode: e.errcode().unwrap_or(errcode),
                    errmsg,
                })
            }
        };
        let mut attempts = c.attempts;
        if let Some(how) = &settlement {
            if !store.settle(c.id, c.token, how, now)? {
                status = "lost";
            }
            attempts += u32::from(matches!(
                how,
                Settlement::Retry { count: true, .. }
                    | Settlement::Dead { .. }
                    | Settlement::Uncertain { .. }
            ));
        }
        Ok(Flushed {
            id: c.id,
            appid: c.appid.clone(),
            event: c.event.clone(),
            status,
            errcode: match &report.result {
                Err(e) => e.errcode().unwrap_or(errcode),
                Ok(()) => errcode,
            },
            errmsg,
            attempts,
            due_at: due_at.map(|d| d.div_euclid(1000)),
        })
    }

    /// `{"appid", "pending", "due", "in_flight", "dead", "uncertain", "sent",
    /// "by_event": {event: counts}, "dead_letters": [...]}`.
    pub fn outbox_stats(&self, appid: Option<&str>) -> Result<String> {
        if let Some(a) = appid {
            self.apps.get(a)?;
        }
        let store = self.outbox.store();
        let now = self.clock.now_ms();
        let stats = store.stats(appid, now, DEAD_LETTERS_LISTED)?;
        if appid.is_none() {
            self.set_outbox_depth(&stats.total);
        }
        Ok(stats_json(appid, &stats))
    }

    /// A dead message goes back to the queue, due now, with its attempts reset.
    pub fn outbox_requeue(&self, appid: &str, id: u64) -> Result<()> {
        self.apps.get(appid)?;
        if id == 0 {
            return Err(Error::invalid(
                "outbox_requeue: id must be a message id (1 or more)",
            ));
        }
        self.outbox.store().requeue(appid, id, self.clock.now_ms())
    }

    /// Removes a dead, uncertain, or not yet claimed message.
    pub fn outbox_drop(&self, appid: &str, id: u64) -> Result<()> {
        self.apps.get(appid)?;
        if id == 0 {
            return Err(Error::invalid(
                "outbox_drop: id must be a message id (1 or more)",
            ));
        }
        self.outbox.store().remove(appid, id, self.clock.now_ms())
    }

    /// Outbox depth gauges from the whole store (run before every metrics scrape).
    pub fn refresh_outbox_depth(&self) -> Result<()> {
        let store = self.outbox.store();
        if !store.available() {
            return Ok(());
        }
        let stats = store.stats(None, self.clock.now_ms(), 0)?;
        self.set_outbox_depth(&stats.total);
        Ok(())
    }

    fn set_outbox_depth(&self, c: &Counts) {
        let m = &self.metrics;
        m.set_outbox_depth("pending", c.pending);
        m.set_outbox_depth("due", c.due);
        m.set_outbox_depth("dead", c.dead);
        m.set_outbox_depth("uncertain", c.uncertain);
        m.set_outbox_depth("sent", c.sent);
    }

    /// The outbox, for tests and tools that look at its store.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}

/// Failures worth another attempt later: WeChat busy or rate-limited, the
/// network down before the request left, no permit yet (one may be added).
fn retryable(e: &Error) -> bool {
    match e {
        Error::WeChat { errcode, .. } => matches!(errcode, -1 | 45011 | 43108),
        Error::Network(_) | Error::NoPermit(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn settings_are_checked_and_merge() {
        let p: OutboxPatch = serde_json::from_str(r#"{"max_attempts":3}"#).unwrap();
        p.check().unwrap();
        let s = p.apply_to(&OutboxSettings::default());
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.lease_secs, 120);
        let p: OutboxPatch = serde_json::from_str(r#"{"max_attempts":0}"#).unwrap();
        assert!(p
            .check()
            .unwrap_err()
            .to_string()
            .contains("outbox.max_attempts"));
        assert!(serde_json::from_str::<OutboxPatch>(r#"{"attempts":3}"#).is_err());
    }

    fn message(key: &str) -> NewMessage {
        NewMessage {
            appid: "wxa".into(),
            event: "order_pay_success".into(),
            touser: "o1".into(),
            idempotency_key: key.into(),
            message: "{}".into(),
            due_ms: 1_000,
        }
    }

    /// A claim whose lease ran out may be taken over; the old holder can then
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

    #[test]
    fn lost_claims_on_every_store() {
        lost_claims_cannot_post_or_settle(&memory::MemoryOutbox::default());
        let dir = std::env::temp_dir().join(format!("outbox-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("o.db");
        let store = sqlite::SqliteOutbox::open(path.to_str().unwrap()).unwrap();
        lost_claims_cannot_post_or_settle(&store);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn lost_claims_on_redis() {
        let server = super::redis_server::RedisServer::start();
        let store = super::redis::RedisOutbox::open(&server.spec("unit")).unwrap();
        lost_claims_cannot_post_or_settle(&store);
    }

    #[test]
    fn claim_tokens_differ() {
        let o = Outbox::default();
        let a: std::collections::HashSet<i64> = (0..1000).map(|_| o.claim_token(5)).collect();
        assert_eq!(a.len(), 1000);
        assert!(a.iter().all(|t| *t >= 0));
    }
}
