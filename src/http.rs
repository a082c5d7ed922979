//! The HTTP seam to WeChat: a transport trait with a ureq implementation (one
//! keep-alive agent per process) and an in-memory one for tests.

use crate::config::Config;

/// The process's HTTP client. Filled in by the token and send work.
#[derive(Debug, Default)]
pub struct HttpClient {}

impl HttpClient {
    /// Picks up new timeouts.
    pub fn configure(&self, _config: &Config) {}
}
