//! `sign_message` / `verify_message`: the Bitcoin "signed message" scheme with the coin's own
//! `sign_message_prefix`. The bitcoin crate's helper hard-codes Bitcoin's prefix, so only the
//! hash framing is assembled here; hashing, varints and ECDSA all come from crates.

use super::hd::secp;
use super::KeyPair;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bitcoin::consensus::Encodable;
use bitcoin::hashes::{hash160, sha256d, Hash};
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use bitcoin::secp256k1::Message;

/// Why a signature could not be checked at all (as opposed to checked and found wrong).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    /// Not base64, not 65 bytes, a bad header byte, or not a point on the curve.
    #[error("Signature decoding error: {0}")]
    SignatureDecodingError(String),
}

/// Header byte of a compact signature: 27 + recovery id, + 4 for a compressed key.
const HEADER_BASE: u8 = 27;
const COMPRESSED: u8 = 4;

/// `dSHA256(varint(len(prefix)) ‖ prefix ‖ varint(len(msg)) ‖ msg)`.
pub fn message_hash(prefix: &str, msg: &str) -> [u8; 32] {
    let mut engine = sha256d::Hash::engine();
    for part in [prefix, msg] {
        // A `String` consensus-encodes as a varint length and its bytes; writing to a hash engine
        // cannot fail.
        let _ = part.to_string().consensus_encode(&mut engine);
    }
    sha256d::Hash::from_engine(engine).to_byte_array()
}

/// The base64 of the 65-byte compact recoverable signature (RFC 6979, low-S, compressed header).
pub fn sign_message(key: &KeyPair, prefix: &str, msg: &str) -> String {
    let sig = key.sign_digest_recoverable(message_hash(prefix, msg));
    let (recid, compact) = sig.serialize_compact();
    let mut out = [0u8; 65];
    // A recovery id is 0..=3, so the cast is lossless.
    out[0] = HEADER_BASE + COMPRESSED + recid.to_i32() as u8;
    out[1..].copy_from_slice(&compact);
    STANDARD.encode(out)
}

/// Whether `signature_b64` signs `msg` under `prefix` with the key whose hash160 is
/// `expected_hash160`. Both compressed (header 31..=34) and uncompressed (27..=30) headers count.
pub fn verify_message(
    prefix: &str,
    msg: &str,
    signature_b64: &str,
    expected_hash160: &[u8; 20],
) -> Result<bool, MessageError> {
    let bad = |why: String| MessageError::SignatureDecodingError(why);
    let raw = STANDARD
        .decode(signature_b64.trim())
        .map_err(|e| bad(format!("invalid base64: {e}")))?;
    if raw.len() != 65 {
        return Err(bad(format!("expected 65 bytes, got {}", raw.len())));
    }
    let header = raw[0];
    if !(HEADER_BASE..HEADER_BASE + 8).contains(&header) {
        return Err(bad(format!("invalid header byte {header}")));
    }
    let flag = header - HEADER_BASE;
    let recid = RecoveryId::from_i32(i32::from(flag & 3)).map_err(|e| bad(e.to_string()))?;
    let sig =
        RecoverableSignature::from_compact(&raw[1..], recid).map_err(|e| bad(e.to_string()))?;
    let digest = Message::from_digest(message_hash(prefix, msg));
    let public = secp()
        .recover_ecdsa(&digest, &sig)
        .map_err(|e| bad(format!("cannot recover a public key: {e}")))?;
    let h160 = if flag & COMPRESSED != 0 {
        hash160::Hash::hash(&public.serialize())
    } else {
        hash160::Hash::hash(&public.serialize_uncompressed())
    };
    Ok(h160.to_byte_array() == *expected_hash160)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hd::{CoinPath, HdPath, HdSeed};

    const KMD_PREFIX: &str = "Komodo Signed Message:\n";
    const SPICE: &str =
        "spice describe gravity federal blast come thank unfair canal monkey style afraid";
    const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

    fn tank_key(path: &str) -> KeyPair {
        let coin = CoinPath::parse("m/44'/141'").unwrap();
        HdSeed::from_mnemonic(TANK)
            .unwrap()
            .key_at(&HdPath::parse(path, &coin).unwrap())
            .unwrap()
    }

    #[test]
    fn iguana_vector() {
        let key = KeyPair::from_passphrase(SPICE).unwrap();
        assert_eq!(
            crate::crypto::p2pkh_address(&[60], &key.hash160()),
            "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW"
        );
        let sig = sign_message(&key, KMD_PREFIX, "test");
        assert_eq!(
            sig,
            "HzetbqVj9gnUOznon9bvE61qRlmjH5R+rNgkxu8uyce3UBbOu+2aGh7r/GGSVFGZjRnaYC60hdwtdirTKLb7bE4="
        );
        assert_eq!(
            verify_message(KMD_PREFIX, "test", &sig, &key.hash160()),
            Ok(true)
        );
        assert_eq!(
            verify_message(KMD_PREFIX, "test2", &sig, &key.hash160()),
            Ok(false)
        );
        assert_eq!(
            verify_message("Bitcoin Signed Message:\n", "test", &sig, &key.hash160()),
            Ok(false)
        );
        let other = KeyPair::from_passphrase("bob passphrase").unwrap();
        assert_eq!(
            verify_message(KMD_PREFIX, "test", &sig, &other.hash160()),
            Ok(false)
        );
    }

    #[test]
    fn hd_vectors() {
        let cases = [
            ("m/44'/141'/0'/0/0", "ICnkSvQkAurwLvK6RYtCItrWMOS4ESjCf4GKp1DvBM8Xc2+dxM4si6NcSb0JJaJajYhPkwg5yWHmgR/9AmGB0KE="),
            ("m/44'/141'/0'/0/1", "IPGbtsPPz6u2DishjOcP0Lf6xqPfpvTcMnkP/rRUVddKPBtkN+SfUPVZcz1vagjhj95I2t4ctLzcc3vcRdQLxbY="),
        ];
        for (path, want) in cases {
            let key = tank_key(path);
            assert_eq!(sign_message(&key, KMD_PREFIX, "test"), want, "{path}");
            assert_eq!(
                verify_message(KMD_PREFIX, "test", want, &key.hash160()),
                Ok(true)
            );
        }
        // The 0/0 signature does not verify against the 0/1 address.
        assert_eq!(
            verify_message(
                KMD_PREFIX,
                "test",
                cases[0].1,
                &tank_key(cases[1].0).hash160()
            ),
            Ok(false)
        );
    }

    #[test]
    fn public_key_vectors() {
        let k = KeyPair::from_passphrase("bob passphrase").unwrap();
        let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(&k.public_key()),
            "022cd3021a2197361fb70b862c412bc8e44cff6951fa1de45ceabfdd9b4c520420"
        );
        assert_eq!(
            hex(&k.hash160()),
            "b506088aa2a3b4bb1da3a29bf00ce1a550ea1df9"
        );
    }

    #[test]
    fn uncompressed_header_checks_the_uncompressed_hash() {
        let key = KeyPair::from_passphrase(SPICE).unwrap();
        let mut raw = STANDARD
            .decode(sign_message(&key, KMD_PREFIX, "hi"))
            .unwrap();
        raw[0] -= COMPRESSED;
        let sig = STANDARD.encode(&raw);
        let uncompressed = hash160::Hash::hash(&key.public_key_uncompressed()).to_byte_array();
        assert_eq!(
            verify_message(KMD_PREFIX, "hi", &sig, &uncompressed),
            Ok(true)
        );
        assert_eq!(
            verify_message(KMD_PREFIX, "hi", &sig, &key.hash160()),
            Ok(false)
        );
    }

    #[test]
    fn undecodable_signatures() {
        let h = [0u8; 20];
        let good = "HzetbqVj9gnUOznon9bvE61qRlmjH5R+rNgkxu8uyce3UBbOu+2aGh7r/GGSVFGZjRnaYC60hdwtdirTKLb7bE4=";
        let mut raw = STANDARD.decode(good).unwrap();
        raw[0] = 35;
        let bad_header = STANDARD.encode(&raw);
        let short = STANDARD.encode(&raw[..64]);
        for (sig, needle) in [
            ("not base64!", "invalid base64"),
            (short.as_str(), "expected 65 bytes"),
            (bad_header.as_str(), "invalid header byte 35"),
        ] {
            match verify_message(KMD_PREFIX, "test", sig, &h) {
                Err(MessageError::SignatureDecodingError(e)) => assert!(e.contains(needle), "{e}"),
                other => panic!("{sig}: {other:?}"),
            }
        }
    }

    #[test]
    fn hash_framing() {
        // A 253-byte message needs a 3-byte varint; the hash must still round-trip a signature.
        let long = "x".repeat(253);
        assert_ne!(
            message_hash(KMD_PREFIX, &long),
            message_hash(KMD_PREFIX, "")
        );
        let key = KeyPair::from_passphrase(SPICE).unwrap();
        let sig = sign_message(&key, KMD_PREFIX, &long);
        assert_eq!(
            verify_message(KMD_PREFIX, &long, &sig, &key.hash160()),
            Ok(true)
        );
    }
}
