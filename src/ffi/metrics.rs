//! Export of the operational figures.

use std::ffi::c_char;

use super::guard::{c_arg, guard_text, notifier};
use super::FashopNotifyStatus;

/// Writes every figure (sends, latency, tokens, permits, outbox) as
/// `"prometheus"` text exposition or as `"json"`. With the SQLite store the
/// figures cover every process sharing it; with the memory store this process.
/// Free the text with `fashop_notify_string_free`.
///
/// # Safety
/// `format` is NULL or a NUL-terminated string; `out_text` is NULL or points
/// to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_metrics(
    format: *const c_char,
    out_text: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("metrics", out_text, "out_text", || {
        let format = c_arg!(format, "format")?;
        notifier().metrics_text(format)
    })
}
