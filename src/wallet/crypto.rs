//! KDF's `EncryptedData`: Argon2id → (AES key, HMAC key), AES-256-CBC/PKCS7, HMAC-SHA256 tag.
//!
//! The rules (spec 2.12 "Wallet file format, exactly"):
//! - current format (`"version":1`): the Argon2 instance comes from the stored params;
//! - older format (no `version`): keys were made with argon2 0.5's `Argon2::default()`
//!   (m=19456 KiB, t=2, p=1, 32 bytes, Argon2id v0x13), whatever the stored params say;
//! - salts are PHC base64 strings, decoded to their raw bytes before hashing;
//! - tag = HMAC-SHA256(hmac key, ciphertext ‖ iv), checked (constant time) before decrypting.
//!
//! Argon2 with m=65536 takes ~100+ ms and 64 MiB: these are sync fns, run them on
//! `spawn_blocking` (or another non-async thread).

use super::{SecretString, WalletError};
use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use argon2::password_hash::Salt;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// The `version` KDF writes today.
pub const ENCRYPTED_DATA_VERSION: u32 = 1;
/// KDF's current Argon2 parameters for new files.
pub const M_COST: u32 = 65536;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
/// Upper bounds for parameters read from a file: 4× KDF's memory and generous time/lanes, so a
/// hostile or corrupt file cannot make us allocate gigabytes or spin for minutes.
pub const MAX_M_COST: u32 = 262_144;
pub const MAX_T_COST: u32 = 16;
pub const MAX_P_COST: u32 = 16;

/// KDF's wallet file / encrypted passphrase. Field order = KDF's serialisation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedData {
    /// Absent in the older format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    pub encryption_algorithm: EncryptionAlgorithm,
    pub key_derivation_details: KeyDerivationDetails,
    pub iv: String,
    pub ciphertext: String,
    pub tag: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EncryptionAlgorithm {
    AES256CBC,
}

/// Externally tagged, as KDF writes it: `{"Argon2":{...}}`. KDF also defines a `SLIP0021`
/// variant (keys from the seed, not a password); it never appears in wallet files, and a file
/// holding it is refused as unreadable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyDerivationDetails {
    Argon2 {
        params: Argon2Params,
        salt_aes: String,
        salt_hmac: String,
    },
}

/// Argon2 parameters. The current format has a numeric `version` (19) and `output_len`; the
/// older one a string version (`"0x13"`) and no `output_len`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Argon2Params {
    pub algorithm: String,
    pub version: ArgonVersion,
    pub m_cost: u32,
    pub t_cost: u32,
    pub p_cost: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_len: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ArgonVersion {
    Number(u32),
    Text(String),
}

impl Argon2Params {
    /// What kdfd (and current KDF) writes.
    pub fn current() -> Self {
        Argon2Params {
            algorithm: "argon2id".into(),
            version: ArgonVersion::Number(19),
            m_cost: M_COST,
            t_cost: T_COST,
            p_cost: P_COST,
            output_len: Some(32),
        }
    }

    /// The params block older KDF builds wrote (their keys did NOT use these values).
    pub fn legacy() -> Self {
        Argon2Params {
            algorithm: "Argon2id".into(),
            version: ArgonVersion::Text("0x13".into()),
            m_cost: M_COST,
            t_cost: T_COST,
            p_cost: P_COST,
            output_len: None,
        }
    }

    /// Builds the Argon2 instance these params describe, refusing absurd values.
    fn instance(&self) -> Result<argon2::Argon2<'static>, WalletError> {
        let bad = |m: String| WalletError::BadFile(m);
        let alg = match self.algorithm.to_ascii_lowercase().as_str() {
            "argon2id" => argon2::Algorithm::Argon2id,
            "argon2i" => argon2::Algorithm::Argon2i,
            "argon2d" => argon2::Algorithm::Argon2d,
            other => return Err(bad(format!("unknown Argon2 algorithm '{other}'"))),
        };
        let version = match &self.version {
            ArgonVersion::Number(19) => argon2::Version::V0x13,
            ArgonVersion::Number(16) => argon2::Version::V0x10,
            ArgonVersion::Text(t) if t.eq_ignore_ascii_case("0x13") => argon2::Version::V0x13,
            ArgonVersion::Text(t) if t.eq_ignore_ascii_case("0x10") => argon2::Version::V0x10,
            v => return Err(bad(format!("unknown Argon2 version {v:?}"))),
        };
        if self.m_cost > MAX_M_COST || self.t_cost > MAX_T_COST || self.p_cost > MAX_P_COST {
            return Err(bad(format!(
                "Argon2 parameters m_cost={} t_cost={} p_cost={} exceed the accepted maximum \
                 (m_cost {MAX_M_COST}, t_cost {MAX_T_COST}, p_cost {MAX_P_COST})",
                self.m_cost, self.t_cost, self.p_cost
            )));
        }
        if self.output_len.unwrap_or(32) != 32 {
            return Err(bad(
                "Argon2 output_len must be 32 (AES-256 / HMAC key)".into()
            ));
        }
        let params = argon2::Params::new(self.m_cost, self.t_cost, self.p_cost, Some(32))
            .map_err(|e| bad(format!("invalid Argon2 parameters: {e}")))?;
        Ok(argon2::Argon2::new(alg, version, params))
    }
}

/// A new PHC salt string: 16 random bytes, PHC base64 (as `SaltString::generate` makes them).
fn new_salt() -> Result<String, WalletError> {
    let mut raw = [0u8; 16];
    getrandom::getrandom(&mut raw).map_err(|e| WalletError::Internal(format!("rng: {e}")))?;
    let salt = argon2::password_hash::SaltString::encode_b64(&raw)
        .map_err(|e| WalletError::Internal(format!("salt: {e}")))?;
    Ok(salt.as_str().to_string())
}

/// Argon2 over the password and the DECODED salt bytes.
pub(crate) fn derive_key(
    argon: &argon2::Argon2<'_>,
    password: &str,
    salt_b64: &str,
) -> Result<Zeroizing<[u8; 32]>, WalletError> {
    let salt = Salt::from_b64(salt_b64)
        .map_err(|e| WalletError::BadFile(format!("bad salt string: {e}")))?;
    let mut buf = [0u8; Salt::MAX_LENGTH];
    let raw = salt
        .decode_b64(&mut buf)
        .map_err(|e| WalletError::BadFile(format!("bad salt string: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(password.as_bytes(), raw, key.as_mut())
        .map_err(|e| WalletError::BadFile(format!("argon2: {e}")))?;
    Ok(key)
}

/// A 32-byte key wiped on drop.
type Key = Zeroizing<[u8; 32]>;

/// The two keys (AES, HMAC) for `data`, honouring the format rule for old files.
fn keys_for(data: &EncryptedData, password: &str) -> Result<(Key, Key), WalletError> {
    let KeyDerivationDetails::Argon2 {
        params,
        salt_aes,
        salt_hmac,
    } = &data.key_derivation_details;
    let argon = match data.version {
        // Older KDF hashed with Argon2::default(), ignoring the params it wrote.
        None => argon2::Argon2::default(),
        Some(ENCRYPTED_DATA_VERSION) => params.instance()?,
        Some(v) => {
            return Err(WalletError::BadFile(format!(
                "unsupported wallet file version {v}"
            )))
        }
    };
    Ok((
        derive_key(&argon, password, salt_aes)?,
        derive_key(&argon, password, salt_hmac)?,
    ))
}

/// Encrypts `plaintext` (a mnemonic) with `password`, in the current format.
pub fn encrypt(plaintext: &str, password: &str) -> Result<EncryptedData, WalletError> {
    encrypt_with(plaintext, password, false)
}

/// `legacy` writes the older format (no `version`, keys from `Argon2::default()`); only tests
/// use it, to check that kdfd reads what older KDF wrote.
pub(crate) fn encrypt_with(
    plaintext: &str,
    password: &str,
    legacy: bool,
) -> Result<EncryptedData, WalletError> {
    let (params, version) = if legacy {
        (Argon2Params::legacy(), None)
    } else {
        (Argon2Params::current(), Some(ENCRYPTED_DATA_VERSION))
    };
    let mut data = EncryptedData {
        version,
        encryption_algorithm: EncryptionAlgorithm::AES256CBC,
        key_derivation_details: KeyDerivationDetails::Argon2 {
            params,
            salt_aes: new_salt()?,
            salt_hmac: new_salt()?,
        },
        iv: String::new(),
        ciphertext: String::new(),
        tag: String::new(),
    };
    let (key_aes, key_hmac) = keys_for(&data, password)?;
    let mut iv = [0u8; 16];
    getrandom::getrandom(&mut iv).map_err(|e| WalletError::Internal(format!("rng: {e}")))?;
    let ct = Aes256CbcEnc::new((&*key_aes).into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext.as_bytes());
    let mut mac = hmac_for(&key_hmac)?;
    mac.update(&ct);
    mac.update(&iv);
    data.iv = B64.encode(iv);
    data.ciphertext = B64.encode(&ct);
    data.tag = B64.encode(mac.finalize().into_bytes());
    Ok(data)
}

fn hmac_for(key: &[u8; 32]) -> Result<HmacSha256, WalletError> {
    <HmacSha256 as Mac>::new_from_slice(key)
        .map_err(|e| WalletError::Internal(format!("hmac: {e}")))
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>, WalletError> {
    B64.decode(s)
        .map_err(|e| WalletError::BadFile(format!("'{field}' is not base64: {e}")))
}

/// Decrypts `data` with `password`. A tag mismatch is `InvalidPassword`.
///
/// The text is returned as is (not checked as BIP39): Iguana-mode wallets may hold any
/// passphrase; the HD path validates the mnemonic itself.
pub fn decrypt(data: &EncryptedData, password: &str) -> Result<SecretString, WalletError> {
    let iv = b64("iv", &data.iv)?;
    let ct = b64("ciphertext", &data.ciphertext)?;
    let tag = b64("tag", &data.tag)?;
    let iv: [u8; 16] = iv
        .try_into()
        .map_err(|_| WalletError::BadFile("'iv' must be 16 bytes".into()))?;
    let (key_aes, key_hmac) = keys_for(data, password)?;
    let mut mac = hmac_for(&key_hmac)?;
    mac.update(&ct);
    mac.update(&iv);
    mac.verify_slice(&tag)
        .map_err(|_| WalletError::InvalidPassword)?;
    let plain = Zeroizing::new(
        Aes256CbcDec::new((&*key_aes).into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&ct)
            .map_err(|_| WalletError::BadFile("bad padding after a valid tag".into()))?,
    );
    let text = std::str::from_utf8(&plain)
        .map_err(|_| WalletError::BadFile("decrypted data is not UTF-8".into()))?;
    Ok(SecretString::new(text.to_string()))
}
