//! Mapping documents: per event, which WeChat template and which shop field
//! fills each keyword. Validated whole, compiled once, replaced atomically.

/// Loaded mappings per appid.
#[derive(Debug, Default)]
pub struct MappingRegistry {}
