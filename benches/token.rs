//! Access token and call overhead. Targets: a cached `access_token` ≤ 1 µs;
//! `call_api` through the in-memory transport (token lookup, URL, JSON answer
//! parsed) ≤ 20 µs, so the library adds nothing noticeable to a WeChat round trip.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fashop_notify::{HttpReply, ManualClock, MemoryTransport, Notifier};
use serde_json::json;

const APPID: &str = "wxbench000000001";

fn notifier() -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(1_767_225_600)));
    n.configure(r#"{"api_base":"http://wechat.bench"}"#)
        .unwrap();
    n.register_app(&format!(
        r#"{{"appid":"{APPID}","secret":"bench-secret-0001"}}"#
    ))
    .unwrap();
    let token = HttpReply::json(&json!({"access_token": "BENCH-TOKEN", "expires_in": 7200}));
    let answer = HttpReply::json(&json!({
        "errcode": 0,
        "errmsg": "ok",
        "data": [{"priTmplId": "tmpl-1", "title": "订单支付成功通知",
                  "content": "订单号:{{character_string1.DATA}}\n金额:{{amount2.DATA}}\n",
                  "example": "", "type": 2}]
    }));
    n.set_transport(MemoryTransport::new(move |req| {
        Ok(if req.route() == "/cgi-bin/stable_token" {
            token.clone()
        } else {
            answer.clone()
        })
    }));
    n
}

fn token(c: &mut Criterion) {
    let n = notifier();
    n.access_token(APPID).unwrap();
    c.bench_function("access_token_cached", |b| {
        b.iter(|| black_box(n.access_token(black_box(APPID)).unwrap()))
    });
    c.bench_function("call_api_in_memory", |b| {
        b.iter(|| {
            black_box(
                n.call_api(APPID, "GET", "/wxaapi/newtmpl/gettemplate", None)
                    .unwrap(),
            )
        })
    });
}

criterion_group!(benches, token);
criterion_main!(benches);
