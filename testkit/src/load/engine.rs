//! The load engine: workloads, the client loops and how each answer is judged.

use super::fleet::short;
use crate::proc_status_kb;
use bytes::Bytes;
use kdfd::client::Client;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Judges one slot (or a single answer): `(index, slot) -> ok`.
pub type SlotCheck = Arc<dyn Fn(usize, &Value) -> bool + Send + Sync>;

/// What every client sends, over and over.
#[derive(Clone)]
pub struct Workload {
    /// The request body (sent as is every time).
    pub body: Bytes,
    /// `Some(n)`: a batch, the answer must be an array of `n` slots; `None`: a single object.
    pub batch: Option<usize>,
    /// The check of each slot (or of the single answer).
    pub check: SlotCheck,
}

impl Workload {
    /// Items per request.
    pub fn items(&self) -> usize {
        self.batch.unwrap_or(1)
    }
}

/// `version` items: single objects for `batch == 1`, else an array.
pub fn version_workload(batch: usize) -> Workload {
    let item = json!({"method": "version"});
    let check: SlotCheck = Arc::new(|_, s: &Value| {
        s.get("error").is_none() && s.get("result").and_then(Value::as_str).is_some()
    });
    if batch == 1 {
        Workload {
            body: Bytes::from(item.to_string()),
            batch: None,
            check,
        }
    } else {
        Workload {
            body: Bytes::from(Value::Array(vec![item; batch]).to_string()),
            batch: Some(batch),
            check,
        }
    }
}

/// `my_balance` items round-robin over `tickers`; each slot must name its coin and (if given)
/// show `expect_balance`.
pub fn my_balance_workload(
    batch: usize,
    tickers: &[String],
    userpass: &str,
    expect_balance: Option<String>,
) -> Workload {
    let item = |i: usize| json!({"userpass": userpass, "method": "my_balance", "coin": tickers[i % tickers.len()]});
    let names: Vec<String> = tickers.to_vec();
    let check: SlotCheck = Arc::new(move |i, s: &Value| {
        s.get("error").is_none()
            && s.get("coin").and_then(Value::as_str) == Some(names[i % names.len()].as_str())
            && match &expect_balance {
                Some(b) => s.get("balance").and_then(Value::as_str) == Some(b.as_str()),
                None => s.get("balance").and_then(Value::as_str).is_some(),
            }
    });
    if batch == 1 {
        Workload {
            body: Bytes::from(item(0).to_string()),
            batch: None,
            check,
        }
    } else {
        Workload {
            body: Bytes::from(Value::Array((0..batch).map(item).collect()).to_string()),
            batch: Some(batch),
            check,
        }
    }
}

/// How the load went.
#[derive(Debug, Clone, Default)]
pub struct LoadStats {
    /// Requests answered (any status).
    pub requests: u64,
    /// Items sent.
    pub sent: u64,
    /// Items with a slot in an answer (or whose whole request got a non-200 answer).
    pub answered: u64,
    /// Items answered correctly.
    pub ok: u64,
    /// Items answered wrongly (error slot, non-200, wrong slot count, unexpected slot).
    pub failed: u64,
    /// Connection errors and timeouts.
    pub transport_errors: u64,
    /// Latency of every answered request, sorted.
    pub latencies: Vec<Duration>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Up to five examples of failures: what was wrong and the answer.
    pub failure_samples: Vec<String>,
}

impl LoadStats {
    /// Items sent and never answered.
    pub fn lost(&self) -> u64 {
        self.sent - self.answered
    }

    /// Correct items per second.
    pub fn items_per_sec(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Answered requests per second.
    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `q`-quantile (0..=1) of request latency.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * q).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    fn merge(&mut self, o: LoadStats) {
        self.requests += o.requests;
        self.sent += o.sent;
        self.answered += o.answered;
        self.ok += o.ok;
        self.failed += o.failed;
        self.transport_errors += o.transport_errors;
        self.latencies.extend(o.latencies);
        for s in o.failure_samples {
            if self.failure_samples.len() < 5 {
                self.failure_samples.push(s);
            }
        }
    }
}

/// Runs `clients` keep-alive clients, each sending `work` back to back until `duration` has
/// passed (requests in flight then finish, bounded by `timeout`) or `max_requests` were sent in
/// all. Prints progress to stderr every `progress.0` if given (with the VmRSS of process
/// `progress.1` if given).
pub async fn drive(
    addr: SocketAddr,
    clients: usize,
    duration: Duration,
    work: Workload,
    timeout: Duration,
    max_requests: Option<u64>,
    progress: Option<(Duration, Option<u32>)>,
) -> LoadStats {
    let start = Instant::now();
    let deadline = start + duration;
    let budget = Arc::new(AtomicU64::new(max_requests.unwrap_or(u64::MAX)));
    let live = Arc::new(LiveCounters::default());
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let work = work.clone();
        let budget = budget.clone();
        let live = live.clone();
        tasks.push(tokio::spawn(async move {
            client_loop(addr, deadline, work, timeout, budget, live).await
        }));
    }
    let reporter = progress.filter(|p| !p.0.is_zero()).map(|(every, pid)| {
        let live = live.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                eprintln!(
                    "loadgen: t={:>5.1}s items ok={} failed={} in flight={}{}",
                    start.elapsed().as_secs_f64(),
                    live.ok.load(Ordering::Relaxed),
                    live.failed.load(Ordering::Relaxed),
                    live.sent.load(Ordering::Relaxed) - live.answered.load(Ordering::Relaxed),
                    pid.and_then(|p| proc_status_kb(p, "VmRSS"))
                        .map_or(String::new(), |kb| format!(" kdfd VmRSS={kb} kB")),
                );
            }
        })
    });
    let mut total = LoadStats::default();
    for t in tasks {
        match t.await {
            Ok(s) => total.merge(s),
            Err(e) => total
                .failure_samples
                .push(format!("client task panicked: {e}")),
        }
    }
    if let Some(r) = reporter {
        r.abort();
    }
    total.elapsed = start.elapsed();
    total.latencies.sort_unstable();
    total
}

#[derive(Default)]
struct LiveCounters {
    sent: AtomicU64,
    answered: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
}

async fn client_loop(
    addr: SocketAddr,
    deadline: Instant,
    work: Workload,
    timeout: Duration,
    budget: Arc<AtomicU64>,
    live: Arc<LiveCounters>,
) -> LoadStats {
    let mut st = LoadStats::default();
    let n = work.items() as u64;
    let mut client: Option<Client> = None;
    let sample = |st: &mut LoadStats, what: String| {
        if st.failure_samples.len() < 5 {
            st.failure_samples.push(what);
        }
    };
    while Instant::now() < deadline {
        if budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1))
            .is_err()
        {
            break;
        }
        let c = match client.as_mut() {
            Some(c) => c,
            None => match Client::connect(addr).await {
                Ok(c) => client.insert(c),
                Err(e) => {
                    st.transport_errors += 1;
                    sample(&mut st, format!("connect failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        st.sent += n;
        live.sent.fetch_add(n, Ordering::Relaxed);
        let t = Instant::now();
        let resp = match tokio::time::timeout(timeout, c.send("POST", work.body.clone())).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                st.transport_errors += 1;
                sample(&mut st, format!("request failed: {e}"));
                client = None;
                continue;
            }
            Err(_) => {
                st.transport_errors += 1;
                sample(&mut st, format!("no answer within {timeout:?}"));
                client = None;
                continue;
            }
        };
        st.latencies.push(t.elapsed());
        st.requests += 1;
        let (answered, ok, problem) = judge(&work, resp.status, &resp.body);
        st.answered += answered;
        st.ok += ok;
        st.failed += answered - ok;
        live.answered.fetch_add(answered, Ordering::Relaxed);
        live.ok.fetch_add(ok, Ordering::Relaxed);
        live.failed.fetch_add(answered - ok, Ordering::Relaxed);
        if let Some(p) = problem {
            sample(&mut st, p);
        }
    }
    st
}

/// (items answered, items ok, what was wrong) for one response.
fn judge(work: &Workload, status: u16, body: &[u8]) -> (u64, u64, Option<String>) {
    let n = work.items() as u64;
    let text = || {
        let s = String::from_utf8_lossy(body);
        if s.len() > 600 {
            format!("{}... ({} bytes)", &s[..600], s.len())
        } else {
            s.into_owned()
        }
    };
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return (
                n,
                0,
                Some(format!("status {status}, body not JSON ({e}): {}", text())),
            )
        }
    };
    if status != 200 {
        return (n, 0, Some(format!("status {status}: {}", text())));
    }
    match (work.batch, &parsed) {
        (None, v) => {
            if (work.check)(0, v) {
                (1, 1, None)
            } else {
                (1, 0, Some(format!("wrong answer: {}", text())))
            }
        }
        (Some(want), Value::Array(slots)) if slots.len() == want => {
            let mut bad = None;
            let ok = slots
                .iter()
                .enumerate()
                .filter(|(i, s)| {
                    let good = (work.check)(*i, s);
                    if !good && bad.is_none() {
                        bad = Some(format!("slot {i} of {want} wrong: {}", short(s)));
                    }
                    good
                })
                .count() as u64;
            (n, ok, bad)
        }
        (Some(want), Value::Array(slots)) => (
            (slots.len() as u64).min(n),
            0,
            Some(format!(
                "{} slots for {want} items: {}",
                slots.len(),
                text()
            )),
        ),
        (Some(_), _) => (
            n,
            0,
            Some(format!("batch answered with a non-array: {}", text())),
        ),
    }
}
