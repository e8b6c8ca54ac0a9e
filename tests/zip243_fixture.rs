//! Proof of the overwintered v4 (Sapling transparent, ZIP-243) signer against fully signed,
//! published KMD-family transactions, reproduced byte for byte: the key is derived with kdfd's
//! own HD or iguana code, the transaction built and signed with kdfd's withdraw code, and the hex
//! and txid must equal the published ones (RFC 6979 signatures are deterministic).
//!
//! Sources of the fixtures (data, reproduced with the values and lock times they state):
//!
//! - KomodoPlatform/komodo-defi-framework at commit a9fbf6096257b802e0aac4d936dcc5d2f0c28461:
//!   swap transactions KDF (then MM2) signed, saved in the swap-recovery tests of
//!   `mm2src/mm2_main/src/lp_swap/maker_swap.rs` and `mm2src/mm2_main/src/lp_swap/taker_swap.rs`
//!   (named below), by the iguana key of KDF's unit-test passphrase (`utxo_coin_fields_for_test`
//!   in `mm2src/coins/utxo/utxo_common_tests.rs`). BEER and RICK are KMD asset chains: the same
//!   v4 format, branch id and address prefix as KMD.
//! - trezor/trezor-firmware at commit 0c5836605fd2d4bad5d3c743ad06ed0c6c42e6f0,
//!   `tests/device_tests/bitcoin/test_komodo.py`, `test_one_one_fee_sapling` and
//!   `test_one_one_rewards_claim`: signed with the BIP39 test mnemonic "all all … all" (no
//!   passphrase) at m/44'/141'/0'/0/0, version group 0x892F2085, branch 0x76B809BB, expiry 0,
//!   sequence 0xffffffff, SIGHASH_ALL. Both were accepted by the KMD network (the test names
//!   their txids).
//!
//! (`test_sapling_sig_hash_2` in KDF's `mm2src/mm2_bitcoin/script/src/sign.rs` is not used: its
//! ZIP-243 digest agrees with kdfd's, but its signature does not verify over it, so it is no
//! signed-transaction fixture.)

use bitcoin::hex::FromHex;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Txid, Witness};
use kdfd::coins::withdraw::{
    self, FeePolicy, SaplingTx, Unspent, WithdrawSpec, SAPLING_BRANCH_ID, SAPLING_VERSION_GROUP_ID,
};
use kdfd::coins::CoinConf;
use kdfd::crypto::hd::{CoinPath, HdPath, HdSeed};
use kdfd::crypto::KeyPair;
use serde_json::json;
use std::str::FromStr;

const MNEMONIC: &str = "all all all all all all all all all all all all";
const ADDRESS: &str = "R9HgJZo6JBKmPvhm7whLSR8wiHyZrEDVRi";

/// `test_one_one_fee_sapling`: 10.9998 KMD from 2807c5b1…:0 back to the same address less a
/// 0.0001 KMD fee, nLockTime 0x5D2A30B8.
const FEE_SAPLING_TX: &str = "0400008085202f89011d0f8e0c6ba2dcf8be8e5f9024771dceb4c8e4120fab8c072b8eec26b1c50728000000006a4730440220158c970ca2fc6bcc33026eb5366f0342f63b35d178f7efb334b1df78fe90b67202207bc4ff69f67cf843b08564a5adc77bf5593e28ab4d5104911824ac13fe885d8f012102a87aef7b1a8f676e452d6240767699719cd58b0261c822472c25df146938bca5ffffffff01d0359041000000001976a91400178fa0b6fc253a3a402ee2cadd8a7bfec08f6388acb8302a5d000000000000000000000000000000";
const FEE_SAPLING_TXID: &str = "7b28bd91119e9776f0d4ebd80e570165818a829bbf4477cd1afe5149dbcd34b1";

/// `test_one_one_rewards_claim`: 10.9997 KMD from 7b28bd91…:0 (the transaction above) to two
/// outputs of the same address, the second the 0.00079605 KMD of accrued rewards (outputs exceed
/// the input), nLockTime 0x5D2AF1F2.
const REWARDS_TX: &str = "0400008085202f8901b134cddb4951fe1acd7744bf9b828a816501570ed8ebd4f076979e1191bd287b000000006a4730440220483a58f5be3a147c773c663008c992a7fcea4d03bdf4c1d4bc0535c0d98ddf0602207b19d69140dd00c7a94f048c712aeaed55dfd27f581c7212d9cc5e476fe1dc9f012102a87aef7b1a8f676e452d6240767699719cd58b0261c822472c25df146938bca5ffffffff02c00e9041000000001976a91400178fa0b6fc253a3a402ee2cadd8a7bfec08f6388acf5360100000000001976a91400178fa0b6fc253a3a402ee2cadd8a7bfec08f6388acf2f12a5d000000000000000000000000000000";
const REWARDS_TXID: &str = "c775678ceb18277729b427c7acf2f8ce63ac02fc2366f47ce08a3f443ff0e059";

/// KDF (then MM2) signed these swap transactions with the iguana key of its unit-test
/// passphrase, R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW. Each spends output 1 (the change) of the one
/// before it, whose hex is published beside it, so the input value is known.
const KDF_PASSPHRASE: &str =
    "spice describe gravity federal blast come thank unfair canal monkey style afraid";

/// `test_recover_funds_maker_swap_taker_payment_spent` (BEER, July 2019): `TakerFeeValidated`
/// then `TakerPaymentReceived`, 1 BEER to the HTLC's P2SH plus the change, a flat 1000-sat fee.
const BEER_FEE_TX: &str = "0400008085202f89015ba9c8f0aec5b409bc824bcddc1a5a40148d4bd065c10169249e44ec44d62db2010000006a473044022050a213db7486e34871b9e7ef850845d55e0d53431350c16fa14fb60b81b1858302204f1042761f84e5f8d22948358b3c4103861adf5293d1d9e7f58f3b7491470b19012102031d4256c4bc9f99ac88bf3dba21773132281f65f9bf23a59928bce08961e2f3ffffffff02bcf60100000000001976a914ca1e04745e8ca0c60d8c5881531d51bec470743f88ac764d12ac010000001976a91405aab5342166f8594baf17a7d9bef5d56744332788ac8806305d000000000000000000000000000000";
const BEER_PAYMENT_TX: &str = "0400008085202f89013541cc4503faa406296788c6710ba10fed9863853d2ec38d77d36d10c2bef532010000006b483045022100a32e290d3a047ad75a512f9fd581c561c5153aa1b6be2b36915a9dd452cd0d4102204d1838b3cd15698ab424d15651d50983f0196e59b0b34abaad9cb792c97b527a012102031d4256c4bc9f99ac88bf3dba21773132281f65f9bf23a59928bce08961e2f3ffffffff0200e1f5050000000017a91424fc6f967eaa2751adbeb42a97c3497fbd9ddcce878e681ca6010000001976a91405aab5342166f8594baf17a7d9bef5d56744332788acbf06305d000000000000000000000000000000";
const BEER_PAYMENT_TXID: &str = "ee8b904efdee0d3bf0215d14a236489cde0b0efa92f7fa49faaa5fd97ed38ac0";

/// `test_recheck_only_one_swap_contract_address` (RICK, December 2020): `TakerFeeSent` then
/// `TakerPaymentSent`, 0.1 RICK to the HTLC's P2SH, an OP_RETURN of the secret hash, the change.
const RICK_FEE_TX: &str = "0400008085202f89011ca964f77200b73d64b481f47de84098041d3470d6256e44f2741f080e2b11cf020000006b4830450221008a064f5e51ef8281d43eb7bcd016fed7e560ea1eb7b0713ec977602c96d8f79b02205bfaa6655b849b9922c03276b938273f2edb8fb9ffcaa2a9212d7220560f6060012102031d4256c4bc9f99ac88bf3dba21773132281f65f9bf23a59928bce08961e2f3ffffffff0246320000000000001976a914ca1e04745e8ca0c60d8c5881531d51bec470743f88ac62752e27000000001976a91405aab5342166f8594baf17a7d9bef5d56744332788ac7768e05f000000000000000000000000000000";
const RICK_PAYMENT_TX: &str = "0400008085202f890108d72683596fc95f65da609d0801a3ee12ff5ec68ec4d28861ac2aed28df9337010000006b48304502210086a03db599438b243bee2b02af56e23447f85d09854416b51305536b9ca5890e02204b288acdea4cdc7ab1ffbd9766a7bdf95f5bd02d2917dfb7089dbf29032591b0012102031d4256c4bc9f99ac88bf3dba21773132281f65f9bf23a59928bce08961e2f3ffffffff03809698000000000017a914888e9e1816214c3960eac7b55e35521ca4426b0c870000000000000000166a148b0221f3b977c1c65dddf17c1c28e2bbced9e7b4fada9526000000001976a91405aab5342166f8594baf17a7d9bef5d56744332788ac7f68e05f000000000000000000000000000000";
const RICK_PAYMENT_TXID: &str = "44fa493757df5fdca823bbac05a8b8feb5862d799d4947fd544abcd129feceea";

/// KMD as the coins file has it (the fields the signer reads).
fn kmd() -> CoinConf {
    CoinConf::from_json(&json!({
        "coin": "KMD",
        "protocol": {"type": "UTXO"},
        "txversion": 4,
        "overwintered": 1,
        "pubtype": 60,
        "p2shtype": 85,
        "wiftype": 188,
        "txfee": 1000,
        "derivation_path": "m/44'/141'",
    }))
    .unwrap()
}

/// The key at m/44'/141'/0'/0/0, derived as an HD withdraw's `from` derivation path is.
fn trezor_key(conf: &CoinConf) -> KeyPair {
    let seed = HdSeed::from_mnemonic(MNEMONIC).unwrap();
    let coin = CoinPath::of_coin(conf).unwrap();
    seed.key_at(&HdPath::parse("m/44'/141'/0'/0/0", &coin).unwrap())
        .unwrap()
}

/// The P2PKH script of `ADDRESS`, parsed as a withdraw's `to` is.
fn address_script(conf: &CoinConf) -> ScriptBuf {
    kdfd::coins::script_pubkey(&kdfd::coins::parse_address(conf, ADDRESS).unwrap())
}

fn txid(s: &str) -> Txid {
    Txid::from_str(s).unwrap()
}

#[test]
fn the_key_is_the_fixtures_address() {
    let conf = kmd();
    let key = trezor_key(&conf);
    assert_eq!(
        kdfd::crypto::hd::address_for(&conf, &key.public_key()).unwrap(),
        ADDRESS
    );
    let script = address_script(&conf);
    assert_eq!(
        script.as_bytes(),
        kdfd::crypto::p2pkh_script(&key.hash160()).as_slice()
    );
}

/// Through `withdraw::build`, the path the `withdraw` RPC takes: `max` from the one unspent
/// with a fixed 10 000-sat fee gives the fixture's single output.
#[test]
fn fee_sapling_reproduced_by_withdraw_build() {
    let conf = kmd();
    let key = trezor_key(&conf);
    let from = address_script(&conf);
    let unspents = [Unspent {
        txid: txid("2807c5b126ec8e2b078cab0f12e4c8b4ce1d7724905f8ebef8dca26b0c8e0f1d"),
        vout: 0,
        value: 1_099_980_000,
        height: 1_444_000,
    }];
    let spec = WithdrawSpec {
        to_script: from.clone(),
        amount: 0,
        max: true,
        fee: FeePolicy::Fixed(10_000),
    };
    let w = withdraw::build(&conf, &key, &from, &unspents, &spec, 0x5D2A_30B8).unwrap();
    assert_eq!(w.tx_hex, FEE_SAPLING_TX);
    assert_eq!(w.tx_hash, FEE_SAPLING_TXID);
    assert_eq!(
        (w.spent_by_me, w.to_value, w.fee),
        (1_099_980_000, 1_099_970_000, 10_000)
    );
    // And the parser reads it back as the same transaction.
    let raw = Vec::<u8>::from_hex(FEE_SAPLING_TX).unwrap();
    let parsed = SaplingTx::parse(&raw).unwrap();
    assert_eq!(parsed.serialize(), raw);
    assert_eq!(parsed.txid().to_string(), FEE_SAPLING_TXID);
}

/// `build` never adds a rewards output (kdfd computes no `kmd_rewards`), so this one is built
/// by hand and signed with the signer `build` uses.
#[test]
fn rewards_claim_reproduced_by_sapling_signer() {
    let conf = kmd();
    let key = trezor_key(&conf);
    let script = address_script(&conf);
    let out = |sat: u64| TxOut {
        value: Amount::from_sat(sat),
        script_pubkey: script.clone(),
    };
    let mut tx = SaplingTx {
        version: 4,
        version_group_id: SAPLING_VERSION_GROUP_ID,
        inputs: vec![TxIn {
            previous_output: OutPoint::new(txid(FEE_SAPLING_TXID), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        outputs: vec![out(1_099_970_000 - 10_000), out(79_605)],
        lock_time: 0x5D2A_F1F2,
        expiry_height: 0,
    };
    withdraw::sign_sapling(&mut tx, &key, &script, &[1_099_970_000], SAPLING_BRANCH_ID).unwrap();
    assert_eq!(
        bitcoin::hex::DisplayHex::to_lower_hex_string(&tx.serialize()[..]),
        REWARDS_TX
    );
    assert_eq!(tx.txid().to_string(), REWARDS_TXID);
}

/// A wrong branch id or input value changes the signature: the match above is not vacuous.
#[test]
fn other_branch_or_value_does_not_match() {
    let conf = kmd();
    let key = trezor_key(&conf);
    let from = address_script(&conf);
    let raw = Vec::<u8>::from_hex(FEE_SAPLING_TX).unwrap();
    for (branch, value) in [
        (0x5BA8_1B19, 1_099_980_000),
        (SAPLING_BRANCH_ID, 1_099_980_001),
    ] {
        let mut tx = SaplingTx::parse(&raw).unwrap();
        withdraw::sign_sapling(&mut tx, &key, &from, &[value], branch).unwrap();
        assert_ne!(tx.serialize(), raw);
    }
}

/// The value of output `vout` of a published transaction, and its txid.
fn prev_output(tx_hex: &str, vout: usize) -> (Txid, u64) {
    let tx = SaplingTx::parse(&Vec::<u8>::from_hex(tx_hex).unwrap()).unwrap();
    (tx.txid(), tx.outputs[vout].value.to_sat())
}

/// The BEER taker payment through `withdraw::build`: a P2SH recipient, a fixed 1000-sat fee
/// (KDF's `txfee` was a flat fee then), the change to the sender.
#[test]
fn kdf_signed_payment_reproduced_by_withdraw_build() {
    let conf = kmd();
    let key = KeyPair::from_passphrase(KDF_PASSPHRASE).unwrap();
    let from = ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&key.hash160()));
    let published = SaplingTx::parse(&Vec::<u8>::from_hex(BEER_PAYMENT_TX).unwrap()).unwrap();
    let (prev, value) = prev_output(BEER_FEE_TX, 1);
    assert_eq!(published.inputs[0].previous_output, OutPoint::new(prev, 1));
    let htlc = published.outputs[0].script_pubkey.clone();
    assert!(htlc.is_p2sh());
    let unspents = [Unspent {
        txid: prev,
        vout: 1,
        value,
        height: 154_900,
    }];
    let spec = WithdrawSpec {
        to_script: htlc,
        amount: 100_000_000,
        max: false,
        fee: FeePolicy::Fixed(1000),
    };
    let w = withdraw::build(&conf, &key, &from, &unspents, &spec, published.lock_time).unwrap();
    assert_eq!(w.tx_hex, BEER_PAYMENT_TX);
    assert_eq!(w.tx_hash, BEER_PAYMENT_TXID);
    assert_eq!(
        (w.fee, w.received_by_me),
        (1000, value - 100_000_000 - 1000)
    );
}

/// The RICK taker payment has an OP_RETURN output `build` does not make: rebuilt by hand from
/// its outputs and signed with the signer `build` uses.
#[test]
fn kdf_signed_payment_with_op_return_reproduced_by_sapling_signer() {
    let key = KeyPair::from_passphrase(KDF_PASSPHRASE).unwrap();
    let from = ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&key.hash160()));
    let published = SaplingTx::parse(&Vec::<u8>::from_hex(RICK_PAYMENT_TX).unwrap()).unwrap();
    let (prev, value) = prev_output(RICK_FEE_TX, 1);
    let mut tx = SaplingTx {
        version: 4,
        version_group_id: SAPLING_VERSION_GROUP_ID,
        inputs: vec![TxIn {
            previous_output: OutPoint::new(prev, 1),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        outputs: published.outputs.clone(),
        lock_time: published.lock_time,
        expiry_height: 0,
    };
    withdraw::sign_sapling(&mut tx, &key, &from, &[value], SAPLING_BRANCH_ID).unwrap();
    assert_eq!(
        bitcoin::hex::DisplayHex::to_lower_hex_string(&tx.serialize()[..]),
        RICK_PAYMENT_TX
    );
    assert_eq!(tx.txid().to_string(), RICK_PAYMENT_TXID);
}
