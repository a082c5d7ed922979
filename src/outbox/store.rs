//! Where outbox messages live: the same store the ledger's permits use
//! (memory, SQLite, Redis), each offering the same atomic operations so the
//! outbox's rules (claims, retries, dead letters) are written once.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::error::{Error, Result};

/// Where a message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waiting for its due time, or for a flush.
    Pending,
    /// Delivered (or found already delivered under its idempotency key).
    Sent,
    /// Given up: the attempt limit was reached or WeChat refused it for good.
    Dead,
    /// The request may have reached WeChat but no answer came: never resent.
    Uncertain,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Dead => "dead",
            State::Uncertain => "uncertain",
        }
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            State::Pending => 0,
            State::Sent => 1,
            State::Dead => 2,
            State::Uncertain => 3,
        }
    }

    pub(crate) fn from_code(code: i64) -> Result<State> {
        match code {
            0 => Ok(State::Pending),
            1 => Ok(State::Sent),
            2 => Ok(State::Dead),
            3 => Ok(State::Uncertain),
            other => Err(Error::store(format!(
                "unknown outbox state {other} in store"
            ))),
        }
    }
}

/// A rendered message to keep until it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub appid: String,
    pub event: String,
    pub touser: String,
    pub idempotency_key: String,
    /// The rendered message as JSON (see `outbox::Stored`).
    pub message: String,
    pub due_ms: i64,
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: u64,
    pub due_ms: i64,
    /// A message with this idempotency key was already in the outbox: it is
    /// the one returned, and nothing was added.
    pub duplicate: bool,
}

/// A message claimed by one flush: nobody else sends it until the claim is
/// settled or its claim ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub id: u64,
    pub appid: String,
    pub event: String,
    pub idempotency_key: String,
    pub message: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Proves the claim in later calls.
    pub token: i64,
    pub lease_until_ms: i64,
}

/// A message whose flusher vanished after its request may have gone out: the
/// claim made it UNCERTAIN instead of handing it out again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    pub id: u64,
    pub idempotency_key: String,
}

/// What one claim call found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claim {
    pub message: Option<Claimed>,
    pub abandoned: Vec<Abandoned>,
}

/// What one `claim_some` call found: up to its `max` messages, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    pub messages: Vec<Claimed>,
    pub abandoned: Vec<Abandoned>,
}

/// How a claimed message ends this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Sent,
    /// Try again at `due_ms`; `count` says whether this was a failed attempt
    /// (a quota wait or a busy idempotency key is not).
    Retry {
        due_ms: i64,
        count: bool,
        errcode: i64,
        errmsg: String,
    },
    Dead {
        errcode: i64,
        errmsg: String,
    },
    Uncertain {
        errcode: i64,
        errmsg: String,
    },
    /// Nothing was tried: the message is free again, as it was.
    Release,
}

/// Counts by state. `due` and `in_flight` are parts of `pending`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pending: u64,
    pub due: u64,
    pub in_flight: u64,
    pub dead: u64,
    pub uncertain: u64,
    pub sent: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, state: State, n: u64, due: u64, in_flight: u64) {
        match state {
            State::Pending => {
                self.pending += n;
                self.due += due;
                self.in_flight += in_flight;
            }
            State::Sent => self.sent += n,
            State::Dead => self.dead += n,
            State::Uncertain => self.uncertain += n,
        }
    }
}

/// A dead or uncertain message, with why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: u64,
    pub appid: String,
    pub event: String,
    pub touser: String,
    pub state: &'static str,
    pub attempts: u32,
    pub errcode: i64,
    pub errmsg: String,
    pub idempotency_key: String,
    /// Unix seconds.
    pub enqueued_at: i64,
    pub failed_at: i64,
}

/// The outbox of one app (or all), as `outbox_stats` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    pub total: Counts,
    pub by_event: BTreeMap<String, Counts>,
    /// Newest first, at most the limit asked for.
    pub dead_letters: Vec<DeadLetter>,
}

/// The outbox operations every store performs atomically. Times are unix ms
/// from the notifier's clock.
pub trait OutboxStore: Send + Sync + fmt::Debug {
    fn describe(&self) -> String;

    /// False for a store that has no outbox (its gauges are left out).
    fn available(&self) -> bool {
        true
    }

    /// Keeps a message; a message with the same idempotency key already there
    /// is returned instead.
    fn enqueue(&self, m: &NewMessage, now_ms: i64) -> Result<Enqueued>;

    /// Claims the due message of `apps` (all apps: `None`) that has waited
    /// longest, until `now_ms + lease_ms`. Messages whose claim ran out after
    /// their request may have gone out become UNCERTAIN on the way.
    fn claim(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
    ) -> Result<Claim>;

    /// `claim` up to `max` times, for a flush whose lanes share the messages:
    /// a store that can claims them in one step. Messages claimed before a
    /// failure are returned (the failure comes again at the next call).
    fn claim_some(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
        max: usize,
    ) -> Result<Claims> {
        let mut out = Claims::default();
        while out.messages.len() < max {
            let claim = match self.claim(apps, now_ms, lease_ms, token) {
                Ok(claim) => claim,
                Err(_) if !out.messages.is_empty() => break,
                Err(e) => return Err(e),
            };
            out.abandoned.extend(claim.abandoned);
            match claim.message {
                Some(m) => out.messages.push(m),
                None => break,
            }
        }
        Ok(out)
    }

    /// Records that the request is about to go out. Fails when the claim was
    /// lost (its claim ran out and another flush took the message).
    fn mark_posting(&self, id: u64, token: i64) -> Result<()>;

    /// Ends the claim; false when it had been lost.
    fn settle(&self, id: u64, token: i64, how: &Settlement, now_ms: i64) -> Result<bool>;

    /// `settle` for several claims (id, token, how), one answer each, in one
    /// step where the store can: the lanes of a flush settle together.
    fn settle_all(&self, each: &[(u64, i64, Settlement)], now_ms: i64) -> Result<Vec<bool>> {
        each.iter()
            .map(|(id, token, how)| self.settle(*id, *token, how, now_ms))
            .collect()
    }

    fn stats(&self, appid: Option<&str>, now_ms: i64, dead_limit: usize) -> Result<OutboxStats>;

    /// Due, unclaimed messages of `apps` (all apps: `None`): what a flush
    /// left for the next one.
    fn count_due(&self, apps: Option<&[String]>, now_ms: i64) -> Result<u64>;

    /// A dead message goes back to pending, due now, with its attempts reset.
    fn requeue(&self, appid: &str, id: u64, now_ms: i64) -> Result<()>;

    /// Removes a dead, uncertain or unclaimed pending message.
    fn remove(&self, appid: &str, id: u64, now_ms: i64) -> Result<()>;

    /// Forgets sent messages finished before `before_ms`.
    fn forget_sent(&self, before_ms: i64) -> Result<u64>;
}

/// Sent messages are remembered this long (so a repeated enqueue finds them),
/// as long as send's own idempotency records.
pub const SENT_KEPT_MS: i64 = crate::store::IDEMPOTENCY_KEEP_MS;

/// Why a message became UNCERTAIN without an answer.
pub const ABANDONED: &str =
    "the flush sending this message stopped (process killed?) after the request may have gone out; it is not sent again";

/// The errcode kept with an abandoned message: nothing more is known of it.
pub(crate) const ABANDONED_ERRCODE: i64 = crate::wechat::errcodes::UNANSWERED;

/// The error for a claim that ran out while its flush still held the message.
pub fn lost(id: u64) -> Error {
    Error::Uncertain(format!(
        "outbox message {id}: the claim ran out and another flush took the message over; not sending"
    ))
}

/// The error for a message id the app does not have in the wanted state.
pub(crate) fn not_found(what: &str, appid: &str, id: u64, state: Option<State>) -> Error {
    match state {
        None => Error::invalid(format!("app {appid} has no outbox message {id}")),
        Some(s) => Error::invalid(format!(
            "outbox message {id} of app {appid} is {}, {}",
            s.as_str(),
            match (what, s) {
                ("outbox_requeue", State::Uncertain) =>
                    "it may have been delivered, so it cannot be sent again (drop it, or enqueue it anew with another idempotency_key)",
                ("outbox_requeue", _) => "only dead messages can be requeued",
                _ => "only dead, uncertain or waiting messages can be dropped",
            }
        )),
    }
}
