//! The shared store suite against a Redis server reached through its Unix
//! socket (`redis+unix:///path/redis.sock?db=0`), as a shop whose workers
//! run on Redis's host would configure it, and what only a socket path has.

use fashop_notify::{Error, Notifier};

use crate::redis_server::RedisServer;
use crate::store_suite::{legacy, Fixture, NOW};

fn fresh() -> Fixture {
    let server = RedisServer::start();
    let spec = server.unix_spec("suite");
    Fixture::new(&spec, Box::new(server))
}

crate::store_suite!(fresh);

#[test]
fn a_socket_that_is_not_there_is_a_store_error_naming_the_path_not_the_password() {
    let mut server = RedisServer::start();
    let socket = server.socket();
    server.kill();
    let spec = format!("redis+unix://{}?db=0&pass=s3cret-pass", socket.display());
    let n = Notifier::new();
    match n.configure(&serde_json::json!({ "store": spec }).to_string()) {
        Err(Error::Store(m)) => {
            assert!(m.contains(&*socket.to_string_lossy()), "{m}");
            assert!(!m.contains("s3cret-pass"), "{m}");
        }
        other => panic!("expected a store error, got {other:?}"),
    }
    assert_eq!(n.ledger().store_spec(), "memory");
}

#[test]
fn the_socket_and_tcp_reach_the_same_records() {
    let server = RedisServer::start();
    let through_tcp = Fixture::new(&server.spec("same"), Box::new(()));
    through_tcp.form_id("o1", "f1", NOW);
    let short = format!("unix://{}?db=0&prefix=same:", server.socket().display());
    for spec in [server.unix_spec("same"), short] {
        let through_socket = Fixture::new(&spec, Box::new(()));
        assert_eq!(through_socket.n.ledger().store_spec(), spec);
        assert_eq!(
            through_socket.stats(Some("o1"))["form_id"]["permits"],
            1,
            "{spec}"
        );
    }
    let through_socket = Fixture::new(&server.unix_spec("same"), Box::new(()));
    assert_eq!(
        through_socket.spend("o1", &legacy(None)).as_deref(),
        Some("f1")
    );
    assert_eq!(through_tcp.spend("o1", &legacy(None)), None);
}
