//! The shared store suite against SQLite, and what only a file store has:
//! its mode, its schema version, files it cannot open, surviving a restart.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use fashop_notify::{ClaimedTake, Error, KeyClaim, ManualClock, Notifier, PermitRequest};

use crate::store_suite::{Fixture, TempDir, APP, NOW};

fn fresh() -> Fixture {
    let dir = TempDir::new("sqlite-suite");
    let spec = format!("sqlite:{}", dir.file("ledger.db"));
    Fixture::new(&spec, Box::new(dir))
}

crate::store_suite!(fresh);

fn configure_store(n: &Notifier, path: &str) -> fashop_notify::Result<()> {
    n.configure(&format!(r#"{{"store":"sqlite:{path}","timeout_ms":1111}}"#))
}

#[test]
fn the_file_is_private_and_carries_its_schema_version() {
    let f = fresh();
    f.form_id("o1", "f1", NOW);
    let dir = f.keep.downcast_ref::<TempDir>().unwrap();
    let path = dir.file("ledger.db");
    for file in [path.clone(), format!("{path}-wal"), format!("{path}-shm")] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema_version(&conn), 5);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_store_that_cannot_be_opened_changes_nothing() {
    let dir = TempDir::new("sqlite-bad");
    let corrupt = dir.file("corrupt.db");
    std::fs::write(&corrupt, b"this is not a database, just some bytes that are long enough to look like a header ......").unwrap();
    let before = std::fs::read(&corrupt).unwrap();
    let newer = dir.file("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (99);")
            .unwrap();
    }
    let missing_dir = dir.file("no/such/dir/ledger.db");
    let cases = [
        (missing_dir.clone(), "cannot create the file"),
        (dir.0.to_str().unwrap().to_string(), ""),
        (corrupt.clone(), "not a database"),
        (
            newer.clone(),
            "schema version 99 was written by a newer fashop-notify",
        ),
    ];
    let n = Notifier::new();
    for (path, needle) in &cases {
        match configure_store(&n, path) {
            Err(Error::Store(m)) => {
                assert!(m.contains(path.as_str()), "{m} does not name {path}");
                assert!(m.contains(needle), "{m} lacks {needle:?}");
            }
            other => panic!("{path}: expected a store error, got {other:?}"),
        }
        assert_eq!(n.ledger().store_spec(), "memory");
        assert_eq!(
            n.config().timeout_ms,
            5000,
            "the rest of the document was not applied"
        );
    }
    assert!(!std::path::Path::new(&missing_dir).exists());
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        before,
        "the corrupt file was not touched"
    );
    // Every configure so far failed: store calls are refused until one succeeds.
    n.register_app(r#"{"appid":"wxsqlitebad","secret":"s"}"#)
        .unwrap();
    let grant = r#"{"openid":"o","kind":"subscribe","template_id":"T"}"#;
    match n.add_permit("wxsqlitebad", grant) {
        Err(fashop_notify::Error::Store(m)) => assert!(m.contains("configure failed"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Then the memory store works.
    n.configure(r#"{"store":"memory"}"#).unwrap();
    n.add_permit("wxsqlitebad", grant).unwrap();
}

#[test]
fn an_empty_database_file_is_migrated() {
    let dir = TempDir::new("sqlite-migrate");
    let path = dir.file("empty.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE host_notes (x TEXT); PRAGMA user_version = 0;")
        .unwrap();
    let f = Fixture::new(&format!("sqlite:{path}"), Box::new(()));
    f.form_id("o1", "f1", NOW);
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 1);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('permits', 'leases', 'idempotency', 'host_notes')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 4);
}

#[test]
fn permits_and_leases_survive_reopening() {
    let dir = TempDir::new("sqlite-reopen");
    let spec = format!("sqlite:{}", dir.file("ledger.db"));
    let f = Fixture::new(&spec, Box::new(()));
    f.form_id("o1", "f1", NOW);
    f.form_id("o1", "f2", NOW - 10);
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T","count":2}"#);
    let lease =
        f.n.ledger()
            .take(APP, "o1", &PermitRequest::legacy(None))
            .unwrap()
            .unwrap();
    assert_eq!(lease.value, "f2");
    drop(f);

    let clock = Arc::new(ManualClock::at(NOW));
    let n = Notifier::with_clock(clock.clone());
    n.configure(&format!(r#"{{"store":"{spec}"}}"#)).unwrap();
    n.register_app(&format!(r#"{{"appid":"{APP}","secret":"s"}}"#))
        .unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(APP, Some("o1")).unwrap()).unwrap();
    assert_eq!(stats["form_id"]["permits"], 1);
    assert_eq!(stats["leased"], 1);
    assert_eq!(stats["subscribe"]["templates"]["T"], 2);
    // The lease taken before the restart can still be settled after it.
    n.ledger().give_back(&lease).unwrap();
    let stats: serde_json::Value =
        serde_json::from_str(&n.ledger_stats(APP, Some("o1")).unwrap()).unwrap();
    assert_eq!(stats["form_id"]["permits"], 2);
    assert_eq!(stats["leased"], 0);
}

#[test]
fn a_version_1_file_is_migrated_with_its_leases() {
    let dir = TempDir::new("sqlite-v1");
    let path = dir.file("ledger.db");
    let spec = format!("sqlite:{path}");
    let f = Fixture::new(&spec, Box::new(()));
    f.form_id("o1", "f1", NOW);
    let lease =
        f.n.ledger()
            .take(APP, "o1", &PermitRequest::legacy(None))
            .unwrap()
            .unwrap();
    drop(f);
    // Make it a file as version 1 left it.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE leases DROP COLUMN returned; DROP TABLE tokens;
             ALTER TABLE permits ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
             UPDATE permits SET leased = 1;
             CREATE INDEX permits_by_user ON permits (appid, openid, kind, expires_at);
             UPDATE schema_version SET version = 1;",
        )
        .unwrap();
    }
    let f = Fixture::new(&spec, Box::new(()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema_version(&conn), 5);
    // Version 4 keeps idempotency records in their key's b-tree.
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'idempotency'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(sql.contains("WITHOUT ROWID"), "{sql}");
    assert_eq!(f.stats(Some("o1"))["leased"], 1);
    f.n.ledger().consume(&lease).unwrap();
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    assert_eq!(f.stats(Some("o1"))["form_id"]["permits"], 0);
}

#[test]
fn a_version_4_file_keeps_its_uses_in_flight() {
    let dir = TempDir::new("sqlite-v4");
    let path = dir.file("ledger.db");
    let spec = format!("sqlite:{path}");
    let f = Fixture::new(&spec, Box::new(()));
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    let t1 = PermitRequest::subscribe("T1");
    let lease = f.n.ledger().take(APP, "o1", &t1).unwrap().unwrap();
    drop(f);
    // Make it a file as version 4 left it: the use in flight counted in
    // `leased`, the index by user.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE permits ADD COLUMN leased INTEGER NOT NULL DEFAULT 0;
             UPDATE permits SET leased = 1;
             CREATE INDEX permits_by_user ON permits (appid, openid, kind, expires_at);
             UPDATE schema_version SET version = 4;",
        )
        .unwrap();
    }
    let f = Fixture::new(&spec, Box::new(()));
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(schema_version(&conn), 5);
    let left: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'permits_by_user'
               OR (name = 'permits' AND sql LIKE '%leased%')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(f.stats(Some("o1"))["leased"], 1);
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T1"], 1);
    f.n.ledger().consume(&lease).unwrap();
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    // The last use goes the same way, and the used-up permit with it.
    let last = f.n.ledger().take(APP, "o1", &t1).unwrap().unwrap();
    assert_eq!(f.stats(Some("o1"))["leased"], 1);
    f.n.ledger().consume(&last).unwrap();
    let permits: i64 = conn
        .query_row("SELECT COUNT(*) FROM permits", [], |r| r.get(0))
        .unwrap();
    assert_eq!(permits, 0);
}

#[test]
fn a_consume_writes_the_lease_not_the_permit() {
    let f = fresh();
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":3}"#);
    let t1 = PermitRequest::subscribe("T1");
    let l = f.n.ledger();
    let lease = claim_k1(l, &t1);
    let conn = raw(&f);
    conn.execute_batch(
        "CREATE TRIGGER permits_fixed BEFORE UPDATE ON permits
         BEGIN SELECT RAISE(ABORT, 'permit written'); END;",
    )
    .unwrap();
    let done = l.consume_and_complete(&lease, "k1", &mut |_| "{}".to_string());
    assert_eq!(done.spent.unwrap().uses, 2);
    done.recorded.unwrap();
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T1"], 2);
    // A take still writes it (the use leaves the permit), and is refused here.
    assert!(l.take(APP, "o1", &t1).is_err());
}

/// Claims the key `k1` for o1 with a use of `request`, which must be there.
fn claim_k1(l: &fashop_notify::Ledger, request: &PermitRequest) -> fashop_notify::Lease {
    match l.claim_and_take("k1", 30_000, APP, "o1", request) {
        Ok(ClaimedTake::Fresh(Ok(Some(lease)))) => lease,
        other => panic!("expected a lease, got {other:?}"),
    }
}

/// The raw file behind a fixture, for making its writes fail.
fn raw(f: &Fixture) -> rusqlite::Connection {
    let dir = f.keep.downcast_ref::<TempDir>().unwrap();
    rusqlite::Connection::open(dir.file("ledger.db")).unwrap()
}

#[test]
fn a_take_that_fails_inside_the_claim_leaves_the_key_free() {
    let f = fresh();
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1"}"#);
    let t1 = PermitRequest::subscribe("T1");
    // The permit is found and its use taken, then the lease cannot be written.
    let conn = raw(&f);
    conn.execute_batch(
        "CREATE TRIGGER no_leases BEFORE INSERT ON leases
         BEGIN SELECT RAISE(ABORT, 'leases refused'); END;",
    )
    .unwrap();
    let l = f.n.ledger();
    match l.claim_and_take("k1", 30_000, APP, "o1", &t1) {
        Ok(ClaimedTake::Fresh(Err(Error::Store(m)))) => {
            assert!(m.contains("leases refused"), "{m}")
        }
        other => panic!("expected the take's store error, got {other:?}"),
    }
    // Rolled back: the use is still there and the key was not claimed.
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T1"], 1);
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    let claims: i64 = conn
        .query_row("SELECT COUNT(*) FROM idempotency", [], |r| r.get(0))
        .unwrap();
    assert_eq!(claims, 0);

    conn.execute_batch("DROP TRIGGER no_leases").unwrap();
    match l.claim_and_take("k1", 30_000, APP, "o1", &t1) {
        Ok(ClaimedTake::Fresh(Ok(Some(lease)))) => assert_eq!(lease.value, "T1"),
        other => panic!("expected the key claimed with a lease, got {other:?}"),
    }
    assert!(matches!(
        l.idempotency_claim("k1", 30_000).unwrap(),
        KeyClaim::InFlight
    ));
}

#[test]
fn an_outcome_that_cannot_be_recorded_still_spends_the_use() {
    let f = fresh();
    f.add(r#"{"openid":"o1","kind":"subscribe","template_id":"T1","count":2}"#);
    let t1 = PermitRequest::subscribe("T1");
    let l = f.n.ledger();
    let lease = claim_k1(l, &t1);
    // Spending works; recording the outcome does not, in the combined
    // transaction or on its own.
    let conn = raw(&f);
    conn.execute_batch(
        "CREATE TRIGGER no_outcomes BEFORE INSERT ON idempotency WHEN NEW.done = 1
         BEGIN SELECT RAISE(ABORT, 'outcomes refused'); END;",
    )
    .unwrap();
    let mut seen = Vec::new();
    let done = l.consume_and_complete(&lease, "k1", &mut |left| {
        seen.push(left.map(|r| r.uses));
        r#"{"status":"sent"}"#.to_string()
    });
    assert_eq!(done.spent.unwrap().uses, 1);
    match done.recorded {
        Err(Error::Store(m)) => assert!(m.contains("outcomes refused"), "{m}"),
        other => panic!("expected the record's store error, got {other:?}"),
    }
    assert_eq!(done.outcome, r#"{"status":"sent"}"#);
    // Once in the rolled-back transaction, once step by step: both spent.
    assert_eq!(seen, vec![Some(1), Some(1)]);
    assert_eq!(f.stats(Some("o1"))["subscribe"]["templates"]["T1"], 1);
    assert_eq!(f.stats(Some("o1"))["leased"], 0);
    // Nothing recorded: the claim stays in flight until it runs out.
    assert!(matches!(
        l.idempotency_claim("k1", 30_000).unwrap(),
        KeyClaim::InFlight
    ));
}

/// What `configure` answers for `path` in a process running as another user
/// than the file's owner: a forked child that drops to `nobody` when the test
/// runs as root, this process otherwise (the file is then made unwritable).
fn configure_as_another_user(path: &str) -> Result<(), String> {
    as_nobody_if_root(|| {
        Notifier::new()
            .configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
            .map_err(|e| e.to_string())
    })
}

/// Runs `work` in a forked child that drops to `nobody` when the test runs
/// as root (whom no file mode stops), in this process otherwise.
fn as_nobody_if_root(work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    if nix::unistd::Uid::effective().is_root() {
        in_child_process(true, work)
    } else {
        work()
    }
}

/// Runs `work` in a forked child (a new worker process), as `nobody` when
/// `as_nobody`; its answer comes back over a socket.
fn in_child_process(
    as_nobody: bool,
    work: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, setgid, setuid, ForkResult, Gid, Uid};
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    let (mut parent, mut child) = UnixStream::pair().unwrap();
    // SAFETY: the child only drops its ids, runs `work` and writes one line.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(parent);
            let dropped = if as_nobody {
                setgid(Gid::from_raw(65534)).and_then(|()| setuid(Uid::from_raw(65534)))
            } else {
                Ok(())
            };
            let answer = match dropped {
                Ok(()) => work(),
                Err(e) => Err(format!("setuid: {e}")),
            };
            let line = match answer {
                Ok(()) => "OK".to_string(),
                Err(m) => m,
            };
            let _ = child.write_all(line.as_bytes());
            drop(child);
            std::process::exit(0);
        }
        ForkResult::Parent { child: pid } => {
            drop(child);
            let mut line = String::new();
            parent.read_to_string(&mut line).unwrap();
            assert!(matches!(
                waitpid(pid, None).unwrap(),
                WaitStatus::Exited(_, 0)
            ));
            if line == "OK" {
                Ok(())
            } else {
                Err(line)
            }
        }
    }
}

/// `unable to open database file` for a 0600 file of root opened by nobody
/// said nothing of why; a read-only file passed configure and failed only at
/// the first add_permit.
#[test]
fn a_file_of_another_user_is_refused_at_configure_naming_its_owner() {
    let dir = TempDir::new("sqlite-owner");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.file("notify.db");
    Notifier::new()
        .configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
        .unwrap();
    let root = nix::unistd::Uid::effective().is_root();
    for mode in [0o600, 0o644] {
        let mode = if root { mode } else { 0o400 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let m = configure_as_another_user(&path).unwrap_err();
        assert!(m.contains(&path), "{m}");
        assert!(m.contains("permission denied"), "{m}");
        assert!(m.contains(&format!("with mode {mode:04o}")), "{m}");
        if root {
            assert!(m.contains("owned by uid 0"), "{m}");
            assert!(m.contains("runs as uid 65534"), "{m}");
        }
    }
}

const GRANT: &str = r#"{"openid":"o1","kind":"subscribe","template_id":"T"}"#;

fn store_message(r: fashop_notify::Result<impl std::fmt::Debug>) -> String {
    match r {
        Err(Error::Store(m)) => m,
        other => panic!("expected STORE_ERROR, got {other:?}"),
    }
}

/// `rm -rf` of the store's directory under running workers: every send kept
/// answering "sent" into the unlinked file, and a restart found nothing.
#[test]
fn a_deleted_or_replaced_store_file_fails_naming_its_path() {
    let dir = TempDir::new("sqlite-deleted");
    let sub = dir.0.join("notify");
    std::fs::create_dir_all(&sub).unwrap();
    let path = sub.join("notify.db").to_str().unwrap().to_string();
    let worker = || {
        let n = Notifier::new();
        n.configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
            .unwrap();
        n.register_app(r#"{"appid":"wxdeleted","secret":"s"}"#)
            .unwrap();
        n
    };
    let n = worker();
    n.add_permit("wxdeleted", GRANT).unwrap();
    std::fs::remove_dir_all(&sub).unwrap();
    let m = store_message(n.add_permit("wxdeleted", GRANT));
    assert!(m.contains(&path), "{m}");
    assert!(m.contains("deleted while this process had it open"), "{m}");
    assert!(
        m.contains(&format!("its directory {} no longer exists", sub.display())),
        "{m}"
    );
    // Reads too, and the outbox (same file).
    store_message(n.ledger_stats("wxdeleted", None));
    let send = r#"{"touser":"o1","fields":{"order_sn":"S1"}}"#;
    assert!(n.enqueue("wxdeleted", "order_pay_success", send).is_err());
    // The directory back, a new file made by a restarted worker (a new
    // process): the old worker neither writes into its unlinked file nor
    // silently switches to the new, empty one.
    std::fs::create_dir_all(&sub).unwrap();
    in_child_process(false, || {
        worker()
            .add_permit("wxdeleted", GRANT)
            .map_err(|e| e.to_string())
    })
    .unwrap();
    let m = store_message(n.add_permit("wxdeleted", GRANT));
    assert!(m.contains("replaced by another file"), "{m}");
    in_child_process(false, || {
        let v: serde_json::Value =
            serde_json::from_str(&worker().ledger_stats("wxdeleted", Some("o1")).unwrap()).unwrap();
        (v["subscribe"]["templates"]["T"] == 1)
            .then_some(())
            .ok_or(format!("only the restarted worker's grant: {v}"))
    })
    .unwrap();
}

/// A file made read-only under a running worker (as the workers' user: root
/// writes whatever the mode says) fails its next call, saying to chmod.
#[test]
fn a_store_file_made_read_only_under_a_worker_fails_saying_chmod() {
    let dir = TempDir::new("sqlite-readonly");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o777)).unwrap();
    let path = dir.file("notify.db");
    let answer = as_nobody_if_root(|| {
        let n = Notifier::new();
        n.configure(&format!(r#"{{"store":"sqlite:{path}"}}"#))
            .map_err(|e| e.to_string())?;
        n.register_app(r#"{"appid":"wxro","secret":"s"}"#)
            .map_err(|e| e.to_string())?;
        n.add_permit("wxro", GRANT).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400))
            .map_err(|e| e.to_string())?;
        match n.add_permit("wxro", GRANT) {
            Err(Error::Store(m)) => Err(m),
            other => Err(format!("not a store error: {other:?}")),
        }
    });
    let m = answer.unwrap_err();
    assert!(m.contains(&path), "{m}");
    assert!(
        m.contains("made read-only for this process while it was open"),
        "{m}"
    );
    assert!(m.contains("with mode 0400"), "{m}");
    assert!(m.contains("is the owner already"), "{m}");
    assert!(m.contains("chmod u+rw"), "{m}");
    assert!(!m.contains("chown"), "{m}");
}

#[test]
fn a_missing_directory_is_named() {
    let dir = TempDir::new("sqlite-nodir");
    let path = dir.file("var/lib/fashop/notify.db");
    let m = store_message(Notifier::new().configure(&format!(r#"{{"store":"sqlite:{path}"}}"#)));
    assert!(
        m.contains(&format!(
            "the directory {} does not exist: create it (mkdir -p)",
            dir.0.join("var").display()
        )),
        "{m}"
    );
    assert!(!m.contains("No such file or directory"), "{m}");
}

/// The ledger schema's version in the file `conn` opened.
fn schema_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .unwrap()
}
