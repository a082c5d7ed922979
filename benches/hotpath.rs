//! The in-process part of a send, no network: render + permit take + token
//! cache hit (target ≤ 3 µs per call), a whole send whose POST is answered in
//! memory, and the calls the PHP hot-path script makes through FFI
//! (`bench/php/hotpath.php`), so the two figures compare like with like.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use fashop_notify::{HttpReply, HttpRequest, Notifier, PermitRequest, Transport, TransportError};

const APPID: &str = "wxbench000000001";
const OPENID: &str = "oBench_hotpath_user_0001";
const TEMPLATE: &str = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";
const EVENT: &str = "order_pay_success";

/// Answers like WeChat without a socket and without keeping the requests
/// (the test transport records them, which would grow through millions of calls).
#[derive(Debug)]
struct FixedAnswer;

impl Transport for FixedAnswer {
    fn call(&self, req: &HttpRequest) -> Result<HttpReply, TransportError> {
        let body: &[u8] = if req.route().ends_with("stable_token") {
            br#"{"access_token":"hotpath-token-0000000000000000000000","expires_in":7200}"#
        } else {
            br#"{"errcode":0,"errmsg":"ok","msgid":1}"#
        };
        Ok(HttpReply {
            status: 200,
            body: body.to_vec(),
        })
    }
}

fn payload(i: u64) -> String {
    format!(
        r#"{{"touser":"{OPENID}","fields":{{"order_id":10086,"order_sn":"SNHOT{i:012}","order_amount":"128.50","order_total_goods_name":"法式碎花连衣裙 等2件","order_total_goods_num":2,"pay_time":1795354200}}}}"#
    )
}

fn notifier(store: &str) -> Notifier {
    let n = Notifier::new();
    // Bulk grants for one buyer: beyond the default cap per template.
    n.configure(&format!(
        r#"{{"store":"{store}","subscribe_cap_per_template":100000}}"#
    ))
    .unwrap();
    n.register_app(&format!(r#"{{"appid":"{APPID}","secret":"bench-secret"}}"#))
        .unwrap();
    n.load_mappings(APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    n.set_transport(Arc::new(FixedAnswer));
    // The token is cached from here on: every later call is a cache hit.
    n.access_token(APPID).unwrap();
    n
}

fn add_permits(n: &Notifier, mut count: u64) {
    while count > 0 {
        let c = count.min(1000);
        n.add_permit(
            APPID,
            &format!(r#"{{"openid":"{OPENID}","kind":"subscribe","template_id":"{TEMPLATE}","count":{c}}}"#),
        )
        .unwrap();
        count -= c;
    }
}

/// The most calls timed between two untimed preparations: a subscribe grant
/// holds at most 100,000 uses, and payloads are built beforehand.
const CHUNK: u64 = 50_000;

/// Times `iters` calls of `f(payload)`, running `prepare(n)` untimed before
/// each chunk of `n` calls.
fn timed(
    iters: u64,
    first: &mut u64,
    mut prepare: impl FnMut(u64),
    mut f: impl FnMut(&str),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        prepare(n);
        let payloads: Vec<String> = (*first..*first + n).map(payload).collect();
        *first += n;
        let t0 = Instant::now();
        for p in &payloads {
            f(p);
        }
        total += t0.elapsed();
        left -= n;
    }
    total
}

fn hotpath(c: &mut Criterion) {
    let mut group = c.benchmark_group("hotpath");

    // render + take + token hit; the use goes back so the stock never runs out.
    let n = notifier("memory");
    add_permits(&n, 1);
    let request = PermitRequest::subscribe(TEMPLATE);
    let mut next = 0;
    group.bench_function("render_take_token/memory", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                &mut next,
                |_| {},
                |p| {
                    let msg = n.render_message(APPID, EVENT, black_box(p)).unwrap();
                    let lease = n.ledger().take(APPID, &msg.touser, &request).unwrap();
                    let token = n.access_token(APPID).unwrap();
                    black_box(&token);
                    n.ledger().give_back(&lease.expect("a permit")).unwrap();
                },
            )
        })
    });

    // A whole send (idempotency claim, take, POST answered in memory, consume,
    // outcome JSON) with a fresh permit per message.
    for store in ["memory", "sqlite"] {
        let dir = std::env::temp_dir().join(format!("fashop-hotpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = match store {
            "memory" => "memory".to_string(),
            _ => format!("sqlite:{}", dir.join("ledger.db").display()),
        };
        let n = notifier(&spec);
        let mut next = 0;
        group.bench_function(format!("send_in_memory_answer/{store}"), |b| {
            b.iter_custom(|iters| {
                timed(
                    iters,
                    &mut next,
                    |count| add_permits(&n, count),
                    |p| {
                        let (status, outcome) = n.send_json(APPID, EVENT, black_box(p));
                        status.unwrap();
                        black_box(outcome);
                    },
                )
            })
        });
        drop(n);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // What bench/php/hotpath.php calls through FFI per iteration: a send that
    // finds no permit (render, idempotency claim and release, take, outcome
    // JSON) and an access_token cache hit.
    let n = notifier("memory");
    let mut next = 0;
    group.bench_function("ffi_equivalent/send_no_permit+access_token", |b| {
        b.iter_custom(|iters| {
            timed(
                iters,
                &mut next,
                |_| {},
                |p| {
                    let (status, outcome) = n.send_json(APPID, EVENT, black_box(p));
                    assert!(status.is_err());
                    black_box(outcome);
                    black_box(n.access_token(APPID).unwrap());
                },
            )
        })
    });
    group.finish();
}

criterion_group!(benches, hotpath);
criterion_main!(benches);
