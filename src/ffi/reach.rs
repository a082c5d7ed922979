//! Export of the owner's reach report.

use std::ffi::c_char;

use super::guard::{c_arg, guard_text, notifier};
use super::FashopNotifyStatus;

/// Writes the owner's reach report of one app for a range of China days:
/// `query_json` is `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}` within the
/// kept days (`report_keep_days`). Per event, each day's counts of what sends
/// ended as (sent, no_permit, refused, failed by errcode, uncertain, queued)
/// with the reach rate, and the grant stock per subscribe template (buyers
/// holding a grant, uses, uses lapsing within 7 days). A reversed, future or
/// too old range, or a malformed date, is INVALID_ARGUMENT; an unknown app
/// APP_NOT_CONFIGURED.
///
/// # Safety
/// `appid` and `query_json` are NULL or NUL-terminated strings; `out_json` is
/// NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_reach_report(
    appid: *const c_char,
    query_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("reach_report", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let query = c_arg!(query_json, "query_json")?;
        notifier().reach_report(appid, query)
    })
}
