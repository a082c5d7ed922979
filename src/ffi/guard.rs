//! The panic boundary every export runs behind: a caught panic becomes
//! INTERNAL, an error its status, and `last_error` keeps the message; plus
//! the one way string arguments are read and out strings written.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use once_cell::sync::Lazy;

use super::status::FashopNotifyStatus::{self, *};
use crate::error::{Error, Result};
use crate::notifier::Notifier;

static NOTIFIER: Lazy<Notifier> = Lazy::new(Notifier::new);

/// The process's notifier.
pub(crate) fn notifier() -> &'static Notifier {
    &NOTIFIER
}

/// At `exit()` (and when the library is unloaded), the figures this process
/// counted since its last merge go to the shared store: the static notifier
/// is never dropped, and a PHP worker that exits normally must lose nothing.
extern "C" fn merge_figures_at_exit() {
    // Nothing may unwind out of a destructor the C runtime calls.
    let _ = catch_unwind(|| {
        if let Some(n) = Lazy::get(&NOTIFIER) {
            let _ = n.metrics().flush();
        }
    });
}

// SAFETY: `.fini_array` holds pointers to functions taking and returning
// nothing, which the C runtime calls once at exit or unload; this entry is
// such a function and never unwinds.
#[used]
#[link_section = ".fini_array"]
static MERGE_AT_EXIT: extern "C" fn() = merge_figures_at_exit;

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
            // Messages say what happened; which export it happened in is said
            // here, once, for every export alike.
            let msg = e.to_string();
            let prefix = format!("{name}: ");
            // TODO(merge): drop this check (always prefix) once the send and
            // outbox pipelines no longer type their export's name themselves.
            if msg.starts_with(&prefix) {
                set_last_error(&msg);
            } else {
                set_last_error(&(prefix + &msg));
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
pub unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str> {
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
pub unsafe fn opt_str<'a>(p: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded from the caller's promise.
        unsafe { arg_str(p, name) }.map(Some)
    }
}

/// Borrows a C string argument for the call: `c_arg!(appid, "appid")` for a
/// required one, `c_arg!(opt openid_or_null, "openid")` for one that may be
/// NULL. NULL (when required) and invalid UTF-8 are INVALID_ARGUMENT naming
/// the argument.
macro_rules! c_arg {
    ($p:expr, $name:literal) => {{
        let p: *const std::ffi::c_char = $p;
        // SAFETY: every export's contract (its `# Safety` section) says that
        // its string arguments are NULL or NUL-terminated strings that outlive
        // the call; `arg_str` checks NULL and UTF-8 and borrows nothing longer.
        unsafe { $crate::ffi::guard::arg_str(p, $name) }
    }};
    (opt $p:expr, $name:literal) => {{
        let p: *const std::ffi::c_char = $p;
        // SAFETY: as above; NULL is allowed and means `None`.
        unsafe { $crate::ffi::guard::opt_str(p, $name) }
    }};
}
pub(crate) use c_arg;

/// The message of the last failed call on this thread, `""` after a success.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// The last error of this thread as text, for the boundary's own tests.
#[cfg(test)]
pub(crate) fn last_error_text() -> String {
    LAST_ERROR.with(|e| e.borrow().to_string_lossy().into_owned())
}
