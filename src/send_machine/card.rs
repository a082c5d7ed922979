//! A service card update as a request kind of the send machine: claim the
//! card's next status in the store (which keeps one order's updates in order
//! and each status applied once), post `set_user_notify`, and settle the claim
//! by WeChat's answer read from the errcode table. No permit: a card needs no
//! grant. Pure, like the message machine; `notifier::run` drives it.

use std::collections::VecDeque;

use super::MAX_BACKOFF_MS;
use crate::wechat::errcodes::{card_policy_for, CardPolicy};

/// The first pause after a request that did not leave (doubling each time).
const NOT_SENT_BACKOFF_MS: u64 = 200;

/// What the driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    /// Claim the update in the card store and check its transition.
    Claim,
    Post,
    Wait {
        ms: u64,
    },
    /// Release the claim; `applied` records the status as the card's last.
    Settle {
        applied: bool,
    },
    /// The buyer refused the code: no update of this card from now on.
    Stop,
    Complete(CardEnd),
}

/// What happened when the driver carried out an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardEvent {
    /// The claim holds and the transition is allowed.
    Claimed,
    /// The status was applied before.
    AlreadyApplied,
    /// Another update of this card is under way.
    Busy,
    /// Updates of this card that came earlier wait in the outbox.
    Behind,
    /// The card is not activated yet and this status cannot activate it:
    /// the activating update is still to come (claim held).
    NotActivated,
    /// The card's definition does not allow this move (claim held).
    Illegal,
    /// The code was refused earlier.
    Stopped,
    StoreFailed,
    Answered {
        errcode: i64,
        requests: u32,
    },
    NotSent,
    /// Refused by WeChat's front end, or no token: not delivered.
    Rejected,
    MayHaveLeft,
    Waited,
    Settled,
}

/// How an update ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardEnd {
    Applied,
    Duplicate,
    /// To be tried again later (the outbox): another update is under way,
    /// the card waits for its activation, WeChat cannot check the code yet
    /// or was not reached.
    Later(Later),
    Stopped,
    Illegal,
    /// WeChat refused the update for good.
    Failed,
    /// May have reached WeChat.
    Uncertain,
    StoreFailed,
}

/// Why an update is tried again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Later {
    Busy,
    /// Earlier updates of the card wait in the outbox.
    Behind,
    NotActivated,
    /// WeChat does not know the transaction id yet ("notify_code 不存在").
    CodeUnknown,
    /// WeChat was not reached, or stayed busy.
    Unsent,
}

/// One update's state.
#[derive(Debug)]
pub struct CardMachine {
    max_retries: u32,
    retries: u32,
    attempts: u32,
    claimed: bool,
    next: VecDeque<CardAction>,
    ended: bool,
}

impl CardMachine {
    pub fn new(max_retries: u32) -> CardMachine {
        CardMachine {
            max_retries,
            retries: 0,
            attempts: 0,
            claimed: false,
            next: VecDeque::from([CardAction::Claim]),
            ended: false,
        }
    }

    pub fn poll(&mut self) -> Option<CardAction> {
        self.next.pop_front()
    }

    /// HTTP requests made to WeChat so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    pub fn on(&mut self, event: CardEvent) {
        match event {
            CardEvent::Claimed => {
                self.claimed = true;
                self.then(CardAction::Post);
            }
            CardEvent::AlreadyApplied => self.end(CardEnd::Duplicate),
            CardEvent::Busy => self.end(CardEnd::Later(Later::Busy)),
            CardEvent::Behind => self.end(CardEnd::Later(Later::Behind)),
            CardEvent::NotActivated => {
                self.claimed = true;
                self.release(CardEnd::Later(Later::NotActivated));
            }
            CardEvent::Illegal => {
                self.claimed = true;
                self.release(CardEnd::Illegal);
            }
            CardEvent::Stopped => self.end(CardEnd::Stopped),
            CardEvent::StoreFailed => self.release(CardEnd::StoreFailed),
            CardEvent::Answered { errcode, requests } => {
                self.attempts += requests;
                self.answered(errcode);
            }
            CardEvent::NotSent => {
                self.attempts += 1;
                self.retry_or(NOT_SENT_BACKOFF_MS, CardEnd::Later(Later::Unsent));
            }
            CardEvent::Rejected => self.release(CardEnd::Later(Later::Unsent)),
            CardEvent::MayHaveLeft => {
                self.attempts += 1;
                self.release(CardEnd::Uncertain);
            }
            CardEvent::Waited => self.then(CardAction::Post),
            CardEvent::Settled => {}
        }
    }

    fn answered(&mut self, errcode: i64) {
        match card_policy_for(errcode) {
            CardPolicy::Applied => self.settle(true, CardEnd::Applied),
            CardPolicy::Retry { backoff_ms } => {
                self.retry_or(backoff_ms, CardEnd::Later(Later::Unsent))
            }
            CardPolicy::Defer => self.release(CardEnd::Later(Later::CodeUnknown)),
            CardPolicy::Stopped => {
                self.claimed = false;
                self.then(CardAction::Stop);
                self.end(CardEnd::Stopped);
            }
            CardPolicy::Fail => self.release(CardEnd::Failed),
        }
    }

    fn retry_or(&mut self, backoff_ms: u64, end: CardEnd) {
        if self.retries < self.max_retries {
            let ms = (backoff_ms << self.retries).min(MAX_BACKOFF_MS);
            self.retries += 1;
            self.then(CardAction::Wait { ms });
        } else {
            self.release(end);
        }
    }

    /// Releases the claim (nothing applied) and ends with `end`.
    fn release(&mut self, end: CardEnd) {
        self.settle(false, end);
    }

    fn settle(&mut self, applied: bool, end: CardEnd) {
        if std::mem::take(&mut self.claimed) {
            self.then(CardAction::Settle { applied });
        }
        self.end(end);
    }

    fn end(&mut self, end: CardEnd) {
        self.then(CardAction::Complete(end));
        self.ended = true;
    }

    fn then(&mut self, action: CardAction) {
        if !self.ended {
            self.next.push_back(action);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the machine over `events` (one per action awaiting one) and
    /// returns the actions it asked for.
    fn run(events: &[CardEvent]) -> Vec<CardAction> {
        let mut m = CardMachine::new(2);
        let mut seen = Vec::new();
        let mut events = events.iter();
        while let Some(a) = m.poll() {
            seen.push(a);
            match a {
                CardAction::Complete(_) => break,
                CardAction::Settle { .. } | CardAction::Stop => {}
                _ => m.on(*events.next().expect("an event for each action")),
            }
        }
        seen
    }

    #[test]
    fn an_applied_update_records_its_status() {
        let a = run(&[
            CardEvent::Claimed,
            CardEvent::Answered {
                errcode: 0,
                requests: 1,
            },
        ]);
        assert_eq!(
            a,
            vec![
                CardAction::Claim,
                CardAction::Post,
                CardAction::Settle { applied: true },
                CardAction::Complete(CardEnd::Applied)
            ]
        );
    }

    #[test]
    fn an_unknown_code_is_released_for_later_and_a_refused_code_stops() {
        let a = run(&[
            CardEvent::Claimed,
            CardEvent::Answered {
                errcode: 85437,
                requests: 1,
            },
        ]);
        assert_eq!(a[2], CardAction::Settle { applied: false });
        assert_eq!(
            a[3],
            CardAction::Complete(CardEnd::Later(Later::CodeUnknown))
        );
        let a = run(&[
            CardEvent::Claimed,
            CardEvent::Answered {
                errcode: 85439,
                requests: 1,
            },
        ]);
        assert_eq!(a[2], CardAction::Stop);
        assert_eq!(a[3], CardAction::Complete(CardEnd::Stopped));
    }

    #[test]
    fn claims_taken_are_always_settled_and_others_never() {
        for e in [
            CardEvent::AlreadyApplied,
            CardEvent::Busy,
            CardEvent::Behind,
            CardEvent::Stopped,
        ] {
            let a = run(&[e]);
            assert!(
                !a.iter().any(|x| matches!(x, CardAction::Settle { .. })),
                "{e:?}"
            );
        }
        for e in [CardEvent::Illegal, CardEvent::NotActivated] {
            let a = run(&[e]);
            assert_eq!(a[1], CardAction::Settle { applied: false }, "{e:?}");
        }
        // Transient failures retry, then give the claim back for later.
        let a = run(&[
            CardEvent::Claimed,
            CardEvent::NotSent,
            CardEvent::Waited,
            CardEvent::NotSent,
            CardEvent::Waited,
            CardEvent::NotSent,
        ]);
        assert_eq!(
            a.last(),
            Some(&CardAction::Complete(CardEnd::Later(Later::Unsent)))
        );
        assert_eq!(a[a.len() - 2], CardAction::Settle { applied: false });
    }
}
