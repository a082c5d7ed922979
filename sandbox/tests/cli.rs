//! The binary: one line on stdout with its address, the demo app or the apps
//! and seed it is given, exit 0 on SIGTERM and SIGINT, exit 2 on bad arguments.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use fashop_notify_sandbox::*;
use serde_json::json;

use crate::sandbox_support::*;

struct Running {
    child: std::process::Child,
    url: String,
    stdout: BufReader<std::process::ChildStdout>,
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fashop-notify-sandbox"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .trim_end_matches('\n')
        .to_string();
    Running { child, url, stdout }
}

fn signal(r: &mut Running, sig: &str) -> (i32, String) {
    let sent = Command::new("kill")
        .args([sig, &r.child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = r.child.wait().unwrap();
    let mut rest = String::new();
    r.stdout.read_to_string(&mut rest).unwrap();
    (status.code().expect("exited, not killed"), rest)
}

fn http_client(url: &str) -> Client {
    client_at(url)
}

#[test]
fn binary_prints_one_line_serves_the_demo_app_and_exits_0_on_sigterm() {
    let mut r = spawn(&["--host", "127.0.0.1", "--port", "0"]);
    assert!(r.url.starts_with("http://127.0.0.1:"), "{}", r.url);
    let c = http_client(&r.url);
    let tok = c.token("wxdemo0000000001", "demo-app-secret-0001");
    assert!(tok.len() > 100);
    let (code, rest) = signal(&mut r, "-TERM");
    assert_eq!(code, 0);
    assert_eq!(rest, "", "nothing else on stdout");
}

#[test]
fn binary_exits_0_on_sigint_and_takes_apps_seed_and_legacy() {
    let dir = std::env::temp_dir().join(format!("sandbox-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.json");
    std::fs::write(
        &seed,
        json!({
            "apps": [{"appid": "wxseeded00000001", "secret": "seeded-secret"}],
            "users": [{"appid": "wxseeded00000001", "openid": "o-seed"}],
            "grants": [{"appid": "wxseeded00000001", "openid": "o-seed", "template_id": TPL_PAY_SUCCESS, "count": 1}],
            "form_ids": [{"appid": "wxseeded00000001", "openid": "o-seed", "form_id": "f-seed"}]
        })
        .to_string(),
    )
    .unwrap();
    let mut r = spawn(&[
        "--port",
        "0",
        "--app",
        "wxflag0000000001:flag-secret",
        "--seed",
        seed.to_str().unwrap(),
        "--legacy",
    ]);
    let c = http_client(&r.url);
    c.token("wxflag0000000001", "flag-secret");
    let tok = c.token("wxseeded00000001", "seeded-secret");
    assert_eq!(errcode(&c.send(&tok, &pay_message("o-seed"))), 0);
    let legacy = json!({"touser": "o-seed", "template_id": LEGACY_TPL_PAY_SUCCESS, "form_id": "f-seed",
                        "data": {"keyword1": {"value": "SN1"}}});
    let (_, v) = c.post_json(&format!("{LEGACY_SEND}?access_token={tok}"), &legacy);
    assert_eq!(errcode(&v), 0, "--legacy: {v}");
    let (_, v) = c.get(&format!(
        "/cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET}"
    ));
    assert_eq!(errcode(&v), 40013, "no demo app when apps are given");
    let (code, rest) = signal(&mut r, "-INT");
    assert_eq!(code, 0);
    assert_eq!(rest, "");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_refuses_bad_arguments_with_exit_2() {
    for args in [
        &["--port", "notaport"][..],
        &["--app", "no-colon"],
        &["--seed", "/nonexistent/seed.json"],
        &["--frobnicate"],
        &["--port"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fashop-notify-sandbox"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn binary_help_prints_the_manual_and_exits_0() {
    let readme = include_str!("../README.md");
    for flag in ["--help", "-h"] {
        let out = Command::new(env!("CARGO_BIN_EXE_fashop-notify-sandbox"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(out.stderr.is_empty(), "{flag}: not an error");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.starts_with("usage: fashop-notify-sandbox"), "{help}");
        // The README's program and control API parts, as they are written there.
        let program = &readme
            [readme.find("The program:").unwrap()..readme.find("## Seeded templates").unwrap()];
        let control =
            &readme[readme.find("## Control API").unwrap()..readme.find("## Faults").unwrap()];
        assert!(help.contains(program.trim_end()), "{flag}: the options");
        assert!(help.contains(control.trim_end()), "{flag}: the control API");
        for path in [
            "/sandbox/taps",
            "/sandbox/grants",
            "/sandbox/push",
            "/sandbox/pushes/flush",
            "/sandbox/revoke",
            "/sandbox/faults",
            "/sandbox/clock",
            "/sandbox/delivered",
            "/sandbox/counters",
            "close_after_read",
        ] {
            assert!(help.contains(path), "{flag}: {path}");
        }
        assert!(!help.contains("## Implementation notes"));
    }
}

/// A shop's push endpoint that passes the sandbox's URL check (echoes
/// `echostr`) and answers `success` to pushes.
struct EchoEndpoint {
    url: String,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoEndpoint {
    fn start() -> EchoEndpoint {
        let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let port = server.server_addr().to_ip().unwrap().port();
        let s = server.clone();
        let thread = std::thread::spawn(move || {
            for req in s.incoming_requests() {
                let echo = req
                    .url()
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("echostr="))
                    .unwrap_or("success")
                    .to_string();
                let _ = req.respond(tiny_http::Response::from_string(echo));
            }
        });
        EchoEndpoint {
            url: format!("http://127.0.0.1:{port}/push"),
            server,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoEndpoint {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

const STATE_APP: &str = "wxstate000000001";
const OWN_TPL: &str = "tpl-own-arrival-notice";

fn templates_of(c: &Client) -> Vec<serde_json::Value> {
    let (status, v) = c.get(&format!("/sandbox/templates?appid={STATE_APP}"));
    assert_eq!(status, 200, "{v}");
    let mut list = v["templates"].as_array().unwrap().clone();
    list.sort_by_key(|t| t["id"].as_str().unwrap().to_string());
    list
}

fn grants_left(c: &Client, template_id: &str) -> u64 {
    let (_, v) = c.get(&format!(
        "/sandbox/grants?appid={STATE_APP}&openid=o-state&template_id={template_id}"
    ));
    v["left"].as_u64().unwrap()
}

#[test]
fn binary_seeds_templates_and_keeps_its_state_across_a_restart() {
    let dir = std::env::temp_dir().join(format!("sandbox-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (seed, state) = (dir.join("seed.json"), dir.join("state.json"));
    let _ = std::fs::remove_file(&state);
    std::fs::write(
        &seed,
        json!({
            "apps": [{"appid": STATE_APP, "secret": "state-secret"}],
            "templates": [
                {"appid": STATE_APP, "id": OWN_TPL, "title": "到货提醒",
                 "keywords": ["thing1", {"name": "time2", "label": "到货时间", "example": "2026-11-23 20:10"}]},
                {"appid": STATE_APP, "tid": 2476, "kids": [1, 2, 3]}
            ],
            "grants": [{"appid": STATE_APP, "openid": "o-state", "template_id": OWN_TPL, "count": 2}]
        })
        .to_string(),
    )
    .unwrap();
    let (seed_arg, state_arg) = (seed.to_str().unwrap(), state.to_str().unwrap());
    let endpoint = EchoEndpoint::start();

    let mut r = spawn(&["--seed", seed_arg, "--state", state_arg]);
    let c = http_client(&r.url);
    let tok = c.token(STATE_APP, "state-secret");
    let message = json!({"touser": "o-state", "template_id": OWN_TPL,
        "data": {"thing1": {"value": "秋冬加厚连衣裙"}, "time2": {"value": "2026-11-23 20:10"}}});
    assert_eq!(errcode(&c.send(&tok, &message)), 0, "a seeded template");
    let (_, added) = c.post_as(
        &format!("/wxaapi/newtmpl/addtemplate?access_token={tok}"),
        Some("application/x-www-form-urlencoded"),
        "tid=1856&kidList=1&kidList=2&sceneDesc=ship",
    );
    let added = added["priTmplId"].as_str().unwrap().to_string();
    let (status, v) = c.post_json(
        "/sandbox/push",
        &json!({"appid": STATE_APP, "url": endpoint.url, "token": "statetoken1"}),
    );
    assert_eq!((status, &v["verified"]), (200, &json!(true)), "{v}");
    let before = templates_of(&c);
    assert_eq!(
        before.len(),
        6 + 4 + 3,
        "seeded, the seed's two, the added one"
    );
    let own = before.iter().find(|t| t["id"] == OWN_TPL).unwrap();
    assert_eq!(own["keywords"], json!(["thing1", "time2"]));
    assert!(before
        .iter()
        .any(|t| t["title"] == "支付失败提醒" && t["id"] != TPL_PAY_FAIL));
    assert_eq!(grants_left(&c, OWN_TPL), 1);
    assert_eq!(signal(&mut r, "-TERM").0, 0);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "it holds secrets");
    }

    // Restarted from the state alone: templates, grants and push target are back.
    let mut r = spawn(&["--state", state_arg]);
    let c = http_client(&r.url);
    let tok = c.token(STATE_APP, "state-secret");
    assert_eq!(templates_of(&c), before);
    assert_eq!(grants_left(&c, OWN_TPL), 1);
    let (_, got) = c.get(&format!("/wxaapi/newtmpl/gettemplate?access_token={tok}"));
    let listed = got["data"].as_array().unwrap();
    let shipped = listed
        .iter()
        .find(|t| t["priTmplId"] == added.as_str())
        .unwrap();
    assert!(
        shipped["content"]
            .as_str()
            .unwrap()
            .contains("快递公司:{{thing2.DATA}}"),
        "{shipped}"
    );
    let own = listed.iter().find(|t| t["priTmplId"] == OWN_TPL).unwrap();
    assert!(
        own["content"]
            .as_str()
            .unwrap()
            .contains("到货时间:{{time2.DATA}}"),
        "{own}"
    );
    let (status, v) = c.post_json(
        "/sandbox/taps",
        &json!({"appid": STATE_APP, "openid": "o-state", "choices": {added.as_str(): "accept"}}),
    );
    assert_eq!(
        (status, &v["queued"]),
        (200, &json!(1)),
        "the push target: {v}"
    );
    let (_, v) = c.post_json("/sandbox/pushes/flush", &json!({}));
    assert_eq!(v["pushes"][0]["state"], "delivered", "{v}");
    assert_eq!(errcode(&c.send(&tok, &message)), 0);
    assert_eq!(signal(&mut r, "-TERM").0, 0);

    // The state wins over the seed: grants are not given a second time.
    let mut r = spawn(&["--seed", seed_arg, "--state", state_arg]);
    let c = http_client(&r.url);
    assert_eq!(
        grants_left(&c, OWN_TPL),
        0,
        "the last grant was used before the restart"
    );
    assert_eq!(grants_left(&c, &added), 1, "the tap's grant");
    assert_eq!(signal(&mut r, "-INT").0, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn binary_refuses_a_bad_seed_template_or_state_file_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("sandbox-bad-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad_seed = dir.join("seed.json");
    std::fs::write(
        &bad_seed,
        json!({"templates": [{"appid": DEMO_APPID, "title": "x", "keywords": ["nosuchrule1"]}]})
            .to_string(),
    )
    .unwrap();
    let bad_state = dir.join("state.json");
    std::fs::write(&bad_state, "{not json").unwrap();
    for args in [
        vec!["--seed", bad_seed.to_str().unwrap()],
        vec!["--state", bad_state.to_str().unwrap()],
        vec!["--state", "/nonexistent/dir/state.json"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fashop-notify-sandbox"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--seed") || err.contains("--state"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
