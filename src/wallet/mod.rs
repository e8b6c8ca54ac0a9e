//! KDF-compatible wallet files (`<db_root>/<name>.json`, KDF's `EncryptedData`) and the
//! start-up wallet logic (spec `kdf-wallet-compat.md` 2.12).
//!
//! - `crypto`: `EncryptedData`, `encrypt`, `decrypt` (Argon2id + AES-256-CBC + HMAC-SHA256).
//! - `dir`: `WalletDir`, the directory of wallet files, with atomic, crash-safe writes.
//! - `startup`: the start-up table (`wallet_name` / `wallet_password` / `passphrase`).
//!
//! Everything here is synchronous and Argon2 costs ~100+ ms per key: async callers run these
//! functions on `tokio::task::spawn_blocking`.

mod crypto;
mod dir;
mod startup;

pub use crypto::{
    decrypt, encrypt, Argon2Params, ArgonVersion, EncryptedData, EncryptionAlgorithm,
    KeyDerivationDetails, ENCRYPTED_DATA_VERSION, MAX_M_COST, MAX_P_COST, MAX_T_COST,
};
pub use dir::{WalletDir, TEMP_PREFIX};
pub use startup::{startup, Login, PassphraseInput, StartupInput};

use std::path::{Path, PathBuf};

/// Longest wallet name accepted, in bytes (file systems cap names at 255 bytes, and `.json`
/// plus the temp-file prefix must still fit).
pub const MAX_NAME_LEN: usize = 200;

/// Errors of wallet files and start-up. Texts never contain a password or a mnemonic.
/// The RPC layer maps them to KDF's `MnemonicRpcError` types: `InvalidPassword` →
/// `InvalidPassword`; `MnemonicFileNotFound`, `WalletNotFound`, `BadName` → `InvalidRequest`;
/// `PasswordPolicy` → `PasswordPolicyViolation`; `Storage`, `BadFile` → `WalletsStorageError`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalletError {
    /// The HMAC tag does not match: the password is wrong (or the file was altered).
    #[error("Error decrypting mnemonic: wrong wallet password (the HMAC tag does not match)")]
    InvalidPassword,
    #[error("Wallet '{0}' not found.")]
    WalletNotFound(String),
    #[error("Wallet mnemonic file not found")]
    MnemonicFileNotFound,
    #[error("Wallet '{0}' already exists")]
    WalletExists(String),
    #[error("Invalid wallet name: {0}")]
    BadName(String),
    #[error("Password does not meet policy requirements: {0}")]
    PasswordPolicy(String),
    #[error("Passphrase doesn't match the one from file, please create a new wallet if you want to use a new passphrase")]
    PassphraseMismatch,
    /// KDF's `FieldNotFoundInConfig`.
    #[error("The '{0}' field not found in the config")]
    FieldNotFound(&'static str),
    #[error("Wallets storage error: {0}")]
    Storage(String),
    /// The file (or an encrypted passphrase) is not a readable `EncryptedData`.
    #[error("Wallet file is unreadable: {0}")]
    BadFile(String),
    #[error("Error generating mnemonic: {0}")]
    Mnemonic(String),
    #[error("Internal error: {0}")]
    Internal(String),
}

/// A mnemonic or passphrase: wiped on drop, `Debug` shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(zeroize::Zeroizing<String>);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(zeroize::Zeroizing::new(s))
    }
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl std::ops::Deref for SecretString {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// KDF's wallet root: `dbdir` if given, else `./DB` if it exists, else `<kdf_app_dir>/DB`
/// where KDF's native `kdf_app_dir` is `$HOME/.kdf` (spec kdf-compat.md: "`~/.kdf/DB`").
/// Without `$HOME` (rare: services), `./.kdf/DB`.
pub fn db_root(dbdir: Option<&Path>) -> PathBuf {
    if let Some(d) = dbdir {
        return d.to_path_buf();
    }
    let local = Path::new("DB");
    if local.is_dir() {
        return local.to_path_buf();
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".kdf").join("DB")
}

/// KDF's name rule: trimmed, non-empty, only alphanumerics, space, `-`, `_`; plus a length cap.
/// Returns the trimmed name.
pub fn validate_name(name: &str) -> Result<&str, WalletError> {
    let n = name.trim();
    if n.is_empty() {
        return Err(WalletError::BadName(
            "the wallet name cannot be empty".into(),
        ));
    }
    if n.len() > MAX_NAME_LEN {
        return Err(WalletError::BadName(format!(
            "the wallet name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if !n
        .chars()
        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
    {
        return Err(WalletError::BadName(
            "the wallet name may contain only letters, digits, spaces, '-' and '_'".into(),
        ));
    }
    Ok(n)
}

/// A new BIP39 English mnemonic of `words` words (12, 15, 18, 21 or 24), entropy from the OS.
pub fn generate_mnemonic(words: usize) -> Result<SecretString, WalletError> {
    if !matches!(words, 12 | 15 | 18 | 21 | 24) {
        return Err(WalletError::Mnemonic(format!(
            "word count {words} is not one of 12, 15, 18, 21, 24"
        )));
    }
    let mut entropy = zeroize::Zeroizing::new([0u8; 32]);
    let len = words / 3 * 4;
    getrandom::getrandom(&mut entropy[..len])
        .map_err(|e| WalletError::Internal(format!("rng: {e}")))?;
    let m = bip39::Mnemonic::from_entropy_in(bip39::Language::English, &entropy[..len])
        .map_err(|e| WalletError::Mnemonic(e.to_string()))?;
    Ok(SecretString::new(m.to_string()))
}

#[cfg(test)]
mod tests;
