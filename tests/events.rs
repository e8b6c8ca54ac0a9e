//! The SSE event stream end to end: the real kdfd binary, a raw-socket SSE reader (chunked
//! HTTP/1.1 decoded by hand, so the exact frame bytes are checked), and the fake Electrum server
//! for balance notifications.

mod support;

use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use support::electrum_fake::FakeElectrum;
use support::sse::Sse;
use support::{base_conf, bob_scripthashes, shipped_coins, Kdfd, BOB_R_ADDRESS, USERPASS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn streaming_conf() -> Value {
    let mut c = base_conf(shipped_coins());
    c["event_streaming_configuration"] = json!({"access_control_allow_origin": "http://gui.test"});
    c
}

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params, "id": 1})
}

#[tokio::test]
async fn disabled_stream_is_500_text() {
    let k = Kdfd::start(base_conf(shipped_coins()));
    let s = Sse::open(k.addr, "/event-stream?id=0", "").await;
    assert_eq!(s.status, 500);
    assert!(s.head.contains("text/plain"), "{}", s.head);
    // Any method reaches the endpoint.
    let mut sock = TcpStream::connect(k.addr).await.unwrap();
    sock.write_all(
        b"POST /event-stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    sock.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 500"), "{out}");
    assert!(out.ends_with("Event streaming is disabled"), "{out}");
}

#[tokio::test]
async fn heartbeat_errors_and_takeover() {
    let k = Kdfd::start(streaming_conf());
    // Before any SSE connection: UnknownClient, which the SDK retries on.
    let (status, v) = k
        .post(&v2(
            "stream::heartbeat::enable",
            json!({"client_id": 0, "config": {"stream_interval_seconds": 0.2}}),
        ))
        .await;
    assert_eq!(
        (status, v["error_type"].as_str()),
        (400, Some("EnableError"))
    );
    assert_eq!(v["error_data"], "UnknownClient");
    let (status, v) = k
        .post(&v2(
            "stream::heartbeat::enable",
            json!({"client_id": 0, "config": {"stream_interval_seconds": 1, "x": 1}}),
        ))
        .await;
    assert_eq!(status, 400, "deny_unknown_fields: {v}");

    let mut s = Sse::open(k.addr, "/event-stream?id=abc", "").await;
    assert_eq!(s.status, 200);
    let head = s.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("cache-control: no-cache"));
    assert!(head.contains("access-control-allow-origin: http://gui.test"));
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");

    // A non-numeric id is client 0.
    let (status, v) = k
        .post(&v2(
            "stream::heartbeat::enable",
            json!({"client_id": 0, "config": {"stream_interval_seconds": 0.2}}),
        ))
        .await;
    assert_eq!(
        (status, &v["result"]),
        (200, &json!({"streamer_id": "HEARTBEAT"}))
    );
    let (_, v) = k
        .post(&v2(
            "stream::heartbeat::enable",
            json!({"client_id": 0, "config": {"stream_interval_seconds": 0.2}}),
        ))
        .await;
    assert_eq!(v["error_data"], "ClientAlreadyListening");
    let raw = s.next(Duration::from_secs(5)).await.unwrap();
    assert_eq!(raw, "data: {\"_type\":\"HEARTBEAT\",\"message\":{}} \n\n");
    assert_eq!(
        s.event(Duration::from_secs(5)).await.unwrap()["_type"],
        "HEARTBEAT"
    );

    // A reconnect with the same id takes over: the old stream ends, heartbeats keep coming on
    // the new one (the subscription moved with the id), with ids as asked.
    let mut s2 = Sse::open(k.addr, "/event-stream?id=0&event_ids=1", "").await;
    assert_eq!(s2.status, 200);
    while s.next(Duration::from_secs(5)).await.is_some() {}
    assert_eq!(s2.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let framed = s2.next(Duration::from_secs(5)).await.unwrap();
    assert!(framed.starts_with("id: "), "{framed:?}");
    assert!(framed.ends_with("\ndata: {\"_type\":\"HEARTBEAT\",\"message\":{}} \n\n"));

    let (status, v) = k
        .post(&v2(
            "stream::disable",
            json!({"client_id": 0, "streamer_id": "HEARTBEAT"}),
        ))
        .await;
    assert_eq!((status, &v["result"]), (200, &json!({"result": "Success"})));
    let (status, v) = k
        .post(&v2(
            "stream::disable",
            json!({"client_id": 0, "streamer_id": "HEARTBEAT"}),
        ))
        .await;
    assert_eq!(
        (status, v["error_type"].as_str()),
        (400, Some("DisableError"))
    );

    // Disconnecting forgets the client.
    drop(s2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, v) = k
        .post(&v2(
            "stream::shutdown_signal::enable",
            json!({"client_id": 0}),
        ))
        .await;
    assert_eq!(v["error_data"], "UnknownClient", "{v}");
}

#[tokio::test]
async fn balance_event_after_a_payment() {
    let (p2pkh, _) = bob_scripthashes();
    let rick = FakeElectrum::start_tcp();
    rick.set_balance(&p2pkh, 100_000_000, 0);
    let k = Kdfd::start(streaming_conf());
    let (status, v) = k
        .post(&json!({"userpass": USERPASS, "method": "electrum", "coin": "RICK", "servers": [{"url": rick.url()}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let mut s = Sse::open(k.addr, "/event-stream?id=7", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (status, v) = k
        .post(&v2(
            "stream::balance::enable",
            json!({"client_id": 7, "coin": "NOPE"}),
        ))
        .await;
    assert_eq!(
        (status, v["error_type"].as_str()),
        (404, Some("CoinNotFound")),
        "{v}"
    );
    let (_, v) = k
        .post(&v2(
            "stream::balance::enable",
            json!({"client_id": 7, "coin": "RICK", "config": {}}),
        ))
        .await;
    assert_eq!(v["error_data"], "Invalid config provided. No config needed");
    let (status, v) = k
        .post(&v2(
            "stream::balance::enable",
            json!({"client_id": 7, "coin": "RICK"}),
        ))
        .await;
    assert_eq!(
        (status, &v["result"]),
        (200, &json!({"streamer_id": "BALANCE:RICK"}))
    );
    let (_, v) = k
        .post(&v2(
            "stream::tx_history::enable",
            json!({"client_id": 7, "coin": "RICK"}),
        ))
        .await;
    assert_eq!(v["result"], json!({"streamer_id": "TX_HISTORY:RICK"}));
    // No initial event (as KDF): nothing but keep-alives until the balance changes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rick.set_balance(&p2pkh, 100_000_000, 23_000_000);
    let raw = s.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        raw,
        format!("data: {{\"_type\":\"BALANCE:RICK\",\"message\":[{{\"ticker\":\"RICK\",\"address\":\"{BOB_R_ADDRESS}\",\"balance\":{{\"spendable\":\"1.23\",\"unspendable\":\"0\"}}}}]}} \n\n")
    );
}

#[cfg(unix)]
#[tokio::test]
async fn shutdown_signal_on_sigterm() {
    let mut k = Kdfd::start(streaming_conf());
    let mut s = Sse::open(k.addr, "/event-stream", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (status, v) = k
        .post(&v2(
            "stream::shutdown_signal::enable",
            json!({"client_id": 0}),
        ))
        .await;
    assert_eq!(
        (status, &v["result"]),
        (200, &json!({"streamer_id": "SHUTDOWN_SIGNAL"}))
    );
    let rc = std::process::Command::new("kill")
        .args(["-TERM", &k.pid().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let raw = s.next(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        raw,
        "data: {\"_type\":\"SHUTDOWN_SIGNAL\",\"message\":\"SIGTERM\"} \n\n"
    );
    // The stream ends, so the drain is not held up by it.
    assert!(s.next(Duration::from_secs(10)).await.is_none());
    assert!(k.wait_exit(Duration::from_secs(10)).is_some());
}

#[tokio::test]
async fn non_loopback_needs_the_userpass() {
    let mut conf = streaming_conf();
    conf["rpcip"] = json!("0.0.0.0");
    let k = Kdfd::start(conf);
    let addr: SocketAddr = format!("127.0.0.1:{}", k.addr.port()).parse().unwrap();
    let s = Sse::open(addr, "/event-stream?id=1", "").await;
    assert_eq!(s.status, 403);
    let s = Sse::open(addr, "/event-stream?id=1&userpass=wrong", "").await;
    assert_eq!(s.status, 403);
    let enc = USERPASS.replace('!', "%21");
    let mut s = Sse::open(addr, &format!("/event-stream?id=1&userpass={enc}"), "").await;
    assert_eq!(s.status, 200);
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let mut s = Sse::open(
        addr,
        "/event-stream?id=2",
        &format!("Authorization: Bearer {USERPASS}\r\n"),
    )
    .await;
    assert_eq!(s.status, 200);
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
}

#[tokio::test]
async fn stop_ends_open_streams() {
    let mut k = Kdfd::start(streaming_conf());
    let mut s = Sse::open(k.addr, "/event-stream?id=3", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (_, v) = k
        .post(&v2(
            "stream::shutdown_signal::enable",
            json!({"client_id": 3}),
        ))
        .await;
    assert_eq!(v["result"]["streamer_id"], "SHUTDOWN_SIGNAL");
    let (status, _) = k
        .post(&json!({"userpass": USERPASS, "method": "stop"}))
        .await;
    assert_eq!(status, 200);
    // `stop` is the client's own request: no SHUTDOWN_SIGNAL event (as KDF), the stream just ends
    // instead of holding the drain until its timeout.
    assert!(s.next(Duration::from_secs(5)).await.is_none());
    assert!(k.wait_exit(Duration::from_secs(5)).is_some());
}

#[tokio::test]
async fn balance_read_error_is_an_error_event() {
    let (p2pkh, _) = bob_scripthashes();
    let rick = FakeElectrum::start_tcp();
    rick.set_balance(&p2pkh, 100_000_000, 0);
    let k = Kdfd::start(streaming_conf());
    let (status, v) = k
        .post(&json!({"userpass": USERPASS, "method": "electrum", "coin": "RICK", "servers": [{"url": rick.url()}]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let mut s = Sse::open(k.addr, "/event-stream?id=1", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (_, v) = k
        .post(&v2(
            "stream::balance::enable",
            json!({"client_id": 1, "coin": "RICK"}),
        ))
        .await;
    assert_eq!(v["result"]["streamer_id"], "BALANCE:RICK");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The notification goes out, then the server turns to garbage before the re-read arrives.
    rick.set_balance(&p2pkh, 5, 0);
    rick.set_mode(support::electrum_fake::Mode::Garbage);
    let ev = s.event(Duration::from_secs(30)).await.unwrap();
    assert_eq!(ev["_type"], "ERROR:BALANCE:RICK", "{ev}");
    assert!(ev["message"].is_string(), "{ev}");
}

/// Open file descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// `n` SSE connections opened and dropped, half on id 1 and half on fresh ids from `fresh`.
async fn cycles(k: &Kdfd, n: u64, fresh: u64) {
    for i in 0..n {
        let id = if i % 2 == 0 { 1 } else { fresh + i };
        let mut s = Sse::open(k.addr, &format!("/event-stream?id={id}"), "").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    }
}

#[tokio::test]
async fn connect_disconnect_cycles_leak_nothing() {
    // Rounds of 2 000 SSE connections opened and dropped (half on one id, half on fresh ids).
    // A dropped client is kept for the reconnect grace (30 s), so memory is compared between
    // rounds once the grace of each has passed: a leak would grow with every round, while the
    // first round only brings the allocator to its working size. File descriptors come back
    // at once.
    let k = Kdfd::start(streaming_conf());
    let grace = Duration::from_secs(31);
    let fd0 = fds(k.pid());
    cycles(&k, 2000, 1_000).await;
    tokio::time::sleep(grace).await;
    let rss0 = k.rss_kb().unwrap_or(0);
    cycles(&k, 2000, 1_000_000).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fd1 = fds(k.pid());
    tokio::time::sleep(grace).await;
    let rss1 = k.rss_kb().unwrap_or(0);
    assert!(fd1 <= fd0 + 2, "fds: {fd0} before, {fd1} after");
    assert!(
        rss1 < rss0 + 2 * 1024,
        "RSS: {rss0} kB after the first round, {rss1} kB after the second"
    );
    // Still serving.
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn ten_thousand_reconnects_stay_flat() {
    // 10 000 SSE connections opened and dropped, half on one id and half over 500 others, each
    // coming back detached without a Last-Event-ID (so it starts afresh, as in KDF): the kept
    // clients stay bounded, so RSS must be flat from the first fifth on (no per-disconnect
    // timer or state left behind), file descriptors back, the daemon serving.
    const CYCLES: u64 = 10_000;
    let k = Kdfd::start(streaming_conf());
    let fd0 = fds(k.pid());
    let t0 = std::time::Instant::now();
    let mut rss_fifth = 0;
    for i in 0..CYCLES {
        let id = if i % 2 == 0 { 1 } else { 1000 + (i / 2) % 500 };
        let mut s = Sse::open(k.addr, &format!("/event-stream?id={id}"), "").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
        if i + 1 == CYCLES / 5 {
            rss_fifth = k.rss_kb().unwrap_or(0);
        }
    }
    let took = t0.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (fd1, rss1) = (fds(k.pid()), k.rss_kb().unwrap_or(0));
    eprintln!("{CYCLES} cycles in {took:?}; RSS {rss_fifth} kB after 2 000, {rss1} kB after all");
    assert!(fd1 <= fd0 + 2, "fds: {fd0} before, {fd1} after");
    assert!(
        rss1 < rss_fifth + 2 * 1024,
        "RSS: {rss_fifth} kB after {} cycles, {rss1} kB after {CYCLES}",
        CYCLES / 5
    );
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn task_events_follow_an_activation() {
    // TASK:<id> events to the SSE client the init named, from InProgress to Ok.
    let fake = FakeElectrum::start_tcp();
    let k = Kdfd::start(streaming_conf());
    let mut s = Sse::open(k.addr, "/event-stream?id=4", "").await;
    assert_eq!(s.next(Duration::from_secs(5)).await.unwrap(), ": ok\n\n");
    let (status, v) = k
        .post(
            &json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "task::enable_utxo::init",
            "params": {"ticker": "RICK", "client_id": 4, "activation_params": {
                "mode": {"rpc": "Electrum", "rpc_data": {"servers": [{"url": fake.url()}]}}}}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let id = v["result"]["task_id"].as_u64().unwrap();
    let ty = format!("TASK:{id}");
    let first = s.frame(&ty, Duration::from_secs(10)).await;
    assert_eq!(first["message"]["status"], "InProgress", "{first}");
    let last = loop {
        let ev = s.frame(&ty, Duration::from_secs(10)).await;
        if ev["message"]["status"] != "InProgress" {
            break ev;
        }
    };
    assert_eq!(last["message"]["status"], "Ok", "{last}");
    assert_eq!(last["message"]["details"]["ticker"], "RICK");
    assert_eq!(
        last["message"]["details"]["wallet_balance"]["address"],
        BOB_R_ADDRESS
    );
}
