//! Transactions for the bitcoin format (legacy and segwit v0): drafts for sizing, and signing
//! with `SighashCache` (legacy sighash, BIP143) and the wallet's [`KeyPair`]; and the signing of
//! overwintered v4 transactions (ZIP-243).

use super::select::SizeModel;
use super::zip243::{SaplingTx, ShieldedDigests, SIGHASH_ALL};
use super::WithdrawError;
use crate::crypto::KeyPair;
use bitcoin::absolute::LockTime;
use bitcoin::script::PushBytesBuf;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

/// How the sender's outputs are locked, hence how its inputs are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    /// P2PKH: scriptSig `<sig> <pubkey>`, legacy sighash.
    P2pkh,
    /// P2WPKH: witness `[sig, pubkey]`, BIP143 sighash.
    P2wpkh,
}

/// The sighash-ALL signature KDF produces is at most 72 bytes with its type byte (low-S DER is at
/// most 71), so drafts carry 72-byte placeholders: a P2PKH input is then 148 bytes and a P2WPKH
/// input 68 vbytes, the sizes KDF estimates with.
const DRAFT_SIG_LEN: usize = 72;

/// The input's unlocking data: placeholders when `sig` is `None`.
pub(super) fn unlock(
    kind: SenderKind,
    sig: Option<Vec<u8>>,
    pubkey: &[u8; 33],
) -> (ScriptBuf, Witness) {
    let sig = sig.unwrap_or_else(|| vec![0; DRAFT_SIG_LEN]);
    match kind {
        SenderKind::P2pkh => {
            // Both pushes are under 76 bytes, so the conversions cannot fail.
            let sig = PushBytesBuf::try_from(sig).unwrap_or_default();
            let key = PushBytesBuf::try_from(pubkey.to_vec()).unwrap_or_default();
            let script = ScriptBuf::builder()
                .push_slice(sig)
                .push_slice(key)
                .into_script();
            (script, Witness::new())
        }
        SenderKind::P2wpkh => (
            ScriptBuf::new(),
            Witness::from_slice(&[sig, pubkey.to_vec()]),
        ),
    }
}

/// A transaction spending `inputs` (outpoints) to `outputs`, with placeholder unlocking data.
pub fn draft(
    version: i32,
    lock_time: u32,
    kind: SenderKind,
    pubkey: &[u8; 33],
    inputs: &[OutPoint],
    outputs: Vec<TxOut>,
) -> Transaction {
    let input = inputs
        .iter()
        .map(|op| {
            let (script_sig, witness) = unlock(kind, None, pubkey);
            TxIn {
                previous_output: *op,
                script_sig,
                // Final: KDF's withdrawals do not signal RBF.
                sequence: Sequence::MAX,
                witness,
            }
        })
        .collect();
    Transaction {
        version: Version(version),
        lock_time: LockTime::from_consensus(lock_time),
        input,
        output: outputs,
    }
}

/// Transaction sizes for any input count, measured on drafts of 1 and 2 inputs (with and
/// without change) and extrapolated exactly (checked against full drafts in tests).
/// Bitcoin format: measured in weight units, the size is the virtual size `ceil(weight / 4)`
/// (the bitcoin crate's `vsize`; for a non-segwit transaction that is its plain size), which
/// is what we charge segwit withdrawals by. Overwintered: measured in bytes (`unit` 1).
pub struct MeasuredSizes {
    /// Measure of the draft with one input and no change.
    one_plain: u64,
    /// What a change output adds.
    change: u64,
    /// What each further input adds (the input count's varint aside).
    per_input: u64,
    /// Measure units per byte: 4 for weight, 1 for bytes.
    unit: u64,
}

impl MeasuredSizes {
    /// `measure(inputs, with_change)` gives the draft's weight (`unit` 4) or bytes (`unit` 1).
    pub fn new(measure: impl Fn(usize, bool) -> u64, unit: u64) -> Self {
        let one = measure(1, false);
        MeasuredSizes {
            one_plain: one,
            change: measure(1, true) - one,
            per_input: measure(2, false) - one,
            unit,
        }
    }

    /// Sizes of bitcoin-format drafts sending `to` (and `change`).
    pub fn bitcoin(kind: SenderKind, pubkey: &[u8; 33], to: &TxOut, change: &TxOut) -> Self {
        let op = OutPoint::null();
        Self::new(
            |n, with_change| {
                let mut outs = vec![to.clone()];
                if with_change {
                    outs.push(change.clone());
                }
                draft(1, 0, kind, pubkey, &vec![op; n], outs)
                    .weight()
                    .to_wu()
            },
            4,
        )
    }
}

/// Bytes of a compact-size (varint) count.
pub(super) fn varint_len(n: usize) -> u64 {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl SizeModel for MeasuredSizes {
    fn size(&self, inputs: usize, with_change: bool) -> u64 {
        let n = inputs.max(1);
        let measure = self.one_plain
            + self.per_input * (n as u64 - 1)
            + self.unit * (varint_len(n) - 1)
            + if with_change { self.change } else { 0 };
        measure.div_ceil(self.unit)
    }
}

/// Signs every input of `tx`, each spending `values[i]` satoshis locked to `from_script`.
pub fn sign(
    tx: &mut Transaction,
    kind: SenderKind,
    key: &KeyPair,
    from_script: &bitcoin::Script,
    values: &[u64],
) -> Result<(), WithdrawError> {
    let internal = |e: &dyn std::fmt::Display| WithdrawError::InternalError(e.to_string());
    let mut digests = Vec::with_capacity(tx.input.len());
    {
        let mut cache = SighashCache::new(&*tx);
        for (i, value) in values.iter().enumerate() {
            let digest = match kind {
                SenderKind::P2pkh => {
                    let h = cache
                        .legacy_signature_hash(i, from_script, EcdsaSighashType::All.to_u32())
                        .map_err(|e| internal(&e))?;
                    bitcoin::hashes::Hash::to_byte_array(h)
                }
                SenderKind::P2wpkh => {
                    let h = cache
                        .p2wpkh_signature_hash(
                            i,
                            from_script,
                            Amount::from_sat(*value),
                            EcdsaSighashType::All,
                        )
                        .map_err(|e| internal(&e))?;
                    bitcoin::hashes::Hash::to_byte_array(h)
                }
            };
            digests.push(digest);
        }
    }
    let pubkey = key.public_key();
    for (input, digest) in tx.input.iter_mut().zip(digests) {
        let sig = bitcoin::ecdsa::Signature::sighash_all(key.sign_digest(digest));
        let (script_sig, witness) = unlock(kind, Some(sig.to_vec()), &pubkey);
        input.script_sig = script_sig;
        input.witness = witness;
    }
    Ok(())
}

/// Signs every P2PKH input of an overwintered v4 `tx` with ZIP-243 sighash ALL under consensus
/// branch `branch`, each spending `values[i]` satoshis locked to `from_script`. [`build`] signs
/// through it. It is `pub` so that the published signed-transaction fixtures
/// (`tests/zip243_fixture.rs`) can check it on transactions `build` does not shape (a KMD
/// rewards claim, a swap payment with an OP_RETURN).
///
/// [`build`]: super::build
pub fn sign_sapling(
    tx: &mut SaplingTx,
    key: &KeyPair,
    from_script: &bitcoin::Script,
    values: &[u64],
    branch: u32,
) -> Result<(), WithdrawError> {
    if values.len() != tx.inputs.len() {
        return Err(WithdrawError::InternalError(format!(
            "{} input values for {} inputs",
            values.len(),
            tx.inputs.len()
        )));
    }
    // Digests first, scripts after: `sighash` borrows the whole transaction.
    let mut sigs = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let digest = tx
            .sighash(
                Some((i, from_script, *value)),
                SIGHASH_ALL,
                branch,
                &ShieldedDigests::default(),
            )
            .map_err(WithdrawError::InternalError)?;
        sigs.push(bitcoin::ecdsa::Signature::sighash_all(key.sign_digest(digest)).to_vec());
    }
    let pubkey = key.public_key();
    for (input, sig) in tx.inputs.iter_mut().zip(sigs) {
        input.script_sig = unlock(SenderKind::P2pkh, Some(sig), &pubkey).0;
    }
    Ok(())
}
