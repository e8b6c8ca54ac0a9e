//! UTXO withdrawals as KDF builds them (spec 2.6): coin selection, fee, signing and the
//! `TransactionDetails` numbers. Pure: the caller fetches unspents and the fee rate and
//! broadcasts nothing (KDF's withdraw only signs).

mod decode;
mod fee;
mod select;
mod sign;
mod zip243;

pub use decode::{decode_tx, DecodeError, DecodedTx};
pub use fee::{
    default_fee_policy, estimatefee_to_sat_per_kb, fee_for_size, fee_policy_from_request,
    parse_amount, FeePolicy, DEFAULT_TXFEE_PER_KB,
};
pub use select::{SelectError, Selection, SizeModel};
pub use sign::{sign_sapling, SenderKind};
pub use zip243::{ParseError, SaplingTx, SAPLING_BRANCH_ID, SAPLING_VERSION_GROUP_ID};

use crate::coins::{format_amount, CoinConf};
use crate::crypto::KeyPair;
use bitcoin::hex::DisplayHex;
use bitcoin::{Amount, OutPoint, Script, ScriptBuf, Sequence, TxIn, TxOut, Witness};
use sign::MeasuredSizes;

/// KDF's dust threshold when the coins file has no `dust`.
pub const DEFAULT_DUST: u64 = 1000;

/// One output of the sender's address, from Electrum `blockchain.scripthash.listunspent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unspent {
    pub txid: bitcoin::Txid,
    pub vout: u32,
    pub value: u64,
    pub height: u32,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct WithdrawSpec {
    /// The recipient's scriptPubKey (P2PKH, P2SH, P2WPKH or P2WSH).
    pub to_script: ScriptBuf,
    /// Satoshis to send; ignored when `max`.
    pub amount: u64,
    /// Send everything, the fee deducted from the output.
    pub max: bool,
    pub fee: FeePolicy,
}

/// The signed transaction and the numbers of KDF's `TransactionDetails`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWithdraw {
    /// Serialised with the witness for segwit senders.
    pub tx_hex: String,
    /// The txid, displayed (byte-reversed) hex.
    pub tx_hash: String,
    /// Sum of the inputs (all from the sender).
    pub spent_by_me: u64,
    /// The change back to the sender (0 without change).
    pub received_by_me: u64,
    /// KDF sets `total_amount` = `spent_by_me`.
    pub total_amount: u64,
    /// Everything left to miners, a dropped dust change included (KDF's `fee_details.amount`).
    pub fee: u64,
    /// `received_by_me - spent_by_me`.
    pub my_balance_change: i64,
    /// The value of the recipient's output.
    pub to_value: u64,
}

/// KDF's `WithdrawError` types for the cases this module decides; texts are KDF's.
/// Amounts are already formatted in coin units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WithdrawError {
    #[error("Not enough {coin} to withdraw: available {available}, required at least {required}")]
    NotSufficientBalance {
        coin: String,
        available: String,
        required: String,
    },
    #[error("Balance is zero")]
    ZeroBalanceToWithdrawMax,
    #[error("The amount {amount} is too small, required at least {threshold}")]
    AmountTooLow { amount: String, threshold: String },
    #[error("Invalid fee policy: {0}")]
    InvalidFeePolicy(String),
    #[error("Invalid address: {0}")]
    InvalidAddress(String),
    /// Not a KDF type: a coin kdfd cannot sign for.
    #[error("{0}")]
    UnsupportedCoin(String),
    #[error("Internal error: {0}")]
    InternalError(String),
}

impl WithdrawError {
    /// KDF's `error_type`.
    pub fn error_type(&self) -> &'static str {
        match self {
            WithdrawError::NotSufficientBalance { .. } => "NotSufficientBalance",
            WithdrawError::ZeroBalanceToWithdrawMax => "ZeroBalanceToWithdrawMax",
            WithdrawError::AmountTooLow { .. } => "AmountTooLow",
            WithdrawError::InvalidFeePolicy(_) => "InvalidFeePolicy",
            WithdrawError::InvalidAddress(_) => "InvalidAddress",
            WithdrawError::UnsupportedCoin(_) => "UnsupportedCoin",
            WithdrawError::InternalError(_) => "InternalError",
        }
    }
}

fn select_error(e: SelectError, conf: &CoinConf) -> WithdrawError {
    let fmt = |sats: u64| format_amount(i128::from(sats), conf.decimals);
    match e {
        SelectError::NotEnough {
            available,
            required,
        } => WithdrawError::NotSufficientBalance {
            coin: conf.ticker.clone(),
            available: fmt(available),
            required: fmt(required),
        },
        SelectError::ZeroBalance => WithdrawError::ZeroBalanceToWithdrawMax,
        SelectError::TooLow { amount, threshold } => WithdrawError::AmountTooLow {
            amount: fmt(amount),
            threshold: fmt(threshold),
        },
    }
}

/// Which kind of sender `from_script` is; it must be the key's own P2PKH or P2WPKH script.
pub fn sender_kind(key: &KeyPair, from_script: &Script) -> Result<SenderKind, WithdrawError> {
    let h160 = key.hash160();
    if from_script.as_bytes() == crate::crypto::p2pkh_script(&h160).as_slice() {
        Ok(SenderKind::P2pkh)
    } else if from_script.as_bytes() == crate::crypto::p2wpkh_script(&h160).as_slice() {
        Ok(SenderKind::P2wpkh)
    } else {
        Err(WithdrawError::InternalError(
            "the sender script is not the key's P2PKH or P2WPKH script".into(),
        ))
    }
}

fn check_recipient(script: &Script) -> Result<(), WithdrawError> {
    if script.is_p2pkh() || script.is_p2sh() || script.is_p2wpkh() || script.is_p2wsh() {
        Ok(())
    } else {
        Err(WithdrawError::InvalidAddress(
            "Expected a P2PKH, P2SH, P2WPKH or P2WSH address".into(),
        ))
    }
}

/// Builds and signs a withdrawal from the one address `from_script` (the key's), spending
/// from `unspents`. `lock_time` is the transaction's nLockTime: KDF passes the current Unix
/// time (its `generate_transaction` sets `now_ms() / 1000`); with every input final it does
/// not delay the transaction. Overwintered coins get a Sapling v4 transaction with
/// nExpiryHeight 0 (no expiry).
pub fn build(
    conf: &CoinConf,
    key: &KeyPair,
    from_script: &Script,
    unspents: &[Unspent],
    spec: &WithdrawSpec,
    lock_time: u32,
) -> Result<SignedWithdraw, WithdrawError> {
    if let Some(why) = conf.signing_refusal() {
        return Err(WithdrawError::UnsupportedCoin(why));
    }
    let kind = sender_kind(key, from_script)?;
    check_recipient(&spec.to_script)?;
    if conf.overwintered && (conf.txversion != 4 || kind != SenderKind::P2pkh) {
        return Err(WithdrawError::UnsupportedCoin(format!(
            "{}: only overwintered v4 transactions from P2PKH addresses can be signed, \
             txversion is {}",
            conf.ticker, conf.txversion
        )));
    }
    let version = i32::try_from(conf.txversion)
        .map_err(|_| WithdrawError::UnsupportedCoin(format!("txversion {}", conf.txversion)))?;
    let pubkey = key.public_key();
    let dust = conf.dust.unwrap_or(DEFAULT_DUST);
    let to_out = |value: u64| TxOut {
        value: Amount::from_sat(value),
        script_pubkey: spec.to_script.clone(),
    };
    let change_out = |value: u64| TxOut {
        value: Amount::from_sat(value),
        script_pubkey: from_script.to_owned(),
    };
    let sizes = if conf.overwintered {
        let (to, change) = (to_out(0), change_out(0));
        MeasuredSizes::new(
            |n, with_change| {
                let mut outputs = vec![to.clone()];
                if with_change {
                    outputs.push(change.clone());
                }
                let draft = sapling_tx(conf, kind, &pubkey, &vec![OutPoint::null(); n], outputs, 0);
                draft.serialize().len() as u64
            },
            1,
        )
    } else {
        MeasuredSizes::bitcoin(kind, &pubkey, &to_out(0), &change_out(0))
    };
    let selection = if spec.max {
        select::select_max(unspents, spec.fee, dust, &sizes)
    } else {
        select::select_exact(unspents, spec.amount, spec.fee, dust, &sizes)
    }
    .map_err(|e| select_error(e, conf))?;

    let mut outputs = vec![to_out(selection.to_value)];
    if let Some(c) = selection.change {
        outputs.push(change_out(c));
    }
    let outpoints: Vec<OutPoint> = selection
        .inputs
        .iter()
        .map(|u| OutPoint::new(u.txid, u.vout))
        .collect();
    let values: Vec<u64> = selection.inputs.iter().map(|u| u.value).collect();
    let (tx_hex, tx_hash) = if conf.overwintered {
        let mut tx = sapling_tx(conf, kind, &pubkey, &outpoints, outputs, lock_time);
        let branch = conf.consensus_branch_id.unwrap_or(SAPLING_BRANCH_ID);
        sign::sign_sapling(&mut tx, key, from_script, &values, branch)?;
        (tx.serialize().to_lower_hex_string(), tx.txid().to_string())
    } else {
        let mut tx = sign::draft(version, lock_time, kind, &pubkey, &outpoints, outputs);
        sign::sign(&mut tx, kind, key, from_script, &values)?;
        (
            bitcoin::consensus::encode::serialize_hex(&tx),
            tx.compute_txid().to_string(),
        )
    };
    let spent: u64 = values.iter().sum();
    let received = selection.change.unwrap_or(0);
    Ok(SignedWithdraw {
        tx_hex,
        tx_hash,
        spent_by_me: spent,
        received_by_me: received,
        total_amount: spent,
        fee: selection.fee,
        my_balance_change: i64::try_from(i128::from(received) - i128::from(spent))
            .unwrap_or(i64::MIN),
        to_value: selection.to_value,
    })
}

/// An overwintered v4 transaction with placeholder unlocking scripts.
fn sapling_tx(
    conf: &CoinConf,
    kind: SenderKind,
    pubkey: &[u8; 33],
    inputs: &[OutPoint],
    outputs: Vec<TxOut>,
    lock_time: u32,
) -> SaplingTx {
    SaplingTx {
        version: 4,
        version_group_id: conf.version_group_id.unwrap_or(SAPLING_VERSION_GROUP_ID),
        inputs: inputs
            .iter()
            .map(|op| TxIn {
                previous_output: *op,
                script_sig: sign::unlock(kind, None, pubkey).0,
                sequence: Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        outputs,
        lock_time,
        expiry_height: 0,
    }
}

#[cfg(test)]
mod tests;
