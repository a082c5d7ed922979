//! The structured log: one JSON line per send, token fetch and store problem,
//! appended to the file `configure({"log": …})` names. Lines are redacted (no
//! secret, no token, openids shortened) and each goes out in one `write()` on
//! an `O_APPEND` file, so many worker processes can share the file. A line
//! that cannot be written never fails the operation; it is counted in metrics.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::clock::Clock;
use crate::config::{LogLevel, LogSettings};
use crate::metrics::Metrics;
use crate::secret::redact_text;

/// A line stays below `PIPE_BUF` (4096), which keeps appends from several
/// processes whole on every common file system; the field limits below add
/// up to well under it.
const MAX_LINE_BYTES: usize = 4000;
const MAX_NAME_BYTES: usize = 128;
const MAX_TEXT_BYTES: usize = 1024;

/// What an applied push event tells the journal.
#[derive(Debug, Clone, Copy)]
pub struct PushRecord<'a> {
    pub appid: &'a str,
    pub event: &'a str,
    pub openid: &'a str,
    pub template_id: &'a str,
    /// `SubscribeStatusString` or `ErrorStatus`.
    pub status: &'a str,
    /// What it did to the ledger (`grant_added`, `grants_dropped`, …).
    pub effect: &'a str,
    pub errcode: Option<i64>,
    pub msgid: Option<i64>,
}

/// What the log says of one card update.
#[derive(Debug, Clone, Copy)]
pub struct CardLine<'a> {
    pub appid: &'a str,
    pub event: &'a str,
    pub openid: &'a str,
    pub notify_type: u32,
    pub status: u32,
    pub outcome: &'a str,
    pub errcode: i64,
    pub errmsg: &'a str,
    pub attempts: u32,
}

/// One finished send, as the send path knows it.
#[derive(Debug, Clone, Default)]
pub struct SendRecord<'a> {
    pub appid: &'a str,
    pub event: &'a str,
    /// The recipient's openid; the log keeps only its ends.
    pub touser: Option<&'a str>,
    /// `sent`, `failed`, `uncertain`, `no_permit`, `duplicate`.
    pub status: &'a str,
    pub errcode: i64,
    /// WeChat's errmsg or the local reason; redacted before it is written.
    pub errmsg: Option<&'a str>,
    pub attempts: u32,
    pub elapsed: Duration,
    pub permit: Option<&'a str>,
    pub msgid: Option<i64>,
}

/// One access token fetch.
#[derive(Debug, Clone, Default)]
pub struct TokenRecord<'a> {
    pub appid: &'a str,
    /// `stable` or `classic`.
    pub mode: &'a str,
    pub ok: bool,
    pub errcode: Option<i64>,
    pub errmsg: Option<&'a str>,
    pub attempts: u32,
    pub elapsed: Duration,
}

/// The line as written; field order is the order in the file.
#[derive(Serialize)]
struct Line<'a> {
    time: String,
    level: LogLevel,
    kind: &'a str,
    pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    appid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    touser: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    store: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errmsg: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msgid: Option<i64>,
}

impl<'a> Line<'a> {
    fn new(time: String, level: LogLevel, kind: &'a str) -> Line<'a> {
        Line {
            time,
            level,
            kind,
            pid: std::process::id(),
            appid: None,
            event: None,
            touser: None,
            mode: None,
            store: None,
            operation: None,
            status: None,
            errcode: None,
            errmsg: None,
            attempts: None,
            elapsed_ms: None,
            permit: None,
            msgid: None,
        }
    }
}

/// The log file, opened on first use and again when it was rotated away.
struct Open {
    path: String,
    file: File,
    dev: u64,
    ino: u64,
}

/// The structured log of one notifier.
pub struct Journal {
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    settings: RwLock<LogSettings>,
    file: Mutex<Option<Open>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("settings", &*self.settings.read())
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// A log that writes nothing until configured; write failures count in `metrics`.
    pub fn new(clock: Arc<dyn Clock>, metrics: Metrics) -> Journal {
        Journal {
            clock,
            metrics,
            settings: RwLock::new(LogSettings::default()),
            file: Mutex::new(None),
        }
    }

    /// Follows the `log` setting (already checked by `configure`).
    pub fn configure(&self, settings: &LogSettings) {
        let mut current = self.settings.write();
        if *current != *settings {
            *current = settings.clone();
            *self.file.lock() = None;
        }
    }

    pub fn settings(&self) -> LogSettings {
        self.settings.read().clone()
    }

    fn enabled(&self, level: LogLevel) -> bool {
        let s = self.settings.read();
        s.path.is_some() && s.level != LogLevel::Off && level >= s.level
    }

    /// A send finished: info when it went out (or needed not), warn otherwise.
    pub fn send_event(&self, r: &SendRecord<'_>) {
        let level = match r.status {
            "sent" | "duplicate" | "no_permit" => LogLevel::Info,
            _ => LogLevel::Warn,
        };
        if !self.enabled(level) {
            return;
        }
        let mut line = Line::new(self.time(), level, "send");
        line.appid = Some(clip(r.appid, MAX_NAME_BYTES));
        line.event = Some(clip(r.event, MAX_NAME_BYTES));
        line.touser = r.touser.map(shorten_openid);
        line.status = Some(clip(r.status, MAX_NAME_BYTES));
        line.errcode = Some(r.errcode);
        line.errmsg = r.errmsg.map(clean_text);
        line.attempts = Some(r.attempts);
        line.elapsed_ms = Some(millis(r.elapsed));
        line.permit = r.permit.map(|p| clip(p, MAX_NAME_BYTES));
        line.msgid = r.msgid;
        self.write(&line);
    }

    /// A service card update ended (kind `card`): `operation` is
    /// `notify_type:status`, `status` the outcome; warn when it failed.
    pub fn card_event(&self, r: &CardLine<'_>) {
        let level = match r.outcome {
            "applied" | "duplicate" | "queued" | "stopped" => LogLevel::Info,
            _ => LogLevel::Warn,
        };
        if !self.enabled(level) {
            return;
        }
        let operation = format!("{}:{}", r.notify_type, r.status);
        let mut line = Line::new(self.time(), level, "card");
        line.appid = Some(clip(r.appid, MAX_NAME_BYTES));
        line.event = Some(clip(r.event, MAX_NAME_BYTES));
        line.touser = Some(shorten_openid(r.openid));
        line.operation = Some(&operation);
        line.status = Some(clip(r.outcome, MAX_NAME_BYTES));
        line.errcode = Some(r.errcode);
        line.errmsg = (!r.errmsg.is_empty()).then(|| clean_text(r.errmsg));
        line.attempts = Some(r.attempts);
        self.write(&line);
    }

    /// An access token fetch: info when it worked, warn when not.
    pub fn token_event(&self, r: &TokenRecord<'_>) {
        let level = if r.ok { LogLevel::Info } else { LogLevel::Warn };
        if !self.enabled(level) {
            return;
        }
        let mut line = Line::new(self.time(), level, "token");
        line.appid = Some(clip(r.appid, MAX_NAME_BYTES));
        line.mode = Some(clip(r.mode, MAX_NAME_BYTES));
        line.status = Some(if r.ok { "ok" } else { "error" });
        line.errcode = r.errcode;
        line.errmsg = r.errmsg.map(clean_text);
        line.attempts = Some(r.attempts);
        line.elapsed_ms = Some(millis(r.elapsed));
        self.write(&line);
    }

    /// A subscribe event pushed by WeChat was applied: info, or warn when
    /// it tells of a send that failed (`failed:user block`, `failed:system failed`).
    pub fn push_event(&self, r: &PushRecord<'_>) {
        let level = if r.status.starts_with("failed") {
            LogLevel::Warn
        } else {
            LogLevel::Info
        };
        if !self.enabled(level) {
            return;
        }
        let mut line = Line::new(self.time(), level, "push");
        line.appid = Some(clip(r.appid, MAX_NAME_BYTES));
        line.event = Some(clip(r.event, MAX_NAME_BYTES));
        line.touser = Some(shorten_openid(r.openid));
        line.status = Some(clip(r.status, MAX_NAME_BYTES));
        line.operation = Some(clip(r.effect, MAX_NAME_BYTES));
        line.permit = Some(clip(r.template_id, MAX_NAME_BYTES));
        line.errcode = r.errcode;
        line.msgid = r.msgid;
        self.write(&line);
    }

    /// A push was refused before anything was applied (`reason`: a bad
    /// signature, a timestamp out of the window, a replay, a plain body to a
    /// safe-mode app); `message` says why, with the skew it saw. Warn: a
    /// wrong clock or a forger is at work, and a buyer's grant may be lost.
    pub fn push_refused(&self, appid: &str, reason: &str, message: &str) {
        if !self.enabled(LogLevel::Warn) {
            return;
        }
        let mut line = Line::new(self.time(), LogLevel::Warn, "push");
        line.appid = Some(clip(appid, MAX_NAME_BYTES));
        line.status = Some("refused");
        line.operation = Some(clip(reason, MAX_NAME_BYTES));
        line.errmsg = Some(clean_text(message));
        self.write(&line);
    }

    /// The store (`sqlite:/path`, `redis://…`) failed during `operation`.
    pub fn store_problem(&self, store: &str, operation: &str, message: &str) {
        if !self.enabled(LogLevel::Error) {
            return;
        }
        let mut line = Line::new(self.time(), LogLevel::Error, "store");
        line.store = Some(clean_text(store));
        line.operation = Some(clip(operation, MAX_NAME_BYTES));
        line.errmsg = Some(clean_text(message));
        self.write(&line);
    }

    fn time(&self) -> String {
        rfc3339_ms(self.clock.now_ms())
    }

    fn write(&self, line: &Line<'_>) {
        let mut text = match serde_json::to_string(line) {
            Ok(t) => t,
            Err(_) => {
                self.metrics.record_log_failure();
                return;
            }
        };
        text.push('\n');
        if text.len() > MAX_LINE_BYTES {
            // The field limits make this unreachable; a torn line would be worse than none.
            self.metrics.record_log_failure();
            return;
        }
        let Some(path) = self.settings.read().path.clone() else {
            return;
        };
        if self.append(&path, text.as_bytes()).is_err() {
            self.metrics.record_log_failure();
        }
    }

    /// One `write()` of the whole line; a short write counts as a failure
    /// rather than being finished by a second call another process could split.
    fn append(&self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut slot = self.file.lock();
        let rotated = match (&*slot, std::fs::metadata(path)) {
            (Some(open), Ok(meta)) => {
                open.path != path || open.dev != meta.dev() || open.ino != meta.ino()
            }
            _ => true,
        };
        if rotated {
            *slot = None;
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let meta = file.metadata()?;
            *slot = Some(Open {
                path: path.to_string(),
                file,
                dev: meta.dev(),
                ino: meta.ino(),
            });
        }
        let Some(open) = slot.as_mut() else {
            return Err(std::io::Error::other("log file not open"));
        };
        let result = match open.file.write(bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            Ok(_) => Err(std::io::Error::other("short write")),
            Err(e) => Err(e),
        };
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The longest prefix of `value` whose JSON-escaped form fits in `max` bytes
/// (a control character takes six, a quote or backslash two), so that the
/// field limits bound the line whatever the text holds.
fn clip(value: &str, max: usize) -> &str {
    let mut used = 0;
    for (i, c) in value.char_indices() {
        let width = match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + width > max {
            return &value[..i];
        }
        used += width;
    }
    value
}

/// Free text redacted, then clipped (redacting first keeps a cut from
/// separating a key from its value; the raw cut first bounds the work).
fn clean_text(value: &str) -> String {
    let raw = clip(value, 4 * MAX_TEXT_BYTES);
    clip(&redact_text(raw), MAX_TEXT_BYTES).to_string()
}

/// An openid as the log keeps it: `oAbc…xyz` (enough to match a support
/// request, not enough to message the user).
pub fn shorten_openid(openid: &str) -> String {
    let chars: Vec<char> = openid.chars().collect();
    if chars.len() <= 8 {
        return match chars.first() {
            Some(c) => format!("{c}…"),
            None => String::new(),
        };
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 3..].iter().collect();
    format!("{head}…{tail}")
}

/// `2026-11-23T20:12:07.123Z` for unix milliseconds.
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (proleptic Gregorian calendar).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_464_727_123), "2026-11-23T20:12:07.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn clipping_counts_escaped_bytes() {
        assert_eq!(clip("abc", 2), "ab");
        assert_eq!(clip("a\"b", 3), "a\"");
        assert_eq!(clip("\u{1}\u{1}", 11), "\u{1}");
        assert_eq!(clip("界界", 5), "界");
        let worst = "\u{1}".repeat(5000);
        let line = serde_json::to_string(&clean_text(&worst)).unwrap();
        assert!(line.len() <= MAX_TEXT_BYTES + 2, "{}", line.len());
    }

    #[test]
    fn openids_keep_only_their_ends() {
        assert_eq!(shorten_openid("oAbcDEFghiJKLmnoPQRsxyz"), "oAbc…xyz");
        assert_eq!(shorten_openid("o1234567"), "o…");
        assert_eq!(shorten_openid(""), "");
        assert_eq!(shorten_openid("o微信用户标识符号码"), "o微信用…符号码");
    }

    #[test]
    fn credentials_are_taken_out_of_text() {
        assert_eq!(
            redact_text("GET /cgi-bin/x?access_token=ABC.def-123&openid=o1 failed"),
            "GET /cgi-bin/x?access_token=***&openid=o1 failed"
        );
        assert_eq!(
            redact_text(r#"{"appid":"wx1","secret":"s3cr3t","grant_type":"x"}"#),
            r#"{"appid":"wx1","secret":"***","grant_type":"x"}"#
        );
        assert_eq!(redact_text("Token: abc def"), "Token: *** def");
        assert_eq!(
            redact_text("redis://user:pa55@127.0.0.1:6379/0 refused"),
            "redis://***@127.0.0.1:6379/0 refused"
        );
        assert_eq!(
            redact_text("redis+unix:///run/redis.sock?db=0&pass=pa55 refused"),
            "redis+unix:///run/redis.sock?db=0&pass=*** refused"
        );
        assert_eq!(redact_text("pass the parcel"), "pass the parcel");
        assert_eq!(
            redact_text("invalid credential, access_token is invalid or not latest rid: 1"),
            "invalid credential, access_token is invalid or not latest rid: 1"
        );
        assert_eq!(redact_text("barcode=1 tokens=2"), "barcode=1 tokens=2");
        assert_eq!(redact_text("code=081xyz"), "code=***");
        assert_eq!(
            redact_text("appid=wx1&appsecret=abc&errcode=40013"),
            "appid=wx1&appsecret=***&errcode=40013"
        );
        assert_eq!(redact_text("ok"), "ok");
    }
}
