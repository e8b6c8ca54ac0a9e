//! Checks the fake Electrum test server itself over real TCP and TLS sockets, so
//! failures in kdfd's integration tests can be trusted to be kdfd's.

use kdfd_testkit::electrum_fake;

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use electrum_fake::{FakeElectrum, Mode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};

const SH: &str = "0000000000000000000000000000000000000000000000000000000000000abc";
const SH2: &str = "1111111111111111111111111111111111111111111111111111111111111def";

/// A blocking line-oriented client.
struct Client {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let writer = TcpStream::connect(addr).expect("connect");
        writer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        let reader = BufReader::new(writer.try_clone().expect("clone stream"));
        Client { writer, reader }
    }

    fn send_raw(&mut self, text: &str) {
        self.writer.write_all(text.as_bytes()).expect("write");
    }

    fn send(&mut self, v: &Value) {
        self.send_raw(&format!("{v}\n"));
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).expect("read line");
        assert!(n > 0, "connection closed while waiting for a line");
        line
    }

    fn recv(&mut self) -> Value {
        let line = self.line();
        serde_json::from_str(&line).expect("reply is JSON")
    }

    fn call(&mut self, id: Value, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let reply = self.recv();
        assert_eq!(reply["jsonrpc"], "2.0");
        assert_eq!(reply["id"], id, "id echoed for {method}");
        reply
    }

    /// Asserts nothing arrives within `wait`.
    fn expect_quiet(&mut self, wait: Duration) {
        self.writer
            .set_read_timeout(Some(wait))
            .expect("set timeout");
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "unexpected error {e}"
            ),
            Ok(n) => panic!("expected silence, got {n} bytes: {line:?}"),
        }
        self.writer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
    }

    /// Asserts the server closes the connection.
    fn expect_closed(&mut self) {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected close, got {other:?} {line:?}"),
        }
    }
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn tcp_methods_errors_and_counters() {
    let srv = FakeElectrum::start_tcp();
    assert!(srv.cert_pem().is_none());
    assert_eq!(srv.url(), format!("127.0.0.1:{}", srv.addr().port()));
    let mut c = Client::connect(srv.addr());

    let r = c.call(
        json!(1),
        "server.version",
        json!(["kdfd-test", ["1.4", "1.4"]]),
    );
    assert_eq!(r["result"], json!(["FakeElectrum 1.0", "1.4"]));
    let r = c.call(json!("p"), "server.ping", json!([]));
    assert!(r.as_object().expect("object").contains_key("result"));
    assert_eq!(r["result"], Value::Null);
    let r = c.call(json!(2), "server.features", json!([]));
    assert_eq!(r["result"]["protocol_min"], "1.4");
    assert_eq!(r["result"]["genesis_hash"], "0".repeat(64));
    assert_eq!(r["result"]["hash_function"], "sha256");

    let r = c.call(json!(3), "blockchain.scripthash.get_balance", json!([SH]));
    assert_eq!(r["result"], json!({"confirmed": 0, "unconfirmed": 0}));
    srv.set_balance(SH, 150_000_000, -5);
    let r = c.call(json!(4), "blockchain.scripthash.get_balance", json!([SH]));
    assert_eq!(
        r["result"],
        json!({"confirmed": 150_000_000, "unconfirmed": -5})
    );

    for m in [
        "blockchain.scripthash.listunspent",
        "blockchain.scripthash.get_history",
        "blockchain.scripthash.get_mempool",
    ] {
        assert_eq!(c.call(json!(5), m, json!([SH]))["result"], json!([]));
    }
    let r = c.call(json!({"k": 1}), "blockchain.headers.subscribe", json!([]));
    assert_eq!(r["result"]["height"], 100);
    assert_eq!(r["result"]["hex"], "0".repeat(160));
    let r = c.call(json!(6), "blockchain.estimatefee", json!([2]));
    assert_eq!(r["result"], json!(0.00001));
    let r = c.call(json!(7), "blockchain.relayfee", json!([]));
    assert_eq!(r["result"], json!(0.00001));

    let r = c.call(json!(8), "no.such.method", json!([]));
    assert_eq!(r["error"]["code"], -32601);
    c.send_raw("{this is not json\n");
    let r = c.recv();
    assert_eq!(r["error"]["code"], -32700);
    assert_eq!(r["id"], Value::Null);

    // A request without an id gets no reply; the next one is answered normally.
    c.send(&json!({"jsonrpc": "2.0", "method": "server.ping", "params": []}));
    let r = c.call(json!(9), "server.ping", json!([]));
    assert_eq!(r["result"], Value::Null);

    assert_eq!(srv.connections_accepted(), 1);
    assert_eq!(srv.lines_received(), 15);
    assert_eq!(srv.method_count("server.ping"), 3);
    assert_eq!(srv.method_count("blockchain.scripthash.get_balance"), 2);
    assert_eq!(srv.methods()[0], "server.version");
    assert_eq!(srv.methods().len(), 14, "malformed line has no method");
    assert_eq!(srv.client_names(), vec!["kdfd-test".to_string()]);

    srv.reset_counters();
    assert_eq!(srv.lines_received(), 0);
    assert_eq!(srv.connections_accepted(), 0);
    assert!(srv.methods().is_empty());
    assert!(srv.client_names().is_empty());
    // Balances survive a counter reset.
    let r = c.call(json!(10), "blockchain.scripthash.get_balance", json!([SH]));
    assert_eq!(r["result"]["confirmed"], 150_000_000);
}

#[test]
fn tcp_batch_and_pipelining() {
    let srv = FakeElectrum::start_tcp();
    srv.set_balance(SH, 7, 1);
    let mut c = Client::connect(srv.addr());
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "server.version", "params": ["batcher", "1.4"]},
        {"jsonrpc": "2.0", "id": "two", "method": "blockchain.scripthash.get_balance", "params": [SH]},
        {"jsonrpc": "2.0", "id": 3, "method": "nope", "params": []},
    ]);
    c.send(&batch);
    let r = c.recv();
    let items = r.as_array().expect("batch reply is an array");
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["id"], 1);
    assert_eq!(items[0]["result"][1], "1.4");
    assert_eq!(items[1]["id"], "two");
    assert_eq!(
        items[1]["result"],
        json!({"confirmed": 7, "unconfirmed": 1})
    );
    assert_eq!(items[2]["id"], 3);
    assert_eq!(items[2]["error"]["code"], -32601);
    assert_eq!(srv.lines_received(), 1);
    assert_eq!(
        srv.methods(),
        vec![
            "server.version",
            "blockchain.scripthash.get_balance",
            "nope"
        ]
    );
    assert_eq!(srv.client_names(), vec!["batcher".to_string()]);

    // Several requests in one write are answered line by line, in order.
    let mut burst = String::new();
    for id in 0..5 {
        burst.push_str(
            &json!({"jsonrpc": "2.0", "id": id, "method": "server.ping", "params": []}).to_string(),
        );
        burst.push_str("\r\n");
    }
    c.send_raw(&burst);
    for id in 0..5 {
        assert_eq!(c.recv()["id"], id);
    }
    assert_eq!(srv.method_count("server.ping"), 5);
    assert_eq!(srv.lines_received(), 6);
}

#[test]
fn subscribe_and_notifications() {
    let srv = FakeElectrum::start_tcp();
    let mut a = Client::connect(srv.addr());
    let mut b = Client::connect(srv.addr());

    let r = a.call(json!(1), "blockchain.scripthash.subscribe", json!([SH]));
    assert_eq!(
        r["result"],
        Value::Null,
        "never-set scripthash has null status"
    );
    let r = b.call(json!(1), "blockchain.scripthash.subscribe", json!([SH2]));
    assert_eq!(r["result"], Value::Null);

    srv.set_balance(SH, 1000, 0);
    let note = a.recv();
    assert_eq!(note["method"], "blockchain.scripthash.subscribe");
    assert!(note.get("id").is_none());
    assert_eq!(note["params"][0], SH);
    let s1 = note["params"][1]
        .as_str()
        .expect("status string")
        .to_string();
    assert_eq!(s1.len(), 64);
    assert!(s1.chars().all(|ch| ch.is_ascii_hexdigit()));
    b.expect_quiet(Duration::from_millis(200));

    let r = a.call(json!(2), "blockchain.scripthash.subscribe", json!([SH]));
    assert_eq!(r["result"], s1.as_str());

    srv.set_balance(SH, 1000, 250);
    let s2 = a.recv()["params"][1].as_str().expect("status").to_string();
    assert_ne!(s1, s2, "status changes with the balance");

    let r = a.call(json!(3), "blockchain.scripthash.unsubscribe", json!([SH]));
    assert_eq!(r["result"], true);
    srv.set_balance(SH, 1, 1);
    a.expect_quiet(Duration::from_millis(200));

    srv.set_balance(SH2, 5, 0);
    assert_eq!(b.recv()["params"][0], SH2);
}

#[test]
fn failure_modes() {
    let srv = FakeElectrum::start_tcp();
    let mut c = Client::connect(srv.addr());
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "server.ping", "params": []});

    srv.set_mode(Mode::Silent);
    c.send(&ping);
    c.expect_quiet(Duration::from_millis(300));
    wait_until("silent message counted", || srv.lines_received() == 1);

    srv.set_mode(Mode::Garbage);
    c.send(&ping);
    let line = c.line();
    assert!(line.ends_with('\n'));
    assert!(
        serde_json::from_str::<Value>(&line).is_err(),
        "garbage: {line:?}"
    );

    srv.set_mode(Mode::RejectVersion);
    let r = c.call(json!(2), "server.version", json!(["x", "1.4"]));
    assert!(r["error"]["code"].is_i64());
    assert!(r.get("result").is_none());
    let r = c.call(json!(3), "server.ping", json!([]));
    assert_eq!(r["result"], Value::Null);

    srv.set_mode(Mode::Drop);
    let mut fresh = Client::connect(srv.addr());
    c.send(&ping);
    c.expect_closed();
    fresh.send(&ping);
    fresh.expect_closed();

    srv.set_mode(Mode::Normal);
    let mut d = Client::connect(srv.addr());
    assert_eq!(
        d.call(json!(4), "server.ping", json!([]))["result"],
        Value::Null
    );
    assert_eq!(srv.method_count("server.ping"), 6);
    assert_eq!(srv.connections_accepted(), 3);
}

#[test]
fn latency_is_per_message_and_per_connection() {
    let srv = FakeElectrum::start_tcp();
    let mut a = Client::connect(srv.addr());
    let mut b = Client::connect(srv.addr());
    let delay = Duration::from_millis(400);
    srv.set_latency(delay);

    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "server.ping", "params": []});
    let batch = json!([ping.clone(), ping.clone(), ping.clone()]);
    let start = Instant::now();
    a.send(&batch);
    b.send(&ping);
    assert_eq!(a.recv().as_array().map(Vec::len), Some(3));
    assert_eq!(b.recv()["id"], 1);
    let elapsed = start.elapsed();
    assert!(elapsed >= delay, "replied too early: {elapsed:?}");
    assert!(
        elapsed < delay * 2,
        "connections or batch items were delayed serially: {elapsed:?}"
    );

    // Pipelined lines are delayed concurrently and still answered in order.
    let start = Instant::now();
    let mut burst = String::new();
    for id in 0..4 {
        burst.push_str(
            &json!({"jsonrpc": "2.0", "id": id, "method": "server.ping", "params": []}).to_string(),
        );
        burst.push('\n');
    }
    a.send_raw(&burst);
    for id in 0..4 {
        assert_eq!(a.recv()["id"], id);
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= delay && elapsed < delay * 2,
        "burst took {elapsed:?}"
    );

    srv.set_latency(Duration::ZERO);
    let start = Instant::now();
    a.send(&ping);
    a.recv();
    assert!(start.elapsed() < delay);
}

#[test]
fn stop_and_restart_on_same_port() {
    let srv = FakeElectrum::start_tcp();
    let addr = srv.addr();
    let mut c = Client::connect(addr);
    c.call(json!(1), "server.ping", json!([]));

    srv.stop();
    c.expect_closed();
    let err = TcpStream::connect(addr).expect_err("port must be closed after stop");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    srv.stop(); // idempotent
    srv.set_balance(SH, 42, 0);

    srv.restart();
    assert_eq!(srv.addr(), addr);
    let mut c = Client::connect(addr);
    let r = c.call(json!(2), "blockchain.scripthash.get_balance", json!([SH]));
    assert_eq!(r["result"]["confirmed"], 42);
    srv.restart(); // no-op while running
    assert_eq!(srv.connections_accepted(), 2);
}

type TlsLines = tokio::io::BufReader<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

async fn tls_connect(srv: &FakeElectrum, name: &str) -> TlsLines {
    let pem = srv.cert_pem().expect("TLS server has a cert");
    assert!(pem.contains("BEGIN CERTIFICATE"));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(pem.as_bytes()).expect("parse cert pem"))
        .expect("add root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(srv.addr())
        .await
        .expect("tcp connect");
    let server_name = ServerName::try_from(name.to_string()).expect("server name");
    let tls = connector
        .connect(server_name, tcp)
        .await
        .expect("TLS handshake");
    tokio::io::BufReader::new(tls)
}

async fn tls_call(s: &mut TlsLines, req: Value) -> Value {
    s.get_mut()
        .write_all(format!("{req}\n").as_bytes())
        .await
        .expect("write");
    s.get_mut().flush().await.expect("flush");
    tls_recv(s).await
}

async fn tls_recv(s: &mut TlsLines) -> Value {
    let mut line = String::new();
    let n = tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut line))
        .await
        .expect("reply in time")
        .expect("read");
    assert!(n > 0, "TLS connection closed");
    serde_json::from_str(&line).expect("JSON reply")
}

#[tokio::test]
async fn tls_version_subscribe_and_restart() {
    let srv = FakeElectrum::start_ssl();
    let mut s = tls_connect(&srv, "localhost").await;
    let r = tls_call(
        &mut s,
        json!({"jsonrpc": "2.0", "id": 1, "method": "server.version", "params": ["tls-client", "1.4"]}),
    )
    .await;
    assert_eq!(r["result"][0], "FakeElectrum 1.0");
    let r = tls_call(
        &mut s,
        json!({"jsonrpc": "2.0", "id": 2, "method": "blockchain.scripthash.subscribe", "params": [SH]}),
    )
    .await;
    assert_eq!(r["result"], Value::Null);
    // The sync API works from inside a tokio runtime.
    srv.set_balance(SH, 9, 0);
    let note = tls_recv(&mut s).await;
    assert_eq!(note["params"][0], SH);
    assert_eq!(srv.client_names(), vec!["tls-client".to_string()]);

    let pem = srv.cert_pem();
    srv.stop();
    srv.restart();
    assert_eq!(srv.cert_pem(), pem);
    // The IP SAN is valid too, and the restarted server keeps its cert and balances.
    let mut s = tls_connect(&srv, "127.0.0.1").await;
    let r = tls_call(
        &mut s,
        json!({"jsonrpc": "2.0", "id": 3, "method": "blockchain.scripthash.get_balance", "params": [SH]}),
    )
    .await;
    assert_eq!(r["result"], json!({"confirmed": 9, "unconfirmed": 0}));
    assert_eq!(srv.connections_accepted(), 2);
}

#[test]
fn many_concurrent_pipelined_connections() {
    let srv = FakeElectrum::start_tcp();
    let addr = srv.addr();
    let workers: Vec<_> = (0..32)
        .map(|w| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mut burst = String::new();
                for i in 0..20 {
                    let id = w * 100 + i;
                    burst.push_str(
                        &json!({"jsonrpc": "2.0", "id": id, "method": "server.ping", "params": []})
                            .to_string(),
                    );
                    burst.push('\n');
                }
                c.send_raw(&burst);
                for i in 0..20 {
                    assert_eq!(c.recv()["id"], w * 100 + i);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    assert_eq!(srv.connections_accepted(), 32);
    assert_eq!(srv.method_count("server.ping"), 640);
}
