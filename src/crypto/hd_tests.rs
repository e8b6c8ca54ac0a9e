//! Vectors from kdf-wallet-compat.md 3.6 (KDF tests, recomputed independently there).

use super::*;
use crate::coins::CoinConf;
use serde_json::json;

const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn rick() -> CoinConf {
    CoinConf::from_json(&json!({"coin": "RICK", "protocol": {"type": "UTXO"},
        "derivation_path": "m/44'/141'"}))
    .unwrap()
}

fn segwit_coin(ticker: &str, hrp: &str, path: &str) -> CoinConf {
    CoinConf::from_json(
        &json!({"coin": ticker, "protocol": {"type": "UTXO"}, "pubtype": 0,
        "segwit": true, "bech32_hrp": hrp, "address_format": {"format": "segwit"},
        "derivation_path": path}),
    )
    .unwrap()
}

fn addr_at(seed: &HdSeed, conf: &CoinConf, path: &str) -> String {
    let coin = CoinPath::parse(conf.derivation_path.as_deref().unwrap()).unwrap();
    let p = HdPath::parse(path, &coin).unwrap();
    assert_eq!(p.to_string(), path, "Display round trip");
    conf.address_of(&seed.key_at(&p).unwrap().public_key())
        .unwrap()
}

#[test]
fn tank_addresses_match_kdf() {
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let rick = rick();
    let cases = [
        ("m/44'/141'/0'/0/0", "RXNtAyDSsY3DS3VxTpJegzoHU9bUX54j56"),
        ("m/44'/141'/0'/0/1", "RVyndZp3ZrhGKSwHryyM3Kcz9aq2EJrW1z"),
        ("m/44'/141'/0'/1/0", "RAV7AqFnZ8uHU2oV481KbbYjzXLQhy74TG"),
        ("m/44'/141'/77'/0/7", "RLNu8gszQ8ENUrY3VSyBS2714CNVwn1f7P"),
    ];
    for (path, want) in cases {
        assert_eq!(addr_at(&seed, &rick, path), want, "{path}");
    }
    let btc = segwit_coin("BTC-segwit", "bc", "m/84'/0'");
    let cases = [
        (
            "m/84'/0'/0'/0/0",
            "bc1q6vyur5hjul2m0979aadd6u7ptuj9ac4gt0ha0c",
        ),
        (
            "m/84'/0'/0'/0/1",
            "bc1q6kxcwcrsm5z8pe940xxu294q7588mqvarttxcx",
        ),
        (
            "m/84'/0'/77'/0/7",
            "bc1q0dxnd7afj997a40j86a8a6dq3xs3dwm7rkzams",
        ),
    ];
    for (path, want) in cases {
        assert_eq!(addr_at(&seed, &btc, path), want, "{path}");
    }
    let tbtc = segwit_coin("tBTC-Segwit", "tb", "m/84'/1'");
    assert_eq!(
        addr_at(&seed, &tbtc, "m/84'/1'/0'/0/0"),
        "tb1q7z9vzf8wpp9cks0l4nj5v28zf7jt56kuekegh5"
    );
}

#[test]
fn tank_pubkey_and_internal_key() {
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let coin = CoinPath::parse("m/44'/141'").unwrap();
    let p = HdPath::parse("m/44'/141'/0'/0/0", &coin).unwrap();
    assert_eq!(
        hex(&seed.key_at(&p).unwrap().public_key()),
        "02d74dc5ec4c823f40dae5c563d7b22aab52c80f9f18226f47ea6d83107618df62"
    );
    let internal = seed.internal_key().unwrap();
    assert_eq!(
        hex(&internal.public_key()),
        "020202a4c51fd0b7d5049196a1ee69406241dd1bb83d84ed59cf86669831200588"
    );
    assert_eq!(
        hex(&internal.hash160()),
        "efa6a43e1af2847419841144153183d9690e2136"
    );
}

#[test]
fn public_derivation_matches_private() {
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let coin = CoinPath::parse("m/44'/141'").unwrap();
    let xpub = seed.account_xpub(&coin, 0).unwrap();
    for chain in [Chain::External, Chain::Internal] {
        let pubs = derive_pubkeys(&xpub, chain, 0..5).unwrap();
        assert_eq!(pubs.len(), 5);
        for (i, pk) in pubs.iter().enumerate() {
            let p = HdPath {
                coin,
                account: 0,
                chain,
                index: i as u32,
            };
            assert_eq!(*pk, seed.key_at(&p).unwrap().public_key(), "{p}");
        }
    }
    let rick = rick();
    let ext = derive_pubkeys(&xpub, Chain::External, 0..2).unwrap();
    assert_eq!(
        rick.address_of(&ext[1]).unwrap(),
        "RVyndZp3ZrhGKSwHryyM3Kcz9aq2EJrW1z"
    );
    // A hardened-range index cannot be derived publicly.
    assert!(derive_pubkeys(&xpub, Chain::External, 0x7fff_ffff..0x8000_0001).is_err());
}

#[test]
fn kdf_xpub_vectors() {
    // utxo_tests.rs test_account_balance_rpc: account 0 xpub of m/44'/141'/0'.
    let xpub = Xpub::from_str("xpub6DEHSksajpRPM59RPw7Eg6PKdU7E2ehxJWtYdrfQ6JFmMGBsrR6jA78ANCLgzKYm4s5UqQ4ydLEYPbh3TRVvn5oAZVtWfi4qJLMntpZ8uGJ").unwrap();
    let rick = rick();
    let ext = derive_pubkeys(&xpub, Chain::External, 0..2).unwrap();
    let int = derive_pubkeys(&xpub, Chain::Internal, 0..1).unwrap();
    assert_eq!(
        rick.address_of(&ext[0]).unwrap(),
        "RRqF4cYniMwYs66S4QDUUZ4GJQFQF69rBE"
    );
    assert_eq!(
        rick.address_of(&ext[1]).unwrap(),
        "RSVLsjXc9LJ8fm9Jq7gXjeubfja3bbgSDf"
    );
    assert_eq!(
        rick.address_of(&int[0]).unwrap(),
        "RLZxcZSYtKe74JZd1hBAmmD9PNHZqb72oL"
    );
}

#[test]
fn account_xpub_round_trips() {
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let coin = CoinPath::parse("m/44'/141'").unwrap();
    let xpub = seed.account_xpub(&coin, 0).unwrap();
    let s = xpub.to_string();
    assert!(s.starts_with("xpub"), "{s}");
    assert_eq!(Xpub::from_str(&s).unwrap(), xpub);
    assert_eq!(xpub.depth, 3);
    assert_ne!(seed.account_xpub(&coin, 1).unwrap(), xpub);
}

#[test]
fn bad_mnemonics_are_refused() {
    // Last word changed: every word is valid, the checksum is not.
    let bad = "tank abandon bind salon remove wisdom net size aspect direct source source";
    assert!(matches!(
        HdSeed::from_mnemonic(bad),
        Err(HdError::Mnemonic(_))
    ));
    assert!(matches!(
        HdSeed::from_mnemonic("bob passphrase"),
        Err(HdError::Mnemonic(_))
    ));
    assert!(matches!(
        HdSeed::from_mnemonic(
            "tank abandon bind salon remove wisdom net size aspect direct source notaword"
        ),
        Err(HdError::Mnemonic(_))
    ));
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    assert_eq!(format!("{seed:?}"), "HdSeed(<redacted>)");
}

#[test]
fn coin_path_rules() {
    assert_eq!(
        CoinPath::parse("m/84'/0'").unwrap(),
        CoinPath {
            purpose: 84,
            coin_type: 0
        }
    );
    assert_eq!(
        CoinPath::parse("m/44'/141'").unwrap().to_string(),
        "m/44'/141'"
    );
    let cases = [
        ("m/44'", "expected 2 levels"),
        ("m/44'/141'/0'", "expected 2 levels"),
        ("m/44/141'", "purpose must be hardened"),
        ("m/44'/141", "coin_type must be hardened"),
        ("m/45'/141'", "purpose 45"),
        ("44'/x'", "Invalid derivation path"),
    ];
    for (path, needle) in cases {
        let e = CoinPath::parse(path).unwrap_err().to_string();
        assert!(e.contains(needle), "{path}: {e}");
        assert!(e.contains(path), "{path}: {e}");
    }
}

#[test]
fn address_path_rules() {
    let coin = CoinPath::parse("m/44'/141'").unwrap();
    let p = HdPath::parse("m/44'/141'/3'/1/9", &coin).unwrap();
    assert_eq!((p.account, p.chain, p.index), (3, Chain::Internal, 9));
    let cases = [
        (
            "m/44'/0'/0'/0/0",
            "coin_type 0 does not match the coin's coin_type 141",
        ),
        ("m/44'/141'/0/0/0", "account must be hardened"),
        ("m/44'/141'/0'/0'/0", "chain must not be hardened"),
        ("m/44'/141'/0'/2/0", "chain 2 is not 0"),
        ("m/44'/141'/0'/0/0'", "address_index must not be hardened"),
        ("m/44'/141'/0'/0", "expected 5 levels"),
        ("m/44'/141'/0'/0/2147483648", "Invalid derivation path"),
        ("m/50'/141'/0'/0/0", "purpose 50"),
    ];
    for (path, needle) in cases {
        let e = HdPath::parse(path, &coin).unwrap_err().to_string();
        assert!(e.contains(needle), "{path}: {e}");
    }
}

#[test]
fn chain_serde_names() {
    assert_eq!(
        serde_json::to_string(&Chain::External).unwrap(),
        "\"External\""
    );
    let c: Chain = serde_json::from_str("\"Internal\"").unwrap();
    assert_eq!(c, Chain::Internal);
    assert_eq!(c.index(), 1);
    assert!(serde_json::from_str::<Chain>("\"external\"").is_err());
}

#[test]
fn shipped_coins_paths_and_addresses() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/coins");
    let entries: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let seed = HdSeed::from_mnemonic(TANK).unwrap();
    let mut n = 0;
    for e in &entries {
        let conf = CoinConf::from_json(e).unwrap();
        if conf.protocol != "UTXO" {
            continue;
        }
        let coin = conf.coin_path().unwrap();
        let key = seed
            .key_at(&HdPath {
                coin,
                account: 0,
                chain: Chain::External,
                index: 0,
            })
            .unwrap();
        // Same address as the activation code's own helper for the same key.
        let (want, _) = crate::coins::wallet_scripts(&conf, &key, conf.address_format).unwrap();
        assert_eq!(conf.address_of(&key.public_key()).unwrap(), want);
        n += 1;
    }
    assert!(n >= 5);
    let bare = CoinConf::from_json(&json!({"coin": "X", "protocol": {"type": "UTXO"}})).unwrap();
    assert_eq!(bare.coin_path(), Err(HdError::NoDerivationPath));
}
