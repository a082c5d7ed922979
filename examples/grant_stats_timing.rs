//! By hand, not in any test: how long `ledger_stats` and the metrics scrape
//! take with 100,000 subscribe grants in the store. Two shapes: one buyer with
//! 100,000 distinct template ids (what a flooded grant endpoint stored before
//! grants were checked against the mapping), and 100,000 buyers with one
//! mapped template each (a big shop).
//!
//! `cargo run --release --example grant_stats_timing -- [memory|sqlite:/tmp/x.db] [flood|shop]`

use std::time::Instant;

use fashop_notify::Notifier;

const APP: &str = "wxtiming000000001";
const TPL: &str = "_uwlWXxdjm2IogKR7PfhIg8Ez9oP0ZV1YgHNMqhQY_C";
const GRANTS: usize = 100_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store = args.first().map_or("memory", String::as_str);
    let shape = args.get(1).map_or("shop", String::as_str);
    let n = Notifier::new();
    n.configure(&format!(
        r#"{{"store": "{store}", "subscribe_cap_per_template": 1000}}"#
    ))
    .or_else(|_| n.configure(&format!(r#"{{"store": "{store}"}}"#)))
    .expect("configure");
    n.register_app(&format!(
        r#"{{"appid": "{APP}", "secret": "0123456789abcdef0123456789abcdef"}}"#
    ))
    .unwrap();
    n.load_mappings(APP, include_str!("mappings.json")).unwrap();
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..GRANTS {
        let (openid, template) = match shape {
            "flood" => ("o-flood".to_string(), format!("tpl-{i:08}")),
            _ => (format!("o-buyer-{i:08}"), TPL.to_string()),
        };
        let permit = format!(
            r#"{{"openid": "{openid}", "kind": "subscribe", "template_id": "{template}"}}"#
        );
        if n.add_permit(APP, &permit).is_err() {
            refused += 1;
        }
    }
    println!(
        "{store} {shape}: added {} grants ({refused} refused) in {:?}",
        GRANTS - refused,
        started.elapsed()
    );
    for round in 0..3 {
        let t = Instant::now();
        let stats = n.ledger_stats(APP, None).unwrap();
        let app = t.elapsed();
        let buyer = if shape == "flood" {
            "o-flood"
        } else {
            "o-buyer-00000007"
        };
        let t = Instant::now();
        n.ledger_stats(APP, Some(buyer)).unwrap();
        let one = t.elapsed();
        let t = Instant::now();
        let text = n.metrics_text("prometheus").unwrap();
        let metrics = t.elapsed();
        println!(
            "round {round}: ledger_stats(app) {app:?} ({} bytes), ledger_stats(buyer) {one:?}, metrics {metrics:?} ({} bytes)",
            stats.len(),
            text.len()
        );
    }
}
