//! The credential ledger: permits (subscribe grants, form_ids, prepay_ids)
//! recorded, taken atomically, consumed or given back, in the configured store.
//! The rules of what may be recorded and what is handed out live here; the
//! stores only keep them atomically.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use serde_json::{json, Map, Value};

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{self, Store, StoreSlot, LEGACY_VALID_SECS, MAX_SUBSCRIBE_USES, PREPAY_USES};
pub use crate::store::{Added, NewPermit};

pub use crate::store::{
    ClaimedTake, KeyClaim, Kind, Lease, PermitRequest, PermitStats, Remaining, SpentAndRecorded,
};

/// WeChat's `type` (gettemplate) of a long-term subscribe template: the
/// buyer's subscription stays, so a send does not use its grant up (2 is a
/// one-time template: one grant, one message).
pub(crate) const LONG_TERM_TEMPLATE: u64 = 3;

/// An app's long-term template ids and when they were learnt (ms).
type LongTerm = (i64, Arc<HashSet<String>>);

/// How long a taken use stays reserved for its send by default.
pub(crate) const DEFAULT_LEASE_MS: i64 = 60_000;
/// form_ids (and prepay_ids) kept per user by default.
pub(crate) const DEFAULT_CAP_PER_OPENID: usize = 50;
/// Subscribe uses kept per user and template by default: a buyer taps
/// "allow" once per message wanted, so more is a client gone wrong.
pub(crate) const DEFAULT_SUBSCRIBE_CAP: u32 = 50;
/// Longest openid, template_id, form_id, prepay_id or order_sn accepted.
pub(crate) const MAX_VALUE_BYTES: usize = 128;
/// Most subscribe uses one add may bring.
pub(crate) const MAX_COUNT: u64 = 1000;

#[derive(Debug)]
pub struct Ledger {
    clock: Arc<dyn Clock>,
    store: StoreSlot<dyn Store>,
    lease_ms: AtomicI64,
    cap: AtomicUsize,
    subscribe_cap: AtomicU32,
    /// `subscribe_max_age_days`: 0 keeps grants until used.
    grant_max_age_days: AtomicU32,
    /// Per app, the templates gettemplate called long-term.
    long_term: RwLock<HashMap<String, LongTerm>>,
}

impl Ledger {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Ledger {
            clock,
            store: StoreSlot::new(
                Arc::new(store::MemoryStore::default()),
                "permits were added",
                "add_permit",
            ),
            lease_ms: AtomicI64::new(DEFAULT_LEASE_MS),
            cap: AtomicUsize::new(DEFAULT_CAP_PER_OPENID),
            subscribe_cap: AtomicU32::new(DEFAULT_SUBSCRIBE_CAP),
            grant_max_age_days: AtomicU32::new(0),
            long_term: RwLock::new(HashMap::new()),
        }
    }

    /// Which of the app's templates are long-term (learnt from gettemplate
    /// now): their grants are not used up by a send.
    pub fn note_long_term(&self, appid: &str, ids: HashSet<String>) {
        let now = self.now_ms();
        self.long_term
            .write()
            .insert(appid.to_string(), (now, Arc::new(ids)));
    }

    /// The app's long-term templates when learnt less than `max_age_ms` ago.
    pub fn long_term(&self, appid: &str, max_age_ms: i64) -> Option<Arc<HashSet<String>>> {
        let now = self.now_ms();
        let known = self.long_term.read();
        let (at, ids) = known.get(appid)?;
        (now >= *at && now - at < max_age_ms).then(|| ids.clone())
    }

    /// Opens the store the settings name, when it changed. Refused once a
    /// permit was added to the current store; a store that cannot be opened
    /// leaves the current one in place.
    pub fn configure(&self, config: &Config) -> Result<()> {
        self.switch_store(config)?;
        self.set_cap_per_openid(config.permit_cap_per_openid);
        self.subscribe_cap
            .store(config.subscribe_cap_per_template, Ordering::SeqCst);
        self.grant_max_age_days
            .store(config.subscribe_max_age_days, Ordering::SeqCst);
        Ok(())
    }

    fn switch_store(&self, config: &Config) -> Result<()> {
        self.store.switch(&config.store, store::open)
    }

    /// The store in force, for messages (a Redis password left out).
    pub fn describe_store(&self) -> String {
        self.store().describe()
    }

    /// The `store` setting in force.
    pub fn store_spec(&self) -> String {
        self.store.spec().to_string()
    }

    /// How long a taken use stays reserved before it returns by itself.
    pub fn set_lease_ms(&self, ms: i64) {
        self.lease_ms.store(ms.max(1), Ordering::SeqCst);
    }

    pub fn lease_ms(&self) -> i64 {
        self.lease_ms.load(Ordering::SeqCst)
    }

    /// form_ids (and prepay_ids) kept per user; the oldest go first.
    pub fn set_cap_per_openid(&self, cap: usize) {
        self.cap.store(cap.max(1), Ordering::SeqCst);
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.store.current()
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Records a checked permit. A subscribe grant holds at most
    /// `subscribe_cap_per_template` uses; taps beyond it are dropped.
    pub fn add(&self, appid: &str, permit: &NewPermit) -> Result<Added> {
        let mut capped;
        let mut permit = permit;
        if permit.kind == Kind::Subscribe {
            let max = self.subscribe_cap.load(Ordering::SeqCst).max(1);
            capped = permit.clone();
            capped.max_uses = max;
            capped.uses = capped.uses.min(max);
            permit = &capped;
        }
        self.store.for_records().add(
            appid,
            permit,
            self.now_ms(),
            self.cap.load(Ordering::SeqCst),
        )
    }

    /// Takes one use of the best usable permit for the request, or `None`.
    pub fn take(
        &self,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
    ) -> Result<Option<Lease>> {
        check_request(openid, request)?;
        self.store()
            .take(appid, openid, request, self.now_ms(), self.lease_ms())
    }

    /// Claims an idempotency key and, when it is fresh, takes a permit as
    /// `take` does, in one step where the store can; a claim that got no
    /// lease is not kept.
    pub fn claim_and_take(
        &self,
        key: &str,
        claim_ms: i64,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
    ) -> Result<ClaimedTake> {
        check_key(key)?;
        if let Err(e) = check_request(openid, request) {
            // The key is still honoured: a finished or running send wins.
            return Ok(match self.idempotency_claim(key, claim_ms)? {
                KeyClaim::Done(outcome) => ClaimedTake::Done(outcome),
                KeyClaim::InFlight => ClaimedTake::InFlight,
                KeyClaim::Fresh => {
                    let _ = self.idempotency_release(key);
                    ClaimedTake::Fresh(Err(e))
                }
            });
        }
        self.store().claim_and_take(
            key,
            claim_ms.max(1),
            appid,
            openid,
            request,
            self.now_ms(),
            self.lease_ms(),
        )
    }

    /// Spends the lease and records under `key` the outcome `outcome` writes
    /// (given what the user has left, `None` when the use could not be
    /// spent), in one step where the store can.
    pub fn consume_and_complete(
        &self,
        lease: &Lease,
        key: &str,
        outcome: &mut dyn FnMut(Option<&Remaining>) -> String,
    ) -> SpentAndRecorded {
        if let Err(e) = check_key(key) {
            let spent = self.consume(lease);
            let text = outcome(spent.as_ref().ok());
            return SpentAndRecorded {
                spent,
                recorded: Err(e),
                outcome: text,
            };
        }
        self.store()
            .consume_and_complete(lease, key, outcome, self.now_ms())
    }

    /// The send went out: the use is gone.
    pub fn consume(&self, lease: &Lease) -> Result<Remaining> {
        self.store().consume(lease, self.now_ms())
    }

    /// The send did not use the permit: the use returns.
    pub fn give_back(&self, lease: &Lease) -> Result<()> {
        self.store().give_back(lease)
    }

    /// WeChat said the permit is dead (41028, 41029): all its uses go.
    pub fn discard(&self, lease: &Lease) -> Result<()> {
        self.store().discard(lease)
    }

    /// Claims an idempotency key for a send; the claim lapses after `lease_ms`.
    pub fn idempotency_claim(&self, key: &str, lease_ms: i64) -> Result<KeyClaim> {
        check_key(key)?;
        self.store()
            .idempotency_claim(key, self.now_ms(), lease_ms.max(1))
    }

    /// Records the outcome of the send that claimed `key`; kept 7 days.
    pub fn idempotency_complete(&self, key: &str, outcome_json: &str) -> Result<()> {
        check_key(key)?;
        self.store()
            .idempotency_complete(key, outcome_json, self.now_ms())
    }

    /// Gives up a claim without an outcome, so a later send may try again.
    pub fn idempotency_release(&self, key: &str) -> Result<()> {
        check_key(key)?;
        self.store().idempotency_release(key)
    }

    /// The buyer withdrew `template_id`: its grants go (how many unleased uses).
    pub fn drop_grants(&self, appid: &str, openid: &str, template_id: &str) -> Result<u64> {
        check_request(openid, &PermitRequest::subscribe(template_id))?;
        self.store().drop_grants(appid, openid, template_id)
    }

    pub fn stats(&self, appid: &str, openid: Option<&str>) -> Result<PermitStats> {
        self.store().stats(appid, openid, self.now_ms())
    }

    pub fn purge(&self, appid: &str) -> Result<u64> {
        let now_ms = self.now_ms();
        let days = i64::from(self.grant_max_age_days.load(Ordering::SeqCst));
        let before = (days > 0).then(|| now_ms.div_euclid(1000) - days * 86_400);
        self.store().purge(appid, now_ms, before)
    }
}

/// What `take` checks of a request before the store sees it.
fn check_request(openid: &str, request: &PermitRequest) -> Result<()> {
    check_text("openid", openid)?;
    match request {
        PermitRequest::Subscribe { template_id } => check_text("template_id", template_id),
        PermitRequest::Legacy { order_sn: Some(sn) } => check_text("order_sn", sn),
        PermitRequest::Legacy { order_sn: None } => Ok(()),
    }
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 512 {
        return Err(Error::invalid(format!(
            "idempotency_key must be 1 to 512 bytes, got {} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// A text field is non-empty, not a placeholder a template engine left, at most
/// `MAX_VALUE_BYTES`, and free of control characters.
pub fn check_text(field: &str, v: &str) -> Result<()> {
    let trimmed = v.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(format!("{field} must not be empty")));
    }
    if matches!(trimmed, "undefined" | "null" | "NULL" | "None") {
        return Err(Error::invalid(format!(
            "{field} is {trimmed:?}, a placeholder, not a value"
        )));
    }
    if v.len() > MAX_VALUE_BYTES {
        return Err(Error::invalid(format!(
            "{field} is longer than {MAX_VALUE_BYTES} bytes ({} bytes)",
            v.len()
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "{field} contains a control character"
        )));
    }
    Ok(())
}

const FIELDS: [&str; 8] = [
    "openid",
    "kind",
    "template_id",
    "value",
    "order_sn",
    "paid",
    "created_at",
    "count",
];

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field_str<'a>(doc: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match doc.get(field) {
        None => Ok(None),
        Some(Value::String(s)) => {
            check_text(field, s)?;
            Ok(Some(s))
        }
        Some(other) => Err(Error::invalid(format!(
            "{field} must be a string, got {}",
            json_type(other)
        ))),
    }
}

fn field_int(doc: &Map<String, Value>, field: &str) -> Result<Option<i64>> {
    match doc.get(field) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| Error::invalid(format!("{field} must be a whole number, got {n}"))),
        Some(other) => Err(Error::invalid(format!(
            "{field} must be a number, got {}",
            json_type(other)
        ))),
    }
}

/// The fields of an `add_permit` document, each checked for its type.
struct PermitFields<'a> {
    openid: &'a str,
    kind: Kind,
    template_id: Option<&'a str>,
    value: Option<&'a str>,
    order_sn: Option<&'a str>,
    paid: Option<bool>,
    count: Option<i64>,
    created_at: Option<i64>,
}

/// Checks an `add_permit` document against the rules of `ledger.md`.
pub fn parse_permit(json: &str, now_ms: i64) -> Result<NewPermit> {
    // Parsed as a plain value, so that each field is checked below with its name.
    let doc: Value = serde_json::from_str(json).map_err(|e| Error::invalid(e.to_string()))?;
    let f = permit_fields(&doc)?;
    check_fields_fit_kind(&f)?;
    let (created_at, expires_at) = permit_dates(f.kind, f.created_at, now_ms)?;
    let (value, uses) = permit_value(&f)?;
    if f.kind == Kind::PrepayId && f.order_sn.is_none() {
        return Err(Error::invalid(
            "missing field `order_sn` (required for kind \"prepay_id\")",
        ));
    }
    Ok(NewPermit {
        openid: f.openid.to_string(),
        kind: f.kind,
        value: value.to_string(),
        order_sn: f.order_sn.map(str::to_string),
        paid: f.paid.unwrap_or(false),
        uses,
        max_uses: MAX_SUBSCRIBE_USES,
        created_at,
        expires_at,
    })
}

/// The document's fields, refusing anything but an object of known fields of
/// the right types.
fn permit_fields(doc: &Value) -> Result<PermitFields<'_>> {
    let Value::Object(doc) = doc else {
        return Err(Error::invalid(format!(
            "permit_json must be a JSON object, got {}",
            json_type(doc)
        )));
    };
    if let Some(unknown) = doc.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Error::invalid(format!(
            "unknown field `{unknown}`, expected one of {}",
            FIELDS.join(", ")
        )));
    }
    let openid =
        field_str(doc, "openid")?.ok_or_else(|| Error::invalid("missing field `openid`"))?;
    let kind = permit_kind(doc)?;
    let template_id = field_str(doc, "template_id")?;
    let value = field_str(doc, "value")?;
    let order_sn = field_str(doc, "order_sn")?;
    let paid = match doc.get("paid") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            return Err(Error::invalid(format!(
                "paid must be true or false, got {}",
                json_type(other)
            )))
        }
    };
    Ok(PermitFields {
        openid,
        kind,
        template_id,
        value,
        order_sn,
        paid,
        count: field_int(doc, "count")?,
        created_at: field_int(doc, "created_at")?,
    })
}

fn permit_kind(doc: &Map<String, Value>) -> Result<Kind> {
    let kind_text = match doc.get("kind") {
        None => return Err(Error::invalid("missing field `kind`")),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(Error::invalid(format!(
                "kind must be a string, got {}",
                json_type(other)
            )))
        }
    };
    Kind::parse(kind_text).ok_or_else(|| {
        Error::invalid(format!(
            "unknown kind {kind_text:?}, expected \"subscribe\", \"form_id\" or \"prepay_id\""
        ))
    })
}

/// A field of one kind given for another is refused rather than ignored: the
/// caller meant something this permit cannot do.
fn check_fields_fit_kind(f: &PermitFields<'_>) -> Result<()> {
    let kind = f.kind;
    let only_for = |field: &str, present: bool, allowed: Kind| {
        if present && kind != allowed {
            Err(Error::invalid(format!(
                "{field} is only for kind \"{allowed}\", not \"{kind}\""
            )))
        } else {
            Ok(())
        }
    };
    only_for("template_id", f.template_id.is_some(), Kind::Subscribe)?;
    only_for("count", f.count.is_some(), Kind::Subscribe)?;
    only_for("order_sn", f.order_sn.is_some(), Kind::PrepayId)?;
    only_for("paid", f.paid.is_some(), Kind::PrepayId)?;
    if kind == Kind::Subscribe && f.value.is_some() {
        return Err(Error::invalid(
            "value is not for kind \"subscribe\" (a grant is named by template_id)",
        ));
    }
    Ok(())
}

/// `(created_at, expires_at)` in unix seconds: created now unless given, and
/// refused when in the future or already expired.
fn permit_dates(kind: Kind, created_at: Option<i64>, now_ms: i64) -> Result<(i64, Option<i64>)> {
    let now = now_ms.div_euclid(1000);
    let created_at = created_at.unwrap_or(now);
    if created_at <= 0 {
        return Err(Error::invalid(format!(
            "created_at must be unix seconds, got {created_at}"
        )));
    }
    if created_at > now {
        return Err(Error::invalid(format!(
            "created_at {created_at} is in the future (now {now})"
        )));
    }
    let expires_at = match kind {
        Kind::Subscribe => None,
        _ => Some(created_at.saturating_add(LEGACY_VALID_SECS)),
    };
    if !store::usable(expires_at, now_ms) {
        return Err(Error::invalid(format!(
            "created_at {created_at} is more than 7 days ago: the {kind} has already expired"
        )));
    }
    Ok((created_at, expires_at))
}

/// What the permit is named by (a grant's template_id, a form_id or
/// prepay_id itself) and how many uses it brings.
fn permit_value<'a>(f: &PermitFields<'a>) -> Result<(&'a str, u32)> {
    let kind = f.kind;
    match kind {
        Kind::Subscribe => {
            let template_id = f.template_id.ok_or_else(|| {
                Error::invalid("missing field `template_id` (required for kind \"subscribe\")")
            })?;
            let count = f.count.unwrap_or(1);
            if !(1..=MAX_COUNT as i64).contains(&count) {
                return Err(Error::invalid(format!(
                    "count must be between 1 and {MAX_COUNT}, got {count}"
                )));
            }
            Ok((template_id, count as u32))
        }
        Kind::FormId | Kind::PrepayId => {
            let value = f.value.ok_or_else(|| {
                Error::invalid(format!(
                    "missing field `value` (the {kind} itself, required for kind \"{kind}\")"
                ))
            })?;
            if value.contains("mock one") {
                return Err(Error::invalid(format!(
                    "value {value:?} is the developer tool's fake {kind}, not a real one"
                )));
            }
            let uses = if kind == Kind::FormId { 1 } else { PREPAY_USES };
            Ok((value, uses))
        }
    }
}

pub fn stats_json(appid: &str, openid: Option<&str>, s: &PermitStats) -> String {
    let subscribe_uses: u64 = s.subscribe.values().sum();
    json!({
        "appid": appid,
        "openid": openid,
        "subscribe": {"uses": subscribe_uses, "templates": s.subscribe},
        "form_id": {"permits": s.form_id_permits, "uses": s.form_id_permits},
        "prepay_id": {
            "permits": s.prepay_id_permits,
            "uses": s.prepay_id_uses,
            "unpaid": s.prepay_id_unpaid,
        },
        "total_uses": subscribe_uses + s.form_id_permits + s.prepay_id_uses,
        "leased": s.leased,
        "expired": s.expired,
        "soonest_expiry": s.soonest_expiry,
    })
    .to_string()
}
