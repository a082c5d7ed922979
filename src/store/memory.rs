//! The in-process store: one lock around plain maps. Kept small because a shop
//! collects many form_ids per user: a permit is one compact entry in its user's
//! vector, expired entries are dropped when the user is next touched.

mod stock;

use std::collections::HashMap;

use parking_lot::Mutex;

use super::{
    usable, Added, KeyClaim, Kind, Lease, NewPermit, OwnerProcess, PermitRequest, PermitStats,
    Remaining, Store, IDEMPOTENCY_KEEP_MS, RETURNED_KEEP_MS,
};
use crate::error::Result;

const NEVER: u32 = u32::MAX;

#[derive(Debug, Default)]
pub struct MemoryStore {
    book: Mutex<Book>,
    owner: OwnerProcess,
}

#[derive(Debug, Default)]
struct Book {
    /// appid → openid → that user's permits.
    apps: HashMap<Box<str>, HashMap<Box<str>, Vec<Entry>>>,
    leases: HashMap<u64, Lease>,
    /// Leases that ran out, their use returned, kept a while so that a late
    /// consume still spends it (once).
    returned: HashMap<u64, (Lease, i64)>,
    /// No lease runs out and no returned lease is forgotten before this (unix ms).
    next_due: i64,
    next_lease: u64,
    idempotency: HashMap<String, Record>,
}

/// One permit, kept small: a shop holds many form_ids per user.
#[derive(Debug)]
struct Entry {
    /// The template_id, form_id or prepay_id; for a prepay_id followed by `\n`
    /// and its order_sn (neither may contain control characters).
    text: Box<str>,
    /// Unix seconds.
    created_at: u32,
    /// Unix seconds; `NEVER` for subscribe grants.
    expires_at: u32,
    uses: u32,
    leased: u16,
    kind: Kind,
    paid: bool,
}

/// Unix seconds as kept in an entry (the ledger refuses times before 1970;
/// times after 2106 stand still).
fn secs(t: i64) -> u32 {
    t.clamp(0, i64::from(NEVER - 1)) as u32
}

impl Entry {
    fn value(&self) -> &str {
        self.text.split('\n').next().unwrap_or_default()
    }

    fn order_sn(&self) -> Option<&str> {
        self.text.split_once('\n').map(|(_, sn)| sn)
    }

    fn is(&self, kind: Kind, value: &str) -> bool {
        self.kind == kind && self.value() == value
    }

    fn expiry(&self) -> Option<i64> {
        (self.expires_at != NEVER).then_some(i64::from(self.expires_at))
    }

    fn live(&self, now_ms: i64) -> bool {
        usable(self.expiry(), now_ms)
    }

    fn takeable(&self, now_ms: i64) -> bool {
        self.uses > 0 && self.live(now_ms) && (self.kind != Kind::PrepayId || self.paid)
    }
}

#[derive(Debug)]
enum Record {
    InFlight { until_ms: i64 },
    Done { outcome: String, until_ms: i64 },
}

impl Book {
    fn user_mut(&mut self, appid: &str, openid: &str) -> Option<&mut Vec<Entry>> {
        self.apps.get_mut(appid)?.get_mut(openid)
    }

    /// Returns the uses of leases that ran out to their permits.
    fn reclaim(&mut self, now_ms: i64) {
        if now_ms < self.next_due {
            return;
        }
        self.returned
            .retain(|_, (_, forget_at)| *forget_at > now_ms);
        let expired: Vec<u64> = self
            .leases
            .values()
            .filter(|l| l.expires_at_ms <= now_ms)
            .map(|l| l.id)
            .collect();
        for id in expired {
            if let Some(lease) = self.leases.remove(&id) {
                if let Some(e) = self.entry_mut(&lease) {
                    e.uses += 1;
                    e.leased = e.leased.saturating_sub(1);
                }
                let forget_at = now_ms.saturating_add(RETURNED_KEEP_MS);
                self.returned.insert(id, (lease, forget_at));
            }
        }
        self.next_due = self
            .leases
            .values()
            .map(|l| l.expires_at_ms)
            .chain(self.returned.values().map(|(_, f)| *f))
            .min()
            .unwrap_or(i64::MAX);
    }

    fn entry_mut(&mut self, lease: &Lease) -> Option<&mut Entry> {
        self.user_mut(&lease.appid, &lease.openid)?
            .iter_mut()
            .find(|e| e.is(lease.kind, &lease.value))
    }

    /// Drops the lease's permit when nothing is left of it.
    fn drop_if_spent(&mut self, lease: &Lease) {
        if let Some(user) = self.user_mut(&lease.appid, &lease.openid) {
            user.retain(|e| !(e.is(lease.kind, &lease.value) && e.uses == 0 && e.leased == 0));
        }
    }

    fn remaining(&mut self, lease: &Lease, now_ms: i64) -> Remaining {
        let uses = match self.user_mut(&lease.appid, &lease.openid) {
            None => 0,
            Some(user) => user
                .iter()
                .filter(|e| e.kind == lease.kind && e.takeable(now_ms))
                .filter(|e| lease.kind != Kind::Subscribe || e.value() == lease.value)
                .map(|e| u64::from(e.uses))
                .sum(),
        };
        Remaining {
            kind: lease.kind,
            uses,
        }
    }
}

/// Drops the oldest permits of `kind` beyond `cap` (expired ones first).
fn enforce_cap(user: &mut Vec<Entry>, kind: Kind, cap: usize, now_ms: i64) {
    user.retain(|e| e.kind != kind || e.live(now_ms) || e.leased > 0);
    while user.iter().filter(|e| e.kind == kind).count() > cap {
        let oldest = user
            .iter()
            .enumerate()
            .filter(|(_, e)| e.kind == kind)
            .min_by_key(|(i, e)| (e.created_at, *i))
            .map(|(i, _)| i);
        match oldest {
            Some(i) => {
                user.remove(i);
            }
            None => break,
        }
    }
}

impl MemoryStore {
    /// The records, for their owner only (not a process forked from it).
    fn book(&self) -> Result<parking_lot::MutexGuard<'_, Book>> {
        self.owner.check()?;
        Ok(self.book.lock())
    }
}

impl Store for MemoryStore {
    fn template_stock(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<super::TemplateStock>> {
        self.stock_of(appid, now_ms, accepted_before)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn add(&self, appid: &str, p: &NewPermit, now_ms: i64, cap: usize) -> Result<Added> {
        let mut book = self.book()?;
        let users = match book.apps.get_mut(appid) {
            Some(users) => users,
            None => book.apps.entry(appid.into()).or_default(),
        };
        let user = match users.get_mut(p.openid.as_str()) {
            Some(user) => user,
            None => users.entry(p.openid.as_str().into()).or_default(),
        };
        if let Some(e) = user.iter_mut().find(|e| e.is(p.kind, &p.value)) {
            return Ok(match p.kind {
                Kind::Subscribe => {
                    e.uses = e.uses.saturating_add(p.uses).min(p.max_uses.max(e.uses));
                    // A grant's age counts from its last accept.
                    e.created_at = e.created_at.max(secs(p.created_at));
                    Added::Counted
                }
                Kind::PrepayId if p.paid && !e.paid => {
                    e.paid = true;
                    Added::MarkedPaid
                }
                _ => Added::Duplicate,
            });
        }
        // Grow one entry at a time while small: most users hold a few permits.
        if user.len() == user.capacity() {
            user.reserve_exact((user.len() / 4).max(1));
        }
        user.push(Entry {
            text: match &p.order_sn {
                Some(sn) => format!("{}\n{sn}", p.value).into(),
                None => p.value.as_str().into(),
            },
            created_at: secs(p.created_at),
            expires_at: p.expires_at.map_or(NEVER, secs),
            uses: p.uses,
            leased: 0,
            kind: p.kind,
            paid: p.paid,
        });
        if p.kind != Kind::Subscribe {
            enforce_cap(user, p.kind, cap, now_ms);
        }
        Ok(Added::Stored)
    }

    fn take(
        &self,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Lease>> {
        let mut book = self.book()?;
        book.reclaim(now_ms);
        let Some(user) = book.user_mut(appid, openid) else {
            return Ok(None);
        };
        user.retain(|e| e.live(now_ms) || e.leased > 0);
        let pick = match request {
            PermitRequest::Subscribe { template_id } => user
                .iter()
                .position(|e| e.is(Kind::Subscribe, template_id) && e.takeable(now_ms)),
            PermitRequest::Legacy { order_sn } => {
                let soonest = |kind: Kind, order: Option<&str>| {
                    user.iter()
                        .enumerate()
                        .filter(|(_, e)| e.kind == kind && e.takeable(now_ms))
                        .filter(|(_, e)| order.is_none() || e.order_sn() == order)
                        .min_by_key(|(i, e)| (e.expires_at, e.created_at, *i))
                        .map(|(i, _)| i)
                };
                order_sn
                    .as_deref()
                    .and_then(|sn| soonest(Kind::PrepayId, Some(sn)))
                    .or_else(|| soonest(Kind::FormId, None))
            }
        };
        let Some(i) = pick else {
            return Ok(None);
        };
        let e = &mut user[i];
        e.uses -= 1;
        e.leased = e.leased.saturating_add(1);
        let lease = Lease {
            id: 0,
            appid: appid.to_string(),
            openid: openid.to_string(),
            kind: e.kind,
            value: e.value().to_string(),
            order_sn: e.order_sn().map(str::to_string),
            expires_at_ms: now_ms.saturating_add(lease_ms),
        };
        book.next_lease += 1;
        let lease = Lease {
            id: book.next_lease,
            ..lease
        };
        book.next_due = book.next_due.min(lease.expires_at_ms);
        book.leases.insert(lease.id, lease.clone());
        Ok(Some(lease))
    }

    fn consume(&self, lease: &Lease, now_ms: i64) -> Result<Remaining> {
        let mut book = self.book()?;
        book.reclaim(now_ms);
        let held = book.leases.remove(&lease.id).is_some();
        let returned = !held && book.returned.remove(&lease.id).is_some();
        if let Some(e) = book.entry_mut(lease) {
            if held {
                e.leased = e.leased.saturating_sub(1);
            } else if returned {
                // The lease ran out and its use went back, yet it was spent.
                e.uses = e.uses.saturating_sub(1);
            }
        }
        book.drop_if_spent(lease);
        Ok(book.remaining(lease, now_ms))
    }

    fn give_back(&self, lease: &Lease) -> Result<()> {
        let mut book = self.book()?;
        if book.leases.remove(&lease.id).is_some() {
            if let Some(e) = book.entry_mut(lease) {
                e.uses += 1;
                e.leased = e.leased.saturating_sub(1);
            }
        } else {
            book.returned.remove(&lease.id);
        }
        Ok(())
    }

    fn discard(&self, lease: &Lease) -> Result<()> {
        let mut book = self.book()?;
        let same = |l: &Lease| {
            l.appid == lease.appid
                && l.openid == lease.openid
                && l.kind == lease.kind
                && l.value == lease.value
        };
        book.leases.retain(|_, l| !same(l));
        book.returned.retain(|_, (l, _)| !same(l));
        if let Some(user) = book.user_mut(&lease.appid, &lease.openid) {
            user.retain(|e| !e.is(lease.kind, &lease.value));
        }
        Ok(())
    }

    fn drop_grants(&self, appid: &str, openid: &str, template_id: &str) -> Result<u64> {
        let mut book = self.book.lock();
        let same = |l: &Lease| {
            l.appid == appid
                && l.openid == openid
                && l.kind == Kind::Subscribe
                && l.value == template_id
        };
        book.leases.retain(|_, l| !same(l));
        book.returned.retain(|_, (l, _)| !same(l));
        let mut dropped = 0u64;
        if let Some(user) = book.user_mut(appid, openid) {
            user.retain(|e| {
                let hit = e.is(Kind::Subscribe, template_id);
                if hit {
                    dropped += u64::from(e.uses);
                }
                !hit
            });
        }
        Ok(dropped)
    }

    fn stats(&self, appid: &str, openid: Option<&str>, now_ms: i64) -> Result<PermitStats> {
        let mut book = self.book()?;
        book.reclaim(now_ms);
        let mut stats = PermitStats::default();
        let Some(users) = book.apps.get(appid) else {
            return Ok(stats);
        };
        let mut add_user = |user: &Vec<Entry>| {
            for e in user {
                stats.leased += u64::from(e.leased);
                if !e.live(now_ms) {
                    stats.expired += 1;
                    continue;
                }
                let uses = u64::from(e.uses);
                match e.kind {
                    Kind::Subscribe if uses > 0 => {
                        *stats.subscribe.entry(e.value().to_string()).or_default() += uses;
                    }
                    Kind::Subscribe => {}
                    Kind::FormId if uses > 0 => stats.form_id_permits += 1,
                    Kind::FormId => {}
                    Kind::PrepayId if !e.paid => stats.prepay_id_unpaid += 1,
                    Kind::PrepayId if uses > 0 => {
                        stats.prepay_id_permits += 1;
                        stats.prepay_id_uses += uses;
                    }
                    Kind::PrepayId => {}
                }
                if uses > 0 {
                    if let Some(exp) = e.expiry() {
                        stats.soonest_expiry =
                            Some(stats.soonest_expiry.map_or(exp, |s| s.min(exp)));
                    }
                }
            }
        };
        match openid {
            Some(o) => {
                if let Some(user) = users.get(o) {
                    add_user(user);
                }
            }
            None => users.values().for_each(add_user),
        }
        Ok(stats)
    }

    fn purge(&self, appid: &str, now_ms: i64, grants_before: Option<i64>) -> Result<u64> {
        let mut book = self.book()?;
        book.reclaim(now_ms);
        book.idempotency.retain(|_, r| match r {
            Record::InFlight { until_ms } | Record::Done { until_ms, .. } => *until_ms > now_ms,
        });
        let mut removed = 0u64;
        if let Some(users) = book.apps.get_mut(appid) {
            for user in users.values_mut() {
                let before = user.len();
                let old = |e: &Entry| {
                    e.kind == Kind::Subscribe
                        && grants_before.is_some_and(|t| i64::from(e.created_at) < t)
                };
                user.retain(|e| (e.live(now_ms) && !old(e)) || e.leased > 0);
                removed += (before - user.len()) as u64;
            }
            users.retain(|_, user| !user.is_empty());
        }
        Ok(removed)
    }

    fn idempotency_claim(&self, key: &str, now_ms: i64, lease_ms: i64) -> Result<KeyClaim> {
        let mut book = self.book()?;
        match book.idempotency.get(key) {
            Some(Record::Done { outcome, until_ms }) if *until_ms > now_ms => {
                return Ok(KeyClaim::Done(outcome.clone()))
            }
            Some(Record::InFlight { until_ms }) if *until_ms > now_ms => {
                return Ok(KeyClaim::InFlight)
            }
            _ => {}
        }
        book.idempotency.insert(
            key.to_string(),
            Record::InFlight {
                until_ms: now_ms.saturating_add(lease_ms),
            },
        );
        Ok(KeyClaim::Fresh)
    }

    fn idempotency_complete(&self, key: &str, outcome: &str, now_ms: i64) -> Result<()> {
        self.book()?.idempotency.insert(
            key.to_string(),
            Record::Done {
                outcome: outcome.to_string(),
                until_ms: now_ms.saturating_add(IDEMPOTENCY_KEEP_MS),
            },
        );
        Ok(())
    }

    fn idempotency_release(&self, key: &str) -> Result<()> {
        let mut book = self.book()?;
        if matches!(book.idempotency.get(key), Some(Record::InFlight { .. })) {
            book.idempotency.remove(key);
        }
        Ok(())
    }
}
