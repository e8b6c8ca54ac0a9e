//! Passphrase → private key → public key → addresses and Electrum scripthashes, as KDF derives them
//! in iguana (non-HD) mode. This is the only module that ever sees a private key.

pub mod hd;
pub mod message;

use bitcoin::base58;
use bitcoin::bech32::{self, Hrp};
use bitcoin::hashes::{hash160, sha256, sha256d, Hash};
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};

/// Why a passphrase cannot be turned into a key; texts follow KDF's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// KDF refuses an empty passphrase.
    #[error("Passphrase cannot be an empty string")]
    Empty,
    /// A WIF of the right length whose checksum does not match.
    #[error("Provided WIF passphrase has invalid checksum!")]
    BadWifChecksum,
    /// A valid WIF for an uncompressed key.
    #[error("We only support compressed keys at the moment")]
    Uncompressed,
    /// A `0x…` passphrase that is not 32 bytes of hex.
    #[error("Invalid hex private key: {0}")]
    BadHex(String),
    /// A key that is zero or not below the curve order.
    #[error("Invalid private key: {0}")]
    OutOfRange(String),
}

/// The wallet's one iguana key pair. `Debug` never prints the secret.
#[derive(Clone)]
pub struct KeyPair {
    // Used only by the signing methods below; no method hands it out.
    secret: SecretKey,
    public: PublicKey,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public.to_string())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl KeyPair {
    /// Derives the key KDF derives: compressed WIF, else `0x` + 64 hex, else clamped SHA-256.
    pub fn from_passphrase(passphrase: &str) -> Result<KeyPair, KeyError> {
        if passphrase.is_empty() {
            return Err(KeyError::Empty);
        }
        let bytes = match wif_secret(passphrase)? {
            Some(bytes) => bytes,
            None => match passphrase.strip_prefix("0x") {
                Some(hex) => decode_hex32(hex)?,
                None => clamped_sha256(passphrase),
            },
        };
        let secret =
            SecretKey::from_slice(&bytes).map_err(|e| KeyError::OutOfRange(e.to_string()))?;
        let public = PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret);
        Ok(KeyPair { secret, public })
    }

    /// A key pair from a secret key (HD derivation hands its keys over this way).
    pub fn from_secret(secret: SecretKey) -> KeyPair {
        let public = PublicKey::from_secret_key(&Secp256k1::signing_only(), &secret);
        KeyPair { secret, public }
    }

    /// An ECDSA signature (RFC 6979 nonce, low-S) over a 32-byte digest, e.g. a sighash.
    pub fn sign_digest(&self, digest: [u8; 32]) -> bitcoin::secp256k1::ecdsa::Signature {
        let msg = bitcoin::secp256k1::Message::from_digest(digest);
        Secp256k1::signing_only().sign_ecdsa(&msg, &self.secret)
    }

    /// A recoverable ECDSA signature over a 32-byte digest (message signing).
    pub fn sign_digest_recoverable(
        &self,
        digest: [u8; 32],
    ) -> bitcoin::secp256k1::ecdsa::RecoverableSignature {
        let msg = bitcoin::secp256k1::Message::from_digest(digest);
        Secp256k1::signing_only().sign_ecdsa_recoverable(&msg, &self.secret)
    }

    /// The WIF of the secret for `show_priv_key`, with the coin's `wiftype` byte (compressed)
    /// and its base58check checksum.
    pub fn wif(&self, wiftype: u8, checksum: Checksum) -> String {
        let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(34));
        payload.push(wiftype);
        payload.extend_from_slice(&self.secret.secret_bytes());
        payload.push(1);
        base58check(&payload, checksum)
    }

    /// The 65-byte uncompressed public key (EVM addresses hash it).
    pub fn public_key_uncompressed(&self) -> [u8; 65] {
        self.public.serialize_uncompressed()
    }

    /// The 33-byte compressed public key.
    pub fn public_key(&self) -> [u8; 33] {
        self.public.serialize()
    }

    /// RIPEMD160(SHA256(compressed public key)).
    pub fn hash160(&self) -> [u8; 20] {
        hash160::Hash::hash(&self.public_key()).to_byte_array()
    }

    /// Kept for signing in later work; proves the secret stays inside this module.
    #[cfg(test)]
    fn secret_hex(&self) -> String {
        self.secret.display_secret().to_string()
    }
}

/// The wallet's key material for the whole process, chosen at start-up.
#[derive(Debug, Clone)]
pub enum WalletKeys {
    /// KDF's iguana mode: one key from the passphrase.
    Iguana(KeyPair),
    /// HD mode: BIP32 keys from a BIP39 mnemonic, plus KDF's internal identity key
    /// (`m/44'/141'/2147483647/0/0`, what `get_public_key` and the wallet's database id use).
    Hd {
        /// The BIP32 master.
        seed: hd::HdSeed,
        /// The internal key.
        internal: KeyPair,
        /// `hd_account_id`: the account of the enabled address.
        account_id: u32,
    },
}

impl WalletKeys {
    /// The key that identifies the wallet: the iguana key, or the HD internal key.
    pub fn identity(&self) -> &KeyPair {
        match self {
            WalletKeys::Iguana(k) => k,
            WalletKeys::Hd { internal, .. } => internal,
        }
    }

    /// Whether this is an HD wallet.
    pub fn is_hd(&self) -> bool {
        matches!(self, WalletKeys::Hd { .. })
    }
}

/// A WIF passphrase's 32 secret bytes; `None` when the string is not a WIF (then it is a passphrase).
fn wif_secret(s: &str) -> Result<Option<[u8; 32]>, KeyError> {
    let Ok(raw) = base58::decode(s) else {
        return Ok(None);
    };
    // KDF ignores the version byte; only the length, compression flag and checksum matter.
    let compressed = match raw.len() {
        38 if raw[33] == 1 => true,
        37 => false,
        _ => return Ok(None),
    };
    let (body, check) = raw.split_at(raw.len() - 4);
    if sha256d::Hash::hash(body)[..4] != *check {
        return Err(KeyError::BadWifChecksum);
    }
    if !compressed {
        return Err(KeyError::Uncompressed);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&raw[1..33]);
    Ok(Some(key))
}

fn decode_hex32(hex: &str) -> Result<[u8; 32], KeyError> {
    let bad = || KeyError::BadHex("expected 64 hex digits".to_string());
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// SHA-256 of the passphrase with the curve25519-style clamping KDF applies.
fn clamped_sha256(passphrase: &str) -> [u8; 32] {
    let mut k = sha256::Hash::hash(passphrase.as_bytes()).to_byte_array();
    k[0] &= 248;
    k[31] &= 127;
    k[31] |= 64;
    k
}

/// Base58check P2PKH address: `prefix` (taddr byte, if any, then pubtype) ‖ hash160.
/// The checksum of a coin's base58check strings (KDF's `ChecksumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Checksum {
    /// Double SHA-256: Bitcoin and nearly every coin.
    #[default]
    Sha256d,
    /// Double Groestl-512: Groestlcoin.
    Groestl512d,
}

impl Checksum {
    /// The four checksum bytes of `body`.
    pub fn of(self, body: &[u8]) -> [u8; 4] {
        let full: Vec<u8> = match self {
            Checksum::Sha256d => sha256d::Hash::hash(body).to_byte_array().to_vec(),
            Checksum::Groestl512d => {
                use groestl::Digest;
                groestl::Groestl512::digest(groestl::Groestl512::digest(body)).to_vec()
            }
        };
        [full[0], full[1], full[2], full[3]]
    }
}

/// Base58check of `payload` with the given checksum.
pub fn base58check(payload: &[u8], checksum: Checksum) -> String {
    match checksum {
        Checksum::Sha256d => base58::encode_check(payload),
        Checksum::Groestl512d => {
            let mut data = payload.to_vec();
            data.extend_from_slice(&checksum.of(payload));
            base58::encode(&data)
        }
    }
}

/// P2PKH address (base58check with double SHA-256) of a hash160 under `prefix`.
pub fn p2pkh_address(prefix: &[u8], h160: &[u8; 20]) -> String {
    let mut payload = Vec::with_capacity(prefix.len() + 20);
    payload.extend_from_slice(prefix);
    payload.extend_from_slice(h160);
    base58::encode_check(&payload)
}

/// Bech32 (BIP173) witness-v0 address of a hash160; fails only on an invalid HRP.
pub fn segwit_address(hrp: &str, h160: &[u8; 20]) -> Result<String, String> {
    let hrp = Hrp::parse(hrp).map_err(|e| format!("invalid bech32_hrp '{hrp}': {e}"))?;
    bech32::segwit::encode_v0(hrp, h160).map_err(|e| e.to_string())
}

/// `OP_DUP OP_HASH160 <h160> OP_EQUALVERIFY OP_CHECKSIG`.
pub fn p2pkh_script(h160: &[u8; 20]) -> Vec<u8> {
    let mut s = vec![0x76, 0xa9, 0x14];
    s.extend_from_slice(h160);
    s.extend_from_slice(&[0x88, 0xac]);
    s
}

/// `<33-byte pubkey> OP_CHECKSIG`.
pub fn p2pk_script(pubkey: &[u8; 33]) -> Vec<u8> {
    let mut s = vec![0x21];
    s.extend_from_slice(pubkey);
    s.push(0xac);
    s
}

/// `OP_0 <h160>`.
pub fn p2wpkh_script(h160: &[u8; 20]) -> Vec<u8> {
    let mut s = vec![0x00, 0x14];
    s.extend_from_slice(h160);
    s
}

/// Electrum scripthash: hex of the byte-reversed SHA-256 of the script.
pub fn scripthash(script: &[u8]) -> String {
    let mut h = sha256::Hash::hash(script).to_byte_array();
    h.reverse();
    h.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    const BOB_PRIV: &str = "b8c774f071de08c7fd8f62b97f1a5726f6ce9f1bcf141b70b86689254ed6714e";

    #[test]
    fn bob_passphrase_matches_kdf() {
        let k = KeyPair::from_passphrase("bob passphrase").unwrap();
        assert_eq!(k.secret_hex(), BOB_PRIV);
        assert_eq!(
            hex(&k.public_key()),
            "022cd3021a2197361fb70b862c412bc8e44cff6951fa1de45ceabfdd9b4c520420"
        );
        assert_eq!(
            hex(&k.hash160()),
            "b506088aa2a3b4bb1da3a29bf00ce1a550ea1df9"
        );
        assert_eq!(
            p2pkh_address(&[60], &k.hash160()),
            "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD"
        );
        assert_eq!(
            p2pkh_address(&[0], &k.hash160()),
            "1HWAXvm37X3oZbSwYfPNKRcLBp8PeTzH7N"
        );
        assert_eq!(
            p2pkh_address(&[48], &k.hash160()),
            "Lbj7o94sCBHrpQ96ioNfbSg6Q2VfipTsa3"
        );
        assert_eq!(
            segwit_address("bc", &k.hash160()).unwrap(),
            "bc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580et0hw5v"
        );
        assert_eq!(
            segwit_address("ltc", &k.hash160()).unwrap(),
            "ltc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580e0nd2vu"
        );
    }

    #[test]
    fn wif_and_hex_give_the_same_key() {
        let wif = KeyPair::from_passphrase("UvCjJf4dKSs2vFGVtCnUTAhR5FTZGdg43DDRa9s7s5DV1sSDX14g")
            .unwrap();
        assert_eq!(wif.secret_hex(), BOB_PRIV);
        let hexk = KeyPair::from_passphrase(&format!("0x{BOB_PRIV}")).unwrap();
        assert_eq!(hexk.secret_hex(), BOB_PRIV);
        assert_eq!(
            p2pkh_address(&[60], &hexk.hash160()),
            "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD"
        );
    }

    #[test]
    fn testnet_vectors() {
        let cases = [
            (
                "also shoot benefit prefer juice shell elder veteran woman mimic image kidney",
                "03c6a78589e18b482aea046975e6d0acbdea7bf7dbf04d9d5bd67fda917815e3ed",
                Some("mqWYEGxLeK843n3xMTe8EWTFPyoSZjtUXb"),
                Some("tb1qdkwjk42dw6pryvs9sl0ht3pn3mxghuma64jst5"),
            ),
            (
                "salmon angle cushion sauce accuse earth volume until zone youth emerge favorite",
                "03f8f8fa2062590ba9a0a7a86f937de22f540c015864aad35a2a9f6766de906265",
                Some("mgrM9w49Q7vqtroLKGekLTqCVFye5u6G3v"),
                None,
            ),
            (
                "valley embody about obey never adapt gesture trust screen tube glide bread",
                "03705e52986e43c123d294939c3653743626d79ba3653e1a4ee1bcbe02590feee5",
                None,
                Some("tb1qssfmay8nnghx7ynlznejnjxn6m4pemz9v7fsxy"),
            ),
        ];
        for (phrase, pubkey, p2pkh, segwit) in cases {
            let k = KeyPair::from_passphrase(phrase).unwrap();
            assert_eq!(hex(&k.public_key()), pubkey, "{phrase}");
            if let Some(a) = p2pkh {
                assert_eq!(p2pkh_address(&[111], &k.hash160()), a);
            }
            if let Some(a) = segwit {
                assert_eq!(segwit_address("tb", &k.hash160()).unwrap(), a);
            }
        }
    }

    #[test]
    fn negative_vectors() {
        assert_eq!(
            KeyPair::from_passphrase("92Qba5hnyWSn5Ffcka56yMQauaWY6ZLd91Vzxbi4a9CCetaHtYj")
                .unwrap_err(),
            KeyError::Uncompressed
        );
        assert_eq!(
            KeyPair::from_passphrase("5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf")
                .unwrap_err(),
            KeyError::Uncompressed
        );
        assert!(matches!(
            KeyPair::from_passphrase(
                "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"
            ),
            Err(KeyError::OutOfRange(_))
        ));
        assert_eq!(KeyPair::from_passphrase("").unwrap_err(), KeyError::Empty);
        assert!(matches!(
            KeyPair::from_passphrase("0x1234"),
            Err(KeyError::BadHex(_))
        ));
        // Last character changed: right length, wrong checksum.
        assert_eq!(
            KeyPair::from_passphrase("UvCjJf4dKSs2vFGVtCnUTAhR5FTZGdg43DDRa9s7s5DV1sSDX14h")
                .unwrap_err(),
            KeyError::BadWifChecksum
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = KeyPair::from_passphrase("bob passphrase").unwrap();
        let shown = format!("{k:?}");
        assert!(!shown.contains(BOB_PRIV), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn scripts_and_scripthash() {
        let k = KeyPair::from_passphrase("bob passphrase").unwrap();
        let s = p2pkh_script(&k.hash160());
        assert_eq!(
            hex(&s),
            "76a914b506088aa2a3b4bb1da3a29bf00ce1a550ea1df988ac"
        );
        assert_eq!(p2pk_script(&k.public_key()).len(), 35);
        assert_eq!(p2wpkh_script(&k.hash160()).len(), 22);
        // Electrum protocol docs' example: P2PKH of 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa.
        let genesis = p2pkh_script(&[
            0x62, 0xe9, 0x07, 0xb1, 0x5c, 0xbf, 0x27, 0xd5, 0x42, 0x53, 0x99, 0xeb, 0xf6, 0xf0,
            0xfb, 0x50, 0xeb, 0xb8, 0x8f, 0x18,
        ]);
        assert_eq!(
            scripthash(&genesis),
            "8b01df4e368ea28f8dc0423bcf7a4923e3a12d307c875e47a0cfbf90b5c39161"
        );
    }
}
