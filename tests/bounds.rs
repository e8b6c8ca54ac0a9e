//! The bounds of issue 23 item 6, each answering a clear error instead of a hang: connections
//! per address, event streams + WebSockets, and wallet-password checks (Argon2id).

mod support;

use serde_json::json;
use support::sse::Sse;
use support::{base_conf, shipped_coins, Kdfd, USERPASS};

#[tokio::test]
async fn per_address_and_stream_caps_answer_503() {
    let mut c = base_conf(json!([]));
    c["max_connections_per_ip"] = json!(2);
    c["max_stream_connections"] = json!(1);
    c["event_streaming_configuration"] = json!({});
    let k = Kdfd::start(c);
    let mut a = k.client().await;
    let _b = k.client().await;
    assert_eq!(
        a.post_json(&json!({"method": "version"})).await.unwrap().0,
        200
    );
    let (status, v) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 503, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("max_connections_per_ip"),
        "{v}"
    );
    drop(a);
    drop(_b);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let s1 = Sse::open(k.addr, "/event-stream?id=1", "").await;
    assert_eq!(s1.status, 200);
    let s2 = Sse::open(k.addr, "/event-stream?id=2", "").await;
    assert_eq!(s2.status, 503, "{}", s2.head);
    let ws = tokio_tungstenite::connect_async(format!("ws://{}/ws", k.addr)).await;
    assert!(ws.is_err(), "a WebSocket past the stream cap is refused");
    // RPC still has room (once the refused stream's connection is gone: per-address cap 2).
    drop(s2);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn password_checks_are_bounded() {
    let db = tempfile::tempdir().unwrap();
    let mut c = base_conf(shipped_coins());
    c["wallet_name"] = json!("dave");
    c["wallet_password"] = json!("Wallet!Secret-789");
    c["dbdir"] = json!(db.path());
    c["argon2_concurrency"] = json!(1);
    c["argon2_max_waiting"] = json!(0);
    let k = Kdfd::start(c);
    let get = json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_mnemonic",
        "params": {"format": "plaintext", "password": "Wallet!Secret-789"}, "id": 1});
    let (status, v) = k.post(&json!(vec![get.clone(); 5])).await;
    assert_eq!(status, 200);
    let slots = v.as_array().unwrap();
    let ok = slots
        .iter()
        .filter(|s| s["result"]["mnemonic"].is_string())
        .count();
    let busy = slots
        .iter()
        .filter(|s| s.to_string().contains("argon2_max_waiting"))
        .count();
    let capped = slots
        .iter()
        .filter(|s| s.to_string().contains("over the cap"))
        .count();
    eprintln!("MEASURE bounds: 5 get_mnemonic, 1 turn, 0 waiting: {ok} ok, {busy} busy, {capped} over the cap");
    assert!(ok >= 1, "{v}");
    assert_eq!(capped, 1, "{v}");
    assert_eq!(ok + busy + capped, 5, "{v}");
    assert!(busy >= 1, "{v}");
}
