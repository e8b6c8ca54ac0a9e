//! Transaction history: derivation of KDF's TransactionDetails from hand-built transactions, and
//! the real binary syncing from the fake Electrum server into SQLite, answering `my_tx_history`
//! (v2 and legacy), following a mempool tx into a block, and answering from the DB after a
//! restart.

mod support;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use kdfd::coins::CoinConf;
use kdfd::history::derive::{self, Mine, PrevOuts};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, BOB_R_ADDRESS, USERPASS};

const COIN: u64 = 100_000_000;
const BLOCK_TIME: u32 = 1_700_000_000;

fn rick_conf() -> CoinConf {
    CoinConf::from_json(
        &json!({"coin": "RICK", "protocol": {"type": "UTXO"}, "pubtype": 60, "p2shtype": 85,
        "segwit": true, "bech32_hrp": "rck"}),
    )
    .unwrap()
}

fn bob_script() -> ScriptBuf {
    let k = kdfd::crypto::KeyPair::from_passphrase(support::PASSPHRASE).unwrap();
    ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&k.hash160()))
}

fn other_script() -> ScriptBuf {
    ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&[7u8; 20]))
}

fn other_address() -> String {
    kdfd::crypto::p2pkh_address(&[60], &[7u8; 20])
}

fn tx(inputs: &[(Txid, u32)], outputs: &[(u64, ScriptBuf)]) -> Transaction {
    Transaction {
        version: Version::ONE,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(t, v)| TxIn {
                previous_output: OutPoint::new(*t, *v),
                script_sig: ScriptBuf::from_bytes(vec![0x51]),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs
            .iter()
            .map(|(v, s)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    }
}

fn raw(t: &Transaction) -> Vec<u8> {
    bitcoin::consensus::serialize(t)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// F pays 10 to someone else; A spends it: 3 to bob, 6.9999 back (fee 0.0001); B spends bob's 3:
/// 1 to the other party, 1.99 change to bob (fee 0.01).
struct Chain {
    f: Transaction,
    a: Transaction,
    b: Transaction,
}

fn chain() -> Chain {
    let f = tx(
        &[(Txid::from_byte_array([9; 32]), 0)],
        &[(10 * COIN, other_script())],
    );
    let a = tx(
        &[(f.compute_txid(), 0)],
        &[(3 * COIN, bob_script()), (699_990_000, other_script())],
    );
    let b = tx(
        &[(a.compute_txid(), 0)],
        &[(COIN, other_script()), (199_000_000, bob_script())],
    );
    Chain { f, a, b }
}

fn mine() -> Mine {
    let mut m = Mine::default();
    m.scripts.insert(bob_script(), BOB_R_ADDRESS.to_string());
    m
}

fn prevs(txs: &[&Transaction]) -> PrevOuts {
    let mut p = PrevOuts::new();
    for t in txs {
        for (i, o) in t.output.iter().enumerate() {
            p.insert(
                (t.compute_txid(), i as u32),
                (o.value.to_sat(), o.script_pubkey.clone()),
            );
        }
    }
    p
}

fn decode(t: &Transaction) -> kdfd::coins::withdraw::DecodedTx {
    kdfd::coins::withdraw::decode_tx(&rick_conf(), &raw(t)).unwrap()
}

#[test]
fn incoming_transfer_details() {
    let c = chain();
    let d = derive::derive(
        &rick_conf(),
        &raw(&c.a),
        &decode(&c.a),
        &prevs(&[&c.f]),
        &mine(),
        90,
        5,
    )
    .unwrap();
    let id = c.a.compute_txid().to_string();
    assert_eq!(
        d.details,
        json!({"tx_hex": hex(&raw(&c.a)), "tx_hash": id, "from": [other_address()],
               "to": [BOB_R_ADDRESS, other_address()], "total_amount": "10", "spent_by_me": "0",
               "received_by_me": "3", "my_balance_change": "3", "block_height": 90, "timestamp": 5,
               "fee_details": {"type": "Utxo", "coin": "RICK", "amount": "0.0001"}, "coin": "RICK",
               "internal_id": id, "transaction_type": "StandardTransfer", "memo": null})
    );
    assert_eq!(d.my_addresses, [BOB_R_ADDRESS]);
}

#[test]
fn outgoing_transfer_with_change() {
    let c = chain();
    let d = derive::derive(
        &rick_conf(),
        &raw(&c.b),
        &decode(&c.b),
        &prevs(&[&c.a]),
        &mine(),
        0,
        7,
    )
    .unwrap();
    let v = &d.details;
    assert_eq!(v["from"], json!([BOB_R_ADDRESS]));
    assert_eq!(v["to"], json!([other_address(), BOB_R_ADDRESS]));
    assert_eq!(v["total_amount"], "3");
    assert_eq!(v["spent_by_me"], "3");
    assert_eq!(v["received_by_me"], "1.99");
    assert_eq!(v["my_balance_change"], "-1.01");
    assert_eq!(v["fee_details"]["amount"], "0.01");
    assert_eq!(v["block_height"], 0);
}

#[test]
fn missing_prevout_is_an_error_and_coinbase_has_no_fee() {
    let c = chain();
    let e = derive::derive(
        &rick_conf(),
        &raw(&c.b),
        &decode(&c.b),
        &PrevOuts::new(),
        &mine(),
        0,
        0,
    );
    assert!(e.is_err());
    let cb = tx(
        &[(Txid::all_zeros(), u32::MAX)],
        &[(50 * COIN, bob_script())],
    );
    let d = derive::derive(
        &rick_conf(),
        &raw(&cb),
        &decode(&cb),
        &PrevOuts::new(),
        &mine(),
        1,
        0,
    )
    .unwrap();
    assert_eq!(d.details["from"], json!([]));
    assert_eq!(d.details["received_by_me"], "50");
    assert_eq!(d.details["fee_details"]["amount"], "0");
}

#[test]
fn script_addresses_per_coin_conf() {
    let conf = rick_conf();
    let p2sh = ScriptBuf::new_p2sh(&bitcoin::ScriptHash::from_byte_array([1; 20]));
    let p2wpkh = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([2; 20]));
    let a = derive::script_address(&conf, &p2sh).unwrap();
    assert!(a.starts_with('b'), "RICK p2shtype 85: {a}");
    let kind = kdfd::coins::address::parse(&conf, &a).unwrap();
    assert_eq!(kdfd::coins::address::script_pubkey(&kind), p2sh);
    let w = derive::script_address(&conf, &p2wpkh).unwrap();
    assert!(w.starts_with("rck1"), "{w}");
    assert_eq!(
        derive::script_address(&conf, &ScriptBuf::new_op_return([1u8; 4])),
        None
    );
    assert_eq!(
        derive::script_address(&conf, &other_script()).unwrap(),
        other_address()
    );
}

#[test]
fn header_times_and_confirmations() {
    let mut h = vec![0u8; 80];
    h[68..72].copy_from_slice(&BLOCK_TIME.to_le_bytes());
    assert_eq!(derive::header_time(&h), Some(u64::from(BLOCK_TIME)));
    let mut z = vec![0u8; 1487];
    z[100..104].copy_from_slice(&BLOCK_TIME.to_le_bytes());
    assert_eq!(derive::header_time(&z), Some(u64::from(BLOCK_TIME)));
    assert_eq!(derive::header_time(&[0; 40]), None);
    assert_eq!(derive::confirmations(100, 90), 11);
    assert_eq!(derive::confirmations(100, 0), 0);
    assert_eq!(derive::confirmations(100, 101), 0);
}

// ------------------------------------------------------------------------------------------------
// Over HTTP against the fake Electrum server
// ------------------------------------------------------------------------------------------------

fn header(time: u32) -> String {
    let mut h = vec![0u8; 80];
    h[68..72].copy_from_slice(&time.to_le_bytes());
    hex(&h)
}

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

fn row(hash: &str, height: u64, addrs: &[&str]) -> kdfd::history::db::Row {
    kdfd::history::db::Row {
        tx_hash: hash.into(),
        height,
        timestamp: 1,
        details: json!({"tx_hash": hash, "internal_id": hash, "block_height": height, "timestamp": 1}),
        my_addresses: addrs.iter().map(|a| a.to_string()).collect(),
        scripts_key: "k".into(),
    }
}

#[tokio::test]
async fn store_order_moves_removals_and_targets() {
    use kdfd::history::db::{self, Batch};
    let tmp = tempfile::tempdir().unwrap();
    let store = kdfd::store::Store::open(tmp.path().join("h.sqlite")).unwrap();
    let hashes = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|t| t["tx_hash"].as_str().unwrap().to_string())
            .collect()
    };
    let first = Batch {
        upsert: vec![
            row("aa", 10, &["X"]),
            row("bb", 12, &["Y"]),
            row("cc", 0, &["X", "Y"]),
            row("ab", 12, &["X"]),
        ],
        ..Default::default()
    };
    let changed = store
        .call(move |c| db::apply(c, "T", &first))
        .await
        .unwrap();
    assert_eq!(changed.len(), 4);
    let all = store.call(|c| db::list(c, "T", None)).await.unwrap();
    // Unmined first, then height descending, ties by hash.
    assert_eq!(hashes(&all), ["cc", "ab", "bb", "aa"]);
    let y = store
        .call(|c| db::list(c, "T", Some(&["Y".to_string()])))
        .await
        .unwrap();
    assert_eq!(hashes(&y), ["cc", "bb"]);
    // Re-inserting is no duplicate; cc is mined at 13; aa is reorged out.
    let second = Batch {
        upsert: vec![row("bb", 12, &["Y"])],
        moved: vec![("cc".into(), 13, 99)],
        remove: vec!["aa".into()],
    };
    let changed = store
        .call(move |c| db::apply(c, "T", &second))
        .await
        .unwrap();
    assert_eq!(changed.len(), 2);
    let all = store.call(|c| db::list(c, "T", None)).await.unwrap();
    assert_eq!(hashes(&all), ["cc", "ab", "bb"]);
    assert_eq!(all[0]["block_height"], 13);
    assert_eq!(all[0]["timestamp"], 99);
    let known = store.call(|c| db::known(c, "T", "k")).await.unwrap();
    assert_eq!(known.len(), 3);
    assert_eq!(known["cc"].height, 13);
    assert!(known["cc"].current);
    let other = store.call(|c| db::known(c, "T", "k2")).await.unwrap();
    assert!(!other["cc"].current, "a new script set re-derives");
    // Other coins do not see these.
    assert!(store
        .call(|c| db::list(c, "U", None))
        .await
        .unwrap()
        .is_empty());
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
    // Each tx once, the shared funding tx once per 100-tx chunk; everything in arrays.
    assert_eq!(gets, N + N / 100);
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
