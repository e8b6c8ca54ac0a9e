//! EVM coins over the RPC: the real kdfd binary, real HTTP, a real anvil node (chain 31337) with
//! hand-assembled ERC-20 contracts planted by `evm_support`.

mod evm_support;
mod support;

use alloy_primitives::{Address, U160, U256};
use evm_support::{dead_url, Anvil};
use kdfd::crypto::KeyPair;
use kdfd::evm::address::{display, eth_address, lower_hex};
use serde_json::{json, Value};
use support::{base_conf, req, Kdfd, PASSPHRASE, USERPASS};

/// bob's ETH address: computed here and pinned to the spec's vector (kdf-evm-compat.md §1.2).
const BOB_ETH: &str = "0xf5c3bf03cBA4E343484588932e423A7C8BFf102d";

fn bob() -> Address {
    let a = eth_address(&KeyPair::from_passphrase(PASSPHRASE).unwrap());
    assert_eq!(display(&a), BOB_ETH);
    a
}

/// Test token n's contract: 0xcc…0n.
fn token(n: u64) -> Address {
    Address::from(U160::from(0xcc) << 152 | U160::from(n))
}

fn wei(eth_milli: u64) -> U256 {
    U256::from(eth_milli) * U256::from(10u64).pow(U256::from(15))
}

/// ETH on anvil's chain, ETHW claiming mainnet, and tokens: TKA (18, in file), TKB (6, in file),
/// TKC (no decimals in the file: the contract says 8), TKD (18).
fn coins() -> Value {
    let tok = |t: &str, n: u64, dec: Option<u8>| {
        let mut v = json!({"coin": t, "mm2": 1, "chain_id": 31337,
            "protocol": {"type": "ERC20", "protocol_data": {"platform": "ETH", "contract_address": display(&token(n))}}});
        if let Some(d) = dec {
            v["decimals"] = json!(d);
        }
        v
    };
    json!([
        {"coin": "ETH", "mm2": 1, "chain_id": 31337, "required_confirmations": 3,
         "protocol": {"type": "ETH", "protocol_data": {"chain_id": 31337}}},
        {"coin": "ETHW", "mm2": 1, "chain_id": 1,
         "protocol": {"type": "ETH", "protocol_data": {"chain_id": 1}}},
        tok("TKA", 1, Some(18)),
        tok("TKB", 2, Some(6)),
        tok("TKC", 3, None),
        tok("TKD", 4, Some(18)),
    ])
}

/// anvil with bob holding 1.5 ETH, 2.5 TKA, 1.234567 TKB, 1.5 TKC, 7 TKD.
async fn chain() -> Anvil {
    let anvil = Anvil::start();
    anvil.set_balance(BOB_ETH, wei(1500)).await;
    for (n, dec, units) in [
        (1u64, 18u8, wei(2500)),
        (2, 6, U256::from(1_234_567u64)),
        (3, 8, U256::from(150_000_000u64)),
        (4, 18, wei(7000)),
    ] {
        let c = display(&token(n));
        anvil.plant_token(&c, dec).await;
        anvil.set_token_balance(&c, bob(), units).await;
    }
    anvil
}

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params, "id": 7})
}

fn enable(coin: &str, urls: Vec<String>) -> Value {
    req(
        "enable",
        json!({"coin": coin, "urls": urls, "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
               "gas_station_url": "https://ignored.example", "gas_station_decimals": 8}),
    )
}

async fn balance(kdfd: &Kdfd, coin: &str) -> String {
    let (st, b) = kdfd.post(&req("my_balance", json!({"coin": coin}))).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["address"], BOB_ETH);
    assert_eq!(b["unspendable_balance"], "0");
    b["balance"].as_str().unwrap().to_string()
}

async fn enabled(kdfd: &Kdfd) -> Vec<String> {
    let (st, b) = kdfd.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(st, 200, "{b}");
    b["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["address"], BOB_ETH);
            c["ticker"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test]
async fn legacy_enable_balances_chain_check_and_disable() {
    let anvil = chain().await;
    let kdfd = Kdfd::start(base_conf(coins()));

    let (st, b) = kdfd.post(&enable("ETH", vec![anvil.url()])).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b,
        json!({"result": "success", "address": BOB_ETH, "balance": "1.5", "unspendable_balance": "0",
               "coin": "ETH", "required_confirmations": 3, "requires_notarization": false})
    );
    let (st, b) = kdfd.post(&enable("ETH", vec![anvil.url()])).await;
    assert_eq!(st, 500);
    assert_eq!(b["error"], "Coin ETH already initialized");

    // A legacy token is standalone, with its own urls (a dead one first: failover).
    let (st, b) = kdfd
        .post(&enable("TKB", vec![dead_url(), anvil.url()]))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["balance"], "1.234567");
    assert_eq!(b["required_confirmations"], 1);
    assert_eq!(balance(&kdfd, "ETH").await, "1.5");
    assert_eq!(balance(&kdfd, "TKB").await, "1.234567");

    // The next my_balance reads the chain again.
    anvil.set_balance(BOB_ETH, wei(42_001)).await;
    assert_eq!(balance(&kdfd, "ETH").await, "42.001");

    // kdfd difference: a node on another chain is refused, and nothing is left active.
    let (st, b) = kdfd.post(&enable("ETHW", vec![anvil.url()])).await;
    assert_eq!(st, 500);
    let e = b["error"].as_str().unwrap();
    assert!(
        e.contains("Chain id mismatch") && e.contains("31337"),
        "{e}"
    );
    assert_eq!(enabled(&kdfd).await, ["ETH", "TKB"]);
    let (_, b) = kdfd.post(&v2("get_enabled_coins", json!({}))).await;
    assert_eq!(
        b["result"]["coins"],
        json!([{"ticker": "ETH"}, {"ticker": "TKB"}])
    );

    // Request checks.
    let (_, b) = kdfd.post(&req("enable", json!({"coin": "ETH"}))).await;
    assert_eq!(b["error"], "invalid type: null, expected a sequence");
    let (_, b) = kdfd
        .post(&req(
            "enable",
            json!({"coin": "TKA", "urls": [anvil.url()]}),
        ))
        .await;
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("hex string with length of 40"),
        "{b}"
    );
    let (_, b) = kdfd
        .post(&req(
            "enable",
            json!({"coin": "TKA", "urls": [anvil.url()],
            "swap_contract_address": "0x0000000000000000000000000000000000000000"}),
        ))
        .await;
    assert_eq!(b["error"], "swap_contract_address can't be zero address");

    // validateaddress for EVM addresses: 0x + 40 hex digits with a valid EIP-55 checksum.
    for (address, valid) in [
        ("0x7b338250f990954E3Ab034ccD32a917c2F607C2d", true),
        ("0x7b338250f990954e3Ab034ccD32a917c2F607C2d", false),
        ("7b338250f990954E3Ab034ccD32a917c2F607C2d", false),
        ("0x7b33", false),
        ("RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD", false),
    ] {
        let (st, b) = kdfd
            .post(&req(
                "validateaddress",
                json!({"coin": "ETH", "address": address}),
            ))
            .await;
        assert_eq!(st, 200, "{b}");
        assert_eq!(b["result"]["is_valid"], valid, "{address}: {b}");
        assert_eq!(b["result"]["reason"].is_string(), !valid, "{address}: {b}");
    }

    // Disabling the platform disables its tokens.
    let (st, b) = kdfd
        .post(&req("disable_coin", json!({"coin": "ETH"})))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["result"]["coin"], "ETH");
    assert!(enabled(&kdfd).await.is_empty());
    let (st, b) = kdfd.post(&req("my_balance", json!({"coin": "TKB"}))).await;
    assert_eq!(st, 500);
    assert_eq!(b["error"], "No such coin: TKB");
}

#[tokio::test]
async fn all_urls_dead_is_a_clear_error_and_activates_nothing() {
    let kdfd = Kdfd::start(base_conf(coins()));
    let (st, b) = kdfd
        .post(&enable("ETH", vec![dead_url(), dead_url()]))
        .await;
    assert_eq!(st, 500);
    let e = b["error"].as_str().unwrap();
    assert!(
        e.starts_with("Failed to get client version for all nodes"),
        "{e}"
    );
    let (st, b) = kdfd
        .post(&v2(
            "enable_eth_with_tokens",
            json!({"ticker": "ETH", "nodes": [{"url": dead_url()}],
            "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
            "erc20_tokens_requests": [{"ticker": "TKA"}]}),
        ))
        .await;
    assert_eq!(st, 502, "{b}");
    assert_eq!(b["error_type"], "Transport");
    assert!(enabled(&kdfd).await.is_empty());
    // Nothing was left reserved either: a working node activates now.
    let anvil = chain().await;
    let (st, b) = kdfd.post(&enable("ETH", vec![anvil.url()])).await;
    assert_eq!(st, 200, "{b}");
}

#[tokio::test]
async fn v2_platform_with_tokens_then_erc20_then_disable() {
    let anvil = chain().await;
    let kdfd = Kdfd::start(base_conf(coins()));
    let pubkey = kdfd::evm::address::pubkey_hex(&KeyPair::from_passphrase(PASSPHRASE).unwrap());

    // The platform must be active for enable_erc20.
    let (st, b) = kdfd
        .post(&v2(
            "enable_erc20",
            json!({"ticker": "TKD", "activation_params": {}}),
        ))
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error_type"], "PlatformCoinIsNotActivated");

    let (st, b) = kdfd
        .post(&v2("enable_eth_with_tokens", json!({"ticker": "ETH", "nodes": [{"url": anvil.url()}],
            "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
            "erc20_tokens_requests": [{"ticker": "TKA"}, {"ticker": "TKB", "required_confirmations": 5}, {"ticker": "TKC"}]})))
        .await;
    assert_eq!(st, 200, "{b}");
    let r = &b["result"];
    assert!(r["current_block"].is_u64(), "{b}");
    assert_eq!(
        r["eth_addresses_infos"][BOB_ETH],
        json!({"derivation_method": {"type": "Iguana"}, "pubkey": pubkey,
               "balances": {"spendable": "1.5", "unspendable": "0"}})
    );
    assert_eq!(
        r["erc20_addresses_infos"][BOB_ETH]["balances"],
        json!({"TKA": {"spendable": "2.5", "unspendable": "0"},
               "TKB": {"spendable": "1.234567", "unspendable": "0"},
               // decimals from the contract (8), not from the file
               "TKC": {"spendable": "1.5", "unspendable": "0"}})
    );
    assert_eq!(r["nfts_infos"], json!({}));
    assert_eq!(balance(&kdfd, "TKC").await, "1.5");

    let (st, b) = kdfd
        .post(&v2(
            "enable_erc20",
            json!({"ticker": "TKD", "activation_params": {"required_confirmations": 2}}),
        ))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["result"],
        json!({"balances": {BOB_ETH: {"spendable": "7", "unspendable": "0"}}, "platform_coin": "ETH",
               "token_contract_address": lower_hex(&token(4)), "required_confirmations": 2})
    );
    let (st, b) = kdfd
        .post(&v2(
            "enable_erc20",
            json!({"ticker": "TKD", "activation_params": {}}),
        ))
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error_type"], "TokenIsAlreadyActivated");
    assert_eq!(b["error_data"], "TKD");
    let (st, b) = kdfd
        .post(&v2(
            "enable_eth_with_tokens",
            json!({"ticker": "ETH", "nodes": [{"url": anvil.url()}],
            "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
            "erc20_tokens_requests": []}),
        ))
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error_type"], "PlatformIsAlreadyActivated");
    assert_eq!(enabled(&kdfd).await, ["ETH", "TKA", "TKB", "TKC", "TKD"]);

    // Token balance changes show in the next read.
    anvil
        .set_token_balance(&display(&token(1)), bob(), wei(10))
        .await;
    assert_eq!(balance(&kdfd, "TKA").await, "0.01");

    let (st, _) = kdfd
        .post(&req("disable_coin", json!({"coin": "ETH"})))
        .await;
    assert_eq!(st, 200);
    assert!(enabled(&kdfd).await.is_empty());

    // get_balances: false lists the tickers instead.
    let (st, b) = kdfd
        .post(&v2("enable_eth_with_tokens", json!({"ticker": "ETH", "rpc_urls": [anvil.url()],
            "swap_contract_address": "8500afc0bc5214728082163326c2ff0c73f4a871", "get_balances": false,
            "erc20_tokens_requests": [{"ticker": "TKB"}]})))
        .await;
    assert_eq!(st, 200, "{b}");
    let info = &b["result"]["erc20_addresses_infos"][BOB_ETH];
    assert_eq!(info["tickers"], json!(["TKB"]));
    assert!(info.get("balances").is_none());
    assert!(b["result"]["eth_addresses_infos"][BOB_ETH]
        .get("balances")
        .is_none());

    // A token of another platform, or a missing one, fails the whole activation.
    let (st, b) = kdfd
        .post(&v2(
            "enable_eth_with_tokens",
            json!({"ticker": "ETHW", "nodes": [{"url": anvil.url()}],
            "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
            "erc20_tokens_requests": [{"ticker": "TKA"}]}),
        ))
        .await;
    assert_eq!(st, 400, "{b}");
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("not an ERC20 token of ETHW"),
        "{b}"
    );
    assert_eq!(enabled(&kdfd).await, ["ETH", "TKB"]);
}

#[tokio::test]
async fn enable_eth_as_a_task() {
    let anvil = chain().await;
    let kdfd = Kdfd::start(base_conf(coins()));
    let params = json!({"ticker": "ETH", "nodes": [{"url": anvil.url()}],
        "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871",
        "erc20_tokens_requests": [{"ticker": "TKA"}]});
    let (st, b) = kdfd.post(&v2("task::enable_eth::init", params)).await;
    assert_eq!(st, 200, "{b}");
    let id = b["result"]["task_id"].as_u64().unwrap();
    let mut done = None;
    for _ in 0..200 {
        let (st, b) = kdfd
            .post(&v2(
                "task::enable_eth::status",
                json!({"task_id": id, "forget_if_finished": false}),
            ))
            .await;
        assert_eq!(st, 200, "{b}");
        match b["result"]["status"].as_str().unwrap() {
            "InProgress" => assert_eq!(b["result"]["details"], "ActivatingCoin"),
            "Ok" => {
                done = Some(b["result"]["details"].clone());
                break;
            }
            other => panic!("{other}: {b}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = done.expect("task finished");
    assert_eq!(
        r["erc20_addresses_infos"][BOB_ETH]["balances"]["TKA"]["spendable"],
        "2.5"
    );
    assert_eq!(enabled(&kdfd).await, ["ETH", "TKA"]);
    let (st, b) = kdfd
        .post(&v2("task::enable_eth::cancel", json!({"task_id": id})))
        .await;
    assert_eq!(st, 409, "{b}");
    assert_eq!(b["error_type"], "TaskFinished");

    // A failing activation ends as an Error status with the v2 error object.
    kdfd.post(&req("disable_coin", json!({"coin": "ETH"})))
        .await;
    let (_, b) = kdfd
        .post(&v2("task::enable_eth::init", json!({"ticker": "ETH", "nodes": [{"url": dead_url()}],
            "swap_contract_address": "0x8500afc0bc5214728082163326c2ff0c73f4a871", "erc20_tokens_requests": []})))
        .await;
    let id = b["result"]["task_id"].as_u64().unwrap();
    let mut err = None;
    for _ in 0..200 {
        let (_, b) = kdfd
            .post(&v2("task::enable_eth::status", json!({"task_id": id})))
            .await;
        if b["result"]["status"] == "Error" {
            err = Some(b["result"]["details"].clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(err.expect("task failed")["error_type"], "Transport");
    // forget_if_finished (default) dropped it.
    let (st, b) = kdfd
        .post(&v2("task::enable_eth::status", json!({"task_id": id})))
        .await;
    assert_eq!(st, 400, "{b}");
    assert_eq!(b["error_type"], "NoSuchTask");
    assert!(enabled(&kdfd).await.is_empty());
}

#[tokio::test]
async fn hd_mode_uses_bip44_coin_60() {
    // The standard test mnemonic's m/44'/60'/0'/0/0 is anvil's funded account 0 (10000 ETH).
    let anvil = Anvil::start();
    let mut conf = base_conf(coins());
    conf["passphrase"] = json!("test test test test test test test test test test test junk");
    conf["enable_hd"] = json!(true);
    let kdfd = Kdfd::start(conf);
    let (st, b) = kdfd.post(&enable("ETH", vec![anvil.url()])).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["address"], "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert_eq!(b["balance"], "10000");
    let (st, b) = kdfd
        .post(&v2(
            "enable_erc20",
            json!({"ticker": "TKA", "activation_params": {}}),
        ))
        .await;
    // No contract planted at TKA's address: decimals come from the file, balanceOf of an
    // account without code answers empty data, which is not a balance.
    assert_eq!(st, 502, "{b}");
    assert_eq!(b["error_type"], "Transport");
    let (_, b) = kdfd.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(
        b["result"],
        json!([{"ticker": "ETH", "address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"}])
    );
}
