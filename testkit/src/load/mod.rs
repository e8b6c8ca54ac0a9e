//! The load engine behind `examples/loadgen`: C concurrent keep-alive clients send B-item
//! batches for T seconds and the run is judged on throughput, batch latency, failed and lost
//! items, and kdfd's memory. `tests/load.rs` runs it briefly; `examples/bench` uses its parts.
//!
//! Without `--addr` [`run`] starts kdfd (`--kdfd-bin`, else `$KDFD_BIN`, else `target/<profile>/kdfd`
//! next to the running executable) on port 0 with a temp config (the test userpass and
//! passphrase, coins `T0..T{N-1}` inline), starts N fake Electrum servers
//! ([`crate::electrum_fake`]) with `--latency-ms`, activates the N coins in one batch and then runs
//! the load. With `--addr` it starts nothing and activates nothing: the coins (`--tickers`,
//! default `T0..T{N-1}`) must already be active there; pass `--pid` to get kdfd's RSS.
//!
//! An item **fails** when its slot has an `"error"` key or is not the expected answer (a
//! `my_balance` slot must name its coin and the balance the fake servers hold), when the HTTP
//! status is not 200, or when the answer has the wrong number of slots. An item is **lost** when
//! it was sent and no answer came back (connection error or `--timeout-sec`).
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn short_load() {
//!     let opts = kdfd_testkit::load::Opts {
//!         clients: 4,
//!         batch: 20,
//!         seconds: 2.0,
//!         kdfd_bin: Some(env!("CARGO_BIN_EXE_kdfd").into()),
//!         ..kdfd_testkit::load::Opts::default()
//!     };
//!     let report = kdfd_testkit::load::run(opts).await.expect("set-up");
//!     assert!(report.passed(), "{report}");
//! }
//! ```

mod engine;
mod fleet;
mod proc;
mod report;

pub use engine::{drive, my_balance_workload, version_workload, LoadStats, SlotCheck, Workload};
pub use fleet::{
    activate_batch, activation_item, check_all_slots, disable_batch, post_timed, short, FakeFleet,
};
pub use proc::{default_kdfd_bin, measuring, ready_timeout, start_kdfd, RssSampler};
pub use report::Report;

use crate::electrum_fake::FakeElectrum;
use crate::{base_conf, proc_status_kb, test_coins, USERPASS};
use anyhow::{anyhow, bail};
use clap::Parser;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Confirmed balance of the P2PKH scripthash on every fake server, in satoshis.
pub const FAKE_P2PKH_SATS: i64 = 100_000_000;
/// Confirmed + unconfirmed balance of the P2PK scripthash on every fake server, in satoshis.
pub const FAKE_P2PK_SATS: (i64, i64) = (50_000_000, 25_000_000);
/// What `my_balance` must answer for the fake balances above.
pub const FAKE_BALANCE: &str = "1.75";

/// Command line (and library) options.
#[derive(Parser, Debug, Clone)]
#[command(about = "Load generator for kdfd (see kdfd_testkit::load and docs/testing.md)")]
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
    /// The kdfd binary to start (default $KDFD_BIN, else target/<profile>/kdfd next to this program).
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
            let mut conf = base_conf(test_coins(n));
            if let (Some(obj), Some(Value::Object(extra))) =
                (conf.as_object_mut(), opts.conf_extra.clone())
            {
                obj.extend(extra);
            }
            let d = start_kdfd(&bin, conf)?;
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
