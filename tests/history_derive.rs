//! Transaction history without a daemon: KDF's TransactionDetails derived from hand-built
//! transactions, and the history tables (order, moves, removals, address targets).

use kdfd_testkit::history_common as common;
mod support;

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Transaction, Txid};
use common::*;
use kdfd::history::derive::{self, Mine, PrevOuts};
use serde_json::{json, Value};
use support::BOB_R_ADDRESS;

fn mine() -> Mine {
    let mut m = Mine::default();
    m.scripts.insert(bob_script(), BOB_R_ADDRESS.to_string());
    m
}

fn prevs(txs: &[&Transaction]) -> PrevOuts {
    let mut p = PrevOuts::default();
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
        &PrevOuts::default(),
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
        &PrevOuts::default(),
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
    let changed = store.call(move |c| db::apply(c, "T", first)).await.unwrap();
    assert_eq!(changed.len(), 4);
    let all = store
        .call(|c| kdfd::history::pages::list(c, "T", None))
        .await
        .unwrap();
    // Unmined first, then height descending, ties by hash.
    assert_eq!(hashes(&all), ["cc", "ab", "bb", "aa"]);
    let y = store
        .call(|c| kdfd::history::pages::list(c, "T", Some(&["Y".to_string()])))
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
        .call(move |c| db::apply(c, "T", second))
        .await
        .unwrap();
    // bb again with the same details is no change (no second TX_HISTORY event); cc moved is.
    assert_eq!(hashes(&changed), ["cc"]);
    let all = store
        .call(|c| kdfd::history::pages::list(c, "T", None))
        .await
        .unwrap();
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
        .call(|c| kdfd::history::pages::list(c, "U", None))
        .await
        .unwrap()
        .is_empty());
}
