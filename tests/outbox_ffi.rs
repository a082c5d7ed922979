//! The five outbox exports from Rust, as a host calls them: NULL, invalid
//! UTF-8, malformed JSON, an unknown appid, max_messages 0, id 0 and a NULL
//! out pointer each give their status and a last_error naming the problem,
//! and never an out string. No network: nothing here reaches a flush.

// The exports live in the library; this links it.
extern crate fashop_notify;

use std::ffi::{c_char, CStr, CString};
use std::ptr;

extern "C" {
    fn fashop_notify_register_app(app_json: *const c_char) -> i32;
    fn fashop_notify_load_mappings(appid: *const c_char, mappings_json: *const c_char) -> i32;
    fn fashop_notify_enqueue(
        appid: *const c_char,
        event: *const c_char,
        payload_json: *const c_char,
        out_json: *mut *mut c_char,
    ) -> i32;
    fn fashop_notify_flush(
        appid_or_null: *const c_char,
        max_messages: u32,
        out_json: *mut *mut c_char,
    ) -> i32;
    fn fashop_notify_outbox_stats(appid_or_null: *const c_char, out_json: *mut *mut c_char) -> i32;
    fn fashop_notify_outbox_requeue(appid: *const c_char, id: u64) -> i32;
    fn fashop_notify_outbox_drop(appid: *const c_char, id: u64) -> i32;
    fn fashop_notify_last_error() -> *const c_char;
    fn fashop_notify_string_free(s: *mut c_char);
}

const INVALID_ARGUMENT: i32 = 1;
const APP_NOT_CONFIGURED: i32 = 2;

fn last_error() -> String {
    // SAFETY: last_error returns a valid NUL-terminated string owned by the library.
    unsafe { CStr::from_ptr(fashop_notify_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// Runs a call with an out pointer that starts as garbage; its status, the
/// last_error and the out text.
fn call(f: impl FnOnce(*mut *mut c_char) -> i32) -> (i32, String, Option<String>) {
    let mut out: *mut c_char = ptr::dangling_mut();
    let status = f(&mut out);
    let err = last_error();
    let text = (!out.is_null()).then(|| {
        // SAFETY: a non-NULL out is a string the library wrote for us.
        let t = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once, with the library's own free.
        unsafe { fashop_notify_string_free(out) };
        t
    });
    (status, err, text)
}

fn expect(got: (i32, String, Option<String>), status: i32, needle: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert!(
        got.1.contains(needle),
        "last_error {:?} lacks {needle:?}",
        got.1
    );
    assert!(got.2.is_none(), "an out string on failure: {:?}", got.2);
}

#[test]
fn every_outbox_export_refuses_bad_input() {
    let app = c("wxoutboxffi000001");
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../examples/mappings.json")).unwrap();
    doc["events"]
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "order_pay_success");
    let mappings = c(&doc.to_string());
    // SAFETY: valid NUL-terminated strings.
    unsafe {
        assert_eq!(
            fashop_notify_register_app(c(r#"{"appid":"wxoutboxffi000001","secret":"s"}"#).as_ptr()),
            0
        );
        assert_eq!(
            fashop_notify_load_mappings(app.as_ptr(), mappings.as_ptr()),
            0,
            "{}",
            last_error()
        );
    }
    let event = c("order_pay_success");
    let payload = c(
        r#"{"touser":"oFfi","fields":{"order_id":1,"order_sn":"F1","order_amount":"1","order_total_goods_name":"x","pay_time":1795426265}}"#,
    );
    let bad = CString::new(vec![b'w', b'x', 0xff]).unwrap();
    let unknown = c("wxnotregistered01");
    let null = ptr::null::<c_char>();

    // SAFETY (every call below): NULL or valid NUL-terminated strings, and a
    // valid out pointer or NULL, as the exports allow.
    unsafe {
        for (args, needle) in [
            (
                (null, event.as_ptr(), payload.as_ptr()),
                "enqueue: appid must not be NULL",
            ),
            (
                (app.as_ptr(), null, payload.as_ptr()),
                "event must not be NULL",
            ),
            (
                (app.as_ptr(), event.as_ptr(), null),
                "payload_json must not be NULL",
            ),
            (
                (bad.as_ptr(), event.as_ptr(), payload.as_ptr()),
                "appid is not valid UTF-8",
            ),
            (
                (app.as_ptr(), bad.as_ptr(), payload.as_ptr()),
                "event is not valid UTF-8",
            ),
            (
                (app.as_ptr(), event.as_ptr(), bad.as_ptr()),
                "payload_json is not valid UTF-8",
            ),
        ] {
            expect(
                call(|out| fashop_notify_enqueue(args.0, args.1, args.2, out)),
                INVALID_ARGUMENT,
                needle,
            );
        }
        let malformed = c(r#"{"touser": "#);
        expect(
            call(|out| {
                fashop_notify_enqueue(app.as_ptr(), event.as_ptr(), malformed.as_ptr(), out)
            }),
            INVALID_ARGUMENT,
            "enqueue: ",
        );
        let wrong_type = c(r#"{"touser": 5, "fields": {}}"#);
        expect(
            call(|out| {
                fashop_notify_enqueue(app.as_ptr(), event.as_ptr(), wrong_type.as_ptr(), out)
            }),
            INVALID_ARGUMENT,
            "touser",
        );
        expect(
            call(|out| {
                fashop_notify_enqueue(unknown.as_ptr(), event.as_ptr(), payload.as_ptr(), out)
            }),
            APP_NOT_CONFIGURED,
            "wxnotregistered01",
        );
        assert_eq!(
            fashop_notify_enqueue(
                app.as_ptr(),
                event.as_ptr(),
                payload.as_ptr(),
                ptr::null_mut()
            ),
            INVALID_ARGUMENT
        );
        assert!(last_error().contains("out_json must not be NULL"));

        expect(
            call(|out| fashop_notify_flush(app.as_ptr(), 0, out)),
            INVALID_ARGUMENT,
            "max_messages",
        );
        expect(
            call(|out| fashop_notify_flush(bad.as_ptr(), 5, out)),
            INVALID_ARGUMENT,
            "appid_or_null is not valid UTF-8",
        );
        expect(
            call(|out| fashop_notify_flush(unknown.as_ptr(), 5, out)),
            APP_NOT_CONFIGURED,
            "not registered",
        );
        assert_eq!(
            fashop_notify_flush(null, 5, ptr::null_mut()),
            INVALID_ARGUMENT
        );

        expect(
            call(|out| fashop_notify_outbox_stats(bad.as_ptr(), out)),
            INVALID_ARGUMENT,
            "appid_or_null is not valid UTF-8",
        );
        expect(
            call(|out| fashop_notify_outbox_stats(unknown.as_ptr(), out)),
            APP_NOT_CONFIGURED,
            "not registered",
        );
        assert_eq!(
            fashop_notify_outbox_stats(null, ptr::null_mut()),
            INVALID_ARGUMENT
        );

        for (f, name) in [
            (
                fashop_notify_outbox_requeue as unsafe extern "C" fn(*const c_char, u64) -> i32,
                "outbox_requeue",
            ),
            (fashop_notify_outbox_drop, "outbox_drop"),
        ] {
            assert_eq!(f(null, 1), INVALID_ARGUMENT);
            assert!(
                last_error().contains(&format!("{name}: appid must not be NULL")),
                "{}",
                last_error()
            );
            assert_eq!(f(bad.as_ptr(), 1), INVALID_ARGUMENT);
            assert!(last_error().contains("appid is not valid UTF-8"));
            assert_eq!(f(unknown.as_ptr(), 1), APP_NOT_CONFIGURED);
            assert_eq!(f(app.as_ptr(), 0), INVALID_ARGUMENT);
            assert!(last_error().contains("id must be"));
            assert_eq!(f(app.as_ptr(), 77), INVALID_ARGUMENT);
            assert!(
                last_error().contains("no outbox message 77"),
                "{}",
                last_error()
            );
        }

        // After all that, the outbox holds nothing; one good enqueue then works.
        let (st, _, stats) = call(|out| fashop_notify_outbox_stats(null, out));
        assert_eq!(st, 0);
        assert!(stats.unwrap().contains(r#""pending":0"#));
        let (st, err, got) =
            call(|out| fashop_notify_enqueue(app.as_ptr(), event.as_ptr(), payload.as_ptr(), out));
        assert_eq!(st, 0, "{err}");
        assert_eq!(err, "");
        assert!(got.unwrap().contains(r#""id":1"#));
    }
}
