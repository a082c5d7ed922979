//! Metric figures shared through Redis: two processes add up, a batch whose
//! reply was lost is counted exactly once, and a Redis that is down fails only the
//! scrape. Each test starts its own redis-server (Debian package
//! `redis-server`, installed by `make deps`) on 127.0.0.1 with a free port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use fashop_notify::{Config, Error, Metrics, MetricsFormat};
use serde_json::Value;

struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server is needed for this test and could not be run ({e}); \
                     install it with `make deps` (Debian package `redis-server`)"
                )
            });
        let stdout = child.stdout.take().unwrap();
        let mut ready = false;
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().contains("Ready to accept connections") {
                ready = true;
                break;
            }
        }
        assert!(ready, "redis-server on port {port} did not start");
        RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn redis_metrics(url: &str) -> Metrics {
    let m = Metrics::new();
    m.configure(&Config {
        store: fashop_notify::StoreSpec::Redis(url.to_string()),
        ..Config::default()
    });
    m
}

fn figures(m: &Metrics) -> Value {
    serde_json::from_str(&m.render(MetricsFormat::Json).unwrap()).unwrap()
}

fn sends(v: &Value, status: &str) -> i64 {
    v["fashop_notify_sends_total"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["value"].as_i64().unwrap())
        .sum()
}

const WORKER_URL: &str = "FASHOP_METRICS_REDIS_URL";
const WORKER_SENDS: u64 = 120;

/// One worker's traffic; run as a child by `two_processes_on_one_redis_add_up`,
/// alone it checks its own figures against its own server.
#[test]
fn redis_worker_process() {
    let own;
    let url = match std::env::var(WORKER_URL) {
        Ok(url) => url,
        Err(_) => {
            own = RedisServer::start();
            own.url.clone()
        }
    };
    let m = redis_metrics(&url);
    for i in 0..WORKER_SENDS {
        let _batch = m.batch();
        let status = if i % 4 == 0 { "uncertain" } else { "sent" };
        m.record_send("wx1", "order_cancel", status, 0, Duration::from_millis(30));
        m.record_permit_consumed("form_id");
    }
    // What a short wait on a busy store left behind goes out before exit.
    m.flush().unwrap();
    if std::env::var(WORKER_URL).is_err() {
        let v = figures(&m);
        assert_eq!(sends(&v, "sent"), 90);
        assert_eq!(sends(&v, "uncertain"), 30);
    }
}

#[test]
fn two_processes_on_one_redis_add_up() {
    let server = RedisServer::start();
    let exe = std::env::current_exe().unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "metrics_redis::redis_worker_process",
                    "--nocapture",
                ])
                .env(WORKER_URL, &server.url)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut w in workers {
        assert!(w.wait().unwrap().success(), "a worker process failed");
    }
    let v = figures(&redis_metrics(&server.url));
    assert_eq!(v["scope"], "shared");
    assert_eq!(sends(&v, "sent"), 180);
    assert_eq!(sends(&v, "uncertain"), 60);
    assert_eq!(
        v["fashop_notify_permits_consumed_total"],
        serde_json::json!([{"kind": "form_id", "value": 240}])
    );
    let h = &v["fashop_notify_send_duration_seconds"];
    assert_eq!(h["count"], 240);
    assert_eq!(
        h["buckets"][2],
        serde_json::json!({"le": "0.025", "count": 0})
    );
    assert_eq!(
        h["buckets"][3],
        serde_json::json!({"le": "0.05", "count": 240})
    );
    assert!((h["sum"].as_f64().unwrap() - 7.2).abs() < 1e-9);
}

/// A TCP relay to Redis that, once told, swallows the next reply and hangs up:
/// the request reached Redis, the answer never came back.
struct ReplyEater {
    url: String,
    eat: Arc<AtomicBool>,
    eaten: mpsc::Receiver<()>,
}

impl ReplyEater {
    fn start(upstream: &str) -> ReplyEater {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = upstream
            .trim_start_matches("redis://")
            .trim_end_matches("/0")
            .to_string();
        let eat = Arc::new(AtomicBool::new(false));
        let flag = eat.clone();
        let (ate, eaten) = mpsc::channel();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    return;
                };
                let (mut client_r, mut server_w) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_r, &mut server_w);
                });
                let flag = flag.clone();
                let ate = ate.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if flag.swap(false, Ordering::SeqCst) {
                            let _ = client.shutdown(Shutdown::Both);
                            let _ = server.shutdown(Shutdown::Both);
                            let _ = ate.send(());
                            break;
                        }
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        ReplyEater {
            url: format!("redis://127.0.0.1:{port}/0"),
            eat,
            eaten,
        }
    }
}

#[test]
fn a_lost_reply_is_counted_once() {
    let server = RedisServer::start();
    let relay = ReplyEater::start(&server.url);
    let m = redis_metrics(&relay.url);
    m.record_send("wx1", "order_cancel", "sent", 0, Duration::from_millis(5));
    // Confirmed before going on, even if a busy machine made the short
    // wait of the recording run out.
    m.flush().unwrap();
    // Redis applies this batch but its answer is lost: the sink keeps the
    // batch and sends it again with the same number, which Redis skips.
    relay.eat.store(true, Ordering::SeqCst);
    m.record_send("wx1", "order_cancel", "sent", 0, Duration::from_millis(5));
    // Recordings are merged at most once a second: this merge is asked for.
    m.flush().unwrap();
    relay.eaten.recv().unwrap();
    let v = figures(&m);
    assert_eq!(sends(&v, "sent"), 2);
    assert_eq!(v["fashop_notify_send_duration_seconds"]["count"], 2);
    // (No assertion on flush failures: on a busy machine the recording's short
    // wait may also run out, and the scrape then sends the batch again; either
    // way Redis must count it once, which is what is checked.)
    m.record_send("wx1", "order_cancel", "sent", 0, Duration::from_millis(5));
    assert_eq!(sends(&figures(&m), "sent"), 3);
    // Seen from Redis itself, not through this process's sink.
    assert_eq!(sends(&figures(&redis_metrics(&server.url)), "sent"), 3);
}

#[test]
fn a_redis_that_is_down_fails_only_the_scrape() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = redis_metrics(&format!("redis://shop:hunter2@127.0.0.1:{port}/0"));
    m.record_send("wx1", "order_cancel", "sent", 0, Duration::from_millis(5));
    m.record_log_failure();
    let e = m.render(MetricsFormat::Prometheus).unwrap_err();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("redis store redis://***@127.0.0.1"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

/// Shops sharing one Redis under their own store prefixes keep their own
/// figures, as they keep their own permits; the default prefix keeps the
/// figures' key it always had.
#[test]
fn each_store_prefix_keeps_its_own_figures() {
    let server = RedisServer::start();
    let with_prefix = |p: &str| match p {
        "" => server.url.clone(),
        p => format!("{}?prefix={p}", server.url),
    };
    let counts = [("", 1), ("shop1:", 2), ("shop2:", 3)];
    for (prefix, n) in counts {
        let m = redis_metrics(&with_prefix(prefix));
        for _ in 0..n {
            m.record_send("wx1", "order_cancel", "sent", 0, Duration::from_millis(5));
        }
        m.flush().unwrap();
    }
    for (prefix, n) in counts {
        let v = figures(&redis_metrics(&with_prefix(prefix)));
        assert_eq!(sends(&v, "sent"), n, "prefix {prefix:?}");
    }
    let mut conn = redis::Client::open(server.url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*metrics").query(&mut conn).unwrap();
    keys.sort();
    assert_eq!(
        keys,
        ["fashop_notify:metrics", "shop1:metrics", "shop2:metrics"]
    );
}
