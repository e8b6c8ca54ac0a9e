//! HD wallet keys as KDF derives them: BIP39 English mnemonic (empty BIP39 passphrase) → BIP32
//! master → `m/purpose'/coin'/account'/chain/index`. All BIP32 maths comes from the `bitcoin` crate.

use super::KeyPair;
use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::NetworkKind;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::OnceLock;

/// One shared context: building a secp256k1 context is far slower than one child derivation.
pub(crate) fn secp() -> &'static Secp256k1<All> {
    static CTX: OnceLock<Secp256k1<All>> = OnceLock::new();
    CTX.get_or_init(Secp256k1::new)
}

/// Why a mnemonic, a path or a derivation was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HdError {
    /// Not a BIP39 English mnemonic (unknown word, bad word count or checksum).
    #[error("Invalid BIP39 mnemonic: {0}")]
    Mnemonic(String),
    /// A derivation path that breaks KDF's rules; the text names the rule.
    #[error("Invalid derivation path '{path}': {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The coin entry has no `derivation_path` (KDF's activation error text).
    #[error("'derivation_path' field is not found in config")]
    NoDerivationPath,
    /// BIP32 refused a child (an index ≥ 2^31 where a normal one is needed, or a 2^-127 event).
    #[error("Error deriving key: {0}")]
    Derivation(String),
}

fn path_err(path: &str, reason: impl Into<String>) -> HdError {
    HdError::Path {
        path: path.to_string(),
        reason: reason.into(),
    }
}

fn bip32_err(e: bitcoin::bip32::Error) -> HdError {
    HdError::Derivation(e.to_string())
}

/// The wallet's BIP32 master key. `Debug` never prints it.
#[derive(Clone)]
pub struct HdSeed {
    master: Xpriv,
}

impl fmt::Debug for HdSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HdSeed(<redacted>)")
    }
}

/// The purpose and coin type of a coins-file `derivation_path` (`m/44'/141'`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinPath {
    /// BIP43 purpose: 32, 44, 49 or 84.
    pub purpose: u32,
    /// SLIP-44 coin type.
    pub coin_type: u32,
}

/// The purposes KDF's standard HD path accepts.
const PURPOSES: [u32; 4] = [32, 44, 49, 84];

fn parse_bip32(s: &str) -> Result<Vec<ChildNumber>, HdError> {
    DerivationPath::from_str(s.trim())
        .map(|p| p.into_iter().copied().collect())
        .map_err(|e| path_err(s, e.to_string()))
}

fn hardened(path: &str, c: ChildNumber, what: &str) -> Result<u32, HdError> {
    match c {
        ChildNumber::Hardened { index } => Ok(index),
        ChildNumber::Normal { .. } => Err(path_err(path, format!("{what} must be hardened"))),
    }
}

fn normal(path: &str, c: ChildNumber, what: &str) -> Result<u32, HdError> {
    match c {
        ChildNumber::Normal { index } => Ok(index),
        ChildNumber::Hardened { .. } => Err(path_err(path, format!("{what} must not be hardened"))),
    }
}

impl CoinPath {
    /// Parses a coins-file `derivation_path`: exactly `m/purpose'/coin_type'`.
    pub fn parse(s: &str) -> Result<CoinPath, HdError> {
        let children = parse_bip32(s)?;
        if children.len() != 2 {
            return Err(path_err(
                s,
                format!(
                    "expected 2 levels (m/purpose'/coin_type'), found {}",
                    children.len()
                ),
            ));
        }
        CoinPath::from_children(s, children[0], children[1])
    }

    fn from_children(s: &str, p: ChildNumber, c: ChildNumber) -> Result<CoinPath, HdError> {
        let purpose = hardened(s, p, "purpose")?;
        if !PURPOSES.contains(&purpose) {
            return Err(path_err(
                s,
                format!("purpose {purpose} is not one of 32, 44, 49, 84"),
            ));
        }
        let coin_type = hardened(s, c, "coin_type")?;
        Ok(CoinPath { purpose, coin_type })
    }

    fn children(&self) -> Result<[ChildNumber; 2], HdError> {
        Ok([
            ChildNumber::from_hardened_idx(self.purpose).map_err(bip32_err)?,
            ChildNumber::from_hardened_idx(self.coin_type).map_err(bip32_err)?,
        ])
    }
}

impl fmt::Display for CoinPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m/{}'/{}'", self.purpose, self.coin_type)
    }
}

/// A BIP44 chain: receiving (0) or change (1) addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Chain {
    /// Chain 0.
    External,
    /// Chain 1.
    Internal,
}

impl Chain {
    /// The chain's child index.
    pub fn index(self) -> u32 {
        match self {
            Chain::External => 0,
            Chain::Internal => 1,
        }
    }

    /// The chain of a child index (0 or 1).
    pub fn from_index(i: u32) -> Option<Chain> {
        match i {
            0 => Some(Chain::External),
            1 => Some(Chain::Internal),
            _ => None,
        }
    }
}

/// A full address path `m/purpose'/coin'/account'/chain/index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HdPath {
    /// Purpose and coin type.
    pub coin: CoinPath,
    /// The account (hardened on the wire), below 2^31.
    pub account: u32,
    /// External or internal chain.
    pub chain: Chain,
    /// The address index (non-hardened), below 2^31.
    pub index: u32,
}

impl fmt::Display for HdPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}'/{}/{}",
            self.coin,
            self.account,
            self.chain.index(),
            self.index
        )
    }
}

impl HdPath {
    /// Parses a `derivation_path` given in a request and checks its coin type against the coin's.
    pub fn parse(s: &str, expected: &CoinPath) -> Result<HdPath, HdError> {
        let c = parse_bip32(s)?;
        if c.len() != 5 {
            return Err(path_err(
                s,
                format!(
                    "expected 5 levels (m/purpose'/coin_type'/account'/chain/address_index), found {}",
                    c.len()
                ),
            ));
        }
        let coin = CoinPath::from_children(s, c[0], c[1])?;
        if coin.coin_type != expected.coin_type {
            return Err(path_err(
                s,
                format!(
                    "coin_type {} does not match the coin's coin_type {}",
                    coin.coin_type, expected.coin_type
                ),
            ));
        }
        let account = hardened(s, c[2], "account")?;
        let chain_ix = normal(s, c[3], "chain")?;
        let chain = Chain::from_index(chain_ix).ok_or_else(|| {
            path_err(
                s,
                format!("chain {chain_ix} is not 0 (External) or 1 (Internal)"),
            )
        })?;
        let index = normal(s, c[4], "address_index")?;
        Ok(HdPath {
            coin,
            account,
            chain,
            index,
        })
    }
}

impl HdSeed {
    /// Parses a BIP39 English mnemonic (checksum checked) and builds the BIP32 master from its
    /// seed with an empty BIP39 passphrase, as KDF does.
    pub fn from_mnemonic(phrase: &str) -> Result<HdSeed, HdError> {
        let m = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, phrase)
            .map_err(|e| HdError::Mnemonic(e.to_string()))?;
        let seed = m.to_seed_normalized("");
        // The network byte only changes the xpub/xprv version; KDF shows mainnet `xpub`.
        let master = Xpriv::new_master(NetworkKind::Main, &seed).map_err(bip32_err)?;
        Ok(HdSeed { master })
    }

    fn derive(&self, path: &[ChildNumber]) -> Result<Xpriv, HdError> {
        self.master.derive_priv(secp(), &path).map_err(bip32_err)
    }

    /// The account xpub at `m/purpose'/coin'/account'`.
    pub fn account_xpub(&self, coin: &CoinPath, account: u32) -> Result<Xpub, HdError> {
        let [p, c] = coin.children()?;
        let a = ChildNumber::from_hardened_idx(account).map_err(bip32_err)?;
        Ok(Xpub::from_priv(secp(), &self.derive(&[p, c, a])?))
    }

    /// The key pair of an address path.
    pub fn key_at(&self, path: &HdPath) -> Result<KeyPair, HdError> {
        let [p, c] = path.coin.children()?;
        let children = [
            p,
            c,
            ChildNumber::from_hardened_idx(path.account).map_err(bip32_err)?,
            ChildNumber::from_normal_idx(path.chain.index()).map_err(bip32_err)?,
            ChildNumber::from_normal_idx(path.index).map_err(bip32_err)?,
        ];
        Ok(KeyPair::from_secret(self.derive(&children)?.private_key))
    }

    /// KDF's internal identity key (`get_public_key`, the wallet's rmd160): `m/44'/141'/2147483647/0/0`
    /// with a non-hardened 2^31-1 account level. It is not any coin's address key.
    pub fn internal_key(&self) -> Result<KeyPair, HdError> {
        let children = [
            ChildNumber::from_hardened_idx(44).map_err(bip32_err)?,
            ChildNumber::from_hardened_idx(141).map_err(bip32_err)?,
            ChildNumber::from_normal_idx(0x7fff_ffff).map_err(bip32_err)?,
            ChildNumber::from_normal_idx(0).map_err(bip32_err)?,
            ChildNumber::from_normal_idx(0).map_err(bip32_err)?,
        ];
        Ok(KeyPair::from_secret(self.derive(&children)?.private_key))
    }
}

/// Compressed public keys of `chain`'s addresses `range` under an account xpub, by public
/// (non-hardened) derivation only: cheap enough for address scans of hundreds of keys.
pub fn derive_pubkeys(
    xpub: &Xpub,
    chain: Chain,
    range: Range<u32>,
) -> Result<Vec<[u8; 33]>, HdError> {
    let ctx = secp();
    let chain_xpub = xpub
        .ckd_pub(
            ctx,
            ChildNumber::from_normal_idx(chain.index()).map_err(bip32_err)?,
        )
        .map_err(bip32_err)?;
    range
        .map(|i| {
            let child = ChildNumber::from_normal_idx(i).map_err(bip32_err)?;
            Ok(chain_xpub
                .ckd_pub(ctx, child)
                .map_err(bip32_err)?
                .public_key
                .serialize())
        })
        .collect()
}

#[cfg(test)]
#[path = "hd_tests.rs"]
mod tests;
