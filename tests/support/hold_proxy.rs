//! A line proxy in front of a real Electrum server that can hold back the requests for one
//! method (while the others pass, reordered: JSON-RPC answers go by id), so a test can keep a
//! history sync from downloading transactions while everything else, the tip included, flows.
#![allow(dead_code)]

use serde_json::Value;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct HoldProxy {
    pub addr: String,
    hold: Arc<watch::Sender<bool>>,
}

impl HoldProxy {
    /// Listens on 127.0.0.1 and forwards every connection to `upstream`; requests for `method`
    /// wait while the hold is on.
    pub async fn start(upstream: &str, method: &str) -> HoldProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, _) = watch::channel(false);
        let hold = Arc::new(tx);
        let (up, method, h) = (upstream.to_string(), method.to_string(), hold.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&up).await else {
                    continue;
                };
                tokio::spawn(pipe(client, server, method.clone(), h.subscribe()));
            }
        });
        HoldProxy { addr, hold }
    }

    /// Holds (or releases, then sends in order) the matching lines of every connection.
    pub fn hold(&self, on: bool) {
        self.hold.send_replace(on);
    }
}

/// A request line cut in two: what passes and what waits. An array keeps its other requests
/// passing (a tip read queued in the same instant as the downloads must not wait with them).
fn split(line: &str, method: &str) -> (Option<String>, Option<String>) {
    let is_held = |v: &Value| v["method"] == method;
    let as_line =
        |items: Vec<Value>| (!items.is_empty()).then(|| format!("{}\n", Value::Array(items)));
    match serde_json::from_str::<Value>(line) {
        Ok(Value::Array(items)) => {
            let (held, pass): (Vec<Value>, Vec<Value>) = items.into_iter().partition(is_held);
            (as_line(pass), as_line(held))
        }
        Ok(v) if is_held(&v) => (None, Some(line.to_string())),
        _ => (Some(line.to_string()), None),
    }
}

async fn pipe(
    client: TcpStream,
    server: TcpStream,
    method: String,
    mut hold: watch::Receiver<bool>,
) {
    let (cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    });
    let mut lines = BufReader::new(cr);
    let mut held: Vec<String> = Vec::new();
    // Outside the loop: a read cut short by the other branch keeps what it read.
    let mut line = String::new();
    loop {
        tokio::select! {
            n = lines.read_line(&mut line) => {
                if !matches!(n, Ok(n) if n > 0) {
                    break;
                }
                let line = std::mem::take(&mut line);
                let (pass, hold_back) = if *hold.borrow() {
                    split(&line, &method)
                } else {
                    (Some(line), None)
                };
                held.extend(hold_back);
                if let Some(p) = pass {
                    if sw.write_all(p.as_bytes()).await.is_err() {
                        break;
                    }
                }
            }
            changed = hold.changed() => {
                if changed.is_err() {
                    break;
                }
                if !*hold.borrow() {
                    for l in held.drain(..) {
                        if sw.write_all(l.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
    let _ = sw.shutdown().await;
}
