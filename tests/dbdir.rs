//! dbdir on disk: owner-only modes whatever the umask (an existing dbdir with wider modes is
//! tightened at start, with a log line), and one daemon per dbdir (a second kdfd exits 1 with
//! one line naming the holder's PID while the first keeps serving).

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use support::{base_conf, shipped_coins, Kdfd, Launch, Tuning, KDFD_BIN, USERPASS};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn wallet_conf(db: &Path) -> Value {
    let mut c = base_conf(shipped_coins());
    c["wallet_name"] = json!("carol");
    c["wallet_password"] = json!("Wallet!Secret-789");
    c["dbdir"] = json!(db);
    c
}

#[tokio::test]
async fn files_are_owner_only_whatever_the_umask() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("DB");
    // An existing dbdir left world-readable (as kdfd before this change made it).
    std::fs::create_dir(&db).unwrap();
    chmod(&db, 0o755);
    let old = db.join("old.json");
    std::fs::write(&old, "{}").unwrap();
    chmod(&old, 0o644);
    let sub = db.join("00ff");
    std::fs::create_dir(&sub).unwrap();
    chmod(&sub, 0o755);
    std::fs::write(sub.join("kdfd.sqlite-wal"), "").unwrap();
    chmod(&sub.join("kdfd.sqlite-wal"), 0o666);
    // kdfd runs under umask 000: every mode it creates must still be owner-only.
    let wrapper = t.path().join("umask000.sh");
    std::fs::write(&wrapper, "#!/bin/sh\numask 000\nexec \"$@\"\n").unwrap();
    chmod(&wrapper, 0o755);
    let tuning = Tuning {
        wrapper: Some(wrapper.display().to_string()),
        ..Tuning::default()
    };
    let k = kdfd_testkit::Kdfd::launch_tuned(
        KDFD_BIN,
        Launch {
            conf: Some(wallet_conf(&db)),
            ..Launch::default()
        },
        &tuning,
    )
    .expect("starts");
    // A write, so the database has its -wal and -shm open.
    let (status, v) = k
        .post(&json!({"userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!(status, 200, "{v}");
    let log = k.stderr();
    for p in [&db, &old, &sub] {
        assert!(
            log.contains(&p.display().to_string()) && log.contains("made it owner-only"),
            "no tightening line for {}: {log}",
            p.display()
        );
    }
    let mut seen = Vec::new();
    let mut check = |p: &Path, want: u32| {
        assert_eq!(mode(p), want, "{}", p.display());
        seen.push(p.strip_prefix(&db).unwrap().display().to_string());
    };
    check(&db, 0o700);
    check(&old, 0o600);
    check(&sub, 0o700);
    check(&sub.join("kdfd.sqlite-wal"), 0o600);
    check(&db.join("carol.json"), 0o600);
    check(&db.join("kdfd.lock"), 0o600);
    let mut stores = 0;
    for e in std::fs::read_dir(&db).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && p.join("kdfd.sqlite").exists() {
            stores += 1;
            check(&p, 0o700);
            for f in ["kdfd.sqlite", "kdfd.sqlite-wal", "kdfd.sqlite-shm"] {
                check(&p.join(f), 0o600);
            }
        }
    }
    assert_eq!(stores, 1, "one wallet database");
    eprintln!("MEASURE dbdir modes under umask 000: {seen:?} all 0700/0600");
}

#[tokio::test]
async fn one_daemon_per_dbdir() {
    let t = tempfile::tempdir().unwrap();
    let db = t.path().join("DB");
    let first = Kdfd::start(wallet_conf(&db));
    let err = match Kdfd::launch(Launch {
        conf: Some(wallet_conf(&db)),
        ..Launch::default()
    }) {
        Ok(_) => panic!("a second kdfd started on the same dbdir"),
        Err(e) => e,
    };
    let rest = err
        .strip_prefix("exited with exit status: 1: ")
        .unwrap_or_else(|| panic!("not exit 1: {err}"));
    let lines: Vec<&str> = rest.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{rest}");
    assert!(
        lines[0].contains(&format!("another kdfd (pid {})", first.pid())),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(&db.display().to_string()), "{}", lines[0]);
    // The first keeps serving, and its wallet file was not touched by the second.
    let (status, v) = first
        .post(&json!({"userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!((status, v), (200, json!({"result": []})));
    // Once it is gone the dbdir is free again (the OS drops the lock with the process).
    drop(first);
    let again = Kdfd::start(wallet_conf(&db));
    let (status, _) = again.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}
