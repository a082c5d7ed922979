//! Injected faults: how the sandbox fails on purpose, so clients can be tested
//! against the ways WeChat and the network really fail.

use serde::{Deserialize, Serialize};

/// A fault scoped to one path (exact, or a prefix ending in `*`), firing on the
/// next `count` matching requests (every one when unset), each with
/// `probability` (always when unset). At most one of `errcode`, `http_status`,
/// `close_before_answer`, `close_after_read`, `malformed_body` is set;
/// `latency_ms` delays the answer and combines with any of them or with none.
///
/// - `errcode`: answers `{"errcode":N,"errmsg":…}` without doing anything.
/// - `http_status`: answers that HTTP status (e.g. 502) without doing anything.
/// - `close_before_answer`: closes the connection without handling the request.
/// - `close_after_read`: handles the request (a send is delivered and recorded),
///   then closes the connection without answering: the "maybe delivered" case.
/// - `malformed_body`: handles the request, then answers a truncated JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub close_before_answer: bool,
    #[serde(default)]
    pub close_after_read: bool,
    #[serde(default)]
    pub malformed_body: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
}

impl Fault {
    /// A fault on `path` that does nothing until an effect is added.
    pub fn on(path: &str) -> Fault {
        Fault {
            path: path.to_string(),
            errcode: None,
            http_status: None,
            latency_ms: 0,
            close_before_answer: false,
            close_after_read: false,
            malformed_body: false,
            count: None,
            probability: None,
        }
    }

    pub fn errcode(mut self, errcode: i64) -> Fault {
        self.errcode = Some(errcode);
        self
    }

    pub fn http_status(mut self, status: u16) -> Fault {
        self.http_status = Some(status);
        self
    }

    pub fn latency_ms(mut self, ms: u64) -> Fault {
        self.latency_ms = ms;
        self
    }

    pub fn close_before_answer(mut self) -> Fault {
        self.close_before_answer = true;
        self
    }

    pub fn close_after_read(mut self) -> Fault {
        self.close_after_read = true;
        self
    }

    pub fn malformed_body(mut self) -> Fault {
        self.malformed_body = true;
        self
    }

    /// Fires on the next `n` matching requests only.
    pub fn count(mut self, n: u32) -> Fault {
        self.count = Some(n);
        self
    }

    /// Fires on each matching request with probability `p` (0..=1).
    pub fn probability(mut self, p: f64) -> Fault {
        self.probability = Some(p);
        self
    }

    /// Why this fault cannot be injected, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if !self.path.starts_with('/') {
            return Some(format!("fault path must start with '/': {:?}", self.path));
        }
        if self.path.starts_with("/sandbox/") {
            return Some("faults cannot be put on the control API".into());
        }
        let effects = [
            self.errcode.is_some(),
            self.http_status.is_some(),
            self.close_before_answer,
            self.close_after_read,
            self.malformed_body,
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if effects > 1 {
            return Some(
                "a fault has at most one of errcode, http_status, close_before_answer, \
                 close_after_read, malformed_body"
                    .into(),
            );
        }
        if effects == 0 && self.latency_ms == 0 {
            return Some("a fault needs an effect or a latency".into());
        }
        if let Some(s) = self.http_status {
            if !(100..=599).contains(&s) {
                return Some(format!("http_status must be 100..=599, got {s}"));
            }
        }
        if self.errcode == Some(0) {
            return Some("errcode 0 is not a fault".into());
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Some(format!("probability must be within 0..=1, got {p}"));
            }
        }
        if self.latency_ms > 600_000 {
            return Some("latency_ms must be at most 600000".into());
        }
        if self.count == Some(0) {
            return Some("count must be at least 1".into());
        }
        None
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => self.path == path,
        }
    }
}

/// What a fired fault does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    None,
    Errcode(i64),
    HttpStatus(u16),
    CloseBeforeAnswer,
    CloseAfterRead,
    MalformedBody,
}

impl Fault {
    pub(crate) fn effect(&self) -> Effect {
        if let Some(code) = self.errcode {
            Effect::Errcode(code)
        } else if let Some(s) = self.http_status {
            Effect::HttpStatus(s)
        } else if self.close_before_answer {
            Effect::CloseBeforeAnswer
        } else if self.close_after_read {
            Effect::CloseAfterRead
        } else if self.malformed_body {
            Effect::MalformedBody
        } else {
            Effect::None
        }
    }
}
