//! Every process-wide setting given by `fashop_notify_configure` (WeChat,
//! store, log, outbox), each checked once here. Every field is optional; a
//! field that a later call gives replaces the earlier value, a field it leaves
//! out keeps it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest accepted log path.
const MAX_PATH_BYTES: usize = 4096;

/// Production WeChat.
pub const WECHAT_API_BASE: &str = "https://api.weixin.qq.com";

/// The settings in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub api_base: String,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub token_margin_secs: i64,
    pub store: StoreSpec,
    /// form_ids (and prepay_ids) kept per user; the oldest go first.
    pub permit_cap_per_openid: usize,
    /// Subscribe uses kept per user and template; taps beyond go.
    pub subscribe_cap_per_template: u32,
    /// `ledger_purge` removes subscribe grants not accepted again for this
    /// many days; 0 keeps them until used.
    pub subscribe_max_age_days: u32,
    /// China days the owner's reach report keeps (`report_keep_days`).
    pub report_keep_days: u32,
    pub log: LogSettings,
    pub outbox: OutboxSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_base: WECHAT_API_BASE.to_string(),
            connect_timeout_ms: 3000,
            timeout_ms: 5000,
            max_retries: 2,
            token_margin_secs: 300,
            store: StoreSpec::Memory,
            permit_cap_per_openid: 50,
            subscribe_cap_per_template: 50,
            subscribe_max_age_days: 0,
            report_keep_days: 90,
            log: LogSettings::default(),
            outbox: OutboxSettings::default(),
        }
    }
}

/// What one `configure` call says.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPatch {
    pub api_base: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_retries: Option<u32>,
    pub token_margin_secs: Option<i64>,
    #[serde(rename = "store")]
    store_text: Option<String>,
    /// `store`, parsed by `parse`.
    #[serde(skip)]
    pub store: Option<StoreSpec>,
    pub permit_cap_per_openid: Option<u64>,
    pub subscribe_cap_per_template: Option<u64>,
    pub subscribe_max_age_days: Option<u64>,
    pub report_keep_days: Option<u64>,
    pub log: Option<LogPatch>,
    pub outbox: Option<OutboxPatch>,
}

impl ConfigPatch {
    /// Parses and checks a `configure` document.
    pub fn parse(json: &str) -> Result<ConfigPatch> {
        let mut patch: ConfigPatch = parse_json(json)?;
        patch.store = patch
            .store_text
            .as_deref()
            .map(StoreSpec::parse)
            .transpose()?;
        if let Some(base) = &patch.api_base {
            check_api_base("api_base", base)?;
        }
        check_range("connect_timeout_ms", patch.connect_timeout_ms, 1, 600_000)?;
        check_range("timeout_ms", patch.timeout_ms, 1, 600_000)?;
        check_range("max_retries", patch.max_retries.map(u64::from), 0, 10)?;
        check_range(
            "permit_cap_per_openid",
            patch.permit_cap_per_openid,
            1,
            10_000,
        )?;
        check_range(
            "subscribe_cap_per_template",
            patch.subscribe_cap_per_template,
            1,
            100_000,
        )?;
        check_range(
            "subscribe_max_age_days",
            patch.subscribe_max_age_days,
            0,
            3650,
        )?;
        check_range("report_keep_days", patch.report_keep_days, 1, 732)?;
        if let Some(m) = patch.token_margin_secs {
            if !(0..=3600).contains(&m) {
                return Err(Error::invalid(format!(
                    "token_margin_secs must be between 0 and 3600, got {m}"
                )));
            }
        }
        if let Some(log) = &patch.log {
            log.check()?;
        }
        if let Some(outbox) = &patch.outbox {
            outbox.check()?;
        }
        Ok(patch)
    }

    /// The settings after this patch.
    pub fn apply_to(&self, base: &Config) -> Config {
        let mut c = base.clone();
        if let Some(v) = &self.api_base {
            c.api_base = v.trim_end_matches('/').to_string();
        }
        if let Some(v) = self.connect_timeout_ms {
            c.connect_timeout_ms = v;
        }
        if let Some(v) = self.timeout_ms {
            c.timeout_ms = v;
        }
        if let Some(v) = self.max_retries {
            c.max_retries = v;
        }
        if let Some(v) = self.token_margin_secs {
            c.token_margin_secs = v;
        }
        if let Some(v) = &self.store {
            c.store = v.clone();
        }
        if let Some(v) = self.permit_cap_per_openid {
            c.permit_cap_per_openid = v as usize;
        }
        if let Some(v) = self.subscribe_cap_per_template {
            c.subscribe_cap_per_template = v as u32;
        }
        if let Some(v) = self.subscribe_max_age_days {
            c.subscribe_max_age_days = v as u32;
        }
        if let Some(v) = self.report_keep_days {
            c.report_keep_days = v as u32;
        }
        if let Some(v) = &self.log {
            c.log = v.apply_to(&c.log);
        }
        if let Some(v) = &self.outbox {
            c.outbox = v.apply_to(&c.outbox);
        }
        c
    }
}

/// How much is written: every line at its level and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    /// Nothing at all.
    Off,
}

/// The `log` setting in force: no path means no log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSettings {
    pub path: Option<String>,
    pub level: LogLevel,
}

/// What one `configure` call says about the log; a field left out keeps its value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogPatch {
    pub path: Option<String>,
    pub level: Option<LogLevel>,
}

impl LogPatch {
    pub fn check(&self) -> Result<()> {
        if let Some(path) = &self.path {
            if path.is_empty() {
                return Err(Error::invalid("log.path must not be empty"));
            }
            if path.len() > MAX_PATH_BYTES {
                return Err(Error::invalid(format!(
                    "log.path is longer than {MAX_PATH_BYTES} bytes"
                )));
            }
            if path.contains('\0') {
                return Err(Error::invalid("log.path must not contain NUL"));
            }
        }
        Ok(())
    }

    pub fn apply_to(&self, base: &LogSettings) -> LogSettings {
        LogSettings {
            path: self.path.clone().or_else(|| base.path.clone()),
            level: self.level.unwrap_or(base.level),
        }
    }
}

/// The `outbox` setting in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxSettings {
    /// Failed attempts after which a message is dead-lettered.
    pub max_attempts: u32,
    /// How long a flush holds a claimed message; a flusher that dies frees it after this.
    pub lease_secs: u64,
    /// The first retry pause; each failed attempt doubles it.
    pub retry_secs: u64,
    /// A flush stops after this many messages in a row found WeChat
    /// unreachable or silent (refused, DNS, timeout), leaving the rest due:
    /// each would wait the full timeout for nothing.
    pub stop_after_unreachable: u32,
    /// Messages one flush has in flight at once (its requests to WeChat
    /// overlap; the HTTP connections are kept for the next messages).
    pub concurrency: u32,
}

impl Default for OutboxSettings {
    fn default() -> Self {
        OutboxSettings {
            max_attempts: 10,
            // As long as send's idempotency claim, so a message whose flusher
            // died finds its key free when it is claimed again.
            lease_secs: 120,
            retry_secs: 30,
            stop_after_unreachable: 3,
            concurrency: 8,
        }
    }
}

/// What one `configure` call says about the outbox.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxPatch {
    pub max_attempts: Option<u32>,
    pub lease_secs: Option<u64>,
    pub retry_secs: Option<u64>,
    pub stop_after_unreachable: Option<u32>,
    pub concurrency: Option<u32>,
}

impl OutboxPatch {
    pub fn check(&self) -> Result<()> {
        let range = |field: &str, v: Option<u64>, min: u64, max: u64| match v {
            Some(v) if !(min..=max).contains(&v) => Err(Error::invalid(format!(
                "outbox.{field} must be between {min} and {max}, got {v}"
            ))),
            _ => Ok(()),
        };
        range("max_attempts", self.max_attempts.map(u64::from), 1, 100)?;
        range("lease_secs", self.lease_secs, 5, 3600)?;
        range("retry_secs", self.retry_secs, 1, 3600)?;
        range(
            "stop_after_unreachable",
            self.stop_after_unreachable.map(u64::from),
            1,
            1000,
        )?;
        range("concurrency", self.concurrency.map(u64::from), 1, 256)
    }

    pub fn apply_to(&self, base: &OutboxSettings) -> OutboxSettings {
        OutboxSettings {
            max_attempts: self.max_attempts.unwrap_or(base.max_attempts),
            lease_secs: self.lease_secs.unwrap_or(base.lease_secs),
            retry_secs: self.retry_secs.unwrap_or(base.retry_secs),
            stop_after_unreachable: self
                .stop_after_unreachable
                .unwrap_or(base.stop_after_unreachable),
            concurrency: self.concurrency.unwrap_or(base.concurrency),
        }
    }
}

fn check_range(field: &str, v: Option<u64>, min: u64, max: u64) -> Result<()> {
    match v {
        Some(v) if !(min..=max).contains(&v) => Err(Error::invalid(format!(
            "{field} must be between {min} and {max}, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// An API base is an http(s) URL without query or fragment.
pub fn check_api_base(what: &str, base: &str) -> Result<()> {
    let rest = base
        .strip_prefix("https://")
        .or_else(|| base.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(()),
        _ => Err(Error::invalid(format!(
            "{what} must be an http:// or https:// URL, got {base:?}"
        ))),
    }
}

/// Where permits, idempotency records, the outbox, shared figures and the
/// shared access token live: the `store` setting, parsed once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreSpec {
    #[default]
    Memory,
    /// `sqlite:/path/notify.db`: the file's path.
    Sqlite(String),
    /// `redis://host:port/db` or `redis+unix:///path/redis.sock?db=0` (one
    /// server, over TCP or its Unix socket) or
    /// `redis+cluster://host:port,host:port/` (a Redis Cluster): the whole URL.
    Redis(String),
}

/// The URL schemes of a Redis store: one server over TCP, one server over its
/// Unix socket (`unix://` is the same), a cluster.
const REDIS_SCHEMES: [&str; 4] = ["redis://", "redis+unix://", "unix://", "redis+cluster://"];

impl StoreSpec {
    /// `memory`, `sqlite:/path` (a non-empty path) or a Redis URL.
    pub fn parse(text: &str) -> Result<StoreSpec> {
        if text == "memory" {
            return Ok(StoreSpec::Memory);
        }
        if let Some(path) = text.strip_prefix("sqlite:").filter(|p| !p.is_empty()) {
            return Ok(StoreSpec::Sqlite(path.to_string()));
        }
        if REDIS_SCHEMES
            .iter()
            .any(|scheme| text.strip_prefix(scheme).is_some_and(|p| !p.is_empty()))
        {
            return Ok(StoreSpec::Redis(text.to_string()));
        }
        Err(Error::invalid(format!(
            "store must be \"memory\", \"sqlite:/path/to/file.db\", \"redis://host:port/db\", \"redis+unix:///path/to/redis.sock?db=0\" or \"redis+cluster://host:port,host:port/\", got {text:?}"
        )))
    }

    /// Whether several processes see the same records (SQLite, Redis).
    pub fn is_shared(&self) -> bool {
        !matches!(self, StoreSpec::Memory)
    }
}

/// The setting as `configure` took it.
impl PartialEq<&str> for StoreSpec {
    fn eq(&self, other: &&str) -> bool {
        StoreSpec::parse(other).is_ok_and(|o| o == *self)
    }
}

impl std::fmt::Display for StoreSpec {
    /// The setting as `configure` took it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Sqlite(path) => write!(f, "sqlite:{path}"),
            StoreSpec::Redis(url) => f.write_str(url),
        }
    }
}

/// Parses a JSON document into `T`, naming the function and the problem
/// (serde's message names the field and the position).
pub fn parse_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // `?` is where serde_path_to_error puts an error before any field.
        if path == "." || path == "?" || path.is_empty() {
            Error::invalid(inner.to_string())
        } else {
            Error::invalid(format!("{path}: {inner}"))
        }
    })?;
    de.end().map_err(|e| Error::invalid(e.to_string()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_replaces_only_given_fields() {
        let c = Config::default();
        let p =
            ConfigPatch::parse(r#"{"api_base":"http://127.0.0.1:9/","max_retries":0}"#).unwrap();
        let c = p.apply_to(&c);
        assert_eq!(c.api_base, "http://127.0.0.1:9");
        assert_eq!(c.max_retries, 0);
        assert_eq!(c.timeout_ms, 5000);
        let c = ConfigPatch::parse(r#"{"timeout_ms":100}"#)
            .unwrap()
            .apply_to(&c);
        assert_eq!(c.api_base, "http://127.0.0.1:9");
        assert_eq!(c.timeout_ms, 100);
    }

    #[test]
    fn bad_documents_name_the_problem() {
        let msg = |j: &str| ConfigPatch::parse(j).unwrap_err().to_string();
        assert!(msg(r#"{"timeout":1}"#).contains("unknown field `timeout`"));
        assert!(msg(r#"{"timeout_ms":"5"}"#).starts_with("timeout_ms: invalid type"));
        assert!(msg(r#"{"timeout_ms":0}"#).contains("timeout_ms must be between"));
        assert!(msg(r#"{"max_retries":11}"#).contains("max_retries"));
        assert!(msg(r#"{"permit_cap_per_openid":0}"#)
            .contains("permit_cap_per_openid must be between 1"));
        assert!(msg(r#"{"token_margin_secs":-1}"#).contains("token_margin_secs"));
        assert!(msg(r#"{"api_base":"ftp://x"}"#).contains("api_base"));
        assert!(msg(r#"{"store":"mysql://x"}"#).contains("store must be"));
        assert!(msg(r#"{"store":"sqlite:"}"#).contains("store must be"));
        assert!(msg(r#"{"store":"redis+unix://"}"#).contains("redis+unix:///path/to/redis.sock"));
        let eof = msg("{");
        assert!(eof.starts_with("EOF while parsing"), "{eof}");
        assert!(msg("[]").starts_with("invalid length 0"));
        assert!(msg("5").contains("invalid type: integer"));
    }

    #[test]
    fn good_store_specs() {
        for s in [
            "memory",
            "sqlite:/tmp/x.db",
            "redis://127.0.0.1:6379/0",
            "redis+unix:///run/redis/redis.sock?db=2",
            "unix:///run/redis/redis.sock",
        ] {
            assert_eq!(StoreSpec::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(
            StoreSpec::parse("sqlite:/a").unwrap(),
            StoreSpec::Sqlite("/a".into())
        );
    }

    #[test]
    fn log_patches_are_checked_and_merge() {
        let base = LogSettings::default();
        let p: LogPatch = serde_json::from_str(r#"{"path":"/tmp/x.jsonl"}"#).unwrap();
        p.check().unwrap();
        let s = p.apply_to(&base);
        assert_eq!(s.path.as_deref(), Some("/tmp/x.jsonl"));
        assert_eq!(s.level, LogLevel::Info);
        let p: LogPatch = serde_json::from_str(r#"{"level":"warn"}"#).unwrap();
        let s = p.apply_to(&s);
        assert_eq!(s.path.as_deref(), Some("/tmp/x.jsonl"));
        assert_eq!(s.level, LogLevel::Warn);
        let p: LogPatch = serde_json::from_str(r#"{"path":""}"#).unwrap();
        assert!(p.check().unwrap_err().to_string().contains("log.path"));
        assert!(serde_json::from_str::<LogPatch>(r#"{"level":"loud"}"#).is_err());
        assert!(serde_json::from_str::<LogPatch>(r#"{"file":"x"}"#).is_err());
    }

    #[test]
    fn outbox_patches_are_checked_and_merge() {
        let p: OutboxPatch = serde_json::from_str(r#"{"max_attempts":3}"#).unwrap();
        p.check().unwrap();
        let s = p.apply_to(&OutboxSettings::default());
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.lease_secs, 120);
        let p: OutboxPatch = serde_json::from_str(r#"{"max_attempts":0}"#).unwrap();
        assert!(p
            .check()
            .unwrap_err()
            .to_string()
            .contains("outbox.max_attempts"));
        assert!(serde_json::from_str::<OutboxPatch>(r#"{"attempts":3}"#).is_err());
    }
}
