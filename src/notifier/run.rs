//! The send pipeline: a loop that carries out the send machine's actions
//! (token, permit, mark, post, wait, settle the permit) against the ledger,
//! the outbox and WeChat, then records the outcome under the idempotency key.

use std::borrow::Cow;
use std::time::Instant;

use super::send::{
    body_for, duplicate, explain, fail, finish_error, no_permit, permit_request, permit_use, Job,
    Outcome, SendReport, SendStatus,
};
use super::Notifier;
use crate::error::{Error, Result};
use crate::ledger::{ClaimedTake, Lease, PermitRequest, Remaining};
use crate::message::{cards, CardUpdate, MessageKind};
use crate::send_machine::card::{CardAction, CardEnd, CardEvent, CardMachine};
use crate::send_machine::flush::Trail;
use crate::send_machine::{Action, End, Event, Route, SendMachine, MAX_PERMITS_PER_SEND};
use crate::store::{CardClaim, CardStore};
use crate::wechat::client::{CallError, WeChatReply};
use crate::wechat::errcodes::next_minute;
use crate::wechat::App;

/// How long an idempotency claim holds while its send is under way; a process
/// that dies mid-send frees the key after this.
const CLAIM_LEASE_MS: i64 = 120_000;

/// What the loop holds between the machine's actions.
struct Run<'a> {
    job: &'a Job<'a>,
    request: PermitRequest,
    path: &'static str,
    outcome: Outcome,
    /// The permit use taken and not yet settled.
    lease: Option<Lease>,
    /// The use to spend, with the outcome's record where there is a key.
    spend: Option<Lease>,
    body: Cow<'a, str>,
    /// The idempotency key was claimed fresh by this send; `claim_kept`
    /// when the store kept that claim (it does only with a first lease).
    claimed: bool,
    claim_kept: bool,
    /// The failure the send ends on, when it ends on one.
    fault: Option<Error>,
    reply: Option<WeChatReply>,
    /// An earlier send's recorded outcome, for a duplicate.
    previous: Option<String>,
}

impl Notifier {
    /// Sends one message by the send machine's actions.
    pub(crate) fn run_send(&self, job: &Job<'_>, started: Instant) -> SendReport {
        let (request, path) = permit_request(job.msg);
        let route = match job.posting {
            Some(_) => Route::Flush,
            None => Route::Direct,
        };
        let legacy = job.msg.kind == MessageKind::Template;
        let mut machine = SendMachine::new(route, legacy, self.config().max_retries);
        let mut run = Run {
            job,
            request,
            path,
            outcome: Outcome::new(job.msg, job.event, SendStatus::NoPermit),
            lease: None,
            spend: None,
            body: Cow::Borrowed(""),
            claimed: false,
            claim_kept: false,
            fault: None,
            reply: None,
            previous: None,
        };
        let mut first_take = true;
        while let Some(action) = machine.poll() {
            let event = match action {
                Action::FetchToken => match self.token_of(job.app) {
                    Ok(_) => Event::TokenReady,
                    Err(e) => run.failed(e, Event::TokenFailed),
                },
                Action::TakePermit => self.take_permit(&mut run, std::mem::take(&mut first_take)),
                Action::MarkPosting => mark_posting(&mut run),
                Action::Post => self.post(&mut run),
                Action::Wait { ms } => {
                    self.clock.sleep_ms(ms);
                    Event::Waited
                }
                Action::Discard => self.discard(&mut run),
                Action::GiveBack => {
                    if let Some(lease) = run.lease.take() {
                        let _ = self.ledger.give_back(&lease);
                    }
                    continue;
                }
                Action::Consume => {
                    // Spent once the outcome is known, in one step with its record.
                    run.spend = run.lease.take();
                    continue;
                }
                Action::Complete(end) => {
                    run.outcome.attempts = machine.attempts();
                    let trail = Trail {
                        marked: machine.marked(),
                        claim_lost: machine.claim_lost(),
                    };
                    let mut report = self.spend_and_record(run.report(self, end), run, started);
                    report.trail = trail;
                    return report;
                }
            };
            machine.on(event);
        }
        SendReport::failed(Error::internal(
            "the send stopped before it ended (a bug, please report it)",
        ))
    }

    /// The next permit; the first take of a send with a key also claims the key.
    fn take_permit(&self, run: &mut Run<'_>, first: bool) -> Event {
        let (app, msg) = (run.job.app, run.job.msg);
        let key = msg.idempotency_key.as_str();
        let taken = if first && !key.is_empty() {
            let claim = self.ledger.claim_and_take(
                key,
                CLAIM_LEASE_MS,
                &app.appid,
                &msg.touser,
                &run.request,
            );
            match claim {
                Err(e) => return run.failed(e, Event::KeyFailed),
                Ok(ClaimedTake::Done(previous)) => {
                    run.previous = Some(previous);
                    return Event::KeyDone;
                }
                Ok(ClaimedTake::InFlight) => return Event::KeyBusy,
                Ok(ClaimedTake::Fresh(first)) => {
                    run.claimed = true;
                    // Without a first lease the store did not keep the claim.
                    run.claim_kept = matches!(first, Ok(Some(_)));
                    first
                }
            }
        } else {
            self.ledger.take(&app.appid, &msg.touser, &run.request)
        };
        match taken {
            Ok(Some(lease)) => {
                run.body = match run.job.rendered {
                    Some(text) if msg.kind == MessageKind::Subscribe => Cow::Borrowed(text),
                    _ => Cow::Owned(body_for(msg, &lease)),
                };
                run.lease = Some(lease);
                Event::PermitLeased
            }
            Ok(None) => Event::NoPermitLeft,
            Err(e) => run.failed(e, Event::PermitFailed),
        }
    }

    fn post(&self, run: &mut Run<'_>) -> Event {
        match self.post_wechat(run.job.app, run.path, run.body.as_bytes()) {
            Ok(reply) => {
                let event = Event::Answered {
                    errcode: reply.errcode,
                    requests: reply.requests,
                };
                run.outcome.errcode = reply.errcode;
                run.outcome.errmsg = reply.errmsg.clone();
                run.reply = Some(reply);
                event
            }
            Err(call) => run.call_failed(call),
        }
    }

    fn discard(&self, run: &mut Run<'_>) -> Event {
        let Some(lease) = run.lease.take() else {
            return Event::Discarded;
        };
        match self.ledger.discard(&lease) {
            Ok(()) => Event::Discarded,
            Err(e) => run.failed(e, Event::DiscardFailed),
        }
    }

    /// Spends the use the machine said to consume and, for a send that
    /// claimed its key, records a delivered (or maybe delivered) outcome under
    /// it, or frees the key.
    fn spend_and_record(
        &self,
        mut report: SendReport,
        mut run: Run<'_>,
        started: Instant,
    ) -> SendReport {
        self.keep_long_term_grant(&mut report, &mut run);
        let key = run.job.msg.idempotency_key.as_str();
        if !run.claimed {
            if let Some(lease) = run.spend {
                let spent = self.ledger.consume(&lease);
                self.count_spent(&lease, &spent);
                apply_spent(&mut report, &lease, spent);
            }
            return report;
        }
        let delivered = report
            .outcome
            .as_ref()
            .is_some_and(|o| matches!(o.status, SendStatus::Sent | SendStatus::Uncertain));
        let settled = match run.spend {
            // A retry must not send again: the use is spent and the outcome
            // recorded in one step where the store can.
            Some(lease) if delivered => self.consume_and_record(&mut report, &lease, key, started),
            None if delivered => self.record(&mut report, key, started),
            spend => {
                if let Some(lease) = spend {
                    let spent = self.ledger.consume(&lease);
                    self.count_spent(&lease, &spent);
                    apply_spent(&mut report, &lease, spent);
                }
                if run.claim_kept {
                    self.ledger.idempotency_release(key)
                } else {
                    Ok(())
                }
            }
        };
        match settled {
            Ok(()) => {
                if let Some(o) = report.outcome.as_ref() {
                    self.link_msgid(run.job.app, key, o);
                }
            }
            // The message went out but the record did not stick: say so
            // rather than pretend all is well.
            Err(e) if report.result.is_ok() => report.result = Err(e),
            Err(_) => {}
        }
        report
    }

    /// A message that went out (or may have) with a long-term template's
    /// grant leaves the grant in place: WeChat does not use it up per send.
    /// A refusal (43101) still spends it: the subscription is gone.
    fn keep_long_term_grant(&self, report: &mut SendReport, run: &mut Run<'_>) {
        let Some(o) = report.outcome.as_mut() else {
            return;
        };
        if !matches!(o.status, SendStatus::Sent | SendStatus::Uncertain) {
            return;
        }
        let Some(lease) = run.spend.take_if(|l| self.keeps_its_grant(l)) else {
            return;
        };
        if self.ledger.give_back(&lease).is_ok() && o.status == SendStatus::Sent {
            let left = self
                .ledger
                .stats(&lease.appid, Some(&lease.openid))
                .ok()
                .and_then(|s| s.subscribe.get(&lease.value).copied());
            o.permit = left.map(|n| permit_use(lease.kind, n));
        }
    }

    /// Spends `lease` and records the outcome under `key`, in one step where
    /// the store can. The outcome's `elapsed_ms` is set before it is written,
    /// and the outcome is not changed after.
    fn consume_and_record(
        &self,
        report: &mut SendReport,
        lease: &Lease,
        key: &str,
        started: Instant,
    ) -> Result<()> {
        let Some(o) = report.outcome.as_mut() else {
            return Ok(());
        };
        let uncertain = o.status == SendStatus::Uncertain;
        let done = self.ledger.consume_and_complete(lease, key, &mut |left| {
            o.permit = left
                .filter(|_| !uncertain)
                .map(|l| permit_use(lease.kind, l.uses));
            o.elapsed_ms = started.elapsed().as_millis() as u64;
            serde_json::to_string(&*o).unwrap_or_default()
        });
        self.count_spent(lease, &done.spent);
        if let Err(e) = done.spent {
            if report.result.is_ok() {
                report.result = Err(e);
            }
        }
        report.recorded = Some(done.outcome);
        done.recorded
    }

    /// Records a delivered outcome that spent no use under `key`.
    fn record(&self, report: &mut SendReport, key: &str, started: Instant) -> Result<()> {
        let Some(o) = report.outcome.as_mut() else {
            return Ok(());
        };
        o.elapsed_ms = started.elapsed().as_millis() as u64;
        let record = serde_json::to_string(o).unwrap_or_default();
        let stored = self.ledger.idempotency_complete(key, &record);
        report.recorded = Some(record);
        stored
    }

    /// Counts a spent use in the metrics.
    fn count_spent(&self, lease: &Lease, spent: &Result<Remaining>) {
        if spent.is_ok() {
            self.metrics.record_permit_consumed(lease.kind.as_str());
        }
    }
}

/// Marks a flushed message as on its way; a direct send has nothing to mark.
fn mark_posting(run: &mut Run<'_>) -> Event {
    let Some(p) = run.job.posting else {
        return Event::Marked;
    };
    match p.store.mark_posting(p.id, p.token) {
        Ok(()) => Event::Marked,
        Err(e) => run.failed(e, Event::ClaimLost),
    }
}

impl Run<'_> {
    /// Keeps `e` as the failure the send may end on, and says `event`.
    fn failed(&mut self, e: Error, event: Event) -> Event {
        self.fault = Some(e);
        event
    }

    /// A post that got no answer, by whether it can have reached WeChat.
    fn call_failed(&mut self, call: CallError) -> Event {
        let busy = matches!(
            call,
            CallError::HttpStatus {
                status: 502 | 503,
                ..
            }
        );
        if busy || matches!(call, CallError::NotSent(_)) {
            return self.failed(call.into_error(), Event::NotSent);
        }
        if call.may_have_reached_wechat() {
            // The message may be on the user's phone: the use is spent.
            let e = Error::Uncertain(format!(
                "{call}; the message may have been delivered, so it is not sent again"
            ));
            return self.failed(e, Event::MayHaveLeft);
        }
        let event = match call {
            CallError::NoToken(_) => Event::NoToken,
            _ => Event::Rejected,
        };
        self.failed(call.into_error(), event)
    }

    /// The report of a send that ended with `end` (before its use is spent).
    fn report(&mut self, notifier: &Notifier, end: End) -> SendReport {
        let (msg, event) = (self.job.msg, self.job.event);
        let mut outcome = self.outcome.clone();
        let fault = self.fault.take().unwrap_or_else(|| {
            Error::internal("the send failed without a reason (a bug, please report it)")
        });
        let result = match end {
            End::Sent => {
                outcome.status = SendStatus::Sent;
                outcome.msgid = self
                    .reply
                    .as_ref()
                    .and_then(|r| r.json.get("msgid").cloned());
                Ok(())
            }
            End::Refused => {
                outcome.status = SendStatus::Failed;
                Err(Error::NoPermit(format!(
                    "{} has no subscription left for template {} (errcode {}: {})",
                    msg.touser, msg.template_id, outcome.errcode, outcome.errmsg
                )))
            }
            End::PermitsExhausted => {
                outcome.status = SendStatus::Failed;
                Err(Error::NoPermit(format!(
                    "{}: the first {MAX_PERMITS_PER_SEND} permits of {} were all rejected by WeChat (errcode {})",
                    event, msg.touser, outcome.errcode
                )))
            }
            End::WeChat { next_minute: wait } => {
                outcome.status = SendStatus::Failed;
                if wait {
                    let now = notifier.clock.now_ms();
                    outcome.retry_after_ms = u64::try_from(next_minute(now) - now).ok();
                }
                Err(Error::WeChat {
                    errcode: outcome.errcode,
                    errmsg: explain(
                        outcome.errcode,
                        &outcome.errmsg,
                        event,
                        msg.kind,
                        &self.body,
                    ),
                })
            }
            End::NoPermit => return no_permit(outcome, msg, event),
            End::Uncertain | End::Unsent => return finish_error(outcome, fault),
            End::Failed => return fail(outcome, fault),
            End::Unstarted => return SendReport::failed(fault),
            End::Duplicate => {
                return duplicate(msg, event, self.previous.as_deref().unwrap_or_default())
            }
            End::Busy => {
                let mut o = Outcome::new(msg, event, SendStatus::InProgress);
                o.errmsg = format!(
                    "another send with idempotency key {} is under way: nothing was done here, that send decides (answer \"in progress\"; ask again later for its outcome)",
                    msg.idempotency_key
                );
                return SendReport::new(Err(Error::Uncertain(o.errmsg.clone())), Some(o));
            }
        };
        SendReport::new(result, Some(outcome))
    }
}

/// Puts what spending the use did into the report: what the user has left
/// (not for a maybe-delivered send, as before), or the store's failure when
/// the send had otherwise succeeded.
fn apply_spent(report: &mut SendReport, lease: &Lease, spent: Result<Remaining>) {
    let Some(o) = report.outcome.as_mut() else {
        return;
    };
    match spent {
        Ok(left) => {
            if o.status != SendStatus::Uncertain {
                o.permit = Some(permit_use(lease.kind, left.uses));
            }
        }
        Err(e) => {
            o.permit = None;
            if report.result.is_ok() {
                report.result = Err(e);
            }
        }
    }
}

/// What one card update did, for its outcome and the outbox.
#[derive(Debug)]
pub(crate) struct CardRun {
    pub end: CardEnd,
    pub errcode: i64,
    pub errmsg: String,
    pub attempts: u32,
    /// The failure the update ended on, when it ended on one.
    pub fault: Option<Error>,
    /// The store failed to record how the update settled (WeChat's answer
    /// stands; the card's record does not show it).
    pub unrecorded: Option<Error>,
}

/// How long a card update's claim holds while it is under way; a process
/// that dies mid-update frees the card after this.
const CARD_CLAIM_MS: i64 = 60_000;
const SET_USER_NOTIFY: &str = "/wxa/set_user_notify";

impl Notifier {
    /// Applies one card update by the card machine's actions: claim, post,
    /// retry, settle.
    pub(crate) fn run_card(&self, app: &App, update: &CardUpdate) -> CardRun {
        let store = self.cards.for_records();
        let mut machine = CardMachine::new(self.config().max_retries);
        let mut run = CardRun {
            end: CardEnd::StoreFailed,
            errcode: 0,
            errmsg: String::new(),
            attempts: 0,
            fault: None,
            unrecorded: None,
        };
        let mut body = String::new();
        while let Some(action) = machine.poll() {
            let event = match action {
                CardAction::Claim => match self.claim_card(&*store, app, update) {
                    Ok((CardEvent::Illegal, why)) => {
                        run.fault = Some(Error::invalid(why));
                        CardEvent::Illegal
                    }
                    Ok((event, text)) => {
                        body = text;
                        event
                    }
                    Err(e) => run.failed(e, CardEvent::StoreFailed),
                },
                CardAction::Post => match self.post_wechat(app, SET_USER_NOTIFY, body.as_bytes()) {
                    Ok(reply) => {
                        run.errcode = reply.errcode;
                        run.errmsg = reply.errmsg;
                        CardEvent::Answered {
                            errcode: reply.errcode,
                            requests: reply.requests,
                        }
                    }
                    Err(call) => run.call_failed(call),
                },
                CardAction::Wait { ms } => {
                    self.clock.sleep_ms(ms);
                    CardEvent::Waited
                }
                CardAction::Settle { applied } => {
                    let settled =
                        store.card_settle(&app.appid, &update.code, update.status, applied);
                    if let Err(e) = settled {
                        run.unrecorded.get_or_insert(e);
                    }
                    CardEvent::Settled
                }
                CardAction::Stop => {
                    if let Err(e) = store.card_stop(&app.appid, &update.code) {
                        run.unrecorded.get_or_insert(e);
                    }
                    CardEvent::Settled
                }
                CardAction::Complete(end) => {
                    run.end = end;
                    run.attempts = machine.attempts();
                    return run;
                }
            };
            machine.on(event);
        }
        run
    }

    /// Claims the update and checks its move against the card's definition;
    /// the body to post when it may go out.
    fn claim_card(
        &self,
        store: &dyn CardStore,
        app: &App,
        update: &CardUpdate,
    ) -> Result<(CardEvent, String)> {
        let now = self.clock.now_ms();
        let claim = store.card_claim(
            &app.appid,
            &update.code,
            update.notify_type,
            update.status,
            now,
            CARD_CLAIM_MS,
        )?;
        let prev = match claim {
            CardClaim::Done => return Ok((CardEvent::AlreadyApplied, String::new())),
            CardClaim::Busy => return Ok((CardEvent::Busy, String::new())),
            CardClaim::Behind => return Ok((CardEvent::Behind, String::new())),
            CardClaim::Stopped => return Ok((CardEvent::Stopped, String::new())),
            CardClaim::Fresh { prev } => prev,
        };
        let card = cards::card(update.notify_type).expect("rendered cards exist");
        match card.check_transition(prev, update.status) {
            Ok(()) => match update.body(prev.is_none()) {
                Ok(body) => Ok((CardEvent::Claimed, body)),
                Err(e) => Ok((CardEvent::Illegal, e.to_string())),
            },
            Err(_) if prev.is_none() => Ok((CardEvent::NotActivated, String::new())),
            Err(why) => Ok((CardEvent::Illegal, why)),
        }
    }
}

impl CardRun {
    fn failed(&mut self, e: Error, event: CardEvent) -> CardEvent {
        self.fault = Some(e);
        event
    }

    fn call_failed(&mut self, call: CallError) -> CardEvent {
        let busy = matches!(
            call,
            CallError::HttpStatus {
                status: 502 | 503,
                ..
            }
        );
        let event = if busy || matches!(call, CallError::NotSent(_)) {
            CardEvent::NotSent
        } else if call.may_have_reached_wechat() {
            CardEvent::MayHaveLeft
        } else {
            CardEvent::Rejected
        };
        self.fault = Some(call.into_error());
        event
    }
}
