//! The start-up wallet logic: every row of spec 2.12's table, in KDF's order of checks.

use super::{crypto, generate_mnemonic, EncryptedData, SecretString, WalletDir, WalletError};
use serde::Deserialize;

/// Words in a generated mnemonic (KDF's default `word_count`).
const WORDS: usize = 12;

/// The config's `passphrase`: a plain string or an `EncryptedData` object (untagged, as KDF).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum PassphraseInput {
    Encrypted(EncryptedData),
    Plain(String),
}

impl std::fmt::Debug for PassphraseInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassphraseInput::Plain(_) => f.write_str("Plain(<redacted>)"),
            PassphraseInput::Encrypted(d) => f.debug_tuple("Encrypted").field(d).finish(),
        }
    }
}

/// The wallet fields of the start-up config.
#[derive(Clone, Default)]
pub struct StartupInput {
    pub wallet_name: Option<String>,
    pub wallet_password: Option<String>,
    pub passphrase: Option<PassphraseInput>,
    pub allow_weak_password: bool,
}

impl std::fmt::Debug for StartupInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartupInput")
            .field("wallet_name", &self.wallet_name)
            .field(
                "wallet_password",
                &self.wallet_password.as_ref().map(|_| "<redacted>"),
            )
            .field("passphrase", &self.passphrase)
            .field("allow_weak_password", &self.allow_weak_password)
            .finish()
    }
}

/// What start-up logs in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Login {
    /// Neither `wallet_name` nor `passphrase`: no keys, activation fails.
    NoLogin,
    /// Legacy `passphrase` without `wallet_name`: used as is, nothing saved.
    Passphrase(SecretString),
    /// A named wallet; `created` when this start-up wrote its file.
    Wallet {
        name: String,
        mnemonic: SecretString,
        created: bool,
    },
}

/// KDF's check before saving a new wallet: never empty, policy unless `allow_weak_password`.
fn check_new_password(input: &StartupInput, pw: &str) -> Result<(), WalletError> {
    if pw.is_empty() {
        return Err(WalletError::PasswordPolicy(
            "`wallet_password` cannot be empty".into(),
        ));
    }
    if !input.allow_weak_password {
        crate::config::check_password_policy(pw)
            .map_err(|e| WalletError::PasswordPolicy(e.to_string()))?;
    }
    Ok(())
}

/// Runs the start-up table. Sync (Argon2): call it off the async workers.
///
/// A wrong `wallet_password` fails with `InvalidPassword` before anything is written.
pub fn startup(dir: &WalletDir, input: &StartupInput) -> Result<Login, WalletError> {
    let Some(raw_name) = input.wallet_name.as_deref() else {
        return match &input.passphrase {
            None => Ok(Login::NoLogin),
            Some(PassphraseInput::Plain(p)) => Ok(Login::Passphrase(SecretString::new(p.clone()))),
            Some(PassphraseInput::Encrypted(_)) => Err(WalletError::FieldNotFound("wallet_name")),
        };
    };
    let name = super::validate_name(raw_name)?.to_string();
    let password = input
        .wallet_password
        .as_deref()
        .ok_or(WalletError::FieldNotFound("wallet_password"))?;
    // Decrypt a provided encrypted passphrase first, as KDF does: a wrong password fails here.
    let provided = match &input.passphrase {
        None => None,
        Some(PassphraseInput::Plain(p)) => Some((SecretString::new(p.clone()), None)),
        Some(PassphraseInput::Encrypted(d)) => Some((crypto::decrypt(d, password)?, Some(d))),
    };
    let stored = match dir.try_read(&name)? {
        Some(data) => Some(crypto::decrypt(&data, password)?),
        None => None,
    };
    match (stored, provided) {
        (Some(mnemonic), None) => Ok(Login::Wallet {
            name,
            mnemonic,
            created: false,
        }),
        (Some(mnemonic), Some((given, _))) => {
            if mnemonic == given {
                Ok(Login::Wallet {
                    name,
                    mnemonic,
                    created: false,
                })
            } else {
                Err(WalletError::PassphraseMismatch)
            }
        }
        (None, None) => {
            check_new_password(input, password)?;
            let mnemonic = generate_mnemonic(WORDS)?;
            dir.create(&name, password, &mnemonic)?;
            Ok(Login::Wallet {
                name,
                mnemonic,
                created: true,
            })
        }
        (None, Some((given, None))) => {
            check_new_password(input, password)?;
            dir.create(&name, password, &given)?;
            Ok(Login::Wallet {
                name,
                mnemonic: given,
                created: true,
            })
        }
        // KDF saves an imported encrypted passphrase as it is (no policy check: it decrypted).
        (None, Some((given, Some(data)))) => {
            dir.save_new(&name, data)?;
            Ok(Login::Wallet {
                name,
                mnemonic: given,
                created: true,
            })
        }
    }
}
