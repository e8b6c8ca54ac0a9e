//! UTXO activation: reserve the ticker, connect the Electrum pool, read the first balance, commit.
//! An activation either fully succeeds or leaves nothing behind.

use super::hd::{self, Deriver, HdParams, ScanPolicy};
use super::{wallet_scripts, HdState, UtxoCoin};
use crate::coins::{ActiveCoins, AddressFormat, CoinConf, CoinError};
use crate::crypto::hd::HdPath;
use crate::crypto::WalletKeys;
use crate::electrum::{ElectrumError, Hub, Pool, ServerSpec};
use crate::store::{HdAccountRow, Store};
use std::sync::Arc;

/// What an activation request asks for, already typed.
#[derive(Debug, Clone)]
pub struct UtxoActivation {
    /// Electrum servers in priority order.
    pub servers: Vec<ServerSpec>,
    /// Servers to connect at activation.
    pub min_connected: Option<usize>,
    /// Servers kept connected.
    pub max_connected: Option<usize>,
    /// Overrides the coins file.
    pub required_confirmations: Option<u64>,
    /// Overrides the coins file.
    pub requires_notarization: Option<bool>,
    /// The request's address format, if any.
    pub format: Option<AddressFormat>,
    /// HD mode's params (ignored in iguana mode, as KDF ignores them).
    pub hd: HdParams,
    /// Read the chain tip with the first balance read (task activation reports it; legacy
    /// `electrum` does not ask for it).
    pub want_tip: bool,
    /// The request as received (without the userpass), to re-activate the coin as it was.
    pub original: serde_json::Value,
}

/// Where a coin's upstream connections and its place in the active set come from.
pub struct Env<'a> {
    /// The active set.
    pub coins: &'a ActiveCoins,
    /// Shared Electrum connections.
    pub hub: Arc<Hub>,
    /// Whether balances are cached (kept fresh by scripthash subscriptions).
    pub balance_cache: bool,
    /// The wallet's database (HD accounts); `None` without a wallet.
    pub store: Option<Store>,
}

/// Activates a UTXO coin for the wallet's keys.
pub async fn activate(
    env: &Env<'_>,
    conf: Arc<CoinConf>,
    keys: &WalletKeys,
    req: UtxoActivation,
) -> Result<Arc<UtxoCoin>, CoinError> {
    let ticker = conf.ticker.clone();
    let want_tip = req.want_tip;
    let format = req.format.unwrap_or(conf.address_format);
    if conf.address_format == AddressFormat::Segwit && format == AddressFormat::Standard {
        return Err(CoinError::Config(format!(
            "Coin {ticker} is configured for the segwit address format; standard was requested"
        )));
    }
    let hd_coin = match keys {
        WalletKeys::Iguana(_) => None,
        WalletKeys::Hd { .. } => {
            hd::check_params(&req.hd)?;
            let coin_path = conf
                .coin_path()
                .map_err(|e| CoinError::Config(e.to_string()))?;
            Some(Deriver {
                conf: conf.clone(),
                coin_path,
                format,
            })
        }
    };
    let (address, scripthashes) = match keys {
        WalletKeys::Iguana(key) => wallet_scripts(&conf, key, format).map_err(CoinError::Config)?,
        WalletKeys::Hd { seed, .. } => {
            let d = hd_coin
                .as_ref()
                .ok_or_else(|| CoinError::Config("HD deriver".into()))?;
            let p = req.hd.path_to_address;
            let path = HdPath {
                coin: d.coin_path,
                account: p.account_id,
                chain: p.chain,
                index: p.address_id,
            };
            let key = seed
                .key_at(&path)
                .map_err(|e| CoinError::Config(e.to_string()))?;
            wallet_scripts(&conf, &key, format).map_err(CoinError::Config)?
        }
    };
    // Reserved from here on: a second activation of the ticker fails instead of racing, and any
    // failure below (or a cancelled request) frees the ticker again.
    let reservation = env
        .coins
        .reserve(&ticker)
        .ok_or_else(|| CoinError::AlreadyActive(ticker.clone()))?;
    let pool = Pool::connect(
        req.servers,
        req.min_connected,
        req.max_connected,
        env.hub.clone(),
        env.balance_cache,
    )
    .await
    .map_err(|e| match e {
        ElectrumError::Config(m) => CoinError::InvalidParams(m),
        e => CoinError::ActivationFailed(e),
    })?;
    // The enabled address's balance (and the tip) are read in the same round trip as the HD scan's
    // first window of probes, so a fresh HD wallet costs no more round trips than an iguana one.
    let hd_setup = async {
        match (keys, hd_coin) {
            (WalletKeys::Hd { seed, .. }, Some(deriver)) => {
                let accounts = hd_accounts(env, &pool, seed, &deriver, &req.hd).await?;
                Ok(Some(HdState {
                    deriver,
                    params: req.hd,
                    accounts: tokio::sync::Mutex::new(accounts),
                }))
            }
            _ => Ok(None),
        }
    };
    let tip = async {
        match want_tip {
            true => pool.tip_height().await.ok(),
            false => None,
        }
    };
    let (hd, enabled, tip) = tokio::join!(hd_setup, pool.balances(&scripthashes), tip);
    let hd: Option<HdState> = hd?;
    enabled.map_err(CoinError::ActivationFailed)?;
    let coin = Arc::new(UtxoCoin {
        required_confirmations: req
            .required_confirmations
            .unwrap_or(conf.required_confirmations),
        requires_notarization: req
            .requires_notarization
            .unwrap_or(conf.requires_notarization),
        conf,
        address,
        scripthashes,
        seq: env.coins.next_seq(),
        pool,
        activation: req.original,
        format,
        hd,
        tip_at_activation: Default::default(),
    });
    // Every other known address, so the answers that follow come from the cache (none for a fresh
    // wallet: then this is answered by the cache at once).
    coin.all_scripthashes_balance()
        .await
        .map_err(CoinError::ActivationFailed)?;
    if let Some(tip) = tip {
        coin.tip_at_activation
            .store(tip, std::sync::atomic::Ordering::Relaxed);
    }
    reservation.commit(coin.clone());
    tracing::info!(coin = %ticker, "coin activated");
    Ok(coin)
}

/// KDF's activation-time HD rules: a new account is created (and scanned unless the policy
/// says not to); known accounts come from storage (scanned again only with `scan`); then the
/// enabled chain gets at least `min_addresses_number` and `address_id + 1` addresses.
async fn hd_accounts(
    env: &Env<'_>,
    pool: &Pool,
    seed: &crate::crypto::hd::HdSeed,
    deriver: &Deriver,
    p: &HdParams,
) -> Result<hd::Accounts, CoinError> {
    let ticker = &deriver.conf.ticker;
    let stored = match &env.store {
        Some(store) => store
            .hd_accounts(ticker)
            .await
            .map_err(|e| CoinError::Storage(e.to_string()))?,
        None => Vec::new(),
    };
    let mut rows: Vec<(HdAccountRow, bool)> = stored.into_iter().map(|r| (r, false)).collect();
    let enabled = p.path_to_address;
    if !rows.iter().any(|(r, _)| r.account_id == enabled.account_id) {
        let xpub = seed
            .account_xpub(&deriver.coin_path, enabled.account_id)
            .map_err(|e| CoinError::Config(e.to_string()))?;
        let row = HdAccountRow {
            account_id: enabled.account_id,
            xpub: xpub.to_string(),
            external: 0,
            internal: 0,
        };
        rows.push((row, p.scan_policy != ScanPolicy::DoNotScan));
    } else if p.scan_policy == ScanPolicy::Scan {
        rows.iter_mut().for_each(|(_, scan)| *scan = true);
    }
    let mut accounts = hd::Accounts::new();
    for (mut row, do_scan) in rows {
        let xpub: bitcoin::bip32::Xpub = row.xpub.parse().map_err(|e| {
            CoinError::Storage(format!("stored xpub of account {}: {e}", row.account_id))
        })?;
        if do_scan {
            let (counts, trips) = hd::scan(
                pool,
                deriver,
                row.account_id,
                &xpub,
                (row.external, row.internal),
                p.gap_limit,
            )
            .await?;
            tracing::debug!(coin = %ticker, account = row.account_id, ?counts, trips, "HD scan done");
            (row.external, row.internal) = counts;
        }
        if row.account_id == enabled.account_id {
            let floor = p
                .min_addresses_number
                .unwrap_or(0)
                .max(enabled.address_id + 1);
            match enabled.chain {
                crate::crypto::hd::Chain::External => row.external = row.external.max(floor),
                crate::crypto::hd::Chain::Internal => row.internal = row.internal.max(floor),
            }
        }
        if let Some(store) = &env.store {
            store
                .upsert_hd_account(ticker, &row)
                .await
                .map_err(|e| CoinError::Storage(e.to_string()))?;
        }
        accounts.insert(
            row.account_id,
            deriver.account(row.account_id, xpub, (row.external, row.internal))?,
        );
    }
    Ok(accounts)
}
