//! A worker process for the ledger's multi-process tests: it opens the store it
//! is given, as a separate PHP worker would, and does one job.
//!
//! `fashop-notify-ledger-worker STORE NOW_SECS JOB ARGS…`
//! - `drain USERS TAKES`: take and consume up to TAKES uses of form_ids from
//!   users `u0`…`u{USERS-1}`, printing each form_id taken
//! - `take-and-wait OPENID`: take one use, print it, then wait to be killed
//! - `add PERMIT_JSON` / `stats [OPENID]`

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::Arc;

use fashop_notify::{ManualClock, Notifier, PermitRequest};

pub const APP: &str = "wxworker000000001";

fn run(args: &[String]) -> fashop_notify::Result<()> {
    let [store, now, job, rest @ ..] = args else {
        return Err(fashop_notify::Error::invalid(
            "usage: STORE NOW_SECS JOB ARGS…",
        ));
    };
    let now: i64 = now
        .parse()
        .map_err(|_| fashop_notify::Error::invalid("NOW_SECS must be a number"))?;
    let n = Notifier::with_clock(Arc::new(ManualClock::at(now)));
    n.configure(&serde_json::json!({ "store": store }).to_string())?;
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"worker-secret"}}"#))?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let legacy = PermitRequest::legacy(None);
    match (job.as_str(), rest) {
        ("drain", [users, takes]) => {
            let users: usize = users.parse().unwrap_or(0);
            let takes: usize = takes.parse().unwrap_or(0);
            let mut empty = vec![false; users];
            let mut taken = 0;
            let mut u = 0;
            while taken < takes && empty.iter().any(|e| !e) {
                if !empty[u] {
                    match n.ledger().take(APP, &format!("u{u}"), &legacy)? {
                        Some(lease) => {
                            n.ledger().consume(&lease)?;
                            writeln!(out, "{}", lease.value).ok();
                            taken += 1;
                            continue;
                        }
                        None => empty[u] = true,
                    }
                }
                u = (u + 1) % users;
            }
        }
        ("take-and-wait", [openid]) => {
            let lease = n.ledger().take(APP, openid, &legacy)?;
            let value = lease.map(|l| l.value).unwrap_or_default();
            writeln!(out, "{value}").ok();
            out.flush().ok();
            // Killed here, between take and consume.
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).ok();
            return Err(fashop_notify::Error::internal("was not killed"));
        }
        ("add", [json]) => n.add_permit(APP, json)?,
        ("stats", []) => writeln!(out, "{}", n.ledger_stats(APP, None)?).unwrap_or(()),
        ("stats", [openid]) => {
            writeln!(out, "{}", n.ledger_stats(APP, Some(openid))?).unwrap_or(())
        }
        _ => {
            return Err(fashop_notify::Error::invalid(format!(
                "unknown job {job} {rest:?}"
            )))
        }
    }
    out.flush().ok();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ledger worker: {e}");
            ExitCode::FAILURE
        }
    }
}
