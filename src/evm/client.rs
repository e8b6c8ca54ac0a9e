//! `EvmClient`: one coin's EVM nodes. Calls go to the first node that is not backing off; a node
//! fault (transport, timeout, HTTP status, garbage) sends the affected calls to the next node and
//! backs the faulty one off (doubling, like the Electrum pool). A JSON-RPC error is final.

use super::abi::{decimals_call, decode_balance, decode_decimals, quantity_u64, query_call};
use super::batch::{self, Pending, WorkerOpts};
use super::http::{HttpConn, NodeUrl};
use super::EvmError;
use alloy_primitives::{Address, U256};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Tunables; `Default` suits public providers.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Items per JSON-RPC array (Polygon's Bor defaults to 100, geth to 1000).
    pub batch_limit: usize,
    /// Bytes per request body (anvil refuses more than 2 MiB).
    pub max_batch_bytes: usize,
    /// Per HTTP request, connect included (KDF: 10 s per node).
    pub request_timeout: Duration,
    /// Largest answer body accepted.
    pub max_response_bytes: usize,
    /// First back-off of a failed node; doubles per failure up to `max_backoff`.
    pub first_backoff: Duration,
    /// Back-off ceiling.
    pub max_backoff: Duration,
    /// A node's worker sends what is queued once no new call came for this long (calls
    /// arriving meanwhile join the same arrays).
    pub linger_quiet: Duration,
    /// The most a call waits for company.
    pub linger_max: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            batch_limit: 100,
            max_batch_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_response_bytes: 16 * 1024 * 1024,
            first_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            linger_quiet: Duration::from_micros(300),
            linger_max: Duration::from_millis(3),
        }
    }
}

/// One balance to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `eth_getBalance(addr, "latest")`.
    Eth(Address),
    /// `balanceOf(holder)` on `contract`, through `eth_call`.
    Token {
        /// The ERC-20 contract.
        contract: Address,
        /// Whose balance.
        holder: Address,
    },
}

#[derive(Default)]
struct Backoff {
    until: Option<Instant>,
    next: Option<Duration>,
}

struct Node {
    url: NodeUrl,
    /// The worker's queue, started on first use (inside the runtime).
    queue: OnceLock<mpsc::UnboundedSender<Vec<Pending>>>,
    backoff: Mutex<Backoff>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    nodes: Vec<Node>,
    opts: ClientOptions,
    requests: Arc<AtomicU64>,
}

/// A coin's nodes. Cheap to clone; the workers stop when the last clone is dropped.
#[derive(Clone)]
pub struct EvmClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EvmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<&str> = self
            .inner
            .nodes
            .iter()
            .map(|n| n.url.url.as_str())
            .collect();
        f.debug_struct("EvmClient").field("urls", &urls).finish()
    }
}

impl EvmClient {
    /// Checks every URL (http or https); connects lazily.
    pub fn new(urls: Vec<String>, opts: ClientOptions) -> Result<EvmClient, EvmError> {
        if urls.is_empty() {
            return Err(EvmError::NoNodes);
        }
        let nodes = urls
            .iter()
            .map(|u| {
                Ok(Node {
                    url: NodeUrl::parse(u)?,
                    queue: OnceLock::new(),
                    backoff: Mutex::default(),
                })
            })
            .collect::<Result<Vec<_>, EvmError>>()?;
        Ok(EvmClient {
            inner: Arc::new(Inner {
                nodes,
                opts,
                requests: Arc::new(AtomicU64::new(0)),
            }),
        })
    }

    /// HTTP requests sent so far, all nodes together.
    pub fn http_requests(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, EvmError> {
        quantity_u64(&self.call("eth_chainId", json!([])).await?)
    }

    /// Fails with `ChainIdMismatch` when the node's chain is not `expected`. KDF never checks
    /// this (a node on anvil's 31337 serves any configured chain), so callers opt in.
    pub async fn check_chain_id(&self, expected: u64) -> Result<(), EvmError> {
        let got = self.chain_id().await?;
        if got != expected {
            return Err(EvmError::ChainIdMismatch { expected, got });
        }
        Ok(())
    }

    /// `web3_clientVersion`, KDF's activation probe.
    pub async fn client_version(&self) -> Result<String, EvmError> {
        match self.call("web3_clientVersion", json!([])).await? {
            Value::String(s) => Ok(s),
            other => Err(EvmError::InvalidResponse(format!(
                "client version is not a string: {other}"
            ))),
        }
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, EvmError> {
        quantity_u64(&self.call("eth_blockNumber", json!([])).await?)
    }

    /// Wei held by `addr` at `latest`.
    pub async fn eth_balance(&self, addr: Address) -> Result<U256, EvmError> {
        self.balance(Query::Eth(addr)).await
    }

    /// Token units `holder` holds on `contract` at `latest`.
    pub async fn token_balance(
        &self,
        contract: Address,
        holder: Address,
    ) -> Result<U256, EvmError> {
        self.balance(Query::Token { contract, holder }).await
    }

    /// One balance; concurrent callers share JSON-RPC arrays.
    pub async fn balance(&self, q: Query) -> Result<U256, EvmError> {
        self.balances(&[q])
            .await
            .pop()
            .unwrap_or(Err(EvmError::Closed))
    }

    /// The contract's `decimals()` (KDF asks when the coins file gives none or 0).
    pub async fn token_decimals(&self, contract: Address) -> Result<u8, EvmError> {
        decode_decimals(&self.call("eth_call", decimals_call(&contract)).await?)
    }

    /// Many balances, one result per query in order, sent as few arrays as the limits allow.
    pub async fn balances(&self, queries: &[Query]) -> Vec<Result<U256, EvmError>> {
        let calls = queries.iter().map(|q| query_call(q)).collect();
        self.call_many(calls)
            .await
            .into_iter()
            .zip(queries)
            .map(|(r, q)| r.and_then(|v| decode_balance(q, &v)))
            .collect()
    }

    async fn call(&self, method: &'static str, params: Value) -> Result<Value, EvmError> {
        self.call_many(vec![(method, params)])
            .await
            .pop()
            .unwrap_or(Err(EvmError::Closed))
    }

    /// Node order for this call: healthy nodes first, then backing-off ones as a last resort.
    fn order(&self) -> Vec<usize> {
        let now = Instant::now();
        let (mut ok, mut waiting) = (Vec::new(), Vec::new());
        for (i, n) in self.inner.nodes.iter().enumerate() {
            if lock(&n.backoff).until.is_some_and(|t| now < t) {
                waiting.push(i);
            } else {
                ok.push(i);
            }
        }
        ok.extend(waiting);
        ok
    }

    fn queue<'a>(&self, node: &'a Node) -> &'a mpsc::UnboundedSender<Vec<Pending>> {
        node.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let o = &self.inner.opts;
            let wo = WorkerOpts {
                limit: o.batch_limit.max(1),
                max_bytes: o.max_batch_bytes,
                timeout: o.request_timeout,
                max_response: o.max_response_bytes,
                linger_quiet: o.linger_quiet,
                linger_max: o.linger_max,
                requests: self.inner.requests.clone(),
            };
            tokio::spawn(batch::run(HttpConn::new(node.url.clone()), rx, wo));
            tx
        })
    }

    fn failed(&self, node: &Node) {
        let o = &self.inner.opts;
        let mut b = lock(&node.backoff);
        let wait = b
            .next
            .map_or(o.first_backoff, |d| (d * 2).min(o.max_backoff));
        b.next = Some(wait);
        b.until = Some(Instant::now() + wait);
    }

    /// Raw JSON-RPC calls with failover; each answer is the call's `result`.
    pub async fn call_many(
        &self,
        calls: Vec<(&'static str, Value)>,
    ) -> Vec<Result<Value, EvmError>> {
        let mut results: Vec<Option<Result<Value, EvmError>>> = vec![None; calls.len()];
        let mut todo: Vec<usize> = (0..calls.len()).collect();
        let mut errors = Vec::new();
        for idx in self.order() {
            if todo.is_empty() {
                break;
            }
            let node = &self.inner.nodes[idx];
            let queue = self.queue(node);
            // One message per call_many, so a caller's calls always share an array.
            let (msg, rxs): (Vec<Pending>, Vec<_>) = todo
                .iter()
                .map(|&i| {
                    let (tx, rx) = oneshot::channel();
                    let (method, params) = calls[i].clone();
                    let p = Pending {
                        method,
                        params,
                        reply: tx,
                    };
                    (p, rx)
                })
                .unzip();
            let sent = queue.send(msg).is_ok();
            let waits = rxs.into_iter().map(|rx| async move {
                if !sent {
                    return Err(EvmError::Closed);
                }
                rx.await.unwrap_or(Err(EvmError::Closed))
            });
            let answers = join_all(waits.collect::<Vec<_>>()).await;
            let mut again = Vec::new();
            let mut fault = None;
            for (i, a) in todo.iter().copied().zip(answers) {
                match a {
                    Err(e) if e.is_node_fault() => {
                        again.push(i);
                        fault.get_or_insert(e);
                    }
                    other => results[i] = Some(other),
                }
            }
            match fault {
                Some(e) => {
                    self.failed(node);
                    tracing::debug!(url = %node.url.url, error = %e, "evm node failed");
                    errors.push(e.to_string());
                }
                None => *lock(&node.backoff) = Backoff::default(),
            }
            todo = again;
        }
        for i in todo {
            results[i] = Some(Err(EvmError::AllNodesFailed(errors.clone())));
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(EvmError::Closed)))
            .collect()
    }
}
