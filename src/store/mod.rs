//! Where permits, permit leases and send's idempotency records live. Every store offers
//! the same atomic operations, so the ledger's rules are written once and a shop
//! picks memory (one process), SQLite (one host) or Redis (several hosts).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::config::StoreSpec;
use crate::error::{Error, Result};
use crate::secret::Secret;

mod cards;
mod cards_memory;
mod cards_redis;
mod cards_sqlite;
mod memory;
mod redis;
mod report;
mod sqlite;

pub use cards::{CardClaim, CardStore};

/// How long a permit lease that ran out is remembered after its use returned.
pub(crate) const RETURNED_KEEP_MS: i64 = 24 * 3600 * 1000;

/// A fresh lease id: a keyed hash of this process, the time and a counter,
/// so that processes forked from one parent (which share its random state)
/// still draw apart, and an old lease's late settlement never meets a new one.
pub(crate) fn new_lease_id(now_ms: i64) -> i64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let drawn = DRAWN.fetch_add(1, Ordering::Relaxed);
    let hash = KEYS
        .get_or_init(Default::default)
        .hash_one((std::process::id(), now_ms, drawn));
    // Positive and never 0.
    (hash >> 1).max(1) as i64
}

pub use memory::MemoryStore;
pub use redis::RedisStore;
pub(crate) use redis::{split_prefix, RedisClient, RedisLink, DEFAULT_PREFIX};
pub use report::TemplateStock;
pub use sqlite::SqliteStore;

/// How long a stored token outlives its expiry before the store forgets it
/// (Redis TTL); only a late drop_if could still ask for it.
pub(crate) const TOKEN_KEEP_MS: i64 = 3600 * 1000;

/// Seconds a form_id or prepay_id stays valid after its creation.
pub(crate) const LEGACY_VALID_SECS: i64 = 7 * 24 * 3600;
/// Uses a paid prepay_id gives.
pub(crate) const PREPAY_USES: u32 = 3;
/// How long a finished send's idempotency record is kept.
pub(crate) const IDEMPOTENCY_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;
/// Subscribe grants one template may accumulate for one user, whatever the
/// setting says.
pub(crate) const MAX_SUBSCRIBE_USES: u32 = 100_000;

/// What kind of right a permit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// One-time subscription grants for one template; accepts add up.
    Subscribe,
    /// A legacy form submit id: one use, seven days.
    FormId,
    /// A legacy WeChat Pay prepay id: three uses once paid, seven days.
    PrepayId,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Subscribe => "subscribe",
            Kind::FormId => "form_id",
            Kind::PrepayId => "prepay_id",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "subscribe" => Some(Kind::Subscribe),
            "form_id" => Some(Kind::FormId),
            "prepay_id" => Some(Kind::PrepayId),
            _ => None,
        }
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            Kind::Subscribe => 0,
            Kind::FormId => 1,
            Kind::PrepayId => 2,
        }
    }

    pub(crate) fn from_code(code: i64) -> Result<Kind> {
        match code {
            0 => Ok(Kind::Subscribe),
            1 => Ok(Kind::FormId),
            2 => Ok(Kind::PrepayId),
            other => Err(Error::store(format!(
                "unknown permit kind {other} in store"
            ))),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A checked permit to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPermit {
    pub openid: String,
    pub kind: Kind,
    /// The template_id of a subscribe grant, the form_id or the prepay_id.
    pub value: String,
    /// The order a prepay_id belongs to.
    pub order_sn: Option<String>,
    pub paid: bool,
    /// Uses this add brings (the count of a subscribe grant, 1 or 3 otherwise).
    pub uses: u32,
    /// Most uses a subscribe grant may hold once this add is counted in
    /// (`subscribe_cap_per_template`); taps beyond it are dropped.
    pub max_uses: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds from which the permit is no longer usable; `None`: never.
    pub expires_at: Option<i64>,
}

/// What an add changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// A permit the store did not hold.
    Stored,
    /// The same form_id / prepay_id again: nothing changed.
    Duplicate,
    /// A known prepay_id is now marked paid.
    MarkedPaid,
    /// More uses for a subscribe grant the user already had.
    Counted,
}

/// What a send needs a permit for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermitRequest {
    /// A subscribe message for this template.
    Subscribe { template_id: String },
    /// A legacy template message: the order's paid prepay_id first, then the
    /// form_id that expires soonest.
    Legacy { order_sn: Option<String> },
}

impl PermitRequest {
    pub fn subscribe(template_id: impl Into<String>) -> Self {
        PermitRequest::Subscribe {
            template_id: template_id.into(),
        }
    }

    pub fn legacy(order_sn: Option<&str>) -> Self {
        PermitRequest::Legacy {
            order_sn: order_sn.map(str::to_string),
        }
    }
}

/// A use of a permit taken for one send and not yet settled. Until it is
/// consumed, given back or discarded, nobody else can take that use; when it
/// expires the use returns by itself, so a crashed process loses nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: u64,
    pub appid: String,
    pub openid: String,
    pub kind: Kind,
    /// The template_id (subscribe), form_id or prepay_id to send with.
    pub value: String,
    pub order_sn: Option<String>,
    /// Unix ms after which the use returns to the ledger.
    pub expires_at_ms: i64,
}

/// What the user still has after a consume: uses left for that template
/// (subscribe) or of that kind (form_id, paid prepay_id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub kind: Kind,
    pub uses: u64,
}

/// The state of an idempotency key when a send claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClaim {
    /// Nobody sent with this key (or an earlier attempt was released or its
    /// claim ran out): the caller owns it now.
    Fresh,
    /// Another send with this key is under way.
    InFlight,
    /// A send with this key finished; its outcome JSON.
    Done(String),
}

/// What claiming an idempotency key together with taking a permit found.
#[derive(Debug)]
pub enum ClaimedTake {
    /// The key is the caller's, with the take's result. Without a lease (no
    /// permit, or the take failed) the claim is not kept.
    Fresh(Result<Option<Lease>>),
    /// Another send with this key is under way; nothing was taken.
    InFlight,
    /// A send with this key finished; its outcome JSON. Nothing was taken.
    Done(String),
}

/// What spending a lease together with recording its send's outcome did:
/// each part's result, as if they had run one after the other.
#[derive(Debug)]
pub struct SpentAndRecorded {
    pub spent: Result<Remaining>,
    pub recorded: Result<()>,
    /// The outcome JSON that was (or was to be) recorded.
    pub outcome: String,
}

/// Usable stock, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermitStats {
    /// Subscribe uses by template_id.
    pub subscribe: std::collections::BTreeMap<String, u64>,
    pub form_id_permits: u64,
    pub prepay_id_permits: u64,
    /// Uses of paid prepay_ids.
    pub prepay_id_uses: u64,
    /// prepay_ids still waiting for payment.
    pub prepay_id_unpaid: u64,
    /// Uses taken and not yet settled.
    pub leased: u64,
    /// Expired permits not yet purged.
    pub expired: u64,
    /// Unix seconds of the soonest expiry of a usable permit.
    pub soonest_expiry: Option<i64>,
}

/// The operations every store performs atomically. Times come from the
/// ledger's clock (unix ms), never from the store's host, so that tests move a
/// clock instead of sleeping.
pub trait Store: Send + Sync + fmt::Debug {
    /// What `configure` said, for messages.
    fn describe(&self) -> String;

    /// Records a permit; at most `cap` form_ids and `cap` prepay_ids are kept
    /// per user, the oldest dropped first.
    fn add(&self, appid: &str, permit: &NewPermit, now_ms: i64, cap: usize) -> Result<Added>;

    /// Takes one use of the best permit for the request, leased until
    /// `now_ms + lease_ms`.
    fn take(
        &self,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Lease>>;

    /// The leased use is spent. A lease that already ran out still spends a use.
    fn consume(&self, lease: &Lease, now_ms: i64) -> Result<Remaining>;

    /// The leased use returns to the permit.
    fn give_back(&self, lease: &Lease) -> Result<()>;

    /// The whole permit is dead: all its uses go.
    fn discard(&self, lease: &Lease) -> Result<()>;

    fn stats(&self, appid: &str, openid: Option<&str>, now_ms: i64) -> Result<PermitStats>;

    /// The buyer withdrew the template (WeChat's push): the subscribe grant
    /// goes with all its uses, as a discard does, and its open leases are
    /// forgotten (their send settles against nothing). Returns how many
    /// unleased uses went.
    fn drop_grants(&self, appid: &str, openid: &str, template_id: &str) -> Result<u64>;

    /// Removes expired permits of the app (and returns how many), returns
    /// expired leases and forgets expired idempotency records. With
    /// `grants_before` (unix seconds), subscribe grants whose last accept was
    /// before it go too (none of their uses is leased).
    fn purge(&self, appid: &str, now_ms: i64, grants_before: Option<i64>) -> Result<u64>;

    /// Per subscribe template of the app: the buyers holding a usable grant,
    /// their uses, and the uses of grants last accepted before `accepted_before`
    /// (unix seconds: those `subscribe_max_age_days` purges soon). For the
    /// owner's report; each backend's lives in its `stock.rs`. A store made
    /// for tests of other concepts keeps no grants to count.
    fn template_stock(
        &self,
        appid: &str,
        _now_ms: i64,
        _accepted_before: Option<i64>,
    ) -> Result<Vec<TemplateStock>> {
        Err(Error::internal(format!(
            "the {} store cannot count the grants of {appid}",
            self.describe()
        )))
    }

    fn idempotency_claim(&self, key: &str, now_ms: i64, lease_ms: i64) -> Result<KeyClaim>;

    fn idempotency_complete(&self, key: &str, outcome: &str, now_ms: i64) -> Result<()>;

    fn idempotency_release(&self, key: &str) -> Result<()>;

    /// Claims `key` and, when it is fresh, takes a permit as `take` does; a
    /// claim that got no lease is released. A store that can do both in one
    /// atomic step overrides this to spare a write per send.
    #[allow(clippy::too_many_arguments)]
    fn claim_and_take(
        &self,
        key: &str,
        claim_ms: i64,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<ClaimedTake> {
        claim_and_take_in_steps(
            self, key, claim_ms, appid, openid, request, now_ms, lease_ms,
        )
    }

    /// Consumes the lease, then records under `key` the outcome `outcome`
    /// writes (given what the consume left, `None` when it failed). A store
    /// that can do both in one atomic step overrides this. `outcome` may be
    /// called more than once (Redis writes it first with the uses it expects
    /// to be left); the text returned and recorded is the last call's.
    fn consume_and_complete(
        &self,
        lease: &Lease,
        key: &str,
        outcome: &mut dyn FnMut(Option<&Remaining>) -> String,
        now_ms: i64,
    ) -> SpentAndRecorded {
        consume_and_complete_in_steps(self, lease, key, outcome, now_ms)
    }

    /// The access tokens this store shares between processes; `None` for a
    /// store that shares nothing (memory: each process keeps its own).
    fn tokens(&self) -> Option<&dyn TokenStore> {
        None
    }
}

/// `Store::claim_and_take` as two operations of `store`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn claim_and_take_in_steps<S: Store + ?Sized>(
    store: &S,
    key: &str,
    claim_ms: i64,
    appid: &str,
    openid: &str,
    request: &PermitRequest,
    now_ms: i64,
    lease_ms: i64,
) -> Result<ClaimedTake> {
    match store.idempotency_claim(key, now_ms, claim_ms)? {
        KeyClaim::Done(outcome) => Ok(ClaimedTake::Done(outcome)),
        KeyClaim::InFlight => Ok(ClaimedTake::InFlight),
        KeyClaim::Fresh => {
            let taken = store.take(appid, openid, request, now_ms, lease_ms);
            if !matches!(taken, Ok(Some(_))) {
                // The send ends here; a failed release lapses with the claim.
                let _ = store.idempotency_release(key);
            }
            Ok(ClaimedTake::Fresh(taken))
        }
    }
}

/// `Store::consume_and_complete` as two operations of `store`.
pub(crate) fn consume_and_complete_in_steps<S: Store + ?Sized>(
    store: &S,
    lease: &Lease,
    key: &str,
    outcome: &mut dyn FnMut(Option<&Remaining>) -> String,
    now_ms: i64,
) -> SpentAndRecorded {
    let spent = store.consume(lease, now_ms);
    let text = outcome(spent.as_ref().ok());
    let recorded = store.idempotency_complete(key, &text, now_ms);
    SpentAndRecorded {
        spent,
        recorded,
        outcome: text,
    }
}

/// An app's access token as the store keeps it for every process. Times are
/// unix ms from the clock of the process that fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedToken {
    pub token: Secret,
    pub expires_at_ms: i64,
    pub refresh_at_ms: i64,
}

/// What a process asking for the shared token is to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenTurn {
    /// The shared token is fresh: use it, fetch nothing.
    Fresh(SharedToken),
    /// This holder has the fetch lease; `current` is the token kept so far.
    Fetch { current: Option<SharedToken> },
    /// Another holder fetches until `until_ms`; `current` is the token kept
    /// so far, which may still be usable while it refreshes.
    Wait {
        until_ms: i64,
        current: Option<SharedToken>,
    },
}

/// One access token per app and token mode, and a short fetch lease so that one
/// process fetches while the others wait for its publication. Every
/// operation is atomic in the store. Stores put no token into an error.
pub trait TokenStore {
    /// The shared token if fresh at `now_ms`; otherwise the fetch lease for
    /// `holder` until `now_ms + lease_ms` when nobody holds it (or the
    /// holder's fetch lease ran out); otherwise when the current holder's ends.
    fn token_turn(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<TokenTurn>;

    /// Stores a freshly fetched token and ends `holder`'s fetch lease.
    fn token_publish(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        token: &SharedToken,
        now_ms: i64,
    ) -> Result<()>;

    /// Ends `holder`'s fetch lease without a token (its fetch failed).
    fn token_release(&self, appid: &str, mode: &str, holder: &str) -> Result<()>;

    /// Drops the shared token only if it is still `failed`; whether it did.
    fn token_drop_if(&self, appid: &str, mode: &str, failed: &str) -> Result<bool>;
}

/// Opens the store a `configure` document names.
pub fn open(spec: &StoreSpec) -> Result<Arc<dyn Store>> {
    Ok(match spec {
        StoreSpec::Memory => Arc::new(MemoryStore::default()),
        StoreSpec::Sqlite(path) => Arc::new(SqliteStore::open(path)?),
        StoreSpec::Redis(url) => Arc::new(RedisStore::open(url)?),
    })
}

/// Opens the card store the settings name (service cards: `cards.rs`).
pub fn open_cards(spec: &StoreSpec) -> Result<Arc<dyn CardStore>> {
    Ok(match spec {
        StoreSpec::Memory => Arc::new(cards_memory::MemoryCards::default()),
        StoreSpec::Sqlite(path) => Arc::new(cards_sqlite::SqliteCards::open(path)?),
        StoreSpec::Redis(url) => Arc::new(cards_redis::RedisCards::open(url)?),
    })
}

/// The store a concept (the ledger, the outbox) keeps its records in, and the
/// rule both follow: once a record went in, the store cannot be switched (the
/// records would be stranded in the old one).
pub struct StoreSlot<S: ?Sized> {
    active: RwLock<(StoreSpec, Arc<S>)>,
    used: AtomicBool,
    /// The process that put the records in: a memory store's records stay with
    /// it, so a child forked from it may switch to a shared store.
    used_by: AtomicU32,
    /// What went in, and the call that puts it there, for the refusal.
    records: &'static str,
    first_call: &'static str,
}

impl<S: ?Sized> fmt::Debug for StoreSlot<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSlot")
            .field("spec", &self.active.read().0)
            .field("used", &self.used.load(Ordering::SeqCst))
            .finish()
    }
}

impl<S: ?Sized> StoreSlot<S> {
    /// A slot holding `store` (the memory store) that refuses a switch once
    /// `records` went in through `first_call`.
    pub fn new(store: Arc<S>, records: &'static str, first_call: &'static str) -> Self {
        StoreSlot {
            active: RwLock::new((StoreSpec::Memory, store)),
            used: AtomicBool::new(false),
            used_by: AtomicU32::new(0),
            records,
            first_call,
        }
    }

    /// The store in force.
    pub fn current(&self) -> Arc<S> {
        self.active.read().1.clone()
    }

    /// The setting in force.
    pub fn spec(&self) -> StoreSpec {
        self.active.read().0.clone()
    }

    /// The store in force, for a call that puts a record in: from then on a
    /// switch is refused. The store is read and the mark set under one lock,
    /// so a concurrent switch happens either before this call or not at all.
    pub fn for_records(&self) -> Arc<S> {
        let active = self.active.read();
        self.used.store(true, Ordering::SeqCst);
        self.used_by.store(std::process::id(), Ordering::SeqCst);
        active.1.clone()
    }

    /// Refuses `next` when it differs from the store in force and records
    /// went in.
    pub fn check_switch(&self, next: &StoreSpec) -> Result<()> {
        self.refusal(&self.active.read().0, next)
    }

    /// Opens `next` with `open` when it differs from the store in force; a
    /// refused switch or a store that cannot be opened changes nothing.
    pub fn switch(
        &self,
        next: &StoreSpec,
        open: impl FnOnce(&StoreSpec) -> Result<Arc<S>>,
    ) -> Result<()> {
        if self.active.read().0 == *next {
            return Ok(());
        }
        let mut active = self.active.write();
        if active.0 == *next {
            return Ok(());
        }
        self.refusal(&active.0, next)?;
        *active = (next.clone(), open(next)?);
        Ok(())
    }

    fn refusal(&self, current: &StoreSpec, next: &StoreSpec) -> Result<()> {
        let parents_memory = *current == StoreSpec::Memory
            && self.used_by.load(Ordering::SeqCst) != std::process::id();
        if current != next && self.used.load(Ordering::SeqCst) && !parents_memory {
            return Err(Error::invalid(format!(
                "store cannot change from {:?} to {:?} after {} (they would be stranded); configure the store before the first {}",
                current.to_string(),
                next.to_string(),
                self.records,
                self.first_call
            )));
        }
        Ok(())
    }
}

/// The process a memory store (ledger or outbox) belongs to. A process forked
/// after the store was made inherits a copy of its records: acting on that copy
/// would send the parent's queued messages again and spend grants twice, so a
/// forked child refuses every call on it and says what to configure instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerProcess(u32);

impl Default for OwnerProcess {
    fn default() -> Self {
        OwnerProcess::current()
    }
}

impl OwnerProcess {
    /// This process.
    pub fn current() -> Self {
        OwnerProcess(std::process::id())
    }

    /// Refuses use from a forked child of the owner.
    pub fn check(self) -> Result<()> {
        let me = std::process::id();
        if self.0 == me {
            return Ok(());
        }
        Err(Error::store(format!(
            "the memory store belongs to process {} and this process ({me}) was forked from it: \
             its permits, idempotency records and queued messages are a copy of the parent's, \
             and using them would send twice or lose messages; for forked workers configure \
             \"store\": \"sqlite:/path/to/notify.db\" or \"redis://host:port/db\" \
             (before forking, or in each worker before its first call)",
            self.0
        )))
    }
}

/// Is a permit expiring at `expires_at` (unix seconds) still usable at `now_ms`?
pub(crate) fn usable(expires_at: Option<i64>, now_ms: i64) -> bool {
    match expires_at {
        None => true,
        Some(e) => e.saturating_mul(1000) > now_ms,
    }
}
