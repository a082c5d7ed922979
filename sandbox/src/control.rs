//! The control API under `/sandbox/`: what a test or demo does to the sandbox
//! from outside Rust. Bodies are JSON (the shapes of the seed file, `seed.rs`);
//! answers are `{"ok":true,…}` or HTTP 400 `{"ok":false,"error":"…"}`.

use serde::Deserialize;
use serde_json::{json, Value};
use tiny_http::Method;

use super::fault::Fault;
use super::seed::{SeedApp, SeedFormId, SeedGrant, SeedPrepayId, SeedUser};
use super::shared::{bad, ok, parse, query_param, Shared};
use super::templates::{SEEDED, SEEDED_LEGACY};
use super::world::{Answer, Template};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paid {
    appid: String,
    prepay_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pages {
    appid: String,
    pages: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Blacklist {
    appid: String,
    words: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Clock {
    advance_secs: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default)]
    legacy: Option<bool>,
    #[serde(default)]
    token_grace_secs: Option<i64>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    concurrent_gap_ms: Option<i64>,
}

fn done(r: Result<(), String>) -> Answer {
    match r {
        Ok(()) => ok(Value::Null),
        Err(e) => bad(400, &e),
    }
}

/// One control request; `rest` is the path after `/sandbox/`.
pub(crate) fn handle(
    shared: &Shared,
    method: &Method,
    rest: &str,
    query: &str,
    body: &[u8],
) -> Answer {
    match run(shared, method, rest, query, body) {
        Ok(a) | Err(a) => a,
    }
}

fn run(
    shared: &Shared,
    method: &Method,
    rest: &str,
    query: &str,
    body: &[u8],
) -> Result<Answer, Answer> {
    if super::push::is_push_path(rest) {
        return Ok(super::push::handle(shared, method, rest, body));
    }
    if super::card_control::is_card_path(rest) {
        return Ok(super::card_control::control(
            shared, method, rest, query, body,
        ));
    }
    let now = shared.clock.now();
    let post = *method == Method::Post;
    let get = *method == Method::Get;
    Ok(match rest {
        "apps" if post => {
            let a: SeedApp = parse("apps", body)?;
            let mut w = shared.world.lock();
            done(w.seed_app(&a.appid, &a.secret).and_then(|_| {
                if let Some(categories) = a.categories {
                    w.set_categories(&a.appid, categories)?;
                }
                if a.pages.is_empty() {
                    Ok(())
                } else {
                    w.set_pages(&a.appid, a.pages)
                }
            }))
        }
        "users" if post => {
            let u: SeedUser = parse("users", body)?;
            done(shared.world.lock().seed_user(&u.appid, &u.openid))
        }
        "grants" if post => {
            let g: SeedGrant = parse("grants", body)?;
            done(
                shared
                    .world
                    .lock()
                    .grant(&g.appid, &g.openid, &g.template_id, g.count),
            )
        }
        "grants" if get => {
            let p = |k| query_param(query, k).unwrap_or_default();
            let left =
                shared
                    .world
                    .lock()
                    .grants_left(&p("appid"), &p("openid"), &p("template_id"));
            ok(json!({ "left": left }))
        }
        "form_ids" if post => {
            let f: SeedFormId = parse("form_ids", body)?;
            done(
                shared
                    .world
                    .lock()
                    .add_form_id(&f.appid, &f.openid, &f.form_id, now),
            )
        }
        "prepay_ids" if post => {
            let p: SeedPrepayId = parse("prepay_ids", body)?;
            let mut w = shared.world.lock();
            done(
                w.add_prepay_id(&p.appid, &p.openid, &p.prepay_id, now)
                    .and_then(|_| {
                        if p.paid {
                            w.mark_paid(&p.appid, &p.prepay_id)
                        } else {
                            Ok(())
                        }
                    }),
            )
        }
        "paid" if post => {
            let p: Paid = parse("paid", body)?;
            done(shared.world.lock().mark_paid(&p.appid, &p.prepay_id))
        }
        "pages" if post => {
            let p: Pages = parse("pages", body)?;
            done(shared.world.lock().set_pages(&p.appid, p.pages))
        }
        "blacklist" if post => {
            let b: Blacklist = parse("blacklist", body)?;
            done(shared.world.lock().set_blacklist(&b.appid, b.words))
        }
        "faults" if post => {
            let f: Fault = parse("faults", body)?;
            done(shared.world.lock().inject(f))
        }
        "faults" if get => {
            let w = shared.world.lock();
            let list: Vec<Value> = w
                .faults
                .iter()
                .map(|s| json!({ "fault": s.fault, "left": s.left }))
                .collect();
            ok(json!({ "faults": list }))
        }
        "faults" if *method == Method::Delete => {
            shared.world.lock().faults.clear();
            ok(Value::Null)
        }
        "clock" if post => {
            let c: Clock = parse("clock", body)?;
            shared.clock.advance(c.advance_secs);
            ok(json!({ "now": shared.clock.now() }))
        }
        "clock" if get => ok(json!({ "now": now })),
        "settings" if post => {
            let s: Settings = parse("settings", body)?;
            let mut w = shared.world.lock();
            if let Some(l) = s.legacy {
                w.settings.legacy = l;
            }
            if let Some(g) = s.token_grace_secs {
                if g < 0 {
                    return Err(bad(400, "token_grace_secs must not be negative"));
                }
                w.settings.grace_secs = g;
            }
            if let Some(e) = s.expires_in {
                if e <= 0 {
                    return Err(bad(400, "expires_in must be positive"));
                }
                w.settings.expires_in = e;
            }
            if let Some(g) = s.concurrent_gap_ms {
                if g < 0 {
                    return Err(bad(400, "concurrent_gap_ms must not be negative"));
                }
                w.settings.concurrent_gap_ms = g;
            }
            ok(Value::Null)
        }
        "delivered" if get => {
            let appid = query_param(query, "appid").filter(|a| !a.is_empty());
            let openid = query_param(query, "openid").filter(|o| !o.is_empty());
            let msgs = shared
                .world
                .lock()
                .delivered(appid.as_deref(), openid.as_deref());
            ok(json!({ "messages": msgs }))
        }
        "counters" if get => {
            let c = shared.world.lock().counters.clone();
            ok(json!({ "counters": c }))
        }
        "templates" if get => match query_param(query, "appid").filter(|a| !a.is_empty()) {
            None => ok(json!({ "templates": seeded_template_list() })),
            Some(appid) => {
                let w = shared.world.lock();
                match w.apps.get(appid.as_ref()) {
                    None => bad(400, &format!("unknown appid {appid:?}: seed it first")),
                    Some(app) => ok(
                        json!({ "templates": app.templates.values().map(listed).collect::<Vec<_>>() }),
                    ),
                }
            }
        },
        "reset" if post => {
            shared.world.lock().reset();
            ok(Value::Null)
        }
        "apps" | "users" | "grants" | "form_ids" | "prepay_ids" | "paid" | "pages" | "revoke"
        | "blacklist" | "faults" | "clock" | "settings" | "delivered" | "counters"
        | "templates" | "reset" => bad(
            405,
            &format!("method {method} not allowed on /sandbox/{rest}"),
        ),
        _ => bad(404, &format!("no control endpoint /sandbox/{rest}")),
    })
}

/// An app's template as `GET /sandbox/templates?appid=` lists it (the shape
/// a seed file's template takes, with its `appid`).
fn listed(t: &Template) -> Value {
    let enums: serde_json::Map<String, Value> = t
        .enums
        .iter()
        .map(|(name, values)| (name.clone(), json!(values)))
        .collect();
    let keywords: Vec<&str> = t.keywords.iter().map(|(n, _, _)| n.as_str()).collect();
    json!({ "id": t.id, "title": t.title, "keywords": keywords, "legacy": t.legacy,
            "type": t.kind, "enums": enums })
}

/// The seeded subscribe templates with their keyword names, for hosts that
/// cannot read the Rust constants.
fn seeded_template_list() -> Vec<Value> {
    SEEDED
        .iter()
        .map(|(id, tid, kids)| {
            let lib = super::templates::library(*tid).expect("seeded tid");
            let keywords: Vec<String> = kids
                .iter()
                .filter_map(|k| lib.keywords.iter().find(|kw| kw.kid == *k))
                .map(|kw| format!("{}{}", kw.rule, kw.kid))
                .collect();
            let enums: serde_json::Map<String, Value> = kids
                .iter()
                .filter_map(|k| lib.keywords.iter().find(|kw| kw.kid == *k))
                .filter(|kw| !kw.enum_values.is_empty())
                .map(|kw| (format!("{}{}", kw.rule, kw.kid), json!(kw.enum_values)))
                .collect();
            json!({ "id": id, "title": lib.title, "keywords": keywords, "legacy": false,
                    "type": lib.kind, "enums": enums })
        })
        .chain(SEEDED_LEGACY.iter().map(|(id, title, labels)| {
            let keywords: Vec<String> = (1..=labels.len()).map(|i| format!("keyword{i}")).collect();
            json!({ "id": id, "title": title, "keywords": keywords, "legacy": true })
        }))
        .collect()
}
