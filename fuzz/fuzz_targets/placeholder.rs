//! The placeholder parser and the renderer: the input's first line is a mapping
//! value (merchant-editable text), put into a keyword, a legacy keyword and the
//! page of a mapping document; the rest are field values of the payload. A
//! value that loads must render to a result or a clear error, in bounded time.
#![no_main]

use fashop_notify::{Error, Notifier};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const APPID: &str = "wxfuzz0000000001";

fn notifier() -> &'static Notifier {
    static N: std::sync::OnceLock<Notifier> = std::sync::OnceLock::new();
    N.get_or_init(|| {
        let n = Notifier::new();
        n.register_app(r#"{"appid":"wxfuzz0000000001","secret":"s","token_mode":"external"}"#)
            .expect("register");
        n
    })
}

fn document(pattern: &str, keyword: &str, overflow: &str) -> String {
    json!({
        "version": 1,
        "events": {
            "order_pay_success": {
                "template_id": "tpl-subscribe",
                "page": format!("/pages/order/detail?x={pattern}"),
                "data": { keyword: pattern, "character_string1": "{order_sn}" },
                "overflow": overflow,
            },
            "order_delivered": {
                "kind": "template",
                "template_id": "tpl-legacy",
                "data": { "keyword1": pattern, "keyword2": "{express_company}" },
                "emphasis_keyword": "keyword1.DATA",
            }
        }
    })
    .to_string()
}

const KEYWORDS: [&str; 8] = [
    "thing3",
    "amount2",
    "time4",
    "date5",
    "number6",
    "name7",
    "phrase8",
    "character_string9",
];
const FIELDS: [&str; 8] = [
    "order_sn",
    "order_amount",
    "order_total_goods_name",
    "pay_time",
    "order_create_time",
    "order_id",
    "express_company",
    "extra",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (pattern, values) = text.split_once('\n').unwrap_or((text, ""));
    let sel = pattern.len();
    let keyword = KEYWORDS[sel % KEYWORDS.len()];
    let overflow = if sel % 2 == 0 { "truncate" } else { "error" };
    let n = notifier();
    match n.load_mappings(APPID, &document(pattern, keyword, overflow)) {
        Ok(()) => {}
        Err(Error::Mapping(m)) => {
            assert!(m.len() < 64 * 1024, "error message of {} bytes", m.len());
            return;
        }
        Err(e) => panic!("load_mappings answered a non-mapping error: {e:?}"),
    }
    // Field values: strings, or numbers when they parse as JSON numbers.
    let mut fields = serde_json::Map::new();
    for (name, value) in FIELDS.iter().zip(values.split('\n')) {
        let v = match serde_json::from_str::<Value>(value) {
            Ok(v @ (Value::Number(_) | Value::Null | Value::Bool(_))) => v,
            _ => Value::String(value.to_string()),
        };
        fields.insert(name.to_string(), v);
    }
    let payload = json!({"touser": "o-fuzz", "fields": fields}).to_string();
    for event in ["order_pay_success", "order_delivered"] {
        match n.render(APPID, event, &payload) {
            Ok(body) => {
                let v: Value = serde_json::from_str(&body).expect("render writes JSON");
                assert!(v.get("data").is_some(), "{body}");
            }
            Err(Error::Mapping(_) | Error::InvalidArgument(_)) => {}
            Err(e) => panic!("render answered {e:?}"),
        }
    }
});
