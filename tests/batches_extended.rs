//! kdfd's batch extensions over real HTTP: dependency-safe ordering, the JSON-RPC 2.0 dialect,
//! atomic batches and per-method caps. KDF-style requests keep KDF's answers (see rpc_core.rs).

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, bob_scripthashes, req, shipped_coins, test_coins, Kdfd, USERPASS};

fn activate(coin: &str, url: &str) -> Value {
    req("electrum", json!({"coin": coin, "servers": [{"url": url}]}))
}

fn jr(method: &str, params: Value, id: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id})
}

#[tokio::test]
async fn dependent_items_are_ordered_every_time() {
    let (p2pkh, _) = bob_scripthashes();
    let server = FakeElectrum::start_tcp();
    server.set_balance(&p2pkh, 250_000_000, 0);
    // Latency makes the old race likely: my_balance would overtake the activation.
    server.set_latency(Duration::from_millis(15));
    let k = Kdfd::start(base_conf(shipped_coins()));
    for round in 0..25 {
        let (status, v) = k
            .post(&json!([
                activate("RICK", &server.url()),
                req("my_balance", json!({"coin": "RICK"})),
                {"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": round},
                req("disable_coin", json!({"coin": "RICK"})),
                req("my_balance", json!({"coin": "RICK"})),
                jr("electrum", json!({"userpass": USERPASS, "coin": "RICK", "servers": [{"url": server.url()}]}), json!(round)),
                jr("my_balance", json!({"userpass": USERPASS, "coin": "RICK"}), json!("b")),
                req("disable_coin", json!({"coin": "RICK"})),
            ]))
            .await;
        assert_eq!(status, 200);
        assert_eq!(v[0]["result"], "success", "round {round}: {v}");
        assert_eq!(v[1]["balance"], "2.5", "round {round}: {v}");
        assert_eq!(v[3]["result"]["coin"], "RICK", "round {round}: {v}");
        assert!(
            v[4]["error"]
                .as_str()
                .unwrap()
                .contains("No such coin: RICK"),
            "round {round}: {v}"
        );
        assert_eq!(v[5]["result"]["result"], "success", "round {round}: {v}");
        assert_eq!(v[6]["result"]["balance"], "2.5", "round {round}: {v}");
        assert_eq!(v[7]["result"]["coin"], "RICK", "round {round}: {v}");
    }
}

#[tokio::test]
async fn get_enabled_coins_sees_earlier_activations() {
    let server = FakeElectrum::start_tcp();
    server.set_latency(Duration::from_millis(10));
    let k = Kdfd::start(base_conf(shipped_coins()));
    for _ in 0..10 {
        let (_, v) = k
            .post(&json!([
                activate("RICK", &server.url()),
                req("get_enabled_coins", json!({})),
                req("disable_coin", json!({"coin": "RICK"})),
                req("get_enabled_coins", json!({})),
            ]))
            .await;
        assert_eq!(v[1]["result"][0]["ticker"], "RICK", "{v}");
        assert_eq!(v[3], json!({"result": []}), "{v}");
    }
}

#[tokio::test]
async fn independent_items_still_run_side_by_side() {
    let a = FakeElectrum::start_tcp();
    let b = FakeElectrum::start_tcp();
    a.set_latency(Duration::from_millis(300));
    b.set_latency(Duration::from_millis(300));
    let k = Kdfd::start(base_conf(shipped_coins()));
    let t = Instant::now();
    let (_, v) = k
        .post(&json!([
            activate("RICK", &a.url()),
            activate("MORTY", &b.url()),
            req("my_balance", json!({"coin": "RICK"}))
        ]))
        .await;
    let took = t.elapsed();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("error").is_none()),
        "{v}"
    );
    // Two activations side by side (2 round trips each), then RICK's balance: 3 round trips, not 5.
    assert!(took < Duration::from_millis(1400), "{took:?}");
}

#[tokio::test]
async fn jsonrpc_dialect() {
    let k = Kdfd::start(base_conf(shipped_coins()));
    let (status, v) = k.post(&jr("version", json!({}), json!("v1"))).await;
    assert_eq!(status, 200);
    assert_eq!(v["jsonrpc"], "2.0");
    assert_eq!(v["id"], "v1");
    assert!(v["result"]["result"].is_string());

    let (_, v) = k
        .post(&jr(
            "get_enabled_coins",
            json!({"userpass": USERPASS}),
            json!(1),
        ))
        .await;
    assert_eq!(
        v,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"result": []}})
    );

    // Userpass from an Authorization header, as bitcoind clients send it.
    let mut c = k.client().await;
    for header in [
        format!("Basic {}", b64(&format!("user:{USERPASS}"))),
        format!("Bearer {USERPASS}"),
    ] {
        let r = c
            .send_with_headers(
                "POST",
                jr("get_enabled_coins", json!({}), json!(2)).to_string(),
                &[("authorization", &header)],
            )
            .await
            .unwrap();
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["result"], json!({"result": []}), "{header}: {v}");
    }
    // The header is for JSON-RPC items only: KDF-style items keep their own userpass.
    let r = c
        .send_with_headers(
            "POST",
            json!({"method": "get_enabled_coins"}).to_string(),
            &[("authorization", &format!("Bearer {USERPASS}"))],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 500);

    let code = |v: &Value| v["error"]["code"].as_i64().unwrap();
    let (_, v) = k
        .post(&jr(
            "get_enabled_coins",
            json!({"userpass": "nope"}),
            json!(3),
        ))
        .await;
    assert_eq!((code(&v), v["id"].clone()), (-32002, json!(3)), "{v}");
    let (_, v) = k.post(&jr("get_enabled_coins", json!({}), json!(3))).await;
    assert_eq!(code(&v), -32001);
    let (_, v) = k
        .post(&jr("no_such", json!({"userpass": USERPASS}), json!(4)))
        .await;
    assert_eq!(code(&v), -32601);
    let (_, v) = k.post(&jr("my_balance", json!([1, 2]), json!(5))).await;
    assert_eq!(code(&v), -32602);
    let (_, v) = k
        .post(&jr(
            "electrum",
            json!({"userpass": USERPASS, "coin": "RICK"}),
            json!(6),
        ))
        .await;
    assert_eq!(code(&v), -32602);
    let (_, v) = k
        .post(&jr(
            "my_balance",
            json!({"userpass": USERPASS, "coin": "RICK"}),
            json!(7),
        ))
        .await;
    assert_eq!(code(&v), -32010);
    assert_eq!(v["error"]["data"]["error_type"], "NoSuchCoin");
    let (_, v) = k
        .post(&jr(
            "disable_coin",
            json!({"userpass": USERPASS, "coin": "RICK"}),
            json!(8),
        ))
        .await;
    assert_eq!(code(&v), -32010);
    for bad in [
        json!({"jsonrpc": "2.0", "id": 9}),
        json!({"jsonrpc": "1.0", "method": "version", "id": 9}),
        json!({"jsonrpc": "2.0", "method": "version", "id": {"x": 1}}),
        json!({"jsonrpc": "2.0", "method": "version", "id": 9, "extra": true}),
    ] {
        let (_, v) = k.post(&bad).await;
        assert_eq!(code(&v), -32600, "{bad}: {v}");
    }
    let r = k
        .post_raw("POST", r#"{"jsonrpc":"2.0","method":"version","#)
        .await;
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!((code(&v), v["id"].clone()), (-32700, Value::Null));

    // Notifications run but get no slot; a batch of only notifications answers 204, no body.
    let r = k
        .post_raw(
            "POST",
            json!({"jsonrpc": "2.0", "method": "version"}).to_string(),
        )
        .await;
    assert_eq!((r.status, r.body.len()), (204, 0));
    let r = k
        .post_raw("POST", json!([{"jsonrpc": "2.0", "method": "version"}, {"jsonrpc": "2.0", "method": "get_enabled_coins", "params": {"userpass": USERPASS}}]).to_string())
        .await;
    assert_eq!((r.status, r.body.len()), (204, 0));

    // Dialects mix in one array, each answered in its own shape, in request order.
    let (status, v) = k
        .post(&json!([
            jr("version", json!({}), json!("a")),
            {"jsonrpc": "2.0", "method": "version"},
            {"method": "version"},
            {"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 5},
            jr("get_enabled_coins", json!({"userpass": USERPASS}), json!(null)),
        ]))
        .await;
    assert_eq!(status, 200);
    let slots = v.as_array().unwrap();
    assert_eq!(slots.len(), 4, "the notification has no slot: {v}");
    assert_eq!(slots[0]["id"], "a");
    assert!(slots[1]["result"].is_string() && slots[1].get("jsonrpc").is_none());
    assert_eq!(slots[2]["mmrpc"], "2.0");
    assert_eq!(
        (slots[3]["jsonrpc"].clone(), slots[3]["id"].clone()),
        (json!("2.0"), Value::Null)
    );
    let (_, v) = k.post(&json!([])).await;
    assert_eq!(v, json!([]));
}

fn b64(s: &str) -> String {
    use bitcoin::base64::Engine;
    bitcoin::base64::engine::general_purpose::STANDARD.encode(s)
}

#[tokio::test]
async fn atomic_batches_roll_back() {
    let (p2pkh, _) = bob_scripthashes();
    let good = FakeElectrum::start_tcp();
    good.set_balance(&p2pkh, 100_000_000, 0);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let k = Kdfd::start(base_conf(shipped_coins()));

    // The second activation fails: the first is undone.
    let (status, v) = k
        .post(&json!({
            "batch": [{"method": "version"}],
            "atomicBatch": [activate("RICK", &good.url()), req("electrum", json!({"coin": "MORTY", "servers": [{"url": dead, "timeout_sec": 1}]}))],
        }))
        .await;
    assert_eq!(status, 200);
    assert!(v["batch"][0]["result"].is_string());
    let a = &v["atomicBatch"];
    assert_eq!(
        (a["status"].clone(), a["failed_index"].clone()),
        (json!("failed"), json!(1)),
        "{v}"
    );
    assert!(
        a["message"]
            .as_str()
            .unwrap()
            .contains("All servers errored"),
        "{v}"
    );
    assert_eq!(a["details"][0]["result"], "success");
    let (_, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(v, json!({"result": []}), "RICK was rolled back");

    // All good: all applied.
    let (_, v) = k
        .post(&json!({"atomicBatch": [activate("RICK", &good.url()), req("my_balance", json!({"coin": "RICK"}))]}))
        .await;
    assert_eq!(v["atomicBatch"]["status"], "success", "{v}");
    assert_eq!(v["atomicBatch"]["details"][1]["balance"], "1");
    assert!(v.get("batch").is_none());

    // A deactivation undone re-activates the coin with its original request.
    let (_, v) = k
        .post(&json!({"atomicBatch": [req("disable_coin", json!({"coin": "RICK"})), req("my_balance", json!({"coin": "MORTY"}))]}))
        .await;
    assert_eq!(
        (
            v["atomicBatch"]["status"].clone(),
            v["atomicBatch"]["failed_index"].clone()
        ),
        (json!("failed"), json!(1)),
        "{v}"
    );
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(v["balance"], "1", "RICK is back: {v}");

    // A malformed item aborts the set before anything runs.
    for bad in [
        json!(5),
        json!({"userpass": USERPASS}),
        json!({"userpass": "nope", "method": "my_balance", "coin": "RICK"}),
        req("my_balance", json!({})),
    ] {
        let (_, v) = k
            .post(&json!({"atomicBatch": [activate("MORTY", &good.url()), bad.clone()]}))
            .await;
        assert_eq!(
            (
                v["atomicBatch"]["status"].clone(),
                v["atomicBatch"]["failed_index"].clone()
            ),
            (json!("failed"), json!(1)),
            "{bad}: {v}"
        );
        assert_eq!(v["atomicBatch"]["details"], json!([]), "nothing ran: {v}");
    }
    let (_, v) = k.post(&req("my_balance", json!({"coin": "MORTY"}))).await;
    assert!(
        v["error"].as_str().unwrap().contains("No such coin: MORTY"),
        "{v}"
    );
}

#[tokio::test]
async fn per_method_caps() {
    let server = FakeElectrum::start_tcp();
    let mut conf = base_conf(test_coins(100));
    conf["batch_method_caps"] = json!({"my_balance": 2});
    let k = Kdfd::start(conf);
    // The default cap lets a GUI activate 100 coins in one batch.
    let batch: Vec<Value> = (0..100)
        .map(|i| activate(&format!("T{i}"), &server.url()))
        .collect();
    let (_, v) = k.post(&Value::Array(batch)).await;
    assert!(support::all_activated(&v), "{v}");
    let (_, v) = k
        .post(&json!([
            req("my_balance", json!({"coin": "T0"})),
            req("my_balance", json!({"coin": "T1"})),
            req("my_balance", json!({"coin": "T2"})),
            {"mmrpc": "2.0", "userpass": USERPASS, "method": "my_balance", "params": {"coin": "T3"}, "id": 1},
        ]))
        .await;
    assert_eq!(v[0]["balance"], "0");
    assert_eq!(v[1]["balance"], "0");
    assert_eq!(
        v[2],
        json!({"error": "Batch holds more than 2 'my_balance' items; this one is over the cap"})
    );
    assert_eq!(v[3]["error_type"], "OverMethodCap");
    // `stop` is capped at one per batch by default.
    let (_, v) = k.post(&json!([{"method": "version"}, {"userpass": "x", "method": "stop"}, {"userpass": "x", "method": "stop"}])).await;
    assert!(
        v[2]["error"].as_str().unwrap().contains("over the cap"),
        "{v}"
    );
}
