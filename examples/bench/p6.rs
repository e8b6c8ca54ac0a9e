//! P6: the real ElectrumX with its stock 1 s reply hold.

use super::*;

pub(crate) struct Regtest {
    run_dir: tempfile::TempDir,
    script_dir: PathBuf,
}

impl Regtest {
    pub(crate) fn start(pad_wait_ms: u64) -> anyhow::Result<(Regtest, HashMap<String, String>)> {
        let script_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/electrum-regtest");
        let run_dir = tempfile::Builder::new()
            .prefix("kdfd-bench-regtest")
            .tempdir()?;
        let rt = Regtest {
            run_dir,
            script_dir,
        };
        let log = std::fs::File::create(rt.run_dir.path().join("bench-start.log"))?;
        let mut child = rt
            .cmd("start.sh")
            .env("ER_PAD_WAIT_MS", pad_wait_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("start.sh")?;
        let deadline = Instant::now() + Duration::from_secs(240);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("start.sh did not finish within 240 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stdout = String::new();
        if let Some(mut s) = child.stdout.take() {
            use std::io::Read;
            let _ = s.read_to_string(&mut stdout);
        }
        if !status.success() {
            let log = std::fs::read_to_string(rt.run_dir.path().join("bench-start.log"))
                .unwrap_or_default();
            bail!("start.sh exited with {status}: {}", tail(&log, 15));
        }
        let env = stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Ok((rt, env))
    }

    pub(crate) fn cmd(&self, script: &str) -> Command {
        let mut c = Command::new(self.script_dir.join(script));
        c.env("ER_RUN_DIR", self.run_dir.path())
            .env("ER_NODE_RPC_PORT", "0")
            .env("ER_TCP_PORT", "0")
            .env("ER_SSL_PORT", "off")
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Regtest {
    fn drop(&mut self) {
        let _ = self
            .cmd("stop.sh")
            .env("ER_CLEAN", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Timings of one P6 daemon: activation, warm-up batches, timed batches, single requests.
pub(crate) struct P6Run {
    activation: Duration,
    warmups: Vec<f64>,
    times: Vec<f64>,
    singles: Vec<f64>,
    /// The first batch showing a new balance after an on-chain payment (cache on only).
    after_change: Vec<f64>,
    /// From fund.sh returning to that batch's answer.
    staleness: Vec<f64>,
    /// Batches (20 ms apart) that still answered the old balance.
    stale_polls: Vec<f64>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn p6_run(
    args: &Args,
    stack: &Regtest,
    bin: &Path,
    url: &str,
    coins: &[Value],
    tickers: &[String],
    cache: bool,
    funded: &mut i128,
) -> anyhow::Result<P6Run> {
    let have = kdfd::coins::format_amount(*funded, 8);
    let mut conf = base_conf(Value::Array(coins.to_vec()));
    conf["balance_cache"] = json!(cache);
    let d = start_kdfd(bin, conf)?;
    let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));
    let urls = vec![url.to_string(); tickers.len()];
    let activation = activate_batch(d.addr, tickers, &urls).await.map_err(fail)?;
    let batch = Value::Array(
        (0..100)
            .map(|i| json!({"userpass": USERPASS, "method": "my_balance", "coin": tickers[i % 10]}))
            .collect(),
    );
    let mut c = Client::connect(d.addr).await?;
    let check = |s: u16, v: &Value| {
        check_all_slots(s, v, 100, |i, slot| {
            slot.get("coin").and_then(Value::as_str) == Some(tickers[i % 10].as_str())
                && slot.get("balance").and_then(Value::as_str) == Some(have.as_str())
        })
    };
    // Warm-up: enough traffic that the connection is past ElectrumX's 1 KiB warm-up budget,
    // after which it holds every reply smaller than 1 KiB for up to 1 s.
    let mut warmups = Vec::new();
    for _ in 0..10 {
        let (s, v, t) = post_timed(&mut c, &batch, Duration::from_secs(60)).await?;
        check(s, &v).context("P6 warm-up batch").map_err(fail)?;
        warmups.push(ms(t));
    }
    let mut times = Vec::new();
    for _ in 0..args.reps {
        let (s, v, t) = post_timed(&mut c, &batch, Duration::from_secs(60)).await?;
        check(s, &v).context("P6 batch").map_err(fail)?;
        times.push(ms(t));
    }
    let single_req = json!({"userpass": USERPASS, "method": "my_balance", "coin": tickers[0]});
    let mut singles = Vec::new();
    for _ in 0..args.reps {
        let (s, v, t) = post_timed(&mut c, &single_req, Duration::from_secs(60)).await?;
        if s != 200 || v.get("balance").and_then(Value::as_str) != Some(have.as_str()) {
            return Err(fail(anyhow!(
                "single my_balance {} answered {s} {}",
                short(&single_req),
                short(&v)
            )));
        }
        singles.push(ms(t));
    }
    // With the cache on: change the balance on chain (a mempool payment to the wallet address,
    // so every coin's P2PKH scripthash changes), let the notification arrive, then time the batch
    // that must read the new balance upstream.
    let mut after_change = Vec::new();
    let mut staleness = Vec::new();
    let mut stale_polls = Vec::new();
    if cache {
        let (_, v, _) = post_timed(&mut c, &single_req, Duration::from_secs(60)).await?;
        let address = v["address"].as_str().unwrap_or_default().to_string();
        for _ in 0..args.reps {
            let fund = stack
                .cmd("fund.sh")
                .args([address.as_str(), "0.001", "0"])
                .stderr(Stdio::piped())
                .output()
                .context("fund.sh")?;
            if !fund.status.success() {
                bail!(
                    "fund.sh {address} 0.001 failed: {}",
                    String::from_utf8_lossy(&fund.stderr)
                );
            }
            // fund.sh returns once ElectrumX has the payment in its mempool. Poll with the
            // batch until every slot shows the new balance: the cache serves the old one until
            // the notification arrives (ElectrumX may hold that too), then one batch reads
            // upstream. Its latency and the staleness are what a polling wallet sees.
            let changed_at = Instant::now();
            let old = kdfd::coins::format_amount(*funded, 8);
            *funded += 100_000;
            let want = kdfd::coins::format_amount(*funded, 8);
            let mut polls = 0;
            loop {
                if changed_at.elapsed() > Duration::from_secs(10) {
                    return Err(fail(anyhow!(
                        "P6: kdfd still answers the old balance {old} 10 s after a payment \
                         ElectrumX had already seen (want {want})"
                    )));
                }
                let (s, v, t) = post_timed(&mut c, &batch, Duration::from_secs(60)).await?;
                polls += 1;
                let slots = v.as_array().cloned().unwrap_or_default();
                let bal = |x: &Value| x.get("balance").and_then(Value::as_str).map(str::to_string);
                if s == 200
                    && slots.len() == 100
                    && slots
                        .iter()
                        .all(|x| bal(x).as_deref() == Some(want.as_str()))
                {
                    after_change.push(ms(t));
                    staleness.push(ms(changed_at.elapsed()));
                    stale_polls.push(polls as f64 - 1.0);
                    break;
                }
                check_all_slots(s, &v, 100, |_, slot| {
                    let b = bal(slot);
                    b.as_deref() == Some(want.as_str()) || b.as_deref() == Some(old.as_str())
                })
                .with_context(|| format!("P6 batch after a payment, want balance {old} or {want}"))
                .map_err(fail)?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    d.stop(Duration::from_secs(30)).await;
    Ok(P6Run {
        activation,
        warmups,
        times,
        singles,
        after_change,
        staleness,
        stale_polls,
    })
}

pub(crate) async fn p6(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let scenario = |cache: bool| {
        format!(
            "P6 batch of 100 `my_balance` over 10 coins on one real ElectrumX 2.0 (stock 1 s reply \
             hold), {}",
            if cache {
                "balance cache on (default)"
            } else {
                "`\"balance_cache\": false` (every batch reads ElectrumX)"
            }
        )
    };
    let started = Instant::now();
    let (stack, env) = match Regtest::start(1000) {
        Ok(v) => v,
        Err(e) => {
            out.rows
                .push(Row::not_run(scenario(true), "≤ 100 ms", "P6", &e));
            return Ok(());
        }
    };
    let stack_secs = started.elapsed().as_secs_f64();
    let url = env
        .get("ELECTRUM_TCP")
        .cloned()
        .ok_or_else(|| anyhow!("start.sh printed no ELECTRUM_TCP"))?;
    let fixture = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regtest-coins.json"),
    )?;
    let fixture: Value = serde_json::from_str(&fixture)?;
    let ltcr = fixture
        .as_array()
        .and_then(|a| a.iter().find(|c| c["coin"] == "LTCR"))
        .cloned()
        .ok_or_else(|| anyhow!("no LTCR entry in tests/fixtures/regtest-coins.json"))?;
    let tickers: Vec<String> = (0..10).map(|i| format!("R{i}")).collect();
    let coins: Vec<Value> = tickers
        .iter()
        .map(|t| {
            let mut c = ltcr.clone();
            c["coin"] = json!(t);
            c
        })
        .collect();
    let mut details = format!(
        "**P6** `scripts/electrum-regtest/start.sh` with `ER_PAD_WAIT_MS=1000`, its own temp \
         `ER_RUN_DIR`, ports 0, SSL off (stack up in {stack_secs:.1} s; stopped with `stop.sh`, \
         `ER_CLEAN=1`). Coins R0..R9 are copies of the fixture's LTCR entry (pubtype 111, so one \
         address and the same two scripthashes for all ten), all activated on the one ElectrumX \
         TCP port in one batch. Then 10 warm-up batches, {} timed batches and {} single \
         `my_balance` requests on one keep-alive connection; every slot is checked for the balance \
         the chain holds. Two kdfd runs on the same stack:",
        args.reps, args.reps
    );
    // Mature coins for fund.sh up front, so no payment waits for 101 blocks.
    let mined = stack
        .cmd("mine.sh")
        .arg("101")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("mine.sh 101")?;
    if !mined.success() {
        bail!("mine.sh 101 failed");
    }
    let mut funded = 0i128;
    for cache in [true, false] {
        let r = p6_run(
            args,
            &stack,
            bin,
            &url,
            &coins,
            &tickers,
            cache,
            &mut funded,
        )
        .await?;
        let (m, min, max) = median_min_max(&r.times);
        let (sm, _, _) = median_min_max(&r.singles);
        out.rows.push(Row {
            scenario: scenario(cache),
            median: fmt_ms(m),
            min: fmt_ms(min),
            max: fmt_ms(max),
            ratio: format!("one `my_balance`: {}", fmt_ms(sm)),
            goal: "≤ 100 ms".into(),
            met: met(m <= 100.0),
            cmd: cmd("P6"),
        });
        if !r.after_change.is_empty() {
            let (m, min, max) = median_min_max(&r.after_change);
            out.rows.push(Row {
                scenario: "P6 the first such batch that shows a new balance after an on-chain \
                           payment (cache entry dropped by the notification, read upstream)"
                    .into(),
                median: fmt_ms(m),
                min: fmt_ms(min),
                max: fmt_ms(max),
                ratio: "—".into(),
                goal: "≤ 100 ms".into(),
                met: met(m <= 100.0),
                cmd: cmd("P6"),
            });
        }
        let _ = write!(
            details,
            " {}: activation {}, warm-up batches ms: {}; timed batches ms: {}; singles ms: {}{}.",
            if cache { "cache on" } else { "cache off" },
            fmt_ms(ms(r.activation)),
            list_ms(&r.warmups),
            list_ms(&r.times),
            list_ms(&r.singles),
            if r.after_change.is_empty() {
                String::new()
            } else {
                format!(
                    "; after each `fund.sh ADDRESS 0.001 0` payment (it returns once ElectrumX has \
                     the transaction in its mempool) the batch is repeated every 20 ms until every \
                     slot shows the new balance: that batch took, ms: {}; it came, ms after \
                     fund.sh returned: {}, after this many batches that still answered the old \
                     balance from the cache: {}",
                    list_ms(&r.after_change),
                    list_ms(&r.staleness),
                    r.stale_polls
                        .iter()
                        .map(|x| format!("{x:.0}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    }
    drop(stack);
    out.details.push(details);
    Ok(())
}
