//! UTXO address parsing and conversion for `validateaddress`, `convertaddress` and
//! `verify_message`: base58check legacy first, then bech32 segwit, then CashAddr for coins that
//! have a cashaddress network, as KDF tries them. Encodings come from the bitcoin and cashaddr
//! crates.

use super::CoinConf;
use crate::crypto;
use bitcoin::base58;
use bitcoin::bech32::{self, segwit, Fe32, Hrp};
use bitcoin::hashes::Hash;
use bitcoin::{PubkeyHash, ScriptBuf, ScriptHash, WPubkeyHash, WScriptHash};

/// What an address pays to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrKind {
    /// Base58check with the coin's `taddr`+`pubtype`.
    P2pkh([u8; 20]),
    /// Base58check with the coin's `taddr`+`p2shtype`.
    P2sh([u8; 20]),
    /// Bech32 witness v0, 20-byte program.
    P2wpkh([u8; 20]),
    /// Bech32 witness v0, 32-byte program.
    P2wsh([u8; 32]),
}

impl AddrKind {
    /// The 20-byte hash of a P2PKH, P2SH or P2WPKH address; `None` for P2WSH.
    pub fn hash160(&self) -> Option<[u8; 20]> {
        match self {
            AddrKind::P2pkh(h) | AddrKind::P2sh(h) | AddrKind::P2wpkh(h) => Some(*h),
            AddrKind::P2wsh(_) => None,
        }
    }
}

/// `taddr` (when non-zero) followed by `p2shtype`.
fn p2sh_prefix(conf: &CoinConf) -> Vec<u8> {
    if conf.taddr != 0 {
        vec![conf.taddr, conf.p2shtype]
    } else {
        vec![conf.p2shtype]
    }
}

/// `Ok(None)` when the string is not base58check at all (then other formats are tried).
fn parse_legacy(conf: &CoinConf, s: &str) -> Result<Option<AddrKind>, String> {
    let raw = match base58::decode(s) {
        Ok(raw) if raw.len() >= 4 => raw,
        _ => return Ok(None),
    };
    let (body, check) = raw.split_at(raw.len() - 4);
    if conf.checksum.of(body) != *check {
        return Err(format!("Address {s} has invalid checksum"));
    }
    if !(21..=22).contains(&body.len()) {
        return Err(format!(
            "Address {s} has invalid length: expected 21 or 22 bytes, got {}",
            body.len()
        ));
    }
    let (prefix, hash) = body.split_at(body.len() - 20);
    let mut h = [0u8; 20];
    h.copy_from_slice(hash);
    if prefix == conf.p2pkh_prefix.as_slice() {
        Ok(Some(AddrKind::P2pkh(h)))
    } else if prefix == p2sh_prefix(conf).as_slice() {
        Ok(Some(AddrKind::P2sh(h)))
    } else {
        Err(format!("Address {s} has invalid prefix"))
    }
}

fn parse_segwit(conf: &CoinConf, s: &str) -> Result<AddrKind, String> {
    let (hrp, version, program) = segwit::decode(s)
        .map_err(|e| format!("Address {s} is not a valid segwit address: {}", causes(&e)))?;
    let ours = conf
        .bech32_hrp
        .as_deref()
        .and_then(|h| Hrp::parse(h).ok())
        .is_some_and(|h| h == hrp);
    if !ours || !conf.segwit {
        return Err(format!("Address {s} has invalid prefix"));
    }
    if version != Fe32::Q {
        return Err(format!(
            "Address {s} has unsupported witness version {}",
            version.to_u8()
        ));
    }
    match program.len() {
        20 => {
            let mut h = [0u8; 20];
            h.copy_from_slice(&program);
            Ok(AddrKind::P2wpkh(h))
        }
        32 => {
            let mut h = [0u8; 32];
            h.copy_from_slice(&program);
            Ok(AddrKind::P2wsh(h))
        }
        n => Err(format!(
            "Address {s} has invalid witness program length {n}"
        )),
    }
}

/// The length of a CashAddr payload (after `prefix:`) of a 20-byte hash: 34 data characters
/// and 8 of checksum. Nothing else is handed to the codec, which indexes on shorter input.
const CASHADDR_PAYLOAD_LEN: usize = 42;

/// `Ok(None)` when the coin has no cashaddress network and the string names no prefix.
fn parse_cash(conf: &CoinConf, s: &str) -> Result<Option<AddrKind>, String> {
    let (prefix, payload) = match (s.split_once(':'), conf.cashaddr_prefix.as_deref()) {
        (Some((p, rest)), _) => (p.to_ascii_lowercase(), rest),
        (None, Some(p)) => (p.to_string(), s),
        (None, None) => return Ok(None),
    };
    let Some(ours) = conf.cashaddr_prefix.as_deref() else {
        return Err(format!("Address {s} has invalid prefix"));
    };
    if prefix != ours {
        return Err(format!(
            "Address {s} has invalid prefix: expected '{ours}', got '{prefix}'"
        ));
    }
    let mixed = payload.bytes().any(|b| b.is_ascii_lowercase())
        && payload.bytes().any(|b| b.is_ascii_uppercase());
    if payload.len() != CASHADDR_PAYLOAD_LEN || mixed {
        return Err(format!("Address {s} is not a valid cash address"));
    }
    let decoded: cashaddr::Payload = format!("{prefix}:{}", payload.to_ascii_lowercase())
        .parse()
        .map_err(|e| format!("Address {s} is not a valid cash address: {e}"))?;
    let h: [u8; 20] = decoded
        .as_ref()
        .try_into()
        .map_err(|_| format!("Address {s} is not a valid cash address: not a 20-byte hash"))?;
    match decoded.hash_type() {
        t if t == cashaddr::HashType::P2PKH => Ok(Some(AddrKind::P2pkh(h))),
        t if t == cashaddr::HashType::P2SH => Ok(Some(AddrKind::P2sh(h))),
        t => Err(format!(
            "Address {s} has unsupported cash address type {}",
            t.numeric_value()
        )),
    }
}

/// An error and its sources: bech32's top-level texts say only "decoding failed".
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        cur = inner.source();
    }
    out
}

/// Parses an address of the coin, or gives the reason it is not one (worded like KDF's).
pub fn parse(conf: &CoinConf, s: &str) -> Result<AddrKind, String> {
    // Base58 decoding is quadratic in the length: a 100 kB "address" would hold a worker for
    // minutes. No address format is near this long (bech32 stops at 90 characters).
    if s.len() > MAX_ADDRESS_LEN {
        return Err(format!(
            "Address of {} characters is longer than any address ({MAX_ADDRESS_LEN} at most)",
            s.len()
        ));
    }
    // A coin with a cashaddress network shows cash addresses, so they are tried first; its
    // legacy base58 addresses are still accepted, as KDF accepts them.
    let cash_err = match parse_cash(conf, s) {
        Ok(Some(kind)) => return Ok(kind),
        Ok(None) => None,
        Err(e) => Some(e),
    };
    let legacy_err = match parse_legacy(conf, s) {
        Ok(Some(kind)) => return Ok(kind),
        Ok(None) => format!("Address {s} is not base58check"),
        Err(e) => e,
    };
    // A bech32 string can also be valid base58, so a legacy checksum failure falls through.
    let segwit_err = match parse_segwit(conf, s) {
        Ok(kind) => return Ok(kind),
        Err(e) => e,
    };
    if segwit_err.ends_with("has invalid prefix") {
        return Err(segwit_err);
    }
    if legacy_err.contains(" has invalid ") {
        return Err(legacy_err);
    }
    let cash_err = cash_err.unwrap_or_else(|| "the coin has no cashaddress network".into());
    Err(format!(
        "Cannot determine format of address {s}: legacy: {legacy_err}; segwit: {segwit_err}; cashaddress: {cash_err}"
    ))
}

/// Longest string [`parse`] tries to decode.
pub const MAX_ADDRESS_LEN: usize = 128;

/// The output script paying to an address.
pub fn script_pubkey(kind: &AddrKind) -> ScriptBuf {
    match kind {
        AddrKind::P2pkh(h) => ScriptBuf::new_p2pkh(&PubkeyHash::from_byte_array(*h)),
        AddrKind::P2sh(h) => ScriptBuf::new_p2sh(&ScriptHash::from_byte_array(*h)),
        AddrKind::P2wpkh(h) => ScriptBuf::new_p2wpkh(&WPubkeyHash::from_byte_array(*h)),
        AddrKind::P2wsh(h) => ScriptBuf::new_p2wsh(&WScriptHash::from_byte_array(*h)),
    }
}

/// `convertaddress`: `standard` rebuilds a P2PKH with the coin's prefix from the hash (even of a
/// P2SH, as KDF does); `segwit` a witness-v0 address with the coin's `bech32_hrp`.
pub fn convert(conf: &CoinConf, from: &str, to_format: &str) -> Result<String, String> {
    let kind = parse(conf, from)?;
    match to_format {
        "standard" => match kind.hash160() {
            Some(h) => Ok(conf.p2pkh_address(&h)),
            None => Err(format!(
                "Cannot convert the P2WSH address {from} to a standard address"
            )),
        },
        "segwit" => {
            let Some(hrp) = conf.bech32_hrp.as_deref() else {
                return Err(
                    "Cannot convert to a segwit address for a coin with no bech32_hrp in config"
                        .into(),
                );
            };
            match kind {
                AddrKind::P2wsh(h) => {
                    let hrp = Hrp::parse(hrp).map_err(|e| format!("invalid bech32_hrp: {e}"))?;
                    bech32::segwit::encode_v0(hrp, &h).map_err(|e| e.to_string())
                }
                AddrKind::P2pkh(h) | AddrKind::P2sh(h) | AddrKind::P2wpkh(h) => {
                    crypto::segwit_address(hrp, &h)
                }
            }
        }
        "cashaddress" => match kind {
            AddrKind::P2pkh(h) => conf.cash_address(&h, false),
            AddrKind::P2sh(h) => conf.cash_address(&h, true),
            AddrKind::P2wpkh(_) | AddrKind::P2wsh(_) => Err(format!(
                "Cannot convert the segwit address {from} to a cash address"
            )),
        },
        other => Err(format!(
            "Error on parse UTXO address format: unknown format '{other}', expected standard, segwit or cashaddress"
        )),
    }
}

#[cfg(test)]
#[path = "address_tests.rs"]
mod tests;
