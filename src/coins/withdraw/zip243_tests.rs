//! The published ZIP-243 test vectors (zcash/zips `zip-0243.rst`, "Test vector 1/2/3").

use super::*;
use bitcoin::consensus::deserialize;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Witness};

fn h(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h32(s: &str) -> [u8; 32] {
    h(s).try_into().unwrap()
}

fn le32(s: &str) -> u32 {
    u32::from_le_bytes(h(s).try_into().unwrap())
}

/// Vector 3: a real testnet transaction (txid 97d88148…) with one P2PKH input, sent
/// transparently; decoded, re-encoded, hashed and its signature checked.
const V3_TX: &str = "0400008085202f8901a8c685478265f4c14dada651969c45a65e1aeb8cd6791f2f5bb6a1d9952104d9010000006b483045022100a61e5d557568c2ddc1d9b03a7173c6ce7c996c4daecab007ac8f34bee01e6b9702204d38fdc0bcf2728a69fde78462a10fb45a9baa27873e6a5fc45fb5c76764202a01210365ffea3efa3908918a8b8627724af852fc9b86d7375b103ab0543cf418bcaa7ffeffffff02005a6202000000001976a9148132712c3ff19f3a151234616777420a6d7ef22688ac8b959800000000001976a9145453e4698f02a38abdaa521cd1ff2dee6fac187188ac29b0040048b004000000000000000000000000";

#[test]
fn vector_3_transparent_testnet_tx() {
    let raw = h(V3_TX);
    let tx = SaplingTx::parse(&raw).unwrap();
    assert_eq!(tx.serialize(), raw);
    assert_eq!(
        tx.txid().to_string(),
        "97d8814886d07fc12bbac90c089a10f90906cbb53402ee26e576ef99276c492d"
    );
    assert_eq!(
        (tx.lock_time, tx.expiry_height),
        (le32("29b00400"), le32("48b00400"))
    );
    assert_eq!(
        tx.hash_prevouts(),
        h32("fae31b8dec7b0b77e2c8d6b6eb0e7e4e55abc6574c26dd44464d9408a8e33f11")
    );
    assert_eq!(
        tx.hash_sequence(),
        h32("6c80d37f12d89b6f17ff198723e7db1247c4811d1a695d74d930f99e98418790")
    );
    assert_eq!(
        tx.hash_outputs(),
        h32("d2b04118469b7810a0d1cc59568320aad25a84f407ecac40b4f605a4e6868454")
    );
    let script_code =
        ScriptBuf::from_bytes(h("76a914507173527b4c3318a2aecd793bf1cfed705950cf88ac"));
    let value = u64::from_le_bytes(h("80f0fa0200000000").try_into().unwrap());
    let sighash = tx
        .sighash(
            Some((0, &script_code, value)),
            SIGHASH_ALL,
            1991772603,
            &ShieldedDigests::default(),
        )
        .unwrap();
    assert_eq!(
        sighash,
        h32("f3148f80dfab5e573d5edfe7a850f5fd39234f80b5429d3a57edcc11e34c585b")
    );
    assert_eq!(1991772603, SAPLING_BRANCH_ID);

    // The signature in the scriptSig verifies against our sighash and the input's key.
    let pushes: Vec<Vec<u8>> = tx.inputs[0]
        .script_sig
        .instructions()
        .map(|i| i.unwrap().push_bytes().unwrap().as_bytes().to_vec())
        .collect();
    let sig = bitcoin::ecdsa::Signature::from_slice(&pushes[0]).unwrap();
    let key = bitcoin::secp256k1::PublicKey::from_slice(&pushes[1]).unwrap();
    let msg = bitcoin::secp256k1::Message::from_digest(sighash);
    bitcoin::secp256k1::Secp256k1::verification_only()
        .verify_ecdsa(&msg, &sig.signature, &key)
        .unwrap();
    // And the key hashes to the script code's hash160.
    let h160 = bitcoin::hashes::hash160::Hash::hash(&pushes[1]);
    assert_eq!(&script_code.as_bytes()[3..23], h160.as_byte_array());
}

/// Vector 1: no transparent inputs, two outputs, shielded spends and outputs; the digest for
/// NOT_AN_INPUT with SIGHASH_ALL. The shielded digests are taken from the vector.
#[test]
fn vector_1_not_an_input() {
    let outputs: Vec<TxOut> = {
        let mut b = vec![2u8];
        b.extend(h(
            "e7719811893e0000095200ac6551ac636565b2835a0805750200025151",
        ));
        deserialize(&b).unwrap()
    };
    let tx = SaplingTx {
        version: 4,
        version_group_id: SAPLING_VERSION_GROUP_ID,
        inputs: vec![],
        outputs,
        lock_time: le32("481cdd86"),
        expiry_height: le32("b3cc4318"),
    };
    assert_eq!(
        tx.hash_prevouts(),
        h32("d53a633bbecf82fe9e9484d8a0e727c73bb9e68c96e72dec30144f6a84afa136")
    );
    assert_eq!(
        tx.hash_sequence(),
        h32("a5f25f01959361ee6eb56a7401210ee268226f6ce764a4f10b7f29e54db37272")
    );
    assert_eq!(
        tx.hash_outputs(),
        h32("ab6f7f6c5ad6b56357b5f37e16981723db6c32411753e28c175e15589172194a")
    );
    let shielded = ShieldedDigests {
        join_splits: [0; 32],
        spends: h32("3fd9edb96dccf5b9aeb71e3db3710e74be4f1dfb19234c1217af26181f494a36"),
        outputs: h32("dafece799f638ba7268bf8fe43f02a5112f0bb32a84c4a8c2f508c41ff1c78b5"),
        value_balance: i64::from_le_bytes(h("442117623ceb0500").try_into().unwrap()),
    };
    let sighash = tx
        .sighash(None, SIGHASH_ALL, 1991772603, &shielded)
        .unwrap();
    assert_eq!(
        sighash,
        h32("63d18534de5f2d1c9e169b73f9c783718adbef5c8a7d55b5e7a37affa1dd3ff3")
    );
}

/// Vector 2: two transparent inputs, SIGHASH_NONE on input 1 (outputs and sequences excluded).
#[test]
fn vector_2_sighash_none() {
    let input = |txid: &str, vout: &str, seq: &str| TxIn {
        previous_output: OutPoint {
            txid: Txid::from_byte_array(h32(txid)),
            vout: le32(vout),
        },
        script_sig: ScriptBuf::new(),
        sequence: Sequence(le32(seq)),
        witness: Witness::new(),
    };
    let tx = SaplingTx {
        version: 4,
        version_group_id: SAPLING_VERSION_GROUP_ID,
        inputs: vec![
            input(
                "0bbe32a598c22adfb48cef72ba5d4287c0cefbacfd8ce195b4963c34a94bba7a",
                "175dae4b",
                "53708915",
            ),
            input(
                "090f47a068e227433f9e49d3aa09e356d8d66d0c0121e91a3c4aa3f27fa1b633",
                "96e2b41d",
                "4e970568",
            ),
        ],
        outputs: vec![],
        lock_time: le32("d7034302"),
        expiry_height: le32("011b9a07"),
    };
    assert_eq!(
        tx.hash_prevouts(),
        h32("cacf0f5210cce5fa65a59f314292b3111d299e7d9d582753cf61e1e408552ae4")
    );
    let shielded = ShieldedDigests {
        outputs: h32("b79530fcec83211d21e3c355db538c138d625784c27370e9d1039a8515a23f87"),
        value_balance: i64::from_le_bytes(h("6620edc067ff0200").try_into().unwrap()),
        ..ShieldedDigests::default()
    };
    let value = u64::from_le_bytes(h("adedf02996510200").try_into().unwrap());
    let sighash = tx
        .sighash(
            Some((1, &ScriptBuf::new(), value)),
            2,
            1991772603,
            &shielded,
        )
        .unwrap();
    assert_eq!(
        sighash,
        h32("bbe6d84f57c56b29b914c694baaccb891297e961de3eb46c68e3c89c47b1a1db")
    );
}

#[test]
fn parse_refuses_what_it_cannot_read() {
    let raw = h(V3_TX);
    // A shielded output count of 1.
    let mut shielded = raw.clone();
    let n = shielded.len();
    shielded[n - 2] = 1;
    assert_eq!(SaplingTx::parse(&shielded), Err(ParseError::Shielded));
    // Legacy bitcoin header.
    let mut legacy = raw.clone();
    legacy[3] = 0;
    assert!(matches!(
        SaplingTx::parse(&legacy),
        Err(ParseError::NotV4(_))
    ));
    // Truncated and padded.
    assert!(matches!(
        SaplingTx::parse(&raw[..n - 1]),
        Err(ParseError::Malformed(_))
    ));
    let mut padded = raw;
    padded.push(0);
    assert!(matches!(
        SaplingTx::parse(&padded),
        Err(ParseError::Malformed(_))
    ));
}
