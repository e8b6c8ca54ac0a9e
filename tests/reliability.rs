//! Bounds, brute-force defence, slow clients, per-item time limits, graceful shutdown and secrets
//! in logs: the real binary over real sockets.

mod support;

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use support::electrum_fake::{FakeElectrum, Mode};
use support::{base_conf, req, shipped_coins, Kdfd, Launch, PASSPHRASE, USERPASS};

fn with(mut conf: Value, extra: Value) -> Value {
    if let (Some(c), Value::Object(e)) = (conf.as_object_mut(), extra) {
        c.extend(e);
    }
    conf
}

fn bad(method: &str) -> Value {
    json!({"userpass": "Wrong!Guess1", "method": method})
}

#[tokio::test]
async fn lockout_after_threshold_then_recovers() {
    let k = Kdfd::start(with(
        base_conf(json!([])),
        json!({"auth_fail_threshold_loopback": 3, "auth_lockout_sec": 2, "auth_fail_delay_ms": 10}),
    ));
    for _ in 0..3 {
        let (status, v) = k.post(&bad("get_enabled_coins")).await;
        assert_eq!(status, 500);
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("Userpass is invalid!"));
    }
    // Locked out: even the right userpass waits, and the answer says for how long.
    let (status, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!(status, 429);
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("locked out, retry in 2 s"), "{err}");
    let (status, v) = k
        .post(
            &json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 4}),
        )
        .await;
    assert_eq!(status, 429);
    assert_eq!(
        v["error_data"],
        json!({"error_type": "RetryAfterSecs", "error_data": 2})
    );
    // Public methods still answer.
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!((status, v), (200, json!({"result": []})));
}

#[tokio::test]
async fn a_batch_of_bad_items_is_one_attempt() {
    let k = Kdfd::start(with(
        base_conf(json!([])),
        json!({"auth_fail_threshold_loopback": 3, "auth_fail_delay_ms": 200}),
    ));
    let batch = Value::Array(vec![bad("get_enabled_coins"); 50]);
    let t = Instant::now();
    let (status, v) = k.post(&batch).await;
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert_eq!(v.as_array().unwrap().len(), 50);
    // The 50 delays run side by side: one request, one delay.
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(took >= Duration::from_millis(200), "{took:?}");
    let (status, _) = k.post(&batch).await;
    assert_eq!(status, 200);
    // Two attempts so far, under the threshold of 3.
    let (status, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!((status, v), (200, json!({"result": []})));
}

#[tokio::test]
async fn failed_checks_are_slow_but_never_hold_back_good_ones() {
    let k = Kdfd::start(base_conf(json!([])));
    let addr = k.addr;
    let attacker = tokio::spawn(async move {
        let mut c = kdfd::client::Client::connect(addr).await.unwrap();
        let t = Instant::now();
        for _ in 0..4 {
            let (status, _) = c.post_json(&bad("my_balance")).await.unwrap();
            assert_eq!(status, 500);
        }
        t.elapsed()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = k.client().await;
    let t = Instant::now();
    let (status, _) = c
        .post_json(&req("get_enabled_coins", json!({})))
        .await
        .unwrap();
    let good = t.elapsed();
    assert_eq!(status, 200);
    assert!(
        good < Duration::from_millis(150),
        "good request waited {good:?}"
    );
    let slow = attacker.await.unwrap();
    assert!(
        slow >= Duration::from_millis(1000),
        "4 failures took only {slow:?}"
    );
    // Loopback's own threshold (100) is far above these 4 failures: the owner is not locked out.
    let (status, _) = c
        .post_json(&req("get_enabled_coins", json!({})))
        .await
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn connection_limit_answers_503() {
    let k = Kdfd::start(with(base_conf(json!([])), json!({"max_connections": 2})));
    let mut a = k.client().await;
    let mut b = k.client().await;
    assert_eq!(
        a.post_json(&json!({"method": "version"})).await.unwrap().0,
        200
    );
    assert_eq!(
        b.post_json(&json!({"method": "version"})).await.unwrap().0,
        200
    );
    let (status, v) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 503);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("Too many connections"));
    drop(a);
    // A freed slot serves again.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (status, _) = k.post(&json!({"method": "version"})).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        b.post_json(&json!({"method": "version"})).await.unwrap().0,
        200
    );
}

#[test]
fn slow_clients_are_cut_off() {
    let k = Kdfd::start(with(
        base_conf(json!([])),
        json!({"header_timeout_sec": 1, "body_timeout_sec": 1}),
    ));
    // Headers that never finish.
    let mut s = std::net::TcpStream::connect(k.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // A body that never arrives.
    let mut s = std::net::TcpStream::connect(k.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{\"meth")
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("not received in time"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn item_time_limit_does_not_hold_back_neighbours() {
    let silent = FakeElectrum::start_tcp();
    silent.set_mode(Mode::Silent);
    let k = Kdfd::start(with(
        base_conf(shipped_coins()),
        json!({"item_timeout_sec": 1}),
    ));
    let t = Instant::now();
    let (status, v) = k
        .post(&json!([
            {"method": "version"},
            req("electrum", json!({"coin": "RICK", "servers": [{"url": silent.url(), "timeout_sec": 30}]})),
            {"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 2},
            {"jsonrpc": "2.0", "id": null, "method": "electrum",
             "params": {"userpass": USERPASS, "coin": "MORTY", "servers": [{"url": silent.url(), "timeout_sec": 30}]}},
        ]))
        .await;
    assert_eq!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(v[0]["result"].is_string());
    assert_eq!(v[1], json!({"error": "Request timed out after 1s"}));
    assert_eq!(v[2]["result"], json!({"coins": []}));
    // A JSON-RPC item with a null id is not a notification: its time-out gets its slot.
    assert_eq!(v[3]["id"], Value::Null);
    assert_eq!(v[3]["error"]["code"], -32030);
    // The timed-out activation left nothing behind.
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": "127.0.0.1:1", "timeout_sec": 1}]}),
        ))
        .await;
    assert!(
        !v["error"].as_str().unwrap().contains("already initialized"),
        "{v}"
    );
}

#[tokio::test]
async fn response_size_cap() {
    let k = Kdfd::start(with(
        base_conf(json!([])),
        json!({"max_response_bytes": 1000}),
    ));
    let (status, v) = k
        .post(&Value::Array(vec![json!({"method": "version"}); 50]))
        .await;
    assert_eq!(status, 500);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("larger than the limit of 1000 bytes"),
        "{v}"
    );
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sigterm_drains_in_flight_batches_and_exits_zero() {
    let slow = FakeElectrum::start_tcp();
    slow.set_latency(Duration::from_millis(700));
    let mut k = Kdfd::start(base_conf(support::test_coins(20)));
    let addr = k.addr;
    let url = slow.url();
    let mut tasks = Vec::new();
    for client in 0..5 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = kdfd::client::Client::connect(addr).await.unwrap();
            let batch: Vec<Value> = (0..4)
                .map(|i| {
                    req(
                        "electrum",
                        json!({"coin": format!("T{}", client * 4 + i), "servers": [{"url": url}]}),
                    )
                })
                .collect();
            c.post_json(&Value::Array(batch)).await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(k.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200);
        for slot in v.as_array().unwrap() {
            assert_eq!(slot["result"], "success", "{slot}");
        }
    }
    let exit = tokio::task::spawn_blocking(move || k.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(exit.map(|s| s.code()), Some(Some(0)));
    assert!(
        kdfd::client::Client::connect(addr).await.is_err(),
        "new connections are refused"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let (p2pkh, _) = support::bob_scripthashes();
    let server = FakeElectrum::start_tcp();
    server.set_balance(&p2pkh, 1000, 0);
    let wrong = "Wr0ng!Secret-Guess";
    let k = trace_kdfd(base_conf(shipped_coins()));
    activate_rick(&k, &server).await;
    let (_, _) = k.post(&json!([{"userpass": wrong, "method": "my_balance", "coin": "RICK"}, req("my_balance", json!({"coin": "RICK"}))])).await;
    let (_, _) = k
        .post(&json!({"mmrpc": "2.0", "userpass": wrong, "method": "nope"}))
        .await;
    // A malformed body that carries a secret: serde's message must not echo it either.
    let r = k
        .post_raw("POST", format!("{{\"userpass\":\"{wrong}\","))
        .await;
    assert_eq!(r.status, 500);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = k.stderr();
    assert!(log.len() > 1000, "trace logging is on: {} bytes", log.len());
    let privkey = "b8c774f071de08c7fd8f62b97f1a5726f6ce9f1bcf141b70b86689254ed6714e";
    for secret in [
        PASSPHRASE,
        USERPASS,
        wrong,
        privkey,
        "UvCjJf4dKSs2vFGVtCnUTAhR5FTZGdg43DDRa9s7s5DV1sSDX14g",
    ] {
        assert!(!log.contains(secret), "log contains a secret: {secret}");
    }
}

#[tokio::test]
async fn wallet_secrets_never_reach_the_logs() {
    // A new HD wallet at trace level: the generated mnemonic, the wallet password and the
    // passwords of the wallet methods must not appear in the log, whatever the methods do.
    let dbdir = tempfile::tempdir().unwrap();
    let password = "Wallet!Secret-123";
    let mut conf = base_conf(shipped_coins());
    let o = conf.as_object_mut().unwrap();
    o.remove("passphrase");
    o.insert("wallet_name".into(), json!("alice"));
    o.insert("wallet_password".into(), json!(password));
    o.insert("enable_hd".into(), json!(true));
    o.insert("dbdir".into(), json!(dbdir.path()));
    let k = trace_kdfd(conf);
    let v2 = |method: &str, params: serde_json::Value| json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params});
    let (_, v) = k
        .post(&v2(
            "get_mnemonic",
            json!({"format": "plaintext", "password": password}),
        ))
        .await;
    let mnemonic = v["result"]["mnemonic"]
        .as_str()
        .expect("mnemonic")
        .to_string();
    let new_password = "Wallet!Secret-456";
    k.post(&v2(
        "get_mnemonic",
        json!({"format": "plaintext", "password": "Wr0ng!Guess-1"}),
    ))
    .await;
    k.post(&v2(
        "change_mnemonic_password",
        json!({"current_password": password, "new_password": new_password}),
    ))
    .await;
    k.post(&v2(
        "delete_wallet",
        json!({"wallet_name": "bob", "password": new_password}),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = k.stderr();
    assert!(log.len() > 1000, "trace logging is on: {} bytes", log.len());
    for secret in [
        mnemonic.as_str(),
        password,
        new_password,
        "Wr0ng!Guess-1",
        USERPASS,
    ] {
        assert!(!log.contains(secret), "log contains a secret: {secret}");
    }
    // No single word run of the mnemonic either (a partial leak).
    let words: Vec<&str> = mnemonic.split(' ').collect();
    assert!(
        !log.contains(&words[..3].join(" ")),
        "log contains part of the mnemonic"
    );
}

#[tokio::test]
async fn signed_transactions_and_keys_never_reach_the_logs() {
    // A signed-but-unsent withdraw and show_priv_key at trace level: neither the tx hex nor the
    // WIF may appear in the log (issue 13.3).
    let server = FakeElectrum::start_tcp();
    let (p2pkh, _) = support::bob_scripthashes();
    server.set_unspents(&p2pkh, &[(&"ab".repeat(32), 0, 100_000_000, 10)]);
    let k = trace_kdfd(base_conf(shipped_coins()));
    activate_rick(&k, &server).await;
    let (_, v) = k
        .post(&req(
            "withdraw",
            json!({"coin": "RICK", "to": support::BOB_R_ADDRESS, "amount": "0.1"}),
        ))
        .await;
    let tx_hex = v["tx_hex"].as_str().expect("signed tx").to_string();
    let (_, v) = k.post(&req("show_priv_key", json!({"coin": "RICK"}))).await;
    let wif = v["result"]["priv_key"].as_str().expect("wif").to_string();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = k.stderr();
    assert!(log.len() > 1000, "trace logging is on");
    assert!(
        !log.contains(&tx_hex[..64]),
        "the log holds the signed transaction"
    );
    assert!(!log.contains(&wif), "the log holds the private key");
}

/// kdfd with trace logging, for the secret-log tests.
fn trace_kdfd(conf: Value) -> Kdfd {
    Kdfd::launch(Launch {
        conf: Some(conf),
        env: vec![("RUST_LOG", "trace".into())],
        ..Launch::default()
    })
    .unwrap()
}

async fn activate_rick(k: &Kdfd, server: &FakeElectrum) {
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": server.url()}]}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
}
