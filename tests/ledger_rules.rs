//! What add_permit refuses, and how the store is chosen.

use std::sync::Arc;

use fashop_notify::{Error, ManualClock, Notifier, PermitRequest};

const NOW: i64 = 1_700_000_000;
const APP: &str = "wxrules0000000001";
const DAY: i64 = 24 * 3600;

fn notifier() -> (Notifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(NOW));
    let n = Notifier::with_clock(clock.clone());
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"rules-secret"}}"#))
        .unwrap();
    (n, clock)
}

/// The message of an InvalidArgument, or a panic naming what came instead.
fn refused(n: &Notifier, json: &str) -> String {
    match n.add_permit(APP, json) {
        Err(Error::InvalidArgument(m)) => m,
        other => panic!("{json}: expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn every_bad_field_is_named() {
    let (n, _) = notifier();
    let long = "x".repeat(129);
    let cases: Vec<(String, &str)> = vec![
        (
            r#"{"kind":"form_id","value":"f"}"#.into(),
            "missing field `openid`",
        ),
        (
            r#"{"openid":"o","value":"f"}"#.into(),
            "missing field `kind`",
        ),
        (
            r#"{"openid":"o","kind":"formid","value":"f"}"#.into(),
            "unknown kind \"formid\"",
        ),
        (
            r#"{"openid":"o","kind":7,"value":"f"}"#.into(),
            "kind must be a string, got a number",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"the formId is a mock one"}"#.into(),
            "fake form_id",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"undefined"}"#.into(),
            "value is \"undefined\"",
        ),
        (
            r#"{"openid":"undefined","kind":"form_id","value":"f"}"#.into(),
            "openid is \"undefined\"",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":""}"#.into(),
            "value must not be empty",
        ),
        (
            r#"{"openid":"  ","kind":"form_id","value":"f"}"#.into(),
            "openid must not be empty",
        ),
        (
            r#"{"openid":"o","kind":"form_id"}"#.into(),
            "missing field `value`",
        ),
        (
            r#"{"openid":"o","kind":"subscribe"}"#.into(),
            "missing field `template_id`",
        ),
        (
            r#"{"openid":"o","kind":"prepay_id","value":"p"}"#.into(),
            "missing field `order_sn`",
        ),
        (
            r#"{"openid":5,"kind":"form_id","value":"f"}"#.into(),
            "openid must be a string, got a number",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":["f"]}"#.into(),
            "value must be a string, got an array",
        ),
        (
            r#"{"openid":"o","kind":"prepay_id","value":"p","order_sn":"s","paid":"yes"}"#.into(),
            "paid must be true or false, got a string",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","created_at":"today"}"#.into(),
            "created_at must be a number, got a string",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","created_at":1.5}"#.into(),
            "created_at must be a whole number",
        ),
        (
            format!(
                r#"{{"openid":"o","kind":"form_id","value":"f","created_at":{}}}"#,
                NOW + 1
            ),
            "created_at 1700000001 is in the future",
        ),
        (
            format!(
                r#"{{"openid":"o","kind":"form_id","value":"f","created_at":{}}}"#,
                NOW - 7 * DAY
            ),
            "already expired",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","created_at":-5}"#.into(),
            "created_at must be unix seconds",
        ),
        (
            r#"{"openid":"o","kind":"subscribe","template_id":"T","count":0}"#.into(),
            "count must be between 1 and 1000, got 0",
        ),
        (
            r#"{"openid":"o","kind":"subscribe","template_id":"T","count":1001}"#.into(),
            "count must be between 1 and 1000",
        ),
        (
            r#"{"openid":"o","kind":"subscribe","template_id":"T","count":-1}"#.into(),
            "count must be between",
        ),
        (
            r#"{"openid":"o","kind":"subscribe","template_id":"T","count":"2"}"#.into(),
            "count must be a number",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","count":2}"#.into(),
            "count is only for kind \"subscribe\"",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","template_id":"T"}"#.into(),
            "template_id is only for kind \"subscribe\"",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","paid":true}"#.into(),
            "paid is only for kind \"prepay_id\"",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","order_sn":"S"}"#.into(),
            "order_sn is only for kind \"prepay_id\"",
        ),
        (
            r#"{"openid":"o","kind":"subscribe","template_id":"T","value":"v"}"#.into(),
            "value is not for kind \"subscribe\"",
        ),
        (
            r#"{"openid":"o","kind":"form_id","value":"f","formId":"f"}"#.into(),
            "unknown field `formId`",
        ),
        (
            format!(r#"{{"openid":"{long}","kind":"form_id","value":"f"}}"#),
            "openid is longer than 128 bytes",
        ),
        (
            format!(r#"{{"openid":"o","kind":"form_id","value":"{long}"}}"#),
            "value is longer than 128 bytes",
        ),
        (
            format!(r#"{{"openid":"o","kind":"subscribe","template_id":"{long}"}}"#),
            "template_id is longer than 128 bytes",
        ),
        (
            r#"{"openid":"o\u0000","kind":"form_id","value":"f"}"#.into(),
            "openid contains a control character",
        ),
        ("[1]".into(), "must be a JSON object, got an array"),
        ("null".into(), "must be a JSON object, got null"),
        (r#"{"openid":"o","#.into(), "EOF while parsing"),
        ("".into(), "EOF while parsing"),
    ];
    for (json, needle) in &cases {
        let msg = refused(&n, json);
        assert!(msg.contains(needle), "{json}: {msg:?} lacks {needle:?}");
        // The export's name is added once, at the C boundary.
        assert!(!msg.starts_with("add_permit"), "{msg}");
    }
    // Nothing of all that was stored.
    let stats = n.ledger_stats(APP, None).unwrap();
    assert!(stats.contains(r#""total_uses":0"#), "{stats}");
}

#[test]
fn edges_that_are_accepted() {
    let (n, clock) = notifier();
    // Created one second short of seven days ago: usable for one more second.
    n.add_permit(
        APP,
        &format!(
            r#"{{"openid":"o","kind":"form_id","value":"f","created_at":{}}}"#,
            NOW - 7 * DAY + 1
        ),
    )
    .unwrap();
    n.add_permit(
        APP,
        r#"{"openid":"o","kind":"subscribe","template_id":"T","count":1000}"#,
    )
    .unwrap();
    n.add_permit(
        APP,
        &format!(
            r#"{{"openid":"o","kind":"form_id","value":"{}"}}"#,
            "x".repeat(128)
        ),
    )
    .unwrap();
    let lease = n
        .ledger()
        .take(APP, "o", &PermitRequest::legacy(None))
        .unwrap()
        .unwrap();
    assert_eq!(lease.value, "f");
    n.ledger().give_back(&lease).unwrap();
    clock.advance_secs(1);
    let lease = n
        .ledger()
        .take(APP, "o", &PermitRequest::legacy(None))
        .unwrap()
        .unwrap();
    assert_eq!(lease.value.len(), 128);
}

#[test]
fn the_app_must_be_registered() {
    let (n, _) = notifier();
    let permit = r#"{"openid":"o","kind":"subscribe","template_id":"T"}"#;
    assert!(
        matches!(n.add_permit("wxunknown", permit), Err(Error::AppNotConfigured(m)) if m.contains("wxunknown"))
    );
    assert!(matches!(
        n.ledger_stats("wxunknown", None),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.ledger_purge("wxunknown"),
        Err(Error::AppNotConfigured(_))
    ));
    assert!(matches!(
        n.add_permit("", permit),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        n.add_permit(&"w".repeat(65), permit),
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        matches!(n.ledger_stats(APP, Some("")), Err(Error::InvalidArgument(m)) if m.contains("openid"))
    );
    assert!(
        matches!(n.ledger_stats(APP, Some(&"o".repeat(200))), Err(Error::InvalidArgument(m)) if m.contains("openid is longer"))
    );
}

#[test]
fn take_checks_its_arguments() {
    let (n, _) = notifier();
    let l = n.ledger();
    assert!(
        matches!(l.take(APP, "", &PermitRequest::legacy(None)), Err(Error::InvalidArgument(m)) if m.contains("openid"))
    );
    assert!(
        matches!(l.take(APP, "o", &PermitRequest::subscribe("")), Err(Error::InvalidArgument(m)) if m.contains("template_id"))
    );
    assert!(
        matches!(l.take(APP, "o", &PermitRequest::legacy(Some("undefined"))), Err(Error::InvalidArgument(m)) if m.contains("order_sn"))
    );
    assert_eq!(
        l.take(APP, "o", &PermitRequest::legacy(Some("S"))).unwrap(),
        None
    );
}

#[test]
fn the_store_switches_only_before_the_first_permit() {
    let (n, _) = notifier();
    assert_eq!(n.ledger().store_spec(), "memory");
    n.configure(r#"{"store":"memory"}"#).unwrap();
    n.add_permit(
        APP,
        r#"{"openid":"o","kind":"subscribe","template_id":"T"}"#,
    )
    .unwrap();
    // The same store again is fine; another one would strand the permit.
    n.configure(r#"{"store":"memory","timeout_ms":1000}"#)
        .unwrap();
    assert_eq!(n.config().timeout_ms, 1000);
    let dir = std::env::temp_dir().join(format!("ledger-rules-{}.db", std::process::id()));
    let spec = format!(
        r#"{{"store":"sqlite:{}","timeout_ms":2000}}"#,
        dir.display()
    );
    match n.configure(&spec) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("after permits were added"), "{m}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    // Nothing changed: not the store, not the other settings of that call.
    assert_eq!(n.ledger().store_spec(), "memory");
    assert_eq!(n.config().timeout_ms, 1000);
    assert!(!dir.exists());
    assert!(n
        .ledger_stats(APP, None)
        .unwrap()
        .contains(r#""total_uses":1"#));
}

#[test]
fn the_form_id_cap_per_user_comes_from_configure() {
    let (n, _clock) = notifier();
    n.configure(r#"{"permit_cap_per_openid": 3}"#).unwrap();
    let now = NOW;
    for i in 0..5 {
        let permit = format!(
            r#"{{"openid":"o-cap","kind":"form_id","value":"form-{i}","created_at":{}}}"#,
            now - 100 + i
        );
        n.add_permit(APP, &permit).unwrap();
    }
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(APP, Some("o-cap")).unwrap()).unwrap();
    assert_eq!(stats["form_id"]["permits"], 3, "{stats}");
    // The oldest two went first: the next take hands out form-2.
    let lease = n
        .ledger()
        .take(APP, "o-cap", &PermitRequest::legacy(None))
        .unwrap()
        .unwrap();
    assert_eq!(lease.value, "form-2");
    assert!(n.configure(r#"{"permit_cap_per_openid": 0}"#).is_err());
}
