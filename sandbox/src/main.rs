//! The WeChat sandbox server as a program: prints `listening on http://HOST:PORT`
//! once it accepts connections (its only output on stdout), logs to stderr, and
//! exits 0 on SIGINT or SIGTERM.

use std::io::Write;
use std::process::ExitCode;

use fashop_notify_sandbox::{Sandbox, SandboxOptions, SeedFile};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const USAGE: &str = "usage: fashop-notify-sandbox [--host 127.0.0.1] [--port N] \
[--app APPID:SECRET]... [--seed FILE.json] [--state FILE.json] [--legacy] [--verbose] [--help]";

/// The sandbox's manual, which `--help` prints: sandbox/README.md from the
/// program's options to the faults, taken at build time so the two cannot drift.
const README: &str = include_str!("../README.md");

fn manual() -> String {
    let start = README.find(MANUAL_FROM).unwrap_or(0);
    let end = README[start..]
        .find(MANUAL_TO)
        .map_or(README.len(), |e| start + e);
    format!(
        "{USAGE}\n\nThe manual of the WeChat sandbox (sandbox/README.md; installed in \
share/doc/fashop-notify/sandbox/README.md).\n\n{}",
        README[start..end].trim_end()
    )
}

const MANUAL_FROM: &str = "The program:";
const MANUAL_TO: &str = "## Implementation notes";

struct Args {
    options: SandboxOptions,
    seed: Option<SeedFile>,
}

/// What the command line asks for.
enum Wanted {
    Serve(Box<Args>),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Wanted, String> {
    let mut options = SandboxOptions {
        apps: Vec::new(),
        ..SandboxOptions::default()
    };
    let mut seed: Option<SeedFile> = None;
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next().ok_or_else(|| format!("{flag} needs a value"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--host" => options.host = value(&mut args, "--host")?,
            "--port" => {
                let v = value(&mut args, "--port")?;
                options.port = v
                    .parse()
                    .map_err(|_| format!("--port must be 0..65535, got {v:?}"))?;
            }
            "--app" => {
                let v = value(&mut args, "--app")?;
                let (appid, secret) = v
                    .split_once(':')
                    .filter(|(a, s)| !a.is_empty() && !s.is_empty())
                    .ok_or("--app takes APPID:SECRET")?;
                options.apps.push((appid.to_string(), secret.to_string()));
            }
            "--seed" => {
                let path = value(&mut args, "--seed")?;
                let text =
                    std::fs::read_to_string(&path).map_err(|e| format!("--seed {path}: {e}"))?;
                let parsed: SeedFile =
                    serde_json::from_str(&text).map_err(|e| format!("--seed {path}: {e}"))?;
                seed = Some(parsed);
            }
            "--state" => options.state_file = Some(value(&mut args, "--state")?.into()),
            "--legacy" => options.legacy = true,
            "--verbose" | "-v" => options.verbose = true,
            "--help" | "-h" => return Ok(Wanted::Help),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let restoring = options.state_file.as_ref().is_some_and(|p| p.exists());
    if let Some(path) = options.state_file.as_ref().filter(|_| restoring) {
        // Checked here for the exit code of a bad argument; the sandbox loads it.
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--state {}: {e}", path.display()))?;
        serde_json::from_str::<SeedFile>(&text)
            .map_err(|e| format!("--state {}: {e}", path.display()))?;
    }
    if restoring {
        // The state holds what the seed gave, and what came after.
        seed = None;
    }
    if options.apps.is_empty() && seed.as_ref().is_none_or(|s| s.apps.is_empty()) && !restoring {
        let demo = SandboxOptions::default();
        options.apps = demo.apps;
    }
    Ok(Wanted::Serve(Box::new(Args { options, seed })))
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Wanted::Serve(a)) => *a,
        Ok(Wanted::Help) => {
            println!("{}", manual());
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("fashop-notify-sandbox: {e}");
            return ExitCode::from(2);
        }
    };
    // Signals first, so one arriving right after the line is printed is not lost.
    let mut signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fashop-notify-sandbox: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    };
    let sandbox = match Sandbox::try_start_with(args.options) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("fashop-notify-sandbox: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(seed) = &args.seed {
        if let Err(e) = sandbox.apply_seed(seed) {
            eprintln!("fashop-notify-sandbox: --seed: {e}");
            return ExitCode::from(2);
        }
    }
    if let Err(e) = sandbox.save_state() {
        eprintln!("fashop-notify-sandbox: --state: {e}");
        return ExitCode::from(2);
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "listening on {}", sandbox.url())
        .and_then(|_| out.flush())
        .is_err()
    {
        // Nobody is reading: keep serving anyway, the reader may just have gone.
        eprintln!("fashop-notify-sandbox: cannot write to stdout");
    }
    drop(out);
    let _ = signals.forever().next();
    drop(sandbox);
    ExitCode::SUCCESS
}
