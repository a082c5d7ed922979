//! Label-keyed atomic series: a read-mostly map from a small tuple of label
//! values to counters that are bumped with one atomic add. The write lock is
//! taken only the first time a label tuple is seen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

/// Above this many label tuples a family folds new ones into one overflow
/// series, so that a caller passing unbounded values cannot exhaust memory.
pub(crate) const MAX_SERIES: usize = 5_000;
/// Longer label values are cut (at a character boundary).
pub(crate) const MAX_LABEL_BYTES: usize = 128;
pub(crate) const OVERFLOW: &str = "_other";

/// A counter that also remembers how much of it a shared sink already has.
#[derive(Debug, Default)]
pub(crate) struct Cell {
    value: AtomicU64,
    flushed: AtomicU64,
}

impl Cell {
    pub(crate) fn add(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    /// What the sink has not seen yet, and the value to mark as seen once it has.
    pub(crate) fn unflushed(&self) -> (u64, u64) {
        let v = self.value.load(Ordering::Relaxed);
        (v.saturating_sub(self.flushed.load(Ordering::Relaxed)), v)
    }

    pub(crate) fn mark_flushed(&self, v: u64) {
        self.flushed.store(v, Ordering::Relaxed);
    }

    /// Forgets what was not flushed (a forked child must not send its parent's counts again).
    pub(crate) fn rebase(&self) {
        self.flushed
            .store(self.value.load(Ordering::Relaxed), Ordering::Relaxed);
    }
}

/// A gauge; `dirty` says a shared sink has not seen the latest value.
#[derive(Debug, Default)]
pub(crate) struct GaugeCell {
    value: AtomicI64,
    dirty: AtomicBool,
}

impl GaugeCell {
    pub(crate) fn set(&self, n: i64) {
        self.value.store(n, Ordering::Relaxed);
        self.dirty.store(true, Ordering::Release);
    }

    pub(crate) fn get(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }

    /// The value to send when it changed since the last flush. Clearing before
    /// reading means a concurrent `set` marks it dirty again: nothing is lost.
    pub(crate) fn take_dirty(&self) -> Option<i64> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            Some(self.get())
        } else {
            None
        }
    }

    pub(crate) fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

/// Label values looked up without allocating: both the owned key and a
/// borrowed `[&str; N]` present themselves through this view.
pub(crate) trait LabelView {
    fn count(&self) -> usize;
    fn label(&self, i: usize) -> &str;
}

impl<const N: usize> LabelView for [&str; N] {
    fn count(&self) -> usize {
        N
    }
    fn label(&self, i: usize) -> &str {
        self[i]
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Key<const N: usize>([Box<str>; N]);

impl<const N: usize> Key<N> {
    pub(crate) fn values(&self) -> Vec<String> {
        self.0.iter().map(|s| s.to_string()).collect()
    }
}

impl<const N: usize> LabelView for Key<N> {
    fn count(&self) -> usize {
        N
    }
    fn label(&self, i: usize) -> &str {
        &self.0[i]
    }
}

impl Hash for dyn LabelView + '_ {
    fn hash<H: Hasher>(&self, h: &mut H) {
        for i in 0..self.count() {
            self.label(i).hash(h);
        }
    }
}

impl PartialEq for dyn LabelView + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.count() == other.count() && (0..self.count()).all(|i| self.label(i) == other.label(i))
    }
}

impl Eq for dyn LabelView + '_ {}

impl<const N: usize> Hash for Key<N> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self as &dyn LabelView).hash(h)
    }
}

impl<const N: usize> PartialEq for Key<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<const N: usize> Eq for Key<N> {}

impl<'a, const N: usize> Borrow<dyn LabelView + 'a> for Key<N> {
    fn borrow(&self) -> &(dyn LabelView + 'a) {
        self
    }
}

fn clip(value: &str) -> &str {
    if value.len() <= MAX_LABEL_BYTES {
        return value;
    }
    let mut end = MAX_LABEL_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// A word-at-a-time multiplicative hash: label tuples are short and come
/// from the host's own settings (and their number is capped), so SipHash's
/// flood resistance buys nothing here and costs most of a recording.
#[derive(Default, Clone, Copy)]
pub(crate) struct LabelHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl LabelHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for LabelHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type LabelMap<K, V> = HashMap<K, V, BuildHasherDefault<LabelHasher>>;

/// One metric family's series, keyed by `N` label values.
#[derive(Debug)]
pub(crate) struct Family<const N: usize, C> {
    series: RwLock<LabelMap<Key<N>, Arc<C>>>,
}

impl<const N: usize, C> Default for Family<N, C> {
    fn default() -> Self {
        Family {
            series: RwLock::new(LabelMap::default()),
        }
    }
}

impl<const N: usize, C: Default> Family<N, C> {
    /// Runs `f` on the cell for these labels (created on first use); the
    /// steady state is one read lock and no allocation.
    #[inline]
    pub(crate) fn with<R>(&self, labels: [&str; N], f: impl FnOnce(&C) -> R) -> R {
        let labels = labels.map(clip);
        if let Some(c) = self.series.read().get(&labels as &dyn LabelView) {
            return f(c);
        }
        f(&self.create(labels))
    }

    /// The cell for these labels, created on first use.
    #[cfg(test)]
    pub(crate) fn cell(&self, labels: [&str; N]) -> Arc<C> {
        let labels = labels.map(clip);
        if let Some(c) = self.series.read().get(&labels as &dyn LabelView) {
            return c.clone();
        }
        self.create(labels)
    }

    #[cold]
    fn create(&self, labels: [&str; N]) -> Arc<C> {
        let mut map = self.series.write();
        if let Some(c) = map.get(&labels as &dyn LabelView) {
            return c.clone();
        }
        let key = if map.len() >= MAX_SERIES {
            Key([OVERFLOW; N].map(Box::from))
        } else {
            Key(labels.map(Box::from))
        };
        map.entry(key).or_default().clone()
    }

    /// Calls `f` with every series (holding the read lock; `f` must be quick).
    pub(crate) fn each(&self, mut f: impl FnMut(&Key<N>, &Arc<C>)) {
        for (k, c) in self.series.read().iter() {
            f(k, c);
        }
    }

    /// Keeps the series `keep` says yes to (the reach report's old days go).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&Key<N>, &Arc<C>) -> bool) {
        self.series.write().retain(|k, c| keep(k, c));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.series.read().len()
    }
}

/// Writes an integer label value into `buf` without allocating.
pub(crate) fn int_label(buf: &mut [u8; 24], v: i64) -> &str {
    let mut i = buf.len();
    let negative = v < 0;
    let mut n = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        i -= 1;
        buf[i] = b'-';
    }
    // Only ASCII digits and '-' were written.
    std::str::from_utf8(&buf[i..]).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_labels_same_cell() {
        let f: Family<2, Cell> = Family::default();
        f.cell(["a", "b"]).add(2);
        f.cell(["a", "b"]).add(3);
        f.cell(["a", "c"]).add(1);
        assert_eq!(f.cell(["a", "b"]).get(), 5);
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn cardinality_is_bounded() {
        let f: Family<1, Cell> = Family::default();
        for i in 0..MAX_SERIES + 10 {
            f.cell([&format!("v{i}")]).add(1);
        }
        assert_eq!(f.len(), MAX_SERIES + 1);
        assert_eq!(f.cell([OVERFLOW]).get(), 10);
        let long = "x".repeat(300);
        let g: Family<1, Cell> = Family::default();
        g.cell([&long]).add(1);
        g.each(|k, _| assert_eq!(k.values()[0].len(), MAX_LABEL_BYTES));
    }

    #[test]
    fn integer_labels() {
        let mut b = [0u8; 24];
        assert_eq!(int_label(&mut b, 0), "0");
        assert_eq!(int_label(&mut b, 40001), "40001");
        assert_eq!(int_label(&mut b, -1), "-1");
        assert_eq!(int_label(&mut b, i64::MIN), i64::MIN.to_string());
    }

    #[test]
    fn gauge_dirty_flag() {
        let g = GaugeCell::default();
        assert_eq!(g.take_dirty(), None);
        g.set(4);
        assert_eq!(g.take_dirty(), Some(4));
        assert_eq!(g.take_dirty(), None);
    }
}
