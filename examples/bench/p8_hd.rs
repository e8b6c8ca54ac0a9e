//! P8 (issue 11): HD activation (gap-limit scan) of one and of 10 coins vs an iguana activation,
//! and start-up with an existing wallet file. Also the task helpers P12 uses.

use super::*;

/// A 12-word BIP39 mnemonic (the "tank" vector of the HD tests).
pub(crate) const MNEMONIC: &str =
    "tank abandon bind salon remove wisdom net size aspect direct source fossil";
/// A wallet password that passes KDF's policy.
pub(crate) const WALLET_PASSWORD: &str = "Alice!Pass123";
/// How often task statuses are polled.
const POLL: Duration = Duration::from_millis(5);

/// A v2 request with the test userpass.
pub(crate) fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params, "id": 1})
}

/// `task::enable_utxo::init` params for `ticker` on `url`, gap limit 20.
pub(crate) fn enable_utxo_params(ticker: &str, url: &str) -> Value {
    json!({"ticker": ticker, "activation_params": {
        "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": url}]}},
        "tx_history": false, "gap_limit": 20}})
}

/// Starts `task::{kind}::init` for every item of `inits` in one batch, then polls every status in
/// one batch every 5 ms until none is `InProgress`; returns the final results.
pub(crate) async fn run_tasks(
    c: &mut Client,
    kind: &str,
    inits: &[Value],
) -> anyhow::Result<Vec<Value>> {
    let batch = Value::Array(
        inits
            .iter()
            .map(|p| v2(&format!("task::{kind}::init"), p.clone()))
            .collect(),
    );
    let (s, v, _) = post_timed(c, &batch, Duration::from_secs(60)).await?;
    let ids: Vec<u64> = v
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["result"]["task_id"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    if s != 200 || ids.len() != inits.len() {
        bail!("task::{kind}::init answered {s} {}", short(&v));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut done: Vec<Option<Value>> = vec![None; ids.len()];
    loop {
        let pending: Vec<usize> = (0..ids.len()).filter(|&i| done[i].is_none()).collect();
        if pending.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("task::{kind} did not finish within 60 s");
        }
        let q = Value::Array(
            pending
                .iter()
                .map(|&i| {
                    v2(
                        &format!("task::{kind}::status"),
                        json!({"task_id": ids[i], "forget_if_finished": false}),
                    )
                })
                .collect(),
        );
        let (s, v, _) = post_timed(c, &q, Duration::from_secs(60)).await?;
        let slots = v.as_array().cloned().unwrap_or_default();
        if s != 200 || slots.len() != pending.len() {
            bail!("task::{kind}::status answered {s} {}", short(&v));
        }
        for (&i, slot) in pending.iter().zip(slots) {
            let st = &slot["result"]["status"];
            if st.is_null() {
                bail!("task::{kind}::status: {}", short(&slot));
            }
            if st != "InProgress" {
                done[i] = Some(slot["result"].clone());
            }
        }
        if done.iter().any(Option::is_none) {
            tokio::time::sleep(POLL).await;
        }
    }
    let out: Vec<Value> = done.into_iter().flatten().collect();
    if let Some(bad) = out.iter().find(|r| r["status"] != "Ok") {
        bail!("task::{kind} ended {}", short(bad));
    }
    Ok(out)
}

/// RICK-shaped coins H0..H{n-1} (derivation path m/44'/141').
fn hd_coins(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| {
                json!({"coin": format!("H{i}"), "mm2": 1, "protocol": {"type": "UTXO"},
                       "derivation_path": "m/44'/141'", "txversion": 4, "overwintered": 1})
            })
            .collect(),
    )
}

/// One timed activation of `n` coins on a fresh daemon: (ms, upstream lines).
async fn activation(
    bin: &Path,
    servers: &[FakeElectrum],
    hd: bool,
) -> anyhow::Result<(f64, f64, String)> {
    let n = servers.len();
    let dbdir = tempfile::tempdir()?;
    let mut conf = base_conf(hd_coins(n));
    conf["dbdir"] = json!(dbdir.path());
    if hd {
        conf["passphrase"] = json!(MNEMONIC);
        conf["enable_hd"] = json!(true);
    }
    let d = start_kdfd(bin, conf)?;
    let mut c = Client::connect(d.addr).await?;
    let inits: Vec<Value> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| enable_utxo_params(&format!("H{i}"), &s.url()))
        .collect();
    let l0: usize = servers.iter().map(FakeElectrum::lines_received).sum();
    let m0 = servers[0].methods().len();
    let t = Instant::now();
    let r = run_tasks(&mut c, "enable_utxo", &inits)
        .await
        .map_err(|e| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 20)))?;
    let took = ms(t.elapsed());
    let lines: usize = servers
        .iter()
        .map(FakeElectrum::lines_received)
        .sum::<usize>()
        - l0;
    if hd {
        let addrs = r[0]["details"]["wallet_balance"]["accounts"][0]["addresses"]
            .as_array()
            .map_or(0, Vec::len);
        if addrs == 0 {
            bail!("HD activation answered no addresses: {}", short(&r[0]));
        }
    }
    // What server 0 was asked during the activation: method × count, in first-seen order.
    let mut seen: Vec<(String, usize)> = Vec::new();
    for m in servers[0].methods().into_iter().skip(m0) {
        match seen.iter_mut().find(|(k, _)| *k == m) {
            Some((_, c)) => *c += 1,
            None => seen.push((m, 1)),
        }
    }
    let asked = seen
        .iter()
        .map(|(m, c)| format!("`{m}` × {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    d.stop(Duration::from_secs(10)).await;
    Ok((took, lines as f64 / n as f64, asked))
}

pub(crate) async fn p8(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let latency = Duration::from_millis(args.latency_ms);
    let servers: Vec<FakeElectrum> = (0..10)
        .map(|_| {
            let s = FakeElectrum::start_tcp();
            s.set_latency(latency);
            s
        })
        .collect();
    // Warm-up (page cache, first connections), not timed.
    activation(bin, &servers[..1], true).await?;
    let (mut hd1, mut ig1, mut hd10, mut ig10) = (vec![], vec![], vec![], vec![]);
    let (mut hd1l, mut ig1l, mut hd10l, mut ig10l) = (vec![], vec![], vec![], vec![]);
    let mut asked = (String::new(), String::new());
    for _ in 0..args.reps {
        let (t, l, a) = activation(bin, &servers[..1], true).await?;
        hd1.push(t);
        hd1l.push(l);
        asked.0 = a;
        let (t, l, a) = activation(bin, &servers[..1], false).await?;
        asked.1 = a;
        ig1.push(t);
        ig1l.push(l);
        let (t, l, _) = activation(bin, &servers, true).await?;
        hd10.push(t);
        hd10l.push(l);
        let (t, l, _) = activation(bin, &servers, false).await?;
        ig10.push(t);
        ig10l.push(l);
    }
    let (h1, h1min, h1max) = median_min_max(&hd1);
    let (i1, _, _) = median_min_max(&ig1);
    let (h10, h10min, h10max) = median_min_max(&hd10);
    let (i10, _, _) = median_min_max(&ig10);
    let lat = args.latency_ms;
    out.rows.push(Row {
        scenario: format!(
            "P8 HD activation of one coin (`task::enable_utxo`, fresh wallet, gap limit 20, server at {lat} ms, status polled every 5 ms) vs iguana"
        ),
        median: fmt_ms(h1),
        min: fmt_ms(h1min),
        max: fmt_ms(h1max),
        ratio: format!("{:.2}× (iguana: {})", h1 / i1, fmt_ms(i1)),
        goal: "≤ 600 ms and ≤ 1.5×".into(),
        met: met(h1 <= 600.0 && h1 / i1 <= 1.5),
        cmd: cmd("P8"),
    });
    out.rows.push(Row {
        scenario: format!(
            "P8 HD activation of 10 coins in one batch (10 servers at {lat} ms) vs iguana"
        ),
        median: fmt_ms(h10),
        min: fmt_ms(h10min),
        max: fmt_ms(h10max),
        ratio: format!("{:.2}× (iguana: {})", h10 / i10, fmt_ms(i10)),
        goal: "≤ 800 ms and ≤ 1.5×".into(),
        met: met(h10 <= 800.0 && h10 / i10 <= 1.5),
        cmd: cmd("P8"),
    });
    let (l1, l1min, l1max) = median_min_max(&hd1l);
    out.rows.push(Row {
        scenario: "P8 Electrum messages (lines) per HD activation of one coin".into(),
        median: format!("{l1:.0}"),
        min: format!("{l1min:.0}"),
        max: format!("{l1max:.0}"),
        ratio: format!("iguana: {:.0}", median_min_max(&ig1l).0),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P8"),
    });
    let starts = p8_startup(args, bin).await?;
    let (s, smin, smax) = median_min_max(&starts);
    out.rows.push(Row {
        scenario: "P8 start-up with an existing wallet file (wallet_name + wallet_password, Argon2id), spawn → first answered `version`".into(),
        median: fmt_ms(s),
        min: fmt_ms(smin),
        max: fmt_ms(smax),
        ratio: "—".into(),
        goal: "≤ 300 ms".into(),
        met: met(s <= 300.0),
        cmd: cmd("P8"),
    });
    out.details.push(format!(
        "**P8** every activation runs on a new kdfd with a new dbdir (so the HD wallet is new and \
         scanned: 21 external + 21 internal addresses probed, none used); timed from the \
         `task::enable_utxo::init` request to the status answer that is no longer `InProgress`. \
         HD one coin, ms: {}; iguana one coin, ms: {}; HD 10 coins, ms: {}; iguana 10 coins, ms: \
         {}. Lines per server per activation: HD one coin {}, iguana one coin {}, HD 10 coins {}, \
         iguana 10 coins {}. Requests of one activation (last rep): HD {}; iguana {}. Start-up: {} spawns, ms: {} (the wallet file was created by a first \
         run with the same config; port fixed and poll-connected every 0.25 ms as in P5).",
        list_ms(&hd1),
        list_ms(&ig1),
        list_ms(&hd10),
        list_ms(&ig10),
        list_ms(&hd1l),
        list_ms(&ig1l),
        list_ms(&hd10l),
        list_ms(&ig10l),
        asked.0,
        asked.1,
        starts.len(),
        list_ms(&starts)
    ));
    Ok(())
}

/// Spawns `bin` with `conf` on a fixed free port and times spawn → first answered `version`.
pub(crate) async fn spawn_to_version(
    bin: &Path,
    mut conf: Value,
) -> anyhow::Result<(Duration, Spawned, std::net::SocketAddr)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    conf["rpcport"] = json!(port);
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let mut sp = Kdfd::spawn_with(
        bin,
        Launch {
            conf: Some(conf),
            ..Launch::default()
        },
        &measuring(),
    )
    .map_err(|e| anyhow!("kdfd {}: {e}", bin.display()))?;
    let deadline = sp.spawned_at + Duration::from_secs(30);
    loop {
        if Instant::now() > deadline {
            let _ = sp.child.kill();
            bail!("kdfd did not answer within 30 s of its spawn");
        }
        if let Ok(Some(st)) = sp.child.try_wait() {
            let err = std::fs::read_to_string(sp.dir.path().join("stderr.log")).unwrap_or_default();
            bail!("kdfd exited with {st}: {}", tail(&err, 20));
        }
        if std::net::TcpStream::connect(addr).is_err() {
            std::thread::sleep(Duration::from_micros(250));
            continue;
        }
        let mut c = Client::connect(addr).await?;
        let (s, v) = c.post_json(&json!({"method": "version"})).await?;
        if s != 200 || v.get("result").is_none() {
            bail!("version answered {s} {}", short(&v));
        }
        return Ok((sp.spawned_at.elapsed(), sp, addr));
    }
}

/// A wallet-file config (new wallet on the first run, reopened after).
pub(crate) fn wallet_conf(coins: Value, dbdir: &Path) -> Value {
    json!({"gui": "kdfd-bench", "netid": 9998, "rpc_password": USERPASS, "rpcport": 0,
           "coins": coins, "wallet_name": "bench", "wallet_password": WALLET_PASSWORD,
           "enable_hd": true, "dbdir": dbdir})
}

async fn p8_startup(args: &Args, bin: &Path) -> anyhow::Result<Vec<f64>> {
    let dbdir = tempfile::tempdir()?;
    let conf = wallet_conf(hd_coins(1), dbdir.path());
    // The first run creates the wallet file.
    let (_, mut sp, _) = spawn_to_version(bin, conf.clone()).await?;
    let _ = sp.child.kill();
    let _ = sp.child.wait();
    let mut times = Vec::new();
    for _ in 0..args.reps.max(5) {
        let (t, mut sp, _) = spawn_to_version(bin, conf.clone()).await?;
        times.push(ms(t));
        let _ = sp.child.kill();
        let _ = sp.child.wait();
    }
    Ok(times)
}
