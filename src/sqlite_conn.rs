//! SQLite connections that belong to the process that opened them. The shop's
//! master process may open the store and then fork its workers; every
//! connection of the crate (ledger, outbox, metrics) is kept here so that a
//! forked worker gets rid of all of its parent's before it opens its own.
//!
//! Why: SQLite's unix VFS keeps its lock bookkeeping per inode in process
//! memory. A child inherits that memory together with the parent's open
//! connections, so a connection it opens to the same file believes the
//! shared lock and the `-shm` lock byte are already held and never takes
//! them: the child holds no POSIX lock at all (the kernel gives none of the
//! parent's to a child), and once the master exits, the next process to open
//! the file thinks it is alone and rebuilds the WAL index under live workers.
//! The bookkeeping goes away only when the last inherited connection to the
//! inode is closed, hence the order kept here:
//!
//! 1. The stores open a connection only for as long as they need it at
//!    configure time (to create and migrate the file) and later lazily, in the
//!    process that uses it. A master that only configures forks nothing.
//! 2. The first time a process opens a connection, it first closes every
//!    connection it inherited, all of them, before opening any: one inherited
//!    connection left to the same inode would keep the stale bookkeeping alive.
//!
//! A process keeps one connection per file, shared by the ledger, the outbox
//! and the metrics that live in it: commits made on a second connection to the
//! same file would make this one drop its page cache at its next transaction.
//!
//! Closing in the child cannot harm the parent: POSIX record locks belong to
//! the process that took them, so the child's unlocks and `close()`s release
//! only the child's locks (it has none), never the parent's; the memory and
//! descriptors freed are the child's copies. The one thing a close may write is
//! the checkpoint on close (copying the WAL into the database and deleting the
//! WAL and `-shm`), which SQLite attempts when it gets the exclusive lock, and
//! would attempt from the parent's stale view of the WAL. An inherited
//! connection is therefore closed with that checkpoint turned off
//! (`SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE`): its close then takes no lock and
//! writes nothing, it only unmaps and closes the child's copies.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

/// Every connection slot in this process (inherited ones included, after a fork).
static SLOTS: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// The shared connection slot of each file this process uses, by path.
static FILES: Mutex<Option<HashMap<PathBuf, Weak<Slot>>>> = Mutex::new(None);

/// Write transactions committed by this process (every store, every file).
static WRITE_TRANSACTIONS: AtomicU64 = AtomicU64::new(0);

/// How many write transactions this process has committed to SQLite files:
/// the figure the send path's budget (two per send) is checked against.
pub fn write_transactions() -> u64 {
    WRITE_TRANSACTIONS.load(Ordering::Relaxed)
}

/// The process whose inherited connections are known to be closed.
static SETTLED_IN: AtomicU32 = AtomicU32::new(0);

type Slot = Mutex<Option<Owned>>;

struct Owned {
    pid: u32,
    conn: Connection,
    /// The schemas brought up to date on this connection (each checked once).
    schemas: Vec<&'static str>,
    /// The file this connection opened, as the path named it then.
    file: Option<FileIdentity>,
    /// This process's place in the queue of writers to the file (see
    /// `WriterQueue`); `None` until the first write, or when it cannot be opened.
    queue: Option<WriterQueue>,
}

/// What a path's file was when the connection opened it: its inode, and the
/// owner and mode it could be written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    uid: u32,
    gid: u32,
    mode: u32,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> FileIdentity {
        use std::os::unix::fs::MetadataExt;
        FileIdentity {
            dev: meta.dev(),
            ino: meta.ino(),
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode(),
        }
    }
}

/// Whether the file at `path` is still the one this connection opened, and
/// still writable. An open connection keeps writing into a file that was
/// deleted (`rm -rf` of its directory) or replaced, where no other process
/// and no restart will ever see it: every "sent" after that is a lie and a
/// retried payment notification is sent again. One `stat` per call.
fn still_the_opened_file(path: &Path, opened: &mut Option<FileIdentity>) -> rusqlite::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let gone = match missing_dir(path) {
                Some(d) => format!("its directory {} no longer exists", d.display()),
                None => "the file no longer exists".to_string(),
            };
            return Err(cannot_open(format!(
                "the store file was deleted while this process had it open ({gone}): nothing written to it \
                 now would be kept; restore the file (or its directory) and restart the workers"
            )));
        }
        Err(e) => return Err(cannot_open(format!("cannot stat the file: {e}"))),
    };
    let now = FileIdentity::of(&meta);
    let Some(then) = *opened else {
        *opened = Some(now);
        return Ok(());
    };
    if (now.dev, now.ino) != (then.dev, then.ino) {
        return Err(cannot_open(
            "the store file was replaced by another file while this process had the old one open: \
             restart the workers so that every one uses the same file"
                .to_string(),
        ));
    }
    if (now.uid, now.gid, now.mode) != (then.uid, then.gid, then.mode) {
        if let Some(why) = not_writable(path) {
            return Err(cannot_open(format!(
                "the file was made read-only for this process while it was open: {why}"
            )));
        }
        *opened = Some(now);
    }
    Ok(())
}

/// The topmost directory above `path` that does not exist, if any.
fn missing_dir(path: &Path) -> Option<&Path> {
    let mut dir = path.parent();
    let mut missing = None;
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if d.exists() {
            break;
        }
        missing = Some(d);
        dir = d.parent();
    }
    missing
}

impl Drop for Owned {
    fn drop(&mut self) {
        if self.pid != process::id() {
            // See the module comment: no checkpoint from the parent's view.
            // Should SQLite refuse the setting, closing without it is still
            // safe while the parent's workers hold their shared locks.
            let _ = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
        }
        // Dropping the connection closes it (sqlite3_close).
    }
}

/// Closes, once per process, the connections inherited from the parent.
/// Called before any connection is opened.
fn settle(pid: u32) {
    if SETTLED_IN.load(Ordering::Acquire) == pid {
        return;
    }
    let mut slots = SLOTS.lock();
    slots.retain(|w| w.strong_count() > 0);
    for slot in slots.iter().filter_map(Weak::upgrade) {
        let mut held = slot.lock();
        if held.as_ref().is_some_and(|o| o.pid != pid) {
            drop(held.take());
        }
    }
    SETTLED_IN.store(pid, Ordering::Release);
}

/// Opens a connection to check (create, migrate) a file, and closes it: the
/// store then holds nothing open that a fork could hand down.
pub(crate) fn check<E>(open: impl FnOnce() -> Result<Connection, E>) -> Result<(), E> {
    settle(process::id());
    open().map(drop)
}

/// The connection a store uses in this process, opened on first use.
pub(crate) struct ProcessConnection {
    slot: Arc<Slot>,
}

impl fmt::Debug for ProcessConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessConnection")
            .field("open", &self.is_open())
            .finish()
    }
}

impl Default for ProcessConnection {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessConnection {
    pub(crate) fn new() -> ProcessConnection {
        let slot = Arc::new(Mutex::new(None));
        let mut slots = SLOTS.lock();
        slots.retain(|w| w.strong_count() > 0);
        slots.push(Arc::downgrade(&slot));
        ProcessConnection { slot }
    }

    /// The connection every store of this process uses for the file at
    /// `path` (one per file, see the module comment).
    pub(crate) fn for_file(path: &Path) -> ProcessConnection {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let mut files = FILES.lock();
        let files = files.get_or_insert_with(HashMap::new);
        files.retain(|_, w| w.strong_count() > 0);
        if let Some(slot) = files.get(&key).and_then(Weak::upgrade) {
            return ProcessConnection { slot };
        }
        let made = ProcessConnection::new();
        files.insert(key, Arc::downgrade(&made.slot));
        made
    }

    /// Runs `f` on this process's connection, opening it with `open` first
    /// when this process has none yet (after closing inherited ones).
    pub(crate) fn with<T, E>(
        &self,
        open: impl FnOnce() -> Result<Connection, E>,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let pid = process::id();
        settle(pid);
        let mut held = self.slot.lock();
        if held.as_ref().is_some_and(|o| o.pid != pid) {
            // Not reached after `settle`; if it were, the inherited
            // connection must still go before a new one opens.
            drop(held.take());
        }
        let owned = match held.take() {
            Some(owned) => owned,
            None => Owned {
                pid,
                conn: open()?,
                schemas: Vec::new(),
                file: None,
                queue: None,
            },
        };
        f(&mut held.insert(owned).conn)
    }

    /// `with`, for a store whose tables follow `schema`: they are brought up
    /// to date the first time this connection serves that store.
    /// The file at `path` must still be the one the connection opened.
    fn with_schema<T>(
        &self,
        path: &Path,
        open: impl FnOnce() -> rusqlite::Result<Connection>,
        schema: &'static Schema,
        f: impl FnOnce(&mut Connection, &mut Option<WriterQueue>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.with(open, |_| Ok(()))?;
        let mut held = self.slot.lock();
        let Some(owned) = held.as_mut().filter(|o| o.pid == process::id()) else {
            return Err(cannot_open("the connection closed".to_string()));
        };
        still_the_opened_file(path, &mut owned.file)?;
        if !owned.schemas.contains(&schema.name) {
            while_busy(|| schema.migrate(&owned.conn))?;
            owned.schemas.push(schema.name);
        }
        f(&mut owned.conn, &mut owned.queue)
    }

    /// Whether this process has its connection open (for tests).
    pub(crate) fn is_open(&self) -> bool {
        self.slot
            .lock()
            .as_ref()
            .is_some_and(|o| o.pid == process::id())
    }
}

/// Prepared statements kept per connection (SQLite's default of 16 is fewer
/// than the stores sharing a connection use).
const STATEMENT_CACHE: usize = 128;

/// How long a writer waits for another process's transaction. Transactions
/// here last microseconds, so only a stuck process makes anyone wait this long.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `path` for a store in WAL mode, creating the file with mode 0600 when
/// it is missing (SQLite would use the umask's; permits and messages name
/// users). Many worker processes may open a new file at the same moment: the
/// first creates it, the others find it, and none ever removes it.
pub(crate) fn open_wal(path: &Path) -> rusqlite::Result<Connection> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(cannot_open(format!(
                "cannot create the file: {}",
                explain_io(path, &e)
            )));
        }
    }
    // SQLite opens a file it may not write read-only without a word, and
    // fails only at the first write: refuse it here, saying whose it is.
    // Judged from the file's owner and mode, not by opening it: closing any
    // descriptor of the file would drop the POSIX locks this process's other
    // connections hold on it.
    if let Some(why) = not_writable(path) {
        return Err(cannot_open(format!(
            "cannot open the file for writing: {why}"
        )));
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_handler(Some(wait_for_the_lock(BUSY_TIMEOUT)))?;
    let mode: String =
        while_busy(|| conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(cannot_open(format!(
            "cannot switch to WAL mode (journal_mode is {mode})"
        )));
    }
    // WAL with NORMAL survives any process crash; only a power loss may lose
    // the last transactions.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The ledger, the outbox and the metrics share the connection: room for
    // all their hot statements, so none is compiled again per call.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Runs `step` again while SQLite answers SQLITE_BUSY without having asked
/// the busy handler: it does so when processes open a new file at the same
/// moment (one switching it to WAL while another reads its header), where
/// waiting could deadlock inside SQLite but a fresh attempt cannot.
pub(crate) fn while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let mut wait = wait_for_the_lock(BUSY_TIMEOUT);
    let mut attempt = 0;
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && wait(attempt) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// An I/O error on the store's file; a permission problem names the owner
/// and mode of the file (or of its directory) and the user this process
/// runs as, which is what the shop has to change.
fn explain_io(path: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    if e.kind() == std::io::ErrorKind::NotFound {
        return match missing_dir(path) {
            Some(d) => format!(
                "the directory {} does not exist: create it (mkdir -p) and give it to the workers' user",
                d.display()
            ),
            None => e.to_string(),
        };
    }
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return e.to_string();
    }
    let me = process_uid().map_or("unknown".to_string(), |u| u.to_string());
    let (what, meta) = match std::fs::metadata(path) {
        Ok(m) => ("the file", Some(m)),
        Err(_) => (
            "its directory",
            path.parent().and_then(|d| std::fs::metadata(d).ok()),
        ),
    };
    match meta {
        Some(m) => format!(
            "permission denied: {what} is owned by uid {} with mode {:04o} and this process runs as uid {me}; {}",
            m.uid(),
            m.mode() & 0o7777,
            permission_fix(m.uid(), process_uid(), if what == "the file" { "u+rw" } else { "u+rwx" })
        ),
        None => format!("permission denied ({e}); this process runs as uid {me}"),
    }
}

/// Why this process may not read and write the existing file at `path`, from
/// its owner, group and mode against this process's ids (`None`: it may, or
/// it cannot be told; ACLs are not looked at).
fn not_writable(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let ids = |key: &str| -> Vec<u32> {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Effective ids: the second column of Uid/Gid.
    let uid = *ids("Uid:").get(1)?;
    let gid = *ids("Gid:").get(1)?;
    if uid == 0 {
        return None;
    }
    let mode = meta.mode();
    let rw = if meta.uid() == uid {
        mode & 0o600 == 0o600
    } else if meta.gid() == gid || ids("Groups:").contains(&meta.gid()) {
        mode & 0o060 == 0o060
    } else {
        mode & 0o006 == 0o006
    };
    (!rw).then(|| {
        format!(
            "permission denied: the file is owned by uid {} (gid {}) with mode {:04o} and this process runs as uid {uid}; {}",
            meta.uid(),
            meta.gid(),
            mode & 0o7777,
            permission_fix(meta.uid(), Some(uid), "u+rw")
        )
    })
}

/// What to change: the mode when the workers already own the file or
/// directory (chmod), else the owner (chown).
fn permission_fix(owner: u32, me: Option<u32>, chmod: &str) -> String {
    if Some(owner) == me {
        format!("this process's user is the owner already: give the owner the permission (chmod {chmod})")
    } else {
        format!(
            "run every worker as the owner, or give the file and its directory to the workers' user \
             (chown) with read and write permission (chmod {chmod})"
        )
    }
}

/// This process's effective uid, from /proc (Linux); `None` elsewhere.
fn process_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn cannot_open(message: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(message),
    )
}

/// SQLite's own busy timeout sleeps in steps growing to 100 ms, so with several
/// busy processes one of them can keep losing the race for the write lock until
/// it times out. Short, jittered sleeps keep every process in the race.
pub(crate) fn wait_for_the_lock(patience: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut since = Instant::now();
    let jitter = u64::from(process::id());
    move |attempt| {
        if attempt == 0 {
            since = Instant::now();
        } else if since.elapsed() > patience {
            return false;
        }
        let micros = 20 + (jitter.wrapping_mul(31).wrapping_add(attempt as u64 * 7919)) % 200;
        std::thread::sleep(Duration::from_micros(micros));
        true
    }
}

/// The queue of this crate's writers to one file: an exclusive `flock` on a
/// file next to it (`<file>-writers`), taken before `BEGIN IMMEDIATE` and
/// released after the commit.
///
/// Why: SQLite's write lock is a POSIX lock that SQLite only ever tries
/// without blocking, so a writer that finds it taken can only sleep and try
/// again. With eight processes on one file that left the lock free while the
/// next writer slept (the sleeps were most of a send's wall time) and woke
/// writers that lost again. The kernel queues `flock` waiters and wakes the
/// next one when the lock is released, so no writer waits longer than the
/// writers before it need. A writer first tries a few times with its CPU
/// yielded in between (`wait_for_turn`), so the lock also passes from one
/// process to the next without waiting for a sleeper to be woken; waiters
/// that tried that long sleep in the kernel's queue and use no CPU.
///
/// The queue is only an order among our writers: SQLite's own lock still
/// guards the data (with the busy handler, for any other writer of the file),
/// so a process that cannot open the queue file writes without it. A lock
/// belongs to the open file description: a forked child closes its inherited
/// copy without unlocking (see the module comment), which leaves the
/// parent's lock alone; a process that dies releases its lock with it.
pub(crate) struct WriterQueue {
    file: Option<std::fs::File>,
}

/// A writer's turn; the next writer's starts when it is dropped.
pub(crate) struct WriterTurn<'a> {
    file: Option<&'a std::fs::File>,
}

impl WriterQueue {
    pub(crate) fn open(db: &Path) -> WriterQueue {
        let mut name = db.as_os_str().to_owned();
        name.push("-writers");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(PathBuf::from(name))
            .ok();
        WriterQueue { file }
    }

    /// Waits for this process's turn: as long as it takes without
    /// `patience`, else at most `patience` (then it writes out of turn, and
    /// SQLite's busy handler bounds the wait).
    pub(crate) fn turn(&self, patience: Option<Duration>) -> WriterTurn<'_> {
        let Some(file) = &self.file else {
            return WriterTurn { file: None };
        };
        let taken = match patience {
            None => wait_for_turn(file),
            Some(p) => {
                let mut wait = wait_for_the_lock(p);
                let mut attempt = 0;
                loop {
                    match file.try_lock() {
                        Ok(()) => break true,
                        Err(std::fs::TryLockError::WouldBlock) if wait(attempt) => attempt += 1,
                        Err(_) => break false,
                    }
                }
            }
        };
        WriterTurn {
            file: taken.then_some(file),
        }
    }
}

/// How many times a writer that finds the queue taken tries again, yielding
/// its CPU in between, before it sleeps in the kernel's queue.
const TRIES_BEFORE_SLEEPING: u32 = 30;

/// Takes the queue's lock: a few tries with the CPU yielded in between, then
/// the kernel's blocking wait. A transaction holds the lock for tens of
/// microseconds; a writer put to sleep is woken only after the lock is free
/// and then has to be scheduled, often on an idle CPU that must be woken
/// first, and the lock sits unused meanwhile (eight processes on one file
/// left a third of two cores idle that way). Yielding keeps the waiter ready
/// to take the lock the moment it is released, and lets the holder (or any
/// other ready process) have the CPU meanwhile. `false`: the lock could not
/// be taken at all (the writer goes on without the queue).
fn wait_for_turn(file: &std::fs::File) -> bool {
    for _ in 0..TRIES_BEFORE_SLEEPING {
        match file.try_lock() {
            Ok(()) => return true,
            Err(std::fs::TryLockError::WouldBlock) => std::thread::yield_now(),
            Err(std::fs::TryLockError::Error(_)) => break,
        }
    }
    file.lock().is_ok()
}

impl Drop for WriterTurn<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.file {
            let _ = file.unlock();
        }
    }
}

/// A store's SQLite file: created and migrated when opened, then written in
/// immediate transactions on this process's own connection.
pub(crate) struct StoreFile {
    path: PathBuf,
    schema: &'static Schema,
    conn: ProcessConnection,
}

/// The tables one store keeps in a file, with the table recording their
/// version: each store keeps its own, so stores sharing a file migrate
/// independently.
#[derive(Debug)]
pub(crate) struct Schema {
    /// Its name in messages ("schema", "outbox schema").
    pub name: &'static str,
    pub version_table: &'static str,
    /// Each entry brings the tables from the version before it to its own number.
    pub migrations: &'static [&'static str],
}

impl Schema {
    /// Brings the tables up to date in one immediate transaction; a file
    /// written by a newer version is refused, untouched.
    fn migrate(&self, conn: &Connection) -> rusqlite::Result<()> {
        let table = self.version_table;
        // Up to date already (the usual case, a worker's first use of a file
        // configure checked): a read, no write lock.
        let current = conn
            .query_row(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {table}"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .ok();
        if current == Some(self.migrations.len() as i64) {
            return Ok(());
        }
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| {
            conn.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)"
            ))?;
            let version: i64 = conn.query_row(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )?;
            let latest = self.migrations.len() as i64;
            if version > latest {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
                    Some(format!(
                        "{} version {version} was written by a newer fashop-notify (this one knows {latest})",
                        self.name
                    )),
                ));
            }
            for (i, step) in self.migrations.iter().enumerate().skip(version as usize) {
                conn.execute_batch(step)?;
                conn.execute(&format!("DELETE FROM {table}"), [])?;
                conn.execute(
                    &format!("INSERT INTO {table} (version) VALUES (?1)"),
                    [i as i64 + 1],
                )?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => conn.execute_batch("COMMIT"),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

impl fmt::Debug for StoreFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreFile")
            .field("path", &self.path)
            .finish()
    }
}

impl StoreFile {
    /// Checks the file (creating it with mode 0600 and migrating when
    /// needed); the connection the operations use is opened on first use.
    pub(crate) fn open(path: &str, schema: &'static Schema) -> crate::error::Result<StoreFile> {
        // Absolute, so that a host's chdir() between calls (PHP's may) can
        // neither move the store nor make it look deleted.
        let path = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
        let file = StoreFile {
            conn: ProcessConnection::for_file(&path),
            path,
            schema,
        };
        check(|| file.connect()).map_err(|e| file.error(e))?;
        Ok(file)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> rusqlite::Result<Connection> {
        let conn = open_wal(&self.path)?;
        while_busy(|| self.schema.migrate(&conn))?;
        Ok(conn)
    }

    fn error(&self, e: rusqlite::Error) -> crate::error::Error {
        crate::error::Error::store(format!("sqlite store {}: {e}", self.path.display()))
    }

    /// Runs `f` in one immediate transaction on this process's connection.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> crate::error::Result<T> {
        self.write_raw(None, f).map_err(|e| self.error(e))
    }

    /// `write`, waiting at most `patience` for another process's
    /// transaction, with SQLite's own error (the caller words it).
    pub(crate) fn write_raw<T>(
        &self,
        patience: Option<Duration>,
        f: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.with_schema(
            &self.path,
            || open_wal(&self.path),
            self.schema,
            |conn, queue| {
                let queue = queue.get_or_insert_with(|| WriterQueue::open(&self.path));
                // Released when the transaction is over, committed or not.
                let _turn = queue.turn(patience);
                if let Some(p) = patience {
                    conn.busy_handler(Some(wait_for_the_lock(p)))?;
                }
                let done = (|| {
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let value = f(&tx)?;
                    tx.commit()?;
                    WRITE_TRANSACTIONS.fetch_add(1, Ordering::Relaxed);
                    Ok(value)
                })();
                if patience.is_some() {
                    conn.busy_handler(Some(wait_for_the_lock(BUSY_TIMEOUT)))?;
                }
                done
            },
        )
    }

    /// Runs `f` on this process's connection outside any transaction (reads).
    pub(crate) fn read_raw<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.with_schema(
            &self.path,
            || open_wal(&self.path),
            self.schema,
            |conn, _| f(conn),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn queue_file(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fashop-writer-queue-{}", process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// Whether a third open of the queue file finds its lock taken.
    fn taken(db: &Path) -> bool {
        let other = WriterQueue::open(db);
        let file = other.file.as_ref().unwrap();
        match file.try_lock() {
            Ok(()) => {
                file.unlock().unwrap();
                false
            }
            Err(std::fs::TryLockError::WouldBlock) => true,
            Err(e) => panic!("try_lock: {e}"),
        }
    }

    #[test]
    fn a_free_queue_is_taken_at_once_and_freed_with_the_turn() {
        let db = queue_file("free.db");
        let queue = WriterQueue::open(&db);
        let turn = queue.turn(None);
        assert!(turn.file.is_some(), "the turn holds the lock");
        assert!(taken(&db));
        drop(turn);
        assert!(!taken(&db));
    }

    #[test]
    fn a_writer_waits_past_its_tries_until_the_holder_is_done() {
        let db = queue_file("busy.db");
        let holder = WriterQueue::open(&db);
        let held = holder.turn(None);
        let released = Arc::new(AtomicBool::new(false));
        let (got_turn, turn_taken) = std::sync::mpsc::channel();
        let (let_go, looked) = std::sync::mpsc::channel::<()>();
        let waiter = {
            let (db, released) = (db.clone(), released.clone());
            std::thread::spawn(move || {
                let queue = WriterQueue::open(&db);
                let turn = queue.turn(None);
                // The turn can only start once the holder let go.
                got_turn
                    .send((turn.file.is_some(), released.load(Ordering::SeqCst)))
                    .unwrap();
                // Hold it until the test has looked.
                looked.recv().unwrap();
                drop(turn);
            })
        };
        // Whatever the waiter is doing now (trying, yielding or asleep in
        // the kernel's queue), it cannot have the lock yet.
        assert!(turn_taken.try_recv().is_err());
        released.store(true, Ordering::SeqCst);
        drop(held);
        let (holds, after_release) = turn_taken.recv().unwrap();
        assert!(holds, "the waiter holds the lock");
        assert!(
            after_release,
            "the waiter took its turn only after the holder's"
        );
        assert!(taken(&db), "the lock is the waiter's now");
        let_go.send(()).unwrap();
        waiter.join().unwrap();
        assert!(!taken(&db));
    }
}
