//! kdfd: serves the Komodo DeFi Framework RPC. Parses flags, loads the config, binds the port,
//! prints KDF's ready line and serves until `stop`, SIGTERM or Ctrl-C.

use anyhow::Context;
use clap::Parser;
use kdfd::config::{Config, Sources};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// A fast, dependable daemon for the Komodo DeFi Framework (KDF/mm2) RPC.
///
/// The config is KDF's MM2.json, taken from (first found): --conf FILE, a JSON object given as the
/// first argument, the file in MM_CONF_PATH, ./MM2.json, ~/.kdf/MM2.json. The coins list is taken
/// from --coins FILE, the config's inline "coins" array, MM_COINS_PATH, ./coins, ~/.kdf/coins.
/// Logging: RUST_LOG (e.g. RUST_LOG=kdfd=debug). See docs/config.md for every key.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Args {
    /// The config as a JSON object (KDF style: kdfd '{"rpc_password": ...}').
    inline: Option<String>,
    /// Config file (overrides MM_CONF_PATH and ./MM2.json).
    #[arg(long, value_name = "FILE")]
    conf: Option<PathBuf>,
    /// Coins file (overrides the config's "coins", MM_COINS_PATH and ./coins).
    #[arg(long, value_name = "FILE")]
    coins: Option<PathBuf>,
    /// Address to listen on (overrides "rpcip").
    #[arg(long)]
    rpcip: Option<std::net::IpAddr>,
    /// Port to listen on, 0 for any free port (overrides "rpcport").
    #[arg(long)]
    rpcport: Option<u16>,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

/// Targets never logged, whatever RUST_LOG says: their debug and trace lines carry request and
/// WebSocket payloads (userpasses, wallet passwords, mnemonics) or TLS internals.
const SILENCED: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "want",
    "mio",
];

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in SILENCED {
        // A directive for the same target replaces RUST_LOG's (`hyper=trace` included).
        if let Ok(d) = format!("{target}=off").parse() {
            filter = filter.add_directive(d);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Waits for Ctrl-C or SIGTERM; answers which one, for the SHUTDOWN_SIGNAL event.
async fn shutdown_signal() -> &'static str {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return "SIGINT";
                }
            };
        tokio::select! {
            _ = ctrl_c => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
        "SIGINT"
    }
}

fn main() {
    let args = Args::parse();
    // KDF's command words: `kdfd version`, `kdfd help`.
    match args.inline.as_deref().map(str::trim) {
        Some("version") | Some("--version") => {
            println!("{}", kdfd::version_string());
            return;
        }
        Some("help") => {
            use clap::CommandFactory;
            let _ = Args::command().print_long_help();
            return;
        }
        Some(other) if !other.starts_with('{') => {
            eprintln!("kdfd: the first argument must be a JSON config object, 'version' or 'help' (got '{other}'); see kdfd --help");
            std::process::exit(1);
        }
        _ => {}
    }
    init_logging(args.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kdfd: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    // One clear line, never a panic or a backtrace, whatever RUST_BACKTRACE says.
    if let Err(e) = runtime.block_on(serve(args)) {
        eprintln!("kdfd: {e:#}");
        std::process::exit(1);
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let mut sources = Sources::from_env();
    sources.inline = args.inline;
    sources.conf_file = args.conf;
    sources.coins_file = args.coins;
    let mut config = Config::load(&sources).context("config")?;
    if let Some(ip) = args.rpcip {
        config.rpcip = ip;
    }
    if let Some(port) = args.rpcport {
        config.rpcport = port;
    }
    let ctx = Arc::new(kdfd::ctx::Ctx::open(config).await.context("config")?);
    if !ctx.config.ignored_keys.is_empty() {
        tracing::warn!(target: "kdfd", keys = ?ctx.config.ignored_keys, "config keys kdfd does not use were ignored");
    }
    if !ctx.config.accepted_unused.is_empty() {
        tracing::debug!(target: "kdfd", keys = ?ctx.config.accepted_unused, "config keys accepted and not used (P2P, swaps, the SDK's own)");
    }
    tracing::info!(target: "kdfd",
        gui = %ctx.config.gui,
        coins = ctx.registry.len(),
        refused = ctx.registry.refused_len(),
        coins_source = %ctx.config.coins_source,
        "config loaded"
    );
    // One line per reason, not per coin: a real coins file refuses dozens for the same reason.
    for (reason, tickers) in ctx.registry.refused_by_reason() {
        tracing::info!(target: "kdfd", count = tickers.len(), coins = %tickers.join(","), "coins listed but refused at activation: {reason}");
    }
    for skipped in ctx.registry.skipped() {
        tracing::warn!(target: "kdfd", "coins file entry skipped: {skipped}");
    }
    let addr = SocketAddr::new(ctx.config.rpcip, ctx.config.rpcport);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // KDF's ready line: tools and test harnesses wait for it.
    println!(">>>>>>>>>> DEX stats {bound} DEX stats API enabled at unixtime.{now} <<<<<<<<<");
    println!(
        "kdfd {} listening on http://{bound}",
        kdfd::version_string()
    );
    let signalled = {
        let ctx = ctx.clone();
        async move {
            let name = shutdown_signal().await;
            tracing::info!(target: "kdfd", signal = name, "shutdown signal");
            // Sent before the drain; the streams end after delivering it.
            ctx.events
                .publish("SHUTDOWN_SIGNAL", serde_json::json!(name));
        }
    };
    kdfd::rpc::run(listener, ctx, signalled).await;
    tracing::info!(target: "kdfd", "stopped");
    Ok(())
}
