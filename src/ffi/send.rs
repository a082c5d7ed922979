//! Export for sending.

use std::ffi::c_char;

use super::guard::{c_arg, guard_out, notifier};
use super::FashopNotifyStatus;

/// Renders the event's message, takes a permit, POSTs it to WeChat and applies
/// the errcode policy. Writes the outcome JSON to `*out_json` whenever the send
/// got as far as looking for a permit (OK, NO_PERMIT, WECHAT_ERROR,
/// NETWORK_ERROR, UNCERTAIN), even when the status is not OK. A second send
/// with an idempotency key that already succeeded returns OK with
/// `"status": "duplicate"` and sends nothing.
///
/// # Safety
/// `appid`, `event` and `payload_json` are NULL or NUL-terminated strings;
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_send(
    appid: *const c_char,
    event: *const c_char,
    payload_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_out("send", out_json, "out_json", || {
        let args = (|| {
            Ok((
                c_arg!(appid, "appid")?,
                c_arg!(event, "event")?,
                c_arg!(payload_json, "payload_json")?,
            ))
        })();
        match args {
            Ok((appid, event, payload)) => notifier().send_json(appid, event, payload),
            Err(e) => (Err(e), None),
        }
    })
}
