//! Electrum arrays within each server's limits: the array size cap (`electrum_max_array`) and the
//! fall-back to single requests when a server refuses arrays, over real HTTP with the real binary.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::electrum_fake::{FakeElectrum, Mode};
use support::{base_conf, bob_scripthashes, req, shipped_coins, Kdfd, USERPASS};

const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params})
}

#[tokio::test]
async fn a_server_that_refuses_arrays_gets_single_requests() {
    let fake = FakeElectrum::start_tcp();
    let (p2pkh, p2pk) = bob_scripthashes();
    fake.set_balance(&p2pkh, 150_000_000, 0);
    fake.set_balance(&p2pk, 50_000_000, 0);
    fake.set_mode(Mode::RejectArrays);
    let k = Kdfd::start(base_conf(shipped_coins()));
    // The activation's balance read is an array of get_balance + subscribe requests: refused,
    // then sent again one by one, so the answer is right and in time.
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": fake.url()}]}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    assert_eq!(v["balance"], "2", "{v}");
    let arrays_before = fake.max_array_received();
    assert!(arrays_before > 1, "kdfd tried an array first");
    // From now on this connection sends single requests only.
    fake.set_balance(&p2pkh, 250_000_000, 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = fake.lines_received();
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(v["balance"], "3", "{v}");
    assert!(
        fake.lines_received() > lines,
        "the balance was read upstream"
    );
    assert!(
        k.stderr().contains("server refused a JSON-RPC array"),
        "logged once"
    );
}

#[tokio::test]
async fn arrays_stay_within_the_configured_size() {
    let fake = FakeElectrum::start_tcp();
    let mut conf = base_conf(
        json!([{"coin": "RICK", "mm2": 1, "protocol": {"type": "UTXO"},
        "derivation_path": "m/44'/141'"}]),
    );
    conf["passphrase"] = json!(TANK);
    conf["enable_hd"] = json!(true);
    conf["electrum_max_array"] = json!(5);
    let k = Kdfd::start(conf);
    let (_, v) = k
        .post(&v2(
            "task::enable_utxo::init",
            json!({"ticker": "RICK", "activation_params": {
            "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": fake.url()}]}}}}),
        ))
        .await;
    let id = v["result"]["task_id"].as_u64().expect("task id");
    let mut status = Value::Null;
    for _ in 0..200 {
        let (_, v) = k
            .post(&v2("task::enable_utxo::status", json!({"task_id": id})))
            .await;
        status = v["result"].clone();
        if status["status"] != "InProgress" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status["status"], "Ok", "{status}");
    // The scan probes 42 addresses at once; no array may carry more than 5 requests.
    assert!(fake.method_count("blockchain.scripthash.get_history") >= 42);
    let most = fake.max_array_received();
    assert!((2..=5).contains(&most), "largest array: {most}");
}
