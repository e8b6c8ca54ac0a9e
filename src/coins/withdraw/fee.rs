//! Fee policies as KDF applies them to UTXO withdrawals (spec 2.6).

use super::WithdrawError;
use crate::coins::CoinConf;
use serde_json::Value;

/// How the fee of a withdrawal is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeePolicy {
    /// Satoshis per 1000 bytes of the (virtual) size: `rate × size / 1000`.
    PerKbyte(u64),
    /// An absolute fee in satoshis, whatever the size. No KDF request maps here (see
    /// [`fee_policy_from_request`]); it exists for callers that already know the fee.
    Fixed(u64),
}

/// KDF's rate when the coins file has no `txfee`.
pub const DEFAULT_TXFEE_PER_KB: u64 = 1000;

/// The policy used when the request has no `fee`, from the coins-file `txfee`:
/// absent → 1000 sat/kB; `0` → the dynamic rate the caller got from Electrum
/// `blockchain.estimatefee` (see [`estimatefee_to_sat_per_kb`]), falling back to 1000 sat/kB
/// when Electrum has no estimate; `N` → N sat/kB.
pub fn default_fee_policy(conf: &CoinConf, dynamic_rate: Option<u64>) -> FeePolicy {
    match conf.txfee {
        None => FeePolicy::PerKbyte(DEFAULT_TXFEE_PER_KB),
        Some(0) => FeePolicy::PerKbyte(dynamic_rate.unwrap_or(DEFAULT_TXFEE_PER_KB)),
        Some(n) => FeePolicy::PerKbyte(n),
    }
}

/// Electrum's `blockchain.estimatefee` answer (coins per kB, `-1` when the server has no
/// estimate) as satoshis per kB; `None` for "no estimate" and for nonsense values.
pub fn estimatefee_to_sat_per_kb(coins_per_kb: f64) -> Option<u64> {
    if !coins_per_kb.is_finite() || coins_per_kb <= 0.0 {
        return None;
    }
    let sats = (coins_per_kb * 1e8).round();
    // Beyond 21 M coins per kB is not a fee rate.
    (1.0..=2.1e15).contains(&sats).then_some(sats as u64)
}

/// The request's `fee` object. KDF turns `UtxoFixed{amount}` into `FixedPerKb(amount)` and
/// `UtxoPerKbyte{amount}` into `Dynamic(amount)`; both are charged per kB of size with the same
/// formula (spec 2.6: "UtxoFixed{amount} maps to FixedPerKb(amount) in both" versions), so
/// despite its name `UtxoFixed` is a per-kB rate here too, not an absolute fee.
pub fn fee_policy_from_request(fee: &Value, decimals: u32) -> Result<FeePolicy, WithdrawError> {
    let kind = fee.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "UtxoFixed" | "UtxoPerKbyte" => {
            let amount = match fee.get("amount") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => {
                    return Err(WithdrawError::InvalidFeePolicy(format!(
                        "'{kind}' needs a decimal 'amount', got {fee}"
                    )))
                }
            };
            let sats = parse_amount(&amount, decimals)
                .map_err(|e| WithdrawError::InvalidFeePolicy(e.to_string()))?;
            Ok(FeePolicy::PerKbyte(sats))
        }
        _ => Err(WithdrawError::InvalidFeePolicy(format!(
            "Expected 'UtxoFixed' or 'UtxoPerKbyte' fee types, found {fee}"
        ))),
    }
}

/// A decimal amount in coin units as satoshis. Digits past `decimals` are cut off, as
/// KDF's conversion does; negative or out-of-range amounts are refused.
pub fn parse_amount(text: &str, decimals: u32) -> Result<u64, WithdrawError> {
    let bad = || WithdrawError::InternalError(format!("invalid amount {text:?}"));
    let d: rust_decimal::Decimal = text.trim().parse().map_err(|_| bad())?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(bad());
    }
    let scale = rust_decimal::Decimal::from_i128_with_scale(10i128.pow(decimals.min(18)), 0);
    let sats = d.checked_mul(scale).ok_or_else(bad)?.trunc();
    u64::try_from(sats).map_err(|_| bad())
}

/// The fee for a transaction of `size` (virtual) bytes. KDF K (the SDK's pin) charges
/// `rate × size / 1000` (integer division); KDF v2.5.1 charged `rate × ceil(size / 1000)`.
pub fn fee_for_size(policy: FeePolicy, size: u64) -> u64 {
    match policy {
        FeePolicy::PerKbyte(rate) => {
            u64::try_from(u128::from(rate) * u128::from(size) / 1000).unwrap_or(u64::MAX)
        }
        FeePolicy::Fixed(fee) => fee,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conf(txfee: Option<u64>) -> CoinConf {
        let mut c =
            CoinConf::from_json(&json!({"coin": "RICK", "protocol": {"type": "UTXO"}})).unwrap();
        c.txfee = txfee;
        c
    }

    #[test]
    fn defaults_follow_the_coins_file() {
        assert_eq!(
            default_fee_policy(&conf(None), Some(5)),
            FeePolicy::PerKbyte(1000)
        );
        assert_eq!(
            default_fee_policy(&conf(Some(0)), Some(5)),
            FeePolicy::PerKbyte(5)
        );
        assert_eq!(
            default_fee_policy(&conf(Some(0)), None),
            FeePolicy::PerKbyte(1000)
        );
        assert_eq!(
            default_fee_policy(&conf(Some(7)), Some(5)),
            FeePolicy::PerKbyte(7)
        );
    }

    #[test]
    fn estimatefee_conversion() {
        assert_eq!(estimatefee_to_sat_per_kb(0.00001), Some(1000));
        assert_eq!(estimatefee_to_sat_per_kb(0.00012345), Some(12345));
        assert_eq!(estimatefee_to_sat_per_kb(-1.0), None);
        assert_eq!(estimatefee_to_sat_per_kb(0.0), None);
        assert_eq!(estimatefee_to_sat_per_kb(f64::NAN), None);
        assert_eq!(estimatefee_to_sat_per_kb(1e12), None);
    }

    #[test]
    fn request_fee_types() {
        let fixed = json!({"type": "UtxoFixed", "amount": "0.0001"});
        assert_eq!(
            fee_policy_from_request(&fixed, 8).unwrap(),
            FeePolicy::PerKbyte(10_000)
        );
        let per_kb = json!({"type": "UtxoPerKbyte", "amount": "0.00001"});
        assert_eq!(
            fee_policy_from_request(&per_kb, 8).unwrap(),
            FeePolicy::PerKbyte(1000)
        );
        let eth = json!({"type": "EthGas", "gas_price": "1", "gas": 21000});
        let err = fee_policy_from_request(&eth, 8).unwrap_err();
        assert!(matches!(err, WithdrawError::InvalidFeePolicy(_)), "{err}");
        assert!(err.to_string().starts_with("Invalid fee policy: "), "{err}");
        let missing = json!({"type": "UtxoFixed"});
        assert!(matches!(
            fee_policy_from_request(&missing, 8),
            Err(WithdrawError::InvalidFeePolicy(_))
        ));
    }

    #[test]
    fn amounts_and_fee_math() {
        assert_eq!(parse_amount("1.00001", 8).unwrap(), 100_001_000);
        assert_eq!(parse_amount("0.000000019", 8).unwrap(), 1);
        assert_eq!(parse_amount("0", 8).unwrap(), 0);
        assert!(parse_amount("-1", 8).is_err());
        assert!(parse_amount("abc", 8).is_err());
        assert!(parse_amount("1e30", 8).is_err());
        assert_eq!(fee_for_size(FeePolicy::PerKbyte(1000), 226), 226);
        assert_eq!(fee_for_size(FeePolicy::PerKbyte(1500), 225), 337);
        assert_eq!(fee_for_size(FeePolicy::PerKbyte(u64::MAX), 1000), u64::MAX);
        assert_eq!(fee_for_size(FeePolicy::Fixed(5000), 10_000), 5000);
    }
}
