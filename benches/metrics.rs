//! Cost of recording on the send path: `record_send` on a series that exists
//! (the steady state), across a shop's spread of labels, and with a batch
//! guard; the cost of one scrape; and, for scale, one whole send against the
//! local WeChat sandbox (which records a send and a consumed permit).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fashop_notify::{Config, Metrics, MetricsFormat, Notifier};
use fashop_notify_sandbox::{Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::json;

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

    // With the SQLite store every recording outside a batch is one write
    // transaction; a send's recordings in one batch share it.
    let dir = std::env::temp_dir().join(format!("fashop-metrics-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let m = Metrics::new();
    m.configure(&Config {
        store: fashop_notify::StoreSpec::Sqlite(dir.join("bench.db").display().to_string()),
        ..Config::default()
    });
    c.bench_function("record_send+permit_consumed/in_batch_sqlite", |b| {
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
    let _ = std::fs::remove_dir_all(&dir);

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

const BUYER: &str = "oBuyer_metrics_bench";

fn send(c: &mut Criterion) {
    let sb = Sandbox::start();
    let n = Notifier::new();
    // Bulk grants for one buyer: beyond the default cap per template.
    n.configure(&json!({"api_base": sb.url(), "subscribe_cap_per_template": 100_000}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../examples/mappings.json")).unwrap();
    doc["events"]["order_pay_success"]["template_id"] = json!(TPL_PAY_SUCCESS);
    n.load_mappings(DEMO_APPID, &doc.to_string()).unwrap();
    let mut order = 0u64;
    c.bench_function("send/sandbox_memory_store", |b| {
        b.iter_custom(|iters| {
            // Grants for this batch, outside the timed part.
            sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, iters);
let mut left = iters;
            while left > 0 {
                // add_permit takes at most 1000 uses at once.
                let count = left.min(1000);
                let grant = json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": count});
                n.add_permit(DEMO_APPID, &grant.to_string()).unwrap();
                left -= count;
            }
            let payloads: Vec<String> = (0..iters)
                .map(|_| {
                    order += 1;
                    json!({"touser": BUYER, "fields": {
                        "order_id": 42, "order_sn": format!("SN{order}"), "order_amount": "12.34",
                        "order_total_goods_name": "羊毛围巾 x2", "order_total_goods_num": 2,
                        "order_create_time": 1795426200, "pay_time": 1795426265}})
                    .to_string()
                })
                .collect();
            let started = std::time::Instant::now();
            for p in &payloads {
                let report = n.send(DEMO_APPID, "order_pay_success", p);
                assert!(report.result.is_ok(), "{:?}", report.result);
            }
            started.elapsed()
        })
    });
}

criterion_group!(benches, record, send);
criterion_main!(benches);
