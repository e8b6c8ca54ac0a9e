//! What goes into and comes out of the JSON-RPC calls: ERC-20 ABI (through `sol!`), QUANTITY
//! and DATA hex, with typed errors for anything else.

use super::client::Query;
use super::EvmError;
use alloy_primitives::{hex, Address, U256};
use alloy_sol_types::{sol, SolCall};
use serde_json::{json, Value};

sol! {
    function balanceOf(address holder) external view returns (uint256);
    function decimals() external view returns (uint8);
}

/// Lowercase `0x…`, as nodes take addresses.
pub(crate) fn hx(a: &Address) -> String {
    format!("{a:#x}")
}

/// The JSON-RPC method and params that read one balance.
pub(crate) fn query_call(q: &Query) -> (&'static str, Value) {
    match q {
        Query::Eth(a) => ("eth_getBalance", json!([hx(a), "latest"])),
        Query::Token { contract, holder } => {
            let data = balanceOfCall { holder: *holder }.abi_encode();
            // KDF sends `from` = the holder (its own address).
            let tx =
                json!({"from": hx(holder), "to": hx(contract), "data": hex::encode_prefixed(data)});
            ("eth_call", json!([tx, "latest"]))
        }
    }
}

pub(crate) fn decode_balance(q: &Query, v: &Value) -> Result<U256, EvmError> {
    match q {
        Query::Eth(_) => quantity(v),
        Query::Token { .. } => {
            let out = call_data(v)?;
            balanceOfCall::abi_decode_returns_validate(&out)
                .map_err(|e| EvmError::InvalidResponse(format!("balanceOf(): {e}")))
        }
    }
}

/// A QUANTITY: `0x` + 1..=64 hex digits.
pub(crate) fn quantity(v: &Value) -> Result<U256, EvmError> {
    let s = v
        .as_str()
        .ok_or_else(|| EvmError::InvalidResponse(format!("quantity is not a string: {v}")))?;
    let digits = s
        .strip_prefix("0x")
        .filter(|d| !d.is_empty() && d.len() <= 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| EvmError::InvalidResponse(format!("not a hex quantity: {s:.80}")))?;
    U256::from_str_radix(digits, 16)
        .map_err(|e| EvmError::InvalidResponse(format!("not a hex quantity: {s:.80}: {e}")))
}

pub(crate) fn quantity_u64(v: &Value) -> Result<u64, EvmError> {
    let n = quantity(v)?;
    u64::try_from(n).map_err(|_| EvmError::InvalidResponse(format!("{n} does not fit in 64 bits")))
}

/// DATA: `0x` + an even number of hex digits.
pub(crate) fn call_data(v: &Value) -> Result<Vec<u8>, EvmError> {
    let s = v
        .as_str()
        .ok_or_else(|| EvmError::InvalidResponse(format!("call result is not a string: {v}")))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| EvmError::InvalidResponse(format!("call result lacks 0x: {s:.80}")))?;
    hex::decode(digits)
        .map_err(|e| EvmError::InvalidResponse(format!("call result is not hex ({e}): {s:.80}")))
}

/// `eth_call` params for `decimals()` (KDF sends it from the zero address).
pub(crate) fn decimals_call(contract: &Address) -> Value {
    let data = decimalsCall {}.abi_encode();
    let tx =
        json!({"from": hx(&Address::ZERO), "to": hx(contract), "data": hex::encode_prefixed(data)});
    json!([tx, "latest"])
}

/// The `decimals()` answer: one word holding a uint8.
pub(crate) fn decode_decimals(v: &Value) -> Result<u8, EvmError> {
    decimalsCall::abi_decode_returns_validate(&call_data(v)?)
        .map_err(|e| EvmError::InvalidResponse(format!("decimals(): {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        let holder: Address = "0x1111111111111111111111111111111111111111"
            .parse()
            .unwrap();
        let data = balanceOfCall { holder }.abi_encode();
        assert_eq!(
            hex::encode(&data),
            format!("70a08231{}{}", "0".repeat(24), "11".repeat(20))
        );
        assert_eq!(hex::encode(decimalsCall {}.abi_encode()), "313ce567");
        let word = format!("0x{:064x}", 1_234_567_890u64);
        let q = Query::Token {
            contract: holder,
            holder,
        };
        assert_eq!(
            decode_balance(&q, &json!(word)).unwrap(),
            U256::from(1_234_567_890u64)
        );
        // An account without code answers "0x": no word to decode.
        assert!(matches!(
            decode_balance(&q, &json!("0x")),
            Err(EvmError::InvalidResponse(_))
        ));
        let (m, p) = query_call(&Query::Eth(holder));
        assert_eq!(
            (m, p),
            (
                "eth_getBalance",
                json!(["0x1111111111111111111111111111111111111111", "latest"])
            )
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(quantity(&json!("0x0")).unwrap(), U256::ZERO);
        assert_eq!(
            quantity(&json!("0x21e19e0c9bab2400000")).unwrap(),
            U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18))
        );
        assert_eq!(
            quantity(&json!(format!("0x{}", "f".repeat(64)))).unwrap(),
            U256::MAX
        );
        for bad in [
            json!("0x"),
            json!("12"),
            json!("0xzz"),
            json!(5),
            json!(null),
            json!(format!("0x1{}", "0".repeat(64))),
        ] {
            assert!(
                matches!(quantity(&bad), Err(EvmError::InvalidResponse(_))),
                "{bad}"
            );
        }
        assert_eq!(quantity_u64(&json!("0x7a69")).unwrap(), 31337);
        assert!(quantity_u64(&json!("0x10000000000000000")).is_err());
        assert!(call_data(&json!("0x0")).is_err());
        assert!(call_data(&json!("abcd")).is_err());
    }
}
