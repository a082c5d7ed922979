//! Properties of the send machine, driven by a simulated world (ledger, outbox
//! claim and WeChat as plain values) over random answers, faults and kill
//! points: every permit lease is settled exactly once, nothing is posted
//! again once a request may have reached WeChat, an outbox message ends in
//! exactly one of sent / dead / uncertain / due, and a spent quota defers it
//! without counting an attempt. Runs from a fixed seed.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::flush::{settle, Ending, Fault, Pace, Settle, Trail};
use super::{Action, End, Event, Route, SendMachine, MAX_PERMITS_PER_SEND};
use crate::wechat::errcodes;

/// Cases per property (the report quotes the total).
const CASES: u32 = 2_000;

fn runner() -> TestRunner {
    TestRunner::new_with_rng(
        Config::with_cases(CASES),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

/// What WeChat (or the way to it) does with one post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Code(i64),
    NotSent,
    Rejected,
    NoToken,
    MayHaveLeft,
}

/// What the simulated WeChat answers: success three times as often as any
/// other code, every code the errcode table gives a meaning, and one it does
/// not know (the first number past the table's largest). Drawn from the table,
/// so this simulation names no errcode of its own.
fn codes() -> Vec<i64> {
    let mut codes = vec![0, 0, 0];
    codes.extend(errcodes::every_errcode());
    codes.push(errcodes::every_errcode().max().unwrap_or(0) + 1);
    codes
}

/// The codes of a spent quota (per minute, per day), from the table.
fn quota_codes() -> Vec<i64> {
    errcodes::every_errcode()
        .filter(|&c| errcodes::meaning(c).quota.is_some())
        .collect()
}

/// What a failed token fetch answered: the daily quota's code.
fn token_failure_code() -> i64 {
    errcodes::every_errcode()
        .find(|&c| errcodes::meaning(c).quota == Some(errcodes::Quota::Day))
        .expect("the table has the daily quota")
}

/// The per-minute quota's code.
fn minute_quota_code() -> i64 {
    errcodes::every_errcode()
        .find(|&c| errcodes::meaning(c).quota == Some(errcodes::Quota::Minute))
        .expect("the table has the per-minute quota")
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => prop::sample::select(codes()).prop_map(Answer::Code),
        2 => Just(Answer::NotSent),
        1 => Just(Answer::Rejected),
        1 => Just(Answer::NoToken),
        2 => Just(Answer::MayHaveLeft),
    ]
}

/// How the idempotency key's first claim goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Fresh,
    Done,
    Busy,
    Failed,
}

/// One simulated send: the world it meets and where the process dies.
#[derive(Debug, Clone)]
struct World {
    route: Route,
    discardable: bool,
    max_retries: u32,
    permits: usize,
    key: Key,
    token_fails: bool,
    /// The take with this number fails in the store.
    take_fails_at: Option<usize>,
    /// The mark with this number finds the claim lost.
    mark_fails_at: Option<usize>,
    discard_fails: bool,
    answers: Vec<Answer>,
    /// The process dies after this many actions.
    kill_after: Option<usize>,
}

fn world() -> impl Strategy<Value = World> {
    (
        (prop_oneof![Just(Route::Direct), Just(Route::Flush)], any::<bool>(), 0u32..4, 0usize..12),
        prop_oneof![6 => Just(Key::Fresh), 1 => Just(Key::Done), 1 => Just(Key::Busy), 1 => Just(Key::Failed)],
        (prop::bool::weighted(0.1), prop::option::weighted(0.1, 0usize..6)),
        (prop::option::weighted(0.1, 0usize..8), prop::bool::weighted(0.1)),
        prop::collection::vec(answer(), 1..24),
        prop::option::weighted(0.3, 0usize..40),
    )
        .prop_map(|((route, discardable, max_retries, permits), key, (token_fails, take_fails_at), (mark_fails_at, discard_fails), answers, kill_after)| World {
            route,
            discardable,
            max_retries,
            permits,
            key,
            token_fails,
            take_fails_at,
            mark_fails_at,
            discard_fails,
            answers,
            kill_after,
        })
}

/// What happened to the message and its permits in one run.
#[derive(Debug, Default)]
struct Trace {
    /// How often each lease was settled (consumed, given back, discarded).
    settled: Vec<u32>,
    held: Option<usize>,
    posts: usize,
    requests: u32,
    may_have_left: bool,
    marked: bool,
    /// The outbox claim allows a post right now (flush).
    mark_armed: bool,
    claim_lost: bool,
    last_answer: Option<Answer>,
    end: Option<End>,
    attempts: u32,
}

/// The simulated ledger, outbox claim and WeChat of one run.
struct Sim<'a> {
    w: &'a World,
    t: Trace,
    permits: usize,
    takes: usize,
    marks: usize,
}

impl Sim<'_> {
    fn take(&mut self) -> Result<Event, TestCaseError> {
        prop_assert!(self.t.held.is_none(), "a second lease while one is held");
        self.takes += 1;
        Ok(if self.takes == 1 && self.w.key != Key::Fresh {
            match self.w.key {
                Key::Done => Event::KeyDone,
                Key::Busy => Event::KeyBusy,
                _ => Event::KeyFailed,
            }
        } else if self.w.take_fails_at == Some(self.takes) {
            Event::PermitFailed
        } else if self.permits == 0 {
            Event::NoPermitLeft
        } else {
            self.permits -= 1;
            self.t.held = Some(self.t.settled.len());
            self.t.settled.push(0);
            Event::PermitLeased
        })
    }

    fn mark(&mut self) -> Result<Event, TestCaseError> {
        prop_assert_eq!(self.w.route, Route::Flush);
        self.marks += 1;
        Ok(if self.w.mark_fails_at == Some(self.marks) {
            self.t.claim_lost = true;
            Event::ClaimLost
        } else {
            self.t.marked = true;
            self.t.mark_armed = true;
            Event::Marked
        })
    }

    fn post(&mut self) -> Result<Event, TestCaseError> {
        let t = &mut self.t;
        prop_assert!(t.held.is_some(), "a post without a permit");
        prop_assert!(
            !t.may_have_left,
            "posted again after a request may have reached WeChat"
        );
        if self.w.route == Route::Flush {
            prop_assert!(
                std::mem::take(&mut t.mark_armed),
                "a flush post not marked first"
            );
        }
        let a = self.w.answers[t.posts % self.w.answers.len()];
        t.posts += 1;
        t.last_answer = Some(a);
        // Every answer but a missing token is one request to WeChat.
        t.requests += u32::from(a != Answer::NoToken);
        Ok(match a {
            Answer::Code(errcode) => Event::Answered {
                errcode,
                requests: 1,
            },
            Answer::NotSent => Event::NotSent,
            Answer::Rejected => Event::Rejected,
            Answer::NoToken => Event::NoToken,
            Answer::MayHaveLeft => {
                t.may_have_left = true;
                Event::MayHaveLeft
            }
        })
    }

    /// Consume, give back or discard: the held lease is settled, once.
    fn settle(&mut self, action: Action) -> Result<Option<Event>, TestCaseError> {
        let Some(lease) = self.t.held.take() else {
            return Err(TestCaseError::fail(format!("{action:?} without a lease")));
        };
        self.t.settled[lease] += 1;
        Ok(match action {
            Action::Discard if self.w.discard_fails => Some(Event::DiscardFailed),
            Action::Discard => Some(Event::Discarded),
            _ => None,
        })
    }

    /// What the world answers to `action` (`None` for an action with no answer).
    fn step(&mut self, action: Action) -> Result<Option<Event>, TestCaseError> {
        Ok(Some(match action {
            Action::FetchToken if self.w.token_fails => Event::TokenFailed,
            Action::FetchToken => Event::TokenReady,
            Action::TakePermit => self.take()?,
            Action::MarkPosting => self.mark()?,
            Action::Post => self.post()?,
            Action::Wait { ms } => {
                prop_assert!(ms > 0 && ms <= super::MAX_BACKOFF_MS);
                Event::Waited
            }
            Action::Consume | Action::GiveBack | Action::Discard => return self.settle(action),
            Action::Complete(end) => {
                self.t.end = Some(end);
                return Ok(None);
            }
        }))
    }
}

/// Drives the machine through `w` as the notifier does, checking each step.
fn drive(w: &World) -> Result<Trace, TestCaseError> {
    let mut m = SendMachine::new(w.route, w.discardable, w.max_retries);
    let mut sim = Sim {
        w,
        t: Trace::default(),
        permits: w.permits,
        takes: 0,
        marks: 0,
    };
    let mut steps = 0;
    while let Some(action) = m.poll() {
        if w.kill_after == Some(steps) {
            return Ok(sim.t);
        }
        steps += 1;
        prop_assert!(steps < 500, "the send does not end");
        prop_assert!(sim.t.end.is_none(), "{action:?} after the end");
        if let Some(event) = sim.step(action)? {
            m.on(event);
        }
    }
    let mut t = sim.t;
    prop_assert!(t.end.is_some(), "the machine stopped without completing");
    prop_assert_eq!(m.marked(), t.marked);
    prop_assert_eq!(m.claim_lost(), t.claim_lost);
    t.attempts = m.attempts();
    Ok(t)
}

#[test]
fn every_lease_is_settled_exactly_once() {
    runner()
        .run(&world(), |w| {
            let t = drive(&w)?;
            if t.end.is_none() {
                // Killed: a lease still held runs out in the store, never settled twice.
                prop_assert!(t.settled.iter().all(|n| *n <= 1), "{t:?}");
                return Ok(());
            }
            prop_assert!(t.held.is_none(), "ended with a lease held: {t:?}");
            prop_assert!(t.settled.iter().all(|n| *n == 1), "{t:?}");
            prop_assert!(t.settled.len() <= MAX_PERMITS_PER_SEND, "{t:?}");
            prop_assert_eq!(t.attempts, t.requests);
            Ok(())
        })
        .unwrap();
}

#[test]
fn nothing_is_posted_after_a_request_may_have_reached_wechat() {
    runner()
        .run(&world(), |w| {
            let t = drive(&w)?;
            // `drive` fails on a post after one; here the end says so too.
            if t.may_have_left && t.end.is_some() {
                prop_assert_eq!(t.end, Some(End::Uncertain));
                prop_assert_eq!(t.last_answer, Some(Answer::MayHaveLeft));
            }
            if t.end == Some(End::Sent) {
                prop_assert_eq!(t.last_answer, Some(Answer::Code(0)));
            }
            Ok(())
        })
        .unwrap();
}

/// Where an outbox message stands after one flush of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Final {
    Sent,
    Dead,
    Uncertain,
    /// Due now or later, in this outbox's hands or another flusher's.
    Due {
        counted: bool,
    },
}

/// The fault the notifier reports for a send that ended with `end`.
fn fault_of(end: End, t: &Trace, w: &World) -> Fault {
    match end {
        End::Uncertain | End::Busy => Fault::Uncertain,
        End::Refused | End::NoPermit | End::PermitsExhausted => Fault::NoPermit,
        End::WeChat { .. } => match t.last_answer {
            Some(Answer::Code(code)) => Fault::WeChat(code),
            _ => Fault::Other,
        },
        End::Unsent => match t.last_answer {
            Some(Answer::NotSent) => Fault::NotReached,
            Some(Answer::NoToken) => Fault::WeChat(token_failure_code()),
            _ => Fault::Other,
        },
        End::Unstarted if w.token_fails => Fault::WeChat(token_failure_code()),
        End::Failed | End::Unstarted => Fault::Store,
        End::Sent | End::Duplicate => Fault::Other,
    }
}

/// One flush of a message: the machine, then its settlement, or the store's
/// rules for a flusher that died (a marked message is abandoned as uncertain,
/// another one comes due again when its claim runs out).
fn flush(w: &World, pace: &Pace, now: i64) -> Result<(Final, Trace), TestCaseError> {
    let t = drive(w)?;
    let Some(end) = t.end else {
        let f = if t.marked {
            Final::Uncertain
        } else {
            Final::Due { counted: false }
        };
        return Ok((f, t));
    };
    let ending = match end {
        End::Sent => Ending::Delivered { duplicate: false },
        End::Duplicate => Ending::Delivered { duplicate: true },
        _ => Ending::Failed(fault_of(end, &t, w)),
    };
    let trail = Trail {
        marked: t.marked,
        claim_lost: t.claim_lost,
    };
    let f = match settle(ending, trail, pace, now) {
        Settle::Sent { .. } => Final::Sent,
        Settle::DeadLetter { .. } => Final::Dead,
        Settle::MarkUncertain => Final::Uncertain,
        Settle::RescheduleAt { due_ms, counted } => {
            prop_assert!(due_ms > now);
            Final::Due { counted }
        }
        // Released (store failure) or held by another flusher: due, not counted here.
        Settle::Abort | Settle::Lost => Final::Due { counted: false },
    };
    Ok((f, t))
}

fn pace() -> impl Strategy<Value = Pace> {
    (0u32..6, 1u32..8, 1_000i64..120_000, any::<u64>()).prop_map(
        |(attempts, max_attempts, retry_ms, spread)| Pace {
            attempts: attempts.min(max_attempts - 1),
            max_attempts,
            retry_ms,
            spread,
        },
    )
}

#[test]
fn an_outbox_message_ends_in_exactly_one_state() {
    let flushed =
        (world(), pace(), 1_600_000_000_000i64..1_900_000_000_000).prop_map(|(mut w, p, now)| {
            w.route = Route::Flush;
            (w, p, now)
        });
    runner()
        .run(&flushed, |(w, pace, now)| {
            let (f, t) = flush(&w, &pace, now)?;
            // A request that may have reached WeChat (on a claim still held)
            // is never due or dead: either would let it be sent again.
            if t.may_have_left && t.marked && !t.claim_lost {
                prop_assert_eq!(f, Final::Uncertain, "{:?}", t);
            }
            if f == Final::Sent {
                prop_assert!(
                    t.end == Some(End::Duplicate) || t.last_answer == Some(Answer::Code(0)),
                    "{:?}",
                    t
                );
            }
            if f == Final::Uncertain {
                prop_assert!(t.marked, "uncertain without a request on its way: {:?}", t);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_spent_quota_defers_without_counting_an_attempt() {
    let quota = (
        prop::sample::select(quota_codes()),
        pace(),
        any::<bool>(),
        0i64..4_000_000_000_000,
    );
    runner()
        .run(&quota, |(code, pace, marked, now)| {
            let trail = Trail {
                marked,
                claim_lost: false,
            };
            let s = settle(Ending::Failed(Fault::WeChat(code)), trail, &pace, now);
            match s {
                Settle::RescheduleAt { due_ms, counted } => {
                    prop_assert!(!counted);
                    prop_assert!(due_ms > now);
                }
                other => prop_assert!(false, "{code}: {other:?}"),
            }
            Ok(())
        })
        .unwrap();
    // Through the machine: a post answered with the per-minute quota ends the
    // send with the permit given back, and the flush waits without counting.
    let minute =
        (world(), pace(), 1_600_000_000_000i64..1_900_000_000_000).prop_map(|(mut w, p, now)| {
            w.route = Route::Flush;
            w.answers = vec![Answer::Code(minute_quota_code())];
            (w, p, now)
        });
    runner()
        .run(&minute, |(w, pace, now)| {
            let (f, t) = flush(&w, &pace, now)?;
            if t.end == Some(End::WeChat { next_minute: true }) {
                prop_assert_eq!(f, Final::Due { counted: false });
                prop_assert!(t.settled.iter().all(|n| *n == 1));
            }
            Ok(())
        })
        .unwrap();
}
