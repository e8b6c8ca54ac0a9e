//! Wallet helpers for the real-chain suites: v2 requests and task polling against kdfd, HD
//! addresses derived with kdfd's own library, and the node's view of a transaction (inputs,
//! outputs, fee) to judge what kdfd reported.

use super::{post, tail, Stack, HTTP_LIMIT};
use crate::support::{Kdfd, USERPASS};
use kdfd::coins::CoinConf;
use kdfd::crypto::hd::{derive_pubkeys, Chain, HdSeed};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The regtest coins fixture entry of `ticker` as kdfd parses it.
pub fn fixture_conf(ticker: &str) -> CoinConf {
    let text = std::fs::read_to_string(super::COINS_FIXTURE).expect("coins fixture");
    let all: Value = serde_json::from_str(&text).expect("coins fixture is JSON");
    let entry = all
        .as_array()
        .and_then(|a| a.iter().find(|c| c["coin"] == ticker))
        .unwrap_or_else(|| panic!("{ticker} is not in the fixture"));
    CoinConf::from_json(entry).expect("fixture entry parses")
}

/// The address `account 0 / chain / index` of `mnemonic` for `conf` (its `derivation_path` and
/// `address_format`), derived from the account xpub as a watch-only wallet would.
pub fn hd_address(conf: &CoinConf, mnemonic: &str, chain: Chain, index: u32) -> String {
    let seed = HdSeed::from_mnemonic(mnemonic).expect("valid mnemonic");
    let path = conf.coin_path().expect("fixture derivation_path");
    let xpub = seed.account_xpub(&path, 0).expect("account xpub");
    let pk = derive_pubkeys(&xpub, chain, index..index + 1).expect("derive")[0];
    conf.address_of(&pk).expect("address")
}

/// The derivation path text of `account 0 / chain / index`.
pub fn hd_path(conf: &CoinConf, chain: Chain, index: u32) -> String {
    let path = conf.coin_path().expect("fixture derivation_path");
    format!("{path}/0'/{}/{index}", chain.index())
}

/// A v2 request with the test userpass.
pub fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params})
}

/// A v2 call that must succeed: its `result`.
#[track_caller]
pub fn v2_ok(k: &Kdfd, method: &str, params: Value) -> Value {
    let (status, v) = post(k, &v2(method, params));
    if status != 200 || v.get("result").is_none() {
        panic!(
            "{method}: {status} {v}\n--- kdfd log tail ---\n{}",
            tail(&k.stderr(), 40)
        );
    }
    v["result"].clone()
}

/// `task::KIND::init` then `status` polling until the task ends; the final `result`.
#[track_caller]
pub fn run_task(k: &Kdfd, kind: &str, params: Value) -> Value {
    let id = v2_ok(k, &format!("task::{kind}::init"), params)["task_id"]
        .as_u64()
        .expect("task_id");
    let deadline = Instant::now() + HTTP_LIMIT;
    loop {
        let r = v2_ok(
            k,
            &format!("task::{kind}::status"),
            json!({"task_id": id, "forget_if_finished": false}),
        );
        if r["status"] != "InProgress" {
            return r;
        }
        if Instant::now() > deadline {
            panic!(
                "task::{kind} {id} still in progress: {r}\n--- kdfd log tail ---\n{}",
                tail(&k.stderr(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `task::enable_utxo` with the stack's ElectrumX; panics unless it ends `Ok`; its `details`.
#[track_caller]
pub fn enable_utxo_task(k: &Kdfd, stack: &Stack, ticker: &str) -> Value {
    let r = run_task(
        k,
        "enable_utxo",
        json!({"ticker": ticker, "activation_params": {
            "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": stack.tcp()}]}}}}),
    );
    assert_eq!(r["status"], "Ok", "task::enable_utxo {ticker}: {r}");
    r["details"].clone()
}

/// A decimal coin amount (kdfd's string or the node's JSON number) in satoshis.
pub fn sats(v: &Value) -> i64 {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not an amount: {other}"),
    };
    let d: rust_decimal::Decimal = text
        .parse()
        .or_else(|_| rust_decimal::Decimal::from_scientific(&text))
        .unwrap_or_else(|e| panic!("amount {text}: {e}"));
    let s = d * rust_decimal::Decimal::from(100_000_000);
    assert!(s.fract().is_zero(), "{text} has sub-satoshi digits");
    rust_decimal::prelude::ToPrimitive::to_i64(&s).expect("fits i64")
}

/// One output as the node decodes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOut {
    pub n: u32,
    pub sats: i64,
    pub address: String,
}

/// A transaction as the node sees it (`getrawtransaction TXID 1`, prevouts looked up the same
/// way: the kit runs the node with `txindex=1`).
#[derive(Debug, Clone)]
pub struct NodeTx {
    pub txid: String,
    pub confirmations: u64,
    pub vsize: i64,
    pub inputs: Vec<NodeOut>,
    pub outputs: Vec<NodeOut>,
    pub raw: Value,
}

impl NodeTx {
    /// From the node's verbose decoding and the prevouts of its inputs, in input order.
    pub fn new(txid: &str, raw: Value, inputs: Vec<NodeOut>) -> NodeTx {
        let outputs = raw["vout"]
            .as_array()
            .expect("vout")
            .iter()
            .map(node_out)
            .collect();
        NodeTx {
            txid: txid.to_string(),
            confirmations: raw["confirmations"].as_u64().unwrap_or(0),
            vsize: raw["vsize"].as_i64().expect("vsize"),
            inputs,
            outputs,
            raw,
        }
    }

    pub fn fee(&self) -> i64 {
        self.inputs.iter().map(|o| o.sats).sum::<i64>()
            - self.outputs.iter().map(|o| o.sats).sum::<i64>()
    }

    /// The sum of the outputs paying `address`.
    pub fn paid_to(&self, address: &str) -> i64 {
        self.outputs
            .iter()
            .filter(|o| o.address == address)
            .map(|o| o.sats)
            .sum()
    }
}

fn node_out(o: &Value) -> NodeOut {
    let spk = &o["scriptPubKey"];
    let address = spk["address"]
        .as_str()
        .or_else(|| spk["addresses"][0].as_str())
        .unwrap_or_default()
        .to_string();
    NodeOut {
        n: o["n"].as_u64().expect("vout n") as u32,
        sats: sats(&o["value"]),
        address,
    }
}

/// The node's decoding of `txid` with its inputs' prevouts.
pub fn node_tx(stack: &Stack, txid: &str) -> NodeTx {
    let raw = stack.node("getrawtransaction", &[txid, "1"]);
    assert_eq!(raw["txid"], txid, "getrawtransaction {txid}: {raw}");
    let inputs = raw["vin"]
        .as_array()
        .expect("vin")
        .iter()
        .map(|i| {
            let prev_id = i["txid"].as_str().expect("vin txid");
            let n = i["vout"].as_u64().expect("vin vout") as usize;
            let prev = stack.node("getrawtransaction", &[prev_id, "1"]);
            node_out(&prev["vout"][n])
        })
        .collect();
    NodeTx::new(txid, raw, inputs)
}

/// kdfd's `TransactionDetails` amounts in satoshis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub spent_by_me: i64,
    pub received_by_me: i64,
    pub my_balance_change: i64,
    pub total_amount: i64,
    pub fee: i64,
}

impl Reported {
    pub fn of(details: &Value, ticker: &str) -> Reported {
        assert_eq!(details["coin"], ticker, "{details}");
        assert_eq!(details["fee_details"]["type"], "Utxo", "{details}");
        assert_eq!(details["fee_details"]["coin"], ticker, "{details}");
        Reported {
            spent_by_me: sats(&details["spent_by_me"]),
            received_by_me: sats(&details["received_by_me"]),
            my_balance_change: sats(&details["my_balance_change"]),
            total_amount: sats(&details["total_amount"]),
            fee: sats(&details["fee_details"]["amount"]),
        }
    }
}

/// What a legacy `send_raw_transaction` of `tx_hex` answers.
pub fn broadcast(k: &Kdfd, ticker: &str, tx_hex: &str) -> (u16, Value) {
    post(
        k,
        &super::req(
            "send_raw_transaction",
            json!({"coin": ticker, "tx_hex": tx_hex}),
        ),
    )
}

/// Broadcasts kdfd's withdrawal `details` through kdfd (twice while unconfirmed: the same hash
/// both times), mines it, and checks with the node that it spends only `from`'s outputs, pays
/// `to` exactly `amount` (everything but the fee when `None`: `max`), sends the change back to
/// `from`, and that every number kdfd reported matches. Returns the node's view.
#[track_caller]
pub fn check_sent(
    stack: &Stack,
    k: &Kdfd,
    details: &Value,
    from: &str,
    to: &str,
    amount: Option<i64>,
) -> NodeTx {
    let ticker = details["coin"].as_str().expect("coin").to_string();
    let r = Reported::of(details, &ticker);
    assert_eq!(details["from"], json!([from]), "{details}");
    assert_eq!(details["to"], json!([to]), "{details}");
    let hash = details["tx_hash"].as_str().expect("tx_hash");
    let hex = details["tx_hex"].as_str().expect("tx_hex");
    for attempt in ["first", "again while in the mempool"] {
        assert_eq!(
            broadcast(k, &ticker, hex),
            (200, json!({ "tx_hash": hash })),
            "send_raw_transaction ({attempt})\n--- kdfd log tail ---\n{}",
            tail(&k.stderr(), 30)
        );
    }
    stack.chain().mine(1, stack.miner());
    let tx = node_tx(stack, hash);
    assert!(tx.confirmations >= 1, "{hash} mined: {}", tx.raw);
    assert!(
        tx.inputs.iter().all(|i| i.address == from),
        "{ticker}: every input is {from}'s: {:?}",
        tx.inputs
    );
    let spent: i64 = tx.inputs.iter().map(|i| i.sats).sum();
    let change = tx.paid_to(from);
    let paid = tx.paid_to(to);
    assert_eq!(r.spent_by_me, spent, "{ticker} spent_by_me");
    assert_eq!(r.total_amount, spent, "{ticker} total_amount = spent_by_me");
    assert_eq!(r.received_by_me, change, "{ticker} received_by_me = change");
    assert_eq!(
        r.my_balance_change,
        change - spent,
        "{ticker} my_balance_change"
    );
    assert_eq!(
        r.fee,
        tx.fee(),
        "{ticker} fee_details.amount = inputs - outputs"
    );
    assert_eq!(
        paid,
        amount.unwrap_or(spent - r.fee),
        "{ticker} paid to {to}"
    );
    assert_eq!(
        tx.outputs.len(),
        1 + usize::from(change > 0),
        "{ticker}: recipient and change only: {:?}",
        tx.outputs
    );
    // The fixture's txfee is 1000 sat/kB of estimated (virtual) size, estimated with 72-byte
    // signatures: at least the real vsize (the relay minimum), at most one byte per input more.
    let slack = tx.inputs.len() as i64;
    assert!(
        tx.vsize <= r.fee && r.fee <= tx.vsize + slack,
        "{ticker}: fee {} for vsize {} with {slack} input(s)",
        r.fee,
        tx.vsize
    );
    // The outputs are unspent and hold what the node decoded.
    for o in &tx.outputs {
        let utxo = stack.node("gettxout", &[hash, &o.n.to_string()]);
        assert_eq!(
            sats(&utxo["value"]),
            o.sats,
            "gettxout {hash} {}: {utxo}",
            o.n
        );
    }
    tx
}
