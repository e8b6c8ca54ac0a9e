//! Transaction history: a background sync per coin activated with `tx_history: true`, stored in
//! the wallet's SQLite database, re-run when one of the coin's scripthashes changes.
//!
//! - `derive`: a transaction's KDF `TransactionDetails` (pure).
//! - `db`: the tables (store migrations 2 and 3) and the sync's SQL.
//! - `pages`: the pages `my_tx_history` reads, on the store's read connection.
//! - `sync`: one sync step over Electrum.
//!
//! Re-sync granularity: a status notification re-syncs the scripthashes that changed (gathered
//! over a short debounce); the first sync, a change stream that fell behind, a new HD address and
//! the fallback poll re-sync every scripthash of the coin (one `get_history` array). Only new
//! transactions are fetched either way.

pub mod db;
pub mod derive;
pub mod pages;
pub mod sync;

use crate::coins::utxo::UtxoCoin;
use crate::store::Store;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Changes arriving within this window after one are handled by the same sync.
const DEBOUNCE: Duration = Duration::from_millis(100);
/// After a failed sync, retry this soon even without a change.
const RETRY: Duration = Duration::from_secs(10);
/// Re-sync at least this often: covers `balance_cache: false` (no subscriptions, so no change
/// stream) and a failover whose new connection has not re-subscribed yet. One array per poll.
const POLL: Duration = Duration::from_secs(60);

/// KDF's `sync_status`.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncStatus {
    NotEnabled,
    NotStarted,
    InProgress(Value),
    Finished,
    Error(Value),
}

impl SyncStatus {
    /// `{"state": ...}` with `additional_info` where KDF has it.
    pub fn to_json(&self) -> Value {
        match self {
            SyncStatus::NotEnabled => json!({"state": "NotEnabled"}),
            SyncStatus::NotStarted => json!({"state": "NotStarted"}),
            SyncStatus::Finished => json!({"state": "Finished"}),
            SyncStatus::InProgress(i) => json!({"state": "InProgress", "additional_info": i}),
            SyncStatus::Error(i) => json!({"state": "Error", "additional_info": i}),
        }
    }
}

struct Running {
    status: Arc<Mutex<SyncStatus>>,
    task: tokio::task::AbortHandle,
}

/// The running syncs, and the stream of new or changed entries.
pub struct Manager {
    store: Option<Store>,
    running: Mutex<HashMap<String, Running>>,
    events: broadcast::Sender<(String, Value)>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Manager {
    /// A manager writing to `store` (`None` without a wallet: `start` then does nothing).
    pub fn new(store: Option<Store>) -> Manager {
        Manager {
            store,
            running: Mutex::new(HashMap::new()),
            events: broadcast::channel(1024).0,
        }
    }

    /// The database entries are read from.
    pub fn store(&self) -> Option<&Store> {
        self.store.as_ref()
    }

    /// Starts (or restarts) the coin's sync. Call after activation with `tx_history: true`.
    pub fn start(&self, coin: Arc<UtxoCoin>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let ticker = coin.ticker().to_string();
        let status = Arc::new(Mutex::new(SyncStatus::NotStarted));
        let events = self.events.clone();
        let st = status.clone();
        let task = tokio::spawn(run(coin, store, st, events)).abort_handle();
        if let Some(old) = lock(&self.running).insert(ticker, Running { status, task }) {
            old.task.abort();
        }
    }

    /// Stops the coin's sync (on `disable_coin`); stored entries stay.
    pub fn stop(&self, ticker: &str) {
        if let Some(r) = lock(&self.running).remove(ticker) {
            r.task.abort();
        }
    }

    /// The coin's sync state; `NotEnabled` when no sync runs for it.
    pub fn status(&self, ticker: &str) -> SyncStatus {
        lock(&self.running)
            .get(ticker)
            .map_or(SyncStatus::NotEnabled, |r| lock(&r.status).clone())
    }

    /// Every new or changed entry from now on: (ticker, TransactionDetails without confirmations).
    pub fn subscribe(&self) -> broadcast::Receiver<(String, Value)> {
        self.events.subscribe()
    }
}

async fn run(
    coin: Arc<UtxoCoin>,
    store: Store,
    status: Arc<Mutex<SyncStatus>>,
    events: broadcast::Sender<(String, Value)>,
) {
    let ticker = coin.ticker().to_string();
    // None: every scripthash; Some: the ones whose status changed since the last step.
    let mut only: Option<HashSet<String>> = None;
    loop {
        // Subscribe before syncing so a change during the sync is not lost.
        let mut changes = coin.pool.changes();
        let st = status.clone();
        let progress = move |left: usize| {
            if left > 0 {
                *lock(&st) = SyncStatus::InProgress(json!({ "transactions_left": left }));
            }
        };
        // Bulk work: paced within the budget less the reserve, so the user's own requests on
        // the same server never queue behind it.
        let mut changed = Vec::new();
        let step = crate::electrum::background(sync::sync_once(
            &coin,
            &store,
            &progress,
            only.as_ref(),
            &mut changed,
        ))
        .await;
        if step.is_ok() {
            *lock(&status) = SyncStatus::Finished;
        }
        // What was committed is news, also from a step that failed later.
        for d in changed {
            let _ = events.send((ticker.clone(), d));
        }
        // A failed step is retried whole.
        let mut all = false;
        let wait = match step {
            Ok(()) => POLL,
            Err(e) => {
                tracing::warn!(coin = %ticker, error = %e, "history sync failed");
                *lock(&status) = SyncStatus::Error(json!({"code": -1, "message": e.to_string()}));
                all = true;
                RETRY
            }
        };
        // A change names its scripthash; a lagged receiver (which changed is lost) or the
        // fallback poll re-syncs them all; a closed one means the pool is gone.
        let mut changed = HashSet::new();
        match tokio::time::timeout(wait, changes.recv()).await {
            Ok(Ok(c)) => {
                changed.insert(c.scripthash);
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) | Err(_) => all = true,
        }
        tokio::time::sleep(DEBOUNCE).await;
        loop {
            match changes.try_recv() {
                Ok(c) => {
                    changed.insert(c.scripthash);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => all = true,
                Err(_) => break,
            }
        }
        only = (!all).then_some(changed);
    }
}
