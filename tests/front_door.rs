//! The front door (src/rpc/door.rs) on every route of the real binary: `Host` names outside
//! loopback, `rpcip` and `rpc_allowed_hosts` get 421 (DNS rebinding), a cross-origin `Origin`
//! gets 403, the event stream sends no CORS header unless configured, and the event stream's
//! userpass goes through the brute-force guard.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::sse::Sse;
use support::{base_conf, Kdfd, USERPASS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (request line and headers, without the final blank line) plus a JSON body and
/// returns the status and the whole answer.
async fn raw(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let text = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).await.unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut out)).await;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

const VERSION: &str = r#"{"method":"version"}"#;

fn ws_head(host: &str, origin: Option<&str>) -> String {
    let mut h = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
    );
    if let Some(o) = origin {
        h.push_str(&format!("\r\nOrigin: {o}"));
    }
    h
}

#[tokio::test]
async fn rebinding_hosts_are_refused_on_every_route() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({});
    c["rpc_allowed_hosts"] = json!(["wallet.lan"]);
    let k = Kdfd::start(c);
    let port = k.addr.port();
    for host in [
        "127.0.0.1".to_string(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("wallet.lan:{port}"),
    ] {
        let (status, out) = raw(k.addr, &format!("POST / HTTP/1.1\r\nHost: {host}"), VERSION).await;
        assert_eq!(status, 200, "{host}: {out}");
    }
    // No Host at all (HTTP/1.0, raw tools): no browser sends that, so it is let in.
    let (status, out) = raw(k.addr, "POST / HTTP/1.0", VERSION).await;
    assert_eq!(status, 200, "{out}");
    for host in [
        "rebind.evil.example",
        "evil.example:7783",
        "localhost.evil.example",
        "10.1.2.3",
    ] {
        let (status, out) = raw(k.addr, &format!("POST / HTTP/1.1\r\nHost: {host}"), VERSION).await;
        assert_eq!(status, 421, "{host}: {out}");
        assert!(out.contains("is not allowed"), "{out}");
        assert!(out.contains("rpc_allowed_hosts"), "{out}");
        let (status, out) = raw(
            k.addr,
            &format!("GET /event-stream?id=0 HTTP/1.1\r\nHost: {host}"),
            "",
        )
        .await;
        assert_eq!(status, 421, "{host}: {out}");
        let (status, out) = raw(k.addr, &ws_head(host, None), "").await;
        assert_eq!(status, 421, "{host}: {out}");
        let (status, _) = raw(k.addr, &format!("OPTIONS / HTTP/1.1\r\nHost: {host}"), "").await;
        assert_eq!(status, 421, "{host}");
    }
    // A private method from a rebinding page with the right userpass still never runs.
    let body = json!({"userpass": USERPASS, "method": "stop"}).to_string();
    let (status, _) = raw(k.addr, "POST / HTTP/1.1\r\nHost: evil.example", &body).await;
    assert_eq!(status, 421);
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200, "the daemon is still up");
    // Two Host headers are refused.
    let (status, _) = raw(
        k.addr,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example",
        VERSION,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn cross_origin_requests_are_refused() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({});
    let k = Kdfd::start(c);
    let post = |origin: &str| format!("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}");
    // rpccors (default http://localhost:3000) is the one origin allowed on `/` and `/ws`.
    let (status, out) = raw(k.addr, &post("http://localhost:3000"), VERSION).await;
    assert_eq!(status, 200, "{out}");
    assert!(
        out.contains("access-control-allow-origin: http://localhost:3000"),
        "{out}"
    );
    for origin in ["http://evil.example", "null", "http://localhost:3001"] {
        let (status, out) = raw(k.addr, &post(origin), VERSION).await;
        assert_eq!(status, 403, "{origin}: {out}");
        assert!(out.contains("rpccors"), "{out}");
        let (status, _) = raw(
            k.addr,
            &format!("OPTIONS / HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: {origin}"),
            "",
        )
        .await;
        assert_eq!(status, 403, "preflight from {origin}");
        let (status, _) = raw(k.addr, &ws_head("127.0.0.1", Some(origin)), "").await;
        assert_eq!(status, 403, "/ws from {origin}");
    }
    // A no-cors request carries no Origin, but the browser says it is cross-site.
    let (status, _) = raw(
        k.addr,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site",
        VERSION,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = raw(
        k.addr,
        "GET /event-stream?id=0 HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site",
        "",
    )
    .await;
    assert_eq!(status, 403);
    // The event stream without access_control_allow_origin: no cross-origin page at all, even
    // the rpccors one, and no CORS header on the stream.
    let s = Sse::open(
        k.addr,
        "/event-stream?id=4",
        "Origin: http://localhost:3000\r\n",
    )
    .await;
    assert_eq!(s.status, 403, "{}", s.head);
    let s = Sse::open(k.addr, "/event-stream?id=4", "").await;
    assert_eq!(s.status, 200, "{}", s.head);
    assert!(
        !s.head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"),
        "{}",
        s.head
    );
}

#[tokio::test]
async fn a_configured_stream_origin_is_honoured_as_written() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({"access_control_allow_origin": "http://gui.test"});
    let k = Kdfd::start(c);
    let s = Sse::open(k.addr, "/event-stream?id=1", "Origin: http://gui.test\r\n").await;
    assert_eq!(s.status, 200, "{}", s.head);
    assert!(
        s.head
            .to_ascii_lowercase()
            .contains("access-control-allow-origin: http://gui.test"),
        "{}",
        s.head
    );
    let s = Sse::open(k.addr, "/event-stream?id=1", "Origin: http://evil.test\r\n").await;
    assert_eq!(s.status, 403, "{}", s.head);
}

#[tokio::test]
async fn stream_userpass_goes_through_the_guard() {
    let mut c = base_conf(json!([]));
    c["event_streaming_configuration"] = json!({});
    // Listening on every address: the stream asks for the userpass (connections stay on 127.0.0.1).
    c["rpcip"] = json!("0.0.0.0");
    c["auth_fail_threshold_loopback"] = json!(3);
    c["auth_fail_delay_ms"] = json!(0);
    let k = Kdfd::start(c);
    let addr: SocketAddr = format!("127.0.0.1:{}", k.addr.port()).parse().unwrap();
    for i in 0..3 {
        let s = Sse::open(addr, &format!("/event-stream?id=1&userpass=guess{i}"), "").await;
        assert_eq!(s.status, 403, "{}", s.head);
    }
    // Locked out: the right userpass is refused on the stream and on RPC alike.
    let enc = USERPASS.replace('!', "%21");
    let s = Sse::open(addr, &format!("/event-stream?id=1&userpass={enc}"), "").await;
    assert_eq!(s.status, 429, "{}", s.head);
    let (status, v): (u16, Value) = k
        .post(&json!({"userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!(status, 429, "{v}");
}
