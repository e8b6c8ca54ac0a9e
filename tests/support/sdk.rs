//! What the Komodo Wallet's SDK sends, built as the SDK builds it (docs: kdf-wallet-compat.md 0.1,
//! 2.2, 4), plus a raw SSE reader and the wallet's expected addresses. Included by
//! tests/sdk_replay.rs (a module of tests/support).
#![allow(dead_code)]

use kdfd::coins::Registry;
use kdfd::crypto::hd::{address_for, derive_pubkeys, Chain, CoinPath, HdSeed};
use kdfd::crypto::{self, KeyPair};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A 32-character rpc_password like the SDK's `generatePasswordSecure(32)`.
pub const RPC_PASS: &str = "kS9x2Lq7Vb4Zr8Tn3Wm6Yp1Hd5Jf0GcA";

/// A v2 request as the SDK sends it: mmrpc 2.0, params nested, never an `id`.
pub fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": RPC_PASS, "mmrpc": "2.0", "method": method, "params": params})
}

/// A legacy request: params merged at the top level, no `mmrpc`.
pub fn legacy(method: &str, extra: Value) -> Value {
    let mut v = json!({"userpass": RPC_PASS, "method": method});
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
    v
}

/// How a start logs in: `None` is the SDK's no-login start.
pub struct Login<'a> {
    pub name: &'a str,
    pub password: &'a str,
    pub hd: bool,
    /// Import/restore only: the plaintext mnemonic.
    pub passphrase: Option<&'a str>,
    /// Register (new or imported wallet).
    pub register: bool,
}

/// `encodeStartParams`: every key the SDK sends, without `coins` (they come from MM_COINS_PATH).
pub fn start_conf(port: u16, dbdir: &Path, login: Option<&Login>) -> Value {
    let mut c = json!({
        "mm2": 1, "allow_weak_password": true, "rpc_password": RPC_PASS, "netid": 8762,
        "gui": "komodo-defi-flutter-auth", "dbdir": dbdir, "userhome": dbdir.parent(),
        "rpcip": "127.0.0.1", "rpcport": port, "rpc_local_only": true, "https": false,
        "enable_hd": false, "allow_registrations": false,
        "seednodes": ["seed01.kmdefi.net", "seed02.kmdefi.net"], "disable_p2p": false,
        "i_am_seed": false, "is_bootstrap_node": false,
        "event_streaming_configuration": {"access_control_allow_origin": "*",
            "worker_path": "assets/packages/komodo_defi_framework/assets/web/event_streaming_worker.js"},
    });
    if let Some(l) = login {
        c["wallet_name"] = json!(l.name);
        c["wallet_password"] = json!(l.password);
        c["enable_hd"] = json!(l.hd);
        c["allow_registrations"] = json!(l.register);
        if let Some(p) = l.passphrase {
            c["passphrase"] = json!(p);
        }
    }
    c
}

/// `task::enable_utxo::init` params in the SDK's shape (2.2), coins-file keys copied in.
pub fn enable_utxo(ticker: &str, electrum: &str, coin_conf: &Value) -> Value {
    let mut ap = json!({
        "requires_notarization": false, "priv_key_policy": "ContextPrivKey",
        "min_addresses_number": 1, "scan_policy": "scan_if_new_wallet", "gap_limit": 20,
        "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": electrum, "protocol": "TCP",
            "disable_cert_verification": false, "ws_url": format!("{electrum}/ws")}],
            "max_connected": 1}},
        "tx_history": true, "max_connected": 1,
    });
    for k in [
        "txversion",
        "overwintered",
        "txfee",
        "pubtype",
        "p2shtype",
        "wiftype",
        "segwit",
        "bech32_hrp",
        "estimate_fee_mode",
        "address_format",
    ] {
        if let Some(v) = coin_conf.get(k) {
            ap[k] = v.clone();
        }
    }
    json!({"ticker": ticker, "activation_params": ap})
}

/// The shipped coins file's entry for `ticker`.
pub fn coin_entry(coins: &Value, ticker: &str) -> Value {
    coins
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["coin"] == ticker)
        .cloned()
        .unwrap()
}

/// One coin's enabled address (HD: account 0 external 0) and its Electrum scripthash.
#[derive(Debug, Clone, PartialEq)]
pub struct Addr {
    pub address: String,
    pub scripthash: String,
    pub script: Vec<u8>,
}

/// The enabled address of `ticker` for a mnemonic, computed with the crate's tested crypto.
pub fn expected_addr(reg: &Registry, ticker: &str, mnemonic: &str, hd: bool) -> Addr {
    let conf = reg.get(ticker).unwrap();
    let pk = if hd {
        let seed = HdSeed::from_mnemonic(mnemonic).unwrap();
        let xpub = seed
            .account_xpub(&CoinPath::of_coin(&conf).unwrap(), 0)
            .unwrap();
        derive_pubkeys(&xpub, Chain::External, 0..1).unwrap()[0]
    } else {
        KeyPair::from_passphrase(mnemonic).unwrap().public_key()
    };
    let address = address_for(&conf, &pk).unwrap();
    let h = {
        use bitcoin::hashes::Hash;
        bitcoin::hashes::hash160::Hash::hash(&pk).to_byte_array()
    };
    let script = if address.starts_with("bc1") {
        crypto::p2wpkh_script(&h)
    } else {
        crypto::p2pkh_script(&h)
    };
    Addr {
        address,
        scripthash: crypto::scripthash(&script),
        script,
    }
}

/// A raw SSE connection (chunked HTTP/1.1 decoded by hand, so exact frame bytes are seen).
pub struct Sse {
    sock: TcpStream,
    pub status: u16,
    pub head: String,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl Sse {
    pub async fn open(addr: SocketAddr, target: &str) -> Sse {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let end = loop {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
                .await
                .expect("SSE head in time")
                .unwrap();
            assert!(n > 0, "closed before the head");
            raw.extend_from_slice(&buf[..n]);
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = String::from_utf8(raw[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        Sse {
            sock,
            status,
            head,
            raw: raw[end..].to_vec(),
            body: Vec::new(),
        }
    }

    fn dechunk(&mut self) {
        while let Some(p) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size =
                usize::from_str_radix(std::str::from_utf8(&self.raw[..p]).unwrap(), 16).unwrap();
            if size == 0 || self.raw.len() < p + 2 + size + 2 {
                return;
            }
            self.body.extend_from_slice(&self.raw[p + 2..p + 2 + size]);
            self.raw.drain(..p + 2 + size + 2);
        }
    }

    /// The next `\n\n`-terminated block (a frame or a comment).
    pub async fn next(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.dechunk();
            if let Some(p) = self.body.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..p + 2).collect();
                return Some(String::from_utf8(block).unwrap());
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.sock.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next data frame whose `_type` is `ty`, parsed; comments and other frames skipped.
    pub async fn frame(&mut self, ty: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let block = self
                .next(left)
                .await
                .unwrap_or_else(|| panic!("no {ty} frame"));
            if let Some(json) = block.strip_prefix("data: ") {
                assert!(json.ends_with(" \n\n"), "KDF's frame ending: {block:?}");
                let v: Value = serde_json::from_str(json.trim_end()).unwrap();
                if v["_type"] == ty {
                    return v;
                }
            }
        }
    }
}
