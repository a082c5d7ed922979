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
