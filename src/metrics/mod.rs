//! Operational figures: sends by outcome, send latency, token fetches, permits
//! and the outbox. Recording is an atomic add on a cell found through a
//! read-mostly map; with a shared store the increments are merged there (at
//! most once a second on the notifier's clock, at every scrape and when the
//! figures are dropped) so that one scrape shows every worker process of the
//! shop without a store write per send.

mod exposition;
mod family;
mod reach;
mod redis_sink;
mod sink;
mod sqlite_sink;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, StoreSpec};
use crate::error::{Error, Result};

pub use exposition::Format;
use family::{int_label, Cell, Family, GaugeCell};
pub use redis_sink::RedisSink;
pub use sink::{CounterSink, MemorySink, Sample};
pub use sqlite_sink::SqliteSink;

/// Upper bounds of the send latency buckets, in microseconds (5 ms to 10 s).
const BUCKET_BOUNDS_MICROS: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
/// The same bounds as Prometheus `le` labels, plus the catch-all.
const BUCKET_LABELS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

pub(crate) const SENDS: &str = "fashop_notify_sends_total";
pub(crate) const SEND_DURATION: &str = "fashop_notify_send_duration_seconds";
pub(crate) const TOKEN_FETCHES: &str = "fashop_notify_token_fetches_total";
pub(crate) const TOKEN_RECOVERED: &str = "fashop_notify_token_errors_recovered_total";
pub(crate) const PERMITS_ADDED: &str = "fashop_notify_permits_added_total";
pub(crate) const PERMITS_CONSUMED: &str = "fashop_notify_permits_consumed_total";
pub(crate) const PERMITS_EXPIRED: &str = "fashop_notify_permits_expired_total";
pub(crate) const PERMIT_STOCK: &str = "fashop_notify_permit_stock";
pub(crate) const OUTBOX: &str = "fashop_notify_outbox_messages";
pub(crate) const PUSH_EVENTS: &str = "fashop_notify_push_events_total";
/// Sends refused because the subscribe capability is banned, apart from the
/// other failures: no send of that app or template can succeed until a person acts.
pub(crate) const SUBSCRIBE_BANNED: &str = "fashop_notify_subscribe_banned_total";
pub(crate) const CARD_UPDATES: &str = "fashop_notify_card_updates_total";
pub(crate) const LOG_FAILURES: &str = "fashop_notify_log_write_failures_total";
pub(crate) const FLUSH_FAILURES: &str = "fashop_notify_metrics_flush_failures_total";
/// How the histogram is kept in a shared sink: per-bucket (not cumulative)
/// counts labelled by `le`, and the sum in whole microseconds.
pub(crate) const SINK_BUCKET: &str = "fashop_notify_send_duration_seconds_bucket";
pub(crate) const SINK_SUM_MICROS: &str = "fashop_notify_send_duration_seconds_sum_micros";

/// How long a recording on the send path may wait for the shared store.
const RECORD_PATIENCE: Duration = Duration::from_millis(20);
/// How long a scrape may wait for it.
const SCRAPE_PATIENCE: Duration = Duration::from_secs(5);
/// How often, at most, recordings are merged into the shared store.
const MERGE_EVERY_MS: i64 = 1000;

/// The figures of one notifier. Cloning shares them (the log holds a clone to
/// count its write failures).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("shared", &self.inner.shared.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Inner {
    sends: Family<4, Cell>,
    duration: Histogram,
    token_fetches: Family<3, Cell>,
    token_recovered: Family<1, Cell>,
    permits_added: Family<1, Cell>,
    permits_consumed: Family<1, Cell>,
    permits_expired: Family<1, Cell>,
    push_events: Family<2, Cell>,
    /// The owner's reach report: appid, event, China day, outcome, errcode
    /// (metrics/reach.rs; not in the Prometheus text).
    reach: Family<5, Cell>,
    subscribe_banned: Family<2, Cell>,
    card_updates: Family<3, Cell>,
    log_failures: Arc<Cell>,
    /// Per process by nature: the sink that failed cannot hold it.
    flush_failures: Cell,
    permit_stock: Family<1, GaugeCell>,
    outbox: Family<1, GaugeCell>,
    /// A shared sink is configured (read on every recording, so kept apart from the lock).
    shared: AtomicBool,
    /// Open `batch()` guards; recordings inside one are written out when the last ends.
    holds: AtomicUsize,
    /// Also the flush lock: one flush at a time, so watermarks move in order.
    sink: Mutex<SinkState>,
    /// The notifier's clock, which paces the merges into the shared store.
    clock: Arc<dyn Clock>,
    /// When recordings were last merged (clock ms).
    merged_at_ms: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::with_clock(Arc::new(SystemClock))
    }
}

impl Drop for Inner {
    /// What this process counted since the last merge goes to the shared
    /// store now, so a normal exit loses nothing.
    fn drop(&mut self) {
        let _ = self.flush_within(SCRAPE_PATIENCE);
    }
}

#[derive(Default)]
struct Histogram {
    buckets: [Cell; 12],
    sum_micros: Cell,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKET_BOUNDS_MICROS
            .iter()
            .position(|&b| micros <= b)
            .unwrap_or(BUCKET_BOUNDS_MICROS.len());
        self.buckets[i].add(1);
        self.sum_micros.add(micros);
    }
}

/// Which store the figures are shared through.
#[derive(Default)]
struct SinkState {
    /// The store setting the sink was made for (`memory` by default).
    spec: StoreSpec,
    /// How scrapes name it (a testing sink has its own name).
    label: Option<String>,
    sink: Option<Arc<dyn CounterSink>>,
    /// The process that opened `sink`; a forked child must open its own.
    pid: u32,
}

/// Where the figures of a scrape come from, said in the `# HELP` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// This process only (memory store, or a store without a shared sink).
    Process { store: String },
    /// Every process that uses the same store.
    Shared { store: String },
}

/// Figures ready to print: per family, label values to value.
#[derive(Debug)]
pub(crate) struct Figures {
    pub scope: Scope,
    pub series: BTreeMap<&'static str, BTreeMap<Vec<String>, i64>>,
    /// Per-bucket (not cumulative) counts, the last one above 10 s.
    pub buckets: [u64; 12],
    pub sum_micros: u64,
}

/// While alive, recordings are not written to the shared store one by one;
/// they go out together when the last open batch ends (one write per send).
#[must_use = "the batch ends when dropped"]
pub struct MetricsBatch<'a> {
    metrics: &'a Metrics,
}

impl Drop for MetricsBatch<'_> {
    fn drop(&mut self) {
        if self.metrics.inner.holds.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.metrics.written();
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Figures whose merges into a shared store are paced by `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        let merged_at_ms = AtomicI64::new(clock.now_ms());
        Metrics {
            inner: Arc::new(Inner {
                sends: Default::default(),
                duration: Default::default(),
                token_fetches: Default::default(),
                token_recovered: Default::default(),
                permits_added: Default::default(),
                permits_consumed: Default::default(),
                permits_expired: Default::default(),
                log_failures: Default::default(),
                flush_failures: Default::default(),
                push_events: Default::default(),
                reach: Default::default(),
                subscribe_banned: Default::default(),
                card_updates: Default::default(),
                permit_stock: Default::default(),
                outbox: Default::default(),
                shared: Default::default(),
                holds: Default::default(),
                sink: Default::default(),
                clock,
                merged_at_ms,
            }),
        }
    }

    /// One notification send finished. `status` is the outcome's status
    /// (`sent`, `failed`, `uncertain`, `no_permit`, `duplicate`), `errcode`
    /// WeChat's answer (0 when WeChat gave none), `elapsed` the wall time of the
    /// whole send. The latency histogram leaves out `duplicate` and `no_permit`,
    /// which never reach WeChat.
    pub fn record_send(
        &self,
        appid: &str,
        event: &str,
        status: &str,
        errcode: i64,
        elapsed: Duration,
    ) {
        let mut buf = [0u8; 24];
        let errcode = int_label(&mut buf, errcode);
        self.inner
            .sends
            .with([appid, event, status, errcode], |c| c.add(1));
        if status != "duplicate" && status != "no_permit" {
            self.inner.duration.observe(elapsed);
        }
        self.written();
    }

    /// An access token was fetched from WeChat (`mode`: `stable` or `classic`).
    pub fn record_token_fetch(&self, appid: &str, mode: &str, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.inner
            .token_fetches
            .with([appid, mode, result], |c| c.add(1));
        self.written();
    }

    /// WeChat rejected the access token (40001, 42001, 40014) and the call
    /// succeeded after a fresh one was fetched.
    pub fn record_token_error_recovered(&self, appid: &str) {
        self.inner.token_recovered.with([appid], |c| c.add(1));
        self.written();
    }

    /// One permit of `kind` (`subscribe`, `form_id`, `prepay_id`) was stored.
    pub fn record_permit_added(&self, kind: &str) {
        self.record_permits_added(kind, 1);
    }

    /// `n` permits at once (a subscribe grant with a count).
    pub fn record_permits_added(&self, kind: &str, n: u64) {
        self.inner.permits_added.with([kind], |c| c.add(n));
        self.written();
    }

    /// A permit was used up by a send.
    pub fn record_permit_consumed(&self, kind: &str) {
        self.inner.permits_consumed.with([kind], |c| c.add(1));
        self.written();
    }

    /// `n` permits expired unused (found by a purge or a lazy check).
    pub fn record_permit_expired(&self, kind: &str, n: u64) {
        self.inner.permits_expired.with([kind], |c| c.add(n));
        self.written();
    }

    /// Usable permits of `kind` now in the ledger.
    pub fn set_permit_stock(&self, kind: &str, n: u64) {
        self.inner
            .permit_stock
            .with([kind], |g| g.set(i64::try_from(n).unwrap_or(i64::MAX)));
        self.written();
    }

    /// Outbox messages in `state` (`pending`, `due`, `dead`, `sent`).
    pub fn set_outbox_depth(&self, state: &str, n: u64) {
        self.inner
            .outbox
            .with([state], |g| g.set(i64::try_from(n).unwrap_or(i64::MAX)));
        self.written();
    }

    /// A subscribe event pushed by WeChat was applied: `event` (popup,
    /// change, sent) and what it did (`grant_added`, `grants_dropped`,
    /// `delivered`, `user_block`, `system_failed`, …).
    pub fn record_push_event(&self, event: &str, effect: &str) {
        self.inner.push_events.with([event, effect], |c| c.add(1));
        self.written();
    }

    /// A send of `event` met a banned subscribe capability (the account's or
    /// the template's).
    pub fn record_subscribe_banned(&self, appid: &str, event: &str) {
        self.inner
            .subscribe_banned
            .with([appid, event], |c| c.add(1));
    }

    /// A service card update ended: card type, status and `outcome`
    /// (applied, duplicate, queued, stopped, refused, failed, uncertain).
    pub fn record_card_update(&self, notify_type: &str, status: &str, outcome: &str) {
        self.inner
            .card_updates
            .with([notify_type, status, outcome], |c| c.add(1));
        self.written();
    }

    /// A structured log line could not be written.
    pub fn record_log_failure(&self) {
        self.inner.log_failures.add(1);
        self.written();
    }

    /// Groups the recordings of one operation into one write to the shared
    /// store (the send path opens one per send).
    pub fn batch(&self) -> MetricsBatch<'_> {
        self.inner.holds.fetch_add(1, Ordering::AcqRel);
        MetricsBatch { metrics: self }
    }

    /// Follows the store setting: SQLite shares the figures through the
    /// database file; memory (and, for now, Redis) keeps them in this process.
    /// Never fails: a store that cannot be opened now is retried at the next
    /// flush, and the increments wait in this process meanwhile.
    pub fn configure(&self, config: &Config) {
        let mut state = self.inner.sink.lock();
        if state.spec == config.store && state.label.is_none() {
            return;
        }
        if let Some(old) = state.sink.take() {
            // Best effort: what the old store did not take stays out of the new one.
            let _ = self.inner.flush_into(&*old, RECORD_PATIENCE);
        }
        state.spec = config.store.clone();
        state.label = None;
        state.pid = 0;
        let shared = state.spec.is_shared();
        self.inner.rebase();
        self.inner.shared.store(shared, Ordering::Release);
        if shared {
            let _ = open_sink(&mut state);
        }
    }

    /// A recording happened: merge what is pending into the shared store when
    /// no batch is open and the last merge is a second old (on the clock).
    #[inline]
    fn written(&self) {
        let i = &self.inner;
        if !i.shared.load(Ordering::Acquire) || i.holds.load(Ordering::Acquire) != 0 {
            return;
        }
        let now = i.clock.now_ms();
        let last = i.merged_at_ms.load(Ordering::Acquire);
        if now.saturating_sub(last) < MERGE_EVERY_MS
            || i.merged_at_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            // Not yet, or another thread merges now.
            return;
        }
        // A failure is counted and the increments stay for the next merge.
        let _ = i.flush_within(RECORD_PATIENCE);
    }

    /// Writes what the shared store has not seen yet. No-op without one.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush_within(SCRAPE_PATIENCE)
    }
}

/// One flush: the samples to send, and what to mark flushed once the store
/// took them (or dirty again when it did not).
#[derive(Default)]
struct Unflushed {
    adds: Vec<Sample>,
    sets: Vec<Sample>,
    /// Counter cells and the count each is flushed up to.
    marks: Vec<(Arc<Cell>, u64)>,
    bucket_marks: [Option<u64>; 12],
    sum_upto: u64,
    /// Gauges taken as changed.
    dirty: Vec<Arc<GaugeCell>>,
}

impl Unflushed {
    fn add_counter(&mut self, name: &str, labels: Vec<String>, cell: &Arc<Cell>) {
        let (delta, upto) = cell.unflushed();
        if delta > 0 {
            self.adds.push(Sample {
                name: name.to_string(),
                labels,
                value: clamp(delta),
            });
            self.marks.push((cell.clone(), upto));
        }
    }
}

impl Inner {
    fn flush_within(&self, patience: Duration) -> Result<()> {
        if !self.shared.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.sink.lock();
        let pid = std::process::id();
        if state.sink.is_some() && state.pid != pid {
            // A forked child: the parent's unflushed counts are its own. The
            // sink stays: it makes this process's own connection itself.
            self.rebase();
            state.pid = pid;
        }
        let result = open_sink(&mut state).and_then(|sink| self.flush_into(&*sink, patience));
        if result.is_err() {
            self.flush_failures.add(1);
        }
        result
    }

    /// Sends every unflushed increment and changed gauge as one batch, and
    /// moves the watermarks only when the store took it.
    fn flush_into(&self, sink: &dyn CounterSink, patience: Duration) -> Result<()> {
        let mut batch = Unflushed::default();
        self.collect_counters(&mut batch);
        self.collect_duration(&mut batch);
        self.collect_gauges(&mut batch);
        if batch.adds.is_empty() && batch.sets.is_empty() && sink.pending() == 0 {
            return Ok(());
        }
        match sink.apply(&batch.adds, &batch.sets, patience) {
            Ok(()) => {
                for (cell, upto) in batch.marks {
                    cell.mark_flushed(upto);
                }
                for (b, mark) in self.duration.buckets.iter().zip(batch.bucket_marks) {
                    if let Some(upto) = mark {
                        b.mark_flushed(upto);
                    }
                }
                self.duration.sum_micros.mark_flushed(batch.sum_upto);
                Ok(())
            }
            Err(e) => {
                // The store did not take the gauges: they are sent again next time.
                for g in batch.dirty {
                    g.mark_dirty();
                }
                Err(e)
            }
        }
    }

    /// Every counter's increment since its last flush.
    fn collect_counters(&self, batch: &mut Unflushed) {
        let i = self;
        let mut push = |name: &str, labels: Vec<String>, cell: &Arc<Cell>| {
            batch.add_counter(name, labels, cell)
        };
        i.sends.each(|k, c| push(SENDS, k.values(), c));
        i.token_fetches
            .each(|k, c| push(TOKEN_FETCHES, k.values(), c));
        i.push_events.each(|k, c| push(PUSH_EVENTS, k.values(), c));
        i.reach.each(|k, c| push(reach::REACH, k.values(), c));
        i.subscribe_banned
            .each(|k, c| push(SUBSCRIBE_BANNED, k.values(), c));
        i.card_updates
            .each(|k, c| push(CARD_UPDATES, k.values(), c));
        for (name, fam) in [
            (TOKEN_RECOVERED, &i.token_recovered),
            (PERMITS_ADDED, &i.permits_added),
            (PERMITS_CONSUMED, &i.permits_consumed),
            (PERMITS_EXPIRED, &i.permits_expired),
        ] {
            fam.each(|k, c| push(name, k.values(), c));
        }
        push(LOG_FAILURES, Vec::new(), &i.log_failures);
    }

    /// The send duration histogram's bucket and sum increments.
    fn collect_duration(&self, batch: &mut Unflushed) {
        let duration = &self.duration;
        for ((b, label), mark) in duration
            .buckets
            .iter()
            .zip(BUCKET_LABELS)
            .zip(batch.bucket_marks.iter_mut())
        {
            let (delta, upto) = b.unflushed();
            if delta > 0 {
                batch.adds.push(Sample {
                    name: SINK_BUCKET.to_string(),
                    labels: vec![label.to_string()],
                    value: clamp(delta),
                });
                *mark = Some(upto);
            }
        }
        let (sum_delta, sum_upto) = duration.sum_micros.unflushed();
        if sum_delta > 0 {
            batch.adds.push(Sample {
                name: SINK_SUM_MICROS.to_string(),
                labels: Vec::new(),
                value: clamp(sum_delta),
            });
        }
        batch.sum_upto = sum_upto;
    }

    /// Every gauge that changed since its last flush.
    fn collect_gauges(&self, batch: &mut Unflushed) {
        for (name, fam) in [(PERMIT_STOCK, &self.permit_stock), (OUTBOX, &self.outbox)] {
            fam.each(|k, g| {
                if let Some(v) = g.take_dirty() {
                    batch.sets.push(Sample {
                        name: name.to_string(),
                        labels: k.values(),
                        value: v,
                    });
                    batch.dirty.push(g.clone());
                }
            });
        }
    }

    /// Forgets unflushed increments: a new store starts from what happens next.
    fn rebase(&self) {
        let i = self;
        i.sends.each(|_, c| c.rebase());
        i.token_fetches.each(|_, c| c.rebase());
        i.push_events.each(|_, c| c.rebase());
        i.reach.each(|_, c| c.rebase());
        i.subscribe_banned.each(|_, c| c.rebase());
        i.card_updates.each(|_, c| c.rebase());
        for fam in [
            &i.token_recovered,
            &i.permits_added,
            &i.permits_consumed,
            &i.permits_expired,
        ] {
            fam.each(|_, c| c.rebase());
        }
        i.log_failures.rebase();
        for b in &i.duration.buckets {
            b.rebase();
        }
        i.duration.sum_micros.rebase();
        i.permit_stock.each(|_, g| g.mark_dirty());
        i.outbox.each(|_, g| g.mark_dirty());
    }
}

impl Metrics {
    /// The figures to print: from the shared store when there is one (after
    /// writing this process's own increments), else from this process.
    pub(crate) fn figures(&self) -> Result<Figures> {
        let (scope, samples) = {
            let spec = {
                let state = self.inner.sink.lock();
                state
                    .label
                    .clone()
                    .unwrap_or_else(|| state.spec.to_string())
            };
            // A Redis URL may carry a password.
            let spec = crate::secret::redact_text(&spec);
            if self.inner.shared.load(Ordering::Acquire) {
                self.flush().map_err(|e| {
                    Error::store(format!("the shared figures are unavailable: {e}"))
                })?;
                let sink = self.inner.sink.lock().sink.clone();
                let samples = match sink {
                    Some(s) => s.snapshot().map_err(|e| {
                        Error::store(format!("the shared figures are unavailable: {e}"))
                    })?,
                    None => Vec::new(),
                };
                (Scope::Shared { store: spec }, Some(samples))
            } else {
                (Scope::Process { store: spec }, None)
            }
        };
        let mut figures = match samples {
            Some(samples) => Figures::from_samples(scope, &samples),
            None => self.local_figures(scope),
        };
        figures.series.insert(
            FLUSH_FAILURES,
            [(Vec::new(), clamp(self.inner.flush_failures.get()))].into(),
        );
        Ok(figures)
    }

    /// This process's own figures.
    fn local_figures(&self, scope: Scope) -> Figures {
        fn counters<const N: usize>(fam: &Family<N, Cell>) -> BTreeMap<Vec<String>, i64> {
            let mut out = BTreeMap::new();
            fam.each(|k, c| {
                out.insert(k.values(), clamp(c.get()));
            });
            out
        }
        fn gauges<const N: usize>(fam: &Family<N, GaugeCell>) -> BTreeMap<Vec<String>, i64> {
            let mut out = BTreeMap::new();
            fam.each(|k, g| {
                out.insert(k.values(), g.get());
            });
            out
        }
        let i = &self.inner;
        let mut f = Figures::empty(scope);
        f.series.insert(SENDS, counters(&i.sends));
        f.series.insert(TOKEN_FETCHES, counters(&i.token_fetches));
        f.series
            .insert(TOKEN_RECOVERED, counters(&i.token_recovered));
        f.series.insert(PERMITS_ADDED, counters(&i.permits_added));
        f.series
            .insert(PERMITS_CONSUMED, counters(&i.permits_consumed));
        f.series
            .insert(PERMITS_EXPIRED, counters(&i.permits_expired));
        f.series.insert(PUSH_EVENTS, counters(&i.push_events));
        f.series
            .insert(SUBSCRIBE_BANNED, counters(&i.subscribe_banned));
        f.series.insert(CARD_UPDATES, counters(&i.card_updates));
        f.series.insert(
            LOG_FAILURES,
            [(Vec::new(), clamp(i.log_failures.get()))].into(),
        );
        f.series.insert(PERMIT_STOCK, gauges(&i.permit_stock));
        f.series.insert(OUTBOX, gauges(&i.outbox));
        for (slot, b) in f.buckets.iter_mut().zip(&i.duration.buckets) {
            *slot = b.get();
        }
        f.sum_micros = i.duration.sum_micros.get();
        f
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The sink for the configured store, opened now if it is not yet.
fn open_sink(state: &mut SinkState) -> Result<Arc<dyn CounterSink>> {
    if let Some(sink) = &state.sink {
        return Ok(sink.clone());
    }
    let sink: Arc<dyn CounterSink> = match &state.spec {
        StoreSpec::Redis(url) => Arc::new(RedisSink::open(url)?),
        StoreSpec::Sqlite(path) => Arc::new(SqliteSink::open(path)?),
        StoreSpec::Memory => {
            return Err(Error::internal(
                "no shared store is configured for the figures",
            ))
        }
    };
    state.sink = Some(sink.clone());
    state.pid = std::process::id();
    Ok(sink)
}

impl Figures {
    fn empty(scope: Scope) -> Figures {
        Figures {
            scope,
            series: Default::default(),
            buckets: [0; 12],
            sum_micros: 0,
        }
    }

    /// Sorts a shared sink's samples into families; names this version does
    /// not know (written by a newer one) are left out.
    fn from_samples(scope: Scope, samples: &[Sample]) -> Figures {
        let mut f = Figures::empty(scope);
        for name in exposition::FAMILY_NAMES {
            f.series.entry(name).or_default();
        }
        for s in samples {
            if s.name == SINK_BUCKET {
                if let Some(i) = s
                    .labels
                    .first()
                    .and_then(|le| BUCKET_LABELS.iter().position(|l| l == le))
                {
                    f.buckets[i] = s.value.max(0) as u64;
                }
            } else if s.name == SINK_SUM_MICROS {
                f.sum_micros = s.value.max(0) as u64;
            } else if let Some((name, series)) = f.series.iter_mut().find(|(n, _)| **n == s.name) {
                if exposition::label_names(name).len() == s.labels.len() {
                    series.insert(s.labels.clone(), s.value);
                }
            }
        }
        f
    }
}

/// Testing seam: a notifier's metrics writing into a given sink.
impl Metrics {
    #[doc(hidden)]
    pub fn with_sink(sink: Arc<dyn CounterSink>) -> Metrics {
        Metrics::with_sink_on(sink, Arc::new(SystemClock))
    }

    /// `with_sink`, merges paced by `clock`.
    #[doc(hidden)]
    pub fn with_sink_on(sink: Arc<dyn CounterSink>, clock: Arc<dyn Clock>) -> Metrics {
        let m = Metrics::with_clock(clock);
        {
            let mut state = m.inner.sink.lock();
            state.label = Some("test-sink".to_string());
            state.sink = Some(sink);
            state.pid = std::process::id();
        }
        m.inner.shared.store(true, Ordering::Release);
        m
    }

    /// The figures in `format`, for a host's scrape endpoint.
    pub fn render(&self, format: Format) -> Result<String> {
        let figures = self.figures()?;
        Ok(match format {
            Format::Prometheus => exposition::prometheus(&figures),
            Format::Json => exposition::json(&figures),
        })
    }
}
