//! kdfd's test kit, shared by the integration tests (`tests/`, through the `tests/support` shim)
//! and the examples (`examples/bench`, `examples/loadgen`):
//!
//! - [`Kdfd`] / [`Launch`]: the one launcher of the real kdfd binary (temp dir, config, ready line);
//! - [`electrum_fake`]: an in-process fake Electrum server;
//! - [`anvil`]: a real anvil EVM node and small in-process HTTP servers (counting proxy, fakes);
//! - [`model`]: the model of kdfd's documented answers (bad-input corpus and property tests);
//! - [`history_common`]: hand-built transactions for the history tests;
//! - [`load`]: the load engine behind `examples/loadgen` (also driven by `tests/load.rs` and
//!   `examples/bench`);
//! - the shared constants and config builders below.

pub mod anvil;
pub mod electrum_fake;
pub mod history_common;
mod launch;
pub mod load;
pub mod model;
pub mod sse;

pub use launch::{kdfd_bin_near_exe, Kdfd, Launch, Spawned, Tuning};

use serde_json::{json, Value};

/// The rpc_password of every test config (passes KDF's policy).
pub const USERPASS: &str = "Rpc!Secret42x";
/// The wallet passphrase of every test config (KDF's "bob passphrase" vectors).
pub const PASSPHRASE: &str = "bob passphrase";
/// bob's address for pubtype 60 coins (RICK, MORTY, DOC, MARTY, KMD).
pub const BOB_R_ADDRESS: &str = "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD";

/// A config with the test userpass and passphrase on a free port; coins inline.
pub fn base_conf(coins: Value) -> Value {
    json!({
        "gui": "kdfd-test",
        "netid": 9998,
        "passphrase": PASSPHRASE,
        "rpc_password": USERPASS,
        "rpcport": 0,
        "coins": coins,
    })
}

/// The shipped coins file (the repository's `coins`) as JSON.
pub fn shipped_coins() -> Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../coins"))
        .expect("coins file");
    serde_json::from_str(&text).expect("coins file is JSON")
}

/// `n` test-only UTXO coins named T0..T{n-1} (pubtype 60, like RICK).
pub fn test_coins(n: usize) -> Value {
    prefixed_coins("T", n)
}

/// `n` UTXO coins named `{prefix}0..{prefix}{n-1}` (pubtype 60, like RICK).
pub fn prefixed_coins(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(
                |i| json!({"coin": format!("{prefix}{i}"), "mm2": 1, "protocol": {"type": "UTXO"}}),
            )
            .collect(),
    )
}

/// True when every slot of a batch answer is a successful activation.
pub fn all_activated(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|slots| slots.iter().all(|s| s["result"] == "success"))
}

/// The tickers of the shipped coins file.
pub fn shipped_tickers() -> Vec<String> {
    shipped_coins()
        .as_array()
        .expect("coins array")
        .iter()
        .filter_map(|c| c["coin"].as_str().map(String::from))
        .collect()
}

/// A legacy request with the test userpass.
pub fn req(method: &str, extra: Value) -> Value {
    let mut v = json!({"userpass": USERPASS, "method": method});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

/// Electrum scripthashes of bob's key: (P2PKH, P2PK) — computed with the crate's own crypto,
/// whose vectors are unit-tested against KDF's.
pub fn bob_scripthashes() -> (String, String) {
    let k = kdfd::crypto::KeyPair::from_passphrase(PASSPHRASE).expect("key");
    (
        kdfd::crypto::scripthash(&kdfd::crypto::p2pkh_script(&k.hash160())),
        kdfd::crypto::scripthash(&kdfd::crypto::p2pk_script(&k.public_key())),
    )
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM...).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
