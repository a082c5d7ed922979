//! The one error type of the crate. Every failure inside the core is an `Error`;
//! the C boundary maps it to a status code and keeps its message for `last_error`.

use std::fmt;

/// What went wrong, in the terms of the ABI's status table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// NULL, not UTF-8, malformed JSON, unknown or missing field, value out of range.
    InvalidArgument(String),
    /// The appid was never registered, or an external token was never supplied.
    AppNotConfigured(String),
    /// Mapping document invalid, event not mapped, or a value breaks a keyword rule.
    Mapping(String),
    /// No usable permit for this user and template.
    NoPermit(String),
    /// WeChat answered with a non-zero errcode the policy could not overcome.
    WeChat { errcode: i64, errmsg: String },
    /// Transport failure before the request can have reached WeChat.
    Network(String),
    /// The request may have reached WeChat, but no answer came.
    Uncertain(String),
    /// The persistent store failed.
    Store(String),
    /// A bug, including a panic caught at the boundary.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub fn store(msg: impl Into<String>) -> Self {
        Error::Store(msg.into())
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }

    /// WeChat's errcode, when this error is one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Error::WeChat { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m)
            | Error::AppNotConfigured(m)
            | Error::Mapping(m)
            | Error::NoPermit(m)
            | Error::Network(m)
            | Error::Uncertain(m)
            | Error::Store(m)
            | Error::Internal(m) => f.write_str(m),
            Error::WeChat { errcode, errmsg } => write!(f, "wechat errcode {errcode}: {errmsg}"),
        }
    }
}

impl std::error::Error for Error {}
