//! Transaction history over HTTP: the real binary syncing from the fake Electrum server into
//! SQLite, answering `my_tx_history` (v2 and legacy), following a mempool tx into a block and out
//! again (reorg), HD targets, 2000-tx pacing, kill -9 mid-sync, and answering from the DB after a
//! restart.

use kdfd_testkit::history_common as common;
mod support;

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Txid};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, BOB_R_ADDRESS, USERPASS};

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params, "id": 1})
}

fn activate(url: &str, history: bool) -> Value {
    req(
        "electrum",
        json!({"coin": "RICK", "servers": [{"url": url}], "tx_history": history}),
    )
}

/// Polls v2 `my_tx_history` until `done` holds for the result.
async fn wait_for(k: &Kdfd, params: Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = k.post(&v2("my_tx_history", params.clone())).await;
        if status == 200 && done(&v["result"]) {
            return v["result"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "history never got there: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn conf_with_db(db: &std::path::Path) -> Value {
    let mut c = base_conf(shipped_coins());
    c["dbdir"] = json!(db.to_str().unwrap());
    c
}

#[tokio::test]
async fn sync_pages_mining_and_restart() {
    let c = chain();
    let (ida, idb) = (
        c.a.compute_txid().to_string(),
        c.b.compute_txid().to_string(),
    );
    let (p2pkh, _) = bob_scripthashes();
    let fake = FakeElectrum::start_tcp();
    for t in [&c.f, &c.a, &c.b] {
        fake.add_tx(&t.compute_txid().to_string(), &hex(&raw(t)));
    }
    fake.set_header(90, &header(BLOCK_TIME));
    fake.set_header(95, &header(BLOCK_TIME + 600));
    fake.set_history(&p2pkh, &[(&ida, 90), (&idb, 0)]);
    fake.set_balance(&p2pkh, 0, 199_000_000);
    let db = tempfile::tempdir().unwrap();
    let k = Kdfd::start(conf_with_db(db.path()));
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");

    let r = wait_for(&k, json!({"coin": "RICK"}), |r| {
        r["total"] == 2 && r["sync_status"]["state"] == "Finished"
    })
    .await;
    assert_eq!(r["current_block"], 100);
    assert_eq!(r["target"], json!({"type": "iguana"}));
    assert_eq!(
        (
            r["limit"].clone(),
            r["skipped"].clone(),
            r["total_pages"].clone()
        ),
        (json!(10), json!(0), json!(1))
    );
    assert_eq!(r["paging_options"], json!({"PageNumber": 1}));
    let (b, a) = (&r["transactions"][0], &r["transactions"][1]);
    // Mempool first.
    assert_eq!(b["tx_hash"], idb.as_str());
    assert_eq!(
        (b["block_height"].clone(), b["confirmations"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(b["my_balance_change"], "-1.01");
    assert!(
        b["timestamp"].as_u64().unwrap() > u64::from(BLOCK_TIME),
        "first-seen time"
    );
    assert_eq!(a["tx_hash"], ida.as_str());
    assert_eq!(a["internal_id"], ida.as_str());
    assert_eq!(a["tx_hex"], hex(&raw(&c.a)));
    assert_eq!(a["timestamp"], BLOCK_TIME);
    assert_eq!(a["confirmations"], 11);
    assert_eq!(a["received_by_me"], "3");
    assert_eq!(
        a["fee_details"],
        json!({"type": "Utxo", "coin": "RICK", "amount": "0.0001"})
    );

    // B is mined: the change notification re-syncs; B moves to height 95 with its block time.
    fake.set_history(&p2pkh, &[(&ida, 90), (&idb, 95)]);
    fake.set_balance(&p2pkh, 199_000_000, 0);
    let r = wait_for(&k, json!({"coin": "RICK"}), |r| {
        r["transactions"][0]["block_height"] == 95
    })
    .await;
    assert_eq!(r["total"], 2, "no duplicate: {r}");
    assert_eq!(r["transactions"][0]["confirmations"], 6);
    assert_eq!(r["transactions"][0]["timestamp"], BLOCK_TIME + 600);
    assert_eq!(r["transactions"][1]["tx_hash"], ida.as_str());

    // A reorg takes B out of every history: its entry goes; it comes back when it reappears.
    fake.set_history(&p2pkh, &[(&ida, 90)]);
    fake.set_balance(&p2pkh, 300_000_000, 0);
    let gone = wait_for(&k, json!({"coin": "RICK"}), |r| r["total"] == 1).await;
    assert_eq!(gone["transactions"][0]["tx_hash"], ida.as_str());
    fake.set_history(&p2pkh, &[(&ida, 90), (&idb, 95)]);
    fake.set_balance(&p2pkh, 199_000_000, 0);
    let back = wait_for(&k, json!({"coin": "RICK"}), |r| r["total"] == 2).await;
    assert_eq!(back["transactions"], r["transactions"]);

    // Paging.
    let p2 = wait_for(
        &k,
        json!({"coin": "RICK", "limit": 1, "paging_options": {"PageNumber": 2}}),
        |_| true,
    )
    .await;
    assert_eq!(p2["transactions"][0]["tx_hash"], ida.as_str());
    assert_eq!(
        (p2["skipped"].clone(), p2["total_pages"].clone()),
        (json!(1), json!(2))
    );
    let f = wait_for(
        &k,
        json!({"coin": "RICK", "limit": 5, "paging_options": {"FromId": idb}}),
        |_| true,
    )
    .await;
    assert_eq!(f["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(f["transactions"][0]["tx_hash"], ida.as_str());
    assert_eq!(f["skipped"], 1);

    // Legacy.
    let (status, l) = k
        .post(&req(
            "my_tx_history",
            json!({"coin": "RICK", "limit": 1, "page_number": 2}),
        ))
        .await;
    assert_eq!(status, 200, "{l}");
    let l = &l["result"];
    assert_eq!(l["transactions"][0], r["transactions"][1]);
    assert_eq!(
        (
            l["total"].clone(),
            l["total_pages"].clone(),
            l["page_number"].clone()
        ),
        (json!(2), json!(2), json!(2))
    );
    assert_eq!(l["sync_status"], json!({"state": "Finished"}));

    // Errors.
    let (status, e) = k.post(&v2("my_tx_history", json!({"coin": "MORTY"}))).await;
    assert_eq!(
        (status, e["error_type"].clone()),
        (404, json!("CoinIsNotActive")),
        "{e}"
    );
    let (status, e) = k
        .post(&v2(
            "my_tx_history",
            json!({"coin": "RICK", "target": {"type": "account_id", "account_id": 0}}),
        ))
        .await;
    assert_eq!(
        (status, e["error_type"].clone()),
        (400, json!("InvalidTarget")),
        "{e}"
    );
    // Bad paging and limits: KDF's InvalidRequest, and the daemon keeps serving.
    for bad in [
        json!({"coin": "RICK", "paging_options": {"PageNumber": 0}}),
        json!({"coin": "RICK", "paging_options": {"FromId": "not hex"}}),
        json!({"coin": "RICK", "paging_options": {"FromId": "abc"}}),
        json!({"coin": "RICK", "limit": -1}),
        json!({"coin": "RICK", "limit": "10"}),
        json!({"coin": "RICK", "target": {"type": "nonsense"}}),
    ] {
        let (status, e) = k.post(&v2("my_tx_history", bad.clone())).await;
        assert_eq!(
            (status, e["error_type"].clone()),
            (400, json!("InvalidRequest")),
            "{bad}: {e}"
        );
    }
    let (status, e) = k
        .post(&v2(
            "my_tx_history",
            json!({"coin": "RICK", "paging_options": {"FromId": "00".repeat(32)}}),
        ))
        .await;
    assert_eq!(status, 500, "an unknown FromId: {e}");
    let (status, huge) = k
        .post(&v2(
            "my_tx_history",
            json!({"coin": "RICK", "limit": 1_000_000_000u64}),
        ))
        .await;
    assert_eq!(status, 200, "a huge limit answers every entry: {huge}");
    let (status, e) = k
        .post(&req(
            "my_tx_history",
            json!({"coin": "RICK", "page_number": 0}),
        ))
        .await;
    assert_eq!(status, 500, "legacy page_number 0: {e}");
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "MORTY", "servers": [{"url": fake.url()}]}),
        ))
        .await;
    assert_eq!(v["result"], "success");
    let (status, e) = k.post(&v2("my_tx_history", json!({"coin": "MORTY"}))).await;
    assert_eq!(
        (status, e["error_type"].clone()),
        (500, json!("StorageIsNotInitialized")),
        "{e}"
    );
    // disable_coin stops the sync: the coin is gone, so CoinIsNotActive again.
    let (_, d) = k.post(&req("disable_coin", json!({"coin": "RICK"}))).await;
    assert_eq!(d["result"]["coin"], "RICK", "{d}");
    let (status, _) = k.post(&v2("my_tx_history", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 404);
    drop(k);

    // Restart: the DB answers the same entries without fetching a single transaction.
    fake.reset_counters();
    let k = Kdfd::start(conf_with_db(db.path()));
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");
    let again = wait_for(&k, json!({"coin": "RICK"}), |r| r["total"] == 2).await;
    assert_eq!(again["transactions"], r["transactions"]);
    wait_for(&k, json!({"coin": "RICK"}), |r| {
        r["sync_status"]["state"] == "Finished"
    })
    .await;
    assert_eq!(
        fake.method_count("blockchain.transaction.get"),
        0,
        "{:?}",
        fake.methods()
    );
    assert!(fake.method_count("blockchain.scripthash.get_history") >= 1);
}

const MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

fn script_of(address: &str) -> ScriptBuf {
    let kind = kdfd::coins::address::parse(&rick_conf(), address).unwrap();
    kdfd::coins::address::script_pubkey(&kind)
}

#[tokio::test]
async fn hd_targets() {
    let fake = FakeElectrum::start_tcp();
    let mut conf = base_conf(shipped_coins());
    conf["passphrase"] = json!(MNEMONIC);
    conf["enable_hd"] = json!(true);
    let db = tempfile::tempdir().unwrap();
    conf["dbdir"] = json!(db.path().to_str().unwrap());
    let k = Kdfd::start(conf);
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");
    let addr = v["address"].as_str().unwrap().to_string();
    assert_ne!(addr, BOB_R_ADDRESS);
    let sh = kdfd::crypto::scripthash(script_of(&addr).as_bytes());
    let f = tx(
        &[(Txid::from_byte_array([5; 32]), 1)],
        &[(4 * COIN, other_script())],
    );
    let a = tx(
        &[(f.compute_txid(), 0)],
        &[(3 * COIN, script_of(&addr)), (COIN - 1000, other_script())],
    );
    let ida = a.compute_txid().to_string();
    for t in [&f, &a] {
        fake.add_tx(&t.compute_txid().to_string(), &hex(&raw(t)));
    }
    fake.set_header(99, &header(BLOCK_TIME));
    fake.set_history(&sh, &[(&ida, 99)]);
    fake.set_balance(&sh, 3 * COIN as i64, 0);

    let account = json!({"type": "account_id", "account_id": 0});
    let r = wait_for(&k, json!({"coin": "RICK", "target": account}), |r| {
        r["total"] == 1
    })
    .await;
    assert_eq!(r["target"], account);
    let t = &r["transactions"][0];
    assert_eq!(
        (t["tx_hash"].clone(), t["received_by_me"].clone()),
        (json!(ida), json!("3"))
    );
    assert_eq!(t["to"], json!([addr, other_address()]));
    assert_eq!(t["confirmations"], 2);
    let one = json!({"type": "address_id", "account_id": 0, "chain": "External", "address_id": 0});
    let r = wait_for(&k, json!({"coin": "RICK", "target": one}), |_| true).await;
    assert_eq!(r["total"], 1);
    assert_eq!(r["target"], one);
    for bad in [
        json!({"coin": "RICK"}),
        json!({"coin": "RICK", "target": {"type": "iguana"}}),
        json!({"coin": "RICK", "target": {"type": "account_id", "account_id": 5}}),
        json!({"coin": "RICK", "target": {"type": "address_id", "account_id": 0, "chain": "External", "address_id": 7}}),
    ] {
        let (status, e) = k.post(&v2("my_tx_history", bad.clone())).await;
        assert_eq!(
            (status, e["error_type"].clone()),
            (400, json!("InvalidTarget")),
            "{bad} → {e}"
        );
    }

    // A second address, then two payments to the first: the first change re-syncs both
    // addresses (the script set changed, so every entry is derived again), the second only the
    // address whose status changed.
    let (_, n) = k
        .post(&v2(
            "get_new_address",
            json!({"coin": "RICK", "account_id": 0, "chain": "External"}),
        ))
        .await;
    assert!(n["result"]["new_address"]["address"].is_string(), "{n}");
    let mut ids = vec![ida.clone()];
    for (i, value) in [(2u8, COIN), (3u8, 2 * COIN)] {
        // Its input's transaction too: the fee needs the amount spent.
        let funding = tx(
            &[(Txid::from_byte_array([i; 32]), 0)],
            &[(value + 1000, other_script())],
        );
        let p = tx(&[(funding.compute_txid(), 0)], &[(value, script_of(&addr))]);
        let id = p.compute_txid().to_string();
        fake.add_tx(&funding.compute_txid().to_string(), &hex(&raw(&funding)));
        fake.add_tx(&id, &hex(&raw(&p)));
        ids.push(id);
        fake.reset_counters();
        let items: Vec<(&str, i64)> = ids.iter().map(|t| (t.as_str(), 99)).collect();
        fake.set_history(&sh, &items);
        fake.set_balance(&sh, 3 * COIN as i64 + i as i64, 0);
        let total = ids.len();
        wait_for(&k, json!({"coin": "RICK", "target": account}), |r| {
            r["total"] == total
        })
        .await;
        let histories = fake.method_count("blockchain.scripthash.get_history");
        if i == 2 {
            assert!(histories >= 2, "payment {i}: {histories} get_history items");
        } else {
            assert_eq!(histories, 1, "payment {i}: get_history items");
        }
    }
}

/// 2000 transactions for one address: how many lines (JSON-RPC arrays) the first sync sends and
/// how long it takes; then the whole history in one legacy `max` page.
/// A fake server holding `n` transactions to bob, heights 1..=100, each spending an output of one
/// funding transaction.
fn many(n: usize) -> FakeElectrum {
    let (p2pkh, _) = bob_scripthashes();
    let fake = FakeElectrum::start_tcp();

    let outs: Vec<(u64, ScriptBuf)> = (0..n).map(|_| (COIN, other_script())).collect();
    let f = tx(&[(Txid::from_byte_array([3; 32]), 0)], &outs);
    fake.add_tx(&f.compute_txid().to_string(), &hex(&raw(&f)));
    let mut items = Vec::new();
    for i in 0..n {
        let t = tx(
            &[(f.compute_txid(), i as u32)],
            &[(COIN - 500, bob_script())],
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
    fake
}

#[tokio::test]
async fn two_thousand_transactions_pacing() {
    const N: usize = 2000;
    let fake = many(N);
    let db = tempfile::tempdir().unwrap();
    let k = Kdfd::start(conf_with_db(db.path()));
    fake.reset_counters();
    let t0 = Instant::now();
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");
    let r = wait_for(&k, json!({"coin": "RICK"}), |r| {
        r["total"] == N && r["sync_status"]["state"] == "Finished"
    })
    .await;
    let took = t0.elapsed();
    let lines = fake.lines_received();
    let gets = fake.method_count("blockchain.transaction.get");
    eprintln!(
        "MEASURE {N} txs synced in {:.2} s, {lines} lines, {gets} transaction.get calls, {} header calls",
        took.as_secs_f64(),
        fake.method_count("blockchain.block.header")
    );
    // Each tx once, the shared funding tx at most once per 100-tx chunk (two chunks in flight
    // may share one request for it); everything in arrays.
    assert!(
        gets > N && gets <= N + N / 100,
        "{gets} transaction.get calls"
    );
    assert!(lines < 120, "{lines} lines");
    assert_eq!(r["transactions"][0]["block_height"], 100);
    assert_eq!(r["transactions"][0]["timestamp"], BLOCK_TIME + 100);
    let t1 = Instant::now();
    let (status, _) = k
        .post(&v2("my_tx_history", json!({"coin": "RICK", "limit": 10})))
        .await;
    assert_eq!(status, 200);
    let page_time = t1.elapsed();
    let t1 = Instant::now();
    let (status, all) = k
        .post(&req("my_tx_history", json!({"coin": "RICK", "max": true})))
        .await;
    assert_eq!(status, 200);
    eprintln!(
        "MEASURE a 10-entry page of {N}: {:.1} ms; all {N} entries: {:.1} ms",
        page_time.as_secs_f64() * 1e3,
        t1.elapsed().as_secs_f64() * 1e3
    );
    assert_eq!(all["result"]["transactions"].as_array().unwrap().len(), N);
    assert_eq!(all["result"]["total_pages"], 1);
}

/// kill -9 in the middle of a long first sync: what was committed is answered at once after the
/// restart, the sync resumes with the rest only, and nothing is duplicated.
#[tokio::test]
async fn kill_during_first_sync_resumes() {
    const N: usize = 2000;
    let fake = many(N);
    fake.set_latency(Duration::from_millis(60));
    let db = tempfile::tempdir().unwrap();
    let k = Kdfd::start(conf_with_db(db.path()));
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");
    let part = wait_for(&k, json!({"coin": "RICK", "limit": 1}), |r| {
        r["total"].as_u64().unwrap() >= 300
    })
    .await;
    assert_eq!(part["sync_status"]["state"], "InProgress", "{part}");
    assert!(
        part["sync_status"]["additional_info"]["transactions_left"]
            .as_u64()
            .unwrap()
            > 0
    );
    let pid = k.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success());
    drop(k);

    fake.set_latency(Duration::ZERO);
    fake.reset_counters();
    let k = Kdfd::start(conf_with_db(db.path()));
    let (_, v) = k.post(&activate(&fake.url(), true)).await;
    assert_eq!(v["result"], "success", "{v}");
    let (_, first) = k
        .post(&v2("my_tx_history", json!({"coin": "RICK", "limit": 1})))
        .await;
    let kept = first["result"]["total"].as_u64().unwrap() as usize;
    assert!(kept >= 300, "the committed chunks survive: {first}");
    let r = wait_for(&k, json!({"coin": "RICK", "limit": 1}), |r| {
        r["total"] == N && r["sync_status"]["state"] == "Finished"
    })
    .await;
    assert_eq!(r["total"], N);
    let gets = fake.method_count("blockchain.transaction.get");
    assert!(
        gets <= N - kept + N / 100,
        "refetched only the rest: {gets} gets, {kept} kept"
    );
    eprintln!(
        "MEASURE kill -9 after {} entries: {kept} kept, {gets} gets to finish",
        part["total"]
    );
}
