//! P12 (issue 16): the Komodo Wallet login — spawn with a new HD wallet, `version`, concurrent
//! `task::enable_utxo` of the default UTXO set, `task::account_balance` of each — and the
//! re-login with the same wallet (address counts from the database).

use super::p8_hd::{enable_utxo_params, run_tasks, spawn_to_version, wallet_conf};
use super::*;

/// The default UTXO set of the wallet (KMD-, BTC-segwit- and LTC-segwit-shaped: the shipped
/// entries themselves).
const SET: [&str; 3] = ["KMD", "BTC-segwit", "LTC-segwit"];

/// One coin's part of the login on its own connection: activation, then its account balance.
async fn coin_flow(addr: std::net::SocketAddr, ticker: &str, url: &str) -> anyhow::Result<Value> {
    let mut c = Client::connect(addr).await?;
    run_tasks(&mut c, "enable_utxo", &[enable_utxo_params(ticker, url)]).await?;
    let r = run_tasks(
        &mut c,
        "account_balance",
        &[json!({"coin": ticker, "account_index": 0})],
    )
    .await?;
    let shown = &r[0]["details"]["total_balance"][ticker]["spendable"];
    if !shown.is_string() {
        bail!(
            "{ticker}: account_balance shows no balance: {}",
            short(&r[0])
        );
    }
    Ok(r[0].clone())
}

/// One login on `dbdir`: (ms spawn → every balance shown, ms spawn → version, addresses known).
async fn login(
    bin: &Path,
    dbdir: &Path,
    servers: &[FakeElectrum],
) -> anyhow::Result<(f64, f64, usize)> {
    let coins: Vec<Value> = kdfd_testkit::shipped_coins()
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|c| c["coin"].as_str().is_some_and(|t| SET.contains(&t)))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    if coins.len() != SET.len() {
        bail!("the shipped coins file lacks one of {SET:?}");
    }
    let conf = wallet_conf(Value::Array(coins), dbdir);
    let (t_version, mut sp, addr) = spawn_to_version(bin, conf).await?;
    let spawned = sp.spawned_at;
    let urls: Vec<String> = servers.iter().map(FakeElectrum::url).collect();
    let r = tokio::join!(
        coin_flow(addr, SET[0], &urls[0]),
        coin_flow(addr, SET[1], &urls[1]),
        coin_flow(addr, SET[2], &urls[2]),
    );
    let took = spawned.elapsed();
    let stderr = || std::fs::read_to_string(sp.dir.path().join("stderr.log")).unwrap_or_default();
    let mut known = 0;
    for x in [r.0, r.1, r.2] {
        match x {
            Ok(v) => known += v["details"]["addresses"].as_array().map_or(0, Vec::len),
            Err(e) => {
                let err = anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&stderr(), 20));
                let _ = sp.child.kill();
                let _ = sp.child.wait();
                return Err(err);
            }
        }
    }
    // A graceful stop, so the store is flushed as a user's quit would.
    if let Ok(mut c) = Client::connect(addr).await {
        let _ = c
            .post_json(&json!({"userpass": USERPASS, "method": "stop"}))
            .await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && matches!(sp.child.try_wait(), Ok(None)) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = sp.child.kill();
    let _ = sp.child.wait();
    Ok((ms(took), ms(t_version), known))
}

pub(crate) async fn p12(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let lat = args.latency_ms;
    let servers: Vec<FakeElectrum> = (0..SET.len())
        .map(|_| {
            let s = FakeElectrum::start_tcp();
            s.set_latency(Duration::from_millis(lat));
            s
        })
        .collect();
    {
        let warm = tempfile::tempdir()?;
        login(bin, warm.path(), &servers).await?;
    }
    let (mut first, mut again, mut v1, mut v2s, mut lines1, mut lines2) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let mut addrs = (0, 0);
    for _ in 0..args.reps {
        let dbdir = tempfile::tempdir()?;
        let l0: usize = servers.iter().map(FakeElectrum::lines_received).sum();
        let (t, tv, k) = login(bin, dbdir.path(), &servers).await?;
        let l1: usize = servers.iter().map(FakeElectrum::lines_received).sum();
        first.push(t);
        v1.push(tv);
        lines1.push((l1 - l0) as f64);
        let (t, tv, k2) = login(bin, dbdir.path(), &servers).await?;
        let l2: usize = servers.iter().map(FakeElectrum::lines_received).sum();
        again.push(t);
        v2s.push(tv);
        lines2.push((l2 - l1) as f64);
        addrs = (k, k2);
    }
    let (m, min, max) = median_min_max(&first);
    out.rows.push(Row {
        scenario: format!(
            "P12 Komodo Wallet login, new HD wallet: spawn → `version` → concurrent `task::enable_utxo` of KMD, BTC-segwit, LTC-segwit (own servers at {lat} ms) → `task::account_balance` of each shown"
        ),
        median: fmt_ms(m),
        min: fmt_ms(min),
        max: fmt_ms(max),
        ratio: format!("`version` at {}", fmt_ms(median_min_max(&v1).0)),
        goal: "≤ 1.5 s".into(),
        met: met(m <= 1500.0),
        cmd: cmd("P12"),
    });
    let (m, min, max) = median_min_max(&again);
    out.rows.push(Row {
        scenario: "P12 re-login (restart with the same wallet; address counts from the database)"
            .into(),
        median: fmt_ms(m),
        min: fmt_ms(min),
        max: fmt_ms(max),
        ratio: format!("`version` at {}", fmt_ms(median_min_max(&v2s).0)),
        goal: "≤ 1 s".into(),
        met: met(m <= 1000.0),
        cmd: cmd("P12"),
    });
    out.details.push(format!(
        "**P12** the config names a wallet (`wallet_name`, `wallet_password`, `enable_hd`) in a new \
         dbdir, so the first run generates a mnemonic and writes the wallet file (Argon2id); the \
         shipped KMD, BTC-segwit and LTC-segwit entries, each on its own fake server. Timed from \
         just before `Command::spawn`; each coin's activation and balance run on their own \
         connection, concurrently (status polled every 5 ms); the end is the last \
         `account_balance` answer with a balance. Login, ms: {}; `version` answered at, ms: {}; \
         Electrum lines: {}. Re-login, ms: {}; `version` at, ms: {}; lines: {}. Addresses in the \
         three `account_balance` answers: {} (login), {} (re-login).",
        list_ms(&first),
        list_ms(&v1),
        list_ms(&lines1),
        list_ms(&again),
        list_ms(&v2s),
        list_ms(&lines2),
        addrs.0,
        addrs.1
    ));
    Ok(())
}
