//! Messages: the event catalog, WeChat's keyword rules, placeholders, mapping
//! documents and rendering. Pure: no network, no store, no notifier; it imports
//! only the crate's error type.

mod catalog;
mod mapping;
mod placeholder;
mod render;
pub mod rules;

pub use catalog::catalog_json;
pub use mapping::{no_document, CompiledMappings, MappingRegistry, MessageKind, Overflow};
pub use render::{render_body, render_message, RenderedMessage};
