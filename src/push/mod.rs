//! WeChat's message push to a mini program's server (消息推送): the credentials
//! an app is configured with, the request signatures, the safe-mode envelope
//! and the subscribe-message events. Pure: the notifier applies what this reads.
//!
//! Sources: WeChat's "消息推送" guide for mini programs (server configuration,
//! signature, safe mode) and "订阅消息 / 订阅消息事件推送" (the three events),
//! https://developers.weixin.qq.com/miniprogram/dev/framework/server-ability/message-push.html
//! and https://developers.weixin.qq.com/miniprogram/dev/framework/open-ability/subscribe-message.html

mod crypt;
mod event;
mod query;
mod xml;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::secret::Secret;

pub use crypt::{decrypt, encrypt, AesKey};
pub use event::{parse_envelope, parse_message, Entry, EventKind, PushMessage};
pub use query::PushQuery;

/// Longest push body read (WeChat's subscribe events are well under 4 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The body format chosen in the mini program's admin (数据格式).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushFormat {
    #[default]
    Json,
    Xml,
}

/// The message encryption chosen in the mini program's admin (消息加密方式).
/// Safe mode takes only encrypted bodies signed with `msg_signature`: a plain
/// body's `signature` covers the timestamp and nonce but not the body, and
/// both travel in the URL, which proxies log. Compatible mode (兼容模式, for
/// switching from plain to safe) takes both and must be chosen by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PushMode {
    /// 明文模式: plain bodies only; no EncodingAESKey.
    Plain,
    /// 兼容模式: encrypted and plain bodies (needs the EncodingAESKey).
    Compatible,
    /// 安全模式: encrypted bodies only (needs the EncodingAESKey).
    Safe,
}

impl PushMode {
    pub fn as_str(self) -> &'static str {
        match self {
            PushMode::Plain => "plain",
            PushMode::Compatible => "compatible",
            PushMode::Safe => "safe",
        }
    }
}

/// How far a push's `timestamp` may be from the clock unless the app says
/// otherwise: a day. Replays within it are refused by the nonce record, so
/// it only has to be narrow enough for that record to outlive it.
pub(crate) const DEFAULT_MAX_SKEW_SECS: u64 = 24 * 3600;

/// The widest window allowed: a (timestamp, nonce) record is kept 7 days
/// and a replay may come up to two windows after the first request.
pub(crate) const LIMIT_MAX_SKEW_SECS: u64 = 3 * 24 * 3600;

/// The `push` object of `register_app`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    pub token: Secret,
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
    #[serde(default)]
    pub format: PushFormat,
    /// Absent: safe when a key is given, plain otherwise.
    #[serde(default)]
    pub mode: Option<PushMode>,
    #[serde(default)]
    pub max_skew_secs: Option<u64>,
}

/// An app's checked push credentials: the Token that signs every push and the
/// AES key of safe mode (absent when the app only takes plain pushes).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PushSpec")]
pub struct PushCredentials {
    token: Secret,
    key: Option<AesKey>,
    /// The EncodingAESKey as written, only to keep it out of messages.
    key_text: Option<Secret>,
    format: PushFormat,
    mode: PushMode,
    max_skew_secs: u64,
}

impl TryFrom<PushSpec> for PushCredentials {
    type Error = Error;

    fn try_from(spec: PushSpec) -> Result<Self> {
        PushCredentials::new(spec)
    }
}

impl PushCredentials {
    /// Checks the Token (WeChat: 3 to 32 letters or digits) and turns the
    /// 43-character EncodingAESKey into the 32-byte key.
    pub fn new(spec: PushSpec) -> Result<Self> {
        let t = spec.token.expose();
        if !(3..=32).contains(&t.len()) || !t.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "push.token must be 3 to 32 letters or digits (as the mini program admin requires)",
            ));
        }
        let key = match &spec.encoding_aes_key {
            None => None,
            Some(k) => Some(AesKey::from_encoding_aes_key(k.expose())?),
        };
        let mode = checked_mode(spec.mode, key.is_some())?;
        let max_skew_secs = spec.max_skew_secs.unwrap_or(DEFAULT_MAX_SKEW_SECS);
        if !(1..=LIMIT_MAX_SKEW_SECS).contains(&max_skew_secs) {
            return Err(Error::invalid(format!(
                "push.max_skew_secs must be 1 to {LIMIT_MAX_SKEW_SECS} (each push's timestamp and nonce are remembered 7 days), got {max_skew_secs}"
            )));
        }
        Ok(PushCredentials {
            token: spec.token,
            key,
            key_text: spec.encoding_aes_key,
            format: spec.format,
            mode,
            max_skew_secs,
        })
    }

    /// Plain, compatible or safe.
    pub fn mode(&self) -> PushMode {
        self.mode
    }

    /// How far a push's `timestamp` may be from the clock, in seconds.
    pub fn max_skew_secs(&self) -> u64 {
        self.max_skew_secs
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    /// The safe-mode key, when one was registered.
    pub fn key(&self) -> Option<&AesKey> {
        self.key.as_ref()
    }

    pub fn format(&self) -> PushFormat {
        self.format
    }

    /// `text` with the Token and the EncodingAESKey replaced by `***` (a
    /// message may quote a body, and a body may hold anything).
    pub fn redact(&self, text: &str) -> String {
        // A push Token may be as short as 3 characters: redacted wherever it
        // occurs, also inside a longer word of a quoted body.
        let text = self.token.redact_everywhere(text);
        match &self.key_text {
            Some(k) => k.redact_everywhere(&text),
            None => text,
        }
    }
}

impl fmt::Debug for PushCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushCredentials")
            .field("token", &"***")
            .field("encoding_aes_key", &self.key.as_ref().map(|_| "***"))
            .field("format", &self.format)
            .field("mode", &self.mode)
            .field("max_skew_secs", &self.max_skew_secs)
            .finish()
    }
}

/// The mode as written, checked against whether a key was given.
fn checked_mode(mode: Option<PushMode>, has_key: bool) -> Result<PushMode> {
    match (mode, has_key) {
        (None, true) => Ok(PushMode::Safe),
        (None, false) => Ok(PushMode::Plain),
        (Some(PushMode::Plain), true) => Err(Error::invalid(
            "push.mode \"plain\" takes no encoding_aes_key: with a key the app is in \"safe\" (or, while switching, \"compatible\") mode",
        )),
        (Some(m @ (PushMode::Safe | PushMode::Compatible)), false) => Err(Error::invalid(format!(
            "push.mode \"{}\" needs push.encoding_aes_key (the mini program admin's EncodingAESKey)",
            m.as_str()
        ))),
        (Some(m), _) => Ok(m),
    }
}

/// WeChat's signature: the SHA-1, in lower-case hex, of the parts sorted as
/// byte strings and joined without separator. Plain mode signs token,
/// timestamp and nonce; safe mode's `msg_signature` adds the ciphertext.
pub fn signature(parts: &[&str]) -> String {
    let mut sorted = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut hex = String::with_capacity(40);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Whether `given` is the signature of `parts` under `token`. Compared in
/// time independent of where the texts differ, and case-insensitively (the
/// hex WeChat sends is lower case; some proxies are known to upper-case it).
pub fn signature_holds(token: &Secret, parts: &[&str], given: &str) -> bool {
    let mut all = Vec::with_capacity(parts.len() + 1);
    all.push(token.expose());
    all.extend_from_slice(parts);
    let expected = signature(&all);
    let given = given.to_ascii_lowercase();
    if given.len() != expected.len() {
        return false;
    }
    expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Result<PushCredentials> {
        serde_json::from_str::<PushSpec>(json)
            .map_err(|e| Error::invalid(e.to_string()))
            .and_then(PushCredentials::new)
    }

    #[test]
    fn signature_known_answer() {
        // Vector computed independently at test-writing time:
        //   printf '%s' 1409304348pamtestxxxxxx | sha1sum
        // (the parts sorted: "1409304348" < "pamtest" < "xxxxxx"; coreutils sha1sum).
        assert_eq!(
            signature(&["pamtest", "1409304348", "xxxxxx"]),
            "76480565cbe296026c53aaacd1ad523a1ddba24f"
        );
        let token = Secret::new("pamtest");
        assert!(signature_holds(
            &token,
            &["1409304348", "xxxxxx"],
            "76480565cbe296026c53aaacd1ad523a1ddba24f"
        ));
        assert!(signature_holds(
            &token,
            &["1409304348", "xxxxxx"],
            "76480565CBE296026C53AAACD1AD523A1DDBA24F"
        ));
        assert!(!signature_holds(
            &token,
            &["1409304349", "xxxxxx"],
            "76480565cbe296026c53aaacd1ad523a1ddba24f"
        ));
        assert!(!signature_holds(&token, &["1409304348", "xxxxxx"], ""));
    }

    #[test]
    fn credentials_are_checked_and_never_printed() {
        let c = creds(
            r#"{"token":"pamtest","encoding_aes_key":"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG","format":"xml"}"#,
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("pamtest") && !shown.contains("abcdefg"),
            "{shown}"
        );
        assert_eq!(
            c.redact("x pamtest abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG y"),
            "x *** *** y"
        );
        assert_eq!(c.format(), PushFormat::Xml);
        assert!(c.key().is_some());
        let plain = creds(r#"{"token":"pamtest"}"#).unwrap();
        assert_eq!(plain.format(), PushFormat::Json);
        assert!(plain.key().is_none());
        let msg = |j: &str| creds(j).unwrap_err().to_string();
        assert!(msg(r#"{"token":"ab"}"#).contains("push.token must be 3 to 32"));
        assert!(msg(r#"{"token":"has space"}"#).contains("push.token"));
        assert!(msg(r#"{"token":"pamtest","encoding_aes_key":"short"}"#)
            .contains("encoding_aes_key must be 43 characters"));
        assert!(msg(r#"{"token":"pamtest","format":"yaml"}"#).contains("unknown variant"));
        assert!(msg(r#"{"token":"pamtest","bogus":1}"#).contains("unknown field"));
        // A refused key is not echoed back.
        assert!(!msg(r#"{"token":"pamtest","encoding_aes_key":"sekr!t"}"#).contains("sekr!t"));
    }
}
