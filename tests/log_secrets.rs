//! No secret in any log at any level, over a whole session on every transport: kdfd at
//! `RUST_LOG=trace` (and the WebSocket and HTTP libraries asked for trace by name, which kdfd
//! overrides) creates a wallet, answers `get_mnemonic` over HTTP and over `/ws`, signs a
//! withdraw against the fake Electrum server and shows the key; stderr must not hold the
//! mnemonic, the wallet password, the userpass, the WIF or the signed transaction.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use support::electrum_fake::FakeElectrum;
use support::{base_conf, req, shipped_coins, Kdfd, Launch, PASSPHRASE, USERPASS};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const WALLET_PW: &str = "Wallet!Secret-789";

async fn ws_ask(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    body: &Value,
) -> Value {
    ws.send(Message::Text(body.to_string().into()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("answer in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn a_traced_session_logs_no_secret() {
    let server = FakeElectrum::start_tcp();
    let (p2pkh, _) = support::bob_scripthashes();
    server.set_unspents(&p2pkh, &[(&"ab".repeat(32), 0, 100_000_000, 10)]);
    let dbdir = tempfile::tempdir().unwrap();
    let mut conf = base_conf(shipped_coins());
    // A new wallet file from the passphrase, so the keys (and the fake's unspents) are bob's.
    conf["wallet_name"] = json!("carol");
    conf["wallet_password"] = json!(WALLET_PW);
    conf["dbdir"] = json!(dbdir.path());
    conf["event_streaming_configuration"] = json!({});
    let filter = "trace,tungstenite=trace,tokio_tungstenite=trace,hyper=trace,hyper_util=trace";
    let k = Kdfd::launch(Launch {
        conf: Some(conf),
        env: vec![("RUST_LOG", filter.into())],
        ..Launch::default()
    })
    .unwrap();
    let v2 = |method: &str, params: Value| json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params, "id": 1});
    let get = v2(
        "get_mnemonic",
        json!({"format": "plaintext", "password": WALLET_PW}),
    );
    let (status, v) = k.post(&get).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"]["mnemonic"], PASSPHRASE);
    // The same over /ws, with the userpass in the upgrade's header as well.
    let mut r = format!("ws://{}/ws?client_id=7", k.addr)
        .into_client_request()
        .unwrap();
    r.headers_mut().insert(
        "authorization",
        format!("Bearer {USERPASS}").parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(r).await.unwrap();
    let v = ws_ask(&mut ws, &get).await;
    assert_eq!(v["result"]["mnemonic"], PASSPHRASE, "{v}");
    let v = ws_ask(
        &mut ws,
        &json!([get, {"userpass": USERPASS, "method": "version"}]),
    )
    .await;
    assert_eq!(v[0]["result"]["mnemonic"], PASSPHRASE, "{v}");
    // A signed withdraw (not broadcast) and the key itself.
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "RICK", "servers": [{"url": server.url()}]}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    let (_, v) = k
        .post(&req(
            "withdraw",
            json!({"coin": "RICK", "to": support::BOB_R_ADDRESS, "amount": "0.1"}),
        ))
        .await;
    let tx_hex = v["tx_hex"].as_str().expect("signed tx").to_string();
    let withdraw_ws = ws_ask(
        &mut ws,
        &req(
            "withdraw",
            json!({"coin": "RICK", "to": support::BOB_R_ADDRESS, "amount": "0.2"}),
        ),
    )
    .await;
    let tx_hex_ws = withdraw_ws["tx_hex"]
        .as_str()
        .expect("signed tx")
        .to_string();
    let (_, v) = k.post(&req("show_priv_key", json!({"coin": "RICK"}))).await;
    let wif = v["result"]["priv_key"].as_str().expect("wif").to_string();
    ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = k.stderr();
    assert!(
        log.contains("websocket opened"),
        "kdfd's own trace is on: {} bytes",
        log.len()
    );
    let lines = log.lines().count();
    let mut found = Vec::new();
    for (what, secret) in [
        ("mnemonic", PASSPHRASE),
        ("wallet password", WALLET_PW),
        ("userpass", USERPASS),
        ("WIF", wif.as_str()),
        ("signed tx", &tx_hex[..64]),
        ("signed tx over /ws", &tx_hex_ws[..64]),
    ] {
        if log.contains(secret) {
            found.push(what);
        }
    }
    eprintln!(
        "MEASURE log_secrets: {lines} trace lines, {} bytes, secrets found: {found:?}",
        log.len()
    );
    assert!(found.is_empty(), "the trace log holds: {found:?}");
    // None of the silenced libraries logged at all.
    for target in ["tungstenite", "hyper::", "hyper_util"] {
        assert!(!log.contains(target), "{target} logged");
    }
}
