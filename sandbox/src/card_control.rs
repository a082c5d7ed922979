//! The card control calls under `/sandbox/`: record a payment, let the buyer
//! refuse a card, read a card.

use serde_json::{json, Value};

use super::cards::{Payment, DEFAULT_VALID_AFTER_SECS};
use super::shared::Shared;
use super::world::Answer;

/// `POST /sandbox/payments`: a payment the shop's pay notify saw.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentSeed {
    appid: String,
    transaction_id: String,
    openid: String,
    amount: u64,
    #[serde(default)]
    pay_time: Option<i64>,
    #[serde(default)]
    valid_after_secs: Option<i64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeRef {
    appid: String,
    transaction_id: String,
}

/// Whether `rest` (after `/sandbox/`) is a card control path.
pub(crate) fn is_card_path(rest: &str) -> bool {
    matches!(rest, "payments" | "cards" | "cards/refuse")
}

/// The card control API: record a payment, refuse a code, read a card.
pub(crate) fn control(
    shared: &Shared,
    method: &tiny_http::Method,
    rest: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    use super::shared::{bad, ok, parse, query_param};
    use tiny_http::Method;
    let now = shared.clock.now();
    let run = || -> Result<Answer, Answer> {
        Ok(match (rest, method) {
            ("payments", Method::Post) => {
                let p: PaymentSeed = parse("payments", body)?;
                let mut w = shared.world.lock();
                if !w
                    .apps
                    .get(&p.appid)
                    .is_some_and(|a| a.users.contains(&p.openid))
                {
                    return Err(bad(400, "payments: seed the app and the user first"));
                }
                let delay = p.valid_after_secs.unwrap_or(DEFAULT_VALID_AFTER_SECS);
                let pay = Payment {
                    openid: p.openid,
                    amount: p.amount,
                    pay_time: p.pay_time.unwrap_or(now),
                    valid_from: now + delay,
                };
                w.cards.record_payment(&p.appid, &p.transaction_id, pay);
                ok(json!({"valid_from": now + delay}))
            }
            ("cards/refuse", Method::Post) => {
                let r: CodeRef = parse("cards/refuse", body)?;
                match shared
                    .world
                    .lock()
                    .cards
                    .refuse(&r.appid, &r.transaction_id)
                {
                    Ok(()) => ok(Value::Null),
                    Err(e) => bad(400, &e),
                }
            }
            ("cards", Method::Get) => {
                let p = |k| query_param(query, k).unwrap_or_default().into_owned();
                let w = shared.world.lock();
                ok(json!({"card": w.cards.card(&p("appid"), &p("transaction_id"))}))
            }
            _ => bad(
                405,
                &format!("method {method} not allowed on /sandbox/{rest}"),
            ),
        })
    };
    match run() {
        Ok(a) | Err(a) => a,
    }
}
