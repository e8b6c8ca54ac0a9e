//! Sending and address tools end to end: the real kdfd binary over real HTTP against the
//! in-process fake Electrum server (listunspent, transaction.get and broadcast answers set per
//! test). Vectors are KDF's (spec 2.9, 2.10, 3.6).

mod support;

use bitcoin::hashes::Hash;

use kdfd::coins::withdraw::decode_tx;
use kdfd::coins::Registry;
use kdfd::crypto::{self, KeyPair};
use serde_json::{json, Value};
use std::time::Duration;
use support::electrum_fake::FakeElectrum;
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, BOB_R_ADDRESS, USERPASS};

const SPICE: &str =
    "spice describe gravity federal blast come thank unfair canal monkey style afraid";
const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params, "id": 1})
}

fn conf_with(passphrase: &str, hd: bool) -> Value {
    let mut c = base_conf(shipped_coins());
    c["passphrase"] = json!(passphrase);
    if hd {
        c["enable_hd"] = json!(true);
    }
    c
}

async fn activate(k: &Kdfd, coin: &str, fake: &FakeElectrum) {
    let (status, v) = k
        .post(&req(
            "electrum",
            json!({"coin": coin, "servers": [{"url": fake.url()}]}),
        ))
        .await;
    assert_eq!(status, 200, "{coin}: {v}");
    assert_eq!(v["result"], "success", "{coin}: {v}");
}

fn registry() -> Registry {
    Registry::load(shipped_coins().as_array().unwrap())
}

fn bob() -> KeyPair {
    KeyPair::from_passphrase(support::PASSPHRASE).unwrap()
}

#[tokio::test]
async fn validateaddress_every_shipped_coin() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(base_conf(shipped_coins()));
    let reg = registry();
    let h160 = bob().hash160();
    for ticker in support::shipped_tickers() {
        activate(&k, &ticker, &fake).await;
        let conf = reg.get(&ticker).unwrap();
        let check = |addr: String, valid: bool| {
            let k = &k;
            let ticker = ticker.clone();
            async move {
                let (status, v) = k
                    .post(&req(
                        "validateaddress",
                        json!({"coin": ticker, "address": addr}),
                    ))
                    .await;
                assert_eq!(status, 200, "{ticker} {addr}: {v}");
                assert_eq!(v["result"]["is_valid"], valid, "{ticker} {addr}: {v}");
                if valid {
                    assert!(v["result"].get("reason").is_none(), "{v}");
                } else {
                    assert!(
                        v["result"]["reason"]
                            .as_str()
                            .is_some_and(|r| !r.is_empty()),
                        "{v}"
                    );
                }
                v
            }
        };
        let good = crypto::p2pkh_address(&conf.p2pkh_prefix, &h160);
        check(good.clone(), true).await;
        // Wrong prefix: the same hash under another version byte.
        let mut other = conf.p2pkh_prefix.clone();
        let last = other.len() - 1;
        other[last] = other[last].wrapping_add(3);
        let v = check(crypto::p2pkh_address(&other, &h160), false).await;
        assert!(
            v["result"]["reason"]
                .as_str()
                .unwrap()
                .contains("invalid prefix"),
            "{v}"
        );
        // Wrong checksum: swap the last character.
        let mut bad = good.clone();
        let c = bad.pop().unwrap();
        bad.push(if c == '1' { '2' } else { '1' });
        check(bad, false).await;
        // Segwit: valid only where the coin has segwit and its own hrp.
        let bc1 = crypto::segwit_address("bc", &h160).unwrap();
        let expect = conf.segwit && conf.bech32_hrp.as_deref() == Some("bc");
        check(bc1, expect).await;
        if let (true, Some(hrp)) = (conf.segwit, conf.bech32_hrp.as_deref()) {
            check(crypto::segwit_address(hrp, &h160).unwrap(), true).await;
        }
    }
    let (_, v) = k
        .post(&req(
            "validateaddress",
            json!({"coin": "NOPE", "address": BOB_R_ADDRESS}),
        ))
        .await;
    assert_eq!(v["error"], "No such coin: NOPE");
}

#[tokio::test]
async fn convertaddress_and_v2_convert_utxo_address() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(base_conf(shipped_coins()));
    activate(&k, "BTC", &fake).await;
    activate(&k, "RICK", &fake).await;
    let h160 = bob().hash160();
    let legacy = crypto::p2pkh_address(&[0], &h160);
    let segwit = crypto::segwit_address("bc", &h160).unwrap();
    let conv = |from: &str, fmt: &str| {
        req(
            "convertaddress",
            json!({"coin": "BTC", "from": from, "to_address_format": {"format": fmt}}),
        )
    };
    let (_, v) = k.post(&conv(&legacy, "segwit")).await;
    assert_eq!(v, json!({"result": {"address": segwit}}));
    let (_, v) = k.post(&conv(&segwit, "standard")).await;
    assert_eq!(v, json!({"result": {"address": legacy}}));
    let (status, v) = k
        .post(&req("convertaddress", json!({"coin": "RICK", "from": BOB_R_ADDRESS, "to_address_format": {"format": "segwit"}})))
        .await;
    assert_eq!(status, 500);
    assert!(
        v["error"].as_str().unwrap().contains("no bech32_hrp"),
        "{v}"
    );
    let (status, v) = k
        .post(&v2(
            "convert_utxo_address",
            json!({"coin": "BTC", "from": legacy, "to_address_format": {"format": "segwit"}}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], json!({"address": segwit}));
}

#[tokio::test]
async fn sign_verify_iguana_vector() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(conf_with(SPICE, false));
    activate(&k, "RICK", &fake).await;
    let sig =
        "HzetbqVj9gnUOznon9bvE61qRlmjH5R+rNgkxu8uyce3UBbOu+2aGh7r/GGSVFGZjRnaYC60hdwtdirTKLb7bE4=";
    let (status, v) = k
        .post(&v2(
            "sign_message",
            json!({"coin": "RICK", "message": "test"}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["signature"], sig);
    let verify = |msg: &str, s: &str, addr: &str| {
        v2(
            "verify_message",
            json!({"coin": "RICK", "message": msg, "signature": s, "address": addr}),
        )
    };
    let addr = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";
    let (_, v) = k.post(&verify("test", sig, addr)).await;
    assert_eq!(v["result"], json!({"is_valid": true}));
    let (_, v) = k.post(&verify("test2", sig, addr)).await;
    assert_eq!(v["result"], json!({"is_valid": false}));
    let (_, v) = k.post(&verify("test", sig, BOB_R_ADDRESS)).await;
    assert_eq!(v["result"], json!({"is_valid": false}));
    let (status, v) = k.post(&verify("test", "not base64!", addr)).await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "SignatureDecodingError");
    let (status, v) = k.post(&verify("test", sig, "bc1qnotanaddress")).await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "InvalidRequest");
    // A specific address needs HD mode.
    let (status, v) = k
        .post(&v2("sign_message", json!({"coin": "RICK", "message": "test", "address": {"derivation_path": "m/44'/141'/0'/0/1"}})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "InvalidRequest");
    assert_eq!(
        v["error_data"],
        "You need to enable kdf with enable_hd to sign messages with a specific account/address"
    );
}

#[tokio::test]
async fn hd_sign_vectors_and_keys() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(conf_with(TANK, true));
    activate(&k, "RICK", &fake).await;
    let sign = |address: Value| {
        let mut p = json!({"coin": "RICK", "message": "test"});
        if !address.is_null() {
            p["address"] = address;
        }
        v2("sign_message", p)
    };
    let s00 =
        "ICnkSvQkAurwLvK6RYtCItrWMOS4ESjCf4GKp1DvBM8Xc2+dxM4si6NcSb0JJaJajYhPkwg5yWHmgR/9AmGB0KE=";
    let s01 =
        "IPGbtsPPz6u2DishjOcP0Lf6xqPfpvTcMnkP/rRUVddKPBtkN+SfUPVZcz1vagjhj95I2t4ctLzcc3vcRdQLxbY=";
    let (_, v) = k.post(&sign(Value::Null)).await;
    assert_eq!(v["result"]["signature"], s00, "{v}");
    let (_, v) = k
        .post(&sign(json!({"derivation_path": "m/44'/141'/0'/0/0"})))
        .await;
    assert_eq!(v["result"]["signature"], s00, "{v}");
    let (_, v) = k
        .post(&sign(
            json!({"account_id": 0, "chain": "External", "address_id": 1}),
        ))
        .await;
    assert_eq!(v["result"]["signature"], s01, "{v}");
    let (_, v) = k
        .post(&sign(json!({"derivation_path": "m/44'/141'/0'/0/1"})))
        .await;
    assert_eq!(v["result"]["signature"], s01, "{v}");
    let (status, v) = k
        .post(&sign(json!({"derivation_path": "m/44'/0'/0'/0/1"})))
        .await;
    assert_eq!(status, 400, "wrong coin type: {v}");
    let (_, v) = k
        .post(&v2("verify_message", json!({"coin": "RICK", "message": "test", "signature": s01, "address": "RVyndZp3ZrhGKSwHryyM3Kcz9aq2EJrW1z"})))
        .await;
    assert_eq!(v["result"]["is_valid"], true, "{v}");
    let (_, v) = k.post(&v2("get_public_key", Value::Null)).await;
    assert_eq!(
        v["result"]["public_key"],
        "020202a4c51fd0b7d5049196a1ee69406241dd1bb83d84ed59cf86669831200588"
    );
    let (_, v) = k.post(&v2("get_public_key_hash", json!({}))).await;
    assert_eq!(
        v["result"]["public_key_hash"],
        "efa6a43e1af2847419841144153183d9690e2136"
    );
    // show_priv_key gives the enabled address's key (m/44'/141'/0'/0/0).
    let (_, v) = k.post(&req("show_priv_key", json!({"coin": "RICK"}))).await;
    let wif = v["result"]["priv_key"].as_str().unwrap();
    let key = KeyPair::from_passphrase(wif).unwrap();
    assert_eq!(
        support_hex(&key.public_key()),
        "02d74dc5ec4c823f40dae5c563d7b22aab52c80f9f18226f47ea6d83107618df62"
    );
}

fn support_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn public_key_bob_and_show_priv_key() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(base_conf(shipped_coins()));
    activate(&k, "KMD", &fake).await;
    let (status, v) = k.post(&v2("get_public_key", Value::Null)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["result"]["public_key"],
        "022cd3021a2197361fb70b862c412bc8e44cff6951fa1de45ceabfdd9b4c520420"
    );
    let (_, v) = k.post(&v2("get_public_key_hash", Value::Null)).await;
    assert_eq!(
        v["result"]["public_key_hash"],
        "b506088aa2a3b4bb1da3a29bf00ce1a550ea1df9"
    );
    let (_, v) = k.post(&req("show_priv_key", json!({"coin": "KMD"}))).await;
    assert_eq!(v["result"]["coin"], "KMD");
    let wif = v["result"]["priv_key"].as_str().unwrap();
    let raw = bitcoin::base58::decode_check(wif).unwrap();
    assert_eq!(raw[0], 188, "KMD wiftype");
    assert_eq!(
        KeyPair::from_passphrase(wif).unwrap().public_key(),
        bob().public_key()
    );
}

const TXID_A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";
const TXID_B: &str = "bb00000000000000000000000000000000000000000000000000000000000002";
const TO: &str = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";

/// kdfd with bob's RICK active and two unspents (1 and 0.5 RICK) on his P2PKH script.
async fn funded() -> (Kdfd, FakeElectrum) {
    let fake = FakeElectrum::start_tcp();
    let (p2pkh, _) = bob_scripthashes();
    fake.set_unspents(
        &p2pkh,
        &[(TXID_A, 0, 100_000_000, 10), (TXID_B, 3, 50_000_000, 11)],
    );
    let k = Kdfd::start(base_conf(shipped_coins()));
    activate(&k, "RICK", &fake).await;
    (k, fake)
}

fn sats(v: &Value) -> i128 {
    let d: rust_decimal::Decimal = v.as_str().unwrap().parse().unwrap();
    (d * rust_decimal::Decimal::from(100_000_000))
        .try_into()
        .unwrap()
}

/// Checks a TransactionDetails against the decoded tx and the fake's unspents.
fn check_details(d: &Value, amount: u64) {
    let reg = registry();
    let conf = reg.get("RICK").unwrap();
    let raw: Vec<u8> = (0..d["tx_hex"].as_str().unwrap().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&d["tx_hex"].as_str().unwrap()[i..i + 2], 16).unwrap())
        .collect();
    let tx = decode_tx(&conf, &raw).unwrap();
    assert_eq!(tx.txid.to_string(), d["tx_hash"]);
    let mut ins: Vec<(String, u32)> = tx.inputs.iter().map(|(t, n)| (t.to_string(), *n)).collect();
    ins.sort();
    assert_eq!(ins, vec![(TXID_A.to_string(), 0), (TXID_B.to_string(), 3)]);
    let to_script = crypto::p2pkh_script(&KeyPair::from_passphrase(SPICE).unwrap().hash160());
    let me = crypto::p2pkh_script(&bob().hash160());
    assert_eq!(
        tx.outputs[0],
        (amount, bitcoin::ScriptBuf::from_bytes(to_script))
    );
    let change = tx.outputs.get(1).map_or(0, |(v, s)| {
        assert_eq!(s.as_bytes(), me.as_slice());
        *v
    });
    assert_eq!(sats(&d["spent_by_me"]), 150_000_000);
    assert_eq!(sats(&d["total_amount"]), 150_000_000);
    assert_eq!(sats(&d["received_by_me"]), i128::from(change));
    assert_eq!(
        sats(&d["my_balance_change"]),
        i128::from(change) - 150_000_000
    );
    let fee = sats(&d["fee_details"]["amount"]);
    assert_eq!(fee, 150_000_000 - i128::from(amount) - i128::from(change));
    assert!(fee > 0 && fee < 10_000, "fee {fee}");
    assert_eq!(d["fee_details"]["type"], "Utxo");
    assert_eq!(d["fee_details"]["coin"], "RICK");
    assert_eq!(d["from"], json!([BOB_R_ADDRESS]));
    assert_eq!(d["to"], json!([TO]));
    assert_eq!(d["block_height"], 0);
    assert_eq!(d["internal_id"], "");
    assert_eq!(d["transaction_type"], "StandardTransfer");
    assert!(d["memo"].is_null());
    assert!(d["timestamp"].as_u64().unwrap() > 1_700_000_000);
}

#[tokio::test]
async fn withdraw_builds_from_the_unspents() {
    let (k, _fake) = funded().await;
    let (status, v) = k
        .post(&v2(
            "withdraw",
            json!({"coin": "RICK", "to": TO, "amount": "1.2"}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    check_details(&v["result"], 120_000_000);
    // Legacy answers the same details, unwrapped; a JSON number amount works too.
    let (status, v) = k
        .post(&req(
            "withdraw",
            json!({"coin": "RICK", "to": TO, "amount": 1.2}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    check_details(&v, 120_000_000);
    // Explicit fee policy.
    let (_, v) = k
        .post(&v2("withdraw", json!({"coin": "RICK", "to": TO, "amount": "1.2", "fee": {"type": "UtxoPerKbyte", "amount": "0.0001"}})))
        .await;
    check_details(&v["result"], 120_000_000);
    let (_, v) = k
        .post(&v2(
            "withdraw",
            json!({"coin": "RICK", "to": TO, "amount": "1", "fee": {"type": "EthGas"}}),
        ))
        .await;
    assert_eq!(v["error_type"], "InvalidFeePolicy", "{v}");
    let (status, v) = k
        .post(&v2(
            "withdraw",
            json!({"coin": "RICK", "to": TO, "amount": "2"}),
        ))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "NotSufficientBalance", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Not enough RICK to withdraw: available 1.5"),
        "{v}"
    );
    let (_, v) = k
        .post(&v2(
            "withdraw",
            json!({"coin": "RICK", "to": "bc1qxyz", "amount": "1"}),
        ))
        .await;
    assert_eq!(v["error_type"], "InvalidAddress", "{v}");
    let (_, v) = k
        .post(&v2("withdraw", json!({"coin": "RICK", "to": TO, "amount": "1", "from": {"derivation_path": "m/44'/141'/0'/0/1"}})))
        .await;
    assert_eq!(v["error_type"], "InvalidRequest", "from needs HD: {v}");
}

#[tokio::test]
async fn withdraw_bad_amounts() {
    let (k, _fake) = funded().await;
    for (amount, why) in [
        (json!("-1"), "negative"),
        (json!("abc"), "not a decimal"),
        (json!("0.000000001"), "decimal places"),
        (json!("21000001"), "21000000"),
        (json!("1e40"), ""),
        (json!(true), "expected a decimal"),
    ] {
        let (status, v) = k
            .post(&v2(
                "withdraw",
                json!({"coin": "RICK", "to": TO, "amount": amount}),
            ))
            .await;
        assert_eq!(status, 400, "{amount}: {v}");
        assert_eq!(v["error_type"], "InvalidRequest", "{amount}: {v}");
        assert!(v["error"].as_str().unwrap().contains(why), "{amount}: {v}");
    }
}

async fn poll(k: &Kdfd, id: u64) -> Value {
    for _ in 0..200 {
        let (status, v) = k
            .post(&v2(
                "task::withdraw::status",
                json!({"task_id": id, "forget_if_finished": false}),
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        if v["result"]["status"] != "InProgress" {
            return v["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("task {id} did not finish");
}

#[tokio::test]
async fn task_withdraw_flow() {
    let (k, fake) = funded().await;
    let init = |amount: &str| {
        v2(
            "task::withdraw::init",
            json!({"coin": "RICK", "to": TO, "amount": amount, "client_id": 3}),
        )
    };
    let (status, v) = k.post(&init("1.2")).await;
    assert_eq!(status, 200, "{v}");
    let id = v["result"]["task_id"].as_u64().unwrap();
    let r = poll(&k, id).await;
    assert_eq!(r["status"], "Ok", "{r}");
    check_details(&r["details"], 120_000_000);
    // Cancelling a finished task: 409; the default forget_if_finished then drops it.
    let (status, v) = k
        .post(&v2("task::withdraw::cancel", json!({"task_id": id})))
        .await;
    assert_eq!(
        (status, v["error_type"].clone()),
        (409, json!("TaskFinished")),
        "{v}"
    );
    let (status, v) = k
        .post(&v2("task::withdraw::status", json!({"task_id": id})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(v["result"]["status"], "Ok");
    let (status, v) = k
        .post(&v2("task::withdraw::status", json!({"task_id": id})))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "NoSuchTask");
    assert_eq!(v["error_data"], id);
    assert_eq!(v["error"], format!("No such task '{id}'"));
    let (status, v) = k
        .post(&v2("task::withdraw::cancel", json!({"task_id": 999})))
        .await;
    assert_eq!(
        (status, v["error_type"].clone()),
        (404, json!("NoSuchTask")),
        "{v}"
    );

    // A failing withdrawal ends in Error with the v2 error object, no mmrpc/id.
    let (_, v) = k.post(&init("5")).await;
    let r = poll(&k, v["result"]["task_id"].as_u64().unwrap()).await;
    assert_eq!(r["status"], "Error", "{r}");
    assert_eq!(r["details"]["error_type"], "NotSufficientBalance");
    assert!(r["details"]["error_path"].is_string());
    assert!(
        r["details"].get("mmrpc").is_none() && r["details"].get("id").is_none(),
        "{r}"
    );

    // Cancel while running: the slow server keeps it in progress.
    fake.set_latency(Duration::from_secs(3));
    let (_, v) = k.post(&init("1")).await;
    let id = v["result"]["task_id"].as_u64().unwrap();
    let (_, v) = k
        .post(&v2(
            "task::withdraw::status",
            json!({"task_id": id, "forget_if_finished": false}),
        ))
        .await;
    assert_eq!(v["result"]["status"], "InProgress", "{v}");
    let (status, v) = k
        .post(&v2("task::withdraw::cancel", json!({"task_id": id})))
        .await;
    assert_eq!(
        (status, v["result"].clone()),
        (200, json!("success")),
        "{v}"
    );
    let (status, _) = k
        .post(&v2("task::withdraw::status", json!({"task_id": id})))
        .await;
    assert_eq!(status, 400);
    // Init on an inactive coin fails at once.
    let (status, v) = k
        .post(&v2(
            "task::withdraw::init",
            json!({"coin": "MORTY", "to": TO, "amount": "1"}),
        ))
        .await;
    assert_eq!(
        (status, v["error_type"].clone()),
        (404, json!("NoSuchCoin")),
        "{v}"
    );
}

#[tokio::test]
async fn send_and_get_raw_transaction() {
    let (k, fake) = funded().await;
    // A whole (empty, transparent) overwintered v4 transaction: kdfd refuses bytes that are no
    // transaction at all before broadcasting them.
    let hex = "0400008085202f89000000000000000000000000000000000000000000";
    let (status, v) = k
        .post(&req(
            "send_raw_transaction",
            json!({"coin": "RICK", "tx_hex": hex}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["tx_hash"].as_str().unwrap().starts_with(hex));
    assert_eq!(fake.broadcasts(), vec![hex.to_string()]);
    let refusal =
        "the transaction was rejected by network rules.\n\nbad-txns-inputs-missingorspent";
    fake.set_broadcast_error(Some(refusal));
    let (status, v) = k
        .post(&req(
            "send_raw_transaction",
            json!({"coin": "RICK", "tx_hex": hex}),
        ))
        .await;
    assert_eq!(status, 500);
    assert!(v["error"].as_str().unwrap().contains(refusal), "{v}");
    // A node that has the transaction already: the same hash, not an error (never lose money by
    // making a user broadcast or pay again).
    for known in [
        "the transaction was rejected by network rules.\n\nTransaction already in block chain\n[x]",
        "txn-already-known",
        "txn-already-in-mempool",
    ] {
        fake.set_broadcast_error(Some(known));
        let (status, v) = k
            .post(&req(
                "send_raw_transaction",
                json!({"coin": "RICK", "tx_hex": hex}),
            ))
            .await;
        assert_eq!(status, 200, "{known}: {v}");
        let txid = bitcoin::hashes::sha256d::Hash::hash(&hex_bytes(hex));
        let mut display = txid.to_byte_array();
        display.reverse();
        let want: String = display.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            v["tx_hash"],
            json!(want),
            "{known}: the transaction's own id"
        );
    }
    fake.set_broadcast_error(Some(refusal));
    for (bad, why) in [("zz", "invalid character"), ("abc", "odd"), ("", "empty")] {
        let (status, v) = k
            .post(&req(
                "send_raw_transaction",
                json!({"coin": "RICK", "tx_hex": bad}),
            ))
            .await;
        assert_eq!(status, 500);
        assert!(v["error"].as_str().unwrap().contains(why), "{bad}: {v}");
    }
    let huge = "00".repeat(600_000);
    let (_, v) = k
        .post(&req(
            "send_raw_transaction",
            json!({"coin": "RICK", "tx_hex": huge}),
        ))
        .await;
    assert!(v["error"].as_str().unwrap().contains("the limit is"), "{v}");
    let (_, v) = k
        .post(&req("send_raw_transaction", json!({"coin": "RICK"})))
        .await;
    assert_eq!(v["error"], "No 'tx_hex' field");
    let (_, v) = k
        .post(&req(
            "send_raw_transaction",
            json!({"coin": "NOPE", "tx_hex": hex}),
        ))
        .await;
    assert_eq!(v["error"], "No such coin: NOPE");

    fake.set_tx(TXID_A, "01000000deadbeef");
    let (status, v) = k
        .post(&v2(
            "get_raw_transaction",
            json!({"coin": "RICK", "tx_hash": TXID_A}),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], json!({"tx_hex": "01000000deadbeef"}));
    let (status, v) = k
        .post(&v2(
            "get_raw_transaction",
            json!({"coin": "RICK", "tx_hash": "1234"}),
        ))
        .await;
    assert_eq!(
        (status, v["error_type"].clone()),
        (400, json!("InvalidHashError")),
        "{v}"
    );
}

#[tokio::test]
async fn hd_withdraw_from_another_address() {
    use kdfd::crypto::hd::{CoinPath, HdPath, HdSeed};
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let coin = CoinPath::parse("m/44'/141'").unwrap();
    let key = seed
        .key_at(&HdPath::parse("m/44'/141'/0'/0/1", &coin).unwrap())
        .unwrap();
    let script = crypto::p2pkh_script(&key.hash160());
    let fake = FakeElectrum::start_tcp();
    fake.set_unspents(&crypto::scripthash(&script), &[(TXID_A, 1, 30_000_000, 5)]);
    let k = Kdfd::start(conf_with(TANK, true));
    activate(&k, "RICK", &fake).await;
    // The enabled address (0/0) has nothing.
    let (_, v) = k
        .post(&v2(
            "withdraw",
            json!({"coin": "RICK", "to": TO, "amount": "0.1"}),
        ))
        .await;
    assert_eq!(v["error_type"], "NotSufficientBalance", "{v}");
    for from in [
        json!({"account_id": 0, "chain": "External", "address_id": 1}),
        json!({"derivation_path": "m/44'/141'/0'/0/1"}),
    ] {
        let (status, v) = k
            .post(&v2(
                "withdraw",
                json!({"coin": "RICK", "to": TO, "amount": "0.1", "from": from}),
            ))
            .await;
        assert_eq!(status, 200, "{v}");
        let d = &v["result"];
        assert_eq!(d["from"], json!(["RVyndZp3ZrhGKSwHryyM3Kcz9aq2EJrW1z"]));
        assert_eq!(d["spent_by_me"], "0.3");
        // The change goes back to the sender address.
        let change = sats(&d["received_by_me"]);
        assert_eq!(change + sats(&d["fee_details"]["amount"]), 20_000_000);
    }
}

#[tokio::test]
async fn prefix_not_found_without_sign_message_prefix() {
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(base_conf(
        json!([{"coin": "NOPFX", "mm2": 1, "protocol": {"type": "UTXO"}}]),
    ));
    activate(&k, "NOPFX", &fake).await;
    let (status, v) = k
        .post(&v2(
            "sign_message",
            json!({"coin": "NOPFX", "message": "x"}),
        ))
        .await;
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error_type"], "PrefixNotFound");
    assert_eq!(v["error"], "sign_message_prefix is not set in coin config");
    let (_, v) = k
        .post(&v2(
            "verify_message",
            json!({"coin": "NOPFX", "message": "x", "signature": "AA==", "address": BOB_R_ADDRESS}),
        ))
        .await;
    assert_eq!(v["error_type"], "PrefixNotFound");
    // An inactive coin: KDF's SignatureError/VerificationError wrap the lookup's message.
    for (method, params) in [
        ("sign_message", json!({"coin": "RICK", "message": "x"})),
        (
            "verify_message",
            json!({"coin": "RICK", "message": "x", "signature": "AA==", "address": BOB_R_ADDRESS}),
        ),
    ] {
        let (status, v) = k.post(&v2(method, params)).await;
        assert_eq!(status, 400, "{method}: {v}");
        assert_eq!(v["error_type"], "CoinIsNotFound", "{method}: {v}");
        assert_eq!(
            v["error"], "Coin is not found: No such coin RICK",
            "{method}"
        );
        assert_eq!(v["error_data"], "No such coin RICK", "{method}");
    }
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}
