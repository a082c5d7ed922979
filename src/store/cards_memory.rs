//! Card records in this process's memory (one process: tests, a single worker).

use std::collections::HashMap;

use parking_lot::Mutex;

use super::cards::{claim_rule, queue_rule, settle_rule, CardClaim, CardRecord, CardStore};
use crate::error::Result;

#[derive(Debug, Default)]
pub struct MemoryCards {
    /// (appid, code) → the record and its pending lease's end.
    cards: Mutex<HashMap<(String, String), (CardRecord, i64)>>,
}

fn key(appid: &str, code: &str) -> (String, String) {
    (appid.to_string(), code.to_string())
}

impl CardStore for MemoryCards {
    fn card_claim(
        &self,
        appid: &str,
        code: &str,
        notify_type: u32,
        status: u32,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<CardClaim> {
        let mut cards = self.cards.lock();
        let (rec, until) = cards.entry(key(appid, code)).or_default();
        rec.notify_type = notify_type;
        let claim = claim_rule(rec, *until, status, now_ms);
        match claim {
            CardClaim::Fresh { .. } => {
                rec.pending = Some(status);
                *until = now_ms + lease_ms;
            }
            CardClaim::Done => queue_rule(rec, status, false),
            _ => {}
        }
        Ok(claim)
    }

    fn card_settle(&self, appid: &str, code: &str, status: u32, applied: bool) -> Result<()> {
        let mut cards = self.cards.lock();
        if let Some((rec, _)) = cards.get_mut(&key(appid, code)) {
            settle_rule(rec, status, applied);
        }
        Ok(())
    }

    fn card_queue(&self, appid: &str, code: &str, status: u32, add: bool) -> Result<()> {
        let mut cards = self.cards.lock();
        let (rec, _) = cards.entry(key(appid, code)).or_default();
        queue_rule(rec, status, add);
        Ok(())
    }

    fn card_stop(&self, appid: &str, code: &str) -> Result<()> {
        let mut cards = self.cards.lock();
        let (rec, _) = cards.entry(key(appid, code)).or_default();
        rec.stopped = true;
        rec.pending = None;
        Ok(())
    }

    fn card_get(&self, appid: &str, code: &str, now_ms: i64) -> Result<Option<CardRecord>> {
        Ok(self
            .cards
            .lock()
            .get(&key(appid, code))
            .map(|(rec, until)| {
                let mut rec = rec.clone();
                if *until <= now_ms {
                    rec.pending = None;
                }
                rec
            }))
    }
}
