//! What the Komodo Wallet's SDK sends, built as the SDK builds it (docs: kdf-wallet-compat.md 0.1,
//! 2.2, 4), plus a raw SSE reader and the wallet's expected addresses. Included by
//! tests/sdk_replay.rs (a module of tests/support).
#![allow(dead_code)]

use kdfd::coins::{AddressFormat, Registry};
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

/// Sign-in to an existing wallet: the SDK sends name, password and mode, never the mnemonic.
pub fn sign_in<'a>(l: &Login<'a>) -> Login<'a> {
    Login {
        name: l.name,
        password: l.password,
        hd: l.hd,
        passphrase: None,
        register: false,
    }
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
    let script = if conf.address_format == AddressFormat::Segwit {
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

pub use kdfd_testkit::sse::Sse;
