//! Service cards through send, enqueue and flush against the sandbox: a buyer
//! who never tapped "allow" sees paid → shipped → refunded, each status once
//! and in order; a transaction id not checkable yet waits in the outbox; an
//! illegal move is refused locally naming the allowed ones; a refused code
//! stops quietly; bad input is a clear error; metrics count the updates.

use std::sync::Arc;

use fashop_notify::{Clock, Error, ManualClock, Notifier, SystemClock};
use fashop_notify_sandbox::{Fault, Sandbox, SandboxOptions, DEMO_APPID, DEMO_SECRET};
use serde_json::{json, Value};

pub const BUYER: &str = "oBuyer_card_test_0001";
pub const TX: &str = "4200002187202611230115268887";
pub const PAY_TIME: i64 = 1_790_000_000;
const SET: &str = "/wxa/set_user_notify";

/// Paid, shipped and refunded as card 2001 statuses 1, 4 and 6.
pub const CARD_MAPPINGS: &str = r#"{"version": 1, "events": {
  "order_pay_success": {"channel": "card", "card": {"notify_type": 2001, "status": 1, "fields": {
      "wxa_path_query": "pages/order/detail?id={order_id}",
      "product_count": "{order_total_goods_num}", "product_list": "{order_goods}"}}},
  "order_delivered": {"channel": "card", "card": {"notify_type": 2001, "status": 4, "fields": {
      "wxa_path_query": "pages/order/detail?id={order_id}"}}},
  "order_refund_apply": {"channel": "card", "card": {"notify_type": 2001, "status": 6, "fields": {
      "wxa_path_query": "pages/order/detail?id={order_id}"}}}
}}"#;

/// The payload of any of the mapped events for the test's order.
pub fn payload(tx: &str) -> String {
    json!({"touser": BUYER, "fields": {
        "order_sn": "2026112221300001", "order_id": "10086", "refund_sn": "R1",
        "transaction_id": tx, "order_amount": "128.50", "pay_time": PAY_TIME,
        "order_total_goods_num": 2, "order_total_goods_name": "法式碎花连衣裙 等2件",
        "order_goods": [{"title": "法式碎花连衣裙", "image": "https://img.example/goods/9.png",
                         "count": 2, "price": "64.25", "path": "pages/goods/detail?id=9"}]}})
    .to_string()
}

struct Shop {
    sb: Sandbox,
    n: Notifier,
    clock: Arc<ManualClock>,
}

fn shop(mappings: &str) -> Shop {
    shop_on("memory", mappings)
}

fn shop_on(store: &str, mappings: &str) -> Shop {
    let sb = Sandbox::start_with(SandboxOptions {
        clock_start: Some(PAY_TIME),
        ..SandboxOptions::default()
    });
    sb.seed_user(DEMO_APPID, BUYER);
    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let n = Notifier::with_clock(clock.clone());
    n.configure(&json!({"api_base": sb.url(), "max_retries": 1, "store": store}).to_string())
        .unwrap();
    n.register_app(&json!({"appid": DEMO_APPID, "secret": DEMO_SECRET}).to_string())
        .unwrap();
    n.load_mappings(DEMO_APPID, mappings).unwrap();
    Shop { sb, n, clock }
}

impl Shop {
    fn send(&self, event: &str) -> (Result<(), Error>, Value) {
        let r = self.n.send(DEMO_APPID, event, &payload(TX));
        let o = r.outcome.map(|o| serde_json::to_value(o).unwrap());
        (r.result, o.unwrap_or(Value::Null))
    }

    /// Flushes until nothing is due, moving both clocks past each backoff.
    fn drain(&self) {
        for _ in 0..20 {
            let r = self.n.flush_report(Some(DEMO_APPID), 10).unwrap();
            let stats: Value =
                serde_json::from_str(&self.n.outbox_stats(Some(DEMO_APPID)).unwrap()).unwrap();
            if r.messages.is_empty() && stats["pending"] == 0 {
                assert_eq!(stats["dead"], 0, "{stats}");
                return;
            }
            self.clock.advance_secs(600);
            self.sb.advance_clock(600);
        }
        panic!("the outbox did not drain");
    }

    fn statuses(&self) -> Vec<u32> {
        self.sb.card_statuses(DEMO_APPID, TX)
    }
}

#[test]
fn paid_shipped_refunded_show_once_in_order_for_a_buyer_without_grants() {
    let s = shop(CARD_MAPPINGS);
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 0);
    let (r, o) = s.send("order_pay_success");
    r.unwrap();
    assert_eq!(o["status"], "sent", "{o}");
    assert_eq!(o["card"]["result"], "applied");
    assert_eq!(o["card"]["notify_type"], 2001);
    assert_eq!(o["card"]["status"], 1);
    // The pay callback retried: nothing more reaches WeChat.
    let (r, o) = s.send("order_pay_success");
    r.unwrap();
    assert_eq!(o["status"], "duplicate", "{o}");
    assert_eq!(o["card"]["result"], "duplicate");
    // WeChat busy once: posted again, applied, no error.
    s.sb.inject(Fault::on(SET).http_status(503).count(1));
    let (r, o) = s.send("order_delivered");
    r.unwrap();
    assert_eq!(o["card"]["result"], "applied", "{o}");
    assert_eq!(o["card"]["attempts"], 2, "{o}");
    s.send("order_refund_apply").0.unwrap();
    assert_eq!(s.statuses(), vec![1, 4, 6]);
    // The card's fields as WeChat got them: goods in fen, the page without "/".
    let status: Value = serde_json::from_str(
        &s.n.card_status(
            DEMO_APPID,
            &json!({"transaction_id": TX, "openid": BUYER, "notify_type": 2001}).to_string(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(status["statuses"], json!([1, 4, 6]), "{status}");
    assert_eq!(status["wechat"]["code_state"], 0, "{status}");
    let metrics: Value = serde_json::from_str(&s.n.metrics_text("json").unwrap()).unwrap();
    let text = metrics.to_string();
    assert!(text.contains("fashop_notify_card_updates_total"), "{text}");
    assert!(
        s.sb.delivered(DEMO_APPID, BUYER).is_empty(),
        "no subscribe message"
    );
}

#[test]
fn a_transaction_id_not_checkable_yet_and_an_outage_wait_in_the_outbox() {
    let s = shop(CARD_MAPPINGS);
    // WeChat knows the transaction a minute after payment.
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 60);
    let (r, o) = s.send("order_pay_success");
    r.unwrap();
    assert_eq!(o["status"], "queued", "{o}");
    assert_eq!(o["card"]["result"], "queued");
    assert_eq!(o["card"]["errcode"], 85437);
    assert!(o["card"]["outbox_id"].is_u64(), "{o}");
    // Shipping comes before the card is activated, and during an outage.
    s.sb.inject(Fault::on(SET).http_status(503).count(4));
    let (r, o) = s.send("order_delivered");
    r.unwrap();
    assert_eq!(o["card"]["result"], "queued", "{o}");
    assert!(s.statuses().is_empty());
    s.drain();
    assert_eq!(s.statuses(), vec![1, 4]);
    // Enqueued from the start, the refund goes out on the next flush.
    s.n.enqueue(DEMO_APPID, "order_refund_apply", &payload(TX))
        .unwrap();
    s.drain();
    assert_eq!(s.statuses(), vec![1, 4, 6]);
}

#[test]
fn an_illegal_move_is_refused_locally_and_a_refused_code_stops_quietly() {
    let mappings = r#"{"version": 1, "events": {
      "order_pay_success": {"channel": "card", "card": {"notify_type": 2001, "status": 1, "fields": {
          "wxa_path_query": "pages/order/detail?id={order_id}",
          "product_count": "{order_total_goods_num}", "product_list": "{order_goods}"}}},
      "order_delivered": {"channel": "card", "card": {"notify_type": 2001, "status": 4, "fields": {
          "wxa_path_query": "pages/order/detail?id={order_id}"}}},
      "order_cancel": {"channel": "card", "card": {"notify_type": 2001, "status": 3, "fields": {
          "wxa_path_query": "pages/a"}}}
    }}"#;
    let s = shop(mappings);
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 0);
    s.send("order_pay_success").0.unwrap();
    s.send("order_delivered").0.unwrap();
    let before = s.sb.counters().requests;
    match s.send("order_cancel").0 {
        Err(Error::InvalidArgument(m)) => {
            assert!(
                m.contains("cannot move from status 4 to 3")
                    && m.contains("follows only 1, 2, 3, 7"),
                "{m}"
            )
        }
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(
        s.sb.counters().requests,
        before,
        "refused before any request"
    );
    // The buyer refuses the card: the next update stops it, without an error.
    s.sb.refuse_card(DEMO_APPID, TX);
    let s2 = shop(CARD_MAPPINGS);
    s2.sb
        .record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 0);
    s2.send("order_pay_success").0.unwrap();
    s2.sb.refuse_card(DEMO_APPID, TX);
    let (r, o) = s2.send("order_delivered");
    r.unwrap();
    assert_eq!(o["card"]["result"], "stopped", "{o}");
    assert_eq!(o["status"], "no_permit");
    let before = s2.sb.counters().requests;
    let (r, o) = s2.send("order_refund_apply");
    r.unwrap();
    assert_eq!(o["card"]["result"], "stopped", "{o}");
    assert_eq!(
        s2.sb.counters().requests,
        before,
        "no request after the refusal"
    );
    assert_eq!(s2.statuses(), vec![1]);
}

#[test]
fn bad_card_input_is_a_clear_error() {
    let s = shop(CARD_MAPPINGS);
    let bad = |doc: &str| match s.n.load_mappings(DEMO_APPID, doc) {
        Err(Error::Mapping(m)) => m,
        other => panic!("loaded: {other:?}"),
    };
    let card = |card: Value| {
        json!({"version": 1, "events": {"order_delivered": {"channel": "card", "card": card}}})
            .to_string()
    };
    let m = bad(&card(
        json!({"notify_type": 9999, "status": 1, "fields": {}}),
    ));
    assert!(m.contains("events.order_delivered.card.notify_type: unknown card type 9999 (cards: 2001, 2002, 2003)"), "{m}");
    let m = bad(&card(
        json!({"notify_type": 2001, "status": 42, "fields": {}}),
    ));
    assert!(m.contains("card.status: card 2001 has no status 42"), "{m}");
    let m = bad(&card(
        json!({"notify_type": 2001, "status": 1, "fields": {"wxa_path_query": "pages/a"}}),
    ));
    assert!(
        m.contains("card.fields.product_count: missing, required in status 1"),
        "{m}"
    );
    let m = bad(&card(
        json!({"notify_type": 2001, "status": 4, "fields": {"wxa_path_query": "pages/a", "send_time": "{delivery_time}"}}),
    ));
    assert!(
        m.contains("card.fields.send_time: status 4 (已发货) does not take this field"),
        "{m}"
    );
    let m = bad(&card(
        json!({"notify_type": 2001, "status": 1, "fields": {"wxa_path_query": "pages/a", "product_count": "1", "product_list": "{order_sn}"}}),
    ));
    assert!(
        m.contains("card.fields.product_list: must be a goods list field alone"),
        "{m}"
    );
    // A goods list is not text for a subscribe keyword.
    let m = bad(
        r#"{"version": 1, "events": {"order_pay_success": {"template_id": "t1", "data": {"thing3": "{order_goods}"}}}}"#,
    );
    assert!(m.contains("unknown placeholder {order_goods}"), "{m}");
    // The document in force is unchanged; a transaction id that is not one
    // and a buyer who did not pay are refused with what to fix.
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 0);
    match s
        .n
        .send(
            DEMO_APPID,
            "order_pay_success",
            &payload("2025021211194014791"),
        )
        .result
    {
        Err(Error::InvalidArgument(m)) => {
            assert!(m.contains("is not a WeChat Pay transaction id"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    let other_buyer = payload(TX).replace(BUYER, "oSomeoneElse_00000000001");
    s.sb.seed_user(DEMO_APPID, "oSomeoneElse_00000000001");
    let r = s.n.send(DEMO_APPID, "order_pay_success", &other_buyer);
    match r.result {
        Err(Error::WeChat {
            errcode: 40003,
            errmsg,
        }) => assert!(errmsg.contains("the buyer who paid"), "{errmsg}"),
        other => panic!("{other:?}"),
    }
    assert!(s.statuses().is_empty());
    // Nothing was lost: the right buyer's update still goes out.
    s.send("order_pay_success").0.unwrap();
    assert_eq!(s.statuses(), vec![1]);
}

#[test]
fn render_previews_the_card_request_and_the_check_skips_card_templates() {
    let s = shop(CARD_MAPPINGS);
    let body: Value = serde_json::from_str(
        &s.n.render(DEMO_APPID, "order_pay_success", &payload(TX))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["notify_type"], 2001);
    assert_eq!(body["notify_code"], TX);
    let content: Value = serde_json::from_str(body["content_json"].as_str().unwrap()).unwrap();
    assert_eq!(content["cur_status"], 1);
    assert_eq!(
        content["product_list"]["info_list"][0]["single_price"],
        6425
    );
    assert_eq!(content["wxa_path_query"], "pages/order/detail?id=10086");
    let check: Value = serde_json::from_str(body["check_json"].as_str().unwrap()).unwrap();
    assert_eq!(check, json!({"pay_amount": 12850, "pay_time": PAY_TIME}));
    // A mapping that points a subscribe message at a card's template gets one
    // finding that says so, not one per keyword.
    let c = crate::sandbox_support::client(&s.sb);
    let tok = c.demo_token();
    let (_, added) = c.post_json(
        &format!("/wxaapi/newtmpl/addtemplate?access_token={tok}"),
        &json!({"tid": 10000001, "kidList": []}),
    );
    let id = added["priTmplId"].as_str().unwrap();
    let doc = json!({"version": 1, "events": {"order_pay_success": {"template_id": id,
        "data": {"character_string1": "{order_sn}", "thing3": "{order_total_goods_name}"}}}});
    s.n.load_mappings(DEMO_APPID, &doc.to_string()).unwrap();
    let report: Value =
        serde_json::from_str(&s.n.check_mappings(DEMO_APPID, None, None).unwrap()).unwrap();
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{report}");
    assert_eq!(problems[0]["kind"], "card_template");
    assert!(problems[0]["message"]
        .as_str()
        .unwrap()
        .contains("\"channel\": \"card\""));
}

/// Updates that come while earlier ones of the same card wait in the outbox
/// queue behind them, in every store; the retried pay callback changes nothing.
fn later_updates_queue_behind_earlier_ones(store: &str) {
    let s = shop_on(store, CARD_MAPPINGS);
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 60);
    for event in [
        "order_pay_success",
        "order_delivered",
        "order_refund_apply",
        "order_pay_success",
    ] {
        let (r, o) = s.send(event);
        r.unwrap();
        assert_eq!(o["card"]["result"], "queued", "{event}: {o}");
    }
    let card: Value = serde_json::from_str(
        &s.n.card_status(DEMO_APPID, &json!({"transaction_id": TX}).to_string())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(card["queued"], json!([1, 4, 6]), "{card}");
    s.drain();
    assert_eq!(s.statuses(), vec![1, 4, 6]);
    let card: Value = serde_json::from_str(
        &s.n.card_status(DEMO_APPID, &json!({"transaction_id": TX}).to_string())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(card["statuses"], json!([1, 4, 6]), "{card}");
    assert_eq!(card["queued"], json!([]), "{card}");
}

#[test]
fn later_updates_queue_behind_earlier_ones_in_memory() {
    later_updates_queue_behind_earlier_ones("memory");
}

#[test]
fn later_updates_queue_behind_earlier_ones_on_sqlite() {
    let dir = crate::store_suite::TempDir::new("cards-queue");
    later_updates_queue_behind_earlier_ones(&format!("sqlite:{}", dir.file("notify.db")));
}

#[test]
fn later_updates_queue_behind_earlier_ones_on_redis() {
    let redis = crate::redis_server::RedisServer::start();
    later_updates_queue_behind_earlier_ones(&redis.spec("cards"));
}

#[test]
fn the_guides_card_example_loads_and_sends() {
    let guide = include_str!("../docs/fashop-integration.md");
    let example = guide
        .split("```json\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .find(|b| b.contains("\"notify_type\""))
        .expect("the guide has a card example");
    let s = shop(example);
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 0);
    // The buyer never tapped "allow": no message, the card all the same.
    let (r, o) = s.send("order_pay_success");
    assert!(r.is_err(), "no grant for the message: {o}");
    assert_eq!(o["status"], "no_permit", "{o}");
    assert_eq!(o["card"]["result"], "applied", "{o}");
    s.send("order_delivered").0.unwrap();
    assert_eq!(s.statuses(), vec![1, 4]);
}

#[test]
fn a_card_update_the_outbox_gives_up_on_no_longer_holds_up_the_card() {
    let s = shop(CARD_MAPPINGS);
    s.n.configure(&json!({"outbox": {"max_attempts": 2}}).to_string())
        .unwrap();
    // WeChat never learns of this payment.
    s.sb.record_payment(DEMO_APPID, TX, BUYER, 12850, PAY_TIME, 864_000);
    s.send("order_pay_success").0.unwrap();
    s.send("order_delivered").0.unwrap();
    let card = |s: &Shop| -> Value {
        serde_json::from_str(
            &s.n.card_status(DEMO_APPID, &json!({"transaction_id": TX}).to_string())
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(card(&s)["queued"], json!([1, 4]));
    for _ in 0..10 {
        s.n.flush_report(Some(DEMO_APPID), 10).unwrap();
        s.clock.advance_secs(3600);
    }
    let stats: Value = serde_json::from_str(&s.n.outbox_stats(Some(DEMO_APPID)).unwrap()).unwrap();
    assert_eq!(stats["pending"], 0, "{stats}");
    assert_eq!(stats["dead"], 2, "{stats}");
    let c = card(&s);
    assert_eq!(c["queued"], json!([]), "{c}");
    assert_eq!(c["statuses"], json!([]), "{c}");
}
