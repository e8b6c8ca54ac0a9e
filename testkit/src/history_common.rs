//! Hand-built transactions shared by the history test files.
#![allow(dead_code)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use kdfd::coins::CoinConf;
use serde_json::json;

pub const COIN: u64 = 100_000_000;
pub const BLOCK_TIME: u32 = 1_700_000_000;

pub fn rick_conf() -> CoinConf {
    CoinConf::from_json(
        &json!({"coin": "RICK", "protocol": {"type": "UTXO"}, "pubtype": 60, "p2shtype": 85,
        "segwit": true, "bech32_hrp": "rck"}),
    )
    .unwrap()
}

pub fn bob_script() -> ScriptBuf {
    let k = kdfd::crypto::KeyPair::from_passphrase(crate::PASSPHRASE).unwrap();
    ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&k.hash160()))
}

pub fn other_script() -> ScriptBuf {
    ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&[7u8; 20]))
}

pub fn other_address() -> String {
    kdfd::crypto::p2pkh_address(&[60], &[7u8; 20])
}

pub fn tx(inputs: &[(Txid, u32)], outputs: &[(u64, ScriptBuf)]) -> Transaction {
    Transaction {
        version: Version::ONE,
        lock_time: LockTime::ZERO,
        input: inputs
            .iter()
            .map(|(t, v)| TxIn {
                previous_output: OutPoint::new(*t, *v),
                script_sig: ScriptBuf::from_bytes(vec![0x51]),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: outputs
            .iter()
            .map(|(v, s)| TxOut {
                value: Amount::from_sat(*v),
                script_pubkey: s.clone(),
            })
            .collect(),
    }
}

pub fn raw(t: &Transaction) -> Vec<u8> {
    bitcoin::consensus::serialize(t)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// F pays 10 to someone else; A spends it: 3 to bob, 6.9999 back (fee 0.0001); B spends bob's 3:
/// 1 to the other party, 1.99 change to bob (fee 0.01).
pub struct Chain {
    pub f: Transaction,
    pub a: Transaction,
    pub b: Transaction,
}

pub fn chain() -> Chain {
    let f = tx(
        &[(Txid::from_byte_array([9; 32]), 0)],
        &[(10 * COIN, other_script())],
    );
    let a = tx(
        &[(f.compute_txid(), 0)],
        &[(3 * COIN, bob_script()), (699_990_000, other_script())],
    );
    let b = tx(
        &[(a.compute_txid(), 0)],
        &[(COIN, other_script()), (199_000_000, bob_script())],
    );
    Chain { f, a, b }
}

pub fn header(time: u32) -> String {
    let mut h = vec![0u8; 80];
    h[68..72].copy_from_slice(&time.to_le_bytes());
    hex(&h)
}
