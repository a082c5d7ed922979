//! The permit ledger's figures: add + take in memory (target ≤ 1 µs), takes per
//! second on SQLite (target ≥ 20,000/s) and on a local Redis (started here from
//! Debian's `redis-server`), and the memory a
//! permit costs in the memory store (target ≤ 150 bytes, measured with a
//! counting allocator and printed before the timings).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, Criterion};

#[path = "../tests/redis_server/mod.rs"]
mod redis_server;
use fashop_notify::{ClaimedTake, Notifier, PermitRequest};

/// Counts the bytes the program holds, to price a permit.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const APP: &str = "wxbench000000001";

fn notifier(store: &str) -> Notifier {
    let n = Notifier::new();
    // Bulk grants for one buyer: beyond the default cap per template.
    n.configure(&format!(
        r#"{{"store":"{store}","subscribe_cap_per_template":100000}}"#
    ))
    .unwrap();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"bench-secret"}}"#))
        .unwrap();
    n
}

/// A WeChat-shaped openid (28 characters) and form_id (32).
fn openid(u: usize) -> String {
    format!("oBench{u:022}")
}

fn form_id(u: usize, i: usize) -> String {
    format!("{u:016x}{i:016x}")
}

/// Bytes held per permit after adding `users` × `per_user` form_ids.
fn bytes_per_form_id(users: usize, per_user: usize) -> f64 {
    let n = notifier("memory");
    let before = HELD.load(Ordering::SeqCst);
    for u in 0..users {
        let o = openid(u);
        for i in 0..per_user {
            n.add_permit(
                APP,
                &format!(
                    r#"{{"openid":"{o}","kind":"form_id","value":"{}"}}"#,
                    form_id(u, i)
                ),
            )
            .unwrap();
        }
    }
    let held = HELD.load(Ordering::SeqCst) - before;
    let stats = n.ledger_stats(APP, None).unwrap();
    assert!(stats.contains(&format!(r#""form_id":{{"permits":{}"#, users * per_user)));
    held as f64 / (users * per_user) as f64
}

fn bytes_per_grant(users: usize, templates: usize) -> f64 {
    let n = notifier("memory");
    let before = HELD.load(Ordering::SeqCst);
    for u in 0..users {
        let o = openid(u);
        for t in 0..templates {
            n.add_permit(
                APP,
                &format!(r#"{{"openid":"{o}","kind":"subscribe","template_id":"tmpl-{t:02}-AbCdEfGhIjKlMnOpQrStUvWxYz0123456"}}"#),
            )
            .unwrap();
        }
    }
    (HELD.load(Ordering::SeqCst) - before) as f64 / (users * templates) as f64
}

fn report_memory() {
    println!("memory store, bytes held per permit (target <= 150):");
    for (users, per_user) in [(10_000, 10), (2_000, 50), (100_000, 1)] {
        println!(
            "  form_id, {users} users x {per_user}: {:.0} bytes",
            bytes_per_form_id(users, per_user)
        );
    }
    println!(
        "  subscribe, 10000 users x 4 templates: {:.0} bytes",
        bytes_per_grant(10_000, 4)
    );
}

fn memory(c: &mut Criterion) {
    let n = notifier("memory");
    let legacy = PermitRequest::legacy(None);
    let o = openid(1);
    let mut i = 0usize;
    let mut group = c.benchmark_group("ledger/memory");
    let docs: Vec<String> = (0..4096)
        .map(|k| {
            format!(
                r#"{{"openid":"{o}","kind":"form_id","value":"{}"}}"#,
                form_id(1, k)
            )
        })
        .collect();
    group.bench_function("add_permit+take+consume", |b| {
        b.iter(|| {
            i = (i + 1) % docs.len();
            n.add_permit(APP, black_box(&docs[i])).unwrap();
            let lease = n.ledger().take(APP, &o, &legacy).unwrap().unwrap();
            n.ledger().consume(&lease).unwrap()
        })
    });
    n.add_permit(
        APP,
        &format!(r#"{{"openid":"{o}","kind":"subscribe","template_id":"T"}}"#),
    )
    .unwrap();
    let t = PermitRequest::subscribe("T");
    group.bench_function("take+give_back", |b| {
        b.iter(|| {
            let lease = n.ledger().take(APP, black_box(&o), &t).unwrap().unwrap();
            n.ledger().give_back(&lease).unwrap()
        })
    });
    group.finish();
}

/// Times `iters` take + consume pairs on a store holding enough subscribe grants.
fn takes(n: &Notifier, users: usize, iters: u64) -> Duration {
    timed_takes(n, users, iters).0
}

/// Wall time and this thread's CPU time (ns) of `iters` take + consume pairs.
fn timed_takes(n: &Notifier, users: usize, iters: u64) -> (Duration, u64) {
    grant(n, users, iters);
    let t = PermitRequest::subscribe("T");
    let openids: Vec<String> = (0..users).map(openid).collect();
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    for k in 0..iters as usize {
        let lease = n
            .ledger()
            .take(APP, &openids[k % users], &t)
            .unwrap()
            .unwrap();
        n.ledger().consume(&lease).unwrap();
    }
    (start.elapsed(), thread_cpu_ns() - cpu)
}

/// The same for a send's two transactions as the notifier writes them: the
/// message's key claimed with a use leased, then the use spent with the
/// outcome recorded for a repeated send (keys and outcome sized like a
/// shop's).
fn timed_sends(n: &Notifier, users: usize, iters: u64) -> (Duration, u64) {
    grant(n, users, iters);
    let t = PermitRequest::subscribe("T");
    let openids: Vec<String> = (0..users).map(openid).collect();
    let outcome = format!(r#"{{"status":"sent","errcode":0,"msgid":"{:0>260}"}}"#, 7);
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    for k in 0..iters as usize {
        let o = &openids[k % users];
        let key = format!("{APP}:order_pay_success:{o}:2026112{k:09}");
        let lease = match n.ledger().claim_and_take(&key, 30_000, APP, o, &t) {
            Ok(ClaimedTake::Fresh(Ok(Some(lease)))) => lease,
            other => panic!("no lease: {other:?}"),
        };
        let done = n
            .ledger()
            .consume_and_complete(&lease, &key, &mut |_| outcome.clone());
        done.spent.unwrap();
        done.recorded.unwrap();
    }
    (start.elapsed(), thread_cpu_ns() - cpu)
}

/// Enough subscribe grants of template T for `iters` uses over `users` buyers.
fn grant(n: &Notifier, users: usize, iters: u64) {
    let per_user = (iters as usize).div_ceil(users);
    for u in 0..users {
        let mut left = per_user;
        while left > 0 {
            let count = left.min(1000);
            n.add_permit(
                APP,
                &format!(
                    r#"{{"openid":"{}","kind":"subscribe","template_id":"T","count":{count}}}"#,
                    openid(u)
                ),
            )
            .unwrap();
            left -= count;
        }
    }
}

fn sqlite(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("fashop-notify-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = notifier(&format!("sqlite:{}", dir.join("ledger.db").display()));
    let mut group = c.benchmark_group("ledger/sqlite");
    group.bench_function("take+consume", |b| {
        b.iter_custom(|iters| takes(&n, 100, iters))
    });
    group.finish();
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}

fn redis(c: &mut Criterion) {
    let server = redis_server::RedisServer::start();
    let n = notifier(&server.spec("bench"));
    let mut group = c.benchmark_group("ledger/redis");
    group.bench_function("take+consume", |b| {
        b.iter_custom(|iters| takes(&n, 100, iters))
    });
    group.finish();
}

criterion_group!(benches, memory, sqlite, redis);

/// This thread's CPU time so far (ns), from the scheduler: a figure that a busy
/// machine does not inflate the way it inflates wall time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time per operation over `n` runs of `op`.
fn cpu_per_op(n: u32, mut op: impl FnMut(u32)) -> f64 {
    let start = thread_cpu_ns();
    for i in 0..n {
        op(i);
    }
    (thread_cpu_ns() - start) as f64 / f64::from(n)
}

fn report_cpu() {
    println!("CPU time per operation (this process's thread only):");
    let n = notifier("memory");
    let o = openid(1);
    let legacy = PermitRequest::legacy(None);
    let docs: Vec<String> = (0..200_000)
        .map(|k| {
            format!(
                r#"{{"openid":"{o}","kind":"form_id","value":"{}"}}"#,
                form_id(2, k)
            )
        })
        .collect();
    let ns = cpu_per_op(200_000, |i| {
        n.add_permit(APP, &docs[i as usize]).unwrap();
        let lease = n.ledger().take(APP, &o, &legacy).unwrap().unwrap();
        n.ledger().consume(&lease).unwrap();
    });
    println!(
        "  memory add_permit+take+consume: {:.0} ns (target add + take <= 1000 ns)",
        ns
    );
    n.add_permit(
        APP,
        &format!(r#"{{"openid":"{o}","kind":"subscribe","template_id":"T"}}"#),
    )
    .unwrap();
    let t = PermitRequest::subscribe("T");
    let ns = cpu_per_op(200_000, |_| {
        let lease = n.ledger().take(APP, &o, &t).unwrap().unwrap();
        n.ledger().give_back(&lease).unwrap();
    });
    println!("  memory take+give_back: {ns:.0} ns");

    let dir = std::env::temp_dir().join(format!("fashop-notify-bench-cpu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let n = notifier(&format!("sqlite:{}", dir.join("ledger.db").display()));
    let (wall, cpu) = timed_takes(&n, 100, 20_000);
    println!(
        "  sqlite take+consume: {:.0} ns CPU, {:.0} ns wall; {:.0} pairs/s by CPU time (target >= 20000 takes/s)",
        cpu as f64 / 20_000.0,
        wall.as_nanos() as f64 / 20_000.0,
        20_000.0 * 1e9 / cpu as f64
    );
    let (wall, cpu) = timed_sends(&n, 100, 20_000);
    println!(
        "  sqlite claim_and_take+consume_and_complete (a send's two transactions): {:.0} ns CPU, {:.0} ns wall",
        cpu as f64 / 20_000.0,
        wall.as_nanos() as f64 / 20_000.0,
    );
    drop(n);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    report_memory();
    report_cpu();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
