//! Exports for settings and the app registry.

use std::ffi::c_char;

use super::guard::{c_arg, guard, guard_text, notifier};
use super::FashopNotifyStatus;

/// Process-wide settings (JSON, every field optional; see the ABI contract).
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_configure(config_json: *const c_char) -> FashopNotifyStatus {
    guard("configure", || {
        let json = c_arg!(config_json, "config_json")?;
        notifier().configure(json)
    })
}

/// Registers a mini-program app (`{"appid","secret","token_mode","api_base"}`).
/// The same appid and secret again is a no-op that keeps the cached token.
///
/// # Safety
/// `app_json` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_register_app(app_json: *const c_char) -> FashopNotifyStatus {
    guard("register_app", || {
        let json = c_arg!(app_json, "app_json")?;
        notifier().register_app(json).map(|_| ())
    })
}

/// Forgets an app and its cached token.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_unregister_app(appid: *const c_char) -> FashopNotifyStatus {
    guard("unregister_app", || {
        let appid = c_arg!(appid, "appid")?;
        notifier().unregister_app(appid)
    })
}

/// Writes the registered apps (appid, token mode, token state) as JSON.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_list_apps(out_json: *mut *mut c_char) -> FashopNotifyStatus {
    guard_text("list_apps", out_json, "out_json", || notifier().list_apps())
}
