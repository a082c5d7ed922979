//! Exports for access tokens and WeChat calls carrying the managed token.

use std::ffi::c_char;

use super::guard::{c_arg, guard, guard_out, guard_text, notifier};
use super::FashopNotifyStatus;

/// Writes the app's valid access token (cached, freshly fetched, or in
/// `external` mode the one supplied) to `*out_token`, for hosts that call other
/// WeChat APIs themselves.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string; `out_token` is NULL or points
/// to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_access_token(
    appid: *const c_char,
    out_token: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("access_token", out_token, "out_token", || {
        let appid = c_arg!(appid, "appid")?;
        notifier()
            .access_token(appid)
            .map(|t| t.expose().to_string())
    })
}

/// Supplies the access token of an `external` app, valid for `expires_in_secs`
/// (1 to 86400) from now.
///
/// # Safety
/// `appid` and `token` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_set_access_token(
    appid: *const c_char,
    token: *const c_char,
    expires_in_secs: i64,
) -> FashopNotifyStatus {
    guard("set_access_token", || {
        let appid = c_arg!(appid, "appid")?;
        let token = c_arg!(token, "token")?;
        notifier().set_access_token(appid, token, expires_in_secs)
    })
}

/// Drops the app's cached token if it is still `token` (WeChat refused it);
/// a report about an older token changes nothing and is not an error.
///
/// # Safety
/// `appid` and `token` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_invalidate_token(
    appid: *const c_char,
    token: *const c_char,
) -> FashopNotifyStatus {
    guard("invalidate_token", || {
        let appid = c_arg!(appid, "appid")?;
        let token = c_arg!(token, "token")?;
        notifier().invalidate_token(appid, token).map(|_| ())
    })
}

/// Calls a WeChat JSON API (`method` "GET" or "POST", `path` relative to
/// `api_base`, optional JSON body) with the managed token and its recovery
/// from token errors. Writes WeChat's JSON to `*out_json`, also when it
/// carries a non-zero errcode (status WECHAT_ERROR, `errcode: errmsg` in
/// last_error).
///
/// # Safety
/// `appid`, `method`, `path` are NULL or NUL-terminated strings,
/// `body_json_or_null` is NULL or a NUL-terminated string, `out_json` is NULL
/// or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_call_api(
    appid: *const c_char,
    method: *const c_char,
    path: *const c_char,
    body_json_or_null: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_out("call_api", out_json, "out_json", || {
        let args = (|| {
            let appid = c_arg!(appid, "appid")?;
            let method = c_arg!(method, "method")?;
            let path = c_arg!(path, "path")?;
            let body = c_arg!(opt body_json_or_null, "body_json")?;
            Ok((appid, method, path, body))
        })();
        match args {
            Ok((appid, method, path, body)) => notifier().call_api_reply(appid, method, path, body),
            Err(e) => (Err(e), None),
        }
    })
}

/// Writes the app's daily quota of one API (`openapi/quota/get`) to
/// `*out_json`: `{"appid", "cgi_path", "daily_limit", "used", "remain"}`.
/// `cgi_path_or_null` is the API's path (`/cgi-bin/message/subscribe/send`
/// when NULL). On a non-zero errcode the status is WECHAT_ERROR and WeChat's
/// JSON is written.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string, `cgi_path_or_null` is NULL or
/// a NUL-terminated string, `out_json` is NULL or points to a `char *` the
/// caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_api_quota(
    appid: *const c_char,
    cgi_path_or_null: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_out("api_quota", out_json, "out_json", || {
        let args = (|| {
            let appid = c_arg!(appid, "appid")?;
            let cgi_path = c_arg!(opt cgi_path_or_null, "cgi_path")?;
            Ok((appid, cgi_path))
        })();
        match args {
            Ok((appid, cgi_path)) => notifier().api_quota(appid, cgi_path),
            Err(e) => (Err(e), None),
        }
    })
}
