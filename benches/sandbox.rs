//! Throughput of the sandbox itself: subscribe sends over keep-alive
//! connections from several client threads. The sandbox must not be the
//! bottleneck of the performance suite (target: 20k sends/s on 2 cores).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fashop_notify_sandbox::{Sandbox, SandboxOptions, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::json;

/// A minimal keep-alive HTTP/1.1 client, so the figure is the server's and
/// not a client library's.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    line: String,
    body: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            reader: BufReader::new(s.try_clone().expect("clone")),
            writer: s,
            line: String::new(),
            body: Vec::new(),
        }
    }

    /// Sends `request` and reads the answer's body.
    fn exchange(&mut self, request: &[u8]) -> &[u8] {
        self.writer.write_all(request).expect("write");
        let mut len = 0;
        let mut first = true;
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line).expect("read");
            let l = self.line.trim_end();
            if first {
                assert!(l.starts_with("HTTP/1.1 200"), "status {l:?}");
                first = false;
                continue;
            }
            if l.is_empty() {
                break;
            }
            if let Some(v) = l
                .split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v)
            {
                len = v.trim().parse().expect("length");
            }
        }
        self.body.resize(len, 0);
        self.reader.read_exact(&mut self.body).expect("body");
        &self.body
    }
}

fn send_request(token: &str, openid: &str) -> Vec<u8> {
    let body = json!({
        "touser": openid,
        "template_id": TPL_PAY_SUCCESS,
        "page": "pages/order/detail?id=1",
        "data": {
            "character_string1": {"value": "SN202611230001"},
            "amount2": {"value": "¥199.00"},
            "thing3": {"value": "秋冬加厚连衣裙"},
            "time4": {"value": "2026-11-23 20:10"}
        },
        "miniprogram_state": "formal",
        "lang": "zh_CN"
    })
    .to_string();
    format!(
        "POST /cgi-bin/message/subscribe/send?access_token={token} HTTP/1.1\r\nHost: sandbox\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn token(addr: SocketAddr) -> String {
    let mut c = Conn::open(addr);
    let req = format!(
        "GET /cgi-bin/token?grant_type=client_credential&appid={DEMO_APPID}&secret={DEMO_SECRET} HTTP/1.1\r\nHost: sandbox\r\n\r\n"
    );
    let v: serde_json::Value = serde_json::from_slice(c.exchange(req.as_bytes())).expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

/// `iters` sends spread over `clients` threads, each on one keep-alive
/// connection; the time of the whole batch.
fn run(addr: SocketAddr, requests: &[Vec<u8>], iters: u64) -> Duration {
    let clients = requests.len() as u64;
    let start = Instant::now();
    std::thread::scope(|s| {
        for (i, req) in requests.iter().enumerate() {
            let n = iters / clients + u64::from((i as u64) < iters % clients);
            s.spawn(move || {
                let mut c = Conn::open(addr);
                for _ in 0..n {
                    let body = c.exchange(req);
                    assert!(
                        body.starts_with(br#"{"errcode":0,"#),
                        "{:?}",
                        String::from_utf8_lossy(body)
                    );
                }
            });
        }
    });
    start.elapsed()
}

fn subscribe_sends(c: &mut Criterion) {
    let workers = std::env::var("SANDBOX_BENCH_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(SandboxOptions::default().workers);
    let sb = Sandbox::start_with(SandboxOptions {
        workers,
        ..SandboxOptions::default()
    });
    let addr = sb.addr();
    let mut group = c.benchmark_group("sandbox");
    group.throughput(Throughput::Elements(1));
    for clients in [1usize, 4, 8] {
        let tok = token(addr);
        let requests: Vec<Vec<u8>> = (0..clients)
            .map(|i| {
                let openid = format!("o-bench-{i}");
                sb.grant(DEMO_APPID, &openid, TPL_PAY_SUCCESS, u64::MAX / 2);
                send_request(&tok, &openid)
            })
            .collect();
        group.bench_function(format!("subscribe_send_keepalive/{clients}_clients"), |b| {
            b.iter_custom(|iters| run(addr, &requests, iters))
        });
        if clients == 8 {
            cpu_per_send(addr, &requests);
        }
        // Deliveries are recorded; keep memory flat between runs.
        sb.reset();
    }
    group.finish();
}

/// CPU seconds this process has used (all threads), from /proc.
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// On a busy machine wall-clock throughput says little; CPU time per send
/// (sandbox and benchmark clients together, so an upper bound for the
/// sandbox) gives the capacity of two idle cores.
fn cpu_per_send(addr: SocketAddr, requests: &[Vec<u8>]) {
    let n = 100_000;
    let (Some(before), start) = (process_cpu_secs(), Instant::now()) else {
        return;
    };
    run(addr, requests, n);
    let wall = start.elapsed().as_secs_f64();
    let Some(after) = process_cpu_secs() else {
        return;
    };
    let per_send = (after - before) / n as f64;
    eprintln!(
        "sandbox: {n} sends on {} clients: {:.0} sends/s wall, {:.1} µs CPU per send \
         (sandbox + clients), so at least {:.0} sends/s on 2 idle cores",
        requests.len(),
        n as f64 / wall,
        per_send * 1e6,
        2.0 / per_send
    );
}

criterion_group!(benches, subscribe_sends);
criterion_main!(benches);
