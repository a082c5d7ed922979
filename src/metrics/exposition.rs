//! The figures as Prometheus text exposition (version 0.0.4) and as one JSON
//! object with the same names, for a host's `/metrics` endpoint or admin page.

use std::fmt::Write;

use serde_json::{json, Map, Value};

use super::*;

/// An output form of `fashop_notify_metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Prometheus,
    Json,
}

impl Format {
    pub fn parse(format: &str) -> Result<Format> {
        match format {
            "prometheus" => Ok(Format::Prometheus),
            "json" => Ok(Format::Json),
            other => {
                let shown: String = other.chars().take(40).collect();
                Err(Error::invalid(format!(
                    "format must be \"prometheus\" or \"json\", got {shown:?}"
                )))
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

struct Def {
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
    /// Kept by each process even with a shared store.
    per_process: bool,
}

/// Every family except the latency histogram, in output order.
const FAMILIES: [Def; 13] = [
    Def {
        name: SENDS,
        kind: Kind::Counter,
        labels: &["appid", "event", "status", "errcode"],
        help: "Notification sends by app, event, outcome status and WeChat errcode",
        per_process: false,
    },
    Def {
        name: TOKEN_FETCHES,
        kind: Kind::Counter,
        labels: &["appid", "mode", "result"],
        help: "Access token fetches from WeChat by app, token mode and result",
        per_process: false,
    },
    Def {
        name: TOKEN_RECOVERED,
        kind: Kind::Counter,
        labels: &["appid"],
        help: "Calls that met a rejected access token and succeeded with a fresh one",
        per_process: false,
    },
    Def {
        name: PERMITS_ADDED,
        kind: Kind::Counter,
        labels: &["kind"],
        help: "Permits (subscribe grants, form_ids, prepay_ids) stored, by kind",
        per_process: false,
    },
    Def {
        name: PERMITS_CONSUMED,
        kind: Kind::Counter,
        labels: &["kind"],
        help: "Permits used up by sends, by kind",
        per_process: false,
    },
    Def {
        name: PERMITS_EXPIRED,
        kind: Kind::Counter,
        labels: &["kind"],
        help: "Permits that expired unused, by kind",
        per_process: false,
    },
    Def {
        name: PERMIT_STOCK,
        kind: Kind::Gauge,
        labels: &["kind"],
        help: "Usable permits in the ledger, by kind",
        per_process: false,
    },
    Def {
        name: OUTBOX,
        kind: Kind::Gauge,
        labels: &["state"],
        help: "Outbox messages by state",
        per_process: false,
    },
    Def {
        name: PUSH_EVENTS,
        kind: Kind::Counter,
        labels: &["event", "effect"],
        help: "Subscribe events pushed by WeChat and applied, by event and effect on the ledger",
        per_process: false,
    },
    Def {
        name: SUBSCRIBE_BANNED,
        kind: Kind::Counter,
        labels: &["appid", "event"],
        help: "Sends refused because WeChat banned the subscribe capability of the app or template, by app and event",
        per_process: false,
    },
    Def {
        name: CARD_UPDATES,
        kind: Kind::Counter,
        labels: &["notify_type", "status", "outcome"],
        help: "Service card updates by card type, status and outcome",
        per_process: false,
    },
    Def {
        name: LOG_FAILURES,
        kind: Kind::Counter,
        labels: &[],
        help: "Structured log lines that could not be written (the sends went on)",
        per_process: false,
    },
    Def {
        name: FLUSH_FAILURES,
        kind: Kind::Counter,
        labels: &[],
        help:
            "Times the shared store did not take this process's metric updates (kept and retried)",
        per_process: true,
    },
];

pub(crate) const FAMILY_NAMES: [&str; FAMILIES.len()] = {
    let mut names = [""; FAMILIES.len()];
    let mut i = 0;
    while i < FAMILIES.len() {
        names[i] = FAMILIES[i].name;
        i += 1;
    }
    names
};

/// The label names of a family, in stored order.
pub(crate) fn label_names(name: &str) -> &'static [&'static str] {
    FAMILIES
        .iter()
        .find(|d| d.name == name)
        .map(|d| d.labels)
        .unwrap_or(&[])
}

fn scope_note(scope: &Scope, per_process: bool) -> String {
    match scope {
        Scope::Process { store } if store == "memory" => {
            " (this process only: the memory store shares no figures between processes)".to_string()
        }
        Scope::Process { .. } => " (this process only)".to_string(),
        Scope::Shared { .. } if per_process => " (this process only)".to_string(),
        Scope::Shared { store } => format!(" (all processes sharing {store})"),
    }
}

/// HELP text escapes only backslash and newline.
fn help_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

fn label_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn label_set(names: &[&str], values: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", label_escape(v)))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

fn seconds(micros: u64) -> String {
    let s = micros / 1_000_000;
    let frac = micros % 1_000_000;
    if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{frac:06}").trim_end_matches('0').to_string()
    }
}

/// Prometheus text exposition: `# HELP`, `# TYPE`, then the samples.
pub(crate) fn prometheus(f: &Figures) -> String {
    let mut out = String::with_capacity(4096);
    for def in &FAMILIES {
        let kind = match def.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(
            out,
            "# HELP {} {}{}",
            def.name,
            def.help,
            help_escape(&scope_note(&f.scope, def.per_process))
        );
        let _ = writeln!(out, "# TYPE {} {kind}", def.name);
        let empty = Default::default();
        let series = f.series.get(def.name).unwrap_or(&empty);
        if def.labels.is_empty() && series.is_empty() {
            let _ = writeln!(out, "{} 0", def.name);
        }
        for (labels, value) in series {
            let _ = writeln!(out, "{}{} {value}", def.name, label_set(def.labels, labels));
        }
        if def.name == SENDS {
            histogram(&mut out, f);
        }
    }
    out
}

fn histogram(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "# HELP {SEND_DURATION} Wall time of sends that reached WeChat, in seconds{}",
        help_escape(&scope_note(&f.scope, false))
    );
    let _ = writeln!(out, "# TYPE {SEND_DURATION} histogram");
    let mut cumulative = 0u64;
    for (count, le) in f.buckets.iter().zip(BUCKET_LABELS) {
        cumulative += count;
        let _ = writeln!(out, "{SEND_DURATION}_bucket{{le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{SEND_DURATION}_sum {}", seconds(f.sum_micros));
    let _ = writeln!(out, "{SEND_DURATION}_count {cumulative}");
}

/// The same figures as one object: each family under its Prometheus name, as
/// a list of `{label: value, ..., "value": n}` (a bare number when it has no
/// labels); `errcode` is a number.
pub(crate) fn json(f: &Figures) -> String {
    let mut obj = Map::new();
    let (scope, store) = match &f.scope {
        Scope::Process { store } => ("process", store),
        Scope::Shared { store } => ("shared", store),
    };
    obj.insert("scope".into(), json!(scope));
    obj.insert("store".into(), json!(store));
    for def in &FAMILIES {
        let empty = Default::default();
        let series = f.series.get(def.name).unwrap_or(&empty);
        let value = if def.labels.is_empty() {
            json!(series.values().next().copied().unwrap_or(0))
        } else {
            Value::Array(
                series
                    .iter()
                    .map(|(labels, value)| {
                        let mut row = Map::new();
                        for (name, v) in def.labels.iter().zip(labels) {
                            let v = match (*name, v.parse::<i64>()) {
                                ("errcode", Ok(n)) => json!(n),
                                _ => json!(v),
                            };
                            row.insert((*name).into(), v);
                        }
                        row.insert("value".into(), json!(value));
                        Value::Object(row)
                    })
                    .collect(),
            )
        };
        obj.insert(def.name.into(), value);
        if def.name == SENDS {
            let mut cumulative = 0u64;
            let buckets: Vec<Value> = f
                .buckets
                .iter()
                .zip(BUCKET_LABELS)
                .map(|(count, le)| {
                    cumulative += count;
                    json!({"le": le, "count": cumulative})
                })
                .collect();
            obj.insert(
                SEND_DURATION.into(),
                json!({
                    "buckets": buckets,
                    "sum": f.sum_micros as f64 / 1e6,
                    "count": cumulative,
                }),
            );
        }
    }
    Value::Object(obj).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_decimals() {
        assert_eq!(seconds(0), "0");
        assert_eq!(seconds(5_000), "0.005");
        assert_eq!(seconds(1_500_000), "1.5");
        assert_eq!(seconds(12_000_001), "12.000001");
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(
            label_set(&["a", "b"], &["x\"y".into(), "p\\q\nr".into()]),
            r#"{a="x\"y",b="p\\q\nr"}"#
        );
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::parse("json").unwrap(), Format::Json);
        assert_eq!(Format::parse("prometheus").unwrap(), Format::Prometheus);
        let e = Format::parse("xml").unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)));
        assert!(e.to_string().contains("\"xml\""), "{e}");
    }
}
