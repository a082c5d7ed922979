//! What the HTTP side and the control API both use: the state shared by the
//! worker threads and the `Sandbox` handle, and query-string reading.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::world::{Answer, SandboxClock, World};

/// State shared by the worker threads and the `Sandbox` handle.
pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub clock: SandboxClock,
    pub local: SocketAddr,
    pub verbose: bool,
    pub slow_readers: AtomicUsize,
    /// Connections seen for the first time (per worker, so roughly), for the
    /// connection nudger to know when new connections arrive.
    pub arrivals: AtomicU64,
    /// Where the state goes after each change (`--state`), if anywhere.
    pub state: Option<super::state::StateFile>,
}

impl Shared {
    pub(crate) fn new(world: World, clock: SandboxClock, local: SocketAddr, verbose: bool) -> Self {
        Shared {
            world: Mutex::new(world),
            clock,
            local,
            verbose,
            slow_readers: AtomicUsize::new(0),
            arrivals: AtomicU64::new(0),
            state: None,
        }
    }

    /// Writes the state file, if there is one; a failure is told on stderr
    /// (the request itself went through).
    pub(crate) fn save_state(&self) {
        if let Some(state) = &self.state {
            if let Err(e) = state.save(&self.world) {
                eprintln!("fashop-notify-sandbox: {e}");
            }
        }
    }

    pub(crate) fn arrivals(&self) -> u64 {
        self.arrivals.load(Ordering::Relaxed)
    }
}

/// The value of `key` in a query string, percent-decoded.
pub(crate) fn query_param<'a>(query: &'a str, key: &str) -> Option<Cow<'a, str>> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

/// A form body (`tid=401&kidList=1&kidList=2&sceneDesc=…`, or PHP's
/// `kidList[0]=1&kidList[1]=2`) as the JSON object the same call takes: a key
/// given more than once or with `[…]` becomes an array of strings.
pub(crate) fn form_object(body: &str) -> serde_json::Value {
    use serde_json::{Map, Value};
    let mut out = Map::new();
    for kv in body.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let key = percent_decode(k);
        let value = Value::String(percent_decode(v).into_owned());
        let (name, listed) = match key.find('[') {
            Some(at) if key.ends_with(']') => (key[..at].to_string(), true),
            _ => (key.into_owned(), false),
        };
        match out.get_mut(&name) {
            Some(Value::Array(items)) => items.push(value),
            Some(single) => {
                let first = single.take();
                *single = Value::Array(vec![first, value]);
            }
            None if listed => {
                out.insert(name, Value::Array(vec![value]));
            }
            None => {
                out.insert(name, value);
            }
        }
    }
    Value::Object(out)
}

fn percent_decode(v: &str) -> Cow<'_, str> {
    if !v.contains(['%', '+']) {
        return Cow::Borrowed(v);
    }
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// A control API success: `{"ok": true}` and the fields of `extra`.
pub(crate) fn ok(extra: Value) -> Answer {
    let mut body = json!({ "ok": true });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    Answer::ok_json(body)
}

/// A control API refusal: `{"ok": false, "error": …}` with `status`.
pub(crate) fn bad(status: u16, error: &str) -> Answer {
    Answer {
        status,
        body: json!({ "ok": false, "error": error })
            .to_string()
            .into_bytes(),
        errcode: 0,
    }
}

/// A control API body as `T`, or a 400 naming the operation.
pub(crate) fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| bad(400, &format!("{what}: {e}")))
}
