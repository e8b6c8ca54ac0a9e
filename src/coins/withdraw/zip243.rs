//! Overwintered v4 (Sapling-format) transactions with transparent parts only, as the KMD family
//! uses them: serialisation, txid and the ZIP-243 signature hash (BLAKE2b-256).
//! Inputs, outputs and outpoints are encoded by the bitcoin crate; only the v4 framing is ours.

use bitcoin::consensus::{deserialize_partial, Encodable};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::{Script, TxIn, TxOut, Txid};

/// `nVersionGroupId` of Sapling v4 transactions.
pub const SAPLING_VERSION_GROUP_ID: u32 = 0x892F_2085;
/// The Sapling consensus branch id (KMD and its asset chains stay on it).
pub const SAPLING_BRANCH_ID: u32 = 0x76B8_09BB;
const OVERWINTERED_FLAG: u32 = 1 << 31;

pub const SIGHASH_ALL: u32 = 1;
const SIGHASH_NONE: u32 = 2;
const SIGHASH_SINGLE: u32 = 3;
const SIGHASH_ANYONECANPAY: u32 = 0x80;

/// A v4 transaction without shielded parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaplingTx {
    /// The version without the fOverwintered bit (4).
    pub version: u32,
    pub version_group_id: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    pub lock_time: u32,
    pub expiry_height: u32,
}

/// The shielded parts' digests and value balance, all zero for a transparent-only transaction;
/// only the published ZIP-243 vectors (which have shielded parts) need other values.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShieldedDigests {
    pub join_splits: [u8; 32],
    pub spends: [u8; 32],
    pub outputs: [u8; 32],
    pub value_balance: i64,
}

/// Why bytes are not a transparent v4 transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("not an overwintered v4 transaction (header {0:#010x})")]
    NotV4(u32),
    #[error("transaction has shielded parts, which kdfd does not decode")]
    Shielded,
    #[error("malformed overwintered transaction: {0}")]
    Malformed(String),
}

fn blake2b(personal: &[u8; 16], data: &[u8]) -> [u8; 32] {
    let hash = blake2b_simd::Params::new()
        .hash_length(32)
        .personal(personal)
        .hash(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_bytes());
    out
}

/// Appends a consensus encoding; writing into a Vec cannot fail.
fn put<T: Encodable + ?Sized>(buf: &mut Vec<u8>, item: &T) {
    let _ = item.consensus_encode(buf);
}

impl SaplingTx {
    /// `version | fOverwintered`.
    pub fn header(&self) -> u32 {
        self.version | OVERWINTERED_FLAG
    }

    /// The consensus serialisation (`valueBalance` 0, no shielded spends, outputs or JoinSplits).
    pub fn serialize(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(64 + 150 * self.inputs.len() + 34 * self.outputs.len());
        put(&mut b, &self.header());
        put(&mut b, &self.version_group_id);
        put(&mut b, &self.inputs);
        put(&mut b, &self.outputs);
        put(&mut b, &self.lock_time);
        put(&mut b, &self.expiry_height);
        put(&mut b, &0i64);
        b.extend_from_slice(&[0, 0, 0]);
        b
    }

    /// Double SHA-256 of the serialisation, as for bitcoin.
    pub fn txid(&self) -> Txid {
        Txid::from_raw_hash(sha256d::Hash::hash(&self.serialize()))
    }

    /// Parses a transparent-only v4 transaction; trailing bytes are an error.
    pub fn parse(bytes: &[u8]) -> Result<SaplingTx, ParseError> {
        let mut pos = 0usize;
        macro_rules! take {
            ($t:ty) => {{
                let (v, n): ($t, usize) = deserialize_partial(&bytes[pos..])
                    .map_err(|e| ParseError::Malformed(e.to_string()))?;
                pos += n;
                v
            }};
        }
        let header = take!(u32);
        if header & OVERWINTERED_FLAG == 0 || header & !OVERWINTERED_FLAG != 4 {
            return Err(ParseError::NotV4(header));
        }
        let version_group_id = take!(u32);
        if version_group_id != SAPLING_VERSION_GROUP_ID {
            return Err(ParseError::Malformed(format!(
                "version group id {version_group_id:#010x}"
            )));
        }
        let inputs = take!(Vec<TxIn>);
        let outputs = take!(Vec<TxOut>);
        let lock_time = take!(u32);
        let expiry_height = take!(u32);
        let value_balance = take!(i64);
        let spends = take!(bitcoin::VarInt);
        let shielded_outputs = take!(bitcoin::VarInt);
        let join_splits = take!(bitcoin::VarInt);
        if value_balance != 0 || spends.0 != 0 || shielded_outputs.0 != 0 || join_splits.0 != 0 {
            return Err(ParseError::Shielded);
        }
        if pos != bytes.len() {
            return Err(ParseError::Malformed(format!(
                "{} bytes after the transaction",
                bytes.len() - pos
            )));
        }
        Ok(SaplingTx {
            version: 4,
            version_group_id,
            inputs,
            outputs,
            lock_time,
            expiry_height,
        })
    }

    pub fn hash_prevouts(&self) -> [u8; 32] {
        let mut b = Vec::with_capacity(36 * self.inputs.len());
        for i in &self.inputs {
            put(&mut b, &i.previous_output);
        }
        blake2b(b"ZcashPrevoutHash", &b)
    }

    pub fn hash_sequence(&self) -> [u8; 32] {
        let mut b = Vec::with_capacity(4 * self.inputs.len());
        for i in &self.inputs {
            put(&mut b, &i.sequence);
        }
        blake2b(b"ZcashSequencHash", &b)
    }

    pub fn hash_outputs(&self) -> [u8; 32] {
        let mut b = Vec::with_capacity(34 * self.outputs.len());
        for o in &self.outputs {
            put(&mut b, o);
        }
        blake2b(b"ZcashOutputsHash", &b)
    }

    /// The ZIP-243 signature hash. `input` is `(index, scriptCode, value spent)`, or `None` for
    /// the NOT_AN_INPUT digest. Withdrawals sign with [`SIGHASH_ALL`] and zero `shielded`.
    pub fn sighash(
        &self,
        input: Option<(usize, &Script, u64)>,
        hash_type: u32,
        branch_id: u32,
        shielded: &ShieldedDigests,
    ) -> Result<[u8; 32], String> {
        let base = hash_type & 0x1f;
        let anyone = hash_type & SIGHASH_ANYONECANPAY != 0;
        let zero = [0u8; 32];
        let prevouts = if anyone { zero } else { self.hash_prevouts() };
        let sequence = if anyone || base == SIGHASH_SINGLE || base == SIGHASH_NONE {
            zero
        } else {
            self.hash_sequence()
        };
        let outputs = if base != SIGHASH_SINGLE && base != SIGHASH_NONE {
            self.hash_outputs()
        } else {
            match input {
                Some((i, _, _)) if base == SIGHASH_SINGLE && i < self.outputs.len() => {
                    let mut b = Vec::new();
                    put(&mut b, &self.outputs[i]);
                    blake2b(b"ZcashOutputsHash", &b)
                }
                _ => zero,
            }
        };
        let mut p = Vec::with_capacity(400);
        put(&mut p, &self.header());
        put(&mut p, &self.version_group_id);
        for h in [
            &prevouts,
            &sequence,
            &outputs,
            &shielded.join_splits,
            &shielded.spends,
            &shielded.outputs,
        ] {
            p.extend_from_slice(h);
        }
        put(&mut p, &self.lock_time);
        put(&mut p, &self.expiry_height);
        put(&mut p, &shielded.value_balance);
        put(&mut p, &hash_type);
        if let Some((i, script_code, value)) = input {
            let txin = self.inputs.get(i).ok_or_else(|| format!("no input {i}"))?;
            put(&mut p, &txin.previous_output);
            put(&mut p, script_code);
            put(&mut p, &value);
            put(&mut p, &txin.sequence);
        }
        let mut personal = [0u8; 16];
        personal[..12].copy_from_slice(b"ZcashSigHash");
        personal[12..].copy_from_slice(&branch_id.to_le_bytes());
        Ok(blake2b(&personal, &p))
    }
}

#[cfg(test)]
#[path = "zip243_tests.rs"]
mod tests;
