//! Wallet files and HD mode over real HTTP with the real binary: wallet creation, reopen, wrong
//! password, wallet methods, and HD activation (gap-limit scan) against the in-process fake
//! Electrum server with planted histories.

mod support;

use kdfd::crypto::hd::{derive_pubkeys, Chain, CoinPath, HdSeed};
use serde_json::{json, Value};
use std::time::Duration;
use support::electrum_fake::FakeElectrum;
use support::{Kdfd, Launch, USERPASS};

const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

fn rick() -> Value {
    json!([{"coin": "RICK", "mm2": 1, "protocol": {"type": "UTXO"}, "derivation_path": "m/44'/141'",
            "txversion": 4, "overwintered": 1, "sign_message_prefix": "Komodo Signed Message:\n"}])
}

fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params})
}

/// The P2PKH scripthash of RICK address `chain/index` of account 0 of the tank mnemonic.
fn scripthash(chain: Chain, index: u32) -> String {
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let xpub = seed
        .account_xpub(&CoinPath::parse("m/44'/141'").unwrap(), 0)
        .unwrap();
    let pk = derive_pubkeys(&xpub, chain, index..index + 1).unwrap()[0];
    let h = bitcoin::hashes::hash160::Hash::hash(&pk);
    kdfd::crypto::scripthash(&kdfd::crypto::p2pkh_script(&h.to_byte_array()))
}
use bitcoin::hashes::Hash;

async fn task_result(k: &Kdfd, kind: &str, init: Value) -> Value {
    let (status, v) = k.post(&v2(&format!("task::{kind}::init"), init)).await;
    assert_eq!(status, 200, "{v}");
    let id = v["result"]["task_id"].as_u64().expect("task id");
    for _ in 0..200 {
        let (status, v) = k
            .post(&v2(
                &format!("task::{kind}::status"),
                json!({"task_id": id, "forget_if_finished": false}),
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        if v["result"]["status"] != "InProgress" {
            return v["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} did not finish");
}

fn hd_conf(fake: &FakeElectrum, extra: Value) -> Value {
    let mut c = json!({"gui": "kdfd-test", "rpc_password": USERPASS, "rpcport": 0, "coins": rick(),
                       "enable_hd": true});
    if let (Some(o), Value::Object(e)) = (c.as_object_mut(), extra) {
        o.extend(e);
    }
    let _ = fake;
    c
}

fn enable_params(fake: &FakeElectrum) -> Value {
    json!({"ticker": "RICK", "activation_params": {
        "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": fake.url()}]}},
        "tx_history": false, "txversion": 4, "unknown_key": 1}})
}

#[tokio::test]
async fn hd_scan_finds_used_addresses_and_persists_counts() {
    let fake = FakeElectrum::start_tcp();
    let txid = "11".repeat(32);
    let used: &[(&str, i64)] = &[(&txid, 5)];
    for (chain, i) in [
        (Chain::External, 0),
        (Chain::External, 3),
        (Chain::External, 19),
        (Chain::Internal, 2),
    ] {
        fake.set_history(&scripthash(chain, i), used);
    }
    // Past the gap after external 19 (20..=40 are probed): never found.
    fake.set_history(&scripthash(Chain::External, 41), used);
    fake.set_balance(&scripthash(Chain::External, 3), 150_000_000, 0);
    let dbdir = tempfile::tempdir().unwrap();
    let conf = hd_conf(&fake, json!({"passphrase": TANK, "dbdir": dbdir.path()}));
    let k = Kdfd::start(conf.clone());
    let r = task_result(&k, "enable_utxo", enable_params(&fake)).await;
    assert_eq!(r["status"], "Ok", "{r}");
    let wb = &r["details"]["wallet_balance"];
    assert_eq!(wb["wallet_type"], "HD");
    let acc = &wb["accounts"][0];
    assert_eq!(acc["derivation_path"], "m/44'/141'/0'");
    assert_eq!(acc["total_balance"]["RICK"]["spendable"], "1.5");
    let addrs = acc["addresses"].as_array().unwrap();
    let ext: Vec<&Value> = addrs.iter().filter(|a| a["chain"] == "External").collect();
    let int: Vec<&Value> = addrs.iter().filter(|a| a["chain"] == "Internal").collect();
    assert_eq!(
        (ext.len(), int.len()),
        (20, 3),
        "known counts = last used + 1"
    );
    assert_eq!(ext[0]["address"], "RXNtAyDSsY3DS3VxTpJegzoHU9bUX54j56");
    assert_eq!(ext[1]["address"], "RVyndZp3ZrhGKSwHryyM3Kcz9aq2EJrW1z");
    assert_eq!(int[0]["address"], "RAV7AqFnZ8uHU2oV481KbbYjzXLQhy74TG");
    assert_eq!(ext[3]["balance"]["RICK"]["spendable"], "1.5");

    // Known addresses only, live balances.
    let r = task_result(
        &k,
        "account_balance",
        json!({"coin": "RICK", "account_index": 0}),
    )
    .await;
    assert_eq!(r["status"], "Ok", "{r}");
    assert_eq!(r["details"]["addresses"].as_array().unwrap().len(), 23);
    let (_, v) = k
        .post(&v2(
            "task::account_balance::init",
            json!({"coin": "RICK", "account_index": 7}),
        ))
        .await;
    let id = v["result"]["task_id"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = k
        .post(&v2("task::account_balance::status", json!({"task_id": id})))
        .await;
    assert_eq!(
        v["result"]["details"]["error_type"], "UnknownAccount",
        "{v}"
    );

    // 20 known, gap 20, newest 20 include a used one (19): allowed, index 20.
    let (s, v) = k
        .post(&v2(
            "get_new_address",
            json!({"coin": "RICK", "account_id": 0, "chain": "External", "gap_limit": 20}),
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["result"]["new_address"]["derivation_path"],
        "m/44'/141'/0'/0/20"
    );
    // Internal: 3 known, gap 2, newest two (1, 2) include a used one; then 3, 4 are unused.
    let gna = |gap: u32| {
        v2(
            "get_new_address",
            json!({"coin": "RICK", "account_id": 0, "chain": "Internal", "gap_limit": gap}),
        )
    };
    let (s, v) = k.post(&gna(2)).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = k.post(&gna(2)).await;
    assert_eq!(s, 200);
    let (s, v) = k.post(&gna(2)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error_type"], "EmptyAddressesLimitReached");

    // Iguana-only answers in HD mode: my_balance is the enabled address's (m/44'/141'/0'/0/0).
    let (_, v) = k
        .post(&json!({"userpass": USERPASS, "method": "my_balance", "coin": "RICK"}))
        .await;
    assert_eq!(v["address"], "RXNtAyDSsY3DS3VxTpJegzoHU9bUX54j56", "{v}");
    drop(k);

    // Restart: counts come from the database, no rescan (scan_if_new_wallet).
    let fresh = FakeElectrum::start_tcp();
    let k = Kdfd::start(conf);
    let r = task_result(&k, "enable_utxo", enable_params(&fresh)).await;
    let addrs = r["details"]["wallet_balance"]["accounts"][0]["addresses"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(addrs, 21 + 5, "persisted: 21 external, 5 internal");
    assert_eq!(
        fresh.method_count("blockchain.scripthash.get_history"),
        0,
        "no rescan"
    );
}

#[tokio::test]
async fn task_protocol_errors() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(hd_conf(&fake, json!({"passphrase": TANK})));
    let (s, v) = k
        .post(&v2("task::enable_utxo::status", json!({"task_id": 999})))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("NoSuchTask")),
        "{v}"
    );
    let (s, v) = k
        .post(&v2("task::enable_utxo::cancel", json!({"task_id": 999})))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (404, Some("NoSuchTask")),
        "{v}"
    );
    let (s, v) = k.post(&v2("task::enable_utxo::init", json!({"ticker": "NOPE", "activation_params": {"mode": {"rpc": "Electrum", "rpc_data": {"servers": []}}}}))).await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("CoinConfigIsNotFound")),
        "{v}"
    );
    let r = task_result(&k, "enable_utxo", enable_params(&fake)).await;
    assert_eq!(r["status"], "Ok");
    let (s, v) = k
        .post(&v2("task::enable_utxo::init", enable_params(&fake)))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("CoinIsAlreadyActivated")),
        "{v}"
    );
    let (s, v) = k.post(&v2("task::enable_utxo::init", json!({"ticker": "RICK", "activation_params": {"mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": fake.url()}]}}, "gap_limit": 1000000}}))).await;
    assert!(s == 400, "{v}");
    // Huge gap limits are refused, and the daemon keeps serving.
    let (s, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn wallet_files_create_reopen_and_refuse_wrong_password() {
    let dbdir = tempfile::tempdir().unwrap();
    let conf = |pw: &str| {
        json!({"gui": "kdfd-test", "rpc_password": USERPASS, "rpcport": 0, "coins": rick(),
        "wallet_name": "alice", "wallet_password": pw, "enable_hd": true, "dbdir": dbdir.path()})
    };
    let k = Kdfd::start(conf("Alice!Pass123"));
    let (_, v) = k.post(&v2("get_wallet_names", Value::Null)).await;
    assert_eq!(
        v["result"],
        json!({"wallet_names": ["alice"], "activated_wallet": "alice"})
    );
    let (_, v) = k
        .post(&v2(
            "get_mnemonic",
            json!({"format": "plaintext", "password": "Alice!Pass123"}),
        ))
        .await;
    let mnemonic = v["result"]["mnemonic"]
        .as_str()
        .expect("mnemonic")
        .to_string();
    assert_eq!(mnemonic.split(' ').count(), 12);
    assert!(
        !k.stderr().contains(&mnemonic),
        "the mnemonic is never logged"
    );
    let (s, v) = k
        .post(&v2(
            "get_mnemonic",
            json!({"format": "plaintext", "password": "wrong"}),
        ))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("InvalidPassword")),
        "{v}"
    );
    let (_, v) = k
        .post(&v2("get_mnemonic", json!({"format": "encrypted"})))
        .await;
    assert_eq!(v["result"]["encrypted_mnemonic_data"]["version"], 1);
    let (s, v) = k
        .post(&v2(
            "delete_wallet",
            json!({"wallet_name": "alice", "password": "Alice!Pass123"}),
        ))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("InvalidRequest")),
        "active wallet: {v}"
    );
    let (s, v) = k
        .post(&v2(
            "change_mnemonic_password",
            json!({"current_password": "Alice!Pass123", "new_password": "Alice!Pass456"}),
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    drop(k);

    let file = dbdir.path().join("alice.json");
    let before = std::fs::read(&file).unwrap();
    let err = Kdfd::launch(Launch {
        conf: Some(conf("Alice!Pass123")),
        ..Launch::default()
    })
    .err()
    .expect("the old password is refused");
    assert!(err.contains("exit status: 1"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "nothing on disk changed"
    );

    let k = Kdfd::start(conf("Alice!Pass456"));
    let (_, v) = k
        .post(&v2(
            "get_mnemonic",
            json!({"format": "plaintext", "password": "Alice!Pass456"}),
        ))
        .await;
    assert_eq!(
        v["result"]["mnemonic"],
        mnemonic.as_str(),
        "same wallet after restart"
    );
    drop(k);

    // A plaintext passphrase that differs from the file: KDF's PassphraseMismatch.
    let mut c = conf("Alice!Pass456");
    c["passphrase"] = json!(TANK);
    let err = Kdfd::launch(Launch {
        conf: Some(c),
        ..Launch::default()
    })
    .err()
    .expect("mismatch");
    assert!(err.contains("Passphrase doesn't match"), "{err}");

    // Another wallet can delete alice.
    let mut c = conf("Bob!Pass12345");
    c["wallet_name"] = json!("bob");
    let k = Kdfd::start(c);
    let (s, v) = k
        .post(&v2(
            "delete_wallet",
            json!({"wallet_name": "alice", "password": "Alice!Pass456"}),
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = k.post(&v2("get_wallet_names", Value::Null)).await;
    assert_eq!(v["result"]["wallet_names"], json!(["bob"]));
    let (s, v) = k
        .post(&v2(
            "delete_wallet",
            json!({"wallet_name": "alice", "password": "x"}),
        ))
        .await;
    assert_eq!(
        (s, v["error_type"].as_str()),
        (400, Some("InvalidRequest")),
        "{v}"
    );
}

#[tokio::test]
async fn cancelled_activation_leaves_no_coin() {
    // Whenever the cancel lands (before or after the coin is registered), nothing stays active.
    for wait_ms in [50u64, 450, 650, 850] {
        let fake = FakeElectrum::start_tcp();
        fake.set_latency(Duration::from_millis(200));
        let k = Kdfd::start(hd_conf(&fake, json!({"passphrase": TANK})));
        let (_, v) = k
            .post(&v2("task::enable_utxo::init", enable_params(&fake)))
            .await;
        let id = v["result"]["task_id"].as_u64().expect("task id");
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        let (s, v) = k
            .post(&v2("task::enable_utxo::cancel", json!({"task_id": id})))
            .await;
        if s != 200 {
            // Finished before the cancel: then the coin is active, as KDF answers TaskFinished.
            assert_eq!(v["error_type"], "TaskFinished", "{v}");
            continue;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, v) = k.post(&v2("get_enabled_coins", Value::Null)).await;
        assert_eq!(
            v["result"]["coins"],
            json!([]),
            "cancel after {wait_ms} ms: {v}"
        );
        // And the ticker is free again.
        fake.set_latency(Duration::ZERO);
        let r = task_result(&k, "enable_utxo", enable_params(&fake)).await;
        assert_eq!(r["status"], "Ok", "{r}");
    }
}
