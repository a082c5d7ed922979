//! Process-wide settings given by `fashop_notify_configure`. Every field is
//! optional; a field that a later call gives replaces the earlier value, a field
//! it leaves out keeps it.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::journal::{LogPatch, LogSettings};
use crate::outbox::{OutboxPatch, OutboxSettings};

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
    /// `memory`, `sqlite:/path` or `redis://…`.
    pub store: String,
    /// form_ids (and prepay_ids) kept per user; the oldest go first.
    pub permit_cap_per_openid: usize,
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
            store: "memory".to_string(),
            permit_cap_per_openid: 50,
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
    pub store: Option<String>,
    pub permit_cap_per_openid: Option<u64>,
    pub log: Option<LogPatch>,
    pub outbox: Option<OutboxPatch>,
}

impl ConfigPatch {
    /// Parses and checks a `configure` document.
    pub fn parse(json: &str) -> Result<ConfigPatch> {
        let patch: ConfigPatch = parse_json("configure", json)?;
        if let Some(base) = &patch.api_base {
            check_api_base("configure: api_base", base)?;
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
        if let Some(m) = patch.token_margin_secs {
            if !(0..=3600).contains(&m) {
                return Err(Error::invalid(format!(
                    "configure: token_margin_secs must be between 0 and 3600, got {m}"
                )));
            }
        }
        if let Some(store) = &patch.store {
            check_store_spec(store)?;
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
        if let Some(v) = &self.log {
            c.log = v.apply_to(&c.log);
        }
        if let Some(v) = &self.outbox {
            c.outbox = v.apply_to(&c.outbox);
        }
        c
    }
}

fn check_range(field: &str, v: Option<u64>, min: u64, max: u64) -> Result<()> {
    match v {
        Some(v) if !(min..=max).contains(&v) => Err(Error::invalid(format!(
            "configure: {field} must be between {min} and {max}, got {v}"
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

/// `memory`, `sqlite:/path` or `redis://host:port/db`.
pub fn check_store_spec(store: &str) -> Result<()> {
    let ok = store == "memory"
        || store.strip_prefix("sqlite:").is_some_and(|p| !p.is_empty())
        || store
            .strip_prefix("redis://")
            .is_some_and(|p| !p.is_empty());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "configure: store must be \"memory\", \"sqlite:/path/to/file.db\" or \"redis://host:port/db\", got {store:?}"
        )))
    }
}

/// Parses a JSON document into `T`, naming the function and the problem
/// (serde's message names the field and the position).
pub fn parse_json<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            Error::invalid(format!("{what}: {inner}"))
        } else {
            Error::invalid(format!("{what}: {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| Error::invalid(format!("{what}: {e}")))?;
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
        assert!(msg(r#"{"timeout_ms":"5"}"#).contains("configure: timeout_ms: invalid type"));
        assert!(msg(r#"{"timeout_ms":0}"#).contains("timeout_ms must be between"));
        assert!(msg(r#"{"max_retries":11}"#).contains("max_retries"));
        assert!(msg(r#"{"permit_cap_per_openid":0}"#)
            .contains("permit_cap_per_openid must be between 1"));
        assert!(msg(r#"{"token_margin_secs":-1}"#).contains("token_margin_secs"));
        assert!(msg(r#"{"api_base":"ftp://x"}"#).contains("api_base"));
        assert!(msg(r#"{"store":"mysql://x"}"#).contains("store must be"));
        assert!(msg(r#"{"store":"sqlite:"}"#).contains("store must be"));
        let eof = msg("{");
        assert!(
            eof.starts_with("configure: ") && eof.contains("EOF while parsing"),
            "{eof}"
        );
        assert!(msg("[]").contains("configure: invalid length 0"));
        assert!(msg("5").contains("invalid type: integer"));
    }

    #[test]
    fn good_store_specs() {
        for s in ["memory", "sqlite:/tmp/x.db", "redis://127.0.0.1:6379/0"] {
            check_store_spec(s).unwrap();
        }
    }
}
