//! P13 (issue 14): a real payment to the BALANCE SSE event against the real regtest ElectrumX,
//! next to ElectrumX's own notification delay as a minimal raw Electrum client sees it; and a
//! WebSocket batch of `version` items against the same batch over HTTP POST.

use super::p11_events::{quantile, Sse};
use super::p6::Regtest;
use super::p8_hd::v2;
use super::*;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Timed payments, after `WARMUP` untimed ones.
const PAYMENTS: usize = 20;
const WARMUP: usize = 3;
/// Round trips of each kind in the WebSocket/HTTP comparison, after `WARMUP * 10` untimed ones.
const ROUNDS: usize = 200;

/// One node JSON-RPC call (its `result`), as the node wallet's HTTP API takes it.
async fn node_rpc(
    env: &HashMap<String, String>,
    method: &str,
    params: Value,
) -> anyhow::Result<Value> {
    use base64::Engine as _;
    let get = |k: &str| {
        env.get(k)
            .cloned()
            .ok_or_else(|| anyhow!("start.sh printed no {k}"))
    };
    let port: u16 = get("NODE_RPC_PORT")?.parse()?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        get("NODE_RPC_USER")?,
        get("NODE_RPC_PASSWORD")?
    ));
    let path = match env.get("NODE_WALLET").filter(|w| !w.is_empty()) {
        Some(w) => format!("/wallet/{w}"),
        None => "/".into(),
    };
    let body = json!({"jsonrpc": "1.0", "id": 1, "method": method, "params": params}).to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.set_nodelay(true)?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut raw))
        .await
        .map_err(|_| anyhow!("node {method}: no answer within 60 s"))??;
    let text = String::from_utf8_lossy(&raw);
    let (_, json) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("node {method}: no HTTP body in {text}"))?;
    let v: Value = serde_json::from_str(json).with_context(|| format!("node {method}: {json}"))?;
    if !v["error"].is_null() {
        bail!("node {method}: {}", v["error"]);
    }
    Ok(v["result"].clone())
}

/// A minimal Electrum client subscribed to `scripthash`: sends the arrival time of every status
/// notification.
async fn raw_electrum(
    url: &str,
    scripthash: &str,
) -> anyhow::Result<mpsc::UnboundedReceiver<Instant>> {
    let sock = TcpStream::connect(url).await?;
    sock.set_nodelay(true)?;
    let (rd, mut wr) = sock.into_split();
    let hello =
        json!({"jsonrpc": "2.0", "id": 0, "method": "server.version", "params": ["p13", "1.4"]});
    let sub = json!({"jsonrpc": "2.0", "id": 1, "method": "blockchain.scripthash.subscribe",
        "params": [scripthash]});
    wr.write_all(format!("{hello}\n{sub}\n").as_bytes()).await?;
    let mut lines = BufReader::new(rd).lines();
    // The subscription's answer first, so every later status message is a change.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let line = tokio::time::timeout_at(until.into(), lines.next_line())
            .await
            .map_err(|_| anyhow!("ElectrumX did not answer the subscription"))??
            .ok_or_else(|| anyhow!("ElectrumX closed the connection"))?;
        if serde_json::from_str::<Value>(line.trim()).is_ok_and(|v| v["id"] == 1) {
            break;
        }
    }
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // The writer half stays alive as long as the reader runs.
        let _wr = wr;
        while let Ok(Some(line)) = lines.next_line().await {
            let at = Instant::now();
            let is_status = serde_json::from_str::<Value>(line.trim())
                .is_ok_and(|v| v["method"] == "blockchain.scripthash.subscribe");
            if is_status && tx.send(at).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Reads `sse` on its own task: the arrival time and text of every data frame.
fn sse_reader(mut sse: Sse) -> mpsc::UnboundedReceiver<(Instant, String)> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(b) = sse.block(Duration::from_secs(3600)).await {
            if b.starts_with("data: ") && tx.send((Instant::now(), b)).is_err() {
                return;
            }
        }
    });
    rx
}

fn summary(v: &[f64]) -> String {
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms",
        quantile(v, 0.5),
        quantile(v, 0.99),
        quantile(v, 0.0),
        quantile(v, 1.0)
    )
}

async fn payments(bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let scenario = "P13 real payment (node `sendtoaddress`) → BALANCE SSE event, real regtest \
                    ElectrumX (median = p50; ratio column: p99 and ElectrumX's own share)";
    let started = Instant::now();
    let (stack, env) = match Regtest::start(0) {
        Ok(v) => v,
        Err(e) => {
            out.rows.push(Row::not_run(scenario, "reported", "P13", &e));
            return Ok(());
        }
    };
    let stack_secs = started.elapsed().as_secs_f64();
    let url = env
        .get("ELECTRUM_TCP")
        .cloned()
        .ok_or_else(|| anyhow!("start.sh printed no ELECTRUM_TCP"))?;
    // One mature coinbase per payment, so the node wallet never chains unconfirmed change (and
    // never reaches the mempool's chain limit).
    let blocks = (101 + WARMUP + PAYMENTS + 5).to_string();
    let mined = stack
        .cmd("mine.sh")
        .arg(&blocks)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !mined.success() {
        bail!("mine.sh failed");
    }
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regtest-coins.json"),
    )?;
    let fixture: Value = serde_json::from_str(&fixture)?;
    let ltcr = fixture
        .as_array()
        .and_then(|a| a.iter().find(|c| c["coin"] == "LTCR"))
        .cloned()
        .ok_or_else(|| anyhow!("no LTCR entry in the regtest coins fixture"))?;
    let mut conf = base_conf(json!([ltcr]));
    conf["event_streaming_configuration"] = json!({"access_control_allow_origin": "*"});
    let d = start_kdfd(bin, conf)?;
    let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));
    let mut c = Client::connect(d.addr).await?;
    let (s, v) = c
        .post_json(
            &json!({"userpass": USERPASS, "method": "electrum", "coin": "LTCR",
            "servers": [{"url": url}]}),
        )
        .await?;
    let address = v["address"].as_str().unwrap_or_default().to_string();
    if s != 200 || address.is_empty() {
        return Err(fail(anyhow!("electrum LTCR answered {s} {}", short(&v))));
    }
    let sse = Sse::open(d.addr, 1).await?;
    let (s, v) = c
        .post_json(&v2(
            "stream::balance::enable",
            json!({"client_id": 1, "coin": "LTCR"}),
        ))
        .await?;
    if s != 200 {
        return Err(fail(anyhow!(
            "stream::balance::enable answered {s} {}",
            short(&v)
        )));
    }
    let mut events = sse_reader(sse);
    // The wallet's P2PKH scripthash: the output script of a payment to its address.
    let (p2pkh, _) = bob_scripthashes();
    let mut notes = raw_electrum(&url, &p2pkh).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut electrumx, mut kdfd_total, mut kdfd_own, mut rpc) = (vec![], vec![], vec![], vec![]);
    let mut sats = 0i64;
    for k in 0..WARMUP + PAYMENTS {
        sats += 100_000;
        let want = format!(
            "\"spendable\":\"{}\"",
            kdfd::coins::format_amount(sats.into(), 8)
        );
        // ElectrumX polls the mempool every 200 ms: payments sent right after the previous
        // notification would all land at the same phase of that poll; spread them over it.
        tokio::time::sleep(Duration::from_millis((k as u64 * 73) % 250)).await;
        let t0 = Instant::now();
        node_rpc(&env, "sendtoaddress", json!([address, "0.001"])).await?;
        let t_rpc = t0.elapsed();
        let t_note = tokio::time::timeout(Duration::from_secs(10), notes.recv())
            .await
            .map_err(|_| anyhow!("payment {k}: no ElectrumX notification within 10 s"))?
            .ok_or_else(|| anyhow!("the raw Electrum client stopped"))?;
        let t_event = loop {
            let (at, frame) = tokio::time::timeout(Duration::from_secs(10), events.recv())
                .await
                .map_err(|_| fail(anyhow!("payment {k}: no BALANCE event with {want} in 10 s")))?
                .ok_or_else(|| fail(anyhow!("the SSE stream ended")))?;
            if frame.contains("\"BALANCE:LTCR\"") && frame.contains(&want) {
                break at;
            }
        };
        if k >= WARMUP {
            rpc.push(ms(t_rpc));
            electrumx.push(ms(t_note.saturating_duration_since(t0)));
            kdfd_total.push(ms(t_event.saturating_duration_since(t0)));
            // Signed: ElectrumX may notify kdfd's session before the raw client's.
            kdfd_own.push(
                ms(t_event.saturating_duration_since(t0))
                    - ms(t_note.saturating_duration_since(t0)),
            );
        }
    }
    d.stop(Duration::from_secs(10)).await;
    drop(stack);
    let p50 = quantile(&kdfd_total, 0.5);
    out.rows.push(Row {
        scenario: scenario.into(),
        median: fmt_ms(p50),
        min: fmt_ms(quantile(&kdfd_total, 0.0)),
        max: fmt_ms(quantile(&kdfd_total, 1.0)),
        ratio: format!(
            "p99 {}; ElectrumX's notification at p50 {} (p99 {}); kdfd after it: p50 {} (p99 {})",
            fmt_ms(quantile(&kdfd_total, 0.99)),
            fmt_ms(quantile(&electrumx, 0.5)),
            fmt_ms(quantile(&electrumx, 0.99)),
            fmt_ms(quantile(&kdfd_own, 0.5)),
            fmt_ms(quantile(&kdfd_own, 0.99)),
        ),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P13"),
    });
    out.details.push(format!(
        "**P13 payments** `scripts/electrum-regtest/start.sh` (the kit's ElectrumX polls the node's \
         mempool every 200 ms, `ER_POLL_MS`; reply hold 0, `ER_PAD_WAIT_MS=0`), own temp run dir, \
         stack up in {stack_secs:.1} s, then {} blocks so that each payment spends a mature \
         coinbase. kdfd (release) activates LTCR (the regtest fixture) with `electrum` on the \
         stack's ElectrumX; one SSE client (id 1) with BALANCE:LTCR enabled; beside it a raw \
         Electrum client (one TCP connection, `server.version`, `blockchain.scripthash.subscribe` \
         of the wallet's P2PKH scripthash). Each sample is timed from just before the node's \
         `sendtoaddress` (0.001 LTC to the wallet; raw HTTP JSON-RPC from the bench) to the raw \
         client's status notification and to the SSE frame naming the new total balance; both \
         readers run on their own tasks and stamp arrivals. {PAYMENTS} payments after {WARMUP} \
         warm-up ones, each after a pause of (k × 73 ms) mod 250 ms so that they fall at every \
         phase of ElectrumX's 200 ms mempool poll (p99 of 20 samples is their maximum). From \
         `sendtoaddress`: BALANCE event {}; ElectrumX's notification {}; kdfd's own part \
         (event − notification: its notification from the same ElectrumX, one `get_balance` \
         round trip, the SSE write) {}; `sendtoaddress` itself answered in {}.",
        101 + WARMUP + PAYMENTS + 5,
        summary(&kdfd_total),
        summary(&electrumx),
        summary(&kdfd_own),
        summary(&rpc),
    ));
    Ok(())
}

async fn ws_vs_http(bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let d = start_kdfd(bin, base_conf(test_coins(1)))?;
    let batch = Value::Array((0..20).map(|_| json!({"method": "version"})).collect());
    let text = batch.to_string();
    let ok = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.len() == 20 && a.iter().all(|x| x["result"].is_string()))
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", d.addr)).await?;
    let mut c = Client::connect(d.addr).await?;
    let (mut t_ws, mut t_http) = (Vec::new(), Vec::new());
    // Alternating, so both see the same machine load.
    for k in 0..WARMUP * 10 + ROUNDS {
        let t = Instant::now();
        ws.send(tokio_tungstenite::tungstenite::Message::text(text.clone()))
            .await?;
        let answer = loop {
            let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .map_err(|_| anyhow!("no WebSocket answer within 10 s"))?
                .ok_or_else(|| anyhow!("WebSocket closed"))??;
            if let tokio_tungstenite::tungstenite::Message::Text(s) = m {
                break s;
            }
        };
        let took = t.elapsed();
        let v: Value = serde_json::from_str(answer.as_str())?;
        if !ok(&v) {
            bail!("WebSocket batch answered {}", short(&v));
        }
        let (s, v, took_http) = post_timed(&mut c, &batch, Duration::from_secs(10)).await?;
        if s != 200 || !ok(&v) {
            bail!("HTTP batch answered {s} {}", short(&v));
        }
        if k >= WARMUP * 10 {
            t_ws.push(ms(took));
            t_http.push(ms(took_http));
        }
    }
    d.stop(Duration::from_secs(10)).await;
    let (w50, h50) = (quantile(&t_ws, 0.5), quantile(&t_http, 0.5));
    out.rows.push(Row {
        scenario: "P13 batch of 20 `version` items over one WebSocket (`/ws`) vs the same batch \
                   as an HTTP POST on a keep-alive connection (median = p50)"
            .into(),
        median: format!("{w50:.3} ms"),
        min: format!("{:.3} ms", quantile(&t_ws, 0.0)),
        max: format!("{:.3} ms", quantile(&t_ws, 1.0)),
        ratio: format!(
            "{:.2}× (HTTP p50 {h50:.3} ms); p99 WebSocket {:.3} ms, HTTP {:.3} ms",
            w50 / h50,
            quantile(&t_ws, 0.99),
            quantile(&t_http, 0.99)
        ),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P13"),
    });
    out.details.push(format!(
        "**P13 WebSocket** one kdfd, one WebSocket and one keep-alive HTTP/1 connection (the \
         crate's client); the same 20-item `version` batch text sent alternately on each, {ROUNDS} \
         round trips each after {} warm-up pairs, every answer checked (20 slots with a \
         `result`). Round trip, send to the parsed answer: WebSocket p50 {w50:.3} ms, p99 {:.3} \
         ms; HTTP p50 {h50:.3} ms, p99 {:.3} ms.",
        WARMUP * 10,
        quantile(&t_ws, 0.99),
        quantile(&t_http, 0.99)
    ));
    Ok(())
}

pub(crate) async fn p13(bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    ws_vs_http(bin, out).await?;
    payments(bin, out).await
}
