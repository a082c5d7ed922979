//! Calls to WeChat that carry the app's access token: the request, the one
//! retry after a token error, WeChat's reply and the call errors (with whether
//! the request can have reached WeChat), and the token request itself.

use serde_json::{json, Value};

use super::apps::App;
use super::errcodes::{is_token_error, meaning};
use super::http::{HttpClient, HttpReply, HttpRequest, Method, TransportError};
use super::token_cache::FreshToken;
use super::token_mode::TokenMode;
use crate::error::{Error, Result};
use crate::secret::Secret;

/// The longest lifetime a host may give a supplied token (WeChat's are 7200 s).
pub const MAX_SUPPLIED_LIFETIME_SECS: i64 = 86_400;

/// Longest supplied token accepted (WeChat's are about 150 characters).
const MAX_TOKEN_BYTES: usize = 512;

/// How much of an unreadable answer goes into a message.
const EXCERPT_CHARS: usize = 160;

/// What a call needs from its owner: the app's token, and what to do when
/// WeChat refuses it.
pub trait TokenSource {
    /// The app's valid token (cached, fetched, or supplied by the host).
    fn token(&self, app: &App) -> Result<Secret>;
    /// WeChat refused `failed`: drop it wherever it is still the current one.
    fn drop_failed(&self, app: &App, failed: &str);
    /// A call WeChat refused for a token error went through with a new token.
    fn recovered(&self, app: &App);
}

/// One call with the app's token. On a token errcode the token is dropped
/// (only if still the one used), a token obtained once more and the call
/// repeated once; never more.
pub fn call(
    http: &HttpClient,
    api_base: &str,
    tokens: &dyn TokenSource,
    app: &App,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> Result<WeChatReply, CallError> {
    let token = tokens.token(app).map_err(CallError::NoToken)?;
    let first = call_with_token(http, api_base, app, method, path, body, &token)?;
    if !is_token_error(first.errcode) {
        return Ok(first);
    }
    tokens.drop_failed(app, token.expose());
    let fresh = tokens.token(app).map_err(|e| {
        CallError::NoToken(with_context(
            e,
            &format!(
                "WeChat refused the access token of {} (errcode {}: {}) and no new one could be had: ",
                app.appid, first.errcode, first.errmsg
            ),
        ))
    })?;
    let mut second = call_with_token(http, api_base, app, method, path, body, &fresh)?;
    second.requests = 2;
    if second.errcode == 0 {
        app.token.note_recovered();
        tokens.recovered(app);
    }
    Ok(second)
}

fn call_with_token(
    http: &HttpClient,
    api_base: &str,
    app: &App,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
    token: &Secret,
) -> Result<WeChatReply, CallError> {
    let mut req =
        HttpRequest::new(method, api_base, path).credential("access_token", token.clone());
    req.body = body.map(<[u8]>::to_vec);
    let scrub = |text: &str| app.redact(&req.redact(text));
    let reply = http.call(&req).map_err(|e| match e {
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
    /// Whether WeChat can have acted on the request. A 4xx other than 408
    /// and 429 is WeChat's front end refusing the request itself (413: too
    /// large), before anything handled it.
    pub fn may_have_reached_wechat(&self) -> bool {
        !matches!(self, CallError::NoToken(_) | CallError::NotSent(_)) && !self.refused_request()
    }

    /// An HTTP 4xx (not 408 or 429): the request as sent was refused, and
    /// sending it again the same way cannot help.
    pub fn refused_request(&self) -> bool {
        matches!(self, CallError::HttpStatus { status, .. }
            if (400..500).contains(status) && *status != 408 && *status != 429)
    }

    /// The crate error for a caller with no retry policy of its own:
    /// maybe-delivered is UNCERTAIN, a request WeChat refused itself (HTTP
    /// 4xx) INVALID_ARGUMENT, every other transport problem NETWORK_ERROR.
    pub fn into_error(self) -> Error {
        match self {
            CallError::NoToken(e) => e,
            CallError::NotSent(m) | CallError::Malformed(m) => Error::Network(m),
            CallError::HttpStatus { status, message }
                if (400..500).contains(&status) && status != 408 && status != 429 =>
            {
                Error::invalid(format!(
                    "{message} (WeChat refused the request itself: it was not delivered{})",
                    if status == 413 {
                        "; the body is too large"
                    } else {
                        ""
                    }
                ))
            }
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
pub fn with_context(e: Error, context: &str) -> Error {
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

/// `GET` or `POST`, in any case.
pub fn parse_method(method: &str) -> Result<Method> {
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
pub fn check_supplied_token(token: &str) -> Result<()> {
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

/// What WeChat's AppSecrets look like: 32 ASCII letters and digits.
fn is_app_secret(secret: &str) -> bool {
    secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `base` (an http(s) URL) names this machine.
fn is_loopback(base: &str) -> bool {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One request for a new token (stable or classic endpoint).
pub fn fetch_token(http: &HttpClient, base: &str, app: &App) -> Result<FreshToken> {
    let mode = app.token_mode.as_str();
    let context = format!(
        "could not fetch the access token of {} (token_mode {mode}): ",
        app.appid
    );
    let secret = app.secret.clone().ok_or_else(|| {
        Error::AppNotConfigured(format!("{context}the app was registered without a secret"))
    })?;
    if http.on_the_wire() && !is_loopback(base) && !is_app_secret(secret.expose()) {
        // Nothing is sent: a value that cannot be an AppSecret (a password,
        // the app id, a test value) would only earn a 40125 and reach WeChat.
        return Err(Error::AppNotConfigured(format!(
            "{context}the secret given to register_app has {} characters, and a WeChat AppSecret is 32 letters and digits \
             (mp.weixin.qq.com, 开发管理 → 开发设置); any secret is taken only with an api_base on this machine \
             (127.0.0.1, localhost, [::1]: the sandbox)",
            secret.expose().chars().count()
        )));
    }
    let req = token_request(base, app, &secret, &context)?;
    let scrub = |text: &str| secret.redact(&app.redact(&req.redact(text)));
    let network = |m: &str| Error::Network(scrub(&format!("{context}{m}")));
    let reply = http.call(&req).map_err(|e| network(e.message()))?;
    let (json, _) = read_json(&req, &reply, false).map_err(|e| match e {
        JsonProblem::Status(_, m) | JsonProblem::Malformed(m) => network(&m),
    })?;
    let errcode = json.get("errcode").and_then(Value::as_i64).unwrap_or(0);
    if errcode != 0 {
        let errmsg = json.get("errmsg").and_then(Value::as_str).unwrap_or("");
        return Err(Error::WeChat {
            errcode,
            errmsg: scrub(&format!(
                "{errmsg} (fetching the access token of {}, token_mode {mode}){}",
                app.appid,
                meaning(errcode).fetch_advice
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

/// The request for a new token: the stable endpoint (POST, the secret in the
/// body) or the classic one (GET, the secret in the query).
fn token_request(base: &str, app: &App, secret: &Secret, context: &str) -> Result<HttpRequest> {
    Ok(match app.token_mode {
        TokenMode::Stable => {
            let body = json!({
                "grant_type": "client_credential",
                "appid": app.appid,
                "secret": secret.expose(),
                // Forcing is rate-limited by WeChat and knocks out every
                // other holder of the token: never done automatically.
                "force_refresh": false,
            });
            HttpRequest::new(Method::Post, base, "/cgi-bin/stable_token")
                .json_body(body.to_string())
        }
        TokenMode::Classic => HttpRequest::new(
            Method::Get,
            base,
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
    })
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

    #[test]
    fn app_secrets_and_loopback_bases() {
        assert!(is_app_secret("0123456789abcdefABCDEF0123456789"));
        assert!(!is_app_secret("s"));
        assert!(!is_app_secret("0123456789abcdef0123456789abcde!"));
        for base in [
            "http://127.0.0.1:8080",
            "http://localhost",
            "http://[::1]:9/x",
            "http://127.0.0.2",
        ] {
            assert!(is_loopback(base), "{base}");
        }
        for base in [
            "https://api.weixin.qq.com",
            "http://10.0.0.1:80",
            "http://localhost.example.com",
        ] {
            assert!(!is_loopback(base), "{base}");
        }
    }

    use super::*;

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
