//! What the HTTP transport answers to "may this request have reached WeChat?"
//! when the server misbehaves, through the whole stack (`call_api` on an app
//! whose `api_base` is a raw TCP server on 127.0.0.1). The answer rests on how
//! ureq drives its `unversioned` transport API (`src/wechat/http.rs`), which
//! ureq may change in a minor release: Cargo.toml pins the minor version, and
//! these tests fail if an upgrade changes any of the four answers.
//!
//! Nothing here waits on time: each server is sequenced by channels, and the
//! one timeout that must run out is the transport's own, set small.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use fashop_notify::{Error, Notifier};

const APPID: &str = "wxtransport00001";
const PATH: &str = "/cgi-bin/message/subscribe/send";

/// A notifier whose one app (external token, so no token request goes out)
/// calls `base`, with the given answer timeout.
fn notifier(base: &str, timeout_ms: u64) -> Notifier {
    notifier_with(base, 5000, timeout_ms)
}

fn notifier_with(base: &str, connect_timeout_ms: u64, timeout_ms: u64) -> Notifier {
    let n = Notifier::new();
    n.configure(&format!(
        r#"{{"timeout_ms": {timeout_ms}, "connect_timeout_ms": {connect_timeout_ms}, "max_retries": 0}}"#
    ))
    .unwrap();
    n.register_app(&format!(
        r#"{{"appid": "{APPID}", "token_mode": "external", "api_base": "{base}"}}"#
    ))
    .unwrap();
    n.set_access_token(APPID, "TOKEN", 7200).unwrap();
    n
}

fn post(n: &Notifier, body: &str) -> Error {
    match n.call_api(APPID, "POST", PATH, Some(body)) {
        Ok(answer) => panic!("an answer came: {answer}"),
        Err(e) => e,
    }
}

/// Reads one request (head and `Content-Length` body) from `conn`.
fn read_request(conn: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + length {
                return buf;
            }
        }
        let n = conn.read(&mut chunk).expect("reading the request");
        assert!(n > 0, "the client closed before the request was complete");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn base(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[test]
fn a_server_that_closes_after_reading_the_whole_request_leaves_it_uncertain() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (read_tx, read_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let request = read_request(&mut conn);
        read_tx.send(request).unwrap();
        // Dropped without a word: the request is in, no answer comes out.
    });
    let n = notifier(&base(addr), 5000);
    let e = post(&n, r#"{"touser":"o1"}"#);
    server.join().unwrap();
    let request = read_rx.recv().unwrap();
    assert!(request.ends_with(br#"{"touser":"o1"}"#));
    assert!(matches!(e, Error::Uncertain(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("the server closed the connection")
            && text.ends_with("(after the request was sent; WeChat may have received it)"),
        "{text}"
    );
}

#[test]
fn a_server_that_resets_before_the_request_is_written_is_a_network_error() {
    // The body is larger than the socket buffers of loopback can hold (at most
    // 4 MiB to send and 32 MiB to receive here, net.ipv4.tcp_wmem/rmem), and the server reads one byte of it and closes with the
    // rest unread, which resets the connection: the client cannot have
    // finished writing when the reset comes, whatever the scheduling.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut first = [0u8; 1];
        conn.read_exact(&mut first).unwrap();
        first[0]
    });
    let n = notifier(&base(addr), 5000);
    let body = format!(r#"{{"touser":"{}"}}"#, "o".repeat(48 << 20));
    let e = post(&n, &body);
    assert_eq!(
        server.join().unwrap(),
        b'P',
        "the request line starts with POST"
    );
    assert!(matches!(e, Error::Network(_)), "{e:?}");
    let text = e.to_string();
    assert!(text.ends_with("(before the request was sent)"), "{text}");
}

#[test]
fn a_port_bound_but_not_listening_is_a_network_error() {
    // A server that never accepts, the other way: the local end of a
    // connected socket is bound but not listening, so a connection to its
    // port is refused, for as long as the socket lives (a freed port could be
    // taken by another test in the meantime).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bound = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let addr = bound.local_addr().unwrap();
    let n = notifier(&base(addr), 5000);
    let e = post(&n, r#"{"touser":"o1"}"#);
    assert!(matches!(e, Error::Network(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("connection refused (is the server running?) (before the request was sent)"),
        "{text}"
    );
    drop(bound);
}

#[test]
fn a_server_whose_backlog_is_full_is_a_network_error() {
    // A listener that never accepts: once its accept queue is full, the kernel
    // drops every further SYN and a connect waits until its timeout. The
    // queue's length is the kernel's business (std asks for 128), so it is
    // filled until a connect is not taken; a second is generous for one on
    // loopback, so a connect that timed out met a full queue.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(conn) => queued.push(conn),
            Err(e) if e.kind() == ErrorKind::TimedOut => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 5000, "the backlog never filled");
    }
    let n = notifier_with(&base(addr), 200, 5000);
    let e = post(&n, r#"{"touser":"o1"}"#);
    assert!(matches!(e, Error::Network(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("timed out connecting (before the request was sent)"),
        "{text}"
    );
    drop((queued, listener));
}

#[test]
fn a_server_that_answers_after_the_timeout_leaves_it_uncertain() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        read_request(&mut conn);
        // The answer goes out only once the client has given up.
        done_rx.recv().unwrap();
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 26\r\n\r\n{\"errcode\":0,\"msgid\":1234}";
        // The client may have closed already: a failed write is no failure here.
        let _ = conn.write_all(answer);
    });
    let n = notifier(&base(addr), 300);
    let e = post(&n, r#"{"touser":"o1"}"#);
    done_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(matches!(e, Error::Uncertain(_)), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("timed out waiting for the answer")
            && text.ends_with("(after the request was sent; WeChat may have received it)"),
        "{text}"
    );
}
