//! Checking a mapping document against the app's live templates (the answer of
//! `GET /wxaapi/newtmpl/gettemplate`): what WeChat would refuse at send time,
//! found before a buyer meets it. Pure: the caller fetches and caches the list.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

use super::catalog::{catalog, ORDER_ID};
use super::mapping::{CompiledEvent, CompiledKeyword, CompiledMappings, MessageKind};
use super::placeholder::{preview, FieldSource};
use super::rules::KeywordType;
use crate::error::{Error, Result};

/// One private template of the app, as gettemplate describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTemplate {
    pub id: String,
    pub title: String,
    /// WeChat's `type`: 2 one-time, 3 long-term.
    pub kind: u64,
    /// The keyword names of its `content`, in order (`thing3`).
    pub keywords: Vec<String>,
    /// The allowed values of each enum keyword (`keywordEnumValueList`).
    pub enums: Vec<(String, Vec<String>)>,
}

impl LiveTemplate {
    fn enum_values(&self, keyword: &str) -> Option<&[String]> {
        self.enums
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_slice())
    }
}

/// The keyword names in a template's `content`: `订单号:{{character_string1.DATA}}\n…`.
fn content_keywords(content: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(at) = rest.find("{{") {
        let inner = &rest[at + 2..];
        let Some(end) = inner.find("}}") else { break };
        let name = inner[..end].trim();
        let name = name.strip_suffix(".DATA").unwrap_or(name);
        if !name.is_empty() && !out.iter().any(|k| k == name) {
            out.push(name.to_string());
        }
        rest = &inner[end + 2..];
    }
    out
}

/// The templates of a gettemplate answer (`{"errcode":0,"data":[…]}`).
pub fn parse_template_list(json: &Value) -> Result<Vec<LiveTemplate>> {
    let Some(items) = json.get("data").and_then(Value::as_array) else {
        return Err(Error::internal("gettemplate answered without a data list"));
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(items
        .iter()
        .map(|t| {
            let enums = t
                .get("keywordEnumValueList")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(|e| {
                            let code = e.get("keywordCode")?.as_str()?;
                            let code = code.strip_suffix(".DATA").unwrap_or(code);
                            let values = e
                                .get("enumValueList")?
                                .as_array()?
                                .iter()
                                .filter_map(|v| v.as_str().map(str::to_string))
                                .collect();
                            Some((code.to_string(), values))
                        })
                        .collect()
                })
                .unwrap_or_default();
            LiveTemplate {
                id: text(t, "priTmplId"),
                title: text(t, "title"),
                kind: t.get("type").and_then(Value::as_u64).unwrap_or(2),
                keywords: content_keywords(&text(t, "content")),
                enums,
            }
        })
        .collect())
}

/// How long an app's template list is trusted before it is read again.
pub const TEMPLATE_TTL_MS: i64 = 60_000;

/// An app's template list and when it was read (ms).
type ReadList = (i64, Arc<Vec<LiveTemplate>>);

/// The template lists read per app, with when they were read.
#[derive(Debug, Default)]
pub struct TemplateCache {
    lists: Mutex<HashMap<String, ReadList>>,
}

impl TemplateCache {
    /// The app's list when it was read less than `TEMPLATE_TTL_MS` ago: the
    /// list and when it was read.
    pub fn fresh(&self, appid: &str, now_ms: i64) -> Option<(Arc<Vec<LiveTemplate>>, i64)> {
        let lists = self.lists.lock();
        let (at, list) = lists.get(appid)?;
        (now_ms >= *at && now_ms - at < TEMPLATE_TTL_MS).then(|| (list.clone(), *at))
    }

    pub fn store(&self, appid: &str, now_ms: i64, list: Arc<Vec<LiveTemplate>>) {
        self.lists.lock().insert(appid.to_string(), (now_ms, list));
    }
}

/// One finding of a check: where in the document, what kind, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub path: String,
    pub kind: &'static str,
    pub message: String,
}

/// The problems (WeChat would refuse the send) and warnings of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub ok: bool,
    pub problems: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

/// `path: what` texts (the document's own problems, or its load warnings) as findings.
fn findings(texts: &[String], kind: &'static str) -> Vec<Finding> {
    texts
        .iter()
        .map(|t| {
            let (path, message) = t.split_once(": ").unwrap_or(("(document)", t));
            Finding {
                path: path.to_string(),
                kind,
                message: message.to_string(),
            }
        })
        .collect()
}

/// The report of a document that does not load: its own problems.
pub fn report_invalid(problems: &[String]) -> CheckReport {
    CheckReport {
        ok: false,
        problems: findings(problems, "invalid_mapping"),
        warnings: Vec::new(),
    }
}

/// The catalog's example of every field an event's mapping reads, by slot.
struct Examples<'a>(Vec<Option<&'a str>>);

impl FieldSource for Examples<'_> {
    fn text(&self, slot: usize) -> std::result::Result<Option<Cow<'_, str>>, String> {
        Ok(self.0.get(slot).copied().flatten().map(Cow::Borrowed))
    }
}

fn examples_of(event: &str, mapping: &CompiledEvent) -> Examples<'static> {
    let fields = catalog()
        .event(event)
        .map(|e| e.fields.as_slice())
        .unwrap_or(&[]);
    Examples(
        mapping
            .slots
            .iter()
            .map(|slot| {
                fields
                    .iter()
                    .find(|f| *f.name == **slot)
                    .map(|f| f.example.as_str())
                    .or((**slot == *ORDER_ID).then_some("10086"))
            })
            .collect(),
    )
}

/// Checks every event of `doc` against the app's `templates`.
pub fn check_document(doc: &CompiledMappings, templates: &[LiveTemplate]) -> CheckReport {
    let mut report = CheckReport {
        warnings: findings(&doc.warnings, "unknown_keyword_type"),
        ..CheckReport::default()
    };
    for (name, mapping) in &doc.events {
        check_event(name, mapping, templates, &mut report);
    }
    report.ok = report.problems.is_empty();
    report
}

fn check_event(
    name: &str,
    mapping: &CompiledEvent,
    templates: &[LiveTemplate],
    report: &mut CheckReport,
) {
    let path = format!("events.{name}");
    if !mapping.channel.has_message() {
        // A card-only event sends no subscribe message: no template to check.
        return;
    }
    let Some(template) = live_template(&path, mapping, templates, report) else {
        return;
    };
    if template.keywords.is_empty() {
        report.problems.push(card_template_finding(&path, template));
        return;
    }
    let data = format!("{path}.data");
    check_keyword_names(&data, mapping, template, report);
    let examples = examples_of(name, mapping);
    for kw in &mapping.keywords {
        let Some(rule) = kw.rule else { continue };
        if !template.keywords.iter().any(|k| *k == *kw.name) {
            continue;
        }
        let mut value = String::new();
        if kw.pattern.render_into(&examples, None, &mut value).is_err() {
            continue;
        }
        let at = format!("{data}.{}", kw.name);
        if rule == KeywordType::EnumString {
            check_enum_example(at, kw, template, &value, report);
        } else if let Err(e) = mapping.mend(name, kw, rule, value.clone()) {
            report.problems.push(Finding {
                path: at,
                kind: "value_cannot_fit",
                message: cannot_fit_message(kw, rule, &value, e),
            });
        }
    }
}

/// The app's template the event maps to; `None` (with a finding) for a
/// legacy template message, which cannot be checked, or an unknown template.
fn live_template<'t>(
    path: &str,
    mapping: &CompiledEvent,
    templates: &'t [LiveTemplate],
    report: &mut CheckReport,
) -> Option<&'t LiveTemplate> {
    if mapping.kind == MessageKind::Template {
        report.warnings.push(Finding {
            path: format!("{path}.kind"),
            kind: "legacy_not_checked",
            message: "a legacy template message (an API WeChat retired in 2020): gettemplate lists subscribe templates only, so it is not checked".into(),
        });
        return None;
    }
    let found = templates.iter().find(|t| *t.id == *mapping.template_id);
    if found.is_none() {
        let known: Vec<&str> = templates.iter().map(|t| t.id.as_str()).collect();
        report.problems.push(Finding {
            path: format!("{path}.template_id"),
            kind: "unknown_template",
            message: format!(
                "\"{}\" is not one of the app's templates (WeChat answers 40037); the app has {}",
                preview(&mapping.template_id),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        });
    }
    found
}

/// A template without keywords is a service card's (tids 10000001…:
/// gettemplate shows an empty content): one finding that says so, instead of
/// one "not in template" per mapped keyword.
fn card_template_finding(path: &str, template: &LiveTemplate) -> Finding {
    Finding {
        path: format!("{path}.template_id"),
        kind: "card_template",
        message: format!(
            "template {} ({}) has no keywords: it is a service card template (new one-time subscription), which subscribeMessage.send refuses; map the event with \"channel\": \"card\" and a \"card\" instead",
            template.id, template.title
        ),
    }
}

/// The mapping fills exactly the template's keywords: one it lacks makes
/// WeChat refuse the message, one the template lacks is a typo.
fn check_keyword_names(
    data: &str,
    mapping: &CompiledEvent,
    template: &LiveTemplate,
    report: &mut CheckReport,
) {
    for kw in &mapping.keywords {
        if !template.keywords.iter().any(|k| *k == *kw.name) {
            report.problems.push(Finding {
                path: format!("{data}.{}", kw.name),
                kind: "keyword_not_in_template",
                message: format!(
                    "template {} ({}) has no keyword {} (its keywords: {})",
                    template.id,
                    template.title,
                    kw.name,
                    template.keywords.join(", ")
                ),
            });
        }
    }
    for k in &template.keywords {
        // A const keyword is the template's fixed text: it is not sent, and
        // a mapping may not set it (WeChat refuses a value for one).
        if KeywordType::of_keyword(k) == Some(KeywordType::Const) {
            continue;
        }
        if !mapping.keywords.iter().any(|kw| *kw.name == **k) {
            report.problems.push(Finding {
                path: format!("{data}.{k}"),
                kind: "keyword_not_mapped",
                message: format!(
                    "template {} ({}) has the keyword {k}, which the mapping does not fill (WeChat answers 47003 data.{k}.value is empty)",
                    template.id, template.title
                ),
            });
        }
    }
}

/// Where a keyword's value comes from, for messages: `{field, …}` or the literal.
fn value_source(kw: &CompiledKeyword) -> String {
    match &*kw.fields {
        "" => "the literal".to_string(),
        f => format!("{{{f}}}"),
    }
}

/// An enum keyword takes only the template's own values: the example must be
/// one, and a value fed from a field may not be (a warning).
fn check_enum_example(
    at: String,
    kw: &CompiledKeyword,
    template: &LiveTemplate,
    value: &str,
    report: &mut CheckReport,
) {
    let Some(values) = template.enum_values(&kw.name) else {
        return;
    };
    let allowed = values.join(", ");
    let source = value_source(kw);
    if KeywordType::check_enum(value, values).is_err() {
        report.problems.push(Finding {
            path: at,
            kind: "enum_value_not_allowed",
            message: format!(
                "{} takes one of the template's values ({allowed}); {source} gives \"{}\"",
                kw.name,
                preview(value)
            ),
        });
    } else if !kw.fields.is_empty() {
        report.warnings.push(Finding {
            path: at,
            kind: "enum_fed_a_field",
            message: format!(
                "{} takes one of the template's values ({allowed}); {source} may hold others (WeChat answers 47003): a literal is safer",
                kw.name
            ),
        });
    }
}

/// Why an example value cannot be made to fit its keyword's rule, without
/// the render error's own `event.keyword: value` lead-in.
fn cannot_fit_message(kw: &CompiledKeyword, rule: KeywordType, value: &str, e: Error) -> String {
    let why = match e {
        Error::Mapping(m) => m,
        other => other.to_string(),
    };
    let why = why
        .split_once(": value ")
        .map_or(why.as_str(), |(_, rest)| rest);
    format!(
        "{} ({}) is fed {}, e.g. \"{}\": {why}",
        kw.name,
        rule_name(rule),
        value_source(kw),
        preview(value)
    )
}

fn rule_name(rule: KeywordType) -> &'static str {
    match rule.prefix() {
        "" => "type not in WeChat's tables",
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_template_list_is_read_from_gettemplate() {
        let answer = json!({"errcode": 0, "errmsg": "ok", "data": [
            {"priTmplId": "T1", "title": "报名结果通知",
             "content": "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n", "example": "", "type": 2},
            {"priTmplId": "T2", "title": "洗衣机故障提醒",
             "content": "完成时间:{{time1.DATA}}\n所在位置:{{enum_string2.DATA}}\n",
             "keywordEnumValueList": [{"enumValueList": ["客厅", "厨房"], "keywordCode": "enum_string2.DATA"}],
             "type": 3}
        ]});
        let list = parse_template_list(&answer).unwrap();
        assert_eq!(list[0].keywords, ["date2", "thing1"]);
        assert_eq!(list[0].kind, 2);
        assert!(list[0].enums.is_empty());
        assert_eq!(list[1].kind, 3);
        assert_eq!(
            list[1].enum_values("enum_string2").unwrap(),
            ["客厅".to_string(), "厨房".to_string()]
        );
        assert!(parse_template_list(&json!({"errcode": 0})).is_err());
        assert_eq!(
            content_keywords("a {{x1.DATA}} {{x1.DATA}} {{broken"),
            ["x1"]
        );
    }

    #[test]
    fn a_const_keyword_is_neither_demanded_nor_settable() {
        let list = parse_template_list(&json!({"errcode": 0, "data": [
            {"priTmplId": "TC", "title": "工单提醒", "type": 2,
             "content": "工单类型:{{const3.DATA}}\n工单名称:{{thing1.DATA}}\n"}]}))
        .unwrap();
        assert_eq!(list[0].keywords, ["const3", "thing1"]);
        let doc = |data: serde_json::Value| {
            super::super::mapping::compile_json(
                &json!({"version": 1, "events": {"order_cancel": {"template_id": "TC", "data": data}}})
                    .to_string(),
            )
            .unwrap()
        };
        // Every settable keyword mapped: no finding about const3.
        let report = check_document(&doc(json!({"thing1": "{cancel_reason}"})).unwrap(), &list);
        assert!(report.ok, "{report:?}");
        assert!(!format!("{report:?}").contains("const3"), "{report:?}");
        // Setting it is refused when the mapping loads.
        let refused = doc(json!({"thing1": "{cancel_reason}", "const3": "x"})).unwrap_err();
        assert!(refused.iter().any(|p| p.contains("const3")), "{refused:?}");
    }

    #[test]
    fn the_cache_holds_a_list_for_its_ttl() {
        let cache = TemplateCache::default();
        assert!(cache.fresh("wx1", 1_000).is_none());
        cache.store("wx1", 1_000, Arc::new(Vec::new()));
        assert_eq!(
            cache.fresh("wx1", 1_000 + TEMPLATE_TTL_MS - 1).unwrap().1,
            1_000
        );
        assert!(cache.fresh("wx1", 1_000 + TEMPLATE_TTL_MS).is_none());
        assert!(cache.fresh("wx2", 1_000).is_none());
        // A clock moved back does not keep a list for ever.
        assert!(cache.fresh("wx1", 999).is_none());
    }
}
