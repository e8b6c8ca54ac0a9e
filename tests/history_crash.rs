//! Crash safety of the history store: kill -9 during a large first sync, 20 times at seeded
//! random moments. After every restart the SQLite file passes `PRAGMA integrity_check`, holds no
//! duplicate or foreign rows, keeps everything an answer had already shown before the kill, and
//! in the end the whole history (every page) equals a clean, uninterrupted sync's.

use kdfd_testkit::history_common as common;
mod support;

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Txid};
use common::*;
use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, PASSPHRASE, USERPASS};

const N: usize = 2000;
const KILLS: usize = 20;
/// Per-reply latency of the fake while the kills happen: a 100-tx chunk then takes a few round
/// trips (~0.3 s), so a kill 50..=450 ms into a run usually lands between or inside chunks and
/// 20 runs do not finish the 20-chunk sync.
const LATENCY: Duration = Duration::from_millis(100);
const PAGE: usize = 100;

/// A seeded xorshift64: reproducible "random" kill moments without a crate.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params, "id": 1})
}

fn conf_with_db(db: &Path) -> Value {
    let mut c = base_conf(shipped_coins());
    c["dbdir"] = json!(db.to_str().unwrap());
    c
}

/// `<dbdir>/<hash160 hex of bob's key>/kdfd.sqlite` (src/ctx.rs, src/store).
fn db_file(db: &Path) -> PathBuf {
    let k = kdfd::crypto::KeyPair::from_passphrase(PASSPHRASE).unwrap();
    let id: String = k.hash160().iter().map(|b| format!("{b:02x}")).collect();
    db.join(id).join(kdfd::store::DB_FILE)
}

/// `N` transactions to bob at heights 1..=100, each spending one output of a funding tx; returns
/// the fake and the ids.
fn many() -> (FakeElectrum, HashSet<String>) {
    let (p2pkh, _) = bob_scripthashes();
    let fake = FakeElectrum::start_tcp();
    let outs: Vec<(u64, ScriptBuf)> = (0..N).map(|_| (COIN, other_script())).collect();
    let f = tx(&[(Txid::from_byte_array([4; 32]), 0)], &outs);
    fake.add_tx(&f.compute_txid().to_string(), &hex(&raw(&f)));
    let mut items = Vec::new();
    for i in 0..N {
        let t = tx(
            &[(f.compute_txid(), i as u32)],
            &[(COIN - 700, bob_script())],
        );
        let id = t.compute_txid().to_string();
        fake.add_tx(&id, &hex(&raw(&t)));
        items.push((id, (i % 100 + 1) as i64));
    }
    for h in 1..=100 {
        fake.set_header(h, &header(BLOCK_TIME + h as u32));
    }
    let refs: Vec<(&str, i64)> = items.iter().map(|(id, h)| (id.as_str(), *h)).collect();
    fake.set_history(&p2pkh, &refs);
    (fake, items.into_iter().map(|(id, _)| id).collect())
}

async fn activate(k: &Kdfd, url: &str) {
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": url}], "tx_history": true}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
}

/// The first page's `result` (total, sync_status).
async fn head(k: &Kdfd) -> Value {
    let (status, v) = k
        .post(&v2("my_tx_history", json!({"coin": "RICK", "limit": 1})))
        .await;
    assert_eq!(status, 200, "{v}");
    v["result"].clone()
}

async fn wait_finished(k: &Kdfd) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = head(k).await;
        if r["total"] == N && r["sync_status"]["state"] == "Finished" {
            return r;
        }
        assert!(Instant::now() < deadline, "sync never finished: {r}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every entry, page by page.
async fn all_pages(k: &Kdfd) -> Vec<Value> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let (status, v) = k
            .post(&v2(
                "my_tx_history",
                json!({"coin": "RICK", "limit": PAGE, "paging_options": {"PageNumber": page}}),
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        let r = &v["result"];
        out.extend(r["transactions"].as_array().unwrap().iter().cloned());
        if page >= r["total_pages"].as_u64().unwrap() {
            return out;
        }
        page += 1;
    }
}

/// Opens the daemon's live database (WAL: reading next to the writer is safe) and checks it;
/// returns how many entries it holds.
fn check_db(path: &Path, ids: &HashSet<String>) -> usize {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    let integrity: Vec<String> = c
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(integrity, ["ok"], "integrity_check of {}", path.display());
    let dups: i64 = c
        .query_row(
            "SELECT count(*) FROM (SELECT coin, tx_hash FROM tx_history
                 GROUP BY coin, tx_hash HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(dups, 0, "duplicate history rows");
    // An address row without its entry would be a half-written step.
    let orphans: i64 = c
        .query_row(
            "SELECT count(*) FROM tx_address a WHERE NOT EXISTS
                 (SELECT 1 FROM tx_history h WHERE h.coin = a.coin AND h.tx_hash = a.tx_hash)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "tx_address rows without an entry");
    let mut st = c
        .prepare("SELECT coin, tx_hash, details FROM tx_history")
        .unwrap();
    let rows: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for (coin, hash, details) in &rows {
        assert_eq!(coin, "RICK");
        assert!(ids.contains(hash), "a row for an unknown tx {hash}");
        let d: Value = serde_json::from_str(details).expect("details are whole JSON");
        assert_eq!(d["tx_hash"], hash.as_str(), "details of another tx");
    }
    rows.len()
}

fn kill9(k: Kdfd) {
    let pid = k.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    drop(k);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_kills_during_a_large_sync() {
    let started = Instant::now();
    let (fake, ids) = many();

    // The reference: one uninterrupted sync into its own database.
    let clean_db = tempfile::tempdir().unwrap();
    let k = Kdfd::start(conf_with_db(clean_db.path()));
    activate(&k, &fake.url()).await;
    wait_finished(&k).await;
    let clean = all_pages(&k).await;
    assert_eq!(clean.len(), N);
    assert_eq!(check_db(&db_file(clean_db.path()), &ids), N);
    drop(k);

    let db = tempfile::tempdir().unwrap();
    let path = db_file(db.path());
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    fake.set_latency(LATENCY);
    // What an answer showed before the last kill: committed, so it must survive.
    let mut shown = 0usize;
    let mut mid_sync = 0;
    for round in 0..KILLS {
        let k = Kdfd::start(conf_with_db(db.path()));
        activate(&k, &fake.url()).await;
        if round > 0 {
            let stored = check_db(&path, &ids);
            assert!(
                stored >= shown,
                "round {round}: {stored} rows after the restart, {shown} shown before the kill"
            );
            let r = head(&k).await;
            let total = r["total"].as_u64().unwrap() as usize;
            assert!(total >= shown, "round {round}: answers {total} < {shown}");
        }
        tokio::time::sleep(Duration::from_millis(rng.range(50, 450))).await;
        let r = head(&k).await;
        shown = r["total"].as_u64().unwrap() as usize;
        if r["sync_status"]["state"] != "Finished" {
            mid_sync += 1;
        }
        // A little more random time after the look, so the kill is not tied to the answer.
        tokio::time::sleep(Duration::from_millis(rng.range(0, 60))).await;
        kill9(k);
    }
    eprintln!(
        "MEASURE {KILLS} kills ({mid_sync} seen mid-sync), {shown} of {N} entries shown before the last, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        mid_sync >= KILLS / 2,
        "only {mid_sync} kills landed during the sync"
    );

    // Last restart: the sync completes and the history is exactly the clean one.
    fake.set_latency(Duration::ZERO);
    let k = Kdfd::start(conf_with_db(db.path()));
    activate(&k, &fake.url()).await;
    wait_finished(&k).await;
    assert_eq!(check_db(&path, &ids), N);
    let after = all_pages(&k).await;
    assert_eq!(after.len(), N);
    for (i, (a, c)) in after.iter().zip(&clean).enumerate() {
        assert_eq!(a, c, "entry {i} differs from the clean sync");
    }
    eprintln!(
        "MEASURE crash test total {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
