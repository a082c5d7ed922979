//! Access tokens: one cached token per app, fetched once per lifetime however
//! many threads ask, refreshed before expiry, dropped only when it is the one
//! that failed; and the WeChat calls that carry the managed token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use serde_json::{json, Value};

use crate::apps::{App, TokenMode};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::http::{HttpReply, HttpRequest, Method, Transport, TransportError};
use crate::journal::TokenRecord;
use crate::notifier::Notifier;
use crate::secret::Secret;
use crate::store::{SharedToken, Store, TokenTurn};

/// After a failed fetch, callers get the same error for this long instead of
/// sending another request (many workers must not hammer a failing endpoint).
pub const FETCH_BACKOFF_MS: i64 = 2_000;

/// The errcodes that mean "this access token is not (or no longer) valid".
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// The longest lifetime a host may give a supplied token (WeChat's are 7200 s).
pub const MAX_SUPPLIED_LIFETIME_SECS: i64 = 86_400;

/// Longest supplied token accepted (WeChat's are about 150 characters).
const MAX_TOKEN_BYTES: usize = 512;

/// How much of an unreadable answer goes into a message.
const EXCERPT_CHARS: usize = 160;

/// How often a process waiting for another process's fetch looks at the store.
const SHARED_POLL_MS: i64 = 20;

/// Beyond the request timeouts, how long a fetch lease lasts (the holder
/// publishes, then releases; a holder that died lets it run out).
const LEASE_SLACK_MS: i64 = 1_000;

/// How the token cache reaches the store shared with other processes.
pub(crate) struct SharedTokens<'a> {
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
fn lease_ms(config: &crate::config::Config) -> i64 {
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
    pub(crate) fn get_or_fetch<'a>(
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
        let mut state = self.state.lock();
        let result = match outcome {
            Ok(Obtained {
                token,
                adopted,
                failed,
            }) => {
                if adopted {
                    self.adopted.fetch_add(1, Ordering::Relaxed);
                }
                state.failure = failed.map(|e| (e, clock.now_ms() + FETCH_BACKOFF_MS));
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
                state.failure = Some((e.clone(), now + FETCH_BACKOFF_MS));
                match &state.current {
                    Some(t) if now < t.expires_at_ms => Ok(t.token.clone()),
                    _ => Err(e),
                }
            }
        };
        drop(state);
        drop(turn);
        result
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

    fn note_recovered(&self) {
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

// ---------------------------------------------------------------------------
// calls carrying the managed token

/// WeChat's answer to a call (HTTP 2xx with a JSON object). A non-zero
/// `errcode` is an answer, not a failure: the send policy decides what it means.
#[derive(Debug, Clone, PartialEq)]
pub struct WeChatReply {
    /// 0 when WeChat left it out.
    pub errcode: i64,
    pub errmsg: String,
    /// The JSON text as WeChat sent it (credentials redacted, if WeChat ever echoed one).
    pub body: String,
    pub json: Value,
    /// HTTP requests this call made: 2 after a token error and the retry with a new token.
    pub requests: u32,
}

impl WeChatReply {
    pub fn is_ok(&self) -> bool {
        self.errcode == 0
    }

    /// `Error::WeChat` for a non-zero errcode.
    pub fn error(&self) -> Option<Error> {
        (self.errcode != 0).then(|| Error::WeChat {
            errcode: self.errcode,
            errmsg: self.errmsg.clone(),
        })
    }
}

/// Why a call got no usable answer from WeChat. Every message is free of
/// secrets and tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// Nothing was sent for this call: no token could be had (fetch failed,
    /// external token missing) or the app cannot be used. Holds the reason
    /// with its own status.
    NoToken(Error),
    /// The transport failed before the request was completely written. Safe to retry.
    NotSent(String),
    /// The request may have reached WeChat (timeout or reset after it was
    /// written). A send must not be retried: it could arrive twice.
    MaybeDelivered(String),
    /// An HTTP error status (typically a 5xx from WeChat's front end).
    HttpStatus { status: u16, message: String },
    /// HTTP 2xx whose body is not a JSON object with an integer errcode.
    Malformed(String),
}

impl CallError {
    /// Whether WeChat can have acted on the request.
    pub fn may_have_reached_wechat(&self) -> bool {
        !matches!(self, CallError::NoToken(_) | CallError::NotSent(_))
    }

    /// The crate error for a caller with no retry policy of its own:
    /// maybe-delivered is UNCERTAIN, every other transport problem NETWORK_ERROR.
    pub fn into_error(self) -> Error {
        match self {
            CallError::NoToken(e) => e,
            CallError::NotSent(m) | CallError::Malformed(m) => Error::Network(m),
            CallError::HttpStatus { message, .. } => Error::Network(message),
            CallError::MaybeDelivered(m) => Error::Uncertain(m),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NoToken(e) => write!(f, "{e}"),
            CallError::NotSent(m)
            | CallError::MaybeDelivered(m)
            | CallError::Malformed(m)
            | CallError::HttpStatus { message: m, .. } => f.write_str(m),
        }
    }
}

/// `text` cut to a short excerpt for a message.
fn excerpt(text: &str) -> String {
    let mut out: String = text.chars().take(EXCERPT_CHARS).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// `e` with `context` in front of its message.
fn with_context(e: Error, context: &str) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("{context}{m}")),
        Error::AppNotConfigured(m) => Error::AppNotConfigured(format!("{context}{m}")),
        Error::Mapping(m) => Error::Mapping(format!("{context}{m}")),
        Error::NoPermit(m) => Error::NoPermit(format!("{context}{m}")),
        Error::Network(m) => Error::Network(format!("{context}{m}")),
        Error::Uncertain(m) => Error::Uncertain(format!("{context}{m}")),
        Error::Store(m) => Error::Store(format!("{context}{m}")),
        Error::Internal(m) => Error::Internal(format!("{context}{m}")),
        Error::WeChat { errcode, errmsg } => Error::WeChat {
            errcode,
            errmsg: format!("{context}{errmsg}"),
        },
    }
}

fn mode_name(mode: TokenMode) -> &'static str {
    match mode {
        TokenMode::Stable => "stable",
        TokenMode::Classic => "classic",
        TokenMode::External => "external",
    }
}

/// `GET` or `POST`, in any case.
fn parse_method(method: &str) -> Result<Method> {
    if method.eq_ignore_ascii_case("GET") {
        Ok(Method::Get)
    } else if method.eq_ignore_ascii_case("POST") {
        Ok(Method::Post)
    } else {
        Err(Error::invalid(format!(
            "method must be \"GET\" or \"POST\", got {:?}",
            excerpt(method)
        )))
    }
}

/// A path relative to `api_base`: `/` first, printable ASCII, no fragment, no
/// token of its own (the managed one is appended).
pub fn check_api_path(path: &str) -> Result<()> {
    if !path.starts_with('/') || path.starts_with("//") {
        // Only the part before any query is echoed: a query may hold a token.
        let (route, query) = match path.split_once('?') {
            Some((route, _)) => (route, " (query not shown)"),
            None => (path, ""),
        };
        return Err(Error::invalid(format!(
            "path must start with one '/' and be relative to api_base (e.g. \"/wxaapi/newtmpl/gettemplate\"), got {:?}{query}",
            excerpt(route)
        )));
    }
    if path.len() > 2048 {
        return Err(Error::invalid(format!(
            "path is longer than 2048 bytes ({} bytes)",
            path.len()
        )));
    }
    if let Some(c) = path.chars().find(|c| !c.is_ascii_graphic() || *c == '#') {
        return Err(Error::invalid(format!(
            "path may only hold printable ASCII without '#' (percent-encode other characters), found {c:?}"
        )));
    }
    let has_token = path
        .split_once('?')
        .is_some_and(|(_, q)| q.split('&').any(|kv| kv.starts_with("access_token=")));
    if has_token {
        return Err(Error::invalid(
            "path must not carry access_token: the managed token is appended",
        ));
    }
    Ok(())
}

/// A supplied token goes into URLs: 1 to 512 visible ASCII characters.
fn check_supplied_token(token: &str) -> Result<()> {
    if token.is_empty() {
        return Err(Error::invalid("token must not be empty"));
    }
    if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
        // The value itself is never echoed: it may be a real token.
        return Err(Error::invalid(format!(
            "token must be 1 to {MAX_TOKEN_BYTES} visible ASCII characters (got {} bytes)",
            token.len()
        )));
    }
    Ok(())
}

impl Notifier {
    /// Replaces how this notifier reaches WeChat (an in-memory transport in tests).
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        self.http.set_transport(transport);
    }

    /// The app's valid access token: cached, fetched once for all waiting
    /// callers, or (external mode) the one the host supplied.
    pub fn access_token(&self, appid: &str) -> Result<Secret> {
        let app = self.apps.get(appid)?;
        self.token_of(&app)
    }

    /// Token requests sent and token errors recovered for the app, since it was registered.
    pub fn token_stats(&self, appid: &str) -> Result<TokenStats> {
        let app = self.apps.get(appid)?;
        Ok(TokenStats {
            mode: app.token_mode,
            fetches: app.token.fetch_count(),
            recovered: app.token.recovered_count(),
            adopted: app.token.adopted_count(),
        })
    }

    /// Hands the library a token for an `external` app, valid for `expires_in_secs`.
    pub fn set_access_token(&self, appid: &str, token: &str, expires_in_secs: i64) -> Result<()> {
        let app = self.apps.get(appid)?;
        check_supplied_token(token)?;
        if !(1..=MAX_SUPPLIED_LIFETIME_SECS).contains(&expires_in_secs) {
            return Err(Error::invalid(format!(
                "expires_in_secs must be between 1 and {MAX_SUPPLIED_LIFETIME_SECS}, got {expires_in_secs}"
            )));
        }
        if app.token_mode != TokenMode::External {
            return Err(Error::invalid(format!(
                "app {} has token_mode {}: the library fetches its tokens; only an app registered with \"token_mode\": \"external\" takes a supplied one",
                app.appid,
                mode_name(app.token_mode)
            )));
        }
        app.token
            .supply(Secret::new(token), self.clock.now_ms(), expires_in_secs);
        Ok(())
    }

    /// Drops the cached token if it is still `token`; a report about an older
    /// token changes nothing. Returns whether the token was dropped.
    pub fn invalidate_token(&self, appid: &str, token: &str) -> Result<bool> {
        let app = self.apps.get(appid)?;
        if token.is_empty() {
            return Err(Error::invalid("token must not be empty"));
        }
        if app.token_mode == TokenMode::External {
            return Ok(app.token.invalidate_if(token));
        }
        Ok(self.drop_failed_token(&app, token))
    }

    /// Any WeChat JSON API with the managed token appended and the token-error
    /// recovery applied. Returns WeChat's JSON; a non-zero errcode is `Error::WeChat`.
    pub fn call_api(
        &self,
        appid: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<String> {
        match self.call_api_reply(appid, method, path, body) {
            (Ok(()), Some(body)) => Ok(body),
            (Ok(()), None) => Err(Error::internal("call_api: an answer without a body")),
            (Err(e), _) => Err(e),
        }
    }

    /// `call_api` that also hands back WeChat's JSON when its errcode is non-zero.
    pub fn call_api_reply(
        &self,
        appid: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> (Result<()>, Option<String>) {
        let outcome = (|| {
            let app = self.apps.get(appid)?;
            let method = parse_method(method)?;
            check_api_path(path)?;
            if let Some(body) = body {
                if method == Method::Get {
                    return Err(Error::invalid("body_json must be NULL for a GET"));
                }
                serde_json::from_str::<serde::de::IgnoredAny>(body)
                    .map_err(|e| Error::invalid(format!("body_json is not valid JSON: {e}")))?;
            }
            Ok(self.call_wechat(&app, method, path, body.map(str::as_bytes)))
        })();
        match outcome {
            Err(e) => (Err(e), None),
            Ok(Err(call)) => (Err(call.into_error()), None),
            Ok(Ok(reply)) => (reply.error().map_or(Ok(()), Err), Some(reply.body)),
        }
    }

    /// POSTs `body` to `path` with the managed token: the send path.
    pub fn post_wechat(
        &self,
        app: &App,
        path: &str,
        body: &[u8],
    ) -> Result<WeChatReply, CallError> {
        self.call_wechat(app, Method::Post, path, Some(body))
    }

    /// One call with the managed token. On a token errcode the token is
    /// dropped (only if still the one used), a token obtained once more and the
    /// call repeated once; never more.
    pub(crate) fn call_wechat(
        &self,
        app: &App,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<WeChatReply, CallError> {
        let token = self.token_of(app).map_err(CallError::NoToken)?;
        let first = self.call_with_token(app, method, path, body, &token)?;
        if !TOKEN_ERRCODES.contains(&first.errcode) {
            return Ok(first);
        }
        self.drop_failed_token(app, token.expose());
        let fresh = self.token_of(app).map_err(|e| {
            CallError::NoToken(with_context(
                e,
                &format!(
                    "WeChat refused the access token of {} (errcode {}: {}) and no new one could be had: ",
                    app.appid, first.errcode, first.errmsg
                ),
            ))
        })?;
        let mut second = self.call_with_token(app, method, path, body, &fresh)?;
        second.requests = 2;
        if second.errcode == 0 {
            app.token.note_recovered();
            self.metrics.record_token_error_recovered(&app.appid);
        }
        Ok(second)
    }

    fn call_with_token(
        &self,
        app: &App,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        token: &Secret,
    ) -> Result<WeChatReply, CallError> {
        let mut req = HttpRequest::new(method, &self.api_base_of(app), path)
            .credential("access_token", token.clone());
        req.body = body.map(<[u8]>::to_vec);
        let scrub = |text: &str| app.redact(&req.redact(text));
        let reply = self.http.call(&req).map_err(|e| match e {
            TransportError::NotSent(m) => CallError::NotSent(scrub(&m)),
            TransportError::MaybeDelivered(m) => CallError::MaybeDelivered(scrub(&m)),
        })?;
        let (json, text) = read_json(&req, &reply, true).map_err(|e| match e {
            JsonProblem::Status(status, m) => CallError::HttpStatus {
                status,
                message: scrub(&m),
            },
            JsonProblem::Malformed(m) => CallError::Malformed(scrub(&m)),
        })?;
        let errcode = match json.get("errcode") {
            None => 0,
            Some(v) => v.as_i64().ok_or_else(|| {
                CallError::Malformed(scrub(&format!(
                    "{}: WeChat answered with a non-integer errcode: {}",
                    req.describe(),
                    excerpt(&text)
                )))
            })?,
        };
        let errmsg = json
            .get("errmsg")
            .and_then(Value::as_str)
            .unwrap_or(if errcode == 0 { "ok" } else { "" });
        let errmsg = scrub(errmsg);
        let body = scrub(&text);
        // Should WeChat ever echo a credential, the parsed form loses it too.
        let json = if body == text {
            json
        } else {
            serde_json::from_str(&body).unwrap_or(Value::Null)
        };
        Ok(WeChatReply {
            errcode,
            errmsg,
            body,
            json,
            requests: 1,
        })
    }

    /// The app's token by its mode (no fetch in external mode).
    pub(crate) fn token_of(&self, app: &App) -> Result<Secret> {
        if app.token_mode == TokenMode::External {
            return app.token.unexpired(self.clock.now_ms()).map_err(|expired| {
                let why = match expired {
                    Some(ago) => {
                        format!("the token given with set_access_token expired {ago} s ago")
                    }
                    None => "call set_access_token first".to_string(),
                };
                Error::AppNotConfigured(format!(
                    "no access token supplied for {} (token_mode external): {why}",
                    app.appid
                ))
            });
        }
        let config = self.config();
        let report = |operation: &str, e: &Error| self.note_token_store_problem(operation, e);
        let shared = || {
            let store = self.ledger.store();
            store.tokens()?;
            Some(SharedTokens {
                store,
                appid: &app.appid,
                mode: mode_name(app.token_mode),
                lease_ms: lease_ms(&config),
                report: &report,
            })
        };
        app.token.get_or_fetch(
            self.clock.as_ref(),
            config.token_margin_secs,
            shared,
            || self.fetch_observed(app),
        )
    }

    /// The shared store failed: the structured log says so (this process
    /// fetches on its own meanwhile).
    fn note_token_store_problem(&self, operation: &str, e: &Error) {
        let message = match e {
            Error::Store(m) => m.clone(),
            other => other.to_string(),
        };
        self.journal.store_problem(
            &self.ledger.describe_store(),
            operation,
            &format!("{message} (access tokens are fetched by this process alone meanwhile)"),
        );
    }

    /// Drops `failed` from the in-process cache and, only if it is still the
    /// shared one, from the store; whether the in-process cache held it.
    fn drop_failed_token(&self, app: &App, failed: &str) -> bool {
        let dropped = app.token.invalidate_if(failed);
        let store = self.ledger.store();
        if let Some(tokens) = store.tokens() {
            if let Err(e) = tokens.token_drop_if(&app.appid, mode_name(app.token_mode), failed) {
                let e = Error::Store(Secret::new(failed).redact(&app.redact(&e.to_string())));
                self.note_token_store_problem("token_drop_if", &e);
            }
        }
        dropped
    }

    /// `fetch_token`, counted in metrics and written to the structured log.
    fn fetch_observed(&self, app: &App) -> Result<FreshToken> {
        let started = self.clock.now_ms();
        let result = self.fetch_token(app);
        let elapsed_ms = u64::try_from(self.clock.now_ms() - started).unwrap_or(0);
        let message = result.as_ref().err().map(|e| match e {
            Error::WeChat { errmsg, .. } => errmsg.clone(),
            other => other.to_string(),
        });
        self.observe_token_fetch(&TokenRecord {
            appid: &app.appid,
            mode: mode_name(app.token_mode),
            ok: result.is_ok(),
            errcode: result.as_ref().err().and_then(Error::errcode),
            errmsg: message.as_deref(),
            attempts: 1,
            elapsed: Duration::from_millis(elapsed_ms),
        });
        result
    }

    fn api_base_of(&self, app: &App) -> String {
        app.api_base
            .clone()
            .unwrap_or_else(|| self.config().api_base.clone())
    }

    /// One request for a new token (stable or classic endpoint).
    fn fetch_token(&self, app: &App) -> Result<FreshToken> {
        let mode = mode_name(app.token_mode);
        let context = format!(
            "could not fetch the access token of {} (token_mode {mode}): ",
            app.appid
        );
        let secret = app.secret.clone().ok_or_else(|| {
            Error::AppNotConfigured(format!("{context}the app was registered without a secret"))
        })?;
        let base = self.api_base_of(app);
        let req = match app.token_mode {
            TokenMode::Stable => {
                let body = json!({
                    "grant_type": "client_credential",
                    "appid": app.appid,
                    "secret": secret.expose(),
                    // Forcing is rate-limited by WeChat and knocks out every
                    // other holder of the token: never done automatically.
                    "force_refresh": false,
                });
                HttpRequest::new(Method::Post, &base, "/cgi-bin/stable_token")
                    .json_body(body.to_string())
            }
            TokenMode::Classic => HttpRequest::new(
                Method::Get,
                &base,
                &format!(
                    "/cgi-bin/token?grant_type=client_credential&appid={}",
                    app.appid
                ),
            )
            .credential("secret", secret.clone()),
            TokenMode::External => {
                return Err(Error::internal(format!(
                    "{context}external tokens are never fetched"
                )))
            }
        };
        let scrub = |text: &str| secret.redact(&app.redact(&req.redact(text)));
        let network = |m: &str| Error::Network(scrub(&format!("{context}{m}")));
        let reply = self.http.call(&req).map_err(|e| network(e.message()))?;
        let (json, _) = read_json(&req, &reply, false).map_err(|e| match e {
            JsonProblem::Status(_, m) | JsonProblem::Malformed(m) => network(&m),
        })?;
        let errcode = json.get("errcode").and_then(Value::as_i64).unwrap_or(0);
        if errcode != 0 {
            let errmsg = json.get("errmsg").and_then(Value::as_str).unwrap_or("");
            return Err(Error::WeChat {
                errcode,
                errmsg: scrub(&format!(
                    "{errmsg} (fetching the access token of {}, token_mode {mode})",
                    app.appid
                )),
            });
        }
        let token = json.get("access_token").and_then(Value::as_str);
        let expires_in = json.get("expires_in").and_then(Value::as_i64);
        match (token, expires_in) {
            (Some(token), Some(secs)) if !token.is_empty() && secs > 0 => Ok(FreshToken {
                token: Secret::new(token),
                expires_in_secs: secs,
            }),
            _ => {
                // The answer may hold a token: describe it by its keys only.
                let keys: Vec<&str> = json
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                Err(network(&format!(
                    "{}: WeChat's answer lacks a non-empty access_token and a positive expires_in (keys: {})",
                    req.describe(),
                    keys.join(", ")
                )))
            }
        }
    }
}

enum JsonProblem {
    Status(u16, String),
    Malformed(String),
}

/// The answer as a JSON object (and its text), or what is wrong with it. An
/// excerpt of the body goes into the message only when `quote` is set: a
/// broken token answer may hold a (cut-off) token that no redaction knows.
fn read_json(
    req: &HttpRequest,
    reply: &HttpReply,
    quote: bool,
) -> Result<(Value, String), JsonProblem> {
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    let shown = if quote {
        excerpt(&text)
    } else {
        format!("<{} bytes not shown>", reply.body.len())
    };
    if !(200..300).contains(&reply.status) {
        return Err(JsonProblem::Status(
            reply.status,
            format!(
                "{}: WeChat answered HTTP {}: {shown}",
                req.describe(),
                reply.status
            ),
        ));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) if v.is_object() => Ok((v, text)),
        Ok(_) => Err(JsonProblem::Malformed(format!(
            "{}: WeChat answered with JSON that is not an object: {shown}",
            req.describe()
        ))),
        Err(e) => Err(JsonProblem::Malformed(format!(
            "{}: WeChat answered with malformed JSON ({e}): {shown}",
            req.describe()
        ))),
    }
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

    /// A store whose token answers the test sets, counting the looks.
    #[derive(Debug)]
    struct ScriptedStore {
        turn: Mutex<TokenTurn>,
        looks: AtomicU64,
        releases: AtomicU64,
    }

    impl ScriptedStore {
        fn new(turn: TokenTurn) -> Arc<ScriptedStore> {
            Arc::new(ScriptedStore {
                turn: Mutex::new(turn),
                looks: AtomicU64::new(0),
                releases: AtomicU64::new(0),
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
        fn stats(&self, _: &str, _: Option<&str>, _: i64) -> Result<crate::store::Stats> {
            unreachable!("tokens only")
        }
        fn purge(&self, _: &str, _: i64) -> Result<u64> {
            unreachable!("tokens only")
        }
        fn idempotency_claim(&self, _: &str, _: i64, _: i64) -> Result<crate::store::Claim> {
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
            Ok(false)
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

    fn wechat(
        answer: impl Fn(&HttpRequest) -> std::result::Result<HttpReply, TransportError>
            + Send
            + Sync
            + 'static,
    ) -> (Notifier, Arc<crate::http::MemoryTransport>) {
        let n = Notifier::with_clock(Arc::new(ManualClock::at(1_700_000_000)));
        n.register_app(r#"{"appid":"wxpost","secret":"s-post"}"#)
            .unwrap();
        let t = crate::http::MemoryTransport::new(move |req| {
            if req.route() == "/cgi-bin/stable_token" {
                Ok(HttpReply::json(
                    &json!({"access_token": "TOKEN-P", "expires_in": 7200}),
                ))
            } else {
                answer(req)
            }
        });
        n.set_transport(t.clone());
        (n, t)
    }

    #[test]
    fn post_wechat_retries_a_token_error_once_and_says_so() {
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let (n, t) = wechat(move |_| {
            let errcode = if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                40001
            } else {
                0
            };
            Ok(HttpReply::json(&json!({"errcode": errcode, "msgid": 7})))
        });
        let app = n.apps.get("wxpost").unwrap();
        let reply = n
            .post_wechat(
                &app,
                "/cgi-bin/message/subscribe/send",
                b"{\"touser\":\"o1\"}",
            )
            .unwrap();
        assert_eq!(reply.errcode, 0);
        assert_eq!(reply.errmsg, "ok");
        assert_eq!(reply.requests, 2);
        assert_eq!(reply.json["msgid"], 7);
        assert!(reply.error().is_none());
        assert_eq!(app.token.fetch_count(), 2);
        assert_eq!(app.token.recovered_count(), 1);
        let sent = t.requests().pop().unwrap();
        assert_eq!(sent.body.as_deref(), Some(&b"{\"touser\":\"o1\"}"[..]));

        // Another errcode is an answer for the send policy: one request, no refresh.
        let (n, t) = wechat(|_| {
            Ok(HttpReply::json(
                &json!({"errcode": -1, "errmsg": "system error"}),
            ))
        });
        let app = n.apps.get("wxpost").unwrap();
        let reply = n.post_wechat(&app, "/send", b"{}").unwrap();
        assert_eq!((reply.errcode, reply.requests), (-1, 1));
        assert_eq!(
            reply.error(),
            Some(Error::WeChat {
                errcode: -1,
                errmsg: "system error".into()
            })
        );
        assert_eq!(t.count("/cgi-bin/stable_token"), 1);

        // An answer echoing the token: neither the text, the parsed JSON nor Debug keeps it.
        let (n, _) = wechat(|_| {
            Ok(HttpReply::json(
                &json!({"errcode": 0, "echo": "TOKEN-P", "msgid": 9}),
            ))
        });
        let app = n.apps.get("wxpost").unwrap();
        let reply = n.post_wechat(&app, "/send", b"{}").unwrap();
        assert_eq!(reply.json["echo"], "***");
        assert_eq!(reply.json["msgid"], 9);
        assert!(!format!("{reply:?}").contains("TOKEN-P"));
    }

    #[test]
    fn post_wechat_tells_not_sent_from_maybe_delivered() {
        let (n, _) = wechat(|req| {
            Err(TransportError::NotSent(format!(
                "{}: refused",
                req.describe()
            )))
        });
        let app = n.apps.get("wxpost").unwrap();
        let e = n.post_wechat(&app, "/send", b"{}").unwrap_err();
        assert!(
            matches!(&e, CallError::NotSent(m) if m.contains("refused")),
            "{e:?}"
        );
        assert!(!e.may_have_reached_wechat());
        assert!(matches!(e.into_error(), Error::Network(_)));

        let (n, _) = wechat(|_| Err(TransportError::MaybeDelivered("timed out".into())));
        let app = n.apps.get("wxpost").unwrap();
        let e = n.post_wechat(&app, "/send", b"{}").unwrap_err();
        assert!(e.may_have_reached_wechat());
        assert!(matches!(e.into_error(), Error::Uncertain(_)));

        let (n, _) = wechat(|_| Ok(HttpReply::status(502, "bad gateway")));
        let app = n.apps.get("wxpost").unwrap();
        let e = n.post_wechat(&app, "/send", b"{}").unwrap_err();
        assert!(
            matches!(e, CallError::HttpStatus { status: 502, .. }),
            "{e:?}"
        );

        let (n, _) = wechat(|_| Ok(HttpReply::status(200, "<html>")));
        let app = n.apps.get("wxpost").unwrap();
        let e = n.post_wechat(&app, "/send", b"{}").unwrap_err();
        assert!(matches!(e, CallError::Malformed(_)), "{e:?}");

        // No token: nothing is sent.
        let (n, t) = wechat(|_| panic!("nothing may be sent"));
        n.register_app(r#"{"appid":"wxext","token_mode":"external"}"#)
            .unwrap();
        let app = n.apps.get("wxext").unwrap();
        let e = n.post_wechat(&app, "/send", b"{}").unwrap_err();
        assert!(
            matches!(&e, CallError::NoToken(Error::AppNotConfigured(_))),
            "{e:?}"
        );
        assert!(!e.may_have_reached_wechat());
        assert!(t.requests().is_empty());
    }

    #[test]
    fn paths_are_checked() {
        check_api_path("/wxaapi/newtmpl/gettemplate").unwrap();
        check_api_path("/wxaapi/newtmpl/getpubtemplatetitles?ids=2,616&start=0&limit=30").unwrap();
        let msg = |p: &str| check_api_path(p).unwrap_err().to_string();
        assert!(msg("wxaapi").contains("must start with one '/'"));
        assert!(msg("//evil.example/x").contains("must start with one '/'"));
        assert!(msg("https://api.weixin.qq.com/x").contains("must start"));
        let m = msg("https://api.weixin.qq.com/x?access_token=SECRET-T");
        assert!(
            m.contains("(query not shown)") && !m.contains("SECRET-T"),
            "{m}"
        );
        assert!(msg("/a b").contains("printable ASCII"));
        assert!(msg("/a#b").contains("printable ASCII"));
        assert!(msg("/订单").contains("percent-encode"));
        assert!(msg("/x?access_token=abc").contains("must not carry access_token"));
        assert!(msg(&format!("/{}", "a".repeat(3000))).contains("longer than 2048"));
    }

    #[test]
    fn supplied_tokens_are_checked_without_echoing_them() {
        check_supplied_token("abc_DEF-123").unwrap();
        let e = check_supplied_token("has space-SECRETISH").unwrap_err();
        assert!(!e.to_string().contains("SECRETISH"));
        assert!(check_supplied_token("").is_err());
        assert!(check_supplied_token(&"a".repeat(513)).is_err());
    }
}
