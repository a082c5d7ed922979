//! Rendering: a shop event's payload through the app's compiled mapping into the
//! exact body WeChat receives, with each subscribe value checked (and, where the
//! mapping allows, shortened) against its keyword's rule. Pure: no network, no
//! permits; `send` posts what this returns.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalog::catalog;
use super::mapping::{
    CompiledEvent, CompiledKeyword, CompiledMappings, MessageKind, Overflow, MAX_PAGE_CHARS,
};
use super::placeholder::{preview, FieldSource, RenderFault};
use super::rules::{cut_chars, one_line, truncate_chars, KeywordType};
use crate::error::{Error, Result};

/// Longest `touser` (an openid is 28 characters).
const MAX_TOUSER_CHARS: usize = 128;
/// Longest `idempotency_key`.
const MAX_KEY_CHARS: usize = 256;
/// Legacy template keywords have no typed rules; values are kept to this length.
pub const MAX_TEMPLATE_VALUE_CHARS: usize = 200;

/// A rendered message, ready for `send`.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedMessage {
    pub kind: MessageKind,
    pub template_id: String,
    pub touser: String,
    /// The payload's `order_sn`, when it has a non-empty one.
    pub order_sn: Option<String>,
    /// The payload's `idempotency_key`; else `appid:event:touser:order_sn`
    /// (the catalog's key fields of the event); empty when the payload said
    /// `"idempotency_key": false`: each send is then a new message.
    pub idempotency_key: String,
    /// The JSON body to POST. For `Template`, `send` adds the permit's `form_id`.
    pub body: Map<String, Value>,
    /// The payload's `"on_failure": "enqueue"` (also spelt
    /// `"on_network_error"`, its first name): a send that failed through no
    /// fault of the message (WeChat not reached, no token, a quota, WeChat
    /// busy, the store) keeps it in the outbox instead of failing.
    pub enqueue_on_network_error: bool,
}

/// Renders `event` of the app's `mappings` from a payload
/// `{"touser", "fields": {…}, "idempotency_key"}`. With `subscribe_as_text`
/// a subscribe message's body is written straight from the mapping as the
/// POST's text (the same text as serializing the map, see `render_body`) and
/// its `body` map is left empty, which saves building, serializing and
/// dropping the map on every send. A legacy template message keeps its map:
/// `send` adds the form_id to it.
pub fn render_message(
    mappings: &CompiledMappings,
    appid: &str,
    event: &str,
    payload_json: &str,
    subscribe_as_text: bool,
) -> Result<(RenderedMessage, Option<String>)> {
    let mapping = mapped_event(mappings, appid, event)?;
    let payload = parse_payload(payload_json, &mapping.slots)?;
    let parts = mapping.render_parts(event, &payload)?;
    let order_sn = match payload.text(0) {
        Ok(Some(sn)) if !sn.is_empty() => Some(sn.into_owned()),
        _ => None,
    };
    let enqueue_on_network_error = network_fallback(&payload)?;
    let idempotency_key = match given_key(&payload)? {
        GivenKey::Key(key) => key.to_string(),
        GivenKey::NoKey => String::new(),
        GivenKey::Default => default_key(mapping, &payload, appid, event, parts.touser)?,
    };
    let touser = parts.touser.to_string();
    let (body, text) = if subscribe_as_text && mapping.kind == MessageKind::Subscribe {
        let text = serde_json::to_string(&parts)
            .map_err(|e| Error::internal(format!("the body did not serialize: {e}")))?;
        (Map::new(), Some(text))
    } else {
        (parts.into_body(), None)
    };
    let msg = RenderedMessage {
        kind: mapping.kind,
        template_id: mapping.template_id.to_string(),
        touser,
        order_sn,
        idempotency_key,
        body,
        enqueue_on_network_error,
    };
    Ok((msg, text))
}

/// The exact JSON body `send` would POST (without a legacy form_id): the
/// same text as serializing `render_message(..).body`.
pub fn render_body(
    mappings: &CompiledMappings,
    appid: &str,
    event: &str,
    payload_json: &str,
) -> Result<String> {
    let mapping = mapped_event(mappings, appid, event)?;
    let payload = parse_payload(payload_json, &mapping.slots)?;
    // The idempotency key and the send options are not part of the body, but
    // bad ones are refused here too.
    given_key(&payload)?;
    network_fallback(&payload)?;
    let parts = mapping.render_parts(event, &payload)?;
    serde_json::to_string(&parts)
        .map_err(|e| Error::internal(format!("the body did not serialize: {e}")))
}

/// What the payload says about its idempotency key.
enum GivenKey<'p> {
    /// Its own key.
    Key(&'p str),
    /// `"idempotency_key": false`: each call is a new message.
    NoKey,
    /// Nothing: the event's key fields make it.
    Default,
}

fn given_key<'p>(payload: &'p Payload<'_>) -> Result<GivenKey<'p>> {
    match &payload.idempotency_key {
        Some(FieldValue::Bool(false)) => Ok(GivenKey::NoKey),
        Some(FieldValue::Bool(true)) => Err(Error::invalid(
            "payload_json: idempotency_key must be a string, or false for a message without one, got true",
        )),
        value => Ok(match payload_text(value, "idempotency_key", MAX_KEY_CHARS)? {
            Some(key) => GivenKey::Key(key),
            None => GivenKey::Default,
        }),
    }
}

/// Whether the payload says `"on_failure": "enqueue"` or, by its first
/// name, `"on_network_error": "enqueue"` (`"fail"`, the default, may be said
/// too); both names given must agree.
fn network_fallback(payload: &Payload<'_>) -> Result<bool> {
    let named = |name: &str, v: &Option<FieldValue<'_>>| -> Result<Option<bool>> {
        match v {
            None | Some(FieldValue::Null) => Ok(None),
            Some(FieldValue::Str(s)) if s == "fail" => Ok(Some(false)),
            Some(FieldValue::Str(s)) if s == "enqueue" => Ok(Some(true)),
            Some(other) => Err(Error::invalid(format!(
                "payload_json: {name} must be \"enqueue\" or \"fail\", got {}",
                match other.text() {
                    Ok(Some(t)) => format!("{:?}", t.chars().take(40).collect::<String>()),
                    _ => "a value that is not a string".to_string(),
                }
            ))),
        }
    };
    let new = named("on_failure", &payload.on_failure)?;
    let old = named("on_network_error", &payload.on_network_error)?;
    match (new, old) {
        (Some(a), Some(b)) if a != b => Err(Error::invalid(
            "payload_json: on_failure and on_network_error (its first name) disagree: give one",
        )),
        (a, b) => Ok(a.or(b).unwrap_or(false)),
    }
}

/// `appid:event:touser:` and the values of the event's key fields joined by
/// `:`. A missing key field is refused: without a key every call of a
/// repeated callback would be delivered again.
fn default_key(
    mapping: &CompiledEvent,
    payload: &Payload<'_>,
    appid: &str,
    event: &str,
    touser: &str,
) -> Result<String> {
    let mut key = format!("{appid}:{event}:{touser}");
    for (slot, name) in mapping.slots[..mapping.key_fields].iter().enumerate() {
        let value = match payload.text(slot) {
            Ok(Some(v)) if !v.is_empty() => v,
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "payload_json: fields.{name} is missing; {event}'s idempotency key is built from it \
                     (a repeated call then sends nothing): give fields.{name}, or an idempotency_key, \
                     or \"idempotency_key\": false to send every call as a new message"
                )))
            }
            Err(why) => {
                return Err(Error::invalid(format!(
                    "payload_json: fields.{name} {why}; it makes {event}'s idempotency key"
                )))
            }
        };
        if value.chars().nth(MAX_KEY_CHARS / 2).is_some() {
            return Err(Error::invalid(format!(
                "payload_json: fields.{name} is longer than {} characters; it makes the default idempotency key (give an idempotency_key instead)",
                MAX_KEY_CHARS / 2
            )));
        }
        key.push(':');
        key.push_str(&value);
    }
    Ok(key)
}

fn mapped_event<'m>(
    mappings: &'m CompiledMappings,
    appid: &str,
    event: &str,
) -> Result<&'m CompiledEvent> {
    let Some(mapping) = mappings.event(event) else {
        if catalog().event(event).is_none() {
            return Err(Error::invalid(format!(
                "event `{}` is not in the catalog (events: {})",
                preview(event),
                catalog().event_names()
            )));
        }
        return Err(Error::Mapping(format!(
            "event {event} is not mapped for app {appid} (add it to the mapping document)"
        )));
    };
    if !mapping.enabled {
        return Err(Error::Mapping(format!(
            "event {event} is disabled in the mapping of app {appid}"
        )));
    }
    Ok(mapping)
}

/// A rendered body before it becomes JSON: serialized directly by `render`,
/// turned into a `Map` for `render_message`.
struct Parts<'m, 'p> {
    mapping: &'m CompiledEvent,
    touser: &'p str,
    page: Option<String>,
    /// One per keyword of the mapping, in its (sorted) order.
    values: Vec<String>,
}

impl Parts<'_, '_> {
    fn into_body(self) -> Map<String, Value> {
        let m = self.mapping;
        let mut data = Map::new();
        for (kw, value) in m.keywords.iter().zip(self.values) {
            let mut wrapped = Map::new();
            wrapped.insert("value".into(), Value::String(value));
            data.insert(kw.name.to_string(), Value::Object(wrapped));
        }
        let mut body = Map::new();
        body.insert("touser".into(), self.touser.into());
        body.insert("template_id".into(), (*m.template_id).into());
        if let Some(page) = self.page {
            body.insert("page".into(), Value::String(page));
        }
        body.insert("data".into(), Value::Object(data));
        match m.kind {
            MessageKind::Subscribe => {
                body.insert("miniprogram_state".into(), m.miniprogram_state.into());
                body.insert("lang".into(), m.lang.into());
            }
            MessageKind::Template => {
                if let Some(e) = &m.emphasis_keyword {
                    body.insert("emphasis_keyword".into(), (**e).into());
                }
            }
        }
        body
    }
}

/// Writes the body with its keys in the order a `serde_json::Map` keeps them
/// (sorted), so that `render` and `render_message` give the same text.
impl Serialize for Parts<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Data<'a>(&'a [CompiledKeyword], &'a [String]);
        impl Serialize for Data<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (kw, value) in self.0.iter().zip(self.1) {
                    map.serialize_entry(&*kw.name, &Wrapped(value))?;
                }
                map.end()
            }
        }
        struct Wrapped<'a>(&'a str);
        impl Serialize for Wrapped<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("value", self.0)?;
                map.end()
            }
        }
        let m = self.mapping;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("data", &Data(&m.keywords, &self.values))?;
        match m.kind {
            MessageKind::Subscribe => {
                map.serialize_entry("lang", m.lang)?;
                map.serialize_entry("miniprogram_state", m.miniprogram_state)?;
            }
            MessageKind::Template => {
                if let Some(e) = &m.emphasis_keyword {
                    map.serialize_entry("emphasis_keyword", &**e)?;
                }
            }
        }
        if let Some(page) = &self.page {
            map.serialize_entry("page", page)?;
        }
        map.serialize_entry("template_id", &*m.template_id)?;
        map.serialize_entry("touser", self.touser)?;
        map.end()
    }
}

/// A field value as the payload gives it, borrowed from the JSON text where it can be.
#[derive(Debug)]
enum FieldValue<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
    /// An object or an array: never a keyword value.
    Composite(&'static str),
}

impl<'de> Deserialize<'de> for FieldValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FieldValueVisitor)
    }
}

struct FieldValueVisitor;

impl<'de> Visitor<'de> for FieldValueVisitor {
    type Value = FieldValue<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(FieldValue::Str(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(FieldValue::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(FieldValue::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(FieldValue::F64(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(FieldValue::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(FieldValue::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Composite("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Composite("an array"))
    }
}

impl FieldValue<'_> {
    /// The value as text; `None` for null (a missing value).
    fn text(&self) -> Result<Option<Cow<'_, str>>, String> {
        Ok(Some(match self {
            FieldValue::Str(s) => Cow::Borrowed(&**s),
            FieldValue::I64(n) => Cow::Owned(n.to_string()),
            FieldValue::U64(n) => Cow::Owned(n.to_string()),
            // Rust prints the shortest text that reads back as the same float,
            // so 12.345 stays "12.345" for the decimal money rounding.
            FieldValue::F64(n) => Cow::Owned(n.to_string()),
            // The messages are read in Chinese; "true" would be noise to a shopper.
            FieldValue::Bool(true) => Cow::Borrowed("是"),
            FieldValue::Bool(false) => Cow::Borrowed("否"),
            FieldValue::Null => return Ok(None),
            FieldValue::Composite(what) => {
                return Err(format!("is {what}, not a string, number or boolean"))
            }
        }))
    }
}

/// An object key, borrowed where the JSON text allows.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match FieldValue::deserialize(d)? {
            FieldValue::Str(s) => Ok(Key(s)),
            _ => Err(de::Error::custom("object keys are strings")),
        }
    }
}

/// The parts of a payload rendering needs.
struct Payload<'a> {
    touser: Option<FieldValue<'a>>,
    idempotency_key: Option<FieldValue<'a>>,
    on_network_error: Option<FieldValue<'a>>,
    on_failure: Option<FieldValue<'a>>,
    /// By slot of the event's field table.
    values: Vec<Option<FieldValue<'a>>>,
}

impl FieldSource for Payload<'_> {
    fn text(&self, slot: usize) -> Result<Option<Cow<'_, str>>, String> {
        match self.values.get(slot) {
            Some(Some(v)) => v.text(),
            _ => Ok(None),
        }
    }
}

/// Reads a payload keeping only the fields the mapping uses (unknown fields are
/// skipped without being copied).
struct PayloadSeed<'s> {
    slots: &'s [Box<str>],
}

impl<'de> DeserializeSeed<'de> for PayloadSeed<'_> {
    type Value = Payload<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Payload<'de>, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PayloadSeed<'_> {
    type Value = Payload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object {\"touser\", \"fields\", \"idempotency_key\"}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload<'de>, A::Error> {
        let mut payload = Payload {
            touser: None,
            idempotency_key: None,
            on_network_error: None,
            on_failure: None,
            values: std::iter::repeat_with(|| None)
                .take(self.slots.len())
                .collect(),
        };
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "touser" => payload.touser = Some(map.next_value()?),
                "idempotency_key" => payload.idempotency_key = Some(map.next_value()?),
                "on_network_error" => payload.on_network_error = Some(map.next_value()?),
                "on_failure" => payload.on_failure = Some(map.next_value()?),
                "fields" => map.next_value_seed(FieldsSeed {
                    slots: self.slots,
                    values: &mut payload.values,
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(payload)
    }
}

struct FieldsSeed<'s, 'v, 'de> {
    slots: &'s [Box<str>],
    values: &'v mut Vec<Option<FieldValue<'de>>>,
}

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`fields` to be an object of field name → value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            match self.slots.iter().position(|s| **s == *key) {
                Some(slot) => self.values[slot] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }

    /// PHP encodes an empty array as `[]`: no fields.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match seq.next_element::<IgnoredAny>()? {
            None => Ok(()),
            Some(_) => Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
        }
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn parse_payload<'a>(json: &'a str, slots: &[Box<str>]) -> Result<Payload<'a>> {
    let mut de = serde_json::Deserializer::from_str(json);
    let payload = PayloadSeed { slots }
        .deserialize(&mut de)
        .and_then(|p| de.end().map(|()| p))
        .map_err(|e| Error::invalid(format!("payload_json: {e}")))?;
    Ok(payload)
}

/// A required or optional text of the payload's top level.
fn payload_text<'p>(
    value: &'p Option<FieldValue<'_>>,
    name: &str,
    max: usize,
) -> Result<Option<&'p str>> {
    match value {
        None | Some(FieldValue::Null) => Ok(None),
        Some(FieldValue::Str(s)) => {
            let mut count = 0;
            for c in s.chars() {
                count += 1;
                if count > max {
                    return Err(Error::invalid(format!(
                        "payload_json: {name} is longer than {max} characters"
                    )));
                }
                if c.is_control() || c.is_whitespace() {
                    return Err(Error::invalid(format!(
                        "payload_json: {name} must not contain spaces or control characters"
                    )));
                }
            }
            if count == 0 {
                return Err(Error::invalid(format!(
                    "payload_json: {name} must not be empty"
                )));
            }
            Ok(Some(s))
        }
        Some(_) => Err(Error::invalid(format!(
            "payload_json: {name} must be a string"
        ))),
    }
}

/// Percent-encodes a field value placed in a page's query.
fn escape_page_value(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

impl CompiledEvent {
    fn render_parts<'m, 'p>(
        &'m self,
        event: &str,
        payload: &'p Payload<'_>,
    ) -> Result<Parts<'m, 'p>> {
        let touser =
            payload_text(&payload.touser, "touser", MAX_TOUSER_CHARS)?.ok_or_else(|| {
                Error::invalid("payload_json: missing field `touser` (the user's openid)")
            })?;
        let mut values = Vec::with_capacity(self.keywords.len());
        for kw in &self.keywords {
            let mut value = String::with_capacity(32);
            kw.pattern
                .render_into(payload, None, &mut value)
                .map_err(|f| self.fault(event, &format!("keyword {}", kw.name), kw.rule, f))?;
            values.push(match kw.rule {
                Some(rule) => self.mend(event, kw, rule, value)?,
                None => self.mend_legacy(event, kw, value)?,
            });
        }
        let page = match &self.page {
            None => None,
            Some(page) => {
                let mut text = String::with_capacity(64);
                page.render_into(payload, Some(escape_page_value), &mut text)
                    .map_err(|f| self.fault(event, "page", None, f))?;
                if text.starts_with('/') {
                    // A field at the start of the page gave the leading "/".
                    let slashes = text.len() - text.trim_start_matches('/').len();
                    text.drain(..slashes);
                }
                if text.len() > MAX_PAGE_CHARS {
                    return Err(Error::Mapping(format!(
                        "event {event}, page: the rendered page is longer than {MAX_PAGE_CHARS} characters"
                    )));
                }
                Some(text)
            }
        };
        Ok(Parts {
            mapping: self,
            touser,
            page,
            values,
        })
    }

    fn fault(
        &self,
        event: &str,
        place: &str,
        rule: Option<KeywordType>,
        fault: RenderFault,
    ) -> Error {
        Error::Mapping(match fault {
            RenderFault::Missing { slot } => {
                let field = &self.slots[slot];
                format!(
                    "event {event}, {place}: field {field} is missing from the payload (add it to fields, or give a default such as {{{field}|default:{}}})",
                    default_example(rule)
                )
            }
            RenderFault::Bad { slot, reason } => {
                format!(
                    "event {event}, {place}, field {}: {reason}",
                    self.slots[slot]
                )
            }
        })
    }

    /// Checks a subscribe value against its keyword's rule, shortening free text
    /// when the mapping allows. A `…` ends the cut unless the rule forbids it
    /// (a phrase or a Chinese name), then the value is cut plainly.
    pub(super) fn mend(
        &self,
        event: &str,
        kw: &CompiledKeyword,
        rule: KeywordType,
        value: String,
    ) -> Result<String> {
        // Free text on several lines is joined when the mapping mends values.
        let value = if rule.free_text()
            && self.overflow == Overflow::Truncate
            && value.chars().any(char::is_control)
        {
            one_line(&value)
        } else {
            value
        };
        let mut violation = match rule.check(&value) {
            Ok(()) => return Ok(value),
            Err(v) => v,
        };
        let limit = rule.limit_for(&value).unwrap_or(usize::MAX);
        let too_long = value.chars().nth(limit).is_some();
        let may_cut = too_long && rule.truncatable();
        if may_cut && self.overflow == Overflow::Truncate {
            let marked = truncate_chars(&value, limit);
            if rule.check(&marked).is_ok() {
                return Ok(marked.into_owned());
            }
            let plain = cut_chars(&value, limit);
            match rule.check(plain) {
                Ok(()) => return Ok(plain.to_string()),
                // Shortening was not enough: say what else is wrong.
                Err(v) => violation = v,
            }
        }
        let field = match &*kw.fields {
            "" => "no field, literal text".to_string(),
            f if f.contains(',') => format!("fields {f}"),
            f => format!("field {f}"),
        };
        let hint = match rule {
            _ if value.is_empty() => "",
            _ if may_cut && self.overflow == Overflow::Error => {
                " (the mapping's overflow is \"error\")"
            }
            KeywordType::Amount => " (the money filter formats amounts)",
            KeywordType::Time => " (the datetime filter formats times)",
            KeywordType::Date => " (the date filter formats dates)",
            _ => "",
        };
        Err(Error::Mapping(format!(
            "event {event}, keyword {} ({field}): value \"{}\" breaks the rule: {violation}{hint}",
            kw.name,
            preview(&value)
        )))
    }

    fn mend_legacy(&self, event: &str, kw: &CompiledKeyword, value: String) -> Result<String> {
        if value.chars().nth(MAX_TEMPLATE_VALUE_CHARS).is_none() {
            return Ok(value);
        }
        if self.overflow == Overflow::Truncate {
            return Ok(truncate_chars(&value, MAX_TEMPLATE_VALUE_CHARS).into_owned());
        }
        Err(Error::Mapping(format!(
            "event {event}, keyword {} (field {}): value \"{}\" is longer than {MAX_TEMPLATE_VALUE_CHARS} characters (the mapping's overflow is \"error\")",
            kw.name,
            kw.fields,
            preview(&value)
        )))
    }
}

/// A default that passes the keyword's rule, for the missing-field advice
/// (`无` breaks `character_string` and `number`).
fn default_example(rule: Option<KeywordType>) -> &'static str {
    match rule {
        Some(KeywordType::Number | KeywordType::PhoneNumber) => "0",
        Some(KeywordType::Amount) => "0.00",
        Some(KeywordType::CharacterString | KeywordType::Letter) => "NA",
        Some(KeywordType::Symbol) => "-",
        Some(KeywordType::Time) => "2026-01-01 00:00",
        Some(KeywordType::Date) => "2026-01-01",
        Some(KeywordType::CarNumber) => "京A00000",
        // thing, name, phrase, const, a page and legacy keywords take text.
        _ => "无",
    }
}

#[cfg(test)]
mod default_advice_tests {
    use super::*;

    #[test]
    fn the_advised_default_passes_the_keywords_rule() {
        for kw in [
            "thing1",
            "number1",
            "letter1",
            "symbol1",
            "character_string1",
            "time1",
            "date1",
            "amount1",
            "phone_number1",
            "car_number1",
            "name1",
            "phrase1",
        ] {
            let rule = KeywordType::of_keyword(kw).unwrap();
            let value = default_example(Some(rule));
            assert!(rule.check(value).is_ok(), "{kw}: {value}");
        }
    }
}
