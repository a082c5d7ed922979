//! fashop-notify: WeChat mini-program notifications for shops, as a safe Rust
//! core with a thin C ABI (`include/fashop_notify.h`) that PHP loads through FFI.
//!
//! Dependencies point one way: `ffi` → `notifier` → the concepts (`outbox`,
//! `ledger`, `wechat`, `message`, `metrics`, `journal`) → `store`,
//! `sqlite_conn`, `config` → `error`, `clock`, `secret`.
#![deny(unsafe_op_in_unsafe_fn)]

mod clock;
mod config;
mod error;
pub mod ffi;
mod journal;
mod ledger;
mod message;
mod metrics;
mod notifier;
mod outbox;
pub mod push;
mod reach;
mod secret;
mod send_machine;
mod sqlite_conn;
mod store;
mod wechat;

pub use clock::{china_day, civil_date, day_text, Clock, ManualClock, SystemClock};
pub use config::{Config, LogLevel, LogSettings, OutboxSettings, StoreSpec, WECHAT_API_BASE};
pub use error::{Error, Result};
pub use journal::{PushRecord, SendRecord, TokenRecord};
pub use ledger::{
    ClaimedTake, KeyClaim, Kind, Lease, Ledger, PermitRequest, PermitStats, Remaining,
    SpentAndRecorded,
};
pub use message::cards;
pub use message::rules;
pub use message::{MessageKind, Overflow, RenderedMessage, TEMPLATE_TTL_MS};
pub use metrics::{
    CounterSink, Format as MetricsFormat, MemorySink, Metrics, MetricsBatch, RedisSink, Sample,
    SqliteSink,
};
pub use notifier::send::{Outcome, SendStatus};
pub use notifier::Notifier;
pub use outbox::{FlushReport, FlushStatus, Flushed};
pub use push::{PushCredentials, PushFormat};
pub use secret::Secret;
pub use sqlite_conn::write_transactions as sqlite_write_transactions;
/// WeChat's appid rule, which the sandbox (its own crate) applies too.
pub use wechat::check_appid;
pub use wechat::client::{CallError, WeChatReply};
pub use wechat::errcodes::{every_errcode, policy_for, Policy, TOKEN_ERRCODES};
pub use wechat::http::{
    HttpReply, HttpRequest, MemoryTransport, Method, Transport, TransportError,
};
pub use wechat::token_cache::{TokenStats, FETCH_BACKOFF_MS};
pub use wechat::{AppSpec, Grants, Registered, TokenMode};
