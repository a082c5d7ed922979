//! Export of the store health check.

use std::ffi::c_char;

use super::guard::{guard_text, notifier};
use super::FashopNotifyStatus;

/// Writes the store's health as JSON: `{"ok": bool, "store": "sqlite:…"
/// (a Redis password left out), "error": null | "…", "latency_ms": 1.2}`,
/// from a write, read and delete of a probe key on the configured store. A
/// store that fails is `"ok": false` with status OK: the check succeeded.
/// Free the text with `fashop_notify_string_free`.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_store_health(
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("store_health", out_json, "out_json", || {
        notifier().store_health()
    })
}
