//! The control API over HTTP and the Rust control methods (the binary is
//! tested in the sandbox crate: sandbox/tests/cli.rs).

use fashop_notify_sandbox::*;
use serde_json::{json, Value};

use crate::sandbox_support::*;

#[test]
fn url_has_no_trailing_slash_and_a_real_port() {
    let sb = Sandbox::start();
    let url = sb.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with('/'));
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    assert_eq!(sb.addr().port(), port);
}

#[test]
fn control_api_seeds_everything_a_send_needs() {
    let sb = Sandbox::start();
    let c = client(&sb);
    let app = json!({"appid": "wxshop0000000009", "secret": "shop-secret", "pages": ["pages/order/detail"]});
    assert_eq!(
        c.post_json("/sandbox/apps", &app),
        (200, json!({"ok": true}))
    );
    let tok = c.token("wxshop0000000009", "shop-secret");
    let grant = json!({"appid": "wxshop0000000009", "openid": "o-http", "template_id": TPL_PAY_SUCCESS, "count": 2});
    assert_eq!(c.post_json("/sandbox/grants", &grant).0, 200);
    let (_, v) = c.get(&format!(
        "/sandbox/grants?appid=wxshop0000000009&openid=o-http&template_id={TPL_PAY_SUCCESS}"
    ));
    assert_eq!(v["left"], 2);
    assert_eq!(errcode(&c.send(&tok, &pay_message("o-http"))), 0);
    let mut m = pay_message("o-http");
    m["page"] = json!("pages/else/index");
    assert_eq!(errcode(&c.send(&tok, &m)), 41030, "pages came with the app");
    c.post_json(
        "/sandbox/pages",
        &json!({"appid": "wxshop0000000009", "pages": []}),
    );
    assert_eq!(errcode(&c.send(&tok, &m)), 0);

    let (_, v) = c.get("/sandbox/delivered?appid=wxshop0000000009&openid=o-http");
    let msgs = v["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0]["touser"], "o-http");
    assert_eq!(msgs[0]["template_id"], TPL_PAY_SUCCESS);
    assert_eq!(msgs[0]["data"], pay_data());
    assert!(msgs[0]["msgid"].as_u64().is_some());
    let (_, v) = c.get("/sandbox/delivered");
    assert_eq!(v["messages"].as_array().unwrap().len(), 2);
    let (_, v) = c.get("/sandbox/delivered?openid=o-nobody");
    assert!(v["messages"].as_array().unwrap().is_empty());

    let (_, v) = c.get("/sandbox/counters");
    assert_eq!(v["counters"]["sends"], 2);
    assert_eq!(
        v["counters"]["token_fetches"]["wxshop0000000009"]["token"],
        1
    );
    assert_eq!(v["counters"]["errors"]["41030"], 1);
}

#[test]
fn control_api_legacy_permits_and_settings() {
    let sb = Sandbox::start();
    let c = client(&sb);
    assert_eq!(
        c.post_json("/sandbox/settings", &json!({"legacy": true})).0,
        200
    );
    c.post_json("/sandbox/users", &json!({"appid": APPID, "openid": "o1"}));
    c.post_json(
        "/sandbox/form_ids",
        &json!({"appid": APPID, "openid": "o1", "form_id": "f1"}),
    );
    c.post_json(
        "/sandbox/prepay_ids",
        &json!({"appid": APPID, "openid": "o1", "prepay_id": "p1"}),
    );
    let tok = c.demo_token();
    let legacy = |form_id: &str| {
        json!({"touser": "o1", "template_id": LEGACY_TPL_DELIVERED, "form_id": form_id,
               "data": {"keyword1": {"value": "SN1"}}})
    };
    let send = |b: &Value| {
        c.post_json(&format!("{LEGACY_SEND}?access_token={tok}"), b)
            .1
    };
    assert_eq!(errcode(&send(&legacy("f1"))), 0);
    assert_eq!(errcode(&send(&legacy("p1"))), 41028);
    assert_eq!(
        c.post_json("/sandbox/paid", &json!({"appid": APPID, "prepay_id": "p1"}))
            .0,
        200
    );
    assert_eq!(errcode(&send(&legacy("p1"))), 0);
    let (status, v) = c.post_json(
        "/sandbox/paid",
        &json!({"appid": APPID, "prepay_id": "p-unknown"}),
    );
    assert_eq!(status, 400);
    assert!(v["error"].as_str().unwrap().contains("p-unknown"));

    c.post_json(
        "/sandbox/settings",
        &json!({"token_grace_secs": 0, "expires_in": 100}),
    );
    let (_, v) = c.get(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    ));
    assert_eq!(v["expires_in"], 100);
    assert_eq!(
        c.post_json("/sandbox/settings", &json!({"expires_in": 0}))
            .0,
        400
    );
    assert_eq!(
        c.post_json("/sandbox/settings", &json!({"legacy": false}))
            .0,
        200
    );
    assert_eq!(
        errcode(&send(&legacy("f1"))),
        40001,
        "grace 0: the first token is gone"
    );
}

#[test]
fn control_api_clock_and_reset() {
    let sb = Sandbox::start();
    let c = client(&sb);
    let (_, v) = c.get("/sandbox/clock");
    let before = v["now"].as_i64().unwrap();
    let (_, v) = c.post_json("/sandbox/clock", &json!({"advance_secs": 7200}));
    assert!(v["now"].as_i64().unwrap() >= before + 7200);
    assert!(sb.now() >= before + 7200);

    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    let tok = c.demo_token();
    assert_eq!(errcode(&c.send(&tok, &pay_message("o1"))), 0);
    sb.inject(Fault::on(SEND).errcode(-1));
    assert_eq!(c.post("/sandbox/reset", "").1, json!({"ok": true}));
    assert!(sb.all_delivered().is_empty());
    assert_eq!(sb.counters(), Counters::default());
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        40001,
        "tokens are gone"
    );
    let tok = c.demo_token();
    assert_eq!(
        errcode(&c.send(&tok, &pay_message("o1"))),
        40003,
        "users are gone, faults too"
    );
}

#[test]
fn control_api_refuses_bad_requests_clearly() {
    let sb = Sandbox::start();
    let c = client(&sb);
    let cases: &[(&str, &str)] = &[
        ("/sandbox/apps", "{"),
        ("/sandbox/apps", r#"{"appid": "wx1"}"#),
        ("/sandbox/apps", r#"{"appid": "bad appid!", "secret": "s"}"#),
        ("/sandbox/apps", r#"{"appid": "wx1", "secret": ""}"#),
        (
            "/sandbox/users",
            r#"{"appid": "wxnotseeded", "openid": "o1"}"#,
        ),
        (
            "/sandbox/users",
            r#"{"appid": "wxdemo0000000001", "openid": ""}"#,
        ),
        (
            "/sandbox/grants",
            r#"{"appid": "wxdemo0000000001", "openid": "o1", "template_id": ""}"#,
        ),
        (
            "/sandbox/grants",
            r#"{"appid": "wxdemo0000000001", "openid": "o1", "template_id": "t", "count": -1}"#,
        ),
        (
            "/sandbox/form_ids",
            r#"{"appid": "wxdemo0000000001", "openid": "o1"}"#,
        ),
        ("/sandbox/clock", r#"{"advance_secs": "soon"}"#),
        ("/sandbox/settings", r#"{"token_grace_secs": -1}"#),
        ("/sandbox/settings", r#"{"legacy": "yes"}"#),
    ];
    for (path, body) in cases {
        let (status, v) = c.post(path, body);
        assert_eq!(status, 400, "{path} {body}: {v}");
        assert_eq!(v["ok"], false);
        assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
    }
    let (status, v) = c.get("/sandbox/nothing");
    assert_eq!(status, 404);
    assert_eq!(v["ok"], false);
    let (status, _) = c.get("/sandbox/reset");
    assert_eq!(status, 405);
    assert_eq!(
        sb.counters().requests,
        0,
        "control calls are not WeChat requests"
    );
}

#[test]
fn templates_list_names_the_seeded_keywords() {
    let sb = Sandbox::start();
    let c = client(&sb);
    let (_, v) = c.get("/sandbox/templates");
    let list = v["templates"].as_array().unwrap();
    let pay = list.iter().find(|t| t["id"] == TPL_PAY_SUCCESS).unwrap();
    assert_eq!(
        pay["keywords"],
        json!(["character_string1", "amount2", "thing3", "time4"])
    );
    let shipped = list.iter().find(|t| t["id"] == TPL_DELIVERED).unwrap();
    assert_eq!(
        shipped["keywords"],
        json!(["character_string1", "thing2", "character_string3", "time4"])
    );
    let fail = list.iter().find(|t| t["id"] == TPL_PAY_FAIL).unwrap();
    assert_eq!(
        fail["keywords"],
        json!(["character_string1", "amount2", "thing3"])
    );
    let legacy = list.iter().find(|t| t["id"] == LEGACY_TPL_REFUND).unwrap();
    assert_eq!(legacy["legacy"], true);
    assert_eq!(
        legacy["keywords"],
        json!(["keyword1", "keyword2", "keyword3", "keyword4"])
    );
}

#[test]
#[should_panic(expected = "unknown appid")]
fn control_methods_panic_on_unknown_apps() {
    let sb = Sandbox::start();
    sb.grant("wxnever", "o1", TPL_PAY_SUCCESS, 1);
}

#[test]
fn sandboxes_are_independent_and_drop_stops_the_server() {
    let a = Sandbox::start();
    let b = Sandbox::start();
    assert_ne!(a.url(), b.url());
    a.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    assert_eq!(b.grants_left(APPID, "o1", TPL_PAY_SUCCESS), 0);
    let addr = a.addr();
    let c = client(&a);
    assert_eq!(c.get("/sandbox/clock").0, 200, "keep-alive connection open");
    drop(a);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );
    assert!(
        c.try_get("/sandbox/clock").is_err(),
        "pooled connection closed"
    );
}

#[test]
fn frozen_clock_moves_only_when_told() {
    let sb = Sandbox::start_with(SandboxOptions {
        clock_start: Some(1_800_000_000),
        ..SandboxOptions::default()
    });
    assert_eq!(sb.now(), 1_800_000_000);
    sb.advance_clock(5);
    assert_eq!(sb.now(), 1_800_000_005);
    let sb = Sandbox::start();
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((sb.now() - real).abs() <= 2, "starts at real time");
}

#[test]
fn start_with_refuses_bad_options() {
    let err = Sandbox::try_start_with(SandboxOptions {
        expires_in: 0,
        ..SandboxOptions::default()
    })
    .unwrap_err();
    assert!(err.contains("expires_in"), "{err}");
    let err = Sandbox::try_start_with(SandboxOptions {
        host: "256.1.1.1".into(),
        ..SandboxOptions::default()
    })
    .unwrap_err();
    assert!(err.contains("cannot listen"), "{err}");
    let err = Sandbox::try_start_with(SandboxOptions {
        apps: vec![("bad id".into(), "s".into())],
        ..SandboxOptions::default()
    })
    .unwrap_err();
    assert!(err.contains("appid"), "{err}");
}

#[test]
fn debug_output_never_shows_secrets() {
    let options = SandboxOptions {
        apps: vec![("wxsecretive00001".into(), "very-secret-value".into())],
        ..SandboxOptions::default()
    };
    let shown = format!("{options:?}");
    assert!(shown.contains("wxsecretive00001"), "{shown}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    let sb = Sandbox::start_with(options);
    let shown = format!("{sb:?}");
    assert!(!shown.contains("very-secret-value"), "{shown}");
    let seed = SeedApp {
        appid: "wxsecretive00001".into(),
        secret: "very-secret-value".into(),
        pages: vec![],
        categories: None,
    };
    assert!(!format!("{seed:?}").contains("very-secret-value"));
}
