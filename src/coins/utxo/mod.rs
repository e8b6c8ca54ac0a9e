//! An activated UTXO coin: its address and scripthashes for the wallet key, and the Electrum pool
//! its balances come from.

mod activate;
mod balance;
pub mod hd;
pub mod stream;

pub use activate::{activate, Env, UtxoActivation};
pub use balance::{AccountBalance, AddressBalance, HdFailure};

use super::{format_amount, AddressFormat, CoinConf};
use crate::crypto::{self, KeyPair};
use crate::electrum::{ElectrumError, PoolHandle};
use bitcoin::hashes::Hash;
use std::sync::Arc;

/// A coin ready to answer balance requests.
pub struct UtxoCoin {
    /// The coin's registry entry.
    pub conf: Arc<CoinConf>,
    /// The wallet address shown to the user.
    pub address: String,
    /// Scripthashes whose balances add up to the wallet balance (P2PKH and P2PK, or P2WPKH).
    pub scripthashes: Vec<String>,
    /// Effective confirmations (request overrides the coin entry).
    pub required_confirmations: u64,
    /// Effective notarization flag.
    pub requires_notarization: bool,
    /// Activation order, for listings.
    pub seq: u64,
    /// The coin's Electrum servers.
    pub pool: PoolHandle,
    /// The activation request (without the userpass), to re-activate the coin as it was.
    pub activation: serde_json::Value,
    /// The address format in use.
    pub format: AddressFormat,
    /// HD mode: the accounts and their known addresses (the enabled address is `address`).
    pub hd: Option<HdState>,
    /// The chain tip read with the activation's first balance read (0: unknown).
    pub tip_at_activation: std::sync::atomic::AtomicU64,
}

/// A coin's HD state. The async mutex is this coin's alone: `get_new_address` holds it across
/// its gap check so two new-address calls cannot hand out the same index.
pub struct HdState {
    /// Derives addresses.
    pub deriver: hd::Deriver,
    /// The activation's HD params (gap limit for `get_new_address`).
    pub params: hd::HdParams,
    /// The accounts.
    pub accounts: tokio::sync::Mutex<hd::Accounts>,
}

/// Address and scripthashes of `key` for a coin in a format.
pub fn wallet_scripts(
    conf: &CoinConf,
    key: &KeyPair,
    format: AddressFormat,
) -> Result<(String, Vec<String>), String> {
    scripts_for_pubkey(conf, &key.public_key(), format)
}

/// Address and scripthashes of a public key: the address script's first (P2PKH or P2WPKH), then
/// P2PK for standard addresses, whose balance KDF counts too.
pub fn scripts_for_pubkey(
    conf: &CoinConf,
    pubkey: &[u8; 33],
    format: AddressFormat,
) -> Result<(String, Vec<String>), String> {
    let h160 = bitcoin::hashes::hash160::Hash::hash(pubkey).to_byte_array();
    match format {
        AddressFormat::Standard => Ok((
            conf.p2pkh_address(&h160),
            vec![
                crypto::scripthash(&crypto::p2pkh_script(&h160)),
                crypto::scripthash(&crypto::p2pk_script(pubkey)),
            ],
        )),
        AddressFormat::CashAddress => Ok((
            conf.cash_address(&h160, false)?,
            vec![
                crypto::scripthash(&crypto::p2pkh_script(&h160)),
                crypto::scripthash(&crypto::p2pk_script(pubkey)),
            ],
        )),
        AddressFormat::Segwit => {
            let hrp = match (&conf.bech32_hrp, conf.segwit) {
                (Some(hrp), true) => hrp,
                _ => {
                    return Err("Cannot use Segwit address format for coin without segwit support or bech32_hrp in config".into())
                }
            };
            Ok((
                crypto::segwit_address(hrp, &h160)?,
                vec![crypto::scripthash(&crypto::p2wpkh_script(&h160))],
            ))
        }
    }
}

impl UtxoCoin {
    /// The wallet balance in the coin's smallest unit: Σ (confirmed + unconfirmed).
    pub async fn balance_sats(&self) -> Result<i128, ElectrumError> {
        let balances = self.pool.balances(&self.scripthashes).await?;
        Ok(balances
            .iter()
            .map(|b| b.confirmed as i128 + b.unconfirmed as i128)
            .sum())
    }

    /// The balance as KDF prints it.
    pub async fn balance(&self) -> Result<String, ElectrumError> {
        Ok(format_amount(
            self.balance_sats().await?,
            self.conf.decimals,
        ))
    }

    /// Every scripthash the wallet's balance covers: the enabled address's, then every known HD
    /// address's, without repeats.
    pub async fn all_scripthashes(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = Vec::new();
        let mut push = |sh: &String| {
            if seen.insert(sh.clone()) {
                out.push(sh.clone());
            }
        };
        self.scripthashes.iter().for_each(&mut push);
        if let Some(hd) = &self.hd {
            for account in hd.accounts.lock().await.values() {
                account
                    .all()
                    .flat_map(|a| a.scripthashes.iter())
                    .for_each(&mut push);
            }
        }
        out
    }

    /// Balances (confirmed + unconfirmed, in satoshis) of every scripthash of the wallet, read in
    /// one round trip (or from the cache).
    pub async fn all_scripthashes_balance(
        &self,
    ) -> Result<std::collections::HashMap<String, i128>, ElectrumError> {
        let shs = self.all_scripthashes().await;
        let balances = self.pool.balances(&shs).await?;
        Ok(shs
            .into_iter()
            .zip(balances)
            .map(|(sh, b)| (sh, b.confirmed as i128 + b.unconfirmed as i128))
            .collect())
    }

    /// The coin's ticker.
    pub fn ticker(&self) -> &str {
        &self.conf.ticker
    }
}
