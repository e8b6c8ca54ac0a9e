//! UTXO activation: reserve the ticker, connect the Electrum pool, read the first balance, commit.
//! An activation either fully succeeds or leaves nothing behind.

use super::{wallet_scripts, UtxoCoin};
use crate::coins::{ActiveCoins, AddressFormat, CoinConf, CoinError};
use crate::crypto::KeyPair;
use crate::electrum::{ElectrumError, Hub, Pool, ServerSpec};
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
}

/// Activates a UTXO coin for `key`.
pub async fn activate(
    env: &Env<'_>,
    conf: Arc<CoinConf>,
    key: &KeyPair,
    req: UtxoActivation,
) -> Result<Arc<UtxoCoin>, CoinError> {
    let ticker = conf.ticker.clone();
    let format = req.format.unwrap_or(conf.address_format);
    if conf.address_format == AddressFormat::Segwit && format == AddressFormat::Standard {
        return Err(CoinError::Config(format!(
            "Coin {ticker} is configured for the segwit address format; standard was requested"
        )));
    }
    let (address, scripthashes) = wallet_scripts(&conf, key, format).map_err(CoinError::Config)?;
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
    });
    coin.balance().await.map_err(CoinError::ActivationFailed)?;
    reservation.commit(coin.clone());
    tracing::info!(coin = %ticker, "coin activated");
    Ok(coin)
}
