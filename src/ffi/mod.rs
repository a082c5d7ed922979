//! The C boundary: the only unsafe code of the crate. Every export runs inside
//! `guard`, which catches panics, maps the one error type to one status enum,
//! and records the message for `fashop_notify_last_error`. Nothing here decides
//! anything; it converts and calls the safe core.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use once_cell::sync::Lazy;

use crate::error::{Error, Result};
use crate::notifier::Notifier;

mod apps;
mod ledger;
mod mapping;
mod metrics;
mod outbox;
mod push;
mod send;
mod token;

/// Status of every call. Values are fixed by the ABI contract: add, never renumber.
#[repr(C)]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FashopNotifyStatus {
    FASHOP_NOTIFY_OK = 0,
    FASHOP_NOTIFY_INVALID_ARGUMENT = 1,
    FASHOP_NOTIFY_APP_NOT_CONFIGURED = 2,
    FASHOP_NOTIFY_MAPPING_ERROR = 3,
    FASHOP_NOTIFY_NO_PERMIT = 4,
    FASHOP_NOTIFY_WECHAT_ERROR = 5,
    FASHOP_NOTIFY_NETWORK_ERROR = 6,
    FASHOP_NOTIFY_UNCERTAIN = 7,
    FASHOP_NOTIFY_STORE_ERROR = 8,
    FASHOP_NOTIFY_INTERNAL = 9,
}

use FashopNotifyStatus::*;

impl From<&Error> for FashopNotifyStatus {
    fn from(e: &Error) -> Self {
        match e {
            Error::InvalidArgument(_) => FASHOP_NOTIFY_INVALID_ARGUMENT,
            Error::AppNotConfigured(_) => FASHOP_NOTIFY_APP_NOT_CONFIGURED,
            Error::Mapping(_) => FASHOP_NOTIFY_MAPPING_ERROR,
            Error::NoPermit(_) => FASHOP_NOTIFY_NO_PERMIT,
            Error::WeChat { .. } => FASHOP_NOTIFY_WECHAT_ERROR,
            Error::Network(_) => FASHOP_NOTIFY_NETWORK_ERROR,
            Error::Uncertain(_) => FASHOP_NOTIFY_UNCERTAIN,
            Error::Store(_) => FASHOP_NOTIFY_STORE_ERROR,
            Error::Internal(_) => FASHOP_NOTIFY_INTERNAL,
        }
    }
}

/// The process's notifier.
pub(crate) fn notifier() -> &'static Notifier {
    static NOTIFIER: Lazy<Notifier> = Lazy::new(Notifier::new);
    &NOTIFIER
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    // A message with an interior NUL would be cut there by C anyway; keep what precedes it.
    let msg = msg.split('\0').next().unwrap_or_default();
    let c = CString::new(msg).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// Runs `f` behind the boundary: a panic becomes INTERNAL, an error its status,
/// and `last_error` says what happened (empty after success).
pub(crate) fn guard(name: &str, f: impl FnOnce() -> Result<()>) -> FashopNotifyStatus {
    let result = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(Error::internal(format!(
            "internal error (a bug, please report it): panic: {}",
            panic_message(p.as_ref())
        )))
    });
    match result {
        Ok(()) => {
            set_last_error("");
            FASHOP_NOTIFY_OK
        }
        Err(e) => {
            let msg = e.to_string();
            if msg.starts_with(name) && msg[name.len()..].starts_with(": ") {
                set_last_error(&msg);
            } else {
                set_last_error(&format!("{name}: {msg}"));
            }
            FashopNotifyStatus::from(&e)
        }
    }
}

/// Like `guard` for a function with an out string: `*out` is set to NULL first,
/// then to the text `f` hands back, which it may do on failure too (a send's
/// outcome is written whatever happened).
pub(crate) fn guard_out(
    name: &str,
    out: *mut *mut c_char,
    out_name: &str,
    f: impl FnOnce() -> (Result<()>, Option<String>),
) -> FashopNotifyStatus {
    if !out.is_null() {
        // SAFETY: the caller passes a valid pointer to a `char *` it owns, or NULL (checked).
        unsafe { *out = std::ptr::null_mut() };
    }
    guard(name, || {
        if out.is_null() {
            return Err(Error::invalid(format!("{out_name} must not be NULL")));
        }
        let (result, text) = f();
        if let Some(text) = text {
            let c = CString::new(text)
                .map_err(|_| Error::internal(format!("{out_name} would contain a NUL byte")))?;
            // SAFETY: `out` is non-NULL (checked above) and points to the caller's `char *`.
            unsafe { *out = c.into_raw() };
        }
        result
    })
}

/// `guard_out` for functions that write their out string only on success.
pub(crate) fn guard_text(
    name: &str,
    out: *mut *mut c_char,
    out_name: &str,
    f: impl FnOnce() -> Result<String>,
) -> FashopNotifyStatus {
    guard_out(name, out, out_name, || match f() {
        Ok(text) => (Ok(()), Some(text)),
        Err(e) => (Err(e), None),
    })
}

/// Borrows a required NUL-terminated UTF-8 argument.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Error::invalid(format!("{name} must not be NULL")));
    }
    // SAFETY: non-NULL, and the caller promises a NUL-terminated string alive for the call.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "{name} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// Borrows an optional argument: NULL is `None`.
///
/// # Safety
/// As `arg_str`.
pub(crate) unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller's promise.
        unsafe { arg_str(p, name) }.map(Some)
    }
}

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
    LAST_ERROR.with(|e| e.borrow().as_ptr())
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
    use super::*;

    fn last_error() -> String {
        // SAFETY: the pointer is valid until the next call on this thread.
        unsafe { CStr::from_ptr(fashop_notify_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn panics_become_internal_with_the_message() {
        let s = guard("probe", || panic!("boom"));
        assert_eq!(s, FASHOP_NOTIFY_INTERNAL);
        assert!(last_error().contains("panic: boom"), "{}", last_error());
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
