//! The RPC core over real HTTP against the real binary: envelopes, batches, userpass, limits,
//! config precedence and shutdown.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{base_conf, req, Kdfd, Launch, USERPASS};

fn kdfd() -> Kdfd {
    Kdfd::start(base_conf(json!([])))
}

#[tokio::test]
async fn single_legacy_and_v2_requests() {
    let k = kdfd();
    let (status, v) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
    let version = v["result"].as_str().unwrap();
    assert!(
        version.starts_with(concat!(env!("CARGO_PKG_VERSION"), "_")),
        "{v}"
    );
    assert!(v["datetime"].as_str().unwrap().ends_with("+00:00"), "{v}");

    let (status, v) = k
        .post(
            &json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 42}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        v,
        json!({"mmrpc": "2.0", "result": {"coins": []}, "id": 42})
    );
    for params in [json!(null), json!({})] {
        let (_, v) = k
            .post(&json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "params": params}))
            .await;
        assert_eq!(
            v,
            json!({"mmrpc": "2.0", "result": {"coins": []}, "id": null})
        );
    }
    let (status, v) = k
        .post(&json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!((status, &v["id"]), (200, &Value::Null));

    // Legacy request for a v2-only name falls back to v2 (KDF 2.5), unknown names say so.
    let (status, v) = k.post(&req("no_such_thing", json!({}))).await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "NoSuchMethod");
    let (status, v) = k
        .post(&json!({"userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!((status, v), (200, json!({"result": []})));
}

#[tokio::test]
async fn v2_envelope_errors_match_kdf() {
    let k = kdfd();
    let (status, v) = k
        .post(&json!({"mmrpc": "1.0", "method": "get_enabled_coins", "id": 3}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"mmrpc": "2.0", "error": "Error parsing mmrpc version: unknown variant `1.0`, expected `2.0`",
               "error_path": "rpc", "error_trace": "rpc:204]", "error_type": "InvalidMmRpcVersion",
               "error_data": "unknown variant `1.0`, expected `2.0`", "id": 3})
    );
    let (status, v) = k
        .post(&json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "coin": "X"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error_type"], "InvalidRequest");
    assert_eq!(
        v["error_data"],
        "unknown field `coin`, expected one of `mmrpc`, `userpass`, `method`, `params`, `id`"
    );
    let (_, v) = k
        .post(&json!({"mmrpc": "2.0", "method": "get_enabled_coins", "id": "abc"}))
        .await;
    assert_eq!(
        v["error_data"],
        "invalid type: string \"abc\", expected u64"
    );
    assert_eq!(v["id"], Value::Null);
    let (status, v) = k
        .post(&json!({"mmrpc": "2.0", "method": "get_enabled_coins", "id": 9}))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        v,
        json!({"mmrpc": "2.0", "error": "Userpass is not set!", "error_path": "dispatcher",
               "error_trace": "dispatcher:150]", "error_type": "UserpassIsNotSet", "id": 9})
    );
    let (status, v) = k
        .post(&json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "nope", "id": 1}))
        .await;
    assert_eq!(
        (status, &v["error_type"], &v["id"]),
        (400, &json!("NoSuchMethod"), &json!(1))
    );
    // There is no v2 `version`, as in KDF.
    let (status, v) = k
        .post(&json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "version"}))
        .await;
    assert_eq!((status, &v["error_type"]), (400, &json!("NoSuchMethod")));
}

#[tokio::test]
async fn per_item_userpass_in_a_batch() {
    let k = kdfd();
    let batch = json!([
        req("get_enabled_coins", json!({})),
        {"userpass": "wrong", "method": "get_enabled_coins"},
        {"method": "get_enabled_coins"},
        {"mmrpc": "2.0", "userpass": "wrong", "method": "get_enabled_coins", "id": 7},
        {"userpass": 12345, "method": "get_enabled_coins"},
    ]);
    let (status, v) = k.post(&batch).await;
    assert_eq!(status, 200);
    assert_eq!(v[0], json!({"result": []}));
    assert!(
        v[1]["error"]
            .as_str()
            .unwrap()
            .contains("Userpass is invalid!"),
        "{v}"
    );
    assert!(
        v[2]["error"]
            .as_str()
            .unwrap()
            .contains("Userpass is not set!"),
        "{v}"
    );
    assert_eq!(v[3]["error_type"], "UserpassIsInvalid");
    assert_eq!(v[3]["id"], 7);
    assert!(
        v[4]["error"]
            .as_str()
            .unwrap()
            .contains("Userpass is not set!"),
        "{v}"
    );
    // Alone, an auth failure is KDF's legacy 500.
    let (status, v) = k
        .post(&json!({"userpass": "wrong", "method": "get_enabled_coins"}))
        .await;
    assert_eq!(status, 500);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("Userpass is invalid!"));
}

#[tokio::test]
async fn odd_batch_elements_get_error_slots_and_neighbours_run() {
    let k = kdfd();
    let (status, v) = k
        .post(&json!([{"method": "version"}, {"method": "help"}, 1, "x", null, [1, 2], {"method": "version"}, true]))
        .await;
    assert_eq!(status, 200);
    let slots = v.as_array().unwrap();
    assert_eq!(slots.len(), 8);
    assert!(slots[0]["result"].is_string());
    assert_eq!(
        slots[1],
        Value::Null,
        "help is plain text, so null in a batch"
    );
    for i in [2, 3, 4, 5, 7] {
        assert!(
            slots[i]["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid request: expected a JSON object"),
            "{i}: {}",
            slots[i]
        );
    }
    assert!(slots[6]["result"].is_string());
    let (status, v) = k.post(&json!([])).await;
    assert_eq!((status, v), (200, json!([])));
    // A single non-object body is refused clearly, not with a dead connection.
    let (status, v) = k.post(&json!(5)).await;
    assert_eq!(status, 500);
    assert!(v["error"].is_string());
}

#[tokio::test]
async fn help_alone_is_plain_text() {
    let k = kdfd();
    let r = k.post_raw("POST", r#"{"method":"help"}"#).await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(
        text.contains("my_balance") && text.contains("electrum"),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn thousand_item_batch_in_order_and_timed() {
    let k = kdfd();
    // Distinct answers per slot prove the order: each names its own coin.
    let items: Vec<Value> = (0..1000)
        .map(|i| req("my_balance", json!({"coin": format!("C{i}")})))
        .collect();
    let (status, v) = k.post(&Value::Array(items)).await;
    assert_eq!(status, 200);
    let slots = v.as_array().unwrap();
    assert_eq!(slots.len(), 1000);
    for (i, s) in slots.iter().enumerate() {
        assert_eq!(s["error"], format!("No such coin: C{i}"));
    }

    let mut c = k.client().await;
    let version = json!({"method": "version"});
    let batch = Value::Array(vec![version.clone(); 1000]);
    // Warm up, then take the best of several runs of each to damp machine noise.
    c.post_json(&batch).await.unwrap();
    let mut single = Duration::MAX;
    let mut whole = Duration::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let (_, v) = c.post_json(&version).await.unwrap();
        single = single.min(t.elapsed());
        assert!(v["result"].is_string());
        let t = Instant::now();
        let (status, v) = c.post_json(&batch).await.unwrap();
        whole = whole.min(t.elapsed());
        assert_eq!(status, 200);
        assert_eq!(v.as_array().unwrap().len(), 1000);
        assert!(v
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["result"].is_string()));
    }
    eprintln!(
        "MEASURE version: single {:?}, 1000-item batch {:?}, ratio {:.1}x ({:.0} items/s)",
        single,
        whole,
        whole.as_secs_f64() / single.as_secs_f64(),
        1000.0 / whole.as_secs_f64()
    );
}

#[tokio::test]
async fn limits_and_malformed_bodies() {
    let conf = {
        let mut c = base_conf(json!([]));
        c["max_batch_items"] = json!(10);
        c["max_body_bytes"] = json!(1024);
        c
    };
    let k = Kdfd::start(conf);
    let (status, v) = k
        .post(&Value::Array(vec![json!({"method": "version"}); 11]))
        .await;
    assert_eq!(status, 413);
    assert_eq!(v, json!({"error": "Batch has 11 items; the limit is 10"}));
    let (status, v) = k
        .post(&Value::Array(vec![json!({"method": "version"}); 10]))
        .await;
    assert_eq!((status, v.as_array().map(Vec::len)), (200, Some(10)));

    let big = format!(r#"{{"method":"version","pad":"{}"}}"#, "x".repeat(2000));
    let r = k.post_raw("POST", big).await;
    assert_eq!(r.status, 413);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("larger than the limit of 1024 bytes"));

    for (body, needle) in [
        ("{bad", "key must be a string at line 1 column 2"),
        ("", "EOF while parsing a value at line 1 column 0"),
        ("[1,", "EOF while parsing"),
        ("\u{0}", "expected value"),
    ] {
        let r = k.post_raw("POST", body).await;
        assert_eq!(r.status, 500, "{body:?}");
        assert_eq!(r.headers["content-type"], "application/json");
        let v: Value = serde_json::from_slice(&r.body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{body:?}: {v}"
        );
    }
    let r = k.post_raw("GET", "").await;
    assert_eq!(r.status, 500);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["error"], "Only POST requests are supported!");
    // Still serving.
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cors_preflight_and_origin() {
    let mut conf = base_conf(json!([]));
    conf["rpccors"] = json!("http://wallet.local:8080");
    let k = Kdfd::start(conf);
    let r = k.post_raw("OPTIONS", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://wallet.local:8080"
    );
    assert_eq!(r.headers["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "Content-Type, Authorization"
    );
    assert_eq!(r.headers["access-control-max-age"], "3600");
    let r = k.post_raw("POST", r#"{"method":"version"}"#).await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://wallet.local:8080"
    );
}

#[test]
fn config_sources_in_kdf_order() {
    let conf_with_port = |gui: &str| {
        let mut c = base_conf(json!([]));
        c["gui"] = json!(gui);
        c
    };
    let cwd = tempfile::tempdir().unwrap();
    std::fs::write(
        cwd.path().join("MM2.json"),
        conf_with_port("from-cwd").to_string(),
    )
    .unwrap();
    let env_file = cwd.path().join("env.json");
    std::fs::write(&env_file, conf_with_port("from-env").to_string()).unwrap();

    let launch = |args: Vec<String>, env: Vec<(&'static str, String)>| {
        Kdfd::launch(Launch {
            conf: None,
            args,
            env,
            no_conf_flag: true,
            cwd: Some(cwd.path().to_path_buf()),
            ..Launch::default()
        })
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Each source has its own `gui`, which kdfd logs at start-up.
    let gui_of = |k: &Kdfd| -> String {
        let log = k.stderr();
        ["from-argv", "from-env", "from-cwd"]
            .iter()
            .find(|g| log.contains(*g))
            .map(|g| g.to_string())
            .unwrap_or_else(|| panic!("no gui in log: {log}"))
    };
    let argv = conf_with_port("from-argv").to_string();
    let k = launch(
        vec![argv.clone()],
        vec![("MM_CONF_PATH", env_file.display().to_string())],
    )
    .unwrap();
    assert_eq!(gui_of(&k), "from-argv");
    let k = launch(
        vec![],
        vec![("MM_CONF_PATH", env_file.display().to_string())],
    )
    .unwrap();
    assert_eq!(gui_of(&k), "from-env");
    let k = launch(vec![], vec![]).unwrap();
    assert_eq!(gui_of(&k), "from-cwd");
    // And the daemon is really up on the free port it chose.
    let (status, _) = rt.block_on(k.post(&json!({"method": "version"})));
    assert_eq!(status, 200);
    assert_ne!(k.addr.port(), 0);
}

#[test]
fn bad_configs_exit_nonzero_with_one_clear_line() {
    let cases = [
        (
            json!({"rpc_password": "weakpass", "coins": []}),
            "Password should contain at least 1 digit",
        ),
        (
            json!({"rpc_password": "MyPassword1!", "coins": []}),
            "Password can't contain the word password",
        ),
        (
            json!({"rpc_password": "", "coins": []}),
            "rpc_password must not be empty",
        ),
        (
            json!({"rpc_password": USERPASS, "coins": [], "rpcport": 80}),
            "rpcport < 1024",
        ),
        (
            json!({"rpc_password": USERPASS, "coins": [], "passphrase": ""}),
            "Passphrase cannot be an empty string",
        ),
        // A bad coin entry no longer stops start-up (it is refused at activation:
        // tests/real_coins.rs); a coins list of the wrong shape still does.
        (
            json!({"rpc_password": USERPASS, "coins": 5}),
            "coins: not an array of coin entries or an object of them keyed by ticker",
        ),
        (
            json!({"rpc_password": USERPASS}),
            "No coins are set in JSON config",
        ),
        (
            json!({"rpc_password": USERPASS, "coins": [], "enable_hd": true, "passphrase": "not a bip39 mnemonic"}),
            "mnemonic",
        ),
    ];
    for (conf, needle) in cases {
        let err = match Kdfd::launch(Launch {
            conf: Some(conf.clone()),
            ..Launch::default()
        }) {
            Ok(_) => panic!("{conf} was accepted"),
            Err(e) => e,
        };
        assert!(err.contains(needle), "{conf}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("exit status: 1"), "{err}");
    }
    // The same weak password is fine when the owner says so.
    let mut conf =
        json!({"rpc_password": "weakpass", "allow_weak_password": true, "coins": [], "rpcport": 0});
    let k = Kdfd::launch(Launch {
        conf: Some(conf.take()),
        ..Launch::default()
    })
    .unwrap();
    drop(k);
}

#[tokio::test]
async fn stop_answers_then_exits_zero_after_in_flight_work() {
    use support::electrum_fake::FakeElectrum;
    let server = FakeElectrum::start_tcp();
    server.set_latency(Duration::from_millis(800));
    let mut k = Kdfd::start(base_conf(
        json!([{"coin": "RICK", "mm2": 1, "protocol": {"type": "UTXO"}}]),
    ));
    let addr = k.addr;
    let url = server.url();
    let slow = tokio::spawn(async move {
        let mut c = kdfd::client::Client::connect(addr).await.unwrap();
        c.post_json(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": url}]}),
        ))
        .await
        .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, v) = k.post(&req("stop", json!({}))).await;
    assert_eq!((status, v), (200, json!({"result": "success"})));
    let (status, v) = slow.await.unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"], "success");
    let exit = tokio::task::spawn_blocking(move || k.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(exit.map(|s| s.code()), Some(Some(0)));
    // New connections are refused once it is gone.
    assert!(kdfd::client::Client::connect(addr).await.is_err());
}

#[tokio::test]
async fn stop_needs_the_userpass() {
    let mut k = kdfd();
    let (status, v) = k.post(&json!({"method": "stop"})).await;
    assert_eq!(status, 500);
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("Userpass is not set!"));
    assert!(
        k.wait_exit(Duration::from_millis(300)).is_none(),
        "must still run"
    );
}
