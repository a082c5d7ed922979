//! A shop wired to the WeChat sandbox for the outbox tests and their worker
//! processes: the demo app, the seed mappings with the sandbox's templates,
//! and a buyer whose grants are recorded in both the sandbox and the ledger.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use fashop_notify::{ManualClock, Notifier};
use serde_json::json;

/// The sandbox's demo app, written out: the worker binary, a binary of the
/// library's package, cannot depend on the sandbox crate (the tests check them).
pub const APP: &str = "wxdemo0000000001";
const SECRET: &str = "demo-app-secret-0001";
pub const BUYER: &str = "oBuyer_outbox_test_01";
pub const SEND: &str = "/cgi-bin/message/subscribe/send";
/// 2026-11-23 15:00:00 UTC, 23:00 in China: an hour before WeChat's quotas reset.
pub const NOW: i64 = 1_795_446_000;

/// The example mapping document: its template ids are the sandbox's seeded ones.
pub const MAPPINGS: &str = include_str!("../../examples/mappings.json");

/// A notifier on `store` talking to the sandbox at `api_base`, at `now` on a
/// clock the caller moves.
pub fn notifier(store: &str, api_base: &str, now: i64) -> (Notifier, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::at(now));
    let n = Notifier::with_clock(clock.clone());
    n.configure(
        &json!({
            "store": store,
            "api_base": api_base,
            "max_retries": 1,
            "timeout_ms": 20000,
            "connect_timeout_ms": 2000,
        })
        .to_string(),
    )
    .unwrap_or_else(|e| panic!("configure {store}: {e}"));
    n.register_app(&json!({"appid": APP, "secret": SECRET}).to_string())
        .unwrap();
    n.load_mappings(APP, MAPPINGS).unwrap();
    (n, clock)
}

/// A "payment received" payload for order `order_sn`.
pub fn payment(order_sn: &str) -> String {
    json!({
        "touser": BUYER,
        "fields": {
            "order_id": 42,
            "order_sn": order_sn,
            "order_amount": "88.00",
            "order_total_goods_name": "帆布包 x1",
            "pay_time": 1795426265
        }
    })
    .to_string()
}

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fashop-outbox-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn store(&self) -> String {
        format!("sqlite:{}", self.0.join("notify.db").display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
#[test]
fn the_app_is_the_sandboxs_demo_app() {
    assert_eq!(APP, fashop_notify_sandbox::DEMO_APPID);
    assert_eq!(SECRET, fashop_notify_sandbox::DEMO_SECRET);
}
