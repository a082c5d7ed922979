//! The send machine: what one send does next, as a pure state machine with no
//! clock, store or HTTP inside. The notifier's send and flush are loops that
//! carry out its actions and feed back what happened (the shape of ureq's
//! `run.rs` driving ureq-proto's call states); every WeChat errcode's meaning
//! comes from the one table in `wechat::errcodes`. `flush` then says how an
//! outbox message settles once its send ended.

use std::collections::VecDeque;

use crate::wechat::errcodes::{policy_for, Policy};

pub mod card;
pub mod flush;

/// How many dead form_ids / prepay_ids one send skips before it gives up: a
/// user with a long list of stale ones must not keep a PHP request busy.
pub(crate) const MAX_PERMITS_PER_SEND: usize = 8;

/// The longest single pause between two posts of one send, whatever the doubling says.
pub(crate) const MAX_BACKOFF_MS: u64 = 2_000;

/// The first pause after a request that did not leave (doubling each time).
const NOT_SENT_BACKOFF_MS: u64 = 200;

/// Where a send comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `send`: the token is had as part of each post.
    Direct,
    /// The outbox's flush: the token first (a flusher that dies while
    /// fetching it has sent nothing), and the message marked as on its way
    /// before each post, which the claim must still allow.
    Flush,
}

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    FetchToken,
    /// Take one use of the user's best permit (the first take also claims the
    /// idempotency key where the send has one).
    TakePermit,
    /// Record in the outbox that the request may be on its way.
    MarkPosting,
    Post,
    /// Pause, then post again with the same permit.
    Wait {
        ms: u64,
    },
    /// The held use is given back: the message was not delivered.
    GiveBack,
    /// The held form_id / prepay_id is dead: remove it, then take the next one.
    Discard,
    /// The held use is spent (delivered, refused for good, or maybe delivered).
    Consume,
    /// The send is over; nothing follows.
    Complete(End),
}

/// What happened when the driver carried out an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    TokenReady,
    TokenFailed,
    PermitLeased,
    NoPermitLeft,
    /// The store failed taking a permit or claiming the key.
    PermitFailed,
    /// The idempotency key's claim failed before any permit was taken.
    KeyFailed,
    /// An earlier send with this idempotency key finished.
    KeyDone,
    /// Another send with this idempotency key is under way.
    KeyBusy,
    Marked,
    /// The outbox claim ran out and another flush holds the message.
    ClaimLost,
    /// WeChat answered (after at most one token renewal: `requests` is 1 or 2).
    Answered {
        errcode: i64,
        requests: u32,
    },
    /// The request did not leave, or WeChat's front end said it is busy
    /// (HTTP 502/503): safe to post again.
    NotSent,
    /// WeChat's front end refused the request itself (HTTP 4xx): not
    /// delivered, and posting it again the same way cannot help.
    Rejected,
    /// No token could be had for the post: nothing was sent.
    NoToken,
    /// The request may have reached WeChat and no answer came.
    MayHaveLeft,
    Waited,
    Discarded,
    DiscardFailed,
}

/// How a send ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// WeChat took the message.
    Sent,
    /// The user has no subscription left (the use was spent).
    Refused,
    /// The user has no (more) usable permit.
    NoPermit,
    /// The first `MAX_PERMITS_PER_SEND` permits were all dead.
    PermitsExhausted,
    /// WeChat answered with an errcode that fails the send; `next_minute`
    /// when its per-minute quota is spent.
    WeChat { next_minute: bool },
    /// The request may have reached WeChat: never posted again.
    Uncertain,
    /// The request could not be delivered (not sent, refused by WeChat's
    /// front end, no token): the use was given back.
    Unsent,
    /// The store failed, or the outbox claim was lost, after a permit was taken.
    Failed,
    /// Nothing was taken: the token (flush) or the idempotency claim failed.
    Unstarted,
    /// An earlier send with the key finished.
    Duplicate,
    /// Another send with the key is under way.
    Busy,
}

/// Where the held permit use stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Permit {
    None,
    Held,
    /// Settled (consumed, given back or discarded): nothing more to do with it.
    Settled,
}

/// One send's state.
#[derive(Debug)]
pub struct SendMachine {
    route: Route,
    /// The permits are form_ids / prepay_ids, discarded when WeChat calls
    /// them dead. A subscribe grant is a count of uses: those codes say
    /// nothing about it, and discarding it would drop every use the user
    /// accumulated (and the leases other processes hold on it).
    discardable: bool,
    max_retries: u32,
    permits_taken: usize,
    retries: u32,
    attempts: u32,
    permit: Permit,
    marked: bool,
    claim_lost: bool,
    may_have_left: bool,
    next: VecDeque<Action>,
    ended: Option<End>,
}

impl SendMachine {
    /// A send of `route`; `discardable` for form_id / prepay_id permits;
    /// `max_retries` posts again after a transient failure, per permit.
    pub fn new(route: Route, discardable: bool, max_retries: u32) -> SendMachine {
        let first = match route {
            Route::Direct => Action::TakePermit,
            Route::Flush => Action::FetchToken,
        };
        SendMachine {
            route,
            discardable,
            max_retries,
            permits_taken: 0,
            retries: 0,
            attempts: 0,
            permit: Permit::None,
            marked: false,
            claim_lost: false,
            may_have_left: false,
            next: VecDeque::from([first]),
            ended: None,
        }
    }

    /// The next action, or `None` once the send completed (or while it
    /// waits for the event of the last action).
    pub fn poll(&mut self) -> Option<Action> {
        let action = self.next.pop_front()?;
        if let Action::Complete(end) = action {
            self.ended = Some(end);
        }
        Some(action)
    }

    /// HTTP requests made to WeChat so far (token renewals included).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The message was marked as on its way at least once (flush).
    pub fn marked(&self) -> bool {
        self.marked
    }

    /// The outbox claim ran out under this send (flush).
    pub fn claim_lost(&self) -> bool {
        self.claim_lost
    }

    /// What the driver saw when it carried out the last action.
    pub fn on(&mut self, event: Event) {
        match event {
            Event::TokenReady => self.then(Action::TakePermit),
            Event::TokenFailed | Event::KeyFailed => self.end(End::Unstarted),
            Event::KeyDone => self.end(End::Duplicate),
            Event::KeyBusy => self.end(End::Busy),
            Event::PermitLeased => {
                self.permit = Permit::Held;
                self.permits_taken += 1;
                self.retries = 0;
                self.post();
            }
            Event::NoPermitLeft => self.end(End::NoPermit),
            Event::PermitFailed => self.end(End::Failed),
            Event::Marked => {
                self.marked = true;
                self.then(Action::Post);
            }
            Event::ClaimLost => {
                self.claim_lost = true;
                self.settle(Action::GiveBack, End::Failed);
            }
            Event::Answered { errcode, requests } => {
                self.attempts += requests;
                self.answered(errcode);
            }
            Event::NotSent => {
                self.attempts += 1;
                self.retry_or(NOT_SENT_BACKOFF_MS, End::Unsent);
            }
            Event::Rejected => {
                self.attempts += 1;
                self.settle(Action::GiveBack, End::Unsent);
            }
            Event::NoToken => self.settle(Action::GiveBack, End::Unsent),
            Event::MayHaveLeft => {
                self.attempts += 1;
                self.may_have_left = true;
                self.settle(Action::Consume, End::Uncertain);
            }
            Event::Waited => self.post(),
            Event::Discarded if self.permits_taken < MAX_PERMITS_PER_SEND => {
                self.then(Action::TakePermit)
            }
            Event::Discarded => self.end(End::PermitsExhausted),
            Event::DiscardFailed => self.end(End::Failed),
        }
    }

    /// WeChat's answer, by the errcode table.
    fn answered(&mut self, errcode: i64) {
        match policy_for(errcode) {
            Policy::Sent => self.settle(Action::Consume, End::Sent),
            Policy::Refused => self.settle(Action::Consume, End::Refused),
            Policy::Retry { backoff_ms } => {
                self.retry_or(backoff_ms, End::WeChat { next_minute: false })
            }
            Policy::NextPermit if self.discardable => {
                self.permit = Permit::Settled;
                self.then(Action::Discard);
            }
            Policy::NextMinute => self.settle(Action::GiveBack, End::WeChat { next_minute: true }),
            Policy::NextPermit | Policy::Fail => {
                self.settle(Action::GiveBack, End::WeChat { next_minute: false })
            }
        }
    }

    /// Another post after a pause, while the retries last; else the permit
    /// goes back and the send ends with `end`.
    fn retry_or(&mut self, backoff_ms: u64, end: End) {
        if self.retries < self.max_retries {
            let ms = (backoff_ms << self.retries).min(MAX_BACKOFF_MS);
            self.retries += 1;
            self.then(Action::Wait { ms });
        } else {
            self.settle(Action::GiveBack, end);
        }
    }

    fn post(&mut self) {
        // Once a request may have reached WeChat, posting again could
        // deliver it twice: that path ends the send, so this never follows it.
        debug_assert!(!self.may_have_left);
        match self.route {
            Route::Direct => self.then(Action::Post),
            Route::Flush => self.then(Action::MarkPosting),
        }
    }

    /// Settles the held use with `how`, then ends the send.
    fn settle(&mut self, how: Action, end: End) {
        if self.permit == Permit::Held {
            self.permit = Permit::Settled;
            self.then(how);
        }
        self.end(end);
    }

    fn end(&mut self, end: End) {
        self.then(Action::Complete(end));
    }

    fn then(&mut self, action: Action) {
        if self.ended.is_none() {
            self.next.push_back(action);
        }
    }
}

#[cfg(test)]
mod props;
