//! Every JSON argument of the C ABI, through the exported functions themselves,
//! so the boundary (NULL-free C strings, UTF-8 checks, out strings, last_error)
//! is fuzzed with the parsers behind it. The first byte picks the export, the
//! rest is the argument as C receives it (cut at the first NUL, not necessarily
//! UTF-8). Every call must answer with a status of the ABI and never INTERNAL.
//!
//! Nothing here may reach beyond this machine or write files: the process is
//! configured once to a WeChat address on 127.0.0.1 where nothing listens, and
//! inputs that would change the address, the store, the log or the timeouts are
//! turned away before they reach `configure` or `register_app`.
#![no_main]

use std::ffi::{c_char, CStr, CString};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;

// The exports as a C host sees them (`include/fashop_notify.h`); the status is
// read as a plain int so that an out-of-range value would be caught, not trusted.
type Status = i32;
const OK: Status = 0;
const INTERNAL: Status = 9;
extern "C" {
    fn fashop_notify_last_error() -> *const c_char;
    fn fashop_notify_string_free(s: *mut c_char);
    fn fashop_notify_configure(config_json: *const c_char) -> Status;
    fn fashop_notify_register_app(app_json: *const c_char) -> Status;
    fn fashop_notify_load_mappings(appid: *const c_char, json: *const c_char) -> Status;
    fn fashop_notify_get_mappings(appid: *const c_char, out: *mut *mut c_char) -> Status;
    fn fashop_notify_add_permit(appid: *const c_char, json: *const c_char) -> Status;
    fn fashop_notify_ledger_stats(
        appid: *const c_char,
        openid: *const c_char,
        out: *mut *mut c_char,
    ) -> Status;
    fn fashop_notify_render(
        appid: *const c_char,
        event: *const c_char,
        payload: *const c_char,
        out: *mut *mut c_char,
    ) -> Status;
    fn fashop_notify_send(
        appid: *const c_char,
        event: *const c_char,
        payload: *const c_char,
        out: *mut *mut c_char,
    ) -> Status;
    fn fashop_notify_set_access_token(
        appid: *const c_char,
        token: *const c_char,
        expires_in_secs: i64,
    ) -> Status;
    fn fashop_notify_invalidate_token(appid: *const c_char, token: *const c_char) -> Status;
    fn fashop_notify_call_api(
        appid: *const c_char,
        method: *const c_char,
        path: *const c_char,
        body: *const c_char,
        out: *mut *mut c_char,
    ) -> Status;
    fn fashop_notify_metrics(format: *const c_char, out: *mut *mut c_char) -> Status;
    fn fashop_notify_check_mappings(
        appid: *const c_char,
        mappings: *const c_char,
        options: *const c_char,
        out: *mut *mut c_char,
    ) -> Status;
}

// Links the library's exports into this binary.
use fashop_notify as _;

const APPID: &str = "wxfuzz0000000001";
const TEMPLATE: &str = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";
const SECRET: &str = "fuzz-app-secret-must-never-show";
const TOKEN: &str = "FUZZ-ACCESS-TOKEN-must-never-show";

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL in fixed text")
}

fn last_error() -> String {
    // SAFETY: valid until the next call on this thread; copied at once.
    unsafe { CStr::from_ptr(fashop_notify_last_error()) }
        .to_string_lossy()
        .into_owned()
}

thread_local! {
    /// Whether this input itself spells the secret or the token: messages may
    /// then quote the input (e.g. an unknown field name) without leaking anything.
    static SPELLS_SECRET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A status of the ABI that is not a bug; the out string, when written, is freed.
fn check(name: &str, status: Status, out: *mut c_char) {
    let err = last_error();
    assert!((0..=9).contains(&status), "{name}: status {status}");
    assert_ne!(status, INTERNAL, "{name}: {err}");
    assert_eq!(
        status == OK,
        err.is_empty(),
        "{name}: status {status}, last_error {err:?}"
    );
    let quoted = SPELLS_SECRET.with(|s| s.get());
    assert!(
        quoted || (!err.contains(SECRET) && !err.contains(TOKEN)),
        "{name}: {err}"
    );
    if !out.is_null() {
        // SAFETY: written by the library, read once, then freed once.
        let text = unsafe { CStr::from_ptr(out) }
            .to_string_lossy()
            .into_owned();
        assert!(quoted || !text.contains(SECRET), "{name} out: {text}");
        // SAFETY: as above.
        unsafe { fashop_notify_string_free(out) };
    }
}

fn setup() {
    // A port that was free a moment ago: connections are refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let config = format!(
        r#"{{"api_base":"http://127.0.0.1:{port}","max_retries":0,"connect_timeout_ms":200,"timeout_ms":200}}"#
    );
    // SAFETY: NUL-terminated strings alive for each call.
    unsafe {
        assert_eq!(fashop_notify_configure(c(&config).as_ptr()), OK);
        let app = format!(r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"external"}}"#);
        assert_eq!(fashop_notify_register_app(c(&app).as_ptr()), OK);
        fashop_notify_set_access_token(c(APPID).as_ptr(), c(TOKEN).as_ptr(), 86_400);
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/mappings.json"
        ))
        .expect("examples/mappings.json");
        assert_eq!(
            fashop_notify_load_mappings(c(APPID).as_ptr(), c(&doc).as_ptr()),
            OK,
            "{}",
            last_error()
        );
        let permit = format!(
            r#"{{"openid":"o-fuzz","kind":"subscribe","template_id":"{TEMPLATE}","count":1000}}"#
        );
        fashop_notify_add_permit(c(APPID).as_ptr(), c(&permit).as_ptr());
    }
}

/// Inputs for `configure` / `register_app` that could point the process
/// elsewhere (address, files, timeouts) are not passed on. A backslash could
/// spell any key as an escape, so such inputs are skipped too.
fn confined(text: &[u8]) -> bool {
    const REFUSED: [&[u8]; 6] = [b"api_base", b"store", b"log", b"timeout", b"retries", b"\\"];
    !REFUSED
        .iter()
        .any(|w| text.windows(w.len()).any(|win| win == *w))
}

const EVENTS: [&str; 6] = [
    "order_pay_success",
    "order_delivered",
    "order_cancel",
    "order_refund_apply",
    "order_pay_fail",
    "no_such_event",
];

fuzz_target!(|data: &[u8]| {
    static SETUP: Once = Once::new();
    SETUP.call_once(setup);
    let Some((&op, rest)) = data.split_first() else {
        return;
    };
    let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let arg = CString::new(&rest[..cut]).expect("cut at the first NUL");
    let spells = |w: &str| rest.windows(w.len()).any(|x| x == w.as_bytes());
    SPELLS_SECRET.with(|s| s.set(spells(SECRET) || spells(TOKEN)));
    let appid = c(APPID);
    let event = c(EVENTS[usize::from(op >> 4) % EVENTS.len()]);
    let mut out: *mut c_char = std::ptr::null_mut();
    // SAFETY: every pointer is NULL-free C text alive for the call, or an out
    // pointer to a local; every out string is freed once by `check`.
    unsafe {
        match op % 12 {
            0 => {
                if confined(&rest[..cut]) {
                    check("configure", fashop_notify_configure(arg.as_ptr()), out);
                }
            }
            1 => {
                if confined(&rest[..cut]) {
                    let s = fashop_notify_register_app(arg.as_ptr());
                    check("register_app", s, out);
                    // Keep the fixture app usable whatever was registered.
                    let app = format!(
                        r#"{{"appid":"{APPID}","secret":"{SECRET}","token_mode":"external"}}"#
                    );
                    fashop_notify_register_app(c(&app).as_ptr());
                    fashop_notify_set_access_token(appid.as_ptr(), c(TOKEN).as_ptr(), 86_400);
                }
            }
            2 => {
                // A second app, so the fixture app keeps its good mapping.
                let other = c("wxfuzz0000000002");
                fashop_notify_register_app(
                    c(r#"{"appid":"wxfuzz0000000002","secret":"s2","token_mode":"external"}"#)
                        .as_ptr(),
                );
                let s = fashop_notify_load_mappings(other.as_ptr(), arg.as_ptr());
                check("load_mappings", s, out);
                // The same text checked as a document and as the options: the
                // second app has no token, so no request leaves the process.
                let s = fashop_notify_check_mappings(
                    other.as_ptr(),
                    arg.as_ptr(),
                    std::ptr::null(),
                    &mut out,
                );
                check("check_mappings", s, out);
                out = std::ptr::null_mut();
                let s = fashop_notify_check_mappings(
                    other.as_ptr(),
                    std::ptr::null(),
                    arg.as_ptr(),
                    &mut out,
                );
                check("check_mappings options", s, out);
                out = std::ptr::null_mut();
                let s = fashop_notify_get_mappings(other.as_ptr(), &mut out);
                check("get_mappings", s, out);
                out = std::ptr::null_mut();
                let payload = c(
                    r#"{"touser":"o-fuzz","fields":{"order_sn":"S1","order_id":7,"order_amount":"12.5","pay_time":1700000000,"order_total_goods_name":"g"}}"#,
                );
                let s = fashop_notify_render(
                    other.as_ptr(),
                    event.as_ptr(),
                    payload.as_ptr(),
                    &mut out,
                );
                check("render", s, out);
            }
            3 => {
                let s = fashop_notify_add_permit(appid.as_ptr(), arg.as_ptr());
                check("add_permit", s, out);
            }
            4 | 5 => {
                let s =
                    fashop_notify_render(appid.as_ptr(), event.as_ptr(), arg.as_ptr(), &mut out);
                check("render", s, out);
            }
            6 => {
                let s = fashop_notify_send(appid.as_ptr(), event.as_ptr(), arg.as_ptr(), &mut out);
                check("send", s, out);
            }
            7 => {
                let s = fashop_notify_call_api(
                    appid.as_ptr(),
                    c("POST").as_ptr(),
                    c("/wxaapi/newtmpl/addtemplate").as_ptr(),
                    arg.as_ptr(),
                    &mut out,
                );
                check("call_api", s, out);
            }
            8 => {
                let s = fashop_notify_call_api(
                    appid.as_ptr(),
                    c("GET").as_ptr(),
                    arg.as_ptr(),
                    std::ptr::null(),
                    &mut out,
                );
                check("call_api path", s, out);
            }
            9 => {
                let s = fashop_notify_ledger_stats(appid.as_ptr(), arg.as_ptr(), &mut out);
                check("ledger_stats", s, out);
            }
            10 => {
                // An appid, event or token from outside.
                let s = fashop_notify_render(arg.as_ptr(), arg.as_ptr(), arg.as_ptr(), &mut out);
                check("render args", s, out);
                let s = fashop_notify_set_access_token(arg.as_ptr(), arg.as_ptr(), 60);
                check("set_access_token", s, std::ptr::null_mut());
                let s = fashop_notify_invalidate_token(arg.as_ptr(), arg.as_ptr());
                check("invalidate_token", s, std::ptr::null_mut());
            }
            _ => {
                let s = fashop_notify_metrics(arg.as_ptr(), &mut out);
                check("metrics", s, out);
            }
        }
    }
});
