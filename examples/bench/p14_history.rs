//! P14 (issue 12): `my_tx_history` from the database: the first page after a restart with a
//! slow server, and a warm batch over 20 coins. The real-chain sync row is `p14_sync_real`.

use super::p8_hd::v2;
use super::*;
use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Txid};
use kdfd_testkit::history_common::{bob_script, header, hex, other_script, raw, tx, BLOCK_TIME};
use std::collections::BTreeMap;

/// Stored transactions of the restart row.
const RESTART_TXS: usize = 1000;
/// Coins, stored transactions per coin and timed batches of the batch row.
const COINS: usize = 20;
const COIN_TXS: usize = 100;
const BATCHES: usize = 50;

/// Plants `n` payments to bob on `fake` (heights 1..=100, headers for each), each spending one
/// output of a common funding tx, so a sync fetches `n` + one funding tx per chunk. `seed`
/// makes the txids of different servers differ.
pub(crate) fn plant(fake: &FakeElectrum, n: usize, seed: u8) {
    let (p2pkh, _) = bob_scripthashes();
    let outs: Vec<(u64, ScriptBuf)> = (0..n).map(|_| (100_000_000, other_script())).collect();
    let funding = tx(&[(Txid::from_byte_array([seed; 32]), 0)], &outs);
    let fid = funding.compute_txid();
    fake.add_tx(&fid.to_string(), &hex(&raw(&funding)));
    let mut items = Vec::with_capacity(n);
    for i in 0..n {
        let t = tx(&[(fid, i as u32)], &[(99_999_000, bob_script())]);
        let id = t.compute_txid().to_string();
        fake.add_tx(&id, &hex(&raw(&t)));
        items.push((id, (i % 100 + 1) as i64));
    }
    for h in 1..=100u64 {
        fake.set_header(h, &header(BLOCK_TIME + h as u32));
    }
    let refs: Vec<(&str, i64)> = items.iter().map(|(id, h)| (id.as_str(), *h)).collect();
    fake.set_history(&p2pkh, &refs);
}

fn history_activation(ticker: &str, url: &str) -> Value {
    let mut v = activation_item(ticker, url);
    v["tx_history"] = json!(true);
    v
}

fn page_req(ticker: &str, limit: usize) -> Value {
    v2("my_tx_history", json!({"coin": ticker, "limit": limit}))
}

/// A page answer holding `limit` entries of `total`.
fn page_ok(v: &Value, limit: usize, total: usize) -> bool {
    v["result"]["total"] == total
        && v["result"]["transactions"]
            .as_array()
            .is_some_and(|t| t.len() == limit.min(total))
}

/// Polls (every 20 ms, up to 120 s) until every coin's history is `Finished` with `total` entries.
async fn wait_synced(c: &mut Client, tickers: &[String], total: usize) -> anyhow::Result<()> {
    let req = Value::Array(tickers.iter().map(|t| page_req(t, 1)).collect());
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let (s, v, _) = post_timed(c, &req, Duration::from_secs(60)).await?;
        let done = v.as_array().is_some_and(|a| {
            a.len() == tickers.len()
                && a.iter().all(|x| {
                    x["result"]["total"] == total
                        && x["result"]["sync_status"]["state"] == "Finished"
                })
        });
        if s == 200 && done {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("history not synced after 120 s: {s} {}", short(&v));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn conf_in(coins: Value, db: &Path) -> Value {
    let mut conf = base_conf(coins);
    conf["dbdir"] = json!(db.to_string_lossy());
    conf
}

/// The `q` quantile by nearest rank (q = 1 is the maximum, q = 0 the minimum).
pub(crate) fn quantile(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n => s[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

/// The requests `fakes` received since `from` (one start index per server), counted by method.
fn methods_since(fakes: &[FakeElectrum], from: &[usize], into: &mut BTreeMap<String, usize>) {
    for (f, n0) in fakes.iter().zip(from) {
        for m in f.methods().into_iter().skip(*n0) {
            *into.entry(m).or_default() += 1;
        }
    }
}

fn method_list(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, n)| format!("`{k}` × {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn p50_p99(v: &[f64]) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms",
        quantile(v, 0.5),
        quantile(v, 0.99)
    )
}

/// Row 1: sync RICK once at no latency, then restart on the same dbdir with the server at
/// `latency_ms` and time the first page after each activation.
async fn first_page_after_restart(
    args: &Args,
    bin: &Path,
    out: &mut Section,
) -> anyhow::Result<()> {
    let fake = FakeElectrum::start_tcp();
    plant(&fake, RESTART_TXS, 1);
    let db = tempfile::tempdir()?;
    let conf = conf_in(kdfd_testkit::shipped_coins(), db.path());
    let rick = vec!["RICK".to_string()];
    let d = start_kdfd(bin, conf.clone())?;
    let mut c = Client::connect(d.addr).await?;
    let t = Instant::now();
    let (s, v, _) = post_timed(
        &mut c,
        &history_activation("RICK", &fake.url()),
        Duration::from_secs(30),
    )
    .await?;
    if s != 200 || v["result"] != "success" {
        bail!("RICK activation answered {s} {}", short(&v));
    }
    wait_synced(&mut c, &rick, RESTART_TXS).await?;
    let first_sync = ms(t.elapsed());
    d.stop(Duration::from_secs(10)).await;

    fake.set_latency(Duration::from_millis(args.latency_ms));
    // Half the restarts ask for 10 entries first, half for 100, so each figure is a first page.
    let restarts = 4 * args.reps;
    let (mut p10, mut p100, mut lines, mut states) = (vec![], vec![], vec![], vec![]);
    let mut during = BTreeMap::new();
    for k in 0..restarts {
        let d = start_kdfd(bin, conf.clone())?;
        let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));
        let mut c = Client::connect(d.addr).await?;
        let (s, v, _) = post_timed(
            &mut c,
            &history_activation("RICK", &fake.url()),
            Duration::from_secs(30),
        )
        .await?;
        if s != 200 || v["result"] != "success" {
            return Err(fail(anyhow!("RICK activation answered {s} {}", short(&v))));
        }
        let limit = if k % 2 == 0 { 10 } else { 100 };
        let (l0, m0) = (fake.lines_received(), fake.methods().len());
        let (s, v, t) =
            post_timed(&mut c, &page_req("RICK", limit), Duration::from_secs(30)).await?;
        lines.push((fake.lines_received() - l0) as f64);
        methods_since(std::slice::from_ref(&fake), &[m0], &mut during);
        if s != 200 || !page_ok(&v, limit, RESTART_TXS) {
            return Err(fail(anyhow!(
                "first page after a restart: {s} {}",
                short(&v)
            )));
        }
        states.push(
            v["result"]["sync_status"]["state"]
                .as_str()
                .unwrap_or("?")
                .to_string(),
        );
        if limit == 10 {
            p10.push(ms(t));
        } else {
            p100.push(ms(t));
        }
        d.stop(Duration::from_secs(10)).await;
    }
    for (limit, v) in [(10, &p10), (100, &p100)] {
        let p50 = quantile(v, 0.5);
        let p99 = quantile(v, 0.99);
        out.rows.push(Row {
            scenario: format!(
                "P14 first v2 `my_tx_history` (limit {limit}) after a restart, {RESTART_TXS} \
                 stored transactions, server at {} ms (median = p50; ratio column: p99)",
                args.latency_ms
            ),
            median: fmt_ms(p50),
            min: fmt_ms(quantile(v, 0.0)),
            max: fmt_ms(quantile(v, 1.0)),
            ratio: format!("p99 {}", fmt_ms(p99)),
            goal: "≤ 5 ms".into(),
            met: met(p99 <= 5.0),
            cmd: cmd("P14"),
        });
    }
    let (lm, _, lmax) = median_min_max(&lines);
    let in_progress = states.iter().filter(|s| *s != "Finished").count();
    out.details.push(format!(
        "**P14 restart** RICK (shipped entry) with `tx_history: true` on one fake server holding \
         {RESTART_TXS} payments to bob (heights 1..=100, one shared funding tx); first sync at no \
         latency took {first_sync:.0} ms (activation to `Finished`, polled every 20 ms). Then \
         {restarts} restarts on the same `dbdir`, the server at {} ms: each a new kdfd, RICK \
         activated again (not timed), then one v2 `my_tx_history` timed from the request to the \
         parsed answer (limit 10 on even restarts, 100 on odd ones, so each is the first page; \
         every answer holds `total` {RESTART_TXS} and the page). Limit 10, ms: {} ({}); limit \
         100, ms: {} ({}). Lines the server received during the timed request: median {lm:.0}, \
         max {lmax:.0}; requests among them, all restarts: {}; the answer's `sync_status` was \
         not yet `Finished` in {in_progress} of {restarts} (the restart's re-sync runs beside \
         it).",
        args.latency_ms,
        list_ms(&p10),
        p50_p99(&p10),
        list_ms(&p100),
        p50_p99(&p100),
        method_list(&during),
    ));
    Ok(())
}

/// Timed batches of one `my_tx_history` item (limit 10) per coin: (ms, lines per batch).
async fn timed_batches(
    c: &mut Client,
    fleet: &FakeFleet,
    tickers: &[String],
    during: &mut BTreeMap<String, usize>,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let req = Value::Array(tickers.iter().map(|t| page_req(t, 10)).collect());
    let (mut times, mut lines) = (vec![], vec![]);
    for k in 0..5 + BATCHES {
        let l0 = fleet.lines_received();
        let m0: Vec<usize> = fleet.servers.iter().map(|f| f.methods().len()).collect();
        let (s, v, t) = post_timed(c, &req, Duration::from_secs(60)).await?;
        check_all_slots(s, &v, tickers.len(), |_, x| page_ok(x, 10, COIN_TXS))
            .context("P14 history batch")?;
        if k >= 5 {
            times.push(ms(t));
            lines.push((fleet.lines_received() - l0) as f64);
            methods_since(&fleet.servers, &m0, during);
        }
    }
    Ok((times, lines))
}

/// Row 2: 20 coins with history, one batch of a page per coin, warm.
async fn batch_over_coins(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let fleet = FakeFleet::start(COINS, Duration::from_millis(args.latency_ms));
    for (i, s) in fleet.servers.iter().enumerate() {
        plant(s, COIN_TXS, 10 + i as u8);
    }
    let db = tempfile::tempdir()?;
    let d = start_kdfd(bin, conf_in(test_coins(COINS), db.path()))?;
    let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));
    let tickers: Vec<String> = (0..COINS).map(|i| format!("T{i}")).collect();
    let mut c = Client::connect(d.addr).await?;
    let acts = Value::Array(
        tickers
            .iter()
            .zip(&fleet.servers)
            .map(|(t, s)| history_activation(t, &s.url()))
            .collect(),
    );
    let (s, v, _) = post_timed(&mut c, &acts, Duration::from_secs(60)).await?;
    check_all_slots(s, &v, COINS, |_, x| x["result"] == "success").map_err(fail)?;
    wait_synced(&mut c, &tickers, COIN_TXS)
        .await
        .map_err(fail)?;
    let mut during = BTreeMap::new();
    let (slow, slow_lines) = timed_batches(&mut c, &fleet, &tickers, &mut during)
        .await
        .map_err(fail)?;
    for s in &fleet.servers {
        s.set_latency(Duration::ZERO);
    }
    let (fast, fast_lines) = timed_batches(&mut c, &fleet, &tickers, &mut BTreeMap::new())
        .await
        .map_err(fail)?;
    d.stop(Duration::from_secs(10)).await;
    let p99 = quantile(&slow, 0.99);
    out.rows.push(Row {
        scenario: format!(
            "P14 batch of {COINS} v2 `my_tx_history` items (one per coin, limit 10), {COIN_TXS} \
             stored transactions each, warm, {COINS} servers at {} ms (median = p50; ratio \
             column: p99)",
            args.latency_ms
        ),
        median: fmt_ms(quantile(&slow, 0.5)),
        min: fmt_ms(quantile(&slow, 0.0)),
        max: fmt_ms(quantile(&slow, 1.0)),
        ratio: format!(
            "p99 {}; servers at 0 ms: p50 {}",
            fmt_ms(p99),
            fmt_ms(quantile(&fast, 0.5))
        ),
        goal: "≤ 10 ms".into(),
        met: met(p99 <= 10.0),
        cmd: cmd("P14"),
    });
    let (sl, _, slmax) = median_min_max(&slow_lines);
    let (fl, _, _) = median_min_max(&fast_lines);
    out.details.push(format!(
        "**P14 batch** coins T0..T{} (RICK-shaped test entries), each on its own fake server \
         holding {COIN_TXS} payments to bob; one kdfd, all activated with `tx_history: true` in \
         one batch and synced to `Finished`; then on one keep-alive connection 5 warm-up and \
         {BATCHES} timed batches of {COINS} v2 `my_tx_history` items (limit 10; every slot \
         checked for 10 entries of {COIN_TXS}). Servers at {} ms: {}, max {:.2} ms; lines the \
         servers received per batch: median {sl:.0}, max {slmax:.0} (requests over the \
         {BATCHES} batches: {}). The same with the servers \
         at 0 ms: {}, max {:.2} ms; lines per batch: median {fl:.0}.",
        COINS - 1,
        args.latency_ms,
        p50_p99(&slow),
        quantile(&slow, 1.0),
        method_list(&during),
        p50_p99(&fast),
        quantile(&fast, 1.0),
    ));
    Ok(())
}

pub(crate) async fn p14(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    first_page_after_restart(args, bin, out).await?;
    batch_over_coins(args, bin, out).await?;
    super::p14_sync_real::sync_real(args, bin, out).await
}
