//! Exports for the event catalog, mapping documents and rendering.

use std::ffi::c_char;

use super::guard::{c_arg, guard, guard_text, notifier};
use super::FashopNotifyStatus;

/// Writes the event catalog (events, their fields with Chinese labels, types
/// and examples) as JSON.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_event_catalog(
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("event_catalog", out_json, "out_json", || {
        Ok(notifier().event_catalog().to_string())
    })
}

/// Validates a mapping document and makes it the app's mapping. All or nothing:
/// on error nothing changes and last_error lists every problem with its JSON path.
///
/// # Safety
/// `appid` and `mappings_json` are NULL or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_load_mappings(
    appid: *const c_char,
    mappings_json: *const c_char,
) -> FashopNotifyStatus {
    guard("load_mappings", || {
        let appid = c_arg!(appid, "appid")?;
        let json = c_arg!(mappings_json, "mappings_json")?;
        notifier().load_mappings(appid, json)
    })
}

/// Writes the app's loaded mapping document (normalized) as JSON.
///
/// # Safety
/// `appid` is NULL or a NUL-terminated string; `out_json` is NULL or points to a
/// `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_get_mappings(
    appid: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("get_mappings", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        notifier().get_mappings(appid)
    })
}

/// Writes the exact JSON body `send` would POST for `event`, without sending or
/// consuming anything. `payload_json`: `{"touser", "fields": {…}, "idempotency_key"}`.
///
/// # Safety
/// `appid`, `event` and `payload_json` are NULL or NUL-terminated strings;
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_render(
    appid: *const c_char,
    event: *const c_char,
    payload_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("render", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let event = c_arg!(event, "event")?;
        let payload = c_arg!(payload_json, "payload_json")?;
        notifier().render(appid, event, payload)
    })
}

/// Checks a mapping document against the app's live templates (read with
/// `GET /wxaapi/newtmpl/gettemplate`, kept a minute; `{"refresh": true}` in
/// `options_json` reads them again) and writes the report: `{"appid", "ok",
/// "problems": [{"path", "kind", "message"}], "warnings": […], "templates":
/// {"count", "read_at_ms", "cached"} | null}`. `mappings_json` NULL checks the
/// loaded document. Nothing is loaded or changed; OK whatever the findings.
///
/// # Safety
/// `appid` is a NUL-terminated string; `mappings_json` and `options_json` are
/// NULL or NUL-terminated strings; `out_json` is NULL or points to a `char *`
/// the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_check_mappings(
    appid: *const c_char,
    mappings_json: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("check_mappings", out_json, "out_json", || {
        let appid = c_arg!(appid, "appid")?;
        let json = c_arg!(opt mappings_json, "mappings_json")?;
        let options = c_arg!(opt options_json, "options_json")?;
        notifier().check_mappings(appid, json, options)
    })
}

/// Writes every keyword type with its rule, as JSON for an admin screen:
/// `{"types": [{"type", "prefixes", "limit", "allowed", "examples", "source",
/// "shortened_when_too_long"}]}`.
///
/// # Safety
/// `out_json` is NULL or points to a `char *` the caller owns.
#[no_mangle]
pub unsafe extern "C" fn fashop_notify_keyword_types(
    out_json: *mut *mut c_char,
) -> FashopNotifyStatus {
    guard_text("keyword_types", out_json, "out_json", || {
        Ok(notifier().keyword_types().to_string())
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};
    use std::ptr::{null, null_mut};

    use super::*;
    use crate::ffi::fashop_notify_string_free;
    use crate::ffi::FashopNotifyStatus::*;

    use crate::ffi::guard::last_error_text as last_error;

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

    const BAD_UTF8: &[u8] = b"wx\xff\xfe\0";

    #[test]
    fn exports_check_every_argument() {
        let app = c("wxffimapping0001");
        let unknown = c("wxffimapping0002");
        let doc = c(
            r#"{"version":1,"events":{"order_cancel":{"template_id":"t1","data":{"thing1":"{cancel_reason|default:已取消}"}}}}"#,
        );
        let event = c("order_cancel");
        let payload = c(r#"{"touser":"o1"}"#);
        let bad = BAD_UTF8.as_ptr().cast::<c_char>();
        let mut out: *mut c_char = null_mut();
        notifier()
            .register_app(r#"{"appid":"wxffimapping0001","secret":"s"}"#)
            .unwrap();
        // SAFETY: every pointer is NULL, a live NUL-terminated string, or a live out slot.
        unsafe {
            assert_eq!(
                fashop_notify_event_catalog(null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(fashop_notify_event_catalog(&mut out), FASHOP_NOTIFY_OK);
            assert!(take(out).unwrap().contains("\"label\":\"订单取消\""));

            let load = |a: *const c_char, j: *const c_char| fashop_notify_load_mappings(a, j);
            assert_eq!(load(null(), doc.as_ptr()), FASHOP_NOTIFY_INVALID_ARGUMENT);
            assert_eq!(last_error(), "load_mappings: appid must not be NULL");
            assert_eq!(load(bad, doc.as_ptr()), FASHOP_NOTIFY_INVALID_ARGUMENT);
            assert!(last_error().contains("appid is not valid UTF-8"));
            assert_eq!(
                load(unknown.as_ptr(), doc.as_ptr()),
                FASHOP_NOTIFY_APP_NOT_CONFIGURED
            );
            assert_eq!(load(app.as_ptr(), null()), FASHOP_NOTIFY_INVALID_ARGUMENT);
            assert_eq!(
                last_error(),
                "load_mappings: mappings_json must not be NULL"
            );
            assert_eq!(load(app.as_ptr(), bad), FASHOP_NOTIFY_INVALID_ARGUMENT);
            assert_eq!(
                load(app.as_ptr(), c("{").as_ptr()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert!(last_error().contains("mappings_json is not valid JSON"));
            assert_eq!(
                load(app.as_ptr(), c(r#"{"version":1,"events":{"order_cancel":{"template_id":"t","data":{"thing1":"{x}"}}}}"#).as_ptr()),
                FASHOP_NOTIFY_MAPPING_ERROR
            );
            assert!(
                last_error().contains("events.order_cancel.data.thing1: unknown placeholder {x}")
            );

            out = c"x".as_ptr().cast_mut();
            assert_eq!(
                fashop_notify_get_mappings(app.as_ptr(), &mut out),
                FASHOP_NOTIFY_MAPPING_ERROR
            );
            assert!(out.is_null());
            assert_eq!(load(app.as_ptr(), doc.as_ptr()), FASHOP_NOTIFY_OK);
            assert_eq!(last_error(), "");
            assert_eq!(
                fashop_notify_get_mappings(app.as_ptr(), &mut out),
                FASHOP_NOTIFY_OK
            );
            assert!(take(out).unwrap().contains("\"template_id\":\"t1\""));
            assert_eq!(
                fashop_notify_get_mappings(null(), &mut out),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(
                fashop_notify_get_mappings(bad, &mut out),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(
                fashop_notify_get_mappings(app.as_ptr(), null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );

            let render = |a, e, p, o| fashop_notify_render(a, e, p, o);
            assert_eq!(
                render(app.as_ptr(), event.as_ptr(), payload.as_ptr(), &mut out),
                FASHOP_NOTIFY_OK
            );
            assert_eq!(
                take(out).unwrap(),
                r#"{"data":{"thing1":{"value":"已取消"}},"lang":"zh_CN","miniprogram_state":"formal","template_id":"t1","touser":"o1"}"#
            );
            for (a, e, p, what) in [
                (
                    null(),
                    event.as_ptr(),
                    payload.as_ptr(),
                    "appid must not be NULL",
                ),
                (
                    bad,
                    event.as_ptr(),
                    payload.as_ptr(),
                    "appid is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    null(),
                    payload.as_ptr(),
                    "event must not be NULL",
                ),
                (
                    app.as_ptr(),
                    bad,
                    payload.as_ptr(),
                    "event is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    event.as_ptr(),
                    null(),
                    "payload_json must not be NULL",
                ),
                (
                    app.as_ptr(),
                    event.as_ptr(),
                    bad,
                    "payload_json is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    event.as_ptr(),
                    c("{\"touser\":").as_ptr(),
                    "payload_json: EOF",
                ),
            ] {
                out = c"x".as_ptr().cast_mut();
                assert_eq!(
                    render(a, e, p, &mut out),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "{what}"
                );
                assert!(
                    last_error().starts_with("render: ") && last_error().contains(what),
                    "{}",
                    last_error()
                );
                assert!(out.is_null());
            }
            assert_eq!(
                render(app.as_ptr(), event.as_ptr(), payload.as_ptr(), null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(last_error(), "render: out_json must not be NULL");
        }
    }

    #[test]
    fn check_and_keyword_types_check_every_argument() {
        let app = c("wxffimapping0003");
        let unknown = c("wxffimapping0004");
        let bad = BAD_UTF8.as_ptr().cast::<c_char>();
        let mut out: *mut c_char = null_mut();
        notifier()
            .register_app(r#"{"appid":"wxffimapping0003","secret":"s"}"#)
            .unwrap();
        // SAFETY: every pointer is NULL, a live NUL-terminated string, or a live out slot.
        unsafe {
            assert_eq!(fashop_notify_keyword_types(&mut out), FASHOP_NOTIFY_OK);
            assert!(take(out).unwrap().contains("\"type\":\"enum_string\""));
            assert_eq!(
                fashop_notify_keyword_types(null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(last_error(), "keyword_types: out_json must not be NULL");

            let check = |a, m, o, out| fashop_notify_check_mappings(a, m, o, out);
            let doc = c(
                r#"{"version":1,"events":{"order_cancel":{"template_id":"t","data":{"thing1":"{x}"}}}}"#,
            );
            for (a, m, o, status, what) in [
                (
                    null(),
                    null(),
                    null(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "appid must not be NULL",
                ),
                (
                    bad,
                    null(),
                    null(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "appid is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    bad,
                    null(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "mappings_json is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    null(),
                    bad,
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "options_json is not valid UTF-8",
                ),
                (
                    app.as_ptr(),
                    c("{").as_ptr(),
                    null(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "mappings_json is not valid JSON",
                ),
                (
                    app.as_ptr(),
                    doc.as_ptr(),
                    c("[").as_ptr(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "options_json is not valid JSON",
                ),
                (
                    app.as_ptr(),
                    doc.as_ptr(),
                    c("[]").as_ptr(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "options_json must be an object",
                ),
                (
                    app.as_ptr(),
                    doc.as_ptr(),
                    c(r#"{"refrsh":true}"#).as_ptr(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "unknown field \"refrsh\"",
                ),
                (
                    app.as_ptr(),
                    doc.as_ptr(),
                    c(r#"{"refresh":1}"#).as_ptr(),
                    FASHOP_NOTIFY_INVALID_ARGUMENT,
                    "refresh must be true or false",
                ),
                (
                    unknown.as_ptr(),
                    null(),
                    null(),
                    FASHOP_NOTIFY_APP_NOT_CONFIGURED,
                    "wxffimapping0004",
                ),
                (
                    app.as_ptr(),
                    null(),
                    null(),
                    FASHOP_NOTIFY_MAPPING_ERROR,
                    "no mapping document is loaded",
                ),
            ] {
                out = c"x".as_ptr().cast_mut();
                assert_eq!(check(a, m, o, &mut out), status, "{what}");
                assert!(
                    last_error().starts_with("check_mappings: ") && last_error().contains(what),
                    "{what}: {}",
                    last_error()
                );
                assert!(out.is_null());
            }
            // A document that does not load is reported, without a network call.
            assert_eq!(
                check(app.as_ptr(), doc.as_ptr(), null(), &mut out),
                FASHOP_NOTIFY_OK
            );
            let report: serde_json::Value = serde_json::from_str(&take(out).unwrap()).unwrap();
            assert_eq!(report["ok"], false);
            assert_eq!(report["templates"], serde_json::Value::Null);
            assert_eq!(report["problems"][0]["kind"], "invalid_mapping");
            assert_eq!(
                report["problems"][0]["path"],
                "events.order_cancel.data.thing1"
            );
            assert_eq!(
                check(app.as_ptr(), doc.as_ptr(), null(), null_mut()),
                FASHOP_NOTIFY_INVALID_ARGUMENT
            );
            assert_eq!(last_error(), "check_mappings: out_json must not be NULL");
        }
    }
}
