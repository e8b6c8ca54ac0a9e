//! The SDK replay's real-chain coin: the regtest LTC-segwit entry activated against the real
//! ElectrumX of a Litecoin regtest stack (tests/support/regtest.rs). The node pays the wallet,
//! mines, and judges what kdfd answers: balances, BALANCE events, history entries, withdrawals.
//! A module of tests/support, used by tests/sdk_replay.rs.
#![allow(dead_code)]

use super::hold_proxy::HoldProxy;
use super::node_rpc::NodeRpc;
use super::regtest::wallet::{sats, NodeOut, NodeTx, Reported};
use super::regtest::{Stack, COINS_FIXTURE, INDEX_LIMIT};
use super::sdk::*;
use super::sdk_run::*;
use super::Kdfd;
use kdfd::coins::format_amount;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::task::block_in_place;

/// The replay's real-chain coin: LTC-segwit's shape with regtest prefixes (fixture entry).
pub const REAL: &str = "LTCR-segwit";

/// The regtest fixture's entry of [`REAL`], added to the SDK's coins file.
pub fn real_entry() -> Value {
    let text = std::fs::read_to_string(COINS_FIXTURE).expect("regtest coins fixture");
    let all: Value = serde_json::from_str(&text).expect("fixture is JSON");
    coin_entry(&all, REAL)
}

pub fn amount(s: i64) -> String {
    format_amount(i128::from(s), 8)
}

/// The regtest node as the replay uses it: direct JSON-RPC (tests/support/node_rpc.rs), each
/// chain change under the stack's chain lock and followed until ElectrumX has it; kdfd reaches
/// ElectrumX through `proxy`, which can hold the history sync's downloads back.
pub struct Node<'a> {
    pub stack: &'a Stack,
    pub proxy: HoldProxy,
    rpc: NodeRpc,
}

impl Node<'_> {
    /// The node of `stack`, with mature coins to pay from (regtest coinbases need 100 blocks).
    pub async fn new(stack: &Stack) -> Node<'_> {
        let node = Node {
            stack,
            proxy: HoldProxy::start(stack.tcp(), "blockchain.transaction.get").await,
            rpc: NodeRpc::of(stack),
        };
        node.generate(101);
        node
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.rpc.call(method, params)
    }

    /// `sendtoaddress` from the node's wallet, unconfirmed; the txid.
    pub fn pay(&self, to: &str, coins: &str) -> String {
        let _chain = self.stack.chain();
        let txid = self.call("sendtoaddress", json!([to, coins]));
        txid.as_str().expect("txid").to_string()
    }

    /// One block, once ElectrumX serves it; the new height.
    pub fn mine(&self) -> u64 {
        self.generate(1)
    }

    fn generate(&self, n: u32) -> u64 {
        let _chain = self.stack.chain();
        self.call("generatetoaddress", json!([n, self.stack.miner()]));
        let height = self.height();
        block_in_place(|| self.rpc.wait_electrum(height));
        height
    }

    pub fn height(&self) -> u64 {
        self.call("getblockcount", json!([]))
            .as_u64()
            .expect("height")
    }

    pub fn tx(&self, txid: &str) -> NodeTx {
        self.rpc.tx(txid)
    }

    /// A fresh bech32 address of the node's wallet (under the chain lock: key generation races
    /// a concurrent `sendtoaddress`, see tests/e2e_wallet.rs).
    pub fn new_address(&self) -> String {
        let _chain = self.stack.chain();
        let a = self.call("getnewaddress", json!(["", "bech32"]));
        a.as_str().expect("getnewaddress").to_string()
    }

    /// The confirmed unspent total the node's UTXO set holds for `address`.
    pub fn utxo_total(&self, address: &str) -> i64 {
        let v = self.call(
            "scantxoutset",
            json!(["start", [format!("addr({address})")]]),
        );
        assert_eq!(v["success"], true, "scantxoutset {address}: {v}");
        sats(&v["total_amount"])
    }
}

/// What the real coin's wallet holds across its sessions: its address, every transaction that
/// touched it (oldest first) and its balance, all as the node made them.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub address: String,
    pub txids: Vec<String>,
    pub balance: i64,
}

impl Ledger {
    /// The node pays `coins` to the wallet; returns the txid and the satoshis it paid.
    pub fn receive(&mut self, node: &Node, coins: &str) -> (String, i64) {
        let txid = node.pay(&self.address, coins);
        let paid = node.tx(&txid).paid_to(&self.address);
        assert_eq!(amount(paid), coins, "the node paid {coins}");
        self.txids.push(txid.clone());
        self.balance += paid;
        (txid, paid)
    }
}

/// The wallet's balance of [`REAL`] as the SDK reads it (HD `task::account_balance` with status
/// every 500 ms, Iguana `my_balance`): (address, spendable sats).
pub async fn sdk_balance(k: &Kdfd, hd: bool) -> (String, i64) {
    if hd {
        let p = json!({"coin": REAL, "account_index": 0});
        let (_, d) = task(k, "account_balance", p, Duration::from_millis(500)).await;
        assert_eq!(d["account_index"], 0, "{d}");
        assert_eq!(d["total_balance"][REAL]["unspendable"], "0", "{d}");
        let a = d["addresses"][0]["address"].as_str().expect("address");
        (a.to_string(), sats(&d["total_balance"][REAL]["spendable"]))
    } else {
        let v = ok(k, legacy("my_balance", json!({"coin": REAL}))).await;
        assert_eq!(v["unspendable_balance"], "0", "{v}");
        (
            v["address"].as_str().expect("address").to_string(),
            sats(&v["balance"]),
        )
    }
}

/// The activation's `wallet_balance` of [`REAL`]: the ledger's address and balance, at the
/// node's height.
pub fn check_activation(d: &Value, node: &Node, ledger: &Ledger, hd: bool) {
    assert_eq!(d["ticker"], REAL, "{d}");
    assert_eq!(d["current_block"], node.height(), "{d}");
    let wb = &d["wallet_balance"];
    let (addr, bal) = if hd {
        assert_eq!(wb["wallet_type"], "HD", "{d}");
        let a0 = &wb["accounts"][0]["addresses"][0];
        (&a0["address"], &a0["balance"][REAL]["spendable"])
    } else {
        assert_eq!(wb["wallet_type"], "Iguana", "{d}");
        (&wb["address"], &wb["balance"][REAL]["spendable"])
    };
    assert_eq!(addr, ledger.address.as_str(), "{d}");
    assert_eq!(bal, &json!(amount(ledger.balance)), "{d}");
}

/// `my_tx_history` v2 as the SDK asks for the first page (HD: target account 0).
pub async fn history_page(k: &Kdfd, coin: &str, hd: bool) -> Value {
    let mut p = json!({"coin": coin, "limit": 10, "paging_options": {"PageNumber": 1}});
    if hd {
        p["target"] = json!({"type": "account_id", "account_id": 0});
    }
    ok(k, v2("my_tx_history", p)).await["result"].clone()
}

/// The txids of a history page, newest first.
pub fn page_txids(r: &Value) -> Vec<String> {
    r["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .map(|t| t["tx_hash"].as_str().expect("tx_hash").to_string())
        .collect()
}

/// Right after sign-in and activation, before the sync has caught up (the proxy holds its
/// transaction downloads back): the history is the last session's (`before`), answered from
/// the database, each entry right at the node's current height; then the sync may go on.
pub async fn history_from_db(k: &Kdfd, node: &Node<'_>, before: &Ledger, hd: bool) {
    let r = history_page(k, REAL, hd).await;
    node.proxy.hold(false);
    let tip = node.height();
    let mut want = before.txids.clone();
    want.reverse();
    assert_eq!(page_txids(&r), want, "the database's entries at once: {r}");
    assert_eq!(r["total"], want.len(), "{r}");
    assert_ne!(r["sync_status"]["state"], "Finished", "{r}");
    for t in r["transactions"].as_array().unwrap() {
        let id = t["tx_hash"].as_str().unwrap();
        check_entry(t, &node.tx(id), &before.address, tip);
    }
}

/// Polls the history until it lists exactly the ledger's transactions (newest first), synced,
/// each at the node's confirmations; then checks every entry against the node.
pub async fn check_history(k: &Kdfd, node: &Node<'_>, ledger: &Ledger, hd: bool) -> Value {
    let want: Vec<String> = ledger.txids.iter().rev().cloned().collect();
    let deadline = Instant::now() + INDEX_LIMIT;
    let r = loop {
        let r = history_page(k, REAL, hd).await;
        let mined = r["transactions"]
            .as_array()
            .is_some_and(|ts| ts.iter().all(|t| t["confirmations"].as_u64() > Some(0)));
        if page_txids(&r) == want && mined && r["sync_status"]["state"] == "Finished" {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "history never showed {want:?}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r["total"], want.len(), "{r}");
    let tip = node.height();
    assert_eq!(r["current_block"], tip, "{r}");
    for t in r["transactions"].as_array().unwrap() {
        check_entry(
            t,
            &node.tx(t["tx_hash"].as_str().unwrap()),
            &ledger.address,
            tip,
        );
    }
    r
}

/// One history entry against the node's view of the mined transaction, with `me` the wallet
/// and `tip` the node's height.
pub fn check_entry(t: &Value, tx: &NodeTx, me: &str, tip: u64) {
    check_tx(t, REAL, true);
    let spent: i64 = tx
        .inputs
        .iter()
        .filter(|i| i.address == me)
        .map(|i| i.sats)
        .sum();
    let received = tx.paid_to(me);
    assert!(tx.confirmations > 0, "mined: {}", tx.raw);
    assert_eq!(t["tx_hash"], tx.txid.as_str(), "{t}");
    assert_eq!(t["internal_id"], tx.txid.as_str(), "{t}");
    assert_eq!(t["spent_by_me"], amount(spent), "{t}");
    assert_eq!(t["received_by_me"], amount(received), "{t}");
    assert_eq!(t["my_balance_change"], amount(received - spent), "{t}");
    assert_eq!(t["fee_details"]["amount"], amount(tx.fee()), "{t}");
    assert_eq!(t["confirmations"], tx.confirmations, "{t}");
    assert_eq!(t["block_height"], tip + 1 - tx.confirmations, "{t}");
    assert_eq!(t["timestamp"], tx.raw["blocktime"], "{t}");
    assert_eq!(t["from"], json!(unique(tx.inputs.iter())), "{t}");
    assert_eq!(t["to"], json!(unique(tx.outputs.iter())), "{t}");
}

/// The distinct addresses of some outputs, in order of first appearance.
fn unique<'a>(outs: impl Iterator<Item = &'a NodeOut>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for o in outs {
        if !seen.contains(&o.address.as_str()) {
            seen.push(o.address.as_str());
        }
    }
    seen
}

/// The GUI's send on the real chain: `validateaddress`, `task::withdraw` of `coins` to a fresh
/// node address, `send_raw_transaction` through kdfd to the real ElectrumX, mined; the node
/// then confirms every amount kdfd showed in the preview. Updates the ledger.
pub async fn send_checked(k: &Kdfd, node: &Node<'_>, ledger: &mut Ledger, coins: &str) {
    let to = node.new_address();
    let v = ok(
        k,
        legacy("validateaddress", json!({"coin": REAL, "address": to})),
    )
    .await;
    assert_eq!(v["result"], json!({"is_valid": true}), "{to}");
    let w = json!({"coin": REAL, "to": to, "amount": coins});
    let (_, d) = task(k, "withdraw", w, Duration::from_millis(500)).await;
    check_tx(&d, REAL, false);
    assert_eq!(
        (&d["from"], &d["to"]),
        (&json!([ledger.address]), &json!([to])),
        "{d}"
    );
    let r = Reported::of(&d, REAL);
    let hash = d["tx_hash"].as_str().unwrap().to_string();
    let v = ok(
        k,
        legacy(
            "send_raw_transaction",
            json!({"coin": REAL, "tx_hex": d["tx_hex"]}),
        ),
    )
    .await;
    assert_eq!(
        v,
        json!({"tx_hash": hash}),
        "ElectrumX relays the node's txid"
    );
    let height = node.mine();

    let tx = node.tx(&hash);
    assert_eq!(
        tx.raw["hex"], d["tx_hex"],
        "the node mined the bytes kdfd signed"
    );
    assert_eq!((tx.confirmations, node.height()), (1, height), "{}", tx.raw);
    assert!(
        tx.inputs.iter().all(|i| i.address == ledger.address),
        "{:?}",
        tx.inputs
    );
    let spent: i64 = tx.inputs.iter().map(|i| i.sats).sum();
    let paid = tx.paid_to(&to);
    let change = tx.paid_to(&ledger.address);
    assert_eq!(amount(paid), coins, "paid to the node");
    assert_eq!(r.spent_by_me, spent, "spent_by_me");
    assert_eq!(r.received_by_me, change, "received_by_me is the change");
    assert_eq!(r.my_balance_change, change - spent, "my_balance_change");
    assert_eq!(r.fee, tx.fee(), "fee_details.amount is inputs - outputs");
    for o in &tx.outputs {
        let utxo = node.call("gettxout", json!([hash, o.n]));
        assert_eq!(
            sats(&utxo["value"]),
            o.sats,
            "gettxout {hash} {}: {utxo}",
            o.n
        );
        assert_eq!(utxo["confirmations"], 1, "{utxo}");
    }
    let received = node.call("getreceivedbyaddress", json!([to]));
    assert_eq!(amount(sats(&received)), coins, "getreceivedbyaddress {to}");
    ledger.txids.push(hash);
    ledger.balance += change - spent;
}

/// The balance the SDK reads equals the ledger and the node's UTXO set (once kdfd has caught up
/// with the last block).
pub async fn check_balance(k: &Kdfd, node: &Node<'_>, ledger: &Ledger, hd: bool) {
    assert_eq!(
        node.utxo_total(&ledger.address),
        ledger.balance,
        "the node's UTXO set"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (addr, bal) = sdk_balance(k, hd).await;
        assert_eq!(addr, ledger.address);
        if bal == ledger.balance {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "balance {bal}, the node says {}",
            ledger.balance
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
