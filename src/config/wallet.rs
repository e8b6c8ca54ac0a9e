//! The wallet keys of the config: which wallet to open and how (KDF's `lp_wallet` start-up rules
//! are applied by `crate::wallet`; here they are only read and type-checked).

use super::read::{opt_bool, opt_string, opt_u64};
use super::ConfigError;
use serde_json::Value;

/// `passphrase`: a plaintext passphrase/mnemonic, or KDF's encrypted-data object.
#[derive(Clone)]
pub enum PassphraseConf {
    /// A string: a mnemonic, a WIF, `0x` hex, or any iguana passphrase.
    Plain(String),
    /// An `EncryptedData` object, decrypted with `wallet_password`.
    Encrypted(Value),
}

impl std::fmt::Debug for PassphraseConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, whatever logs a config.
        match self {
            PassphraseConf::Plain(_) => f.write_str("Plain(<redacted>)"),
            PassphraseConf::Encrypted(_) => f.write_str("Encrypted(..)"),
        }
    }
}

/// Which wallet to open.
#[derive(Clone, Default)]
pub struct WalletConf {
    /// `passphrase`.
    pub passphrase: Option<PassphraseConf>,
    /// `wallet_name`: the wallet file `<db_root>/<name>.json`.
    pub wallet_name: Option<String>,
    /// `wallet_password`: decrypts (or encrypts) the wallet file.
    pub wallet_password: Option<String>,
    /// `enable_hd`: BIP39/BIP32 addresses instead of the iguana key.
    pub enable_hd: bool,
    /// `hd_account_id`: the account of the enabled address (KDF's default 0).
    pub hd_account_id: Option<u32>,
    /// `allow_weak_password`: skip the password policy for new wallets.
    pub allow_weak_password: bool,
}

impl std::fmt::Debug for WalletConf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletConf")
            .field("passphrase", &self.passphrase)
            .field("wallet_name", &self.wallet_name)
            .field(
                "wallet_password",
                &self.wallet_password.as_ref().map(|_| "<redacted>"),
            )
            .field("enable_hd", &self.enable_hd)
            .field("hd_account_id", &self.hd_account_id)
            .finish()
    }
}

/// Reads the wallet keys.
pub fn parse(conf: &Value) -> Result<WalletConf, ConfigError> {
    let passphrase = match conf.get("passphrase") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => {
            return Err(ConfigError::Invalid(
                "Passphrase cannot be an empty string".to_string(),
            ))
        }
        Some(Value::String(s)) => Some(PassphraseConf::Plain(s.clone())),
        Some(v @ Value::Object(_)) => Some(PassphraseConf::Encrypted(v.clone())),
        Some(_) => {
            return Err(ConfigError::Invalid(
                "passphrase must be a string or an encrypted-data object".to_string(),
            ))
        }
    };
    let hd_account_id = match opt_u64(conf, "hd_account_id")? {
        None => None,
        Some(n) if n < (1 << 31) => Some(n as u32),
        Some(_) => {
            return Err(ConfigError::Invalid(
                "hd_account_id must be below 2^31".to_string(),
            ))
        }
    };
    Ok(WalletConf {
        passphrase,
        wallet_name: opt_string(conf, "wallet_name", "wallet_name must be a string")?,
        wallet_password: opt_string(conf, "wallet_password", "wallet_password must be a string")?,
        enable_hd: opt_bool(conf, "enable_hd", false)?,
        hd_account_id,
        allow_weak_password: opt_bool(conf, "allow_weak_password", false)?,
    })
}
