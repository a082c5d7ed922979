//! A scripted week of FaShop orders through the WeChat sandbox, one China day
//! after another on a manual clock that starts six days ago, into the store the
//! admin reads: the editor's browser test compares its 送达 panel (and the PHP
//! handler) with what these sends returned.
//!
//! Usage: fashop-notify-reach-week MAPPINGS_JSON_FILE
//! Environment: FASHOP_NOTIFY_SANDBOX_URL, FASHOP_NOTIFY_STORE, FASHOP_NOTIFY_APPID,
//! FASHOP_NOTIFY_APP_SECRET. Prints `{event: {YYYY-MM-DD: {"sent", "not_reached"}}}`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use fashop_notify::{Clock, ManualClock, Notifier, SystemClock};
use serde_json::{json, Value};

const DAY: i64 = 86_400;
const BUYER: &str = "oBuyer_reach_week_browser_01";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

/// One POST to the sandbox's control API (plain HTTP/1.1 on the loopback).
fn control(path: &str, body: &Value) {
    let base = env("FASHOP_NOTIFY_SANDBOX_URL");
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let text = body.to_string();
    let mut s = TcpStream::connect(host).expect("the sandbox answers");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 2"), "sandbox {path}: {answer}");
}

fn payload(openid: &str, sn: &str) -> String {
    json!({"touser": openid, "fields": {
        "order_id": 7, "order_sn": sn, "order_amount": "59.00",
        "order_total_goods_name": "羊毛围巾", "order_total_goods_num": 1,
        "order_create_time": 1796086000, "pay_time": 1796086500,
        "express_company": "顺丰速运", "tracking_no": "SF1234567890123",
        "delivery_time": "2026-12-01 09:30:00"}})
    .to_string()
}

/// Day `d`'s orders: (event, buyer, errcode WeChat answers with, or 0).
fn orders_of(d: i64) -> Vec<(&'static str, String, i64)> {
    let mut o = Vec::new();
    for _ in 0..=d {
        o.push(("order_pay_success", BUYER.to_string(), 0));
    }
    for k in 0..d % 3 {
        o.push((
            "order_pay_success",
            format!("oStranger_{d}_{k}_never_asked"),
            0,
        ));
    }
    if d % 2 == 0 {
        o.push(("order_pay_success", BUYER.to_string(), 43101));
        o.push(("order_delivered", format!("oStranger_{d}_delivered"), 0));
    } else {
        o.push(("order_delivered", BUYER.to_string(), 0));
    }
    if d == 5 {
        o.push(("order_pay_success", BUYER.to_string(), 40003));
    }
    o
}

fn main() {
    let mappings =
        std::fs::read_to_string(std::env::args().nth(1).expect("usage: MAPPINGS_JSON_FILE"))
            .unwrap();
    let appid = env("FASHOP_NOTIFY_APPID");
    let clock = Arc::new(ManualClock::at(SystemClock.now() - 6 * DAY));
    let n = Notifier::with_clock(clock.clone());
    let settings = json!({"api_base": env("FASHOP_NOTIFY_SANDBOX_URL"), "store": env("FASHOP_NOTIFY_STORE"), "max_retries": 0});
    n.configure(&settings.to_string()).unwrap();
    n.register_app(&json!({"appid": appid, "secret": env("FASHOP_NOTIFY_APP_SECRET")}).to_string())
        .unwrap();
    n.load_mappings(&appid, &mappings).unwrap();
    let doc: Value = serde_json::from_str(&n.get_mappings(&appid).unwrap()).unwrap();
    for event in ["order_pay_success", "order_delivered"] {
        let template = doc["events"][event]["template_id"].as_str().unwrap();
        control(
            "/sandbox/grants",
            &json!({"appid": appid, "openid": BUYER, "template_id": template, "count": 40}),
        );
        let grant =
            json!({"openid": BUYER, "kind": "subscribe", "template_id": template, "count": 40});
        n.add_permit(&appid, &grant.to_string()).unwrap();
    }
    let mut seen: BTreeMap<String, BTreeMap<String, (u64, u64)>> = BTreeMap::new();
    for d in 0..7 {
        let day = china_day(clock.now());
        for (i, (event, buyer, errcode)) in orders_of(d).into_iter().enumerate() {
            if errcode != 0 {
                control(
                    "/sandbox/faults",
                    &json!({"path": "/cgi-bin/message/subscribe/send", "errcode": errcode, "count": 1}),
                );
            }
            let report = n.send(
                &appid,
                event,
                &payload(&buyer, &format!("SN-week-{d}-{i}-{event}")),
            );
            let status = report
                .outcome
                .map(|o| o.status.to_string())
                .unwrap_or_default();
            let c = seen
                .entry(event.to_string())
                .or_default()
                .entry(day.clone())
                .or_default();
            match status.as_str() {
                "sent" => c.0 += 1,
                "failed" | "no_permit" | "uncertain" => c.1 += 1,
                other => panic!("day {d} order {i}: unexpected {other}: {:?}", report.result),
            }
        }
        clock.advance_secs(DAY);
    }
    let out: Value = seen
        .into_iter()
        .map(|(e, days)| {
            let days: serde_json::Map<String, Value> = days
                .into_iter()
                .map(|(d, (s, m))| (d, json!({"sent": s, "not_reached": m})))
                .collect();
            (e, Value::Object(days))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    println!("{out}");
}

/// YYYY-MM-DD in China time of unix seconds (the report's days).
fn china_day(unix: i64) -> String {
    fashop_notify::day_text(fashop_notify::china_day(unix * 1000))
}
