//! P14 (issue 12), real chain: kdfd's history sync of 1 000 transactions on one address against
//! the regtest ElectrumX, next to a minimal client that fetches the same data in arrays of the
//! same size. Both go through a counting proxy in the bench, so their lines are counted alike.

use super::p14_reference::{reference, Proxy, Tally, CHUNK};
use super::p6::Regtest;
use super::p8_hd::v2;
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TXS: usize = 1000;
/// The node refuses mempool chains over 25: a block after this many sends.
const SENDS_PER_BLOCK: usize = 24;
const POLL: Duration = Duration::from_millis(5);

/// One JSON-RPC body (an object or an array) to the node wallet; the parsed answer.
async fn node(env: &HashMap<String, String>, body: &Value) -> anyhow::Result<Value> {
    use base64::Engine as _;
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let port: u16 = get("NODE_RPC_PORT").parse().context("NODE_RPC_PORT")?;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        get("NODE_RPC_USER"),
        get("NODE_RPC_PASSWORD")
    ));
    let path = match get("NODE_WALLET") {
        w if w.is_empty() => "/".to_string(),
        w => format!("/wallet/{w}"),
    };
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    let head = format!(
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    s.write_all(body.as_bytes()).await?;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), s.read_to_end(&mut answer))
        .await
        .map_err(|_| anyhow!("the node did not answer within 120 s"))??;
    let text = String::from_utf8_lossy(&answer);
    let json = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(json).with_context(|| format!("node answered {}", tail(&text, 5)))
}

/// `n` payments of 0.001 to `address`, sent in arrays of `sendtoaddress`, a block after each
/// array; the last block is mined with `mine.sh`, which waits for ElectrumX to index it.
async fn fund(stack: &Regtest, env: &HashMap<String, String>, address: &str) -> anyhow::Result<()> {
    let miner = env.get("MINER_ADDRESS").cloned().unwrap_or_default();
    let mut sent = 0;
    while sent < TXS {
        let batch: Vec<Value> = (sent..TXS.min(sent + SENDS_PER_BLOCK))
            .map(|i| {
                json!({"jsonrpc": "1.0", "id": i, "method": "sendtoaddress",
                    "params": [address, 0.001]})
            })
            .collect();
        let answers = node(env, &Value::Array(batch)).await?;
        let answers = answers
            .as_array()
            .ok_or_else(|| anyhow!("sendtoaddress array answered {}", short(&answers)))?;
        for a in answers {
            if a["result"].as_str().is_none() {
                bail!("sendtoaddress answered {a}");
            }
            sent += 1;
        }
        let mine =
            json!({"jsonrpc": "1.0", "id": 0, "method": "generatetoaddress", "params": [1, miner]});
        if !node(env, &mine).await?["error"].is_null() {
            bail!("generatetoaddress failed");
        }
    }
    let ok = stack
        .cmd("mine.sh")
        .arg("1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !ok.success() {
        bail!("mine.sh 1 failed");
    }
    Ok(())
}

/// One kdfd: activation with `tx_history: true` to `Finished` with every transaction.
/// Returns the time taken and the instant the finished page arrived.
async fn kdfd_sync(bin: &Path, ltcr: &Value, url: &str) -> anyhow::Result<(Duration, Instant)> {
    let db = tempfile::tempdir()?;
    let mut conf = base_conf(json!([ltcr]));
    conf["dbdir"] = json!(db.path().to_string_lossy());
    // The kit's ElectrumX runs without cost limits, and this row compares transports: pacing off
    // (its cost is `tests/electrum_pacing.rs`'s to measure).
    conf["electrum_cost_budget"] = json!(0);
    let d = start_kdfd(bin, conf)?;
    let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));
    let mut c = Client::connect(d.addr).await?;
    let t0 = Instant::now();
    let act = json!({"userpass": USERPASS, "method": "electrum", "coin": "LTCR",
        "servers": [{"url": url}], "tx_history": true});
    let (s, v, _) = post_timed(&mut c, &act, Duration::from_secs(60)).await?;
    if s != 200 || v["result"] != "success" {
        return Err(fail(anyhow!("LTCR activation answered {s} {}", short(&v))));
    }
    let page = v2("my_tx_history", json!({"coin": "LTCR", "limit": 1}));
    loop {
        let (s, v, _) = post_timed(&mut c, &page, Duration::from_secs(60)).await?;
        let r = &v["result"];
        if s == 200 && r["sync_status"]["state"] == "Finished" && r["total"] == TXS {
            break;
        }
        if t0.elapsed() > Duration::from_secs(600) {
            return Err(fail(anyhow!(
                "no finished sync in 600 s: {s} {}",
                short(&v)
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    let (took, end) = (t0.elapsed(), Instant::now());
    d.stop(Duration::from_secs(10)).await;
    Ok((took, end))
}

pub(crate) async fn sync_real(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let scenario = format!(
        "P14 history sync of {TXS} transactions on one address, real regtest ElectrumX: kdfd \
         (`electrum` with `tx_history: true` → `Finished`) vs a minimal client fetching the same \
         data in arrays of the same size (pacing off: `electrum_cost_budget` 0)"
    );
    let started = Instant::now();
    let (stack, env) = match Regtest::start(0) {
        Ok(v) => v,
        Err(e) => {
            out.rows.push(Row::not_run(scenario, "≤ 1.3×", "P14", &e));
            return Ok(());
        }
    };
    let stack_secs = started.elapsed().as_secs_f64();
    let electrumx = env
        .get("ELECTRUM_TCP")
        .cloned()
        .ok_or_else(|| anyhow!("start.sh printed no ELECTRUM_TCP"))?;
    let mined = stack
        .cmd("mine.sh")
        .arg("101")
        .stdout(Stdio::null())
        .status()?;
    if !mined.success() {
        bail!("mine.sh 101 failed");
    }
    let key = kdfd::crypto::KeyPair::from_passphrase(kdfd_testkit::PASSPHRASE)
        .map_err(|e| anyhow!("key: {e:?}"))?;
    let address = kdfd::crypto::p2pkh_address(&[111], &key.hash160());
    let t = Instant::now();
    fund(&stack, &env, &address).await?;
    let fund_secs = t.elapsed().as_secs_f64();
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regtest-coins.json"),
    )?;
    let ltcr = serde_json::from_str::<Value>(&fixture)?
        .as_array()
        .and_then(|a| a.iter().find(|c| c["coin"] == "LTCR").cloned())
        .ok_or_else(|| anyhow!("no LTCR entry in the regtest coins fixture"))?;
    let (p2pkh, _) = bob_scripthashes();
    let proxy = Proxy::start(electrumx).await?;
    // A first reference fetch warms ElectrumX's caches for both; not timed.
    let want = reference(&proxy.url, &p2pkh).await?;
    proxy.take();
    let (mut k_ms, mut r_ms, mut k_tally, mut r_tally) = (vec![], vec![], None, None);
    // From the first line to the last sync line, and from that line to the end.
    let (mut k_span, mut k_tail, mut r_span, mut r_tail) = (vec![], vec![], vec![], vec![]);
    let split = |t: &Tally, end: Instant, span: &mut Vec<f64>, tail: &mut Vec<f64>| {
        if let (Some(a), Some(b)) = (t.first_at, t.last_work_at) {
            span.push(ms(b - a));
            tail.push(ms(end.saturating_duration_since(b)));
        }
    };
    // Twice the usual reps: the pairs share the 2 cores with the node and ElectrumX.
    for _ in 0..2 * args.reps {
        let (t, end) = kdfd_sync(bin, &ltcr, &proxy.url).await?;
        k_ms.push(ms(t));
        let tally = proxy.take();
        split(&tally, end, &mut k_span, &mut k_tail);
        k_tally = Some(tally);
        let t = Instant::now();
        let got = reference(&proxy.url, &p2pkh).await?;
        r_ms.push(ms(t.elapsed()));
        let tally = proxy.take();
        split(&tally, Instant::now(), &mut r_span, &mut r_tail);
        r_tally = Some(tally);
        if got != want {
            bail!("the reference fetched {got} transactions, {want} the first time");
        }
    }
    drop(proxy);
    drop(stack);
    let (k, r) = (k_tally.unwrap_or_default(), r_tally.unwrap_or_default());
    let (km, kmin, kmax) = median_min_max(&k_ms);
    let (rm, _, _) = median_min_max(&r_ms);
    let ratio = km / rm;
    let pairs: Vec<f64> = k_ms.iter().zip(&r_ms).map(|(k, r)| k / r).collect();
    let (pm, pmin, pmax) = median_min_max(&pairs);
    out.rows.push(Row {
        scenario,
        median: fmt_ms(km),
        min: fmt_ms(kmin),
        max: fmt_ms(kmax),
        ratio: format!(
            "{ratio:.2}× (reference: {}); lines kdfd {} ({} without its page polls' tip reads), \
             reference {}",
            fmt_ms(rm),
            k.lines,
            k.lines - k.tip_only_lines,
            r.lines
        ),
        goal: "≤ 1.3×".into(),
        met: met(ratio <= 1.3),
        cmd: cmd("P14"),
    });
    out.details.push(format!(
        "**P14 real sync** `scripts/electrum-regtest/start.sh` (reply hold 0, `ER_PAD_WAIT_MS=0`; \
         the kit's ElectrumX has its cost limits off), own temp run dir, stack up in \
         {stack_secs:.1} s; 101 blocks, then {TXS} payments of 0.001 LTC to bob's LTCR address \
         sent as JSON-RPC arrays of {SENDS_PER_BLOCK} `sendtoaddress` straight to litecoind, a \
         block after each array (the node's mempool chain limit), in {fund_secs:.1} s. kdfd and \
         the reference both reach ElectrumX through a TCP proxy in the bench that counts the lines \
         each client sends (a JSON-RPC array is one line). Each kdfd run is a new kdfd with a new \
         `dbdir`, timed from the `electrum` request (LTCR fixture, `tx_history: true`) until a v2 \
         `my_tx_history` (limit 1, polled every {} ms) shows `Finished` with {TXS} entries (the \
         polls read the tip kdfd already holds: they send nothing upstream). The reference is \
         plain tokio TCP, newline-delimited JSON-RPC, one array at a time: `server.version`, \
         `get_history`, then kdfd's plan (newest first, chunks of {CHUNK}: the chunk's \
         `blockchain.transaction.get` array, one for the inputs' transactions the chunk lacks \
         (fees), one `blockchain.block.header` array for new heights), {want} transactions in \
         all. kdfd sends the same arrays but keeps two chunks in flight (a chunk's headers beside \
         its transactions, the next chunk's transactions while this one's inputs come back); \
         kdfd's run also includes its activation (balance, subscriptions). One untimed reference \
         fetch first warms ElectrumX, then kdfd and the reference alternate ({} pairs). kdfd, \
         ms: {}; reference, ms: {}; kdfd/reference per pair: median {pm:.2}×, min {pmin:.2}×, \
         max {pmax:.2}×. Medians from the first line each sent to its last sync line (not a tip \
         read): kdfd {:.0} ms, reference {:.0} ms; from that line to the end (the last answer, \
         and for kdfd the last chunk's derive and commit and the poll that saw `Finished`): kdfd \
         {:.0} ms, reference {:.0} ms. Requests of the last kdfd run ({} lines, {} of them only a \
         tip read): {}; of the last reference run ({} lines): {}. Pacing is off here (this row \
         compares transports); pacing's cost is measured by `tests/electrum_pacing.rs`.",
        POLL.as_millis(),
        k_ms.len(),
        list_ms(&k_ms),
        list_ms(&r_ms),
        median_min_max(&k_span).0,
        median_min_max(&r_span).0,
        median_min_max(&k_tail).0,
        median_min_max(&r_tail).0,
        k.lines,
        k.tip_only_lines,
        k.summary(),
        r.lines,
        r.summary(),
    ));
    Ok(())
}
