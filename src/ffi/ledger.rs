//! Exports for the permit ledger: record a permit, look at the stock, purge
//! what expired.

use std::ffi::c_char;

use super::guard::{c_arg, guard, guard_text, notifier};
use super::FashopNotifyStatus;

/// Records a right to message one user (`ledger.md` for the JSON). Adding the
/// same permit twice stores it once.
///
/// # Safety
/// `appid` and `permit_json` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_add_permit(
    appid: *const c_char,
    permit_json: *const c_char,
) -> FashopNotifyStatus {
    guard("add_permit", || {
        let appid = c_arg!(appid, "appid")?;
        let json = c_arg!(permit_json, "permit_json")?;
        notifier().add_permit(appid, json)
    })
}

/// Writes the usable stock of the app (or of one user when `openid_or_null`
/// is given) as JSON: counts by kind, by template for subscribe grants, and
/// the soonest expiry.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string, `openid_or_null` too;
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_ledger_stats(
    appid: *const c_char,
    openid_or_null: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("ledger_stats", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let openid = c_arg!(opt openid_or_null, "openid")?;
        notifier().ledger_stats(appid, openid)
    })
}

/// Removes the app's expired permits and writes `{"appid", "removed": n}`.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string; `out_json` is NULL or points to
/// a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_ledger_purge(
    appid: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("ledger_purge", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        notifier().ledger_purge(appid)
    })
}
