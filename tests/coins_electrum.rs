//! UTXO coins over Electrum, end to end over real HTTP and real sockets: the real kdfd binary
//! against the in-process test Electrum server (TCP and TLS) with its fault switches.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::electrum_fake::{FakeElectrum, Mode};
use support::{base_conf, bob_scripthashes, req, shipped_coins, test_coins, Kdfd, BOB_R_ADDRESS};

fn activate(coin: &str, servers: Value) -> Value {
    req("electrum", json!({"coin": coin, "servers": servers}))
}

fn shipped() -> Kdfd {
    Kdfd::start(base_conf(shipped_coins()))
}

#[tokio::test]
async fn kdf_docs_batch_then_balances() {
    let (p2pkh, p2pk) = bob_scripthashes();
    let rick = FakeElectrum::start_tcp();
    rick.set_balance(&p2pkh, 700_000_000, 77_700_000);
    rick.set_balance(&p2pk, 100_000, 0);
    let morty = FakeElectrum::start_tcp();
    let k = shipped();
    let (status, v) = k
        .post(&json!([
            activate("RICK", json!([{"url": rick.url()}])),
            activate("MORTY", json!([{"url": morty.url(), "protocol": "TCP"}])),
            {"userpass": "error", "method": "electrum", "coin": "DOC", "servers": [{"url": morty.url()}]},
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v[0].to_string(),
        json!({"result": "success", "address": BOB_R_ADDRESS, "balance": "7.778", "unspendable_balance": "0",
               "coin": "RICK", "required_confirmations": 1, "requires_notarization": false, "mature_confirmations": 100})
        .to_string(),
        "exact KDF key order"
    );
    assert_eq!(v[1]["result"], "success");
    assert_eq!(v[1]["balance"], "0");
    assert!(
        v[2]["error"]
            .as_str()
            .unwrap()
            .contains("Userpass is invalid!"),
        "{v}"
    );

    let (status, v) = k
        .post(&json!([
            req("my_balance", json!({"coin": "RICK"})),
            req("my_balance", json!({"coin": "MORTY"}))
        ]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v[0].to_string(),
        json!({"coin": "RICK", "balance": "7.778", "unspendable_balance": "0", "address": BOB_R_ADDRESS}).to_string()
    );
    assert_eq!(v[1]["balance"], "0");

    // A payment pushed by the server (a status notification) shows in the next my_balance, once
    // the notification has crossed the wire.
    rick.set_balance(&p2pkh, 1, 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(v["balance"], "0.00100001");

    // Listed in activation order; the two above finished concurrently, so compare sorted.
    let sorted = |list: &Value| {
        let mut l = list.as_array().unwrap().clone();
        l.sort_by_key(|c| c["ticker"].as_str().unwrap().to_string());
        Value::Array(l)
    };
    let (_, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(
        sorted(&v["result"]),
        json!([{"ticker": "MORTY", "address": BOB_R_ADDRESS}, {"ticker": "RICK", "address": BOB_R_ADDRESS}])
    );
    let (_, v) = k.post(&json!({"mmrpc": "2.0", "userpass": support::USERPASS, "method": "get_enabled_coins", "id": 1})).await;
    assert_eq!((&v["mmrpc"], &v["id"]), (&json!("2.0"), &json!(1)));
    assert_eq!(
        sorted(&v["result"]["coins"]),
        json!([{"ticker": "MORTY"}, {"ticker": "RICK"}])
    );

    let (status, v) = k.post(&req("disable_coin", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"result": {"coin": "RICK", "cancelled_orders": [], "passivized": false}})
    );
    let (status, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 500);
    assert!(v["error"].as_str().unwrap().contains("No such coin: RICK"));
    let (status, v) = k.post(&req("disable_coin", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 500);
    assert_eq!(
        v,
        json!({"error": "No such coin: RICK", "orders": {"matching": [], "cancelled": []}, "active_swaps": []})
    );
    // Once disabled it can be activated again.
    let (_, v) = k
        .post(&activate("RICK", json!([{"url": rick.url()}])))
        .await;
    assert_eq!(v["result"], "success", "{v}");
}

#[tokio::test]
async fn what_one_activation_sends() {
    let server = FakeElectrum::start_tcp();
    let k = shipped();
    let (_, v) = k
        .post(&activate("DOC", json!([{"url": server.url()}])))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    assert_eq!(
        server.methods(),
        vec![
            "server.version",
            "blockchain.scripthash.get_balance",
            "blockchain.scripthash.get_balance",
            "blockchain.scripthash.subscribe",
            "blockchain.scripthash.subscribe"
        ]
    );
    // Balances and subscriptions travel as one JSON-RPC array: two lines in all.
    assert_eq!(server.lines_received(), 2);
    assert_eq!(server.connections_accepted(), 1);
    let name = &server.client_names()[0];
    assert_eq!(name, &format!("kdfd-test GUI/MM2 {}", v_version(&k).await));
    eprintln!(
        "MEASURE one activation sends: {:?} in {} lines",
        server.methods(),
        server.lines_received()
    );
}

async fn v_version(k: &Kdfd) -> String {
    let (_, v) = k.post(&json!({"method": "version"})).await;
    v["result"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn activation_errors_are_clear_and_leave_no_trace() {
    let server = FakeElectrum::start_tcp();
    let k = Kdfd::start(base_conf(json!([
        {"coin": "RICK", "mm2": 1, "protocol": {"type": "UTXO"}},
        {"coin": "NOMM2", "protocol": {"type": "UTXO"}},
        {"coin": "ETHX", "mm2": 1, "protocol": {"type": "ETH"}},
    ])));
    let url = server.url();
    let cases = [
        (req("electrum", json!({"servers": [{"url": url}]})), "No 'coin' field"),
        (req("electrum", json!({"coin": "RICK"})), "invalid type: null, expected a sequence"),
        (req("electrum", json!({"coin": "RICK", "servers": "x"})), "expected a sequence"),
        (req("electrum", json!({"coin": "RICK", "servers": []})), "min_connected (1) must be <= max_connected (0)"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url}], "min_connected": 0})), "min_connected must be greater than 0"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url}], "min_connected": 2, "max_connected": 1})), "min_connected (2) must be <= max_connected (1)"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"nourl": 1}]})), "url"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url}], "min_connected": 2, "max_connected": 5})), "min_connected (2) must be <= the number of servers (1)"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url, "protocol": "WSS"}]})), "not supported"),
        (req("electrum", json!({"coin": "NOMM2", "servers": [{"url": url}]})), "mm2 param is not set neither in coins config nor enable request"),
        (req("electrum", json!({"coin": "NOPE", "servers": [{"url": url}]})), "mm2 param is not set"),
        (req("electrum", json!({"coin": "NOPE", "mm2": 1, "servers": [{"url": url}]})), "\"protocol\" field is missing in coins file"),
        (req("electrum", json!({"coin": "ETHX", "servers": [{"url": url}]})), "UTXO coins only"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url}], "address_format": {"format": "segwit"}})), "Cannot use Segwit address format for coin without segwit support or bech32_hrp in config"),
        (req("electrum", json!({"coin": "RICK", "servers": [{"url": url}], "required_confirmations": "x"})), "required_confirmations"),
    ];
    for (request, needle) in cases {
        let (status, v) = k.post(&request).await;
        assert_eq!(status, 500, "{request}");
        let err = v["error"].as_str().unwrap_or_else(|| panic!("{v}"));
        assert!(err.contains(needle), "{request}: {err}");
    }
    let (_, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(v, json!({"result": []}));
    // With mm2 given in the request, a coin entry without it activates.
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "NOMM2", "mm2": 1, "servers": [{"url": url}]}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "NOMM2", "mm2": 1, "servers": [{"url": url}]}),
        ))
        .await;
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("Coin NOMM2 already initialized"),
        "{v}"
    );
}

#[tokio::test]
async fn request_overrides_and_segwit_format() {
    let server = FakeElectrum::start_tcp();
    let k = shipped();
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "KMD", "servers": [{"url": server.url()}]}),
        ))
        .await;
    assert_eq!(
        (
            v["required_confirmations"].clone(),
            v["requires_notarization"].clone()
        ),
        (json!(2), json!(true))
    );
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "DOC", "servers": [{"url": server.url()}], "required_confirmations": 5, "requires_notarization": true, "tx_history": false}),
        ))
        .await;
    assert_eq!(
        (
            v["required_confirmations"].clone(),
            v["requires_notarization"].clone()
        ),
        (json!(5), json!(true))
    );
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "BTC-segwit", "servers": [{"url": server.url()}]}),
        ))
        .await;
    assert_eq!(
        v["address"], "bc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580et0hw5v",
        "{v}"
    );
    let (_, v) = k
        .post(&req("electrum", json!({"coin": "LTC", "servers": [{"url": server.url()}], "address_format": {"format": "segwit"}})))
        .await;
    assert_eq!(
        v["address"], "ltc1qk5rq3z4z5w6tk8dr52dlqr8p54gw580e0nd2vu",
        "{v}"
    );
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "BTC", "servers": [{"url": server.url()}]}),
        ))
        .await;
    assert_eq!(v["address"], "1HWAXvm37X3oZbSwYfPNKRcLBp8PeTzH7N", "{v}");
}

#[tokio::test]
async fn ssl_with_self_signed_certificate() {
    let server = FakeElectrum::start_ssl();
    let k = shipped();
    let (status, v) = k
        .post(&activate(
            "RICK",
            json!([{"url": server.url(), "protocol": "SSL"}]),
        ))
        .await;
    assert_eq!(status, 500);
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("TLS handshake failed") && err.contains("certificate"),
        "{err}"
    );
    assert!(
        err.contains("set \"disable_cert_verification\": true"),
        "{err}"
    );
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert!(
        v["error"].as_str().unwrap().contains("No such coin"),
        "a failed activation leaves no trace"
    );
    let (status, v) = k
        .post(&activate(
            "RICK",
            json!([{"url": server.url(), "protocol": "SSL", "disable_cert_verification": true}]),
        ))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["address"], BOB_R_ADDRESS);
    // Also by host name.
    let by_name = format!("localhost:{}", server.addr().port());
    let (_, v) = k
        .post(&activate(
            "MORTY",
            json!([{"url": by_name, "protocol": "SSL", "disable_cert_verification": true}]),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
}

fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

#[tokio::test]
async fn failover_and_all_down() {
    let (p2pkh, _) = bob_scripthashes();
    let up = FakeElectrum::start_tcp();
    up.set_balance(&p2pkh, 123, 0);
    let k = shipped();
    let t = Instant::now();
    let (_, v) = k
        .post(&activate(
            "RICK",
            json!([{"url": closed_port()}, {"url": up.url()}]),
        ))
        .await;
    assert_eq!(
        (v["result"].clone(), v["balance"].clone()),
        (json!("success"), json!("0.00000123")),
        "{v}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));

    let t = Instant::now();
    let (status, v) = k
        .post(&activate(
            "MORTY",
            json!([{"url": closed_port()}, {"url": closed_port(), "timeout_sec": 2}]),
        ))
        .await;
    assert_eq!(status, 500);
    let err = v["error"].as_str().unwrap();
    assert!(
        err.contains("All servers errored") && err.contains("connection failed"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let (_, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(
        v["result"].as_array().unwrap().len(),
        1,
        "MORTY is not half-active: {v}"
    );
}

#[tokio::test]
async fn silent_garbage_dropping_and_refusing_servers() {
    let k = shipped();
    for (mode, needle) in [
        (Mode::Silent, "no answer within 1s"),
        (Mode::Garbage, "connection closed"),
        (Mode::Drop, "connection closed"),
        (Mode::RejectVersion, "server refused protocol version"),
    ] {
        let server = FakeElectrum::start_tcp();
        server.set_mode(mode);
        let t = Instant::now();
        let (status, v) = k
            .post(&activate(
                "RICK",
                json!([{"url": server.url(), "timeout_sec": 1}]),
            ))
            .await;
        let took = t.elapsed();
        assert_eq!(status, 500, "{mode:?}");
        let err = v["error"].as_str().unwrap();
        assert!(err.contains(needle), "{mode:?}: {err}");
        assert!(took < Duration::from_secs(3), "{mode:?} took {took:?}");
        let (_, v) = k.post(&req("get_enabled_coins", json!({}))).await;
        assert_eq!(v, json!({"result": []}), "{mode:?}");
    }
}

#[tokio::test]
async fn silent_server_mid_session_then_recovery() {
    let (p2pkh, _) = bob_scripthashes();
    let server = FakeElectrum::start_tcp();
    server.set_balance(&p2pkh, 5, 0);
    // Every my_balance goes upstream here; the cache would (rightly) answer for a silent server.
    let mut conf = base_conf(shipped_coins());
    conf["balance_cache"] = json!(false);
    let k = Kdfd::start(conf);
    let (_, v) = k
        .post(&activate(
            "RICK",
            json!([{"url": server.url(), "timeout_sec": 1}]),
        ))
        .await;
    assert_eq!(v["result"], "success");
    server.set_mode(Mode::Silent);
    let t = Instant::now();
    let (status, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 500);
    assert!(
        v["error"].as_str().unwrap().contains("no answer within"),
        "{v}"
    );
    assert!(t.elapsed() < Duration::from_secs(3));
    server.set_mode(Mode::Normal);
    let (status, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(
        (status, v["balance"].clone()),
        (200, json!("0.00000005")),
        "{v}"
    );

    // Server restarted on the same port while the coin is active: the next request reconnects.
    server.stop();
    let (status, _) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(status, 500);
    server.restart();
    let (status, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(
        (status, v["balance"].clone()),
        (200, json!("0.00000005")),
        "{v}"
    );
}

#[tokio::test]
async fn same_coin_twice_in_one_batch_exactly_one_wins() {
    let server = FakeElectrum::start_tcp();
    server.set_latency(Duration::from_millis(100));
    let k = shipped();
    for _ in 0..5 {
        let (_, v) = k
            .post(&json!([
                activate("RICK", json!([{"url": server.url()}])),
                activate("RICK", json!([{"url": server.url()}]))
            ]))
            .await;
        let wins = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["result"] == "success")
            .count();
        assert_eq!(wins, 1, "{v}");
        let loser = v
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s.get("error").is_some())
            .unwrap();
        assert!(
            loser["error"]
                .as_str()
                .unwrap()
                .contains("Coin RICK already initialized"),
            "{v}"
        );
        let (_, v) = k.post(&req("disable_coin", json!({"coin": "RICK"}))).await;
        assert_eq!(v["result"]["coin"], "RICK");
    }
}

#[tokio::test]
async fn fifty_activations_run_concurrently_in_order() {
    let servers: Vec<FakeElectrum> = (0..50)
        .map(|i| {
            let s = FakeElectrum::start_tcp();
            // 100..=400 ms, different per coin, the slowest in the middle of the batch.
            s.set_latency(Duration::from_millis(100 + (i * 37 % 301) as u64));
            s
        })
        .collect();
    let k = Kdfd::start(base_conf(test_coins(51)));
    let batch: Vec<Value> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| activate(&format!("T{i}"), json!([{"url": s.url()}])))
        .collect();
    let slowest = servers
        .iter()
        .enumerate()
        .map(|(i, _)| 100 + (i * 37 % 301) as u64)
        .max()
        .unwrap();
    let t = Instant::now();
    let (status, v) = k.post(&Value::Array(batch)).await;
    let whole = t.elapsed();
    assert_eq!(status, 200);
    for (i, slot) in v.as_array().unwrap().iter().enumerate() {
        assert_eq!(slot["result"], "success", "{i}: {slot}");
        assert_eq!(slot["coin"], format!("T{i}"));
    }
    // One activation costs two round trips (handshake, balances); the batch costs the slowest.
    let bound = Duration::from_millis(2 * slowest) * 2;
    assert!(
        whole < bound,
        "batch took {whole:?}, slowest coin needs ~{}ms",
        2 * slowest
    );

    let single = FakeElectrum::start_tcp();
    single.set_latency(Duration::from_millis(slowest));
    let t = Instant::now();
    let (_, v) = k
        .post(&activate("T50", json!([{"url": single.url()}])))
        .await;
    let one = t.elapsed();
    assert_eq!(v["result"], "success");
    eprintln!(
        "MEASURE 50 activations (100-{slowest} ms servers): batch {whole:?}, one activation at {slowest} ms {one:?}, ratio {:.2}x",
        whole.as_secs_f64() / one.as_secs_f64()
    );
}

#[tokio::test]
async fn cached_balances_follow_notifications() {
    let (p2pkh, p2pk) = bob_scripthashes();
    let server = FakeElectrum::start_tcp();
    server.set_balance(&p2pkh, 100, 0);
    let k = shipped();
    let (_, v) = k
        .post(&activate("RICK", json!([{"url": server.url()}])))
        .await;
    assert_eq!(v["balance"], "0.000001");
    let reads = || server.method_count("blockchain.scripthash.get_balance");
    let before = reads();
    // Warm: answered from the cache, nothing goes upstream.
    for _ in 0..5 {
        let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
        assert_eq!(v["balance"], "0.000001");
    }
    assert_eq!(reads(), before, "cache hits send nothing");
    // A payment: the server pushes a status change, the next my_balance reads upstream.
    server.set_balance(&p2pk, 50, -20);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(v["balance"], "0.0000013");
    assert_eq!(reads(), before + 2);
    // The subscription's connection dies: the cache is forgotten, the next read goes upstream.
    server.stop();
    server.restart();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.set_balance(&p2pkh, 7, 0);
    let (_, v) = k.post(&req("my_balance", json!({"coin": "RICK"}))).await;
    assert_eq!(v["balance"], "0.00000037");
}

#[tokio::test]
async fn coins_on_one_server_share_a_connection_and_a_round_trip() {
    let server = FakeElectrum::start_tcp();
    server.set_latency(Duration::from_millis(50));
    let mut conf = base_conf(test_coins(20));
    // Cold reads: every my_balance goes upstream.
    conf["balance_cache"] = json!(false);
    let k = Kdfd::start(conf);
    let activations: Vec<Value> = (0..20)
        .map(|i| activate(&format!("T{i}"), json!([{"url": server.url()}])))
        .collect();
    let (_, v) = k.post(&Value::Array(activations)).await;
    assert!(support::all_activated(&v), "{v}");
    assert_eq!(
        server.connections_accepted(),
        1,
        "one connection for 20 coins"
    );
    let before = server.lines_received();
    let reads = server.method_count("blockchain.scripthash.get_balance");
    let batch: Vec<Value> = (0..200)
        .map(|i| req("my_balance", json!({"coin": format!("T{}", i % 20)})))
        .collect();
    let t = Instant::now();
    let (_, v) = k.post(&Value::Array(batch)).await;
    let took = t.elapsed();
    assert!(
        v.as_array().unwrap().iter().all(|s| s["balance"] == "0"),
        "{v}"
    );
    let lines = server.lines_received() - before;
    // Every coin has the same key, so 200 items need just 2 distinct reads (single flight).
    let upstream = server.method_count("blockchain.scripthash.get_balance") - reads;
    eprintln!("MEASURE 200 my_balance over 20 coins on one server: {lines} upstream messages, {upstream} reads, {took:?}");
    assert!(lines <= 2, "{lines} upstream messages");
    assert_eq!(upstream, 2);
    assert!(took < Duration::from_millis(400), "{took:?}");
}
