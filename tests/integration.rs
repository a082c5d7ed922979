//! The integration tests, one module per file of this directory, built as one
//! test binary: one link of the library and its dependencies instead of one per
//! file, which made most of the tests' build time. nextest still runs every test
//! in a process of its own (`integration send::…`); a test that runs this binary
//! again names itself by its path (`--exact metrics::sqlite_worker_process`).

// What several modules share.
mod outbox_support;
mod redis_server;
mod sandbox_support;
mod store_suite;

mod cards_processes;
mod cards_send;
mod fidelity3;
mod fork_locks;
mod hardening;
mod header;
mod health;
mod ledger_processes;
mod ledger_rules;
mod mapping;
mod mapping_check;
mod mapping_props;
mod mapping_render;
mod mapping_sandbox;
mod metrics;
mod metrics_log;
mod metrics_redis;
mod metrics_send;
mod no_silent_losses;
mod outbox;
mod outbox_ffi;
mod outbox_processes;
mod push;
mod push_sandbox;
mod reach;
mod sandbox_cards;
mod sandbox_control;
mod sandbox_faults;
mod sandbox_fidelity;
mod sandbox_wechat;
mod send;
mod store_memory;
mod store_redis;
mod store_redis_cluster;
mod store_redis_trips;
mod store_redis_unix;
mod store_sqlite;
mod token_memory;
mod token_sandbox;
mod token_shared;
mod transport;
