//! Fake Electrum servers for the load, activation and batch checks.

use super::{FAKE_P2PKH_SATS, FAKE_P2PK_SATS};
use crate::electrum_fake::FakeElectrum;
use crate::{bob_scripthashes, USERPASS};
use anyhow::{anyhow, bail, Context};
use kdfd::client::Client;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// N fake Electrum servers (plain TCP on 127.0.0.1), one per coin, holding bob's balance.
pub struct FakeFleet {
    /// The servers, server `i` for coin `i`.
    pub servers: Vec<FakeElectrum>,
}

impl FakeFleet {
    /// Starts `n` servers with reply latency `latency` and the balance [`FAKE_BALANCE`](super::FAKE_BALANCE).
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
