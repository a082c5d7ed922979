//! Render of each seed event through the reference mapping (target: ≤ 2 µs each).
//! Measured twice: wall time, and the thread's own CPU time, which stays
//! meaningful on a machine busy with other work (wall time then counts the
//! time the benchmark waited for a core).

use criterion::measurement::{Measurement, WallTime};
use criterion::{black_box, criterion_group, criterion_main, Criterion, SamplingMode};
use fashop_notify::Notifier;

mod cpu_time;

use cpu_time::ThreadCpu;

const APPID: &str = "wxbench000000001";

fn payloads() -> Vec<(&'static str, String)> {
    let common = r#""touser":"oBench_user_openid_0000000001","idempotency_key":null"#;
    vec![
        (
            "order_pay_success",
            format!(
                r#"{{{common},"fields":{{"order_sn":"2026112221300001","order_amount":"128.50","order_total_goods_name":"法式碎花连衣裙 等2件","order_total_goods_num":2,"order_create_time":"2026-11-22 21:28:05","pay_time":1795354200,"order_id":10086}}}}"#
            ),
        ),
        (
            "order_pay_fail",
            format!(
                r#"{{{common},"fields":{{"order_sn":"2026112221300001","order_amount":128.5,"order_total_goods_name":"法式碎花连衣裙 等2件","order_create_time":"2026-11-22 21:28:05","fail_reason":"余额不足","order_id":10086}}}}"#
            ),
        ),
        (
            "order_cancel",
            format!(
                r#"{{{common},"fields":{{"order_sn":"2026112221300001","order_amount":"128.50","order_total_goods_name":"法式碎花连衣裙 等2件","order_create_time":"2026-11-22 21:28:05","order_cancel_time":"2026-11-22 22:05:00","order_id":10086}}}}"#
            ),
        ),
        (
            "order_refund_apply",
            format!(
                r#"{{{common},"fields":{{"order_sn":"2026112221300001","refund_sn":"R2026112300000001","refund_amount":"64.25","refund_reason":"尺码不合适","refund_apply_time":1795396500,"order_id":10086}}}}"#
            ),
        ),
        (
            "order_delivered",
            format!(
                r#"{{{common},"fields":{{"order_sn":"2026112221300001","order_total_goods_name":"法式碎花连衣裙 等2件","express_company":"顺丰速运","tracking_no":"SF1234567890123","delivery_time":"2026-11-23 10:00:00","order_id":10086}}}}"#
            ),
        ),
    ]
}

fn render_wall(c: &mut Criterion<WallTime>) {
    render(c, "render", SamplingMode::Auto);
}

fn render_cpu(c: &mut Criterion<ThreadCpu>) {
    render(c, "render_cpu", SamplingMode::Flat);
}

fn render<M: Measurement>(c: &mut Criterion<M>, group_name: &str, sampling: SamplingMode) {
    let n = Notifier::new();
    n.register_app(&format!(r#"{{"appid":"{APPID}","secret":"bench-secret"}}"#))
        .unwrap();
    n.load_mappings(APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    let mut group = c.benchmark_group(group_name);
    group.sampling_mode(sampling);
    for (event, payload) in payloads() {
        // A bench that renders an error would measure the wrong thing.
        n.render(APPID, event, &payload).unwrap();
        group.bench_function(event, |b| {
            b.iter(|| n.render(black_box(APPID), black_box(event), black_box(&payload)))
        });
    }
    group.bench_function("order_pay_success/render_message", |b| {
        let payload = &payloads()[0].1;
        b.iter(|| n.render_message(black_box(APPID), "order_pay_success", black_box(payload)))
    });
    group.finish();
}

criterion_group!(wall, render_wall);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpu).sample_size(20);
    targets = render_cpu
}
criterion_main!(wall, cpu);
