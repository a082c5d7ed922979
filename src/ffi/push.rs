//! Export for WeChat's message push: the shop's push endpoint hands each
//! request over as it received it and sends back the `reply` it gets.

use std::ffi::c_char;

use super::guard::{c_arg, guard_text, notifier};
use super::FashopNotifyStatus;

/// Handles one request to the shop's push endpoint: `method` (`"GET"` for
/// the URL check, `"POST"` for a push), the raw query string (without `?`,
/// or with it) and the body (`""` for a GET). Writes
/// `{"reply": "<exact text to answer WeChat>", "events": [...]}`.
///
/// # Safety
/// `appid`, `method`, `query_string` and `body` are NULL or NUL-terminated
/// strings; `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_handle_push(
    appid: *const c_char,
    method: *const c_char,
    query_string: *const c_char,
    body: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("handle_push", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let method = c_arg!(method, "method")?;
        let query = c_arg!(query_string, "query_string")?;
        let body = c_arg!(body, "body")?;
        notifier().handle_push(appid, method, query, body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::fashop_notify_string_free;
    use FashopNotifyStatus::*;

    use crate::ffi::guard::last_error_text as last_error;

    #[test]
    fn bad_arguments_are_refused_and_out_is_nulled() {
        let bad = [b'w', b'x', 0xff, 0];
        let ok = c"x".as_ptr();
        let mut out: *mut c_char = c"junk".as_ptr().cast_mut();
        let cases: [(&str, [*const c_char; 4]); 5] = [
            ("appid must not be NULL", [std::ptr::null(), ok, ok, ok]),
            ("method must not be NULL", [ok, std::ptr::null(), ok, ok]),
            (
                "query_string must not be NULL",
                [ok, ok, std::ptr::null(), ok],
            ),
            ("body must not be NULL", [ok, ok, ok, std::ptr::null()]),
            ("body is not valid UTF-8", [ok, ok, ok, bad.as_ptr().cast()]),
        ];
        for (needle, [a, m, q, b]) in cases {
            // SAFETY: NULL or NUL-terminated strings, a valid out pointer.
            let s = unsafe { fashop_notify_handle_push(a, m, q, b, &mut out) };
            assert_eq!(s, FASHOP_NOTIFY_INVALID_ARGUMENT);
            assert!(out.is_null());
            assert!(
                last_error().starts_with("handle_push: "),
                "{}",
                last_error()
            );
            assert!(last_error().contains(needle), "{}", last_error());
        }
        // SAFETY: as above, with out NULL.
        let s = unsafe { fashop_notify_handle_push(ok, ok, ok, ok, std::ptr::null_mut()) };
        assert_eq!(s, FASHOP_NOTIFY_INVALID_ARGUMENT);
        assert!(last_error().contains("out_json must not be NULL"));
        // SAFETY: as above; an unknown app.
        let s = unsafe {
            fashop_notify_handle_push(c"wxnopush".as_ptr(), c"GET".as_ptr(), ok, ok, &mut out)
        };
        assert_eq!(s, FASHOP_NOTIFY_APP_NOT_CONFIGURED);
        // SAFETY: NULL is fine.
        unsafe { fashop_notify_string_free(out) };
    }
}
