//! The notifier's token calls: the app's access token (cached, shared through
//! the store, or supplied by the host), its figures, and any WeChat API called
//! with it.

use std::sync::Arc;
use std::time::Duration;

use super::Notifier;
use crate::error::{Error, Result};
use crate::journal::TokenRecord;
use crate::message::parse_template_list;
use crate::secret::Secret;
use crate::wechat::client::{
    self, check_api_path, check_supplied_token, parse_method, CallError, TokenSource, WeChatReply,
    MAX_SUPPLIED_LIFETIME_SECS,
};
use crate::wechat::http::{Method, Transport};
use crate::wechat::token_cache::{lease_ms, FreshToken, SharedTokens, TokenStats};
use crate::wechat::{App, TokenMode};

impl Notifier {
    /// Replaces how this notifier reaches WeChat (an in-memory transport in tests).
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        self.http.set_transport(transport);
    }

    /// The app's valid access token: cached, fetched once for all waiting
    /// callers, or (external mode) the one the host supplied.
    pub fn access_token(&self, appid: &str) -> Result<Secret> {
        self.check_configured()?;
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
                app.token_mode.as_str()
            )));
        }
        app.token
            .supply(Secret::new(token), self.clock.now_ms(), expires_in_secs);
        Ok(())
    }

    /// Drops the cached token if it is still `token`; a report about an older
    /// token changes nothing. Returns whether the token was dropped.
    /// A failed fetch's pause ends too: after fixing the IP whitelist or the
    /// admin's approval, the host calls this and the next send fetches.
    pub fn invalidate_token(&self, appid: &str, token: &str) -> Result<bool> {
        let app = self.apps.get(appid)?;
        if token.is_empty() {
            return Err(Error::invalid("token must not be empty"));
        }
        app.token.clear_failure();
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
            (Ok(()), None) => Err(Error::internal(
                "WeChat's answer came without a body (a bug, please report it)",
            )),
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
            self.check_configured()?;
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
            Ok(Ok(reply)) => {
                if reply.error().is_none() && is_template_list(method, path) {
                    if let Ok(list) = parse_template_list(&reply.json) {
                        self.learn_template_types(appid, &list);
                    }
                }
                (reply.error().map_or(Ok(()), Err), Some(reply.body))
            }
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

    /// One call with the managed token and the one retry after a token error.
    pub(crate) fn call_wechat(
        &self,
        app: &App,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<WeChatReply, CallError> {
        client::call(
            &self.http,
            &self.api_base_of(app),
            self,
            app,
            method,
            path,
            body,
        )
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
        let shared = || self.shared_tokens(app, lease_ms(&config), &report);
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

    /// How the app's token cache reaches the store shared with other
    /// processes, if the store shares tokens.
    fn shared_tokens<'a>(
        &self,
        app: &'a App,
        lease_ms: i64,
        report: &'a dyn Fn(&str, &Error),
    ) -> Option<SharedTokens<'a>> {
        let store = self.ledger.store();
        store.tokens()?;
        Some(SharedTokens {
            store,
            appid: &app.appid,
            mode: app.token_mode.as_str(),
            lease_ms,
            report,
        })
    }

    /// Drops `failed` from the store (only if it is still the shared one) and
    /// from this process; whether this process held it.
    fn drop_failed_token(&self, app: &App, failed: &str) -> bool {
        let report = |operation: &str, e: &Error| {
            let e = Error::Store(app.redact(&e.to_string()));
            self.note_token_store_problem(operation, &e)
        };
        let shared = self.shared_tokens(app, lease_ms(&self.config()), &report);
        app.token.drop_failed(failed, shared)
    }

    /// `fetch_token`, counted in metrics and written to the structured log.
    fn fetch_observed(&self, app: &App) -> Result<FreshToken> {
        let started = self.clock.now_ms();
        let result = client::fetch_token(&self.http, &self.api_base_of(app), app);
        let elapsed_ms = u64::try_from(self.clock.now_ms() - started).unwrap_or(0);
        let message = result.as_ref().err().map(|e| match e {
            Error::WeChat { errmsg, .. } => errmsg.clone(),
            other => other.to_string(),
        });
        self.observe_token_fetch(&TokenRecord {
            appid: &app.appid,
            mode: app.token_mode.as_str(),
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
}

impl TokenSource for Notifier {
    fn token(&self, app: &App) -> Result<Secret> {
        self.token_of(app)
    }

    fn drop_failed(&self, app: &App, failed: &str) {
        self.drop_failed_token(app, failed);
    }

    fn recovered(&self, app: &App) {
        self.metrics.record_token_error_recovered(&app.appid);
    }
}

/// A read of gettemplate (the app's templates, with their types).
fn is_template_list(method: &str, path: &str) -> bool {
    method.eq_ignore_ascii_case("GET")
        && path.split('?').next() == Some("/wxaapi/newtmpl/gettemplate")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::wechat::http::{HttpReply, HttpRequest, MemoryTransport, TransportError};

    fn wechat(
        answer: impl Fn(&HttpRequest) -> std::result::Result<HttpReply, TransportError>
            + Send
            + Sync
            + 'static,
    ) -> (Notifier, Arc<MemoryTransport>) {
        let n = Notifier::with_clock(Arc::new(ManualClock::at(1_700_000_000)));
        n.register_app(r#"{"appid":"wxpost","secret":"s-post"}"#)
            .unwrap();
        let t = MemoryTransport::new(move |req| {
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
}
