//! The cases of tests/bad_input_wallet.rs and what each must answer.

use super::{v2, TANK, WALLET_PW};
use crate::support::electrum_fake::FakeElectrum;
use crate::support::{bob_scripthashes, req, Kdfd};
use serde_json::{json, Value};
use std::time::Duration;

/// What a case must answer.
pub enum Want {
    /// A v2 error object, 4xx/5xx, with one of these `error_type`s.
    V2(&'static [&'static str]),
    /// A legacy 500 `{"error": ...}` containing this text.
    Legacy(&'static str),
    /// 413 `{"error": ...}`: over the body cap, refused before any handler.
    TooLarge,
}

pub struct Case {
    pub name: String,
    pub body: Value,
    pub want: Want,
}

impl Want {
    pub fn check(&self, status: u16, body: &[u8]) -> Result<(), String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("{status}, body not JSON ({e})"))?;
        let clear = v["error"].as_str().is_some_and(|e| !e.is_empty());
        let ok = match self {
            Want::V2(types) => {
                (400..600).contains(&status)
                    && v["mmrpc"] == "2.0"
                    && clear
                    && v.get("result").is_none()
                    && v["error_type"].as_str().is_some_and(|t| types.contains(&t))
            }
            Want::TooLarge => status == 413 && clear,
            Want::Legacy(needle) => {
                status == 500 && clear && v["error"].as_str().unwrap_or("").contains(needle)
            }
        };
        match ok {
            true => Ok(()),
            false => Err(format!(
                "{status} {}",
                kdfd_testkit::model::clip_str(&v.to_string(), 400)
            )),
        }
    }
}

fn case(name: impl Into<String>, body: Value, want: Want) -> Case {
    Case {
        name: name.into(),
        body,
        want,
    }
}

/// RICK and MORTY with a derivation path, NOPATH without one, BADPATH with a malformed one.
pub fn hd_coins() -> Value {
    let c = |t: &str, path: Option<&str>| {
        let mut v = json!({"coin": t, "mm2": 1, "protocol": {"type": "UTXO"}, "txversion": 4,
                           "overwintered": 1});
        if let Some(p) = path {
            v["derivation_path"] = json!(p);
        }
        v
    };
    json!([
        c("RICK", Some("m/44'/141'")),
        c("MORTY", Some("m/44'/141'")),
        c("NOPATH", None),
        c("BADPATH", Some("m/44'/x'")),
        c("BADPATH2", Some("44/141")),
    ])
}

pub fn enable_params(ticker: &str, url: &str) -> Value {
    json!({"ticker": ticker, "activation_params": {
        "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": url}]}}}})
}

pub fn enable_rick(url: &str) -> Value {
    enable_params("RICK", url)
}

/// Polls a task to its end; returns the status `result`.
pub async fn task_result(k: &Kdfd, kind: &str, init: Value) -> Value {
    let (status, v) = k.post(&v2(&format!("task::{kind}::init"), init)).await;
    assert_eq!(status, 200, "{v}");
    let id = v["result"]["task_id"].as_u64().expect("task id");
    wait_task(k, kind, id).await
}

async fn wait_task(k: &Kdfd, kind: &str, id: u64) -> Value {
    for _ in 0..500 {
        let (_, v) = k
            .post(&v2(
                &format!("task::{kind}::status"),
                json!({"task_id": id, "forget_if_finished": false}),
            ))
            .await;
        if v["result"]["status"] != "InProgress" {
            return v["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("task {id} did not finish");
}

/// A finished account_balance task, read once with `forget_if_finished`: its id.
pub async fn forgotten_task(k: &Kdfd, _url: &str) -> u64 {
    let (_, v) = k
        .post(&v2(
            "task::account_balance::init",
            json!({"coin": "RICK", "account_index": 0}),
        ))
        .await;
    let id = v["result"]["task_id"].as_u64().expect("task id");
    wait_task(k, "account_balance", id).await;
    let (s, v) = k
        .post(&v2(
            "task::account_balance::status",
            json!({"task_id": id, "forget_if_finished": true}),
        ))
        .await;
    assert_eq!(s, 200, "{v}");
    id
}

/// Wrong-typed values for a field of this kind.
fn wrong(kind: &str) -> Vec<Value> {
    let mut v = vec![json!([1, "a"]), json!({"k": "v"})];
    match kind {
        "u32" => v.extend([
            json!(true),
            json!("7"),
            json!(-1),
            json!(1.5),
            json!(u64::MAX),
        ]),
        "str" => v.extend([json!(true), json!(7), json!(null)]),
        "enum" => v.extend([json!(true), json!(7), json!("Nope"), json!(null)]),
        _ => v.extend([json!(true), json!(7), json!("wrong")]),
    }
    v
}

/// Sets `path` (dot-separated) in a clone of `base`.
fn with(base: &Value, path: &str, value: Value) -> Value {
    let mut out = base.clone();
    let mut at = &mut out;
    let keys: Vec<&str> = path.split('.').collect();
    for k in &keys[..keys.len() - 1] {
        at = &mut at[*k];
    }
    at[keys[keys.len() - 1]] = value;
    out
}

const BAD_REQ: &[&str] = &["InvalidRequest"];

pub fn hd_cases(url: &str, forgotten: u64) -> Vec<Case> {
    let mut out = Vec::new();
    // MORTY: not active, so a wrong value must not activate it.
    let base = enable_params("MORTY", url);
    let fields = [
        ("ticker", "str"),
        ("activation_params", "obj"),
        ("activation_params.mode", "obj"),
        ("activation_params.gap_limit", "u32"),
        ("activation_params.scan_policy", "enum"),
        ("activation_params.min_addresses_number", "u32"),
        ("activation_params.path_to_address", "obj"),
        ("activation_params.priv_key_policy", "policy"),
    ];
    for (field, kind) in fields {
        for bad in wrong(kind) {
            let want = match field {
                // Any JSON is read, and only "ContextPrivKey" is supported.
                "activation_params.priv_key_policy" => {
                    Want::V2(&["InvalidRequest", "CoinCreationError"])
                }
                _ => Want::V2(BAD_REQ),
            };
            out.push(case(
                format!("enable_utxo {field} = {bad}"),
                v2("task::enable_utxo::init", with(&base, field, bad)),
                want,
            ));
        }
    }
    for (field, value) in [
        ("activation_params.gap_limit", json!(u32::MAX)),
        ("activation_params.gap_limit", json!(1_000_001)),
        ("activation_params.min_addresses_number", json!(u32::MAX)),
        ("activation_params.min_addresses_number", json!(5_000_000)),
        (
            "activation_params.path_to_address",
            json!({"account_id": u32::MAX, "chain": "External", "address_id": u32::MAX}),
        ),
    ] {
        out.push(case(
            format!("enable_utxo huge {field} = {value}"),
            v2("task::enable_utxo::init", with(&base, field, value)),
            Want::V2(&["InvalidRequest", "CoinCreationError"]),
        ));
    }
    let balance = json!({"coin": "RICK", "account_index": 0});
    for (field, kind) in [("coin", "str"), ("account_index", "u32")] {
        for bad in wrong(kind) {
            out.push(case(
                format!("account_balance {field} = {bad}"),
                v2("task::account_balance::init", with(&balance, field, bad)),
                Want::V2(BAD_REQ),
            ));
        }
    }
    let addr = json!({"coin": "RICK", "account_id": 0, "chain": "External", "gap_limit": 20});
    for (field, kind) in [
        ("coin", "str"),
        ("account_id", "u32"),
        ("chain", "enum"),
        ("gap_limit", "u32"),
    ] {
        for bad in wrong(kind) {
            // null is "absent" for the optional chain and gap_limit.
            if bad.is_null() && field == "chain" {
                continue;
            }
            out.push(case(
                format!("get_new_address {field} = {bad}"),
                v2("get_new_address", with(&addr, field, bad)),
                Want::V2(BAD_REQ),
            ));
        }
    }
    for g in [json!(u32::MAX), json!(1_000_001)] {
        out.push(case(
            format!("get_new_address gap_limit = {g}"),
            v2("get_new_address", with(&addr, "gap_limit", g)),
            Want::V2(BAD_REQ),
        ));
    }
    let mnemonic = json!({"format": "plaintext", "password": WALLET_PW});
    for (field, kind) in [("format", "enum"), ("password", "str")] {
        for bad in wrong(kind) {
            out.push(case(
                format!("get_mnemonic {field} = {bad}"),
                v2("get_mnemonic", with(&mnemonic, field, bad)),
                Want::V2(BAD_REQ),
            ));
        }
    }
    let change = json!({"current_password": WALLET_PW, "new_password": "Other-Pass2@"});
    for field in ["current_password", "new_password"] {
        for bad in wrong("str") {
            out.push(case(
                format!("change_mnemonic_password {field} = {bad}"),
                v2("change_mnemonic_password", with(&change, field, bad)),
                Want::V2(BAD_REQ),
            ));
        }
    }
    let delete = json!({"wallet_name": "other", "password": WALLET_PW});
    for field in ["wallet_name", "password"] {
        for bad in wrong("str") {
            out.push(case(
                format!("delete_wallet {field} = {bad}"),
                v2("delete_wallet", with(&delete, field, bad)),
                Want::V2(BAD_REQ),
            ));
        }
    }
    for name in ["../w1", "a/b", "..", "a\u{0}b", &"x".repeat(10_000)] {
        out.push(case(
            format!("delete_wallet wallet_name {}", &name[..name.len().min(12)]),
            v2(
                "delete_wallet",
                json!({"wallet_name": name, "password": WALLET_PW}),
            ),
            Want::V2(&[
                "InvalidRequest",
                "WalletsStorageError",
                "InvalidWalletName",
                "WalletNotFound",
            ]),
        ));
    }
    for kind in ["enable_utxo", "account_balance", "withdraw"] {
        for id in [json!(987_654_321u64), json!(forgotten)] {
            for op in ["status", "cancel"] {
                out.push(case(
                    format!("task::{kind}::{op} task_id {id}"),
                    v2(&format!("task::{kind}::{op}"), json!({"task_id": id})),
                    Want::V2(&["NoSuchTask"]),
                ));
            }
        }
        // u64::MAX is a well-typed id (NoSuchTask, above); the rest are not.
        for bad in wrong("u32").into_iter().filter(|v| v != &json!(u64::MAX)) {
            out.push(case(
                format!("task::{kind}::status task_id = {bad}"),
                v2(&format!("task::{kind}::status"), json!({"task_id": bad})),
                Want::V2(BAD_REQ),
            ));
        }
    }
    out
}

const TO: &str = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";
const TXID_A: &str = "aa00000000000000000000000000000000000000000000000000000000000001";

/// One unspent of 1 DOC on bob's P2PKH script.
pub fn fund_bob(fake: &FakeElectrum) {
    let (p2pkh, _) = bob_scripthashes();
    fake.set_unspents(&p2pkh, &[(TXID_A, 0, 100_000_000, 10)]);
}

/// A v2 withdraw of 0.1 DOC to TO, with `extra` keys replaced.
pub fn withdraw(extra: Value) -> Value {
    let mut p = json!({"coin": "DOC", "to": TO, "amount": "0.1"});
    if let (Some(o), Value::Object(e)) = (p.as_object_mut(), extra) {
        o.extend(e);
    }
    v2("withdraw", p)
}

pub fn send_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for amount in [
        json!("-1"),
        json!(-0.5),
        json!("abc"),
        json!("1,5"),
        json!("0x10"),
        json!(""),
        json!("NaN"),
        json!("0.000000001"),
        json!("21000001"),
        json!("1e40"),
        json!(1e300),
        json!(true),
        json!([1]),
    ] {
        out.push(case(
            format!("withdraw amount {amount}"),
            withdraw(json!({"amount": amount})),
            Want::V2(BAD_REQ),
        ));
    }
    for to in [
        json!(""),
        json!("not an address"),
        json!("R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMX"),
        json!("0x8500afc0bc5214728082163326c2ff0c73f4a871"),
        json!("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"),
        json!("x".repeat(100_000)),
        json!(7),
        json!(null),
    ] {
        out.push(case(
            format!(
                "withdraw to {}",
                kdfd_testkit::model::clip_str(&to.to_string(), 40)
            ),
            withdraw(json!({"to": to})),
            Want::V2(&["InvalidAddress", "InvalidRequest"]),
        ));
    }
    for fee in [
        json!({"type": "Nope"}),
        json!({"type": "EthGas", "gas_price": "1", "gas": 21000}),
        json!({"type": "UtxoFixed"}),
        json!({"type": "UtxoFixed", "amount": "-1"}),
        json!({"type": "UtxoPerKbyte", "amount": "abc"}),
        json!({"amount": "0.0001"}),
        json!("UtxoFixed"),
        json!(7),
    ] {
        out.push(case(
            format!("withdraw fee {fee}"),
            withdraw(json!({"fee": fee})),
            Want::V2(&["InvalidFeePolicy", "InvalidRequest"]),
        ));
    }
    let raw = |hex: Value| {
        req(
            "send_raw_transaction",
            json!({"coin": "DOC", "tx_hex": hex}),
        )
    };
    // A real (signed-looking) bitcoin-format tx, cut short: bytes no node would accept.
    let full = "0100000001aa000000000000000000000000000000000000000000000000000000000000010000000000ffffffff0100e1f505000000001976a914000000000000000000000000000000000000000088ac00000000";
    for (name, hex) in [
        ("not hex", json!("zz11")),
        ("odd length", json!("abc")),
        ("spaces inside", json!("01 00")),
        ("empty", json!("")),
        ("truncated tx", json!(&full[..full.len() - 20])),
        ("truncated header", json!("0100")),
        ("1 MB + 2", json!("00".repeat(500_001))),
        ("number", json!(7)),
        ("null", json!(null)),
    ] {
        out.push(case(
            format!("send_raw_transaction {name}"),
            raw(hex),
            Want::Legacy(""),
        ));
    }
    out.push(case(
        "send_raw_transaction 10 MB",
        raw(json!("00".repeat(5 * 1024 * 1024))),
        Want::TooLarge,
    ));
    out
}

/// ETH on chain 31337; BEAMX with BEAMX-AVX20's all-lowercase contract (not EIP-55); BIGDEC with
/// 78 decimals; NODEC without decimals (the node is asked).
pub fn evm_coins() -> Value {
    let tok = |t: &str, contract: &str, dec: Option<u64>| {
        let mut v = json!({"coin": t, "mm2": 1, "chain_id": 31337,
            "protocol": {"type": "ERC20", "protocol_data": {"platform": "ETH", "contract_address": contract}}});
        if let Some(d) = dec {
            v["decimals"] = json!(d);
        }
        v
    };
    json!([
        {"coin": "ETH", "mm2": 1, "chain_id": 31337,
         "protocol": {"type": "ETH", "protocol_data": {"chain_id": 31337}}},
        tok("BEAMX", "0x62d0a8458ed7719fdaf978fe5929c6d342b0bfce", Some(18)),
        tok("BIGDEC", "0x62D0A8458eD7719FDAF978fe5929C6D342B0bFcE", Some(78)),
        tok("NODEC", "0x62D0A8458eD7719FDAF978fe5929C6D342B0bFcE", None),
    ])
}

pub fn evm_cases(not_json: &str, not_hex: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let legacy = |coin: &str, urls: Value| {
        req(
            "enable",
            json!({"coin": coin, "urls": urls,
                   "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871"}),
        )
    };
    let with_tokens = |nodes: Value, tokens: Value| {
        v2(
            "enable_eth_with_tokens",
            json!({"ticker": "ETH", "nodes": nodes, "erc20_tokens_requests": tokens,
                   "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871"}),
        )
    };
    let bad_urls = [
        json!([]),
        json!(["ftp://127.0.0.1:1"]),
        json!(["ws://127.0.0.1:1"]),
        json!(["file:///etc/passwd"]),
        json!(["127.0.0.1:8545"]),
        json!([""]),
        json!(["http://"]),
        json!([7]),
        json!("http://127.0.0.1:1"),
    ];
    for urls in bad_urls.iter() {
        out.push(case(
            format!("legacy enable ETH urls {urls}"),
            legacy("ETH", urls.clone()),
            Want::Legacy(""),
        ));
        let nodes: Value = match urls {
            Value::Array(a) => a.iter().map(|u| json!({"url": u})).collect(),
            other => other.clone(),
        };
        out.push(case(
            format!("enable_eth_with_tokens nodes {nodes}"),
            with_tokens(nodes, json!([])),
            Want::V2(&[
                "InvalidRequest",
                "Transport",
                "UnreachableNodes",
                "AtLeastOneNodeRequired",
            ]),
        ));
    }
    for (label, url) in [("not JSON", not_json), ("not hex", not_hex)] {
        out.push(case(
            format!("legacy enable ETH, node {label}"),
            legacy("ETH", json!([url])),
            Want::Legacy(""),
        ));
        out.push(case(
            format!("legacy enable NODEC, node {label}"),
            legacy("NODEC", json!([url])),
            Want::Legacy(""),
        ));
        out.push(case(
            format!("enable_eth_with_tokens, node {label}"),
            with_tokens(json!([{"url": url}]), json!([{"ticker": "NODEC"}])),
            Want::V2(&[
                "Transport",
                "UnreachableNodes",
                "InvalidRequest",
                "ClientConnectionFailed",
            ]),
        ));
    }
    out.push(case(
        "legacy enable BEAMX (lowercase contract)",
        legacy("BEAMX", json!([not_hex])),
        Want::Legacy("checksum"),
    ));
    out.push(case(
        "legacy enable BIGDEC (78 decimals)",
        legacy("BIGDEC", json!([not_hex])),
        Want::Legacy("decimals"),
    ));
    out.push(case(
        "enable_eth_with_tokens BEAMX",
        with_tokens(json!([{"url": not_hex}]), json!([{"ticker": "BEAMX"}])),
        // KDF: UnexpectedTokenProtocol (kdf-evm-compat.md 1.1), the checksum named in the text.
        Want::V2(&["UnexpectedTokenProtocol"]),
    ));
    out.push(case(
        "enable_erc20 BEAMX (no platform)",
        v2(
            "enable_erc20",
            json!({"ticker": "BEAMX", "activation_params": {}}),
        ),
        Want::V2(&["UnexpectedTokenProtocol"]),
    ));
    out.push(case(
        "enable_erc20 BIGDEC (no platform)",
        v2(
            "enable_erc20",
            json!({"ticker": "BIGDEC", "activation_params": {}}),
        ),
        Want::V2(&["UnexpectedTokenProtocol"]),
    ));
    out
}

/// Config additions that must stop kdfd at start-up.
pub fn startup_cases() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let words: Vec<&str> = TANK.split(' ').collect();
    for (name, m) in [
        ("two words", "tank abandon".to_string()),
        ("11 words", words[..11].join(" ")),
        ("13 words", format!("{TANK} tank")),
        ("bad checksum", "abandon ".repeat(12).trim().to_string()),
        ("unknown word", TANK.replace("fossil", "fossilz")),
        ("non-ASCII", TANK.replace("tank", "tänk")),
        ("empty", String::new()),
        ("10 kB", "abandon ".repeat(1300)),
    ] {
        out.push((
            format!("enable_hd mnemonic: {name}"),
            json!({"passphrase": m, "enable_hd": true}),
        ));
    }
    for (name, w) in [
        ("slash", "a/b".to_string()),
        ("dot dot", "..".to_string()),
        ("dot dot slash", "../w".to_string()),
        ("NUL", "a\u{0}b".to_string()),
        ("10 kB", "x".repeat(10_000)),
    ] {
        out.push((
            format!("wallet_name {name}"),
            json!({"passphrase": TANK, "enable_hd": true, "wallet_name": w,
                   "wallet_password": WALLET_PW}),
        ));
    }
    out
}

/// `launch`'s error: the process exited with 1 and printed one line (no mnemonic in it).
pub fn one_line_exit_1(e: &str) -> Result<(), String> {
    let Some(rest) = e.strip_prefix("exited with exit status: 1: ") else {
        return Err(format!("not exit 1: {e}"));
    };
    let lines: Vec<&str> = rest.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        return Err(format!("{} lines: {rest:?}", lines.len()));
    }
    if rest.contains("bind salon") {
        return Err(format!("the mnemonic is in the error: {rest:?}"));
    }
    Ok(())
}
