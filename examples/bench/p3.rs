//! P3: version throughput vs a bare hyper server (and the CPU accounting it needs).

use super::*;

/// Non-idle CPU seconds of the whole machine so far (/proc/stat, all cores).
pub(crate) fn system_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(cpu) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let v: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait.
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle) / 100.0
}

/// The 1-minute load average.
pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// User + system CPU seconds a process used so far (/proc/PID/stat, clock ticks of 1/100 s).
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // After the ")" that closes the command name, utime and stime are the 12th and 13th fields.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The bare hyper 1.x server of P3: http1 + TokioIo, answers every request with `body`.
pub(crate) fn serve_bare(body_file: &Path) -> anyhow::Result<()> {
    use http_body_util::{BodyExt, Full};
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let body = Bytes::from(std::fs::read(body_file).context("body file")?);
    // The default runtime, like kdfd's `#[tokio::main]`: one worker per core.
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("bare hyper listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let body = body.clone();
                    async move {
                        // Read the request body, as any JSON-RPC server must.
                        let _ = req.into_body().collect().await;
                        let mut r = hyper::Response::new(Full::new(body));
                        let h = r.headers_mut();
                        h.insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        h.insert(
                            "access-control-allow-origin",
                            hyper::header::HeaderValue::from_static("http://localhost:3000"),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    })
}

pub(crate) async fn p3(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let d = start_kdfd(bin, base_conf(test_coins(1)))?;
    // The bare server answers kdfd's own version body.
    let mut c = Client::connect(d.addr).await?;
    let r = c.send("POST", r#"{"method":"version"}"#).await?;
    if r.status != 200 {
        bail!("version answered {}: {:?}", r.status, r.body);
    }
    let dir = tempfile::tempdir()?;
    let body_file = dir.path().join("version.json");
    std::fs::write(&body_file, &r.body)?;
    let me = std::env::current_exe()?;
    let mut bare_cmd = Command::new(&me);
    bare_cmd.arg("--serve-bare").arg(&body_file);
    let bare_dir = tempfile::tempdir()?;
    bare_cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(bare_dir.path().join("stderr.log"))?)
        .stdin(Stdio::null());
    let spawned = Instant::now();
    let bare = Spawned {
        child: bare_cmd.spawn()?,
        dir: bare_dir,
        spawned_at: spawned,
        watchdog: None,
    }
    .wait_ready(Duration::from_secs(10))
    .map_err(|e| anyhow!("bare server: {e}"))?;

    let secs = Duration::from_secs_f64(args.p3_seconds);
    let work = version_workload(1);
    let timeout = Duration::from_secs(30);
    let mut k_rps = Vec::new();
    let mut b_rps = Vec::new();
    let mut k_p99 = Vec::new();
    let mut b_p99 = Vec::new();
    let mut k_cpu = Vec::new();
    let mut b_cpu = Vec::new();
    let mut client_cpu = Vec::new();
    let mut others_cpu = Vec::new();
    for _ in 0..args.p3_reps {
        for (is_kdfd, addr) in [(true, d.addr), (false, bare.addr)] {
            // A short warm-up: connections open, allocator and caches warm.
            drive(
                addr,
                args.p3_connections,
                Duration::from_millis(500),
                work.clone(),
                timeout,
                None,
                None,
            )
            .await;
            if is_kdfd {
                profile_zero(&d);
            }
            let pid = if is_kdfd { d.pid() } else { bare.pid() };
            let (cpu0, me0, sys0) = (
                cpu_secs(pid),
                cpu_secs(std::process::id()),
                system_busy_secs(),
            );
            let s = drive(
                addr,
                args.p3_connections,
                secs,
                work.clone(),
                timeout,
                None,
                None,
            )
            .await;
            let (cpu1, me1, sys1) = (
                cpu_secs(pid),
                cpu_secs(std::process::id()),
                system_busy_secs(),
            );
            if is_kdfd {
                profile_dump(&d, "P3");
            }
            // Server CPU per answered request, µs.
            let per_req = (cpu1 - cpu0) * 1e6 / s.requests.max(1) as f64;
            if is_kdfd {
                k_cpu.push(per_req);
            } else {
                b_cpu.push(per_req);
            }
            client_cpu.push((me1 - me0) / s.elapsed.as_secs_f64());
            others_cpu.push(
                ((sys1 - sys0) - (cpu1 - cpu0) - (me1 - me0)).max(0.0) / s.elapsed.as_secs_f64(),
            );
            if s.failed > 0 || s.lost() > 0 {
                bail!(
                    "P3 {}: {} failed, {} lost: {:?}",
                    if is_kdfd { "kdfd" } else { "bare hyper" },
                    s.failed,
                    s.lost(),
                    s.failure_samples
                );
            }
            let (rps, p99) = (s.requests_per_sec(), ms(s.percentile(0.99)));
            if is_kdfd {
                k_rps.push(rps);
                k_p99.push(p99);
            } else {
                b_rps.push(rps);
                b_p99.push(p99);
            }
        }
    }
    let (km, kmin, kmax) = median_min_max(&k_rps);
    let (bm, _, _) = median_min_max(&b_rps);
    let ratio = km / bm;
    out.rows.push(Row {
        scenario: format!(
            "P3 `version` requests/s, {} keep-alive connections, {} s, vs bare hyper",
            args.p3_connections, args.p3_seconds
        ),
        median: format!("{km:.0}/s"),
        min: format!("{kmin:.0}/s"),
        max: format!("{kmax:.0}/s"),
        ratio: format!("{ratio:.2}× (bare hyper: {bm:.0}/s)"),
        goal: "≥ 0.8×".into(),
        met: met(ratio >= 0.8),
        cmd: cmd("P3"),
    });
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (kc, _, _) = median_min_max(&k_cpu);
    let (bc, _, _) = median_min_max(&b_cpu);
    let (cc, _, _) = median_min_max(&client_cpu);
    let (oc, _, _) = median_min_max(&others_cpu);
    out.details.push(format!(
        "**P3** single `{{\"method\":\"version\"}}` requests (not batches), each connection sends \
         its next request when the previous answer arrived. kdfd requests/s: {}; bare hyper: {} \
         (kdfd and bare alternate, {} reps, each after a 0.5 s warm-up). p99 latency ms, kdfd: {}; \
         bare: {}. The bare server is this bench binary re-executed with `--serve-bare`: hyper 1.x \
         `http1::Builder::serve_connection` on `TokioIo`, the default multi-thread runtime (as \
         kdfd's `#[tokio::main]`), answering kdfd's own version body with the same headers after \
         reading the request body, and nothing else (no timers, no per-request task, no JSON). \
         Server CPU (user + system, /proc/PID/stat) per answered request, median: kdfd {kc:.1} µs, \
         bare hyper {bc:.1} µs ({:.2}×). While a measurement ran, the load generator kept {cc:.2} \
         cores busy and processes outside the benchmark {oc:.2} cores (median, from /proc/stat), \
         so the server got what was left of the 2: the requests/s ratio understates a CPU \
         difference between the two servers; the CPU per request shows it.",
        list(&k_rps),
        list(&b_rps),
        args.p3_reps,
        list_ms(&k_p99),
        list_ms(&b_p99),
        kc / bc
    ));
    d.stop(Duration::from_secs(30)).await;
    drop(bare);
    Ok(())
}
