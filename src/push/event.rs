//! The events of a push body, normalized from either format.
//!
//! Shapes as WeChat sends them (subscribe-message guide, "订阅消息事件推送"),
//! and as its users found them:
//! - XML nests the entries in `<SubscribeMsgPopupEvent>` (or `…ChangeEvent`,
//!   `…SentEvent`), one `<List>` per template.
//! - JSON puts `List` at the top in the guide's examples, but nested under
//!   `SubscribeMsgSentEvent` in pushes users received (royalrick/weapp#63).
//! - JSON's `List` is an object when there is one entry and an array when
//!   there are several (binarywang/WxJava#2477, fudiwei/DotNetCore.SKIT.FlurlHttpClient.Wechat#147).
//! - JSON's `CreateTime`, `PopupScene`, `MsgID` and `ErrorCode` come as strings
//!   in the guide's examples; numbers are read too.
//! - `SubscribeStatusString` is `accept` or `reject`; newer clients also send
//!   `acceptWithAudio`, `acceptWithAlert` and `acceptWithForcePush` (strong
//!   reminders, developer community): every `accept…` is an acceptance.

use serde_json::{Map, Value};

use super::{xml, MAX_BODY_BYTES};
use crate::error::{Error, Result};

/// Which event a push carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// `subscribe_msg_popup_event`: the buyer's choice in the subscribe popup.
    Popup,
    /// `subscribe_msg_change_event`: the buyer changed a template in the settings.
    Change,
    /// `subscribe_msg_sent_event`: the result of a send.
    Sent,
    /// Anything else (a customer-service message, another event).
    Other,
}

impl EventKind {
    fn of(event: &str) -> EventKind {
        match event {
            "subscribe_msg_popup_event" => EventKind::Popup,
            "subscribe_msg_change_event" => EventKind::Change,
            "subscribe_msg_sent_event" => EventKind::Sent,
            _ => EventKind::Other,
        }
    }

    /// The element (XML) or key (JSON) that wraps the entries.
    fn block(self) -> Option<&'static str> {
        match self {
            EventKind::Popup => Some("SubscribeMsgPopupEvent"),
            EventKind::Change => Some("SubscribeMsgChangeEvent"),
            EventKind::Sent => Some("SubscribeMsgSentEvent"),
            EventKind::Other => None,
        }
    }
}

/// One template of a subscribe event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub template_id: String,
    /// `SubscribeStatusString` (popup, change) or `ErrorStatus` (sent).
    pub status: String,
    /// Popup: where the popup came from.
    pub popup_scene: Option<String>,
    /// Sent: the msgid the send got.
    pub msg_id: Option<String>,
    /// Sent: 0 when delivered.
    pub error_code: Option<i64>,
}

/// One push, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushMessage {
    pub kind: EventKind,
    /// `Event`, or `MsgType` when the push is not an event.
    pub event: String,
    pub msg_type: String,
    /// The mini program's original id (`ToUserName`).
    pub to_user: String,
    /// The buyer's openid (`FromUserName`).
    pub openid: String,
    /// Unix seconds (`CreateTime`); 0 when a non-subscribe push has none.
    pub create_time: i64,
    pub entries: Vec<Entry>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::invalid(msg.into())
}

/// How an XML body starts, and a JSON one.
const XML_OPEN: &str = "<";
const JSON_OPEN: &str = "{";

/// The body as a tree, from its first character: XML_OPEN or JSON_OPEN.
/// Either format is read whatever the app registered, so a switch in the
/// admin takes effect without registering again.
fn tree(body: &str, what: &str) -> Result<Map<String, Value>> {
    if body.len() > MAX_BODY_BYTES {
        return Err(bad(format!("{what} is longer than {MAX_BODY_BYTES} bytes")));
    }
    let trimmed = body.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    let value = if trimmed.starts_with(XML_OPEN) {
        xml::to_tree(trimmed).map_err(|e| bad(format!("{what}: {e}")))?
    } else if trimmed.starts_with(JSON_OPEN) {
        serde_json::from_str(trimmed).map_err(|e| bad(format!("{what} is not valid JSON: {e}")))?
    } else {
        return Err(bad(format!(
            "{what} is neither XML nor JSON (it starts with neither '{XML_OPEN}' nor '{JSON_OPEN}')"
        )));
    };
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(bad(format!("{what} is not an object"))),
    }
}

/// A field that holds text: a string, or a number written out.
fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(bad(format!("`{key}` must be text or a number"))),
    }
}

fn required(map: &Map<String, Value>, key: &str, what: &str) -> Result<String> {
    match text(map, key)? {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(bad(format!("{what} has no `{key}`"))),
    }
}

fn integer(map: &Map<String, Value>, key: &str, what: &str) -> Result<Option<i64>> {
    match text(map, key)? {
        None => Ok(None),
        Some(s) => s
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| bad(format!("{what}: `{key}` must be a whole number, got {s:?}"))),
    }
}

/// The safe-mode envelope: the ciphertext in `Encrypt`.
pub fn parse_envelope(body: &str) -> Result<String> {
    let map = tree(body, "body")?;
    required(&map, "Encrypt", "the safe-mode body")
}

/// The event of a (plain or decrypted) push body.
pub fn parse_message(body: &str) -> Result<PushMessage> {
    let map = tree(body, "message")?;
    let msg_type = text(&map, "MsgType")?.unwrap_or_default();
    let event = text(&map, "Event")?.unwrap_or_default();
    let kind = if msg_type == "event" {
        EventKind::of(&event)
    } else {
        EventKind::Other
    };
    let to_user = text(&map, "ToUserName")?.unwrap_or_default();
    if kind == EventKind::Other {
        return Ok(PushMessage {
            kind,
            event: if event.is_empty() {
                msg_type.clone()
            } else {
                event
            },
            msg_type,
            to_user,
            openid: text(&map, "FromUserName")?.unwrap_or_default(),
            create_time: integer(&map, "CreateTime", "message")
                .unwrap_or(None)
                .unwrap_or(0),
            entries: Vec::new(),
        });
    }
    let openid = required(&map, "FromUserName", &event)?;
    let create_time = integer(&map, "CreateTime", &event)?
        .ok_or_else(|| bad(format!("{event} has no `CreateTime`")))?;
    let block = kind.block().unwrap_or_default();
    let list = match map.get(block) {
        Some(Value::Object(inner)) => inner.get("List"),
        Some(_) => return Err(bad(format!("{event}: `{block}` must hold a `List`"))),
        None => map.get("List"),
    }
    .ok_or_else(|| bad(format!("{event} has no `List`")))?;
    let items: Vec<&Value> = match list {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    if items.is_empty() {
        return Err(bad(format!("{event} has an empty `List`")));
    }
    let entries = items
        .into_iter()
        .map(|item| entry(kind, &event, item))
        .collect::<Result<Vec<_>>>()?;
    Ok(PushMessage {
        kind,
        event,
        msg_type,
        to_user,
        openid,
        create_time,
        entries,
    })
}

fn entry(kind: EventKind, event: &str, item: &Value) -> Result<Entry> {
    let Value::Object(item) = item else {
        return Err(bad(format!("{event}: each `List` entry must be an object")));
    };
    let what = format!("{event} entry");
    let template_id = required(item, "TemplateId", &what)?;
    Ok(match kind {
        EventKind::Sent => {
            // `ErrorCode` decides a delivery; either it or `ErrorStatus` must be there.
            let error_code = integer(item, "ErrorCode", &what)?;
            let status = match error_code {
                Some(_) => text(item, "ErrorStatus")?.unwrap_or_default(),
                None => required(item, "ErrorStatus", &what)?,
            };
            Entry {
                template_id,
                status,
                popup_scene: None,
                msg_id: Some(required(item, "MsgID", &what)?),
                error_code,
            }
        }
        _ => Entry {
            template_id,
            status: required(item, "SubscribeStatusString", &what)?,
            popup_scene: text(item, "PopupScene")?,
            msg_id: None,
            error_code: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The guide's XML example of a popup event (two templates).
    const POPUP_XML: &str = r#"<xml>
    <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
    <FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
    <CreateTime>1610969440</CreateTime>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[subscribe_msg_popup_event]]></Event>
    <SubscribeMsgPopupEvent>
        <List>
            <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
            <SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
        <List>
            <TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
            <SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
            <PopupScene>2</PopupScene>
        </List>
    </SubscribeMsgPopupEvent>
</xml>"#;

    #[test]
    fn popup_xml_as_the_guide_shows_it() {
        let m = parse_message(POPUP_XML).unwrap();
        assert_eq!(m.kind, EventKind::Popup);
        assert_eq!(m.openid, "otFpruAK8D-E6EfStSYonYSBZ8_4");
        assert_eq!(m.create_time, 1610969440);
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.entries[0].status, "accept");
        assert_eq!(m.entries[0].popup_scene.as_deref(), Some("2"));
        assert_eq!(
            m.entries[1].template_id,
            "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI"
        );
        assert_eq!(m.entries[1].status, "reject");
    }

    #[test]
    fn popup_json_with_list_as_array_or_object() {
        // The guide's JSON example: strings for the numbers, `List` an array.
        let m = parse_message(
            r#"{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5OI1Uej6Xixw1lA2H7XDVbc","CreateTime":"1620973045","MsgType":"event","Event":"subscribe_msg_popup_event","List":[{"TemplateId":"hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68","SubscribeStatusString":"accept","PopupScene":"0"}]}"#,
        )
        .unwrap();
        assert_eq!((m.create_time, m.entries.len()), (1620973045, 1));
        // One entry as an object (WxJava#2477), numbers as numbers.
        let m = parse_message(
            r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1620973045,"MsgType":"event","Event":"subscribe_msg_change_event","List":{"TemplateId":"T","SubscribeStatusString":"reject"}}"#,
        )
        .unwrap();
        assert_eq!(m.kind, EventKind::Change);
        assert_eq!(m.entries[0].status, "reject");
    }

    #[test]
    fn sent_event_nested_or_not() {
        // As received by users (royalrick/weapp#63): nested, List an object.
        let m = parse_message(
            r#"{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5PHRGBQYmeNyfG064wEFVpQ","CreateTime":"1620963428","MsgType":"event","Event":"subscribe_msg_sent_event","SubscribeMsgSentEvent":{"List":{"TemplateId":"BEwX0BO-T3MqK3Uc5oTU3CGBqzjpndk2jzUf7VfExd8","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"}}}"#,
        )
        .unwrap();
        assert_eq!(m.kind, EventKind::Sent);
        assert_eq!(m.entries[0].msg_id.as_deref(), Some("1864323726461255680"));
        assert_eq!(m.entries[0].error_code, Some(0));
        // A msgid beyond 2^53 as a JSON number keeps every digit.
        let m = parse_message(
            r#"{"FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_sent_event","List":[{"TemplateId":"T","MsgID":2794188253209100289,"ErrorCode":10004,"ErrorStatus":"failed:user block"}]}"#,
        )
        .unwrap();
        assert_eq!(m.entries[0].msg_id.as_deref(), Some("2794188253209100289"));
        assert_eq!(m.entries[0].status, "failed:user block");
        let x = parse_message(
            "<xml><FromUserName>o1</FromUserName><CreateTime>1676138869</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>T</TemplateId><MsgID>2794188253209100289</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>",
        )
        .unwrap();
        assert_eq!(x.entries[0].msg_id.as_deref(), Some("2794188253209100289"));
    }

    #[test]
    fn other_pushes_are_read_not_refused() {
        let m = parse_message(
            r#"{"ToUserName":"gh_1","FromUserName":"o1","CreateTime":1,"MsgType":"text","Content":"hi"}"#,
        )
        .unwrap();
        assert_eq!((m.kind, m.event.as_str()), (EventKind::Other, "text"));
        let m = parse_message(
            "<xml><MsgType>event</MsgType><Event>user_enter_tempsession</Event></xml>",
        )
        .unwrap();
        assert_eq!(
            (m.kind, m.event.as_str()),
            (EventKind::Other, "user_enter_tempsession")
        );
    }

    #[test]
    fn malformed_bodies_say_what_is_wrong() {
        let msg = |s: &str| parse_message(s).unwrap_err().to_string();
        assert!(msg("hello").contains("neither XML nor JSON"));
        assert!(msg("{").contains("not valid JSON"));
        assert!(msg("<xml>").contains("not valid XML") || msg("<xml>").contains("ends inside"));
        let head = r#""FromUserName":"o1","CreateTime":1,"MsgType":"event","Event":"subscribe_msg_popup_event""#;
        assert!(msg(&format!("{{{head}}}")).contains("has no `List`"));
        assert!(msg(&format!("{{{head},\"List\":[]}}")).contains("empty `List`"));
        assert!(msg(&format!("{{{head},\"List\":[1]}}")).contains("must be an object"));
        assert!(msg(&format!(
            "{{{head},\"List\":{{\"SubscribeStatusString\":\"accept\"}}}}"
        ))
        .contains("has no `TemplateId`"));
        assert!(msg(r#"{"CreateTime":"x","MsgType":"event","Event":"subscribe_msg_change_event","FromUserName":"o"}"#)
            .contains("whole number"));
        assert!(
            msg(r#"{"MsgType":"event","Event":"subscribe_msg_change_event","CreateTime":1}"#)
                .contains("no `FromUserName`")
        );
        assert!(msg(&" ".repeat(MAX_BODY_BYTES + 1)).contains("longer than"));
        assert!(msg("[1]").contains("neither") || msg("[1]").contains("not an object"));
        assert_eq!(
            parse_envelope(r#"{"ToUserName":"gh","Encrypt":"abc"}"#).unwrap(),
            "abc"
        );
        assert_eq!(
            parse_envelope(
                "<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>"
            )
            .unwrap(),
            "abc"
        );
        assert!(parse_envelope("{}")
            .unwrap_err()
            .to_string()
            .contains("no `Encrypt`"));
    }
}
