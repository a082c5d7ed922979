//! Send: render, then the send pipeline (`run.rs`, driven by the send
//! machine), then the outcome. Here: the outcome and its JSON, the send calls
//! of the facade, and how a failed send is worded. An idempotency key makes a
//! retried PHP request a duplicate instead of a second message.

use std::time::Instant;

use serde::Serialize;

use super::Notifier;
use crate::error::{Error, Result};
use crate::journal::SendRecord;
use crate::ledger::{Kind, Lease, PermitRequest};
use crate::message::rules::KeywordType;
use crate::message::{MessageKind, RenderedMessage};
use crate::outbox::OutboxStore;
use crate::send_machine::flush::Trail;
use crate::wechat::errcodes::{meaning, Hint};
use crate::wechat::App;

const SUBSCRIBE_PATH: &str = "/cgi-bin/message/subscribe/send";
const TEMPLATE_PATH: &str = "/cgi-bin/message/wxopen/template/send";

/// The outbox claim of a flushed message: marked as on its way before each post.
pub(crate) struct Posting<'a> {
    pub store: &'a dyn OutboxStore,
    pub id: u64,
    pub token: i64,
}

/// One message to send.
pub(crate) struct Job<'a> {
    pub app: &'a App,
    pub event: &'a str,
    pub msg: &'a RenderedMessage,
    /// The subscribe body's text when `render_for_send` wrote it (then `msg.body` is empty).
    pub rendered: Option<&'a str>,
    /// Set for a flush.
    pub posting: Option<&'a Posting<'a>>,
}

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
    /// An earlier send with this idempotency key finished.
    Duplicate,
    /// Another send with this idempotency key is under way right now (a
    /// retried request racing the first, or the outbox's flush): nothing was
    /// done here; that send's outcome will be the key's (status UNCERTAIN at
    /// the C boundary, `SendInProgressException` in PHP).
    InProgress,
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
            SendStatus::InProgress => "in_progress",
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
    /// What was done with the event's service card, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card: Option<CardOutcome>,
}

impl Outcome {
    pub(super) fn new(msg: &RenderedMessage, event: &str, status: SendStatus) -> Outcome {
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
            card: None,
        }
    }
}

/// What a send did with the event's card (the outcome JSON's `card`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CardOutcome {
    pub notify_type: u32,
    pub status: u32,
    /// `applied`, `duplicate` (the status was applied before), `queued` (kept
    /// in the outbox: not checkable yet, waiting for the card's activation or
    /// another update of the order, WeChat not reached), `stopped` (the buyer
    /// refused the card), `refused` (a move the card does not allow),
    /// `failed`, `uncertain`.
    pub result: &'static str,
    pub errcode: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub errmsg: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_id: Option<u64>,
}

/// A send's result: the status and, whenever the send got as far as looking
/// for a permit, its outcome.
#[derive(Debug)]
pub struct SendReport {
    pub result: Result<()>,
    pub outcome: Option<Outcome>,
    /// What the send machine saw of the request's way out (for the outbox).
    pub trail: Trail,
    /// The outcome's JSON when the idempotency record already serialized it.
    pub(crate) recorded: Option<String>,
}

impl SendReport {
    pub(crate) fn new(result: Result<()>, outcome: Option<Outcome>) -> SendReport {
        SendReport {
            result,
            outcome,
            trail: Trail::default(),
            recorded: None,
        }
    }

    /// A send that failed before it looked for a permit: no outcome.
    pub(crate) fn failed(e: Error) -> SendReport {
        SendReport::new(Err(e), None)
    }
}

impl Notifier {
    /// Sends the event's message to `payload.touser`. See `SendReport`.
    pub fn send(&self, appid: &str, event: &str, payload_json: &str) -> SendReport {
        let started = Instant::now();
        // One write of this send's figures to a shared store, not one per figure.
        let _figures = self.metrics.batch();
        match self.card_channel(appid, event) {
            Some(channel) => self.send_with_card(appid, event, payload_json, channel, started),
            None => self.send_message(appid, event, payload_json, started),
        }
    }

    /// The subscribe (or legacy template) message of a send.
    pub(crate) fn send_message(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
        started: Instant,
    ) -> SendReport {
        let prepared = self
            .check_configured()
            .and_then(|()| self.apps.get(appid))
            .and_then(|app| Ok((app, self.render_for_send(appid, event, payload_json)?)));
        let (app, (msg, body)) = match prepared {
            Ok(p) => p,
            Err(e) => return SendReport::failed(e),
        };
        let job = Job {
            app: &app,
            event,
            msg: &msg,
            rendered: body.as_deref(),
            posting: None,
        };
        let sent = self.send_job(&job, started);
        let report = match &sent.result {
            Err(e)
                if msg.enqueue_on_network_error
                    && not_the_messages_fault(e)
                    && sent
                        .outcome
                        .as_ref()
                        .is_none_or(|o| o.status == SendStatus::Failed) =>
            {
                self.enqueue_instead(appid, event, &msg, payload_json, sent)
            }
            _ => sent,
        };
        self.count_send(appid, event, &report);
        report
    }

    /// A send that failed through no fault of the message, asked to fall back
    /// on the outbox (`"on_failure": "enqueue"`): exactly that message (same
    /// payload, same idempotency key) is enqueued for the next flush, which
    /// sends it once the cause is gone. When the outbox cannot keep it
    /// either, the send fails with both reasons.
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
        report.recorded = None;
        match self.enqueue_message(appid, event, payload_json) {
            Ok((enqueued, _key)) => {
                let o = report
                    .outcome
                    .get_or_insert_with(|| Outcome::new(msg, event, SendStatus::Queued));
                o.status = SendStatus::Queued;
                o.outbox_id = Some(enqueued.id);
                o.errmsg = format!("not sent, kept in the outbox: {why}");
                report.result = Ok(());
            }
            Err(e) => {
                let both = format!(
                    "{why}; on_failure \"enqueue\": the outbox could not keep the message either: {e}"
                );
                report.result = Err(match e {
                    Error::Store(_) => Error::Store(both),
                    _ => Error::Network(both),
                });
            }
        }
        report
    }

    /// Sends a message rendered earlier (the outbox's flush): the message is
    /// marked as on its way in the outbox before each post.
    pub(crate) fn send_rendered(
        &self,
        app: &App,
        event: &str,
        msg: &RenderedMessage,
        started: Instant,
        posting: &Posting<'_>,
    ) -> SendReport {
        let job = Job {
            app,
            event,
            msg,
            rendered: None,
            posting: Some(posting),
        };
        self.send_job(&job, started)
    }

    /// One send, with its store problems noted and its figures observed.
    fn send_job(&self, job: &Job<'_>, started: Instant) -> SendReport {
        let mut report = self.run_send(job, started);
        report.result = self.noted("send", report.result);
        if let Some(outcome) = report.outcome.as_mut() {
            let elapsed = started.elapsed();
            if report.recorded.is_none() {
                outcome.elapsed_ms = elapsed.as_millis() as u64;
            }
            self.observe_send(&SendRecord {
                appid: job.app.appid.as_str(),
                event: job.event,
                touser: Some(&job.msg.touser),
                status: outcome.status.as_str(),
                errcode: outcome.errcode,
                errmsg: Some(&outcome.errmsg),
                attempts: outcome.attempts,
                elapsed,
                permit: outcome.permit.as_ref().map(|p| p.kind),
                msgid: outcome.msgid.as_ref().and_then(|m| m.as_i64()),
            });
        }
        report
    }

    /// `send` for the C boundary: the status and the outcome JSON.
    pub fn send_json(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> (Result<()>, Option<String>) {
        let report = self.send(appid, event, payload_json);
        let text = report.recorded.or_else(|| {
            report
                .outcome
                .as_ref()
                .map(|o| serde_json::to_string(o).unwrap_or_default())
        });
        (report.result, text)
    }
}

/// The permit a message needs, and the path it is POSTed to.
pub(super) fn permit_request(msg: &RenderedMessage) -> (PermitRequest, &'static str) {
    match msg.kind {
        MessageKind::Subscribe => (PermitRequest::subscribe(&msg.template_id), SUBSCRIBE_PATH),
        MessageKind::Template => (
            PermitRequest::legacy(msg.order_sn.as_deref()),
            TEMPLATE_PATH,
        ),
    }
}

pub(super) fn permit_use(kind: Kind, remaining: u64) -> PermitUse {
    PermitUse {
        kind: kind.as_str(),
        remaining,
    }
}

/// The body to POST: the rendered one, plus the form_id / prepay_id of a legacy send.
pub(super) fn body_for(msg: &RenderedMessage, lease: &Lease) -> String {
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
/// `body`: the JSON that was POSTed (a blacklisted word is looked for in its free text).
pub(super) fn explain(
    errcode: i64,
    errmsg: &str,
    event: &str,
    kind: MessageKind,
    body: &str,
) -> String {
    match meaning(errcode).hint {
        Hint::MinuteQuota => format!(
            "{errmsg} (WeChat's per-minute quota of this API is spent: not retried now; retry from the start of the next minute)"
        ),
        Hint::Blacklisted => format!(
            "{errmsg} (the text of {event} has a word on WeChat's content blacklist; WeChat does not say which keyword: look at the free text of {})",
            free_text_keywords(body)
        ),
        Hint::RetiredTemplateApi if kind == MessageKind::Template => format!(
            "{errmsg} (WeChat retired template messages in January 2020: map the event {event} to a subscribe template, kind \"subscribe\")"
        ),
        Hint::UnknownTemplate => format!(
            "{errmsg} (the template_id mapped for {event} is not one of this app's templates: \
             the mini program's admin deleted it, or it belongs to another app; \
             pick the template again in the mapping editor and save the mapping)"
        ),
        Hint::CapabilityBanned => format!(
            "{errmsg} (WeChat has banned the subscribe-message capability of this mini program or of the template mapped for {event}: \
             not retried, the grant is kept; check 违规记录 and the template's status under 订阅消息 in mp.weixin.qq.com)"
        ),
        Hint::ApiUnauthorized => format!(
            "{errmsg} (the mini program lacks the permission for this API: \
             check that the app is a mini program with 订阅消息 enabled in mp.weixin.qq.com, and that the appid and secret registered are its own)"
        ),
        Hint::BodyFormat => format!(
            "{errmsg} (WeChat could not read the body sent for {event}: a bug of the request, not retried; \
             compare the rendered body (fashop_notify_render) with the API's JSON format)"
        ),
        Hint::UnknownPage => format!("{errmsg} (the page mapped for {event} is not a page of the published mini program)"),
        Hint::MappingMismatch => {
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
        Hint::None | Hint::RetiredTemplateApi => errmsg.to_string(),
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

pub(super) fn no_permit(mut outcome: Outcome, msg: &RenderedMessage, event: &str) -> SendReport {
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
    SendReport::new(Err(e), Some(outcome))
}

pub(super) fn fail(mut outcome: Outcome, e: Error) -> SendReport {
    if outcome.status != SendStatus::Sent {
        outcome.status = SendStatus::Failed;
    }
    SendReport::new(Err(e), Some(outcome))
}

pub(super) fn finish_error(mut outcome: Outcome, e: Error) -> SendReport {
    outcome.status = if matches!(e, Error::Uncertain(_)) {
        SendStatus::Uncertain
    } else {
        SendStatus::Failed
    };
    // A token fetch's errcode (40164, 45009 …): the host branches on it.
    if outcome.errcode == 0 {
        outcome.errcode = e.errcode().unwrap_or(0);
    }
    outcome.errmsg = e.to_string();
    SendReport::new(Err(e), Some(outcome))
}

/// Whether a failed send may go to the outbox to be sent later: the failure
/// was not the message's (WeChat not reached, the store, or an errcode the
/// table calls so: a token fetch's credentials, IP or quota, WeChat busy, a
/// quota). Never one that may have reached WeChat.
fn not_the_messages_fault(e: &Error) -> bool {
    match e {
        Error::Network(_) | Error::Store(_) => true,
        Error::WeChat { errcode, .. } => meaning(*errcode).not_the_message,
        _ => false,
    }
}

pub(super) fn duplicate(msg: &RenderedMessage, event: &str, previous: &str) -> SendReport {
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
    SendReport::new(Ok(()), Some(o))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KeyClaim;

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
