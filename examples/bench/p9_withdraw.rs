//! P9 (issue 13): `withdraw` (max: every unspent becomes an input) with 1, 100 and 1 000 unspents
//! against a fake server at 100 ms; a 100-item `validateaddress` batch vs one.

use super::p8_hd::v2;
use super::*;

/// Where the bench sends (spice's RICK address of the send tests).
const TO: &str = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";

/// `n` unspents of 0.01 RICK on bob's P2PKH script; txids differ per `seed` so nothing upstream
/// or in kdfd can reuse an earlier answer.
fn plant(fake: &FakeElectrum, n: usize, seed: usize) {
    let (p2pkh, _) = bob_scripthashes();
    let txids: Vec<String> = (0..n).map(|i| format!("{seed:032x}{i:032x}")).collect();
    let list: Vec<(&str, u32, u64, i64)> = txids
        .iter()
        .map(|t| (t.as_str(), 0u32, 1_000_000u64, 100i64))
        .collect();
    fake.set_unspents(&p2pkh, &list);
}

/// One timed `withdraw` on a fresh daemon: (ms, lines received during it, inputs signed).
async fn one_withdraw(
    bin: &Path,
    fake: &FakeElectrum,
    n: usize,
    seed: usize,
) -> anyhow::Result<(f64, f64)> {
    plant(fake, n, seed);
    let d = start_kdfd(bin, base_conf(kdfd_testkit::shipped_coins()))?;
    let mut c = Client::connect(d.addr).await?;
    let (s, v, _) = post_timed(
        &mut c,
        &activation_item("RICK", &fake.url()),
        Duration::from_secs(30),
    )
    .await?;
    if s != 200 || v["result"] != "success" {
        bail!("RICK activation answered {s} {}", short(&v));
    }
    let l0 = fake.lines_received();
    let req = v2("withdraw", json!({"coin": "RICK", "to": TO, "max": true}));
    let (s, v, t) = post_timed(&mut c, &req, Duration::from_secs(60)).await?;
    let lines = fake.lines_received() - l0;
    let hex = v["result"]["tx_hex"].as_str().unwrap_or("");
    if s != 200 || hex.is_empty() {
        bail!("withdraw of {n} unspents answered {s} {}", short(&v));
    }
    // Every unspent must be an input (max spends them all).
    let raw: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let reg = kdfd::coins::Registry::load(
        kdfd_testkit::shipped_coins()
            .as_array()
            .map_or(&[][..], Vec::as_slice),
    );
    let conf = reg.get("RICK").ok_or_else(|| anyhow!("no RICK"))?;
    let tx = kdfd::coins::withdraw::decode_tx(&conf, &raw)
        .map_err(|e| anyhow!("decode the signed tx: {e:?}"))?;
    if tx.inputs.len() != n {
        bail!("withdraw signed {} inputs, {n} expected", tx.inputs.len());
    }
    d.stop(Duration::from_secs(10)).await;
    Ok((ms(t), lines as f64))
}

pub(crate) async fn p9(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let lat = args.latency_ms;
    let fake = FakeElectrum::start_tcp();
    fake.set_latency(Duration::from_millis(lat));
    one_withdraw(bin, &fake, 1, 0).await?; // warm-up
    let mut details = Vec::new();
    let mut seed = 1;
    for n in [1usize, 100, 1000] {
        let (mut times, mut lines) = (Vec::new(), Vec::new());
        for _ in 0..args.reps {
            seed += 1;
            let (t, l) = one_withdraw(bin, &fake, n, seed).await?;
            times.push(t);
            lines.push(l);
        }
        let (m, min, max) = median_min_max(&times);
        let (lm, _, lmax) = median_min_max(&lines);
        // A round trip is one line (a JSON-RPC array counts once) at `lat` ms each.
        out.rows.push(Row {
            scenario: format!(
                "P9 `withdraw` (`max`: every unspent an input) with {n} unspent(s), server at {lat} ms, to the signed answer"
            ),
            median: fmt_ms(m),
            min: fmt_ms(min),
            max: fmt_ms(max),
            ratio: format!("{lm:.0} round trips (lines; max {lmax:.0})"),
            goal: format!("≤ 2 round trips (≤ {} ms)", 2 * lat),
            met: met(lmax <= 2.0 && m <= 2.0 * lat as f64),
            cmd: cmd("P9"),
        });
        details.push(format!(
            "{n} unspents: ms {}; lines {}",
            list_ms(&times),
            list_ms(&lines)
        ));
    }
    // validateaddress: no upstream at all; a batch of 100 vs one, on one keep-alive connection.
    let d = start_kdfd(bin, base_conf(kdfd_testkit::shipped_coins()))?;
    let mut c = Client::connect(d.addr).await?;
    let (s, v, _) = post_timed(
        &mut c,
        &activation_item("RICK", &fake.url()),
        Duration::from_secs(30),
    )
    .await?;
    if s != 200 || v["result"] != "success" {
        bail!("RICK activation answered {s} {}", short(&v));
    }
    let item =
        json!({"userpass": USERPASS, "method": "validateaddress", "coin": "RICK", "address": TO});
    let batch = Value::Array(vec![item.clone(); 100]);
    let (mut one, mut many) = (Vec::new(), Vec::new());
    for rep in 0..args.reps + 3 {
        let (s1, v1, t1) = post_timed(&mut c, &item, Duration::from_secs(10)).await?;
        let (s2, v2, t2) = post_timed(&mut c, &batch, Duration::from_secs(10)).await?;
        if s1 != 200 || v1["result"]["is_valid"] != true {
            bail!("validateaddress answered {s1} {}", short(&v1));
        }
        check_all_slots(s2, &v2, 100, |_, x| x["result"]["is_valid"] == true)?;
        if rep >= 3 {
            one.push(ms(t1));
            many.push(ms(t2));
        }
    }
    d.stop(Duration::from_secs(10)).await;
    let (bm, bmin, bmax) = median_min_max(&many);
    let (om, _, _) = median_min_max(&one);
    out.rows.push(Row {
        scenario: "P9 batch of 100 `validateaddress` items vs one".into(),
        median: fmt_ms(bm),
        min: fmt_ms(bmin),
        max: fmt_ms(bmax),
        ratio: format!("{:.1}× (one: {} ms)", bm / om, format_args!("{om:.2}")),
        goal: "reported".into(),
        met: Met::Info,
        cmd: cmd("P9"),
    });
    out.details.push(format!(
        "**P9** each withdrawal runs on a new kdfd (RICK activated with `electrum` first, not \
         timed) so no cache holds the unspents; the answer's `tx_hex` is decoded and must have one \
         input per unspent. Lines the fake server received during the `withdraw` (one line is one \
         round trip; a JSON-RPC array counts once): {}. validateaddress (3 warm-up rounds dropped), \
         one, ms: {}; batch of 100, ms: {}.",
        details.join("; "),
        one.iter()
            .map(|x| format!("{x:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        list_ms(&many)
    ));
    Ok(())
}
