//! The event catalog: which shop events exist and which fields each one carries,
//! with the Chinese labels the admin screen shows. It is data (`catalog.json`,
//! compiled in), so adding an event or a field is a change to that file only.

use std::collections::BTreeMap;

use once_cell::sync::Lazy;
use serde::{Deserialize, Serialize};

const CATALOG_JSON: &str = include_str!("catalog.json");

/// The field every event carries for the jump link (`/pages/order/detail?id={order_id}`).
pub const ORDER_ID: &str = "order_id";

/// What kind of value a field holds; tells the admin which filter fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Id,
    String,
    Text,
    Integer,
    Money,
    Datetime,
    /// The order's goods, a list of `{title, image, count, price, path}`:
    /// only a service card's product list takes it.
    Goods,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TypeInfo {
    pub label: String,
    pub filters: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogField {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub example: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEvent {
    pub event: String,
    pub label: String,
    /// The fields the event's default idempotency key is built from
    /// (`appid:event:touser:` and their values joined by `:`), `order_sn`
    /// first: a send or enqueue that lacks one and gives no key of its own is
    /// refused rather than sent once per call.
    pub key_fields: Vec<String>,
    pub fields: Vec<CatalogField>,
}

impl CatalogEvent {
    /// Whether a placeholder may name `field` in a mapping of this event.
    pub fn has_field(&self, field: &str) -> bool {
        field == ORDER_ID || self.fields.iter().any(|f| f.name == field)
    }

    /// Whether a subscribe message's text may name `field` (not a goods list).
    pub fn has_text_field(&self, field: &str) -> bool {
        self.has_field(field)
            && !self
                .fields
                .iter()
                .any(|f| f.name == field && f.kind == FieldType::Goods)
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub version: u32,
    pub types: BTreeMap<String, TypeInfo>,
    pub events: Vec<CatalogEvent>,
}

impl Catalog {
    pub fn event(&self, name: &str) -> Option<&CatalogEvent> {
        self.events.iter().find(|e| e.event == name)
    }

    /// The event names, for error messages.
    pub fn event_names(&self) -> String {
        let names: Vec<&str> = self.events.iter().map(|e| e.event.as_str()).collect();
        names.join(", ")
    }
}

static CATALOG: Lazy<(Catalog, String)> = Lazy::new(|| {
    // The file is part of the build and a unit test parses it, so failing here is a bug.
    let catalog: Catalog =
        serde_json::from_str(CATALOG_JSON).expect("src/catalog.json is a valid catalog");
    let json = serde_json::to_string(&catalog).expect("the catalog serializes");
    (catalog, json)
});

/// The compiled-in catalog.
pub fn catalog() -> &'static Catalog {
    &CATALOG.0
}

/// The catalog as compact JSON, as `fashop_notify_event_catalog` hands it out.
pub fn catalog_json() -> &'static str {
    &CATALOG.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_catalog_is_complete_and_consistent() {
        let c = catalog();
        let events: Vec<&str> = c.events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "order_pay_success",
                "order_pay_fail",
                "order_cancel",
                "order_refund_apply",
                "order_delivered"
            ]
        );
        for e in &c.events {
            assert!(!e.label.is_empty());
            let mut seen = HashSet::new();
            for f in &e.fields {
                assert!(
                    seen.insert(f.name.as_str()),
                    "{}: {} twice",
                    e.event,
                    f.name
                );
                assert!(!f.label.is_empty() && !f.example.is_empty());
                assert!(f.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
                let type_name = serde_json::to_value(f.kind).unwrap();
                assert!(c.types.contains_key(type_name.as_str().unwrap()));
            }
            assert!(
                e.has_field(ORDER_ID) && e.has_field("order_sn"),
                "{}",
                e.event
            );
            assert_eq!(e.key_fields.first().map(String::as_str), Some("order_sn"));
            assert!(e.key_fields.iter().all(|k| e.has_field(k)), "{}", e.event);
            assert!(!e.has_field("order_snn"));
        }
        let pay = c.event("order_pay_success").unwrap();
        assert_eq!(pay.label, "支付成功");
        assert!(pay.has_field("pay_time"));
        assert!(c.event("order_paid").is_none());
    }

    #[test]
    fn the_json_names_labels_types_and_examples() {
        let v: serde_json::Value = serde_json::from_str(catalog_json()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["events"][4]["event"], "order_delivered");
        assert_eq!(v["events"][4]["label"], "订单发货");
        let f = &v["events"][0]["fields"][1];
        assert_eq!(f["name"], "order_amount");
        assert_eq!(f["label"], "订单总金额");
        assert_eq!(f["type"], "money");
        assert_eq!(f["example"], "128.50");
    }
}
