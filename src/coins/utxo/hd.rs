//! A UTXO coin in HD mode: its accounts, their known addresses on both chains, and KDF's
//! gap-limit scan — done in round trips, not addresses: every probe of a window (both chains) goes
//! out as one Electrum array, and the window only moves when a used address moves it.

use super::scripts_for_pubkey;
use crate::coins::{AddressFormat, CoinConf, CoinError};
use crate::crypto::hd::{derive_pubkeys, Chain, CoinPath, HdPath};
use crate::electrum::Pool;
use bitcoin::bip32::Xpub;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Most addresses one scan may probe, so a huge `gap_limit` cannot make kdfd probe forever.
pub const MAX_PROBES: u32 = 100_000;
/// Largest `gap_limit` and `min_addresses_number` accepted (KDF has no bound; kdfd must).
pub const MAX_GAP_LIMIT: u32 = 1_000;
/// See `MAX_GAP_LIMIT`.
pub const MAX_MIN_ADDRESSES: u32 = 10_000;

/// `scan_policy` of `UtxoActivationParams`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanPolicy {
    /// Never scan.
    DoNotScan,
    /// Scan only an account that storage does not know yet (KDF's default).
    #[default]
    ScanIfNewWallet,
    /// Scan every account at each activation.
    Scan,
}

/// `{"account_id", "chain", "address_id"}`: the enabled address and other single-address picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressId {
    /// Account (hardened in the path).
    #[serde(default)]
    pub account_id: u32,
    /// External or Internal.
    #[serde(default = "external")]
    pub chain: Chain,
    /// Index on the chain.
    #[serde(default)]
    pub address_id: u32,
}

fn external() -> Chain {
    Chain::External
}

impl Default for AddressId {
    fn default() -> AddressId {
        AddressId {
            account_id: 0,
            chain: Chain::External,
            address_id: 0,
        }
    }
}

/// The HD part of an activation request.
#[derive(Debug, Clone, Copy)]
pub struct HdParams {
    /// Consecutive unused addresses that end a scan (KDF's default 20).
    pub gap_limit: u32,
    /// When to scan.
    pub scan_policy: ScanPolicy,
    /// Addresses to know on the enabled chain at least.
    pub min_addresses_number: Option<u32>,
    /// The enabled address.
    pub path_to_address: AddressId,
}

impl Default for HdParams {
    fn default() -> HdParams {
        HdParams {
            gap_limit: 20,
            scan_policy: ScanPolicy::default(),
            min_addresses_number: None,
            path_to_address: AddressId::default(),
        }
    }
}

/// One known address.
#[derive(Debug, Clone)]
pub struct HdAddress {
    /// Its chain.
    pub chain: Chain,
    /// Its index.
    pub index: u32,
    /// As shown.
    pub address: String,
    /// `m/purpose'/coin'/account'/chain/index`.
    pub derivation_path: String,
    /// The address script's scripthash first, then any others its balance includes.
    pub scripthashes: Vec<String>,
}

/// One account and its known addresses.
#[derive(Debug, Clone)]
pub struct HdAccount {
    /// Account index.
    pub id: u32,
    /// `m/purpose'/coin'/account'`'s xpub.
    pub xpub: Xpub,
    /// Known external addresses, `0..n`.
    pub external: Vec<HdAddress>,
    /// Known internal addresses, `0..n`.
    pub internal: Vec<HdAddress>,
}

impl HdAccount {
    /// The known addresses of one chain.
    pub fn chain(&self, chain: Chain) -> &Vec<HdAddress> {
        match chain {
            Chain::External => &self.external,
            Chain::Internal => &self.internal,
        }
    }

    /// Every known address, external first.
    pub fn all(&self) -> impl Iterator<Item = &HdAddress> {
        self.external.iter().chain(self.internal.iter())
    }
}

/// What derives and shows a coin's HD addresses.
#[derive(Debug, Clone)]
pub struct Deriver {
    /// The coin entry.
    pub conf: std::sync::Arc<CoinConf>,
    /// `m/purpose'/coin'`.
    pub coin_path: CoinPath,
    /// The address format.
    pub format: AddressFormat,
}

impl Deriver {
    /// Addresses `range` of `chain` in account `account`.
    pub fn addresses(
        &self,
        account: u32,
        xpub: &Xpub,
        chain: Chain,
        range: std::ops::Range<u32>,
    ) -> Result<Vec<HdAddress>, CoinError> {
        let start = range.start;
        let keys =
            derive_pubkeys(xpub, chain, range).map_err(|e| CoinError::Config(e.to_string()))?;
        keys.iter()
            .enumerate()
            .map(|(i, pk)| {
                let index = start + i as u32;
                let (address, scripthashes) =
                    scripts_for_pubkey(&self.conf, pk, self.format).map_err(CoinError::Config)?;
                let path = HdPath {
                    coin: self.coin_path,
                    account,
                    chain,
                    index,
                };
                Ok(HdAddress {
                    chain,
                    index,
                    address,
                    derivation_path: path.to_string(),
                    scripthashes,
                })
            })
            .collect()
    }

    /// An account with `counts` = (external, internal) known addresses.
    pub fn account(&self, id: u32, xpub: Xpub, counts: (u32, u32)) -> Result<HdAccount, CoinError> {
        Ok(HdAccount {
            id,
            external: self.addresses(id, &xpub, Chain::External, 0..counts.0)?,
            internal: self.addresses(id, &xpub, Chain::Internal, 0..counts.1)?,
            xpub,
        })
    }
}

/// KDF's gap-limit scan of both chains from `start` known addresses: an address is used when its
/// history is not empty; a chain's scan ends after `gap_limit + 1` consecutive unused addresses;
/// the known count becomes the last used index + 1 (never less than `start`). Probes of both
/// chains go out together, one array per round trip. Returns the new counts and the round trips.
pub async fn scan(
    pool: &Pool,
    deriver: &Deriver,
    account: u32,
    xpub: &Xpub,
    start: (u32, u32),
    gap_limit: u32,
) -> Result<((u32, u32), u32), CoinError> {
    let chains = [Chain::External, Chain::Internal];
    let mut known = [start.0, start.1];
    let mut probed = known;
    let mut trips = 0;
    loop {
        // A chain is done once gap_limit + 1 addresses after its last used one were probed.
        let want: Vec<(Chain, std::ops::Range<u32>)> = chains
            .iter()
            .enumerate()
            .filter_map(|(c, &chain)| {
                let needed = known[c].saturating_add(gap_limit + 1);
                (probed[c] < needed).then(|| (chain, probed[c]..needed))
            })
            .collect();
        if want.is_empty() {
            break;
        }
        let mut batch = Vec::new();
        for (chain, range) in &want {
            batch.extend(deriver.addresses(account, xpub, *chain, range.clone())?);
        }
        if probed[0] + probed[1] + batch.len() as u32 > MAX_PROBES {
            return Err(CoinError::InvalidParams(format!(
                "the address scan would probe more than {MAX_PROBES} addresses"
            )));
        }
        let shs: Vec<String> = batch.iter().map(|a| a.scripthashes[0].clone()).collect();
        let histories = pool.histories(&shs).await.map_err(CoinError::Electrum)?;
        trips += 1;
        for (addr, history) in batch.iter().zip(histories) {
            let c = usize::from(addr.chain == Chain::Internal);
            if !history.is_empty() {
                known[c] = known[c].max(addr.index + 1);
            }
        }
        for (chain, range) in want {
            probed[usize::from(chain == Chain::Internal)] = range.end;
        }
    }
    Ok(((known[0], known[1]), trips))
}

/// Bounds the HD params as kdfd does (KDF has no bounds; a clear error beats an endless scan).
pub fn check_params(p: &HdParams) -> Result<(), CoinError> {
    if p.gap_limit > MAX_GAP_LIMIT {
        return Err(CoinError::InvalidParams(format!(
            "gap_limit {} is over kdfd's limit of {MAX_GAP_LIMIT}",
            p.gap_limit
        )));
    }
    if p.min_addresses_number
        .is_some_and(|n| n > MAX_MIN_ADDRESSES)
    {
        return Err(CoinError::InvalidParams(format!(
            "min_addresses_number is over kdfd's limit of {MAX_MIN_ADDRESSES}"
        )));
    }
    if p.path_to_address.address_id >= MAX_MIN_ADDRESSES
        || p.path_to_address.account_id >= (1 << 31)
    {
        return Err(CoinError::InvalidParams(
            "path_to_address is out of range".to_string(),
        ));
    }
    Ok(())
}

/// The accounts of a coin, by id.
pub type Accounts = BTreeMap<u32, HdAccount>;
