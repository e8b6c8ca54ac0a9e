//! Per-address and per-account balances of a UTXO coin (HD or iguana), and KDF's
//! `get_new_address` with its gap rule. Every read of a call is one upstream round trip.

use super::hd::HdAddress;
use super::UtxoCoin;
use crate::coins::CoinError;
use crate::crypto::hd::Chain;
use crate::store::Store;

/// One address's balance.
#[derive(Debug, Clone)]
pub struct AddressBalance {
    /// As shown.
    pub address: String,
    /// Its full path.
    pub derivation_path: String,
    /// Its chain.
    pub chain: Chain,
    /// Confirmed + unconfirmed, in satoshis.
    pub sats: i128,
}

/// One account's known addresses and their balances.
#[derive(Debug, Clone)]
pub struct AccountBalance {
    /// Account index.
    pub id: u32,
    /// `m/purpose'/coin'/account'`.
    pub derivation_path: String,
    /// External first, then internal.
    pub addresses: Vec<AddressBalance>,
    /// Their sum.
    pub total: i128,
}

/// Why `get_new_address` (or an HD-only read) cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HdFailure {
    /// The coin runs in iguana mode.
    NotHd,
    /// No such account was activated.
    UnknownAccount(u32),
    /// The newest `gap_limit` addresses are all unused.
    EmptyAddressesLimitReached(u32),
    /// 2^31 addresses on the chain.
    AddressLimitReached(u32),
}

impl UtxoCoin {
    /// Balances of the known addresses of every account (or of `only`), live or cached.
    pub async fn account_balances(
        &self,
        only: Option<u32>,
    ) -> Result<Vec<AccountBalance>, CoinError> {
        let Some(hd) = &self.hd else {
            return Err(CoinError::Hd(HdFailure::NotHd));
        };
        let accounts: Vec<_> = {
            let guard = hd.accounts.lock().await;
            if let Some(id) = only {
                if !guard.contains_key(&id) {
                    return Err(CoinError::Hd(HdFailure::UnknownAccount(id)));
                }
            }
            guard
                .values()
                .filter(|a| only.is_none_or(|id| a.id == id))
                .cloned()
                .collect()
        };
        let shs: Vec<String> = accounts
            .iter()
            .flat_map(|a| a.all().flat_map(|x| x.scripthashes.iter().cloned()))
            .collect();
        let balances = self
            .pool
            .balances(&shs)
            .await
            .map_err(CoinError::Electrum)?;
        let mut by_sh = std::collections::HashMap::new();
        for (sh, b) in shs.iter().zip(balances) {
            by_sh.insert(sh.as_str(), b.confirmed as i128 + b.unconfirmed as i128);
        }
        let sum = |a: &HdAddress| {
            a.scripthashes
                .iter()
                .map(|s| by_sh.get(s.as_str()).copied().unwrap_or(0))
                .sum::<i128>()
        };
        Ok(accounts
            .iter()
            .map(|acc| {
                let addresses: Vec<AddressBalance> = acc
                    .all()
                    .map(|a| AddressBalance {
                        address: a.address.clone(),
                        derivation_path: a.derivation_path.clone(),
                        chain: a.chain,
                        sats: sum(a),
                    })
                    .collect();
                AccountBalance {
                    id: acc.id,
                    derivation_path: format!("{}/{}'", hd.deriver.coin_path, acc.id),
                    total: addresses.iter().map(|a| a.sats).sum(),
                    addresses,
                }
            })
            .collect())
    }

    /// KDF's `get_new_address`: the next address of `chain` in `account_id`, allowed while fewer
    /// than `gap_limit` addresses are known, or when one of the newest `gap_limit` has history
    /// (probed in one round trip). The new count is persisted before the address is answered.
    pub async fn new_address(
        &self,
        store: Option<&Store>,
        account_id: u32,
        chain: Chain,
        gap_limit: Option<u32>,
    ) -> Result<(HdAddress, i128), CoinError> {
        let Some(hd) = &self.hd else {
            return Err(CoinError::Hd(HdFailure::NotHd));
        };
        let gap = gap_limit.unwrap_or(hd.params.gap_limit);
        // Held across the probe: two calls must not hand out the same index.
        let mut accounts = hd.accounts.lock().await;
        let account = accounts
            .get_mut(&account_id)
            .ok_or(CoinError::Hd(HdFailure::UnknownAccount(account_id)))?;
        let known = account.chain(chain).clone();
        let n = known.len() as u32;
        const MAX: u32 = 1 << 31;
        if n >= MAX - 1 {
            return Err(CoinError::Hd(HdFailure::AddressLimitReached(MAX)));
        }
        if n != 0 && gap <= n {
            let newest = &known[known.len().saturating_sub(gap as usize)..];
            let shs: Vec<String> = newest.iter().map(|a| a.scripthashes[0].clone()).collect();
            let histories = self
                .pool
                .histories(&shs)
                .await
                .map_err(CoinError::Electrum)?;
            if histories.iter().all(|h| h.is_empty()) {
                return Err(CoinError::Hd(HdFailure::EmptyAddressesLimitReached(gap)));
            }
        }
        let mut fresh = hd
            .deriver
            .addresses(account_id, &account.xpub, chain, n..n + 1)?;
        let addr = fresh
            .pop()
            .ok_or_else(|| CoinError::Config("no address derived".into()))?;
        if let Some(store) = store {
            store
                .set_address_count(
                    &self.conf.ticker,
                    account_id,
                    chain == Chain::Internal,
                    n + 1,
                )
                .await
                .map_err(|e| CoinError::Storage(e.to_string()))?;
        }
        match chain {
            Chain::External => account.external.push(addr.clone()),
            Chain::Internal => account.internal.push(addr.clone()),
        }
        drop(accounts);
        // Subscribes the new address too, so its balance stays fresh in the cache.
        let b = self
            .pool
            .balances(&addr.scripthashes)
            .await
            .map_err(CoinError::Electrum)?;
        let sats = b
            .iter()
            .map(|b| b.confirmed as i128 + b.unconfirmed as i128)
            .sum();
        Ok((addr, sats))
    }
}
