//! Messages: the event catalog, WeChat's keyword rules, placeholders, mapping
//! documents, rendering and the check of a mapping against the app's templates.
//! Pure: no network, no store, no notifier; it imports only the crate's error type.

mod card_mapping;
pub mod cards;
mod catalog;
mod check;
mod mapping;
mod placeholder;
mod render;
pub mod rules;

pub use card_mapping::{render_card, CardUpdate, Channel};
pub use catalog::catalog_json;
pub use check::{
    check_document, parse_template_list, report_invalid, CheckReport, LiveTemplate, TemplateCache,
    TEMPLATE_TTL_MS,
};
pub use mapping::{
    compile_json, no_document, CompiledMappings, MappingRegistry, MessageKind, Overflow,
};
pub use render::{render_body, render_message, RenderedMessage};
