//! The outbox on the ledger's Redis server, for flushing workers on several
//! hosts. A message is one hash; sorted sets order what is due, leased, on its
//! way, dead and sent; every change is one Lua script, so it is atomic on the
//! server. Times are the notifier's clock, passed in; Redis TTLs only clear
//! out sent records nobody asked to forget. On a Redis Cluster all of the
//! outbox's keys share one hash slot (the prefix is their hash tag), since
//! the scripts build the keys of the apps they visit.

use std::fmt;

use redis::{FromRedisValue, Script};

use super::store::{
    lost, not_found, Abandoned, Claim, Claimed, Counts, DeadLetter, Enqueued, NewMessage,
    OutboxStats, OutboxStore, Settlement, State, ABANDONED, ABANDONED_ERRCODE, SENT_KEPT_MS,
};
use crate::error::{Error, Result};
// The Redis outbox shares the Redis store's connection pool (one per process,
// reopened after a fork) and key prefix instead of opening its own.
use crate::store::RedisStore;

/// Added to the TTL of a sent record, so that Redis never forgets one before
/// the notifier's clock does.
const GRACE_MS: i64 = 24 * 3600 * 1000;
/// Sent records forgotten per script run, so that no run blocks the server long.
const FORGET_BATCH: i64 = 500;

/// Helpers every script shares. ARGV[1] is always the key prefix. A message is
/// the hash `o:m:ID` (ID zero-padded, so that members of equal score sort by
/// id) with fields a(ppid) e(vent) u (touser) k(ey) m(essage) s(tate) d(ue)
/// n (attempts) c (errcode) r (errmsg) t (claim token) l(ease) p(osting)
/// ct (created) f(inished). `o:due:APP` holds pending messages by due time,
/// `o:leased` and `o:posting` claimed ones by claim end, `o:dead:APP` dead and
/// uncertain ones by finish time, `o:sent` sent ones (`ID|APP|EVENT`) by
/// finish time, `o:count:APP` the number of messages per `EVENT|STATE`.
const PRELUDE: &str = r#"
local P = ARGV[1]
local function fmt(n) return string.format('%.0f', n) end
local function mkey(id) return P .. 'o:m:' .. id end
local function due_key(app) return P .. 'o:due:' .. app end
local function dead_key(app) return P .. 'o:dead:' .. app end
local LEASED, POSTING, SENT = P .. 'o:leased', P .. 'o:posting', P .. 'o:sent'
local function count(app, event, state, delta)
  local k = P .. 'o:count:' .. app
  local f = event .. '|' .. state
  if redis.call('HINCRBY', k, f, delta) <= 0 then redis.call('HDEL', k, f) end
end
-- The apps a call names: 'all' or 'some' followed by the appids.
local function apps_from(at)
  if ARGV[at] == 'all' then return redis.call('SMEMBERS', P .. 'o:apps') end
  local list = {}
  for i = at + 1, #ARGV do list[#list + 1] = ARGV[i] end
  return list
end
local function leased_now(id, now)
  local l = redis.call('ZSCORE', LEASED, id)
  return l and tonumber(l) > now
end
"#;

/// ARGV: prefix, appid, event, touser, idempotency key, message, due_ms, now_ms.
/// Returns {id, due_ms, duplicate (0|1)}.
const ENQUEUE: &str = r#"
local app, event = ARGV[2], ARGV[3]
local ik = P .. 'o:key:' .. ARGV[5]
local have = redis.call('GET', ik)
if have then
  local d = redis.call('HGET', mkey(have), 'd')
  if d then return {have, d, '1'} end
end
local id = string.format('%016d', redis.call('INCR', P .. 'o:seq'))
redis.call('HSET', mkey(id), 'a', app, 'e', event, 'u', ARGV[4], 'k', ARGV[5], 'm', ARGV[6],
  's', '0', 'd', ARGV[7], 'n', '0', 'c', '0', 'r', '', 'p', '0', 'ct', ARGV[8], 'f', '0')
redis.call('SET', ik, id)
redis.call('ZADD', due_key(app), ARGV[7], id)
redis.call('SADD', P .. 'o:apps', app)
count(app, event, '0', 1)
return {id, ARGV[7], '0'}
"#;

/// ARGV: prefix, now_ms, lease_ms, token, why abandoned, its errcode, then the apps.
/// Returns {{abandoned id, key, ...}, {} or {id, appid, event, key, message,
/// attempts, lease end}}.
const CLAIM: &str = r#"
local now = tonumber(ARGV[2])
local abandoned = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', POSTING, '-inf', now)) do
  redis.call('ZREM', POSTING, id)
  redis.call('ZREM', LEASED, id)
  local k = mkey(id)
  local h = redis.call('HMGET', k, 's', 'a', 'e', 'k', 'n')
  if h[1] == '0' then
    redis.call('HSET', k, 's', '3', 'p', '0', 'c', ARGV[6], 'r', ARGV[5], 'f', fmt(now),
      'n', fmt(tonumber(h[5]) + 1))
    redis.call('HDEL', k, 't', 'l')
    redis.call('ZREM', due_key(h[2]), id)
    redis.call('ZADD', dead_key(h[2]), now, id)
    count(h[2], h[3], '0', -1)
    count(h[2], h[3], '3', 1)
    abandoned[#abandoned + 1] = id
    abandoned[#abandoned + 1] = h[4]
  end
end
local best, best_due
for _, app in ipairs(apps_from(7)) do
  local zk = due_key(app)
  local off = 0
  local done = false
  while not done do
    local batch = redis.call('ZRANGEBYSCORE', zk, '-inf', now, 'WITHSCORES', 'LIMIT', off, 64)
    if #batch == 0 then break end
    for i = 1, #batch, 2 do
      local id, due = batch[i], tonumber(batch[i + 1])
      if best and (due > best_due or (due == best_due and id > best)) then
        done = true
        break
      end
      if not leased_now(id, now) then
        best, best_due = id, due
        done = true
        break
      end
    end
    off = off + 64
  end
end
if not best then return {abandoned, {}} end
local k = mkey(best)
local lease_end = now + tonumber(ARGV[3])
redis.call('HSET', k, 't', ARGV[4], 'l', fmt(lease_end))
redis.call('ZADD', LEASED, lease_end, best)
local h = redis.call('HMGET', k, 'a', 'e', 'k', 'm', 'n')
return {abandoned, {best, h[1], h[2], h[3], h[4], h[5], fmt(lease_end)}}
"#;

/// ARGV: prefix, id, token. Returns 1, or 0 when the claim was lost.
const MARK_POSTING: &str = r#"
local k = mkey(ARGV[2])
local h = redis.call('HMGET', k, 's', 't', 'l')
if h[1] ~= '0' or h[2] ~= ARGV[3] then return 0 end
redis.call('HSET', k, 'p', '1')
redis.call('ZADD', POSTING, h[3], ARGV[2])
return 1
"#;

/// ARGV: prefix, id, token, how (sent|retry|dead|uncertain|release), now_ms,
/// due_ms, counted (0|1), errcode, errmsg, TTL of a sent record in ms.
/// Returns 1, or 0 when the claim was lost.
const SETTLE: &str = r#"
local id, how, now = ARGV[2], ARGV[4], ARGV[5]
local k = mkey(id)
local h = redis.call('HMGET', k, 's', 't', 'a', 'e', 'k', 'n')
if h[1] ~= '0' or h[2] ~= ARGV[3] then return 0 end
local app, event = h[3], h[4]
redis.call('HDEL', k, 't', 'l')
redis.call('HSET', k, 'p', '0')
redis.call('ZREM', LEASED, id)
redis.call('ZREM', POSTING, id)
if how == 'sent' then
  redis.call('HSET', k, 's', '1', 'm', '', 'd', now, 'f', now)
  redis.call('ZREM', due_key(app), id)
  redis.call('ZADD', SENT, now, id .. '|' .. app .. '|' .. event)
  count(app, event, '0', -1)
  count(app, event, '1', 1)
  redis.call('PEXPIRE', k, ARGV[10])
  redis.call('PEXPIRE', P .. 'o:key:' .. h[5], ARGV[10])
elseif how == 'retry' then
  redis.call('HSET', k, 'd', ARGV[6], 'n', fmt(tonumber(h[6]) + tonumber(ARGV[7])),
    'c', ARGV[8], 'r', ARGV[9])
  redis.call('ZADD', due_key(app), ARGV[6], id)
elseif how == 'dead' or how == 'uncertain' then
  local st = (how == 'dead') and '2' or '3'
  redis.call('HSET', k, 's', st, 'n', fmt(tonumber(h[6]) + 1), 'c', ARGV[8], 'r', ARGV[9], 'f', now)
  redis.call('ZREM', due_key(app), id)
  redis.call('ZADD', dead_key(app), now, id)
  count(app, event, '0', -1)
  count(app, event, st, 1)
end
return 1
"#;

/// ARGV: prefix, now_ms, dead letters per app, then the apps. Returns rows:
/// {'c', event, state, n}, {'d', event} per due message, {'i', event} per
/// claimed one, {'x', id, appid, event, touser, state, attempts, errcode,
/// errmsg, key, created, finished} per dead letter.
const STATS: &str = r#"
local now = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local rows = {}
local apps = apps_from(4)
local wanted = {}
for _, app in ipairs(apps) do
  wanted[app] = true
  local all = redis.call('HGETALL', P .. 'o:count:' .. app)
  for i = 1, #all, 2 do
    local event, st = string.match(all[i], '^(.*)|(%d)$')
    if event then rows[#rows + 1] = {'c', event, st, all[i + 1]} end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due_key(app), '-inf', now)) do
    if not leased_now(id, now) then
      rows[#rows + 1] = {'d', redis.call('HGET', mkey(id), 'e') or ''}
    end
  end
  if limit > 0 then
    for _, id in ipairs(redis.call('ZREVRANGE', dead_key(app), 0, limit - 1)) do
      local h = redis.call('HMGET', mkey(id), 'a', 'e', 'u', 's', 'n', 'c', 'r', 'k', 'ct', 'f')
      if h[1] then
        rows[#rows + 1] = {'x', id, h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10]}
      end
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASED, '(' .. fmt(now), '+inf')) do
  local h = redis.call('HMGET', mkey(id), 's', 'a', 'e')
  if h[1] == '0' and wanted[h[2]] then rows[#rows + 1] = {'i', h[3]} end
end
return rows
"#;

/// ARGV: prefix, now_ms, then the apps. Returns how many messages are due and unclaimed.
const COUNT_DUE: &str = r#"
local now = tonumber(ARGV[2])
local claimed = redis.call('ZRANGEBYSCORE', LEASED, '(' .. fmt(now), '+inf')
local n = 0
for _, app in ipairs(apps_from(3)) do
  local zk = due_key(app)
  n = n + redis.call('ZCOUNT', zk, '-inf', now)
  for _, id in ipairs(claimed) do
    local d = redis.call('ZSCORE', zk, id)
    if d and tonumber(d) <= now then n = n - 1 end
  end
end
return n
"#;

/// ARGV: prefix, appid, id, now_ms. Returns 'ok', 'none' or the state found.
const REQUEUE: &str = r#"
local app, id = ARGV[2], ARGV[3]
local k = mkey(id)
local h = redis.call('HMGET', k, 's', 'a', 'e')
if not h[1] or h[2] ~= app then return 'none' end
if h[1] ~= '2' then return h[1] end
redis.call('HSET', k, 's', '0', 'd', ARGV[4], 'n', '0', 'f', '0')
redis.call('ZREM', dead_key(app), id)
redis.call('ZADD', due_key(app), ARGV[4], id)
count(app, h[3], '2', -1)
count(app, h[3], '0', 1)
return 'ok'
"#;

/// ARGV: prefix, appid, id, now_ms. Returns 'ok', 'none' or the state found.
const REMOVE: &str = r#"
local app, id = ARGV[2], ARGV[3]
local k = mkey(id)
local h = redis.call('HMGET', k, 's', 'a', 'e', 'k', 'l', 'p')
if not h[1] or h[2] ~= app then return 'none' end
local claimed = h[1] == '0' and h[5] and tonumber(h[5]) > tonumber(ARGV[4])
if h[1] == '1' or claimed or h[6] == '1' then return h[1] end
redis.call('DEL', k)
local ik = P .. 'o:key:' .. h[4]
if redis.call('GET', ik) == id then redis.call('DEL', ik) end
redis.call('ZREM', due_key(app), id)
redis.call('ZREM', dead_key(app), id)
redis.call('ZREM', LEASED, id)
redis.call('ZREM', POSTING, id)
count(app, h[3], h[1], -1)
return 'ok'
"#;

/// ARGV: prefix, before_ms, batch size. Returns how many sent records went.
const FORGET_SENT: &str = r#"
local gone = redis.call('ZRANGEBYSCORE', SENT, '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(gone) do
  redis.call('ZREM', SENT, member)
  local id, app, event = string.match(member, '^(%d+)|([^|]*)|(.*)$')
  if id then
    local k = mkey(id)
    local h = redis.call('HMGET', k, 's', 'k')
    -- A record Redis already let go of by its TTL is still counted until now.
    if not h[1] or h[1] == '1' then
      if h[1] then
        redis.call('DEL', k)
        local ik = P .. 'o:key:' .. h[2]
        if redis.call('GET', ik) == id then redis.call('DEL', ik) end
      end
      count(app, event, '1', -1)
    end
  end
end
return #gone
"#;

struct Scripts {
    enqueue: Script,
    claim: Script,
    mark_posting: Script,
    settle: Script,
    stats: Script,
    count_due: Script,
    requeue: Script,
    remove: Script,
    forget_sent: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            enqueue: s(ENQUEUE),
            claim: s(CLAIM),
            mark_posting: s(MARK_POSTING),
            settle: s(SETTLE),
            stats: s(STATS),
            count_due: s(COUNT_DUE),
            requeue: s(REQUEUE),
            remove: s(REMOVE),
            forget_sent: s(FORGET_SENT),
        }
    }
}

/// The outbox on Redis, through the ledger store's connections (one pool per
/// process, reopened after a fork) and key prefix.
pub struct RedisOutbox {
    server: RedisStore,
    scripts: Scripts,
}

impl fmt::Debug for RedisOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOutbox")
            .field("server", &self.server)
            .finish()
    }
}

fn padded(id: u64) -> String {
    format!("{id:016}")
}

/// The apps argument of a script: `all`, or `some` and the list.
fn apps_args(apps: Option<&[String]>) -> Vec<String> {
    match apps {
        None => vec!["all".to_string()],
        Some(list) => std::iter::once("some".to_string())
            .chain(list.iter().cloned())
            .collect(),
    }
}

impl RedisOutbox {
    /// Connects once, so that a server that is down is reported at `configure`.
    pub fn open(spec: &str) -> Result<RedisOutbox> {
        Ok(RedisOutbox {
            server: RedisStore::open(spec)?,
            scripts: Scripts::new(),
        })
    }

    fn call<T: FromRedisValue>(&self, script: &Script, args: &[String]) -> Result<T> {
        // On a cluster every outbox key shares the prefix's slot (the
        // scripts build the keys of the apps they visit), and the key named
        // routes the script to that slot's node.
        let prefix = self.server.slot(self.server.prefix());
        self.server.run(|c| {
            let mut invocation = script.prepare_invoke();
            invocation.key(format!("{prefix}o:seq"));
            invocation.arg(&prefix);
            for a in args {
                invocation.arg(a);
            }
            invocation.invoke(c)
        })
    }

    fn unexpected(&self, what: &str) -> Error {
        Error::store(format!(
            "redis store {}: unexpected answer to outbox {what}",
            self.server.address()
        ))
    }

    fn number<T: std::str::FromStr>(&self, what: &str, text: &str) -> Result<T> {
        text.parse().map_err(|_| self.unexpected(what))
    }

    fn state(&self, what: &str, text: &str) -> Result<State> {
        State::from_code(self.number(what, text)?)
    }
}

impl OutboxStore for RedisOutbox {
    fn describe(&self) -> String {
        self.server.address().to_string()
    }

    fn enqueue(&self, m: &NewMessage, now_ms: i64) -> Result<Enqueued> {
        let answer: Vec<String> = self.call(
            &self.scripts.enqueue,
            &[
                m.appid.clone(),
                m.event.clone(),
                m.touser.clone(),
                m.idempotency_key.clone(),
                m.message.clone(),
                m.due_ms.to_string(),
                now_ms.to_string(),
            ],
        )?;
        match answer.as_slice() {
            [id, due, dup] => Ok(Enqueued {
                id: self.number("enqueue", id)?,
                due_ms: self.number("enqueue", due)?,
                duplicate: dup == "1",
            }),
            _ => Err(self.unexpected("enqueue")),
        }
    }

    fn claim(
        &self,
        apps: Option<&[String]>,
        now_ms: i64,
        lease_ms: i64,
        token: i64,
    ) -> Result<Claim> {
        let mut args = vec![
            now_ms.to_string(),
            lease_ms.to_string(),
            token.to_string(),
            ABANDONED.to_string(),
            ABANDONED_ERRCODE.to_string(),
        ];
        args.extend(apps_args(apps));
        let (abandoned, pick): (Vec<String>, Vec<String>) =
            self.call(&self.scripts.claim, &args)?;
        let mut out = Claim::default();
        for pair in abandoned.chunks(2) {
            let [id, key] = pair else {
                return Err(self.unexpected("claim"));
            };
            out.abandoned.push(Abandoned {
                id: self.number("claim", id)?,
                idempotency_key: key.clone(),
            });
        }
        match pick.as_slice() {
            [] => {}
            [id, appid, event, key, message, attempts, lease_end] => {
                let attempts: i64 = self.number("claim", attempts)?;
                out.message = Some(Claimed {
                    id: self.number("claim", id)?,
                    appid: appid.clone(),
                    event: event.clone(),
                    idempotency_key: key.clone(),
                    message: message.clone(),
                    attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                    token,
                    lease_until_ms: self.number("claim", lease_end)?,
                });
            }
            _ => return Err(self.unexpected("claim")),
        }
        Ok(out)
    }

    fn mark_posting(&self, id: u64, token: i64) -> Result<()> {
        let marked: i64 =
            self.call(&self.scripts.mark_posting, &[padded(id), token.to_string()])?;
        if marked == 1 {
            Ok(())
        } else {
            Err(lost(id))
        }
    }

    fn settle(&self, id: u64, token: i64, how: &Settlement, now_ms: i64) -> Result<bool> {
        let (name, due_ms, counted, errcode, errmsg) = match how {
            Settlement::Sent => ("sent", 0, false, 0, ""),
            Settlement::Retry {
                due_ms,
                count,
                errcode,
                errmsg,
            } => ("retry", *due_ms, *count, *errcode, errmsg.as_str()),
            Settlement::Dead { errcode, errmsg } => ("dead", 0, true, *errcode, errmsg.as_str()),
            Settlement::Uncertain { errcode, errmsg } => {
                ("uncertain", 0, true, *errcode, errmsg.as_str())
            }
            Settlement::Release => ("release", 0, false, 0, ""),
        };
        let held: i64 = self.call(
            &self.scripts.settle,
            &[
                padded(id),
                token.to_string(),
                name.to_string(),
                now_ms.to_string(),
                due_ms.to_string(),
                u8::from(counted).to_string(),
                errcode.to_string(),
                errmsg.to_string(),
                (SENT_KEPT_MS + GRACE_MS).to_string(),
            ],
        )?;
        Ok(held == 1)
    }

    fn stats(&self, appid: Option<&str>, now_ms: i64, dead_limit: usize) -> Result<OutboxStats> {
        let list: Vec<String> = appid.map(|a| vec![a.to_string()]).unwrap_or_default();
        let mut args = vec![now_ms.to_string(), dead_limit.to_string()];
        args.extend(apps_args(appid.map(|_| list.as_slice())));
        let rows: Vec<Vec<String>> = self.call(&self.scripts.stats, &args)?;
        let mut stats = OutboxStats::default();
        let mut dead = Vec::new();
        for row in &rows {
            match row.as_slice() {
                [kind, event, state, n] if kind == "c" => {
                    let state = self.state("stats", state)?;
                    let n: u64 = self.number("stats", n)?;
                    stats.total.add(state, n, 0, 0);
                    stats
                        .by_event
                        .entry(event.clone())
                        .or_insert_with(Counts::default)
                        .add(state, n, 0, 0);
                }
                [kind, event] if kind == "d" || kind == "i" => {
                    let (due, in_flight) = if kind == "d" { (1, 0) } else { (0, 1) };
                    stats.total.add(State::Pending, 0, due, in_flight);
                    stats
                        .by_event
                        .entry(event.clone())
                        .or_insert_with(Counts::default)
                        .add(State::Pending, 0, due, in_flight);
                }
                [kind, id, appid, event, touser, state, attempts, errcode, errmsg, key, created, finished]
                    if kind == "x" =>
                {
                    let attempts: i64 = self.number("stats", attempts)?;
                    let created: i64 = self.number("stats", created)?;
                    let finished: i64 = self.number("stats", finished)?;
                    dead.push((
                        finished,
                        DeadLetter {
                            id: self.number("stats", id)?,
                            appid: appid.clone(),
                            event: event.clone(),
                            touser: touser.clone(),
                            state: self.state("stats", state)?.as_str(),
                            attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                            errcode: self.number("stats", errcode)?,
                            errmsg: errmsg.clone(),
                            idempotency_key: key.clone(),
                            enqueued_at: created.div_euclid(1000),
                            failed_at: finished.div_euclid(1000),
                        },
                    ));
                }
                _ => return Err(self.unexpected("stats")),
            }
        }
        // Each app gave its newest; the newest of all of them are kept.
        dead.sort_by_key(|(finished, d)| std::cmp::Reverse((*finished, d.id)));
        dead.truncate(dead_limit);
        stats.dead_letters = dead.into_iter().map(|(_, d)| d).collect();
        Ok(stats)
    }

    fn count_due(&self, apps: Option<&[String]>, now_ms: i64) -> Result<u64> {
        if apps.is_some_and(|a| a.is_empty()) {
            return Ok(0);
        }
        let mut args = vec![now_ms.to_string()];
        args.extend(apps_args(apps));
        let n: i64 = self.call(&self.scripts.count_due, &args)?;
        Ok(n.max(0) as u64)
    }

    fn requeue(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        let answer: String = self.call(
            &self.scripts.requeue,
            &[appid.to_string(), padded(id), now_ms.to_string()],
        )?;
        match answer.as_str() {
            "ok" => Ok(()),
            "none" => Err(not_found("outbox_requeue", appid, id, None)),
            state => Err(not_found(
                "outbox_requeue",
                appid,
                id,
                Some(self.state("requeue", state)?),
            )),
        }
    }

    fn remove(&self, appid: &str, id: u64, now_ms: i64) -> Result<()> {
        let answer: String = self.call(
            &self.scripts.remove,
            &[appid.to_string(), padded(id), now_ms.to_string()],
        )?;
        match answer.as_str() {
            "ok" => Ok(()),
            "none" => Err(not_found("outbox_drop", appid, id, None)),
            state => Err(not_found(
                "outbox_drop",
                appid,
                id,
                Some(self.state("drop", state)?),
            )),
        }
    }

    fn forget_sent(&self, before_ms: i64) -> Result<u64> {
        let mut total = 0u64;
        loop {
            let n: i64 = self.call(
                &self.scripts.forget_sent,
                &[before_ms.to_string(), FORGET_BATCH.to_string()],
            )?;
            total += n.max(0) as u64;
            if n < FORGET_BATCH {
                return Ok(total);
            }
        }
    }
}
