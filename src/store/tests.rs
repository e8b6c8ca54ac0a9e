use super::*;

fn row(id: u32, ext: u32, int: u32) -> HdAccountRow {
    HdAccountRow {
        account_id: id,
        xpub: format!("xpub-{id}"),
        external: ext,
        internal: int,
    }
}

#[test]
fn db_path_makes_the_wallet_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let p = db_path(tmp.path(), "efa6a43e1af2847419841144153183d9690e2136").unwrap();
    assert_eq!(
        p,
        tmp.path()
            .join("efa6a43e1af2847419841144153183d9690e2136")
            .join("kdfd.sqlite")
    );
    assert!(p.parent().unwrap().is_dir());
    assert!(db_path(tmp.path(), "../etc").is_err());
    assert!(db_path(tmp.path(), "").is_err());
}

#[tokio::test]
async fn migrates_and_sets_pragmas() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(tmp.path().join("a.sqlite")).unwrap();
    assert_eq!(s.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    let (mode, sync): (String, i64) = s
        .call(|c| {
            let m = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let y = c.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            Ok((m, y))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[tokio::test]
async fn later_migration_applies_on_reopen_and_keeps_data() {
    // Schema v1 only, then v1 + one more: independent of how many migrations kdfd has.
    static V1: &[&str] = &[MIGRATIONS[0]];
    static V2: &[&str] = &[MIGRATIONS[0], "CREATE TABLE extra (x INTEGER);"];
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("m.sqlite");
    let s = Store::open_with(&path, V1).unwrap();
    s.upsert_hd_account("RICK", &row(0, 3, 1)).await.unwrap();
    drop(s);
    let s = Store::open_with(&path, V2).unwrap();
    assert_eq!(s.schema_version().await.unwrap(), 2);
    assert_eq!(s.hd_accounts("RICK").await.unwrap(), [row(0, 3, 1)]);
    let n: i64 = s
        .call(|c| Ok(c.query_row("SELECT count(*) FROM extra", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(n, 0);
    drop(s);
    // The v1 kdfd now refuses the v2 database.
    let e = Store::open_with(&path, V1).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooNew {
                found: 2,
                supported: 1
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("newer"));
}

#[tokio::test]
async fn failed_migration_rolls_back() {
    static V1: &[&str] = &[MIGRATIONS[0]];
    static BAD: &[&str] = &[MIGRATIONS[0], "CREATE TABLE t (x); THIS IS NOT SQL;"];
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("b.sqlite");
    drop(Store::open_with(&path, V1).unwrap());
    assert!(Store::open_with(&path, BAD).is_err());
    let s = Store::open_with(&path, V1).unwrap();
    assert_eq!(s.schema_version().await.unwrap(), 1);
    let t: i64 = s
        .call(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM sqlite_master WHERE name='t'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(t, 0, "the half-applied migration was rolled back");
}

#[tokio::test]
async fn hd_accounts_crud_and_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("h.sqlite");
    let s = Store::open(&path).unwrap();
    assert!(s.hd_accounts("RICK").await.unwrap().is_empty());
    s.upsert_hd_account("RICK", &row(1, 0, 0)).await.unwrap();
    s.upsert_hd_account("RICK", &row(0, 1, 0)).await.unwrap();
    s.upsert_hd_account("BTC", &row(0, 5, 5)).await.unwrap();
    s.set_address_count("RICK", 0, false, 7).await.unwrap();
    s.set_address_count("RICK", 0, true, 2).await.unwrap();
    assert!(matches!(
        s.set_address_count("RICK", 9, true, 2).await,
        Err(StoreError::Invalid(_))
    ));
    let mut replaced = row(1, 4, 4);
    replaced.xpub = "xpub-new".into();
    s.upsert_hd_account("RICK", &replaced).await.unwrap();
    let want = vec![row(0, 7, 2), replaced];
    assert_eq!(s.hd_accounts("RICK").await.unwrap(), want);
    // Counts only grow: a lower count (a stale writer) changes nothing, for the same xpub.
    s.set_address_count("RICK", 0, false, 3).await.unwrap();
    s.upsert_hd_account("RICK", &row(0, 1, 1)).await.unwrap();
    assert_eq!(s.hd_accounts("RICK").await.unwrap(), want);
    drop(s);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.hd_accounts("RICK").await.unwrap(), want);
    assert_eq!(s.hd_accounts("BTC").await.unwrap(), [row(0, 5, 5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_are_serialised() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(tmp.path().join("c.sqlite")).unwrap();
    s.upsert_hd_account("RICK", &row(0, 0, 0)).await.unwrap();
    // 50 tasks each do a read-modify-write in one call: with one thread none is lost.
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.call(|c| {
                let tx = c.transaction()?;
                let n: i64 = tx.query_row(
                    "SELECT external_addresses_number FROM hd_account WHERE coin='RICK'",
                    [],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE hd_account SET external_addresses_number=?1",
                    [n + 1],
                )?;
                tx.commit()?;
                Ok(())
            })
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(s.hd_accounts("RICK").await.unwrap()[0].external, 50);
}

#[tokio::test]
async fn a_panicking_job_does_not_kill_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Store::open(tmp.path().join("p.sqlite")).unwrap();
    let r: Result<(), _> = s.call(|_| panic!("boom")).await;
    assert!(matches!(r, Err(StoreError::Closed)));
    assert_eq!(s.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
}

/// The writer checkpoints once idle: the rows reach the main file (read here with the WAL
/// ignored, `immutable=1`) without any further write or a close.
#[tokio::test]
async fn idle_writer_checkpoints_the_wal() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("c.sqlite");
    let s = Store::open(&path).unwrap();
    s.upsert_hd_account("RICK", &row(7, 1, 1)).await.unwrap();
    let uri = format!("file:{}?immutable=1", path.display());
    let in_main_file = || -> i64 {
        let c = Connection::open_with_flags(
            &uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        c.query_row("SELECT count(*) FROM hd_account", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while in_main_file() == 0 {
        assert!(
            std::time::Instant::now() < until,
            "no checkpoint after 10 s idle"
        );
        tokio::time::sleep(CHECKPOINT_IDLE).await;
    }
    assert_eq!(s.hd_accounts("RICK").await.unwrap(), [row(7, 1, 1)]);
}
