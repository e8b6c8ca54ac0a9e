//! Unit tests of `coins::evm`: HD key path and the active set with EVM coins.
use super::*;
use crate::crypto::hd::HdSeed;

fn keys_hd(account_id: u32) -> WalletKeys {
    // The standard test mnemonic: anvil's and hardhat's dev accounts come from it.
    let seed = HdSeed::from_mnemonic("test test test test test test test test test test test junk")
        .unwrap();
    let internal = seed.internal_key().unwrap();
    WalletKeys::Hd {
        seed,
        internal,
        account_id,
    }
}

#[test]
fn hd_eth_key_is_bip44_coin_60() {
    // m/44'/60'/0'/0/0 of the test mnemonic is anvil's account 0.
    let k = eth_key(&keys_hd(0)).unwrap();
    assert_eq!(
        address::display(&address::eth_address(&k)),
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    );
    let other = eth_key(&keys_hd(1)).unwrap();
    assert_ne!(address::eth_address(&other), address::eth_address(&k));
    // Iguana: the passphrase key itself (kdf-evm-compat.md §1.2 vector).
    let iguana = WalletKeys::Iguana(KeyPair::from_passphrase("iris test seed").unwrap());
    assert_eq!(
        address::display(&address::eth_address(&eth_key(&iguana).unwrap())),
        "0x7b338250f990954E3Ab034ccD32a917c2F607C2d"
    );
}

fn coin(coins: &ActiveCoins, entry: serde_json::Value, platform: Option<&str>) -> Arc<EvmCoin> {
    let conf = Arc::new(CoinConf::from_json(&entry).unwrap());
    let evm = evm_conf(&conf).unwrap();
    Arc::new(EvmCoin {
        conf,
        evm,
        client: EvmClient::new(vec!["http://127.0.0.1:1".into()], ClientOptions::default())
            .unwrap(),
        address: Address::ZERO,
        pubkey: String::new(),
        decimals: 18,
        required_confirmations: 1,
        seq: coins.next_seq(),
        platform: platform.map(str::to_string),
    })
}

#[test]
fn active_set_keeps_utxo_views_and_cascades_platform_removal() {
    let coins = ActiveCoins::default();
    let eth = json!({"coin": "ETH", "protocol": {"type": "ETH", "protocol_data": {"chain_id": 1}}});
    let tok = |t: &str| {
        json!({"coin": t, "decimals": 6, "protocol": {"type": "ERC20", "protocol_data":
            {"platform": "ETH", "contract_address": "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}}})
    };
    let p = coin(&coins, eth, None);
    let a = coin(&coins, tok("TA"), Some("ETH"));
    let b = coin(&coins, tok("TB"), Some("ETH"));
    // Committed out of order: listings still follow activation order.
    for c in [b.clone(), p.clone(), a.clone()] {
        coins.reserve(&c.conf.ticker).unwrap().commit_evm(c);
    }
    let tickers: Vec<String> = coins
        .list_all()
        .iter()
        .map(|c| c.ticker().to_string())
        .collect();
    assert_eq!(tickers, ["ETH", "TA", "TB"]);
    assert!(coins.list().is_empty());
    assert!(coins.get("ETH").is_none());
    assert!(matches!(coins.get_coin("TA"), Some(Coin::Evm(_))));
    assert!(coins.reserve("TA").is_none());
    // Removing a token leaves the rest; removing the platform takes its tokens.
    assert!(coins.remove("TB").is_some());
    assert_eq!(coins.list_all().len(), 2);
    assert!(matches!(coins.remove("ETH"), Some(Coin::Evm(c)) if c.conf.ticker == "ETH"));
    assert!(coins.list_all().is_empty());
    assert!(coins.remove("TA").is_none());
}
