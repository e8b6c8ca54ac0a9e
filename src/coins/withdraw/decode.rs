//! Decoding raw transactions for history: the bitcoin format (legacy and segwit) and
//! transparent-only overwintered v4 transactions.

use super::zip243::SaplingTx;
use crate::coins::CoinConf;
use bitcoin::{ScriptBuf, Txid};

/// What history needs of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedTx {
    pub txid: Txid,
    /// The outpoints spent: (previous txid, output index).
    pub inputs: Vec<(Txid, u32)>,
    /// The outputs: (value in satoshis, scriptPubKey).
    pub outputs: Vec<(u64, ScriptBuf)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("{0}")]
    Overwintered(#[from] super::zip243::ParseError),
    #[error("invalid transaction: {0}")]
    Bitcoin(String),
}

/// Decodes by the header, not the coin: KMD-family chains hold both pre-Sapling bitcoin-format
/// transactions and overwintered ones (fOverwintered set). `conf` is kept for coins whose format
/// the header cannot tell.
pub fn decode_tx(_conf: &CoinConf, bytes: &[u8]) -> Result<DecodedTx, DecodeError> {
    let overwintered = bytes.len() >= 4 && bytes[3] & 0x80 != 0;
    if overwintered {
        let tx = SaplingTx::parse(bytes)?;
        return Ok(DecodedTx {
            txid: tx.txid(),
            inputs: tx
                .inputs
                .iter()
                .map(|i| (i.previous_output.txid, i.previous_output.vout))
                .collect(),
            outputs: tx
                .outputs
                .into_iter()
                .map(|o| (o.value.to_sat(), o.script_pubkey))
                .collect(),
        });
    }
    let tx: bitcoin::Transaction =
        bitcoin::consensus::deserialize(bytes).map_err(|e| DecodeError::Bitcoin(e.to_string()))?;
    Ok(DecodedTx {
        txid: tx.compute_txid(),
        inputs: tx
            .input
            .iter()
            .map(|i| (i.previous_output.txid, i.previous_output.vout))
            .collect(),
        outputs: tx
            .output
            .into_iter()
            .map(|o| (o.value.to_sat(), o.script_pubkey))
            .collect(),
    })
}
