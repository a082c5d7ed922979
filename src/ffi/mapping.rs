//! Exports for the event catalog, mapping documents and rendering.

use std::ffi::c_char;

use super::{arg_str, guard, guard_text, notifier, FashopNotifyStatus};

/// Writes the event catalog (events, their fields with Chinese labels, types
/// and examples) as JSON.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_event_catalog(
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("event_catalog", out_json, "out_json", || {
        Ok(notifier().event_catalog().to_string())
    })
}

/// Validates a mapping document and makes it the app's mapping. All or nothing:
/// on error nothing changes and last_error lists every problem with its JSON path.
///
/// # Safety
/// `appid` and `mappings_json` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_load_mappings(
    appid: *const c_char,
    mappings_json: *const c_char,
) -> FashopNotifyStatus {
    guard("load_mappings", || {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let appid = unsafe { arg_str(appid, "appid") }?;
        // SAFETY: as above.
        let json = unsafe { arg_str(mappings_json, "mappings_json") }?;
        notifier().load_mappings(appid, json)
    })
}

/// Writes the app's loaded mapping document (normalized) as JSON.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string; `out_json` is NULL or points to a
/// `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_get_mappings(
    appid: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("get_mappings", out_json, "out_json", || {
        // SAFETY: the caller passes NULL or a NUL-terminated string.
        let appid = unsafe { arg_str(appid, "appid") }?;
        notifier().get_mappings(appid)
    })
}

/// Writes the exact JSON body `send` would POST for `event`, without sending or
/// consuming anything. `payload_json`: `{"touser", "fields": {…}, "idempotency_key"}`.
///
/// # Safety
/// `appid`, `event` and `payload_json` are NULL or NUL-terminated strings;
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_render(
    appid: *const c_char,
    event: *const c_char,
    payload_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("render", out_json, "out_json", || {
        // SAFETY: the caller passes NULL or NUL-terminated strings.
        let appid = unsafe { arg_str(appid, "appid") }?;
        // SAFETY: as above.
        let event = unsafe { arg_str(event, "event") }?;
        // SAFETY: as above.
        let payload = unsafe { arg_str(payload_json, "payload_json") }?;
        notifier().render(appid, event, payload)
    })
}
