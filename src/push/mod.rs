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

/// The `push` object of `register_app`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushSpec {
    pub token: Secret,
    #[serde(default)]
    pub encoding_aes_key: Option<Secret>,
    #[serde(default)]
    pub format: PushFormat,
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
        Ok(PushCredentials {
            token: spec.token,
            key,
            key_text: spec.encoding_aes_key,
            format: spec.format,
        })
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
            .finish()
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
