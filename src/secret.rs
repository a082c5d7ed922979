//! Secrets (app secrets, access tokens) live in this type so that no `Debug`,
//! `Display` or error message can print them by accident.

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

    /// `text` with every occurrence of this secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() || !occurs_in(text, &self.0) {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
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

#[cfg(test)]
mod tests {
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
        assert_eq!(s.redact("ttok-123tok-123 tok-12"), "t****** tok-12");
        let long = format!("{}tok-123{}", "x".repeat(2000), "y".repeat(10));
        assert_eq!(
            s.redact(&long),
            format!("{}***{}", "x".repeat(2000), "y".repeat(10))
        );
        assert_eq!(s.redact(&"tok-12 ".repeat(300)), "tok-12 ".repeat(300));
    }
}
