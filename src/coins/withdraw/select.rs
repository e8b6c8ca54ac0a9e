//! Coin selection: which unspents a withdrawal spends, the fee and the change.

use super::fee::{fee_for_size, FeePolicy};
use super::Unspent;

/// The (virtual) size of the transaction for `inputs` inputs, with or without a change output.
pub trait SizeModel {
    fn size(&self, inputs: usize, with_change: bool) -> u64;
}

/// What the selection decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The unspents to spend, in input order.
    pub inputs: Vec<Unspent>,
    /// The value of the output to the recipient.
    pub to_value: u64,
    /// The change output's value, if there is one.
    pub change: Option<u64>,
    /// Everything the transaction leaves to miners (a dust change included).
    pub fee: u64,
}

/// Why a selection is impossible; the caller turns these into [`super::WithdrawError`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectError {
    /// `available` satoshis do not cover `required`.
    NotEnough { available: u64, required: u64 },
    /// `max: true` with nothing to spend.
    ZeroBalance,
    /// The output would be below dust.
    TooLow { amount: u64, threshold: u64 },
}

/// Largest unspents first (then by outpoint, so the result is deterministic): fewer inputs,
/// a smaller fee. KDF walks its list in ascending order instead; both are valid spends.
fn ordered(unspents: &[Unspent]) -> Vec<Unspent> {
    let mut v = unspents.to_vec();
    v.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then_with(|| a.txid.cmp(&b.txid))
            .then_with(|| a.vout.cmp(&b.vout))
    });
    v
}

/// Sends exactly `amount`: adds unspents until `amount + fee` is covered; change below `dust`
/// is not created and goes to the fee.
pub fn select_exact(
    unspents: &[Unspent],
    amount: u64,
    policy: FeePolicy,
    dust: u64,
    sizes: &impl SizeModel,
) -> Result<Selection, SelectError> {
    if amount < dust {
        return Err(SelectError::TooLow {
            amount,
            threshold: dust,
        });
    }
    let ordered = ordered(unspents);
    let mut sum: u64 = 0;
    for (i, u) in ordered.iter().enumerate() {
        sum = sum.saturating_add(u.value);
        let n = i + 1;
        let fee_plain = fee_for_size(policy, sizes.size(n, false));
        if sum < amount.saturating_add(fee_plain) {
            continue;
        }
        let fee_change = fee_for_size(policy, sizes.size(n, true));
        let change = sum
            .checked_sub(amount)
            .and_then(|rest| rest.checked_sub(fee_change));
        let (change, fee) = match change {
            Some(c) if c >= dust => (Some(c), fee_change),
            // No change output: whatever is left over is the fee.
            _ => (None, sum - amount),
        };
        return Ok(Selection {
            inputs: ordered[..n].to_vec(),
            to_value: amount,
            change,
            fee,
        });
    }
    let required = amount.saturating_add(fee_for_size(
        policy,
        sizes.size(ordered.len().max(1), false),
    ));
    Err(SelectError::NotEnough {
        available: sum,
        required,
    })
}

/// Sends everything: all unspents, one output, the fee taken from it.
pub fn select_max(
    unspents: &[Unspent],
    policy: FeePolicy,
    dust: u64,
    sizes: &impl SizeModel,
) -> Result<Selection, SelectError> {
    let total = unspents.iter().fold(0u64, |s, u| s.saturating_add(u.value));
    if total == 0 {
        return Err(SelectError::ZeroBalance);
    }
    let ordered = ordered(unspents);
    let fee = fee_for_size(policy, sizes.size(ordered.len(), false));
    let to_value = total.saturating_sub(fee);
    if to_value < dust {
        return Err(SelectError::TooLow {
            amount: to_value,
            threshold: dust,
        });
    }
    Ok(Selection {
        inputs: ordered,
        to_value,
        change: None,
        fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    /// P2PKH-like sizes: 10 + 148 per input + 34 per output (recipient + change).
    struct Linear;
    impl SizeModel for Linear {
        fn size(&self, inputs: usize, with_change: bool) -> u64 {
            10 + 148 * inputs as u64 + 34 * (1 + u64::from(with_change))
        }
    }

    fn unspent(i: u32, value: u64) -> Unspent {
        Unspent {
            txid: bitcoin::Txid::from_byte_array([i as u8; 32]),
            vout: i,
            value,
            height: 100,
        }
    }

    const RATE: FeePolicy = FeePolicy::PerKbyte(1000);

    #[test]
    fn one_unspent_with_change() {
        let s = select_exact(&[unspent(1, 100_000)], 50_000, RATE, 1000, &Linear).unwrap();
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.fee, 226);
        assert_eq!(s.change, Some(100_000 - 50_000 - 226));
        assert_eq!(s.to_value + s.change.unwrap() + s.fee, 100_000);
    }

    #[test]
    fn three_unspents_largest_first() {
        let us = [unspent(1, 30_000), unspent(2, 50_000), unspent(3, 40_000)];
        let s = select_exact(&us, 80_000, RATE, 1000, &Linear).unwrap();
        let values: Vec<u64> = s.inputs.iter().map(|u| u.value).collect();
        assert_eq!(values, vec![50_000, 40_000]);
        assert_eq!(s.fee, 374);
        assert_eq!(s.change, Some(90_000 - 80_000 - 374));
    }

    #[test]
    fn many_unspents() {
        for n in [100u32, 1000] {
            let us: Vec<Unspent> = (0..n).map(|i| unspent(i, 10_000 + u64::from(i))).collect();
            let total: u64 = us.iter().map(|u| u.value).sum();
            // Needs about half of them.
            let amount = total / 2;
            let s = select_exact(&us, amount, RATE, 1000, &Linear).unwrap();
            let spent: u64 = s.inputs.iter().map(|u| u.value).sum();
            assert_eq!(spent, s.to_value + s.change.unwrap_or(0) + s.fee, "n={n}");
            // Minimal: without the last input the amount plus fee is not covered.
            let last = s.inputs.last().unwrap().value;
            let k = s.inputs.len();
            assert!(spent - last < amount + fee_for_size(RATE, Linear.size(k - 1, false)));
            // Largest first.
            assert!(s.inputs.windows(2).all(|w| w[0].value >= w[1].value));
            let m = select_max(&us, RATE, 1000, &Linear).unwrap();
            assert_eq!(m.inputs.len(), n as usize);
            assert_eq!(m.fee, Linear.size(n as usize, false));
            assert_eq!(m.to_value, total - m.fee);
        }
    }

    #[test]
    fn dust_change_goes_to_the_fee() {
        // 100_000 - 99_000 - 226 = 774 < 1000: no change output.
        let s = select_exact(&[unspent(1, 100_000)], 99_000, RATE, 1000, &Linear).unwrap();
        assert_eq!(s.change, None);
        assert_eq!(s.fee, 1000);
        // A conf dust of 500 keeps it.
        let s = select_exact(&[unspent(1, 100_000)], 99_000, RATE, 500, &Linear).unwrap();
        assert_eq!(s.change, Some(774));
        // Covered without change but not with it: no change, all left over is the fee.
        let s = select_exact(&[unspent(1, 100_000)], 99_800, RATE, 0, &Linear).unwrap();
        assert_eq!((s.change, s.fee), (None, 200));
    }

    #[test]
    fn insufficient_and_too_low() {
        let us = [unspent(1, 30_000), unspent(2, 20_000)];
        assert_eq!(
            select_exact(&us, 50_000, RATE, 1000, &Linear),
            Err(SelectError::NotEnough {
                available: 50_000,
                required: 50_000 + 340
            })
        );
        assert_eq!(
            select_exact(&[], 5000, RATE, 1000, &Linear),
            Err(SelectError::NotEnough {
                available: 0,
                required: 5192
            })
        );
        assert_eq!(
            select_exact(&us, 999, RATE, 1000, &Linear),
            Err(SelectError::TooLow {
                amount: 999,
                threshold: 1000
            })
        );
        assert_eq!(
            select_max(&[], RATE, 1000, &Linear),
            Err(SelectError::ZeroBalance)
        );
        assert_eq!(
            select_max(&[unspent(1, 1100)], RATE, 1000, &Linear),
            Err(SelectError::TooLow {
                amount: 1100 - 192,
                threshold: 1000
            })
        );
    }

    #[test]
    fn fixed_fee_policy() {
        let s = select_exact(
            &[unspent(1, 100_000)],
            50_000,
            FeePolicy::Fixed(5000),
            1000,
            &Linear,
        )
        .unwrap();
        assert_eq!((s.fee, s.change), (5000, Some(45_000)));
    }
}
