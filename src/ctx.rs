//! The daemon's shared state: config, coin registry, active coins, wallet key and the shutdown
//! switch. Handlers get an `Arc<Ctx>` and nothing else.

use crate::coins::{ActiveCoins, Registry};
use crate::config::Config;
use crate::crypto::hd::HdSeed;
use crate::crypto::{KeyError, KeyPair, WalletKeys};
use crate::store::Store;
use crate::wallet::{Login, PassphraseInput, StartupInput, WalletDir};
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
    /// The wallet file cannot be opened or created as asked.
    #[error("wallet: {0}")]
    Wallet(crate::wallet::WalletError),
    /// HD mode needs a BIP39 mnemonic.
    #[error("enable_hd: {0}")]
    Hd(crate::crypto::hd::HdError),
    /// The wallet's database cannot be opened.
    #[error("database: {0}")]
    Store(crate::store::StoreError),
    /// dbdir cannot be created or made owner-only.
    #[error("dbdir '{0}': {1}")]
    Dbdir(std::path::PathBuf, std::io::Error),
    /// Another daemon serves this dbdir.
    #[error("{0}")]
    Locked(crate::private_fs::LockError),
}

/// Everything a request handler can reach.
pub struct Ctx {
    /// The validated config.
    pub config: Config,
    /// Coin entries from the coins file.
    pub registry: Registry,
    /// Activated coins.
    pub coins: ActiveCoins,
    /// The wallet's keys; `None` in no-login mode.
    pub keys: Option<WalletKeys>,
    /// The signed-in wallet (`wallet_name`), for `get_wallet_names`.
    pub wallet_name: Option<String>,
    /// Where wallet files live.
    pub wallets: WalletDir,
    /// The signed-in wallet's database (HD accounts, history); `None` without keys.
    pub store: Option<Store>,
    /// RPC tasks (`task::*`).
    pub tasks: crate::tasks::Tasks,
    /// SSE clients and streamers (`stream::*`, `/event-stream`).
    pub events: crate::events::Hub,
    /// What we tell Electrum servers we are.
    pub client_name: String,
    /// Electrum connections, shared by every coin that lists the same server.
    pub electrum: std::sync::Arc<crate::electrum::Hub>,
    /// Permits for items running at once across all requests.
    pub inflight: tokio::sync::Semaphore,
    /// Failed-userpass counts and lock-outs.
    pub auth: crate::guard::Guard,
    /// Transaction history syncs (coins activated with `tx_history: true`).
    pub history: crate::history::Manager,
    shutdown: watch::Sender<bool>,
    /// Wallet-password checks (Argon2id) running and waiting.
    pub key_stretch: KeyStretch,
    /// Slots of `/event-stream` and `/ws` connections (`max_stream_connections`).
    pub streams: std::sync::Arc<tokio::sync::Semaphore>,
    /// Held open for the daemon's life: the dbdir's exclusive lock.
    _dbdir_lock: std::fs::File,
}

/// KDF's start-up wallet logic, then the keys of the mode asked for.
fn open_wallet(
    config: &Config,
    wallets: &WalletDir,
) -> Result<(Option<WalletKeys>, Option<String>), StartError> {
    let w = &config.wallet;
    let passphrase = match &w.passphrase {
        None => None,
        Some(crate::config::PassphraseConf::Plain(p)) => Some(PassphraseInput::Plain(p.clone())),
        Some(crate::config::PassphraseConf::Encrypted(v)) => Some(PassphraseInput::Encrypted(
            serde_json::from_value(v.clone()).map_err(|e| {
                StartError::Wallet(crate::wallet::WalletError::BadFile(format!(
                    "the encrypted passphrase is not KDF's encrypted-data object: {e}"
                )))
            })?,
        )),
    };
    let input = StartupInput {
        wallet_name: w.wallet_name.clone(),
        wallet_password: w.wallet_password.clone(),
        passphrase,
        allow_weak_password: w.allow_weak_password,
    };
    let (secret, name) =
        match crate::wallet::startup(wallets, &input).map_err(StartError::Wallet)? {
            Login::NoLogin => return Ok((None, None)),
            Login::Passphrase(p) => (p, None),
            Login::Wallet {
                name,
                mnemonic,
                created,
            } => {
                if created {
                    tracing::info!(wallet = %name, "new wallet created");
                }
                (mnemonic, Some(name))
            }
        };
    let keys = if w.enable_hd {
        let seed = HdSeed::from_mnemonic(secret.expose()).map_err(StartError::Hd)?;
        let internal = seed.internal_key().map_err(StartError::Hd)?;
        WalletKeys::Hd {
            seed,
            internal,
            account_id: w.hd_account_id.unwrap_or(0),
        }
    } else {
        WalletKeys::Iguana(KeyPair::from_passphrase(secret.expose()).map_err(StartError::Key)?)
    };
    Ok((Some(keys), name))
}

/// Argon2id at 64 MiB a run: at most `argon2_concurrency` at once and `argon2_max_waiting` in
/// line, so a batch or a flood of `get_mnemonic` calls cannot take gigabytes or queue forever.
pub struct KeyStretch {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

impl KeyStretch {
    /// A turn, to be moved into the blocking task (so a timed-out caller does not free it while
    /// Argon2 still runs); `None` when the line is full.
    pub async fn turn(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        if let Ok(p) = self.permits.clone().try_acquire_owned() {
            return Some(p);
        }
        struct InLine<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for InLine<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _in_line = InLine(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            return None;
        }
        self.permits.clone().acquire_owned().await.ok()
    }
}

impl Ctx {
    /// `new` on a blocking thread, so Argon2id and SQLite never hold up an async worker.
    pub async fn open(config: Config) -> Result<Ctx, StartError> {
        tokio::task::spawn_blocking(move || Ctx::new(config))
            .await
            .unwrap_or_else(|e| Err(StartError::Coins(format!("start-up task failed: {e}"))))
    }

    /// Builds the state, checking the coins file and opening the wallet once, at start-up. This
    /// blocks (Argon2id, SQLite): call it off the async workers (`Ctx::open`).
    pub fn new(config: Config) -> Result<Ctx, StartError> {
        let registry = Registry::load(&config.coins);
        let root = crate::wallet::db_root(config.dbdir.as_deref());
        crate::private_fs::secure_root(&root).map_err(|e| StartError::Dbdir(root.clone(), e))?;
        // First, before any wallet file or database is touched.
        let dbdir_lock = crate::private_fs::lock_root(&root).map_err(StartError::Locked)?;
        let wallets = WalletDir::new(root);
        let (keys, wallet_name) = open_wallet(&config, &wallets)?;
        let store = match &keys {
            Some(k) => {
                let id = bitcoin::hex::DisplayHex::to_lower_hex_string(&k.identity().hash160()[..]);
                let path = crate::store::db_path(wallets.root(), &id).map_err(StartError::Store)?;
                Some(Store::open(path).map_err(StartError::Store)?)
            }
            None => None,
        };
        let client_name = format!("{} GUI/MM2 {}", config.gui, crate::version_string());
        let electrum = std::sync::Arc::new(crate::electrum::Hub::new(
            client_name.clone(),
            crate::electrum::Wire {
                max_array: config.limits.electrum_max_array,
                budget: config.limits.electrum_budget,
            },
        ));
        let key_stretch = KeyStretch {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(
                config.limits.argon2_concurrency,
            )),
            waiting: Default::default(),
            max_waiting: config.limits.argon2_max_waiting,
        };
        let streams = std::sync::Arc::new(tokio::sync::Semaphore::new(config.limits.streams()));
        Ok(Ctx {
            history: crate::history::Manager::new(store.clone()),
            auth: crate::guard::Guard::new(config.auth.clone()),
            inflight: tokio::sync::Semaphore::new(config.limits.max_inflight_items),
            tasks: crate::tasks::Tasks::new(config.limits.max_finished_tasks),
            events: crate::events::Hub::default(),
            config,
            registry,
            coins: ActiveCoins::default(),
            keys,
            wallet_name,
            wallets,
            store,
            electrum,
            client_name,
            shutdown: watch::channel(false).0,
            _dbdir_lock: dbdir_lock,
            key_stretch,
            streams,
        })
    }

    /// What coin activation needs from the daemon.
    pub fn coin_env(&self) -> crate::coins::utxo::Env<'_> {
        crate::coins::utxo::Env {
            coins: &self.coins,
            hub: self.electrum.clone(),
            balance_cache: self.config.balance_cache,
            store: self.store.clone(),
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
