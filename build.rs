//! Generates the C header and PHP's flattened FFI header into OUT_DIR (never into
//! the source tree); a test compares them with the committed copies.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    set_soname();
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let config = match cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")) {
        Ok(c) => c,
        Err(e) => {
            println!("cargo:warning=cbindgen.toml: {e}");
            return;
        }
    };
    let header = match cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
    {
        Ok(b) => {
            let mut text = Vec::new();
            b.write(&mut text);
            String::from_utf8(text).unwrap()
        }
        Err(e) => {
            // The compiler will report the real problem; the header test reports a stale header.
            println!("cargo:warning=cbindgen could not generate the header: {e}");
            return;
        }
    };
    fs::write(out_dir.join("fashop_notify.h"), &header).unwrap();
    fs::write(
        out_dir.join("fashop_notify.ffi.h"),
        flatten_for_php(&header),
    )
    .unwrap();
}

/// The shared library's ABI name, by cargo-c's rule: `libfashop_notify.so.MAJOR`,
/// and before 1.0, when a minor release may break the ABI, `.so.0.MINOR`. Set on
/// every build: `make install` and `make dist` ship the release build, and
/// `make test` installs its debug build the same way (scripts/install.sh checks the
/// name on both). A program linked with `-L target/debug -lfashop_notify` needs a
/// file of that name there: `make build` links it to the library.
///
/// No version script: rustc links a cdylib with its own, which exports exactly the
/// `#[no_mangle]` functions, and ld takes the union of version scripts, so a second
/// one could not narrow it. That only `fashop_notify_*` is exported is checked on the
/// built library instead (`nm -D` in scripts/install.sh and scripts/install-test.sh).
fn set_soname() {
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if !linux {
        return;
    }
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let minor = env::var("CARGO_PKG_VERSION_MINOR").unwrap();
    let patch = env::var("CARGO_PKG_VERSION_PATCH").unwrap();
    let abi = match (major.as_str(), minor.as_str()) {
        ("0", "0") => format!("0.0.{patch}"),
        ("0", _) => format!("0.{minor}"),
        _ => major,
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfashop_notify.so.{abi}");
}

/// PHP's `FFI::cdef` does no preprocessing: keep declarations only, without
/// preprocessor lines, comments or the C++ guard.
fn flatten_for_php(header: &str) -> String {
    let mut out = String::from("/* fashop-notify for PHP FFI: generated from include/fashop_notify.h by `make header`. */\n");
    let mut in_comment = false;
    let mut depth_cpp = 0;
    for line in header.lines() {
        let t = line.trim();
        if in_comment {
            if t.contains("*/") {
                in_comment = false;
            }
            continue;
        }
        if t.starts_with("/*") {
            in_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with("#ifdef __cplusplus") {
            depth_cpp = 1;
            continue;
        }
        if depth_cpp > 0 {
            if t.starts_with("#endif") {
                depth_cpp = 0;
            }
            continue;
        }
        if t.starts_with('#') || t.starts_with("//") {
            continue;
        }
        if t.is_empty() && out.ends_with("\n\n") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}
