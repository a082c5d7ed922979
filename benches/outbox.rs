//! Enqueue in the pay callback: validate, render and keep the message durably
//! (target on SQLite: ≤ 50 µs each), and the same on the memory store.

use std::cell::Cell;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fashop_notify::Notifier;

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

fn enqueue(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("fashop-outbox-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite:{}", dir.join("notify.db").display());
    let mut group = c.benchmark_group("enqueue");
    for (name, store) in [("sqlite", sqlite.as_str()), ("memory", "memory")] {
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
                criterion::BatchSize::SmallInput,
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

criterion_group!(benches, enqueue);
criterion_main!(benches);
