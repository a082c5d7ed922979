//! Cost of recording on the send path: `record_send` on a series that exists
//! (the steady state), across a shop's spread of labels, and with a batch
//! guard; and the cost of one scrape.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fashop_notify::{Metrics, MetricsFormat};

const EVENTS: [&str; 5] = [
    "order_pay_success",
    "order_pay_fail",
    "order_cancel",
    "order_refund_apply",
    "order_delivered",
];

fn record(c: &mut Criterion) {
    let m = Metrics::new();
    c.bench_function("record_send/one_series", |b| {
        b.iter(|| {
            m.record_send(
                black_box("wx0000000000000001"),
                black_box("order_pay_success"),
                black_box("sent"),
                black_box(0),
                black_box(Duration::from_millis(80)),
            )
        })
    });

    let m = Metrics::new();
    let mut i = 0usize;
    c.bench_function("record_send/40_series", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let appid = if i.is_multiple_of(2) {
                "wx0000000000000001"
            } else {
                "wx0000000000000002"
            };
            let (status, errcode) = match i % 4 {
                0 => ("failed", 43101),
                1 => ("uncertain", 0),
                _ => ("sent", 0),
            };
            m.record_send(
                appid,
                EVENTS[i % EVENTS.len()],
                status,
                errcode,
                Duration::from_micros((i as u64 * 7919) % 3_000_000),
            )
        })
    });

    let m = Metrics::new();
    c.bench_function("record_send+permit_consumed/in_batch", |b| {
        b.iter(|| {
            let _batch = m.batch();
            m.record_send(
                "wx0000000000000001",
                "order_delivered",
                "sent",
                0,
                Duration::from_millis(80),
            );
            m.record_permit_consumed("subscribe");
        })
    });

    let m = Metrics::new();
    for i in 0..200 {
        m.record_send(
            &format!("wx{:016}", i % 4),
            EVENTS[i % EVENTS.len()],
            "sent",
            (i % 3) as i64,
            Duration::from_millis(i as u64),
        );
    }
    c.bench_function("render/prometheus_60_series", |b| {
        b.iter(|| m.render(black_box(MetricsFormat::Prometheus)).unwrap())
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
