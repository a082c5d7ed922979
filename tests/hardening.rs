//! Regressions found by the soak and the fuzz targets, each pinned by the
//! smallest input that showed it.

use std::sync::Arc;

use fashop_notify::{Clock, Error, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Fault, Sandbox, DEMO_APPID, DEMO_SECRET, TPL_PAY_SUCCESS};
use serde_json::{json, Value};

const SEND: &str = "/cgi-bin/message/subscribe/send";
const BUYER: &str = "oBuyer_hardening_01";

fn shop(sb: &Sandbox) -> Notifier {
    let n = Notifier::with_clock(Arc::new(ManualClock::at(SystemClock.now())));
    n.configure(&json!({"api_base": sb.url(), "max_retries": 0}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, include_str!("../examples/mappings.json"))
        .unwrap();
    n
}

fn grants_left(n: &Notifier) -> u64 {
    let stats: Value =
        serde_json::from_str(&n.ledger_stats(DEMO_APPID, Some(BUYER)).unwrap()).unwrap();
    stats["subscribe"]["templates"][TPL_PAY_SUCCESS]
        .as_u64()
        .unwrap_or(0)
}

fn payload(order_sn: &str) -> String {
    json!({"touser": BUYER, "fields": {"order_id": 1, "order_sn": order_sn,
        "order_amount": "9.90", "order_total_goods_name": "goods", "pay_time": 1795426265}})
    .to_string()
}

/// 41028 / 41029 are form_id codes; on a subscribe send they once discarded the
/// whole grant row, every accumulated use of the user at once.
#[test]
fn a_form_id_errcode_on_a_subscribe_send_keeps_the_users_grants() {
    for code in [41028, 41029] {
        for store in ["memory", "sqlite"] {
            let sb = Sandbox::start();
            let n = shop(&sb);
            let dir = std::env::temp_dir().join(format!(
                "fashop-hardening-{}-{code}-{store}",
                std::process::id()
            ));
            if store == "sqlite" {
                std::fs::create_dir_all(&dir).unwrap();
                let db = dir.join("ledger.db");
                n.configure(&json!({"store": format!("sqlite:{}", db.display())}).to_string())
                    .unwrap();
            }
            sb.grant(DEMO_APPID, BUYER, TPL_PAY_SUCCESS, 5);
            n.add_permit(
                DEMO_APPID,
                &json!({"openid": BUYER, "kind": "subscribe", "template_id": TPL_PAY_SUCCESS, "count": 5})
                    .to_string(),
            )
            .unwrap();
            sb.inject(Fault::on(SEND).errcode(code).count(1));
            let report = n.send(DEMO_APPID, "order_pay_success", &payload("S-1"));
            assert!(
                matches!(report.result, Err(Error::WeChat { errcode, .. }) if errcode == code),
                "{code} {store}: {:?}",
                report.result
            );
            assert_eq!(report.outcome.unwrap().status, "failed");
            assert_eq!(
                grants_left(&n),
                5,
                "{code} {store}: the grants were dropped"
            );
            let report = n.send(DEMO_APPID, "order_pay_success", &payload("S-2"));
            assert!(report.result.is_ok(), "{:?}", report.result);
            assert_eq!(grants_left(&n), 4);
            assert_eq!(sb.delivered(DEMO_APPID, BUYER).len(), 1);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
