//! The notifier's outbox calls: enqueue (render and keep, no network), flush
//! (claim due messages and send each through the send pipeline, then settle
//! it by the outcome), and the outbox's stats and administration.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use serde_json::json;

use super::send::Posting;
use super::send::{SendReport, SendStatus};
use super::Notifier;
use crate::config::OutboxSettings;
use crate::error::{Error, Result};
use crate::message::Channel;
use crate::outbox::{
    mix, stats_json, Claimed, Counts, Enqueued, FlushReport, FlushStatus, Flushed, NewMessage,
    Outbox, OutboxStore, Settlement, Stored, ABANDONED, DEAD_LETTERS_LISTED, SENT_KEPT_MS,
};
use crate::send_machine::flush::{settle, Ending, Fault, Pace, Settle};
use crate::wechat::errcodes::UNANSWERED;

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
        self.check_configured()?;
        if let Some(channel) = self.card_channel(appid, event) {
            // The card goes into the outbox as an update of its own.
            let update = self.render_card_update(appid, event, payload_json)?;
            let card = self.enqueue_card_keyed(appid, event, &update)?;
            if channel == Channel::Card {
                return Ok(card);
            }
        }
        let mut msg = self.render_message(appid, event, payload_json)?;
        let now = self.clock.now_ms();
        if msg.idempotency_key.is_empty() {
            // A message without a key of its own still goes out once: the
            // outbox names it, and send's idempotency guards every attempt.
            let token = self.outbox.claim_token(now);
            msg.idempotency_key = format!("outbox:{appid}:{event}:{now}:{token:x}");
        }
        let message = serde_json::to_string(&Stored::of(&msg))
            .map_err(|e| Error::internal(format!("the message did not serialize: {e}")))?;
        let new = NewMessage {
            appid: appid.to_string(),
            event: event.to_string(),
            touser: msg.touser.clone(),
            idempotency_key: msg.idempotency_key.clone(),
            message,
            due_ms: now,
        };
        let done = self.outbox.enqueue(&new, now)?;
        Ok((done, msg.idempotency_key))
    }

    /// Sends at most `max_messages` due messages of `appid` (or of every app
    /// registered in this process), applying the send policy, and answers a
    /// `FlushReport` as JSON.
    pub fn flush(&self, appid: Option<&str>, max_messages: u32) -> Result<String> {
        let report = self.flush_report(appid, max_messages)?;
        serde_json::to_string(&report)
            .map_err(|e| Error::internal(format!("the flush report did not serialize: {e}")))
    }

    pub fn flush_report(&self, appid: Option<&str>, max_messages: u32) -> Result<FlushReport> {
        self.check_configured()?;
        if max_messages == 0 {
            return Err(Error::invalid("max_messages must be at least 1"));
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
        store.forget_sent(self.clock.now_ms() - SENT_KEPT_MS)?;
        let max = max_messages as usize;
        let lanes = (settings.concurrency.max(1) as usize).min(max);
        let drain = Drain {
            apps: &apps,
            store: &*store,
            settings: &settings,
            max,
            started: AtomicUsize::new(0),
            seen: Mutex::new(HashSet::new()),
            done: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
            unreachable_in_a_row: AtomicU32::new(0),
            last_unreachable: Mutex::new(String::new()),
            stopped: Mutex::new(None),
            claimed: Mutex::new(VecDeque::new()),
            claiming: Mutex::new(0),
            batch: lanes,
            settling: Mutex::new(Settling::default()),
            settled: Condvar::new(),
        };
        if lanes == 1 {
            self.flush_lane(&drain);
        } else {
            // Each lane claims and sends one message at a time, so a slow
            // answer holds up only its own lane. A lane that panics leaves its
            // message claimed until the lease ends, as a crash would.
            std::thread::scope(|scope| {
                let lanes: Vec<_> = (0..lanes)
                    .map(|_| scope.spawn(|| self.flush_lane(&drain)))
                    .collect();
                for lane in lanes {
                    if lane.join().is_err() {
                        drain.fail(Error::internal("a send panicked (a bug, please report it); its message stays claimed until its lease ends"));
                    }
                }
            });
        }
        // Claimed for lanes that stopped first: free again at once.
        let left: Vec<_> = drain.claimed.lock().drain(..).collect();
        for c in left {
            let _ = store.settle(c.id, c.token, &Settlement::Release, self.clock.now_ms());
        }
        if let Some(e) = drain.failed.into_inner() {
            return Err(e);
        }
        let mut done = drain.done.into_inner();
        // In the order the messages were claimed.
        done.sort_by_key(|(order, _)| *order);
        let mut report = FlushReport::default();
        for (_, flushed) in done {
            report.count(flushed);
        }
        report.stopped = drain.stopped.into_inner();
        // The depth gauges are refreshed at each metrics scrape; a flush only
        // says what it left, through the index it claims by.
        report.due_left = store.count_due(Some(&apps), self.clock.now_ms())?;
        Ok(report)
    }

    /// One lane of a flush: claims a due message and sends it, until the
    /// flush has started `max` messages, nothing is due, or a lane failed.
    fn flush_lane(&self, d: &Drain<'_>) {
        let lease_ms = d.settings.lease_secs as i64 * 1000;
        while d.failed.lock().is_none() {
            let order = d.started.fetch_add(1, Ordering::SeqCst);
            if order >= d.max {
                return;
            }
            let now = self.clock.now_ms();
            let claimed = match self.next_claimed(d, now, lease_ms) {
                Ok(claimed) => claimed,
                Err(e) => return d.fail(e),
            };
            let Some(claimed) = claimed else {
                // Nothing due: the other lanes stop at their next claim too.
                d.started.fetch_add(d.max, Ordering::SeqCst);
                return;
            };
            if !d.seen.lock().insert(claimed.id) {
                // Came back at once (released): leave it to the next flush.
                let _ = d
                    .store
                    .settle(claimed.id, claimed.token, &Settlement::Release, now);
                d.started.fetch_add(d.max, Ordering::SeqCst);
                return;
            }
            let in_a_row = d.unreachable_in_a_row.load(Ordering::SeqCst);
            if in_a_row >= d.settings.stop_after_unreachable {
                // Each would wait the full timeout for nothing: it stays due.
                let _ = d
                    .store
                    .settle(claimed.id, claimed.token, &Settlement::Release, now);
                d.stopped.lock().get_or_insert_with(|| {
                    format!(
                        "WeChat was not reached or did not answer for {in_a_row} messages in a row \
                         (outbox.stop_after_unreachable), last: {}; the rest stay due for the next flush",
                        d.last_unreachable.lock()
                    )
                });
                d.started.fetch_add(d.max, Ordering::SeqCst);
                return;
            }
            match self.flush_one(d, &claimed) {
                Ok(flushed) => {
                    if flushed.unreachable {
                        *d.last_unreachable.lock() = flushed.errmsg.clone();
                        d.unreachable_in_a_row.fetch_add(1, Ordering::SeqCst);
                    } else {
                        d.unreachable_in_a_row.store(0, Ordering::SeqCst);
                    }
                    d.done.lock().push((order, flushed))
                }
                Err(e) => {
                    let _ = d.store.settle(
                        claimed.id,
                        claimed.token,
                        &Settlement::Release,
                        self.clock.now_ms(),
                    );
                    return d.fail(e);
                }
            }
        }
    }

    /// The next claimed message for a lane: from those the flush claimed
    /// already, else a new batch of up to one per lane claimed in one step
    /// (one lane claims while the others wait for what it finds).
    fn next_claimed(&self, d: &Drain<'_>, now: i64, lease_ms: i64) -> Result<Option<Claimed>> {
        if let Some(c) = d.claimed.lock().pop_front() {
            return Ok(Some(c));
        }
        let mut total = d.claiming.lock();
        if let Some(c) = d.claimed.lock().pop_front() {
            return Ok(Some(c));
        }
        let want = d.batch.min(d.max.saturating_sub(*total));
        if want == 0 {
            return Ok(None);
        }
        let token = self.outbox.claim_token(now);
        let some = d
            .store
            .claim_some(Some(d.apps), now, lease_ms, token, want)?;
        for gone in &some.abandoned {
            self.settle_abandoned(&gone.idempotency_key);
        }
        *total += some.messages.len();
        let mut messages = some.messages.into_iter();
        let first = messages.next();
        d.claimed.lock().extend(messages);
        Ok(first)
    }

    /// A message whose request may have gone out before its flusher vanished:
    /// its idempotency key is settled as uncertain, so no direct send repeats it.
    fn settle_abandoned(&self, key: &str) {
        let outcome = json!({"status": "uncertain", "errcode": UNANSWERED, "errmsg": ABANDONED});
        let _ = self.ledger.idempotency_complete(key, &outcome.to_string());
    }

    /// Sends one claimed message and settles it as the send machine says.
    fn flush_one(&self, d: &Drain<'_>, c: &Claimed) -> Result<Flushed> {
        let settings = d.settings;
        // One write of this send's figures to a shared store, as `send` does.
        let _figures = self.metrics.batch();
        let report = self.send_claimed(d.store, c)?;
        let now = self.clock.now_ms();
        let outcome = report.outcome.as_ref();
        let errcode = match &report.result {
            Err(e) => e.errcode().unwrap_or(outcome.map_or(0, |o| o.errcode)),
            Ok(()) => outcome.map_or(0, |o| o.errcode),
        };
        let errmsg = match &report.result {
            Ok(()) => outcome.map(|o| o.errmsg.clone()).unwrap_or_default(),
            Err(e) => e.to_string(),
        };
        let ending = match (outcome.map(|o| o.status), &report.result) {
            (Some(SendStatus::Duplicate), _) => Ending::Delivered { duplicate: true },
            (Some(SendStatus::Sent), _) | (_, Ok(())) => Ending::Delivered { duplicate: false },
            (_, Err(e)) => Ending::Failed(Fault::of(e)),
        };
        let pace = Pace {
            attempts: c.attempts,
            max_attempts: settings.max_attempts,
            retry_ms: settings.retry_secs as i64 * 1000,
            spread: mix(c.id ^ (now as u64) ^ u64::from(c.attempts).rotate_left(32)),
        };
        let decided = settle(ending, report.trail, &pace, now);
        if decided == Settle::Abort {
            return Err(report.result.err().unwrap_or_else(|| {
                Error::internal("the flush stopped without a reason (a bug, please report it)")
            }));
        }
        let (mut status, settlement) = settlement_of(decided, errcode, &errmsg, c.attempts + 1);
        let mut attempts = c.attempts;
        if let Some(how) = &settlement {
            if !d.settle(c.id, c.token, how.clone(), now)? {
                status = FlushStatus::Lost;
            }
            attempts += u32::from(matches!(
                how,
                Settlement::Retry { count: true, .. }
                    | Settlement::Dead { .. }
                    | Settlement::Uncertain { .. }
            ));
        }
        self.count_flushed(&c.appid, &c.event, status, errcode, &report);
        let due_at = match decided {
            Settle::RescheduleAt { due_ms, .. } => Some(due_ms.div_euclid(1000)),
            _ => None,
        };
        Ok(Flushed {
            id: c.id,
            appid: c.appid.clone(),
            event: c.event.clone(),
            status,
            errcode,
            errmsg,
            attempts,
            due_at,
            unreachable: matches!(report.result, Err(Error::Network(_)))
                || (report.trail.marked && matches!(report.result, Err(Error::Uncertain(_)))),
        })
    }

    /// The send of a claimed message, through the send machine's flush route.
    fn send_claimed(&self, store: &dyn OutboxStore, c: &Claimed) -> Result<SendReport> {
        let started = Instant::now();
        let stored: Stored = serde_json::from_str(&c.message)
            .map_err(|e| Error::store(format!("outbox message {} is not readable: {e}", c.id)))?;
        let app = match self.apps.get(&c.appid) {
            Ok(app) => app,
            Err(e) => return Ok(SendReport::failed(e)),
        };
        if let Some(update) = stored.card_update() {
            // The attempt the outbox dead-letters after, when it fails again.
            let last = c.attempts + 1 >= self.config().outbox.max_attempts;
            return Ok(self.flush_card(&app, &c.event, update, started, last));
        }
        let msg = stored.into_message(c.idempotency_key.clone())?;
        let posting = Posting {
            store,
            id: c.id,
            token: c.token,
        };
        Ok(self.send_rendered(&app, &c.event, &msg, started, &posting))
    }

    /// `{"appid", "pending", "due", "in_flight", "dead", "uncertain", "sent",
    /// "by_event": {event: counts}, "dead_letters": [...]}`.
    pub fn outbox_stats(&self, appid: Option<&str>) -> Result<String> {
        self.check_configured()?;
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
        self.check_configured()?;
        self.apps.get(appid)?;
        if id == 0 {
            return Err(Error::invalid("id must be a message id (1 or more)"));
        }
        self.outbox.store().requeue(appid, id, self.clock.now_ms())
    }

    /// Removes a dead, uncertain, or not yet claimed message.
    pub fn outbox_drop(&self, appid: &str, id: u64) -> Result<()> {
        self.check_configured()?;
        self.apps.get(appid)?;
        if id == 0 {
            return Err(Error::invalid("id must be a message id (1 or more)"));
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

/// What the lanes of one flush share.
struct Drain<'a> {
    apps: &'a [String],
    store: &'a dyn OutboxStore,
    settings: &'a OutboxSettings,
    max: usize,
    /// Claims started (the claim order of each message); pushed past `max`
    /// when nothing is left, which stops every lane.
    started: AtomicUsize,
    seen: Mutex<HashSet<u64>>,
    done: Mutex<Vec<(usize, Flushed)>>,
    /// The first store failure: the flush reports it and stops.
    failed: Mutex<Option<Error>>,
    /// Messages in a row (as their answers came, over all lanes) whose request
    /// did not reach WeChat or got no answer; at `stop_after_unreachable` the
    /// lanes stop claiming.
    unreachable_in_a_row: AtomicU32,
    last_unreachable: Mutex<String>,
    stopped: Mutex<Option<String>>,
    /// Messages claimed and not yet started by a lane.
    claimed: Mutex<VecDeque<Claimed>>,
    /// How many this flush claimed; held by the lane claiming the next batch.
    claiming: Mutex<usize>,
    /// Messages claimed per batch at most (one per lane).
    batch: usize,
    settling: Mutex<Settling>,
    /// A batch of settlements was written.
    settled: Condvar,
}

/// Settlements the lanes wait on: each lane's ends in the next batch written,
/// by one lane for all that came in meanwhile (one transaction, not one each).
#[derive(Default)]
struct Settling {
    waiting: Vec<(u64, i64, Settlement)>,
    writing: bool,
    /// Each settled message's answer, by id, until its lane picks it up.
    answers: HashMap<u64, Result<bool>>,
}

impl Drain<'_> {
    fn fail(&self, e: Error) {
        self.failed.lock().get_or_insert(e);
    }

    /// Settles one claim, durably before it returns, in a batch with the
    /// settlements of other lanes that came meanwhile.
    fn settle(&self, id: u64, token: i64, how: Settlement, now: i64) -> Result<bool> {
        let mut s = self.settling.lock();
        s.waiting.push((id, token, how));
        loop {
            if let Some(answer) = s.answers.remove(&id) {
                return answer;
            }
            if s.writing {
                self.settled.wait(&mut s);
                continue;
            }
            s.writing = true;
            let batch = std::mem::take(&mut s.waiting);
            // A panic must not leave `writing` set: the other lanes would wait forever.
            let done = MutexGuard::unlocked(&mut s, || {
                std::panic::catch_unwind(AssertUnwindSafe(|| self.store.settle_all(&batch, now)))
                    .unwrap_or_else(|_| {
                        Err(Error::internal(
                            "settling a batch panicked (a bug, please report it); its messages stay claimed until their lease ends",
                        ))
                    })
            });
            s.writing = false;
            for (i, (settled, _, _)) in batch.iter().enumerate() {
                let answer = match &done {
                    Ok(each) => Ok(each.get(i).copied().unwrap_or(false)),
                    Err(e) => Err(e.clone()),
                };
                s.answers.insert(*settled, answer);
            }
            self.settled.notify_all();
        }
    }
}

/// The flush status and the store's settlement for what the machine decided.
fn settlement_of(
    decided: Settle,
    errcode: i64,
    errmsg: &str,
    failed: u32,
) -> (FlushStatus, Option<Settlement>) {
    let errmsg = errmsg.to_string();
    match decided {
        Settle::Lost | Settle::Abort => (FlushStatus::Lost, None),
        Settle::Sent { duplicate: true } => (FlushStatus::Duplicate, Some(Settlement::Sent)),
        Settle::Sent { duplicate: false } => (FlushStatus::Sent, Some(Settlement::Sent)),
        Settle::MarkUncertain => (
            FlushStatus::Uncertain,
            Some(Settlement::Uncertain { errcode, errmsg }),
        ),
        Settle::RescheduleAt { due_ms, counted } => (
            FlushStatus::Retry,
            Some(Settlement::Retry {
                due_ms,
                count: counted,
                errcode,
                errmsg,
            }),
        ),
        Settle::DeadLetter { gave_up } => {
            let errmsg = if gave_up {
                format!("gave up after {failed} attempts: {errmsg}")
            } else {
                errmsg
            };
            (
                FlushStatus::Dead,
                Some(Settlement::Dead { errcode, errmsg }),
            )
        }
    }
}
