//! Coins: the registry read from the `coins` file at start-up, the set of activated coins, and
//! the UTXO coin itself (its address, scripthashes and Electrum pool).

pub mod address;
mod conf;
mod error;
pub mod evm;
pub mod utxo;
pub mod withdraw;

pub use address::{convert as convert_address, parse as parse_address, script_pubkey, AddrKind};
pub use conf::{parse_address_format, AddressFormat, CoinConf};
pub use error::CoinError;
pub use evm::EvmCoin;
pub use utxo::{wallet_scripts, UtxoCoin};

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Protocol types kdfd activates; every other entry is kept and refused at activation.
pub const SERVED_PROTOCOLS: [&str; 3] = ["UTXO", "ETH", "ERC20"];

/// Every coin entry of the coins file, by ticker: the ones kdfd serves, and the ones it keeps
/// only to refuse with a reason (an unknown protocol type, a field value kdfd cannot honour).
/// One bad entry never stops start-up: a real coins file lists hundreds of coins, and a user
/// who wants ten of them must not lose all of them to one entry kdfd does not know.
#[derive(Debug, Default)]
pub struct Registry {
    coins: HashMap<String, Arc<CoinConf>>,
    refused: HashMap<String, String>,
    /// Entries that could not be keyed at all (no ticker) or repeated a ticker.
    skipped: Vec<String>,
}

impl Registry {
    /// Checks every entry: each is served, refused with its reason, or (without a usable
    /// `coin`, or as a repeat of a ticker, where KDF's lookup finds the first) skipped.
    pub fn load(entries: &[Value]) -> Registry {
        let mut reg = Registry::default();
        for (i, entry) in entries.iter().enumerate() {
            let Some(ticker) = entry
                .get("coin")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            else {
                reg.skipped.push(format!(
                    "entry #{i}: field 'coin' must be a non-empty string"
                ));
                continue;
            };
            if reg.coins.contains_key(ticker) || reg.refused.contains_key(ticker) {
                reg.skipped.push(format!(
                    "coin '{ticker}': listed twice, the first entry is used"
                ));
                continue;
            }
            match CoinConf::from_json(entry).and_then(|c| match c.refusal() {
                Some(why) => Err(why),
                None => Ok(c),
            }) {
                Ok(c) => {
                    reg.coins.insert(ticker.to_string(), Arc::new(c));
                }
                Err(why) => {
                    reg.refused.insert(ticker.to_string(), why);
                }
            }
        }
        reg
    }

    /// The entry of a ticker that kdfd serves.
    pub fn get(&self, ticker: &str) -> Option<Arc<CoinConf>> {
        self.coins.get(ticker).cloned()
    }

    /// Why kdfd refuses a ticker the coins file lists; `None` for served and unknown tickers.
    pub fn refusal(&self, ticker: &str) -> Option<&str> {
        self.refused.get(ticker).map(String::as_str)
    }

    /// How many coins kdfd serves.
    pub fn len(&self) -> usize {
        self.coins.len()
    }

    /// True when no coin is served.
    pub fn is_empty(&self) -> bool {
        self.coins.is_empty()
    }

    /// How many listed coins are refused.
    pub fn refused_len(&self) -> usize {
        self.refused.len()
    }

    /// The refused tickers grouped by reason (sorted), for one start-up line per reason.
    pub fn refused_by_reason(&self) -> Vec<(String, Vec<String>)> {
        let mut by: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (t, why) in &self.refused {
            by.entry(why.as_str()).or_default().push(t.clone());
        }
        by.into_iter()
            .map(|(why, mut ts)| {
                ts.sort();
                (why.to_string(), ts)
            })
            .collect()
    }

    /// Entries skipped at load (no ticker, or a repeat), each with its reason.
    pub fn skipped(&self) -> &[String] {
        &self.skipped
    }
}

/// An active coin of any protocol.
#[derive(Clone)]
pub enum Coin {
    /// Electrum-backed UTXO coin.
    Utxo(Arc<UtxoCoin>),
    /// ETH-type platform or ERC-20 token.
    Evm(Arc<EvmCoin>),
}

impl Coin {
    /// The ticker.
    pub fn ticker(&self) -> &str {
        match self {
            Coin::Utxo(c) => c.ticker(),
            Coin::Evm(c) => &c.conf.ticker,
        }
    }

    /// Activation order.
    pub fn seq(&self) -> u64 {
        match self {
            Coin::Utxo(c) => c.seq,
            Coin::Evm(c) => c.seq,
        }
    }

    /// The address shown to the user (EIP-55 for EVM coins).
    pub fn address(&self) -> String {
        match self {
            Coin::Utxo(c) => c.address.clone(),
            Coin::Evm(c) => c.display_address(),
        }
    }
}

/// A ticker's place in the active set.
enum Slot {
    /// An activation is under way; a second one must fail, not race.
    Activating,
    /// Ready to serve.
    Active(Coin),
}

/// The activated coins. A ticker is reserved before its activation starts, so two activations of
/// one coin never both succeed, and removed again if the activation fails.
#[derive(Default)]
pub struct ActiveCoins {
    // foldhash: looked up once per batch item that names a coin.
    slots: DashMap<String, Slot, foldhash::fast::RandomState>,
    order: AtomicU64,
}

/// Proof that a ticker was reserved; dropping it without `commit` frees the ticker again.
pub struct Reservation<'a> {
    coins: &'a ActiveCoins,
    ticker: String,
    committed: bool,
}

impl Reservation<'_> {
    /// Makes the coin active.
    pub fn commit(self, coin: Arc<UtxoCoin>) {
        self.commit_coin(Coin::Utxo(coin));
    }

    /// Makes an EVM coin active.
    pub fn commit_evm(self, coin: Arc<EvmCoin>) {
        self.commit_coin(Coin::Evm(coin));
    }

    fn commit_coin(mut self, coin: Coin) {
        self.coins
            .slots
            .insert(self.ticker.clone(), Slot::Active(coin));
        self.committed = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.coins.slots.remove(&self.ticker);
        }
    }
}

impl ActiveCoins {
    /// Reserves a ticker for activation; `None` if it is active or being activated.
    pub fn reserve(&self, ticker: &str) -> Option<Reservation<'_>> {
        match self.slots.entry(ticker.to_string()) {
            Entry::Occupied(_) => None,
            Entry::Vacant(v) => {
                v.insert(Slot::Activating);
                Some(Reservation {
                    coins: self,
                    ticker: ticker.to_string(),
                    committed: false,
                })
            }
        }
    }

    /// Next activation sequence number, so listings follow activation order.
    pub fn next_seq(&self) -> u64 {
        self.order.fetch_add(1, Ordering::Relaxed)
    }

    /// An active UTXO coin.
    pub fn get(&self, ticker: &str) -> Option<Arc<UtxoCoin>> {
        match self.get_coin(ticker) {
            Some(Coin::Utxo(c)) => Some(c),
            _ => None,
        }
    }

    /// An active coin of any protocol.
    pub fn get_coin(&self, ticker: &str) -> Option<Coin> {
        match self.slots.get(ticker).as_deref() {
            Some(Slot::Active(c)) => Some(c.clone()),
            _ => None,
        }
    }

    /// Removes an active coin; `None` if it was not active. Removing an EVM platform removes
    /// its tokens too (KDF's `disable_coin`), since they share its nodes.
    pub fn remove(&self, ticker: &str) -> Option<Coin> {
        let removed = match self
            .slots
            .remove_if(ticker, |_, s| matches!(s, Slot::Active(_)))
        {
            Some((_, Slot::Active(c))) => c,
            _ => return None,
        };
        if let Coin::Evm(platform) = &removed {
            if platform.platform.is_none() {
                let tokens: Vec<String> = self
                    .list_all()
                    .into_iter()
                    .filter_map(|c| match c {
                        Coin::Evm(t) if t.platform.as_deref() == Some(ticker) => {
                            Some(t.conf.ticker.clone())
                        }
                        _ => None,
                    })
                    .collect();
                for t in tokens {
                    self.slots
                        .remove_if(&t, |_, s| matches!(s, Slot::Active(_)));
                }
            }
        }
        Some(removed)
    }

    /// Active UTXO coins in activation order.
    pub fn list(&self) -> Vec<Arc<UtxoCoin>> {
        self.list_all()
            .into_iter()
            .filter_map(|c| match c {
                Coin::Utxo(c) => Some(c),
                Coin::Evm(_) => None,
            })
            .collect()
    }

    /// Every active coin in activation order.
    pub fn list_all(&self) -> Vec<Coin> {
        let mut v: Vec<Coin> = self
            .slots
            .iter()
            .filter_map(|e| match e.value() {
                Slot::Active(c) => Some(c.clone()),
                Slot::Activating => None,
            })
            .collect();
        v.sort_by_key(Coin::seq);
        v
    }
}

/// `sats / 10^decimals` as KDF prints it: exact, no trailing zeros, no exponent.
pub fn format_amount(sats: i128, decimals: u32) -> String {
    match rust_decimal::Decimal::try_from_i128_with_scale(sats, decimals) {
        Ok(d) => d.normalize().to_string(),
        // Beyond 96 bits: no real balance, but say something exact rather than panic.
        Err(_) => format!("{sats}e-{decimals}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn amounts_as_kdf_prints_them() {
        assert_eq!(format_amount(0, 8), "0");
        assert_eq!(format_amount(1, 8), "0.00000001");
        assert_eq!(format_amount(777_700_000, 8), "7.777");
        assert_eq!(format_amount(100_000_000, 8), "1");
        assert_eq!(format_amount(986_882_130, 8), "9.8688213");
        assert_eq!(format_amount(505_000_000_000, 8), "5050");
        assert_eq!(format_amount(-150_000_000, 8), "-1.5");
        assert_eq!(format_amount(2_100_000_000_000_000, 8), "21000000");
        assert_eq!(format_amount(1, 18), "0.000000000000000001");
        assert_eq!(format_amount(12345, 0), "12345");
    }

    #[test]
    fn registry_keeps_going_past_bad_entries() {
        let reg = Registry::load(&[
            json!({"coin": "A", "protocol": {"type": "UTXO"}}),
            json!({"coin": "B", "protocol": {"type": "UTXO"}, "pubtype": "x"}),
            json!({"coin": "A", "protocol": {"type": "UTXO"}, "pubtype": 0}),
            json!(5),
            json!({"coin": "ATOM", "protocol": {"type": "TENDERMINT"}}),
            json!({"coin": "C", "protocol": {"type": "UTXO"}}),
        ]);
        assert_eq!(reg.len(), 2);
        assert_eq!(
            reg.get("A").unwrap().pubtype,
            60,
            "the first entry of a ticker is used"
        );
        assert!(reg.refusal("B").unwrap().contains("field 'pubtype'"));
        assert!(reg.refusal("ATOM").unwrap().contains("TENDERMINT"));
        assert!(reg.get("B").is_none() && reg.refusal("C").is_none());
        let skipped = reg.skipped().join("; ");
        assert!(skipped.contains("coin 'A': listed twice"), "{skipped}");
        assert!(skipped.contains("entry #3"), "{skipped}");
        assert_eq!(reg.refused_by_reason().len(), 2);
    }

    #[test]
    fn shipped_coins_file_loads() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/coins")).unwrap();
        let list: Vec<Value> = serde_json::from_str(&text).unwrap();
        let reg = Registry::load(&list);
        assert_eq!(reg.refused_len(), 0);
        for t in [
            "DOC",
            "MARTY",
            "RICK",
            "MORTY",
            "KMD",
            "BTC",
            "LTC",
            "BTC-segwit",
            "LTC-segwit",
        ] {
            assert!(reg.get(t).is_some(), "{t}");
        }
        assert_eq!(reg.len(), 9);
    }

    #[test]
    fn reservation_is_exclusive_and_released_on_drop() {
        let active = ActiveCoins::default();
        let r = active.reserve("RICK").unwrap();
        assert!(active.reserve("RICK").is_none());
        drop(r);
        assert!(active.reserve("RICK").is_some());
    }
}
