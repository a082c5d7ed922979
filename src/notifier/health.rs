//! The store health check: a real write, read back and delete on the store in
//! force, so a monitor learns what the next send would meet (a store down, a
//! file no longer writable) before a buyer's message does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::json;

use super::Notifier;
use crate::error::{Error, Result};
use crate::ledger::KeyClaim;

/// How long a probe's claim stays if this process dies between its write and
/// its delete: the store forgets it by itself after that.
const PROBE_LEASE_MS: i64 = 60_000;

impl Notifier {
    /// `{"ok", "store", "error", "latency_ms"}`: the verdict of a round trip on
    /// the ledger's store (the outbox uses the same `store` setting). A store
    /// that fails is `ok: false` with its message, never an error of the call:
    /// the check itself succeeded.
    pub fn store_health(&self) -> Result<String> {
        // Wall time on purpose: latency is a measurement for the monitor, and
        // the settable clock (tests) would report what the test set.
        let started = Instant::now();
        let probe = self
            .check_configured()
            .and_then(|()| self.noted("store_health", self.probe_store()));
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(json!({
            "ok": probe.is_ok(),
            "store": self.ledger.describe_store(),
            "error": probe.err().map(|e| e.to_string()),
            "latency_ms": (latency_ms * 1000.0).round() / 1000.0,
        })
        .to_string())
    }

    /// Claims a key no send uses, reads the claim back, deletes it and reads
    /// that back: each step a store round trip a send also makes.
    fn probe_store(&self) -> Result<()> {
        let key = probe_key(self.clock.now_ms());
        let ledger = &self.ledger;
        expect(
            ledger.idempotency_claim(&key, PROBE_LEASE_MS)?,
            "written",
            |c| matches!(c, KeyClaim::Fresh),
        )?;
        let read = ledger.idempotency_claim(&key, PROBE_LEASE_MS);
        let released = ledger.idempotency_release(&key);
        expect(read?, "read back", |c| matches!(c, KeyClaim::InFlight))?;
        released?;
        expect(
            ledger.idempotency_claim(&key, PROBE_LEASE_MS)?,
            "deleted",
            |c| matches!(c, KeyClaim::Fresh),
        )?;
        ledger.idempotency_release(&key)
    }
}

/// A key of this process alone: the pid (workers share a store), the time and
/// a counter (threads of one process).
fn probe_key(now_ms: i64) -> String {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    format!("fashop-notify:health:{}:{now_ms}:{n}", std::process::id())
}

/// A probe step whose answer is not the one a working store gives.
fn expect(claim: KeyClaim, step: &str, ok: impl Fn(&KeyClaim) -> bool) -> Result<()> {
    if ok(&claim) {
        return Ok(());
    }
    Err(Error::store(format!(
        "the probe key was {step} but the store then answered {claim:?}: \
         it does not keep what it is given"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(n: &Notifier) -> serde_json::Value {
        serde_json::from_str(&n.store_health().unwrap()).unwrap()
    }

    #[test]
    fn health_of_the_memory_store_is_ok_and_leaves_nothing() {
        let n = Notifier::new();
        let v = verdict(&n);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["store"], "memory");
        assert!(v["error"].is_null());
        assert!(v["latency_ms"].as_f64().unwrap() >= 0.0);
        // Twice in a row: the first probe's key is gone, the next one is fresh.
        assert_eq!(verdict(&n)["ok"], true);
    }

    #[test]
    fn health_after_a_failed_first_configure_names_it() {
        let n = Notifier::new();
        assert!(n
            .configure(r#"{"store": "sqlite:/nonexistent-dir/x/notify.db"}"#)
            .is_err());
        let v = verdict(&n);
        assert_eq!(v["ok"], false);
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("configure failed"), "{error}");
    }

    #[test]
    fn health_probe_steps_refuse_a_store_that_forgets() {
        let e = expect(KeyClaim::Fresh, "read back", |c| {
            matches!(c, KeyClaim::InFlight)
        })
        .unwrap_err();
        assert!(e.to_string().contains("read back"), "{e}");
    }
}
