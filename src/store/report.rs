//! What the owner's reach report reads from the ledger's store: the grant
//! stock per subscribe template (each backend's `stock.rs`).

/// The grants of one subscribe template: buyers holding at least one use,
/// the uses they hold, and the uses that lapse before a given time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateStock {
    pub template_id: String,
    pub holders: u64,
    pub uses: u64,
    pub lapsing: u64,
}
