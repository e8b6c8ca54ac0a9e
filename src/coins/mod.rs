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

/// Every coin entry of the coins file, by ticker.
#[derive(Debug, Default)]
pub struct Registry {
    coins: HashMap<String, Arc<CoinConf>>,
}

impl Registry {
    /// Checks every entry; one error lists every bad entry by coin and field.
    pub fn load(entries: &[Value]) -> Result<Registry, String> {
        let mut coins = HashMap::new();
        let mut problems = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let name = entry
                .get("coin")
                .and_then(Value::as_str)
                .map_or_else(|| format!("entry #{i}"), |t| format!("coin '{t}'"));
            match CoinConf::from_json(entry) {
                Ok(c) => {
                    if coins.insert(c.ticker.clone(), Arc::new(c)).is_some() {
                        problems.push(format!("{name}: listed twice"));
                    }
                }
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(Registry { coins })
        } else {
            Err(format!("bad coins file: {}", problems.join("; ")))
        }
    }

    /// The entry of a ticker.
    pub fn get(&self, ticker: &str) -> Option<Arc<CoinConf>> {
        self.coins.get(ticker).cloned()
    }

    /// How many coins the file lists.
    pub fn len(&self) -> usize {
        self.coins.len()
    }

    /// True when the file lists no coin.
    pub fn is_empty(&self) -> bool {
        self.coins.is_empty()
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
    fn registry_names_every_bad_entry() {
        let err = Registry::load(&[
            json!({"coin": "A", "protocol": {"type": "UTXO"}}),
            json!({"coin": "B", "protocol": {"type": "UTXO"}, "pubtype": "x"}),
            json!({"coin": "A", "protocol": {"type": "UTXO"}}),
            json!(5),
        ])
        .unwrap_err();
        assert!(err.contains("coin 'B': field 'pubtype'"), "{err}");
        assert!(err.contains("coin 'A': listed twice"), "{err}");
        assert!(err.contains("entry #3"), "{err}");
    }

    #[test]
    fn shipped_coins_file_loads() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/coins")).unwrap();
        let list: Vec<Value> = serde_json::from_str(&text).unwrap();
        let reg = Registry::load(&list).unwrap();
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
