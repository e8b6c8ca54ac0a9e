//! Transaction history against a real Litecoin regtest node and ElectrumX
//! (`scripts/electrum-regtest/`, its own private stack, driven by tests/support/regtest.rs): the
//! node sends to the wallet, kdfd's `my_tx_history` is checked field by field against the node's
//! own view of the transaction (`getrawtransaction` verbose, the spent outputs, the block time),
//! before and after mining, after a reorg (`invalidateblock`), and again after a restart, from the
//! database.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use support::regtest::{private, Stack};
use support::{Kdfd, Launch, USERPASS};

const COINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/regtest-coins.json"
);

fn start_kdfd(db: &Path) -> Kdfd {
    let conf = json!({"gui": "kdfd-hist", "netid": 9998, "rpc_password": USERPASS, "rpcport": 0,
        "passphrase": format!("history regtest {}", std::process::id()), "dbdir": db.to_str().unwrap()});
    Kdfd::launch(Launch {
        conf: Some(conf),
        args: vec!["--coins".into(), COINS.into()],
        ..Launch::default()
    })
    .unwrap_or_else(|e| panic!("kdfd did not start: {e}"))
}

async fn history(k: &Kdfd, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = k
            .post(
                &json!({"userpass": USERPASS, "mmrpc": "2.0", "method": "my_tx_history",
                "params": {"coin": "LTCR", "limit": 50}}),
            )
            .await;
        if status == 200 && done(&v["result"]) {
            return v["result"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "history never got there: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Satoshis of a node amount (a JSON number in coins, 8 decimals).
fn sats(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 1e8).round() as i64
}

/// An output's address: `address` (Core 22+) or the single entry of `addresses` (Core 0.21,
/// which litecoind 0.21 is).
fn address_of(out: &Value) -> Option<String> {
    let spk = &out["scriptPubKey"];
    spk["address"]
        .as_str()
        .or_else(|| spk["addresses"][0].as_str())
        .map(str::to_string)
}

fn amount(s: i64) -> String {
    kdfd::coins::format_amount(i128::from(s), 8)
}

/// The fields kdfd must show for `txid`, computed from the node alone.
fn expected(stack: &Stack, txid: &str, me: &str) -> Value {
    let tx = stack.node("getrawtransaction", &[txid, "true"]);
    let (mut total_in, mut mine_in, mut from) = (0, 0, Vec::<String>::new());
    for vin in tx["vin"].as_array().unwrap() {
        let prev = stack.node(
            "getrawtransaction",
            &[vin["txid"].as_str().unwrap(), "true"],
        );
        let out = &prev["vout"][vin["vout"].as_u64().unwrap() as usize];
        let addr = address_of(out).unwrap();
        total_in += sats(&out["value"]);
        if addr == me {
            mine_in += sats(&out["value"]);
        }
        if !from.contains(&addr) {
            from.push(addr);
        }
    }
    let (mut total_out, mut mine_out, mut to) = (0, 0, Vec::<String>::new());
    for out in tx["vout"].as_array().unwrap() {
        total_out += sats(&out["value"]);
        if let Some(addr) = address_of(out) {
            if addr == me {
                mine_out += sats(&out["value"]);
            }
            if !to.contains(&addr) {
                to.push(addr);
            }
        }
    }
    json!({"tx_hex": tx["hex"], "tx_hash": txid, "from": from, "to": to, "total_amount": amount(total_in),
        "spent_by_me": amount(mine_in), "received_by_me": amount(mine_out),
        "my_balance_change": amount(mine_out - mine_in),
        "fee_details": {"type": "Utxo", "coin": "LTCR", "amount": amount(total_in - total_out)},
        "coin": "LTCR", "internal_id": txid, "transaction_type": "StandardTransfer", "memo": null})
}

fn assert_fields(got: &Value, want: &Value) {
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "field {k} of {got}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn regtest_history_matches_the_node() {
    let stack: &'static Stack = Box::leak(Box::new(
        tokio::task::spawn_blocking(|| private("hist"))
            .await
            .unwrap(),
    ));
    let db = tempfile::tempdir().unwrap();
    let k = start_kdfd(db.path());
    let activate = json!({"userpass": USERPASS, "method": "electrum", "coin": "LTCR",
        "servers": [{"url": stack.tcp()}], "tx_history": true});
    let (_, v) = k.post(&activate).await;
    assert_eq!(v["result"], "success", "{v}");
    let me = v["address"].as_str().unwrap().to_string();
    let fund = |amount: &'static str| {
        let me = me.clone();
        tokio::task::spawn_blocking(move || stack.chain().fund(&me, amount, 0))
    };
    let t1 = fund("1.5").await.unwrap();
    let r = history(&k, |r| r["total"] == 1).await;
    let e1 = expected(stack, &t1, &me);
    assert_eq!(e1["received_by_me"], "1.5");
    assert_fields(&r["transactions"][0], &e1);
    assert_eq!(r["transactions"][0]["block_height"], 0);
    assert_eq!(r["transactions"][0]["confirmations"], 0);

    // Mined: height, block time and confirmations from the node.
    let height = tokio::task::spawn_blocking(|| stack.chain().mine(1, stack.miner()))
        .await
        .unwrap();
    let r = history(&k, |r| r["transactions"][0]["block_height"] == height).await;
    let info = stack.node("getrawtransaction", &[&t1, "true"]);
    let block_hash = info["blockhash"].as_str().unwrap().to_string();
    let block = stack.node("getblock", &[&block_hash]);
    let t = &r["transactions"][0];
    assert_eq!(t["timestamp"], block["time"]);
    assert_eq!(t["confirmations"], 1);
    assert_eq!(r["current_block"], height);
    assert_fields(t, &e1);

    // A reorg takes the block away: the node invalidates it, keeps t1 out of the new blocks
    // (prioritisetransaction with a huge negative fee delta), and mines a longer chain; ElectrumX
    // follows, and kdfd's entry moves back to unconfirmed. Released and mined again, it is
    // confirmed in the new chain.
    stack.node("invalidateblock", &[&block_hash]);
    stack.node("prioritisetransaction", &[&t1, "0", "-100000000"]);
    let reorg_tip = tokio::task::spawn_blocking(|| stack.chain().mine(2, stack.miner()))
        .await
        .unwrap();
    assert_eq!(reorg_tip, height + 1, "the new chain is one block longer");
    let r = history(&k, |r| {
        r["transactions"][0]["block_height"] == 0 && r["current_block"] == reorg_tip
    })
    .await;
    assert_eq!(r["transactions"][0]["tx_hash"], t1.as_str());
    assert_eq!(r["transactions"][0]["confirmations"], 0);
    stack.node("prioritisetransaction", &[&t1, "0", "100000000"]);
    let height = tokio::task::spawn_blocking(|| stack.chain().mine(1, stack.miner()))
        .await
        .unwrap();
    let r = history(&k, |r| r["transactions"][0]["block_height"] == height).await;
    assert_eq!(r["transactions"][0]["confirmations"], 1);

    // A second payment sits unmined on top.
    let t2 = fund("0.25").await.unwrap();
    let r = history(&k, |r| r["total"] == 2).await;
    assert_eq!(r["transactions"][0]["tx_hash"], t2.as_str());
    assert_fields(&r["transactions"][0], &expected(stack, &t2, &me));
    assert_eq!(r["transactions"][1]["tx_hash"], t1.as_str());
    drop(k);

    // Restart: the database answers at once with the same entries.
    let k = start_kdfd(db.path());
    let (_, v) = k.post(&activate).await;
    assert_eq!(v["result"], "success", "{v}");
    let again = history(&k, |r| r["total"] == 2).await;
    assert_eq!(again["transactions"], r["transactions"]);
    stack.stop();
}
