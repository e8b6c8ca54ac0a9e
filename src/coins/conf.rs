//! One entry of the KDF `coins` file, checked field by field at start-up.

use crate::crypto::{
    self,
    hd::{CoinPath, HdError},
};
use bitcoin::hashes::{hash160, Hash};
use serde_json::Value;

/// How a coin shows its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressFormat {
    /// Base58check P2PKH.
    Standard,
    /// Bech32 P2WPKH.
    Segwit,
    /// CashAddr (BCH family) with the entry's `address_format.network` prefix.
    CashAddress,
}

/// What kdfd needs of a coin entry.
#[derive(Debug, Clone)]
pub struct CoinConf {
    /// Ticker, matched exactly.
    pub ticker: String,
    /// `protocol.type`; only `UTXO` can be activated.
    pub protocol: String,
    /// `taddr` byte (when non-zero) followed by `pubtype`.
    pub p2pkh_prefix: Vec<u8>,
    /// Decimal places of the coin's unit.
    pub decimals: u32,
    /// `segwit: true`.
    pub segwit: bool,
    /// Bech32 human-readable part.
    pub bech32_hrp: Option<String>,
    /// Address format the coin entry asks for.
    pub address_format: AddressFormat,
    /// The CashAddr prefix (`address_format.network`: `bitcoincash`, `ecash`, ...), when the
    /// entry's format is `cashaddress`.
    pub cashaddr_prefix: Option<String>,
    /// `mm2` is present (any value), so the coin may be activated without `mm2` in the request.
    pub mm2: bool,
    /// Default for the response and the request's override.
    pub required_confirmations: u64,
    /// Default for the response and the request's override.
    pub requires_notarization: bool,
    /// Confirmations before a coinbase output may be spent.
    pub mature_confirmations: u64,
    /// `pubtype`: the P2PKH version byte (without `taddr`).
    pub pubtype: u8,
    /// `p2shtype`: the P2SH version byte (KDF's default 85).
    pub p2shtype: u8,
    /// `wiftype`: the WIF version byte (KDF's default 188).
    pub wiftype: u8,
    /// `taddr`: the extra leading byte of Zcash-style addresses; 0 when absent.
    pub taddr: u8,
    /// `derivation_path` (`m/purpose'/coin'`), as written; HD mode parses and checks it.
    pub derivation_path: Option<String>,
    /// `sign_message_prefix`, e.g. `"Komodo Signed Message:\n"`.
    pub sign_message_prefix: Option<String>,
    /// `txversion` (default 1).
    pub txversion: u32,
    /// `overwintered: 1`: Sapling-era transparent transactions (ZIP-243).
    pub overwintered: bool,
    /// `version_group_id` (hex string or number in the coins file).
    pub version_group_id: Option<u32>,
    /// `consensus_branch_id` (hex string or number in the coins file).
    pub consensus_branch_id: Option<u32>,
    /// `txfee`: `None` = absent (1000 sat/kB), `Some(0)` = dynamic, `Some(n)` = n sat/kB.
    pub txfee: Option<u64>,
    /// `dust`: the smallest output in satoshis (KDF's default 1000).
    pub dust: Option<u64>,
    /// `protocol.protocol_data`, for protocols that need more than the type (EVM).
    pub protocol_data: Option<Value>,
    /// `decimals` is in the entry: an ERC-20 token without it asks the contract.
    pub decimals_given: bool,
    /// `fork_id` (BCH family): signatures commit to it with SIGHASH_FORKID.
    pub fork_id: Option<u32>,
    /// `isPoS`: a time field after the version (Peercoin family).
    pub is_pos: bool,
    /// `isPoSV`: a time field after the lock time (Reddcoin family).
    pub is_posv: bool,
    /// `signature_version` as written (`base`, `witness_v0`).
    pub signature_version: Option<String>,
    /// The base58check checksum of its addresses and WIFs (by ticker, as KDF picks it).
    pub checksum: crypto::Checksum,
}

/// Reads an optional u32 given as a number or a hex string (`"0x892f2085"` or `"892f2085"`).
fn hex_u32(entry: &Value, key: &str) -> Result<Option<u32>, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("field '{key}' must be a 32-bit number, got {n}")),
        Some(Value::String(s)) => {
            let digits = s.strip_prefix("0x").unwrap_or(s);
            u32::from_str_radix(digits, 16)
                .map(Some)
                .map_err(|_| format!("field '{key}' must be a 32-bit hex string, got {s:?}"))
        }
        Some(v) => Err(format!(
            "field '{key}' must be a number or hex string, got {v}"
        )),
    }
}

fn opt_string(entry: &Value, key: &str) -> Result<Option<String>, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("field '{key}' must be a string, got {v}")),
    }
}

/// Reads an optional integer field in `0..=max`.
fn int(entry: &Value, key: &str, default: u64, max: u64) -> Result<u64, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("field '{key}' must be an integer from 0 to {max}, got {v}")),
    }
}

fn boolean(entry: &Value, key: &str, default: bool) -> Result<bool, String> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        // KDF's files use 0/1 for some flags.
        Some(Value::Number(n)) if n.as_u64() == Some(0) || n.as_u64() == Some(1) => {
            Ok(n.as_u64() == Some(1))
        }
        Some(v) => Err(format!("field '{key}' must be a bool, got {v}")),
    }
}

/// Parses `address_format` (`{"format": "standard" | "segwit"}`); `None` when absent.
pub fn parse_address_format(v: Option<&Value>) -> Result<Option<AddressFormat>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match v.get("format").and_then(Value::as_str) {
        Some("standard") => Ok(Some(AddressFormat::Standard)),
        Some("segwit") => Ok(Some(AddressFormat::Segwit)),
        Some("cashaddress") => Ok(Some(AddressFormat::CashAddress)),
        _ => Err(format!(
            "address_format must be {{\"format\":\"standard\"|\"segwit\"|\"cashaddress\"}}, got {v}"
        )),
    }
}

/// The one Groestlcoin entry: its base58check is double Groestl-512, not double SHA-256 (KDF
/// picks the checksum by this ticker, not by a field).
const GROESTL_TICKERS: [&str; 1] = ["GRS"];

impl CoinConf {
    /// Why kdfd will not activate this entry at all (its addresses would be wrong or its
    /// protocol is not served); `None` when it activates.
    pub fn refusal(&self) -> Option<String> {
        if !super::SERVED_PROTOCOLS.contains(&self.protocol.as_str()) {
            return Some(format!(
                "protocol type {} is not supported by kdfd (it serves UTXO, ETH and ERC20)",
                self.protocol
            ));
        }
        None
    }

    /// Why kdfd will not sign a transaction of this coin: a transaction format or signature
    /// hash it has no proven code for. The coin still activates (its addresses and balances
    /// are right); `withdraw` answers this reason instead of a transaction the chain would read
    /// differently.
    pub fn signing_refusal(&self) -> Option<String> {
        let t = &self.ticker;
        if self.checksum == crypto::Checksum::Groestl512d {
            return Some(format!(
                "{t}: Groestlcoin transactions (single SHA-256 txids and signature hashes) are not supported by kdfd"
            ));
        }
        if self.fork_id.is_some_and(|f| f != 0) {
            return Some(format!(
                "{t}: signing with a fork id (SIGHASH_FORKID, BCH family) is not supported by kdfd"
            ));
        }
        if self.is_pos {
            return Some(format!(
                "{t}: proof-of-stake transactions (isPoS: a time field after the version) are not supported by kdfd"
            ));
        }
        if self.is_posv {
            return Some(format!(
                "{t}: PoSV transactions (isPoSV: a time field after the lock time) are not supported by kdfd"
            ));
        }
        match self.signature_version.as_deref() {
            None | Some("base") | Some("witness_v0") => None,
            Some(v) => Some(format!(
                "{t}: signature_version '{v}' is not supported by kdfd (base or witness_v0)"
            )),
        }
    }

    /// The base58check P2PKH address of a hash160 (`taddr`+`pubtype`, the coin's checksum).
    pub fn p2pkh_address(&self, h160: &[u8; 20]) -> String {
        let mut payload = self.p2pkh_prefix.clone();
        payload.extend_from_slice(h160);
        crypto::base58check(&payload, self.checksum)
    }

    /// The base58check P2SH address of a hash160 (`taddr`+`p2shtype`, the coin's checksum).
    pub fn p2sh_address(&self, h160: &[u8; 20]) -> String {
        let mut payload = if self.taddr != 0 {
            vec![self.taddr, self.p2shtype]
        } else {
            vec![self.p2shtype]
        };
        payload.extend_from_slice(h160);
        crypto::base58check(&payload, self.checksum)
    }

    /// A P2PKH (or, with `p2sh`, P2SH) hash160 as the entry's format shows it in answers
    /// (history): a cash address for cashaddress coins, base58check otherwise.
    pub fn shown_address(&self, h160: &[u8; 20], p2sh: bool) -> String {
        match (self.address_format, p2sh) {
            (AddressFormat::CashAddress, _) => match self.cash_address(h160, p2sh) {
                Ok(a) => a,
                Err(_) if p2sh => self.p2sh_address(h160),
                Err(_) => self.p2pkh_address(h160),
            },
            (_, true) => self.p2sh_address(h160),
            (_, false) => self.p2pkh_address(h160),
        }
    }

    /// The CashAddr of a P2PKH (or, with `p2sh`, a P2SH) hash160 under the entry's prefix.
    pub fn cash_address(&self, h160: &[u8; 20], p2sh: bool) -> Result<String, String> {
        use cashaddr::CashEnc;
        let Some(prefix) = self.cashaddr_prefix.as_deref() else {
            return Err(format!(
                "coin {} has no cashaddress network (address_format.network) in config",
                self.ticker
            ));
        };
        let encoded = if p2sh {
            h160.encode_p2sh(prefix)
        } else {
            h160.encode_p2pkh(prefix)
        };
        encoded.map_err(|e| format!("cannot encode a cash address: {e}"))
    }

    /// The entry's `derivation_path`, parsed; HD activation needs it.
    pub fn coin_path(&self) -> Result<CoinPath, HdError> {
        CoinPath::parse(
            self.derivation_path
                .as_deref()
                .ok_or(HdError::NoDerivationPath)?,
        )
    }

    /// The address of a public key in the entry's `address_format`: P2PKH with
    /// `taddr`+`pubtype`, or P2WPKH with `bech32_hrp`. Fails only for a segwit entry without a
    /// (valid) HRP.
    pub fn address_of(&self, pubkey: &[u8; 33]) -> Result<String, String> {
        let h160 = hash160::Hash::hash(pubkey).to_byte_array();
        match self.address_format {
            AddressFormat::Standard => Ok(self.p2pkh_address(&h160)),
            AddressFormat::CashAddress => self.cash_address(&h160, false),
            AddressFormat::Segwit => match &self.bech32_hrp {
                Some(hrp) => crypto::segwit_address(hrp, &h160),
                None => Err(format!(
                    "coin {} has segwit address_format but no bech32_hrp in config",
                    self.ticker
                )),
            },
        }
    }

    /// Checks one entry; the error names the field.
    pub fn from_json(entry: &Value) -> Result<CoinConf, String> {
        if !entry.is_object() {
            return Err("entry is not a JSON object".into());
        }
        let ticker = match entry.get("coin") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err("field 'coin' must be a non-empty string".into()),
        };
        let protocol = match entry.get("protocol") {
            Some(p) => p
                .get("type")
                .and_then(Value::as_str)
                .ok_or("field 'protocol' must be an object with a string 'type'")?
                .to_string(),
            None => return Err("\"protocol\" field is missing in coins file".into()),
        };
        let is_btc = ticker == "BTC";
        let pubtype = int(entry, "pubtype", if is_btc { 0 } else { 60 }, 255)? as u8;
        let p2shtype = int(entry, "p2shtype", if is_btc { 5 } else { 85 }, 255)? as u8;
        let wiftype = int(entry, "wiftype", if is_btc { 128 } else { 188 }, 255)? as u8;
        let taddr = int(entry, "taddr", 0, 255)? as u8;
        let p2pkh_prefix = if taddr != 0 {
            vec![taddr, pubtype]
        } else {
            vec![pubtype]
        };
        // UTXO amounts are i128 satoshis; other protocols check their own decimals.
        let max_decimals = if protocol == "UTXO" { 18 } else { 255 };
        let decimals = int(
            entry,
            "decimals",
            if protocol == "UTXO" { 8 } else { 18 },
            max_decimals,
        )? as u32;
        let segwit = boolean(entry, "segwit", false)?;
        let bech32_hrp = match entry.get("bech32_hrp") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                crate::crypto::segwit_address(s, &[0; 20])
                    .map_err(|e| format!("field 'bech32_hrp': {e}"))?;
                Some(s.clone())
            }
            Some(v) => return Err(format!("field 'bech32_hrp' must be a string, got {v}")),
        };
        let address_format = parse_address_format(entry.get("address_format"))
            .map_err(|e| format!("field 'address_format': {e}"))?
            .unwrap_or(AddressFormat::Standard);
        let cashaddr_prefix = match entry["address_format"].get("network") {
            _ if address_format != AddressFormat::CashAddress => None,
            Some(Value::String(n))
                if !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) =>
            {
                Some(n.clone())
            }
            v => {
                return Err(format!(
                "field 'address_format': cashaddress needs a lowercase 'network' prefix, got {}",
                v.unwrap_or(&Value::Null)
            ))
            }
        };
        if address_format == AddressFormat::Segwit && (!segwit || bech32_hrp.is_none()) {
            return Err(
                "field 'address_format' is segwit but 'segwit' or 'bech32_hrp' is missing".into(),
            );
        }
        let checksum = if protocol == "UTXO" && GROESTL_TICKERS.contains(&ticker.as_str()) {
            crypto::Checksum::Groestl512d
        } else {
            crypto::Checksum::Sha256d
        };
        Ok(CoinConf {
            ticker,
            protocol,
            p2pkh_prefix,
            decimals,
            segwit,
            bech32_hrp,
            address_format,
            cashaddr_prefix,
            mm2: entry.get("mm2").is_some_and(|v| !v.is_null()),
            required_confirmations: int(entry, "required_confirmations", 1, u32::MAX as u64)?,
            requires_notarization: boolean(entry, "requires_notarization", false)?,
            mature_confirmations: int(entry, "mature_confirmations", 100, u32::MAX as u64)?,
            pubtype,
            p2shtype,
            wiftype,
            taddr,
            derivation_path: opt_string(entry, "derivation_path")?,
            sign_message_prefix: opt_string(entry, "sign_message_prefix")?,
            txversion: int(entry, "txversion", 1, u32::MAX as u64)? as u32,
            overwintered: boolean(entry, "overwintered", false)?,
            version_group_id: hex_u32(entry, "version_group_id")?,
            consensus_branch_id: hex_u32(entry, "consensus_branch_id")?,
            txfee: match entry.get("txfee") {
                None | Some(Value::Null) => None,
                Some(_) => Some(int(entry, "txfee", 0, u64::MAX)?),
            },
            dust: match entry.get("dust") {
                None | Some(Value::Null) => None,
                Some(_) => Some(int(entry, "dust", 0, u64::MAX)?),
            },
            protocol_data: entry
                .get("protocol")
                .and_then(|p| p.get("protocol_data"))
                .filter(|v| !v.is_null())
                .cloned(),
            decimals_given: entry.get("decimals").is_some_and(|v| !v.is_null()),
            fork_id: hex_u32(entry, "fork_id")?,
            is_pos: boolean(entry, "isPoS", false)?,
            is_posv: boolean(entry, "isPoSV", false)?,
            signature_version: opt_string(entry, "signature_version")?,
            checksum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_follow_kdf() {
        let c =
            CoinConf::from_json(&json!({"coin": "RICK", "protocol": {"type": "UTXO"}})).unwrap();
        assert_eq!(c.p2pkh_prefix, vec![60]);
        assert_eq!(
            (c.decimals, c.required_confirmations, c.mature_confirmations),
            (8, 1, 100)
        );
        assert!(!c.mm2);
        let c =
            CoinConf::from_json(&json!({"coin": "BTC", "protocol": {"type": "UTXO"}, "mm2": 1}))
                .unwrap();
        assert_eq!(c.p2pkh_prefix, vec![0]);
        assert!(c.mm2);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (json!({"protocol": {"type": "UTXO"}}), "'coin'"),
            (json!({"coin": "X"}), "\"protocol\" field is missing"),
            (
                json!({"coin": "X", "protocol": {"type": "UTXO"}, "pubtype": 300}),
                "'pubtype'",
            ),
            (
                json!({"coin": "X", "protocol": {"type": "UTXO"}, "decimals": "8"}),
                "'decimals'",
            ),
            (
                json!({"coin": "X", "protocol": {"type": "UTXO"}, "address_format": {"format": "segwit"}}),
                "'address_format'",
            ),
            (
                json!({"coin": "X", "protocol": {"type": "UTXO"}, "bech32_hrp": 5}),
                "'bech32_hrp'",
            ),
        ];
        for (entry, needle) in cases {
            let err = CoinConf::from_json(&entry).unwrap_err();
            assert!(err.contains(needle), "{entry}: {err}");
        }
    }
}
