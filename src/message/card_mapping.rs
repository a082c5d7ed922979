//! The service card side of an event's mapping: the channel an event goes out
//! by (subscribe message, card update or both), and for a card which card,
//! the status the event moves it to and which shop fields fill the status's
//! fields. Validated with JSON paths like the rest of the document; rendered
//! into the `set_user_notify` request by `render_card`.

use serde_json::{json, Map, Value};

use super::cards::{self, card, Card, CardFieldType, CardStatus};
use super::catalog::{CatalogEvent, FieldType};
use super::placeholder::{unix_seconds, FieldSource, Pattern, RenderFault};
use crate::error::{Error, Result};

/// How an event reaches the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A subscribe (or legacy template) message: needs the buyer's grant.
    Subscribe,
    /// A service card update: no grant, the WeChat Pay transaction id is the code.
    Card,
    Both,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Subscribe => "subscribe",
            Channel::Card => "card",
            Channel::Both => "both",
        }
    }

    pub fn has_message(self) -> bool {
        self != Channel::Card
    }
}

/// One content field of a card mapping.
#[derive(Debug)]
pub struct CompiledCardField {
    pub name: Box<str>,
    pub kind: CardFieldType,
    pub pattern: Pattern,
}

/// An event's card, ready to render.
#[derive(Debug)]
pub struct CompiledCard {
    pub notify_type: u32,
    pub status: u32,
    pub fields: Vec<CompiledCardField>,
    pub code: Pattern,
    /// check_json's pay_amount (yuan, made fen) and pay_time, for a status
    /// that may activate the card.
    pub check: Option<(Pattern, Pattern)>,
    /// The payload fields the patterns read.
    pub slots: Vec<Box<str>>,
    /// The card mapping as given, for `get_mappings`.
    pub spec: Value,
}

const CARD_KEYS: &[&str] = &["notify_type", "status", "fields", "notify_code", "check"];

/// What compiling reports: each problem as `path: what`.
pub type Problems = Vec<String>;

/// The event's `channel` (default "subscribe", or "card" when only `card` is given).
pub fn channel_of(obj: &Map<String, Value>, path: &str, p: &mut Problems) -> Channel {
    match obj.get("channel").filter(|v| !v.is_null()) {
        None if obj.contains_key("card") && !obj.contains_key("template_id") => Channel::Card,
        None => Channel::Subscribe,
        Some(v) => match v.as_str() {
            Some("subscribe") => Channel::Subscribe,
            Some("card") => Channel::Card,
            Some("both") => Channel::Both,
            _ => {
                p.push(format!(
                    "{path}.channel: must be one of \"subscribe\", \"card\", \"both\", got {v}"
                ));
                Channel::Subscribe
            }
        },
    }
}

/// The event's card, when its channel has one; `None` with problems otherwise.
pub fn compile_card(
    path: &str,
    obj: &Map<String, Value>,
    channel: Channel,
    cat: &CatalogEvent,
    host: &[&str],
    p: &mut Problems,
) -> Option<CompiledCard> {
    let cpath = format!("{path}.card");
    let spec = obj.get("card").filter(|v| !v.is_null());
    let spec = match (channel, spec) {
        (Channel::Subscribe, None) => return None,
        (Channel::Subscribe, Some(_)) => {
            p.push(format!("{cpath}: the channel is \"subscribe\": set \"channel\": \"card\" or \"both\" to use a card"));
            return None;
        }
        (_, None) => {
            p.push(format!("{cpath}: missing (the channel sends a service card: {{\"notify_type\": 2001, \"status\": 1, \"fields\": {{…}}}})"));
            return None;
        }
        (_, Some(Value::Object(spec))) => spec,
        (_, Some(_)) => {
            p.push(format!("{cpath}: must be an object"));
            return None;
        }
    };
    for k in spec.keys().filter(|k| !CARD_KEYS.contains(&k.as_str())) {
        p.push(format!(
            "{cpath}.{k}: unknown field (a card has {})",
            CARD_KEYS.join(", ")
        ));
    }
    let (card, status) = card_and_status(&cpath, spec, p)?;
    let known = |f: &str| cat.has_field(f) || host.contains(&f);
    let mut slots: Vec<Box<str>> = Vec::new();
    let fields = compile_fields(&cpath, spec, card, status, cat, &known, &mut slots, p);
    let text = |key: &str, default: &str| {
        spec.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_string()
    };
    let code = pattern(
        &format!("{cpath}.notify_code"),
        &text("notify_code", "{transaction_id}"),
        &known,
        &mut slots,
        p,
    );
    let check = status.activate.then(|| {
        let c = spec.get("check").cloned().unwrap_or_default();
        let at = |k: &str, d: &str| c.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
        let amount = pattern(
            &format!("{cpath}.check.pay_amount"),
            &at("pay_amount", "{order_amount}"),
            &known,
            &mut slots,
            p,
        );
        let time = pattern(
            &format!("{cpath}.check.pay_time"),
            &at("pay_time", "{pay_time}"),
            &known,
            &mut slots,
            p,
        );
        amount.zip(time)
    });
    Some(CompiledCard {
        notify_type: card.notify_type,
        status: status.id,
        fields: fields?,
        code: code?,
        check: check.flatten(),
        slots,
        spec: Value::Object(spec.clone()),
    })
}

fn card_and_status(
    cpath: &str,
    spec: &Map<String, Value>,
    p: &mut Problems,
) -> Option<(&'static Card, &'static CardStatus)> {
    let t = spec.get("notify_type").and_then(Value::as_u64);
    let Some(card) = t.and_then(|t| u32::try_from(t).ok()).and_then(card) else {
        p.push(format!(
            "{cpath}.notify_type: unknown card type {} (cards: {})",
            spec.get("notify_type").unwrap_or(&Value::Null),
            cards::card_types()
        ));
        return None;
    };
    let s = spec.get("status").and_then(Value::as_u64);
    let Some(status) = s
        .and_then(|s| u32::try_from(s).ok())
        .and_then(|s| card.status(s))
    else {
        p.push(format!(
            "{cpath}.status: card {} has no status {} (statuses: {})",
            card.notify_type,
            spec.get("status").unwrap_or(&Value::Null),
            card.status_ids()
        ));
        return None;
    };
    Some((card, status))
}

/// The status's fields: every required one given, none it does not take,
/// each value a pattern of the shop's fields (a product list: a goods field).
#[allow(clippy::too_many_arguments)]
fn compile_fields(
    cpath: &str,
    spec: &Map<String, Value>,
    card: &Card,
    status: &CardStatus,
    cat: &CatalogEvent,
    known: &dyn Fn(&str) -> bool,
    slots: &mut Vec<Box<str>>,
    p: &mut Problems,
) -> Option<Vec<CompiledCardField>> {
    let fpath = format!("{cpath}.fields");
    let empty = Map::new();
    let given = match spec.get("fields") {
        None => &empty,
        Some(Value::Object(f)) => f,
        Some(_) => {
            p.push(format!("{fpath}: must be an object of card field → value"));
            return None;
        }
    };
    let before = p.len();
    for name in status.required.iter().filter(|n| !given.contains_key(*n)) {
        p.push(format!(
            "{fpath}.{name}: missing, required in status {} ({}) of card {}",
            status.id, status.label, card.notify_type
        ));
    }
    let mut out = Vec::new();
    for (name, value) in given {
        let at = format!("{fpath}.{name}");
        let takes = status.required.contains(name) || status.optional.contains(name);
        let Some(field) = card.field(name).filter(|_| takes) else {
            let all = [status.required.clone(), status.optional.clone()].concat();
            p.push(format!(
                "{at}: status {} ({}) does not take this field (it takes {})",
                status.id,
                status.label,
                all.join(", ")
            ));
            continue;
        };
        let Some(text) = value.as_str() else {
            p.push(format!(
                "{at}: must be a string with placeholders (e.g. \"{{order_id}}\")"
            ));
            continue;
        };
        if field.kind == CardFieldType::ProductList {
            check_goods(&at, text, cat, p);
        }
        if let Some(pattern) = pattern(&at, text, known, slots, p) {
            out.push(CompiledCardField {
                name: name.as_str().into(),
                kind: field.kind,
                pattern,
            });
        }
    }
    (p.len() == before).then_some(out)
}

/// A product list is filled from a goods field, whole: `{order_goods}`.
fn check_goods(at: &str, text: &str, cat: &CatalogEvent, p: &mut Problems) {
    let name = text.strip_prefix('{').and_then(|t| t.strip_suffix('}'));
    let goods = name.and_then(|n| cat.fields.iter().find(|f| f.name == n));
    if !goods.is_some_and(|f| f.kind == FieldType::Goods) {
        p.push(format!(
            "{at}: must be a goods list field alone, e.g. \"{{order_goods}}\" (items {{title, image, count, price, path}})"
        ));
    }
}

fn pattern(
    at: &str,
    text: &str,
    known: &dyn Fn(&str) -> bool,
    slots: &mut Vec<Box<str>>,
    p: &mut Problems,
) -> Option<Pattern> {
    match Pattern::compile(text, known, slots) {
        Ok(pat) => Some(pat),
        Err(errors) => {
            for e in errors {
                p.push(format!("{at}: {e}"));
            }
            None
        }
    }
}

/// A card update rendered from a payload: the body of `set_user_notify`
/// without check_json, which only an activation carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CardUpdate {
    pub notify_type: u32,
    pub status: u32,
    pub openid: String,
    /// The WeChat Pay transaction id.
    pub code: String,
    pub content: Map<String, Value>,
    /// check_json `{pay_amount, pay_time}` when the status may activate and
    /// the payload has both; else why not.
    pub check: Option<std::result::Result<(u64, i64), String>>,
}

impl CardUpdate {
    /// The request body; `activate` adds check_json.
    pub fn body(&self, activate: bool) -> Result<String> {
        let mut body = json!({
            "openid": self.openid,
            "notify_type": self.notify_type,
            "notify_code": self.code,
            "content_json": Value::Object(self.content.clone()).to_string(),
        });
        if activate {
            match &self.check {
                Some(Ok((amount, time))) => {
                    body["check_json"] =
                        json!(json!({"pay_amount": amount, "pay_time": time}).to_string())
                }
                Some(Err(why)) => {
                    return Err(Error::invalid(format!(
                        "activating card {}: {why}",
                        self.notify_type
                    )))
                }
                None => {
                    return Err(Error::invalid(format!(
                        "card {} of {} is not activated yet and status {} cannot activate it",
                        self.notify_type, self.code, self.status
                    )))
                }
            }
        }
        Ok(body.to_string())
    }
}

/// A payload's fields by the card's slots.
struct Fields<'a> {
    slots: &'a [Box<str>],
    map: &'a Map<String, Value>,
}

impl FieldSource for Fields<'_> {
    fn text(&self, slot: usize) -> std::result::Result<Option<std::borrow::Cow<'_, str>>, String> {
        Ok(match self.map.get(&*self.slots[slot]) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str().into()),
            Some(Value::Number(n)) => Some(n.to_string().into()),
            Some(Value::Bool(b)) => Some(b.to_string().into()),
            Some(v) => Some(v.to_string().into()),
        })
    }
}

fn rendered(
    card: &CompiledCard,
    pattern: &Pattern,
    fields: &Fields<'_>,
    at: &str,
) -> Result<String> {
    let mut out = String::new();
    pattern.render_into(fields, None, &mut out).map_err(|f| {
        let (slot, why) = match f {
            RenderFault::Missing { slot } => (slot, "missing from the payload".to_string()),
            RenderFault::Bad { slot, reason } => (slot, reason),
        };
        Error::Mapping(format!(
            "card {} {at}: field {} {why}",
            card.notify_type, card.slots[slot]
        ))
    })?;
    Ok(out)
}

/// Renders `card` for `touser` from the payload's `fields`; the result is
/// checked against the card's definition.
pub fn render_card(
    card: &CompiledCard,
    touser: &str,
    map: &Map<String, Value>,
) -> Result<CardUpdate> {
    let fields = Fields {
        slots: &card.slots,
        map,
    };
    let code = rendered(card, &card.code, &fields, "notify_code")?;
    if !cards::is_transaction_id(&code) {
        return Err(Error::invalid(format!(
            "card {}: notify_code \"{}\" is not a WeChat Pay transaction id (28 digits starting with 42: the pay notify's transaction_id)",
            card.notify_type,
            super::placeholder::preview(&code)
        )));
    }
    let mut content = Map::new();
    content.insert("cur_status".into(), card.status.into());
    // Product lists last: a product without a path links to the card's page.
    let (lists, plain): (Vec<_>, Vec<_>) = card
        .fields
        .iter()
        .partition(|f| f.kind == CardFieldType::ProductList);
    for f in plain.into_iter().chain(lists) {
        let text = rendered(card, &f.pattern, &fields, &f.name)?;
        let value = card_value(f.kind, &text, &content).map_err(|why| {
            Error::Mapping(format!("card {} field {}: {why}", card.notify_type, f.name))
        })?;
        content.insert(f.name.to_string(), value);
    }
    let def = cards::card(card.notify_type).expect("compiled cards exist");
    if let Err(problems) = def.check_content(&content) {
        return Err(Error::Mapping(format!(
            "card {}: {}",
            card.notify_type,
            problems.join("; ")
        )));
    }
    let check = card.check.as_ref().map(|(amount, time)| {
        let amount =
            rendered(card, amount, &fields, "check.pay_amount").map_err(|e| e.to_string())?;
        let time = rendered(card, time, &fields, "check.pay_time").map_err(|e| e.to_string())?;
        Ok((fen(&amount)?, unix_seconds(&time)?))
    });
    Ok(CardUpdate {
        notify_type: card.notify_type,
        status: card.status,
        openid: touser.to_string(),
        code,
        content,
        check,
    })
}

/// A rendered text as the card field's JSON value.
fn card_value(
    kind: CardFieldType,
    text: &str,
    content: &Map<String, Value>,
) -> std::result::Result<Value, String> {
    let t = text.trim();
    Ok(match kind {
        CardFieldType::Uint32 => json!(t
            .parse::<u32>()
            .map_err(|_| format!("`{t}` is not a whole number"))?),
        CardFieldType::Fen => json!(fen(t)?),
        CardFieldType::Seconds => json!(unix_seconds(t)?),
        CardFieldType::Path => json!(t.trim_start_matches('/')),
        CardFieldType::Url | CardFieldType::Text => json!(t),
        CardFieldType::ProductList => products(t, content)?,
    })
}

/// Yuan (`128.50`, `¥128.5`) → fen.
fn fen(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim().trim_start_matches('¥');
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit());
    let yuan: u64 = whole
        .parse()
        .ok()
        .filter(|_| ok)
        .ok_or_else(|| format!("`{t}` is not an amount in yuan"))?;
    let cents: u64 = format!("{frac:0<2}").parse().unwrap_or(0);
    Ok(yuan * 100 + cents)
}

/// The goods list (an array, or its JSON text) as the card's product list;
/// a product without a path links to the card's page.
fn products(text: &str, content: &Map<String, Value>) -> std::result::Result<Value, String> {
    let list: Value =
        serde_json::from_str(text).map_err(|_| "the goods list is not a JSON list".to_string())?;
    let items = list.as_array().ok_or("the goods list is not a JSON list")?;
    let page = content.get("wxa_path_query").cloned().unwrap_or_default();
    let mut info = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let get = |k: &str| item.get(k).filter(|v| !v.is_null());
        let as_text = |v: &Value| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        };
        let mut p = json!({
            "product_img": get("image").map(as_text).unwrap_or_default(),
            "product_name": get("title").map(as_text).unwrap_or_default(),
            "product_path_query": get("path").map(|v| json!(as_text(v).trim_start_matches('/'))).unwrap_or(page.clone()),
        });
        if let Some(c) = get("count") {
            p["count"] = json!(as_text(c)
                .parse::<u32>()
                .map_err(|_| format!("goods[{i}].count is not a whole number"))?);
        }
        if let Some(price) = get("price") {
            p["single_price"] =
                json!(fen(&as_text(price)).map_err(|e| format!("goods[{i}].price: {e}"))?);
        }
        info.push(p);
    }
    Ok(json!({"info_list": info}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuan_become_fen() {
        assert_eq!(fen("128.50"), Ok(12850));
        assert_eq!(fen("¥3.5"), Ok(350));
        assert_eq!(fen("7"), Ok(700));
        assert!(fen("1.234").is_err());
        assert!(fen("-1").is_err());
    }
}
