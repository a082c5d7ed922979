//! The outbox in this process's memory: for one worker, or tests. Messages
//! are lost with the process, like the memory ledger's permits.

use std::collections::{BTreeMap, HashMap};

use parking_lot::Mutex;

use super::store::{
    lost, not_found, Abandoned, Claim, Claimed, Counts, DeadLetter, Enqueued, NewMessage,
    OutboxStats, OutboxStore, Settlement, State, ABANDONED, ABANDONED_ERRCODE,
};
use super::OwnerProcess;
use crate::error::Result;

#[derive(Debug, Default)]
pub struct MemoryOutbox {
    inner: Mutex<Inner>,
    owner: OwnerProcess,
}

impl MemoryOutbox {
    /// The messages, for their owner only (not a process forked from it).
    fn inner(&self) -> Result<parking_lot::MutexGuard<'_, Inner>> {
        self.owner.check()?;
        Ok(self.inner.lock())
    }
}

#[derive(Debug, Default)]
struct Inner {
    last_id: u64,
    rows: BTreeMap<u64, Row>,
    by_key: HashMap<String, u64>,
}

#[derive(Debug, Clone)]
struct Row {
    m: NewMessage,
    state: State,
    attempts: u32,
    errcode: i64,
    errmsg: String,
    claim: Option<(i64, i64)>,
    posting: bool,
    created_ms: i64,
    finished_ms: i64,
}

impl Row {
    fn claimed(&self, now_ms: i64) -> bool {
        self.claim.is_some_and(|(_, until)| until > now_ms)
    }

    fn held_by(&self, token: i64) -> bool {
        self.state == State::Pending && self.claim.is_some_and(|(t, _)| t == token)
    }
}

impl OutboxStore for MemoryOutbox {
    fn describe(&self) -> String {
        "memory".to_string()
    }

    fn enqueue(&self, m: &NewMessage, now_ms: i64) -> Result<Enqueued> {
        let mut inner = self.inner()?;
        if let Some(&id) = inner.by_key.get(&m.idempotency_key) {
            let due_ms = inner.rows.get(&id).map_or(m.due_ms, |r| r.m.due_ms);
            return Ok(Enqueued {
                id,
                due_ms,
                duplicate: true,
            });
        }
        inner.last_id += 1;
        let id = inner.last_id;
        inner.by_key.insert(m.idempotency_key.clone(), id);
        inner.rows.insert(
            id,
            Row {
                m: m.clone(),
                state: State::Pending,
                attempts: 0,
                errcode: 0,
                errmsg: String::new(),
                claim: None,
                posting: false,
                created_ms: now_ms,
                finished_ms: 0,
            },
        );
        Ok(Enqueued {
            id,
            due_ms: m.due_ms,
            duplicate: false,
        })
    }

    fn claim(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
    ) -> Result<Claim> {
        let mut inner = self.inner()?;
        let mut out = Claim::default();
        for (&id, row) in inner.rows.iter_mut() {
            if row.state == State::Pending && row.posting && !row.claimed(now_ms) {
                row.state = State::Uncertain;
                row.posting = false;
                row.attempts += 1;
                row.errcode = ABANDONED_ERRCODE;
                row.errmsg = ABANDONED.to_string();
                row.claim = None;
                row.finished_ms = now_ms;
                out.abandoned.push(Abandoned {
                    id,
                    idempotency_key: row.m.idempotency_key.clone(),
                });
            }
        }
        let pick = inner
            .rows
            .iter()
            .filter(|(_, r)| {
                r.state == State::Pending
                    && r.m.due_ms <= now_ms
                    && !r.claimed(now_ms)
                    && apps.is_none_or(|a| a.contains(&r.m.appid))
            })
            .min_by_key(|(id, r)| (r.m.due_ms, **id))
            .map(|(id, _)| *id);
        if let Some(id) = pick {
            if let Some(row) = inner.rows.get_mut(&id) {
                let until = now_ms.saturating_add(lease_ms);
                row.claim = Some((token, until));
                out.message = Some(Claimed {
                    id,
                    appid: row.m.appid.clone(),
                    event: row.m.event.clone(),
                    idempotency_key: row.m.idempotency_key.clone(),
                    message: row.m.message.clone(),
                    attempts: row.attempts,
                    token,
                    lease_until_ms: until,
                });
            }
        }
        Ok(out)
    }

    fn mark_posting(&self, id: u64, token: i64) -> Result<()> {
        let mut inner = self.inner()?;
        match inner.rows.get_mut(&id) {
            Some(row) if row.held_by(token) => {
                row.posting = true;
                Ok(())
            }
            _ => Err(lost(id)),
        }
    }

    fn settle(&self, id: u64, token: i64, how: &Settlement, now_ms: i64) -> Result<bool> {
        let mut inner = self.inner()?;
        let Some(row) = inner.rows.get_mut(&id).filter(|r| r.held_by(token)) else {
            return Ok(false);
        };
        row.claim = None;
        row.posting = false;
        match how {
            Settlement::Sent => {
                row.state = State::Sent;
                row.finished_ms = now_ms;
                row.m.message.clear();
            }
            Settlement::Retry {
                due_ms,
                count,
                errcode,
                errmsg,
            } => {
                row.m.due_ms = *due_ms;
                row.attempts += u32::from(*count);
                row.errcode = *errcode;
                row.errmsg = errmsg.clone();
            }
            Settlement::Dead { errcode, errmsg } | Settlement::Uncertain { errcode, errmsg } => {
                row.state = if matches!(how, Settlement::Dead { .. }) {
                    State::Dead
                } else {
                    State::Uncertain
                };
                row.attempts += 1;
                row.errcode = *errcode;
                row.errmsg = errmsg.clone();
                row.finished_ms = now_ms;
            }
            Settlement::Release => {}
        }
        Ok(true)
    }

    fn stats(&self, appid: Option<&str>, now_ms: i64, dead_limit: usize) -> Result<OutboxStats> {
        let inner = self.inner()?;
        let mut stats = OutboxStats::default();
        let mut dead = Vec::new();
        for (&id, r) in inner
            .rows
            .iter()
            .filter(|(_, r)| appid.is_none_or(|a| a == r.m.appid))
        {
            let pending = r.state == State::Pending;
            let in_flight = u64::from(pending && r.claimed(now_ms));
            let due = u64::from(pending && r.m.due_ms <= now_ms && !r.claimed(now_ms));
            stats.total.add(r.state, 1, due, in_flight);
            stats
                .by_event
                .entry(r.m.event.clone())
                .or_insert_with(Counts::default)
                .add(r.state, 1, due, in_flight);
            if matches!(r.state, State::Dead | State::Uncertain) {
                dead.push(DeadLetter {
                    id,
                    appid: r.m.appid.clone(),
                    event: r.m.event.clone(),
                    touser: r.m.touser.clone(),
                    state: r.state.as_str(),
                    attempts: r.attempts,
                    errcode: r.errcode,
                    errmsg: r.errmsg.clone(),
                    idempotency_key: r.m.idempotency_key.clone(),
                    enqueued_at: r.created_ms.div_euclid(1000),
                    failed_at: r.finished_ms.div_euclid(1000),
                });
            }
        }
        dead.sort_by_key(|d| std::cmp::Reverse((d.failed_at, d.id)));
        dead.truncate(dead_limit);
        stats.dead_letters = dead;
        Ok(stats)
    }

    fn count_due(&self, apps: Option<&[String]>, now_ms: i64) -> Result<u64> {
        let inner = self.inner()?;
        Ok(inner
            .rows
            .values()
            .filter(|r| {
                r.state == State::Pending
                    && r.m.due_ms <= now_ms
                    && !r.claimed(now_ms)
                    && apps.is_none_or(|a| a.contains(&r.m.appid))
            })
            .count() as u64)
    }

    fn requeue(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        let mut inner = self.inner()?;
        match inner.rows.get_mut(&id).filter(|r| r.m.appid == appid) {
            None => Err(not_found("outbox_requeue", appid, id, None)),
            Some(r) if r.state != State::Dead => {
                Err(not_found("outbox_requeue", appid, id, Some(r.state)))
            }
            Some(r) => {
                r.state = State::Pending;
                r.m.due_ms = now_ms;
                r.attempts = 0;
                r.finished_ms = 0;
                Ok(())
            }
        }
    }

    fn remove(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        let mut inner = self.inner()?;
        let key = match inner.rows.get(&id).filter(|r| r.m.appid == appid) {
            None => return Err(not_found("outbox_drop", appid, id, None)),
            Some(r) if r.state == State::Sent || r.claimed(now_ms) || r.posting => {
                return Err(not_found("outbox_drop", appid, id, Some(r.state)))
            }
            Some(r) => r.m.idempotency_key.clone(),
        };
        inner.rows.remove(&id);
        inner.by_key.remove(&key);
        Ok(())
    }

    fn forget_sent(&self, before_ms: i64) -> Result<u64> {
        let mut inner = self.inner()?;
        let gone: Vec<(u64, String)> = inner
            .rows
            .iter()
            .filter(|(_, r)| r.state == State::Sent && r.finished_ms < before_ms)
            .map(|(id, r)| (*id, r.m.idempotency_key.clone()))
            .collect();
        for (id, key) in &gone {
            inner.rows.remove(id);
            inner.by_key.remove(key);
        }
        Ok(gone.len() as u64)
    }
}
