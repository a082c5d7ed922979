//! Done when (issue 29): orders paid, shipped and refunded by buyers who never
//! tapped "allow" show their card's statuses in the sandbox, each once and in
//! order, with 4 worker processes forked from a master that loaded the
//! library on the SQLite store (EasySwoole), the pay callback retried by
//! another worker, payments WeChat cannot check yet, and a sandbox outage
//! while shipping. Phases are driven by the master over socket lines.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use fashop_notify::{ManualClock, Notifier};
use fashop_notify_sandbox::{Fault, Sandbox, SandboxOptions, DEMO_APPID, DEMO_SECRET};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde_json::{json, Value};

use crate::cards_send::{CARD_MAPPINGS, PAY_TIME};
use crate::store_suite::TempDir;

const WORKERS: usize = 4;
const ORDERS: usize = 8;
const SET: &str = "/wxa/set_user_notify";

fn tx(order: usize) -> String {
    format!("42000021872026112300000{order:05}")
}

fn buyer(order: usize) -> String {
    format!("oCardBuyerProc{order:010}")
}

fn payload(order: usize) -> String {
    json!({"touser": buyer(order), "fields": {
        "order_sn": format!("SN{order}"), "order_id": order, "refund_sn": format!("R{order}"),
        "transaction_id": tx(order), "order_amount": "128.50", "pay_time": PAY_TIME,
        "order_total_goods_num": 1,
        "order_goods": [{"title": "帆布包", "image": "https://img.example/1.png", "count": 1, "price": "128.50"}]}})
    .to_string()
}

/// Text lines over a socket between the master and a worker.
struct Line {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Line {
    fn new(stream: UnixStream) -> Line {
        Line {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, text: &str) {
        writeln!(self.writer, "{text}").unwrap();
    }

    fn recv(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).unwrap();
        s.trim_end().to_string()
    }
}

/// What worker `w` does in `phase` with the notifier it inherited.
fn work(n: &Notifier, clock: &ManualClock, w: usize, phase: &str) {
    let mine = (0..ORDERS).filter(|o| o % WORKERS == w);
    match phase {
        // Each order's pay callback, and its retry by the next worker.
        "pay" => {
            for o in (0..ORDERS).filter(|o| o % WORKERS == w || (o + 1) % WORKERS == w) {
                n.send(DEMO_APPID, "order_pay_success", &payload(o))
                    .result
                    .unwrap();
            }
        }
        "ship" => {
            for o in mine {
                let r = n.send(DEMO_APPID, "order_delivered", &payload(o));
                r.result.unwrap_or_else(|e| panic!("ship {o}: {e}"));
            }
        }
        "refund" => {
            for o in mine {
                n.send(DEMO_APPID, "order_refund_apply", &payload(o))
                    .result
                    .unwrap();
            }
        }
        // One flush at the time the master says: the workers' clocks agree,
        // as the clocks of one host's processes do.
        other => {
            let now = other
                .strip_prefix("flush ")
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(|| panic!("unknown phase {other}"));
            clock.set_secs(now);
            n.flush(Some(DEMO_APPID), 10).unwrap();
        }
    }
}

/// Forks worker `w`: it runs each phase the master names and answers "ok".
fn spawn(n: &Notifier, clock: &ManualClock, w: usize) -> (Pid, Line) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    // SAFETY: the child runs only this test's code on this thread and ends
    // with `_exit`; the sandbox's threads hold no lock the child takes (it
    // reaches the sandbox over HTTP only), and the library is fork-safe.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(mine);
            let mut line = Line::new(theirs);
            let ok = std::panic::catch_unwind(AssertUnwindSafe(|| loop {
                let phase = line.recv();
                if phase.is_empty() || phase == "exit" {
                    return;
                }
                work(n, clock, w, &phase);
                line.send("ok");
            }))
            .is_ok();
            // SAFETY: ends the child at once, without the harness's exit handlers.
            unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => (child, Line::new(mine)),
    }
}

/// Runs `phase` in every worker at once and waits for all of them.
fn phase(workers: &mut [(Pid, Line)], name: &str) {
    for (_, line) in workers.iter_mut() {
        line.send(name);
    }
    for (pid, line) in workers.iter_mut() {
        assert_eq!(line.recv(), "ok", "worker {pid} failed in phase {name}");
    }
}

#[test]
fn paid_shipped_refunded_once_in_order_across_forked_workers_on_sqlite() {
    let sb = Sandbox::start_with(SandboxOptions {
        clock_start: Some(PAY_TIME),
        ..SandboxOptions::default()
    });
    for o in 0..ORDERS {
        sb.seed_user(DEMO_APPID, &buyer(o));
        // Half the payments WeChat cannot check for a minute.
        let delay = if o % 2 == 0 { 0 } else { 60 };
        sb.record_payment(DEMO_APPID, &tx(o), &buyer(o), 12850, PAY_TIME, delay);
    }
    let dir = TempDir::new("cards-processes");
    let clock = Arc::new(ManualClock::at(PAY_TIME));
    let n = Notifier::with_clock(clock.clone());
    n.configure(&json!({"store": format!("sqlite:{}", dir.file("notify.db")), "api_base": sb.url(), "max_retries": 1}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, CARD_MAPPINGS).unwrap();
    // The master used the store before forking, as EasySwoole's does.
    n.outbox_stats(None).unwrap();
    let mut workers: Vec<(Pid, Line)> = (0..WORKERS).map(|w| spawn(&n, &clock, w)).collect();
    phase(&mut workers, "pay");
    // WeChat is down for the first shipping requests.
    sb.inject(Fault::on(SET).http_status(503).count(6));
    phase(&mut workers, "ship");
    phase(&mut workers, "refund");
    sb.advance_clock(120);
    let mut now = PAY_TIME;
    for _ in 0..40 {
        now += 120;
        phase(&mut workers, &format!("flush {now}"));
        let stats: Value =
            serde_json::from_str(&n.outbox_stats(Some(DEMO_APPID)).unwrap()).unwrap();
        if stats["pending"] == 0 {
            break;
        }
    }
    for (pid, mut line) in workers {
        line.send("exit");
        assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
    }
    for o in 0..ORDERS {
        assert_eq!(
            sb.card_statuses(DEMO_APPID, &tx(o)),
            vec![1, 4, 6],
            "order {o}"
        );
    }
    let stats: Value = serde_json::from_str(&n.outbox_stats(Some(DEMO_APPID)).unwrap()).unwrap();
    assert_eq!(stats["dead"], 0, "{stats}");
    let counters = sb.counters();
    assert_eq!(
        counters.http_errors.get(&503),
        Some(&6),
        "the outage happened"
    );
    // Payments not checkable yet were answered "notify_code not exist".
    assert!(
        counters.errors.get(&85437).copied().unwrap_or(0) >= 1,
        "{counters:?}"
    );
    let card: Value = serde_json::from_str(
        &n.card_status(DEMO_APPID, &json!({"transaction_id": tx(1)}).to_string())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(card["statuses"], json!([1, 4, 6]), "{card}");
    assert_eq!(card["pending"], Value::Null);
}
