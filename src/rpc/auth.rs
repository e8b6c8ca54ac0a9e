//! The userpass check every non-public item goes through, with a constant-time comparison.

use super::dispatch::Caller;
use super::error::RpcError;
use crate::ctx::Ctx;
use bitcoin::hashes::{sha256, Hash};
use serde_json::Value;

/// Compares without an early exit, so timing tells nothing about how much of a guess was right.
/// Hashing first makes the length of the secret invisible too.
fn same_secret(given: &str, expected: &str) -> bool {
    let a = sha256::Hash::hash(given.as_bytes()).to_byte_array();
    let b = sha256::Hash::hash(expected.as_bytes()).to_byte_array();
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks one item's `userpass` against `rpc_password`.
pub fn check(ctx: &Ctx, _caller: Caller, userpass: Option<&Value>) -> Result<(), RpcError> {
    let Some(Value::String(given)) = userpass else {
        return Err(RpcError::UserpassNotSet);
    };
    // Without rpc_password every userpass is wrong, as in KDF's legacy path.
    match ctx.config.rpc_password.as_deref() {
        Some(expected) if same_secret(given, expected) => Ok(()),
        _ => Err(RpcError::UserpassInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn compares_whole_secrets() {
        assert!(same_secret("Str0ng!Pass", "Str0ng!Pass"));
        assert!(!same_secret("Str0ng!Pas", "Str0ng!Pass"));
        assert!(!same_secret("", "x"));
    }
}
