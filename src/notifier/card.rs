//! Service cards in send, enqueue and flush: an event whose channel has a card
//! renders its update, applies it through the card machine (`run.rs`), keeps
//! in the outbox what cannot be applied yet, and says in the outcome what was
//! done with the card. Also reading an order's card for the host.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::send::{CardOutcome, Outcome, SendReport, SendStatus};
use super::Notifier;
use crate::error::{Error, Result};
use crate::journal::CardLine;
use crate::message::{render_card, CardUpdate, Channel};
use crate::outbox::{Enqueued, NewMessage, Stored};
use crate::send_machine::card::{CardEnd, Later};
use crate::wechat::errcodes::card_advice;
use crate::wechat::App;

use super::run::CardRun;

impl Notifier {
    /// The channel of `event` when it updates a card; `None` for a message
    /// only (or when the app or mapping is missing: the message path says so).
    pub(crate) fn card_channel(&self, appid: &str, event: &str) -> Option<Channel> {
        let m = self.mappings.get(appid)?;
        let e = m.event(event)?;
        e.card.as_ref().map(|_| e.channel)
    }

    /// The card update `payload_json` renders to for `event`.
    pub(crate) fn render_card_update(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> Result<CardUpdate> {
        let mappings = self.mappings_of(appid)?;
        let e = mappings
            .event(event)
            .filter(|e| e.enabled)
            .ok_or_else(|| Error::Mapping(format!("event {event} is not mapped or is disabled")))?;
        let card = e
            .card
            .as_ref()
            .ok_or_else(|| Error::Mapping(format!("event {event} has no card")))?;
        let payload: Value = serde_json::from_str(payload_json)
            .map_err(|e| Error::invalid(format!("payload_json is not valid JSON: {e}")))?;
        let touser = payload
            .get("touser")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::invalid("payload_json.touser: the buyer's openid is required"))?;
        let empty = Map::new();
        let fields = payload
            .get("fields")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        render_card(card, touser, fields)
    }

    /// `send` of an event whose channel has a card: the card, and for
    /// "both" the message as well (its outcome carries the card's).
    pub(crate) fn send_with_card(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
        channel: Channel,
        started: Instant,
    ) -> SendReport {
        let prepared = self
            .check_configured()
            .and_then(|()| self.apps.get(appid))
            .and_then(|app| Ok((app, self.render_card_update(appid, event, payload_json)?)));
        let message = (channel == Channel::Both)
            .then(|| self.send_message(appid, event, payload_json, started));
        let (app, update) = match prepared {
            Ok(p) => p,
            Err(e) => {
                return match message {
                    // The message went its way; the card's bad input is the error.
                    Some(mut report) => {
                        report.result = Err(e);
                        report
                    }
                    None => SendReport::failed(e),
                };
            }
        };
        let (card, result) = self.update_card(&app, event, &update);
        match message {
            Some(mut report) => {
                match report.outcome.as_mut() {
                    Some(o) => o.card = Some(card),
                    // The message failed before it had an outcome: the card's.
                    None => {
                        report.outcome = card_only_report(event, &card, Ok(()), started).outcome
                    }
                }
                report.recorded = None;
                report
            }
            None => card_only_report(event, &card, result, started),
        }
    }

    /// Applies `update` now; what cannot be applied yet goes to the outbox.
    fn update_card(
        &self,
        app: &App,
        event: &str,
        update: &CardUpdate,
    ) -> (CardOutcome, Result<()>) {
        let run = self.run_card(app, update);
        let mut outbox_id = None;
        let (result, outcome) = match run.end {
            // WeChat took it but the store did not record it: say so.
            CardEnd::Applied if run.unrecorded.is_some() => {
                let e = run
                    .unrecorded
                    .as_ref()
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                (
                    "applied",
                    Err(Error::store(format!(
                        "the card update was applied but not recorded: {e}"
                    ))),
                )
            }
            CardEnd::Applied => ("applied", Ok(())),
            CardEnd::Duplicate => ("duplicate", Ok(())),
            CardEnd::Stopped => ("stopped", Ok(())),
            CardEnd::Later(_) => match self.enqueue_card(&app.appid, event, update) {
                Ok(e) => {
                    outbox_id = Some(e.id);
                    ("queued", Ok(()))
                }
                Err(e) => ("failed", Err(e)),
            },
            CardEnd::Illegal => ("refused", Err(card_fault(&run))),
            CardEnd::Failed | CardEnd::Uncertain | CardEnd::StoreFailed => {
                ("failed", Err(card_fault(&run)))
            }
        };
        let result = if run.end == CardEnd::Uncertain {
            "uncertain"
        } else {
            result
        };
        self.observe_card(app, event, update, &run, result);
        let card = card_outcome(update, &run, result, outbox_id);
        (card, outcome)
    }

    /// Counts the update and writes its log line.
    fn observe_card(
        &self,
        app: &App,
        event: &str,
        update: &CardUpdate,
        run: &CardRun,
        result: &str,
    ) {
        self.metrics.record_card_update(
            &update.notify_type.to_string(),
            &update.status.to_string(),
            result,
        );
        self.journal.card_event(&CardLine {
            appid: &app.appid,
            event,
            openid: &update.openid,
            notify_type: update.notify_type,
            status: update.status,
            outcome: result,
            errcode: run.errcode,
            errmsg: &run.errmsg,
            attempts: run.attempts,
        });
    }

    /// Keeps a card update in the outbox; one per (order, status): a second
    /// enqueue of it finds the first.
    pub(crate) fn enqueue_card(
        &self,
        appid: &str,
        event: &str,
        update: &CardUpdate,
    ) -> Result<Enqueued> {
        self.enqueue_card_keyed(appid, event, update)
            .map(|(e, _)| e)
    }

    /// `enqueue_card`, with the update's outbox key.
    pub(crate) fn enqueue_card_keyed(
        &self,
        appid: &str,
        event: &str,
        update: &CardUpdate,
    ) -> Result<(Enqueued, String)> {
        let body = match serde_json::to_value(update) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Error::internal("a card update did not serialize")),
        };
        let message = serde_json::to_string(&Stored::of_card(&update.openid, body))
            .map_err(|e| Error::internal(format!("the card update did not serialize: {e}")))?;
        let now = self.clock.now_ms();
        let new = NewMessage {
            appid: appid.to_string(),
            event: event.to_string(),
            touser: update.openid.clone(),
            idempotency_key: card_key(appid, update),
            message,
            due_ms: now,
        };
        let key = new.idempotency_key.clone();
        let enqueued = self.outbox.enqueue(&new, now)?;
        // Updates of the card that come later wait for this one.
        self.cards
            .for_records()
            .card_queue(appid, &update.code, update.status, true)?;
        Ok((enqueued, key))
    }

    /// The flush of a card update kept in the outbox, as a send report the
    /// outbox settles: applied or done before is sent; waiting for another
    /// update waits uncounted; not checkable yet, not activated yet or not
    /// delivered is tried again (counted); a refusal is dead.
    pub(crate) fn flush_card(
        &self,
        app: &App,
        event: &str,
        stored: &Map<String, Value>,
        started: Instant,
        last: bool,
    ) -> SendReport {
        let update: CardUpdate = match serde_json::from_value(Value::Object(stored.clone())) {
            Ok(u) => u,
            Err(e) => {
                return SendReport::failed(Error::store(format!(
                    "outbox card update is not readable: {e}"
                )))
            }
        };
        let run = self.run_card(app, &update);
        let (result, status, outcome): (&'static str, SendStatus, Result<()>) = match run.end {
            CardEnd::Applied => ("applied", SendStatus::Sent, Ok(())),
            CardEnd::Duplicate => ("duplicate", SendStatus::Duplicate, Ok(())),
            CardEnd::Stopped => ("stopped", SendStatus::Sent, Ok(())),
            CardEnd::Later(why @ (Later::Busy | Later::Behind)) => (
                "queued",
                SendStatus::Failed,
                Err(Error::Uncertain(later_text(why, &run))),
            ),
            CardEnd::Later(why) => (
                "queued",
                SendStatus::Failed,
                Err(Error::Network(later_text(why, &run))),
            ),
            CardEnd::StoreFailed => ("failed", SendStatus::Failed, Err(card_fault(&run))),
            CardEnd::Uncertain => (
                "uncertain",
                SendStatus::Failed,
                Err(Error::Network(explain_card(&run))),
            ),
            CardEnd::Illegal | CardEnd::Failed => {
                ("failed", SendStatus::Failed, Err(card_fault(&run)))
            }
        };
        self.observe_card(app, event, &update, &run, result);
        // Given up for good, or on the last attempt the outbox allows: the
        // card's later updates must not wait for a dead letter.
        let counted_later = matches!(
            run.end,
            CardEnd::Later(Later::NotActivated | Later::CodeUnknown | Later::Unsent)
                | CardEnd::Uncertain
        );
        if matches!(run.end, CardEnd::Illegal | CardEnd::Failed) || (last && counted_later) {
            // Given up: the card's later updates no longer wait for it.
            let store = self.cards.current();
            if let Err(e) = store.card_queue(&app.appid, &update.code, update.status, false) {
                self.journal.store_problem(
                    &self.ledger.describe_store(),
                    "card_queue",
                    &format!(
                        "{e} (status {} of card {} stays in its order's queue: the order's later updates wait behind it)",
                        update.status, update.notify_type
                    ),
                );
            }
        }
        let card = card_outcome(&update, &run, result, None);
        let mut report = card_only_report(event, &card, outcome, started);
        if let Some(o) = report.outcome.as_mut() {
            o.status = status;
        }
        report
    }

    /// An order's card: `{"transaction_id", "notify_type", "statuses", "last",
    /// "pending", "stopped"}` from the store, and with `"openid"` and
    /// `"notify_type"` in the query WeChat's own view (`get_user_notify`'s
    /// `notify_info`) under `"wechat"`.
    pub fn card_status(&self, appid: &str, query_json: &str) -> Result<String> {
        self.check_configured()?;
        let app = self.apps.get(appid)?;
        let q: Value = serde_json::from_str(query_json)
            .map_err(|e| Error::invalid(format!("query_json is not valid JSON: {e}")))?;
        let code = q
            .get("transaction_id")
            .and_then(Value::as_str)
            .filter(|c| crate::message::cards::is_transaction_id(c))
            .ok_or_else(|| Error::invalid("query_json.transaction_id: a WeChat Pay transaction id (28 digits starting with 42) is required"))?;
        let rec = self
            .cards
            .current()
            .card_get(appid, code, self.clock.now_ms())?;
        let mut out = json!({
            "transaction_id": code,
            "notify_type": rec.as_ref().map(|r| r.notify_type),
            "statuses": rec.as_ref().map(|r| r.statuses.clone()).unwrap_or_default(),
            "last": rec.as_ref().and_then(|r| r.last()),
            "pending": rec.as_ref().and_then(|r| r.pending),
            "stopped": rec.as_ref().is_some_and(|r| r.stopped),
            "queued": rec.as_ref().map(|r| r.queued.clone()).unwrap_or_default(),
        });
        if let (Some(openid), Some(t)) = (
            q.get("openid").and_then(Value::as_str),
            q.get("notify_type").and_then(Value::as_u64),
        ) {
            out["wechat"] = self.ask_wechat_card(&app, openid, t, code)?;
        }
        Ok(out.to_string())
    }

    /// `get_user_notify`'s `notify_info`.
    fn ask_wechat_card(
        &self,
        app: &App,
        openid: &str,
        notify_type: u64,
        code: &str,
    ) -> Result<Value> {
        let body =
            json!({"openid": openid, "notify_type": notify_type, "notify_code": code}).to_string();
        let reply = self
            .post_wechat(app, "/wxa/get_user_notify", body.as_bytes())
            .map_err(|c| c.into_error())?;
        if reply.errcode != 0 {
            let advice = card_advice(reply.errcode);
            return Err(Error::WeChat {
                errcode: reply.errcode,
                errmsg: if advice.is_empty() {
                    reply.errmsg
                } else {
                    format!("{} ({advice})", reply.errmsg)
                },
            });
        }
        Ok(reply
            .json
            .get("notify_info")
            .cloned()
            .unwrap_or(Value::Null))
    }
}

/// The outbox key of a card update: one per order and status.
fn card_key(appid: &str, update: &CardUpdate) -> String {
    format!(
        "card:{appid}:{}:{}:{}",
        update.notify_type, update.code, update.status
    )
}

/// WeChat's errmsg with what to check, or the local reason.
/// What a send's outcome JSON says of the card update.
fn card_outcome(
    update: &CardUpdate,
    run: &CardRun,
    result: &'static str,
    outbox_id: Option<u64>,
) -> CardOutcome {
    CardOutcome {
        notify_type: update.notify_type,
        status: update.status,
        result,
        errcode: run.errcode,
        errmsg: explain_card(run),
        attempts: run.attempts,
        outbox_id,
    }
}

fn explain_card(run: &CardRun) -> String {
    let advice = card_advice(run.errcode);
    match (&run.fault, advice.is_empty()) {
        (_, false) => format!("{} ({advice})", run.errmsg),
        (Some(e), true) if run.errcode == 0 => e.to_string(),
        _ => run.errmsg.clone(),
    }
}

fn later_text(why: Later, run: &CardRun) -> String {
    match why {
        Later::Busy => "another update of this order's card is under way".into(),
        Later::Behind => {
            "earlier updates of this order's card wait in the outbox: this one goes after them"
                .into()
        }
        Later::NotActivated => {
            "the card is not activated yet: its first status is still to be applied".into()
        }
        Later::CodeUnknown => explain_card(run),
        Later::Unsent => format!("WeChat was not reached: {}", explain_card(run)),
    }
}

/// The error a card update that did not apply ends with.
fn card_fault(run: &CardRun) -> Error {
    match (&run.fault, run.errcode) {
        (_, code) if code != 0 => Error::WeChat {
            errcode: code,
            errmsg: explain_card(run),
        },
        (Some(Error::InvalidArgument(m)), _) => Error::invalid(m.clone()),
        (Some(Error::Store(m)), _) => Error::Store(m.clone()),
        (Some(e), _) => Error::Network(e.to_string()),
        (None, _) => {
            Error::internal("a card update failed without a reason (a bug, please report it)")
        }
    }
}

/// The report of a send whose event only updates a card.
fn card_only_report(
    event: &str,
    card: &CardOutcome,
    result: Result<()>,
    started: Instant,
) -> SendReport {
    let status = match card.result {
        "applied" => SendStatus::Sent,
        "duplicate" => SendStatus::Duplicate,
        "queued" => SendStatus::Queued,
        // The buyer refused the card: nothing more to do, no error.
        "stopped" => SendStatus::NoPermit,
        "uncertain" => SendStatus::Uncertain,
        _ => SendStatus::Failed,
    };
    let outcome = Outcome {
        status,
        errcode: card.errcode,
        errmsg: card.errmsg.clone(),
        msgid: None,
        attempts: card.attempts,
        permit: None,
        idempotency_key: None,
        delivery: None,
        event: event.to_string(),
        elapsed_ms: started.elapsed().as_millis() as u64,
        retry_after_ms: None,
        outbox_id: card.outbox_id,
        card: Some(card.clone()),
    };
    SendReport::new(result, Some(outcome))
}
