//! The store test suite, written once and run against every store: each store's
//! test file calls `store_suite!` with a function that opens a fresh, empty
//! store and names it as `configure` would.
#![allow(dead_code)]

use std::sync::{Arc, Barrier};

use fashop_notify::{ClaimedTake, KeyClaim, Kind, ManualClock, Notifier, PermitRequest};
use serde_json::Value;

pub const NOW: i64 = 1_700_000_000;
pub const APP: &str = "wxsuite0000000001";
pub const DAY: i64 = 24 * 3600;

/// A notifier on a fresh store, with a clock the test moves.
pub struct Fixture {
    pub n: Notifier,
    pub clock: Arc<ManualClock>,
    /// Keeps whatever backs the store (a temporary directory, a server) alive.
    pub keep: Box<dyn std::any::Any>,
}

impl Fixture {
    pub fn new(store_spec: &str, keep: Box<dyn std::any::Any>) -> Fixture {
        let clock = Arc::new(ManualClock::at(NOW));
        let n = Notifier::with_clock(clock.clone());
        n.configure(&format!(r#"{{"store":{}}}"#, Value::from(store_spec)))
            .unwrap_or_else(|e| panic!("configure {store_spec}: {e}"));
        n.register_app(&format!(r#"{{"appid":"{APP}","secret":"suite-secret"}}"#))
            .unwrap();
        Fixture { n, clock, keep }
    }

    pub fn add(&self, json: &str) {
        self.n
            .add_permit(APP, json)
            .unwrap_or_else(|e| panic!("add_permit {json}: {e}"));
    }

    pub fn form_id(&self, openid: &str, value: &str, created_at: i64) {
        self.add(&format!(
            r#"{{"openid":"{openid}","kind":"form_id","value":"{value}","created_at":{created_at}}}"#
        ));
    }

    pub fn stats(&self, openid: Option<&str>) -> Value {
        serde_json::from_str(&self.n.ledger_stats(APP, openid).unwrap()).unwrap()
    }

    /// Takes and consumes; the value of the permit used, or None.
    pub fn spend(&self, openid: &str, req: &PermitRequest) -> Option<String> {
        let lease = self.n.ledger().take(APP, openid, req).unwrap()?;
        self.n.ledger().consume(&lease).unwrap();
        Some(lease.value)
    }
}

pub fn legacy(order_sn: Option<&str>) -> PermitRequest {
    PermitRequest::legacy(order_sn)
}

pub fn subscribe_grants_add_up_per_template(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1"}"#);
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T2"}"#);
    let s = f.stats(Some("o1"));
    assert_eq!(s["subscribe"]["templates"]["T1"], 3);
    assert_eq!(s["subscribe"]["templates"]["T2"], 1);
    assert_eq!(s["subscribe"]["uses"], 4);
    let t1 = PermitRequest::subscribe("T1");
    let lease = f.n.ledger().take(APP, "o1", &t1).unwrap().unwrap();
    assert_eq!(lease.kind, Kind::Subscribe);
    assert_eq!(lease.value, "T1");
    assert_eq!(lease.openid, "o1");
    let left = f.n.ledger().consume(&lease).unwrap();
    assert_eq!((left.kind, left.uses), (Kind::Subscribe, 2));
    assert!(f.spend("o1", &t1).is_some());
    assert!(f.spend("o1", &t1).is_some());
    assert_eq!(f.spend("o1", &t1), None, "three grants, three uses");
    assert!(f.spend("o1", &PermitRequest::subscribe("T3")).is_none());
    assert!(f.spend("o2", &PermitRequest::subscribe("T2")).is_none());
    // A subscribe grant never serves a legacy message, nor the other way.
    assert!(f.spend("o1", &legacy(None)).is_none());
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T2"], 1);
    // Grants do not expire with time.
    f.clock.advance_secs(30 * DAY);
    assert!(f.spend("o1", &PermitRequest::subscribe("T2")).is_some());
}

pub fn purge_by_age_removes_grants_not_accepted_again(f: Fixture) {
    let grant = |tpl: &str| {
        f.add(&format!(
            r#"{{"openid":"o1","kind":"subscribe","template_id":"{tpl}"}}"#
        ))
    };
    grant("OLD");
    grant("AGAIN");
    grant("LEASED");
    f.clock.advance_secs(100 * DAY);
    // Off by default: grants stay until used.
    assert_eq!(f.n.ledger().purge(APP).unwrap(), 0);
    // Accepted again: its age starts over.
    grant("AGAIN");
    let lease =
        f.n.ledger()
            .take(APP, "o1", &PermitRequest::subscribe("LEASED"))
            .unwrap()
            .unwrap();
    f.n.configure(r#"{"subscribe_max_age_days": 90}"#).unwrap();
    assert_eq!(f.n.ledger().purge(APP).unwrap(), 1);
    let templates = &f.stats(Some("o1"))["subscribe"]["templates"];
    assert!(templates.get("OLD").is_none(), "{templates}");
    assert_eq!(templates["AGAIN"], 2, "{templates}");
    // A grant with a use under way is left alone.
    f.n.ledger().give_back(&lease).unwrap();
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["LEASED"], 1);
    f.clock.advance_secs(91 * DAY);
    assert_eq!(f.n.ledger().purge(APP).unwrap(), 2);
    assert!(f
        .n
        .configure(r#"{"subscribe_max_age_days": 3651}"#)
        .unwrap_err()
        .to_string()
        .contains("subscribe_max_age_days must be between 0 and 3650"));
}

pub fn form_id_soonest_expiry_first_and_expires_at_the_exact_second(f: Fixture) {
    f.form_id("o1", "fid-new", NOW - 10);
    f.form_id("o1", "fid-old", NOW - 3 * DAY);
    f.form_id("o1", "fid-mid", NOW - DAY);
    assert_eq!(
        f.stats(Some("o1"))["soonest_expiry"],
        NOW - 3 * DAY + 7 * DAY
    );
    let req = legacy(None);
    assert_eq!(f.spend("o1", &req).as_deref(), Some("fid-old"));
    // fid-mid expires at NOW - DAY + 7 days: usable one second before, not at it.
    f.clock.set_secs(NOW - DAY + 7 * DAY - 1);
    f.clock.advance_ms(999);
    let lease = f.n.ledger().take(APP, "o1", &req).unwrap().unwrap();
    assert_eq!(lease.value, "fid-mid");
    f.n.ledger().give_back(&lease).unwrap();
    f.clock.advance_ms(1);
    let lease = f.n.ledger().take(APP, "o1", &req).unwrap().unwrap();
    assert_eq!(
        lease.value, "fid-new",
        "fid-mid expired at the exact second"
    );
    f.n.ledger().consume(&lease).unwrap();
    assert!(f.n.ledger().take(APP, "o1", &req).unwrap().is_none());
}

pub fn prepay_needs_payment_gives_three_uses_and_comes_first(f: Fixture) {
    f.form_id("o1", "fid-1", NOW - 6 * DAY);
    f.add(r#"{"openid":"o1","kind":"prepay_id","value":"wx-pre-1","order_sn":"SN1"}"#);
    let sn1 = legacy(Some("SN1"));
    // Unpaid: the form_id serves instead.
    let lease = f.n.ledger().take(APP, "o1", &sn1).unwrap().unwrap();
    assert_eq!(lease.value, "fid-1");
    f.n.ledger().give_back(&lease).unwrap();
    let s = f.stats(Some("o1"));
    assert_eq!(s["prepay_id"]["unpaid"], 1);
    assert_eq!(s["prepay_id"]["uses"], 0);
    // Added again, paid: now it is usable, three times, before the form_id.
    f.add(r#"{"openid":"o1","kind":"prepay_id","value":"wx-pre-1","order_sn":"SN1","paid":true}"#);
    // Added again without paid: stays paid.
    f.add(r#"{"openid":"o1","kind":"prepay_id","value":"wx-pre-1","order_sn":"SN1"}"#);
    assert_eq!(f.stats(Some("o1"))["prepay_id"]["uses"], 3);
    for left in [2, 1, 0] {
        let lease = f.n.ledger().take(APP, "o1", &sn1).unwrap().unwrap();
        assert_eq!(
            (lease.kind, lease.value.as_str()),
            (Kind::PrepayId, "wx-pre-1")
        );
        assert_eq!(lease.order_sn.as_deref(), Some("SN1"));
        assert_eq!(f.n.ledger().consume(&lease).unwrap().uses, left);
    }
    assert_eq!(f.spend("o1", &sn1).as_deref(), Some("fid-1"));
    assert_eq!(f.spend("o1", &sn1), None);
    // Another order's prepay_id is not used for this order.
    f.add(r#"{"openid":"o1","kind":"prepay_id","value":"wx-pre-2","order_sn":"SN2","paid":true}"#);
    assert_eq!(f.spend("o1", &sn1), None);
    assert_eq!(f.spend("o1", &legacy(None)), None);
    assert_eq!(
        f.spend("o1", &legacy(Some("SN2"))).as_deref(),
        Some("wx-pre-2")
    );
    // Prepay ids expire after 7 days like form_ids.
    f.clock.advance_secs(7 * DAY);
    assert_eq!(f.spend("o1", &legacy(Some("SN2"))), None);
}

pub fn duplicates_are_stored_once(f: Fixture) {
    f.form_id("o1", "fid-dup", NOW - 5);
    f.form_id("o1", "fid-dup", NOW - 5);
    f.form_id("o1", "fid-dup", NOW - 1);
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 1);
    assert!(f.spend("o1", &legacy(None)).is_some());
    assert!(f.spend("o1", &legacy(None)).is_none());
    for _ in 0..2 {
        f.add(r#"{"openid":"o1","kind":"prepay_id","value":"p","order_sn":"S","paid":true}"#);
    }
    assert_eq!(f.stats(Some("o1"))["prepay_id"]["uses"], 3);
}

pub fn give_back_and_discard(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":3}"#);
    let t = PermitRequest::subscribe("T");
    let a = f.n.ledger().take(APP, "o1", &t).unwrap().unwrap();
    let b = f.n.ledger().take(APP, "o1", &t).unwrap().unwrap();
    assert_ne!(a.id, b.id);
    let s = f.stats(Some("o1"));
    assert_eq!(s["subscribe"]["templates"]["T"], 1);
    assert_eq!(s["leased"], 2);
    f.n.ledger().give_back(&a).unwrap();
    // A second give_back of the same lease returns nothing more.
    f.n.ledger().give_back(&a).unwrap();
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], 2);
    f.n.ledger().consume(&b).unwrap();
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], 2);
    assert_eq!(f.stats(Some("o1"))["leased"], 0);

    f.add(r#"{"openid":"o2","kind":"prepay_id","value":"p2","order_sn":"S2","paid":true}"#);
    f.form_id("o2", "f2", NOW);
    let sn = legacy(Some("S2"));
    let lease = f.n.ledger().take(APP, "o2", &sn).unwrap().unwrap();
    assert_eq!(lease.value, "p2");
    // WeChat said the prepay_id is dead: its other two uses go too.
    f.n.ledger().discard(&lease).unwrap();
    assert_eq!(f.stats(Some("o2"))["prepay_id"]["uses"], 0);
    assert_eq!(f.spend("o2", &sn).as_deref(), Some("f2"));
}

pub fn leases_run_out_and_the_use_returns(f: Fixture) {
    f.form_id("o1", "f1", NOW);
    f.n.ledger().set_lease_ms(60_000);
    let req = legacy(None);
    let lease = f.n.ledger().take(APP, "o1", &req).unwrap().unwrap();
    assert_eq!(lease.expires_at_ms, NOW * 1000 + 60_000);
    f.clock.advance_ms(59_999);
    assert!(f.n.ledger().take(APP, "o1", &req).unwrap().is_none());
    f.clock.advance_ms(1);
    let again = f.n.ledger().take(APP, "o1", &req).unwrap().unwrap();
    assert_eq!(again.value, "f1");
    assert_ne!(again.id, lease.id);
    // The first holder's late settlements cannot return or spend a second use.
    f.n.ledger().give_back(&lease).unwrap();
    assert!(f.n.ledger().take(APP, "o1", &req).unwrap().is_none());
    f.n.ledger().consume(&again).unwrap();
    assert!(f.n.ledger().take(APP, "o1", &req).unwrap().is_none());
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 0);
}

pub fn a_late_consume_still_spends_the_use(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":2}"#);
    let t = PermitRequest::subscribe("T");
    let lease = f.n.ledger().take(APP, "o1", &t).unwrap().unwrap();
    f.clock.advance_ms(f.n.ledger().lease_ms());
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], 2);
    // The message went out after all: the use is spent even though the lease ran out.
    let left = f.n.ledger().consume(&lease).unwrap();
    assert_eq!(left.uses, 1);
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T"], 1);
}

pub fn stats_count_by_kind_and_app(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    f.add(r#"{"openid":"o2","kind":"subscribe","template_id":"T1"}"#);
    f.add(r#"{"openid":"o2","kind":"subscribe","template_id":"T2"}"#);
    f.form_id("o1", "f1", NOW - 2 * DAY);
    f.form_id("o2", "f2", NOW - DAY);
    f.form_id("o2", "f3", NOW - 6 * DAY - 100);
    f.add(r#"{"openid":"o1","kind":"prepay_id","value":"p1","order_sn":"S1","paid":true}"#);
    f.add(r#"{"openid":"o2","kind":"prepay_id","value":"p2","order_sn":"S2"}"#);
    let all = f.stats(None);
    assert_eq!(all["appid"], APP);
    assert_eq!(all["openid"], Value::Null);
    assert_eq!(all["subscribe"]["templates"]["T1"], 3);
    assert_eq!(all["subscribe"]["templates"]["T2"], 1);
    assert_eq!(all["subscribe"]["uses"], 4);
    assert_eq!(all["form_id"]["permits"], 3);
    assert_eq!(all["prepay_id"]["permits"], 1);
    assert_eq!(all["prepay_id"]["uses"], 3);
    assert_eq!(all["prepay_id"]["unpaid"], 1);
    assert_eq!(all["total_uses"], 4 + 3 + 3);
    assert_eq!(all["soonest_expiry"], NOW - 6 * DAY - 100 + 7 * DAY);
    let o1 = f.stats(Some("o1"));
    assert_eq!(o1["openid"], "o1");
    assert_eq!(o1["form_id"]["permits"], 1);
    assert_eq!(o1["soonest_expiry"], NOW - 2 * DAY + 7 * DAY);
    let nobody = f.stats(Some("nobody"));
    assert_eq!(nobody["total_uses"], 0);
    assert_eq!(nobody["soonest_expiry"], Value::Null);
    // Expired permits are not counted as stock.
    f.clock.advance_secs(DAY - 100);
    let all = f.stats(None);
    assert_eq!(all["form_id"]["permits"], 2);
    assert_eq!(all["expired"], 1);
}

pub fn purge_removes_only_expired(f: Fixture) {
    f.form_id("o1", "f-old", NOW - 6 * DAY);
    f.form_id("o1", "f-new", NOW);
    f.form_id("o2", "f-old2", NOW - 6 * DAY - 50);
    f.add(r#"{"openid":"o3","kind":"prepay_id","value":"p","order_sn":"S"}"#);
    f.add(r#"{"openid":"o3","kind":"subscribe","template_id":"T"}"#);
    let purge =
        |f: &Fixture| -> Value { serde_json::from_str(&f.n.ledger_purge(APP).unwrap()).unwrap() };
    assert_eq!(purge(&f)["removed"], 0);
    f.clock.advance_secs(DAY);
    let out = purge(&f);
    assert_eq!(out["appid"], APP);
    assert_eq!(out["removed"], 2);
    assert_eq!(purge(&f)["removed"], 0);
    let s = f.stats(None);
    assert_eq!(s["expired"], 0);
    assert_eq!(s["form_id"]["permits"], 1);
    assert_eq!(s["subscribe"]["uses"], 1);
    f.clock.advance_secs(6 * DAY);
    assert_eq!(purge(&f)["removed"], 2, "f-new and the unpaid prepay_id");
    assert_eq!(f.stats(None)["subscribe"]["uses"], 1);
}

pub fn the_oldest_form_ids_go_beyond_the_cap(f: Fixture) {
    for i in 0..55 {
        f.form_id("o1", &format!("f{i:02}"), NOW - 1000 + i);
    }
    f.form_id("o2", "other", NOW);
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 50);
    // f00..f04 were dropped: the first taken is f05.
    assert_eq!(f.spend("o1", &legacy(None)).as_deref(), Some("f05"));
    f.n.ledger().set_cap_per_openid(3);
    f.form_id("o1", "f-last", NOW);
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 3);
    assert_eq!(f.spend("o1", &legacy(None)).as_deref(), Some("f53"));
    assert_eq!(f.stats(Some("o2"))["form_id"]["permits"], 1);
}

pub fn apps_and_users_are_apart(f: Fixture) {
    f.n.register_app(r#"{"appid":"wxsuite0000000002","secret":"s2"}"#)
        .unwrap();
    f.n.add_permit(
        "wxsuite0000000002",
        r#"{"openid":"o1","kind":"subscribe","template_id":"T"}"#,
    )
    .unwrap();
    let t = PermitRequest::subscribe("T");
    assert!(f.n.ledger().take(APP, "o1", &t).unwrap().is_none());
    assert_eq!(f.stats(None)["subscribe"]["uses"], 0);
    assert!(f
        .n
        .ledger()
        .take("wxsuite0000000002", "o1", &t)
        .unwrap()
        .is_some());
}

pub fn idempotency_records(f: Fixture) {
    let l = f.n.ledger();
    assert_eq!(l.idempotency_claim("k1", 30_000).unwrap(), KeyClaim::Fresh);
    assert_eq!(
        l.idempotency_claim("k1", 30_000).unwrap(),
        KeyClaim::InFlight
    );
    // A claim whose holder vanished lapses.
    f.clock.advance_ms(30_000);
    assert_eq!(l.idempotency_claim("k1", 30_000).unwrap(), KeyClaim::Fresh);
    l.idempotency_complete("k1", r#"{"status":"sent","msgid":7}"#)
        .unwrap();
    assert_eq!(
        l.idempotency_claim("k1", 30_000).unwrap(),
        KeyClaim::Done(r#"{"status":"sent","msgid":7}"#.to_string())
    );
    // Release does not undo a finished send.
    l.idempotency_release("k1").unwrap();
    assert!(matches!(
        l.idempotency_claim("k1", 1).unwrap(),
        KeyClaim::Done(_)
    ));
    // Released claims can be claimed again at once.
    assert_eq!(l.idempotency_claim("k2", 30_000).unwrap(), KeyClaim::Fresh);
    l.idempotency_release("k2").unwrap();
    assert_eq!(l.idempotency_claim("k2", 30_000).unwrap(), KeyClaim::Fresh);
    // Outcomes are kept 7 days.
    f.clock.advance_secs(7 * DAY - 1);
    assert!(matches!(
        l.idempotency_claim("k1", 1).unwrap(),
        KeyClaim::Done(_)
    ));
    f.clock.advance_secs(1);
    assert_eq!(l.idempotency_claim("k1", 1).unwrap(), KeyClaim::Fresh);
    assert!(l.idempotency_claim("", 1).is_err());
}

pub fn concurrent_claims_of_one_key_give_one_fresh(f: Fixture) {
    let n = Arc::new(f.n);
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let n = n.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    n.ledger()
                        .idempotency_claim(&format!("race-{round}"), 60_000)
                        .unwrap()
                })
            })
            .collect();
        let claims: Vec<KeyClaim> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(claims.iter().filter(|c| **c == KeyClaim::Fresh).count(), 1);
        assert_eq!(
            claims.iter().filter(|c| **c == KeyClaim::InFlight).count(),
            7
        );
    }
}

pub fn concurrent_takes_never_share_a_use(f: Fixture) {
    // 100 uses of one template: more than the default cap per buyer.
    f.n.configure(r#"{"subscribe_cap_per_template": 1000}"#)
        .unwrap();
    for u in 0..4 {
        for i in 0..25 {
            f.form_id(&format!("o{u}"), &format!("f{u}-{i}"), NOW - i);
        }
    }
    f.add(r#"{"openid":"o0","kind":"subscribe","template_id":"T","count":100}"#);
    let n = Arc::new(f.n);
    let barrier = Arc::new(Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let n = n.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut got = Vec::new();
                for u in 0..4 {
                    let openid = format!("o{}", (u + t) % 4);
                    while let Some(l) = n.ledger().take(APP, &openid, &legacy(None)).unwrap() {
                        n.ledger().consume(&l).unwrap();
                        got.push(l.value);
                    }
                }
                let mut grants = 0;
                while let Some(l) = n
                    .ledger()
                    .take(APP, "o0", &PermitRequest::subscribe("T"))
                    .unwrap()
                {
                    n.ledger().consume(&l).unwrap();
                    grants += 1;
                }
                (got, grants)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut grants = 0;
    for h in handles {
        let (got, g) = h.join().unwrap();
        all.extend(got);
        grants += g;
    }
    let count = all.len();
    all.sort();
    all.dedup();
    assert_eq!(count, 100);
    assert_eq!(all.len(), 100, "a form_id was taken twice");
    assert_eq!(grants, 100);
}

pub fn a_claim_takes_its_permit_in_the_same_step(f: Fixture) {
    let l = f.n.ledger();
    let t1 = PermitRequest::subscribe("T1");
    let fresh_lease = |claimed: ClaimedTake| match claimed {
        ClaimedTake::Fresh(Ok(lease)) => lease,
        other => panic!("expected a fresh claim, got {other:?}"),
    };
    // No permit: no lease, and the claim is not left behind.
    assert_eq!(
        fresh_lease(l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap()),
        None
    );
    assert_eq!(l.idempotency_claim("k1", 30_000).unwrap(), KeyClaim::Fresh);
    l.idempotency_release("k1").unwrap();

    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    let lease =
        fresh_lease(l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap()).expect("a lease");
    assert_eq!((lease.kind, lease.value.as_str()), (Kind::Subscribe, "T1"));
    assert_eq!(f.stats(Some("o1"))["leased"], 1);
    // The same key while that send is under way takes nothing.
    assert!(matches!(
        l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap(),
        ClaimedTake::InFlight
    ));
    assert_eq!(f.stats(Some("o1"))["leased"], 1);
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 1);
    l.idempotency_complete("k1", r#"{"status":"sent"}"#)
        .unwrap();
    l.consume(&lease).unwrap();
    match l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap() {
        ClaimedTake::Done(outcome) => assert_eq!(outcome, r#"{"status":"sent"}"#),
        other => panic!("expected the recorded outcome, got {other:?}"),
    }
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 1);
    // A request the ledger refuses is the take's error; the claim goes.
    match l.claim_and_take("k2", 30_000, APP, "", &t1).unwrap() {
        ClaimedTake::Fresh(Err(e)) => assert!(e.to_string().contains("openid"), "{e}"),
        other => panic!("expected the take's error, got {other:?}"),
    }
    assert_eq!(l.idempotency_claim("k2", 30_000).unwrap(), KeyClaim::Fresh);
    assert!(l.claim_and_take("", 30_000, APP, "o1", &t1).is_err());
    // A claimed lease still runs out and its use returns.
    let lease =
        fresh_lease(l.claim_and_take("k3", 30_000, APP, "o1", &t1).unwrap()).expect("a lease");
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 0);
    f.clock.advance_ms(l.lease_ms());
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 1);
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    drop(lease);
}

pub fn a_spent_use_and_its_outcome_are_settled_together(f: Fixture) {
    let l = f.n.ledger();
    let t1 = PermitRequest::subscribe("T1");
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":3}"#);
    let ClaimedTake::Fresh(Ok(Some(lease))) =
        l.claim_and_take("k1", 30_000, APP, "o1", &t1).unwrap()
    else {
        panic!("expected a lease");
    };
    let mut seen = Vec::new();
    let done = l.consume_and_complete(&lease, "k1", &mut |left| {
        seen.push(left.map(|r| r.uses));
        format!(
            r#"{{"status":"sent","remaining":{}}}"#,
            left.map_or(0, |r| r.uses)
        )
    });
    assert_eq!(done.spent.unwrap().uses, 2);
    done.recorded.unwrap();
    assert_eq!(seen.last(), Some(&Some(2)));
    assert_eq!(done.outcome, r#"{"status":"sent","remaining":2}"#);
    assert_eq!(
        l.idempotency_claim("k1", 30_000).unwrap(),
        KeyClaim::Done(done.outcome.clone())
    );
    let s = f.stats(Some("o1"));
    assert_eq!(
        (s["subscribe"]["uses"].as_u64(), s["leased"].as_u64()),
        (Some(2), Some(0))
    );
    // A lease that ran out still spends its use exactly once.
    let lease = l.take(APP, "o1", &t1).unwrap().unwrap();
    f.clock.advance_ms(l.lease_ms());
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 2);
    let done = l.consume_and_complete(&lease, "k2", &mut |_| r#"{"status":"uncertain"}"#.into());
    assert_eq!(done.spent.unwrap().uses, 1);
    done.recorded.unwrap();
    assert_eq!(f.stats(Some("o1"))["subscribe"]["uses"], 1);
    assert!(matches!(
        l.idempotency_claim("k2", 1).unwrap(),
        KeyClaim::Done(_)
    ));
    // A bad key spends the use and says why nothing was recorded.
    let lease = l.take(APP, "o1", &t1).unwrap().unwrap();
    let done = l.consume_and_complete(&lease, "", &mut |_| String::new());
    assert_eq!(done.spent.unwrap().uses, 0);
    assert!(done.recorded.is_err());
}

/// Generates one `#[test]` per suite function; `$fresh` opens a fresh store.
#[macro_export]
macro_rules! store_suite {
    ($fresh:expr) => {
        $crate::store_suite!(@tests $fresh;
            subscribe_grants_add_up_per_template,
            form_id_soonest_expiry_first_and_expires_at_the_exact_second,
            prepay_needs_payment_gives_three_uses_and_comes_first,
            duplicates_are_stored_once,
            give_back_and_discard,
            leases_run_out_and_the_use_returns,
            a_late_consume_still_spends_the_use,
            stats_count_by_kind_and_app,
            purge_removes_only_expired,
            purge_by_age_removes_grants_not_accepted_again,
            the_oldest_form_ids_go_beyond_the_cap,
            apps_and_users_are_apart,
            idempotency_records,
            concurrent_claims_of_one_key_give_one_fresh,
            concurrent_takes_never_share_a_use,
            settling_twice_changes_nothing,
            a_claim_takes_its_permit_in_the_same_step,
            a_spent_use_and_its_outcome_are_settled_together,
            a_withdrawn_template_loses_its_grants,
        );
    };
    (@tests $fresh:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::store_suite::$name($fresh());
            }
        )*
    };
}

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir =
            std::env::temp_dir().join(format!("fashop-notify-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn settling_twice_changes_nothing(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":3}"#);
    let t = PermitRequest::subscribe("T");
    let l = f.n.ledger();
    let uses = |f: &Fixture| f.stats(Some("o1"))["subscribe"]["templates"]["T"].clone();
    let a = l.take(APP, "o1", &t).unwrap().unwrap();
    assert_eq!(l.consume(&a).unwrap().uses, 2);
    assert_eq!(
        l.consume(&a).unwrap().uses,
        2,
        "a repeated consume spends nothing more"
    );
    l.give_back(&a).unwrap();
    assert_eq!(uses(&f), 2, "a give_back after the consume returns nothing");
    let b = l.take(APP, "o1", &t).unwrap().unwrap();
    l.give_back(&b).unwrap();
    l.give_back(&b).unwrap();
    l.consume(&b).unwrap();
    assert_eq!(uses(&f), 2, "a consume after the give_back spends nothing");
    // Ran out, returned, then consumed late, twice: spent once.
    let c = l.take(APP, "o1", &t).unwrap().unwrap();
    f.clock.advance_ms(l.lease_ms());
    assert_eq!(uses(&f), 2);
    assert_eq!(l.consume(&c).unwrap().uses, 1);
    assert_eq!(l.consume(&c).unwrap().uses, 1);
    assert_eq!(uses(&f), 1);
}

pub fn a_withdrawn_template_loses_its_grants(f: Fixture) {
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":3}"#);
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"U"}"#);
    f.add(r#"{"openid":"o2","kind":"subscribe","template_id":"T"}"#);
    f.form_id("o1", "fid-1", NOW - 10);
    let t = PermitRequest::subscribe("T");
    let l = f.n.ledger();
    let leased = l.take(APP, "o1", &t).unwrap().unwrap();
    assert_eq!(
        l.drop_grants(APP, "o1", "T").unwrap(),
        2,
        "the unleased uses"
    );
    assert!(l.take(APP, "o1", &t).unwrap().is_none());
    // The lease in flight settles against nothing: no use comes back.
    l.give_back(&leased).unwrap();
    assert!(l.take(APP, "o1", &t).unwrap().is_none());
    let s = f.stats(Some("o1"));
    assert_eq!(s["subscribe"]["templates"].get("T"), None);
    assert_eq!(s["subscribe"]["templates"]["U"], 1);
    assert_eq!(s["form_id"]["permits"], 1);
    assert_eq!(s["leased"], 0);
    assert_eq!(
        f.stats(Some("o2"))["subscribe"]["templates"]["T"],
        1,
        "other buyers keep theirs"
    );
    assert_eq!(
        l.drop_grants(APP, "o1", "T").unwrap(),
        0,
        "twice drops nothing more"
    );
    assert_eq!(l.drop_grants(APP, "o9", "T").unwrap(), 0);
    assert!(l.drop_grants(APP, "o1", "").is_err());
    // A new accept grants again.
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T"}"#);
    assert!(f.spend("o1", &t).is_some());
}
