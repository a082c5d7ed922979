//! The notifier's mapping calls: the event catalog, an app's mapping document
//! (load, read back) and rendering an event through it.

use std::sync::Arc;

use serde_json::{json, Value};

use super::Notifier;
use crate::error::{Error, Result};
use crate::message::{
    catalog_json, check_document, compile_json, no_document, parse_template_list, render_body,
    render_message, report_invalid, rules, Channel, CompiledMappings, LiveTemplate,
    RenderedMessage,
};
use crate::wechat::client::CallError;
use crate::wechat::http::Method;

const GETTEMPLATE: &str = "/wxaapi/newtmpl/gettemplate";

impl Notifier {
    /// The event catalog as JSON (events, fields, Chinese labels, types, examples).
    pub fn event_catalog(&self) -> &'static str {
        catalog_json()
    }

    /// Validates and compiles a mapping document and makes it the app's mapping.
    /// A document with any problem changes nothing; the error lists every problem
    /// with its JSON path.
    pub fn load_mappings(&self, appid: &str, json: &str) -> Result<()> {
        self.apps.get(appid)?;
        self.mappings.load(appid, json)
    }

    /// The warnings of the app's loaded document, each `path: what` (keywords
    /// whose type prefix is outside WeChat's tables, sent with the generic text
    /// checks). The mapping check reports them too.
    pub fn mapping_warnings(&self, appid: &str) -> Result<Vec<String>> {
        Ok(self.mappings_of(appid)?.warnings.clone())
    }

    /// The app's loaded mapping document, normalized (defaults filled in).
    pub fn get_mappings(&self, appid: &str) -> Result<String> {
        self.apps.get(appid)?;
        self.mappings.document(appid)
    }

    /// Renders `event` for the app from a payload
    /// `{"touser", "fields": {…}, "idempotency_key"}`.
    pub fn render_message(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> Result<RenderedMessage> {
        let mappings = self.mappings_of(appid)?;
        render_message(&mappings, appid, event, payload_json, false).map(|(msg, _)| msg)
    }

    /// `render_message` for `send`: a subscribe message's body comes as the
    /// POST's text (see `message::render_message`).
    pub(crate) fn render_for_send(
        &self,
        appid: &str,
        event: &str,
        payload_json: &str,
    ) -> Result<(RenderedMessage, Option<String>)> {
        let mappings = self.mappings_of(appid)?;
        render_message(&mappings, appid, event, payload_json, true)
    }

    /// The exact JSON body `send` would POST (without a legacy form_id): the
    /// same text as serializing `render_message(..).body`.
    pub fn render(&self, appid: &str, event: &str, payload_json: &str) -> Result<String> {
        if self.card_channel(appid, event) == Some(Channel::Card) {
            // A card-only event: the set_user_notify body (with check_json
            // where its status may activate the card).
            let update = self.render_card_update(appid, event, payload_json)?;
            return update.body(matches!(update.check, Some(Ok(_))));
        }
        let mappings = self.mappings_of(appid)?;
        render_body(&mappings, appid, event, payload_json)
    }

    /// The service card definitions (2001/2002/2003: statuses, which may
    /// activate, previous statuses, fields per status and their formats), as
    /// JSON for an admin screen; see `message::cards`.
    pub fn card_definitions(&self) -> &'static str {
        crate::message::cards::cards_json()
    }

    /// Every keyword type with its rule (limit, allowed characters, examples,
    /// source), as JSON for an admin screen; see `message::rules::types_json`.
    pub fn keyword_types(&self) -> &'static str {
        rules::types_json()
    }

    /// Checks a mapping document (`None`: the app's loaded one) against the
    /// app's live templates, read with `GET /wxaapi/newtmpl/gettemplate` and
    /// kept `TEMPLATE_TTL_MS` on the notifier's clock (`{"refresh": true}` in
    /// `options_json` reads them again). Reports every problem WeChat would
    /// refuse at send time, and warnings, each with its JSON path:
    /// `{"appid", "ok", "problems": [{"path", "kind", "message"}], "warnings": […],
    /// "templates": {"count", "read_at_ms", "cached"} | null}`. A document
    /// that does not load reports its own problems (kind `invalid_mapping`)
    /// without reading the templates. Nothing is loaded or changed.
    pub fn check_mappings(
        &self,
        appid: &str,
        mappings_json: Option<&str>,
        options_json: Option<&str>,
    ) -> Result<String> {
        let app = self.apps.get(appid)?;
        let refresh = check_options(options_json)?;
        let compiled = match mappings_json {
            Some(json) => match compile_json(json)? {
                Ok(doc) => Arc::new(doc),
                Err(problems) => {
                    let report = report_invalid(&problems);
                    return Ok(report_json(appid, &report, Value::Null));
                }
            },
            None => self.mappings.get(appid).ok_or_else(|| no_document(appid))?,
        };
        let now = self.clock.now_ms();
        let cached = if refresh {
            None
        } else {
            self.templates.fresh(appid, now)
        };
        let (list, read_at, from_cache) = match cached {
            Some((list, at)) => (list, at, true),
            None => {
                let reply = self
                    .call_wechat(&app, Method::Get, GETTEMPLATE, None)
                    .map_err(|call| match call {
                        // A read changes nothing at WeChat: no answer is a network failure.
                        CallError::MaybeDelivered(m) => Error::Network(m),
                        other => other.into_error(),
                    })?;
                if let Some(e) = reply.error() {
                    return Err(e);
                }
                let list: Arc<Vec<LiveTemplate>> = Arc::new(parse_template_list(&reply.json)?);
                self.templates.store(appid, now, list.clone());
                self.learn_template_types(appid, &list);
                (list, now, false)
            }
        };
        let report = check_document(&compiled, &list);
        let templates = json!({"count": list.len(), "read_at_ms": read_at, "cached": from_cache});
        Ok(report_json(appid, &report, templates))
    }

    pub(crate) fn mappings_of(&self, appid: &str) -> Result<Arc<CompiledMappings>> {
        self.apps.get(appid)?;
        self.mappings.get(appid).ok_or_else(|| no_document(appid))
    }
}

/// `{"refresh": bool}` or nothing: whether to read the templates again.
fn check_options(options_json: Option<&str>) -> Result<bool> {
    let Some(text) = options_json else {
        return Ok(false);
    };
    let v: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("options_json is not valid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(Error::invalid(
            "options_json must be an object like {\"refresh\": true}",
        ));
    };
    if let Some(key) = obj.keys().find(|k| *k != "refresh") {
        return Err(Error::invalid(format!(
            "options_json: unknown field {key:?} (fields: refresh)"
        )));
    }
    match obj.get("refresh") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Error::invalid(
            "options_json: refresh must be true or false",
        )),
    }
}

fn report_json(appid: &str, report: &crate::message::CheckReport, templates: Value) -> String {
    json!({
        "appid": appid,
        "ok": report.ok,
        "problems": report.problems,
        "warnings": report.warnings,
        "templates": templates,
    })
    .to_string()
}
