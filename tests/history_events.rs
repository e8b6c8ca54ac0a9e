//! A history sync step that fails half-way still sends the TX_HISTORY events of what it had
//! committed: those entries stay stored, so no later step reports them again.

use kdfd_testkit::history_common as common;
mod support;

use bitcoin::hashes::Hash;
use bitcoin::{ScriptBuf, Txid};
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::sse::Sse;
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, USERPASS};

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params, "id": 1})
}

#[tokio::test]
async fn a_failed_step_still_reports_what_it_stored() {
    const GOOD: usize = 200;
    let (p2pkh, _) = bob_scripthashes();
    let fake = FakeElectrum::start_tcp();
    let outs: Vec<(u64, ScriptBuf)> = (0..GOOD).map(|_| (COIN, other_script())).collect();
    let f = tx(&[(Txid::from_byte_array([9; 32]), 0)], &outs);
    fake.add_tx(&f.compute_txid().to_string(), &hex(&raw(&f)));
    let mut items = Vec::new();
    for i in 0..GOOD {
        let t = tx(
            &[(f.compute_txid(), i as u32)],
            &[(COIN - 500, bob_script())],
        );
        let id = t.compute_txid().to_string();
        fake.add_tx(&id, &hex(&raw(&t)));
        // Heights 3..: newest first, these are the first two chunks of 100.
        items.push((id, 3 + (i % 50) as i64));
    }
    // The oldest entry, in the third chunk, is one the server cannot give: that chunk fails.
    let missing = "ab".repeat(32);
    items.push((missing.clone(), 1));
    for h in 1..=60 {
        fake.set_header(h, &header(BLOCK_TIME + h as u32));
    }
    let refs: Vec<(&str, i64)> = items.iter().map(|(id, h)| (id.as_str(), *h)).collect();
    fake.set_history(&p2pkh, &refs);
    // Slow enough that the stream is enabled before the first chunk is committed.
    fake.set_latency(Duration::from_millis(300));

    let db = tempfile::tempdir().unwrap();
    let mut conf = base_conf(shipped_coins());
    conf["dbdir"] = json!(db.path().to_str().unwrap());
    conf["event_streaming_configuration"] = json!({});
    let k = Kdfd::start(conf);
    let mut s = Sse::open(k.addr, "/event-stream?id=3", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": fake.url()}], "tx_history": true}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    let (_, v) = k
        .post(&v2(
            "stream::tx_history::enable",
            json!({"client_id": 3, "coin": "RICK"}),
        ))
        .await;
    assert_eq!(
        v["result"],
        json!({"streamer_id": "TX_HISTORY:RICK"}),
        "{v}"
    );

    let mut seen = HashSet::new();
    let until = Instant::now() + Duration::from_secs(30);
    while seen.len() < GOOD && Instant::now() < until {
        let Some(raw) = s.next(Duration::from_secs(10)).await else {
            break;
        };
        let Some(body) = raw.strip_prefix("data: ") else {
            continue;
        };
        let ev: Value = serde_json::from_str(body.trim()).unwrap();
        if ev["_type"] == "TX_HISTORY:RICK" {
            seen.insert(ev["message"]["tx_hash"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen.len(), GOOD, "one event per stored entry");
    assert!(!seen.contains(&missing));
    // The step did fail, and what it stored is on the page.
    let (_, v) = k
        .post(&v2("my_tx_history", json!({"coin": "RICK", "limit": 1})))
        .await;
    assert_eq!(v["result"]["sync_status"]["state"], "Error", "{v}");
    assert_eq!(v["result"]["total"], GOOD, "{v}");
}
