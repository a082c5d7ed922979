//! Where each order's service card stands: the statuses applied so far, in
//! order, the one update under way (a lease, so that a worker that dies
//! mid-update frees the card), and whether the buyer refused the code. One
//! atomic claim per update keeps updates of one order in order and each
//! status applied once, across processes and hosts (SQLite, Redis).

use serde::Serialize;

use crate::error::Result;

/// One order's card, keyed by app and notify_code (the transaction id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardRecord {
    pub notify_type: u32,
    /// The statuses WeChat accepted, oldest first.
    pub statuses: Vec<u32>,
    /// The status being sent now, while its lease lasts.
    pub pending: Option<u32>,
    /// The buyer refused this code (code_state 10): no more updates.
    pub stopped: bool,
    /// Statuses waiting in the outbox, in the order they came: a later
    /// update goes out only after them.
    pub queued: Vec<u32>,
}

impl CardRecord {
    pub fn last(&self) -> Option<u32> {
        self.statuses.last().copied()
    }
}

/// What claiming an update found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardClaim {
    /// This update may go out; `prev` is the card's last applied status.
    Fresh { prev: Option<u32> },
    /// The status was applied before: nothing to do.
    Done,
    /// Another update of this card is under way.
    Busy,
    /// Updates that came earlier wait in the outbox: this one goes after them.
    Behind,
    /// The buyer refused the code.
    Stopped,
}

/// The card records of one store.
pub trait CardStore: Send + Sync + std::fmt::Debug {
    /// Claims the update of the card of (`appid`, `code`) to `status` for
    /// `lease_ms` (see `CardClaim`).
    fn card_claim(
        &self,
        appid: &str,
        code: &str,
        notify_type: u32,
        status: u32,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<CardClaim>;

    /// Ends the claim of `status`; `applied` when WeChat took it (it leaves
    /// the queue too).
    fn card_settle(&self, appid: &str, code: &str, status: u32, applied: bool) -> Result<()>;

    /// Puts `status` at the end of the card's queue (`add`, once), or takes
    /// it out (an update the outbox gave up on).
    fn card_queue(&self, appid: &str, code: &str, status: u32, add: bool) -> Result<()>;

    /// The buyer refused the code: later claims answer `Stopped`.
    fn card_stop(&self, appid: &str, code: &str) -> Result<()>;

    fn card_get(&self, appid: &str, code: &str, now_ms: i64) -> Result<Option<CardRecord>>;
}

/// The claim rule every backend applies to the record it read.
pub(crate) fn claim_rule(
    rec: &CardRecord,
    pending_until: i64,
    status: u32,
    now_ms: i64,
) -> CardClaim {
    if rec.stopped {
        CardClaim::Stopped
    } else if rec.statuses.contains(&status) {
        CardClaim::Done
    } else if rec.pending.is_some() && pending_until > now_ms {
        CardClaim::Busy
    } else if rec.queued.first().is_some_and(|head| *head != status) {
        CardClaim::Behind
    } else {
        CardClaim::Fresh { prev: rec.last() }
    }
}

/// What settling and queueing do to a record, for every backend.
pub(crate) fn settle_rule(rec: &mut CardRecord, status: u32, applied: bool) {
    if rec.pending == Some(status) {
        rec.pending = None;
    }
    if applied {
        if !rec.statuses.contains(&status) {
            rec.statuses.push(status);
        }
        rec.queued.retain(|s| *s != status);
    }
}

pub(crate) fn queue_rule(rec: &mut CardRecord, status: u32, add: bool) {
    if add {
        if !rec.queued.contains(&status) && !rec.statuses.contains(&status) {
            rec.queued.push(status);
        }
    } else {
        rec.queued.retain(|s| *s != status);
    }
}

/// `1,4,6` ↔ `[1, 4, 6]`, as the SQLite and Redis records keep the statuses.
pub(crate) fn statuses_text(s: &[u32]) -> String {
    let t: Vec<String> = s.iter().map(u32::to_string).collect();
    t.join(",")
}

pub(crate) fn statuses_of(text: &str) -> Vec<u32> {
    text.split(',').filter_map(|s| s.parse().ok()).collect()
}
