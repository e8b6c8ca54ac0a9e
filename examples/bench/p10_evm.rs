//! P10 (issue 15): ETH + 100 ERC-20 tokens on a real anvil, through a proxy in this process that
//! counts the HTTP requests and (in one of the two runs) holds each one 100 ms.

use super::p8_hd::v2;
use super::*;
use alloy_primitives::{Address, U160, U256};
use kdfd::crypto::KeyPair;
use kdfd::evm::address::{display, eth_address};
use kdfd_testkit::anvil::{Anvil, Server};
use kdfd_testkit::PASSPHRASE;

const TOKENS: usize = 100;
const SWAP: &str = "0x8500afc0bc5214728082163326c2ff0c73f4a871";

fn token(n: usize) -> Address {
    Address::from(U160::from(0xcc) << 152 | U160::from(n as u64))
}

fn ticker(n: usize) -> String {
    format!("TK{n}")
}

fn coins() -> Value {
    let mut v = vec![json!({"coin": "ETH", "mm2": 1, "chain_id": 31337,
        "protocol": {"type": "ETH", "protocol_data": {"chain_id": 31337}}})];
    for n in 0..TOKENS {
        v.push(
            json!({"coin": ticker(n), "mm2": 1, "chain_id": 31337, "decimals": 18,
            "protocol": {"type": "ERC20", "protocol_data": {"platform": "ETH",
            "contract_address": display(&token(n))}}}),
        );
    }
    Value::Array(v)
}

/// Token n's balance: n + 1 whole tokens (18 decimals).
fn units(n: usize) -> U256 {
    U256::from(n as u64 + 1) * U256::from(10u64).pow(U256::from(18))
}

async fn chain() -> anyhow::Result<Anvil> {
    let anvil = Anvil::start();
    let bob = eth_address(&KeyPair::from_passphrase(PASSPHRASE)?);
    anvil
        .set_balance(&display(&bob), U256::from(1_500_000_000_000_000_000u64))
        .await;
    for n in 0..TOKENS {
        let c = display(&token(n));
        anvil.plant_token(&c, 18).await;
        anvil.set_token_balance(&c, bob, units(n)).await;
    }
    Ok(anvil)
}

/// A proxy to anvil that holds every request `delay` before forwarding it (a new upstream
/// connection each time, like `Server::proxy`); `requests()` counts what kdfd sent.
async fn delaying_proxy(upstream: std::net::SocketAddr, delay: Duration) -> Server {
    Server::start(move |body| async move {
        tokio::time::sleep(delay).await;
        let hdr: &[(&str, &str)] = &[("content-type", "application/json")];
        match Client::connect(upstream).await {
            Ok(mut c) => match c.send_with_headers("POST", body, hdr).await {
                Ok(r) => (r.status, r.body),
                Err(_) => (502, Bytes::new()),
            },
            Err(_) => (502, Bytes::new()),
        }
    })
    .await
}

fn with_tokens(url: &str, n: usize) -> Value {
    let toks: Vec<Value> = (0..n).map(|i| json!({"ticker": ticker(i)})).collect();
    v2(
        "enable_eth_with_tokens",
        json!({"ticker": "ETH", "nodes": [{"url": url}], "swap_contract_address": SWAP,
               "erc20_tokens_requests": toks}),
    )
}

/// One timed `enable_eth_with_tokens` with `n` tokens on a fresh kdfd; keeps it running when
/// `keep` (for the balance batches). (ms, proxy requests, the daemon).
async fn activate(
    bin: &Path,
    proxy: &Server,
    n: usize,
) -> anyhow::Result<(f64, u64, Kdfd, Client)> {
    let d = start_kdfd(bin, base_conf(coins()))?;
    let mut c = Client::connect(d.addr).await?;
    let r0 = proxy.requests();
    let (s, v, t) = post_timed(
        &mut c,
        &with_tokens(&proxy.url(), n),
        Duration::from_secs(60),
    )
    .await?;
    let got = v["result"]["erc20_addresses_infos"]
        .as_object()
        .and_then(|m| m.values().next())
        .and_then(|a| a["balances"].as_object())
        .map_or(0, |b| b.len());
    if s != 200 || got != n {
        bail!(
            "enable_eth_with_tokens ({n} tokens) answered {s} {}",
            short(&v)
        );
    }
    Ok((ms(t), proxy.requests() - r0, d, c))
}

pub(crate) async fn p10(args: &Args, bin: &Path, out: &mut Section) -> anyhow::Result<()> {
    let anvil = chain().await?;
    let mut details = Vec::new();
    for delay_ms in [args.latency_ms, 0] {
        let proxy = delaying_proxy(anvil.addr, Duration::from_millis(delay_ms)).await;
        let tag = if delay_ms > 0 {
            format!("+{delay_ms} ms per HTTP request")
        } else {
            "no added delay".to_string()
        };
        // Activation: one token vs 100, fresh kdfd each.
        let _ = activate(bin, &proxy, 1).await?; // warm-up
        let (mut a1, mut a100, mut r1, mut r100) = (vec![], vec![], vec![], vec![]);
        for _ in 0..args.reps {
            let (t, r, d, _) = activate(bin, &proxy, 1).await?;
            d.stop(Duration::from_secs(10)).await;
            a1.push(t);
            r1.push(r as f64);
            let (t, r, d, _) = activate(bin, &proxy, TOKENS).await?;
            d.stop(Duration::from_secs(10)).await;
            a100.push(t);
            r100.push(r as f64);
        }
        // Balances: one daemon with ETH + 100 tokens active.
        let (_, _, d, mut c) = activate(bin, &proxy, TOKENS).await?;
        let one = json!({"userpass": USERPASS, "method": "my_balance", "coin": "ETH"});
        let mut items = vec![one.clone()];
        items.extend(
            (0..TOKENS)
                .map(|n| json!({"userpass": USERPASS, "method": "my_balance", "coin": ticker(n)})),
        );
        let batch = Value::Array(items);
        let want: Vec<String> = std::iter::once("1.5".to_string())
            .chain((0..TOKENS).map(|n| (n + 1).to_string()))
            .collect();
        let (mut b1, mut b101, mut rq) = (vec![], vec![], vec![]);
        for rep in 0..args.reps + 1 {
            let (s, v, t1) = post_timed(&mut c, &one, Duration::from_secs(30)).await?;
            if s != 200 || v["balance"] != "1.5" {
                bail!("my_balance ETH answered {s} {}", short(&v));
            }
            let r0 = proxy.requests();
            let (s, v, t) = post_timed(&mut c, &batch, Duration::from_secs(30)).await?;
            let used = proxy.requests() - r0;
            check_all_slots(s, &v, TOKENS + 1, |i, x| {
                x["balance"].as_str() == Some(want[i].as_str())
            })?;
            if rep > 0 {
                b1.push(ms(t1));
                b101.push(ms(t));
                rq.push(used as f64);
            }
        }
        d.stop(Duration::from_secs(10)).await;
        let (bm, bmin, bmax) = median_min_max(&b101);
        let (om, _, _) = median_min_max(&b1);
        let (rm, _, rmax) = median_min_max(&rq);
        out.rows.push(Row {
            scenario: format!(
                "P10 batch of `my_balance` for ETH + {TOKENS} ERC-20 tokens vs one (real anvil, {tag})"
            ),
            median: fmt_ms(bm),
            min: fmt_ms(bmin),
            max: fmt_ms(bmax),
            ratio: format!(
                "{:.2}× (one: {}); {rm:.0} HTTP requests (max {rmax:.0})",
                bm / om,
                fmt_ms(om)
            ),
            goal: "≤ 1.5×, ≤ 2 requests".into(),
            met: if delay_ms > 0 {
                met(bm / om <= 1.5 && rmax <= 2.0)
            } else {
                // Without a delay one read is sub-millisecond: the ratio is not what the goal
                // is about; the request count still is.
                met(rmax <= 2.0)
            },
            cmd: cmd("P10"),
        });
        let (m100, min100, max100) = median_min_max(&a100);
        let (m1, _, _) = median_min_max(&a1);
        out.rows.push(Row {
            scenario: format!(
                "P10 `enable_eth_with_tokens` with {TOKENS} tokens vs one token ({tag})"
            ),
            median: fmt_ms(m100),
            min: fmt_ms(min100),
            max: fmt_ms(max100),
            ratio: format!(
                "{:.2}× (one: {}); requests {:.0} vs {:.0}",
                m100 / m1,
                fmt_ms(m1),
                median_min_max(&r100).0,
                median_min_max(&r1).0
            ),
            goal: "≤ 1.5×".into(),
            met: if delay_ms > 0 {
                met(m100 / m1 <= 1.5)
            } else {
                Met::Info
            },
            cmd: cmd("P10"),
        });
        details.push(format!(
            "{tag}: activation with one token, ms: {} (HTTP requests {}); with {TOKENS}, ms: {} \
             (requests {}); one `my_balance`, ms: {}; the {}-item batch, ms: {} (requests {})",
            list_ms(&a1),
            list_ms(&r1),
            list_ms(&a100),
            list_ms(&r100),
            list_ms(&b1),
            TOKENS + 1,
            list_ms(&b101),
            list_ms(&rq)
        ));
    }
    out.details.push(format!(
        "**P10** anvil (`scripts/anvil/install.sh`) with bob holding 1.5 ETH and token n (a planted \
         66-byte ERC-20 subset, `kdfd_testkit::anvil::token_runtime`) n + 1 tokens; kdfd's node URL \
         is a proxy in the bench process (every request: a new connection to anvil, after the \
         added delay), which counts requests. Every activation is on a new kdfd; every batch slot \
         is checked for its balance; the first balance round is a warm-up. The ratio without a \
         delay compares sub-millisecond reads, so only the request count is judged there. {}.",
        details.join("; ")
    ));
    Ok(())
}
