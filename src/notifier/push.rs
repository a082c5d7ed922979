//! WeChat's message push, as the shop's endpoint receives it: the URL check,
//! plain and safe-mode pushes, and what the subscribe events do to the ledger
//! (a popup accept grants, a withdrawal drops grants, a send's result is logged
//! and counted in `fashop_notify_push_events_total`).

use serde_json::{json, Value};
use sha1::{Digest, Sha1};

use super::Notifier;
use crate::error::{Error, Result};
use crate::journal::PushRecord;
use crate::ledger::parse_permit;
use crate::ledger::{Added, KeyClaim};
use crate::push::{
    decrypt, parse_envelope, parse_message, signature_holds, Entry, EventKind, PushCredentials,
    PushMessage, PushMode, PushQuery,
};
use crate::wechat::{App, Grants};

/// How long a push being applied holds its key against a retry of it.
const APPLY_CLAIM_MS: i64 = 60_000;

/// The reply WeChat expects to a push it need not wait for (its guide: an
/// empty string or `success`).
const REPLY_SUCCESS: &str = "success";

impl Notifier {
    /// Handles one request to the shop's push endpoint: `method` (`GET` for
    /// the URL check, `POST` for a push), the raw `query` string and `body`.
    /// Answers `{"reply": "<text to send back to WeChat>", "events": [...]}`.
    ///
    /// A retried push (WeChat retries when the answer is slow) is applied once:
    /// its key (buyer, `CreateTime`, event and entries, as WeChat's guide
    /// advises for events) is claimed through the ledger store's idempotency
    /// records, so processes sharing a store share the check; kept 7 days.
    pub fn handle_push(
        &self,
        appid: &str,
        method: &str,
        query: &str,
        body: &str,
    ) -> Result<String> {
        let app = self.apps.get(appid)?;
        let creds = app.push.as_ref().ok_or_else(|| {
            Error::AppNotConfigured(format!(
                "app {appid} has no push credentials (register_app with \"push\": {{\"token\", \"encoding_aes_key\", \"format\"}})"
            ))
        })?;
        let q = PushQuery::parse(query).map_err(|e| redacted(e, creds))?;
        match method.to_ascii_uppercase().as_str() {
            "GET" => self.push_handshake(appid, creds, &q),
            "POST" => self.push_message(&app, creds, &q, body),
            other => Err(Error::invalid(format!(
                "method must be \"GET\" (the URL check) or \"POST\" (a push), got {:?}",
                other.chars().take(16).collect::<String>()
            ))),
        }
        .map_err(|e| redacted(e, creds))
    }

    /// The URL check of the admin's server configuration: `echostr` back when
    /// the signature holds. WeChat's check is the signature alone: the clock
    /// window is not applied, so a skewed server clock cannot break the
    /// handshake (an echo changes nothing; events keep their replay checks).
    fn push_handshake(
        &self,
        _appid: &str,
        creds: &PushCredentials,
        q: &PushQuery,
    ) -> Result<String> {
        let (timestamp, nonce) = (
            q.need(&q.timestamp, "timestamp")?,
            q.need(&q.nonce, "nonce")?,
        );
        let echostr = q.need(&q.echostr, "echostr")?;
        let signature = q.need(&q.signature, "signature")?;
        if !signature_holds(creds.token(), &[timestamp, nonce], signature) {
            return Err(bad_signature("signature"));
        }
        Ok(json!({"reply": echostr, "events": []}).to_string())
    }

    /// `timestamp` and `nonce`, the timestamp within the app's window of the
    /// notifier's clock. A push outside it is logged and counted with the
    /// skew it saw: a wrong server clock must not drop grants unseen.
    fn signed_time<'q>(
        &self,
        appid: &str,
        creds: &PushCredentials,
        q: &'q PushQuery,
    ) -> Result<(&'q str, &'q str)> {
        let timestamp = q.need(&q.timestamp, "timestamp")?;
        let nonce = q.need(&q.nonce, "nonce")?;
        let ts: i64 = timestamp.parse().map_err(|_| {
            Error::invalid(format!(
                "timestamp must be unix seconds, got {:?}",
                timestamp.chars().take(24).collect::<String>()
            ))
        })?;
        let now = self.clock.now_ms().div_euclid(1000);
        let skew = now.saturating_sub(ts);
        let window = i64::try_from(creds.max_skew_secs()).unwrap_or(i64::MAX);
        if skew.saturating_abs() > window {
            let side = if skew > 0 { "behind" } else { "ahead of" };
            let e = Error::invalid(format!(
                "timestamp {ts} is {} s {side} this server's clock ({now}), more than {window} s (push.max_skew_secs): check the server's clock (NTP), or a replayed request",
                skew.saturating_abs()
            ));
            return Err(self.push_refused(appid, "timestamp_out_of_window", e));
        }
        Ok((timestamp, nonce))
    }

    /// Counts and logs a refused push, and hands its error back.
    fn push_refused(&self, appid: &str, reason: &str, e: Error) -> Error {
        self.metrics.record_push_event("refused", reason);
        self.journal.push_refused(appid, reason, &e.to_string());
        e
    }

    fn push_message(
        &self,
        app: &App,
        creds: &PushCredentials,
        q: &PushQuery,
        body: &str,
    ) -> Result<String> {
        let (timestamp, nonce) = self.signed_time(&app.appid, creds, q)?;
        let plain = match (q.encrypt_type.as_deref(), creds.mode()) {
            (Some("aes"), PushMode::Safe | PushMode::Compatible) => {
                self.open_safe(app, creds, q, (timestamp, nonce), body)?
            }
            (Some("aes"), PushMode::Plain) => {
                return Err(Error::invalid(format!(
                    "the push for app {} is in safe mode (encrypt_type=aes) but no push.encoding_aes_key was registered: register the admin's EncodingAESKey (消息加密方式 安全模式, or 兼容模式 with push.mode \"compatible\")",
                    app.appid
                )))
            }
            (None | Some("raw"), PushMode::Safe) => {
                let e = Error::invalid(format!(
                    "app {} takes only safe-mode pushes (encrypt_type=aes, signed with msg_signature); a plain body is refused: forged, or the admin's 消息加密方式 is not 安全模式 (while switching, register push.mode \"compatible\")",
                    app.appid
                ));
                return Err(self.push_refused(&app.appid, "not_encrypted", e));
            }
            (None | Some("raw"), PushMode::Plain | PushMode::Compatible) => {
                let signature = q.need(&q.signature, "signature")?;
                if !signature_holds(creds.token(), &[timestamp, nonce], signature) {
                    return Err(self.push_refused(
                        &app.appid,
                        "bad_signature",
                        bad_signature("signature"),
                    ));
                }
                body.to_string()
            }
            (Some(other), _) => {
                return Err(Error::invalid(format!(
                    "encrypt_type must be \"aes\" or absent, got {:?}",
                    other.chars().take(16).collect::<String>()
                )))
            }
        };
        let message = parse_message(&plain)?;
        let nonce_key = self.claim_nonce(&app.appid, timestamp, nonce, body)?;
        let applied = self.apply_push(app, &message);
        match (&applied, nonce_key) {
            (Ok(_), Some((key, digest))) => {
                // Applied; should the record fail, the retry-key record still
                // keeps the events from being applied twice.
                let _ = self.noted(
                    "handle_push",
                    self.ledger.idempotency_complete(&key, &digest),
                );
            }
            (Err(_), Some((key, _))) => {
                // Not applied: WeChat's retry of this very request must pass.
                let _ = self.ledger.idempotency_release(&key);
            }
            (_, None) => {}
        }
        let events = applied?;
        Ok(json!({"reply": REPLY_SUCCESS, "events": events}).to_string())
    }

    /// A safe-mode body: `msg_signature` over the ciphertext, then the
    /// plaintext, which must name this app.
    fn open_safe(
        &self,
        app: &App,
        creds: &PushCredentials,
        q: &PushQuery,
        (timestamp, nonce): (&str, &str),
        body: &str,
    ) -> Result<String> {
        let msg_signature = q.need(&q.msg_signature, "msg_signature")?;
        let encrypted = parse_envelope(body)?;
        if !signature_holds(
            creds.token(),
            &[timestamp, nonce, &encrypted],
            msg_signature,
        ) {
            return Err(self.push_refused(
                &app.appid,
                "bad_signature",
                bad_signature("msg_signature"),
            ));
        }
        let key = creds.key().ok_or_else(|| {
            Error::internal("a safe or compatible push app has no key (checked at register_app)")
        })?;
        let (message, inner_appid) = decrypt(key, &encrypted)?;
        if inner_appid != app.appid {
            return Err(Error::invalid(format!(
                "the push was encrypted for appid {:?}, not {}",
                inner_appid.chars().take(64).collect::<String>(),
                app.appid
            )));
        }
        Ok(message)
    }

    /// Each (timestamp, nonce) a signed push carries is taken once per app,
    /// in the ledger store so every worker sharing it agrees: a captured
    /// query cannot carry another body. WeChat repeating the very request
    /// (same body) passes, and the events' own retry key makes it a no-op.
    /// Answers the record to complete once the push is applied, or `None`
    /// when it was taken before with this body.
    fn claim_nonce(
        &self,
        appid: &str,
        timestamp: &str,
        nonce: &str,
        body: &str,
    ) -> Result<Option<(String, String)>> {
        let key = nonce_key(appid, timestamp, nonce);
        let digest = hex_sha1(&[body]);
        match self.noted("handle_push", self.ledger.idempotency_claim(&key, APPLY_CLAIM_MS))? {
            KeyClaim::Fresh => Ok(Some((key, digest))),
            KeyClaim::Done(seen) if seen == digest => Ok(None),
            KeyClaim::Done(_) => Err(self.push_refused(
                appid,
                "replayed",
                Error::invalid(
                    "this timestamp and nonce were already used by another push with a different body: a replayed request, refused",
                ),
            )),
            KeyClaim::InFlight => Err(Error::invalid(
                "a push with this timestamp and nonce is being applied right now (a retry of it, or a replay): answer an error so WeChat retries once it is done",
            )),
        }
    }

    /// Applies a subscribe event once; other pushes are reported only.
    fn apply_push(&self, app: &App, m: &PushMessage) -> Result<Vec<Value>> {
        if m.kind == EventKind::Other {
            return Ok(vec![json!({
                "event": m.event,
                "msg_type": m.msg_type,
                "openid": m.openid,
                "create_time": m.create_time,
                "effect": "ignored",
            })]);
        }
        let key = retry_key(&app.appid, m);
        match self.noted(
            "handle_push",
            self.ledger.idempotency_claim(&key, APPLY_CLAIM_MS),
        )? {
            KeyClaim::Done(_) => return Ok(report(m, "duplicate")),
            KeyClaim::InFlight => return Ok(report(m, "in_progress")),
            KeyClaim::Fresh => {}
        }
        let mut events = Vec::with_capacity(m.entries.len());
        for entry in &m.entries {
            match self.apply_entry(app, m, entry) {
                Ok(event) => events.push(event),
                Err(e) => {
                    // Not recorded: WeChat's retry (or the next one) applies it.
                    let _ = self.ledger.idempotency_release(&key);
                    return Err(e);
                }
            }
        }
        let outcome = Value::Array(events.clone()).to_string();
        // Applied; should the record fail, a retry would apply again, which
        // is the lesser harm than refusing what was done.
        let _ = self.noted(
            "handle_push",
            self.ledger.idempotency_complete(&key, &outcome),
        );
        Ok(events)
    }

    fn apply_entry(&self, app: &App, m: &PushMessage, e: &Entry) -> Result<Value> {
        let mut dropped = None;
        let effect = match (m.kind, entry_effect(m.kind, e)) {
            (EventKind::Popup, Effect::Accept) if app.grants == Grants::Push => {
                self.push_grant(&app.appid, &m.openid, &e.template_id)?;
                "grant_added"
            }
            // The mini program reports this tap itself (`grants: "client"`).
            (EventKind::Popup, Effect::Accept) => "reported",
            (EventKind::Popup, Effect::Reject) => "none",
            (EventKind::Change, Effect::Reject) | (EventKind::Sent, Effect::UserBlock) => {
                let n = self.noted(
                    "handle_push",
                    self.ledger
                        .drop_grants(&app.appid, &m.openid, &e.template_id),
                )?;
                dropped = Some(n);
                if m.kind == EventKind::Sent {
                    "user_block"
                } else {
                    "grants_dropped"
                }
            }
            (EventKind::Sent, Effect::Delivered) => "delivered",
            (EventKind::Sent, Effect::Failed) => "system_failed",
            _ => "ignored",
        };
        let mut send_key = None;
        if m.kind == EventKind::Sent && effect != "ignored" {
            if let Some(msgid) = &e.msg_id {
                send_key = self.noted(
                    "handle_push",
                    self.record_delivery(&app.appid, msgid, effect),
                )?;
            }
        }
        self.metrics.record_push_event(&m.event, effect);
        let msgid = e.msg_id.as_deref().and_then(|id| id.parse::<i64>().ok());
        self.journal.push_event(&PushRecord {
            appid: &app.appid,
            event: &m.event,
            openid: &m.openid,
            template_id: &e.template_id,
            status: &e.status,
            effect,
            errcode: e.error_code,
            msgid,
        });
        let mut event = entry_json(m, e);
        event["effect"] = json!(effect);
        if let Some(n) = dropped {
            event["dropped"] = json!(n);
        }
        if let Some(key) = send_key {
            event["idempotency_key"] = json!(key);
        }
        Ok(event)
    }

    /// A sent message's result, written into the idempotency record of the
    /// send (or outbox message: it shares the key) that got `msgid`, so a
    /// repeated send of that key answers with it. The send's key, or `None`
    /// when this store never saw that msgid (sent before push was set up,
    /// with another store, or its record's 7 days passed).
    fn record_delivery(&self, appid: &str, msgid: &str, delivery: &str) -> Result<Option<String>> {
        let index = msgid_key(appid, msgid);
        let key = match self.ledger.idempotency_claim(&index, APPLY_CLAIM_MS)? {
            KeyClaim::Done(link) => serde_json::from_str::<Value>(&link)
                .ok()
                .and_then(|v| v["idempotency_key"].as_str().map(str::to_string)),
            KeyClaim::Fresh => {
                self.ledger.idempotency_release(&index)?;
                None
            }
            KeyClaim::InFlight => None,
        };
        let Some(key) = key else {
            return Ok(None);
        };
        match self.ledger.idempotency_claim(&key, APPLY_CLAIM_MS)? {
            KeyClaim::Done(outcome) => {
                let mut v: Value = serde_json::from_str(&outcome).unwrap_or_else(|_| json!({}));
                v["delivery"] = json!(delivery);
                self.ledger.idempotency_complete(&key, &v.to_string())?;
            }
            KeyClaim::Fresh => self.ledger.idempotency_release(&key)?,
            KeyClaim::InFlight => {}
        }
        Ok(Some(key))
    }

    /// With message push set up, WeChat later says by msgid whether a sent
    /// message arrived: the msgid is linked to the send's idempotency key
    /// (one more record, only for apps with push credentials).
    pub(super) fn link_msgid(&self, app: &App, key: &str, o: &super::send::Outcome) {
        if app.push.is_none() || o.status != super::send::SendStatus::Sent {
            return;
        }
        let msgid = match o.msgid.as_ref() {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => return,
        };
        let link = json!({ "idempotency_key": key }).to_string();
        let _ = self.noted(
            "send",
            self.ledger
                .idempotency_complete(&msgid_key(&app.appid, &msgid), &link),
        );
    }

    /// One subscribe grant, checked as `add_permit` checks a grant.
    fn push_grant(&self, appid: &str, openid: &str, template_id: &str) -> Result<()> {
        let doc = json!({"openid": openid, "kind": "subscribe", "template_id": template_id});
        let permit = parse_permit(&doc.to_string(), self.clock.now_ms())?;
        let added = self.noted("handle_push", self.ledger.add(appid, &permit))?;
        if matches!(added, Added::Stored | Added::Counted) {
            self.metrics
                .record_permits_added(permit.kind.as_str(), u64::from(permit.uses));
        }
        Ok(())
    }
}

/// What one entry says, before the ledger is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Accept,
    Reject,
    Delivered,
    /// A sent message the buyer blocked (the official account's status text;
    /// the mini program documents only system failures).
    UserBlock,
    Failed,
    Other,
}

/// Popup and change entries: every `accept…` status (`accept`,
/// `acceptWithAudio`, `acceptWithAlert`, `acceptWithForcePush`) is an
/// acceptance. Sent entries: `ErrorCode` decides (0 delivered, anything else
/// a failed delivery whatever `ErrorStatus` says); without one, the text.
fn entry_effect(kind: EventKind, e: &Entry) -> Effect {
    match kind {
        EventKind::Sent => {
            let failed = match e.error_code {
                Some(code) => code != 0,
                None => e.status != "success",
            };
            match (failed, e.status.as_str()) {
                (false, _) => Effect::Delivered,
                (true, "failed:user block") => Effect::UserBlock,
                (true, _) => Effect::Failed,
            }
        }
        _ if e.status.starts_with("accept") => Effect::Accept,
        _ if e.status == "reject" => Effect::Reject,
        _ => Effect::Other,
    }
}

/// `e` with the push Token and key kept out of its message: messages may
/// quote the body or the query, which may hold anything.
fn redacted(e: Error, creds: &PushCredentials) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(creds.redact(&m)),
        Error::AppNotConfigured(m) => Error::AppNotConfigured(creds.redact(&m)),
        Error::Mapping(m) => Error::Mapping(creds.redact(&m)),
        Error::NoPermit(m) => Error::NoPermit(creds.redact(&m)),
        Error::Network(m) => Error::Network(creds.redact(&m)),
        Error::Uncertain(m) => Error::Uncertain(creds.redact(&m)),
        Error::Store(m) => Error::Store(creds.redact(&m)),
        Error::Internal(m) => Error::Internal(creds.redact(&m)),
        Error::WeChat { errcode, errmsg } => Error::WeChat {
            errcode,
            errmsg: creds.redact(&errmsg),
        },
    }
}

fn bad_signature(which: &str) -> Error {
    Error::invalid(format!(
        "{which} does not match this app's push token: not from WeChat, or the token registered differs from the admin's"
    ))
}

/// The record linking a sent message's msgid to its send's idempotency key.
fn msgid_key(appid: &str, msgid: &str) -> String {
    format!("msgid:{appid}:{msgid}")
}

/// The record of one (timestamp, nonce) of an app's signed pushes.
fn nonce_key(appid: &str, timestamp: &str, nonce: &str) -> String {
    format!("push-nonce:{appid}:{}", hex_sha1(&[timestamp, nonce]))
}

/// SHA-1 in hex of `parts`, each followed by a NUL (so no two lists of
/// parts hash alike by moving text from one part to the next).
fn hex_sha1(parts: &[&str]) -> String {
    let mut h = Sha1::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a retry of this push shares: app, buyer, `CreateTime`, event and
/// entries, hashed to a fixed length.
fn retry_key(appid: &str, m: &PushMessage) -> String {
    let create_time = m.create_time.to_string();
    let mut parts = vec![m.openid.as_str(), &create_time, &m.event];
    for e in &m.entries {
        parts.extend([
            e.template_id.as_str(),
            &e.status,
            e.msg_id.as_deref().unwrap_or(""),
        ]);
    }
    format!("push:{appid}:{}", hex_sha1(&parts))
}

fn entry_json(m: &PushMessage, e: &Entry) -> Value {
    let mut v = json!({
        "event": m.event,
        "openid": m.openid,
        "create_time": m.create_time,
        "template_id": e.template_id,
        "status": e.status,
    });
    if let Some(scene) = &e.popup_scene {
        v["popup_scene"] = json!(scene);
    }
    if let Some(id) = &e.msg_id {
        v["msgid"] = json!(id);
    }
    if let Some(code) = e.error_code {
        v["errcode"] = json!(code);
    }
    v
}

/// Every entry with the same effect (a retry, nothing applied).
fn report(m: &PushMessage, effect: &str) -> Vec<Value> {
    m.entries
        .iter()
        .map(|e| {
            let mut v = entry_json(m, e);
            v["effect"] = json!(effect);
            v
        })
        .collect()
}
