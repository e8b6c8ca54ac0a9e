//! Electrum servers as a coin sees them: a pool of connections in priority order with failover,
//! timeouts, keep-alive pings and back-off for failed servers.
//!
//! kdfd talks to Electrum with its own small async client (`conn`) instead of the blocking
//! `electrum-client` crate: that crate sends its own fixed `server.version` client name, and sends a
//! batch as separate lines, which stock ElectrumX 2.0 holds for up to a second each. Ours sends
//! KDF's handshake and turns requests made in the same instant into one JSON-RPC array.

mod conn;
mod tls;

pub use conn::{Connection, Notification};

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// KDF's keep-alive interval.
const PING_INTERVAL: Duration = Duration::from_secs(30);
/// First back-off for a failed server; it doubles per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_secs(20);
const MAX_BACKOFF: Duration = Duration::from_secs(12 * 3600);

/// What went wrong talking to Electrum servers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ElectrumError {
    /// TCP connect or TLS handshake failed.
    #[error("{0}: connection failed: {1}")]
    Connect(String, String),
    /// No answer in time.
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    /// The connection closed (or was closed after garbage).
    #[error("{0}: connection closed")]
    Closed(String),
    /// The server answered the request with a JSON-RPC error.
    #[error("{0}: server error: {1}")]
    Rpc(String, String),
    /// The server refused the protocol version.
    #[error("{0}: server refused protocol version: {1}")]
    Version(String, String),
    /// The server answered with something that is not the expected shape.
    #[error("{0}: unexpected answer: {1}")]
    BadResponse(String, String),
    /// Every server failed; the list says why each did.
    #[error("All servers errored: [{0}]")]
    AllFailed(String),
    /// The server list itself is unusable.
    #[error("{0}")]
    Config(String),
}

/// One server entry of an activation request.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// As given, for messages.
    pub url: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `protocol: "SSL"`.
    pub tls: bool,
    /// False when `disable_cert_verification` is true.
    pub verify_cert: bool,
    /// Connect, handshake and per-request timeout.
    pub timeout: Duration,
}

impl ServerSpec {
    /// Parses one `servers` entry (`url`, `protocol`, `disable_cert_verification`, `timeout_sec`).
    pub fn from_json(v: &Value, default_timeout: Duration) -> Result<ServerSpec, String> {
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or("each server needs a string 'url'")?;
        let tls = match v.get("protocol") {
            None | Some(Value::Null) => false,
            Some(Value::String(p)) => match p.to_ascii_uppercase().as_str() {
                "TCP" => false,
                "SSL" => true,
                "WS" | "WSS" => {
                    return Err(format!("{url}: protocol {p} is not supported natively"))
                }
                _ => return Err(format!("{url}: unknown protocol '{p}' (TCP or SSL)")),
            },
            Some(_) => return Err(format!("{url}: protocol must be a string")),
        };
        let verify_cert = match v.get("disable_cert_verification") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => !b,
            Some(_) => return Err(format!("{url}: disable_cert_verification must be a bool")),
        };
        let timeout = match v.get("timeout_sec") {
            None | Some(Value::Null) => default_timeout,
            Some(t) => match t.as_f64() {
                Some(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(format!(
                        "{url}: timeout_sec must be a number of seconds in (0, 3600]"
                    ))
                }
            },
        };
        let (host, port) = url
            .rsplit_once(':')
            .ok_or_else(|| format!("{url}: url must be HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{url}: '{port}' is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: empty host"));
        }
        Ok(ServerSpec {
            url: url.to_string(),
            host: host.to_string(),
            port,
            tls,
            verify_cert,
            timeout,
        })
    }
}

/// An Electrum balance, in the coin's smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Confirmed (including immature coinbase, as Electrum reports it).
    pub confirmed: i64,
    /// Mempool delta; may be negative.
    pub unconfirmed: i64,
}

/// A server slot: its spec, its live connection if any, and its back-off.
struct Slot {
    spec: ServerSpec,
    conn: Mutex<Option<Arc<Connection>>>,
    backoff: Mutex<Backoff>,
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    next: Option<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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
            c.close();
        }
        let mut b = lock(&self.backoff);
        let wait = b.next.map_or(FIRST_BACKOFF, |d| (d * 2).min(MAX_BACKOFF));
        b.next = Some(wait);
        b.until = Some(Instant::now() + wait);
    }

    async fn connect(&self, client_name: &str) -> Result<Arc<Connection>, ElectrumError> {
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.live() {
            return Ok(c);
        }
        match Connection::open(&self.spec, client_name).await {
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
    min_connected: usize,
    max_connected: usize,
    client_name: String,
}

/// Stops a pool's background keep-alive when the coin is disabled.
pub struct PoolHandle {
    pool: Arc<Pool>,
    keepalive: tokio::task::AbortHandle,
}

impl Drop for PoolHandle {
    fn drop(&mut self) {
        self.keepalive.abort();
        for s in &self.pool.slots {
            if let Some(c) = lock(&s.conn).take() {
                c.close();
            }
        }
    }
}

impl std::ops::Deref for PoolHandle {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        &self.pool
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
        client_name: String,
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
        let pool = Arc::new(Pool {
            slots: specs
                .into_iter()
                .map(|spec| Slot {
                    spec,
                    conn: Mutex::new(None),
                    backoff: Mutex::default(),
                    connecting: tokio::sync::Mutex::new(()),
                })
                .collect(),
            min_connected: min,
            max_connected: max,
            client_name,
        });
        let mut errors = Vec::new();
        let mut connected = 0;
        for slot in &pool.slots {
            if connected >= min {
                break;
            }
            match slot.connect(&pool.client_name).await {
                Ok(_) => connected += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        if connected < min {
            return Err(ElectrumError::AllFailed(errors.join(", ")));
        }
        let bg = pool.clone();
        let keepalive = tokio::spawn(async move { bg.maintain().await }).abort_handle();
        Ok(PoolHandle { pool, keepalive })
    }

    /// Keeps up to `max_connected` servers connected and pings the live ones every 30 s, as KDF
    /// does, so idle connections stay open and dead ones are noticed.
    async fn maintain(&self) {
        loop {
            let mut live = self.slots.iter().filter(|s| s.live().is_some()).count();
            for slot in &self.slots {
                if live >= self.max_connected {
                    break;
                }
                if slot.live().is_none()
                    && !slot.suspended()
                    && slot.connect(&self.client_name).await.is_ok()
                {
                    live += 1;
                }
            }
            tracing::trace!(live, min = self.min_connected, "electrum pool maintained");
            tokio::time::sleep(PING_INTERVAL).await;
            for slot in &self.slots {
                if let Some(c) = slot.live() {
                    if c.call("server.ping", json!([])).await.is_err() {
                        slot.failed();
                    }
                }
            }
        }
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
            match op(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if !is_transport(&e) => return Err(e),
                Err(e) => {
                    slot.failed();
                    errors.push(e.to_string());
                }
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
            let conn = match slot.connect(&self.client_name).await {
                Ok(c) => c,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            };
            match op(conn).await {
                Ok(v) => return Ok(v),
                Err(e) if !is_transport(&e) => return Err(e),
                Err(e) => {
                    slot.failed();
                    errors.push(e.to_string());
                }
            }
        }
        if errors.is_empty() {
            errors.push("no server available".to_string());
        }
        Err(ElectrumError::AllFailed(errors.join(", ")))
    }

    /// Balances of several scripthashes, sent together (so as one JSON-RPC array).
    pub async fn balances(&self, scripthashes: &[String]) -> Result<Vec<Balance>, ElectrumError> {
        self.request(|conn| async move {
            let calls = scripthashes
                .iter()
                .map(|sh| conn.call("blockchain.scripthash.get_balance", json!([sh])));
            let replies = futures_util::future::join_all(calls).await;
            replies
                .into_iter()
                .map(|r| parse_balance(conn.label(), r?))
                .collect()
        })
        .await
    }
}

fn parse_balance(label: &str, v: Value) -> Result<Balance, ElectrumError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_specs() {
        let t = Duration::from_secs(20);
        let s = ServerSpec::from_json(&json!({"url": "127.0.0.1:50001"}), t).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls, s.verify_cert),
            ("127.0.0.1", 50001, false, true)
        );
        let s = ServerSpec::from_json(
            &json!({"url": "electrum.example:50002", "protocol": "SSL", "disable_cert_verification": true, "timeout_sec": 2}),
            t,
        )
        .unwrap();
        assert!(s.tls && !s.verify_cert);
        assert_eq!(s.timeout, Duration::from_secs(2));
        for bad in [
            json!({}),
            json!({"url": "nohost"}),
            json!({"url": "h:99999"}),
            json!({"url": "h:1", "protocol": "WSS"}),
            json!({"url": "h:1", "timeout_sec": -1}),
            json!({"url": "h:1", "disable_cert_verification": "yes"}),
        ] {
            assert!(ServerSpec::from_json(&bad, t).is_err(), "{bad}");
        }
    }

    #[test]
    fn balances_parse() {
        let b = parse_balance("s", json!({"confirmed": 5, "unconfirmed": -2})).unwrap();
        assert_eq!(
            b,
            Balance {
                confirmed: 5,
                unconfirmed: -2
            }
        );
        assert!(parse_balance("s", json!({"x": 1})).is_err());
    }
}
