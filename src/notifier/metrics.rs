//! The notifier's observation calls: the figures as Prometheus text or JSON
//! (gauges refreshed from the ledger and the outbox at scrape time), and what
//! a finished send or token fetch adds to the metrics and the structured log.

use super::Notifier;
use crate::error::Result;
use crate::journal::{Journal, SendRecord, TokenRecord};
use crate::metrics::{Format, Metrics};
use crate::wechat::errcodes::{meaning, Hint};

impl Notifier {
    /// `fashop_notify_metrics`: every figure as Prometheus text or JSON.
    pub fn metrics_text(&self, format: &str) -> Result<String> {
        let format = Format::parse(format)?;
        self.refresh_permit_stock()?;
        self.refresh_outbox_depth()?;
        self.metrics.render(format)
    }

    /// Permit stock by kind over the registered apps, read from the ledger's
    /// store (so with a shared store it is the whole shop's). Without a
    /// registered app it stays as last set.
    fn refresh_permit_stock(&self) -> Result<()> {
        let apps = self.apps.all();
        if apps.is_empty() {
            return Ok(());
        }
        let (mut subscribe, mut form_id, mut prepay_id) = (0u64, 0u64, 0u64);
        for app in apps {
            let stats = self.ledger.stats(&app.appid, None)?;
            subscribe += stats.subscribe.values().sum::<u64>();
            form_id += stats.form_id_permits;
            prepay_id += stats.prepay_id_uses;
        }
        let _batch = self.metrics.batch();
        self.metrics.set_permit_stock("subscribe", subscribe);
        self.metrics.set_permit_stock("form_id", form_id);
        self.metrics.set_permit_stock("prepay_id", prepay_id);
        Ok(())
    }

    /// The notifier's figures, for recording from the send path.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

impl Notifier {
    /// The structured log.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// A send finished: counts it in metrics and writes its log line (the
    /// one call the send path needs at its end).
    pub fn observe_send(&self, r: &SendRecord<'_>) {
        let _batch = self.metrics.batch();
        self.metrics
            .record_send(r.appid, r.event, r.status, r.errcode, r.elapsed);
        if meaning(r.errcode).hint == Hint::CapabilityBanned {
            self.metrics.record_subscribe_banned(r.appid, r.event);
        }
        self.journal.send_event(r);
    }

    /// An access token fetch finished: counts it and writes its log line.
    pub fn observe_token_fetch(&self, r: &TokenRecord<'_>) {
        self.metrics.record_token_fetch(r.appid, r.mode, r.ok);
        self.journal.token_event(r);
    }
}
