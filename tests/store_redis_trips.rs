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
use serde_json::json;

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
            assert!(
                self.feed.read_line(&mut line).unwrap() > 0,
                "the feed ended"
            );
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
fn a_cluster_send_is_four_commands() {
    let cluster = RedisCluster::start();
    let (counted, delivered) =
        commands_of_fifty_sends(&cluster.spec("trips"), &cluster.node_urls());
    assert_eq!(delivered, 51);
    let total: u64 = counted.values().sum();
    eprintln!("cluster, 50 sends: {total} commands {counted:?}");
    // A cluster keeps four steps per send (the record's slot follows the key,
    // the user's hash its buyer): claim, take, consume, record. On top, the
    // first use of each node's connection (a PING), of the slot map and of a
    // script on a node, and the figures' merges.
    assert!(
        total <= 200 + 25,
        "{total} commands for 50 sends: {counted:?}"
    );
}

/// One edge case after the other on the store `f` opens; what each step
/// gave and what the user then held, as text to compare between stores.
fn edge_cases(f: &Fixture) -> Vec<String> {
    let l = f.n.ledger();
    let t1 = PermitRequest::subscribe("T1");
    let mut trace = Vec::new();
    let mut note = |what: &str, text: String| {
        let stats = l.stats(APP, Some("o1")).unwrap();
        trace.push(format!("{what}: {text} | {stats:?}"));
    };
    let claimed = |c: &ClaimedTake| match c {
        ClaimedTake::Fresh(Ok(Some(lease))) => format!(
            "fresh {:?} {} {:?} until {}",
            lease.kind, lease.value, lease.order_sn, lease.expires_at_ms
        ),
        ClaimedTake::Fresh(Ok(None)) => "fresh, no permit".to_string(),
        ClaimedTake::Fresh(Err(e)) => format!("fresh, take failed: {e}"),
        ClaimedTake::InFlight => "in flight".to_string(),
        ClaimedTake::Done(outcome) => format!("done {outcome}"),
    };
    let lease_of = |c: ClaimedTake| match c {
        ClaimedTake::Fresh(Ok(Some(lease))) => lease,
        other => panic!("expected a lease, got {other:?}"),
    };
    // Spends `lease` recording under `key`; the text is written with the
    // uses left, and the last text written is the one recorded.
    let spend = |lease: &fashop_notify::Lease, key: &str| {
        let mut last = None;
        let done = l.consume_and_complete(lease, key, &mut |left| {
            last = Some(left.map(|r| r.uses));
            format!(r#"{{"status":"sent","left":{:?}}}"#, left.map(|r| r.uses))
        });
        let recorded = l.idempotency_claim(key, 1).unwrap();
        assert_eq!(recorded, KeyClaim::Done(done.outcome.clone()));
        format!(
            "spent {:?}, recorded {:?}, written with {last:?}: {}",
            done.spent.map(|r| r.uses),
            done.recorded,
            done.outcome
        )
    };

    // No permit: nothing taken, and the key is left free.
    let c = l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap();
    note("no permit", claimed(&c));
    note(
        "k1 after",
        format!("{:?}", l.idempotency_claim("k1", 1).unwrap()),
    );
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":3}"#);
    // Claimed by another send: nothing taken.
    assert_eq!(l.idempotency_claim("k2", 30_000).unwrap(), KeyClaim::Fresh);
    let c = l.claim_and_take("k2", 30_000, APP, "o1", &t1).unwrap();
    note("claimed by another", claimed(&c));
    // Its claim ran out: the key is this send's, with a use.
    f.clock.advance_ms(30_000);
    let c = l.claim_and_take("k2", 30_000, APP, "o1", &t1).unwrap();
    note("claim ran out", claimed(&c));
    let lease = lease_of(c);
    note(
        "k2 in flight",
        claimed(&l.claim_and_take("k2", 1, APP, "o1", &t1).unwrap()),
    );
    note("spend k2", spend(&lease, "k2"));
    // Finished: the outcome, nothing taken.
    note(
        "finished",
        claimed(&l.claim_and_take("k2", 1, APP, "o1", &t1).unwrap()),
    );
    // Spent twice: the second spends nothing.
    note("spent again", spend(&lease, "k2b"));
    // The lease ran out and its use went back: still spent once.
    let lease = lease_of(l.claim_and_take("k3", 30_000, APP, "o1", &t1).unwrap());
    f.clock.advance_ms(l.lease_ms());
    note(
        "lease ran out",
        format!("{}", l.stats(APP, Some("o1")).unwrap().leased),
    );
    note("spend k3", spend(&lease, "k3"));
    // Uses added between the take and the spend.
    let lease = lease_of(l.claim_and_take("k4", 30_000, APP, "o1", &t1).unwrap());
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    note("spend k4 after an add", spend(&lease, "k4"));
    // The grant was withdrawn under the lease: the lease is lost.
    let lease = lease_of(l.claim_and_take("k5", 30_000, APP, "o1", &t1).unwrap());
    note(
        "withdrawn",
        format!("{}", l.drop_grants(APP, "o1", "T1").unwrap()),
    );
    note("spend k5 lost", spend(&lease, "k5"));
    note(
        "no permit left",
        claimed(&l.claim_and_take("k6", 30_000, APP, "o1", &t1).unwrap()),
    );
    note(
        "k6 after",
        format!("{:?}", l.idempotency_claim("k6", 1).unwrap()),
    );
    // A finished record runs out after a week: the key is free again, and
    // without a permit stays free.
    f.clock.advance_secs(8 * DAY);
    note(
        "week later",
        claimed(&l.claim_and_take("k2", 30_000, APP, "o1", &t1).unwrap()),
    );
    note(
        "k2 after",
        format!("{:?}", l.idempotency_claim("k2", 1).unwrap()),
    );
    // Legacy: the form_id that expires soonest (they live seven days);
    // another one expires between the take and the spend.
    let now = f.clock.now_ms() / 1000;
    f.form_id("o1", "fresh", now);
    f.form_id("o1", "soon", now - 7 * DAY + 60);
    f.form_id("o1", "sooner", now - 7 * DAY + 30);
    let legacy = PermitRequest::legacy(None);
    let c = l.claim_and_take("k7", 30_000, APP, "o1", &legacy).unwrap();
    note("legacy", claimed(&c));
    f.clock.advance_secs(61);
    note("spend k7", spend(&lease_of(c), "k7"));
    trace
}

/// The edge cases on the store at `spec` answer step by step as on memory.
fn answers_like_memory(spec: &str) {
    let memory = edge_cases(&Fixture::new("memory", Box::new(())));
    let redis = edge_cases(&Fixture::new(spec, Box::new(())));
    for (m, r) in memory.iter().zip(&redis) {
        assert_eq!(m, r);
    }
    assert_eq!(memory.len(), redis.len());
}

#[test]
fn combined_steps_do_what_the_memory_store_does() {
    let server = RedisServer::start();
    answers_like_memory(&server.spec("edges"));
}

#[test]
fn a_cluster_does_what_the_memory_store_does() {
    let cluster = RedisCluster::start();
    answers_like_memory(&cluster.spec("edges"));
}
