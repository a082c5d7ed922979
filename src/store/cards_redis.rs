//! Card records on the Redis server (workers on several hosts): one hash per
//! card, each change one Lua script, so claims are atomic on the server.

use std::fmt;

use redis::Script;

use super::cards::{statuses_of, CardClaim, CardRecord, CardStore};
use crate::error::Result;
// The card records share the Redis store's connection pool (one per process,
// reopened after a fork) and key prefix instead of opening their own.
use super::RedisStore;

/// How long a card's record is kept after its last change (an order's card
/// lives for weeks at most; unverified: WeChat states no lifetime).
const KEEP_MS: i64 = 90 * 24 * 3600 * 1000;

/// Lua helpers: whether a comma list holds an item, and the list without it.
const LISTS: &str = r"
local function has(list, item)
  for s in string.gmatch(list, '[^,]+') do
    if s == item then return true end
  end
  return false
end
local function without(list, item)
  local out = {}
  for s in string.gmatch(list, '[^,]+') do
    if s ~= item then table.insert(out, s) end
  end
  return table.concat(out, ',')
end
local function with(list, item)
  if list == '' then return item end
  return list .. ',' .. item
end
";

const CLAIM: &str = r"
local h = KEYS[1]
local t = redis.call('HMGET', h, 's', 'p', 'u', 'x', 'q')
local statuses, queued = t[1] or '', t[5] or ''
if t[4] == '1' then return 'stopped' end
if has(statuses, ARGV[2]) then
  if has(queued, ARGV[2]) then redis.call('HSET', h, 'q', without(queued, ARGV[2])) end
  return 'done'
end
if t[2] and t[2] ~= '' and tonumber(t[3] or '0') > tonumber(ARGV[3]) then return 'busy' end
local head = string.match(queued, '^([^,]+)')
if head and head ~= ARGV[2] then return 'behind' end
redis.call('HSET', h, 't', ARGV[1], 'p', ARGV[2], 'u', tonumber(ARGV[3]) + tonumber(ARGV[4]), 's', statuses)
redis.call('PEXPIRE', h, ARGV[5])
return 'fresh:' .. (string.match(statuses, '([^,]+)$') or '')
";

const SETTLE: &str = r"
local h = KEYS[1]
if redis.call('EXISTS', h) == 0 then return 0 end
local t = redis.call('HMGET', h, 's', 'p', 'q')
local statuses, queued = t[1] or '', t[3] or ''
if t[2] == ARGV[1] then redis.call('HDEL', h, 'p') end
if ARGV[2] == '1' then
  if not has(statuses, ARGV[1]) then statuses = with(statuses, ARGV[1]) end
  redis.call('HSET', h, 's', statuses, 'q', without(queued, ARGV[1]))
end
return 1
";

const QUEUE: &str = r"
local h = KEYS[1]
local t = redis.call('HMGET', h, 's', 'q')
local statuses, queued = t[1] or '', t[2] or ''
if ARGV[2] == '1' then
  if not has(queued, ARGV[1]) and not has(statuses, ARGV[1]) then queued = with(queued, ARGV[1]) end
else
  queued = without(queued, ARGV[1])
end
redis.call('HSET', h, 'q', queued, 's', statuses)
redis.call('PEXPIRE', h, ARGV[3])
return 1
";

pub struct RedisCards {
    server: RedisStore,
    claim: Script,
    settle: Script,
    queue: Script,
}

impl fmt::Debug for RedisCards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCards")
            .field("server", &self.server.address())
            .finish()
    }
}

impl RedisCards {
    pub fn open(spec: &str) -> Result<RedisCards> {
        Ok(RedisCards {
            server: RedisStore::open(spec)?,
            claim: Script::new(&format!("{LISTS}{CLAIM}")),
            settle: Script::new(&format!("{LISTS}{SETTLE}")),
            queue: Script::new(&format!("{LISTS}{QUEUE}")),
        })
    }

    fn key(&self, appid: &str, code: &str) -> String {
        format!("{}c:{appid}:{code}", self.server.prefix())
    }
}

impl CardStore for RedisCards {
    fn card_claim(
        &self,
        appid: &str,
        code: &str,
        notify_type: u32,
        status: u32,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<CardClaim> {
        let key = self.key(appid, code);
        let answer: String = self.server.run(|c| {
            self.claim
                .key(&key)
                .arg(notify_type)
                .arg(status)
                .arg(now_ms)
                .arg(lease_ms)
                .arg(KEEP_MS)
                .invoke(c)
        })?;
        Ok(match answer.as_str() {
            "stopped" => CardClaim::Stopped,
            "done" => CardClaim::Done,
            "busy" => CardClaim::Busy,
            "behind" => CardClaim::Behind,
            other => CardClaim::Fresh {
                prev: other.strip_prefix("fresh:").and_then(|s| s.parse().ok()),
            },
        })
    }

    fn card_settle(&self, appid: &str, code: &str, status: u32, applied: bool) -> Result<()> {
        let key = self.key(appid, code);
        let _: i64 = self.server.run(|c| {
            self.settle
                .key(&key)
                .arg(status)
                .arg(if applied { "1" } else { "0" })
                .invoke(c)
        })?;
        Ok(())
    }

    fn card_queue(&self, appid: &str, code: &str, status: u32, add: bool) -> Result<()> {
        let key = self.key(appid, code);
        let _: i64 = self.server.run(|c| {
            self.queue
                .key(&key)
                .arg(status)
                .arg(if add { "1" } else { "0" })
                .arg(KEEP_MS)
                .invoke(c)
        })?;
        Ok(())
    }

    fn card_stop(&self, appid: &str, code: &str) -> Result<()> {
        let key = self.key(appid, code);
        self.server.run(|c| {
            redis::pipe()
                .atomic()
                .hset(&key, "x", "1")
                .ignore()
                .hdel(&key, "p")
                .ignore()
                .pexpire(&key, KEEP_MS)
                .ignore()
                .query::<()>(c)
        })
    }

    fn card_get(&self, appid: &str, code: &str, now_ms: i64) -> Result<Option<CardRecord>> {
        let key = self.key(appid, code);
        let fields: Vec<Option<String>> = self.server.run(|c| {
            redis::cmd("HMGET")
                .arg(&key)
                .arg(&["t", "s", "p", "u", "x", "q"])
                .query(c)
        })?;
        let get = |i: usize| fields.get(i).cloned().flatten();
        if fields.iter().all(Option::is_none) {
            return Ok(None);
        }
        let until: i64 = get(3).and_then(|u| u.parse().ok()).unwrap_or(0);
        Ok(Some(CardRecord {
            notify_type: get(0).and_then(|t| t.parse().ok()).unwrap_or(0),
            statuses: statuses_of(&get(1).unwrap_or_default()),
            pending: get(2)
                .filter(|_| until > now_ms)
                .and_then(|p| p.parse().ok()),
            stopped: get(4).as_deref() == Some("1"),
            queued: statuses_of(&get(5).unwrap_or_default()),
        }))
    }
}
