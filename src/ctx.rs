//! The daemon's shared state: config, coin registry, active coins, wallet key and the shutdown
//! switch. Handlers get an `Arc<Ctx>` and nothing else.

use crate::coins::{ActiveCoins, Registry};
use crate::config::Config;
use crate::crypto::{KeyError, KeyPair};
use tokio::sync::watch;

/// Why the daemon cannot start with this config.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The coins list has bad entries.
    #[error("{0}")]
    Coins(String),
    /// The passphrase gives no valid key.
    #[error("passphrase: {0}")]
    Key(KeyError),
}

/// Everything a request handler can reach.
pub struct Ctx {
    /// The validated config.
    pub config: Config,
    /// Coin entries from the coins file.
    pub registry: Registry,
    /// Activated coins.
    pub coins: ActiveCoins,
    /// The wallet key; `None` in no-login mode.
    pub keys: Option<KeyPair>,
    /// What we tell Electrum servers we are.
    pub client_name: String,
    /// Electrum connections, shared by every coin that lists the same server.
    pub electrum: std::sync::Arc<crate::electrum::Hub>,
    /// Permits for items running at once across all requests.
    pub inflight: tokio::sync::Semaphore,
    /// Failed-userpass counts and lock-outs.
    pub auth: crate::guard::Guard,
    shutdown: watch::Sender<bool>,
}

impl Ctx {
    /// Builds the state, checking the coins file and the passphrase once, at start-up.
    pub fn new(config: Config) -> Result<Ctx, StartError> {
        let registry = Registry::load(&config.coins).map_err(StartError::Coins)?;
        let keys = match &config.wallet.passphrase {
            Some(crate::config::PassphraseConf::Plain(p)) => {
                Some(KeyPair::from_passphrase(p).map_err(StartError::Key)?)
            }
            _ => None,
        };
        let client_name = format!("{} GUI/MM2 {}", config.gui, crate::version_string());
        Ok(Ctx {
            auth: crate::guard::Guard::new(config.auth.clone()),
            inflight: tokio::sync::Semaphore::new(config.limits.max_inflight_items),
            config,
            registry,
            coins: ActiveCoins::default(),
            keys,
            electrum: std::sync::Arc::new(crate::electrum::Hub::new(client_name.clone())),
            client_name,
            shutdown: watch::channel(false).0,
        })
    }

    /// What coin activation needs from the daemon.
    pub fn coin_env(&self) -> crate::coins::utxo::Env<'_> {
        crate::coins::utxo::Env {
            coins: &self.coins,
            hub: self.electrum.clone(),
            balance_cache: self.config.balance_cache,
        }
    }

    /// Asks the server to stop accepting and drain (the `stop` method).
    pub fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once a shutdown was requested.
    pub async fn shutdown_requested(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}
