//! The committed headers must be exactly what cbindgen generates from the code.
//! `FASHOP_NOTIFY_UPDATE_HEADERS=1` (what `make header` sets) writes them instead.

use std::fs;
use std::path::Path;

fn check(generated: &str, committed: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = fs::read_to_string(Path::new(env!("OUT_DIR")).join(generated))
        .expect("build.rs generated no header: see the cbindgen warning of the build");
    let path = root.join(committed);
    if std::env::var_os("FASHOP_NOTIFY_UPDATE_HEADERS").is_some() {
        fs::write(&path, &fresh).unwrap();
        return;
    }
    let old = fs::read_to_string(&path).unwrap_or_default();
    assert!(
        old == fresh,
        "{committed} differs from what cbindgen generates from the code: run make header"
    );
}

#[test]
fn c_header_is_current() {
    check("fashop_notify.h", "include/fashop_notify.h");
}

#[test]
fn php_header_is_current() {
    check("fashop_notify.ffi.h", "bindings/php/fashop_notify.ffi.h");
}
