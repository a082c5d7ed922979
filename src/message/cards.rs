//! Service cards (WeChat's new one-time subscription, 2001/2002/2003): each
//! card's statuses, which may activate a card, which statuses each may follow,
//! and the fields each status requires, as data (`cards.json`, compiled in,
//! every rule with its source in docs/spec/wechat.md). The library checks an
//! update against them before it calls WeChat; the sandbox answers by them.

use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

const CARDS_JSON: &str = include_str!("cards.json");

/// Longest `wxa_path_query` / `product_path_query` accepted (unverified:
/// WeChat states none; a page of a subscribe message allows 1024).
const MAX_PATH_CHARS: usize = 1024;
/// Most products one card lists (unverified: WeChat states none).
pub const MAX_PRODUCTS: usize = 100;

/// What kind of value a card field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardFieldType {
    Uint32,
    /// Unix seconds.
    Seconds,
    /// An amount in fen.
    Fen,
    Path,
    Url,
    Text,
    ProductList,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardField {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: CardFieldType,
    pub label: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CardStatus {
    pub id: u32,
    pub label: String,
    /// May be the status a card is activated with.
    pub activate: bool,
    /// The statuses this one may follow.
    pub after: Vec<u32>,
    pub required: Vec<String>,
    pub optional: Vec<String>,
    /// What of this row no source confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unverified: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Card {
    pub notify_type: u32,
    /// The tid of WeChat's template library (addtemplate with an empty kidList).
    pub tid: u32,
    pub label: String,
    pub categories: Vec<String>,
    /// Where the notify_code comes from.
    pub code: String,
    pub source: String,
    pub fields: Vec<CardField>,
    pub statuses: Vec<CardStatus>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cards {
    pub version: u32,
    pub sources: std::collections::BTreeMap<String, String>,
    pub field_types: std::collections::BTreeMap<String, String>,
    pub product_fields: Vec<CardField>,
    pub cards: Vec<Card>,
}

static CARDS: Lazy<Cards> =
    Lazy::new(|| serde_json::from_str(CARDS_JSON).expect("cards.json is valid (tested)"));

/// The card definitions.
pub fn cards() -> &'static Cards {
    &CARDS
}

/// The card definitions as JSON, for an admin screen.
pub fn cards_json() -> &'static str {
    CARDS_JSON
}

/// The card of `notify_type`.
pub fn card(notify_type: u32) -> Option<&'static Card> {
    CARDS.cards.iter().find(|c| c.notify_type == notify_type)
}

/// The card whose library template is `tid` (10000001…).
pub fn card_of_tid(tid: u32) -> Option<&'static Card> {
    CARDS.cards.iter().find(|c| c.tid == tid)
}

/// The card types known, for messages: "2001, 2002, 2003".
pub fn card_types() -> String {
    let t: Vec<String> = CARDS
        .cards
        .iter()
        .map(|c| c.notify_type.to_string())
        .collect();
    t.join(", ")
}

/// A WeChat Pay transaction id: 28 digits starting with 42 (the community's
/// observation, unverified: https://developers.weixin.qq.com/community/develop/doc/000e40dc748760acf9d2639fd66000).
pub fn is_transaction_id(code: &str) -> bool {
    code.len() == 28 && code.starts_with("42") && code.bytes().all(|b| b.is_ascii_digit())
}

fn list(ids: &[u32]) -> String {
    let t: Vec<String> = ids.iter().map(u32::to_string).collect();
    t.join(", ")
}

impl Card {
    pub fn status(&self, id: u32) -> Option<&CardStatus> {
        self.statuses.iter().find(|s| s.id == id)
    }

    pub fn field(&self, name: &str) -> Option<&CardField> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The status ids, for messages.
    pub fn status_ids(&self) -> String {
        list(&self.statuses.iter().map(|s| s.id).collect::<Vec<_>>())
    }

    /// The statuses a card may be activated with.
    pub fn activating(&self) -> Vec<u32> {
        self.statuses
            .iter()
            .filter(|s| s.activate)
            .map(|s| s.id)
            .collect()
    }

    /// Whether the card may move from `prev` (`None`: not activated yet) to
    /// `next`; the error names what is allowed.
    pub fn check_transition(&self, prev: Option<u32>, next: u32) -> Result<(), String> {
        let Some(to) = self.status(next) else {
            return Err(format!(
                "card {} has no status {next} (statuses: {})",
                self.notify_type,
                self.status_ids()
            ));
        };
        match prev {
            None if to.activate => Ok(()),
            None => Err(format!(
                "card {} is not activated yet and status {next} ({}) cannot activate it (statuses that can: {})",
                self.notify_type,
                to.label,
                list(&self.activating())
            )),
            Some(p) if to.after.contains(&p) => Ok(()),
            Some(p) => Err(format!(
                "card {} cannot move from status {p} to {next} ({}): status {next} follows only {}",
                self.notify_type,
                to.label,
                list(&to.after)
            )),
        }
    }

    /// Checks a `content_json` object for status `status`: `cur_status`, every
    /// required field, no field the status does not take, each value of its
    /// type. Every problem is returned, each naming its field.
    pub fn check_content(&self, content: &Map<String, Value>) -> Result<u32, Vec<String>> {
        let mut problems = Vec::new();
        let status = match content.get("cur_status").and_then(Value::as_u64) {
            Some(s) => match self.status(s as u32).filter(|_| s <= u64::from(u32::MAX)) {
                Some(st) => st,
                None => {
                    return Err(vec![format!(
                        "cur_status: card {} has no status {s} (statuses: {})",
                        self.notify_type,
                        self.status_ids()
                    )])
                }
            },
            None => return Err(vec!["cur_status: missing or not a whole number".into()]),
        };
        for name in &status.required {
            if content.get(name).is_none_or(Value::is_null) {
                problems.push(format!(
                    "{name}: required in status {} ({})",
                    status.id, status.label
                ));
            }
        }
        for (name, value) in content {
            if name == "cur_status" {
                continue;
            }
            let taken = status.required.contains(name) || status.optional.contains(name);
            match self.field(name) {
                Some(f) if taken => check_value(name, f.kind, value, &mut problems),
                Some(_) => problems.push(format!(
                    "{name}: status {} ({}) does not take this field (it takes {})",
                    status.id,
                    status.label,
                    [status.required.clone(), status.optional.clone()]
                        .concat()
                        .join(", ")
                )),
                None => problems.push(format!("{name}: not a field of card {}", self.notify_type)),
            }
        }
        if problems.is_empty() {
            Ok(status.id)
        } else {
            Err(problems)
        }
    }
}

/// Checks one value against its type, adding each problem as `path: what`.
pub fn check_value(path: &str, kind: CardFieldType, value: &Value, problems: &mut Vec<String>) {
    let whole = value.as_u64().filter(|n| *n <= u64::from(u32::MAX));
    let text = value.as_str();
    let bad = match kind {
        CardFieldType::Uint32 | CardFieldType::Fen => whole
            .is_none()
            .then_some("must be a whole number from 0 to 4294967295 (a JSON number, not a string)"),
        CardFieldType::Seconds => whole
            .filter(|n| *n > 0)
            .is_none()
            .then_some("must be a unix time in seconds (a JSON number)"),
        CardFieldType::Path => text
            .filter(|t| !t.is_empty() && t.chars().count() <= MAX_PATH_CHARS)
            .is_none()
            .then_some("must be a page path with its query, 1 to 1024 characters"),
        CardFieldType::Url => text
            .filter(|t| t.starts_with("https://") || t.starts_with("http://"))
            .is_none()
            .then_some("must be an http(s) URL"),
        CardFieldType::Text => text
            .filter(|t| !t.trim().is_empty())
            .is_none()
            .then_some("must be a non-empty text"),
        CardFieldType::ProductList => {
            check_products(path, value, problems);
            None
        }
    };
    if let Some(what) = bad {
        problems.push(format!("{path}: {what}"));
    }
}

/// `{"info_list": [{product_img, product_name, product_path_query, count?, single_price?}]}`.
fn check_products(path: &str, value: &Value, problems: &mut Vec<String>) {
    let Some(items) = value.get("info_list").and_then(Value::as_array) else {
        problems.push(format!(
            "{path}: must be an object {{\"info_list\": [products]}}"
        ));
        return;
    };
    if items.is_empty() || items.len() > MAX_PRODUCTS {
        problems.push(format!(
            "{path}.info_list: must list 1 to {MAX_PRODUCTS} products"
        ));
    }
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}.info_list[{i}]");
        let Some(obj) = item.as_object() else {
            problems.push(format!("{ipath}: must be an object"));
            continue;
        };
        for f in &CARDS.product_fields {
            match obj.get(&f.name) {
                None if f.required => problems.push(format!("{ipath}.{}: required", f.name)),
                None => {}
                Some(v) => check_value(&format!("{ipath}.{}", f.name), f.kind, v, problems),
            }
        }
        for k in obj.keys() {
            if !CARDS.product_fields.iter().any(|f| f.name == *k) {
                problems.push(format!("{ipath}.{k}: not a product field"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn content(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_data_loads_and_every_reference_is_a_status_or_field() {
        assert_eq!(card_types(), "2001, 2002, 2003");
        for c in &cards().cards {
            assert!(cards().sources.contains_key(&c.source), "{}", c.notify_type);
            assert_eq!(card_of_tid(c.tid).unwrap().notify_type, c.notify_type);
            assert!(!c.activating().is_empty());
            for s in &c.statuses {
                for a in &s.after {
                    assert!(
                        c.status(*a).is_some(),
                        "{} {} after {a}",
                        c.notify_type,
                        s.id
                    );
                }
                for f in s.required.iter().chain(&s.optional) {
                    assert!(c.field(f).is_some(), "{} {} {f}", c.notify_type, s.id);
                }
            }
        }
    }

    #[test]
    fn transitions_follow_the_table_and_name_what_is_allowed() {
        let c = card(2001).unwrap();
        assert!(c.check_transition(None, 1).is_ok());
        assert!(c.check_transition(Some(1), 4).is_ok());
        assert!(c.check_transition(Some(7), 1).is_ok());
        let e = c.check_transition(None, 4).unwrap_err();
        assert!(e.contains("statuses that can: 1, 2"), "{e}");
        let e = c.check_transition(Some(4), 1).unwrap_err();
        assert!(e.contains("follows only 7"), "{e}");
        let e = c.check_transition(Some(1), 99).unwrap_err();
        assert!(e.contains("has no status 99"), "{e}");
    }

    #[test]
    fn content_needs_the_required_fields_of_its_status_with_their_types() {
        let c = card(2001).unwrap();
        let good = json!({"cur_status": 1, "product_count": 2, "wxa_path_query": "pages/order/detail?id=1",
            "product_list": {"info_list": [{"product_img": "https://img.example/1.png", "product_name": "裙",
            "product_path_query": "pages/goods/detail?id=9", "count": 2, "single_price": 6425}]}});
        assert_eq!(c.check_content(&content(good)), Ok(1));
        let bad = json!({"cur_status": 1, "product_count": "2", "wxa_path_query": "",
            "send_time": 5, "product_list": {"info_list": [{"product_name": "裙", "x": 1}]}});
        let problems = c.check_content(&content(bad)).unwrap_err();
        let text = problems.join("; ");
        for needle in [
            "product_count: must be a whole number",
            "wxa_path_query: must be a page path",
            "send_time: status 1 (用户已支付) does not take this field",
            "product_list.info_list[0].product_img: required",
            "product_list.info_list[0].x: not a product field",
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        let e = c
            .check_content(&content(json!({"cur_status": 9})))
            .unwrap_err();
        assert!(e[0].contains("no status 9"), "{e:?}");
    }

    #[test]
    fn transaction_ids_are_28_digits_starting_42() {
        assert!(is_transaction_id("4200002187202404260115268887"));
        assert!(!is_transaction_id("2025021211194014791"));
        assert!(!is_transaction_id("420000218720240426011526888x"));
    }
}
