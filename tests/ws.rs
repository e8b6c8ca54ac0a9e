//! `/ws` over real TCP against the real binary: the core cases of tests/rpc_core.rs sent as
//! WebSocket text messages must get the same answers as a POST (the batch cap aside), faults
//! close the socket with the RFC 6455 code and leave the daemon serving, events arrive on the
//! socket, and 1000 connect/disconnect cycles leak no file descriptors.

mod support;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use support::{base_conf, req, Kdfd, USERPASS};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(k: &Kdfd, query: &str) -> Ws {
    let url = format!("ws://{}/ws{query}", k.addr);
    let (ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

/// The next data or close message within 10 s (pings and pongs skipped).
async fn next(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message in time")
            .expect("socket open")
            .expect("no socket error");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

/// Sends a text message and returns the text of the answer.
async fn ask_text(ws: &mut Ws, body: &str) -> String {
    ws.send(Message::text(body)).await.unwrap();
    match next(ws).await {
        Message::Text(t) => t.as_str().to_string(),
        other => panic!("expected a text answer, got {other:?}"),
    }
}

async fn ask(ws: &mut Ws, body: &Value) -> Value {
    serde_json::from_str(&ask_text(ws, &body.to_string()).await).unwrap()
}

/// The POST answer body of the same bytes, as text.
async fn post_text(k: &Kdfd, body: &str) -> (u16, String) {
    let r = k.post_raw("POST", body.to_string()).await;
    (r.status, String::from_utf8(r.body.to_vec()).unwrap())
}

/// An answer with its `datetime` members (the clock of `version`) blanked, so two answers
/// given a second apart compare equal; text that is not JSON stays as it is.
fn same_second(text: &str) -> String {
    fn blank(v: &mut Value) {
        match v {
            Value::Object(m) => {
                if let Some(d) = m.get_mut("datetime") {
                    *d = json!("<now>");
                }
                m.values_mut().for_each(blank);
            }
            Value::Array(a) => a.iter_mut().for_each(blank),
            _ => {}
        }
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut v) => {
            blank(&mut v);
            // Object order is kept (preserve_order), so this is the answer's own order.
            v.to_string()
        }
        Err(_) => text.to_string(),
    }
}

/// The close frame the server ends the socket with.
async fn close_code(ws: &mut Ws) -> CloseCode {
    match next(ws).await {
        Message::Close(Some(f)) => f.code,
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn core_cases_answer_as_over_http() {
    let k = Kdfd::start(base_conf(json!([])));
    let mut ws = open(&k, "").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": i}),
        );
    }
    let cases = [
        // single, each dialect
        json!({"method": "version"}),
        json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 42}),
        json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins"}),
        json!({"userpass": USERPASS, "method": "get_enabled_coins"}),
        json!({"jsonrpc": "2.0", "id": "v", "method": "version"}),
        req("no_such_thing", json!({})),
        json!({"mmrpc": "1.0", "method": "get_enabled_coins", "id": 3}),
        // batch order (exactly at the cap), mixed dialects, per-item userpass failures
        Value::Array(ids),
        json!([
            {"method": "version"},
            {"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 1},
            {"jsonrpc": "2.0", "id": 2, "method": "get_enabled_coins", "params": {"userpass": USERPASS}},
            req("get_enabled_coins", json!({})),
        ]),
        json!([
            req("get_enabled_coins", json!({})),
            {"userpass": "wrong", "method": "get_enabled_coins"},
            {"method": "get_enabled_coins"},
            {"mmrpc": "2.0", "userpass": "wrong", "method": "get_enabled_coins", "id": 7},
            {"userpass": 12345, "method": "get_enabled_coins"},
        ]),
        json!({"userpass": "wrong", "method": "get_enabled_coins"}),
        json!([{"method": "version"}, {"method": "help"}, 1, "x", null, [1, 2], {"method": "version"}, true]),
        json!([]),
        json!(5),
    ];
    for body in &cases {
        let text = body.to_string();
        let (_, http) = post_text(&k, &text).await;
        let over_ws = ask_text(&mut ws, &text).await;
        assert_eq!(same_second(&over_ws), same_second(&http), "{text}");
    }
    // Spot checks that the shared answers are the right ones.
    let v = ask(&mut ws, &cases[1]).await;
    assert_eq!(
        v,
        json!({"mmrpc": "2.0", "result": {"coins": []}, "id": 42})
    );
    let v = ask(&mut ws, &cases[7]).await;
    let order: Vec<_> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    assert_eq!(order, (0..20).map(|i| json!(i)).collect::<Vec<_>>());
    let v = ask(&mut ws, &cases[8]).await;
    assert!(v[0]["result"].is_string(), "{v}");
    assert_eq!(
        v[1],
        json!({"mmrpc": "2.0", "result": {"coins": []}, "id": 1})
    );
    // JSON-RPC carries the legacy answer of the name as its result.
    assert_eq!(
        (&v[2]["jsonrpc"], &v[2]["id"], &v[2]["result"]),
        (&json!("2.0"), &json!(2), &json!({"result": []}))
    );
    assert_eq!(v[3], json!({"result": []}));
    let v = ask(&mut ws, &cases[9]).await;
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
    assert_eq!(
        (&v[3]["error_type"], &v[3]["id"]),
        (&json!("UserpassIsInvalid"), &json!(7))
    );

    // help alone: the same plain text as over HTTP.
    let (_, http) = post_text(&k, r#"{"method":"help"}"#).await;
    assert_eq!(ask_text(&mut ws, r#"{"method":"help"}"#).await, http);

    // Over the WebSocket cap (20): the over-cap answer, nothing runs; HTTP's cap is 1000.
    let over = Value::Array(vec![json!({"method": "version"}); 21]);
    let v = ask(&mut ws, &over).await;
    assert_eq!(v, json!({"error": "Batch has 21 items; the limit is 20"}));
    let (status, http) = k.post(&over).await;
    assert_eq!((status, http.as_array().map(Vec::len)), (200, Some(21)));

    // Not JSON: the parse-error answer HTTP gives, in both dialects; the socket stays open.
    for body in ["{bad", "[1,", r#"{"jsonrpc":"2.0","#] {
        let (status, http) = post_text(&k, body).await;
        assert_eq!(status, 500);
        assert_eq!(ask_text(&mut ws, body).await, http, "{body}");
    }
    let v = ask(
        &mut ws,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "version"}),
    )
    .await;
    assert!(v["result"]["result"].is_string(), "{v}");

    // Only notifications: nothing is sent, so the next answer is the next request's.
    ws.send(Message::text(r#"[{"jsonrpc":"2.0","method":"version"}]"#))
        .await
        .unwrap();
    let v = ask(&mut ws, &json!({"method": "version", "tag": 1})).await;
    assert!(v["result"].is_string(), "{v}");
}

#[tokio::test]
async fn pipelined_messages_are_answered_in_order() {
    let k = Kdfd::start(base_conf(json!([])));
    let mut ws = open(&k, "").await;
    for i in 0..50 {
        let m =
            json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": i});
        ws.send(Message::text(m.to_string())).await.unwrap();
    }
    for i in 0..50 {
        let Message::Text(t) = next(&mut ws).await else {
            panic!("text")
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(v["id"], i);
    }
}

fn small_cap_conf() -> Value {
    let mut c = base_conf(json!([]));
    c["ws_max_message_bytes"] = json!(4096);
    c["ws_max_batch_items"] = json!(3);
    c
}

#[tokio::test]
async fn faults_close_with_their_codes_and_the_daemon_keeps_serving() {
    let k = Kdfd::start(small_cap_conf());
    // The configured batch cap.
    let mut ws = open(&k, "").await;
    let v = ask(
        &mut ws,
        &Value::Array(vec![json!({"method": "version"}); 4]),
    )
    .await;
    assert_eq!(v, json!({"error": "Batch has 4 items; the limit is 3"}));

    // Ping is answered with a pong carrying the same payload.
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Ok(Message::Pong(p))) = ws.next().await {
                return p;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(&pong[..], b"hi");

    // A fragmented message under the cap is reassembled into one request.
    let body = json!({"method": "version", "pad": "x".repeat(2000)}).to_string();
    let (a, rest) = body.as_bytes().split_at(700);
    let (b, c) = rest.split_at(700);
    let frames = [
        Frame::message(a.to_vec(), OpCode::Data(Data::Text), false),
        Frame::message(b.to_vec(), OpCode::Data(Data::Continue), false),
        Frame::message(c.to_vec(), OpCode::Data(Data::Continue), true),
    ];
    for f in frames {
        ws.send(Message::Frame(f)).await.unwrap();
    }
    let Message::Text(t) = next(&mut ws).await else {
        panic!("text")
    };
    let v: Value = serde_json::from_str(t.as_str()).unwrap();
    assert!(v["result"].is_string(), "{v}");

    // Binary: close 1003.
    ws.send(Message::Binary(b"{\"method\":\"version\"}".to_vec().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Unsupported);

    // Oversized in one frame: close 1009.
    let mut ws = open(&k, "").await;
    let big = json!({"method": "version", "pad": "x".repeat(5000)}).to_string();
    ws.send(Message::text(big)).await.unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);

    // Oversized across small fragments: close 1009 too.
    let mut ws = open(&k, "").await;
    ws.send(Message::Frame(Frame::message(
        vec![b' '; 3000],
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    ws.send(Message::Frame(Frame::message(
        vec![b' '; 3000],
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(close_code(&mut ws).await, CloseCode::Size);

    // A GET of /ws without the upgrade: 426; a POST there is ordinary RPC (KDF serves any path).
    let r = k.post_raw("GET", "").await;
    assert_eq!(r.status, 500, "GET / is still KDF's error");
    let mut c = k.client().await;
    let (status, v) = c.post_json(&json!({"method": "version"})).await.unwrap();
    assert_eq!(status, 200);
    assert!(v["result"].is_string());
    let raw = raw_request(
        &k,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 426"), "{raw}");
    let raw = raw_request(
        &k,
        "POST /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"method\":\"version\"}",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");

    // Still serving, over both transports.
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
    let mut ws = open(&k, "").await;
    assert!(ask(&mut ws, &json!({"method": "version"})).await["result"].is_string());
}

async fn raw_request(k: &Kdfd, text: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(k.addr).await.unwrap();
    s.write_all(text.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped() {
    let k = Kdfd::start(base_conf(json!([])));
    // A tiny receive window, so the daemon's writes back up quickly.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(k.addr).await.unwrap();
    let url = format!("ws://{}/ws", k.addr);
    let (mut ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    let batch = Value::Array(vec![json!({"method": "version"}); 20]).to_string();
    let mut dropped = false;
    for _ in 0..20_000 {
        let sent = tokio::time::timeout(
            Duration::from_secs(20),
            ws.send(Message::text(batch.clone())),
        )
        .await
        .expect("the daemon keeps reading until it drops us");
        if sent.is_err() {
            dropped = true;
            break;
        }
    }
    assert!(
        dropped,
        "the daemon never dropped a client that does not read"
    );
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
    assert!(k.stderr().contains("not reading"), "{}", k.stderr());
}

#[tokio::test]
async fn events_arrive_on_the_socket() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({"access_control_allow_origin": "*"});
    let k = Kdfd::start(c);
    let mut ws = open(&k, "?client_id=9").await;
    let v = ask(
        &mut ws,
        &json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "stream::heartbeat::enable",
                "params": {"client_id": 9, "config": {"stream_interval_seconds": 0.2}}, "id": 1}),
    )
    .await;
    assert_eq!(v["result"]["streamer_id"], "HEARTBEAT", "{v}");
    let mut beats = 0;
    while beats < 2 {
        let Message::Text(t) = next(&mut ws).await else {
            panic!("text")
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!(v["_type"], "HEARTBEAT", "{v}");
        assert!(v.get("message").is_some(), "{v}");
        beats += 1;
    }
    // RPC still answers between events (which are told apart by `_type`).
    ws.send(Message::text(r#"{"method":"version"}"#))
        .await
        .unwrap();
    let answer = loop {
        let Message::Text(t) = next(&mut ws).await else {
            panic!("text")
        };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v.get("_type").is_none() {
            break v;
        }
    };
    assert!(answer["result"].is_string(), "{answer}");
    // Closing the socket drops the event client: enabling for it now is UnknownClient.
    ws.close(None).await.unwrap();
    drop(ws);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, v) = k
        .post(
            &json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "stream::heartbeat::enable",
                      "params": {"client_id": 9, "config": {"stream_interval_seconds": 1}}}),
        )
        .await;
    assert_eq!(v["error_data"], "UnknownClient", "{v}");

    // Without event streaming configured, asking for events is refused at the upgrade.
    let plain = Kdfd::start(base_conf(json!([])));
    let url = format!("ws://{}/ws?client_id=1", plain.addr);
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn thousand_cycles_leak_no_fds() {
    let k = Kdfd::start(base_conf(json!([])));
    // Warm up (lazy runtime threads, first-connection state), then measure.
    let mut ws = open(&k, "").await;
    ask(&mut ws, &json!({"method": "version"})).await;
    ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = fd_count(k.pid());
    for i in 0..1000 {
        let mut ws = open(&k, "").await;
        if i % 2 == 0 {
            let v = ask(&mut ws, &json!({"method": "version"})).await;
            assert!(v["result"].is_string());
            ws.close(None).await.unwrap();
            // Read the server's close reply so the handshake completes; then it closes TCP.
            tokio::time::timeout(Duration::from_secs(10), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await
            .expect("the daemon closes the socket after the close handshake");
        }
        // Odd cycles just drop the socket without a close frame.
    }
    let mut after = fd_count(k.pid());
    for _ in 0..50 {
        if after <= before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = fd_count(k.pid());
    }
    eprintln!("MEASURE ws: fds before 1000 cycles {before}, after {after}");
    assert!(after <= before, "fds before {before}, after {after}");
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn sockets_hold_connection_slots_and_stop_closes_them() {
    let mut c = base_conf(json!([]));
    c["max_connections"] = json!(2);
    // Both slots may be sockets here (by default streams get a quarter of the slots).
    c["max_stream_connections"] = json!(2);
    let mut k = Kdfd::start(c);
    let mut a = open(&k, "").await;
    let mut b = open(&k, "").await;
    // Both slots are held by the sockets (upgraded, no longer HTTP): a third connection gets 503.
    let r = raw_request(
        &k,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20\r\nConnection: close\r\n\r\n{\"method\":\"version\"}",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    // Closing one frees its slot.
    b.close(None).await.unwrap();
    while let Some(Ok(_)) = b.next().await {}
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
    // `stop` sent over the socket is answered, then the drain closes the socket with 1001.
    let v = ask(&mut a, &req("stop", json!({}))).await;
    assert_eq!(v, json!({"result": "success"}));
    assert_eq!(close_code(&mut a).await, CloseCode::Away);
    // Reading on sends tungstenite's close reply, which the drain waits for.
    while let Some(Ok(_)) = a.next().await {}
    let exit = tokio::task::spawn_blocking(move || k.wait_exit(Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(exit.map(|s| s.code()), Some(Some(0)));
}

/// The refused upgrade's status and body.
async fn refused(url: String, origin: Option<&str>) -> (u16, String) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut r = url.into_client_request().unwrap();
    if let Some(o) = origin {
        r.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(r).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp.body().clone().unwrap_or_default();
            (resp.status().as_u16(), String::from_utf8(body).unwrap())
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

#[tokio::test]
async fn events_need_the_userpass_off_loopback_and_origins_are_checked() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({});
    c["rpcip"] = json!("0.0.0.0");
    let k = Kdfd::start(c);
    let base = format!("ws://127.0.0.1:{}/ws", k.addr.port());
    // RPC alone needs no userpass at the upgrade (each item carries its own).
    let (mut ws, _) = tokio_tungstenite::connect_async(base.clone())
        .await
        .unwrap();
    assert!(ask(&mut ws, &json!({"method": "version"})).await["result"].is_string());
    // Events do, through the brute-force guard: the same answers as an item's userpass.
    let (status, body) = refused(format!("{base}?client_id=1"), None).await;
    assert_eq!(status, 500);
    assert!(body.contains("Userpass is not set!"), "{body}");
    let (status, body) = refused(format!("{base}?client_id=1&userpass=wrong"), None).await;
    assert_eq!(status, 500);
    assert!(body.contains("Userpass is invalid!"), "{body}");
    let enc = USERPASS.replace('!', "%21");
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{base}?client_id=1&userpass={enc}"))
            .await
            .unwrap();
    assert!(ask(&mut ws, &json!({"method": "version"})).await["result"].is_string());
    // A browser page from another origin than rpccors (default http://localhost:3000) is refused.
    let (status, body) = refused(base.clone(), Some("http://evil.test")).await;
    assert_eq!(status, 403, "{body}");
    let (mut ws, _) = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut r = base.clone().into_client_request().unwrap();
        r.headers_mut()
            .insert("origin", "http://localhost:3000".parse().unwrap());
        tokio_tungstenite::connect_async(r).await.unwrap()
    };
    assert!(ask(&mut ws, &json!({"method": "version"})).await["result"].is_string());
    // A bad client_id is refused too.
    let (status, _) = refused(format!("{base}?client_id=x"), None).await;
    assert_eq!(status, 400);
}
