//! Which subscribe templates are long-term (gettemplate's `type` 3): a send
//! with one does not use its grant up. Learnt whenever the library reads
//! gettemplate (check_mappings, call_api) and kept in the store for every
//! process that shares it (the editor reads the list, the workers send).

use std::collections::HashSet;

use serde_json::{json, Value};

use super::Notifier;
use crate::ledger::{KeyClaim, Kind, Lease, LONG_TERM_TEMPLATE};
use crate::message::LiveTemplate;

/// How long a process trusts what it knows before reading the store again.
const KNOWN_FOR_MS: i64 = 60_000;
/// How long reading or writing the shared record may hold it.
const RECORD_CLAIM_MS: i64 = 5_000;

fn record_key(appid: &str) -> String {
    format!("template-types:{appid}")
}

impl Notifier {
    /// A gettemplate answer was read: note its long-term templates, here and
    /// in the store.
    pub(crate) fn learn_template_types(&self, appid: &str, list: &[LiveTemplate]) {
        let ids: HashSet<String> = list
            .iter()
            .filter(|t| t.kind == LONG_TERM_TEMPLATE)
            .map(|t| t.id.clone())
            .collect();
        let doc = json!({ "long_term": ids }).to_string();
        self.ledger.note_long_term(appid, ids);
        let key = record_key(appid);
        // Best effort: without the record, other processes consume as for
        // one-time templates (the safe side) until they learn it themselves.
        if let Ok(KeyClaim::Fresh | KeyClaim::Done(_)) =
            self.ledger.idempotency_claim(&key, RECORD_CLAIM_MS)
        {
            let _ = self.ledger.idempotency_complete(&key, &doc);
        }
    }

    /// Whether a send with `lease` leaves its grant in place: a subscribe
    /// grant of a template known to be long-term.
    pub(crate) fn keeps_its_grant(&self, lease: &Lease) -> bool {
        if lease.kind != Kind::Subscribe {
            return false;
        }
        let ids = match self.ledger.long_term(&lease.appid, KNOWN_FOR_MS) {
            Some(ids) => ids,
            None => {
                let ids = self.shared_long_term(&lease.appid);
                self.ledger.note_long_term(&lease.appid, ids);
                match self.ledger.long_term(&lease.appid, KNOWN_FOR_MS) {
                    Some(ids) => ids,
                    None => return false,
                }
            }
        };
        ids.contains(&lease.value)
    }

    /// The long-term ids another process wrote to the store (none when none did).
    fn shared_long_term(&self, appid: &str) -> HashSet<String> {
        let key = record_key(appid);
        match self.ledger.idempotency_claim(&key, RECORD_CLAIM_MS) {
            Ok(KeyClaim::Done(doc)) => serde_json::from_str::<Value>(&doc)
                .ok()
                .and_then(|v| {
                    v["long_term"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|id| id.as_str().map(str::to_string))
                            .collect()
                    })
                })
                .unwrap_or_default(),
            Ok(KeyClaim::Fresh) => {
                let _ = self.ledger.idempotency_release(&key);
                HashSet::new()
            }
            _ => HashSet::new(),
        }
    }
}
