//! The access token cache of one app: fetched once per lifetime however many
//! threads ask, refreshed before expiry, dropped only when it is the one that
//! failed, and shared with other processes through the store's fetch lease.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::errcodes::{meaning, next_china_midnight, FetchPause, DAY_MS};
use super::token_mode::TokenMode;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::store::{SharedToken, Store, TokenTurn};

/// After a failed fetch, callers get the same error for this long instead of
/// sending another request (many workers must not hammer a failing endpoint).
pub const FETCH_BACKOFF_MS: i64 = 2_000;

/// The longest pause after 40164 (IP not whitelisted) or 89503 (admin
/// approval pending): nothing changes until a person acts in
/// mp.weixin.qq.com, and once they have, the shop must not wait long.
pub const IP_BACKOFF_MS: i64 = 600_000;

/// The first of those pauses; each failed fetch in a row doubles it, up to
/// `IP_BACKOFF_MS` (5 s, 10 s, 20 s … 10 min after eight failures).
pub const IP_FIRST_BACKOFF_MS: i64 = 5_000;

/// Until when a failed fetch is not repeated: by what the errcode means
/// (`errcodes::FetchPause`, docs/spec/wechat.md, access token); a failure
/// without an errcode for `FETCH_BACKOFF_MS`. Wrong credentials pause until
/// the app is registered again (a new registration has a new cache).
/// `in_a_row` counts this failure and those before it since the last token.
pub fn backoff_until(e: &Error, now_ms: i64, in_a_row: u32) -> i64 {
    let pause = e
        .errcode()
        .map_or(FetchPause::Short, |code| meaning(code).fetch_pause);
    match pause {
        FetchPause::Short => now_ms + FETCH_BACKOFF_MS,
        FetchPause::UntilMidnight => next_china_midnight(now_ms),
        FetchPause::TenMinutes => {
            let doubled =
                IP_FIRST_BACKOFF_MS.saturating_mul(1i64 << in_a_row.saturating_sub(1).min(20));
            now_ms + doubled.min(IP_BACKOFF_MS)
        }
        FetchPause::Hour => now_ms + 3_600_000,
        FetchPause::Day => now_ms + DAY_MS,
        FetchPause::Forever => i64::MAX,
    }
}

/// How often a process waiting for another process's fetch looks at the store.
const SHARED_POLL_MS: i64 = 20;

/// Beyond the request timeouts, how long a fetch lease lasts (the holder
/// publishes, then releases; a holder that died lets it run out).
const LEASE_SLACK_MS: i64 = 1_000;

/// How the token cache reaches the store shared with other processes.
pub struct SharedTokens<'a> {
    pub store: Arc<dyn Store>,
    pub appid: &'a str,
    pub mode: &'static str,
    /// How long the fetch lease lasts: longer than the slowest fetch.
    pub lease_ms: i64,
    /// Told when the store fails (this process then fetches on its own).
    pub report: &'a dyn Fn(&str, &Error),
}

/// A token this process fetched or adopted from the store.
struct Obtained {
    token: CachedToken,
    adopted: bool,
    /// This process's fetch failed and the store's token stands in: the
    /// failure backoff applies as after any failed fetch.
    failed: Option<Error>,
}

impl Obtained {
    fn adopted(t: SharedToken) -> Obtained {
        Obtained {
            token: CachedToken {
                token: t.token,
                expires_at_ms: t.expires_at_ms,
                refresh_at_ms: t.refresh_at_ms,
            },
            adopted: true,
            failed: None,
        }
    }

    fn shared(&self) -> SharedToken {
        SharedToken {
            token: self.token.token.clone(),
            expires_at_ms: self.token.expires_at_ms,
            refresh_at_ms: self.token.refresh_at_ms,
        }
    }
}

/// The fetch lease: longer than one token request may take.
pub fn lease_ms(config: &Config) -> i64 {
    let request = config.connect_timeout_ms.saturating_add(config.timeout_ms);
    i64::try_from(request).unwrap_or(i64::MAX / 2) + LEASE_SLACK_MS
}

/// Who holds a fetch lease: the process and a random part, so that a forked
/// child or a reused pid never counts as the holder.
fn lease_holder() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{}-{:016x}", std::process::id(), h.finish())
}

/// A token and when to stop using it.
#[derive(Debug, Clone)]
pub struct CachedToken {
    pub token: Secret,
    /// Unix ms at which WeChat stops accepting it.
    pub expires_at_ms: i64,
    /// Unix ms from which the next caller fetches a new one.
    pub refresh_at_ms: i64,
}

/// A token as WeChat handed it out.
#[derive(Debug)]
pub struct FreshToken {
    pub token: Secret,
    pub expires_in_secs: i64,
}

#[derive(Debug, Default)]
struct TokenState {
    current: Option<CachedToken>,
    /// The token held before the current one, kept only to redact it from messages.
    previous: Option<Secret>,
    /// A fetch is in flight (in the process with this id); other callers
    /// wait for it instead of fetching. A process forked while its parent was
    /// fetching inherits the mark without the thread that would clear it, so
    /// the mark counts only in the process that set it.
    fetching: Option<u32>,
    /// The last fetch failed; until `until_ms` callers get this error.
    failure: Option<(Error, i64)>,
    /// Fetches failed in a row since the last token (the pause grows with it).
    failed_in_a_row: u32,
}

impl TokenState {
    fn replace(&mut self, next: Option<CachedToken>) {
        if let Some(old) = self.current.take() {
            self.previous = Some(old.token);
        }
        self.current = next;
    }
}

/// The cached token of one app.
#[derive(Debug, Default)]
pub struct TokenCache {
    state: Mutex<TokenState>,
    fetch_done: Condvar,
    fetches: AtomicU64,
    recovered: AtomicU64,
    adopted: AtomicU64,
}

/// Resets the in-flight mark and wakes the waiters even if the fetch panicked.
struct FetchTurn<'a>(&'a TokenCache);

impl Drop for FetchTurn<'_> {
    fn drop(&mut self) {
        self.0.state.lock().fetching = None;
        self.0.fetch_done.notify_all();
    }
}

impl TokenCache {
    /// Seconds the cached token has left at `now_ms`, if there is one.
    pub fn seconds_left(&self, now_ms: i64) -> Option<i64> {
        self.state
            .lock()
            .current
            .as_ref()
            .map(|t| (t.expires_at_ms - now_ms).div_euclid(1000))
            .filter(|s| *s > 0)
    }

    /// `text` with the cached token (and the one before it) replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let state = self.state.lock();
        let text = match &state.current {
            Some(t) => t.token.redact(text),
            None => text.to_string(),
        };
        match &state.previous {
            Some(p) => p.redact(&text),
            None => text,
        }
    }

    /// Requests sent to fetch a token for this app.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Calls that WeChat first refused for a token error and then accepted with a new token.
    pub fn recovered_count(&self) -> u64 {
        self.recovered.load(Ordering::Relaxed)
    }

    /// Tokens adopted from the shared store instead of fetched.
    pub fn adopted_count(&self) -> u64 {
        self.adopted.load(Ordering::Relaxed)
    }

    /// The cached token while it is fresh, otherwise one fetch by one caller
    /// while the others wait for its outcome. A token in its refresh window is
    /// still handed out while the refresh is in flight or has just failed.
    /// With a shared store (`shared` gives it, asked only when the cached
    /// token is not fresh), the one caller first looks there: a token another
    /// process published is adopted, and only the holder of the store's fetch
    /// lease fetches.
    pub fn get_or_fetch<'a>(
        &self,
        clock: &dyn Clock,
        margin_secs: i64,
        shared: impl FnOnce() -> Option<SharedTokens<'a>>,
        fetch: impl FnOnce() -> Result<FreshToken>,
    ) -> Result<Secret> {
        let mut state = self.state.lock();
        loop {
            let now = clock.now_ms();
            if let Some(t) = &state.current {
                if now < t.refresh_at_ms {
                    return Ok(t.token.clone());
                }
            }
            let backing_off = matches!(&state.failure, Some((_, until)) if now < *until);
            let fetching = state.fetching.is_some_and(|pid| pid == std::process::id());
            if let Some(t) = &state.current {
                let usable = now < t.expires_at_ms;
                if usable && (fetching || backing_off) {
                    return Ok(t.token.clone());
                }
            }
            if let Some((error, until)) = &state.failure {
                if now < *until {
                    return Err(error.clone());
                }
            }
            if fetching {
                self.fetch_done.wait(&mut state);
                continue;
            }
            state.fetching = Some(std::process::id());
            break;
        }
        drop(state);

        let turn = FetchTurn(self);
        let outcome = match shared() {
            Some(shared) => self.obtain_shared(clock, margin_secs, &shared, fetch),
            None => self.fetch_now(clock, margin_secs, None, fetch),
        };
        let result = self.keep(clock, outcome);
        drop(turn);
        result
    }

    /// Keeps what a fetch (or the shared store) gave: the token becomes the
    /// current one, a failure starts its backoff (the current token, while it
    /// is valid, still serves).
    fn keep(&self, clock: &dyn Clock, outcome: Result<Obtained>) -> Result<Secret> {
        let mut state = self.state.lock();
        match outcome {
            Ok(Obtained {
                token,
                adopted,
                failed,
            }) => {
                if adopted {
                    self.adopted.fetch_add(1, Ordering::Relaxed);
                }
                let now = clock.now_ms();
                state.failed_in_a_row = if failed.is_some() {
                    state.failed_in_a_row.saturating_add(1)
                } else {
                    0
                };
                let in_a_row = state.failed_in_a_row;
                state.failure = failed.map(|e| {
                    let until = backoff_until(&e, now, in_a_row);
                    (e, until)
                });
                let secret = token.token.clone();
                let same = state
                    .current
                    .as_ref()
                    .is_some_and(|t| t.token == token.token);
                if same {
                    state.current = Some(token);
                } else {
                    state.replace(Some(token));
                }
                Ok(secret)
            }
            Err(e) => {
                let now = clock.now_ms();
                state.failed_in_a_row = state.failed_in_a_row.saturating_add(1);
                let until = backoff_until(&e, now, state.failed_in_a_row);
                state.failure = Some((e.clone(), until));
                match &state.current {
                    Some(t) if now < t.expires_at_ms => Ok(t.token.clone()),
                    _ => Err(e),
                }
            }
        }
    }

    /// One request for a new token by this process. `shared_current` is the
    /// token the store kept so far, for the same-token rule.
    fn fetch_now(
        &self,
        clock: &dyn Clock,
        margin_secs: i64,
        shared_current: Option<&Secret>,
        fetch: impl FnOnce() -> Result<FreshToken>,
    ) -> Result<Obtained> {
        let started = clock.now_ms();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fresh = fetch()?;
        let lifetime_ms = fresh.expires_in_secs.saturating_mul(1000);
        let expires_at_ms = started.saturating_add(lifetime_ms);
        // stable_token hands out the same token, with its remaining life,
        // until its last 300 s (a margin longer than that asks earlier):
        // asking again before its end gains nothing, so it is kept to its end.
        let same = shared_current == Some(&fresh.token)
            || self
                .state
                .lock()
                .current
                .as_ref()
                .is_some_and(|t| t.token == fresh.token);
        let refresh_at_ms = if same {
            expires_at_ms
        } else {
            expires_at_ms - margin_secs.saturating_mul(1000)
        };
        Ok(Obtained {
            token: CachedToken {
                token: fresh.token,
                expires_at_ms,
                refresh_at_ms,
            },
            adopted: false,
            failed: None,
        })
    }

    /// The store's token taken while it is still valid although not fresh;
    /// counted as adopted only when this process did not hold it already.
    fn stand_in(&self, t: SharedToken, refresh_at_ms: i64, failed: Option<Error>) -> Obtained {
        let held = self
            .state
            .lock()
            .current
            .as_ref()
            .is_some_and(|c| c.token == t.token);
        Obtained {
            token: CachedToken {
                token: t.token,
                expires_at_ms: t.expires_at_ms,
                refresh_at_ms,
            },
            adopted: !held,
            failed,
        }
    }

    /// The token through the shared store: adopted when another process
    /// published a fresh one, fetched (and published) by the lease holder,
    /// waited for while another process holds the lease. A store that fails
    /// costs this process a fetch of its own, never the token.
    fn obtain_shared(
        &self,
        clock: &dyn Clock,
        margin_secs: i64,
        shared: &SharedTokens<'_>,
        fetch: impl FnOnce() -> Result<FreshToken>,
    ) -> Result<Obtained> {
        let Some(store) = shared.store.tokens() else {
            return self.fetch_now(clock, margin_secs, None, fetch);
        };
        let (appid, mode) = (shared.appid, shared.mode);
        let holder = lease_holder();
        // Polls until the holder's lease runs out (then this process takes
        // over), and never more often than that whatever the clock does.
        let max_polls = shared.lease_ms / SHARED_POLL_MS + 2;
        let mut polls = 0;
        loop {
            let now = clock.now_ms();
            let turn = match store.token_turn(appid, mode, &holder, now, shared.lease_ms) {
                Ok(turn) => turn,
                Err(e) => {
                    (shared.report)("token_turn", &self.scrub_error(e, None));
                    return self.fetch_now(clock, margin_secs, None, fetch);
                }
            };
            match turn {
                TokenTurn::Fresh(t) => return Ok(Obtained::adopted(t)),
                TokenTurn::Fetch { current } => {
                    let result = self.fetch_now(
                        clock,
                        margin_secs,
                        current.as_ref().map(|c| &c.token),
                        fetch,
                    );
                    let stored = match &result {
                        Ok(got) => store
                            .token_publish(appid, mode, &holder, &got.shared(), clock.now_ms())
                            .map_err(|e| {
                                ("token_publish", self.scrub_error(e, Some(&got.token.token)))
                            }),
                        Err(_) => store
                            .token_release(appid, mode, &holder)
                            .map_err(|e| ("token_release", self.scrub_error(e, None))),
                    };
                    if let Err((operation, e)) = stored {
                        (shared.report)(operation, &e);
                    }
                    // The fetch failed but the store's token still works (this
                    // process may not have held it: started or forked late).
                    return match (result, current) {
                        (Err(e), Some(t)) if clock.now_ms() < t.expires_at_ms => {
                            let refresh_at_ms = t.refresh_at_ms;
                            Ok(self.stand_in(t, refresh_at_ms, Some(e)))
                        }
                        (result, _) => result,
                    };
                }
                TokenTurn::Wait { until_ms, current } => {
                    // Another process refreshes a token that still works: use
                    // it meanwhile, without looking at the store again before
                    // the holder's lease ends.
                    if let Some(t) = current.filter(|t| now < t.expires_at_ms) {
                        let refresh_at_ms = until_ms.min(t.expires_at_ms);
                        return Ok(self.stand_in(t, refresh_at_ms, None));
                    }
                    if polls >= max_polls {
                        return self.fetch_now(clock, margin_secs, None, fetch);
                    }
                    polls += 1;
                    clock.sleep_ms(SHARED_POLL_MS as u64);
                }
            }
        }
    }

    /// A store error with every token this cache knows replaced by `***`
    /// (stores put none into their messages; this makes sure of it).
    fn scrub_error(&self, e: Error, also: Option<&Secret>) -> Error {
        let scrub = |m: String| {
            let m = self.redact(&m);
            match also {
                Some(t) => t.redact(&m),
                None => m,
            }
        };
        match e {
            Error::Store(m) => Error::Store(scrub(m)),
            other => Error::Store(scrub(other.to_string())),
        }
    }

    /// A token the host supplied, until it expires.
    pub fn supply(&self, token: Secret, now_ms: i64, expires_in_secs: i64) {
        let expires_at_ms = now_ms + expires_in_secs * 1000;
        let mut state = self.state.lock();
        state.failure = None;
        state.replace(Some(CachedToken {
            token,
            expires_at_ms,
            refresh_at_ms: expires_at_ms,
        }));
    }

    /// The cached token if it has not expired (external mode: no refresh window).
    pub fn unexpired(&self, now_ms: i64) -> std::result::Result<Secret, Option<i64>> {
        match &self.state.lock().current {
            Some(t) if now_ms < t.expires_at_ms => Ok(t.token.clone()),
            Some(t) => Err(Some((now_ms - t.expires_at_ms).div_euclid(1000))),
            None => Err(None),
        }
    }

    /// Ends a failed fetch's pause at once: the host says the cause is gone
    /// (the IP whitelisted, the admin approved). The next call fetches.
    pub fn clear_failure(&self) {
        let mut state = self.state.lock();
        state.failure = None;
        state.failed_in_a_row = 0;
    }

    /// WeChat refused `failed`: drops it from the shared store (only if it is
    /// still the store's token), then from this process. In that order: a
    /// caller of this process that finds no token here between the two steps
    /// must not adopt the refused token back from the store. Whether this
    /// process held it.
    pub fn drop_failed(&self, failed: &str, shared: Option<SharedTokens<'_>>) -> bool {
        if let Some(shared) = shared {
            if let Some(store) = shared.store.tokens() {
                if let Err(e) = store.token_drop_if(shared.appid, shared.mode, failed) {
                    let e = self.scrub_error(e, Some(&Secret::new(failed)));
                    (shared.report)("token_drop_if", &e);
                }
            }
        }
        self.invalidate_if(failed)
    }

    /// Drops the cached token only if it is still `failed`, so that a late
    /// report about an old token cannot throw away a fresh one.
    pub fn invalidate_if(&self, failed: &str) -> bool {
        let mut state = self.state.lock();
        let matches = state
            .current
            .as_ref()
            .is_some_and(|t| t.token.expose() == failed);
        if matches {
            state.replace(None);
        }
        matches
    }

    pub fn note_recovered(&self) {
        self.recovered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Token figures of one app, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenStats {
    pub mode: TokenMode,
    /// Requests sent to WeChat's token endpoints (failed ones included).
    pub fetches: u64,
    /// Calls WeChat refused for a token error and then accepted with a new token.
    pub recovered: u64,
    /// Tokens taken from the shared store (`sqlite:`, `redis://`) that
    /// another process had fetched.
    pub adopted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn no_share() -> Option<SharedTokens<'static>> {
        None
    }

    fn fresh(token: &str, secs: i64) -> Result<FreshToken> {
        Ok(FreshToken {
            token: Secret::new(token),
            expires_in_secs: secs,
        })
    }

    #[test]
    fn refresh_point_is_margin_before_expiry_unless_the_same_token_comes_back() {
        let clock = ManualClock::at(1_000);
        let cache = TokenCache::default();
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 7200))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(6899);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("B", 7200))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(1);
        // stable_token near the end: the same token with 300 s left. Kept to
        // its end without asking again.
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 300))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(299);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(1);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("C", 7200))
            .unwrap();
        assert_eq!(t.expose(), "C");
        assert_eq!(cache.fetch_count(), 3);
        // A new token with less life than the margin: refreshed by the next
        // call, which gets it back and then keeps it.
        clock.advance_secs(7200);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("D", 100))
            .unwrap();
        assert_eq!(t.expose(), "D");
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("D", 100))
            .unwrap();
        assert_eq!(t.expose(), "D");
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "D");
        assert_eq!(cache.fetch_count(), 5);
    }

    #[test]
    fn failed_refresh_keeps_the_still_valid_token() {
        let clock = ManualClock::at(1_000);
        let cache = TokenCache::default();
        cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 7200))
            .unwrap();
        clock.advance_secs(7000);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || Err(Error::Network("down".into())))
            .unwrap();
        assert_eq!(t.expose(), "A");
        // Within the backoff window no new fetch happens.
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(200);
        let e = cache
            .get_or_fetch(&clock, 300, no_share, || {
                Err(Error::Network("still down".into()))
            })
            .unwrap_err();
        assert_eq!(e, Error::Network("still down".into()));
        assert_eq!(cache.fetch_count(), 3);
    }

    fn wechat_error(errcode: i64) -> Error {
        Error::WeChat {
            errcode,
            errmsg: format!("errcode {errcode}"),
        }
    }

    /// Fetches failing with `errcode` until `pause_ms` has passed, then not.
    fn backs_off_for(errcode: i64, start_secs: i64, pause_ms: i64) {
        let clock = ManualClock::at(start_secs);
        let cache = TokenCache::default();
        let e = cache
            .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(errcode)))
            .unwrap_err();
        assert_eq!(e.errcode(), Some(errcode));
        clock.advance_ms(pause_ms - 1);
        let again = cache
            .get_or_fetch(&clock, 300, no_share, || {
                panic!("{errcode}: must not fetch")
            })
            .unwrap_err();
        assert_eq!(again, e);
        clock.advance_ms(1);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("B", 7200))
            .unwrap();
        assert_eq!(t.expose(), "B", "{errcode}");
        assert_eq!(cache.fetch_count(), 2, "{errcode}");
    }

    #[test]
    fn token_fetch_failures_back_off_by_errcode() {
        // 2026-11-23 15:00:00 UTC is 23:00 in China: the daily quota resets in an hour.
        let at_secs = 1_795_446_000;
        backs_off_for(45009, at_secs, 3_600_000);
        backs_off_for(40164, at_secs, IP_FIRST_BACKOFF_MS);
        backs_off_for(89503, at_secs, IP_FIRST_BACKOFF_MS);
        backs_off_for(89506, at_secs, DAY_MS);
        backs_off_for(89507, at_secs, 3_600_000);
        backs_off_for(-1, at_secs, FETCH_BACKOFF_MS);
        backs_off_for(40001, at_secs, FETCH_BACKOFF_MS);
        let at = at_secs * 1000;
        // Just after midnight China time the next reset is a whole day away.
        assert_eq!(
            backoff_until(&wechat_error(45009), at + 3_600_000, 1),
            at + 3_600_000 + DAY_MS
        );
        assert_eq!(
            backoff_until(&Error::Network("down".into()), at, 1),
            at + FETCH_BACKOFF_MS
        );
        // The IP pauses grow with failures in a row: 5 s, 10 s … 10 min.
        let ip = wechat_error(40164);
        let pauses: Vec<i64> = (1..=9).map(|n| backoff_until(&ip, at, n) - at).collect();
        assert_eq!(
            pauses,
            [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 600_000, 600_000]
        );
        assert_eq!(backoff_until(&ip, at, u32::MAX) - at, IP_BACKOFF_MS);
    }

    /// A process kept failing for 10 minutes after the whitelist was fixed.
    #[test]
    fn a_whitelist_failure_pauses_seconds_growing_and_invalidate_ends_it() {
        let clock = ManualClock::at(1_795_446_000);
        let cache = TokenCache::default();
        for (n, pause) in [(1, 5_000), (2, 10_000), (3, 20_000)] {
            cache
                .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(40164)))
                .unwrap_err();
            assert_eq!(cache.fetch_count(), n);
            clock.advance_ms(pause - 1);
            cache
                .get_or_fetch(&clock, 300, no_share, || panic!("within the pause"))
                .unwrap_err();
            clock.advance_ms(1);
        }
        cache
            .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(40164)))
            .unwrap_err();
        // The admin whitelisted the IP and the host says so: no waiting.
        cache.clear_failure();
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("OK", 7200))
            .unwrap();
        assert_eq!(t.expose(), "OK");
        // A later failure starts from the short pause again.
        clock.advance_secs(7200);
        cache
            .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(40164)))
            .unwrap_err();
        clock.advance_ms(5_000);
        cache
            .get_or_fetch(&clock, 300, no_share, || fresh("OK2", 7200))
            .unwrap();
    }

    #[test]
    fn wrong_credentials_stop_fetches_until_registered_again() {
        for errcode in [40013, 40125, 40243] {
            let clock = ManualClock::at(1_000);
            let cache = TokenCache::default();
            cache
                .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(errcode)))
                .unwrap_err();
            clock.advance_secs(400 * 86_400);
            let e = cache
                .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
                .unwrap_err();
            assert_eq!(e.errcode(), Some(errcode));
            assert_eq!(cache.fetch_count(), 1);
        }
    }

    #[test]
    fn a_quota_failure_keeps_handing_out_the_valid_token() {
        let clock = ManualClock::at(1_795_446_000);
        let cache = TokenCache::default();
        cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 7200))
            .unwrap();
        clock.advance_secs(7000);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || Err(wechat_error(45009)))
            .unwrap();
        assert_eq!(t.expose(), "A");
        clock.advance_secs(100);
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "A");
        // Once it expired the quota error comes back, still without a fetch.
        clock.advance_secs(200);
        let e = cache
            .get_or_fetch(&clock, 300, no_share, || panic!("must not fetch"))
            .unwrap_err();
        assert_eq!(e.errcode(), Some(45009));
    }

    #[test]
    fn a_fetch_of_the_parent_process_does_not_block_a_forked_child() {
        let clock = ManualClock::at(1_000);
        let cache = TokenCache::default();
        // As inherited by a child forked while the parent was fetching.
        cache.state.lock().fetching = Some(std::process::id().wrapping_add(1));
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 7200))
            .unwrap();
        assert_eq!(t.expose(), "A");
        assert_eq!(cache.state.lock().fetching, None);
    }

    #[test]
    fn a_panicking_fetch_releases_the_waiters() {
        let clock = ManualClock::at(1_000);
        let cache = TokenCache::default();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cache.get_or_fetch(&clock, 300, no_share, || panic!("bug"))
        }));
        assert!(r.is_err());
        let t = cache
            .get_or_fetch(&clock, 300, no_share, || fresh("A", 7200))
            .unwrap();
        assert_eq!(t.expose(), "A");
    }

    /// Run by `token_drop_if` before the store drops the token: what another
    /// caller does at that moment.
    type OnDrop = Box<dyn FnOnce() + Send>;

    /// A store whose token answers the test sets, counting the looks.
    struct ScriptedStore {
        turn: Mutex<TokenTurn>,
        looks: AtomicU64,
        releases: AtomicU64,
        on_drop: Mutex<Option<OnDrop>>,
        /// What `token_turn` answers once the token was dropped.
        after_drop: Mutex<Option<TokenTurn>>,
    }

    impl std::fmt::Debug for ScriptedStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("ScriptedStore")
        }
    }

    impl ScriptedStore {
        fn new(turn: TokenTurn) -> Arc<ScriptedStore> {
            Arc::new(ScriptedStore {
                turn: Mutex::new(turn),
                looks: AtomicU64::new(0),
                releases: AtomicU64::new(0),
                on_drop: Mutex::new(None),
                after_drop: Mutex::new(None),
            })
        }

        fn looks(&self) -> u64 {
            self.looks.load(Ordering::SeqCst)
        }
    }

    impl Store for ScriptedStore {
        fn describe(&self) -> String {
            "scripted".into()
        }
        fn add(
            &self,
            _: &str,
            _: &crate::store::NewPermit,
            _: i64,
            _: usize,
        ) -> Result<crate::store::Added> {
            unreachable!("tokens only")
        }
        fn take(
            &self,
            _: &str,
            _: &str,
            _: &crate::store::PermitRequest,
            _: i64,
            _: i64,
        ) -> Result<Option<crate::store::Lease>> {
            unreachable!("tokens only")
        }
        fn consume(&self, _: &crate::store::Lease, _: i64) -> Result<crate::store::Remaining> {
            unreachable!("tokens only")
        }
        fn give_back(&self, _: &crate::store::Lease) -> Result<()> {
            unreachable!("tokens only")
        }
        fn discard(&self, _: &crate::store::Lease) -> Result<()> {
            unreachable!("tokens only")
        }
        fn drop_grants(&self, _: &str, _: &str, _: &str) -> Result<u64> {
            unreachable!("tokens only")
        }
        fn stats(&self, _: &str, _: Option<&str>, _: i64) -> Result<crate::store::PermitStats> {
            unreachable!("tokens only")
        }
        fn purge(&self, _: &str, _: i64, _: Option<i64>) -> Result<u64> {
            unreachable!("tokens only")
        }
        fn idempotency_claim(&self, _: &str, _: i64, _: i64) -> Result<crate::store::KeyClaim> {
            unreachable!("tokens only")
        }
        fn idempotency_complete(&self, _: &str, _: &str, _: i64) -> Result<()> {
            unreachable!("tokens only")
        }
        fn idempotency_release(&self, _: &str) -> Result<()> {
            unreachable!("tokens only")
        }
        fn tokens(&self) -> Option<&dyn crate::store::TokenStore> {
            Some(self)
        }
    }

    impl crate::store::TokenStore for ScriptedStore {
        fn token_turn(&self, _: &str, _: &str, _: &str, _: i64, _: i64) -> Result<TokenTurn> {
            self.looks.fetch_add(1, Ordering::SeqCst);
            Ok(self.turn.lock().clone())
        }
        fn token_publish(&self, _: &str, _: &str, _: &str, _: &SharedToken, _: i64) -> Result<()> {
            Ok(())
        }
        fn token_release(&self, _: &str, _: &str, _: &str) -> Result<()> {
            self.releases.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn token_drop_if(&self, _: &str, _: &str, _: &str) -> Result<bool> {
            let hook = self.on_drop.lock().take();
            if let Some(hook) = hook {
                hook();
            }
            let Some(next) = self.after_drop.lock().take() else {
                return Ok(false);
            };
            *self.turn.lock() = next;
            Ok(true)
        }
    }

    fn store_must_not_fail(operation: &str, e: &Error) {
        panic!("store reported {operation}: {e}")
    }

    fn through(store: &Arc<ScriptedStore>) -> impl FnOnce() -> Option<SharedTokens<'static>> {
        let store: Arc<dyn Store> = store.clone();
        move || {
            Some(SharedTokens {
                store,
                appid: "wxscripted",
                mode: "stable",
                lease_ms: 1_300,
                report: &store_must_not_fail,
            })
        }
    }

    fn stored(token: &str, expires_at_ms: i64, refresh_at_ms: i64) -> SharedToken {
        SharedToken {
            token: Secret::new(token),
            expires_at_ms,
            refresh_at_ms,
        }
    }

    #[test]
    fn a_refused_token_is_not_adopted_back_from_the_store_by_another_caller() {
        let clock = Arc::new(ManualClock::at(10_000));
        let now = clock.now_ms();
        // WeChat refused DEAD (the sandbox clock jumped); this process and the
        // store both still hold it as fresh.
        let store = ScriptedStore::new(TokenTurn::Fresh(stored(
            "DEAD",
            now + 7_000_000,
            now + 6_000_000,
        )));
        *store.after_drop.lock() = Some(TokenTurn::Fetch { current: None });
        let cache = Arc::new(TokenCache::default());
        cache.supply(Secret::new("DEAD"), now, 7_000);
        // Another thread of this process asks for the token while the refused
        // one is being dropped.
        let (other_cache, other_clock, other_store) = (cache.clone(), clock.clone(), store.clone());
        *store.on_drop.lock() = Some(Box::new(move || {
            let got = other_cache
                .get_or_fetch(other_clock.as_ref(), 300, through(&other_store), || {
                    panic!("must not fetch")
                })
                .unwrap();
            // It may still use DEAD (and be refused itself), never adopt it anew.
            assert_eq!(got.expose(), "DEAD");
        }));
        assert!(cache.drop_failed("DEAD", through(&store)()));
        assert_eq!(store.looks(), 0, "the other caller used its own copy");
        let next = cache
            .get_or_fetch(clock.as_ref(), 300, through(&store), || fresh("NEW", 7_200))
            .unwrap();
        assert_eq!(next.expose(), "NEW");
        assert_eq!(cache.fetch_count(), 1);
    }

    #[test]
    fn while_another_process_holds_the_lease_the_old_token_is_kept_until_the_lease_ends() {
        let clock = ManualClock::at(10_000);
        let now = clock.now_ms();
        // The store's token is in its refresh window; another process fetches until now + 1300.
        let old = stored("OLD", now + 200_000, now - 100_000);
        let store = ScriptedStore::new(TokenTurn::Wait {
            until_ms: now + 1_300,
            current: Some(old.clone()),
        });
        let cache = TokenCache::default();
        for _ in 0..5 {
            let t = cache
                .get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
                .unwrap();
            assert_eq!(t.expose(), "OLD");
            clock.advance_ms(250);
        }
        assert_eq!(store.looks(), 1, "one store look for the whole lease");
        assert_eq!(cache.adopted_count(), 1);
        // The lease ends: the next call looks again and adopts the new token.
        clock.advance_ms(50);
        *store.turn.lock() = TokenTurn::Fresh(stored("NEW", now + 7_200_000, now + 6_900_000));
        let t = cache
            .get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "NEW");
        assert_eq!(store.looks(), 2);
        assert_eq!(cache.adopted_count(), 2);

        // A process that held the old token already does not count it again.
        let held = TokenCache::default();
        held.supply(Secret::new("OLD"), 0, 1);
        *store.turn.lock() = TokenTurn::Wait {
            until_ms: clock.now_ms() + 1_300,
            current: Some(stored("OLD", clock.now_ms() + 1_000, 0)),
        };
        // The token's end comes before the lease's: looked at again from there.
        let t = held
            .get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "OLD");
        assert_eq!(held.adopted_count(), 0);
        clock.advance_ms(999);
        held.get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
            .unwrap();
        assert_eq!(store.looks(), 3);
        clock.advance_ms(1);
        *store.turn.lock() = TokenTurn::Fresh(stored("NEW", now + 7_200_000, now + 6_900_000));
        let t = held
            .get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "NEW");
        assert_eq!(store.looks(), 4);
    }

    #[test]
    fn a_failed_fetch_by_the_lease_holder_falls_back_on_the_stores_valid_token() {
        let clock = ManualClock::at(10_000);
        let now = clock.now_ms();
        let store = ScriptedStore::new(TokenTurn::Fetch {
            current: Some(stored("STORED", now + 60_000, now - 240_000)),
        });
        // A process started late: it never held the stored token.
        let cache = TokenCache::default();
        let t = cache
            .get_or_fetch(&clock, 300, through(&store), || {
                Err(Error::Network("token endpoint down".into()))
            })
            .unwrap();
        assert_eq!(t.expose(), "STORED");
        assert_eq!(store.releases.load(Ordering::SeqCst), 1);
        assert_eq!(cache.fetch_count(), 1);
        // The failure backoff holds: no fetch and no store look meanwhile.
        clock.advance_ms(FETCH_BACKOFF_MS - 1);
        let t = cache
            .get_or_fetch(&clock, 300, through(&store), || panic!("must not fetch"))
            .unwrap();
        assert_eq!(t.expose(), "STORED");
        assert_eq!(store.looks(), 1);
        // After it the next call tries again.
        clock.advance_ms(1);
        let t = cache
            .get_or_fetch(&clock, 300, through(&store), || fresh("NEW", 7200))
            .unwrap();
        assert_eq!(t.expose(), "NEW");
        assert_eq!(cache.fetch_count(), 2);

        // Without a valid stored token the failure is the answer.
        *store.turn.lock() = TokenTurn::Fetch {
            current: Some(stored("GONE", clock.now_ms(), clock.now_ms() - 300_000)),
        };
        let late = TokenCache::default();
        let e = late
            .get_or_fetch(&clock, 300, through(&store), || {
                Err(Error::Network("token endpoint down".into()))
            })
            .unwrap_err();
        assert_eq!(e, Error::Network("token endpoint down".into()));
    }
}
