//! Round trips of a send on the Redis store: on one server, claiming the key
//! with a permit and spending the use with the outcome are one script each
//! (two commands per send, not four), and the combined scripts behave as
//! the memory store does in every edge case (a key claimed by another send,
//! finished, or whose claim ran out; no permit left; a lease that ran out or
//! was lost; uses that changed between the take and the spend).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;

use fashop_notify::{
    ClaimedTake, Clock, KeyClaim, ManualClock, Notifier, PermitRequest, SystemClock,
};
use fashop_notify_sandbox::{Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

use crate::redis_server::{RedisCluster, RedisServer};
use crate::store_suite::{Fixture, APP, DAY};

const BUYER: &str = "oBuyer_trips_test_01";
const EXAMPLE_MAPPINGS: &str = include_str!("../examples/mappings.json");

/// What clients ask of a server, from its MONITOR feed: one line per
/// command, in the order the server ran them, those a script ran marked
/// `[db lua]` (they are no round trip and are not counted).
struct Monitor {
    feed: BufReader<TcpStream>,
    conn: redis::Connection,
}

impl Monitor {
    fn start(url: &str) -> Monitor {
        let address = url
            .trim_start_matches("redis://")
            .split('/')
            .next()
            .unwrap();
        let mut stream = TcpStream::connect(address).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut feed = BufReader::new(stream);
        let mut ok = String::new();
        feed.read_line(&mut ok).unwrap();
        assert_eq!(ok, "+OK\r\n");
        let conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .unwrap();
        Monitor { feed, conn }
    }

    /// The commands clients sent since `start`, by name.
    fn stop(mut self) -> BTreeMap<String, u64> {
        // The feed is in the order commands ran: all of ours come before this.
        let end: String = redis::cmd("ECHO")
            .arg("trips-end")
            .query(&mut self.conn)
            .unwrap();
        assert_eq!(end, "trips-end");
        let mut counted = BTreeMap::new();
        loop {
            let mut line = String::new();
            assert!(self.feed.read_line(&mut line).unwrap() > 0, "the feed ended");
            if line.contains("\"trips-end\"") {
                return counted;
            }
            let Some((source, command)) = line.split_once("] ") else {
                continue;
            };
            if source.ends_with(" lua") {
                continue;
            }
            let name = command.split('"').nth(1).unwrap_or("").to_lowercase();
            *counted.entry(name).or_default() += 1;
        }
    }
}

fn commands(monitors: Vec<Monitor>) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for m in monitors {
        for (name, calls) in m.stop() {
            *all.entry(name).or_default() += calls;
        }
    }
    all
}

/// A shop sending through the sandbox with its ledger (and figures) on the
/// Redis server `spec` names.
fn shop(spec: &str) -> (Sandbox, Notifier) {
    let sb = Sandbox::start();
    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let n = Notifier::with_clock(clock);
    n.configure(
        &json!({"api_base": sb.url(), "store": spec, "subscribe_cap_per_template": 100})
            .to_string(),
    )
    .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, EXAMPLE_MAPPINGS).unwrap();
    sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 60);
    n.add_permit(
        DEMO_APPID,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 60})
            .to_string(),
    )
    .unwrap();
    (sb, n)
}

fn send(n: &Notifier, order_sn: &str) {
    let payload = json!({"touser": BUYER, "fields": {
        "order_sn": order_sn, "order_amount": "12.345", "order_total_goods_name": "围巾 x1",
        "pay_time": 1795426265, "order_total_goods_num": 1, "order_id": 42,
        "order_create_time": 1795426200,
    }});
    let report = n.send(DEMO_APPID, "order_pay_success", &payload.to_string());
    report.result.unwrap();
    let outcome = serde_json::to_value(report.outcome.unwrap()).unwrap();
    assert_eq!(outcome["status"], "sent", "{outcome}");
}

/// Sends 50 messages with keys after a first one (which fetches the token)
/// and returns the commands the server ran for them.
fn commands_of_fifty_sends(spec: &str, urls: &[String]) -> (BTreeMap<String, u64>, usize) {
    let (sb, n) = shop(spec);
    send(&n, "SN-T-0");
    let monitors = urls.iter().map(|u| Monitor::start(u)).collect();
    for i in 1..=50 {
        send(&n, &format!("SN-T-{i}"));
        // 100 ms of the notifier's clock per send: 5 s in all.
        n.clock().sleep_ms(100);
    }
    let counted = commands(monitors);
    (counted, sb.delivered(DEMO_APPID, BUYER).len())
}

#[test]
fn a_send_is_two_commands_on_one_server() {
    let server = RedisServer::start();
    let (counted, delivered) = commands_of_fifty_sends(&server.spec("trips"), &[server.url()]);
    assert_eq!(delivered, 51);
    let total: u64 = counted.values().sum();
    eprintln!("one server, 50 sends: {total} commands {counted:?}");
    // One script claims the key with a permit, one spends the use with the
    // outcome: 100 for 50 sends (four steps were 200). The figures merge at
    // most once a second of the clock (one script each, five seconds here,
    // plus the one the first second may leave), never per send; a script a
    // process runs for the first time is loaded once.
    assert!(
        (100..=107).contains(&total),
        "{total} commands for 50 sends: {counted:?}"
    );
}

#[test]
fn a_cluster_send_keeps_its_steps() {
    let cluster = RedisCluster::start();
    let (counted, delivered) = commands_of_fifty_sends(&cluster.spec("trips"), &cluster.node_urls());
    assert_eq!(delivered, 51);
    let total: u64 = counted.values().sum();
    eprintln!("cluster, 50 sends: {total} commands {counted:?}");
}
