//! One transaction's KDF `TransactionDetails`, from its decoded form, the outputs its inputs
//! spend and the wallet's scripts. Pure: no I/O, so it is unit-tested with hand-built txs.

use crate::coins::withdraw::DecodedTx;
use crate::coins::{format_amount, CoinConf};
use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Txid};
use foldhash::HashMap;
use serde_json::{json, Value};

/// The outputs spent by a transaction's inputs: (txid, vout) → (value, scriptPubKey).
pub type PrevOuts = HashMap<(Txid, u32), (u64, ScriptBuf)>;

/// The wallet's scripts and the address each one shows as.
#[derive(Debug, Clone, Default)]
pub struct Mine {
    pub scripts: HashMap<ScriptBuf, String>,
}

/// A derived entry: the details (without `confirmations`, which depends on the tip) and the
/// wallet addresses it touches (for `target` filtering).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub details: Value,
    pub my_addresses: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeriveError {
    #[error("input {0}:{1} spends an output we could not read")]
    MissingPrevOut(Txid, u32),
}

/// The address a script pays to, as the coin writes it; `None` for scripts with no address
/// (OP_RETURN, bare multisig). P2PK shows as the P2PKH address of its key, as wallets do.
pub fn script_address(conf: &CoinConf, script: &ScriptBuf) -> Option<String> {
    let b = script.as_bytes();
    if script.is_p2pkh() {
        let h: [u8; 20] = b[3..23].try_into().ok()?;
        return Some(conf.shown_address(&h, false));
    }
    if script.is_p2sh() {
        let h: [u8; 20] = b[2..22].try_into().ok()?;
        return Some(conf.shown_address(&h, true));
    }
    if script.is_p2pk() {
        let key = script.p2pk_public_key()?;
        let h = bitcoin::hashes::hash160::Hash::hash(&key.to_bytes()).to_byte_array();
        return Some(conf.shown_address(&h, false));
    }
    if script.is_p2wpkh() || script.is_p2wsh() {
        let hrp = bitcoin::bech32::Hrp::parse(conf.bech32_hrp.as_deref()?).ok()?;
        return bitcoin::bech32::segwit::encode_v0(hrp, &b[2..]).ok();
    }
    None
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// KDF's `TransactionDetails` of `tx`. `timestamp` is the block time (first-seen time in the
/// mempool); `height` 0 means unmined.
pub fn derive(
    conf: &CoinConf,
    raw: &[u8],
    tx: &DecodedTx,
    prevs: &PrevOuts,
    mine: &Mine,
    height: u64,
    timestamp: u64,
) -> Result<Derived, DeriveError> {
    let coinbase = tx.inputs.len() == 1 && tx.inputs[0].0 == Txid::all_zeros();
    let (mut total_in, mut spent_by_me, mut received_by_me, mut total_out) =
        (0i128, 0i128, 0i128, 0i128);
    let (mut from, mut to, mut my_addresses) = (Vec::new(), Vec::new(), Vec::new());
    if !coinbase {
        for &(txid, vout) in &tx.inputs {
            let (value, script) = prevs
                .get(&(txid, vout))
                .ok_or(DeriveError::MissingPrevOut(txid, vout))?;
            total_in += i128::from(*value);
            if let Some(addr) = mine.scripts.get(script) {
                spent_by_me += i128::from(*value);
                push_unique(&mut my_addresses, addr.clone());
            }
            if let Some(a) = script_address(conf, script) {
                push_unique(&mut from, a);
            }
        }
    }
    for (value, script) in &tx.outputs {
        total_out += i128::from(*value);
        if let Some(addr) = mine.scripts.get(script) {
            received_by_me += i128::from(*value);
            push_unique(&mut my_addresses, addr.clone());
        }
        if let Some(a) = script_address(conf, script) {
            push_unique(&mut to, a);
        }
    }
    // A coinbase creates its outputs: no fee.
    let fee = if coinbase { 0 } else { total_in - total_out };
    let amount = |v: i128| format_amount(v, conf.decimals);
    let hash = tx.txid.to_string();
    let hex = bitcoin::hex::DisplayHex::to_lower_hex_string(raw);
    let details = json!({
        "tx_hex": hex,
        "tx_hash": hash,
        "from": from,
        "to": to,
        "total_amount": amount(total_in),
        "spent_by_me": amount(spent_by_me),
        "received_by_me": amount(received_by_me),
        "my_balance_change": amount(received_by_me - spent_by_me),
        "block_height": height,
        "timestamp": timestamp,
        "fee_details": {"type": "Utxo", "coin": conf.ticker, "amount": amount(fee)},
        "coin": conf.ticker,
        "internal_id": hash,
        "transaction_type": "StandardTransfer",
        "memo": null,
    });
    Ok(Derived {
        details,
        my_addresses,
    })
}

/// `confirmations` as KDF computes it: `tip + 1 - height`, 0 when unmined or ahead of the tip.
pub fn confirmations(tip: u64, height: u64) -> u64 {
    if height == 0 || height > tip {
        0
    } else {
        tip + 1 - height
    }
}

/// The block time of an 80-byte bitcoin header, or of a Zcash-family header (which has a
/// 32-byte `hashFinalSaplingRoot` before the time).
pub fn header_time(header: &[u8]) -> Option<u64> {
    let at = if header.len() > 80 { 100 } else { 68 };
    let b: [u8; 4] = header.get(at..at + 4)?.try_into().ok()?;
    Some(u64::from(u32::from_le_bytes(b)))
}
