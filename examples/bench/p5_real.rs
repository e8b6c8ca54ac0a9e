//! P5 on the real coins file: spawn → first answered `version` with the public 782-entry coins
//! file (tests/fixtures) against the shipped 9-coin file, and the real KDF on the same file
//! (`shared/kdf-reference/kdf` or `$KDF_REFERENCE_BIN`) side by side, with idle RSS for each.

use super::*;

const REAL_COINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kdf-coins-519e6a3.json"
);

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Polls `addr` until `version` answers; the time since `spawned`.
async fn first_answer(addr: std::net::SocketAddr, spawned: Instant) -> anyhow::Result<f64> {
    let deadline = spawned + Duration::from_secs(30);
    loop {
        if Instant::now() > deadline {
            bail!("no answer within 30 s of the spawn");
        }
        if std::net::TcpStream::connect(addr).is_err() {
            std::thread::sleep(Duration::from_micros(250));
            continue;
        }
        let mut c = Client::connect(addr).await?;
        let (s, v) = c.post_json(&json!({"method": "version"})).await?;
        if s == 200 && v.get("result").is_some() {
            return Ok(ms(spawned.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One kdfd spawn on `coins` (a file): (ms to the first answer, idle VmRSS kB).
async fn kdfd_once(bin: &Path, coins: &str) -> anyhow::Result<(f64, Option<u64>)> {
    let port = free_port()?;
    let mut conf = base_conf(Value::Null);
    conf["rpcport"] = json!(port);
    if let Some(o) = conf.as_object_mut() {
        o.remove("coins");
    }
    let Spawned {
        mut child,
        dir: _dir,
        spawned_at,
        ..
    } = Kdfd::spawn_with(
        bin,
        Launch {
            conf: Some(conf),
            args: vec!["--coins".into(), coins.into()],
            ..Launch::default()
        },
        &measuring(),
    )
    .map_err(|e| anyhow!("kdfd {}: {e}", bin.display()))?;
    let t = first_answer(([127, 0, 0, 1], port).into(), spawned_at).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss = proc_status_kb(child.id(), "VmRSS");
    let _ = child.kill();
    let _ = child.wait();
    Ok((t?, rss))
}

/// One spawn of the reference KDF on `coins`, P2P off: (ms to the first answer, idle VmRSS kB).
async fn kdf_once(kdf: &Path, coins: &str) -> anyhow::Result<(f64, Option<u64>)> {
    let port = free_port()?;
    let dir = tempfile::tempdir()?;
    let conf = json!({"gui": "bench", "netid": 8762, "passphrase": kdfd_testkit::PASSPHRASE,
        "rpc_password": USERPASS, "rpcport": port, "disable_p2p": true, "i_am_seed": false,
        "dbdir": dir.path()});
    let spawned = Instant::now();
    let mut child = Command::new(kdf)
        .arg(conf.to_string())
        .env("MM_COINS_PATH", coins)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let t = first_answer(([127, 0, 0, 1], port).into(), spawned).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss = proc_status_kb(child.id(), "VmRSS");
    let _ = child.kill();
    let _ = child.wait();
    Ok((t?, rss))
}

fn kb_list(v: &[Option<u64>]) -> String {
    v.iter()
        .map(|k| k.map_or("?".into(), |k| k.to_string()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn median_kb(v: &[Option<u64>]) -> f64 {
    let kb: Vec<f64> = v.iter().flatten().map(|k| *k as f64).collect();
    if kb.is_empty() {
        return f64::NAN;
    }
    median_min_max(&kb).0
}

pub(crate) async fn p5_real(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/coins");
    let kdf = std::env::var_os("KDF_REFERENCE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kdf-reference/kdf")
        });
    let (mut real, mut small, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    // Alternating spawns, so the machine's noise falls on all three alike.
    for _ in 0..args.p5_spawns {
        real.push(kdfd_once(bin, REAL_COINS).await?);
        small.push(kdfd_once(bin, shipped).await?);
        if kdf.is_file() {
            theirs.push(kdf_once(&kdf, REAL_COINS).await?);
        }
    }
    let times = |v: &[(f64, Option<u64>)]| v.iter().map(|x| x.0).collect::<Vec<f64>>();
    let rss = |v: &[(f64, Option<u64>)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
    let (m, min, max) = median_min_max(&times(&real));
    let (ms_small, _, _) = median_min_max(&times(&small));
    let kdf_ratio = if theirs.is_empty() {
        "KDF not run (no reference binary)".to_string()
    } else {
        let (k, _, _) = median_min_max(&times(&theirs));
        format!(
            "{:.2}× the real KDF's {} on the same file",
            m / k,
            fmt_ms(k)
        )
    };
    out.rows.push(Row {
        scenario: "P5 spawn → first answered `version` on the public 782-entry coins file".into(),
        median: fmt_ms(m),
        min: fmt_ms(min),
        max: fmt_ms(max),
        ratio: format!(
            "{:.2}× the 9-coin file ({}); {kdf_ratio}",
            m / ms_small,
            fmt_ms(ms_small)
        ),
        goal: "≤ 100 ms".into(),
        met: met(m <= 100.0),
        cmd: cmd("P5real"),
    });
    let kdf_rss = if theirs.is_empty() {
        "KDF not run".to_string()
    } else {
        format!("KDF {:.1} MB", median_kb(&rss(&theirs)) / 1024.0)
    };
    out.rows.push(Row {
        scenario: "P4 idle RSS on the public 782-entry coins file".into(),
        median: format!("{:.1} MB", median_kb(&rss(&real)) / 1024.0),
        min: "—".into(),
        max: "—".into(),
        ratio: format!(
            "9-coin file {:.1} MB; {kdf_rss}",
            median_kb(&rss(&small)) / 1024.0
        ),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P5real"),
    });
    out.details.push(format!(
        "**P5 real coins file** {} alternating spawns each, ms: kdfd on the 782-entry file {}; on the \
         9-coin file {}; the real KDF on the 782-entry file {}. Idle VmRSS (200 ms after the first \
         answer), kB: kdfd 782 entries {}; 9 coins {}; KDF {}.",
        args.p5_spawns,
        list_ms(&times(&real)),
        list_ms(&times(&small)),
        if theirs.is_empty() { "not run".into() } else { list_ms(&times(&theirs)) },
        kb_list(&rss(&real)),
        kb_list(&rss(&small)),
        kb_list(&rss(&theirs)),
    ));
    Ok(())
}
