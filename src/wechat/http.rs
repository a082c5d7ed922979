//! The HTTP seam to WeChat: a `Transport` trait with a ureq implementation (one
//! keep-alive agent per process, rebuilt after a fork) and an in-memory one for
//! tests. A transport failure says whether the request can have reached WeChat,
//! because a send that may have been delivered must never be repeated.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout,
    Transport as WireTransport,
};

use crate::config::Config;
use crate::secret::Secret;

/// Answers larger than this are refused: WeChat's largest (template lists) are a few KiB.
const MAX_REPLY_BYTES: u64 = 4 * 1024 * 1024;

/// How long a looked-up host's addresses are used for new connections. ureq
/// resolves before every request, even one that goes out on a pooled
/// connection, so without this every send would ask the system resolver again.
const HOST_TTL: Duration = Duration::from_secs(60);

/// The HTTP methods WeChat's JSON APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request to WeChat. Credentials (access token, app secret) travel apart
/// from the printable part, so that `Debug` and error messages never show them.
#[derive(Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// `https://api.weixin.qq.com`, without a trailing slash.
    pub base: String,
    /// Path plus the caller's own query (`/wxaapi/newtmpl/gettemplate`), free of credentials.
    pub path: String,
    /// Query parameters appended last, never printed (`access_token`, `secret`).
    pub credentials: Vec<(&'static str, Secret)>,
    /// JSON body; it may hold the app secret (`stable_token`), so it is never printed.
    pub body: Option<Vec<u8>>,
}

impl HttpRequest {
    pub fn new(method: Method, base: &str, path: &str) -> Self {
        HttpRequest {
            method,
            base: base.trim_end_matches('/').to_string(),
            path: path.to_string(),
            credentials: Vec::new(),
            body: None,
        }
    }

    pub fn credential(mut self, name: &'static str, value: Secret) -> Self {
        self.credentials.push((name, value));
        self
    }

    pub fn json_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// The path without its query, e.g. `/cgi-bin/token`.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }

    /// A query parameter of the printable part, decoded only as far as WeChat's
    /// own parameters need (no `%` escapes).
    pub fn query(&self, name: &str) -> Option<&str> {
        let query = self.path.split_once('?')?.1;
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The value of a credential parameter (`access_token`), for transports and fakes.
    pub fn credential_value(&self, name: &str) -> Option<&str> {
        self.credentials
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.expose())
    }

    /// The full URL including the credentials. Only a transport may use it, and
    /// it must never end up in a message.
    pub fn url_with_credentials(&self) -> String {
        let extra: usize = self
            .credentials
            .iter()
            .map(|(name, value)| name.len() + value.expose().len() * 3 + 2)
            .sum();
        let mut url = String::with_capacity(self.base.len() + self.path.len() + extra);
        url.push_str(&self.base);
        url.push_str(&self.path);
        let mut sep = if self.path.contains('?') { '&' } else { '?' };
        for (name, value) in &self.credentials {
            url.push(sep);
            url.push_str(name);
            url.push('=');
            percent_encode_into(value.expose(), &mut url);
            sep = '&';
        }
        url
    }

    /// `METHOD base/route`, safe for messages.
    pub fn describe(&self) -> String {
        format!("{} {}{}", self.method.as_str(), self.base, self.route())
    }

    /// `text` with every credential value of this request replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        self.credentials.iter().fold(text.to_string(), |t, (_, v)| {
            // Most tokens encode to themselves: one pass is enough then.
            if v.expose().bytes().all(unreserved) {
                v.redact(&t)
            } else {
                v.redact(&Secret::new(percent_encode(v.expose())).redact(&t))
            }
        })
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials: Vec<String> = self
            .credentials
            .iter()
            .map(|(k, _)| format!("{k}=***"))
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("base", &self.base)
            .field("path", &self.path)
            .field("credentials", &credentials)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    percent_encode_into(value, &mut out);
    out
}

fn percent_encode_into(value: &str, out: &mut String) {
    // Tokens are nearly always plain: one copy instead of a push per byte.
    if value.bytes().all(unreserved) {
        out.push_str(value);
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// What came back: any HTTP status (5xx bodies stay readable) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// A 200 answer with `json` as its body.
    pub fn json(json: &serde_json::Value) -> Self {
        HttpReply {
            status: 200,
            body: json.to_string().into_bytes(),
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        HttpReply {
            status,
            body: body.as_bytes().to_vec(),
        }
    }
}

/// Why no answer came. The distinction decides whether a send may be repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// The request was not completely written (connect refused, DNS, reset while
    /// writing): WeChat cannot have acted on it, so retrying is safe.
    NotSent(String),
    /// The request was written but no complete answer came (timeout or reset
    /// while waiting): WeChat may have acted on it, so a send must not be retried.
    MaybeDelivered(String),
}

impl TransportError {
    pub fn message(&self) -> &str {
        match self {
            TransportError::NotSent(m) | TransportError::MaybeDelivered(m) => m,
        }
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Carries one request to WeChat and brings back its answer.
pub trait Transport: Send + Sync + fmt::Debug {
    fn call(&self, req: &HttpRequest) -> Result<HttpReply, TransportError>;
}

/// The notifier's transport: ureq unless a test swaps in another one.
#[derive(Debug)]
pub struct HttpClient {
    wire: Arc<UreqTransport>,
    current: RwLock<Arc<dyn Transport>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let wire = Arc::new(UreqTransport::new(&Config::default()));
        HttpClient {
            current: RwLock::new(wire.clone()),
            wire,
        }
    }
}

impl HttpClient {
    /// Picks up new timeouts (the ureq agent is rebuilt on its next use).
    pub fn configure(&self, config: &Config) {
        self.wire.configure(config);
    }

    /// Replaces the transport, e.g. by an in-memory one in tests.
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        *self.current.write() = transport;
    }

    pub fn transport(&self) -> Arc<dyn Transport> {
        self.current.read().clone()
    }

    /// Whether requests go out over the network (no test transport in place).
    pub fn on_the_wire(&self) -> bool {
        std::ptr::addr_eq(Arc::as_ptr(&*self.current.read()), Arc::as_ptr(&self.wire))
    }

    pub fn call(&self, req: &HttpRequest) -> Result<HttpReply, TransportError> {
        let transport = self.transport();
        transport.call(req)
    }
}

// ---------------------------------------------------------------------------
// ureq

/// HTTP through one shared keep-alive ureq agent per process. FaShop forks its
/// workers after loading the library; a pooled socket inherited from the
/// parent must never carry a child's request, so a new process gets a new agent.
pub struct UreqTransport {
    slot: Mutex<AgentSlot>,
    hosts: Arc<HostCache>,
}

/// Timeouts only: the agent's own Debug would show proxy settings, which may
/// carry credentials.
impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = self.slot.lock();
        f.debug_struct("UreqTransport")
            .field("connect_timeout", &slot.connect_timeout)
            .field("timeout", &slot.timeout)
            .field("agent", &slot.agent.is_some())
            .finish()
    }
}

struct AgentSlot {
    pid: u32,
    connect_timeout: Duration,
    timeout: Duration,
    /// Idle connections kept per host: one per request a flush has in flight.
    idle_per_host: usize,
    agent: Option<ureq::Agent>,
    /// Agents of a parent process. Kept, never dropped: dropping closes nothing
    /// the parent needs, but keeping them avoids any shutdown of a shared socket.
    inherited: Vec<ureq::Agent>,
}

/// ureq keeps 3 idle connections per host by default: a flush with more
/// requests in flight would open new ones for every batch.
fn idle_per_host(config: &Config) -> usize {
    (config.outbox.concurrency as usize).max(3)
}

impl UreqTransport {
    pub fn new(config: &Config) -> Self {
        UreqTransport {
            slot: Mutex::new(AgentSlot {
                pid: std::process::id(),
                connect_timeout: Duration::from_millis(config.connect_timeout_ms),
                timeout: Duration::from_millis(config.timeout_ms),
                idle_per_host: idle_per_host(config),
                agent: None,
                inherited: Vec::new(),
            }),
            hosts: Arc::new(HostCache::new(HOST_TTL)),
        }
    }

    /// New timeouts apply to the next request; pooled connections are dropped with the old agent.
    pub fn configure(&self, config: &Config) {
        let mut slot = self.slot.lock();
        let connect_timeout = Duration::from_millis(config.connect_timeout_ms);
        let timeout = Duration::from_millis(config.timeout_ms);
        let idle = idle_per_host(config);
        if slot.connect_timeout != connect_timeout
            || slot.timeout != timeout
            || slot.idle_per_host != idle
        {
            slot.connect_timeout = connect_timeout;
            slot.timeout = timeout;
            slot.idle_per_host = idle;
            if slot.pid == std::process::id() {
                slot.agent = None;
            }
        }
    }

    fn agent(&self) -> ureq::Agent {
        let mut slot = self.slot.lock();
        let pid = std::process::id();
        if slot.pid != pid {
            if let Some(parent) = slot.agent.take() {
                slot.inherited.push(parent);
            }
            slot.pid = pid;
        }
        if let Some(agent) = &slot.agent {
            return agent.clone();
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // A redirect would repeat a POST elsewhere; WeChat never redirects its API.
            .max_redirects(0)
            .timeout_resolve(Some(slot.connect_timeout))
            .timeout_connect(Some(slot.connect_timeout))
            .timeout_send_request(Some(slot.timeout))
            .timeout_send_body(Some(slot.timeout))
            .timeout_recv_response(Some(slot.timeout))
            .timeout_recv_body(Some(slot.timeout))
            .user_agent(concat!("fashop-notify/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(slot.idle_per_host)
            .max_idle_connections(slot.idle_per_host.max(10))
            .build();
        let connector = DefaultConnector::new().chain(PhaseConnector);
        let agent = ureq::Agent::with_parts(config, connector, self.hosts.resolver());
        slot.agent = Some(agent.clone());
        agent
    }

    fn exchange(agent: &ureq::Agent, req: &HttpRequest) -> Result<HttpReply, ureq::Error> {
        let url = req.url_with_credentials();
        let mut response = match (req.method, &req.body) {
            (Method::Get, _) => agent.get(&url).call()?,
            (Method::Post, body) => agent
                .post(&url)
                .content_type("application/json")
                .send(body.as_deref().unwrap_or_default())?,
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec()?;
        Ok(HttpReply { status, body })
    }
}

impl Transport for UreqTransport {
    fn call(&self, req: &HttpRequest) -> Result<HttpReply, TransportError> {
        let agent = self.agent();
        AWAITING_ANSWER.with(|a| a.set(false));
        let result = Self::exchange(&agent, req);
        let written = AWAITING_ANSWER.with(|a| a.replace(false));
        result.map_err(|e| {
            // The host may have moved: the next connection looks it up again.
            self.hosts.forget(&req.base);
            classify(req, &e, written)
        })
    }
}

thread_local! {
    /// Set once ureq starts waiting for the answer, i.e. the request was fully
    /// written. ureq is synchronous, so the calling thread is the one doing I/O.
    static AWAITING_ANSWER: Cell<bool> = const { Cell::new(false) };
}

/// Turns a ureq failure into not-sent or maybe-delivered. The phase flag is
/// the ground truth (ureq waits for input only after the whole request went
/// out, since it never sends `Expect: 100-continue` unasked); the error kind
/// only words the message. Errs on the safe side: a pooled connection the
/// server closed between ureq's liveness probe and the write looks like
/// maybe-delivered, which costs an UNCERTAIN instead of risking a duplicate.
fn classify(req: &HttpRequest, e: &ureq::Error, written: bool) -> TransportError {
    use ureq::{Error as E, Timeout as T};
    let what = match e {
        E::Timeout(T::Resolve) => "timed out resolving the host name".to_string(),
        E::Timeout(T::Connect) => "timed out connecting".to_string(),
        E::Timeout(T::SendRequest | T::SendBody | T::PerWrite) => {
            "timed out sending the request".to_string()
        }
        E::Timeout(_) => "timed out waiting for the answer".to_string(),
        E::HostNotFound => "host name not found".to_string(),
        E::ConnectionFailed => "connection failed".to_string(),
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is the server running?)".to_string()
            }
            std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
            _ => format!("i/o error: {io}"),
        },
        E::BadUri(_) => "invalid URL".to_string(),
        E::RequireHttpsOnly(_) => "https is required".to_string(),
        E::BodyExceedsLimit(_) => format!("answer larger than {MAX_REPLY_BYTES} bytes"),
        // Some of ureq's messages quote the URL: never one carrying a credential.
        other => Some(other.to_string())
            .filter(|m| {
                !req.credentials
                    .iter()
                    .any(|(k, _)| m.contains(&format!("{k}=")))
            })
            .unwrap_or_else(|| "request failed".to_string()),
    };
    let phase = if written {
        "after the request was sent; WeChat may have received it"
    } else {
        "before the request was sent"
    };
    let message = req.redact(&format!("{}: {what} ({phase})", req.describe()));
    if written {
        TransportError::MaybeDelivered(message)
    } else {
        TransportError::NotSent(message)
    }
}

/// Wraps every connection ureq opens so that the phase of a failure is known,
/// and so that a request leaves in one write.
#[derive(Debug)]
struct PhaseConnector;

impl Connector<Box<dyn WireTransport>> for PhaseConnector {
    type Out = PhaseTransport;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn WireTransport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|wire| PhaseTransport {
            wire,
            unsent: Vec::new(),
        }))
    }
}

/// ureq writes the request head and the body separately; sent as they come,
/// they are two packets, and the server wakes up for the head only to wait
/// for the body. The bytes are held until ureq waits for the answer (it
/// never waits before the whole request is out: no `Expect: 100-continue`)
/// and then go out together.
#[derive(Debug)]
struct PhaseTransport {
    wire: Box<dyn WireTransport>,
    unsent: Vec<u8>,
}

impl PhaseTransport {
    fn send_unsent(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let mut from = 0;
        while from < self.unsent.len() {
            let output = self.wire.buffers().output();
            let amount = output.len().min(self.unsent.len() - from);
            output[..amount].copy_from_slice(&self.unsent[from..from + amount]);
            if let Err(e) = self.wire.transmit_output(amount, timeout) {
                self.unsent.clear();
                return Err(match e {
                    // The deadline that ran out is the answer's, but the request was not out yet.
                    ureq::Error::Timeout(_) => ureq::Error::Timeout(ureq::Timeout::SendRequest),
                    other => other,
                });
            }
            from += amount;
        }
        self.unsent.clear();
        Ok(())
    }
}

impl WireTransport for PhaseTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.wire.buffers()
    }

    fn transmit_output(&mut self, amount: usize, _timeout: NextTimeout) -> Result<(), ureq::Error> {
        let output = &self.wire.buffers().output()[..amount];
        self.unsent.extend_from_slice(output);
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        // The only place the held request goes out. ureq boxes this transport
        // and its `Box` forwards `await_input` but not `maybe_await_input`,
        // whose default calls here only when no input is buffered; a pooled
        // connection never has unread input, so every request passes here.
        self.send_unsent(timeout)?;
        AWAITING_ANSWER.with(|a| a.set(true));
        self.wire.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.wire.is_open()
    }

    fn is_tls(&self) -> bool {
        self.wire.is_tls()
    }
}

/// The addresses of the hosts this process talks to (WeChat's API, the sandbox,
/// or an app's own `api_base`), shared by the agents of a transport. An IP
/// literal is never looked up; a host name is looked up at most once per TTL,
/// with ureq's resolve timeout. ureq's own resolver enforces that timeout by starting a thread for
/// every lookup, and it resolves before every request: that was a thread per
/// send, whose start-up on a busy machine cost more wall time than the send.
#[derive(Debug)]
struct HostCache {
    ttl: Duration,
    /// By (scheme, authority): another base URL never gets these addresses.
    /// At most [`MAX_CACHED_HOSTS`] entries.
    entries: Mutex<HashMap<(String, String), CachedHost>>,
    /// Lookups through the system resolver, for tests.
    lookups: AtomicU64,
}

/// A few apps with their own `api_base` fit; more only cost a lookup.
const MAX_CACHED_HOSTS: usize = 16;

#[derive(Debug)]
struct CachedHost {
    addrs: ResolvedSocketAddrs,
    until: Instant,
}

impl HostCache {
    fn new(ttl: Duration) -> Self {
        HostCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
            lookups: AtomicU64::new(0),
        }
    }

    fn resolver(self: &Arc<Self>) -> HostResolver {
        HostResolver(self.clone())
    }

    /// Forgets the host of `base`: it may have moved.
    fn forget(&self, base: &str) {
        if let Ok(uri) = base.parse::<Uri>() {
            self.entries.lock().remove(&Self::key(&uri));
        }
    }

    fn key(uri: &Uri) -> (String, String) {
        let scheme = uri.scheme_str().unwrap_or_default();
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        (scheme.to_string(), authority.to_string())
    }

    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = Self::key(uri);
        let now = Instant::now();
        if let Some(hit) = self.entries.lock().get(&key) {
            if now < hit.until {
                return Ok(hit.addrs.clone());
            }
        }
        let system = DefaultResolver::default();
        let host = uri.host().unwrap_or_default();
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        let addrs = if literal {
            // Without a timeout ureq's resolver stays on this thread, and an
            // `ip:port` text is parsed, not looked up.
            system.resolve(uri, config, NextTimeout::default())?
        } else {
            self.lookups.fetch_add(1, Ordering::Relaxed);
            system.resolve(uri, config, timeout)?
        };
        let mut entries = self.entries.lock();
        if entries.len() >= MAX_CACHED_HOSTS && !entries.contains_key(&key) {
            entries.retain(|_, e| now < e.until);
            if entries.len() >= MAX_CACHED_HOSTS {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            key,
            CachedHost {
                addrs: addrs.clone(),
                until: now + self.ttl,
            },
        );
        Ok(addrs)
    }
}

/// ureq's view of a [`HostCache`].
#[derive(Debug)]
struct HostResolver(Arc<HostCache>);

impl Resolver for HostResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        self.0.resolve(uri, config, timeout)
    }
}

// ---------------------------------------------------------------------------
// in memory

type Answer = dyn Fn(&HttpRequest) -> Result<HttpReply, TransportError> + Send + Sync;

/// A transport that answers from a function and records every request, so
/// token and send logic can be tested without sockets.
pub struct MemoryTransport {
    answer: Box<Answer>,
    requests: Mutex<Vec<HttpRequest>>,
}

impl MemoryTransport {
    pub fn new(
        answer: impl Fn(&HttpRequest) -> Result<HttpReply, TransportError> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(MemoryTransport {
            answer: Box::new(answer),
            requests: Mutex::new(Vec::new()),
        })
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests.lock().clone()
    }

    /// How many requests went to `route` (a path without query).
    pub fn count(&self, route: &str) -> usize {
        self.requests
            .lock()
            .iter()
            .filter(|r| r.route() == route)
            .count()
    }
}

impl fmt::Debug for MemoryTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTransport")
            .field("requests", &self.requests.lock().len())
            .finish()
    }
}

impl Transport for MemoryTransport {
    fn call(&self, req: &HttpRequest) -> Result<HttpReply, TransportError> {
        self.requests.lock().push(req.clone());
        (self.answer)(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_stay_out_of_debug_and_descriptions() {
        let req = HttpRequest::new(
            Method::Get,
            "http://127.0.0.1:9/",
            "/cgi-bin/token?grant_type=client_credential&appid=wx1",
        )
        .credential("secret", Secret::new("top secret/+"));
        assert_eq!(
            req.url_with_credentials(),
            "http://127.0.0.1:9/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=top%20secret%2F%2B"
        );
        assert_eq!(req.query("appid"), Some("wx1"));
        assert_eq!(req.credential_value("secret"), Some("top secret/+"));
        let debug = format!("{req:?}");
        assert!(!debug.contains("top"), "{debug}");
        assert!(debug.contains("secret=***"));
        assert_eq!(req.describe(), "GET http://127.0.0.1:9/cgi-bin/token");
        assert_eq!(
            req.redact("a top secret/+ b top%20secret%2F%2B"),
            "a *** b ***"
        );
    }

    #[test]
    fn refused_connection_is_not_sent() {
        // A port that was free a moment ago: nothing listens on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let t = UreqTransport::new(&Config::default());
        let req = HttpRequest::new(
            Method::Post,
            &format!("http://127.0.0.1:{port}"),
            "/cgi-bin/message/subscribe/send",
        )
        .credential("access_token", Secret::new("TOKEN-abc"))
        .json_body("{}");
        match t.call(&req) {
            Err(TransportError::NotSent(m)) => {
                assert!(m.contains("connection refused"), "{m}");
                assert!(!m.contains("TOKEN-abc"), "{m}");
                assert!(m.contains("/cgi-bin/message/subscribe/send"), "{m}");
            }
            other => panic!("expected NotSent, got {other:?}"),
        }
    }

    /// A server that reads the whole request and then never answers.
    fn silent_server() -> (String, std::thread::JoinHandle<()>) {
        use std::io::Read;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            // Reads until the client gives up and closes; never writes.
            while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
        });
        (base, handle)
    }

    #[test]
    fn no_answer_after_sending_is_maybe_delivered() {
        let (base, server) = silent_server();
        let config = Config {
            timeout_ms: 300,
            ..Config::default()
        };
        let t = UreqTransport::new(&config);
        let req = HttpRequest::new(Method::Post, &base, "/cgi-bin/message/subscribe/send")
            .credential("access_token", Secret::new("TOKEN-xyz"))
            .json_body("{}");
        match t.call(&req) {
            Err(TransportError::MaybeDelivered(m)) => {
                assert!(m.contains("timed out waiting for the answer"), "{m}");
                assert!(m.contains("may have received it"), "{m}");
                assert!(!m.contains("TOKEN-xyz"), "{m}");
            }
            other => panic!("expected MaybeDelivered, got {other:?}"),
        }
        drop(t);
        server.join().unwrap();
    }

    #[test]
    fn a_new_process_gets_a_new_agent() {
        let t = UreqTransport::new(&Config::default());
        t.agent();
        // Pretend this object was inherited from a parent process.
        t.slot.lock().pid = std::process::id().wrapping_add(1);
        t.agent();
        let slot = t.slot.lock();
        assert_eq!(slot.pid, std::process::id());
        assert_eq!(slot.inherited.len(), 1);
        drop(slot);
        // The same process keeps its agent.
        t.agent();
        assert_eq!(t.slot.lock().inherited.len(), 1);
    }

    fn resolve(cache: &HostCache, url: &str) -> Vec<std::net::SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_secs(5)),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        let config = ureq::config::Config::default();
        cache.resolve(&uri, &config, timeout).unwrap().to_vec()
    }

    #[test]
    fn an_ip_literal_is_never_looked_up() {
        let cache = HostCache::new(HOST_TTL);
        let v4 = resolve(&cache, "http://127.0.0.1:8080/cgi-bin/token");
        assert_eq!(v4, vec!["127.0.0.1:8080".parse().unwrap()]);
        let v6 = resolve(&cache, "http://[::1]:8081/x");
        assert_eq!(v6, vec!["[::1]:8081".parse().unwrap()]);
        let default_port = resolve(&cache, "https://10.1.2.3/x");
        assert_eq!(default_port, vec!["10.1.2.3:443".parse().unwrap()]);
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_host_name_is_looked_up_once_per_ttl_and_per_host() {
        let cache = HostCache::new(HOST_TTL);
        let first = resolve(&cache, "http://localhost:8080/a");
        assert!(!first.is_empty());
        assert!(first
            .iter()
            .all(|a| a.port() == 8080 && a.ip().is_loopback()));
        assert_eq!(resolve(&cache, "http://localhost:8080/b"), first);
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 1);
        // Another port is another server: its own lookup, never the old addresses.
        let other = resolve(&cache, "http://localhost:8081/a");
        assert!(other.iter().all(|a| a.port() == 8081));
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 2);
        // After a failed request the host is looked up again, and only it.
        cache.forget("http://localhost:8081");
        resolve(&cache, "http://localhost:8081/a");
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 3);
        resolve(&cache, "http://localhost:8080/a");
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn two_hosts_in_turn_are_looked_up_once_each() {
        // Two apps with their own `api_base`; only `localhost` resolves
        // everywhere, so the two differ in scheme and port.
        let cache = HostCache::new(HOST_TTL);
        for _ in 0..3 {
            let one = resolve(&cache, "http://localhost:8080/a");
            assert!(!one.is_empty() && one.iter().all(|a| a.port() == 8080));
            let two = resolve(&cache, "https://localhost/b");
            assert!(!two.is_empty() && two.iter().all(|a| a.port() == 443));
        }
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_cache_drops_a_host_to_take_another() {
        let cache = HostCache::new(HOST_TTL);
        for port in 0..MAX_CACHED_HOSTS + 4 {
            resolve(&cache, &format!("http://localhost:{}/a", 9000 + port));
        }
        assert_eq!(cache.entries.lock().len(), MAX_CACHED_HOSTS);
        let looked_up = cache.lookups.load(Ordering::Relaxed);
        // The newest is still known.
        resolve(
            &cache,
            &format!("http://localhost:{}/a", 9000 + MAX_CACHED_HOSTS + 3),
        );
        assert_eq!(cache.lookups.load(Ordering::Relaxed), looked_up);
    }

    #[test]
    fn an_expired_host_is_looked_up_again() {
        let cache = HostCache::new(Duration::ZERO);
        resolve(&cache, "http://localhost:8080/a");
        resolve(&cache, "http://localhost:8080/a");
        assert_eq!(cache.lookups.load(Ordering::Relaxed), 2);
    }

    /// One request as a keep-alive server saw it.
    struct Seen {
        connection: usize,
        /// Reads it took to receive the whole request.
        reads: usize,
        body: Vec<u8>,
    }

    /// A keep-alive server answering `{}` to every request and reporting each.
    fn keep_alive_server() -> (String, std::sync::mpsc::Receiver<Seen>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (connection, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { return };
                let tx = tx.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    loop {
                        let mut reads = 0;
                        let mut chunk = [0u8; 65536];
                        let (head_end, length) = loop {
                            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                                if buf.len() >= end + 4 + length {
                                    break (end + 4, length);
                                }
                            }
                            match conn.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    reads += 1;
                                    buf.extend_from_slice(&chunk[..n]);
                                }
                            }
                        };
                        let body = buf[head_end..head_end + length].to_vec();
                        buf.drain(..head_end + length);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
                        if conn.write_all(answer).is_err() {
                            return;
                        }
                        let seen = Seen {
                            connection,
                            reads,
                            body,
                        };
                        if tx.send(seen).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (base, rx)
    }

    #[test]
    fn requests_share_one_connection_and_leave_in_one_write() {
        let (base, seen) = keep_alive_server();
        let t = UreqTransport::new(&Config::default());
        for i in 0..3 {
            let body = format!("{{\"n\":{i}}}");
            let req = HttpRequest::new(Method::Post, &base, "/cgi-bin/message/subscribe/send")
                .credential("access_token", Secret::new("TOKEN"))
                .json_body(body.clone());
            let reply = t.call(&req).unwrap();
            assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
            let s = seen.recv().unwrap();
            assert_eq!(s.connection, 0, "request {i} opened a new connection");
            assert_eq!(s.body, body.as_bytes());
            // Head and body in one write arrive together on loopback.
            assert_eq!(s.reads, 1, "request {i} came in {} pieces", s.reads);
        }
        assert_eq!(t.hosts.lookups.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_body_larger_than_the_output_buffer_arrives_whole() {
        let (base, seen) = keep_alive_server();
        let t = UreqTransport::new(&Config::default());
        let body: Vec<u8> = (0..300_000).map(|i| b'a' + (i % 26) as u8).collect();
        let req = HttpRequest::new(Method::Post, &base, "/x").json_body(body.clone());
        assert_eq!(t.call(&req).unwrap().status, 200);
        assert_eq!(seen.recv().unwrap().body, body);
    }
}
