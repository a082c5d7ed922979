//! The notifier's mapping calls: the event catalog, an app's mapping document
//! (load, read back) and rendering an event through it.

use std::sync::Arc;

use super::Notifier;
use crate::error::Result;
use crate::message::{
    catalog_json, no_document, render_body, render_message, CompiledMappings, RenderedMessage,
};

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
        let mappings = self.mappings_of(appid)?;
        render_body(&mappings, appid, event, payload_json)
    }

    fn mappings_of(&self, appid: &str) -> Result<Arc<CompiledMappings>> {
        self.apps.get(appid)?;
        self.mappings.get(appid).ok_or_else(|| no_document(appid))
    }
}
