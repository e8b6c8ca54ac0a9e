//! kdfd load generator: C concurrent keep-alive clients send B-item batches for T seconds and
//! the run is judged on throughput, batch latency, failed and lost items, and kdfd's memory.
//!
//! ```sh
//! cargo build --release                      # the load generator runs target/release/kdfd
//! cargo run --release --example loadgen -- --clients 50 --batch 100 --seconds 60
//! cargo run --release --example loadgen -- --method version --clients 64 --batch 1 --seconds 5
//! cargo run --release --example loadgen -- --addr 127.0.0.1:7783 --coins 2 --tickers RICK,MORTY
//! ```
//!
//! Without `--addr` it starts `target/release/kdfd` (or `--kdfd-bin`, or `$KDFD_BIN`) on port 0
//! with a temp config (the test userpass and passphrase, coins `T0..T{N-1}` inline), starts N
//! fake Electrum servers (`tests/support/electrum_fake.rs`) with `--latency-ms`, activates the N
//! coins in one batch and then runs the load. With `--addr` it starts nothing and activates
//! nothing: the coins (`--tickers`, default `T0..T{N-1}`) must already be active there; pass
//! `--pid` to get kdfd's RSS.
//!
//! An item **fails** when its slot has an `"error"` key or is not the expected answer (a
//! `my_balance` slot must name its coin and the balance the fake servers hold), when the HTTP
//! status is not 200, or when the answer has the wrong number of slots. An item is **lost** when
//! it was sent and no answer came back (connection error or `--timeout-sec`). The exit code is 0
//! only when nothing failed and nothing was lost. The last line of the output is machine-readable:
//! `LOADGEN key=value ...`.
//!
//! # Reuse from an integration test
//!
//! Everything but `main` is a library: include this file and call [`run`].
//!
//! ```ignore
//! #[path = "../examples/loadgen.rs"]
//! mod loadgen;
//!
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn short_load() {
//!     let opts = loadgen::Opts {
//!         clients: 4,
//!         batch: 20,
//!         seconds: 2.0,
//!         kdfd_bin: Some(env!("CARGO_BIN_EXE_kdfd").into()),
//!         ..loadgen::Opts::default()
//!     };
//!     let report = loadgen::run(opts).await.expect("set-up");
//!     assert!(report.passed(), "{report}");
//! }
//! ```
//!
//! The building blocks ([`Daemon`], [`FakeFleet`], [`drive`], [`Workload`], [`RssSampler`]) are
//! public too; `examples/bench.rs` uses them.
#![allow(dead_code)]

#[path = "../tests/support/electrum_fake.rs"]
pub mod electrum_fake;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Parser;
use electrum_fake::FakeElectrum;
use kdfd::client::Client;
use serde_json::{json, Value};
use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The rpc_password of the configs written here (the same as tests/support/mod.rs).
pub const USERPASS: &str = "Rpc!Secret42x";
/// The wallet passphrase of the configs written here (the same as tests/support/mod.rs).
pub const PASSPHRASE: &str = "bob passphrase";
/// Confirmed balance of the P2PKH scripthash on every fake server, in satoshis.
pub const FAKE_P2PKH_SATS: i64 = 100_000_000;
/// Confirmed + unconfirmed balance of the P2PK scripthash on every fake server, in satoshis.
pub const FAKE_P2PK_SATS: (i64, i64) = (50_000_000, 25_000_000);
/// What `my_balance` must answer for the fake balances above.
pub const FAKE_BALANCE: &str = "1.75";

/// Command line (and library) options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for kdfd (see the file's doc comment)")]
pub struct Opts {
    /// Concurrent clients, each with its own keep-alive connection.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Items per request; 1 sends a single request object instead of a batch array.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// How long the load runs.
    #[arg(long, default_value_t = 60.0)]
    pub seconds: f64,
    /// A running kdfd to load; without it, kdfd and fake Electrum servers are started here.
    #[arg(long)]
    pub addr: Option<SocketAddr>,
    /// kdfd's process id when `--addr` is given (for RSS); known otherwise.
    #[arg(long)]
    pub pid: Option<u32>,
    /// The method of every item.
    #[arg(long, value_enum, default_value = "my-balance")]
    pub method: LoadMethod,
    /// Coins (and fake Electrum servers, one each) that my_balance items go round-robin over.
    #[arg(long, default_value_t = 10)]
    pub coins: usize,
    /// Reply latency of every fake Electrum server.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// With `--addr`: the active tickers to ask about (default T0..T{coins-1}).
    #[arg(long, value_delimiter = ',')]
    pub tickers: Vec<String>,
    /// With `--addr`: the balance every my_balance slot must show (not checked if absent).
    #[arg(long)]
    pub expect_balance: Option<String>,
    /// The userpass of every item.
    #[arg(long, default_value = USERPASS)]
    pub userpass: String,
    /// Extra config keys (a JSON object) for the kdfd started here, e.g. '{"balance_cache":false}'.
    #[arg(long, value_parser = parse_json_object)]
    pub conf_extra: Option<Value>,
    /// The kdfd binary to start (default $KDFD_BIN, else target/release/kdfd).
    #[arg(long)]
    pub kdfd_bin: Option<PathBuf>,
    /// Time limit of one request; past it its items count as lost.
    #[arg(long, default_value_t = 30.0)]
    pub timeout_sec: f64,
    /// Worker threads of the client runtime (main only; `run` uses the caller's runtime).
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
    /// Print a progress line to stderr every this many seconds (0: never).
    #[arg(long, default_value_t = 10.0)]
    pub progress_sec: f64,
}

fn parse_json_object(s: &str) -> Result<Value, String> {
    match serde_json::from_str(s) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("not a JSON object".into()),
        Err(e) => Err(e.to_string()),
    }
}

impl Default for Opts {
    fn default() -> Self {
        Opts::parse_from(["loadgen"])
    }
}

/// What every item asks.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMethod {
    /// `my_balance`, round-robin over the coins.
    MyBalance,
    /// `version` (public, no userpass).
    Version,
}

// ------------------------------------------------------------------------------------------------
// kdfd process

/// The kdfd binary: `$KDFD_BIN`, else `<crate>/target/release/kdfd`; an error says how to build it.
pub fn default_kdfd_bin() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("KDFD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/kdfd"));
    if !path.is_file() {
        bail!(
            "{} does not exist: run `cargo build --release` first (or set KDFD_BIN / --kdfd-bin)",
            path.display()
        );
    }
    warn_if_stale(&path);
    Ok(path)
}

/// Warns when a file under src/ is newer than the binary (a forgotten `cargo build --release`).
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                eprintln!(
                    "warning: {} is newer than {}: run `cargo build --release` to measure the current code",
                    p.display(),
                    bin.display()
                );
                return;
            }
        }
    }
}

/// A config like tests/support/mod.rs writes: test userpass and passphrase, port 0, coins inline.
pub fn base_conf(coins: Value) -> Value {
    json!({
        "gui": "kdfd-loadgen",
        "netid": 9998,
        "passphrase": PASSPHRASE,
        "rpc_password": USERPASS,
        "rpcport": 0,
        "coins": coins,
    })
}

/// `n` UTXO coins named `{prefix}0..{prefix}{n-1}` (pubtype 60, like RICK).
pub fn test_coins(prefix: &str, n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(
                |i| json!({"coin": format!("{prefix}{i}"), "mm2": 1, "protocol": {"type": "UTXO"}}),
            )
            .collect(),
    )
}

/// A kdfd process started with a config in a temp dir; stopped (then killed) on drop.
pub struct Daemon {
    child: Child,
    /// The address it printed in its ready line.
    pub addr: SocketAddr,
    /// When `spawn` was called.
    pub spawned_at: Instant,
    /// When the ready line was read.
    pub ready_at: Instant,
    dir: tempfile::TempDir,
}

impl Daemon {
    /// Writes `conf` to MM2.json in a temp dir and spawns `bin --conf MM2.json` without waiting.
    ///
    /// `$KDFD_WRAPPER` (e.g. `valgrind --tool=callgrind`) is put in front of the binary.
    pub fn spawn(bin: &Path, conf: &Value) -> anyhow::Result<(Child, tempfile::TempDir, Instant)> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let conf_path = dir.path().join("MM2.json");
        std::fs::write(&conf_path, conf.to_string()).context("write MM2.json")?;
        let wrapper = std::env::var("KDFD_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(prog) => {
                let mut c = Command::new(prog);
                c.args(words).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.arg("--conf").arg(&conf_path);
        cmd.current_dir(dir.path());
        cmd.env_remove("MM_CONF_PATH").env_remove("MM_COINS_PATH");
        cmd.env("HOME", dir.path());
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).context("stderr log")?;
        cmd.stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null());
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        Ok((child, dir, spawned_at))
    }

    /// Starts kdfd and waits (up to `ready_timeout`) for its `listening on http://` line.
    pub fn start(bin: &Path, conf: &Value, ready_timeout: Duration) -> anyhow::Result<Daemon> {
        let (child, dir, spawned_at) = Self::spawn(bin, conf)?;
        Self::wait_ready(child, dir, spawned_at, ready_timeout)
    }

    /// Waits for a spawned child (stdout piped, stderr in `dir/stderr.log`) to print
    /// `listening on http://ADDR`; any server that prints such a line can be driven this way.
    pub fn wait_ready(
        mut child: Child,
        dir: tempfile::TempDir,
        spawned_at: Instant,
        ready_timeout: Duration,
    ) -> anyhow::Result<Daemon> {
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the ready line so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let deadline = Instant::now() + ready_timeout;
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(5)) {
                let addr = addr
                    .parse()
                    .with_context(|| format!("ready line address {addr:?}"))?;
                return Ok(Daemon {
                    child,
                    addr,
                    spawned_at,
                    ready_at: Instant::now(),
                    dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                bail!("kdfd exited with {status} before it was ready: {err}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("kdfd did not print its ready line within {ready_timeout:?}");
            }
        }
    }

    /// The OS process id (of the wrapper, if `$KDFD_WRAPPER` is set).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's current RSS in kB.
    pub fn rss_kb(&self) -> Option<u64> {
        proc_status_kb(self.pid(), "VmRSS")
    }

    /// What kdfd logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Asks kdfd to `stop` and waits up to `timeout` for it to exit (so profilers can write their
    /// output); kills it if it does not.
    pub async fn stop(mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        if let Ok(mut c) = Client::connect(self.addr).await {
            let stop = json!({"userpass": USERPASS, "method": "stop"});
            let _ = tokio::time::timeout(timeout, c.post_json(&stop)).await;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// How long to wait for the ready line: 20 s, or 120 s under `$KDFD_WRAPPER` (valgrind is slow).
pub fn ready_timeout() -> Duration {
    if std::env::var("KDFD_WRAPPER").is_ok_and(|w| !w.trim().is_empty()) {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(20)
    }
}

/// A `kB` field of /proc/PID/status (VmRSS, VmHWM...).
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Samples a process's VmRSS every `every` and keeps the peak, until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling on its own thread (so a busy runtime cannot delay it).
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(proc_status_kb(pid, "VmRSS").unwrap_or(0)));
        let (s, p) = (stop.clone(), peak.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// Stops sampling; returns the peak VmRSS in kB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

// ------------------------------------------------------------------------------------------------
// Fake Electrum servers and activation

/// bob's Electrum scripthashes (P2PKH, P2PK), from the crate's own crypto.
pub fn bob_scripthashes() -> (String, String) {
    let k = kdfd::crypto::KeyPair::from_passphrase(PASSPHRASE).expect("bob's key");
    (
        kdfd::crypto::scripthash(&kdfd::crypto::p2pkh_script(&k.hash160())),
        kdfd::crypto::scripthash(&kdfd::crypto::p2pk_script(&k.public_key())),
    )
}

/// N fake Electrum servers (plain TCP on 127.0.0.1), one per coin, holding bob's balance.
pub struct FakeFleet {
    /// The servers, server `i` for coin `i`.
    pub servers: Vec<FakeElectrum>,
}

impl FakeFleet {
    /// Starts `n` servers with reply latency `latency` and the balance [`FAKE_BALANCE`].
    pub fn start(n: usize, latency: Duration) -> FakeFleet {
        let (p2pkh, p2pk) = bob_scripthashes();
        let servers = (0..n)
            .map(|_| {
                let s = FakeElectrum::start_tcp();
                s.set_latency(latency);
                s.set_balance(&p2pkh, FAKE_P2PKH_SATS, 0);
                s.set_balance(&p2pk, FAKE_P2PK_SATS.0, FAKE_P2PK_SATS.1);
                s
            })
            .collect();
        FakeFleet { servers }
    }

    /// Sets bob's P2PKH confirmed balance on every server (the P2PK part stays).
    pub fn set_p2pkh_balance(&self, sats: i64) {
        let (p2pkh, _) = bob_scripthashes();
        for s in &self.servers {
            s.set_balance(&p2pkh, sats, 0);
        }
    }

    /// Σ lines_received over all servers (a JSON-RPC array counts as one).
    pub fn lines_received(&self) -> usize {
        self.servers.iter().map(FakeElectrum::lines_received).sum()
    }

    /// Per-server lines_received.
    pub fn lines_per_server(&self) -> Vec<usize> {
        self.servers
            .iter()
            .map(FakeElectrum::lines_received)
            .collect()
    }

    /// Σ method_count(method) over all servers (batch items counted one by one).
    pub fn method_count(&self, method: &str) -> usize {
        self.servers.iter().map(|s| s.method_count(method)).sum()
    }
}

/// One `electrum` activation item for `ticker` on the server at `url`.
pub fn activation_item(ticker: &str, url: &str) -> Value {
    json!({
        "userpass": USERPASS,
        "method": "electrum",
        "coin": ticker,
        "servers": [{"url": url}],
    })
}

/// Sends one request body and returns status, parsed body and elapsed time.
pub async fn post_timed(
    client: &mut Client,
    body: &Value,
    timeout: Duration,
) -> anyhow::Result<(u16, Value, Duration)> {
    let t = Instant::now();
    let (status, v) = tokio::time::timeout(timeout, client.post_json(body))
        .await
        .map_err(|_| anyhow!("no answer within {timeout:?} to {}", short(body)))?
        .with_context(|| format!("request {}", short(body)))?;
    Ok((status, v, t.elapsed()))
}

/// A request or answer cut to a readable length for messages.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 600 {
        format!("{}... ({} bytes)", &s[..600], s.len())
    } else {
        s
    }
}

/// Activates `tickers[i]` on `urls[i]` in one batch; every slot must say `"result":"success"`.
pub async fn activate_batch(
    addr: SocketAddr,
    tickers: &[String],
    urls: &[String],
) -> anyhow::Result<Duration> {
    let items: Vec<Value> = tickers
        .iter()
        .zip(urls)
        .map(|(t, u)| activation_item(t, u))
        .collect();
    let mut c = Client::connect(addr).await.context("connect to kdfd")?;
    let req = Value::Array(items);
    let (status, v, took) = post_timed(&mut c, &req, Duration::from_secs(60)).await?;
    check_all_slots(status, &v, tickers.len(), |_, s| {
        s.get("result").and_then(Value::as_str) == Some("success")
    })
    .with_context(|| format!("activation batch {}", short(&req)))?;
    Ok(took)
}

/// Disables `tickers` in one batch; every slot must name its coin.
pub async fn disable_batch(addr: SocketAddr, tickers: &[String]) -> anyhow::Result<()> {
    let items: Vec<Value> = tickers
        .iter()
        .map(|t| json!({"userpass": USERPASS, "method": "disable_coin", "coin": t}))
        .collect();
    let mut c = Client::connect(addr).await.context("connect to kdfd")?;
    let req = Value::Array(items);
    let (status, v, _) = post_timed(&mut c, &req, Duration::from_secs(60)).await?;
    check_all_slots(status, &v, tickers.len(), |i, s| {
        s.pointer("/result/coin").and_then(Value::as_str) == Some(tickers[i].as_str())
    })
    .with_context(|| format!("disable batch {}", short(&req)))
}

/// Checks a batch answer: status 200, `n` slots, every slot passes `ok`.
pub fn check_all_slots(
    status: u16,
    v: &Value,
    n: usize,
    ok: impl Fn(usize, &Value) -> bool,
) -> anyhow::Result<()> {
    let Some(slots) = v.as_array() else {
        bail!("status {status}, not an array: {}", short(v));
    };
    if status != 200 || slots.len() != n {
        bail!(
            "status {status}, {} slots for {n} items: {}",
            slots.len(),
            short(v)
        );
    }
    if let Some((i, bad)) = slots.iter().enumerate().find(|(i, s)| !ok(*i, s)) {
        bail!("slot {i} is wrong: {}", short(bad));
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The load engine

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

// ------------------------------------------------------------------------------------------------
// The load generator run

/// The result of [`run`].
#[derive(Debug, Clone)]
pub struct Report {
    /// The options it ran with.
    pub opts: Opts,
    /// The kdfd it loaded.
    pub addr: SocketAddr,
    /// Its process id, when known.
    pub pid: Option<u32>,
    /// How long the activation batch took (when this run activated the coins).
    pub activation: Option<Duration>,
    /// The load itself.
    pub load: LoadStats,
    /// kdfd's VmRSS before the load, kB.
    pub rss_before_kb: Option<u64>,
    /// kdfd's VmRSS after the load, kB.
    pub rss_after_kb: Option<u64>,
    /// Peak VmRSS sampled every 100 ms during the load, kB.
    pub rss_peak_kb: Option<u64>,
    /// Σ lines the fake Electrum servers received during the load (when they are ours).
    pub electrum_lines: Option<usize>,
    /// Σ get_balance requests the fake servers received during the load.
    pub electrum_get_balance: Option<usize>,
}

impl Report {
    /// True when no item failed and none was lost.
    pub fn passed(&self) -> bool {
        self.load.failed == 0 && self.load.lost() == 0 && self.load.sent > 0
    }

    /// The machine-readable summary line.
    pub fn machine_line(&self) -> String {
        let l = &self.load;
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
        let kb = |v: Option<u64>| v.map_or("na".to_string(), |v| v.to_string());
        format!(
            "LOADGEN method={} clients={} batch={} seconds={} items={} ok={} failed={} lost={} \
             items_per_s={:.0} batches={} p50_ms={} p90_ms={} p99_ms={} max_ms={} \
             rss_before_kb={} rss_after_kb={} rss_peak_kb={} electrum_lines={} pass={}",
            method_name(self.opts.method),
            self.opts.clients,
            self.opts.batch,
            self.opts.seconds,
            l.sent,
            l.ok,
            l.failed,
            l.lost(),
            l.items_per_sec(),
            l.requests,
            ms(l.percentile(0.5)),
            ms(l.percentile(0.9)),
            ms(l.percentile(0.99)),
            ms(l.percentile(1.0)),
            kb(self.rss_before_kb),
            kb(self.rss_after_kb),
            kb(self.rss_peak_kb),
            self.electrum_lines
                .map_or("na".to_string(), |v| v.to_string()),
            u8::from(self.passed()),
        )
    }
}

fn method_name(m: LoadMethod) -> &'static str {
    match m {
        LoadMethod::MyBalance => "my_balance",
        LoadMethod::Version => "version",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        let l = &self.load;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let kb = |v: Option<u64>| v.map_or("n/a".to_string(), |v| format!("{v} kB"));
        writeln!(
            f,
            "kdfd at {}{}",
            self.addr,
            self.pid.map_or(String::new(), |p| format!(" (pid {p})"))
        )?;
        if o.method == LoadMethod::MyBalance {
            writeln!(
                f,
                "coins: {} ({}), fake Electrum latency {} ms{}",
                o.coins,
                if o.addr.is_some() {
                    "already active"
                } else {
                    "one fake Electrum server each"
                },
                o.latency_ms,
                self.activation.map_or(String::new(), |d| format!(
                    ", activated in one batch in {:.1} ms",
                    ms(d)
                ))
            )?;
        }
        writeln!(
            f,
            "load: {} clients x {} {} ({}) for {} s, request timeout {} s",
            o.clients,
            o.batch,
            method_name(o.method),
            if o.batch == 1 {
                "single requests"
            } else {
                "item batches"
            },
            o.seconds,
            o.timeout_sec
        )?;
        writeln!(
            f,
            "elapsed: {:.2} s; requests answered: {} ({:.1}/s); transport errors: {}",
            l.elapsed.as_secs_f64(),
            l.requests,
            l.requests_per_sec(),
            l.transport_errors
        )?;
        writeln!(
            f,
            "items: sent {}, answered {}, ok {}, failed {}, lost {}",
            l.sent,
            l.answered,
            l.ok,
            l.failed,
            l.lost()
        )?;
        writeln!(f, "throughput: {:.0} items/s", l.items_per_sec())?;
        writeln!(
            f,
            "request latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(l.percentile(0.5)),
            ms(l.percentile(0.9)),
            ms(l.percentile(0.99)),
            ms(l.percentile(1.0))
        )?;
        writeln!(
            f,
            "kdfd RSS: before {}, after {}, peak {} (VmRSS, sampled every 100 ms)",
            kb(self.rss_before_kb),
            kb(self.rss_after_kb),
            kb(self.rss_peak_kb)
        )?;
        if let (Some(lines), Some(gb)) = (self.electrum_lines, self.electrum_get_balance) {
            writeln!(
                f,
                "fake Electrum servers received {lines} lines carrying {gb} get_balance requests \
                 ({:.2} requests per my_balance item)",
                gb as f64 / (l.sent.max(1)) as f64
            )?;
        }
        for s in &l.failure_samples {
            writeln!(f, "failure: {s}")?;
        }
        write!(f, "result: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}

/// Runs the whole load generator: set-up (unless `opts.addr`), load, RSS, report.
///
/// Uses the caller's tokio runtime (a multi-thread one, so the clients run in parallel); the
/// fake Electrum servers run on their own threads. Errors are set-up failures only; how the load
/// went is in the [`Report`] (see [`Report::passed`]).
pub async fn run(opts: Opts) -> anyhow::Result<Report> {
    if opts.clients == 0 || opts.batch == 0 {
        bail!("--clients and --batch must be at least 1");
    }
    let timeout = Duration::from_secs_f64(opts.timeout_sec);
    let mut fleet = None;
    let mut daemon = None;
    let mut activation = None;
    let (addr, pid, tickers, expect) = match opts.addr {
        Some(addr) => {
            let tickers = if opts.tickers.is_empty() {
                (0..opts.coins).map(|i| format!("T{i}")).collect()
            } else {
                opts.tickers.clone()
            };
            (addr, opts.pid, tickers, opts.expect_balance.clone())
        }
        None => {
            let bin = match &opts.kdfd_bin {
                Some(b) => b.clone(),
                None => default_kdfd_bin()?,
            };
            let n = if opts.method == LoadMethod::MyBalance {
                opts.coins.max(1)
            } else {
                opts.coins
            };
            let mut conf = base_conf(test_coins("T", n));
            if let (Some(obj), Some(Value::Object(extra))) =
                (conf.as_object_mut(), opts.conf_extra.clone())
            {
                obj.extend(extra);
            }
            let d = Daemon::start(&bin, &conf, ready_timeout())?;
            let tickers: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
            if n > 0 {
                let f = FakeFleet::start(n, Duration::from_millis(opts.latency_ms));
                let urls: Vec<String> = f.servers.iter().map(FakeElectrum::url).collect();
                activation = Some(
                    activate_batch(d.addr, &tickers, &urls)
                        .await
                        .map_err(|e| anyhow!("{e:#}\nkdfd stderr:\n{}", d.stderr()))?,
                );
                fleet = Some(f);
            }
            let r = (
                d.addr,
                Some(d.pid()),
                tickers,
                Some(FAKE_BALANCE.to_string()),
            );
            daemon = Some(d);
            r
        }
    };
    if opts.method == LoadMethod::MyBalance && tickers.is_empty() {
        bail!("my_balance needs at least one coin");
    }
    let work = match opts.method {
        LoadMethod::Version => version_workload(opts.batch),
        LoadMethod::MyBalance => my_balance_workload(opts.batch, &tickers, &opts.userpass, expect),
    };
    let rss_before_kb = pid.and_then(|p| proc_status_kb(p, "VmRSS"));
    let sampler = pid.map(|p| RssSampler::start(p, Duration::from_millis(100)));
    let (lines0, gb0) = fleet.as_ref().map_or((0, 0), |f: &FakeFleet| {
        (
            f.lines_received(),
            f.method_count("blockchain.scripthash.get_balance"),
        )
    });
    let progress =
        (opts.progress_sec > 0.0).then(|| (Duration::from_secs_f64(opts.progress_sec), pid));
    let load = drive(
        addr,
        opts.clients,
        Duration::from_secs_f64(opts.seconds),
        work,
        timeout,
        None,
        progress,
    )
    .await;
    let rss_peak_kb = sampler.map(RssSampler::finish);
    let rss_after_kb = pid.and_then(|p| proc_status_kb(p, "VmRSS"));
    let (electrum_lines, electrum_get_balance) = match &fleet {
        Some(f) => (
            Some(f.lines_received() - lines0),
            Some(f.method_count("blockchain.scripthash.get_balance") - gb0),
        ),
        None => (None, None),
    };
    let report = Report {
        opts,
        addr,
        pid,
        activation,
        load,
        rss_before_kb,
        rss_after_kb,
        rss_peak_kb: rss_peak_kb.map(|p| p.max(rss_after_kb.unwrap_or(0))),
        electrum_lines,
        electrum_get_balance,
    };
    if let Some(d) = daemon {
        if !report.passed() {
            let log = d.stderr();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!("loadgen: kdfd stderr (last 20 lines):");
            for l in tail.iter().rev() {
                eprintln!("  {l}");
            }
        }
        d.stop(Duration::from_secs(10)).await;
    }
    drop(fleet);
    Ok(report)
}

fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(opts)) {
        Ok(report) => {
            println!("{report}");
            println!("{}", report.machine_line());
            if report.passed() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadgen: set-up failed: {e:#}");
            println!("LOADGEN error=setup pass=0");
            std::process::ExitCode::from(2)
        }
    }
}
