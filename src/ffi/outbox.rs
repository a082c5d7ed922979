//! Exports for the outbox: durable deferred sends.

use std::ffi::c_char;

use super::guard::{c_arg, guard, guard_text, notifier};
use super::FashopNotifyStatus;

/// Validates and renders the event's message now, keeps it in the store with
/// its idempotency key, and writes `{"id", "idempotency_key", "due_at",
/// "duplicate"}` to `*out_json`. No network: `fashop_notify_flush` sends it.
///
/// # Safety
/// `appid`, `event` and `payload_json` are NULL or NUL-terminated strings;
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_enqueue(
    appid: *const c_char,
    event: *const c_char,
    payload_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("enqueue", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let event = c_arg!(event, "event")?;
        let payload = c_arg!(payload_json, "payload_json")?;
        notifier().enqueue(appid, event, payload)
    })
}

/// Sends at most `max_messages` due messages of `appid_or_null` (NULL: of
/// every app registered in this process) with the send policy, and writes
/// what became of each to `*out_json`. Retryable failures are rescheduled,
/// the others dead-lettered; OK even when some messages failed.
///
/// # Safety
/// `appid_or_null` is NULL or a NUL-terminated string; `out_json` is NULL or
/// points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_flush(
    appid_or_null: *const c_char,
    max_messages: u32,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("flush", out_json, "out_json", || {
        let appid = c_arg!(opt appid_or_null, "appid_or_null")?;
        notifier().flush(appid, max_messages)
    })
}

/// Writes the outbox's counts (pending, due, in flight, dead, uncertain,
/// sent; in total and by event) and its dead letters with their last error.
///
/// # Safety
/// `appid_or_null` is NULL or a NUL-terminated string; `out_json` is NULL or
/// points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_outbox_stats(
    appid_or_null: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("outbox_stats", out_json, "out_json", || {
        let appid = c_arg!(opt appid_or_null, "appid_or_null")?;
        notifier().outbox_stats(appid)
    })
}

/// Puts a dead message back in the queue, due now, with its attempts reset.
/// Uncertain messages cannot be requeued (they may have been delivered).
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_outbox_requeue(
    appid: *const c_char,
    id: u64,
) -> FashopNotifyStatus {
    guard("outbox_requeue", || {
        let appid = c_arg!(appid, "appid")?;
        notifier().outbox_requeue(appid, id)
    })
}

/// Removes a dead, uncertain or not yet claimed message from the outbox.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_outbox_drop(
    appid: *const c_char,
    id: u64,
) -> FashopNotifyStatus {
    guard("outbox_drop", || {
        let appid = c_arg!(appid, "appid")?;
        notifier().outbox_drop(appid, id)
    })
}

/// Writes the service card definitions to `*out_json`: `{"cards": [{"notify_type",
/// "tid", "label", "categories", "fields", "statuses": [{"id", "label", "activate",
/// "after", "required", "optional"}]}], "product_fields", "field_types", "sources"}`.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_card_definitions(
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("card_definitions", out_json, "out_json", || {
        Ok(notifier().card_definitions().to_string())
    })
}

/// Writes where an order's service card stands to `*out_json`: `{"transaction_id",
/// "notify_type", "statuses" (applied, oldest first), "last", "pending",
/// "stopped"}` from the store; with `"openid"` and `"notify_type"` in
/// `query_json` also WeChat's own view under `"wechat"` (`get_user_notify`:
/// `content_json`, `code_state`, `code_expire_time`). `query_json`:
/// `{"transaction_id": "42…", "openid"?, "notify_type"?}`.
///
/// # Safety
/// `appid` and `query_json` are NULL or NUL-terminated strings; `out_json`
/// is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_card_status(
    appid: *const c_char,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("card_status", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let query = c_arg!(query_json, "query_json")?;
        notifier().card_status(appid, query)
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::ffi::fashop_notify_string_free;
    use crate::ffi::guard::last_error_text as last_error;
    use crate::ffi::FashopNotifyStatus::*;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// Takes and frees an out string.
    fn take(out: *mut c_char) -> Option<String> {
        if out.is_null() {
            return None;
        }
        // SAFETY: written by the library, freed once here.
        let text = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { fashop_notify_string_free(out) };
        Some(text)
    }

    #[test]
    fn card_exports_check_every_argument() {
        notifier()
            .register_app(r#"{"appid":"wxfficards0000001","secret":"s"}"#)
            .unwrap();
        let app = c("wxfficards0000001");
        let query = c(r#"{"transaction_id":"4200002187202611230115260001"}"#);
        let bad = c"wx\xff".as_ptr();
        let mut out: *mut c_char = null_mut();
        // SAFETY: every pointer is NULL, a live NUL-terminated string, or a live out slot.
        unsafe {
            assert_eq!(
                fashop_notify_card_status(app.as_ptr(), query.as_ptr(), &mut out),
                FASHOP_NOTIFY_OK
            );
            let text = take(out).unwrap();
            assert!(
                text.contains("\"statuses\":[]") && text.contains("\"stopped\":false"),
                "{text}"
            );
            out = null_mut();
            for (a, q, o, status, message) in [
                (
                    null(),
                    query.as_ptr(),
                    &mut out as *mut _,
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "card_status: appid must not be NULL",
                ),
                (
                    app.as_ptr(),
                    null(),
                    &mut out as *mut _,
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "card_status: query_json must not be NULL",
                ),
                (
                    app.as_ptr(),
                    query.as_ptr(),
                    null_mut(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "card_status: out_json must not be NULL",
                ),
                (
                    bad,
                    query.as_ptr(),
                    &mut out as *mut _,
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "appid is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    bad,
                    &mut out as *mut _,
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "query_json is not valid UTF-8",
                ),
            ] {
                assert_eq!(fashop_notify_card_status(a, q, o), status, "{message}");
                assert!(
                    last_error().contains(message),
                    "{} / {message}",
                    last_error()
                );
                assert!(out.is_null());
            }
            let not_a_code = c(r#"{"transaction_id":"2025021211194014791"}"#);
            assert_eq!(
                fashop_notify_card_status(app.as_ptr(), not_a_code.as_ptr(), &mut out),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert!(last_error().contains("transaction id"), "{}", last_error());
            assert_eq!(fashop_notify_card_definitions(&mut out), FASHOP_NOTIFY_OK);
            assert!(take(out).unwrap().contains("\"notify_type\": 2003"));
            assert_eq!(
                fashop_notify_card_definitions(null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
        }
    }
}
