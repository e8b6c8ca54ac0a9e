//! An in-process fake Electrum server (newline-delimited JSON-RPC over TCP or TLS on
//! 127.0.0.1) so integration tests can drive kdfd against a real socket with
//! controllable balances, latency and failure modes.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc as tokio_mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// Longest request line accepted before the connection is closed.
const MAX_LINE: usize = 8 * 1024 * 1024;
/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What `Mode::Garbage` writes in place of a reply (a newline is appended).
const GARBAGE: &[u8] = b"@@ this is not json }{ @@";

/// How the server treats incoming messages.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answer every request as a real Electrum server would.
    Normal,
    /// Read and count messages but never answer (notifications are suppressed too).
    Silent,
    /// Answer each message with non-JSON bytes followed by a newline.
    Garbage,
    /// Close the connection as soon as a message arrives.
    Drop,
    /// Answer `server.version` with a JSON-RPC error; everything else is normal.
    RejectVersion,
    /// Answer every JSON-RPC array with one error object and no id, as Fulcrum before 1.6 did;
    /// single requests are normal.
    RejectArrays,
}

impl Mode {
    fn to_u8(self) -> u8 {
        match self {
            Mode::Normal => 0,
            Mode::Silent => 1,
            Mode::Garbage => 2,
            Mode::Drop => 3,
            Mode::RejectVersion => 4,
            Mode::RejectArrays => 5,
        }
    }

    fn from_u8(v: u8) -> Mode {
        match v {
            1 => Mode::Silent,
            2 => Mode::Garbage,
            3 => Mode::Drop,
            4 => Mode::RejectVersion,
            5 => Mode::RejectArrays,
            _ => Mode::Normal,
        }
    }
}

/// A scripthash balance plus the revision that makes its status unique.
#[derive(Debug, Clone, Copy)]
struct Balance {
    confirmed: i64,
    unconfirmed: i64,
    revision: u64,
}

/// A newline-terminated line for a connection's writer, held back until `not_before`.
struct Outgoing {
    not_before: Option<Instant>,
    bytes: Vec<u8>,
}

/// One live connection as seen by `set_balance`.
struct ConnEntry {
    /// Outgoing lines for this connection's writer.
    tx: tokio_mpsc::UnboundedSender<Outgoing>,
    /// Subscribed scripthashes: lowercase key -> spelling the client used.
    subs: HashMap<String, String>,
}

/// Everything guarded by the one state lock.
#[derive(Default)]
struct State {
    balances: HashMap<String, Balance>,
    /// `get_history` answers by scripthash (empty when absent).
    histories: HashMap<String, Vec<Value>>,
    next_revision: u64,
    conns: HashMap<u64, ConnEntry>,
    lines_received: usize,
    /// The longest JSON-RPC array received.
    max_array: usize,
    methods: Vec<String>,
    client_names: Vec<String>,
    connections_accepted: usize,
    /// `listunspent` answers by lowercase scripthash.
    unspents: HashMap<String, Value>,
    /// `transaction.get` answers by txid.
    txs: HashMap<String, String>,
    /// When set, `transaction.broadcast` fails with this message.
    broadcast_error: Option<String>,
    /// Every broadcast transaction hex, in order.
    broadcasts: Vec<String>,
    /// Headers by height, and the tip `headers.subscribe` reports.
    headers: HashMap<u64, String>,
    tip: Option<u64>,
}

/// State shared between the test's thread and the server thread.
struct Shared {
    state: Mutex<State>,
    mode: AtomicU8,
    latency_nanos: AtomicU64,
    next_conn_id: AtomicU64,
    /// Unplanted scripthashes answer a balance derived from their own bytes.
    derive_balances: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not make every later test call fail too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency_nanos.load(Ordering::SeqCst))
    }
}

/// Requests from the public API to the server thread.
enum Ctl {
    Stop(std_mpsc::Sender<()>),
    Restart(std_mpsc::Sender<io::Result<()>>),
    Shutdown,
}

/// A fake Electrum server running on its own thread and tokio runtime; dropping it stops it.
#[allow(dead_code)]
pub struct FakeElectrum {
    shared: Arc<Shared>,
    ctl: tokio_mpsc::UnboundedSender<Ctl>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
    cert_pem: Option<String>,
}

#[allow(dead_code)]
impl FakeElectrum {
    /// Starts a plain-TCP server on 127.0.0.1 with an OS-chosen port.
    pub fn start_tcp() -> FakeElectrum {
        Self::start(None)
    }

    /// Starts a TLS server on 127.0.0.1 with a fresh self-signed cert for "localhost" and 127.0.0.1.
    pub fn start_ssl() -> FakeElectrum {
        let certified = rcgen::generate_simple_self_signed(vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
        ])
        .expect("generate self-signed certificate");
        let cert_pem = certified.cert.pem();
        let cert_der = certified.cert.der().clone();
        let key_der = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .expect("rustls server certificate");
        Self::start(Some((TlsAcceptor::from(Arc::new(config)), cert_pem)))
    }

    fn start(tls: Option<(TlsAcceptor, String)>) -> FakeElectrum {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            mode: AtomicU8::new(Mode::Normal.to_u8()),
            latency_nanos: AtomicU64::new(0),
            next_conn_id: AtomicU64::new(1),
            derive_balances: std::sync::atomic::AtomicBool::new(false),
        });
        let (acceptor, cert_pem) = match tls {
            Some((a, pem)) => (Some(a), Some(pem)),
            None => (None, None),
        };
        let (ctl_tx, ctl_rx) = tokio_mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std_mpsc::channel::<io::Result<SocketAddr>>();
        let thread_shared = shared.clone();
        let thread = thread::Builder::new()
            .name("fake-electrum".to_string())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let bind_addr = SocketAddr::from(([127, 0, 0, 1], 0));
                    let listener = match bind(bind_addr) {
                        Ok(l) => l,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = match listener.local_addr() {
                        Ok(a) => a,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(addr));
                    run_server(listener, addr, acceptor, thread_shared, ctl_rx).await;
                });
            })
            .expect("spawn fake electrum thread");
        let addr = ready_rx
            .recv()
            .expect("fake electrum thread died during start")
            .expect("fake electrum failed to listen");
        FakeElectrum {
            shared,
            ctl: ctl_tx,
            thread: Some(thread),
            addr,
            cert_pem,
        }
    }

    /// The listening address (always 127.0.0.1 and the same port across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address as "127.0.0.1:PORT".
    pub fn url(&self) -> String {
        self.addr.to_string()
    }

    /// The server certificate in PEM for TLS servers, `None` for plain TCP.
    pub fn cert_pem(&self) -> Option<String> {
        self.cert_pem.clone()
    }

    /// Sets a scripthash balance and notifies every connection subscribed to it.
    /// From now on every scripthash without a planted balance has one derived from its bytes
    /// ([`derived_balance`]): two clients that show the same balance for an address asked for
    /// the same scripthashes, which a differential test of address derivation relies on.
    pub fn derive_unplanted_balances(&self) {
        self.shared.derive_balances.store(true, Ordering::SeqCst);
    }

    pub fn set_balance(&self, scripthash_hex: &str, confirmed: i64, unconfirmed: i64) {
        let key = scripthash_hex.to_ascii_lowercase();
        let silent = self.shared.mode() == Mode::Silent;
        let mut st = self.shared.lock();
        st.next_revision += 1;
        let balance = Balance {
            confirmed,
            unconfirmed,
            revision: st.next_revision,
        };
        st.balances.insert(key.clone(), balance);
        if silent {
            return;
        }
        let status = status_hex(&key, &balance);
        for conn in st.conns.values() {
            if let Some(spelling) = conn.subs.get(&key) {
                let note = json!({
                    "jsonrpc": "2.0",
                    "method": "blockchain.scripthash.subscribe",
                    "params": [spelling, status],
                });
                // A closed connection simply misses the notification.
                let _ = conn.tx.send(Outgoing {
                    not_before: None,
                    bytes: to_line(&note),
                });
            }
        }
    }

    /// Sets the `listunspent` answer of a scripthash: (txid, vout, value, height) entries.
    pub fn set_unspents(&self, scripthash_hex: &str, list: &[(&str, u32, u64, i64)]) {
        let v: Vec<Value> = list
            .iter()
            .map(|(txid, pos, value, height)| {
                json!({"tx_hash": txid, "tx_pos": pos, "value": value, "height": height})
            })
            .collect();
        self.shared
            .lock()
            .unspents
            .insert(scripthash_hex.to_ascii_lowercase(), Value::Array(v));
    }

    /// Sets the raw hex `blockchain.transaction.get` answers for `txid`.
    pub fn set_tx(&self, txid: &str, hex: &str) {
        self.shared
            .lock()
            .txs
            .insert(txid.to_ascii_lowercase(), hex.to_string());
    }

    /// Makes `blockchain.transaction.broadcast` fail with `message` (or succeed with `None`).
    pub fn set_broadcast_error(&self, message: Option<&str>) {
        self.shared.lock().broadcast_error = message.map(str::to_string);
    }

    /// The hex of every transaction broadcast so far.
    pub fn broadcasts(&self) -> Vec<String> {
        self.shared.lock().broadcasts.clone()
    }

    /// Sets a scripthash's `get_history` answer: (txid, height) pairs. No notification: follow
    /// with `set_balance` to notify subscribers.
    pub fn set_history(&self, scripthash_hex: &str, items: &[(&str, i64)]) {
        let list = items
            .iter()
            .map(|(t, h)| json!({"tx_hash": t, "height": h}))
            .collect();
        self.shared
            .lock()
            .histories
            .insert(scripthash_hex.to_ascii_lowercase(), list);
    }

    /// Serves a raw transaction (hex) for `blockchain.transaction.get`.
    pub fn add_tx(&self, txid: &str, hex: &str) {
        self.shared
            .lock()
            .txs
            .insert(txid.to_ascii_lowercase(), hex.to_string());
    }

    /// Serves a block header (hex) for `blockchain.block.header`.
    pub fn set_header(&self, height: u64, hex: &str) {
        self.shared.lock().headers.insert(height, hex.to_string());
    }

    /// The height `blockchain.headers.subscribe` reports (default 100).
    pub fn set_tip(&self, height: u64) {
        self.shared.lock().tip = Some(height);
    }

    /// Delays every reply by `d` after its message arrived (a batch array is one message).
    ///
    /// Pipelined messages are delayed concurrently, like network latency: a burst of
    /// lines sent at once is answered after about `d`, in order.
    pub fn set_latency(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.shared.latency_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Switches the behaviour for new and already-open connections.
    pub fn set_mode(&self, m: Mode) {
        self.shared.mode.store(m.to_u8(), Ordering::SeqCst);
    }

    /// Closes the listener and every connection; on return the port is free.
    pub fn stop(&self) {
        let (tx, rx) = std_mpsc::channel();
        if self.ctl.send(Ctl::Stop(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Listens again on the same port with the same certificate; balances are kept.
    pub fn restart(&self) {
        let (tx, rx) = std_mpsc::channel();
        self.ctl
            .send(Ctl::Restart(tx))
            .expect("fake electrum thread is gone");
        rx.recv()
            .expect("fake electrum thread is gone")
            .expect("fake electrum could not listen again on its port");
    }

    /// How many messages arrived (a batch array counts as one, malformed lines count too).
    pub fn lines_received(&self) -> usize {
        self.shared.lock().lines_received
    }

    /// The most requests one received JSON-RPC array held.
    pub fn max_array_received(&self) -> usize {
        self.shared.lock().max_array
    }

    /// How many requests named `method` arrived (batch items counted one by one).
    pub fn method_count(&self, method: &str) -> usize {
        self.shared
            .lock()
            .methods
            .iter()
            .filter(|m| m.as_str() == method)
            .count()
    }

    /// Every request method received, in arrival order.
    pub fn methods(&self) -> Vec<String> {
        self.shared.lock().methods.clone()
    }

    /// The first parameter of each `server.version` request, in arrival order.
    pub fn client_names(&self) -> Vec<String> {
        self.shared.lock().client_names.clone()
    }

    /// How many TCP connections were accepted (before any TLS handshake).
    pub fn connections_accepted(&self) -> usize {
        self.shared.lock().connections_accepted
    }

    /// Zeroes the message, method, client-name and connection counters.
    pub fn reset_counters(&self) {
        let mut st = self.shared.lock();
        st.lines_received = 0;
        st.methods.clear();
        st.client_names.clear();
        st.connections_accepted = 0;
    }
}

impl Drop for FakeElectrum {
    fn drop(&mut self) {
        let _ = self.ctl.send(Ctl::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds a listener with SO_REUSEADDR so a restart can reuse a port with TIME_WAIT sockets.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// The server thread's main loop: accepts connections and obeys control messages.
async fn run_server(
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    mut ctl_rx: tokio_mpsc::UnboundedReceiver<Ctl>,
) {
    let mut listener = Some(listener);
    let mut conns: JoinSet<()> = JoinSet::new();
    loop {
        tokio::select! {
            ctl = ctl_rx.recv() => match ctl {
                None | Some(Ctl::Shutdown) => break,
                Some(Ctl::Stop(done)) => {
                    listener = None;
                    conns.abort_all();
                    while conns.join_next().await.is_some() {}
                    shared.lock().conns.clear();
                    let _ = done.send(());
                }
                Some(Ctl::Restart(done)) => {
                    if listener.is_none() {
                        match rebind(addr).await {
                            Ok(l) => {
                                listener = Some(l);
                                let _ = done.send(Ok(()));
                            }
                            Err(e) => {
                                let _ = done.send(Err(e));
                            }
                        }
                    } else {
                        let _ = done.send(Ok(()));
                    }
                }
            },
            accepted = accept(&listener) => match accepted {
                Ok((stream, _peer)) => {
                    shared.lock().connections_accepted += 1;
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        match acceptor {
                            None => serve_conn(stream, shared).await,
                            Some(acceptor) => {
                                let handshake =
                                    tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                                if let Ok(Ok(tls)) = handshake.await {
                                    serve_conn(tls, shared).await;
                                }
                            }
                        }
                    });
                }
                Err(_) => {
                    // Transient accept errors (e.g. too many open files): back off briefly.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    shared.lock().conns.clear();
}

/// Accepts from the listener, or waits forever while stopped.
async fn accept(listener: &Option<TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// Binds the old port again, retrying briefly in case the OS has not released it yet.
async fn rebind(addr: SocketAddr) -> io::Result<TcpListener> {
    let mut last_err = None;
    for _ in 0..50 {
        match bind(addr) {
            Ok(l) => return Ok(l),
            Err(e) => last_err = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("rebind failed")))
}

/// Removes a connection from the registry when its task ends or is aborted.
struct ConnGuard {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.shared.lock().conns.remove(&self.id);
    }
}

/// Serves one connection: a reader that answers lines in order and a writer fed by a channel.
async fn serve_conn<S>(stream: S, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let id = shared.next_conn_id.fetch_add(1, Ordering::SeqCst);
    let (tx, mut rx) = tokio_mpsc::unbounded_channel::<Outgoing>();
    shared.lock().conns.insert(
        id,
        ConnEntry {
            tx: tx.clone(),
            subs: HashMap::new(),
        },
    );
    let guard = ConnGuard {
        id,
        shared: shared.clone(),
    };
    let (read_half, mut write_half) = tokio::io::split(stream);

    let reader = async move {
        read_loop(read_half, id, &shared, tx).await;
        // Dropping the guard removes the registry's sender, so the writer drains and ends.
        drop(guard);
    };
    let writer = async move {
        while let Some(out) = rx.recv().await {
            if let Some(at) = out.not_before {
                tokio::time::sleep_until(at).await;
            }
            let written = write_half.write_all(&out.bytes).await;
            if written.is_err() || write_half.flush().await.is_err() {
                // The peer is gone; keep draining so senders never block (they cannot anyway).
                while rx.recv().await.is_some() {}
                return;
            }
        }
        let _ = write_half.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// Reads newline-delimited messages and queues the replies in order.
async fn read_loop<R>(
    read_half: R,
    conn_id: u64,
    shared: &Shared,
    tx: tokio_mpsc::UnboundedSender<Outgoing>,
) where
    R: AsyncRead + Unpin,
{
    let mut reader = BufReader::new(read_half);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64);
        match limited.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.last() != Some(&b'\n') {
            // EOF mid-line or an over-long line: stop serving this connection.
            return;
        }
        let text = trim_ascii(&buf);
        if text.is_empty() {
            continue;
        }
        let arrived = Instant::now();
        let parsed: Result<Value, _> = serde_json::from_slice(text);
        record_arrival(shared, parsed.as_ref().ok());

        match shared.mode() {
            Mode::Drop => return,
            Mode::Silent => continue,
            Mode::Garbage => {
                let mut bytes = GARBAGE.to_vec();
                bytes.push(b'\n');
                if tx.send(delayed(shared, arrived, bytes)).is_err() {
                    return;
                }
            }
            Mode::Normal | Mode::RejectVersion | Mode::RejectArrays => {
                let reply = match parsed {
                    Err(_) => Some(error_response(Value::Null, -32700, "Parse error")),
                    Ok(Value::Array(_)) if shared.mode() == Mode::RejectArrays => Some(
                        error_response(Value::Null, -31999, "Json Error: expected object"),
                    ),
                    Ok(v) => handle_message(v, conn_id, shared),
                };
                if let Some(reply) = reply {
                    if tx.send(delayed(shared, arrived, to_line(&reply))).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Wraps a reply so the writer sends it no earlier than the configured latency after arrival.
fn delayed(shared: &Shared, arrived: Instant, bytes: Vec<u8>) -> Outgoing {
    let d = shared.latency();
    Outgoing {
        not_before: (!d.is_zero()).then(|| arrived + d),
        bytes,
    }
}

/// Updates the counters for one incoming message.
fn record_arrival(shared: &Shared, msg: Option<&Value>) {
    let mut st = shared.lock();
    st.lines_received += 1;
    if let Some(Value::Array(items)) = msg {
        st.max_array = st.max_array.max(items.len());
    }
    let mut record = |req: &Value| {
        if let Some(method) = req.get("method").and_then(Value::as_str) {
            st.methods.push(method.to_string());
            if method == "server.version" {
                if let Some(first) = first_param(req) {
                    let name = match first {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    st.client_names.push(name);
                }
            }
        }
    };
    match msg {
        Some(Value::Array(items)) => items.iter().for_each(&mut record),
        Some(req) => record(req),
        None => {}
    }
}

/// Answers a parsed message (object or batch); `None` when nothing is to be sent.
fn handle_message(msg: Value, conn_id: u64, shared: &Shared) -> Option<Value> {
    match msg {
        Value::Array(items) if items.is_empty() => {
            Some(error_response(Value::Null, -32600, "Invalid Request"))
        }
        Value::Array(items) => {
            let replies: Vec<Value> = items
                .into_iter()
                .filter_map(|item| handle_request(item, conn_id, shared))
                .collect();
            if replies.is_empty() {
                None
            } else {
                Some(Value::Array(replies))
            }
        }
        other => handle_request(other, conn_id, shared),
    }
}

/// Answers one request; requests without an `id` are notifications and get no reply.
fn handle_request(req: Value, conn_id: u64, shared: &Shared) -> Option<Value> {
    let Value::Object(obj) = &req else {
        return Some(error_response(Value::Null, -32600, "Invalid Request"));
    };
    let id = obj.get("id").cloned();
    let Some(method) = obj.get("method").and_then(Value::as_str) else {
        return Some(error_response(
            id.unwrap_or(Value::Null),
            -32600,
            "Invalid Request",
        ));
    };
    let outcome = dispatch(method, &req, conn_id, shared);
    let id = id?;
    Some(match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => error_response(id, code, &message),
    })
}

/// The confirmed balance of an unplanted scripthash when derived balances are on: its first
/// three bytes as satoshis (0 to 16 777 215), so nearly every script gets its own.
pub fn derived_balance(scripthash_hex: &str) -> i64 {
    i64::from_str_radix(scripthash_hex.get(..6).unwrap_or("0"), 16).unwrap_or(0)
}

fn planted_or_derived(st: &State, shared: &Shared, key: &str) -> Option<Balance> {
    st.balances.get(key).copied().or_else(|| {
        shared
            .derive_balances
            .load(Ordering::SeqCst)
            .then(|| Balance {
                confirmed: derived_balance(key),
                unconfirmed: 0,
                revision: 0,
            })
    })
}

/// Runs one method and returns its result or a JSON-RPC error (code, message).
fn dispatch(
    method: &str,
    req: &Value,
    conn_id: u64,
    shared: &Shared,
) -> Result<Value, (i64, String)> {
    match method {
        "server.version" => {
            if shared.mode() == Mode::RejectVersion {
                Err((1, "unsupported protocol version".to_string()))
            } else {
                Ok(json!(["FakeElectrum 1.0", "1.4"]))
            }
        }
        "server.ping" => Ok(Value::Null),
        "server.features" => Ok(json!({
            "genesis_hash": "0".repeat(64),
            "hosts": {},
            "protocol_min": "1.4",
            "protocol_max": "1.4",
            "server_version": "FakeElectrum 1.0",
            "hash_function": "sha256",
        })),
        "blockchain.scripthash.get_balance" => {
            let key = scripthash_param(req)?;
            let st = shared.lock();
            let (c, u) = planted_or_derived(&st, shared, &key)
                .map_or((0, 0), |b| (b.confirmed, b.unconfirmed));
            Ok(json!({"confirmed": c, "unconfirmed": u}))
        }
        "blockchain.scripthash.subscribe" => {
            let spelling = raw_scripthash_param(req)?;
            let key = spelling.to_ascii_lowercase();
            let mut st = shared.lock();
            let status = planted_or_derived(&st, shared, &key)
                .map_or(Value::Null, |b| Value::String(status_hex(&key, &b)));
            if let Some(conn) = st.conns.get_mut(&conn_id) {
                conn.subs.insert(key, spelling);
            }
            Ok(status)
        }
        "blockchain.scripthash.unsubscribe" => {
            let key = scripthash_param(req)?;
            if let Some(conn) = shared.lock().conns.get_mut(&conn_id) {
                conn.subs.remove(&key);
            }
            Ok(Value::Bool(true))
        }
        "blockchain.scripthash.get_history" => {
            let key = scripthash_param(req)?;
            Ok(shared
                .lock()
                .histories
                .get(&key)
                .cloned()
                .map_or(json!([]), Value::Array))
        }
        "blockchain.scripthash.listunspent" => {
            let key = scripthash_param(req)?;
            Ok(shared
                .lock()
                .unspents
                .get(&key)
                .cloned()
                .unwrap_or(json!([])))
        }
        "blockchain.transaction.get" => {
            let txid = scripthash_param(req)?;
            match shared.lock().txs.get(&txid) {
                Some(hex) => Ok(json!(hex)),
                None => Err((
                    2,
                    format!("daemon error: No such mempool or blockchain transaction {txid}"),
                )),
            }
        }
        "blockchain.transaction.broadcast" => {
            let hex = raw_scripthash_param(req)?;
            let mut st = shared.lock();
            if let Some(e) = st.broadcast_error.clone() {
                return Err((1, e));
            }
            st.broadcasts.push(hex.clone());
            // A fake id: the first 64 hex digits of the tx, padded.
            Ok(json!(format!("{:0<64}", &hex[..hex.len().min(64)])))
        }
        "blockchain.block.header" => {
            let h = first_param(req).and_then(Value::as_u64).unwrap_or(u64::MAX);
            shared
                .lock()
                .headers
                .get(&h)
                .cloned()
                .map(Value::String)
                .ok_or((1, format!("height {h} out of range")))
        }
        "blockchain.scripthash.get_mempool" => Ok(json!([])),
        "blockchain.headers.subscribe" => {
            let tip = shared.lock().tip.unwrap_or(100);
            Ok(json!({"height": tip, "hex": "0".repeat(160)}))
        }
        "blockchain.estimatefee" | "blockchain.relayfee" => Ok(json!(0.00001)),
        other => Err((-32601, format!("unknown method \"{other}\""))),
    }
}

/// The first positional parameter, if `params` is a non-empty array.
fn first_param(req: &Value) -> Option<&Value> {
    req.get("params")?.as_array()?.first()
}

/// The scripthash parameter as the client spelled it, or an invalid-params error.
fn raw_scripthash_param(req: &Value) -> Result<String, (i64, String)> {
    first_param(req)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or((-32602, "expected a scripthash string parameter".to_string()))
}

/// The scripthash parameter lowercased for lookups.
fn scripthash_param(req: &Value) -> Result<String, (i64, String)> {
    raw_scripthash_param(req).map(|s| s.to_ascii_lowercase())
}

/// A deterministic 64-hex-char status that changes on every `set_balance`.
fn status_hex(key: &str, b: &Balance) -> String {
    let mut out = String::with_capacity(64);
    for salt in 0u64..4 {
        let mut h = DefaultHasher::new();
        (salt, key, b.confirmed, b.unconfirmed, b.revision).hash(&mut h);
        let _ = write!(out, "{:016x}", h.finish());
    }
    out
}

/// A JSON-RPC error response.
fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// Serialises a value as one newline-terminated line.
fn to_line(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_else(|_| b"null".to_vec());
    out.push(b'\n');
    out
}

/// The slice without leading and trailing ASCII whitespace (handles "\r\n").
fn trim_ascii(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |p| p + 1);
    &bytes[start..end]
}
