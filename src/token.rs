//! Access tokens: one cached token per app, fetched once per lifetime however
//! many threads ask, refreshed before expiry, dropped only when it is the one
//! that failed.

use parking_lot::Mutex;

use crate::secret::Secret;

/// A token and the moment (unix ms) it stops being valid.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub token: Secret,
    pub expires_at_ms: i64,
}

/// The cached token of one app.
#[derive(Debug, Default)]
pub struct TokenCache {
    current: Mutex<Option<CachedToken>>,
}

impl TokenCache {
    /// Seconds the cached token has left at `now_ms`, if there is one.
    pub fn seconds_left(&self, now_ms: i64) -> Option<i64> {
        self.current
            .lock()
            .as_ref()
            .map(|t| (t.expires_at_ms - now_ms).div_euclid(1000))
            .filter(|s| *s > 0)
    }

    /// `text` with the cached token replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        match self.current.lock().as_ref() {
            Some(t) => t.token.redact(text),
            None => text.to_string(),
        }
    }
}
