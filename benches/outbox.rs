//! Enqueue in the pay callback: validate, render and keep the message durably
//! (target on SQLite: ≤ 50 µs each), and the same on the memory store.
//! Measured twice: wall time, and the thread's own CPU time, which stays
//! meaningful on a machine busy with other work (SQLite runs in this thread;
//! with WAL and `synchronous = NORMAL` a commit does not wait for the disk).

use std::cell::Cell;

use criterion::measurement::{Measurement, WallTime};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, SamplingMode};
use fashop_notify::Notifier;

mod cpu_time;
#[path = "../tests/redis_server/mod.rs"]
mod redis_server;

use cpu_time::ThreadCpu;

const APPID: &str = "wxbench000000001";

fn payload(order_sn: u64) -> String {
    format!(
        r#"{{"touser":"oBench_user_openid_0000000001","fields":{{"order_sn":"2026112{order_sn:09}","order_amount":"128.50","order_total_goods_name":"法式碎花连衣裙 等2件","order_total_goods_num":2,"pay_time":1795354200,"order_id":10086}}}}"#
    )
}

fn notifier(store: &str) -> Notifier {
    let n = Notifier::new();
    n.configure(&format!(r#"{{"store":"{store}"}}"#)).unwrap();
    n.register_app(&format!(r#"{{"appid":"{APPID}","secret":"bench-secret"}}"#))
        .unwrap();
    n.load_mappings(APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    n
}

fn enqueue<M: Measurement>(c: &mut Criterion<M>, group_name: &str, sampling: SamplingMode) {
    let dir = std::env::temp_dir().join(format!(
        "fashop-outbox-bench-{}-{group_name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite:{}", dir.join("notify.db").display());
    // Redis: a local server, so the figure is the script and one round trip.
    let server = redis_server::RedisServer::start();
    let redis = server.spec("bench");
    let mut group = c.benchmark_group(group_name);
    group.sampling_mode(sampling);
    for (name, store) in [
        ("sqlite", sqlite.as_str()),
        ("memory", "memory"),
        ("redis", redis.as_str()),
    ] {
        let n = notifier(store);
        let next = Cell::new(0u64);
        // A bench that measures an error would measure the wrong thing.
        n.enqueue(APPID, "order_pay_success", &payload(u64::MAX / 2))
            .unwrap();
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    next.set(next.get() + 1);
                    payload(next.get())
                },
                |p| n.enqueue(black_box(APPID), "order_pay_success", black_box(&p)),
                BatchSize::SmallInput,
            )
        });
        // The pay callback called again for the same order: found, not added.
        let again = payload(1);
        group.bench_function(format!("{name}/duplicate"), |b| {
            b.iter(|| n.enqueue(black_box(APPID), "order_pay_success", black_box(&again)))
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn enqueue_wall(c: &mut Criterion<WallTime>) {
    enqueue(c, "enqueue", SamplingMode::Auto);
}

fn enqueue_cpu(c: &mut Criterion<ThreadCpu>) {
    enqueue(c, "enqueue_cpu", SamplingMode::Flat);
}

criterion_group!(wall, enqueue_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu).sample_size(20);
    targets = enqueue_cpu
}
criterion_main!(wall, cpu);
