//! Access tokens shared through the store between notifiers that stand for
//! separate worker processes: one fetches while the other waits and adopts, a
//! holder that died is taken over once its lease runs out, a stale invalidate
//! leaves a newer shared token alone, and a store that fails costs a fetch of
//! its own but never the token, nor puts the token into any message.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use fashop_notify::{Clock, HttpReply, ManualClock, MemoryTransport, Notifier};
use parking_lot::Mutex;
use serde_json::json;

use crate::redis_server::RedisServer;
use crate::store_suite::TempDir;

const APPID: &str = "wxshared00000001";
const NOW: i64 = 1_767_225_600;
const STABLE: &str = "/cgi-bin/stable_token";
const CLASSIC: &str = "/cgi-bin/token";
/// connect_timeout_ms + timeout_ms as configured below, plus the lease's slack.
const LEASE_MS: i64 = 100 + 200 + 1000;

/// A manual clock that runs a step the test planned when a notifier waits
/// for another's fetch, so the test decides what happens meanwhile.
struct WaitingClock {
    manual: Arc<ManualClock>,
    on_sleep: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
    sleeps: AtomicUsize,
}

impl std::fmt::Debug for WaitingClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitingClock").finish()
    }
}

impl Clock for WaitingClock {
    fn now_ms(&self) -> i64 {
        self.manual.now_ms()
    }

    fn sleep_ms(&self, ms: u64) {
        self.sleeps.fetch_add(1, Ordering::SeqCst);
        let step = self.on_sleep.lock().pop();
        if let Some(step) = step {
            step();
        }
        self.manual.advance_ms(ms as i64);
    }
}

fn notifier(clock: Arc<dyn Clock>, store: &str, mode: &str, log: Option<&Path>) -> Notifier {
    let n = Notifier::with_clock(clock);
    let mut config = json!({"store": store, "connect_timeout_ms": 100, "timeout_ms": 200});
    if let Some(path) = log {
        config["log"] = json!({"path": path, "level": "warn"});
    }
    n.configure(&config.to_string()).unwrap();
    n.register_app(
        &json!({"appid": APPID, "secret": "shared-secret", "token_mode": mode}).to_string(),
    )
    .unwrap();
    n
}

fn token_answer(token: &str) -> HttpReply {
    HttpReply::json(&json!({"access_token": token, "expires_in": 7200}))
}

fn sqlite_spec(dir: &TempDir) -> String {
    format!("sqlite:{}", dir.file("ledger.db"))
}

#[test]
fn one_notifier_fetches_while_the_other_waits_and_adopts_its_token() {
    let dir = TempDir::new("token-share-lease");
    let manual = Arc::new(ManualClock::at(NOW));
    let (fetching_tx, fetching_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let a = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    let a_wire = MemoryTransport::new(move |_| {
        // Holds its fetch open until the other notifier is waiting.
        fetching_tx.send(()).unwrap();
        // Err when B never waited: the test fails below instead of hanging.
        let _ = go_rx.lock().recv();
        Ok(token_answer("SHARED-TOKEN-1"))
    });
    a.set_transport(a_wire.clone());

    let b_clock = Arc::new(WaitingClock {
        manual: manual.clone(),
        on_sleep: Mutex::new(Vec::new()),
        sleeps: AtomicUsize::new(0),
    });
    let b = notifier(b_clock.clone(), &sqlite_spec(&dir), "stable", None);
    let b_wire = MemoryTransport::new(|_| Ok(token_answer("B-MUST-NOT-FETCH")));
    b.set_transport(b_wire.clone());

    std::thread::scope(|s| {
        let (done_tx, done_rx) = mpsc::channel();
        let a = &a;
        s.spawn(move || {
            let t = a.access_token(APPID).unwrap();
            done_tx.send(t.expose().to_string()).unwrap();
        });
        fetching_rx.recv().unwrap();
        // B finds A's lease, waits; on its first wait A's fetch completes.
        let done_rx = Mutex::new(done_rx);
        let a_token = Arc::new(Mutex::new(String::new()));
        let seen = a_token.clone();
        b_clock.on_sleep.lock().push(Box::new(move || {
            go_tx.send(()).unwrap();
            *seen.lock() = done_rx.lock().recv().unwrap();
        }));
        let t = b.access_token(APPID);
        // Lets A finish should B not have waited (the step still queued).
        b_clock.on_sleep.lock().clear();
        assert_eq!(t.unwrap().expose(), "SHARED-TOKEN-1");
        assert_eq!(*a_token.lock(), "SHARED-TOKEN-1");
    });
    assert_eq!(b_clock.sleeps.load(Ordering::SeqCst), 1);
    assert_eq!(a_wire.count(STABLE), 1);
    assert_eq!(b_wire.count(STABLE), 0);
    let (sa, sb) = (a.token_stats(APPID).unwrap(), b.token_stats(APPID).unwrap());
    assert_eq!((sa.fetches, sa.adopted), (1, 0));
    assert_eq!((sb.fetches, sb.adopted), (0, 1));

    // A third process starting later takes the stored token without waiting.
    let c = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    let c_wire = MemoryTransport::new(|_| Ok(token_answer("C-MUST-NOT-FETCH")));
    c.set_transport(c_wire.clone());
    assert_eq!(c.access_token(APPID).unwrap().expose(), "SHARED-TOKEN-1");
    assert_eq!(c_wire.count(STABLE), 0);

    // Past the refresh margin one of them asks again: the same token comes
    // back and is kept to its end by all, without a further request.
    manual.advance_secs(7200 - 300);
    let again = MemoryTransport::new(|_| {
        Ok(HttpReply::json(
            &json!({"access_token": "SHARED-TOKEN-1", "expires_in": 300}),
        ))
    });
    c.set_transport(again.clone());
    assert_eq!(c.access_token(APPID).unwrap().expose(), "SHARED-TOKEN-1");
    assert_eq!(b.access_token(APPID).unwrap().expose(), "SHARED-TOKEN-1");
    manual.advance_secs(299);
    assert_eq!(b.access_token(APPID).unwrap().expose(), "SHARED-TOKEN-1");
    assert_eq!(again.count(STABLE), 1);
    assert_eq!(b_wire.count(STABLE), 0);
}

#[test]
fn a_holder_that_died_mid_fetch_is_taken_over_when_its_lease_runs_out() {
    let dir = TempDir::new("token-share-dead");
    let manual = Arc::new(ManualClock::at(NOW));
    let a = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    // A stands for a worker killed while its token request was out: it took
    // the lease and neither publishes nor gives it back.
    a.set_transport(MemoryTransport::new(|_| panic!("worker killed mid-fetch")));
    let died = std::thread::scope(|s| s.spawn(|| a.access_token(APPID)).join());
    assert!(died.is_err());

    let b = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    let b_wire = MemoryTransport::new(|_| Ok(token_answer("TAKEN-OVER")));
    b.set_transport(b_wire.clone());
    let t = b.access_token(APPID).unwrap();
    assert_eq!(t.expose(), "TAKEN-OVER");
    assert_eq!(b_wire.count(STABLE), 1);
    // B waited (its clock's sleeps) exactly until the lease ran out.
    let waited = manual.now_ms() - NOW * 1000;
    assert!((LEASE_MS..LEASE_MS + 40).contains(&waited), "{waited}");
    assert_eq!(b.token_stats(APPID).unwrap().fetches, 1);
}

#[test]
fn a_stale_invalidate_leaves_a_newer_shared_token_alone() {
    let dir = TempDir::new("token-share-invalidate");
    let manual = Arc::new(ManualClock::at(NOW));
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    let wire = MemoryTransport::new(move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(token_answer(&format!("CLASSIC-{n}")))
    });
    let a = notifier(manual.clone(), &sqlite_spec(&dir), "classic", None);
    let b = notifier(manual.clone(), &sqlite_spec(&dir), "classic", None);
    a.set_transport(wire.clone());
    b.set_transport(wire.clone());

    assert_eq!(a.access_token(APPID).unwrap().expose(), "CLASSIC-1");
    assert_eq!(b.access_token(APPID).unwrap().expose(), "CLASSIC-1");
    assert_eq!(wire.count(CLASSIC), 1);

    // A learns that CLASSIC-1 failed: dropped for all, A fetches CLASSIC-2.
    assert!(a.invalidate_token(APPID, "CLASSIC-1").unwrap());
    assert_eq!(a.access_token(APPID).unwrap().expose(), "CLASSIC-2");
    // B's late report about CLASSIC-1 drops its own copy only.
    assert!(b.invalidate_token(APPID, "CLASSIC-1").unwrap());
    assert_eq!(b.access_token(APPID).unwrap().expose(), "CLASSIC-2");
    assert!(!a.invalidate_token(APPID, "CLASSIC-1").unwrap());
    assert_eq!(a.access_token(APPID).unwrap().expose(), "CLASSIC-2");
    assert_eq!(wire.count(CLASSIC), 2);
    assert_eq!(b.token_stats(APPID).unwrap().fetches, 0);
    assert_eq!(b.token_stats(APPID).unwrap().adopted, 2);
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_store_that_is_down_costs_a_fetch_of_its_own_never_the_token() {
    let dir = TempDir::new("token-share-down");
    let log = Path::new(&dir.0).join("notify.log");
    let mut server = RedisServer::start();
    let n = notifier(
        Arc::new(ManualClock::at(NOW)),
        &server.spec("down"),
        "stable",
        Some(&log),
    );
    let wire = MemoryTransport::new(|_| Ok(token_answer("OWN-FETCH-TOKEN-77")));
    n.set_transport(wire.clone());
    server.kill();
    assert_eq!(
        n.access_token(APPID).unwrap().expose(),
        "OWN-FETCH-TOKEN-77"
    );
    assert_eq!(wire.count(STABLE), 1);
    let text = log_text(&log);
    assert!(text.contains("\"operation\":\"token_turn\""), "{text}");
    assert!(text.contains("fetched by this process alone"), "{text}");
    assert!(!text.contains("OWN-FETCH-TOKEN-77"), "{text}");
    // The in-process cache serves the token without asking the store again.
    assert_eq!(
        n.access_token(APPID).unwrap().expose(),
        "OWN-FETCH-TOKEN-77"
    );
    assert_eq!(wire.count(STABLE), 1);
    assert_eq!(text, log_text(&log), "no store access on a cache hit");
}

#[test]
fn store_failures_around_a_fetch_never_put_the_token_into_a_message() {
    let dir = TempDir::new("token-share-secret");
    let log = Path::new(&dir.0).join("notify.log");
    let server = Arc::new(Mutex::new(RedisServer::start()));
    let spec = server.lock().spec("secret");
    let n = notifier(Arc::new(ManualClock::at(NOW)), &spec, "stable", Some(&log));
    // The server goes away while the token request is out: the publication fails.
    let dying = server.clone();
    let wire = MemoryTransport::new(move |_| {
        dying.lock().kill();
        Ok(token_answer("SECRET-TOKEN-4242"))
    });
    n.set_transport(wire.clone());
    assert_eq!(n.access_token(APPID).unwrap().expose(), "SECRET-TOKEN-4242");
    // Reported as failed by WeChat: the shared drop fails too.
    assert!(n.invalidate_token(APPID, "SECRET-TOKEN-4242").unwrap());
    let text = log_text(&log);
    assert!(text.contains("\"operation\":\"token_publish\""), "{text}");
    assert!(text.contains("\"operation\":\"token_drop_if\""), "{text}");
    assert!(!text.contains("SECRET-TOKEN-4242"), "{text}");
    assert!(!text.contains("shared-secret"), "{text}");
    assert!(!format!("{n:?}").contains("SECRET-TOKEN-4242"));
}

#[test]
fn while_another_notifier_refreshes_the_old_token_is_used_without_looking_again() {
    let dir = TempDir::new("token-share-refreshing");
    let manual = Arc::new(ManualClock::at(NOW));
    let (fetching_tx, fetching_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let issued = AtomicUsize::new(0);
    let a = notifier(manual.clone(), &sqlite_spec(&dir), "classic", None);
    let a_wire = MemoryTransport::new(move |_| {
        if issued.fetch_add(1, Ordering::SeqCst) == 0 {
            return Ok(token_answer("OLD-TOKEN"));
        }
        // The refresh stays out until the test has made its calls.
        fetching_tx.send(()).unwrap();
        let _ = go_rx.lock().recv();
        Ok(token_answer("NEW-TOKEN"))
    });
    a.set_transport(a_wire.clone());
    assert_eq!(a.access_token(APPID).unwrap().expose(), "OLD-TOKEN");
    // In the refresh window, still valid.
    manual.advance_secs(7200 - 300 + 10);

    let b = notifier(manual.clone(), &sqlite_spec(&dir), "classic", None);
    let b_wire = MemoryTransport::new(|_| Ok(token_answer("B-MUST-NOT-FETCH")));
    b.set_transport(b_wire.clone());
    std::thread::scope(|s| {
        // Dropped should an assertion fail, so that A's fetch ends instead of hanging.
        let go_tx = go_tx;
        let a = &a;
        let refreshed = s.spawn(move || a.access_token(APPID).unwrap().expose().to_string());
        fetching_rx.recv().unwrap();
        // A holds the lease: B takes the old token once and keeps it while
        // the lease lasts instead of asking the store on every call.
        for _ in 0..4 {
            assert_eq!(b.access_token(APPID).unwrap().expose(), "OLD-TOKEN");
            manual.advance_ms(100);
        }
        assert_eq!(b.token_stats(APPID).unwrap().adopted, 1);
        go_tx.send(()).unwrap();
        assert_eq!(refreshed.join().unwrap(), "NEW-TOKEN");
    });
    // Once the lease's time is over B finds A's new token.
    manual.advance_ms(LEASE_MS);
    assert_eq!(b.access_token(APPID).unwrap().expose(), "NEW-TOKEN");
    let stats = b.token_stats(APPID).unwrap();
    assert_eq!((stats.fetches, stats.adopted), (0, 2));
    assert_eq!(b_wire.count(CLASSIC), 0);
}

#[test]
fn a_failed_fetch_falls_back_on_the_valid_token_in_the_store() {
    let dir = TempDir::new("token-share-outage");
    let manual = Arc::new(ManualClock::at(NOW));
    let a = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    a.set_transport(MemoryTransport::new(|_| Ok(token_answer("STORED-TOKEN"))));
    assert_eq!(a.access_token(APPID).unwrap().expose(), "STORED-TOKEN");

    // A worker started in the token's last minutes while the token endpoint
    // is down: it takes the lease, its fetch fails, the stored token serves.
    manual.advance_secs(7200 - 300 + 10);
    let late = notifier(manual.clone(), &sqlite_spec(&dir), "stable", None);
    let down = MemoryTransport::new(|_| {
        Ok(HttpReply::json(
            &json!({"errcode": -1, "errmsg": "system error"}),
        ))
    });
    late.set_transport(down.clone());
    assert_eq!(late.access_token(APPID).unwrap().expose(), "STORED-TOKEN");
    let asked = down.count(STABLE);
    assert!(asked >= 1);
    // The failure backoff holds: no new request meanwhile.
    assert_eq!(late.access_token(APPID).unwrap().expose(), "STORED-TOKEN");
    assert_eq!(down.count(STABLE), asked);
    // The lease was given back: once the backoff is over the endpoint works again.
    manual.advance_ms(fashop_notify::FETCH_BACKOFF_MS);
    late.set_transport(MemoryTransport::new(|_| Ok(token_answer("NEXT-TOKEN"))));
    assert_eq!(late.access_token(APPID).unwrap().expose(), "NEXT-TOKEN");
    assert_eq!(a.token_stats(APPID).unwrap().fetches, 1);
}
