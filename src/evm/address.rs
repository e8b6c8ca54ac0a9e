//! EVM addresses: derived from the wallet key, shown and parsed the way KDF does (plain EIP-55,
//! never EIP-1191 chain-id casing, `0x` required, exact checksum required).

use crate::crypto::KeyPair;
use alloy_primitives::Address;

/// KDF's text when the `0x` prefix is missing.
pub const ERR_NO_PREFIX: &str = "Address must be prefixed with 0x";
/// KDF's text when the case does not match the EIP-55 checksum.
pub const ERR_BAD_CHECKSUM: &str = "Invalid address checksum";

/// The key's address: the last 20 bytes of keccak-256 over the 64-byte X‖Y public key.
pub fn eth_address(key: &KeyPair) -> Address {
    let uncompressed = key.public_key_uncompressed();
    // Byte 0 is the SEC1 0x04 tag, which the address hash leaves out.
    Address::from_raw_public_key(&uncompressed[1..])
}

/// The EIP-55 form KDF shows (`display_address`, `my_address`, response keys).
pub fn display(addr: &Address) -> String {
    addr.to_checksum(None)
}

/// Lowercase `0x…`, as in `enable_erc20`'s `token_contract_address`.
pub fn lower_hex(addr: &Address) -> String {
    format!("{addr:#x}")
}

/// The public key as v2 activation answers show it: `04` + 128 lowercase hex digits, no `0x`.
pub fn pubkey_hex(key: &KeyPair) -> String {
    key.public_key_uncompressed()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Parses an address the way KDF's `valid_addr_from_str` does: `0x` prefix, 40 hex digits, and the
/// exact EIP-55 casing (an all-lowercase or all-uppercase form is refused unless it happens to be
/// the checksummed form). Used for contract addresses in the coins file and custom tokens.
pub fn parse_checksummed(s: &str) -> Result<Address, String> {
    let Some(hex) = s.strip_prefix("0x") else {
        return Err(ERR_NO_PREFIX.into());
    };
    if hex.len() != 40 {
        return Err(format!(
            "Invalid input length: expected 40 hex digits, got {}",
            hex.len()
        ));
    }
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("Invalid character '{c}'"));
    }
    let addr: Address = hex
        .parse()
        .map_err(|e: alloy_primitives::hex::FromHexError| e.to_string())?;
    if addr.to_checksum(None) != s {
        return Err(ERR_BAD_CHECKSUM.into());
    }
    Ok(addr)
}

/// A user-supplied address (withdraw target, `validateaddress`): KDF's `address_from_str` for
/// EVM coins is the same `valid_addr_from_str`, so the rule is the contract rule.
pub fn validate_address(s: &str) -> Result<Address, String> {
    parse_checksummed(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iguana_vectors() {
        // [test] vectors from the compat doc §1.2 (BOB/ALICE_ETH_ADDRESS in KDF's docker tests).
        for (pass, want) in [
            (
                "iris test seed",
                "0x7b338250f990954E3Ab034ccD32a917c2F607C2d",
            ),
            (
                "iris test2 seed",
                "0x37602b7a648b207ACFD19E67253f57669bEA4Ad8",
            ),
            (
                "bob passphrase",
                "0xf5c3bf03cBA4E343484588932e423A7C8BFf102d",
            ),
            (
                "alice passphrase",
                "0x92d89F17F8b17942Fe5457F7525128De27554D46",
            ),
        ] {
            let kp = KeyPair::from_passphrase(pass).unwrap();
            let addr = eth_address(&kp);
            assert_eq!(display(&addr), want, "{pass}");
            assert_eq!(parse_checksummed(want).unwrap(), addr);
        }
    }

    #[test]
    fn pubkey_shape() {
        let kp = KeyPair::from_passphrase("iris test seed").unwrap();
        let hex = pubkey_hex(&kp);
        assert_eq!(hex.len(), 130);
        assert_eq!(&hex[..2], "04");
        assert_eq!(&hex[2..], "238527725c96affccb7c55f3900b345b80ec5268d483284f162807775d32b32b3dae6ebcd912e5b72c7cfa5bd1a1b87cc3a856b6910f2543c36bceed4d5b974c");
    }

    #[test]
    fn eip55_vectors() {
        // Lowercase in, checksummed out; one valid all-lowercase result.
        for (lower, want) in [
            (
                "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359",
                "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            ),
            (
                "0xde709f2102306220921060314715629080e2fb77",
                "0xde709f2102306220921060314715629080e2fb77",
            ),
            (
                "0x62d0a8458ed7719fdaf978fe5929c6d342b0bfce",
                "0x62D0A8458eD7719FDAF978fe5929C6D342B0bFcE",
            ),
        ] {
            let a: Address = lower.parse().unwrap();
            assert_eq!(display(&a), want);
            assert_eq!(lower_hex(&a), lower);
            assert!(parse_checksummed(want).is_ok());
        }
        // The all-lowercase form is valid only when it is the checksum form.
        assert!(parse_checksummed("0xde709f2102306220921060314715629080e2fb77").is_ok());
    }

    #[test]
    fn refusals() {
        // BEAMX-AVX20's contract in KDF's coins file.
        assert_eq!(
            parse_checksummed("0x62d0a8458ed7719fdaf978fe5929c6d342b0bfce").unwrap_err(),
            ERR_BAD_CHECKSUM
        );
        // A re-cased valid address (one letter flipped).
        assert_eq!(
            validate_address("0xFB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").unwrap_err(),
            ERR_BAD_CHECKSUM
        );
        assert_eq!(
            parse_checksummed("fB6916095ca1df60bB79Ce92cE3Ea74c37c5d359").unwrap_err(),
            ERR_NO_PREFIX
        );
        assert!(parse_checksummed("0x1234").unwrap_err().contains("length"));
        assert!(
            parse_checksummed("0xzB6916095ca1df60bB79Ce92cE3Ea74c37c5d359")
                .unwrap_err()
                .contains("character")
        );
        assert!(parse_checksummed("").is_err());
    }
}
