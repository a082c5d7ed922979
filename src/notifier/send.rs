//! Send: render → permit → token → POST → WeChat's errcode policy → outcome.
//! The permit is taken atomically before the POST and settled after it by the
//! policy of docs/spec/wechat.md; an idempotency key makes a retried PHP request
//! a duplicate instead of a second message.

use std::borrow::Cow;
use std::time::Instant;

use serde::Serialize;

use super::Notifier;
use crate::error::{Error, Result};
use crate::journal::SendRecord;
use crate::ledger::{ClaimedTake, Kind, Lease, PermitRequest, Remaining};
use crate::message::rules::KeywordType;
use crate::message::{MessageKind, RenderedMessage};
use crate::wechat::client::CallError;
use crate::wechat::errcodes::{policy_for, Policy};
use crate::wechat::App;

const SUBSCRIBE_PATH: &str = "/cgi-bin/message/subscribe/send";
const TEMPLATE_PATH: &str = "/cgi-bin/message/wxopen/template/send";

/// How many dead form_ids / prepay_ids (41028, 41029) one send skips before it
/// gives up: a user with a long list of stale ones must not keep a PHP request busy.
const MAX_PERMITS_PER_SEND: usize = 8;

/// How long an idempotency claim holds while its send is under way; a process
/// that dies mid-send frees the key after this.
const CLAIM_LEASE_MS: i64 = 120_000;

/// The longest single backoff pause, whatever the doubling says.
const MAX_BACKOFF_MS: u64 = 2_000;

/// The permit a send used, and what the user has left of it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PermitUse {
    pub kind: &'static str,
    pub remaining: u64,
}

/// How a send ended, as the outcome JSON's `status` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendStatus {
    /// WeChat took the message.
    Sent,
    /// WeChat refused it, or it could not be sent; not delivered.
    Failed,
    /// The request may have reached WeChat but no answer came: not repeated.
    Uncertain,
    /// No grant, form_id or prepay_id for this buyer and template.
    NoPermit,
    /// An earlier send with this idempotency key finished (or is running).
    Duplicate,
    /// The request did not leave (WeChat not reached) and the payload asked
    /// for `"on_network_error": "enqueue"`: the message is in the outbox.
    Queued,
}

impl SendStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SendStatus::Sent => "sent",
            SendStatus::Failed => "failed",
            SendStatus::Uncertain => "uncertain",
            SendStatus::NoPermit => "no_permit",
            SendStatus::Duplicate => "duplicate",
            SendStatus::Queued => "queued",
        }
    }
}

impl std::fmt::Display for SendStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status as the outcome JSON spells it.
impl PartialEq<&str> for SendStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What one send did: the outcome JSON of the ABI.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outcome {
    pub status: SendStatus,
    pub errcode: i64,
    pub errmsg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgid: Option<serde_json::Value>,
    /// HTTP requests made to WeChat for this send (token retries included).
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permit: Option<PermitUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// What WeChat's message push later said of a sent message (`delivered`,
    /// `user_block`, `system_failed`), on a repeated send of its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<String>,
    pub event: String,
    pub elapsed_ms: u64,
    /// When WeChat said to retry later (45011: the next minute), how many
    /// milliseconds from now, by the notifier's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// The outbox message a `queued` send became.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<u64>,
}

impl Outcome {
    fn new(msg: &RenderedMessage, event: &str, status: SendStatus) -> Outcome {
        Outcome {
            status,
            errcode: 0,
            errmsg: String::new(),
            msgid: None,
            attempts: 0,
            permit: None,
            idempotency_key: (!msg.idempotency_key.is_empty()).then(|| msg.idempotency_key.clone()),
            delivery: None,
            event: event.to_string(),
            elapsed_ms: 0,
            retry_after_ms: None,
            outbox_id: None,
        }
    }
}

/// A send's result: the status and, whenever the send got as far as looking
/// for a permit, its outcome.
#[derive(Debug)]
pub struct SendReport {
    pub result: Result<()>,
    pub outcome: Option<Outcome>,
}

impl Notifier {
    /// Sends the event's message to `payload.touser`. See `SendReport`.
    pub fn send(&self, appid: &str, event: &str, payload_json: &str) -> SendReport {
        self.send_with_text(appid, event, payload_json).0
    }

    /// `send`, with the outcome's JSON when the idempotency record already
    /// serialized it (else `None`).
    fn send_with_text(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> (SendReport, Option<String>) {
        let started = Instant::now();
        // One write of this send's figures to a shared store, not one per figure.
        let _figures = self.metrics.batch();
        let prepared = self
            .check_configured()
            .and_then(|()| self.apps.get(appid))
            .and_then(|app| Ok((app, self.render_for_send(appid, event, payload_json)?)));
        let (app, (msg, body)) = match prepared {
            Ok(p) => p,
            Err(e) => {
                let report = SendReport {
                    result: Err(e),
                    outcome: None,
                };
                return (report, None);
            }
        };
        let sent =
            self.send_rendered_with_text(&app, event, &msg, body.as_deref(), started, &|| Ok(()));
        match &sent.0.result {
            Err(Error::Network(_)) if msg.enqueue_on_network_error => {
                let report = self.enqueue_instead(appid, event, &msg, payload_json, sent.0);
                (report, None)
            }
            _ => sent,
        }
    }

    /// A send whose request did not leave, asked to fall back on the outbox:
    /// exactly that message (same payload, same idempotency key) is enqueued
    /// for the next flush. When the outbox cannot keep it either, the send
    /// fails with both reasons.
    fn enqueue_instead(
        &self,
        appid: &str,
        event: &str,
        msg: &RenderedMessage,
        payload_json: &str,
        mut report: SendReport,
    ) -> SendReport {
        let why = match &report.result {
            Err(e) => e.to_string(),
            Ok(()) => return report,
        };
        match self.enqueue_message(appid, event, payload_json) {
            Ok((enqueued, _key)) => {
                let o = report
                    .outcome
                    .get_or_insert_with(|| Outcome::new(msg, event, SendStatus::Queued));
                o.status = SendStatus::Queued;
                o.outbox_id = Some(enqueued.id);
                o.errmsg = format!("WeChat not reached, kept in the outbox: {why}");
                report.result = Ok(());
            }
            Err(e) => {
                report.result = Err(Error::Network(format!(
                    "{why}; on_network_error \"enqueue\": the outbox could not keep the message either: {e}"
                )));
            }
        }
        report
    }

    /// Sends a message rendered earlier (the outbox's flush). `before_post`
    /// runs right before each POST, so a caller can record that the message
    /// may be on its way, or stop it (an error gives the permit back).
    pub(crate) fn send_rendered(
        &self,
        app: &App,
        event: &str,
        msg: &RenderedMessage,
        started: Instant,
        before_post: &dyn Fn() -> Result<()>,
    ) -> SendReport {
        self.send_rendered_with_text(app, event, msg, None, started, before_post)
            .0
    }

    /// `body`: the POST's text when `render_for_send` wrote it (then `msg.body` is empty).
    fn send_rendered_with_text(
        &self,
        app: &App,
        event: &str,
        msg: &RenderedMessage,
        body: Option<&str>,
        started: Instant,
        before_post: &dyn Fn() -> Result<()>,
    ) -> (SendReport, Option<String>) {
        let appid = app.appid.as_str();
        let (mut report, text) = self.send_once(app, event, msg, body, started, before_post);
        report.result = self.noted("send", report.result);
        if let Some(outcome) = report.outcome.as_mut() {
            let elapsed = started.elapsed();
            if text.is_none() {
                outcome.elapsed_ms = elapsed.as_millis() as u64;
            }
            self.observe_send(&SendRecord {
                appid,
                event,
                touser: Some(&msg.touser),
                status: outcome.status.as_str(),
                errcode: outcome.errcode,
                errmsg: Some(&outcome.errmsg),
                attempts: outcome.attempts,
                elapsed,
                permit: outcome.permit.as_ref().map(|p| p.kind),
                msgid: outcome.msgid.as_ref().and_then(|m| m.as_i64()),
            });
        }
        (report, text)
    }

    /// `send` for the C boundary: the status and the outcome JSON.
    pub fn send_json(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> (Result<()>, Option<String>) {
        let (report, text) = self.send_with_text(appid, event, payload_json);
        let text = text.or_else(|| {
            report
                .outcome
                .as_ref()
                .map(|o| serde_json::to_string(o).unwrap_or_default())
        });
        (report.result, text)
    }

    /// One send under its idempotency key. A delivered (or maybe delivered)
    /// outcome is recorded under the key as JSON; that text comes back too, so
    /// the outcome is serialized once. Its `elapsed_ms` is set before the record
    /// is written, and the outcome is not changed after.
    fn send_once(
        &self,
        app: &App,
        event: &str,
        msg: &RenderedMessage,
        body: Option<&str>,
        started: Instant,
        before_post: &dyn Fn() -> Result<()>,
    ) -> (SendReport, Option<String>) {
        let key = msg.idempotency_key.as_str();
        let permit = permit_request(msg);
        if key.is_empty() {
            let (mut report, spend) =
                self.deliver(app, event, msg, &permit, body, before_post, None);
            if let Some(lease) = spend {
                let spent = self.ledger.consume(&lease);
                self.count_spent(&lease, &spent);
                apply_spent(&mut report, &lease, spent);
            }
            return (report, None);
        }
        let claimed =
            self.ledger
                .claim_and_take(key, CLAIM_LEASE_MS, &app.appid, &msg.touser, &permit.0);
        let report = match claimed {
            Err(e) => SendReport {
                result: Err(e),
                outcome: None,
            },
            Ok(ClaimedTake::Done(previous)) => duplicate(msg, event, &previous),
            Ok(ClaimedTake::InFlight) => {
                let mut o = Outcome::new(msg, event, SendStatus::Uncertain);
                o.errmsg = format!("another send with idempotency key {key} is under way");
                SendReport {
                    result: Err(Error::Uncertain(o.errmsg.clone())),
                    outcome: Some(o),
                }
            }
            Ok(ClaimedTake::Fresh(first)) => {
                // Without a first lease the store did not keep the claim.
                let claim_kept = matches!(first, Ok(Some(_)));
                let (mut report, spend) =
                    self.deliver(app, event, msg, &permit, body, before_post, Some(first));
                let mut text = None;
                let settled = match (report.outcome.as_mut(), spend) {
                    // Delivered, or maybe delivered: a retry must not send
                    // again. The use is spent and the outcome recorded in one
                    // step where the store can.
                    (Some(o), Some(lease))
                        if matches!(o.status, SendStatus::Sent | SendStatus::Uncertain) =>
                    {
                        let uncertain = o.status == SendStatus::Uncertain;
                        let done = self.ledger.consume_and_complete(&lease, key, &mut |left| {
                            o.permit = left
                                .filter(|_| !uncertain)
                                .map(|l| permit_use(lease.kind, l.uses));
                            o.elapsed_ms = started.elapsed().as_millis() as u64;
                            serde_json::to_string(&*o).unwrap_or_default()
                        });
                        self.count_spent(&lease, &done.spent);
                        if let Err(e) = done.spent {
                            if report.result.is_ok() {
                                report.result = Err(e);
                            }
                        }
                        text = Some(done.outcome);
                        done.recorded
                    }
                    (Some(o), None)
                        if matches!(o.status, SendStatus::Sent | SendStatus::Uncertain) =>
                    {
                        o.elapsed_ms = started.elapsed().as_millis() as u64;
                        let record = serde_json::to_string(o).unwrap_or_default();
                        let stored = self.ledger.idempotency_complete(key, &record);
                        text = Some(record);
                        stored
                    }
                    (_, spend) => {
                        if let Some(lease) = spend {
                            let spent = self.ledger.consume(&lease);
                            self.count_spent(&lease, &spent);
                            apply_spent(&mut report, &lease, spent);
                        }
                        if claim_kept {
                            self.ledger.idempotency_release(key)
                        } else {
                            Ok(())
                        }
                    }
                };
                if settled.is_ok() {
                    if let Some(o) = report.outcome.as_ref() {
                        self.link_msgid(app, key, o);
                    }
                }
                let report = match settled {
                    Ok(()) => report,
                    // The message went out but the record did not stick: say so
                    // rather than pretend all is well.
                    Err(e) if report.result.is_ok() => SendReport {
                        result: Err(e),
                        outcome: report.outcome,
                    },
                    Err(_) => report,
                };
                return (report, text);
            }
        };
        (report, None)
    }

    /// Takes permits and POSTs until the policy settles the send. `permit`:
    /// what [`permit_request`] gave for `msg`. `rendered`:
    /// the subscribe body's text, when the message's map was left empty.
    /// `first`: the first take's result when the caller already took.
    /// Returns the report and the lease whose use is to be spent (delivered,
    /// refused, or maybe delivered): the caller spends it, so that it can
    /// record the outcome in the same step.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &self,
        app: &App,
        event: &str,
        msg: &RenderedMessage,
        permit: &(PermitRequest, &'static str),
        rendered: Option<&str>,
        before_post: &dyn Fn() -> Result<()>,
        mut first: Option<Result<Option<Lease>>>,
    ) -> (SendReport, Option<Lease>) {
        let (request, path) = (&permit.0, permit.1);
        let mut outcome = Outcome::new(msg, event, SendStatus::NoPermit);
        let max_retries = self.config().max_retries;
        for _ in 0..MAX_PERMITS_PER_SEND {
            let taken = match first.take() {
                Some(taken) => taken,
                None => self.ledger.take(&app.appid, &msg.touser, request),
            };
            let lease = match taken {
                Ok(Some(lease)) => lease,
                Ok(None) => return (no_permit(outcome, msg, event), None),
                Err(e) => return (fail(outcome, e), None),
            };
            let body = match rendered {
                Some(text) if msg.kind == MessageKind::Subscribe => Cow::Borrowed(text),
                _ => Cow::Owned(body_for(msg, &lease)),
            };
            let mut retries = 0;
            loop {
                if let Err(e) = before_post() {
                    let _ = self.ledger.give_back(&lease);
                    return (fail(outcome, e), None);
                }
                let answer = self.post_wechat(app, path, body.as_bytes());
                outcome.attempts += match &answer {
                    Ok(reply) => reply.requests,
                    Err(CallError::NoToken(_)) => 0,
                    Err(_) => 1,
                };
                let reply = match answer {
                    Ok(reply) => reply,
                    Err(call) => {
                        match self.settle_call_error(call, &lease, &mut retries, max_retries) {
                            Some((e, spend)) => {
                                return (finish_error(outcome, e), spend.then_some(lease))
                            }
                            None => continue,
                        }
                    }
                };
                outcome.errcode = reply.errcode;
                outcome.errmsg = reply.errmsg.clone();
                match policy_for(reply.errcode) {
                    Policy::Sent => {
                        outcome.status = SendStatus::Sent;
                        outcome.msgid = reply.json.get("msgid").cloned();
                        let report = SendReport {
                            result: Ok(()),
                            outcome: Some(outcome),
                        };
                        return (report, Some(lease));
                    }
                    Policy::Refused => {
                        outcome.status = SendStatus::Failed;
                        let e = Error::NoPermit(format!(
                            "{} has no subscription left for template {} (errcode 43101: {})",
                            msg.touser, msg.template_id, reply.errmsg
                        ));
                        let report = SendReport {
                            result: Err(e),
                            outcome: Some(outcome),
                        };
                        return (report, Some(lease));
                    }
                    Policy::Retry { backoff_ms } if retries < max_retries => {
                        self.clock
                            .sleep_ms((backoff_ms << retries).min(MAX_BACKOFF_MS));
                        retries += 1;
                    }
                    // A subscribe grant is a count of uses, not one token: these
                    // form_id codes say nothing about it, and discarding it would
                    // drop every use the user accumulated (and the leases other
                    // processes hold on it).
                    Policy::NextPermit if lease.kind != Kind::Subscribe => {
                        if let Err(e) = self.ledger.discard(&lease) {
                            return (fail(outcome, e), None);
                        }
                        break;
                    }
                    policy @ (Policy::Retry { .. }
                    | Policy::Fail
                    | Policy::NextPermit
                    | Policy::NextMinute) => {
                        let _ = self.ledger.give_back(&lease);
                        outcome.status = SendStatus::Failed;
                        if policy == Policy::NextMinute {
                            let now = self.clock.now_ms();
                            let next = (now.div_euclid(60_000) + 1) * 60_000;
                            outcome.retry_after_ms = u64::try_from(next - now).ok();
                        }
                        let e = Error::WeChat {
                            errcode: reply.errcode,
                            errmsg: explain(reply.errcode, &reply.errmsg, event, msg.kind, &body),
                        };
                        let report = SendReport {
                            result: Err(e),
                            outcome: Some(outcome),
                        };
                        return (report, None);
                    }
                }
            }
        }
        outcome.status = SendStatus::Failed;
        let e = Error::NoPermit(format!(
            "{}: the first {MAX_PERMITS_PER_SEND} permits of {} were all rejected by WeChat (errcode {})",
            event, msg.touser, outcome.errcode
        ));
        let report = SendReport {
            result: Err(e),
            outcome: Some(outcome),
        };
        (report, None)
    }

    /// Counts a spent use in the metrics.
    fn count_spent(&self, lease: &Lease, spent: &Result<Remaining>) {
        if spent.is_ok() {
            self.metrics.record_permit_consumed(lease.kind.as_str());
        }
    }

    /// Settles a transport failure: `None` to try again, else the error to
    /// report and whether the use is to be spent (WeChat may have the
    /// message); otherwise the permit was given back.
    fn settle_call_error(
        &self,
        call: CallError,
        lease: &Lease,
        retries: &mut u32,
        max_retries: u32,
    ) -> Option<(Error, bool)> {
        let retryable = matches!(
            call,
            CallError::NotSent(_)
                | CallError::HttpStatus {
                    status: 502 | 503,
                    ..
                }
        );
        if retryable && *retries < max_retries {
            self.clock
                .sleep_ms((200u64 << *retries).min(MAX_BACKOFF_MS));
            *retries += 1;
            return None;
        }
        if call.may_have_reached_wechat() && !retryable {
            // The message may be on the user's phone: the use is spent.
            let e = Error::Uncertain(format!(
                "{call}; the message may have been delivered, so it is not sent again"
            ));
            return Some((e, true));
        }
        let _ = self.ledger.give_back(lease);
        Some((call.into_error(), false))
    }
}

/// The permit a message needs, and the path it is POSTed to.
fn permit_request(msg: &RenderedMessage) -> (PermitRequest, &'static str) {
    match msg.kind {
        MessageKind::Subscribe => (PermitRequest::subscribe(&msg.template_id), SUBSCRIBE_PATH),
        MessageKind::Template => (
            PermitRequest::legacy(msg.order_sn.as_deref()),
            TEMPLATE_PATH,
        ),
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

fn permit_use(kind: Kind, remaining: u64) -> PermitUse {
    PermitUse {
        kind: kind.as_str(),
        remaining,
    }
}

/// The body to POST: the rendered one, plus the form_id / prepay_id of a legacy send.
fn body_for(msg: &RenderedMessage, lease: &Lease) -> String {
    match msg.kind {
        MessageKind::Subscribe => serde_json::to_string(&msg.body).unwrap_or_default(),
        MessageKind::Template => {
            let mut body = msg.body.clone();
            body.insert("form_id".into(), lease.value.clone().into());
            serde_json::to_string(&body).unwrap_or_default()
        }
    }
}

/// WeChat's errmsg, with what the shop developer should do where that is known.
/// `body`: the JSON that was POSTed (45168 names its free-text keywords).
fn explain(errcode: i64, errmsg: &str, event: &str, kind: MessageKind, body: &str) -> String {
    match errcode {
        45011 => format!(
            "{errmsg} (WeChat's per-minute quota of this API is spent: not retried now; retry from the start of the next minute)"
        ),
        45168 => format!(
            "{errmsg} (the text of {event} has a word on WeChat's content blacklist; WeChat does not say which keyword: look at the free text of {})",
            free_text_keywords(body)
        ),
        45103 | 45109 if kind == MessageKind::Template => format!(
            "{errmsg} (WeChat retired template messages in January 2020: map the event {event} to a subscribe template, kind \"subscribe\")"
        ),
        40037 => format!("{errmsg} (the template_id mapped for {event} is not one of this app's templates)"),
        41030 => format!("{errmsg} (the page mapped for {event} is not a page of the published mini program)"),
        47003 => {
            // WeChat names the keyword as `data.<keyword>` (unverified beyond
            // the answers seen: "argument invalid! data.thing2.value invalid").
            let keyword = errmsg
                .split("data.")
                .nth(1)
                .and_then(|rest| rest.split(['.', ' ']).next())
                .filter(|k| !k.is_empty());
            let which = keyword.map_or(String::new(), |k| format!(" ({k})"));
            format!(
                "{errmsg} (the mapping of {event} does not fit its template: a keyword{which} the template does not have, \
                 one it has that the mapping leaves out, or a value that breaks the keyword's rule; \
                 compare the mapping's data with the template's content from /wxaapi/newtmpl/gettemplate)"
            )
        }
        _ => errmsg.to_string(),
    }
}

/// The keywords of a POSTed body whose values are free text (where a blocked
/// word can be), e.g. "thing3, name5"; "its keywords" when there are none.
fn free_text_keywords(body: &str) -> String {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let names: Vec<&str> = parsed
        .get("data")
        .and_then(serde_json::Value::as_object)
        .map(|data| {
            data.keys()
                .map(String::as_str)
                .filter(|k| {
                    KeywordType::of_keyword(k).is_some_and(|t| {
                        matches!(
                            t,
                            KeywordType::Thing
                                | KeywordType::ShortThing
                                | KeywordType::Name
                                | KeywordType::Phrase
                                | KeywordType::Other
                        )
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "its keywords".to_string()
    } else {
        names.join(", ")
    }
}

fn no_permit(mut outcome: Outcome, msg: &RenderedMessage, event: &str) -> SendReport {
    outcome.status = if outcome.attempts == 0 {
        SendStatus::NoPermit
    } else {
        SendStatus::Failed
    };
    let what = match msg.kind {
        MessageKind::Subscribe => format!("subscription grant for template {}", msg.template_id),
        MessageKind::Template => "form_id or paid prepay_id".to_string(),
    };
    let e = Error::NoPermit(format!("{event}: {} has no usable {what}", msg.touser));
    SendReport {
        result: Err(e),
        outcome: Some(outcome),
    }
}

fn fail(mut outcome: Outcome, e: Error) -> SendReport {
    if outcome.status != SendStatus::Sent {
        outcome.status = SendStatus::Failed;
    }
    SendReport {
        result: Err(e),
        outcome: Some(outcome),
    }
}

fn finish_error(mut outcome: Outcome, e: Error) -> SendReport {
    outcome.status = if matches!(e, Error::Uncertain(_)) {
        SendStatus::Uncertain
    } else {
        SendStatus::Failed
    };
    outcome.errmsg = e.to_string();
    SendReport {
        result: Err(e),
        outcome: Some(outcome),
    }
}

fn duplicate(msg: &RenderedMessage, event: &str, previous: &str) -> SendReport {
    let prev: serde_json::Value = serde_json::from_str(previous).unwrap_or_default();
    let mut o = Outcome::new(msg, event, SendStatus::Duplicate);
    o.errcode = prev.get("errcode").and_then(|v| v.as_i64()).unwrap_or(0);
    o.errmsg = format!(
        "already {} by an earlier send with this idempotency key",
        prev.get("status")
            .and_then(|v| v.as_str())
            .unwrap_or("sent")
    );
    o.msgid = prev.get("msgid").cloned();
    o.delivery = prev
        .get("delivery")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    SendReport {
        result: Ok(()),
        outcome: Some(o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyClaim;

    #[test]
    fn every_errcode_of_the_table_has_its_action() {
        assert_eq!(policy_for(0), Policy::Sent);
        assert_eq!(policy_for(43101), Policy::Refused);
        assert!(matches!(policy_for(-1), Policy::Retry { .. }));
        assert_eq!(policy_for(45011), Policy::NextMinute);
        assert!(matches!(policy_for(43108), Policy::Retry { .. }));
        assert_eq!(policy_for(41028), Policy::NextPermit);
        assert_eq!(policy_for(41029), Policy::NextPermit);
        for code in [
            40001, 40003, 40014, 40037, 41030, 42001, 45009, 45103, 45109, 47003, 99999,
        ] {
            assert_eq!(policy_for(code), Policy::Fail, "{code}");
        }
    }

    #[test]
    fn a_47003_blames_the_mapping_and_names_the_keyword() {
        let m = explain(
            47003,
            "argument invalid! data.thing9 is not a keyword of the template",
            "order_pay_success",
            MessageKind::Subscribe,
            "{}",
        );
        assert!(
            m.contains("the mapping of order_pay_success does not fit its template"),
            "{m}"
        );
        assert!(
            m.contains("a keyword (thing9) the template does not have"),
            "{m}"
        );
        assert!(!m.contains("a value of"), "{m}");
        let m = explain(
            47003,
            "argument invalid!",
            "order_cancel",
            MessageKind::Subscribe,
            "{}",
        );
        assert!(m.contains("a keyword the template does not have"), "{m}");
    }

    #[test]
    fn retired_template_api_is_explained() {
        let m = explain(
            45103,
            "This API has been unsupported rid: 1",
            "order_delivered",
            MessageKind::Template,
            "{}",
        );
        assert!(m.contains("subscribe template"), "{m}");
        assert!(m.contains("order_delivered"));
        // An event already on a subscribe template is not told to move to one.
        let m = explain(
            45103,
            "unsupported rid: 1",
            "order_delivered",
            MessageKind::Subscribe,
            "{}",
        );
        assert_eq!(m, "unsupported rid: 1");
    }

    #[test]
    fn a_blacklisted_word_is_looked_for_in_the_free_text() {
        let body = r#"{"data":{"character_string1":{"value":"SN1"},"name2":{"value":"张三"},"thing3":{"value":"加多宝"},"site01":{"value":"x"},"amount4":{"value":"¥1"}}}"#;
        let m = explain(
            45168,
            "keyword in blacklist rid: 1",
            "order_pay_success",
            MessageKind::Subscribe,
            body,
        );
        assert!(
            m.ends_with("look at the free text of name2, site01, thing3)"),
            "{m}"
        );
        let m = explain(
            45168,
            "keyword in blacklist",
            "e",
            MessageKind::Subscribe,
            "{}",
        );
        assert!(m.ends_with("look at the free text of its keywords)"), "{m}");
    }

    /// A notifier whose WeChat is in memory: every token fetch and send succeeds.
    fn shop_in_memory() -> (
        Notifier,
        std::sync::Arc<crate::wechat::http::MemoryTransport>,
    ) {
        use crate::wechat::http::{HttpReply, MemoryTransport};
        let n = Notifier::with_clock(std::sync::Arc::new(crate::clock::ManualClock::at(
            1_700_000_000,
        )));
        n.configure(r#"{"api_base":"http://wechat.test"}"#).unwrap();
        n.register_app(r#"{"appid":"wx00000000000000b2","secret":"S"}"#)
            .unwrap();
        let doc = include_str!("../../examples/mappings.json");
        n.load_mappings("wx00000000000000b2", doc).unwrap();
        let wechat = MemoryTransport::new(|req| {
            Ok(HttpReply::json(&if req.route() == SUBSCRIBE_PATH {
                serde_json::json!({"errcode": 0, "errmsg": "ok", "msgid": 77})
            } else {
                serde_json::json!({"access_token": "T", "expires_in": 7200})
            }))
        });
        n.set_transport(wechat.clone());
        (n, wechat)
    }

    fn pay_success(order_sn: &str) -> String {
        let fields = serde_json::json!({
            "order_id": 1, "order_sn": order_sn, "order_amount": "9.90",
            "order_total_goods_name": "袜子", "order_total_goods_num": 1, "pay_time": 1_795_354_200
        });
        serde_json::json!({"touser": "oBuyer", "fields": fields}).to_string()
    }

    #[test]
    fn the_outcome_json_is_the_text_recorded_under_the_key() {
        let (n, _) = shop_in_memory();
        let tpl = n
            .render_message(
                "wx00000000000000b2",
                "order_pay_success",
                &pay_success("SN1"),
            )
            .unwrap()
            .template_id;
        let grant = serde_json::json!({"openid": "oBuyer", "kind": "subscribe", "template_id": tpl, "count": 2});
        n.add_permit("wx00000000000000b2", &grant.to_string())
            .unwrap();

        let (result, text) = n.send_json(
            "wx00000000000000b2",
            "order_pay_success",
            &pay_success("SN1"),
        );
        result.unwrap();
        let text = text.unwrap();
        let outcome: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(outcome["status"], "sent");
        assert_eq!(outcome["msgid"], 77);
        assert_eq!(outcome["permit"]["remaining"], 1);
        let key = outcome["idempotency_key"].as_str().unwrap();
        match n.ledger.idempotency_claim(key, 1_000).unwrap() {
            KeyClaim::Done(recorded) => assert_eq!(recorded, text),
            other => panic!("expected the recorded outcome, got {other:?}"),
        }
    }

    #[test]
    fn a_subscribe_send_posts_exactly_the_rendered_body() {
        let (n, wechat) = shop_in_memory();
        let appid = "wx00000000000000b2";
        let payload = pay_success("SN2");
        let msg = n
            .render_message(appid, "order_pay_success", &payload)
            .unwrap();
        let grant = serde_json::json!({"openid": "oBuyer", "kind": "subscribe", "template_id": msg.template_id, "count": 1});
        n.add_permit(appid, &grant.to_string()).unwrap();

        let report = n.send(appid, "order_pay_success", &payload);
        report.result.unwrap();
        let posts: Vec<_> = wechat
            .requests()
            .into_iter()
            .filter(|r| r.route() == SUBSCRIBE_PATH)
            .collect();
        assert_eq!(posts.len(), 1);
        let posted = String::from_utf8(posts[0].body.clone().unwrap()).unwrap();
        assert_eq!(posted, serde_json::to_string(&msg.body).unwrap());
        assert_eq!(
            posted,
            n.render(appid, "order_pay_success", &payload).unwrap()
        );
        assert!(posted.contains("\"touser\":\"oBuyer\""), "{posted}");
    }
}
