//! Every coin of the shipped coins file: valid, wrong prefix, wrong checksum, foreign segwit.

use super::*;
use crate::crypto::{p2pkh_address, segwit_address};
use serde_json::{json, Value};

const H: [u8; 20] = [
    0xb5, 0x06, 0x08, 0x8a, 0xa2, 0xa3, 0xb4, 0xbb, 0x1d, 0xa3, 0xa2, 0x9b, 0xf0, 0x0c, 0xe1, 0xa5,
    0x50, 0xea, 0x1d, 0xf9,
];

fn shipped() -> Vec<CoinConf> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/coins");
    let entries: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let confs: Vec<CoinConf> = entries
        .iter()
        .map(|e| CoinConf::from_json(e).unwrap())
        .filter(|c| c.protocol == "UTXO")
        .collect();
    assert!(confs.len() >= 5, "coins file has UTXO coins");
    confs
}

/// Changes one base58 character so the checksum no longer matches.
fn corrupt(s: &str) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    let i = chars.len() / 2;
    chars[i] = if chars[i] == 'x' { 'y' } else { 'x' };
    chars.into_iter().collect()
}

#[test]
fn every_shipped_coin() {
    for c in shipped() {
        let t = &c.ticker;
        let p2pkh = p2pkh_address(&c.p2pkh_prefix, &H);
        assert_eq!(parse(&c, &p2pkh), Ok(AddrKind::P2pkh(H)), "{t}");
        let p2sh = p2pkh_address(&p2sh_prefix(&c), &H);
        assert_eq!(parse(&c, &p2sh), Ok(AddrKind::P2sh(H)), "{t}");

        let foreign = p2pkh_address(&[c.pubtype.wrapping_add(1)], &H);
        assert_eq!(
            parse(&c, &foreign),
            Err(format!("Address {foreign} has invalid prefix")),
            "{t}"
        );
        let bad = corrupt(&p2pkh);
        let e = parse(&c, &bad).unwrap_err();
        assert!(e.contains("invalid checksum"), "{t}: {e}");

        // A segwit address of another chain is refused on every coin.
        let tb = segwit_address("tb", &H).unwrap();
        assert_eq!(
            parse(&c, &tb),
            Err(format!("Address {tb} has invalid prefix")),
            "{t}"
        );
        match (&c.bech32_hrp, c.segwit) {
            (Some(hrp), true) => {
                let own = segwit_address(hrp, &H).unwrap();
                assert_eq!(parse(&c, &own), Ok(AddrKind::P2wpkh(H)), "{t}");
                let mut broken = own.clone();
                broken.pop();
                broken.push(if own.ends_with('q') { 'p' } else { 'q' });
                let e = parse(&c, &broken).unwrap_err();
                assert!(e.contains("checksum"), "{t}: {e}");
            }
            _ => {
                // A non-segwit coin refuses even a well-formed bc1 address.
                let bc = segwit_address("bc", &H).unwrap();
                assert_eq!(
                    parse(&c, &bc),
                    Err(format!("Address {bc} has invalid prefix")),
                    "{t}"
                );
            }
        }
        let e = parse(&c, "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a").unwrap_err();
        assert!(e.ends_with("has invalid prefix"), "{t}: {e}");
        assert!(parse(&c, "").is_err());
    }
}

fn conf(v: Value) -> CoinConf {
    CoinConf::from_json(&v).unwrap()
}

#[test]
fn known_addresses_and_scripts() {
    let rick = conf(json!({"coin": "RICK", "protocol": {"type": "UTXO"}}));
    let a = parse(&rick, "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD").unwrap();
    assert_eq!(a, AddrKind::P2pkh(H));
    assert_eq!(
        script_pubkey(&a).to_hex_string(),
        "76a914b506088aa2a3b4bb1da3a29bf00ce1a550ea1df988ac"
    );
    let btc = conf(
        json!({"coin": "BTC", "protocol": {"type": "UTXO"}, "segwit": true,
        "bech32_hrp": "bc"}),
    );
    let a = parse(&btc, "bc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580et0hw5v").unwrap();
    assert_eq!(a, AddrKind::P2wpkh(H));
    assert_eq!(
        script_pubkey(&a).to_hex_string(),
        "0014b506088aa2a3b4bb1da3a29bf00ce1a550ea1df9"
    );
    // BIP173's P2WSH example.
    let a = parse(
        &btc,
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
    )
    .unwrap();
    assert!(matches!(a, AddrKind::P2wsh(_)));
    assert_eq!(script_pubkey(&a).len(), 34);
    // Well-known P2SH.
    let a = parse(&btc, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy").unwrap();
    assert!(matches!(a, AddrKind::P2sh(_)));
    assert!(script_pubkey(&a).is_p2sh());
    // A taproot address has the right HRP but an unsupported witness version.
    let e = parse(
        &btc,
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",
    )
    .unwrap_err();
    assert!(e.contains("unsupported witness version 1"), "{e}");
    // A segwit-capable coin whose entry says segwit:false refuses its own HRP, as KDF does.
    let no_sw = conf(json!({"coin": "X", "protocol": {"type": "UTXO"}, "bech32_hrp": "bc"}));
    let e = parse(&no_sw, "bc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580et0hw5v").unwrap_err();
    assert!(e.ends_with("has invalid prefix"), "{e}");
}

#[test]
fn taddr_prefixes() {
    let z = conf(
        json!({"coin": "Z", "protocol": {"type": "UTXO"}, "taddr": 28, "pubtype": 184,
        "p2shtype": 189}),
    );
    let a = p2pkh_address(&[28, 184], &H);
    assert_eq!(parse(&z, &a), Ok(AddrKind::P2pkh(H)));
    assert_eq!(
        parse(&z, &p2pkh_address(&[28, 189], &H)),
        Ok(AddrKind::P2sh(H))
    );
    // The right pubtype without the taddr byte is a different prefix.
    let short = p2pkh_address(&[184], &H);
    assert_eq!(
        parse(&z, &short),
        Err(format!("Address {short} has invalid prefix"))
    );
}

#[test]
fn convert_follows_kdf() {
    let btc = conf(
        json!({"coin": "BTC", "protocol": {"type": "UTXO"}, "segwit": true,
        "bech32_hrp": "bc"}),
    );
    let legacy = "1HWAXvm37X3oZbSwYfPNKRcLBp8PeTzH7N";
    let sw = "bc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580et0hw5v";
    assert_eq!(convert(&btc, legacy, "segwit").as_deref(), Ok(sw));
    assert_eq!(convert(&btc, sw, "standard").as_deref(), Ok(legacy));
    assert_eq!(convert(&btc, legacy, "standard").as_deref(), Ok(legacy));
    // standard rebuilds a P2PKH from a P2SH's hash.
    let p2sh = p2pkh_address(&[5], &H);
    assert_eq!(convert(&btc, &p2sh, "standard").as_deref(), Ok(legacy));
    let p2wsh = "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3";
    assert_eq!(convert(&btc, p2wsh, "segwit").as_deref(), Ok(p2wsh));
    assert!(convert(&btc, p2wsh, "standard").is_err());

    let rick = conf(json!({"coin": "RICK", "protocol": {"type": "UTXO"}}));
    assert_eq!(
        convert(&rick, "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD", "segwit"),
        Err("Cannot convert to a segwit address for a coin with no bech32_hrp in config".into())
    );
    let e = convert(&rick, "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD", "cashaddress").unwrap_err();
    assert!(e.contains("has no cashaddress network"), "{e}");
    let e = convert(&rick, "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD", "legacy").unwrap_err();
    assert!(e.starts_with("Error on parse UTXO address format"), "{e}");
    let e = convert(&rick, legacy, "standard").unwrap_err();
    assert_eq!(e, format!("Address {legacy} has invalid prefix"));
}

/// The CashAddr specification's examples (legacy and cash forms of one P2PKH and one P2SH hash).
#[test]
fn cash_addresses_follow_the_specification() {
    let bch = conf(
        json!({"coin": "BCH", "protocol": {"type": "UTXO"}, "pubtype": 0,
        "p2shtype": 5, "address_format": {"format": "cashaddress", "network": "bitcoincash"}}),
    );
    let pairs = [
        (
            "1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu",
            "bitcoincash:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a",
        ),
        (
            "3CWFddi6m4ndiGyKqzYvsFYagqDLPVMTzC",
            "bitcoincash:ppm2qsznhks23z7629mms6s4cwef74vcwvn0h829pq",
        ),
    ];
    for (legacy, cash) in pairs {
        assert_eq!(convert(&bch, legacy, "cashaddress").as_deref(), Ok(cash));
        assert_eq!(parse(&bch, cash), parse(&bch, legacy));
        // Without its prefix, and in upper case, as the specification allows.
        let bare = cash.trim_start_matches("bitcoincash:");
        assert_eq!(parse(&bch, bare), parse(&bch, legacy));
        assert_eq!(parse(&bch, &cash.to_uppercase()), parse(&bch, legacy));
    }
    let (_, cash) = pairs[0];
    assert_eq!(
        convert(&bch, cash, "standard").as_deref(),
        Ok("1BpEi6DfDAUFd7GtittLSdBeYJvcoaVggu")
    );
    // A wrong checksum, another network, mixed case and odd lengths are refused, never panic.
    let flipped = cash.replace("6a", "6b");
    let mixed = cash.replacen('q', "Q", 1);
    let other = "bchtest:qpm2qsznhks23z7629mms6s4cwef74vcwvy22gdx6a";
    for bad in [
        flipped.as_str(),
        mixed.as_str(),
        other,
        "bitcoincash:",
        "bitcoincash:qq",
        ":",
        "q",
    ] {
        assert!(parse(&bch, bad).is_err(), "{bad}");
    }
}
