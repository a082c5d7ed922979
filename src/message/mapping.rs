//! Mapping documents: per app and event, which WeChat template to use and which
//! shop field fills each keyword. A document is validated whole (every problem
//! reported with its JSON path), compiled once, and swapped in atomically.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Map, Value};

use super::card_mapping::{channel_of, compile_card, Channel, CompiledCard};
use super::catalog::{catalog, CatalogEvent};
use super::placeholder::{preview, Pattern};
use super::rules::KeywordType;
use crate::error::{Error, Result};

/// WeChat's limit on the keywords of one template.
pub const MAX_KEYWORDS: usize = 20;
/// Longest `page`, in characters.
pub const MAX_PAGE_CHARS: usize = 1024;
/// Longest mapping value (the placeholder text), in characters.
const MAX_VALUE_CHARS: usize = 1024;
/// Largest mapping document accepted, in bytes.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Problems listed in one error message; the rest are counted.
const MAX_LISTED_PROBLEMS: usize = 50;

/// Which WeChat API a mapping sends through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// `/cgi-bin/message/subscribe/send`, backed by a user's subscribe grant.
    Subscribe,
    /// The legacy `/cgi-bin/message/wxopen/template/send`, backed by a form_id or prepay_id.
    Template,
}

/// What to do with a text value longer than its keyword allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Truncate,
    Error,
}

/// One keyword of a compiled event mapping.
#[derive(Debug)]
pub struct CompiledKeyword {
    pub name: Box<str>,
    /// The value rule (subscribe); `None` for legacy `keywordN`.
    pub rule: Option<KeywordType>,
    pub pattern: Pattern,
    /// The fields the value reads, for messages.
    pub fields: Box<str>,
}

/// One event's mapping, ready to render.
#[derive(Debug)]
pub struct CompiledEvent {
    pub kind: MessageKind,
    pub template_id: Box<str>,
    pub enabled: bool,
    pub page: Option<Pattern>,
    pub miniprogram_state: &'static str,
    pub lang: &'static str,
    pub keywords: Vec<CompiledKeyword>,
    pub overflow: Overflow,
    pub emphasis_keyword: Option<Box<str>>,
    /// The payload fields rendering reads; the first `key_fields` slots are
    /// the catalog's key fields of the event (slot 0 is always `order_sn`),
    /// which make the default idempotency key.
    pub slots: Vec<Box<str>>,
    /// How many of the first slots make the default idempotency key.
    pub key_fields: usize,
    /// Subscribe message, service card or both.
    pub channel: Channel,
    /// The service card the event updates (channel card or both).
    pub card: Option<CompiledCard>,
}

/// A loaded mapping document.
#[derive(Debug)]
pub struct CompiledMappings {
    /// The normalized document (defaults filled in), as `get_mappings` returns it.
    pub document: String,
    /// A handful of events: a list searched in order beats hashing the name.
    pub events: Vec<(Box<str>, CompiledEvent)>,
    /// What loads but deserves a look, each `path: what` (a keyword prefix
    /// outside WeChat's tables, sent with the generic text checks).
    pub warnings: Vec<String>,
}

impl CompiledMappings {
    /// Whether an event (enabled or not) is mapped to subscribe template `template_id`.
    pub fn maps_subscribe_template(&self, template_id: &str) -> bool {
        self.events.iter().any(|(_, e)| {
            e.kind == MessageKind::Subscribe
                && e.channel.has_message()
                && *e.template_id == *template_id
        })
    }

    /// The subscribe templates mapped, for messages.
    pub fn subscribe_templates(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self
            .events
            .iter()
            .filter(|(_, e)| e.kind == MessageKind::Subscribe && e.channel.has_message())
            .map(|(_, e)| &*e.template_id)
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    pub fn event(&self, name: &str) -> Option<&CompiledEvent> {
        self.events
            .iter()
            .find(|(n, _)| **n == *name)
            .map(|(_, e)| e)
    }
}

/// Loaded mappings per appid. Readers clone the `Arc` and render without a lock.
#[derive(Debug, Default)]
pub struct MappingRegistry {
    docs: RwLock<HashMap<String, Arc<CompiledMappings>>>,
}

impl MappingRegistry {
    pub fn get(&self, appid: &str) -> Option<Arc<CompiledMappings>> {
        self.docs.read().get(appid).cloned()
    }

    fn replace(&self, appid: &str, doc: Arc<CompiledMappings>) {
        self.docs.write().insert(appid.to_string(), doc);
    }
}

pub fn no_document(appid: &str) -> Error {
    Error::Mapping(format!(
        "no mapping document is loaded for app {appid} (call load_mappings first)"
    ))
}

impl MappingRegistry {
    /// The app's loaded document, normalized (defaults filled in).
    pub fn document(&self, appid: &str) -> Result<String> {
        self.get(appid)
            .map(|m| m.document.clone())
            .ok_or_else(|| no_document(appid))
    }

    /// Validates and compiles a mapping document and makes it the app's
    /// mapping. A document with any problem changes nothing; the error lists
    /// every problem with its JSON path.
    pub fn load(&self, appid: &str, json: &str) -> Result<()> {
        let compiled = compile_json(json)?.map_err(|problems| {
            let n = problems.len();
            let mut msg = format!(
                "mapping document for {appid} has {n} problem{}: ",
                if n == 1 { "" } else { "s" }
            );
            msg.push_str(&problems[..n.min(MAX_LISTED_PROBLEMS)].join("; "));
            if n > MAX_LISTED_PROBLEMS {
                msg.push_str(&format!("; … and {} more", n - MAX_LISTED_PROBLEMS));
            }
            Error::Mapping(msg)
        })?;
        self.replace(appid, Arc::new(compiled));
        Ok(())
    }
}

/// Compiles a mapping document without loading it: INVALID_ARGUMENT for text
/// that is too large or not JSON, else the compiled document or its problems,
/// each `path: what`.
pub fn compile_json(json: &str) -> Result<std::result::Result<CompiledMappings, Vec<String>>> {
    if json.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::invalid(format!(
            "mappings_json is larger than {MAX_DOCUMENT_BYTES} bytes"
        )));
    }
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| Error::invalid(format!("mappings_json is not valid JSON: {e}")))?;
    Ok(compile_document(&doc))
}

/// The problems of a document, each `path: what`, and its warnings.
#[derive(Default)]
struct Problems(Vec<String>, Vec<String>);

impl Problems {
    fn add(&mut self, path: &str, what: impl Display) {
        self.0.push(format!("{path}: {what}"));
    }

    fn warn(&mut self, path: &str, what: impl Display) {
        self.1.push(format!("{path}: {what}"));
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// `parent.key`, or `parent["key"]` when the key is not a plain name.
fn key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => {
            let quoted = serde_json::to_string(&*preview(key)).unwrap_or_default();
            format!("{parent}[{quoted}]")
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short rendering of a wrong value for a message.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", preview(s)),
        Value::Array(_) | Value::Object(_) => type_name(v).to_string(),
        other => other.to_string(),
    }
}

fn compile_document(doc: &Value) -> std::result::Result<CompiledMappings, Vec<String>> {
    let mut p = Problems::default();
    let Some(root) = doc.as_object() else {
        p.add(
            "(document)",
            format!(
                "must be an object like {{\"version\": 1, \"events\": {{…}}}}, got {}",
                type_name(doc)
            ),
        );
        return Err(p.0);
    };
    for key in root.keys() {
        if key != "version" && key != "events" && key != "fields" {
            p.add(
                &key_path("", key),
                "unknown field (a document has version, events and fields)",
            );
        }
    }
    let host_fields = compile_host_fields(root.get("fields"), &mut p);
    let host: Vec<&str> = host_fields.iter().map(|f| f.0.as_str()).collect();
    match root.get("version") {
        None => p.add("version", "missing field (must be 1)"),
        Some(v) if v.as_u64() == Some(1) => {}
        Some(v) => p.add("version", format!("must be 1, got {}", shown(v))),
    }
    let mut events = Vec::new();
    let mut normalized = Map::new();
    match root.get("events") {
        None => p.add(
            "events",
            "missing field (an object of event name → mapping)",
        ),
        // PHP encodes an empty array as `[]`: no events.
        Some(Value::Array(list)) if list.is_empty() => {}
        Some(Value::Object(specs)) => {
            for (name, spec) in specs {
                let path = key_path("events", name);
                if let Some((event, norm)) = compile_event(&path, name, spec, &host, &mut p) {
                    events.push((Box::from(name.as_str()), event));
                    normalized.insert(name.clone(), norm);
                }
            }
        }
        Some(v) => p.add(
            "events",
            format!(
                "must be an object of event name → mapping, got {}",
                type_name(v)
            ),
        ),
    }
    if p.len() > 0 {
        return Err(p.0);
    }
    let mut document = serde_json::json!({"version": 1, "events": normalized});
    if root.contains_key("fields") {
        let fields: Vec<Value> = host_fields
            .iter()
            .map(|(name, label, kind)| serde_json::json!({"name": name, "label": label, "type": kind}))
            .collect();
        document["fields"] = Value::Array(fields);
    }
    let document = document.to_string();
    Ok(CompiledMappings {
        document,
        events,
        warnings: p.1,
    })
}

/// Most host fields one document may declare.
const MAX_HOST_FIELDS: usize = 50;

/// The document's own fields, `[{"name", "label", "type"}]`: what the host
/// passes beyond the catalog's fields (mappings.md says it may), so that a
/// mapping may use them in any event. A name must not be a catalog field.
fn compile_host_fields(given: Option<&Value>, p: &mut Problems) -> Vec<(String, String, String)> {
    let mut fields = Vec::new();
    let Some(given) = given else {
        return fields;
    };
    let Some(list) = given.as_array() else {
        p.add(
            "fields",
            format!(
                "must be a list of {{\"name\", \"label\", \"type\"}}, got {}",
                type_name(given)
            ),
        );
        return fields;
    };
    if list.len() > MAX_HOST_FIELDS {
        p.add(
            "fields",
            format!("at most {MAX_HOST_FIELDS} fields, got {}", list.len()),
        );
        return fields;
    }
    for (i, f) in list.iter().enumerate() {
        if let Some(field) = compile_host_field(&format!("fields[{i}]"), f, &fields, p) {
            fields.push(field);
        }
    }
    fields
}

/// One host field `{"name", "label", "type"}`: `None` only when it is not an
/// object of those keys (a field with bad values is kept, its problems reported).
fn compile_host_field(
    path: &str,
    f: &Value,
    earlier: &[(String, String, String)],
    p: &mut Problems,
) -> Option<(String, String, String)> {
    let Some(obj) = f.as_object() else {
        p.add(
            path,
            format!(
                "must be an object {{\"name\", \"label\", \"type\"}}, got {}",
                type_name(f)
            ),
        );
        return None;
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !["name", "label", "type"].contains(&k.as_str()))
    {
        p.add(
            &key_path(path, k),
            "unknown field (a host field has name, label and type)",
        );
        return None;
    }
    let text = |key: &str| obj.get(key).and_then(Value::as_str).unwrap_or_default();
    let (name, label, kind) = (text("name"), text("label"), text("type"));
    check_host_field_name(path, obj, name, earlier, p);
    if label.is_empty() || label.chars().count() > 64 {
        p.add(
            &key_path(path, "label"),
            "must be a text of 1 to 64 characters",
        );
    }
    let types = &catalog().types;
    if !types.contains_key(kind) {
        let names: Vec<&str> = types.keys().map(String::as_str).collect();
        p.add(
            &key_path(path, "type"),
            format!(
                "must be one of {}, got {}",
                names.join(", "),
                shown(obj.get("type").unwrap_or(&Value::Null))
            ),
        );
    }
    Some((name.to_string(), label.to_string(), kind.to_string()))
}

/// A host field's name is a placeholder name of its own: not a catalog
/// field's, and not one declared before.
fn check_host_field_name(
    path: &str,
    obj: &Map<String, Value>,
    name: &str,
    earlier: &[(String, String, String)],
    p: &mut Problems,
) {
    let good_name = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase();
    if !good_name {
        p.add(
            &key_path(path, "name"),
            format!(
                "must be 1 to 64 of a-z, 0-9 and _, starting with a letter, got {}",
                shown(obj.get("name").unwrap_or(&Value::Null))
            ),
        );
    } else if catalog().events.iter().any(|e| e.has_field(name)) {
        p.add(
            &key_path(path, "name"),
            format!("{name} is a catalog field already"),
        );
    } else if earlier.iter().any(|(n, _, _)| n == name) {
        p.add(&key_path(path, "name"), format!("{name} is declared twice"));
    }
}

const EVENT_FIELDS: &[&str] = &[
    "kind",
    "template_id",
    "enabled",
    "page",
    "miniprogram_state",
    "lang",
    "data",
    "overflow",
    "emphasis_keyword",
    "channel",
    "card",
];

/// A field's value; null counts as absent (PHP writes null for unset options).
fn given<'v>(obj: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// A string field that must be one of `choices`; `None` when absent or wrong.
fn choice(
    obj: &Map<String, Value>,
    path: &str,
    key: &str,
    choices: &[&'static str],
    p: &mut Problems,
) -> Option<&'static str> {
    let v = given(obj, key)?;
    let found = v.as_str().and_then(|s| choices.iter().find(|c| **c == s));
    if found.is_none() {
        let list: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
        p.add(
            &key_path(path, key),
            format!("must be one of {}, got {}", list.join(", "), shown(v)),
        );
    }
    found.copied()
}

fn string<'v>(
    obj: &'v Map<String, Value>,
    path: &str,
    key: &str,
    p: &mut Problems,
) -> Option<&'v str> {
    match given(obj, key)? {
        Value::String(s) => Some(s),
        v => {
            p.add(
                &key_path(path, key),
                format!("must be a string, got {}", type_name(v)),
            );
            None
        }
    }
}

fn compile_event(
    path: &str,
    name: &str,
    spec: &Value,
    host: &[&str],
    p: &mut Problems,
) -> Option<(CompiledEvent, Value)> {
    let Some(cat) = catalog().event(name) else {
        p.add(
            path,
            format!(
                "unknown event (catalog events: {})",
                catalog().event_names()
            ),
        );
        return None;
    };
    let Some(obj) = spec.as_object() else {
        p.add(path, format!("must be an object, got {}", type_name(spec)));
        return None;
    };
    let before = p.len();
    for key in obj.keys() {
        if !EVENT_FIELDS.contains(&key.as_str()) {
            p.add(
                &key_path(path, key),
                format!("unknown field (fields: {})", EVENT_FIELDS.join(", ")),
            );
        }
    }
    let channel = channel_of(obj, path, &mut p.0);
    let card = compile_card(path, obj, channel, cat, host, &mut p.0);
    if channel == Channel::Card {
        return card_only(path, obj, cat, card, (p.len() == before).then_some(()), p);
    }
    let options = event_options(obj, path, p);
    let known = |field: &str| cat.has_text_field(field) || host.contains(&field);
    let mut slots = key_slots(cat);
    let key_fields = slots.len();
    let page = string(obj, path, "page", p)
        .and_then(|text| compile_page(&key_path(path, "page"), text, &known, &mut slots, p));
    let keywords = compile_data(path, obj, options.kind, cat, host, &mut slots, p);
    if let (Some(e), Some(keywords)) = (options.emphasis, &keywords) {
        check_emphasis(path, e, keywords, p);
    }
    if p.len() > before {
        return None;
    }
    let (kind, template_id, keywords) = (options.kind?, options.template_id?, keywords?);
    let (state, lang) = match kind {
        MessageKind::Subscribe => (
            options.state.unwrap_or("formal"),
            options.lang.unwrap_or("zh_CN"),
        ),
        MessageKind::Template => ("", ""),
    };
    let event = CompiledEvent {
        kind,
        template_id: template_id.into(),
        enabled: options.enabled,
        page,
        miniprogram_state: state,
        lang,
        keywords,
        overflow: options.overflow,
        emphasis_keyword: options.emphasis.map(Box::from),
        slots,
        key_fields,
        channel,
        card,
    };
    let normalized = normalized_event(obj, &event);
    Some((event, normalized))
}

/// An event that only updates a service card: no template, no data.
fn card_only(
    path: &str,
    obj: &Map<String, Value>,
    cat: &CatalogEvent,
    card: Option<CompiledCard>,
    clean: Option<()>,
    p: &mut Problems,
) -> Option<(CompiledEvent, Value)> {
    for key in ["template_id", "data", "page", "kind", "emphasis_keyword"] {
        if given(obj, key).is_some() {
            p.add(
                &key_path(path, key),
                "a card-only event (channel \"card\") has no subscribe message: use channel \"both\" to send one too",
            );
        }
    }
    let (card, ()) = (card?, clean?);
    let enabled = !matches!(given(obj, "enabled"), Some(Value::Bool(false)));
    let slots = key_slots(cat);
    let event = CompiledEvent {
        kind: MessageKind::Subscribe,
        template_id: "".into(),
        enabled,
        page: None,
        miniprogram_state: "formal",
        lang: "zh_CN",
        keywords: Vec::new(),
        overflow: Overflow::Truncate,
        emphasis_keyword: None,
        key_fields: slots.len(),
        slots,
        channel: Channel::Card,
        card: Some(card),
    };
    let norm = serde_json::json!({"channel": "card", "enabled": enabled, "card": event.card.as_ref().map(|c| c.spec.clone())});
    Some((event, norm))
}

/// An event's settings besides its page and data, as far as they are valid
/// (`None` for a kind or template_id that is not).
struct EventOptions<'v> {
    kind: Option<MessageKind>,
    template_id: Option<&'v str>,
    enabled: bool,
    overflow: Overflow,
    state: Option<&'static str>,
    lang: Option<&'static str>,
    emphasis: Option<&'v str>,
}

fn event_options<'v>(
    obj: &'v Map<String, Value>,
    path: &str,
    p: &mut Problems,
) -> EventOptions<'v> {
    let kind_given = given(obj, "kind").is_some();
    let kind = match choice(obj, path, "kind", &["subscribe", "template"], p) {
        Some("template") => Some(MessageKind::Template),
        Some(_) => Some(MessageKind::Subscribe),
        None if kind_given => None,
        None => Some(MessageKind::Subscribe),
    };
    let template_id = event_template_id(obj, path, p);
    let enabled = match given(obj, "enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            p.add(
                &key_path(path, "enabled"),
                format!("must be true or false, got {}", shown(v)),
            );
            true
        }
    };
    let overflow = match choice(obj, path, "overflow", &["truncate", "error"], p) {
        Some("error") => Overflow::Error,
        _ => Overflow::Truncate,
    };
    let options = EventOptions {
        kind,
        template_id,
        enabled,
        overflow,
        state: choice(
            obj,
            path,
            "miniprogram_state",
            &["formal", "trial", "developer"],
            p,
        ),
        lang: choice(obj, path, "lang", &["zh_CN", "en_US", "zh_HK", "zh_TW"], p),
        emphasis: string(obj, path, "emphasis_keyword", p),
    };
    check_fields_of_kind(obj, path, kind, p);
    options
}

/// The template id, required and of the characters WeChat's ids have.
fn event_template_id<'v>(
    obj: &'v Map<String, Value>,
    path: &str,
    p: &mut Problems,
) -> Option<&'v str> {
    let Some(t) = string(obj, path, "template_id", p) else {
        if given(obj, "template_id").is_none() {
            p.add(
                &key_path(path, "template_id"),
                "missing field (the template's id from the mini program's admin)",
            );
        }
        return None;
    };
    let ok = (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        p.add(
            &key_path(path, "template_id"),
            format!(
                "must be 1 to 128 letters, digits, '_' or '-', got \"{}\"",
                preview(t)
            ),
        );
    }
    Some(t)
}

/// Subscribe and legacy template messages have a few settings of their own:
/// one given for the other kind is a mistake, not something to ignore.
fn check_fields_of_kind(
    obj: &Map<String, Value>,
    path: &str,
    kind: Option<MessageKind>,
    p: &mut Problems,
) {
    if kind == Some(MessageKind::Template) {
        for key in ["miniprogram_state", "lang"] {
            if given(obj, key).is_some() {
                p.add(
                    &key_path(path, key),
                    "only subscribe messages have this field (kind is \"template\")",
                );
            }
        }
    }
    if kind == Some(MessageKind::Subscribe) && given(obj, "emphasis_keyword").is_some() {
        p.add(
            &key_path(path, "emphasis_keyword"),
            "only legacy template messages have this field (kind is \"subscribe\")",
        );
    }
}

/// The first slots are the fields the default idempotency key is made of
/// (`order_sn`, then the event's own key fields); the page and data add theirs after.
fn key_slots(cat: &CatalogEvent) -> Vec<Box<str>> {
    let mut slots: Vec<Box<str>> = vec![Box::from("order_sn")];
    for key in &cat.key_fields {
        if !slots.iter().any(|s| **s == **key) {
            slots.push(key.as_str().into());
        }
    }
    slots
}

/// The emphasised keyword is one the data fills, written `keyword.DATA`.
fn check_emphasis(path: &str, emphasis: &str, keywords: &[CompiledKeyword], p: &mut Problems) {
    let ok = emphasis
        .strip_suffix(".DATA")
        .is_some_and(|k| keywords.iter().any(|kw| &*kw.name == k));
    if !ok {
        p.add(
            &key_path(path, "emphasis_keyword"),
            format!(
                "must name a keyword of data followed by .DATA (e.g. keyword1.DATA), got \"{}\"",
                preview(emphasis)
            ),
        );
    }
}

/// The event as stored: every setting spelled out, defaults included.
fn normalized_event(obj: &Map<String, Value>, event: &CompiledEvent) -> Value {
    let mut norm = Map::new();
    let kind_name = match event.kind {
        MessageKind::Subscribe => "subscribe",
        MessageKind::Template => "template",
    };
    norm.insert("kind".into(), kind_name.into());
    norm.insert("template_id".into(), (*event.template_id).into());
    norm.insert("enabled".into(), event.enabled.into());
    if let Some(page) = given(obj, "page") {
        norm.insert("page".into(), page.clone());
    }
    if event.kind == MessageKind::Subscribe {
        norm.insert("miniprogram_state".into(), event.miniprogram_state.into());
        norm.insert("lang".into(), event.lang.into());
    }
    norm.insert("data".into(), obj.get("data").cloned().unwrap_or_default());
    if let Some(e) = &event.emphasis_keyword {
        norm.insert("emphasis_keyword".into(), (**e).into());
    }
    let overflow_name = match event.overflow {
        Overflow::Truncate => "truncate",
        Overflow::Error => "error",
    };
    norm.insert("overflow".into(), overflow_name.into());
    if let Some(card) = &event.card {
        norm.insert("channel".into(), event.channel.as_str().into());
        norm.insert("card".into(), card.spec.clone());
    }
    Value::Object(norm)
}

fn is_page_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/?=&%.-_~:@!$'()*+,;".contains(c)
}

fn compile_page(
    path: &str,
    text: &str,
    known: &dyn Fn(&str) -> bool,
    slots: &mut Vec<Box<str>>,
    p: &mut Problems,
) -> Option<Pattern> {
    let before = p.len();
    // WeChat's page has no leading "/" (its examples: `pages/index/index`; the
    // legacy API answered 41030 to one). A shop writes the path as it writes
    // wx.navigateTo urls, with one: it is taken off when sending.
    let text = text.trim_start_matches('/');
    if text.is_empty() || text.starts_with('?') {
        p.add(
            path,
            "bad page: must name a page of the mini program (e.g. pages/order/detail?id={order_id})",
        );
        return None;
    }
    if text.chars().count() > MAX_PAGE_CHARS {
        p.add(
            path,
            format!("bad page: longer than {MAX_PAGE_CHARS} characters"),
        );
        return None;
    }
    let pattern = match Pattern::compile(text, known, slots) {
        Ok(pattern) => pattern,
        Err(errors) => {
            for e in errors {
                p.add(path, e);
            }
            return None;
        }
    };
    if let Some(c) = pattern
        .literals()
        .flat_map(str::chars)
        .find(|c| !is_page_char(*c))
    {
        p.add(
            path,
            format!("bad page: {c:?} is not allowed in a page path (letters, digits and / ? = & % . - _ ~ : @ ! $ ' ( ) * + , ;)"),
        );
    }
    (p.len() == before).then_some(pattern)
}

fn compile_data(
    path: &str,
    obj: &Map<String, Value>,
    kind: Option<MessageKind>,
    cat: &CatalogEvent,
    host: &[&str],
    slots: &mut Vec<Box<str>>,
    p: &mut Problems,
) -> Option<Vec<CompiledKeyword>> {
    let data_path = key_path(path, "data");
    let data = data_object(obj, &data_path, p)?;
    let before = p.len();
    if data.is_empty() {
        p.add(&data_path, "must fill at least one keyword");
    }
    if data.len() > MAX_KEYWORDS {
        p.add(
            &data_path,
            format!(
                "too many keys: {} keywords, a template has at most {MAX_KEYWORDS}",
                data.len()
            ),
        );
    }
    let known = |field: &str| cat.has_text_field(field) || host.contains(&field);
    let mut keywords = Vec::with_capacity(data.len());
    for (key, value) in data {
        let kpath = key_path(&data_path, key);
        let rule = keyword_rule(&kpath, key, kind, p);
        if let Some(pattern) = keyword_pattern(&kpath, value, &known, slots, p) {
            let names: Vec<&str> = pattern.slots().map(|s| &*slots[s]).collect();
            keywords.push(CompiledKeyword {
                name: key.as_str().into(),
                rule,
                fields: names.join(", ").into(),
                pattern,
            });
        }
    }
    (p.len() == before).then_some(keywords)
}

/// The event's `data`, an object; `None` when it is missing or not one.
fn data_object<'v>(
    obj: &'v Map<String, Value>,
    data_path: &str,
    p: &mut Problems,
) -> Option<&'v Map<String, Value>> {
    let data = match given(obj, "data") {
        None => {
            p.add(
                data_path,
                "missing field (an object of template keyword → value, e.g. {\"thing3\": \"{order_total_goods_name}\"})",
            );
            return None;
        }
        Some(Value::Object(data)) => data,
        Some(v) => {
            p.add(
                data_path,
                format!(
                    "must be an object of template keyword → value, got {}",
                    type_name(v)
                ),
            );
            return None;
        }
    };
    Some(data)
}

/// The value rule a keyword's name gives it: a subscribe keyword's type
/// prefix (`thing3` is a thing); legacy keywords (`keyword1`) have none.
fn keyword_rule(
    kpath: &str,
    key: &str,
    kind: Option<MessageKind>,
    p: &mut Problems,
) -> Option<KeywordType> {
    match kind? {
        MessageKind::Subscribe => match KeywordType::of_keyword(key) {
            Some(KeywordType::Const) => {
                p.add(
                    kpath,
                    "bad keyword name: a const keyword is fixed by the template and cannot be set",
                );
                None
            }
            Some(KeywordType::Other) => {
                p.warn(
                    kpath,
                    "keyword type not in WeChat's tables: sent with the generic text checks (one line, at most 20 characters); check the template's keyword name",
                );
                Some(KeywordType::Other)
            }
            Some(t) => Some(t),
            None => {
                p.add(
                    kpath,
                    "bad keyword name: a type prefix of lowercase letters (thing, number, letter, symbol, character_string, time, date, amount, phone_number, car_number, name, phrase, enum_string, short_thing, …) followed by digits",
                );
                None
            }
        },
        MessageKind::Template => {
            let ok = key
                .strip_prefix("keyword")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if !ok {
                p.add(
                    kpath,
                    "bad keyword name: legacy template keywords are keyword1, keyword2, …",
                );
            }
            None
        }
    }
}

/// A keyword's value: a text of placeholders and literals, compiled.
fn keyword_pattern(
    kpath: &str,
    value: &Value,
    known: &dyn Fn(&str) -> bool,
    slots: &mut Vec<Box<str>>,
    p: &mut Problems,
) -> Option<Pattern> {
    let Value::String(text) = value else {
        p.add(
            kpath,
            format!(
                "must be a string with placeholders (e.g. \"{{order_sn}}\"), got {}",
                type_name(value)
            ),
        );
        return None;
    };
    if text.is_empty() {
        p.add(kpath, "must not be empty");
        return None;
    }
    if text.chars().count() > MAX_VALUE_CHARS {
        p.add(kpath, format!("longer than {MAX_VALUE_CHARS} characters"));
        return None;
    }
    match Pattern::compile(text, known, slots) {
        Ok(pattern) => Some(pattern),
        Err(errors) => {
            for e in errors {
                p.add(kpath, e);
            }
            None
        }
    }
}
