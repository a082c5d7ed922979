//! The tests of the `fashop-notify-sandbox` binary, one test binary for the
//! crate. They live here, not among the library's integration tests, because
//! cargo gives a test the path of a binary (CARGO_BIN_EXE_*) only in the
//! binary's own package.

// The HTTP client for the sandbox that the library's tests use too.
#[path = "../../tests/sandbox_support/mod.rs"]
mod sandbox_support;

mod cli;
mod garbage;
