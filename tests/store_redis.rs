//! The shared store suite against a real Redis server, and what only a
//! network store has: a server that is down, restarts, lost answers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fashop_notify::{Error, Notifier, PermitRequest};

use crate::redis_server::RedisServer;
use crate::store_suite::{Fixture, APP, NOW};

fn fresh() -> Fixture {
    let server = RedisServer::start();
    let spec = server.spec("suite");
    Fixture::new(&spec, Box::new(server))
}

crate::store_suite!(fresh);

#[test]
fn a_server_that_is_down_is_a_store_error_naming_the_address() {
    let mut server = RedisServer::start();
    let url = server.url();
    server.kill();
    let n = Notifier::new();
    match n.configure(&format!(r#"{{"store":"{url}","timeout_ms":1234}}"#)) {
        Err(Error::Store(m)) => assert!(m.contains(&format!("127.0.0.1:{}", server.port)), "{m}"),
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(n.ledger().store_spec(), "memory");
    assert_eq!(n.config().timeout_ms, 5000);
}

#[test]
fn calls_recover_after_a_restart() {
    let mut server = RedisServer::start_persistent();
    let f = Fixture::new(&server.spec("restart"), Box::new(()));
    f.form_id("o1", "f1", NOW);
    f.form_id("o1", "f2", NOW - 5);
    let legacy = PermitRequest::legacy(None);
    let lease = f.n.ledger().take(APP, "o1", &legacy).unwrap().unwrap();
    assert_eq!(lease.value, "f2");
    server.kill();
    match f.n.ledger().take(APP, "o1", &legacy) {
        Err(Error::Store(m)) => assert!(m.contains(&format!("127.0.0.1:{}", server.port)), "{m}"),
        other => panic!("expected a store error while the server is down, got {other:?}"),
    }
    assert!(matches!(f.n.ledger_stats(APP, None), Err(Error::Store(_))));
    server.restart();
    // The pooled connection died with the server; the next call connects afresh.
    let stats = f.stats(Some("o1"));
    assert_eq!(stats["form_id"]["permits"], 1);
    assert_eq!(stats["leased"], 1);
    f.n.ledger().consume(&lease).unwrap();
    assert_eq!(f.spend("o1", &legacy).as_deref(), Some("f1"));
    assert_eq!(f.spend("o1", &legacy), None);
}

/// A worker's pooled connections die with a Redis restart that no call saw:
/// each worker's next call failed with `unexpected end of file` instead of
/// reconnecting (13 of 30 orders lost their notification).
#[test]
fn a_restart_no_call_saw_is_survived() {
    let mut server = RedisServer::start_persistent();
    let f = Fixture::new(&server.spec("quiet-restart"), Box::new(()));
    let grant = r#"{"openid":"o1","kind":"subscribe","template_id":"T"}"#;
    f.add(grant);
    f.form_id("o1", "f1", NOW);
    let legacy = PermitRequest::legacy(None);
    let lease = f.n.ledger().take(APP, "o1", &legacy).unwrap().unwrap();
    server.restart();
    // Calls that may run twice (reads, settling a lease by its id) run again
    // on a new connection: the restart is invisible to them.
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], 1);
    f.n.ledger().consume(&lease).unwrap();
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 0);
    server.restart();
    // A call that must not run twice (a grant is counted) either finds its
    // connection checked (it idled) or fails loudly, never silently; the
    // ledger holds exactly the grants that were answered OK.
    let mut granted = 1;
    for _ in 0..3 {
        match f.n.add_permit(APP, grant) {
            Ok(()) => granted += 1,
            Err(Error::Store(m)) => {
                assert!(m.contains("the connection broke during the call"), "{m}");
                assert!(m.contains("try again"), "{m}");
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(
        granted >= 3,
        "at most the first call after the restart fails"
    );
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], granted);
}

/// Forwards a connection to Redis, and drops the one answer that `cut` asks it to.
fn lossy_proxy(upstream: u16, cut: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            let (mut c_read, mut s_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = c_read.read(&mut buf) {
                    if n == 0 || s_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
            let cut = cut.clone();
            std::thread::spawn(move || {
                let (mut s_read, mut c_write) = (server, client);
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = s_read.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if cut.swap(false, Ordering::SeqCst) {
                        // The request ran on the server; its answer never arrives.
                        let _ = c_write.shutdown(std::net::Shutdown::Both);
                        let _ = s_read.shutdown(std::net::Shutdown::Both);
                        break;
                    }
                    if c_write.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[test]
fn a_take_whose_answer_was_lost_never_counts_a_use_twice() {
    let server = RedisServer::start();
    let cut = Arc::new(AtomicBool::new(false));
    let port = lossy_proxy(server.port, cut.clone());
    let spec = format!("redis://127.0.0.1:{port}/0?prefix=lossy:");
    let f = Fixture::new(&spec, Box::new(()));
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":2}"#);
    let t = PermitRequest::subscribe("T");
    let l = f.n.ledger();
    // Loads the take script, so that the cut answer is the take's own.
    assert!(l.take(APP, "nobody", &t).unwrap().is_none());
    cut.store(true, Ordering::SeqCst);
    assert!(matches!(l.take(APP, "o1", &t), Err(Error::Store(_))));
    // The take ran: one use is leased to nobody that knows it.
    let stats = f.stats(Some("o1"));
    assert_eq!(stats["subscribe"]["templates"]["T"], 1);
    assert_eq!(stats["leased"], 1);
    let a = l.take(APP, "o1", &t).unwrap().unwrap();
    l.consume(&a).unwrap();
    assert!(l.take(APP, "o1", &t).unwrap().is_none());
    // When the lost lease runs out its use returns, once.
    f.clock.advance_ms(l.lease_ms());
    let b = l.take(APP, "o1", &t).unwrap().unwrap();
    l.consume(&b).unwrap();
    assert!(l.take(APP, "o1", &t).unwrap().is_none());
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 0);

    // A consume whose answer was lost is sent again on a new connection (a
    // second run changes nothing), and spends once; so does a third.
    f.add(r#"{"openid":"o2","kind":"subscribe","template_id":"T","count":2}"#);
    let c = l.take(APP, "o2", &t).unwrap().unwrap();
    cut.store(true, Ordering::SeqCst);
    assert_eq!(l.consume(&c).unwrap().uses, 1);
    assert!(!cut.load(Ordering::SeqCst), "the answer was cut");
    assert_eq!(l.consume(&c).unwrap().uses, 1);
    assert_eq!(f.stats(Some("o2"))["subscribe"]["templates"]["T"], 1);
}

#[test]
fn keys_carry_ttls() {
    let server = RedisServer::start();
    let f = Fixture::new(&server.spec("ttl"), Box::new(()));
    f.form_id("o1", "f1", NOW);
    f.add(r#"{"openid":"o2","kind":"subscribe","template_id":"T"}"#);
    f.n.ledger().idempotency_complete("k", "{}").unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_connection().unwrap();
    let ttl = |c: &mut redis::Connection, key: &str| -> i64 {
        redis::cmd("PTTL").arg(key).query(c).unwrap()
    };
    let day = 24 * 3600 * 1000;
    let form = ttl(&mut c, &format!("ttl:u:{APP}:o1"));
    assert!(
        form > 7 * day && form <= 8 * day,
        "form_id user hash PTTL {form}"
    );
    assert_eq!(
        ttl(&mut c, &format!("ttl:u:{APP}:o2")),
        -1,
        "grants do not expire"
    );
    let idem = ttl(&mut c, "ttl:idem:k");
    assert!(idem > 7 * day && idem <= 8 * day, "idempotency PTTL {idem}");
}
