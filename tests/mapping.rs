//! Mapping documents: validation with JSON paths, all-or-nothing loading,
//! get_mappings, and atomic replacement under concurrent renders.

use std::sync::{Arc, Barrier};

use fashop_notify::{Error, Notifier};
use serde_json::{json, Value};

const APP: &str = "wxmap0000000001";
const EXAMPLE: &str = include_str!("../examples/mappings.json");

fn notifier() -> Notifier {
    let n = Notifier::new();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"s3cret"}}"#))
        .unwrap();
    n
}

/// A document with one subscribe event whose fields `patch` overrides.
fn doc_with(patch: Value) -> String {
    let mut event = json!({
        "template_id": "tmplA",
        "data": {"character_string1": "{order_sn}", "thing3": "{order_total_goods_name}"}
    });
    for (k, v) in patch.as_object().unwrap() {
        if v.is_null() {
            event.as_object_mut().unwrap().remove(k);
        } else {
            event[k] = v.clone();
        }
    }
    json!({"version": 1, "events": {"order_pay_success": event}}).to_string()
}

fn load_err(n: &Notifier, doc: &str) -> String {
    match n.load_mappings(APP, doc) {
        Err(Error::Mapping(msg)) => msg,
        other => panic!("expected a mapping error for {doc}, got {other:?}"),
    }
}

#[test]
fn the_example_document_loads_and_reads_back_normalized() {
    let n = notifier();
    n.load_mappings(APP, EXAMPLE).unwrap();
    let got: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
    let events = got["events"].as_object().unwrap();
    assert_eq!(events.len(), 5);
    let pay = &got["events"]["order_pay_success"];
    assert_eq!(pay["kind"], "subscribe");
    assert_eq!(pay["enabled"], true);
    assert_eq!(pay["overflow"], "truncate");
    assert_eq!(pay["miniprogram_state"], "formal");
    assert_eq!(pay["lang"], "zh_CN");
    assert_eq!(pay["data"]["amount2"], "{order_amount|money}");
    // Defaults are filled in where the document left them out.
    let delivered = &got["events"]["order_delivered"];
    assert_eq!(delivered["kind"], "subscribe");
    assert_eq!(delivered["overflow"], "truncate");
    assert_eq!(got["version"], 1);
    // What get_mappings returns loads again unchanged.
    let again = got.to_string();
    n.load_mappings(APP, &again).unwrap();
    assert_eq!(n.get_mappings(APP).unwrap(), again);
}

#[test]
fn a_legacy_template_mapping_keeps_its_own_fields() {
    let n = notifier();
    let doc = json!({"version": 1, "events": {"order_delivered": {
        "kind": "template", "template_id": "legacyT1", "enabled": false,
        "data": {"keyword1": "{order_sn}", "keyword2": "{express_company} {tracking_no}"},
        "emphasis_keyword": "keyword1.DATA", "overflow": "error"
    }}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let got: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
    let ev = &got["events"]["order_delivered"];
    assert_eq!(ev["kind"], "template");
    assert_eq!(ev["enabled"], false);
    assert_eq!(ev["emphasis_keyword"], "keyword1.DATA");
    assert_eq!(ev["overflow"], "error");
    assert!(ev.get("miniprogram_state").is_none() && ev.get("lang").is_none());
}

#[test]
fn null_options_count_as_absent() {
    let n = notifier();
    let doc = json!({"version": 1, "events": {"order_pay_success": {
        "kind": null, "template_id": "tmplA", "enabled": null, "page": null,
        "miniprogram_state": null, "lang": null, "overflow": null, "emphasis_keyword": null,
        "data": {"thing3": "{order_total_goods_name}"}
    }}});
    n.load_mappings(APP, &doc.to_string()).unwrap();
    let got: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
    let ev = &got["events"]["order_pay_success"];
    assert_eq!(ev["kind"], "subscribe");
    assert_eq!(ev["enabled"], true);
    assert_eq!(ev["overflow"], "truncate");
    assert_eq!(ev["lang"], "zh_CN");
    assert!(ev.get("page").is_none() && ev.get("emphasis_keyword").is_none());
    // Required fields stay required.
    let doc =
        json!({"version": 1, "events": {"order_pay_success": {"template_id": null, "data": null}}});
    let msg = load_err(&n, &doc.to_string());
    assert!(msg.contains("has 2 problems"), "{msg}");
    assert!(
        msg.contains("events.order_pay_success.template_id: missing field"),
        "{msg}"
    );
    assert!(
        msg.contains("events.order_pay_success.data: missing field"),
        "{msg}"
    );
}

#[test]
fn get_mappings_without_a_document_or_app() {
    let n = notifier();
    match n.get_mappings(APP) {
        Err(Error::Mapping(m)) => {
            assert!(m.contains("no mapping document is loaded for app"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        n.get_mappings("wxunknown"),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.load_mappings("wxunknown", EXAMPLE),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.load_mappings("bad appid", EXAMPLE),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(n.get_mappings(""), Err(Error::InvalidArgument(_))));
}

#[test]
fn every_validation_error_names_its_path() {
    let ev = "events.order_pay_success";
    let cases: Vec<(String, String)> = vec![
        // placeholders and filters
        (
            doc_with(json!({"data": {"thing3": "{order_snn}"}})),
            format!("{ev}.data.thing3: unknown placeholder {{order_snn}}"),
        ),
        (
            doc_with(json!({"data": {"amount2": "{order_amount|moneyy}"}})),
            format!("{ev}.data.amount2: unknown filter `moneyy`"),
        ),
        (
            doc_with(json!({"data": {"thing3": "{order_total_goods_name|truncate:abc}"}})),
            format!("{ev}.data.thing3: bad filter argument: truncate takes a number"),
        ),
        (
            doc_with(json!({"data": {"thing3": "{order_total_goods_name|truncate}"}})),
            format!("{ev}.data.thing3: bad filter argument: truncate needs a length"),
        ),
        (
            doc_with(json!({"data": {"amount2": "{order_amount|money:2}"}})),
            format!("{ev}.data.amount2: bad filter argument: money takes no argument"),
        ),
        (
            doc_with(json!({"data": {"thing3": "{order_total_goods_name|default:}"}})),
            format!("{ev}.data.thing3: bad filter argument: default needs a text"),
        ),
        (
            doc_with(json!({"data": {"thing3": "{order_sn"}})),
            format!("{ev}.data.thing3: unclosed placeholder"),
        ),
        (
            doc_with(json!({"data": {"thing3": "a } b"}})),
            format!("{ev}.data.thing3: unmatched `}}`"),
        ),
        (
            doc_with(json!({"data": {"thing3": "{refund_sn}"}})),
            format!("{ev}.data.thing3: unknown placeholder {{refund_sn}}"),
        ),
        // keyword names
        (
            doc_with(json!({"data": {"Foo1": "{order_sn}"}})),
            format!("{ev}.data.Foo1: bad keyword name: a type prefix of lowercase letters"),
        ),
        (
            doc_with(json!({"data": {"thing": "{order_sn}"}})),
            format!("{ev}.data.thing: bad keyword name"),
        ),
        (
            doc_with(json!({"data": {"thing-1": "{order_sn}"}})),
            format!("{ev}.data.thing-1: bad keyword name"),
        ),
        (
            doc_with(json!({"data": {"const1": "x"}})),
            format!("{ev}.data.const1: bad keyword name: a const keyword is fixed"),
        ),
        (
            doc_with(json!({"kind": "template", "data": {"thing3": "{order_sn}"}})),
            format!("{ev}.data.thing3: bad keyword name: legacy template keywords are keyword1"),
        ),
        (
            doc_with(json!({"data": {"订单1": "{order_sn}"}})),
            format!("{ev}.data[\"订单1\"]: bad keyword name"),
        ),
        // data shape
        (
            doc_with(json!({"data": {}})),
            format!("{ev}.data: must fill at least one keyword"),
        ),
        (
            doc_with(
                json!({"data": (1..=21).map(|i| (format!("thing{i}"), json!("{order_sn}"))).collect::<serde_json::Map<_, _>>()}),
            ),
            format!("{ev}.data: too many keys: 21 keywords, a template has at most 20"),
        ),
        (
            doc_with(json!({"data": {"thing3": 5}})),
            format!("{ev}.data.thing3: must be a string with placeholders"),
        ),
        (
            doc_with(json!({"data": {"thing3": ""}})),
            format!("{ev}.data.thing3: must not be empty"),
        ),
        (
            doc_with(json!({"data": {"thing3": "x".repeat(1025)}})),
            format!("{ev}.data.thing3: longer than 1024 characters"),
        ),
        (
            doc_with(json!({"data": ["{order_sn}"]})),
            format!("{ev}.data: must be an object of template keyword → value, got an array"),
        ),
        (
            doc_with(json!({"data": null})),
            format!("{ev}.data: missing field"),
        ),
        // page
        (
            doc_with(json!({"page": "/"})),
            format!("{ev}.page: bad page: must name a page of the mini program"),
        ),
        (
            doc_with(json!({"page": "/pages/order detail"})),
            format!("{ev}.page: bad page: ' ' is not allowed"),
        ),
        (
            doc_with(json!({"page": "/pages/订单"})),
            format!("{ev}.page: bad page: '订' is not allowed"),
        ),
        (
            doc_with(json!({"page": "/pages/x#frag"})),
            format!("{ev}.page: bad page: '#' is not allowed"),
        ),
        (
            doc_with(json!({"page": format!("/{}", "a".repeat(1025))})),
            format!("{ev}.page: bad page: longer than 1024 characters"),
        ),
        (
            doc_with(json!({"page": "/pages/detail?id={order_idd}"})),
            format!("{ev}.page: unknown placeholder {{order_idd}}"),
        ),
        (
            doc_with(json!({"page": 7})),
            format!("{ev}.page: must be a string, got a number"),
        ),
        // scalar fields
        (
            doc_with(json!({"kind": "push"})),
            format!("{ev}.kind: must be one of \"subscribe\", \"template\", got \"push\""),
        ),
        (
            doc_with(json!({"kind": 1})),
            format!("{ev}.kind: must be one of \"subscribe\", \"template\", got 1"),
        ),
        (
            doc_with(json!({"overflow": "cut"})),
            format!("{ev}.overflow: must be one of \"truncate\", \"error\""),
        ),
        (
            doc_with(json!({"miniprogram_state": "beta"})),
            format!("{ev}.miniprogram_state: must be one of \"formal\", \"trial\", \"developer\""),
        ),
        (
            doc_with(json!({"lang": "fr_FR"})),
            format!("{ev}.lang: must be one of \"zh_CN\", \"en_US\", \"zh_HK\", \"zh_TW\""),
        ),
        (
            doc_with(json!({"enabled": "yes"})),
            format!("{ev}.enabled: must be true or false, got \"yes\""),
        ),
        (
            doc_with(json!({"template_id": null})),
            format!("{ev}.template_id: missing field"),
        ),
        (
            doc_with(json!({"template_id": ""})),
            format!("{ev}.template_id: must be 1 to 128 letters"),
        ),
        (
            doc_with(json!({"template_id": "a b"})),
            format!("{ev}.template_id: must be 1 to 128 letters"),
        ),
        (
            doc_with(json!({"template_id": "x".repeat(129)})),
            format!("{ev}.template_id: must be 1 to 128 letters"),
        ),
        (
            doc_with(json!({"template_id": ["x"]})),
            format!("{ev}.template_id: must be a string, got an array"),
        ),
        (
            doc_with(json!({"colour": "red"})),
            format!("{ev}.colour: unknown field"),
        ),
        (
            doc_with(
                json!({"kind": "template", "lang": "zh_CN", "data": {"keyword1": "{order_sn}"}}),
            ),
            format!("{ev}.lang: only subscribe messages have this field"),
        ),
        (
            doc_with(
                json!({"kind": "template", "miniprogram_state": "trial", "data": {"keyword1": "{order_sn}"}}),
            ),
            format!("{ev}.miniprogram_state: only subscribe messages"),
        ),
        (
            doc_with(json!({"emphasis_keyword": "thing3.DATA"})),
            format!("{ev}.emphasis_keyword: only legacy template messages"),
        ),
        (
            doc_with(
                json!({"kind": "template", "emphasis_keyword": "keyword9.DATA", "data": {"keyword1": "{order_sn}"}}),
            ),
            format!("{ev}.emphasis_keyword: must name a keyword of data"),
        ),
        // document level
        (
            json!({"version": 1, "events": {"order_paid": {}}}).to_string(),
            "events.order_paid: unknown event (catalog events: order_pay_success".to_string(),
        ),
        (
            json!({"version": 1, "events": {"order_pay_success": "tmplA"}}).to_string(),
            format!("{ev}: must be an object, got a string"),
        ),
        (
            json!({"version": 2, "events": {}}).to_string(),
            "version: must be 1, got 2".to_string(),
        ),
        (
            json!({"version": "1", "events": {}}).to_string(),
            "version: must be 1, got \"1\"".to_string(),
        ),
        (
            json!({"events": {}}).to_string(),
            "version: missing field".to_string(),
        ),
        (
            json!({"version": 1}).to_string(),
            "events: missing field".to_string(),
        ),
        // `[]` is how PHP encodes an empty array: no events (see below); any
        // other array is refused.
        (
            json!({"version": 1, "events": [1]}).to_string(),
            "events: must be an object of event name → mapping, got an array".to_string(),
        ),
        (
            json!({"version": 1, "events": {}, "evnets": {}}).to_string(),
            "evnets: unknown field".to_string(),
        ),
        (
            "[1, 2]".to_string(),
            "(document): must be an object".to_string(),
        ),
        (
            "\"x\"".to_string(),
            "(document): must be an object".to_string(),
        ),
    ];
    let n = notifier();
    for (doc, want) in &cases {
        let msg = load_err(&n, doc);
        assert!(
            msg.contains(want.as_str()),
            "{doc}\n  got: {msg}\n  want: {want}"
        );
        assert!(
            msg.starts_with(&format!("mapping document for {APP} has ")),
            "{msg}"
        );
    }
}

#[test]
fn malformed_json_is_an_invalid_argument() {
    let n = notifier();
    for doc in ["", "{", "{\"version\": 1,}", "nul", "{\"version\": 1} x"] {
        match n.load_mappings(APP, doc) {
            Err(Error::InvalidArgument(m)) => {
                assert!(m.starts_with("mappings_json is not valid JSON: "), "{m}")
            }
            other => panic!("{doc:?}: {other:?}"),
        }
    }
    let huge = format!(
        r#"{{"version":1,"events":{{}},"pad":"{}"}}"#,
        "x".repeat(1 << 20)
    );
    assert!(
        matches!(n.load_mappings(APP, &huge), Err(Error::InvalidArgument(m)) if m.contains("larger than"))
    );
}

#[test]
fn several_problems_are_listed_together() {
    let n = notifier();
    let doc = json!({"version": 1, "events": {
        "order_pay_success": {"template_id": "t1", "page": "/?x=1",
            "data": {"thing3": "{order_snn}", "foo": "{order_sn|moneyy}"}},
        "order_delivered": {"template_id": "t2", "kind": "subscribe",
            "data": {"amount2": "{order_amount}"}},
        "order_unknown": {}
    }});
    let msg = load_err(&n, &doc.to_string());
    let wanted = [
        "has 6 problems: ",
        "events.order_pay_success.page: bad page: must name a page",
        "events.order_pay_success.data.thing3: unknown placeholder {order_snn}",
        "events.order_pay_success.data.foo: bad keyword name",
        "events.order_pay_success.data.foo: unknown filter `moneyy`",
        "events.order_delivered.data.amount2: unknown placeholder {order_amount}",
        "events.order_unknown: unknown event",
    ];
    for w in wanted {
        assert!(msg.contains(w), "{msg}\n  lacks: {w}");
    }
    // A flood of problems is capped in the message, and counted.
    let data: serde_json::Map<String, Value> = (1..=20)
        .map(|i| (format!("thing{i}"), json!("{a} {b} {c} {d}")))
        .collect();
    let doc = json!({"version": 1, "events": {"order_cancel": {"template_id": "t", "data": data}}});
    let msg = load_err(&n, &doc.to_string());
    assert!(
        msg.contains("has 80 problems") && msg.contains("… and 30 more"),
        "{msg}"
    );
}

#[test]
fn a_bad_document_changes_nothing() {
    let n = notifier();
    n.load_mappings(APP, EXAMPLE).unwrap();
    let before = n.get_mappings(APP).unwrap();
    // Valid events next to one bad one: none of it is taken.
    let doc = json!({"version": 1, "events": {
        "order_cancel": {"template_id": "newT", "data": {"thing1": "{cancel_reason}"}},
        "order_pay_success": {"template_id": "newT", "data": {"thing1": "{nope}"}}
    }});
    load_err(&n, &doc.to_string());
    assert_eq!(n.get_mappings(APP).unwrap(), before);
    assert!(n.load_mappings(APP, "{").is_err());
    assert_eq!(n.get_mappings(APP).unwrap(), before);
    // A good document replaces the whole previous one.
    n.load_mappings(APP, &doc_with(json!({}))).unwrap();
    let now: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
    assert_eq!(now["events"].as_object().unwrap().len(), 1);
    match n.render(APP, "order_cancel", r#"{"touser":"o1","fields":{}}"#) {
        Err(Error::Mapping(m)) => assert!(m.contains("order_cancel is not mapped"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn mappings_are_per_app() {
    let n = notifier();
    n.register_app(r#"{"appid":"wxother","secret":"s"}"#)
        .unwrap();
    n.load_mappings(APP, EXAMPLE).unwrap();
    assert!(n.get_mappings("wxother").is_err());
    n.load_mappings("wxother", &doc_with(json!({}))).unwrap();
    assert_ne!(
        n.get_mappings(APP).unwrap(),
        n.get_mappings("wxother").unwrap()
    );
}

/// Renders race a stream of replacements: every body is wholly from document A
/// or wholly from document B.
#[test]
fn replacement_is_atomic_for_concurrent_renders() {
    let n = Arc::new(notifier());
    let doc = |tag: &str| {
        json!({"version": 1, "events": {"order_pay_success": {
            "template_id": format!("tmpl{tag}"),
            "data": {
                "character_string1": format!("{tag}-{{order_sn}}"),
                "thing3": format!("{tag} {{order_total_goods_name}}"),
                "thing4": format!("{tag}")
            }
        }}})
        .to_string()
    };
    let (a, b) = (doc("A"), doc("B"));
    n.load_mappings(APP, &a).unwrap();
    let payload = r#"{"touser":"oRace","fields":{"order_sn":"SN1","order_total_goods_name":"裙"}}"#;
    const READERS: usize = 3;
    const ROUNDS: usize = 2000;
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (n, start) = (n.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let mut seen = [0usize; 2];
                for _ in 0..ROUNDS {
                    let body: Value =
                        serde_json::from_str(&n.render(APP, "order_pay_success", payload).unwrap())
                            .unwrap();
                    let tag = body["template_id"].as_str().unwrap()[4..].to_string();
                    assert_eq!(
                        body["data"]["character_string1"]["value"],
                        format!("{tag}-SN1")
                    );
                    assert_eq!(body["data"]["thing3"]["value"], format!("{tag} 裙"));
                    assert_eq!(body["data"]["thing4"]["value"], tag);
                    seen[usize::from(tag == "B")] += 1;
                }
                seen
            })
        })
        .collect();
    start.wait();
    for i in 0..ROUNDS {
        n.load_mappings(APP, if i % 2 == 0 { &b } else { &a })
            .unwrap();
    }
    let total: usize = readers
        .into_iter()
        .map(|r| r.join().unwrap().iter().sum::<usize>())
        .sum();
    assert_eq!(total, READERS * ROUNDS);
}

#[test]
fn an_unknown_keyword_prefix_loads_with_a_warning() {
    let n = notifier();
    let doc = doc_with(json!({"data": {
        "site01": "{order_total_goods_name}",
        "enum_string2": "已支付",
        "short_thing4": "已付款",
        "character_string1": "{order_sn}"
    }}));
    n.load_mappings(APP, &doc).unwrap();
    let warnings = n.mapping_warnings(APP).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with(
            "events.order_pay_success.data.site01: keyword type not in WeChat's tables"
        ),
        "{warnings:?}"
    );
    // The unknown type gets the generic text checks: one line, 20 characters.
    let payload = |goods: &str| {
        json!({"touser": "oU1", "fields": {"order_sn": "SN1", "order_total_goods_name": goods}})
            .to_string()
    };
    let body: Value = serde_json::from_str(
        &n.render(APP, "order_pay_success", &payload("连衣裙\n红色"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["data"]["site01"]["value"], "连衣裙 红色");
    assert_eq!(body["data"]["enum_string2"]["value"], "已支付");
    let long = n
        .render(APP, "order_pay_success", &payload(&"字".repeat(30)))
        .unwrap();
    let body: Value = serde_json::from_str(&long).unwrap();
    assert_eq!(
        body["data"]["site01"]["value"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        20
    );
    // A document without such keywords has no warnings.
    n.load_mappings(APP, &doc_with(json!({}))).unwrap();
    assert!(n.mapping_warnings(APP).unwrap().is_empty());
}

#[test]
fn a_short_thing_is_cut_at_five_and_multi_line_text_is_joined() {
    let n = notifier();
    let doc = doc_with(
        json!({"data": {"short_thing1": "{order_total_goods_name}", "thing3": "{order_total_goods_name}"}}),
    );
    n.load_mappings(APP, &doc).unwrap();
    let payload = json!({"touser": "oU1", "fields": {"order_sn": "SN1", "order_total_goods_name": "连衣裙\r\n红色 XL"}}).to_string();
    let body: Value =
        serde_json::from_str(&n.render(APP, "order_pay_success", &payload).unwrap()).unwrap();
    assert_eq!(body["data"]["thing3"]["value"], "连衣裙 红色 XL");
    assert_eq!(body["data"]["short_thing1"]["value"], "连衣裙 …");
    // With overflow "error" nothing is mended: the line break is refused.
    let doc = doc_with(json!({"overflow": "error"}));
    n.load_mappings(APP, &doc).unwrap();
    match n.render(APP, "order_pay_success", &payload) {
        Err(Error::Mapping(m)) => assert!(
            m.contains("keyword thing3") && m.contains("without line breaks or control characters"),
            "{m}"
        ),
        other => panic!("expected a mapping error, got {other:?}"),
    }
}

#[test]
fn the_page_is_sent_without_a_leading_slash() {
    let n = notifier();
    for page in [
        "/pages/order/detail?id={order_id}",
        "pages/order/detail?id={order_id}",
    ] {
        n.load_mappings(APP, &doc_with(json!({"page": page})))
            .unwrap();
        let payload = json!({"touser": "oU1", "fields": {"order_sn": "SN1", "order_id": 7, "order_total_goods_name": "裙"}}).to_string();
        let body: Value =
            serde_json::from_str(&n.render(APP, "order_pay_success", &payload).unwrap()).unwrap();
        assert_eq!(body["page"], "pages/order/detail?id=7", "{page}");
        // The document reads back as written.
        let doc: Value = serde_json::from_str(&n.get_mappings(APP).unwrap()).unwrap();
        assert_eq!(doc["events"]["order_pay_success"]["page"], page);
    }
}
