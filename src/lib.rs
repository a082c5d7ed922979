//! fashop-notify: WeChat mini-program notifications for shops, as a safe Rust
//! core with a thin C ABI (`include/fashop_notify.h`) that PHP loads through FFI.
#![deny(unsafe_op_in_unsafe_fn)]

mod apps;
mod catalog;
mod clock;
mod config;
mod error;
pub mod ffi;
mod http;
mod journal;
mod ledger;
mod mapping;
mod metrics;
mod notifier;
mod notifier_push;
// Used by the notifier from the next step on.
mod outbox;
mod placeholder;
#[allow(dead_code, unused_imports)]
pub mod push;
mod render;
pub mod rules;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod secret;
mod send;
mod sqlite_conn;
mod store;
mod token;

pub use apps::{AppSpec, Grants, Registered, TokenMode};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, WECHAT_API_BASE};
pub use error::{Error, Result};
pub use http::{HttpReply, HttpRequest, MemoryTransport, Method, Transport, TransportError};
pub use journal::{LogLevel, LogSettings, PushRecord, SendRecord, TokenRecord};
pub use ledger::{
    Claim, ClaimedTake, Kind, Lease, Ledger, PermitRequest, Remaining, SpentAndRecorded, Stats,
};
pub use mapping::{MessageKind, Overflow};
pub use metrics::{
    CounterSink, Format as MetricsFormat, MemorySink, Metrics, MetricsBatch, RedisSink, Sample,
    ScrapeHook, SqliteSink,
};
pub use notifier::Notifier;
pub use outbox::{FlushReport, Flushed, OutboxSettings};
pub use push::{PushCredentials, PushFormat};
pub use render::RenderedMessage;
pub use secret::Secret;
pub use token::{CallError, TokenStats, WeChatReply, FETCH_BACKOFF_MS, TOKEN_ERRCODES};
