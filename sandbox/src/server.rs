//! The HTTP side: takes requests from tiny_http, reads bodies within limits,
//! fires faults, routes WeChat paths to the state and `/sandbox/` to the
//! control API, and writes answers outside the state lock.

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use once_cell::sync::Lazy;
use serde_json::{json, Value};
use tiny_http::{Header, Method, Request, Response};

use super::card_api as cards;
use super::conn;
use super::control;
use super::fault::Effect;
use super::shared::{form_object, query_param, Shared};
use super::templates::{CATEGORIES, LEGACY_LIBRARY, LIBRARY};
use super::world::{standard_errmsg, wx_error, Answer, World};

/// Bodies beyond this are refused (WeChat's bodies are a few KB at most).
pub(crate) const MAX_BODY: usize = 1 << 20;
/// Declared bodies beyond this are refused and the connection closed instead of
/// drained.
const MAX_DRAIN: usize = 64 << 20;
/// tiny_http reads bodies up to this size before handing the request over, so
/// they can be handled inline; larger ones are read on their own thread so a
/// client that stops sending mid-body holds up no one else.
const INLINE_BODY: usize = 1024;
/// At most this many requests with large bodies are read at once.
const MAX_SLOW_READERS: usize = 256;

static JSON_HEADER: Lazy<Header> = Lazy::new(|| {
    Header::from_bytes(
        &b"Content-Type"[..],
        &b"application/json; charset=utf-8"[..],
    )
    .expect("static header")
});
static HTML_HEADER: Lazy<Header> = Lazy::new(|| {
    Header::from_bytes(&b"Content-Type"[..], &b"text/html"[..]).expect("static header")
});
static CLOSE_HEADER: Lazy<Header> =
    Lazy::new(|| Header::from_bytes(&b"Connection"[..], &b"close"[..]).expect("static header"));

pub(crate) fn respond(req: Request, answer: Answer) {
    let resp = Response::from_data(answer.body)
        .with_status_code(answer.status)
        .with_header(JSON_HEADER.clone());
    // The client may have gone away; nothing to do about that here.
    let _ = req.respond(resp);
}

/// Drops the connection without a word.
fn close(req: Request, local: SocketAddr) {
    if let Some(peer) = req.remote_addr().copied() {
        conn::close_connection(local, peer);
    }
    // Taking the writer keeps tiny_http from writing its default 500.
    drop(req.into_writer());
}

/// One worker's loop: until the server is unblocked.
pub(crate) fn serve(server: &tiny_http::Server, shared: &Arc<Shared>) {
    let mut peers = HashSet::new();
    while let Ok(req) = server.recv() {
        if let Some(peer) = req.remote_addr() {
            if peers.len() >= 4096 {
                peers.clear();
            }
            if peers.insert(*peer) {
                shared.arrivals.fetch_add(1, Ordering::Relaxed);
            }
        }
        let inline = matches!(req.body_length(), Some(n) if n <= INLINE_BODY)
            || (req.body_length().is_none() && !has_chunked_body(&req));
        if inline {
            handle_guarded(req, shared);
            continue;
        }
        if shared.slow_readers.fetch_add(1, Ordering::SeqCst) >= MAX_SLOW_READERS {
            shared.slow_readers.fetch_sub(1, Ordering::SeqCst);
            respond(
                req,
                Answer {
                    status: 503,
                    body: wx_error(-1, "system busy").body,
                    errcode: -1,
                },
            );
            continue;
        }
        let shared2 = Arc::clone(shared);
        let spawned = std::thread::Builder::new()
            .name("sandbox-body".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                handle_guarded(req, &shared2);
                shared2.slow_readers.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            shared.slow_readers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A bug in handling one request must not take a worker down with it; the
/// request, dropped while unwinding, gets tiny_http's 500.
fn handle_guarded(req: Request, shared: &Shared) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(req, shared)));
}

fn has_chunked_body(req: &Request) -> bool {
    req.headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"))
}

enum Body {
    Ok(Vec<u8>),
    TooLarge,
    Broken,
}

fn read_body(req: &mut Request) -> Body {
    let declared = req.body_length();
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Body::TooLarge;
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(0));
    match req
        .as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut buf)
    {
        Ok(_) if buf.len() > MAX_BODY => Body::TooLarge,
        Ok(_) => Body::Ok(buf),
        Err(_) => Body::Broken,
    }
}

/// The WeChat endpoints the sandbox knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Token,
    StableToken,
    SubscribeSend,
    LegacySend,
    GetCategory,
    PubTitles,
    PubKeywords,
    AddTemplate,
    GetTemplate,
    DelTemplate,
    LegacyTemplateList,
    LegacyLibraryList,
    LegacyLibraryGet,
    LegacyTemplateAdd,
    LegacyTemplateDel,
    QuotaGet,
    ClearQuotaV2,
    SetUserNotify,
    SetUserNotifyExt,
    GetUserNotify,
    Unknown,
}

impl Route {
    fn of(path: &str) -> Route {
        match path {
            "/cgi-bin/token" => Route::Token,
            "/cgi-bin/stable_token" => Route::StableToken,
            "/cgi-bin/message/subscribe/send" => Route::SubscribeSend,
            "/cgi-bin/message/wxopen/template/send" => Route::LegacySend,
            "/wxaapi/newtmpl/getcategory" => Route::GetCategory,
            "/wxaapi/newtmpl/getpubtemplatetitles" => Route::PubTitles,
            "/wxaapi/newtmpl/getpubtemplatekeywords" => Route::PubKeywords,
            "/wxaapi/newtmpl/addtemplate" => Route::AddTemplate,
            "/wxaapi/newtmpl/gettemplate" => Route::GetTemplate,
            "/wxaapi/newtmpl/deltemplate" => Route::DelTemplate,
            "/cgi-bin/wxopen/template/list" => Route::LegacyTemplateList,
            "/cgi-bin/wxopen/template/library/list" => Route::LegacyLibraryList,
            "/cgi-bin/wxopen/template/library/get" => Route::LegacyLibraryGet,
            "/cgi-bin/wxopen/template/add" => Route::LegacyTemplateAdd,
            "/cgi-bin/wxopen/template/del" => Route::LegacyTemplateDel,
            "/cgi-bin/openapi/quota/get" => Route::QuotaGet,
            "/cgi-bin/clear_quota/v2" => Route::ClearQuotaV2,
            "/wxa/set_user_notify" => Route::SetUserNotify,
            "/wxa/set_user_notifyext" => Route::SetUserNotifyExt,
            "/wxa/get_user_notify" => Route::GetUserNotify,
            _ => Route::Unknown,
        }
    }

    /// Template management that takes a form body, or JSON only when the
    /// request says `Content-Type: application/json` (WeChat's current page
    /// asks for a form; clients that send JSON without that header get
    /// 200014 `missing parameter tid`, easy-swoole/wechat#156).
    fn posts_form(self) -> bool {
        matches!(self, Route::AddTemplate | Route::DelTemplate)
    }

    /// Whether WeChat wants a JSON body (POST) on this endpoint.
    fn posts_json(self) -> bool {
        matches!(
            self,
            Route::StableToken
                | Route::SubscribeSend
                | Route::LegacySend
                | Route::LegacyTemplateList
                | Route::LegacyLibraryList
                | Route::LegacyLibraryGet
                | Route::LegacyTemplateAdd
                | Route::LegacyTemplateDel
                | Route::QuotaGet
                | Route::SetUserNotify
                | Route::SetUserNotifyExt
                | Route::GetUserNotify
        )
    }
}

fn handle(mut req: Request, shared: &Shared) {
    let url = req.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    if shared.verbose {
        // Only the path: queries carry secrets and tokens.
        eprintln!("sandbox: {} {}", req.method(), path);
    }
    let body = match read_body(&mut req) {
        Body::Ok(b) => b,
        Body::TooLarge => return refuse_large(req, shared),
        Body::Broken => return close(req, shared.local),
    };
    if let Some(rest) = path.strip_prefix("/sandbox/") {
        let method = req.method().clone();
        let answer = control::handle(shared, &method, rest, query, &body);
        if method != Method::Get {
            // Before the answer: once a client has it, a restart keeps the change.
            shared.save_state();
        }
        return respond(req, answer);
    }
    let route = Route::of(path);
    let now = shared.clock.now();
    let json_body: Option<Value> = if route.posts_json() {
        serde_json::from_slice(&body).ok()
    } else if route.posts_form() {
        let content_type = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Content-Type"))
            .map(|h| h.value.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        Some(if content_type.starts_with("application/json") {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        } else if content_type.starts_with("application/x-www-form-urlencoded") {
            form_object(&text)
        } else {
            // Neither: WeChat finds none of its parameters.
            Value::Object(Default::default())
        })
    } else {
        None
    };
    let method = req.method().clone();

    let mut world = shared.world.lock();
    world.counters.requests += 1;
    world.now_ms = shared.clock.now_ms();
    match route {
        Route::Token => {
            let appid = query_param(query, "appid").unwrap_or_default();
            world.count_token_fetch(&appid, "token");
        }
        Route::StableToken => {
            let appid = json_body
                .as_ref()
                .and_then(|b| b.get("appid"))
                .and_then(Value::as_str)
                .unwrap_or("");
            world.count_token_fetch(appid, "stable_token");
        }
        Route::SubscribeSend | Route::LegacySend => world.counters.send_attempts += 1,
        _ => {}
    }
    count_quota(&mut world, route, path, query, json_body.as_ref());
    let fault = world.fire_fault(path);
    let effect = fault.as_ref().map_or(Effect::None, |f| f.effect());
    let latency = fault.as_ref().map_or(0, |f| f.latency_ms);
    let answer = match effect {
        Effect::Errcode(code) => Some(wx_error(code, standard_errmsg(code))),
        Effect::HttpStatus(status) => {
            *world.counters.http_errors.entry(status).or_insert(0) += 1;
            None
        }
        Effect::CloseBeforeAnswer => None,
        _ => Some(answer_for(
            &mut world,
            route,
            &method,
            query,
            &body,
            json_body.as_ref(),
            now,
        )),
    };
    if let Some(a) = &answer {
        world.count_answer(a.errcode);
    }
    drop(world);
    if method != Method::Get && answer.is_some() {
        // A send uses a grant up, addtemplate adds a template: kept before the answer.
        shared.save_state();
    }

    let local = shared.local;
    let finish = move |req: Request| match (effect, answer) {
        (Effect::HttpStatus(status), _) => {
            let page = format!("<html><body><h1>{status}</h1></body></html>");
            let resp = Response::from_data(page.into_bytes())
                .with_status_code(status)
                .with_header(HTML_HEADER.clone());
            let _ = req.respond(resp);
        }
        (Effect::CloseBeforeAnswer, _) | (Effect::CloseAfterRead, _) => close(req, local),
        (Effect::MalformedBody, Some(mut a)) => {
            let keep = a.body.len() / 2;
            a.body.truncate(keep.max(1));
            respond(req, a);
        }
        (_, Some(a)) => respond(req, a),
        (_, None) => close(req, local),
    };
    if latency == 0 {
        finish(req);
        return;
    }
    // The answer waits on its own thread so a slow answer holds up no worker.
    let _ = std::thread::Builder::new()
        .name("sandbox-latency".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            std::thread::sleep(Duration::from_millis(latency));
            finish(req);
        });
}

fn refuse_large(req: Request, shared: &Shared) {
    let answer = wx_error(
        47001,
        &format!("data format error: request body larger than {MAX_BODY} bytes"),
    );
    shared.world.lock().count_answer(47001);
    let declared_huge = req.body_length().is_none_or(|n| n > MAX_DRAIN);
    let resp = Response::from_data(answer.body)
        .with_status_code(413)
        .with_header(JSON_HEADER.clone());
    if declared_huge {
        let peer = req.remote_addr().copied();
        let _ = req.respond(resp.with_header(CLOSE_HEADER.clone()));
        if let Some(peer) = peer {
            conn::close_connection(shared.local, peer);
        }
    } else {
        // tiny_http drains the unread rest of the body when the request is
        // dropped, so the connection stays usable.
        let _ = req.respond(resp);
    }
}

fn answer_for(
    world: &mut World,
    route: Route,
    method: &Method,
    query: &str,
    body: &[u8],
    json_body: Option<&Value>,
    now: i64,
) -> Answer {
    if route == Route::Unknown {
        return wx_error(40066, "invalid url");
    }
    if route == Route::ClearQuotaV2 {
        return clear_quota_v2(world, method, query, json_body_of(body).as_ref());
    }
    if route.posts_json() || route.posts_form() {
        if *method != Method::Post {
            return wx_error(43002, "require POST method");
        }
        if body.is_empty() {
            return wx_error(44002, "empty post data");
        }
    } else if *method != Method::Get {
        return wx_error(43001, "require GET method");
    }
    let token = query_param(query, "access_token");
    let token = token.as_deref();
    match route {
        Route::Token => world.classic_token(
            query_param(query, "grant_type").as_deref(),
            query_param(query, "appid").as_deref(),
            query_param(query, "secret").as_deref(),
            now,
        ),
        _ if route.posts_json() && json_body.is_none() => {
            // The token is checked before the body, as WeChat does.
            if route != Route::StableToken {
                if let Err(a) = world.check_token(token, now) {
                    return a;
                }
            }
            wx_error(47001, "data format error")
        }
        Route::StableToken => world.stable_token(json_body.unwrap_or(&Value::Null), now),
        Route::SubscribeSend => world.subscribe_send(token, json_body.unwrap_or(&Value::Null), now),
        Route::LegacySend => world.legacy_send(token, json_body.unwrap_or(&Value::Null), now),
        Route::SetUserNotify => {
            cards::set_user_notify(world, token, json_body.unwrap_or(&Value::Null), now)
        }
        Route::SetUserNotifyExt => {
            cards::set_user_notifyext(world, token, json_body.unwrap_or(&Value::Null), now)
        }
        Route::GetUserNotify => {
            cards::get_user_notify(world, token, json_body.unwrap_or(&Value::Null), now)
        }
        _ => {
            let appid = match world.check_token(token, now) {
                Ok(a) => a,
                Err(a) => return a,
            };
            template_route(world, route, &appid, query, json_body)
        }
    }
}

/// Counts a call against its app's daily quota of `path` (the app from the
/// token, or from the token request itself).
fn count_quota(world: &mut World, route: Route, path: &str, query: &str, body: Option<&Value>) {
    let appid = match route {
        Route::Token => query_param(query, "appid").map(|a| a.to_string()),
        Route::StableToken => body
            .and_then(|b| b.get("appid"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => query_param(query, "access_token").and_then(|t| world.appid_of_token(&t)),
    };
    if let Some(appid) = appid {
        let now_ms = world.now_ms;
        world.quotas.count(&appid, path, now_ms);
    }
}

fn json_body_of(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// `POST /cgi-bin/clear_quota/v2`: appid and appsecret in the URL (one
/// WeChat page) or in a JSON body (another); no access token.
fn clear_quota_v2(world: &mut World, method: &Method, query: &str, body: Option<&Value>) -> Answer {
    if *method != Method::Post {
        return wx_error(43002, "require POST method");
    }
    let field = |k: &str| {
        query_param(query, k).map(|v| v.to_string()).or_else(|| {
            body.and_then(|b| b.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    };
    world.clear_quota_v2(field("appid").as_deref(), field("appsecret").as_deref())
}

fn template_route(
    world: &mut World,
    route: Route,
    appid: &str,
    query: &str,
    json_body: Option<&Value>,
) -> Answer {
    match route {
        Route::GetCategory => {
            // The account's own categories, not the whole library's.
            let own = world
                .apps
                .get(appid)
                .map(|a| a.categories.clone())
                .unwrap_or_default();
            let data: Vec<Value> = CATEGORIES
                .iter()
                .filter(|(id, _)| own.contains(id))
                .map(|(id, name)| json!({ "id": id, "name": name }))
                .collect();
            Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "data": data }))
        }
        Route::PubTitles => {
            // 200016 start, 200017 limit, 200018 ids missing, 200019 ids
            // invalid (https://developers.weixin.qq.com/miniprogram/dev/server/API/mp-message-management/subscribe-message/api_getpubnewtemplatetitles.html;
            // only the 200019 text is seen in the wild).
            let Some(start) = query_param(query, "start").and_then(|s| s.parse::<usize>().ok())
            else {
                return wx_error(200016, "invalid parameter start");
            };
            let limit = query_param(query, "limit").and_then(|s| s.parse::<usize>().ok());
            let Some(limit) = limit.filter(|l| (1..=30).contains(l)) else {
                return wx_error(200017, "invalid parameter limit");
            };
            let Some(ids) = query_param(query, "ids").filter(|i| !i.is_empty()) else {
                return wx_error(200018, "missing parameter ids");
            };
            let ids: Option<Vec<u32>> = ids.split(',').map(|i| i.trim().parse().ok()).collect();
            let Some(ids) = ids else {
                return wx_error(200019, "invalid parameter ids");
            };
            // The service cards' templates are not listed: they are added by
            // their tid from the card guide (whether WeChat lists them here is
            // unverified; docs/spec/wechat.md, service cards).
            let matching: Vec<_> = LIBRARY
                .iter()
                .filter(|t| ids.contains(&t.category_id) && !t.keywords.is_empty())
                .collect();
            let data: Vec<Value> = matching
                .iter()
                .skip(start)
                .take(limit)
                .map(|t| {
                    json!({ "tid": t.tid, "title": t.title, "type": t.kind,
                            "categoryId": t.category_id.to_string() })
                })
                .collect();
            Answer::ok_json(
                json!({ "errcode": 0, "errmsg": "ok", "count": matching.len(), "data": data }),
            )
        }
        Route::PubKeywords => {
            let tid = query_param(query, "tid").and_then(|t| t.parse::<u32>().ok());
            let Some(lib) = tid.and_then(super::templates::library) else {
                return wx_error(200014, "template tid is invalid");
            };
            let data: Vec<Value> = lib
                .keywords
                .iter()
                .map(|k| {
                    json!({ "kid": k.kid, "name": k.name, "example": k.example, "rule": k.rule,
                                 "enumValueList": k.enum_values })
                })
                .collect();
            Answer::ok_json(
                json!({ "errcode": 0, "errmsg": "ok", "count": data.len(), "data": data }),
            )
        }
        Route::AddTemplate => world.add_template(appid, json_body.unwrap_or(&Value::Null)),
        Route::DelTemplate => world.del_template(appid, json_body.unwrap_or(&Value::Null)),
        Route::GetTemplate => {
            let data: Vec<Value> = world
                .get_templates(appid, false)
                .into_iter()
                .map(|t| {
                    let mut item = json!({ "priTmplId": t.id, "title": t.title, "content": t.content(),
                            "example": t.example(), "type": t.kind });
                    // Absent on templates without enum keywords, as WeChat does.
                    if !t.enums.is_empty() {
                        item["keywordEnumValueList"] = Value::Array(t.enum_value_list());
                    }
                    item
                })
                .collect();
            Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "data": data }))
        }
        Route::LegacyTemplateList => {
            let b = json_body.unwrap_or(&Value::Null);
            let offset = b.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            let count = b.get("count").and_then(Value::as_u64).unwrap_or(20) as usize;
            if count == 0 || count > 20 {
                return wx_error(47001, "data format error: count must be 1 to 20");
            }
            let list: Vec<Value> = world
                .get_templates(appid, true)
                .into_iter()
                .skip(offset)
                .take(count)
                .map(|t| {
                    json!({ "template_id": t.id, "title": t.title, "content": t.content(),
                            "example": t.example() })
                })
                .collect();
            Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "list": list }))
        }
        Route::LegacyLibraryList => {
            let b = json_body.unwrap_or(&Value::Null);
            let offset = b.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            let count = b.get("count").and_then(Value::as_u64).unwrap_or(20) as usize;
            if count == 0 || count > 20 {
                return wx_error(47001, "data format error: count must be 1 to 20");
            }
            let list: Vec<Value> = LEGACY_LIBRARY
                .iter()
                .skip(offset)
                .take(count)
                .map(|t| json!({ "id": t.id, "title": t.title }))
                .collect();
            Answer::ok_json(json!({ "errcode": 0, "errmsg": "ok", "list": list,
                                    "total_count": LEGACY_LIBRARY.len() }))
        }
        Route::LegacyLibraryGet => {
            let id = json_body.and_then(|b| b.get("id")).and_then(Value::as_str);
            let Some(t) = id.and_then(super::templates::legacy_library) else {
                return wx_error(40037, "invalid template id");
            };
            let keywords: Vec<Value> = t
                .keywords
                .iter()
                .map(|(k, name, ex)| json!({ "keyword_id": k, "name": name, "example": ex }))
                .collect();
            Answer::ok_json(
                json!({ "errcode": 0, "errmsg": "ok", "id": t.id, "title": t.title,
                                    "keyword_list": keywords }),
            )
        }
        Route::LegacyTemplateAdd => {
            world.add_legacy_template(appid, json_body.unwrap_or(&Value::Null))
        }
        Route::LegacyTemplateDel => {
            world.del_legacy_template(appid, json_body.unwrap_or(&Value::Null))
        }
        Route::QuotaGet => {
            let path = json_body
                .and_then(|b| b.get("cgi_path"))
                .and_then(Value::as_str)
                .unwrap_or("");
            match world.quotas.get(appid, path, world.now_ms) {
                Ok(v) => Answer::ok_json(v),
                Err((code, msg)) => wx_error(code, msg),
            }
        }
        _ => wx_error(40066, "invalid url"),
    }
}
