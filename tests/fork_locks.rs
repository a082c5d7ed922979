//! A master process that configured and used the SQLite store, then forked
//! its workers (EasySwoole): every worker must hold its own POSIX locks on the
//! database and its `-shm` file after its first operation, the worker's
//! closing of the connections it inherited must leave the master's locks and
//! data alone, and when the master exits, a process opening the file next must
//! find the workers' locks and the data whole.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::panic::AssertUnwindSafe;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde_json::Value;

use fashop_notify::Notifier;

use crate::store_suite::TempDir;

const APP: &str = "wxforklocks000001";

/// The `-shm` file's "dead man switch" byte: read-locked by every process
/// using the WAL index, so the first one to open the file knows it is first.
const SHM_DMS: (u64, u64) = (128, 128);

fn notifier(path: &str) -> Notifier {
    let n = Notifier::new();
    n.configure(&serde_json::json!({ "store": format!("sqlite:{path}") }).to_string())
        .unwrap();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"s"}}"#))
        .unwrap();
    n
}

/// One permit for `openid`; also flushes the metrics into the store file.
fn add(n: &Notifier, openid: &str) {
    n.add_permit(
        APP,
        &format!(r#"{{"openid":"{openid}","kind":"subscribe","template_id":"TPL"}}"#),
    )
    .unwrap();
}

/// Runs every SQLite user of the crate once: ledger, outbox, metrics sink.
fn use_every_connection(n: &Notifier, openid: &str) {
    add(n, openid);
    n.outbox_stats(None).unwrap();
    n.metrics_text("prometheus").unwrap();
}

fn total_uses(n: &Notifier, openid: Option<&str>) -> u64 {
    let v: Value = serde_json::from_str(&n.ledger_stats(APP, openid).unwrap()).unwrap();
    v["total_uses"].as_u64().unwrap()
}

/// The POSIX lock `pid` holds on `file` over exactly `range` ("READ" or
/// "WRITE"), from /proc/locks.
fn lock_held(pid: u32, file: &str, range: (u64, u64)) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    let dev = meta.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let id = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    locks.lines().find_map(|line| {
        // "1: POSIX  ADVISORY  READ 1234 fe:00:5678 128 128" (waiters carry "->").
        let f: Vec<&str> = line.split_whitespace().collect();
        let found = f.len() == 8
            && f[1] == "POSIX"
            && f[4].parse() == Ok(pid)
            && f[5] == id
            && f[6].parse() == Ok(range.0)
            && f[7].parse() == Ok(range.1);
        found.then(|| f[3].to_string())
    })
}

/// The lock that matters across processes, as one line: the `-shm` file's
/// dead-man-switch byte, whose read lock tells a newcomer it is not alone
/// (without it the newcomer would rebuild the WAL index under live workers).
/// The database file's own shared-lock range is left out: between
/// transactions whether a process holds it is SQLite's timing, not ours, and
/// checking it made these tests flaky under load.
fn locks_line(pid: u32, path: &str) -> String {
    format!("shm={:?}", lock_held(pid, &format!("{path}-shm"), SHM_DMS))
}

const HOLDS_ITS_LOCKS: &str = r#"shm=Some("READ")"#;

/// Forks; the child runs `work` with its end of a socket pair and exits
/// (status 1 if `work` panicked). The parent gets the child's pid and its end.
fn spawn(work: impl FnOnce(&mut Line)) -> (Pid, Line) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    // SAFETY: the child only runs the test's own code on this thread (the
    // crate starts no threads of its own here, and no other thread of the
    // test process holds a lock the child needs: each test runs alone in its
    // process under nextest) and ends with `_exit`.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(mine);
            let mut line = Line::new(theirs);
            let ok = std::panic::catch_unwind(AssertUnwindSafe(|| work(&mut line))).is_ok();
            // SAFETY: `_exit` ends the child at once, without running the
            // test harness's exit handlers a second time.
            unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => (child, Line::new(mine)),
    }
}

/// Text lines over a socket between two test processes.
struct Line {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Line {
    fn new(stream: UnixStream) -> Line {
        Line {
            writer: stream.try_clone().unwrap(),
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, text: &str) {
        writeln!(self.writer, "{text}").unwrap();
    }

    /// The next line; empty when the other side is gone.
    fn recv(&mut self) -> String {
        let mut s = String::new();
        self.reader.read_line(&mut s).unwrap();
        s.trim_end().to_string()
    }
}

fn exited_cleanly(pid: Pid) {
    assert_eq!(waitpid(pid, None).unwrap(), WaitStatus::Exited(pid, 0));
}

fn integrity(path: &str) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_forked_worker_holds_its_own_locks_and_leaves_the_masters_alone() {
    let dir = TempDir::new("fork-locks");
    let path = dir.file("notify.db");
    let n = notifier(&path);
    use_every_connection(&n, "o-master");
    let me = std::process::id();
    assert_eq!(locks_line(me, &path), HOLDS_ITS_LOCKS, "the master");

    let (worker, mut line) = spawn(|line| {
        use_every_connection(&n, "o-worker");
        line.send(&locks_line(std::process::id(), &path));
        // The master writes while this worker is alive; both must see all.
        assert_eq!(line.recv(), "written");
        add(&n, "o-worker");
        line.send(&total_uses(&n, None).to_string());
    });
    assert_eq!(
        line.recv(),
        HOLDS_ITS_LOCKS,
        "the worker after its first operation"
    );
    // The worker closed the connections it inherited: the master's locks stay.
    assert_eq!(locks_line(me, &path), HOLDS_ITS_LOCKS, "the master");
    add(&n, "o-master");
    line.send("written");
    assert_eq!(line.recv(), "4", "the worker sees every permit");
    exited_cleanly(worker);

    assert_eq!(total_uses(&n, Some("o-master")), 2);
    assert_eq!(total_uses(&n, Some("o-worker")), 2);
    assert_eq!(locks_line(me, &path), HOLDS_ITS_LOCKS, "the master");
    drop(n);
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn a_worker_whose_master_closed_the_file_starts_from_the_masters_last_write() {
    // The worker's inherited view of the WAL is stale (the master wrote
    // after the fork) and nobody holds the file when the worker closes it:
    // the case where a checkpoint on close could have run from that view.
    let dir = TempDir::new("fork-closed");
    let path = dir.file("notify.db");
    let n = notifier(&path);
    use_every_connection(&n, "o-master");

    let (worker, mut line) = spawn(|line| {
        assert_eq!(line.recv(), "closed");
        use_every_connection(&n, "o-worker");
        line.send(&locks_line(std::process::id(), &path));
        line.send(&total_uses(&n, None).to_string());
    });
    for i in 0..50 {
        add(&n, &format!("o-late-{i}"));
    }
    drop(n);
    let me = std::process::id();
    assert_eq!(
        locks_line(me, &path),
        "shm=None",
        "the master closed the file"
    );
    line.send("closed");
    assert_eq!(line.recv(), HOLDS_ITS_LOCKS, "the worker");
    assert_eq!(
        line.recv(),
        "52",
        "the worker sees the master's last writes"
    );
    exited_cleanly(worker);

    let n = notifier(&path);
    assert_eq!(total_uses(&n, None), 52);
    drop(n);
    assert_eq!(integrity(&path), "ok");
}

#[test]
fn when_the_master_exits_the_worker_keeps_its_locks_and_the_data_stays_whole() {
    const EACH: usize = 200;
    let dir = TempDir::new("fork-master-exits");
    let path = dir.file("notify.db");

    // This process plays the third one: it opens the file only after the master is gone.
    let (master, mut to_worker) = spawn(|to_test| {
        let n = notifier(&path);
        use_every_connection(&n, "o-master");
        let (worker, mut from_worker) = spawn(|to_master| {
            use_every_connection(&n, "o-worker");
            let first = locks_line(std::process::id(), &path);
            to_master.send("ready");
            // The master and this worker write on the same line to the test:
            // the master's pid goes first, so this worker speaks only once the
            // master is gone (its end of our own line closes when it exits).
            assert_eq!(to_master.recv(), "", "the master exited");
            to_test.send(&first);
            // Runs on while the master is gone and the third process writes.
            assert_eq!(to_test.recv(), "go");
            for i in 0..EACH {
                add(&n, &format!("o-worker-{i}"));
            }
            to_test.send(&locks_line(std::process::id(), &path));
            to_test.send(&total_uses(&n, None).to_string());
        });
        assert_eq!(from_worker.recv(), "ready");
        to_test.send(&worker.as_raw().to_string());
        // Exits with its connections open, as a master killed or ended would.
    });
    let worker: i32 = to_worker.recv().parse().unwrap();
    exited_cleanly(master);
    assert_eq!(
        to_worker.recv(),
        HOLDS_ITS_LOCKS,
        "the worker after its first operation"
    );
    assert_eq!(
        locks_line(worker as u32, &path),
        HOLDS_ITS_LOCKS,
        "the worker, its master gone"
    );

    let n = notifier(&path);
    assert_eq!(total_uses(&n, None), 2, "the third process finds the data");
    to_worker.send("go");
    for i in 0..EACH {
        add(&n, &format!("o-third-{i}"));
    }
    assert_eq!(
        to_worker.recv(),
        HOLDS_ITS_LOCKS,
        "the worker after its writes"
    );
    let seen: u64 = to_worker.recv().parse().unwrap();
    assert!(seen >= 2 + EACH as u64, "the worker saw {seen}");
    // The worker is not our child (its parent, the master, is gone): it has
    // ended once its end of the line closes.
    assert_eq!(to_worker.recv(), "", "the worker ended");

    assert_eq!(total_uses(&n, None), 2 + 2 * EACH as u64);
    assert_eq!(total_uses(&n, Some("o-worker")), 1);
    assert_eq!(locks_line(std::process::id(), &path), HOLDS_ITS_LOCKS);
    drop(n);
    assert_eq!(integrity(&path), "ok");
}
