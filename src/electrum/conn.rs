//! One connection to one Electrum server: newline-delimited JSON-RPC over TCP or TLS, driven by a
//! reader task and a writer task. Requests that are queued in the same instant leave as one
//! JSON-RPC array, which is what lets a 100-item batch cost one round trip.

use super::budget::{self, Budget, Meter};
use super::reader::{read_loop, Reader};
use super::writer::Outgoing;
use super::{ElectrumError, ServerSpec};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_rustls::rustls;

/// Largest line accepted from a server; a longer one means a broken or hostile server.
pub(super) const MAX_LINE: u64 = 32 * 1024 * 1024;

type Reply = Result<Value, ElectrumError>;

/// Requests waiting for an answer: by id, every waiter (several when single-flight merged them),
/// and the single-flight key of the id.
#[derive(Default)]
pub(super) struct Waiting {
    by_id: HashMap<u64, (Vec<oneshot::Sender<Reply>>, Option<String>)>,
    by_key: HashMap<String, u64>,
}

impl Waiting {
    pub(super) fn take(&mut self, id: u64) -> Vec<oneshot::Sender<Reply>> {
        match self.by_id.remove(&id) {
            Some((waiters, key)) => {
                if let Some(k) = key {
                    self.by_key.remove(&k);
                }
                waiters
            }
            None => Vec::new(),
        }
    }
}

pub(super) type Pending = Arc<Mutex<Waiting>>;

/// Read-only methods whose identical concurrent calls may share one upstream request.
const SINGLE_FLIGHT: &[&str] = &[
    "blockchain.scripthash.get_balance",
    "blockchain.scripthash.listunspent",
    "blockchain.scripthash.get_history",
    "blockchain.scripthash.get_mempool",
    "blockchain.estimatefee",
    "blockchain.relayfee",
    "blockchain.block.header",
    "blockchain.transaction.get",
];

/// How a connection writes: the most requests in one JSON-RPC array, and the cost budget.
#[derive(Debug, Clone, Copy)]
pub struct Wire {
    pub max_array: usize,
    pub budget: Budget,
}

/// A server-initiated message (a subscription notification).
#[derive(Debug, Clone)]
pub struct Notification {
    /// e.g. `blockchain.scripthash.subscribe`.
    pub method: String,
    /// The notification's params array.
    pub params: Value,
}

/// A live connection; cheap to share, closed when the last handle drops.
pub struct Connection {
    label: String,
    timeout: Duration,
    outgoing: mpsc::UnboundedSender<Outgoing>,
    pending: Pending,
    next_id: AtomicU64,
    closed: Arc<AtomicBool>,
    /// The server holds small replies (ElectrumX): pad small writes, see `writer::write_loop`.
    pad: Arc<AtomicBool>,
    notifications: broadcast::Sender<Notification>,
    /// The estimate of the server's cost for this session, shared with the reader and writer.
    meter: Arc<Mutex<Meter>>,
    /// The chain tip and when it was learnt (an answer or a `headers.subscribe` notification).
    tip: Arc<Mutex<Option<(u64, tokio::time::Instant)>>>,
    tasks: Vec<AbortHandle>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Connection {
    /// Opens the socket (and TLS), then sends `server.version` before anything else. `wire`
    /// bounds the requests of one JSON-RPC array and paces them; `meter` is the server's (the
    /// hub keeps it across reconnects: ElectrumX keeps a closed session's cost for a while).
    pub(super) async fn open(
        spec: &ServerSpec,
        client_name: &str,
        wire: Wire,
        meter: Arc<Mutex<Meter>>,
    ) -> Result<Arc<Connection>, ElectrumError> {
        let fut = async {
            let conn = Self::open_transport(spec, wire, meter).await?;
            let version = conn
                .call("server.version", json!([client_name, ["1.2", "1.4"]]))
                .await;
            match version {
                Ok(Value::Array(v)) if v.len() == 2 => {
                    let software = v[0].as_str().unwrap_or_default();
                    if software.starts_with("ElectrumX") {
                        conn.pad.store(true, Ordering::Release);
                        // The cost model is ElectrumX's; other servers limit otherwise
                        // (Fulcrum counts requests per IP) or not at all.
                        lock(&conn.meter).set_budget(wire.budget);
                    }
                    Ok(conn)
                }
                Ok(other) => Err(ElectrumError::BadResponse(
                    spec.url.clone(),
                    format!("server.version answered {other}"),
                )),
                Err(ElectrumError::Rpc(_, msg)) => {
                    Err(ElectrumError::Version(spec.url.clone(), msg))
                }
                Err(e) => Err(e),
            }
        };
        tokio::time::timeout(spec.timeout, fut)
            .await
            .map_err(|_| ElectrumError::Timeout(spec.url.clone(), spec.timeout))?
    }

    async fn open_transport(
        spec: &ServerSpec,
        wire: Wire,
        meter: Arc<Mutex<Meter>>,
    ) -> Result<Arc<Connection>, ElectrumError> {
        let connect_err = |e: String| ElectrumError::Connect(spec.url.clone(), e);
        let tcp = TcpStream::connect((spec.host.as_str(), spec.port))
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        // Requests are small and latency-bound.
        let _ = tcp.set_nodelay(true);
        if !spec.tls {
            return Ok(Self::start(spec, tcp, wire, meter));
        }
        let name = rustls::pki_types::ServerName::try_from(spec.host.clone())
            .map_err(|e| connect_err(format!("bad TLS server name: {e}")))?;
        let connector =
            tokio_rustls::TlsConnector::from(super::tls::client_config(spec.verify_cert));
        let tls = connector
            .connect(name, tcp)
            .await
            .map_err(|e| {
                let hint = if e.to_string().contains("certificate") && spec.verify_cert {
                    " (the server's certificate is not trusted; for a self-signed server set \"disable_cert_verification\": true)"
                } else {
                    ""
                };
                connect_err(format!("TLS handshake failed: {e}{hint}"))
            })?;
        Ok(Self::start(spec, tls, wire, meter))
    }

    fn start<S: AsyncRead + AsyncWrite + Send + 'static>(
        spec: &ServerSpec,
        stream: S,
        wire: Wire,
        meter: Arc<Mutex<Meter>>,
    ) -> Arc<Self> {
        let (read, write) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let pending: Pending = Arc::default();
        let closed = Arc::new(AtomicBool::new(false));
        // Small: a listener that falls behind forgets its cache, which is safe, and every
        // connection pays for this buffer whether or not a notification ever arrives.
        let (notify_tx, _) = broadcast::channel(32);
        let arrays = Arc::new(super::arrays::Arrays::new(wire.max_array));
        let tip = Arc::new(Mutex::new(None));
        let reader = tokio::spawn(read_loop(
            Reader {
                label: spec.url.clone(),
                pending: pending.clone(),
                closed: closed.clone(),
                notify: notify_tx.clone(),
                arrays: arrays.clone(),
                resend: tx.clone(),
                meter: meter.clone(),
                tip: tip.clone(),
            },
            read,
        ));
        let pad = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(super::writer::write_loop(
            write,
            rx,
            closed.clone(),
            pad.clone(),
            arrays,
            meter.clone(),
        ));
        Arc::new(Connection {
            label: spec.url.clone(),
            timeout: spec.timeout,
            outgoing: tx,
            pending,
            next_id: AtomicU64::new(0),
            closed,
            pad,
            notifications: notify_tx,
            meter,
            tip,
            tasks: vec![reader.abort_handle(), writer.abort_handle()],
        })
    }

    /// The server's URL, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether requests on this connection are paced to a cost budget (an ElectrumX server,
    /// pacing on).
    pub fn is_paced(&self) -> bool {
        lock(&self.meter).is_paced()
    }

    /// False once the server closed the connection or sent garbage.
    pub fn is_alive(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    /// The tip height if learnt within `max_age`: once subscribed, the server pushes every new
    /// tip, so asking again would only cost budget (a GUI polls `my_tx_history` every second).
    pub fn known_tip(&self, max_age: Duration) -> Option<u64> {
        let now = tokio::time::Instant::now();
        lock(&self.tip)
            .filter(|(_, at)| now.saturating_duration_since(*at) < max_age)
            .map(|(h, _)| h)
    }

    /// Records the tip from an answer to `blockchain.headers.subscribe`.
    pub fn note_tip(&self, height: u64) {
        *lock(&self.tip) = Some((height, tokio::time::Instant::now()));
    }

    /// Subscription notifications pushed by the server.
    pub fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.notifications.subscribe()
    }

    /// One request. Concurrent calls are coalesced into one JSON-RPC array by the writer, and
    /// identical concurrent read-only calls share one upstream request (single flight).
    pub async fn call(&self, method: &str, params: Value) -> Reply {
        if !self.is_alive() {
            return Err(ElectrumError::Closed(self.label.clone()));
        }
        let (tx, mut rx) = oneshot::channel();
        // A class of its own: an interactive call must not wait on a background request
        // that is still queued behind the budget.
        let class = budget::current();
        let key = SINGLE_FLIGHT
            .contains(&method)
            .then(|| format!("{class:?}{method}{params}"));
        let (id, fresh) = {
            let mut w = lock(&self.pending);
            let joined = key.as_ref().and_then(|k| w.by_key.get(k).copied());
            match joined {
                Some(id) => {
                    if let Some((waiters, _)) = w.by_id.get_mut(&id) {
                        waiters.push(tx);
                    }
                    tracing::trace!(server = %self.label, method, id, "electrum request joined");
                    (id, false)
                }
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    if let Some(k) = &key {
                        w.by_key.insert(k.clone(), id);
                    }
                    w.by_id.insert(id, (vec![tx], key));
                    (id, true)
                }
            }
        };
        if fresh {
            tracing::trace!(server = %self.label, method, id, "electrum request");
            let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            if self.outgoing.send(Outgoing { req, class }).is_err() {
                lock(&self.pending).take(id);
                return Err(ElectrumError::Closed(self.label.clone()));
            }
        }
        // The time limit runs from when the request was written: waiting for the budget is
        // not the server's silence.
        loop {
            let written = lock(&self.meter).written_at(id);
            let limit = match written {
                Some(at) => tokio::time::sleep_until(at + self.timeout),
                None => tokio::time::sleep(self.timeout),
            };
            tokio::select! {
                biased;
                reply = &mut rx => {
                    return reply.unwrap_or_else(|_| Err(ElectrumError::Closed(self.label.clone())));
                }
                _ = limit => {}
            }
            let written = lock(&self.meter).written_at(id);
            let late = written.is_some_and(|at| tokio::time::Instant::now() >= at + self.timeout);
            if late || !self.is_alive() {
                // A server that went silent is not trusted with the next request either; the
                // other requests waiting on it fail with the same reason.
                let err = ElectrumError::Timeout(self.label.clone(), self.timeout);
                self.shut(err.clone());
                return Err(err);
            }
        }
    }

    /// Marks the connection dead and stops its tasks; pending calls fail at once.
    pub fn close(&self) {
        self.shut(ElectrumError::Closed(self.label.clone()));
    }

    fn shut(&self, reason: ElectrumError) {
        self.closed.store(true, Ordering::Release);
        for t in &self.tasks {
            t.abort();
        }
        fail_all(&self.pending, &reason);
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not wedge every later request.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) fn fail_all(pending: &Pending, reason: &ElectrumError) {
    let waiting = std::mem::take(&mut *lock(pending));
    for (_, (waiters, _)) in waiting.by_id {
        for tx in waiters {
            let _ = tx.send(Err(reason.clone()));
        }
    }
}
