//! Properties of render: it never panics on any payload, and every value it
//! renders for a subscribe message passes its keyword's rule (the check WeChat
//! and the sandbox apply). Runs from a fixed seed, so it is deterministic.

use std::sync::atomic::{AtomicUsize, Ordering};

use fashop_notify::rules::KeywordType;
use fashop_notify::{Error, Notifier};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Map, Value};

const EXAMPLE: &str = include_str!("../examples/mappings.json");

/// One app per keyword type (so each can succeed on its own), plus the example.
const KEYWORDS: &[(&str, &str)] = &[
    ("character_string1", "{order_sn}"),
    ("amount2", "{order_amount|money}"),
    ("thing3", "{order_total_goods_name}"),
    ("time4", "{pay_time|datetime}"),
    ("date5", "{order_create_time|date}"),
    ("number6", "{order_total_goods_num}"),
    ("letter7", "{order_sn}"),
    ("symbol8", "{order_sn}"),
    ("phone_number9", "{order_sn}"),
    ("car_number10", "{order_sn}"),
    ("name11", "{order_total_goods_name}"),
    ("phrase12", "{order_total_goods_name|default:已支付}"),
    (
        "thing13",
        "{order_total_goods_name|truncate:7} x{order_total_goods_num|default:1}",
    ),
    ("amount14", "{order_amount}"),
    ("time15", "{pay_time}"),
    ("thing16", "{{{order_sn|default:无}}}"),
];

fn appid(i: usize) -> String {
    format!("wxprops{i:09}")
}

fn notifier() -> Notifier {
    let n = Notifier::new();
    for (i, (keyword, pattern)) in KEYWORDS.iter().enumerate() {
        let app = appid(i);
        n.register_app(&format!(r#"{{"appid":"{app}","secret":"s"}}"#))
            .unwrap();
        let doc = json!({"version": 1, "events": {
            "order_pay_success": {
                "template_id": "tmplProps", "page": "/pages/order/detail?id={order_id|default:0}",
                "data": {*keyword: pattern}
            },
            "order_delivered": {
                "kind": "template", "template_id": "legacyProps",
                "data": {
                    "keyword1": "{order_sn}",
                    "keyword2": "{express_company|default:—} {tracking_no|default:—}",
                    "keyword3": "{order_total_goods_name|truncate:500}"
                }
            }
        }});
        n.load_mappings(&app, &doc.to_string()).unwrap();
    }
    let app = appid(KEYWORDS.len());
    n.register_app(&format!(r#"{{"appid":"{app}","secret":"s"}}"#))
        .unwrap();
    n.load_mappings(&app, EXAMPLE).unwrap();
    n
}

const FIELDS: &[&str] = &[
    "order_sn",
    "order_amount",
    "order_total_goods_name",
    "order_total_goods_num",
    "order_create_time",
    "pay_time",
    "order_id",
    "express_company",
    "tracking_no",
];

fn field_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<String>().prop_map(Value::from),
        "[一-龥]{0,30}".prop_map(Value::from),
        "[A-Za-z]{1,12}".prop_map(Value::from),
        "[A-Za-z0-9 ._~+-]{0,40}".prop_map(Value::from),
        "[+*/%-]{1,6}".prop_map(Value::from),
        "[0-9+-]{3,20}".prop_map(Value::from),
        "粤[A-Z][0-9]{5}".prop_map(Value::from),
        "[0-9]{1,12}(\\.[0-9]{0,4})?".prop_map(Value::from),
        "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])( ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])?".prop_map(Value::from),
        "[👗🎁✨·…~a-z]{0,25}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..4_000_000_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        (0u32..100_000, 0u32..1000)
            .prop_map(|(a, b)| Value::from(f64::from(a) + f64::from(b) / 1000.0)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    let nested = leaf.clone().prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{1,5}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop_oneof![12 => leaf, 1 => nested]
}

/// A value of the kind the shop sends for `field`.
fn typical(field: &str) -> BoxedStrategy<Value> {
    match field {
        "order_sn" | "tracking_no" => "[A-Z0-9]{8,20}".prop_map(Value::from).boxed(),
        "order_amount" => prop_oneof![
            "[0-9]{1,6}(\\.[0-9]{1,3})?".prop_map(Value::from),
            (0u32..1_000_000, 0u32..1000)
                .prop_map(|(a, b)| Value::from(f64::from(a) + f64::from(b) / 1000.0)),
        ]
        .boxed(),
        "order_total_goods_num" | "order_id" => (0u32..100_000).prop_map(Value::from).boxed(),
        "pay_time" | "order_create_time" => prop_oneof![
            (0u64..4_000_000_000).prop_map(Value::from),
            "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                .prop_map(Value::from),
        ]
        .boxed(),
        _ => "[一-龥A-Za-z0-9 👗]{1,40}".prop_map(Value::from).boxed(),
    }
}

fn payload() -> impl Strategy<Value = Value> {
    let known: Vec<_> = FIELDS
        .iter()
        .map(|f| prop::option::weighted(0.9, prop_oneof![1 => typical(f), 1 => field_value()]))
        .collect();
    let extra = prop::collection::vec(("[a-z_]{1,12}", field_value()), 0..4);
    let touser = prop_oneof![
        6 => "[A-Za-z0-9_-]{1,40}".prop_map(Value::from),
        1 => any::<String>().prop_map(Value::from),
        1 => Just(Value::Null),
        1 => any::<i64>().prop_map(Value::from),
    ];
    let key = prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        "[A-Za-z0-9:_-]{1,30}".prop_map(|k| Some(Value::from(k))),
        "[ -~]{0,30}".prop_map(|k| Some(Value::from(k)))
    ];
    (touser, known, extra, key).prop_map(|(touser, known, extra, key)| {
        let mut fields: Map<String, Value> = extra.into_iter().collect();
        for (name, value) in FIELDS.iter().zip(known) {
            if let Some(v) = value {
                fields.insert(name.to_string(), v);
            }
        }
        let mut p = Map::new();
        p.insert("touser".into(), touser);
        p.insert("fields".into(), Value::Object(fields));
        if let Some(k) = key {
            p.insert("idempotency_key".into(), k);
        }
        Value::Object(p)
    })
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new_with_rng(
        Config::with_cases(cases),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

#[test]
fn rendered_subscribe_values_pass_their_rules() {
    let n = notifier();
    let rendered: Vec<AtomicUsize> = (0..=KEYWORDS.len()).map(|_| AtomicUsize::new(0)).collect();
    runner(600)
        .run(&payload(), |p| {
            let text = p.to_string();
            for (i, count) in rendered.iter().enumerate() {
                let app = appid(i);
                match n.render_message(&app, "order_pay_success", &text) {
                    Ok(m) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        for (keyword, v) in m.body["data"].as_object().unwrap() {
                            let value = v["value"].as_str().unwrap();
                            let rule = KeywordType::of_keyword(keyword).unwrap();
                            prop_assert!(
                                rule.check(value).is_ok(),
                                "{keyword} = {value:?}: {:?}",
                                rule.check(value)
                            );
                        }
                        prop_assert_eq!(
                            n.render(&app, "order_pay_success", &text).unwrap(),
                            serde_json::to_string(&m.body).unwrap()
                        );
                        prop_assert_eq!(m.touser.as_str(), p["touser"].as_str().unwrap());
                    }
                    Err(Error::Mapping(msg)) => {
                        prop_assert!(msg.starts_with("event order_pay_success, "), "{msg}")
                    }
                    Err(Error::InvalidArgument(msg)) => {
                        prop_assert!(msg.starts_with("payload_json: "), "{msg}")
                    }
                    Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                }
                // The legacy kind renders the same payloads; its values stay within 200 characters.
                match n.render(&app, "order_delivered", &text) {
                    Ok(body) => {
                        let body: Value = serde_json::from_str(&body).unwrap();
                        for v in body["data"].as_object().unwrap().values() {
                            prop_assert!(v["value"].as_str().unwrap().chars().count() <= 200);
                        }
                    }
                    Err(Error::Mapping(_) | Error::InvalidArgument(_)) => {}
                    Err(other) => prop_assert!(false, "unexpected error {other:?}"),
                }
            }
            Ok(())
        })
        .unwrap();
    // The property says something only if renders succeed: every keyword type did.
    eprintln!("successful renders per keyword type: {rendered:?}");
    for (i, count) in rendered.iter().enumerate() {
        let name = KEYWORDS.get(i).map_or("example", |k| k.0);
        assert!(
            count.load(Ordering::Relaxed) >= 5,
            "{name}: {count:?} renders succeeded"
        );
    }
}

#[test]
fn render_never_panics_on_any_text() {
    let n = notifier();
    let events = prop::sample::select(vec![
        "order_pay_success",
        "order_delivered",
        "order_cancel",
        "nope",
    ]);
    runner(1000)
        .run(&(any::<String>(), events), |(text, event)| {
            let app = appid(KEYWORDS.len());
            for result in [
                n.render(&app, event, &text),
                n.render(
                    &app,
                    event,
                    &format!("{{\"touser\":\"o\",\"fields\":{text}}}"),
                ),
                n.render(
                    &app,
                    event,
                    &format!("{{\"touser\":\"o\",\"fields\":{{\"order_sn\":{text}}}}}"),
                ),
            ] {
                prop_assert!(!matches!(result, Err(Error::Internal(_))));
            }
            Ok(())
        })
        .unwrap();
}
