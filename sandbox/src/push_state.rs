//! The push side of the world: each app's push target, the events waiting for a
//! flush and the log of what was delivered, and each event written the way
//! WeChat writes it. The world queues events here under its lock; `push.rs`
//! sets targets and delivers.
//!
//! Shapes follow WeChat's subscribe-message guide ("订阅消息事件推送"): XML nests
//! one `<List>` per template; JSON puts `List` at the top for popup and change
//! events, an object for one entry and an array for several (binarywang/WxJava#2477),
//! and nests the sent event's `List` under `SubscribeMsgSentEvent`
//! (royalrick/weapp#63); JSON numbers are strings, as in both sources.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use fashop_notify::push::{AesKey, PushFormat};
use fashop_notify::Secret;

/// Where and how one app's pushes go.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) token: Secret,
    /// Safe mode when present.
    pub(crate) key: Option<AesKey>,
    pub(crate) format: PushFormat,
    /// As it was given, for the state file.
    pub(crate) spec: SeedPush,
}

/// How many times a push is tried before it is given up: the first request
/// and WeChat's three retries ("总共重试三次", see `push.rs`).
pub(crate) const MAX_ATTEMPTS: u32 = 4;

/// An app's message push target (`POST /sandbox/push`). From a seed or state
/// file it is taken as it stands: the URL is not checked again at start.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPush {
    pub appid: String,
    pub url: String,
    pub token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_aes_key: Option<String>,
    #[serde(default)]
    pub format: PushFormat,
    /// `"plain"` or `"safe"` (needs the key).
    #[serde(default = "plain")]
    pub mode: String,
}

fn plain() -> String {
    "plain".into()
}

impl std::fmt::Debug for SeedPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedPush")
            .field("appid", &self.appid)
            .field("url", &self.url)
            .field("token", &"***")
            .field("format", &self.format)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// The target a push spec describes, its URL on this host and its key valid.
pub(crate) fn target(spec: &SeedPush) -> Result<Target, String> {
    let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"];
    if !local.iter().any(|p| spec.url.starts_with(p)) {
        return Err(
            "url must be http://127.0.0.1:PORT/… (the sandbox pushes to this host only)".into(),
        );
    }
    let creds = fashop_notify::push::PushCredentials::new(fashop_notify::push::PushSpec {
        token: Secret::new(spec.token.clone()),
        encoding_aes_key: spec.encoding_aes_key.clone().map(Secret::new),
        format: spec.format,
        mode: None,
        max_skew_secs: None,
    })
    .map_err(|e| e.to_string())?;
    let key = match spec.mode.as_str() {
        "plain" => None,
        "safe" => Some(
            creds
                .key()
                .cloned()
                .ok_or("mode \"safe\" needs encoding_aes_key")?,
        ),
        other => return Err(format!("mode must be \"plain\" or \"safe\", got {other:?}")),
    };
    Ok(Target {
        url: spec.url.clone(),
        token: Secret::new(spec.token.clone()),
        key,
        format: spec.format,
        spec: spec.clone(),
    })
}

/// An event waiting for a flush: the plain message in the app's format, and
/// what its earlier attempts were signed with (a retry repeats the request).
pub(crate) struct Pending {
    /// Its index in the log.
    pub(crate) id: usize,
    pub(crate) appid: String,
    pub(crate) event: &'static str,
    pub(crate) openid: String,
    pub(crate) message: String,
    pub(crate) attempts: u32,
    /// (timestamp, nonce) of the first attempt; every retry carries the same.
    pub(crate) signed: Option<(i64, String)>,
}

/// Where a push stands, as `GET /sandbox/pushes` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushStage {
    /// Not tried yet.
    Queued,
    /// Tried and failed; tried again at the next flush.
    Retrying,
    Delivered,
    /// Failed `MAX_ATTEMPTS` times (or its app lost its target): dropped.
    GivenUp,
}

impl PushStage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            PushStage::Queued => "queued",
            PushStage::Retrying => "retrying",
            PushStage::Delivered => "delivered",
            PushStage::GivenUp => "given_up",
        }
    }
}

/// The push side of the world: targets by appid, the queue, and every push
/// queued since the last reset with its attempts and state (`log`, by id).
#[derive(Default)]
pub(crate) struct PushState {
    pub(crate) targets: std::collections::HashMap<String, Target>,
    pub(crate) queue: Vec<Pending>,
    pub(crate) log: Vec<Value>,
    pub(crate) nonce: u64,
}

impl std::fmt::Debug for PushState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushState")
            .field("targets", &self.targets.keys().collect::<Vec<_>>())
            .field("queued", &self.queue.len())
            .finish()
    }
}

/// One entry of a subscribe event, as the sandbox writes it.
pub(crate) struct Item<'a> {
    pub(crate) template_id: &'a str,
    pub(crate) fields: Vec<(&'static str, String)>,
}

impl PushState {
    /// Forgets queued and delivered pushes (a world reset); targets stay.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.log.clear();
    }

    pub(crate) fn has_target(&self, appid: &str) -> bool {
        self.targets.contains_key(appid)
    }

    /// Queues an event for the app, if it has a push target.
    pub(crate) fn queue(
        &mut self,
        appid: &str,
        event: &'static str,
        openid: &str,
        now: i64,
        items: &[Item<'_>],
    ) {
        let Some(target) = self.targets.get(appid) else {
            return;
        };
        let message = match target.format {
            PushFormat::Json => json_message(appid, event, openid, now, items),
            PushFormat::Xml => xml_message(appid, event, openid, now, items),
        };
        let id = self.log.len();
        self.log.push(json!({
            "id": id, "appid": appid, "event": event, "openid": openid,
            "attempts": 0, "state": PushStage::Queued.name(),
        }));
        self.queue.push(Pending {
            id,
            appid: appid.to_string(),
            event,
            openid: openid.to_string(),
            message,
            attempts: 0,
            signed: None,
        });
    }

    /// Pushes waiting for a flush: new ones and failed ones to retry.
    pub(crate) fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Records an attempt's outcome in the log: `result` carries the
    /// endpoint's `status` and `reply`, or an `error`.
    pub(crate) fn record(&mut self, p: &Pending, stage: PushStage, result: &Value) -> Value {
        let mut r = json!({
            "id": p.id, "appid": p.appid, "event": p.event, "openid": p.openid,
            "attempts": p.attempts, "state": stage.name(),
        });
        if let (Some(r), Some(extra)) = (r.as_object_mut(), result.as_object()) {
            r.extend(extra.clone());
        }
        if let Some(slot) = self.log.get_mut(p.id) {
            *slot = r.clone();
        }
        r
    }

    /// A subscribe message was delivered: its `subscribe_msg_sent_event`.
    pub(crate) fn sent(
        &mut self,
        appid: &str,
        openid: &str,
        template_id: &str,
        msgid: u64,
        now: i64,
    ) {
        let item = Item {
            template_id,
            fields: vec![
                ("MsgID", msgid.to_string()),
                ("ErrorCode", "0".into()),
                ("ErrorStatus", "success".into()),
            ],
        };
        self.queue(appid, "subscribe_msg_sent_event", openid, now, &[item]);
    }
}

pub(crate) fn to_user(appid: &str) -> String {
    format!("gh_{}", &appid[appid.len().saturating_sub(12)..])
}

fn block(event: &str) -> &'static str {
    match event {
        "subscribe_msg_popup_event" => "SubscribeMsgPopupEvent",
        "subscribe_msg_change_event" => "SubscribeMsgChangeEvent",
        _ => "SubscribeMsgSentEvent",
    }
}

fn json_message(appid: &str, event: &str, openid: &str, now: i64, items: &[Item<'_>]) -> String {
    let entries: Vec<Value> = items
        .iter()
        .map(|i| {
            let mut m = Map::new();
            m.insert("TemplateId".into(), json!(i.template_id));
            for (k, v) in &i.fields {
                m.insert((*k).into(), json!(v));
            }
            Value::Object(m)
        })
        .collect();
    let list = if entries.len() == 1 {
        entries[0].clone()
    } else {
        Value::Array(entries)
    };
    let mut doc = json!({
        "ToUserName": to_user(appid),
        "FromUserName": openid,
        "CreateTime": now.to_string(),
        "MsgType": "event",
        "Event": event,
    });
    if event == "subscribe_msg_sent_event" {
        doc[block(event)] = json!({ "List": list });
    } else {
        doc["List"] = list;
    }
    doc.to_string()
}

pub(crate) fn cdata(s: &str) -> String {
    format!("<![CDATA[{}]]>", s.replace("]]>", "]]]]><![CDATA[>"))
}

fn xml_message(appid: &str, event: &str, openid: &str, now: i64, items: &[Item<'_>]) -> String {
    let mut x = format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{now}</CreateTime><MsgType>{}</MsgType><Event>{}</Event><{}>",
        cdata(&to_user(appid)),
        cdata(openid),
        cdata("event"),
        cdata(event),
        block(event)
    );
    for i in items {
        x.push_str("<List><TemplateId>");
        x.push_str(&cdata(i.template_id));
        x.push_str("</TemplateId>");
        for (k, v) in &i.fields {
            let numeric = matches!(*k, "PopupScene" | "MsgID" | "ErrorCode");
            let v = if numeric { v.clone() } else { cdata(v) };
            x.push_str(&format!("<{k}>{v}</{k}>"));
        }
        x.push_str("</List>");
    }
    x.push_str(&format!("</{}></xml>", block(event)));
    x
}
