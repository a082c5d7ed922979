//! The sandbox binary survives garbage: random bytes, oversized and truncated
//! requests, a thousand connections at once; and it answers the next good
//! request every time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fashop_notify_sandbox::*;

use crate::sandbox_support::*;

/// The binary, stopped when dropped.
struct Binary {
    child: Child,
    addr: SocketAddr,
    url: String,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> Binary {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fashop-notify-sandbox"))
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let addr = url.strip_prefix("http://").unwrap().parse().unwrap();
    Binary { child, addr, url }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    // A bound on a broken test, not a measurement: every read here is answered
    // long before it.
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s
}

/// Reads one HTTP response: (status, body).
fn read_response(s: &mut impl BufRead) -> std::io::Result<(u16, Vec<u8>)> {
    let mut status_line = String::new();
    if s.read_line(&mut status_line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line {status_line:?}"));
    let mut len = 0;
    loop {
        let mut h = String::new();
        s.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body)?;
    Ok((status, body))
}

fn assert_serving(url: &str) {
    let c = client_at(url);
    let tok = c.token(APPID, SECRET);
    assert!(tok.len() > 100, "a good request is answered");
}

fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn random_bytes_do_not_hurt() {
    let b = binary();
    for (i, garbage) in [
        pseudo_random(64 * 1024, 1),
        pseudo_random(10, 2),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"\r\n\r\n\r\n".to_vec(),
        [b"POST /cgi-bin/token HTTP/1.1\r\nX: ".as_slice(), &pseudo_random(4096, 3), b"\r\n\r\n"].concat(),
        [b"GET /cgi-bin/token?".as_slice(), &pseudo_random(200, 4), b" HTTP/1.1\r\n\r\n"].concat(),
        b"POST /cgi-bin/message/subscribe/send?access_token=%zz%% HTTP/1.1\r\nContent-Length: 5\r\n\r\n\xff\xfe\x00{]"
            .to_vec(),
    ]
    .iter()
    .enumerate()
    {
        let mut s = connect(b.addr);
        // The server may close before taking everything: that is fine.
        let _ = s.write_all(garbage);
        let _ = s.shutdown(Shutdown::Write);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        if !answer.is_empty() {
            assert!(answer.starts_with(b"HTTP/1."), "case {i}: {:?}", String::from_utf8_lossy(&answer));
        }
        assert_serving(&b.url);
    }
}

#[test]
fn a_10_mb_body_is_refused_cleanly() {
    let b = binary();
    let mut s = connect(b.addr);
    let size = 10 * 1024 * 1024;
    let head = format!(
        "POST /cgi-bin/message/subscribe/send?access_token=x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut writer = s.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        for _ in 0..size / chunk.len() {
            if writer.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let (status, body) = read_response(&mut reader).unwrap();
    assert_eq!(status, 413);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(errcode(&v), 47001);
    assert!(errmsg(&v).contains("larger than"), "{v}");
    feeder.join().unwrap();
    // The rest of the body was drained: the same connection takes the next request.
    s.write_all(format!("GET /cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).unwrap();
    let (status, body) = read_response(&mut reader).unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("access_token"));
    assert_serving(&b.url);
}

#[test]
fn an_oversized_chunked_body_is_refused() {
    let b = binary();
    let mut s = connect(b.addr);
    s.write_all(
        b"POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    let feeder = std::thread::spawn(move || {
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        for _ in 0..40 {
            if writer.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = writer.write_all(b"0\r\n\r\n");
    });
    let (status, _) = read_response(&mut BufReader::new(s.try_clone().unwrap())).unwrap();
    assert_eq!(status, 413);
    feeder.join().unwrap();
    assert_serving(&b.url);
}

#[test]
fn truncated_requests_hold_up_no_one() {
    let b = binary();
    // Headers cut short, body cut short (small and large), left open.
    let mut held = Vec::new();
    for partial in [
        "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Le".to_string(),
        "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{\"appid\":"
            .to_string(),
        format!(
            "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n{}",
            " ".repeat(3000)
        ),
    ] {
        for _ in 0..8 {
            let mut s = connect(b.addr);
            s.write_all(partial.as_bytes()).unwrap();
            held.push(s);
        }
    }
    assert_serving(&b.url);
    // Then cut off: the server just forgets them.
    for s in &held {
        s.shutdown(Shutdown::Both).unwrap();
    }
    drop(held);
    assert_serving(&b.url);
}

#[test]
fn a_body_beyond_the_inline_size_is_handled() {
    let sb = Sandbox::start();
    let c = client(&sb);
    sb.grant(APPID, "o1", TPL_PAY_SUCCESS, 1);
    let tok = c.demo_token();
    let body = format!("{}{}", pay_message("o1"), " ".repeat(5000));
    let (status, text) = c
        .try_post(&format!("{SEND}?access_token={tok}"), &body)
        .unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("\"errcode\":0"), "{text}");
    assert_eq!(sb.all_delivered().len(), 1);
}

#[test]
fn a_thousand_concurrent_connections() {
    let b = binary();
    let n = 1000;
    let mut conns: Vec<TcpStream> = (0..n).map(|_| connect(b.addr)).collect();
    let req = format!(
        "GET /cgi-bin/token?grant_type=client_credential&appid={APPID}&secret={SECRET} HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    for s in &mut conns {
        s.write_all(req.as_bytes()).unwrap();
    }
    let mut tokens = std::collections::HashSet::new();
    for s in conns {
        let (status, body) = read_response(&mut BufReader::new(s)).unwrap();
        assert_eq!(status, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        tokens.insert(v["access_token"].as_str().unwrap().to_string());
    }
    assert_eq!(tokens.len(), n, "every fetch answered with its own token");
    assert_serving(&b.url);
    let c = client_at(&b.url);
    let (_, v) = c.get("/sandbox/counters");
    assert_eq!(v["counters"]["token_fetches"][APPID]["token"], n as u64 + 1);
}

#[test]
fn expect_continue_and_http_1_0_are_served() {
    let b = binary();
    let mut s = connect(b.addr);
    let body = r#"{"grant_type":"client_credential","appid":"wxdemo0000000001","secret":"demo-app-secret-0001"}"#;
    s.write_all(
        format!(
            "POST /cgi-bin/stable_token HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len() + 2000
        )
        .as_bytes(),
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line:?}");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    s.write_all(format!("{body}{}", " ".repeat(2000)).as_bytes())
        .unwrap();
    let (status, answer) = read_response(&mut reader).unwrap();
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&answer).contains("access_token"));

    let mut s = connect(b.addr);
    s.write_all(b"GET /sandbox/clock HTTP/1.0\r\n\r\n").unwrap();
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    assert!(all.starts_with("HTTP/1."), "{all:?}");
    assert!(all.contains("\"now\""), "{all:?}");
}

#[test]
fn a_burst_of_keep_alive_connections_is_served_while_all_stay_open() {
    // Every connection stays open until all were answered: one left queued
    // behind the others (as tiny_http's pool can leave it) would wait forever.
    let sb = Sandbox::start();
    let addr = sb.addr();
    let held: Vec<TcpStream> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..64)
            .map(|_| {
                s.spawn(move || {
                    let mut c = connect(addr);
                    c.write_all(b"GET /sandbox/clock HTTP/1.1\r\nHost: x\r\n\r\n")
                        .unwrap();
                    let mut reader = BufReader::new(c.try_clone().unwrap());
                    let (status, _) = read_response(&mut reader).unwrap();
                    assert_eq!(status, 200);
                    c
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(held.len(), 64);
}
