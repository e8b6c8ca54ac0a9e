//! One coin's Electrum servers: priority order, failover, back-off and keep-alive pings. The
//! balance cache is `cache.rs`; the stream of scripthash changes is `watch.rs`.

use super::cache::Cache;
use super::watch::Changes;
use super::{Connection, ElectrumError, Hub, ServerSpec};
use serde_json::json;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// KDF's keep-alive interval.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// First back-off for a failed server; it doubles per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(12 * 3600);

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
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

/// The servers of one activated coin.
pub struct Pool {
    slots: Vec<Slot>,
    max_connected: usize,
    hub: Arc<Hub>,
    pub(super) cache: Arc<Mutex<Cache>>,
    pub(super) use_cache: bool,
    /// Status changes of this pool's subscribed scripthashes.
    pub(super) changes: Changes,
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
            changes: Changes::default(),
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
    /// Whether the server requests go to first is paced to a cost budget: then overlapping
    /// bulk work gains nothing and only queues earlier work behind later work.
    pub fn is_paced(&self) -> bool {
        self.slots
            .iter()
            .find_map(|s| s.live())
            .is_some_and(|c| c.is_paced())
    }

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
