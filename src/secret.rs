//! Secrets (app secrets, access tokens) live in this type so that no `Debug`,
//! `Display` or error message can print them by accident; `redact_text` takes
//! credentials out of free text (errmsgs, store errors) for logs and figures.

use std::fmt;

/// A string that prints as `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The real value, for the one place that must send it to WeChat.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with this secret replaced by `***`. A secret shorter than
    /// `WHOLE_ONLY_BELOW` characters (never a real AppSecret or token, but a
    /// test's `s`) goes only where it stands whole, not inside a longer run of
    /// credential characters (letters, digits, `-`, `_`), so that words like
    /// "access" stay readable; a longer one goes wherever it occurs.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() || !occurs_in(text, &self.0) {
            return text.to_string();
        }
        if self.0.len() >= WHOLE_ONLY_BELOW {
            return text.replace(&self.0, "***");
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (at, _) in text.match_indices(self.0.as_str()) {
            if at < last {
                continue;
            }
            let end = at + self.0.len();
            let before = at == 0 || !is_credential_byte(bytes[at - 1]);
            let after = end == bytes.len() || !is_credential_byte(bytes[end]);
            if before && after {
                out.push_str(&text[last..at]);
                out.push_str("***");
                last = end;
            }
        }
        out.push_str(&text[last..]);
        out
    }
}

impl Secret {
    /// `text` with every occurrence of this secret replaced by `***`, however
    /// short: for credentials that may be short for real (a push Token may
    /// have 3 characters) and would leak when quoted next to other text.
    pub fn redact_everywhere(&self, text: &str) -> String {
        if self.0.is_empty() || !occurs_in(text, &self.0) {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

/// Secrets at least this long are redacted wherever they occur (WeChat's
/// AppSecrets have 32 characters, access tokens far more).
const WHOLE_ONLY_BELOW: usize = 16;

/// What a credential is made of (WeChat secrets are hex, tokens letters,
/// digits, `-` and `_`).
fn is_credential_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `needle` (not empty) occurs in `text`. Every WeChat answer is
/// scrubbed of several secrets, and an answer is short: scanning it directly
/// costs less than setting up the substring searcher of a long token.
fn occurs_in(text: &str, needle: &str) -> bool {
    let (hay, n) = (text.as_bytes(), needle.as_bytes());
    if hay.len() < n.len() {
        return false;
    }
    if hay.len() > 1024 {
        return text.contains(needle);
    }
    hay.windows(n.len()).any(|w| w[0] == n[0] && w == n)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// Names whose values a log line must never show.
const SECRET_KEYS: [&str; 7] = [
    "access_token",
    "appsecret",
    "secret",
    "password",
    // A Redis Unix socket URL's password: `redis+unix:///path?pass=…`.
    "pass",
    "token",
    "code",
];

/// Free text (an errmsg, a store error) with credentials taken out: values of
/// `access_token=…`, `"secret":"…"` and the like, and user:password in URLs.
pub fn redact_text(text: &str) -> String {
    let text = redact_userinfo(text);
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let hit = SECRET_KEYS.iter().find_map(|key| {
            if !lower[i..].starts_with(key) {
                return None;
            }
            // Whole words only ("tokens" or "barcode" stay).
            let before_ok = i == 0 || !is_word(bytes[i - 1]);
            let after = i + key.len();
            let after_ok = after >= bytes.len() || !is_word(bytes[after]);
            if !(before_ok && after_ok) {
                return None;
            }
            let sep = separator_len(&text[after..])?;
            Some(after + sep)
        });
        match hit {
            Some(value_start) => {
                out.push_str(&text[i..value_start]);
                out.push_str("***");
                let end = text[value_start..]
                    .find(|c: char| {
                        matches!(c, '&' | '"' | '\'' | ',' | ';' | '}' | ')') || c.is_whitespace()
                    })
                    .map_or(text.len(), |n| value_start + n);
                i = end;
            }
            None => {
                let ch = text[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Length of `=`, `: `, `":"` and similar between a key and its value, or
/// None when the key is not followed by a value.
fn separator_len(rest: &str) -> Option<usize> {
    let mut n = 0;
    let b = rest.as_bytes();
    if b.first() == Some(&b'"') || b.first() == Some(&b'\'') {
        n += 1;
    }
    while b.get(n) == Some(&b' ') {
        n += 1;
    }
    match b.get(n) {
        Some(b'=') | Some(b':') => n += 1,
        _ => return None,
    }
    while b.get(n) == Some(&b' ') {
        n += 1;
    }
    if b.get(n) == Some(&b'"') || b.get(n) == Some(&b'\'') {
        n += 1;
    }
    Some(n)
}

/// `scheme://user:password@host` → `scheme://***@host`.
fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"')
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn only_whole_values_are_redacted() {
        let short = Secret::new("s");
        assert_eq!(
            short.redact("access token refused: connection refused (s)"),
            "access token refused: connection refused (***)"
        );
        assert_eq!(short.redact("secret=s&x=1"), "secret=***&x=1");
        let long = Secret::new("0123456789abcdef0123456789abcdef");
        assert_eq!(
            long.redact(r#"{"secret":"0123456789abcdef0123456789abcdef"} and 0123456789abcdef0123456789abcdef"#),
            r#"{"secret":"***"} and ***"#
        );
        // A real-length secret goes even inside a longer run.
        assert_eq!(long.redact("x0123456789abcdef0123456789abcdefy"), "x***y");
    }

    use super::*;

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("s3cr3t-value");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "s3cr3t-value");
        assert_eq!(s.redact("x s3cr3t-value y"), "x *** y");
        assert_eq!(Secret::default().redact("abc"), "abc");
    }

    #[test]
    fn redacts_in_short_and_long_texts_alike() {
        let s = Secret::new("tok-123");
        assert_eq!(s.redact("tok-12"), "tok-12");
        assert_eq!(s.redact("tok-123"), "***");
        // A short secret goes only where it stands whole.
        assert_eq!(s.redact("ttok-123tok-123 tok-12"), "ttok-123tok-123 tok-12");
        assert_eq!(s.redact("(tok-123)&tok-123 tok-12"), "(***)&*** tok-12");
        let long = format!("{} tok-123 {}", "x".repeat(2000), "y".repeat(10));
        assert_eq!(
            s.redact(&long),
            format!("{} *** {}", "x".repeat(2000), "y".repeat(10))
        );
        // A real-length one goes wherever it occurs.
        let real = Secret::new("0123456789abcdef0123456789abcdef");
        let glued = format!("x{}y{}", real.expose(), real.expose());
        assert_eq!(real.redact(&glued), "x***y***");
        assert_eq!(s.redact(&"tok-12 ".repeat(300)), "tok-12 ".repeat(300));
    }
}
