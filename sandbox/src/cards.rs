//! What the sandbox knows of service cards: the payments a shop's pay notify
//! saw (each a notify_code once WeChat can check it) and each card's statuses.
//! The card APIs are `card_api.rs`, the control calls `card_control.rs`.

use std::collections::HashMap;

use serde::Serialize;

/// How long after payment a transaction id becomes checkable, unless the
/// control call says otherwise ("retry after a minute": a few seconds here).
pub const DEFAULT_VALID_AFTER_SECS: i64 = 5;
/// A WeChat Pay payment, as the shop's pay notify would see it.
#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub openid: String,
    /// Fen.
    pub amount: u64,
    pub pay_time: i64,
    /// Sandbox time from which the transaction id is a valid notify_code.
    pub valid_from: i64,
}

/// One card: the statuses it went through, in order, with their content.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardState {
    pub notify_type: u32,
    pub statuses: Vec<u32>,
    pub contents: Vec<String>,
    pub ext_json: Option<String>,
    pub code_state: u32,
}

/// Payments and cards, per app and transaction id.
#[derive(Debug, Default)]
pub struct CardWorld {
    pub(crate) payments: HashMap<(String, String), Payment>,
    pub(crate) cards: HashMap<(String, String), CardState>,
    /// Codes the buyer refused (code_state 10) before any card existed.
    pub(crate) refused: HashMap<(String, String), ()>,
}

impl CardWorld {
    pub fn record_payment(&mut self, appid: &str, transaction_id: &str, p: Payment) {
        self.payments
            .insert((appid.to_string(), transaction_id.to_string()), p);
    }

    pub fn card(&self, appid: &str, code: &str) -> Option<&CardState> {
        self.cards.get(&(appid.to_string(), code.to_string()))
    }

    /// The buyer refuses the card of `code`: code_state 10 from now on.
    pub fn refuse(&mut self, appid: &str, code: &str) -> Result<(), String> {
        let key = (appid.to_string(), code.to_string());
        if !self.payments.contains_key(&key) {
            return Err(format!("no payment {code:?} recorded for {appid}"));
        }
        if let Some(c) = self.cards.get_mut(&key) {
            c.code_state = 10;
        }
        self.refused.insert(key, ());
        Ok(())
    }
}
