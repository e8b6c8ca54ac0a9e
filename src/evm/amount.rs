//! Base units (wei, token units) → KDF's decimal string.
//!
//! KDF prints `display_u256_with_decimal_point` through BigDecimal, which gives the minimal exact
//! decimal: no trailing zeros, no exponent, `"0"` for zero, no `.` when the fraction is zero.

use alloy_primitives::U256;

/// The most decimals a U256 can carry: 10^77 fits in 256 bits, 10^78 does not, so with more
/// decimals no value could reach one whole unit and the entry is surely wrong.
pub const MAX_DECIMALS: u8 = 77;

/// What `format_units` refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// More decimals than `MAX_DECIMALS`.
    #[error("decimals {0} is out of range (at most {MAX_DECIMALS})")]
    Decimals(u32),
}

/// `value / 10^decimals` as KDF prints it.
pub fn format_units(value: U256, decimals: u32) -> Result<String, AmountError> {
    if decimals > u32::from(MAX_DECIMALS) {
        return Err(AmountError::Decimals(decimals));
    }
    let digits = value.to_string();
    let d = decimals as usize;
    if d == 0 {
        return Ok(digits);
    }
    // Left-pad so there is at least one integer digit.
    let padded = if digits.len() <= d {
        format!("{}{digits}", "0".repeat(d + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - d);
    let frac = frac.trim_end_matches('0');
    Ok(if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> U256 {
        s.parse().unwrap()
    }

    #[test]
    fn kdf_vectors() {
        // eth_tests.rs L88-120 inputs and their BigDecimal serialisations (compat doc §1.4).
        let cases = [
            ("1000000000000000000", 18, "1"),
            ("1234567890000000000", 18, "1.23456789"),
            ("1234567890000000000", 16, "123.456789"),
            ("1000000000000000", 18, "0.001"),
            ("0", 18, "0"),
            ("0", 0, "0"),
            (
                "10000000000000000000000000000000000000000000000000000000000",
                18,
                "10000000000000000000000000000000000000000",
            ),
        ];
        for (v, d, want) in cases {
            assert_eq!(format_units(u(v), d).unwrap(), want, "{v} @ {d}");
        }
    }

    #[test]
    fn edges() {
        assert_eq!(
            format_units(U256::from(1), 18).unwrap(),
            "0.000000000000000001"
        );
        assert_eq!(format_units(U256::from(1), 0).unwrap(), "1");
        assert_eq!(format_units(U256::from(10), 1).unwrap(), "1");
        assert_eq!(format_units(U256::from(1_500_000u64), 6).unwrap(), "1.5");
        let max = U256::MAX;
        assert_eq!(
            format_units(max, 18).unwrap(),
            "115792089237316195423570985008687907853269984665640564039457.584007913129639935"
        );
        assert_eq!(
            format_units(max, 77).unwrap(),
            "1.15792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
        assert_eq!(format_units(max, 0).unwrap(), max.to_string());
        assert_eq!(
            format_units(U256::from(1), 77).unwrap(),
            format!("0.{}1", "0".repeat(76))
        );
        assert_eq!(format_units(U256::ZERO, 77).unwrap(), "0");
        assert_eq!(
            format_units(U256::from(1), 78),
            Err(AmountError::Decimals(78))
        );
        assert!(format_units(U256::ZERO, 255).is_err());
    }

    #[test]
    fn round_trip_digits() {
        // Removing the point and re-padding gives back the integer, for a spread of values.
        for d in [0u32, 1, 6, 8, 18, 40, 77] {
            for v in [U256::from(7), U256::from(123_456_789u64), U256::MAX >> 3] {
                let s = format_units(v, d).unwrap();
                let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
                let back: U256 = format!("{int}{frac:0<width$}", width = d as usize)
                    .parse()
                    .unwrap();
                assert_eq!(back, v, "{v} @ {d}: {s}");
            }
        }
    }
}
