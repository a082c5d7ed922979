//! WeChat's errcodes and what the crate does with each: the send policy table
//! of docs/spec/wechat.md, and the codes that mean the access token is bad.

/// The errcodes that mean "this access token is not (or no longer) valid".
pub const TOKEN_ERRCODES: [i64; 3] = [40001, 40014, 42001];

/// What the send does with one WeChat answer (docs/spec/wechat.md, error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Delivered: consume the permit.
    Sent,
    /// The user has no subscription left (43101): the grant is gone, consume it.
    Refused,
    /// Transient: retry after `backoff_ms` (doubling each time), then fail and
    /// give the permit back.
    Retry { backoff_ms: u64 },
    /// This form_id / prepay_id is dead (41028, 41029): discard it and try the
    /// user's next permit.
    NextPermit,
    /// The API's per-minute quota is spent (45011, "retry next minute"):
    /// retrying within the call only wastes calls and holds up the request.
    /// Give the permit back; the outcome says to retry from the next minute.
    NextMinute,
    /// Give the permit back and report WeChat's error.
    Fail,
}

pub fn policy_for(errcode: i64) -> Policy {
    match errcode {
        0 => Policy::Sent,
        43101 => Policy::Refused,
        -1 => Policy::Retry { backoff_ms: 200 },
        45011 => Policy::NextMinute,
        43108 => Policy::Retry { backoff_ms: 100 },
        41028 | 41029 => Policy::NextPermit,
        _ => Policy::Fail,
    }
}
