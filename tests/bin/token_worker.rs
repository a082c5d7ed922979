//! Plays one FaShop worker process for the multi-process token test: its own
//! notifier with a manual clock, driven line by line on stdin so that the test
//! moves every process's clock together with the sandbox's.
//!
//! Usage: fashop-notify-token-worker --api-base URL --appid ID --secret S
//!        --mode stable|classic --clock-start UNIX_SECS [--store SPEC]
//! Commands (one per line, one answer line each):
//!   advance SECS  -> `ok`
//!   call          -> `ok TOKEN_HASH` or `err STATUS MESSAGE` (GET /wxaapi/newtmpl/getcategory)
//!   stats         -> `stats FETCHES RECOVERED ADOPTED`

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{BufRead, Write};
use std::sync::Arc;

use fashop_notify::{Clock, Error, ManualClock, Notifier};

/// The test's clock for the time of day, with a real pause for `sleep_ms`:
/// a worker waiting for another process's token fetch (shared store) must
/// give that process time, not jump its own clock ahead of the others.
#[derive(Debug)]
struct WorkerClock(Arc<ManualClock>);

impl Clock for WorkerClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }

    fn sleep_ms(&self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

fn arg(args: &[String], name: &str) -> Result<String, String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or_else(|| format!("missing {name}"))
}

fn status(e: &Error) -> &'static str {
    match e {
        Error::InvalidArgument(_) => "INVALID_ARGUMENT",
        Error::AppNotConfigured(_) => "APP_NOT_CONFIGURED",
        Error::Mapping(_) => "MAPPING_ERROR",
        Error::NoPermit(_) => "NO_PERMIT",
        Error::WeChat { .. } => "WECHAT_ERROR",
        Error::Network(_) => "NETWORK_ERROR",
        Error::Uncertain(_) => "UNCERTAIN",
        Error::Store(_) => "STORE_ERROR",
        Error::Internal(_) => "INTERNAL",
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let api_base = arg(&args, "--api-base")?;
    let appid = arg(&args, "--appid")?;
    let secret = arg(&args, "--secret")?;
    let mode = arg(&args, "--mode")?;
    let start: i64 = arg(&args, "--clock-start")?
        .parse()
        .map_err(|e| format!("--clock-start: {e}"))?;

    let store = arg(&args, "--store").unwrap_or_else(|_| "memory".to_string());

    let clock = Arc::new(ManualClock::at(start));
    let notifier = Notifier::with_clock(Arc::new(WorkerClock(clock.clone())));
    notifier
        .configure(&serde_json::json!({ "api_base": api_base, "store": store }).to_string())
        .map_err(|e| e.to_string())?;
    notifier
        .register_app(
            &serde_json::json!({"appid": appid, "secret": secret, "token_mode": mode}).to_string(),
        )
        .map_err(|e| e.to_string())?;

    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| e.to_string())?;
        let answer = match line.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["advance", secs] => match secs.parse::<i64>() {
                Ok(s) => {
                    clock.advance_secs(s);
                    "ok".to_string()
                }
                Err(e) => format!("err INVALID_ARGUMENT {e}"),
            },
            ["call"] => {
                match notifier.call_api(&appid, "GET", "/wxaapi/newtmpl/getcategory", None) {
                    Ok(_) => {
                        let mut h = DefaultHasher::new();
                        notifier
                            .access_token(&appid)
                            .map(|t| t.expose().to_string())
                            .unwrap_or_default()
                            .hash(&mut h);
                        format!("ok {:016x}", h.finish())
                    }
                    Err(e) => format!("err {} {e}", status(&e)),
                }
            }
            ["stats"] => match notifier.token_stats(&appid) {
                Ok(s) => format!("stats {} {} {}", s.fetches, s.recovered, s.adopted),
                Err(e) => format!("err {} {e}", status(&e)),
            },
            _ => format!("err INVALID_ARGUMENT unknown command {line:?}"),
        };
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() {
    if let Err(e) = run() {
        eprintln!("fashop-notify-token-worker: {e}");
        std::process::exit(2);
    }
}
