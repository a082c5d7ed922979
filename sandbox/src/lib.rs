//! A local server that behaves like WeChat's API, for tests, demos and benchmarks.
//! It fails the way WeChat fails (token rotation, keyword rules, grants, legacy
//! permits) and on purpose (injected faults). See `sandbox/README.md`.

mod card_api;
mod card_control;
mod cards;
mod conn;
mod control;
mod fault;
mod push;
mod push_state;
mod quota;
mod seed;
mod server;
mod shared;
mod state;
pub mod templates;
mod world;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use cards::DEFAULT_VALID_AFTER_SECS;
pub use fault::Fault;
pub use seed::{
    SeedApp, SeedFile, SeedFormId, SeedGrant, SeedKeyword, SeedPrepayId, SeedPush, SeedTemplate,
    SeedUser,
};
pub use templates::*;
pub use world::{Counters, DeliveredMessage};

use fashop_notify::{ManualClock, SystemClock};
use shared::Shared;
use world::{SandboxClock, Settings, World};

/// How a sandbox starts.
#[derive(Clone)]
pub struct SandboxOptions {
    /// Address to listen on; `127.0.0.1` by default.
    pub host: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Apps present at start: (appid, secret). The demo app by default.
    pub apps: Vec<(String, String)>,
    /// Legacy template messages enforce form_id / prepay_id instead of answering 45103.
    pub legacy: bool,
    /// How long a classic token keeps working after the next one was fetched.
    pub token_grace_secs: i64,
    /// Token lifetime.
    pub expires_in: i64,
    /// `None`: the clock follows real time (plus `advance_clock`); `Some(t)`:
    /// it stands at unix time `t` and moves only through `advance_clock`.
    pub clock_start: Option<i64>,
    /// Threads handling requests.
    pub workers: usize,
    /// Seed of the random choices of probabilistic faults.
    pub random_seed: u64,
    /// Log each request's method and path to stderr.
    pub verbose: bool,
    /// The state file: loaded at start when it exists, written after each
    /// request that may change apps, users, templates, grants or push targets.
    pub state_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for SandboxOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let appids: Vec<&str> = self.apps.iter().map(|(a, _)| a.as_str()).collect();
        f.debug_struct("SandboxOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("apps", &appids)
            .field("legacy", &self.legacy)
            .field("token_grace_secs", &self.token_grace_secs)
            .field("expires_in", &self.expires_in)
            .field("clock_start", &self.clock_start)
            .field("workers", &self.workers)
            .field("state_file", &self.state_file)
            .finish_non_exhaustive()
    }
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            host: "127.0.0.1".into(),
            port: 0,
            apps: vec![(DEMO_APPID.to_string(), DEMO_SECRET.to_string())],
            legacy: false,
            token_grace_secs: 300,
            expires_in: 7200,
            clock_start: None,
            workers: 4,
            random_seed: 0x5eed,
            verbose: false,
            state_file: None,
        }
    }
}

/// A running sandbox. Dropping it stops the server, its threads and its
/// connections.
pub struct Sandbox {
    shared: Arc<Shared>,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    nudge: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    /// The listening socket, shared with tiny_http, to stop accepting at once on drop.
    listener: TcpListener,
}

impl Sandbox {
    /// A sandbox on 127.0.0.1 with an ephemeral port and the demo app.
    ///
    /// # Panics
    /// When it cannot listen (a test cannot go on without it).
    pub fn start() -> Sandbox {
        Sandbox::start_with(SandboxOptions::default())
    }

    /// # Panics
    /// When it cannot listen or an option is invalid; see [`Sandbox::try_start_with`].
    pub fn start_with(options: SandboxOptions) -> Sandbox {
        Sandbox::try_start_with(options).unwrap_or_else(|e| panic!("sandbox: {e}"))
    }

    /// Starts a sandbox; the error says why it could not.
    pub fn try_start_with(options: SandboxOptions) -> Result<Sandbox, String> {
        if options.token_grace_secs < 0 || options.expires_in <= 0 {
            return Err("token_grace_secs must be >= 0 and expires_in > 0".into());
        }
        let listener = TcpListener::bind((options.host.as_str(), options.port))
            .map_err(|e| format!("cannot listen on {}:{}: {e}", options.host, options.port))?;
        conn::tune_listener(&listener);
        let local = listener
            .local_addr()
            .map_err(|e| format!("cannot read the listening address: {e}"))?;
        let ours = listener
            .try_clone()
            .map_err(|e| format!("cannot share the listening socket: {e}"))?;
        let server = tiny_http::Server::from_listener(listener, None)
            .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
        let clock = match options.clock_start {
            Some(t) => SandboxClock::new(Box::new(ManualClock::at(t))),
            None => SandboxClock::new(Box::new(SystemClock)),
        };
        let mut world = World::new(
            Settings {
                legacy: options.legacy,
                grace_secs: options.token_grace_secs,
                expires_in: options.expires_in,
                concurrent_gap_ms: 0,
            },
            options.random_seed,
        );
        for (appid, secret) in &options.apps {
            world.seed_app(appid, secret)?;
        }
        let mut shared = Shared::new(world, clock, local, options.verbose);
        if let Some(path) = &options.state_file {
            if path.exists() {
                let now = shared.clock.now();
                state::load(path)?.apply(&mut shared.world.lock(), now)?;
            }
            shared.state = Some(state::StateFile::new(path.clone()));
        }
        let shared = Arc::new(shared);
        let server = Arc::new(server);
        let workers = (0..options.workers.max(1))
            .map(|i| {
                let server = Arc::clone(&server);
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("sandbox-worker-{i}"))
                    .spawn(move || server::serve(&server, &shared))
                    .map_err(|e| format!("cannot start a worker thread: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let nudge = start_nudge(local, Arc::clone(&shared))?;
        Ok(Sandbox {
            shared,
            server,
            workers,
            nudge: Some(nudge),
            listener: ours,
        })
    }

    /// `http://HOST:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.local)
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.local
    }

    fn control<T>(&self, what: &str, r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| panic!("sandbox {what}: {e}"))
    }

    /// Adds an app (or changes its secret).
    ///
    /// # Panics
    /// On an invalid appid or an empty secret; likewise the other control
    /// methods panic on an unknown appid or an empty value.
    pub fn seed_app(&self, appid: &str, secret: &str) {
        let r = self.shared.world.lock().seed_app(appid, secret);
        self.control("seed_app", r)
    }

    /// Makes `openid` a user of the app.
    pub fn seed_user(&self, appid: &str, openid: &str) {
        let r = self.shared.world.lock().seed_user(appid, openid);
        self.control("seed_user", r)
    }

    /// `count` taps on "allow" in `wx.requestSubscribeMessage` for the template;
    /// seeds the user too.
    pub fn grant(&self, appid: &str, openid: &str, template_id: &str, count: u64) {
        let r = self
            .shared
            .world
            .lock()
            .grant(appid, openid, template_id, count);
        self.control("grant", r)
    }

    /// Grants left for (openid, template_id).
    pub fn grants_left(&self, appid: &str, openid: &str, template_id: &str) -> u64 {
        self.shared
            .world
            .lock()
            .grants_left(appid, openid, template_id)
    }

    /// A legacy form_id collected now (sandbox clock); valid 7 days, one use.
    pub fn add_form_id(&self, appid: &str, openid: &str, form_id: &str) {
        let now = self.now();
        let r = self
            .shared
            .world
            .lock()
            .add_form_id(appid, openid, form_id, now);
        self.control("add_form_id", r)
    }

    /// A legacy prepay_id created now; three uses, only once marked paid.
    pub fn add_prepay_id(&self, appid: &str, openid: &str, prepay_id: &str) {
        let now = self.now();
        let r = self
            .shared
            .world
            .lock()
            .add_prepay_id(appid, openid, prepay_id, now);
        self.control("add_prepay_id", r)
    }

    /// A WeChat Pay payment by `openid` of `amount` fen at `pay_time` (unix
    /// seconds): its transaction id becomes a valid service card notify_code
    /// `valid_after_secs` from now on the sandbox clock.
    pub fn record_payment(
        &self,
        appid: &str,
        transaction_id: &str,
        openid: &str,
        amount: u64,
        pay_time: i64,
        valid_after_secs: i64,
    ) {
        let now = self.now();
        let pay = cards::Payment {
            openid: openid.to_string(),
            amount,
            pay_time,
            valid_from: now + valid_after_secs,
        };
        self.shared
            .world
            .lock()
            .cards
            .record_payment(appid, transaction_id, pay);
    }

    /// The statuses the card of `transaction_id` went through, in order.
    pub fn card_statuses(&self, appid: &str, transaction_id: &str) -> Vec<u32> {
        let w = self.shared.world.lock();
        w.cards
            .card(appid, transaction_id)
            .map(|c| c.statuses.clone())
            .unwrap_or_default()
    }

    /// The buyer refuses the card of `transaction_id` (code_state 10).
    pub fn refuse_card(&self, appid: &str, transaction_id: &str) {
        let r = self.shared.world.lock().cards.refuse(appid, transaction_id);
        self.control("refuse_card", r)
    }

    /// The order behind `prepay_id` was paid.
    pub fn mark_paid(&self, appid: &str, prepay_id: &str) {
        let r = self.shared.world.lock().mark_paid(appid, prepay_id);
        self.control("mark_paid", r)
    }

    /// Adds a fault; see [`Fault`].
    pub fn inject(&self, fault: Fault) {
        let r = self.shared.world.lock().inject(fault);
        self.control("inject", r)
    }

    pub fn clear_faults(&self) {
        self.shared.world.lock().faults.clear();
    }

    /// Moves the sandbox clock forward (or back, with a negative value).
    pub fn advance_clock(&self, secs: i64) {
        self.shared.clock.advance(secs);
    }

    /// The sandbox clock, unix seconds.
    pub fn now(&self) -> i64 {
        self.shared.clock.now()
    }

    /// Messages accepted for `openid` of `appid`, oldest first.
    pub fn delivered(&self, appid: &str, openid: &str) -> Vec<DeliveredMessage> {
        self.shared
            .world
            .lock()
            .delivered(Some(appid), Some(openid))
    }

    /// Every message accepted, oldest first.
    pub fn all_delivered(&self) -> Vec<DeliveredMessage> {
        self.shared.world.lock().delivered(None, None)
    }

    pub fn counters(&self) -> Counters {
        self.shared.world.lock().counters.clone()
    }

    /// Legacy template messages: enforced (true) or answered 45103 (false).
    pub fn set_legacy_mode(&self, on: bool) {
        self.shared.world.lock().settings.legacy = on;
    }

    /// How long a replaced classic token keeps working.
    pub fn set_token_grace_secs(&self, secs: i64) {
        assert!(secs >= 0, "sandbox set_token_grace_secs: must be >= 0");
        self.shared.world.lock().settings.grace_secs = secs;
    }

    /// Lifetime of tokens fetched from now on.
    pub fn set_expires_in(&self, secs: i64) {
        assert!(secs > 0, "sandbox set_expires_in: must be > 0");
        self.shared.world.lock().settings.expires_in = secs;
    }

    /// The pages of the app's published mini program; a message naming another
    /// page gets 41030. Empty: any page is accepted.
    pub fn set_pages(&self, appid: &str, pages: Vec<String>) {
        let r = self.shared.world.lock().set_pages(appid, pages);
        self.control("set_pages", r)
    }

    /// The user switched `template_id` off in the mini program's settings:
    /// the grants left go, and every later send to them with it answers 43101
    /// until a new grant (the user switched it on and tapped again). Unlike
    /// `POST /sandbox/revoke`, no change event is pushed.
    pub fn revoke(&self, appid: &str, openid: &str, template_id: &str) {
        let r = self.shared.world.lock().revoke(appid, openid, template_id);
        self.control("revoke", r.map(|_| ()))
    }

    /// Words of WeChat's content blacklist for the app: a message with a value
    /// holding one answers 45168 `keyword in blacklist`. Empty: none.
    pub fn set_blacklist(&self, appid: &str, words: &[&str]) {
        let words = words.iter().map(|w| w.to_string()).collect();
        let r = self.shared.world.lock().set_blacklist(appid, words);
        self.control("set_blacklist", r)
    }

    /// A send to a user less than `ms` after the previous accepted send to
    /// them answers 43108 (concurrent sends to one openid); 0 turns it off.
    pub fn set_concurrent_gap_ms(&self, ms: i64) {
        assert!(ms >= 0, "sandbox set_concurrent_gap_ms: must be >= 0");
        self.shared.world.lock().settings.concurrent_gap_ms = ms;
    }

    /// Applies a seed document (apps, users, grants, permits).
    pub fn apply_seed(&self, seed: &SeedFile) -> Result<(), String> {
        let now = self.now();
        seed.apply(&mut self.shared.world.lock(), now)
    }

    /// Writes the state file now (see [`SandboxOptions::state_file`]); the
    /// server writes it after each request that may change it.
    pub fn save_state(&self) -> Result<(), String> {
        match &self.shared.state {
            Some(state) => state.save(&self.shared.world),
            None => Ok(()),
        }
    }

    /// Back to the start: users, grants, permits, tokens, deliveries, counters
    /// and faults go; apps, secrets and settings stay.
    pub fn reset(&self) {
        self.shared.world.lock().reset();
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

/// tiny_http hands each new connection to an idle thread of its pool, but
/// counts idle threads loosely: in a burst of connections some can be queued
/// behind threads that are already busy with keep-alive clients, and wait
/// until other connections close. Each short connection made to the server
/// while that happens starts a pool thread, which then takes one queued
/// connection. Bursts come with other new connections, so for 2 s after one
/// is seen the sandbox makes a few such connections every 5 ms, and one every
/// 100 ms otherwise.
fn start_nudge(
    local: SocketAddr,
    shared: Arc<Shared>,
) -> Result<(Arc<AtomicBool>, JoinHandle<()>), String> {
    const TICK: Duration = Duration::from_millis(5);
    const BUSY_TICKS: u32 = 400; // 2 s without new connections before slowing down
    const IDLE_EVERY: u32 = 20;
    const PER_TICK: usize = 2;
    let target = if local.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], local.port()))
    } else {
        local
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = Arc::clone(&stop);
    let handle = std::thread::Builder::new()
        .name("sandbox-nudge".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut seen = shared.arrivals();
            let mut quiet_ticks = BUSY_TICKS;
            let mut tick: u32 = 0;
            while !stop2.load(Ordering::SeqCst) {
                std::thread::park_timeout(TICK);
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                tick = tick.wrapping_add(1);
                let now = shared.arrivals();
                if now != seen {
                    seen = now;
                    quiet_ticks = 0;
                } else {
                    quiet_ticks = quiet_ticks.saturating_add(1);
                }
                let n = if quiet_ticks < BUSY_TICKS {
                    PER_TICK
                } else if tick.is_multiple_of(IDLE_EVERY) {
                    1
                } else {
                    0
                };
                for _ in 0..n {
                    let _ = std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1));
                }
            }
        })
        .map_err(|e| format!("cannot start a thread: {e}"))?;
    Ok((stop, handle))
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some((stop, handle)) = self.nudge.take() {
            stop.store(true, Ordering::SeqCst);
            handle.thread().unpark();
            let _ = handle.join();
        }
        // tiny_http closes its listener only when its accept thread notices,
        // some time after the server is dropped; shutting it down here makes
        // connection attempts fail from now on.
        conn::stop_listening(&self.listener);
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        // Connection threads wait on their clients; shutting the sockets down
        // ends them.
        conn::close_all(self.shared.local);
    }
}
