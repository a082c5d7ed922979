//! The C boundary: the only unsafe code of the crate. Every export reads its
//! arguments with `c_arg!`, runs inside `guard` (panics caught, the one error
//! type mapped to the one status enum, the message kept for
//! `fashop_notify_last_error`) and calls one notifier method. Nothing here
//! decides anything.

use std::ffi::{c_char, CStr, CString};
use std::panic::catch_unwind;

mod apps;
mod guard;
mod health;
mod ledger;
mod mapping;
mod metrics;
mod outbox;
mod push;
mod reach;
mod send;
mod status;
mod token;

pub use status::FashopNotifyStatus;

/// The library version, a static string never to be freed.
#[no_mangle]
pub extern "C" fn fashop_notify_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}

/// The message of the last failed call on this thread, `""` after a success.
/// Valid until the next call on the same thread; never free it.
#[no_mangle]
pub extern "C" fn fashop_notify_last_error() -> *const c_char {
    guard::last_error_ptr()
}

/// Frees a string this library wrote to an out parameter. NULL is fine.
///
/// # Safety
/// `s` is NULL or a string from this library not freed before.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    // A panic cannot happen here, but nothing may unwind into C whatever happens.
    let _ = catch_unwind(|| {
        // SAFETY: `s` came from `CString::into_raw` in `guard_out` and is freed once.
        drop(unsafe { CString::from_raw(s) });
    });
}

#[cfg(test)]
mod tests {
    use super::guard::{arg_str, guard, guard_text, opt_str};
    use super::status::FashopNotifyStatus::*;
    use super::*;
    use crate::error::Error;

    use crate::ffi::guard::last_error_text as last_error;

    #[test]
    fn panics_become_internal_with_the_message() {
        let s = guard("probe", || panic!("boom"));
        assert_eq!(s, FASHOP_NOTIFY_INTERNAL);
        assert!(last_error().contains("panic: boom"), "{}", last_error());
        assert_eq!(guard("probe", || Ok(())), FASHOP_NOTIFY_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn the_export_is_named_once() {
        let s = guard("add_permit", || Err(Error::invalid("missing field `kind`")));
        assert_eq!(s, FASHOP_NOTIFY_INVALID_ARGUMENT);
        assert_eq!(last_error(), "add_permit: missing field `kind`");
        // Always by the export running, whatever the message says.
        guard("enqueue", || Err(Error::invalid("flush: x")));
        assert_eq!(last_error(), "enqueue: flush: x");
        assert_eq!(guard("probe", || Ok(())), FASHOP_NOTIFY_OK);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn out_is_nulled_and_null_out_is_refused() {
        let mut out: *mut c_char = c"x".as_ptr().cast_mut();
        let s = guard_text("probe", &mut out, "out_json", || Err(Error::invalid("no")));
        assert_eq!(s, FASHOP_NOTIFY_INVALID_ARGUMENT);
        assert!(out.is_null());
        let s = guard_text("probe", std::ptr::null_mut(), "out_json", || Ok("x".into()));
        assert_eq!(s, FASHOP_NOTIFY_INVALID_ARGUMENT);
        assert_eq!(last_error(), "probe: out_json must not be NULL");
        let s = guard_text("probe", &mut out, "out_json", || Ok("{}".into()));
        assert_eq!(s, FASHOP_NOTIFY_OK);
        // SAFETY: written by guard_text just above.
        assert_eq!(unsafe { CStr::from_ptr(out) }.to_str().unwrap(), "{}");
        // SAFETY: from guard_text, freed once.
        unsafe { fashop_notify_string_free(out) };
    }

    #[test]
    fn arguments_are_checked() {
        let bad = [0xffu8, 0xfe, 0];
        // SAFETY: NUL-terminated local buffers.
        unsafe {
            assert!(arg_str(std::ptr::null(), "appid")
                .unwrap_err()
                .to_string()
                .contains("appid must not be NULL"));
            assert!(arg_str(bad.as_ptr().cast(), "appid")
                .unwrap_err()
                .to_string()
                .contains("not valid UTF-8"));
            assert_eq!(opt_str(std::ptr::null(), "x").unwrap(), None);
            assert_eq!(arg_str(c"wx1".as_ptr(), "appid").unwrap(), "wx1");
        }
    }

    #[test]
    fn version_is_the_crate_version() {
        // SAFETY: static NUL-terminated string.
        let v = unsafe { CStr::from_ptr(fashop_notify_version()) };
        assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
