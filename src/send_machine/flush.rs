//! How an outbox message settles once its send ended: sent, due again (with
//! or without counting an attempt), dead, or uncertain. Pure: the flush
//! gives the facts and the clock's reading, and carries out the answer.

use crate::error::Error;
use crate::outbox::{after_minute_quota, after_quota_reset, backoff_ms};
use crate::wechat::errcodes::{meaning, Quota};

/// Why a send did not deliver, as far as the outbox cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request may have reached WeChat, or another send holds the key.
    Uncertain,
    /// The app is not registered here just now.
    AppMissing,
    /// WeChat answered with this errcode (the send or the token fetch).
    WeChat(i64),
    /// WeChat was not reached.
    NotReached,
    /// No permit yet: one may be added.
    NoPermit,
    /// The store failed: the flush stops.
    Store,
    /// Anything else: retrying cannot help.
    Other,
}

impl Fault {
    pub fn of(e: &Error) -> Fault {
        match e {
            Error::Uncertain(_) => Fault::Uncertain,
            Error::AppNotConfigured(_) => Fault::AppMissing,
            Error::WeChat { errcode, .. } => Fault::WeChat(*errcode),
            Error::Network(_) => Fault::NotReached,
            Error::NoPermit(_) => Fault::NoPermit,
            Error::Store(_) => Fault::Store,
            _ => Fault::Other,
        }
    }

    /// Worth another (counted) attempt later: WeChat busy or rate-limited,
    /// the network down before the request left, no permit yet.
    pub fn retryable(self) -> bool {
        match self {
            Fault::WeChat(errcode) => meaning(errcode).retry_later,
            Fault::NotReached | Fault::NoPermit => true,
            _ => false,
        }
    }
}

/// How the send of a flushed message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Sent now, or earlier under the same idempotency key.
    Delivered {
        duplicate: bool,
    },
    Failed(Fault),
}

/// What the send machine saw of the message's way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trail {
    /// The message was marked as on its way (a request may have left).
    pub marked: bool,
    /// The claim ran out and another flush holds the message.
    pub claim_lost: bool,
}

/// The message's attempts so far and the outbox settings that pace it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Failed attempts before this one.
    pub attempts: u32,
    pub max_attempts: u32,
    pub retry_ms: i64,
    /// Spreads messages that fail together (from the message and the time).
    pub spread: u64,
}

/// What the flush does with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Another flush holds it: leave it alone.
    Lost,
    Sent {
        duplicate: bool,
    },
    /// May have been delivered: never sent again.
    MarkUncertain,
    /// Due again at `due_ms`; `counted` when this was a failed attempt.
    RescheduleAt {
        due_ms: i64,
        counted: bool,
    },
    /// Given up; `gave_up` when only the attempt limit stopped it.
    DeadLetter {
        gave_up: bool,
    },
    /// The store failed: release the message and stop the flush.
    Abort,
}

/// How the message settles at `now_ms`.
pub fn settle(ending: Ending, trail: Trail, pace: &Pace, now_ms: i64) -> Settle {
    if trail.claim_lost {
        return Settle::Lost;
    }
    let fault = match ending {
        Ending::Delivered { duplicate } => return Settle::Sent { duplicate },
        Ending::Failed(fault) => fault,
    };
    let quota = match fault {
        Fault::WeChat(errcode) => meaning(errcode).quota,
        _ => None,
    };
    // Not this message's failure: another send holds its key, a quota is
    // spent, the app is not registered here just now.
    let waits = match fault {
        Fault::Uncertain | Fault::AppMissing => true,
        Fault::WeChat(_) => quota.is_some(),
        _ => false,
    };
    match fault {
        Fault::Uncertain if trail.marked => Settle::MarkUncertain,
        _ if waits => {
            let due_ms = match quota {
                Some(Quota::Day) => after_quota_reset(now_ms, pace.spread),
                Some(Quota::Minute) => after_minute_quota(now_ms, pace.spread),
                None => now_ms + backoff_ms(pace.retry_ms, 1, pace.spread),
            };
            Settle::RescheduleAt {
                due_ms,
                counted: false,
            }
        }
        _ if fault.retryable() && pace.attempts + 1 < pace.max_attempts => Settle::RescheduleAt {
            due_ms: now_ms + backoff_ms(pace.retry_ms, pace.attempts + 1, pace.spread),
            counted: true,
        },
        Fault::Store => Settle::Abort,
        _ => Settle::DeadLetter {
            gave_up: fault.retryable(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: Pace = Pace {
        attempts: 0,
        max_attempts: 3,
        retry_ms: 30_000,
        spread: 7,
    };

    #[test]
    fn a_spent_quota_waits_without_counting() {
        let now = 1_795_449_599_000 - 30_500;
        let minute = settle(
            Ending::Failed(Fault::WeChat(45011)),
            Trail::default(),
            &PACE,
            now,
        );
        assert_eq!(
            minute,
            Settle::RescheduleAt {
                due_ms: 1_795_449_600_007,
                counted: false
            }
        );
        let day = settle(
            Ending::Failed(Fault::WeChat(45009)),
            Trail::default(),
            &PACE,
            now,
        );
        assert!(
            matches!(day, Settle::RescheduleAt { counted: false, due_ms } if due_ms >= 1_795_449_600_000)
        );
    }

    #[test]
    fn a_marked_message_without_an_answer_is_uncertain() {
        let marked = Trail {
            marked: true,
            claim_lost: false,
        };
        let s = settle(Ending::Failed(Fault::Uncertain), marked, &PACE, 0);
        assert_eq!(s, Settle::MarkUncertain);
        let s = settle(Ending::Failed(Fault::Uncertain), Trail::default(), &PACE, 0);
        assert!(matches!(s, Settle::RescheduleAt { counted: false, .. }));
    }

    #[test]
    fn retryable_failures_count_until_the_limit() {
        let last = Pace {
            attempts: 2,
            ..PACE
        };
        let f = Ending::Failed(Fault::NotReached);
        assert!(matches!(
            settle(f, Trail::default(), &PACE, 0),
            Settle::RescheduleAt { counted: true, .. }
        ));
        assert_eq!(
            settle(f, Trail::default(), &last, 0),
            Settle::DeadLetter { gave_up: true }
        );
        let refused = Ending::Failed(Fault::WeChat(47003));
        assert_eq!(
            settle(refused, Trail::default(), &PACE, 0),
            Settle::DeadLetter { gave_up: false }
        );
        assert_eq!(
            settle(Ending::Failed(Fault::Store), Trail::default(), &PACE, 0),
            Settle::Abort
        );
    }
}
