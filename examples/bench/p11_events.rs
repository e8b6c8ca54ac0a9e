//! P11 (issue 14): Electrum status notification → BALANCE SSE event latency with 100 active
//! coins; 100 SSE clients × 100 coins with payments flowing (kdfd's RSS and CPU).

use super::p1::balance_string;
use super::p3::cpu_secs;
use super::p8_hd::v2;
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw SSE reader (`GET /event-stream?id=N`, chunked body decoded by hand).
pub(crate) struct Sse {
    sock: TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    events: usize,
}

impl Sse {
    pub(crate) async fn open(addr: std::net::SocketAddr, id: u64) -> anyhow::Result<Sse> {
        let mut sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        let req = format!("GET /event-stream?id={id} HTTP/1.1\r\nHost: bench\r\n\r\n");
        sock.write_all(req.as_bytes()).await?;
        let mut s = Sse {
            sock,
            raw: Vec::new(),
            body: Vec::new(),
            events: 0,
        };
        let end = loop {
            if let Some(p) = s.raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            s.fill(Duration::from_secs(10)).await?;
        };
        if !s.raw.starts_with(b"HTTP/1.1 200") {
            bail!("SSE answered {}", String::from_utf8_lossy(&s.raw[..end]));
        }
        s.raw.drain(..end);
        Ok(s)
    }

    async fn fill(&mut self, within: Duration) -> anyhow::Result<()> {
        let mut buf = [0u8; 16384];
        let n = tokio::time::timeout(within, self.sock.read(&mut buf))
            .await
            .map_err(|_| anyhow!("no SSE bytes within {within:?}"))??;
        if n == 0 {
            bail!("SSE stream closed");
        }
        self.raw.extend_from_slice(&buf[..n]);
        Ok(())
    }

    /// Moves complete chunks from `raw` to `body`.
    fn dechunk(&mut self) -> anyhow::Result<()> {
        while let Some(p) = self.raw.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..p])?.trim(), 16)?;
            if self.raw.len() < p + 2 + size + 2 {
                break;
            }
            self.body.extend_from_slice(&self.raw[p + 2..p + 2 + size]);
            self.raw.drain(..p + 2 + size + 2);
        }
        Ok(())
    }

    /// The next complete `\n\n` block, reading as needed.
    pub(crate) async fn block(&mut self, within: Duration) -> anyhow::Result<String> {
        loop {
            self.dechunk()?;
            if let Some(p) = self.body.windows(2).position(|w| w == b"\n\n") {
                let b: Vec<u8> = self.body.drain(..p + 2).collect();
                return Ok(String::from_utf8_lossy(&b).into_owned());
            }
            self.fill(within).await?;
        }
    }

    /// Reads until a data frame containing every `needle` arrives.
    async fn wait_for(&mut self, needles: &[&str], within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let b = self.block(left.max(Duration::from_millis(1))).await?;
            if b.starts_with("data: ") {
                self.events += 1;
                if needles.iter().all(|n| b.contains(n)) {
                    return Ok(());
                }
            }
        }
    }

    /// Reads (and counts) whatever arrives until `stop` is set.
    async fn drain(mut self, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> usize {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match self.block(Duration::from_millis(200)).await {
                Ok(b) if b.starts_with("data: ") => self.events += 1,
                Ok(_) => {}
                Err(e) if e.to_string().contains("within") => {}
                Err(_) => break,
            }
        }
        self.events
    }
}

/// Enables BALANCE events of every ticker for `client` (one batch).
async fn enable_all(c: &mut Client, client: u64, tickers: &[String]) -> anyhow::Result<()> {
    let batch = Value::Array(
        tickers
            .iter()
            .map(|t| {
                v2(
                    "stream::balance::enable",
                    json!({"client_id": client, "coin": t}),
                )
            })
            .collect(),
    );
    let (s, v, _) = post_timed(c, &batch, Duration::from_secs(30)).await?;
    check_all_slots(s, &v, tickers.len(), |_, x| {
        x["result"]["streamer_id"].is_string()
    })
}

pub(crate) fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    if s.is_empty() {
        return f64::NAN;
    }
    s[((s.len() - 1) as f64 * q).round() as usize]
}

pub(crate) async fn p11(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let n = args.coins;
    // No added latency: the goal is kdfd's own path (the BALANCE streamer re-reads the balance
    // upstream after a notification, so any server latency would be added as is).
    let fleet = FakeFleet::start(n, Duration::ZERO);
    let mut conf = base_conf(test_coins(n));
    conf["event_streaming_configuration"] = json!({"access_control_allow_origin": "*"});
    let d = start_kdfd(bin, conf)?;
    let tickers: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
    let urls: Vec<String> = fleet.servers.iter().map(FakeElectrum::url).collect();
    activate_batch(d.addr, &tickers, &urls).await?;
    let mut c = Client::connect(d.addr).await?;
    let mut sse = Sse::open(d.addr, 1).await?;
    enable_all(&mut c, 1, &tickers).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // first reads of the streamers
    let (p2pkh, _) = bob_scripthashes();
    let samples = args.reps * n;
    let mut lat = Vec::with_capacity(samples);
    let mut sats = 300_000_000i64;
    for k in 0..samples + 20 {
        let i = k % n;
        sats += 1;
        let want = balance_string(sats);
        let t = Instant::now();
        fleet.servers[i].set_balance(&p2pkh, sats, 0);
        let tag = format!("\"BALANCE:T{i}\"");
        let bal = format!("\"spendable\":\"{want}\"");
        sse.wait_for(&[&tag, &bal], Duration::from_secs(5))
            .await
            .with_context(|| format!("BALANCE event of T{i}"))?;
        if k >= 20 {
            lat.push(ms(t.elapsed()));
        }
    }
    let (p50, p99, pmax) = (
        quantile(&lat, 0.5),
        quantile(&lat, 0.99),
        quantile(&lat, 1.0),
    );
    let pmin = quantile(&lat, 0.0);
    out.rows.push(Row {
        scenario: format!(
            "P11 Electrum status notification → BALANCE SSE event read by a client, {n} active coins (median = p50; ratio column: p99)"
        ),
        median: format!("{p50:.2} ms"),
        min: format!("{pmin:.2} ms"),
        max: format!("{pmax:.2} ms"),
        ratio: format!("p99 {p99:.2} ms"),
        goal: "p99 ≤ 5 ms".into(),
        met: met(p99 <= 5.0),
        cmd: cmd("P11"),
    });
    drop(sse);

    // 100 clients, each listening to every coin, while payments flow.
    let clients = 100u64;
    let mut readers = Vec::new();
    for id in 100..100 + clients {
        let s = Sse::open(d.addr, id).await?;
        enable_all(&mut c, id, &tickers).await?;
        readers.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = d.rss_kb().unwrap_or(0) as f64;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tasks: Vec<_> = readers
        .into_iter()
        .map(|s| tokio::spawn(s.drain(stop.clone())))
        .collect();
    let secs = 5.0;
    let rate = 100.0; // payments per second, round-robin over the coins
    let cpu0 = cpu_secs(d.pid());
    let t0 = Instant::now();
    let mut paid = 0usize;
    let mut rss_max = rss_before;
    while t0.elapsed().as_secs_f64() < secs {
        sats += 1;
        fleet.servers[paid % n].set_balance(&p2pkh, sats, 0);
        paid += 1;
        if paid.is_multiple_of(50) {
            rss_max = rss_max.max(d.rss_kb().unwrap_or(0) as f64);
        }
        let next = Duration::from_secs_f64(paid as f64 / rate);
        tokio::time::sleep(next.saturating_sub(t0.elapsed())).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs(d.pid()) - cpu0;
    let rss_after = d.rss_kb().unwrap_or(0) as f64;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut delivered = 0usize;
    for t in tasks {
        delivered += t.await.unwrap_or(0);
    }
    d.stop(Duration::from_secs(10)).await;
    let expected = paid * clients as usize;
    out.rows.push(Row {
        scenario: format!(
            "P11 {clients} SSE clients × {n} coins, {rate:.0} payments/s for {secs:.0} s: kdfd RSS (peak) and CPU"
        ),
        median: format!("{:.1} MB", rss_max / 1024.0),
        min: "—".into(),
        max: "—".into(),
        ratio: format!(
            "one run; RSS before: {:.1} MB; CPU {:.2} cores; {delivered} of {expected} events delivered",
            rss_before / 1024.0,
            cpu / wall
        ),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P11"),
    });
    out.details.push(format!(
        "**P11** {n} coins T0..T{} each on its own fake server with no added latency (the BALANCE \
         streamer reads the new balance upstream after the notification, so a server's latency \
         would add to the figure as is); one SSE client with BALANCE enabled for every coin. A \
         sample is timed from just before the fake server's `set_balance` (which writes the \
         `blockchain.scripthash.subscribe` notification to kdfd's connection) to the decoded SSE \
         frame naming the coin and the new balance; {} samples after 20 warm-up ones, p50 {p50:.2} \
         ms, p99 {p99:.2} ms, max {pmax:.2} ms. Fan-out: {clients} SSE clients (ids 100..{}) each \
         enabled for all {n} coins, readers drain on the bench's runtime; {paid} payments over \
         {wall:.1} s; kdfd RSS before {:.0} kB, peak {:.0} kB, after {:.0} kB; kdfd CPU {cpu:.2} \
         s ({:.2} cores); {delivered} events read of {expected} ({clients} per payment).",
        n - 1,
        lat.len(),
        99 + clients,
        rss_before,
        rss_max,
        rss_after,
        cpu / wall
    ));
    Ok(())
}
