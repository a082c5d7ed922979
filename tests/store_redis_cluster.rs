//! The shared store suite against a Redis Cluster of three masters: every
//! script touches one hash slot, and the client follows the cluster's
//! redirections. Also the figures on a cluster.

use fashop_notify::{Notifier, PermitRequest};

use crate::redis_server::RedisCluster;
use crate::store_suite::{Fixture, APP, NOW};

fn fresh() -> Fixture {
    let cluster = RedisCluster::start();
    let spec = cluster.spec("suite");
    Fixture::new(&spec, Box::new(cluster))
}

crate::store_suite!(fresh);

#[test]
fn buyers_spread_over_the_masters_and_each_is_served() {
    let cluster = RedisCluster::start();
    let f = Fixture::new(&cluster.spec("spread"), Box::new(()));
    // Enough buyers that their slots fall on every master.
    for i in 0..40 {
        f.form_id(&format!("o{i}"), &format!("f{i}"), NOW);
    }
    let legacy = PermitRequest::legacy(None);
    for i in 0..40 {
        assert_eq!(
            f.spend(&format!("o{i}"), &legacy).as_deref(),
            Some(format!("f{i}").as_str())
        );
    }
    assert_eq!(f.stats(None)["form_id"]["permits"], 0);
    f.n.ledger_purge(APP).unwrap();
}

#[test]
fn the_figures_are_shared_through_the_cluster() {
    let cluster = RedisCluster::start();
    let spec = cluster.spec("shared");
    let a = Notifier::new();
    a.configure(&format!(r#"{{"store":"{spec}"}}"#)).unwrap();
    a.register_app(&format!(r#"{{"appid":"{APP}","secret":"s"}}"#))
        .unwrap();
    a.add_permit(APP, r#"{"openid":"o1","kind":"form_id","value":"f1"}"#)
        .unwrap();
    let text = a.metrics_text("json").unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["scope"], "shared", "{v}");
    assert_eq!(v["fashop_notify_permits_added_total"][0]["value"], 1, "{v}");
    assert_eq!(v["fashop_notify_metrics_flush_failures_total"], 0, "{v}");
}
