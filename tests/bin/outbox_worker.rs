//! A flushing worker process for the outbox's multi-process tests, as a PHP
//! task worker or cron would run one against the shared SQLite store.
//!
//! `fashop-notify-outbox-worker STORE API_BASE NOW_SECS JOB`
//! - `drain`: flush until nothing is left to claim (20 messages per flush, 8
//!   in flight), printing `STATUS ID` per message
//! - `one`: flush one message (the tests kill it while it is under way)

use std::io::Write;
use std::process::ExitCode;

#[path = "../outbox_support/mod.rs"]
mod outbox_support;

fn run(args: &[String]) -> fashop_notify::Result<()> {
    let [store, api_base, now, job] = args else {
        return Err(fashop_notify::Error::invalid(
            "usage: STORE API_BASE NOW_SECS JOB",
        ));
    };
    let now: i64 = now
        .parse()
        .map_err(|_| fashop_notify::Error::invalid("NOW_SECS must be a number"))?;
    let (n, _clock) = outbox_support::notifier(store, api_base, now);
    let out = std::io::stdout();
    let mut out = out.lock();
    let max = match job.as_str() {
        // More than the default 8 lanes: a drain has 8 requests in flight.
        "drain" => 20,
        "one" => 1,
        _ => return Err(fashop_notify::Error::invalid(format!("unknown job {job}"))),
    };
    loop {
        let report = n.flush_report(None, max)?;
        for m in &report.messages {
            writeln!(out, "{} {}", m.status, m.id).ok();
        }
        out.flush().ok();
        if report.messages.is_empty() || job == "one" {
            return Ok(());
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("outbox worker: {e}");
            ExitCode::FAILURE
        }
    }
}
