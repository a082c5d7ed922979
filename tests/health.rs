//! The store health check against real stores: a working one is `ok` and keeps
//! nothing of the probe; a Redis that went away or was never there, and a
//! SQLite file deleted under the worker, are `ok: false` with the store's message.

use fashop_notify::Notifier;
use serde_json::Value;

use crate::redis_server::RedisServer;
use crate::store_suite::TempDir;

fn health(n: &Notifier) -> Value {
    serde_json::from_str(&n.store_health().unwrap()).unwrap()
}

#[test]
fn health_of_sqlite_is_ok_and_the_probe_leaves_no_row() {
    let dir = TempDir::new("health-sqlite");
    let path = dir.file("notify.db");
    let n = Notifier::new();
    n.configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
        .unwrap();
    let v = health(&n);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["store"], format!("sqlite:{path}"));
    assert!(v["error"].is_null());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM idempotency", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0, "the probe key was deleted");
}

#[test]
fn health_of_a_redis_that_is_not_there_fails_naming_it() {
    // A port nobody listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = Notifier::new();
    let configured = n.configure(&format!(r#"{{"store":"redis://127.0.0.1:{port}/0"}}"#));
    let v = health(&n);
    assert_eq!(v["ok"], false, "{v} (configure: {configured:?})");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
}

#[test]
fn health_of_redis_follows_the_server() {
    let mut redis = RedisServer::start();
    let n = Notifier::new();
    n.configure(&format!(r#"{{"store":"{}"}}"#, redis.spec("health")))
        .unwrap();
    let v = health(&n);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["store"]
            .as_str()
            .unwrap()
            .starts_with("redis://127.0.0.1:"),
        "{v}"
    );
    redis.kill();
    let v = health(&n);
    assert_eq!(v["ok"], false, "{v}");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
}

#[test]
fn health_of_a_sqlite_store_deleted_under_the_worker_fails_naming_it() {
    let dir = TempDir::new("health-deleted");
    let path = dir.file("notify.db");
    let n = Notifier::new();
    n.configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
        .unwrap();
    assert_eq!(health(&n)["ok"], true);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    let v = health(&n);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v["error"].as_str().unwrap().contains(&path), "{v}");
}
