//! kdfd benchmarks: runs the scenarios of the performance issue against the release binary and
//! writes `docs/benchmarks.md`.
//!
//! ```sh
//! cargo build --release                        # required: the bench runs target/release/kdfd
//! cargo run --release --example bench          # everything, ~1.5 minutes; rewrites docs/benchmarks.md
//! cargo run --release --example bench -- --only P1,P2 --reps 3   # a subset; prints, writes nothing
//! ```
//!
//! Each scenario starts its own kdfd (`target/release/kdfd` next to this example, or `$KDFD_BIN`) with a temp config,
//! and its own fake Electrum servers (`kdfd_testkit::electrum_fake`, one thread each) where it
//! needs them; P6 and P13 start the real regtest ElectrumX (`scripts/electrum-regtest`). The load is
//! generated in this process on its own 2-thread tokio runtime with the load engine of `kdfd_testkit::load` (behind examples/loadgen)
//! and the crate's keep-alive `kdfd::client::Client`.
//!
//! When `docs/benchmarks.md` already has a hand-written part (everything after the
//! `<!-- hand-written -->` marker line), it is kept as is.
//!
//! Profiling: `KDFD_WRAPPER="valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p"` runs every
//! kdfd under that command; with callgrind, the counters are zeroed right before each timed load
//! and dumped right after it (`callgrind_control -z` / `-d`), so the profile parts are the loads.
#![allow(dead_code)]

mod p1;
mod p10_evm;
mod p11_events;
mod p12_login;
mod p13_events_real;
mod p14_history;
mod p14_reference;
mod p14_sync_real;
mod p3;
mod p5;
mod p5_real;
mod p6;
mod p8_hd;
mod p9_withdraw;
mod render;

use p1::p1_p2_p4;
use p10_evm::p10;
use p11_events::p11;
use p12_login::p12;
use p13_events_real::p13;
use p14_history::p14;
use p3::{loadavg, p3, serve_bare};
use p5::{p5_p4idle, p7};
use p5_real::p5_real;
use p6::p6;
use p8_hd::p8;
use p9_withdraw::p9;
use render::{p4_rows, render};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::Parser;
use kdfd::client::Client;
use kdfd_testkit::electrum_fake::FakeElectrum;
use kdfd_testkit::load::{
    activate_batch, activation_item, check_all_slots, default_kdfd_bin, disable_batch, drive,
    measuring, post_timed, short, start_kdfd, version_workload, FakeFleet, FAKE_P2PK_SATS,
};
use kdfd_testkit::{
    base_conf, bob_scripthashes, proc_status_kb, test_coins, Kdfd, Launch, Spawned, USERPASS,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str =
    "<!-- hand-written: everything below this line is kept when bench.rs rewrites the file -->";

#[derive(Parser, Debug, Clone)]
#[command(about = "kdfd benchmarks (see examples/bench/main.rs)")]
struct Args {
    /// Repetitions of each timed scenario.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Fake Electrum reply latency for P1 and P2.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Coins (each with its own fake server) for P1, P2 and P4.
    #[arg(long, default_value_t = 100)]
    coins: usize,
    /// Items of the P2 my_balance batch.
    #[arg(long, default_value_t = 1000)]
    p2_items: usize,
    /// Keep-alive connections of P3.
    #[arg(long, default_value_t = 64)]
    p3_connections: usize,
    /// Seconds of each P3 measurement.
    #[arg(long, default_value_t = 5.0)]
    p3_seconds: f64,
    /// Repetitions of P3 (each one measures kdfd and the bare server).
    #[arg(long, default_value_t = 3)]
    p3_reps: usize,
    /// Spawns of P5.
    #[arg(long, default_value_t = 10)]
    p5_spawns: usize,
    /// Only these scenarios (P1..P13, comma-separated); the result is printed, not written.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the Markdown (default docs/benchmarks.md for a full run, nowhere with --only).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Internal: serve the bare hyper baseline of P3 with this body file, print the ready line.
    #[arg(long, hide = true)]
    serve_bare: Option<PathBuf>,
}

impl Args {
    fn wants(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o.eq_ignore_ascii_case(id))
    }
}

/// Met, not met, or not measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Met {
    Yes,
    No,
    NotRun,
    Info,
}

/// One table row.
struct Row {
    scenario: String,
    median: String,
    min: String,
    max: String,
    ratio: String,
    goal: String,
    met: Met,
    cmd: String,
}

impl Row {
    /// A row whose scenario could not run (e.g. the regtest stack did not start), with why.
    fn not_run(scenario: impl Into<String>, goal: &str, id: &str, e: &anyhow::Error) -> Row {
        Row {
            scenario: scenario.into(),
            median: "—".into(),
            min: "—".into(),
            max: "—".into(),
            ratio: format!("not run: {}", format!("{e:#}").replace('\n', " ")),
            goal: goal.into(),
            met: Met::NotRun,
            cmd: cmd(id),
        }
    }
}

/// Everything a scenario adds to the report.
#[derive(Default)]
struct Section {
    rows: Vec<Row>,
    details: Vec<String>,
}

fn median_min_max(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[0], s[n - 1])
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn list_ms(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cmd(only: &str) -> String {
    format!("`cargo run --release --example bench -- --only {only}`")
}

/// The measured goal check, or "not met" / "met" text.
fn met(ok: bool) -> Met {
    if ok {
        Met::Yes
    } else {
        Met::No
    }
}

// ------------------------------------------------------------------------------------------------
// callgrind markers (only when kdfd runs under callgrind)

fn under_callgrind() -> bool {
    std::env::var("KDFD_WRAPPER").is_ok_and(|w| w.contains("callgrind"))
}

fn profile_zero(d: &Kdfd) {
    if under_callgrind() {
        let _ = Command::new("callgrind_control")
            .arg("-z")
            .arg(d.pid().to_string())
            .stdout(Stdio::null())
            .status();
    }
}

fn profile_dump(d: &Kdfd, label: &str) {
    if under_callgrind() {
        let _ = Command::new("callgrind_control")
            .arg(format!("--dump={label}"))
            .arg(d.pid().to_string())
            .stdout(Stdio::null())
            .status();
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let bin = default_kdfd_bin()?;
    let t0 = Instant::now();
    let load_before = loadavg();
    // The version string, for the report header.
    let version = {
        let d = start_kdfd(&bin, base_conf(test_coins(1)))?;
        let mut c = Client::connect(d.addr).await?;
        let (_, v) = c.post_json(&json!({"method": "version"})).await?;
        d.stop(Duration::from_secs(30)).await;
        v["result"].as_str().unwrap_or("?").to_string()
    };
    let mut sections = Vec::new();
    let mut rss_idle = Vec::new();
    let mut rss_active = Vec::new();
    let mut rss_fresh = None;
    let step = |name: &str| eprintln!("bench: {name} ({:.0} s so far)", t0.elapsed().as_secs_f64());
    if args.wants("P1") || args.wants("P2") || args.wants("P4") {
        step("P1/P2/P4: 100 coins on 100 fake servers");
        let mut s = Section::default();
        p1_p2_p4(&args, &bin, &mut s, &mut rss_active, &mut rss_fresh).await?;
        sections.push(s);
    }
    if args.wants("P3") {
        step("P3: version throughput vs bare hyper");
        let mut s = Section::default();
        p3(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P5") || args.wants("P4") {
        step("P5: spawn to first answer");
        let mut s = Section::default();
        p5_p4idle(&args, &bin, &mut s, &mut rss_idle).await?;
        sections.push(s);
    }
    if args.wants("P5real") {
        step("P5real: start-up on the public 782-entry coins file, kdfd and KDF");
        let mut s = Section::default();
        p5_real(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P4") {
        let mut s = Section::default();
        p4_rows(&args, &mut s, &rss_idle, &rss_active, rss_fresh);
        sections.push(s);
    }
    if args.wants("P6") {
        step("P6: real ElectrumX with the stock reply hold");
        let mut s = Section::default();
        p6(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P7") {
        step("P7: 10 000-item version batch");
        let mut s = Section::default();
        p7(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P8") {
        step("P8: HD activation and wallet start-up");
        let mut s = Section::default();
        p8(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P9") {
        step("P9: withdraw and validateaddress");
        let mut s = Section::default();
        p9(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P10") {
        step("P10: ETH + 100 ERC-20 tokens on anvil");
        let mut s = Section::default();
        p10(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P11") {
        step("P11: notification to SSE event");
        let mut s = Section::default();
        p11(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P12") {
        step("P12: Komodo Wallet login");
        let mut s = Section::default();
        p12(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P13") {
        step("P13: real payment to BALANCE event; WebSocket vs HTTP batch");
        let mut s = Section::default();
        p13(&bin, &mut s).await?;
        sections.push(s);
    }
    if args.wants("P14") {
        step("P14: my_tx_history from the database; real-chain history sync");
        let mut s = Section::default();
        p14(&args, &bin, &mut s).await?;
        sections.push(s);
    }
    let out = match (&args.out, args.only.is_empty()) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md")),
        (None, false) => None,
    };
    let kept = out
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.split_once(MARKER).map(|(_, k)| k.to_string()));
    let loads = format!("{load_before} / {}", loadavg());
    let text = render(
        &args,
        &sections,
        &version,
        t0.elapsed(),
        &loads,
        kept.as_deref(),
    );
    match out {
        Some(p) => {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&p, &text).with_context(|| format!("write {}", p.display()))?;
            // The table on stdout too.
            print!("{}", text.split("\n## Details").next().unwrap_or(""));
            println!("\nwritten to {}", p.display());
        }
        None => print!("{}", text.split(MARKER).next().unwrap_or(&text)),
    }
    let not_met = sections
        .iter()
        .flat_map(|x| &x.rows)
        .filter(|r| r.met == Met::No)
        .count();
    eprintln!(
        "bench: done in {:.0} s; {not_met} goal(s) not met",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if let Some(body) = &args.serve_bare {
        return match serve_bare(body) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bare server: {e:#}");
                std::process::ExitCode::from(2)
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(bench(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
