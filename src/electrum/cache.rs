//! The balance cache that scripthash subscriptions keep fresh.
//!
//! It holds a scripthash's balance only while the connection its subscription lives on is alive;
//! a status notification for it drops the entry (and bumps its generation, so an answer already in
//! flight is not stored over the news). With no entry, a balance is read upstream.

use super::pool::{lock, Pool};
use super::watch::Changes;
use super::{Balance, Connection, ElectrumError};
use serde_json::{json, Value};
// foldhash: two lookups per cached balance read, keyed by 64-character scripthashes.
use foldhash::HashMap;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::broadcast::error::RecvError;

/// Balances known to be current, per scripthash.
#[derive(Default)]
pub(super) struct Cache {
    fresh: HashMap<String, Balance>,
    generation: HashMap<String, u64>,
    /// The connection whose subscriptions keep `fresh` current.
    subscribed_on: Weak<Connection>,
    /// Scripthashes subscribed on `subscribed_on`: only these may be cached (a scripthash read
    /// for the first time later, e.g. a new HD address, is subscribed then).
    subscribed: foldhash::HashSet<String>,
    pub(super) listener: Option<tokio::task::AbortHandle>,
}

impl Cache {
    fn valid_on(&self) -> Option<Arc<Connection>> {
        self.subscribed_on.upgrade().filter(|c| c.is_alive())
    }

    fn forget_all(&mut self) {
        self.fresh.clear();
        self.subscribed.clear();
        for g in self.generation.values_mut() {
            *g += 1;
        }
    }
}

impl Pool {
    /// Balances of several scripthashes: from the cache when every one is fresh, else read
    /// upstream in one JSON-RPC array (subscribing them on the way, so the cache fills).
    pub async fn balances(&self, scripthashes: &[String]) -> Result<Vec<Balance>, ElectrumError> {
        if self.use_cache {
            let cache = lock(&self.cache);
            if cache.valid_on().is_some() {
                let hits: Option<Vec<Balance>> = scripthashes
                    .iter()
                    .map(|sh| cache.fresh.get(sh).copied())
                    .collect();
                if let Some(hits) = hits {
                    return Ok(hits);
                }
            }
        }
        self.request(|conn| self.read_balances(conn, scripthashes))
            .await
    }

    async fn read_balances(
        &self,
        conn: Arc<Connection>,
        shs: &[String],
    ) -> Result<Vec<Balance>, ElectrumError> {
        let (new_subs, generations) = {
            let mut cache = lock(&self.cache);
            let subscribed = cache.valid_on().is_some_and(|c| Arc::ptr_eq(&c, &conn));
            if self.use_cache && !subscribed {
                // Listen before subscribing, so no notification can slip past.
                cache.forget_all();
                if let Some(old) = cache.listener.take() {
                    old.abort();
                }
                let rx = conn.notifications();
                cache.listener = Some(
                    tokio::spawn(listen(
                        Arc::downgrade(&self.cache),
                        rx,
                        self.changes.clone(),
                    ))
                    .abort_handle(),
                );
            }
            let gens: Vec<u64> = shs
                .iter()
                .map(|sh| cache.generation.get(sh).copied().unwrap_or(0))
                .collect();
            let new_subs: Vec<String> = if self.use_cache {
                let mut seen = std::collections::HashSet::new();
                shs.iter()
                    .filter(|sh| !cache.subscribed.contains(*sh) && seen.insert(*sh))
                    .cloned()
                    .collect()
            } else {
                Vec::new()
            };
            (new_subs, gens)
        };
        let balances = shs
            .iter()
            .map(|sh| conn.call("blockchain.scripthash.get_balance", json!([sh])));
        let subs = new_subs
            .iter()
            .map(|sh| conn.call("blockchain.scripthash.subscribe", json!([sh])));
        let (balances, subs) = tokio::join!(
            futures_util::future::join_all(balances),
            futures_util::future::join_all(subs)
        );
        let balances: Vec<Balance> = balances
            .into_iter()
            .map(|r| parse_balance(conn.label(), r?))
            .collect::<Result<_, _>>()?;
        if !self.use_cache {
            return Ok(balances);
        }
        let mut cache = lock(&self.cache);
        if !new_subs.is_empty() {
            if subs.iter().all(Result::is_ok) {
                if !cache.valid_on().is_some_and(|c| Arc::ptr_eq(&c, &conn)) {
                    cache.subscribed_on = Arc::downgrade(&conn);
                }
                cache.subscribed.extend(new_subs);
            } else {
                tracing::debug!(
                    server = conn.label(),
                    "scripthash subscription refused; balances stay uncached"
                );
                return Ok(balances);
            }
        }
        if cache.valid_on().is_some_and(|c| Arc::ptr_eq(&c, &conn)) {
            for ((sh, b), g) in shs.iter().zip(&balances).zip(generations) {
                if cache.subscribed.contains(sh)
                    && cache.generation.get(sh).copied().unwrap_or(0) == g
                {
                    cache.fresh.insert(sh.clone(), *b);
                }
            }
        }
        Ok(balances)
    }
}

/// Drops cached balances as status notifications arrive; forgets everything if it falls behind
/// or the connection goes away.
async fn listen(
    cache: Weak<Mutex<Cache>>,
    mut rx: tokio::sync::broadcast::Receiver<super::Notification>,
    changes: Changes,
) {
    loop {
        let event = rx.recv().await;
        let Some(cache) = cache.upgrade() else { return };
        let mut cache = lock(&cache);
        match event {
            Ok(n) if n.method == "blockchain.scripthash.subscribe" => {
                if let Some(sh) = n.params.get(0).and_then(Value::as_str) {
                    cache.fresh.remove(sh);
                    *cache.generation.entry(sh.to_string()).or_default() += 1;
                    tracing::debug!(
                        scripthash = sh,
                        "balance changed upstream; cache entry dropped"
                    );
                    changes.publish(sh, n.params.get(1).cloned().unwrap_or(Value::Null));
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => cache.forget_all(),
            Err(RecvError::Closed) => {
                cache.forget_all();
                cache.subscribed_on = Weak::new();
                return;
            }
        }
    }
}

/// Parses a `blockchain.scripthash.get_balance` answer.
pub(super) fn parse_balance(label: &str, v: Value) -> Result<Balance, ElectrumError> {
    let field = |k: &str| v.get(k).and_then(Value::as_i64);
    match (field("confirmed"), field("unconfirmed")) {
        (Some(confirmed), unconfirmed) => Ok(Balance {
            confirmed,
            unconfirmed: unconfirmed.unwrap_or(0),
        }),
        _ => Err(ElectrumError::BadResponse(
            label.to_string(),
            format!("get_balance answered {v}"),
        )),
    }
}
