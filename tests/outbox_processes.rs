//! Several flushing processes on one SQLite or Redis outbox: each message sent once;
//! a flusher killed while its message was under way hands the message back
//! after its lease (sent once) or, when the request had gone out, leaves it
//! UNCERTAIN and never sent again.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};

use fashop_notify_sandbox::{Fault, Sandbox, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

use crate::outbox_support::{notifier, payment, TempDir, APP, BUYER, NOW, SEND};
use crate::redis_server::{RedisCluster, RedisServer};

const WORKER: &str = env!("CARGO_BIN_EXE_fashop-notify-outbox-worker");
/// The default lease, plus a second.
const AFTER_LEASE: i64 = 121;

fn worker(store: &str, sb: &Sandbox, now: i64, job: &str) -> Child {
    Command::new(WORKER)
        .args([store, &sb.url(), &now.to_string(), job])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the outbox worker")
}

/// The worker's `STATUS ID` lines, once it has finished well.
fn lines(child: Child) -> Vec<(String, u64)> {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (status, id) = l.split_once(' ').unwrap();
            (status.to_string(), id.parse().unwrap())
        })
        .collect()
}

/// Waits, by reading the sandbox, until `cond` holds.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "never saw {what}");
    }
}

/// Where the shared outbox lives, removed (or stopped) when dropped.
enum Place {
    Sqlite(TempDir),
    Redis(RedisServer),
    Cluster(RedisCluster),
}

impl Place {
    fn new(redis: bool) -> Place {
        if redis {
            Place::Redis(RedisServer::start())
        } else {
            Place::Sqlite(TempDir::new("procs"))
        }
    }

    fn store(&self) -> String {
        match self {
            Place::Sqlite(dir) => dir.store(),
            Place::Redis(server) => server.spec("procs"),
            Place::Cluster(cluster) => cluster.spec("procs"),
        }
    }
}

fn setup(count: u64, redis: bool) -> (Sandbox, Place, fashop_notify::Notifier) {
    setup_in(count, Place::new(redis))
}

fn setup_in(count: u64, dir: Place) -> (Sandbox, Place, fashop_notify::Notifier) {
    let sb = Sandbox::start();
    let (n, _) = notifier(&dir.store(), &sb.url(), NOW);
    // One buyer for every message: more uses than the default cap per template.
    n.configure(r#"{"subscribe_cap_per_template": 10000}"#)
        .unwrap();
    sb.grant(APP, BUYER, TPL_PAY_SUCCESS, count);
    n.add_permit(
        APP,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": count})
            .to_string(),
    )
    .unwrap();
    (sb, dir, n)
}

fn orders(sb: &Sandbox) -> Vec<String> {
    sb.delivered(APP, BUYER)
        .iter()
        .map(|m| {
            m.data["character_string1"]["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn four_processes_flushing_one_outbox_send_each_message_once() {
    four_processes_flushing_one_outbox_send_each_message_once_on(false);
}

#[test]
fn four_processes_flushing_one_outbox_send_each_message_once_redis() {
    four_processes_flushing_one_outbox_send_each_message_once_on(true);
}

#[test]
fn four_processes_flushing_one_outbox_send_each_message_once_redis_cluster() {
    four_processes_flushing_one_outbox_send_each_message_once_in(Place::Cluster(
        RedisCluster::start(),
    ));
}

fn four_processes_flushing_one_outbox_send_each_message_once_on(redis: bool) {
    four_processes_flushing_one_outbox_send_each_message_once_in(Place::new(redis));
}

fn four_processes_flushing_one_outbox_send_each_message_once_in(place: Place) {
    const MESSAGES: u64 = 120;
    let (sb, dir, n) = setup_in(MESSAGES, place);
    for i in 0..MESSAGES {
        n.enqueue(APP, "order_pay_success", &payment(&format!("P-{i}")))
            .unwrap();
    }
    let store = dir.store();
    let workers: Vec<Child> = (0..4).map(|_| worker(&store, &sb, NOW, "drain")).collect();
    let mut sent: BTreeMap<u64, usize> = BTreeMap::new();
    for w in workers {
        for (status, id) in lines(w) {
            assert_eq!(status, "sent", "message {id}");
            *sent.entry(id).or_default() += 1;
        }
    }
    assert_eq!(sent.len() as u64, MESSAGES, "every message sent");
    assert!(
        sent.values().all(|&c| c == 1),
        "a message sent twice: {sent:?}"
    );
    let delivered = orders(&sb);
    assert_eq!(delivered.len() as u64, MESSAGES);
    let distinct: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(
        distinct.len() as u64,
        MESSAGES,
        "WeChat got a message twice"
    );
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(APP)).unwrap()).unwrap();
    assert_eq!(stats["sent"], MESSAGES);
    assert_eq!(stats["pending"], 0);
}

#[test]
fn a_flusher_killed_before_its_request_hands_the_message_back_after_the_lease() {
    a_flusher_killed_before_its_request_hands_the_message_back_after_the_lease_on(false);
}

#[test]
fn a_flusher_killed_before_its_request_hands_the_message_back_after_the_lease_redis() {
    a_flusher_killed_before_its_request_hands_the_message_back_after_the_lease_on(true);
}

fn a_flusher_killed_before_its_request_hands_the_message_back_after_the_lease_on(redis: bool) {
    let (sb, dir, n) = setup(1, redis);
    n.enqueue(APP, "order_pay_success", &payment("KILL-1"))
        .unwrap();
    let store = dir.store();
    // The token answer hangs: the worker has claimed the message and sent nothing.
    sb.inject(
        Fault::on("/cgi-bin/stable_token")
            .latency_ms(20_000)
            .count(1),
    );
    let mut victim = worker(&store, &sb, NOW, "one");
    wait_for("the token request", || {
        sb.counters().token_fetches(APP, "stable_token") >= 1
    });
    victim.kill().unwrap();
    victim.wait().unwrap();
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(APP)).unwrap()).unwrap();
    assert_eq!(stats["in_flight"], 1, "{stats}");

    // Within the lease nobody else takes it.
    assert!(lines(worker(&store, &sb, NOW + 60, "one")).is_empty());
    assert!(orders(&sb).is_empty());
    // After it, the message goes out, once.
    let got = lines(worker(&store, &sb, NOW + AFTER_LEASE, "one"));
    assert_eq!(got, [("sent".to_string(), 1)]);
    assert!(lines(worker(&store, &sb, NOW + 7200, "drain")).is_empty());
    assert_eq!(orders(&sb), ["KILL-1"]);
}

#[test]
fn a_flusher_killed_after_its_request_went_out_leaves_it_uncertain() {
    a_flusher_killed_after_its_request_went_out_leaves_it_uncertain_on(false);
}

#[test]
fn a_flusher_killed_after_its_request_went_out_leaves_it_uncertain_redis() {
    a_flusher_killed_after_its_request_went_out_leaves_it_uncertain_on(true);
}

fn a_flusher_killed_after_its_request_went_out_leaves_it_uncertain_on(redis: bool) {
    let (sb, dir, n) = setup(2, redis);
    n.enqueue(APP, "order_pay_success", &payment("KILL-2"))
        .unwrap();
    let store = dir.store();
    // WeChat takes the message; its answer hangs.
    sb.inject(Fault::on(SEND).latency_ms(20_000).count(1));
    let mut victim = worker(&store, &sb, NOW, "one");
    wait_for("the delivery", || !sb.delivered(APP, BUYER).is_empty());
    victim.kill().unwrap();
    victim.wait().unwrap();

    // After the lease the next flush finds it was on its way: not sent again.
    assert!(lines(worker(&store, &sb, NOW + AFTER_LEASE, "drain")).is_empty());
    assert!(lines(worker(&store, &sb, NOW + 86_400, "drain")).is_empty());
    assert_eq!(orders(&sb), ["KILL-2"]);
    n.add_permit(
        APP,
        &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS}).to_string(),
    )
    .unwrap();
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(APP)).unwrap()).unwrap();
    assert_eq!(stats["uncertain"], 1, "{stats}");
    assert_eq!(stats["pending"], 0);
    let letter = &stats["dead_letters"][0];
    assert_eq!(letter["state"], "uncertain");
    assert!(letter["errmsg"]
        .as_str()
        .unwrap()
        .contains("not sent again"));
    // Nor does a direct send with the same idempotency key repeat it.
    let direct = n.send(APP, "order_pay_success", &payment("KILL-2"));
    assert_eq!(direct.outcome.unwrap().status, "duplicate");
    assert_eq!(orders(&sb), ["KILL-2"]);
}

#[test]
fn a_flusher_killed_mid_batch_leaves_no_duplicate() {
    a_flusher_killed_mid_batch_leaves_no_duplicate_on(false);
}

#[test]
fn a_flusher_killed_mid_batch_leaves_no_duplicate_redis() {
    a_flusher_killed_mid_batch_leaves_no_duplicate_on(true);
}

/// A flusher with eight requests in flight dies: what WeChat took is never
/// sent again, the rest goes out once after the lease.
fn a_flusher_killed_mid_batch_leaves_no_duplicate_on(redis: bool) {
    const MESSAGES: u64 = 40;
    let (sb, dir, n) = setup(MESSAGES, redis);
    for i in 0..MESSAGES {
        n.enqueue(APP, "order_pay_success", &payment(&format!("MID-{i}")))
            .unwrap();
    }
    let store = dir.store();
    // WeChat takes the first eight messages; its answers hang.
    sb.inject(Fault::on(SEND).latency_ms(20_000).count(8));
    let mut victim = worker(&store, &sb, NOW, "drain");
    wait_for("eight deliveries", || sb.delivered(APP, BUYER).len() >= 8);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let in_flight = orders(&sb);
    assert_eq!(in_flight.len(), 8);

    // After the lease, two flushers share the rest.
    let store = dir.store();
    let a = worker(&store, &sb, NOW + AFTER_LEASE, "drain");
    let b = worker(&store, &sb, NOW + AFTER_LEASE, "drain");
    let mut sent: BTreeMap<u64, usize> = BTreeMap::new();
    for (status, id) in lines(a).into_iter().chain(lines(b)) {
        assert_eq!(status, "sent", "message {id}");
        *sent.entry(id).or_default() += 1;
    }
    assert_eq!(sent.len() as u64, MESSAGES - 8);
    assert!(sent.values().all(|&c| c == 1), "{sent:?}");
    let delivered = orders(&sb);
    let distinct: BTreeSet<&String> = delivered.iter().collect();
    assert_eq!(delivered.len() as u64, MESSAGES, "{delivered:?}");
    assert_eq!(
        distinct.len() as u64,
        MESSAGES,
        "WeChat got a message twice"
    );
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(APP)).unwrap()).unwrap();
    assert_eq!(stats["uncertain"], 8, "{stats}");
    assert_eq!(stats["sent"], MESSAGES - 8);
}
