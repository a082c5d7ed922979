//! The Redis store, for shops whose PHP workers run on several hosts. Each user
//! is one hash (permits, the leases on them, leases that ran out) changed only
//! by Lua scripts, so every operation is atomic on the server. Times are the
//! ledger's clock, passed in; Redis TTLs only clear out what nobody needs.
//! A single Redis server (`redis://`) or a Redis Cluster
//! (`redis+cluster://host1:port,host2:port/?prefix=…`): every script touches
//! the keys of one hash slot only (on a cluster the user's hash is tagged by
//! app and buyer, the token's by app), the app's set of users is kept beside
//! the scripts, and lease ids are drawn by the store, not counted in a key of
//! their own. MOVED and ASK redirections are followed by the redis crate's
//! cluster client. The two scripts of a send that touch an idempotency record
//! and a user's hash together (`CLAIM_AND_TAKE`, `CONSUME_AND_COMPLETE`:
//! two round trips per send instead of four) run on a single server only; a
//! cluster takes those steps one by one.
//!
//! Each app's access token (per token mode) is one hash too, with the fetch lease of
//! the process fetching the next one, so that all hosts fetch once per lifetime.

mod stock;

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{Connection, ConnectionLike, RedisResult, Script, Value};

use super::{
    claim_and_take_in_steps, consume_and_complete_in_steps, new_lease_id, usable, Added,
    ClaimedTake, KeyClaim, Kind, Lease, NewPermit, PermitRequest, PermitStats, Remaining,
    SharedToken, SpentAndRecorded, Store, TokenStore, TokenTurn, IDEMPOTENCY_KEEP_MS,
    RETURNED_KEEP_MS, TOKEN_KEEP_MS,
};
use crate::error::{Error, Result};
use crate::secret::Secret;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Added to every TTL, so that a key never disappears while the ledger's clock
/// still counts it as alive.
const GRACE_MS: i64 = 24 * 3600 * 1000;
pub(crate) const DEFAULT_PREFIX: &str = "fashop-notify:";
/// Connections kept for reuse per process.
const POOL_SIZE: usize = 8;
/// Leases whose guessed uses left are kept per process; beyond, all are
/// forgotten (leases never spent here, e.g. given back after a crash of the
/// request, would otherwise pile up): a spend without a guess takes one
/// round trip more, nothing else.
const GUESSES_KEPT: usize = 4096;
/// A pooled connection idle longer than this is checked with a PING before
/// it carries a call: the server may have restarted meanwhile, and a call
/// written to the dead connection fails (or, for a call that must not run
/// twice, cannot be retried). A busy worker pays nothing.
const CHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// Whether a call may run again on a new connection when its connection broke
/// under it (EOF, reset): the first run may have happened, so only calls whose
/// second run changes nothing more than the first are rerun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rerun {
    /// Reads, and writes keyed so that a second run is a no-op: settling or
    /// giving back a lease by its id, a record's outcome, a token's publish.
    Safe,
    /// Adding a permit (counted), taking one (a second lease), claiming an
    /// idempotency key (a second claim sees the first), outbox changes.
    Never,
}

/// Helpers every script shares. A permit is the field `KIND:VALUE` with
/// `USES|LEASED|PAID|CREATED|EXPIRES|ORDER_SN` (EXPIRES -1: never); a lease is
/// `L:ID` with `EXPIRES_MS|PERMIT_FIELD`; a lease that ran out and gave its use
/// back is `R:ID` with `FORGET_AT_MS|PERMIT_FIELD`.
const PRELUDE: &str = r#"
local function fmt(n) return string.format('%.0f', n) end
local function parse(d)
  local u, l, p, c, e, sn = string.match(d, '^(%-?%d+)|(%-?%d+)|(%d)|(%-?%d+)|(%-?%d+)|(.*)$')
  return {uses = tonumber(u), leased = tonumber(l), paid = (p == '1'),
          created = tonumber(c), expires = tonumber(e), order_sn = sn}
end
local function pack(r)
  return fmt(r.uses) .. '|' .. fmt(r.leased) .. '|' .. (r.paid and '1' or '0') .. '|' ..
         fmt(r.created) .. '|' .. fmt(r.expires) .. '|' .. r.order_sn
end
local function is_permit(f)
  local t = string.sub(f, 1, 2)
  return t ~= 'L:' and t ~= 'R:'
end
local function live(r, now_s) return r.expires < 0 or r.expires > now_s end
local function split(d)
  local at, pf = string.match(d, '^(%-?%d+)|(.*)$')
  return tonumber(at), pf
end
-- Gives the uses of leases that ran out back to their permits; forgets old returned leases.
local function reclaim(key, now_ms, keep_ms)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local f = all[i]
    local t = string.sub(f, 1, 2)
    if t == 'L:' or t == 'R:' then
      local at, pf = split(all[i + 1])
      if at <= now_ms then
        redis.call('HDEL', key, f)
        if t == 'L:' then
          local pd = redis.call('HGET', key, pf)
          if pd then
            local r = parse(pd)
            r.uses = r.uses + 1
            r.leased = r.leased - 1
            redis.call('HSET', key, pf, pack(r))
          end
          redis.call('HSET', key, 'R:' .. string.sub(f, 3), fmt(now_ms + keep_ms) .. '|' .. pf)
        end
      end
    end
  end
end
-- Removes a permit and every lease on it.
local function drop_permit(key, pf)
  redis.call('HDEL', key, pf)
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    if not is_permit(all[i]) then
      local _, lpf = split(all[i + 1])
      if lpf == pf then redis.call('HDEL', key, all[i]) end
    end
  end
end
-- Keeps the user's hash as long as anything in it can matter.
local function retime(key, now_ms, grace_ms)
  local all = redis.call('HGETALL', key)
  if #all == 0 then return end
  local last = now_ms
  for i = 1, #all, 2 do
    if is_permit(all[i]) then
      local r = parse(all[i + 1])
      if r.expires < 0 then
        redis.call('PERSIST', key)
        return
      end
      last = math.max(last, r.expires * 1000)
    else
      local at = split(all[i + 1])
      last = math.max(last, at)
    end
  end
  redis.call('PEXPIRE', key, fmt(last - now_ms + grace_ms))
end
-- What the user still has for a permit field's template (subscribe) or kind.
local function remaining(key, field, now_s)
  local kind = string.sub(field, 1, 1)
  if kind == '0' then
    local d = redis.call('HGET', key, field)
    if d then return parse(d).uses end
    return 0
  end
  local sum = 0
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local f = all[i]
    if is_permit(f) and string.sub(f, 1, 1) == kind then
      local r = parse(all[i + 1])
      if live(r, now_s) and (kind == '1' or r.paid) then sum = sum + r.uses end
    end
  end
  return sum
end
"#;

/// KEYS: user hash. ARGV: field, kind, uses, paid, created, expires, order_sn,
/// now_ms, cap, max uses, openid (unused), grace_ms. The caller adds the user
/// to the app's set after it (another slot on a cluster).
const ADD: &str = r#"
local key = KEYS[1]
local now_ms = tonumber(ARGV[8])
local now_s = math.floor(now_ms / 1000)
local result = 'stored'
local d = redis.call('HGET', key, ARGV[1])
if d then
  local r = parse(d)
  if ARGV[2] == '0' then
    r.uses = math.max(r.uses, math.min(r.uses + tonumber(ARGV[3]), tonumber(ARGV[10])))
    r.created = math.max(r.created, tonumber(ARGV[5]))
    redis.call('HSET', key, ARGV[1], pack(r))
    result = 'counted'
  elseif ARGV[2] == '2' and ARGV[4] == '1' and not r.paid then
    r.paid = true
    redis.call('HSET', key, ARGV[1], pack(r))
    result = 'marked_paid'
  else
    return 'duplicate'
  end
else
  redis.call('HSET', key, ARGV[1], pack({uses = tonumber(ARGV[3]), leased = 0, paid = (ARGV[4] == '1'),
    created = tonumber(ARGV[5]), expires = tonumber(ARGV[6]), order_sn = ARGV[7]}))
  if ARGV[2] ~= '0' then
    local prefix = ARGV[2] .. ':'
    local all = redis.call('HGETALL', key)
    local mine = {}
    for i = 1, #all, 2 do
      local f = all[i]
      if string.sub(f, 1, 2) == prefix then
        local r = parse(all[i + 1])
        if (not live(r, now_s)) and r.leased == 0 then
          redis.call('HDEL', key, f)
        else
          table.insert(mine, {f = f, created = r.created})
        end
      end
    end
    local cap = tonumber(ARGV[9])
    if #mine > cap then
      table.sort(mine, function(a, b)
        if a.created ~= b.created then return a.created < b.created end
        return a.f < b.f
      end)
      for i = 1, #mine - cap do drop_permit(key, mine[i].f) end
    end
  end
end
retime(key, now_ms, tonumber(ARGV[12]))
return result
"#;

/// Takes one use for a request (mode `s`: the subscribe grant of template
/// `arg`; mode `l`: a legacy permit, the paid prepay_id of order `arg` first),
/// leased as `id` until `now_ms + lease_ms`. Returns {} or {lease id, permit
/// field, order_sn, expires_ms, uses left}: the uses the user would have left
/// once this use is spent, if nothing else changed before (a guess that
/// spares the spend a round trip, see `consume_and_complete`).
const TAKE_FN: &str = r#"
local function take(key, now_ms, lease_ms, mode, arg, keep_ms, grace_ms, id)
  local now_s = math.floor(now_ms / 1000)
  reclaim(key, now_ms, keep_ms)
  local pick, pr
  if mode == 's' then
    local f = '0:' .. arg
    local d = redis.call('HGET', key, f)
    if d then
      local r = parse(d)
      if r.uses > 0 then pick, pr = f, r end
    end
  else
    local bp, bpr, bf, bfr
    local function better(f, r, cf, cr)
      if not cf then return true end
      if r.expires ~= cr.expires then return r.expires < cr.expires end
      if r.created ~= cr.created then return r.created < cr.created end
      return f < cf
    end
    local all = redis.call('HGETALL', key)
    for i = 1, #all, 2 do
      local f = all[i]
      if is_permit(f) then
        local kind = string.sub(f, 1, 1)
        if kind ~= '0' then
          local r = parse(all[i + 1])
          if r.uses > 0 and live(r, now_s) then
            if kind == '2' then
              if arg ~= '' and r.order_sn == arg and r.paid and better(f, r, bp, bpr) then bp, bpr = f, r end
            elseif better(f, r, bf, bfr) then
              bf, bfr = f, r
            end
          end
        end
      end
    end
    if bp then pick, pr = bp, bpr else pick, pr = bf, bfr end
  end
  if not pick then return {} end
  pr.uses = pr.uses - 1
  pr.leased = pr.leased + 1
  redis.call('HSET', key, pick, pack(pr))
  local expires = now_ms + lease_ms
  redis.call('HSET', key, 'L:' .. id, fmt(expires) .. '|' .. pick)
  retime(key, now_ms, grace_ms)
  return {id, pick, pr.order_sn, fmt(expires), fmt(remaining(key, pick, now_s))}
end
"#;

/// KEYS: user hash. ARGV: now_ms, lease_ms, mode (s|l), template_id or
/// order_sn ('' for none), keep_ms, grace_ms, the new lease's id.
/// Returns what `take` does.
const TAKE: &str = r#"
return take(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4],
  tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7])
"#;

/// Spends the use leased as `id` on permit field `pf` (a lease that ran out
/// and gave its use back still spends it; one settled already spends
/// nothing). Returns the uses left.
const CONSUME_FN: &str = r#"
local function consume(key, id, pf_asked, now_ms, keep_ms, grace_ms)
  reclaim(key, now_ms, keep_ms)
  local lf, rf = 'L:' .. id, 'R:' .. id
  local d = redis.call('HGET', key, lf)
  local returned = false
  if not d then
    d = redis.call('HGET', key, rf)
    returned = true
  end
  if d then
    local _, pf = split(d)
    redis.call('HDEL', key, lf, rf)
    local pd = redis.call('HGET', key, pf)
    if pd then
      local r = parse(pd)
      if returned then r.uses = math.max(r.uses - 1, 0) else r.leased = r.leased - 1 end
      if r.uses == 0 and r.leased == 0 then
        redis.call('HDEL', key, pf)
      else
        redis.call('HSET', key, pf, pack(r))
      end
    end
  end
  local left = remaining(key, pf_asked, math.floor(now_ms / 1000))
  retime(key, now_ms, grace_ms)
  return left
end
"#;

/// KEYS: user hash. ARGV: lease id, permit field, now_ms, keep_ms, grace_ms.
/// Returns the uses left.
const CONSUME: &str = r#"
return consume(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
"#;

/// `consume`, then the send's outcome recorded under its key when the uses
/// left are the ones the outcome was written with (the take's guess).
/// KEYS: user hash, record. ARGV: lease id, permit field, now_ms, keep_ms,
/// grace_ms, the guessed uses left, the record, its TTL (ms).
/// Returns {uses left, 1 when the record was written}.
const CONSUME_AND_COMPLETE: &str = r#"
local left = consume(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if left ~= tonumber(ARGV[6]) then return {left, 0} end
redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[8])
return {left, 1}
"#;

/// KEYS: user hash. ARGV: lease id.
const GIVE_BACK: &str = r#"
local key = KEYS[1]
local lf = 'L:' .. ARGV[1]
local d = redis.call('HGET', key, lf)
if d then
  local _, pf = split(d)
  redis.call('HDEL', key, lf)
  local pd = redis.call('HGET', key, pf)
  if pd then
    local r = parse(pd)
    r.uses = r.uses + 1
    r.leased = r.leased - 1
    redis.call('HSET', key, pf, pack(r))
  end
else
  redis.call('HDEL', key, 'R:' .. ARGV[1])
end
return 1
"#;

/// KEYS: user hash. ARGV: lease id, permit field.
const DISCARD: &str = r#"
redis.call('HDEL', KEYS[1], 'L:' .. ARGV[1], 'R:' .. ARGV[1])
drop_permit(KEYS[1], ARGV[2])
return 1
"#;

/// KEYS: user hash. ARGV: the grant's field. Returns the unleased uses dropped.
const DROP_GRANTS: &str = r#"
local d = redis.call('HGET', KEYS[1], ARGV[1])
if not d then return 0 end
local uses = parse(d).uses
drop_permit(KEYS[1], ARGV[1])
return uses
"#;

/// KEYS: user hash. ARGV: now_ms, keep_ms, openid (unused), grace_ms,
/// grants_before (unix seconds, or '' for none: subscribe grants last accepted
/// before it go too). Returns {how many permits went, 1 when the hash is gone}.
const PURGE_USER: &str = r#"
local key = KEYS[1]
local now_ms = tonumber(ARGV[1])
local now_s = math.floor(now_ms / 1000)
reclaim(key, now_ms, tonumber(ARGV[2]))
local removed = 0
local all = redis.call('HGETALL', key)
for i = 1, #all, 2 do
  if is_permit(all[i]) then
    local r = parse(all[i + 1])
    local old = ARGV[5] ~= '' and string.sub(all[i], 1, 2) == '0:' and r.created < tonumber(ARGV[5])
    if ((not live(r, now_s)) or old) and r.leased == 0 then
      drop_permit(key, all[i])
      removed = removed + 1
    end
  end
end
if redis.call('EXISTS', key) == 0 then return {removed, 1} end
retime(key, now_ms, tonumber(ARGV[4]))
return {removed, 0}
"#;

/// An idempotency record is `F|UNTIL_MS` (claimed) or `D|UNTIL_MS|OUTCOME`
/// (done). `claim_state` says what a claim finds: {'done', outcome},
/// {'inflight'}, or nil when the key is free (no record, or its time is
/// over); `claim` writes the caller's claim.
const CLAIM_FNS: &str = r#"
local function claim_state(rkey, now_ms)
  local v = redis.call('GET', rkey)
  if v then
    local st, untl, rest = string.match(v, '^(%a)|(%-?%d+)|?(.*)$')
    if st and tonumber(untl) > now_ms then
      if st == 'D' then return {'done', rest} end
      return {'inflight'}
    end
  end
  return nil
end
local function claim(rkey, now_ms, lease_ms, grace_ms)
  redis.call('SET', rkey, 'F|' .. fmt(now_ms + lease_ms), 'PX', fmt(lease_ms + grace_ms))
end
"#;

/// KEYS: record. ARGV: now_ms, lease_ms, grace_ms.
/// Returns {'fresh'}, {'inflight'} or {'done', outcome}.
const CLAIM: &str = r#"
local now_ms = tonumber(ARGV[1])
local state = claim_state(KEYS[1], now_ms)
if state then return state end
claim(KEYS[1], now_ms, tonumber(ARGV[2]), tonumber(ARGV[3]))
return {'fresh'}
"#;

/// A claim and, on a free key, a take, as `claim` then `take` with the claim
/// given up when no use was taken: the claim is written last, and only with
/// a lease, so a take that finds nothing (or fails) leaves the key free.
/// KEYS: record, user hash. ARGV: now_ms, claim_ms, grace_ms, lease_ms,
/// mode, template_id or order_sn, keep_ms, the new lease's id.
/// Returns {'inflight'}, {'done', outcome}, or 'fresh' followed by what
/// `take` returns.
const CLAIM_AND_TAKE: &str = r#"
local now_ms = tonumber(ARGV[1])
local state = claim_state(KEYS[1], now_ms)
if state then return state end
local taken = take(KEYS[2], now_ms, tonumber(ARGV[4]), ARGV[5], ARGV[6], tonumber(ARGV[7]),
  tonumber(ARGV[3]), ARGV[8])
if #taken > 0 then claim(KEYS[1], now_ms, tonumber(ARGV[2]), tonumber(ARGV[3])) end
table.insert(taken, 1, 'fresh')
return taken
"#;

/// KEYS: record.
const RELEASE: &str = r#"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'F|' then redis.call('DEL', KEYS[1]) end
return 1
"#;

/// The token hash: `t` token, `e` expires_at_ms, `r` refresh_at_ms, `h` fetch lease
/// holder, `u` fetch lease end (ms). KEYS: token hash. ARGV: now_ms, holder,
/// lease_ms, keep_ms. Returns {fresh|wait|fetch, lease end, token, e, r}
/// ('' for an absent token).
const TOKEN_TURN: &str = r#"
local key = KEYS[1]
local now = tonumber(ARGV[1])
local d = redis.call('HMGET', key, 't', 'e', 'r', 'h', 'u')
local t, e, r = d[1] or '', d[2] or '0', d[3] or '0'
if d[1] and tonumber(r) > now then return {'fresh', '0', t, e, r} end
if d[4] and d[4] ~= ARGV[2] and tonumber(d[5]) > now then return {'wait', d[5], t, e, r} end
local lease = tonumber(ARGV[3])
redis.call('HSET', key, 'h', ARGV[2], 'u', string.format('%.0f', now + lease))
if redis.call('PTTL', key) < lease + tonumber(ARGV[4]) then
  redis.call('PEXPIRE', key, string.format('%.0f', lease + tonumber(ARGV[4])))
end
return {'fetch', '0', t, e, r}
"#;

/// KEYS: token hash. ARGV: holder, token, expires_at_ms, refresh_at_ms, now_ms, keep_ms.
const TOKEN_PUBLISH: &str = r#"
local key = KEYS[1]
local d = redis.call('HMGET', key, 't', 'e', 'h')
-- A fetch that started before the stored token's must not replace it.
if (not d[1]) or d[1] == ARGV[2] or tonumber(d[2]) <= tonumber(ARGV[3]) then
  redis.call('HSET', key, 't', ARGV[2], 'e', ARGV[3], 'r', ARGV[4])
end
if d[3] == ARGV[1] then redis.call('HDEL', key, 'h', 'u') end
local e = tonumber(redis.call('HGET', key, 'e'))
local ttl = math.max(e - tonumber(ARGV[5]), 0) + tonumber(ARGV[6])
if redis.call('PTTL', key) < ttl then
  redis.call('PEXPIRE', key, string.format('%.0f', ttl))
end
return 1
"#;

/// KEYS: token hash. ARGV: holder.
const TOKEN_RELEASE: &str = r#"
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then redis.call('HDEL', KEYS[1], 'h', 'u') end
return 1
"#;

/// KEYS: token hash. ARGV: the failed token. Returns 1 when it was dropped.
const TOKEN_DROP_IF: &str = r#"
if redis.call('HGET', KEYS[1], 't') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 't', 'e', 'r')
  return 1
end
return 0
"#;

struct Scripts {
    add: Script,
    take: Script,
    consume: Script,
    claim_and_take: Script,
    consume_and_complete: Script,
    give_back: Script,
    discard: Script,
    drop_grants: Script,
    purge_user: Script,
    claim: Script,
    release: Script,
    token_turn: Script,
    token_publish: Script,
    token_release: Script,
    token_drop_if: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        let with = |parts: &[&str]| Script::new(&format!("{PRELUDE}\n{}", parts.concat()));
        Scripts {
            add: s(ADD),
            take: with(&[TAKE_FN, TAKE]),
            consume: with(&[CONSUME_FN, CONSUME]),
            claim_and_take: with(&[CLAIM_FNS, TAKE_FN, CLAIM_AND_TAKE]),
            consume_and_complete: with(&[CONSUME_FN, CONSUME_AND_COMPLETE]),
            give_back: s(GIVE_BACK),
            discard: s(DISCARD),
            drop_grants: s(DROP_GRANTS),
            purge_user: s(PURGE_USER),
            claim: with(&[CLAIM_FNS, CLAIM]),
            release: s(RELEASE),
            token_turn: Script::new(TOKEN_TURN),
            token_publish: Script::new(TOKEN_PUBLISH),
            token_release: Script::new(TOKEN_RELEASE),
            token_drop_if: Script::new(TOKEN_DROP_IF),
        }
    }
}

pub struct RedisStore {
    /// The address as configured, password hidden: for messages.
    address: String,
    client: RedisClient,
    prefix: String,
    scripts: Scripts,
    /// Idle connections with the pid of the process that opened them.
    pool: Mutex<Vec<Pooled>>,
    /// By lease id, the uses the take said would be left once the lease is
    /// spent (`TAKE_FN`): the outcome a spend records is written with them
    /// before the spend, so that one script spends and records.
    left_after: Mutex<HashMap<u64, u64>>,
}

/// An idle connection, the process that opened it and since when it idles.
struct Pooled {
    pid: u32,
    since: Instant,
    link: RedisLink,
}

/// Where a Redis URL points: one server, or the nodes of a cluster.
pub(crate) enum RedisClient {
    Server(redis::Client),
    Cluster(ClusterClient),
}

/// A connection to one server or to a cluster (which routes each command to
/// the node of its keys' slot and follows MOVED and ASK).
pub(crate) enum RedisLink {
    Server(Connection),
    Cluster(Box<ClusterConnection>),
}

/// The scheme of a cluster URL: `redis+cluster://[user:password@]host:port,host:port/`.
const CLUSTER_SCHEME: &str = "redis+cluster://";

impl RedisClient {
    /// `redis://…` (or `rediss://`, `unix://`) for one server,
    /// `redis+cluster://[user:password@]host:port,host:port[/]` for a cluster
    /// (any node lists the rest; several are tried in turn).
    pub(crate) fn open(url: &str) -> RedisResult<RedisClient> {
        let Some(rest) = url.strip_prefix(CLUSTER_SCHEME) else {
            return redis::Client::open(url).map(RedisClient::Server);
        };
        let rest = rest.split(['/', '?']).next().unwrap_or("");
        let (auth, hosts) = match rest.rsplit_once('@') {
            Some((auth, hosts)) => (format!("{auth}@"), hosts),
            None => (String::new(), rest),
        };
        let nodes: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("redis://{auth}{h}"))
            .collect();
        if nodes.is_empty() {
            return Err(redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "a redis+cluster URL names at least one host:port",
            )));
        }
        ClusterClient::builder(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(IO_TIMEOUT)
            .build()
            .map(RedisClient::Cluster)
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, RedisClient::Cluster(_))
    }

    /// A new connection, with `wait` as its connect, read and write timeouts.
    pub(crate) fn connect(&self, wait: Duration) -> RedisResult<RedisLink> {
        Ok(match self {
            RedisClient::Server(client) => {
                let conn = client.get_connection_with_timeout(wait)?;
                conn.set_read_timeout(Some(wait))?;
                conn.set_write_timeout(Some(wait))?;
                RedisLink::Server(conn)
            }
            RedisClient::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_read_timeout(Some(wait))?;
                conn.set_write_timeout(Some(wait))?;
                RedisLink::Cluster(Box::new(conn))
            }
        })
    }
}

impl RedisLink {
    pub(crate) fn set_timeouts(&self, wait: Duration) -> RedisResult<()> {
        match self {
            RedisLink::Server(c) => {
                c.set_read_timeout(Some(wait))?;
                c.set_write_timeout(Some(wait))
            }
            RedisLink::Cluster(c) => {
                c.set_read_timeout(Some(wait))?;
                c.set_write_timeout(Some(wait))
            }
        }
    }
}

impl ConnectionLike for RedisLink {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            RedisLink::Server(c) => c.req_packed_command(cmd),
            RedisLink::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            RedisLink::Server(c) => c.req_packed_commands(cmd, offset, count),
            RedisLink::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &redis::Cmd) -> RedisResult<Value> {
        match self {
            RedisLink::Server(c) => c.req_command(cmd),
            RedisLink::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisLink::Server(c) => c.get_db(),
            RedisLink::Cluster(c) => c.get_db(),
        }
    }

    fn supports_pipelining(&self) -> bool {
        // A cluster sends a pipeline to one node: ours go per key instead.
        matches!(self, RedisLink::Server(_))
    }

    fn check_connection(&mut self) -> bool {
        match self {
            RedisLink::Server(c) => c.check_connection(),
            RedisLink::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            RedisLink::Server(c) => c.is_open(),
            RedisLink::Cluster(c) => c.is_open(),
        }
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// `redis://user:password@host` (or `redis+cluster://…`) with the password
/// hidden, and a Unix socket's `?pass=…` (`redis+unix:///path?pass=…`).
fn hide_password(url: &str) -> String {
    let url = hide_pass_parameter(url);
    let Some((scheme, rest)) = [CLUSTER_SCHEME, "redis://"]
        .into_iter()
        .find_map(|s| Some((s, url.strip_prefix(s)?)))
    else {
        return url;
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{host}"),
            None => format!("{scheme}***@{host}"),
        },
        None => url.to_string(),
    }
}

/// The value of a `pass` query parameter (and any other credential's)
/// replaced by `***`.
fn hide_pass_parameter(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => format!("{base}?{}", crate::secret::redact_text(query)),
        None => url.to_string(),
    }
}

/// Splits our own `prefix` query parameter off a Redis URL.
pub(crate) fn split_prefix(spec: &str) -> Result<(String, String)> {
    let Some((base, query)) = spec.split_once('?') else {
        return Ok((spec.to_string(), DEFAULT_PREFIX.to_string()));
    };
    let mut prefix = DEFAULT_PREFIX.to_string();
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("prefix", p)) => {
                if p.is_empty() || p.len() > 64 || p.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(Error::invalid(format!(
                        "store prefix must be 1 to 64 characters without spaces, got {p:?}"
                    )));
                }
                prefix = p.to_string();
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((url, prefix))
}

impl RedisStore {
    /// Connects once, so that a server that is down is reported at `configure`.
    pub fn open(spec: &str) -> Result<RedisStore> {
        let (url, prefix) = split_prefix(spec)?;
        let address = hide_password(&url);
        let client = RedisClient::open(url.as_str())
            .map_err(|e| Error::store(format!("redis store {address}: {e}")))?;
        let store = RedisStore {
            address,
            client,
            prefix,
            scripts: Scripts::new(),
            pool: Mutex::new(Vec::new()),
            left_after: Mutex::new(HashMap::new()),
        };
        store.run_as(Rerun::Safe, |c| redis::cmd("PING").query::<String>(c))?;
        Ok(store)
    }

    fn connect(&self) -> RedisResult<RedisLink> {
        let conn = self.client.connect(CONNECT_TIMEOUT)?;
        conn.set_timeouts(IO_TIMEOUT)?;
        Ok(conn)
    }

    /// Runs `f` on a connection of this process, never twice (see `run_as`).
    pub(crate) fn run<T>(&self, f: impl Fn(&mut RedisLink) -> RedisResult<T>) -> Result<T> {
        self.run_as(Rerun::Never, f)
    }

    /// Runs `f` on a connection of this process. A pooled connection that
    /// idled a while is checked first; one that breaks under the call empties
    /// the pool (its siblings are as old: a server restart broke them all),
    /// and the call runs once more on a new connection when `rerun` is
    /// `Safe`. Any other failure is a STORE_ERROR: never a silent success.
    pub(crate) fn run_as<T>(
        &self,
        rerun: Rerun,
        f: impl Fn(&mut RedisLink) -> RedisResult<T>,
    ) -> Result<T> {
        let (mut conn, reused) = self.checkout()?;
        match f(&mut conn) {
            Ok(v) => {
                self.checkin(conn);
                Ok(v)
            }
            Err(e) if reused && e.is_connection_dropped() => {
                self.pool.lock().clear();
                if rerun == Rerun::Never {
                    return Err(Error::store(format!(
                        "redis store {}: the connection broke during the call ({e}); it may have run, so it was \
                         not repeated: try again (the next call connects afresh)",
                        self.address
                    )));
                }
                let mut fresh = self.connect().map_err(|e| self.error(e))?;
                let v = f(&mut fresh).map_err(|e| self.error(e))?;
                self.checkin(fresh);
                Ok(v)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// A connection of this process: a pooled one (checked when it idled
    /// past `CHECK_IDLE_AFTER`), else a new one; and whether it was pooled.
    fn checkout(&self) -> Result<(RedisLink, bool)> {
        let pid = std::process::id();
        let pooled = {
            let mut pool = self.pool.lock();
            // Connections a parent process opened belong to it.
            pool.retain(|p| p.pid == pid);
            pool.pop()
        };
        if let Some(mut p) = pooled {
            if p.since.elapsed() < CHECK_IDLE_AFTER || p.link.check_connection() {
                return Ok((p.link, true));
            }
            // The server went away since: every pooled connection with it.
            self.pool.lock().clear();
        }
        let conn = self.connect().map_err(|e| self.error(e))?;
        Ok((conn, false))
    }

    fn checkin(&self, link: RedisLink) {
        let mut pool = self.pool.lock();
        if pool.len() < POOL_SIZE {
            pool.push(Pooled {
                pid: std::process::id(),
                since: Instant::now(),
                link,
            });
        }
    }

    /// Where every key of this store starts (the outbox's too).
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the store is a Redis Cluster.
    pub(crate) fn is_cluster(&self) -> bool {
        self.client.is_cluster()
    }

    /// `part` as a hash tag on a cluster (the keys sharing it share a slot,
    /// so one script may touch them all); as it is on a single server, whose
    /// keys keep the names they always had.
    pub(crate) fn slot(&self, part: &str) -> String {
        if self.is_cluster() {
            format!("{{{part}}}")
        } else {
            part.to_string()
        }
    }

    /// The address as configured, password hidden.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    fn error(&self, e: redis::RedisError) -> Error {
        Error::store(format!("redis store {}: {e}", self.address))
    }

    fn user_key(&self, appid: &str, openid: &str) -> String {
        format!(
            "{}u:{}",
            self.prefix,
            self.slot(&format!("{appid}:{openid}"))
        )
    }

    fn users_key(&self, appid: &str) -> String {
        format!("{}users:{}", self.prefix, self.slot(appid))
    }

    fn token_key(&self, appid: &str, mode: &str) -> String {
        format!("{}token:{}:{mode}", self.prefix, self.slot(appid))
    }

    fn idempotency_key(&self, key: &str) -> String {
        format!("{}idem:{key}", self.prefix)
    }

    /// What a claim's script answered (see `CLAIM`).
    fn claim_answer(&self, answer: &[String]) -> Result<KeyClaim> {
        match answer {
            [s] if s == "fresh" => Ok(KeyClaim::Fresh),
            [s] if s == "inflight" => Ok(KeyClaim::InFlight),
            [s, outcome] if s == "done" => Ok(KeyClaim::Done(outcome.clone())),
            _ => Err(Error::store(format!(
                "redis store {}: unexpected answer to an idempotency claim",
                self.address
            ))),
        }
    }

    /// The lease `take`'s script answered (see `TAKE_FN`), its guess of the
    /// uses left kept for its spend.
    fn lease_from(&self, appid: &str, openid: &str, answer: &[String]) -> Result<Option<Lease>> {
        let bad = || {
            Error::store(format!(
                "redis store {}: unexpected answer to take",
                self.address
            ))
        };
        let [id, pf, order_sn, expires, left] = answer else {
            return if answer.is_empty() {
                Ok(None)
            } else {
                Err(bad())
            };
        };
        let (kind, value) = pf.split_once(':').ok_or_else(bad)?;
        let lease = Lease {
            id: id.parse().map_err(|_| bad())?,
            appid: appid.to_string(),
            openid: openid.to_string(),
            kind: Kind::from_code(kind.parse().map_err(|_| bad())?)?,
            value: value.to_string(),
            order_sn: (!order_sn.is_empty()).then(|| order_sn.clone()),
            expires_at_ms: expires.parse().map_err(|_| bad())?,
        };
        if let Ok(left) = left.parse() {
            let mut guesses = self.left_after.lock();
            if guesses.len() >= GUESSES_KEPT {
                guesses.clear();
            }
            guesses.insert(lease.id, left);
        }
        Ok(Some(lease))
    }
}

/// What `take`'s script is asked: the mode and its argument.
fn take_mode(request: &PermitRequest) -> (&'static str, &str) {
    match request {
        PermitRequest::Subscribe { template_id } => ("s", template_id.as_str()),
        PermitRequest::Legacy { order_sn } => ("l", order_sn.as_deref().unwrap_or("")),
    }
}

/// A finished send's idempotency record (see `CLAIM_FNS`).
fn done_record(outcome: &str, now_ms: i64) -> String {
    let until = now_ms.saturating_add(IDEMPOTENCY_KEEP_MS);
    format!("D|{until}|{outcome}")
}

/// An error the server answered with: the script was refused or stopped by
/// an error of its own, before the last of its writes (see
/// `CLAIM_AND_TAKE`). Any other failure (the connection, a timeout) leaves
/// open whether it ran.
fn answered_by_server(e: &redis::RedisError) -> bool {
    matches!(
        e.kind(),
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension
    )
}

fn field(kind: Kind, value: &str) -> String {
    format!("{}:{value}", kind.code())
}

/// A permit as stored.
struct Stored {
    uses: i64,
    leased: i64,
    paid: bool,
    expires: i64,
}

fn parse_permit(data: &str) -> Option<Stored> {
    let mut parts = data.splitn(6, '|');
    let mut next = || parts.next()?.parse::<i64>().ok();
    Some(Stored {
        uses: next()?,
        leased: next()?,
        paid: next()? == 1,
        expires: {
            let _created = next()?;
            next()?
        },
    })
}

/// Adds one user's hash to the stats, as the ledger's clock sees it: a lease
/// that ran out counts as given back even before a script returned it.
fn add_user(stats: &mut PermitStats, hash: &HashMap<String, String>, now_ms: i64) {
    let mut returning: HashMap<&str, i64> = HashMap::new();
    for (f, d) in hash {
        if let Some(_id) = f.strip_prefix("L:") {
            if let Some((at, pf)) = d.split_once('|') {
                if at.parse::<i64>().is_ok_and(|at| at <= now_ms) {
                    *returning.entry(pf).or_default() += 1;
                }
            }
        }
    }
    for (f, d) in hash {
        if f.starts_with("L:") || f.starts_with("R:") {
            continue;
        }
        let Some((kind, value)) = f.split_once(':') else {
            continue;
        };
        let Some(mut p) = parse_permit(d) else {
            continue;
        };
        let back = returning.get(f.as_str()).copied().unwrap_or(0);
        p.uses += back;
        p.leased -= back;
        stats.leased += p.leased.max(0) as u64;
        let expires = (p.expires >= 0).then_some(p.expires);
        if !usable(expires, now_ms) {
            stats.expired += 1;
            continue;
        }
        let uses = p.uses.max(0) as u64;
        match kind {
            "0" if uses > 0 => *stats.subscribe.entry(value.to_string()).or_default() += uses,
            "1" if uses > 0 => stats.form_id_permits += 1,
            "2" if !p.paid => stats.prepay_id_unpaid += 1,
            "2" if uses > 0 => {
                stats.prepay_id_permits += 1;
                stats.prepay_id_uses += uses;
            }
            _ => {}
        }
        if uses > 0 {
            if let Some(e) = expires {
                stats.soonest_expiry = Some(stats.soonest_expiry.map_or(e, |s| s.min(e)));
            }
        }
    }
}

impl Store for RedisStore {
    fn template_stock(
        &self,
        appid: &str,
        now_ms: i64,
        accepted_before: Option<i64>,
    ) -> Result<Vec<super::TemplateStock>> {
        self.stock_of(appid, now_ms, accepted_before)
    }

    fn describe(&self) -> String {
        self.address.clone()
    }

    fn add(&self, appid: &str, p: &NewPermit, now_ms: i64, cap: usize) -> Result<Added> {
        let answer: String = self.run(|c| {
            self.scripts
                .add
                .key(self.user_key(appid, &p.openid))
                .arg(field(p.kind, &p.value))
                .arg(p.kind.code())
                .arg(p.uses)
                .arg(if p.paid { "1" } else { "0" })
                .arg(p.created_at)
                .arg(p.expires_at.unwrap_or(-1))
                .arg(p.order_sn.as_deref().unwrap_or(""))
                .arg(now_ms)
                .arg(cap)
                .arg(p.max_uses)
                .arg(&p.openid)
                .arg(GRACE_MS)
                .invoke(c)
        })?;
        if answer == "stored" {
            // After the permit went in: a purge that removes the user from
            // the set meanwhile puts it back (see `purge`).
            self.run_as(Rerun::Safe, |c| {
                redis::cmd("SADD")
                    .arg(self.users_key(appid))
                    .arg(&p.openid)
                    .query::<()>(c)
            })?;
        }
        match answer.as_str() {
            "stored" => Ok(Added::Stored),
            "counted" => Ok(Added::Counted),
            "marked_paid" => Ok(Added::MarkedPaid),
            "duplicate" => Ok(Added::Duplicate),
            other => Err(Error::store(format!(
                "redis store {}: unexpected answer {other:?} to add",
                self.address
            ))),
        }
    }

    fn take(
        &self,
        appid: &str,
        openid: &str,
        request: &PermitRequest,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<Lease>> {
        let (mode, arg) = take_mode(request);
        let answer: Vec<String> = self.run(|c| {
            self.scripts
                .take
                .key(self.user_key(appid, openid))
                .arg(now_ms)
                .arg(lease_ms)
                .arg(mode)
                .arg(arg)
                .arg(RETURNED_KEEP_MS)
                .arg(GRACE_MS)
                .arg(new_lease_id(now_ms))
                .invoke(c)
        })?;
        self.lease_from(appid, openid, &answer)
    }

    fn consume(&self, lease: &Lease, now_ms: i64) -> Result<Remaining> {
        self.left_after.lock().remove(&lease.id);
        let uses: i64 = self.run_as(Rerun::Safe, |c| {
            self.scripts
                .consume
                .key(self.user_key(&lease.appid, &lease.openid))
                .arg(lease.id)
                .arg(field(lease.kind, &lease.value))
                .arg(now_ms)
                .arg(RETURNED_KEEP_MS)
                .arg(GRACE_MS)
                .invoke(c)
        })?;
        Ok(Remaining {
            kind: lease.kind,
            uses: uses.max(0) as u64,
        })
    }

    fn give_back(&self, lease: &Lease) -> Result<()> {
        self.left_after.lock().remove(&lease.id);
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .give_back
                .key(self.user_key(&lease.appid, &lease.openid))
                .arg(lease.id)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn discard(&self, lease: &Lease) -> Result<()> {
        self.left_after.lock().remove(&lease.id);
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .discard
                .key(self.user_key(&lease.appid, &lease.openid))
                .arg(lease.id)
                .arg(field(lease.kind, &lease.value))
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn drop_grants(&self, appid: &str, openid: &str, template_id: &str) -> Result<u64> {
        let dropped: i64 = self.run_as(Rerun::Safe, |c| {
            self.scripts
                .drop_grants
                .key(self.user_key(appid, openid))
                .arg(field(Kind::Subscribe, template_id))
                .invoke(c)
        })?;
        Ok(dropped.max(0) as u64)
    }

    fn stats(&self, appid: &str, openid: Option<&str>, now_ms: i64) -> Result<PermitStats> {
        let users: Vec<String> = match openid {
            Some(o) => vec![o.to_string()],
            None => self.run_as(Rerun::Safe, |c| {
                redis::cmd("SMEMBERS").arg(self.users_key(appid)).query(c)
            })?,
        };
        let mut stats = PermitStats::default();
        for chunk in users.chunks(500) {
            let hashes: Vec<HashMap<String, String>> = self.run_as(Rerun::Safe, |c| {
                if !c.supports_pipelining() {
                    // Each user's hash lives on the node of its own slot.
                    return chunk
                        .iter()
                        .map(|u| redis::cmd("HGETALL").arg(self.user_key(appid, u)).query(c))
                        .collect();
                }
                let mut pipe = redis::pipe();
                for u in chunk {
                    pipe.cmd("HGETALL").arg(self.user_key(appid, u));
                }
                pipe.query(c)
            })?;
            for hash in &hashes {
                add_user(&mut stats, hash, now_ms);
            }
        }
        Ok(stats)
    }

    fn purge(&self, appid: &str, now_ms: i64, grants_before: Option<i64>) -> Result<u64> {
        let users: Vec<String> = self.run_as(Rerun::Safe, |c| {
            redis::cmd("SMEMBERS").arg(self.users_key(appid)).query(c)
        })?;
        let mut removed = 0u64;
        for u in &users {
            let (n, gone): (i64, i64) = self.run_as(Rerun::Safe, |c| {
                self.scripts
                    .purge_user
                    .key(self.user_key(appid, u))
                    .arg(now_ms)
                    .arg(RETURNED_KEEP_MS)
                    .arg(u)
                    .arg(GRACE_MS)
                    .arg(grants_before.map_or(String::new(), |t| t.to_string()))
                    .invoke(c)
            })?;
            removed += n.max(0) as u64;
            if gone == 1 {
                // The user leaves the set; an add that made a new hash
                // meanwhile (its own SADD may have come before this SREM)
                // puts the user back here.
                self.run_as(Rerun::Safe, |c| {
                    redis::cmd("SREM")
                        .arg(self.users_key(appid))
                        .arg(u)
                        .query::<()>(c)?;
                    let back: bool = redis::cmd("EXISTS").arg(self.user_key(appid, u)).query(c)?;
                    if back {
                        redis::cmd("SADD")
                            .arg(self.users_key(appid))
                            .arg(u)
                            .query::<()>(c)?;
                    }
                    Ok(())
                })?;
            }
        }
        // Idempotency records go by their TTLs.
        Ok(removed)
    }

    fn idempotency_claim(&self, key: &str, now_ms: i64, lease_ms: i64) -> Result<KeyClaim> {
        let answer: Vec<String> = self.run(|c| {
            self.scripts
                .claim
                .key(self.idempotency_key(key))
                .arg(now_ms)
                .arg(lease_ms)
                .arg(GRACE_MS)
                .invoke(c)
        })?;
        self.claim_answer(&answer)
    }

    fn idempotency_complete(&self, key: &str, outcome: &str, now_ms: i64) -> Result<()> {
        self.run_as(Rerun::Safe, |c| {
            redis::cmd("SET")
                .arg(self.idempotency_key(key))
                .arg(done_record(outcome, now_ms))
                .arg("PX")
                .arg(IDEMPOTENCY_KEEP_MS + GRACE_MS)
                .query::<()>(c)
        })
    }

    fn idempotency_release(&self, key: &str) -> Result<()> {
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .release
                .key(self.idempotency_key(key))
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    /// One script on a single server. A cluster claims and takes in two
    /// steps: the record's slot follows the idempotency key and the user's
    /// hash its buyer, and a key must find its record whoever the buyer is
    /// (a repeat naming another buyer is still a duplicate), so the two
    /// cannot be tagged into one slot.
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
        if self.is_cluster() {
            return claim_and_take_in_steps(
                self, key, claim_ms, appid, openid, request, now_ms, lease_ms,
            );
        }
        let (mode, arg) = take_mode(request);
        // Never run twice: a second run would find the first one's claim.
        let answer = self.run(|c| {
            let ran: RedisResult<Vec<String>> = self
                .scripts
                .claim_and_take
                .key(self.idempotency_key(key))
                .key(self.user_key(appid, openid))
                .arg(now_ms)
                .arg(claim_ms)
                .arg(GRACE_MS)
                .arg(lease_ms)
                .arg(mode)
                .arg(arg)
                .arg(RETURNED_KEEP_MS)
                .arg(new_lease_id(now_ms))
                .invoke(c);
            match ran {
                Err(e) if answered_by_server(&e) => Ok(Err(e)),
                other => other.map(Ok),
            }
        })?;
        let answer = match answer {
            // The take failed (or the script was refused): no claim was
            // written, as two steps would have released it.
            Err(e) => return Ok(ClaimedTake::Fresh(Err(self.error(e)))),
            Ok(answer) => answer,
        };
        match answer.split_first() {
            Some((s, taken)) if s == "fresh" => Ok(ClaimedTake::Fresh(Ok(
                self.lease_from(appid, openid, taken)?
            ))),
            _ => match self.claim_answer(&answer)? {
                KeyClaim::Done(outcome) => Ok(ClaimedTake::Done(outcome)),
                _ => Ok(ClaimedTake::InFlight),
            },
        }
    }

    /// One script on a single server when the take guessed the uses left
    /// (`TAKE_FN`): the outcome is written with that guess, and the script
    /// records it only if the spend left exactly that; otherwise the outcome
    /// is written again with what was left and recorded in a step of its own.
    /// A cluster keeps the two steps (the record and the user's hash are in
    /// different slots, see `claim_and_take`).
    fn consume_and_complete(
        &self,
        lease: &Lease,
        key: &str,
        outcome: &mut dyn FnMut(Option<&Remaining>) -> String,
        now_ms: i64,
    ) -> SpentAndRecorded {
        let guess = self.left_after.lock().remove(&lease.id);
        let Some(guess) = guess.filter(|_| !self.is_cluster()) else {
            return consume_and_complete_in_steps(self, lease, key, outcome, now_ms);
        };
        let guessed = Remaining {
            kind: lease.kind,
            uses: guess,
        };
        let text = outcome(Some(&guessed));
        // Safe to run again: the use is spent by its lease id, once.
        let answer: Result<(i64, i64)> = self.run_as(Rerun::Safe, |c| {
            self.scripts
                .consume_and_complete
                .key(self.user_key(&lease.appid, &lease.openid))
                .key(self.idempotency_key(key))
                .arg(lease.id)
                .arg(field(lease.kind, &lease.value))
                .arg(now_ms)
                .arg(RETURNED_KEEP_MS)
                .arg(GRACE_MS)
                .arg(guess)
                .arg(done_record(&text, now_ms))
                .arg(IDEMPOTENCY_KEEP_MS + GRACE_MS)
                .invoke(c)
        });
        let (spent, text) = match answer {
            Ok((_, 1)) => {
                return SpentAndRecorded {
                    spent: Ok(guessed),
                    recorded: Ok(()),
                    outcome: text,
                }
            }
            Ok((left, _)) => {
                let left = Remaining {
                    kind: lease.kind,
                    uses: left.max(0) as u64,
                };
                let text = outcome(Some(&left));
                (Ok(left), text)
            }
            // As two steps would: the spend failed, the outcome is recorded.
            Err(e) => (Err(e), outcome(None)),
        };
        let recorded = self.idempotency_complete(key, &text, now_ms);
        SpentAndRecorded {
            spent,
            recorded,
            outcome: text,
        }
    }

    fn tokens(&self) -> Option<&dyn TokenStore> {
        Some(self)
    }
}

impl TokenStore for RedisStore {
    fn token_turn(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<TokenTurn> {
        let answer: Vec<String> = self.run_as(Rerun::Safe, |c| {
            self.scripts
                .token_turn
                .key(self.token_key(appid, mode))
                .arg(now_ms)
                .arg(holder)
                .arg(lease_ms)
                .arg(TOKEN_KEEP_MS)
                .invoke(c)
        })?;
        let unexpected = || {
            Error::store(format!(
                "redis store {}: unexpected answer when reading the shared access token of {appid}",
                self.address
            ))
        };
        let [what, until, token, expires, refresh] = answer.as_slice() else {
            return Err(unexpected());
        };
        let number = |s: &str| s.parse::<i64>().map_err(|_| unexpected());
        let current = if token.is_empty() {
            None
        } else {
            Some(SharedToken {
                token: Secret::new(token.as_str()),
                expires_at_ms: number(expires)?,
                refresh_at_ms: number(refresh)?,
            })
        };
        match (what.as_str(), current) {
            ("fresh", Some(t)) => Ok(TokenTurn::Fresh(t)),
            ("wait", current) => Ok(TokenTurn::Wait {
                until_ms: number(until)?,
                current,
            }),
            ("fetch", current) => Ok(TokenTurn::Fetch { current }),
            _ => Err(unexpected()),
        }
    }

    fn token_publish(
        &self,
        appid: &str,
        mode: &str,
        holder: &str,
        token: &SharedToken,
        now_ms: i64,
    ) -> Result<()> {
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .token_publish
                .key(self.token_key(appid, mode))
                .arg(holder)
                .arg(token.token.expose())
                .arg(token.expires_at_ms)
                .arg(token.refresh_at_ms)
                .arg(now_ms)
                .arg(TOKEN_KEEP_MS)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn token_release(&self, appid: &str, mode: &str, holder: &str) -> Result<()> {
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .token_release
                .key(self.token_key(appid, mode))
                .arg(holder)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn token_drop_if(&self, appid: &str, mode: &str, failed: &str) -> Result<bool> {
        self.run_as(Rerun::Safe, |c| {
            self.scripts
                .token_drop_if
                .key(self.token_key(appid, mode))
                .arg(failed)
                .invoke::<i64>(c)
        })
        .map(|n| n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            hide_password("redis://:s3cret@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(
            hide_password("redis://shop:s3cret@db:6379/0"),
            "redis://shop:***@db:6379/0"
        );
        assert_eq!(hide_password("redis://db:6379/0"), "redis://db:6379/0");
        assert_eq!(
            hide_password("redis+unix:///run/redis.sock?db=1&pass=s3cret&protocol=resp2"),
            "redis+unix:///run/redis.sock?db=1&pass=***&protocol=resp2"
        );
        assert_eq!(
            hide_password("unix:///run/redis.sock?db=1"),
            "unix:///run/redis.sock?db=1"
        );
        let e = RedisStore::open("redis://:s3cret@127.0.0.1:1/0").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains("127.0.0.1:1"), "{e}");
        let missing = std::env::temp_dir().join(format!("no-redis-{}.sock", std::process::id()));
        let e = RedisStore::open(&format!("redis+unix://{}?pass=s3cret", missing.display()))
            .unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
    }

    #[test]
    fn the_prefix_is_ours_and_checked() {
        assert_eq!(
            split_prefix("redis://h:1/0").unwrap(),
            ("redis://h:1/0".to_string(), DEFAULT_PREFIX.to_string())
        );
        assert_eq!(
            split_prefix("redis://h:1/0?prefix=shop1:&protocol=resp2").unwrap(),
            (
                "redis://h:1/0?protocol=resp2".to_string(),
                "shop1:".to_string()
            )
        );
        assert!(split_prefix("redis://h:1/0?prefix=").is_err());
        assert!(split_prefix("redis://h:1/0?prefix=a b").is_err());
    }
}
