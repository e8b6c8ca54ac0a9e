//! One coin's Electrum servers: priority order, failover, back-off, keep-alive pings, and a
//! balance cache that scripthash subscriptions keep fresh.
//!
//! The cache holds a scripthash's balance only while the connection its subscription lives on is
//! alive; a status notification for it drops the entry (and bumps its generation, so an answer
//! already in flight is not stored over the news). With no entry, a balance is read upstream.

use super::{Balance, Connection, ElectrumError, Hub, ServerSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// KDF's keep-alive interval.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// First back-off for a failed server; it doubles per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(12 * 3600);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A server slot: its spec, its live connection if any, and its back-off.
struct Slot {
    spec: ServerSpec,
    conn: Mutex<Option<Arc<Connection>>>,
    backoff: Mutex<Backoff>,
}

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    next: Option<Duration>,
}

impl Slot {
    fn live(&self) -> Option<Arc<Connection>> {
        let mut guard = lock(&self.conn);
        if guard.as_ref().is_some_and(|c| !c.is_alive()) {
            *guard = None;
        }
        guard.clone()
    }

    fn suspended(&self) -> bool {
        lock(&self.backoff)
            .until
            .is_some_and(|t| Instant::now() < t)
    }

    fn failed(&self) {
        if let Some(c) = lock(&self.conn).take() {
            // Failed for one coin means failed for all that share it.
            c.close();
        }
        let mut b = lock(&self.backoff);
        let wait = b.next.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
        b.next = Some(wait);
        b.until = Some(Instant::now() + wait);
    }

    async fn connect(&self, hub: &Hub) -> Result<Arc<Connection>, ElectrumError> {
        if let Some(c) = self.live() {
            return Ok(c);
        }
        match hub.connect(&self.spec).await {
            Ok(c) => {
                *lock(&self.conn) = Some(c.clone());
                *lock(&self.backoff) = Backoff::default();
                Ok(c)
            }
            Err(e) => {
                self.failed();
                Err(e)
            }
        }
    }
}

/// Balances known to be current, per scripthash.
#[derive(Default)]
struct Cache {
    fresh: HashMap<String, Balance>,
    generation: HashMap<String, u64>,
    /// The connection whose subscriptions keep `fresh` current.
    subscribed_on: Weak<Connection>,
    listener: Option<tokio::task::AbortHandle>,
}

impl Cache {
    fn valid_on(&self) -> Option<Arc<Connection>> {
        self.subscribed_on.upgrade().filter(|c| c.is_alive())
    }

    fn forget_all(&mut self) {
        self.fresh.clear();
        for g in self.generation.values_mut() {
            *g += 1;
        }
    }
}

/// The servers of one activated coin.
pub struct Pool {
    slots: Vec<Slot>,
    max_connected: usize,
    hub: Arc<Hub>,
    cache: Arc<Mutex<Cache>>,
    use_cache: bool,
}

/// Owns a pool; dropping it (disabling the coin) stops its background work.
pub struct PoolHandle {
    pool: Arc<Pool>,
    keepalive: tokio::task::AbortHandle,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.keepalive.abort();
        if let Some(l) = lock(&self.pool.cache).listener.take() {
            l.abort();
        }
    }
}

impl std::ops::Deref for PoolHandle {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
    }
}

/// Runs `op` on one server: `Some` when that settles the request (success, or an error another
/// server would repeat), `None` when the server failed and the next one should be tried.
async fn attempt<T, F, Fut>(
    slot: &Slot,
    conn: Arc<Connection>,
    op: &F,
    errors: &mut Vec<String>,
) -> Option<Result<T, ElectrumError>>
where
    F: Fn(Arc<Connection>) -> Fut,
    Fut: std::future::Future<Output = Result<T, ElectrumError>>,
{
    match op(conn).await {
        Ok(v) => Some(Ok(v)),
        Err(e) if !is_transport(&e) => Some(Err(e)),
        Err(e) => {
            slot.failed();
            errors.push(e.to_string());
            None
        }
    }
}

/// Whether an error says the server (not the request) is at fault, so another server may do better.
fn is_transport(e: &ElectrumError) -> bool {
    !matches!(e, ElectrumError::Rpc(..) | ElectrumError::Config(_))
}

impl Pool {
    /// Connects in priority order until `min_connected` servers answer; the rest connect later.
    pub async fn connect(
        specs: Vec<ServerSpec>,
        min_connected: Option<usize>,
        max_connected: Option<usize>,
        hub: Arc<Hub>,
        use_cache: bool,
    ) -> Result<PoolHandle, ElectrumError> {
        let min = min_connected.unwrap_or(1);
        let max = max_connected.unwrap_or(specs.len());
        if min == 0 {
            return Err(ElectrumError::Config(
                "min_connected must be greater than 0".into(),
            ));
        }
        if min > max {
            return Err(ElectrumError::Config(format!(
                "min_connected ({min}) must be <= max_connected ({max})"
            )));
        }
        if min > specs.len() {
            return Err(ElectrumError::Config(format!(
                "min_connected ({min}) must be <= the number of servers ({})",
                specs.len()
            )));
        }
        let pool = Arc::new(Pool {
            slots: specs
                .into_iter()
                .map(|spec| Slot {
                    spec,
                    conn: Mutex::new(None),
                    backoff: Mutex::default(),
                })
                .collect(),
            max_connected: max,
            hub,
            cache: Arc::default(),
            use_cache,
        });
        let mut errors = Vec::new();
        let mut connected = 0;
        for slot in &pool.slots {
            if connected >= min {
                break;
            }
            match slot.connect(&pool.hub).await {
                Ok(_) => connected += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if connected < min {
            return Err(ElectrumError::AllFailed(errors.join(", ")));
        }
        let bg = Arc::downgrade(&pool);
        let keepalive = tokio::spawn(maintain(bg)).abort_handle();
        Ok(PoolHandle { pool, keepalive })
    }

    /// Runs `op` on the first server that can serve it: live connections first, in priority
    /// order, then servers to reconnect (suspended ones only when nothing else is left).
    pub async fn request<T, F, Fut>(&self, op: F) -> Result<T, ElectrumError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<T, ElectrumError>>,
    {
        let mut errors = Vec::new();
        for slot in &self.slots {
            let Some(conn) = slot.live() else { continue };
            if let Some(done) = attempt(slot, conn, &op, &mut errors).await {
                return done;
            }
        }
        let all_suspended = self
            .slots
            .iter()
            .all(|s| s.live().is_none() && s.suspended());
        for slot in &self.slots {
            if slot.live().is_some() || (slot.suspended() && !all_suspended) {
                continue;
            }
            match slot.connect(&self.hub).await {
                Ok(conn) => {
                    if let Some(done) = attempt(slot, conn, &op, &mut errors).await {
                        return done;
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        if errors.is_empty() {
            errors.push("no server available".to_string());
        }
        Err(ElectrumError::AllFailed(errors.join(", ")))
    }

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
        let (subscribe, generations) = {
            let mut cache = lock(&self.cache);
            let subscribed = cache.valid_on().is_some_and(|c| Arc::ptr_eq(&c, &conn));
            if self.use_cache && !subscribed {
                // Listen before subscribing, so no notification can slip past.
                cache.forget_all();
                if let Some(old) = cache.listener.take() {
                    old.abort();
                }
                let rx = conn.notifications();
                cache.listener =
                    Some(tokio::spawn(listen(Arc::downgrade(&self.cache), rx)).abort_handle());
            }
            let gens: Vec<u64> = shs
                .iter()
                .map(|sh| cache.generation.get(sh).copied().unwrap_or(0))
                .collect();
            (self.use_cache && !subscribed, gens)
        };
        let balances = shs
            .iter()
            .map(|sh| conn.call("blockchain.scripthash.get_balance", json!([sh])));
        let subs = shs
            .iter()
            .filter(|_| subscribe)
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
        if subscribe {
            if subs.iter().all(Result::is_ok) {
                cache.subscribed_on = Arc::downgrade(&conn);
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
                if cache.generation.get(sh).copied().unwrap_or(0) == g {
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

/// Keeps up to `max_connected` servers connected and pings the live ones every 30 s, as KDF
/// does, so idle connections stay open and dead ones are noticed.
async fn maintain(pool: Weak<Pool>) {
    loop {
        {
            let Some(pool) = pool.upgrade() else { return };
            let mut live = pool.slots.iter().filter(|s| s.live().is_some()).count();
            for slot in &pool.slots {
                if live >= pool.max_connected {
                    break;
                }
                if slot.live().is_none()
                    && !slot.suspended()
                    && slot.connect(&pool.hub).await.is_ok()
                {
                    live += 1;
                }
            }
        }
        tokio::time::sleep(PING_INTERVAL).await;
        let Some(pool) = pool.upgrade() else { return };
        for slot in &pool.slots {
            if let Some(c) = slot.live() {
                if c.call("server.ping", json!([])).await.is_err() {
                    slot.failed();
                }
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
