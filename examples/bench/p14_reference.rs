//! P14's real-chain helpers: a line-counting TCP proxy to ElectrumX, and the minimal reference
//! client that fetches what kdfd's history sync fetches, in arrays of the same size.

use super::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// kdfd's `history::sync::CHUNK`: calls per JSON-RPC array.
pub(crate) const CHUNK: usize = 100;

/// What the proxy saw from its clients since the last `take`.
#[derive(Default, Clone)]
pub(crate) struct Tally {
    pub(crate) lines: usize,
    /// Lines holding nothing but `blockchain.headers.subscribe` (kdfd's tip read per page).
    pub(crate) tip_only_lines: usize,
    requests: BTreeMap<String, usize>,
    /// When the first line and the last line that is not only a tip read arrived.
    pub(crate) first_at: Option<Instant>,
    pub(crate) last_work_at: Option<Instant>,
}

impl Tally {
    fn add(&mut self, line: &[u8]) {
        let now = Instant::now();
        self.first_at.get_or_insert(now);
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            self.lines += 1;
            return;
        };
        let items = match v {
            Value::Array(a) => a,
            one => vec![one],
        };
        let methods: Vec<String> = items
            .iter()
            .map(|i| i["method"].as_str().unwrap_or("?").to_string())
            .collect();
        self.lines += 1;
        if methods.iter().all(|m| m == "blockchain.headers.subscribe") {
            self.tip_only_lines += 1;
        } else {
            self.last_work_at = Some(now);
        }
        for m in methods {
            *self.requests.entry(m).or_default() += 1;
        }
    }

    pub(crate) fn summary(&self) -> String {
        self.requests
            .iter()
            .map(|(m, n)| format!("`{m}` × {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A TCP proxy to ElectrumX that counts the lines its clients send.
pub(crate) struct Proxy {
    pub(crate) url: String,
    tally: Arc<Mutex<Tally>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub(crate) async fn start(upstream: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = listener.local_addr()?.to_string();
        let tally = Arc::new(Mutex::new(Tally::default()));
        let t = tally.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (up, t) = (upstream.clone(), t.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&up).await else {
                        return;
                    };
                    let _ = (client.set_nodelay(true), server.set_nodelay(true));
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    tokio::spawn(async move { tokio::io::copy(&mut sr, &mut cw).await });
                    let (mut buf, mut pending) = (vec![0u8; 65536], Vec::new());
                    while let Ok(n) = cr.read(&mut buf).await {
                        // Forward first, count after, so counting adds no latency.
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(p) = pending.iter().position(|b| *b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=p).collect();
                            t.lock().unwrap_or_else(|e| e.into_inner()).add(&line);
                        }
                    }
                });
            }
        });
        Ok(Proxy { url, tally, task })
    }

    pub(crate) fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A newline-delimited JSON-RPC connection: one line out (an array when more than one call),
/// one line back.
struct Raw {
    lines: tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

impl Raw {
    async fn calls(&mut self, method: &str, params: Vec<Value>) -> anyhow::Result<Vec<Value>> {
        let reqs: Vec<Value> = params
            .into_iter()
            .enumerate()
            .map(|(i, p)| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": p}))
            .collect();
        let mut line = match reqs.len() {
            1 => reqs[0].to_string(),
            _ => Value::Array(reqs.clone()).to_string(),
        };
        line.push('\n');
        self.wr.write_all(line.as_bytes()).await?;
        let answer = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .map_err(|_| anyhow!("{method}: no answer within 60 s"))??
            .ok_or_else(|| anyhow!("{method}: connection closed"))?;
        let mut out = vec![Value::Null; reqs.len()];
        let items = match serde_json::from_str::<Value>(&answer)? {
            Value::Array(a) => a,
            one => vec![one],
        };
        for a in items {
            let i = a["id"].as_u64().unwrap_or(u64::MAX) as usize;
            if !a["error"].is_null() || i >= out.len() {
                bail!("{method}: {}", short(&a));
            }
            out[i] = a["result"].clone();
        }
        Ok(out)
    }
}

fn unhex(s: &str) -> anyhow::Result<Vec<u8>> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(Into::into))
        .collect()
}

/// The reference fetch: kdfd's sync plan, one array at a time (history; newest first in chunks
/// of 100: the chunk's transactions, then the transactions their inputs spend that the chunk
/// lacks, then the headers of heights not fetched yet). Returns the transactions fetched.
pub(crate) async fn reference(url: &str, scripthash: &str) -> anyhow::Result<usize> {
    let sock = TcpStream::connect(url).await?;
    sock.set_nodelay(true)?;
    let (rd, wr) = sock.into_split();
    let mut c = Raw {
        lines: BufReader::new(rd).lines(),
        wr,
    };
    c.calls("server.version", vec![json!(["kdfd-bench-ref", "1.4"])])
        .await?;
    let hist = c
        .calls(
            "blockchain.scripthash.get_history",
            vec![json!([scripthash])],
        )
        .await?;
    let mut heights: HashMap<String, u64> = HashMap::new();
    for item in hist[0].as_array().into_iter().flatten() {
        let (id, h) = (
            item["tx_hash"].as_str().unwrap_or(""),
            item["height"].as_i64(),
        );
        let e = heights.entry(id.to_string()).or_default();
        *e = (*e).max(h.unwrap_or(0).max(0) as u64);
    }
    let mut ids: Vec<&String> = heights.keys().collect();
    // kdfd's order: unmined first, then newest first, ties by id.
    ids.sort_by_key(|id| {
        let h = heights[*id];
        (std::cmp::Reverse(if h == 0 { u64::MAX } else { h }), *id)
    });
    let (mut fetched, mut have_header) = (0, HashSet::new());
    for chunk in ids.chunks(CHUNK) {
        let raws = c
            .calls(
                "blockchain.transaction.get",
                chunk.iter().map(|id| json!([id])).collect(),
            )
            .await?;
        let mine: HashSet<&str> = chunk.iter().map(|s| s.as_str()).collect();
        let mut missing = BTreeSet::new();
        for r in &raws {
            let t: bitcoin::Transaction =
                bitcoin::consensus::deserialize(&unhex(r.as_str().unwrap_or(""))?)?;
            for i in &t.input {
                let prev = i.previous_output.txid.to_string();
                if !i.previous_output.is_null() && !mine.contains(prev.as_str()) {
                    missing.insert(prev);
                }
            }
        }
        fetched += raws.len();
        let missing: Vec<String> = missing.into_iter().collect();
        for m in missing.chunks(CHUNK) {
            let got = c
                .calls(
                    "blockchain.transaction.get",
                    m.iter().map(|id| json!([id])).collect(),
                )
                .await?;
            fetched += got.len();
        }
        let want: BTreeSet<u64> = chunk
            .iter()
            .map(|id| heights[*id])
            .filter(|h| *h > 0 && !have_header.contains(h))
            .collect();
        let want: Vec<u64> = want.into_iter().collect();
        for w in want.chunks(CHUNK) {
            c.calls(
                "blockchain.block.header",
                w.iter().map(|h| json!([h])).collect(),
            )
            .await?;
            have_header.extend(w.iter().copied());
        }
    }
    Ok(fetched)
}
