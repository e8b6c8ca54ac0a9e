//! P1, P2, P4 (100 active coins): one kdfd, 100 fake servers.

use super::*;

pub(crate) async fn single(
    addr: std::net::SocketAddr,
    body: &Value,
) -> anyhow::Result<(u16, Value, Duration)> {
    let mut c = Client::connect(addr).await.context("connect")?;
    post_timed(&mut c, body, Duration::from_secs(60)).await
}

pub(crate) fn balance_string(p2pkh_sats: i64) -> String {
    let total = p2pkh_sats as i128 + FAKE_P2PK_SATS.0 as i128 + FAKE_P2PK_SATS.1 as i128;
    kdfd::coins::format_amount(total, 8)
}

pub(crate) async fn p1_p2_p4(
    args: &Args,
    bin: &Path,
    out: &mut Section,
    rss_active: &mut Vec<f64>,
    rss_fresh: &mut Option<f64>,
) -> anyhow::Result<()> {
    let n = args.coins;
    let latency = Duration::from_millis(args.latency_ms);
    let fleet = FakeFleet::start(n, latency);
    let d = start_kdfd(bin, base_conf(test_coins(n)))?;
    let tickers: Vec<String> = (0..n).map(|i| format!("T{i}")).collect();
    let urls: Vec<String> = fleet.servers.iter().map(FakeElectrum::url).collect();
    let addr = d.addr;
    let fail = |e: anyhow::Error| anyhow!("{e:#}\nkdfd stderr:\n{}", tail(&d.stderr(), 30));

    // Warm-up (not timed): one activation and disable, so first-use costs are not in rep 1.
    let (s, v, _) = single(addr, &activation_item(&tickers[0], &urls[0])).await?;
    if s != 200 || v.get("result").and_then(Value::as_str) != Some("success") {
        return Err(fail(anyhow!(
            "warm-up activation answered {s} {}",
            short(&v)
        )));
    }
    disable_batch(addr, &tickers[..1]).await.map_err(fail)?;

    if args.wants("P1") {
        let mut one = Vec::new();
        let mut batch = Vec::new();
        let mut lines = Vec::new();
        for _ in 0..args.reps {
            let req = activation_item(&tickers[0], &urls[0]);
            profile_zero(&d);
            let (s, v, t) = single(addr, &req).await?;
            profile_dump(&d, "P1-single");
            if s != 200 || v.get("result").and_then(Value::as_str) != Some("success") {
                return Err(fail(anyhow!(
                    "single activation {} answered {s} {}",
                    short(&req),
                    short(&v)
                )));
            }
            one.push(ms(t));
            disable_batch(addr, &tickers[..1]).await.map_err(fail)?;

            let l0 = fleet.lines_received();
            profile_zero(&d);
            let t = activate_batch(addr, &tickers, &urls).await.map_err(fail)?;
            profile_dump(&d, "P1-batch");
            lines.push((fleet.lines_received() - l0) as f64);
            batch.push(ms(t));
            disable_batch(addr, &tickers).await.map_err(fail)?;
        }
        let (bm, bmin, bmax) = median_min_max(&batch);
        let (om, _, _) = median_min_max(&one);
        let ratio = bm / om;
        out.rows.push(Row {
            scenario: format!(
                "P1 batch of {n} `electrum` activations ({n} servers at {} ms) vs one",
                args.latency_ms
            ),
            median: fmt_ms(bm),
            min: fmt_ms(bmin),
            max: fmt_ms(bmax),
            ratio: format!("{ratio:.2}× (one: {})", fmt_ms(om)),
            goal: "≤ 1.3×".into(),
            met: met(ratio <= 1.3),
            cmd: cmd("P1"),
        });
        let (lm, _, _) = median_min_max(&lines);
        out.details.push(format!(
            "**P1** one activation, ms: {}; batch of {n}, ms: {}. Lines the fake servers received \
             per batch (median): {lm:.0} (a `server.version` and one `get_balance` array per coin \
             is {}). Coins are disabled with one `disable_coin` batch after each run.",
            list_ms(&one),
            list_ms(&batch),
            2 * n
        ));
    }

    if args.wants("P2") || args.wants("P4") {
        activate_batch(addr, &tickers, &urls).await.map_err(fail)?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        *rss_fresh = proc_status_kb(d.pid(), "VmRSS").map(|kb| kb as f64);
        let items = args.p2_items;
        let batch_req = Value::Array(
            (0..items)
                .map(|i| json!({"userpass": USERPASS, "method": "my_balance", "coin": tickers[i % n]}))
                .collect(),
        );
        let single_req = json!({"userpass": USERPASS, "method": "my_balance", "coin": tickers[0]});
        let mut one = Vec::new();
        let mut cold = Vec::new();
        let mut warm = Vec::new();
        let mut cold_lines = Vec::new();
        let mut warm_lines = Vec::new();
        let mut sats = 200_000_000i64;
        let mut c = Client::connect(addr).await?;
        for rep in 0..args.reps {
            // A new balance on every server before each cold measurement: a cache (if any) must
            // not serve the old one, and a cache-less kdfd must ask the servers.
            sats += 1_000;
            fleet.set_p2pkh_balance(sats);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let want = balance_string(sats);
            let (s, v, t) = post_timed(&mut c, &single_req, Duration::from_secs(60)).await?;
            if s != 200 || v.get("balance").and_then(Value::as_str) != Some(want.as_str()) {
                return Err(fail(anyhow!(
                    "single my_balance {} answered {s} {} (want balance {want})",
                    short(&single_req),
                    short(&v)
                )));
            }
            one.push(ms(t));

            sats += 1_000;
            fleet.set_p2pkh_balance(sats);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let want = balance_string(sats);
            let l0 = fleet.lines_received();
            profile_zero(&d);
            let (s, v, t) = post_timed(&mut c, &batch_req, Duration::from_secs(60)).await?;
            profile_dump(&d, "P2-cold");
            let l1 = fleet.lines_received();
            check_all_slots(s, &v, items, |i, slot| {
                slot.get("coin").and_then(Value::as_str) == Some(tickers[i % n].as_str())
                    && slot.get("balance").and_then(Value::as_str) == Some(want.as_str())
            })
            .map_err(|e| {
                fail(e.context(format!(
                    "cold my_balance batch, rep {rep}, want balance {want}"
                )))
            })?;
            cold.push(ms(t));
            cold_lines.push((l1 - l0) as f64);

            profile_zero(&d);
            let (s, v, t) = post_timed(&mut c, &batch_req, Duration::from_secs(60)).await?;
            profile_dump(&d, "P2-warm");
            let l2 = fleet.lines_received();
            check_all_slots(s, &v, items, |_, slot| {
                slot.get("balance").and_then(Value::as_str) == Some(want.as_str())
            })
            .map_err(|e| fail(e.context("warm my_balance batch")))?;
            warm.push(ms(t));
            warm_lines.push((l2 - l1) as f64);
            if let Some(kb) = proc_status_kb(d.pid(), "VmRSS") {
                rss_active.push(kb as f64);
            }
        }
        if args.wants("P2") {
            let (cm, cmin, cmax) = median_min_max(&cold);
            let (om, _, _) = median_min_max(&one);
            let ratio = cm / om;
            out.rows.push(Row {
                scenario: format!("P2 batch of {items} `my_balance` over {n} coins ({n} servers at {} ms), cold, vs one", args.latency_ms),
                median: fmt_ms(cm),
                min: fmt_ms(cmin),
                max: fmt_ms(cmax),
                ratio: format!("{ratio:.2}× (one: {})", fmt_ms(om)),
                goal: "≤ 1.5×".into(),
                met: met(ratio <= 1.5),
                cmd: cmd("P2"),
            });
            let (lm, lmin, lmax) = median_min_max(&cold_lines);
            out.rows.push(Row {
                scenario: format!(
                    "P2 Electrum requests (lines) received during the cold batch, {n} servers"
                ),
                median: format!("{lm:.0}"),
                min: format!("{lmin:.0}"),
                max: format!("{lmax:.0}"),
                ratio: format!("{:.2} per server", lm / n as f64),
                goal: format!("≤ {n} (one per server)"),
                met: met(lmax <= n as f64),
                cmd: cmd("P2"),
            });
            let (wm, wmin, wmax) = median_min_max(&warm);
            let (wl, _, _) = median_min_max(&warm_lines);
            let cached = warm_lines.iter().all(|l| *l == 0.0);
            out.rows.push(Row {
                scenario: format!(
                    "P2 the same batch again at once (warm){}",
                    if cached { "" } else { ": no cache" }
                ),
                median: fmt_ms(wm),
                min: fmt_ms(wmin),
                max: fmt_ms(wmax),
                ratio: if cached {
                    format!("{:.2}× of cold; 0 Electrum lines", wm / cm)
                } else {
                    format!("no cache: {wl:.0} Electrum lines, like cold")
                },
                goal: "reported".into(),
                met: Met::Info,
                cmd: cmd("P2"),
            });
            out.details.push(format!(
                "**P2** before each cold measurement every server's balance is changed (and every \
                 slot is checked for the new value). One `my_balance`, ms: {}; cold batch, ms: {}; \
                 Electrum lines per cold batch: {}; warm batch, ms: {}; lines per warm batch: {}. \
                 Each `my_balance` asks for {} scripthashes (P2PKH and P2PK), so a batch carries \
                 {} `get_balance` requests; one line per server means one JSON-RPC array each.",
                list_ms(&one),
                list_ms(&cold),
                list_ms(&cold_lines),
                list_ms(&warm),
                list_ms(&warm_lines),
                2,
                2 * items
            ));
        }
    }
    d.stop(Duration::from_secs(30)).await;
    Ok(())
}
