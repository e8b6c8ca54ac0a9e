//! Direct JSON-RPC to a regtest stack's node, and ElectrumX's tip, from Rust. The kit's Python
//! helper costs about half a second per call on a loaded 2-core box (interpreter start), which a
//! test making dozens of node calls cannot afford. Reads the stack's `$ER_RUN_DIR/env`.
#![allow(dead_code)]

use super::regtest::wallet::{sats, NodeOut, NodeTx};
use super::regtest::Stack;
use bitcoin::base64::{engine::general_purpose::STANDARD, Engine};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub struct NodeRpc {
    port: String,
    auth: String,
    wallet: String,
    electrum: String,
}

impl NodeRpc {
    pub fn of(stack: &Stack) -> NodeRpc {
        let env = std::fs::read_to_string(stack.run_dir.join("env")).expect("the stack's env");
        let get = |k: &str| super::regtest::kv(&env, k).unwrap_or_default();
        NodeRpc {
            port: get("NODE_RPC_PORT"),
            auth: STANDARD.encode(format!(
                "{}:{}",
                get("NODE_RPC_USER"),
                get("NODE_RPC_PASSWORD")
            )),
            wallet: get("NODE_WALLET"),
            electrum: stack.tcp().to_string(),
        }
    }

    /// One HTTP POST to the node (`path` "/" or the wallet's); the parsed body.
    fn post(&self, path: &str, body: &Value) -> Value {
        let mut s = TcpStream::connect(format!("127.0.0.1:{}", self.port)).expect("node RPC");
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.to_string();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.auth,
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).expect("node answer");
        let (_, text) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        serde_json::from_str(text).unwrap_or_else(|e| panic!("node answered {raw:?}: {e}"))
    }

    fn path(&self, wallet: bool) -> String {
        if wallet && !self.wallet.is_empty() {
            format!("/wallet/{}", self.wallet)
        } else {
            "/".to_string()
        }
    }

    /// Several calls in one JSON-RPC array; their results in order (panics on any error).
    pub fn batch(&self, calls: &[(&str, Value)]) -> Vec<Value> {
        let body: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (m, p))| json!({"jsonrpc": "1.0", "id": i, "method": m, "params": p}))
            .collect();
        let wallet = calls.iter().any(|(m, _)| WALLET_CALLS.contains(m));
        let answers = self.post(&self.path(wallet), &Value::Array(body));
        let mut answers = answers.as_array().expect("a batch answer").clone();
        answers.sort_by_key(|a| a["id"].as_u64());
        for (a, (m, p)) in answers.iter().zip(calls) {
            assert!(a["error"].is_null(), "node {m} {p}: {a}");
        }
        answers.into_iter().map(|a| a["result"].clone()).collect()
    }

    pub fn call(&self, method: &str, params: Value) -> Value {
        self.batch(&[(method, params)]).remove(0)
    }

    /// A transaction as the node sees it, its inputs' prevouts fetched in one array.
    pub fn tx(&self, txid: &str) -> NodeTx {
        let raw = self.call("getrawtransaction", json!([txid, true]));
        assert_eq!(raw["txid"], txid, "getrawtransaction {txid}: {raw}");
        let vin = raw["vin"].as_array().expect("vin").clone();
        let calls: Vec<(&str, Value)> = vin
            .iter()
            .map(|i| ("getrawtransaction", json!([i["txid"], true])))
            .collect();
        let prevs = self.batch(&calls);
        let inputs = vin
            .iter()
            .zip(&prevs)
            .map(|(i, p)| node_out(&p["vout"][i["vout"].as_u64().expect("vout") as usize]))
            .collect();
        NodeTx {
            txid: txid.to_string(),
            confirmations: raw["confirmations"].as_u64().unwrap_or(0),
            vsize: raw["vsize"].as_i64().expect("vsize"),
            inputs,
            outputs: raw["vout"]
                .as_array()
                .expect("vout")
                .iter()
                .map(node_out)
                .collect(),
            raw,
        }
    }

    /// ElectrumX's tip height (a fresh connection, `server.version` first as ElectrumX wants).
    pub fn electrum_tip(&self) -> u64 {
        let s = TcpStream::connect(&self.electrum).expect("ElectrumX");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut w = s.try_clone().unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        for (id, m, p) in [
            (1, "server.version", json!(["kdfd-test", "1.4"])),
            (2, "blockchain.headers.subscribe", json!([])),
        ] {
            let req = json!({"jsonrpc": "2.0", "id": id, "method": m, "params": p});
            w.write_all(format!("{req}\n").as_bytes()).unwrap();
            line.clear();
            r.read_line(&mut line).expect("ElectrumX answer");
        }
        let v: Value = serde_json::from_str(line.trim()).expect("JSON line");
        v["result"]["height"]
            .as_u64()
            .unwrap_or_else(|| panic!("headers.subscribe: {v}"))
    }

    /// Waits until ElectrumX serves `height` (what mine.sh waits for).
    pub fn wait_electrum(&self, height: u64) {
        let deadline = Instant::now() + super::regtest::INDEX_LIMIT;
        while self.electrum_tip() < height {
            assert!(
                Instant::now() < deadline,
                "ElectrumX never reached {height}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The node methods that need the node's wallet.
const WALLET_CALLS: &[&str] = &[
    "sendtoaddress",
    "getnewaddress",
    "getreceivedbyaddress",
    "getbalance",
];

fn node_out(o: &Value) -> NodeOut {
    let spk = &o["scriptPubKey"];
    let address = spk["address"]
        .as_str()
        .or_else(|| spk["addresses"][0].as_str());
    NodeOut {
        n: o["n"].as_u64().expect("vout n") as u32,
        sats: sats(&o["value"]),
        address: address.unwrap_or_default().to_string(),
    }
}
