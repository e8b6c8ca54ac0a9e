//! A raw SSE client: HTTP/1.1 chunked decoding by hand, so tests and the bench see KDF's exact
//! frame bytes (`data: {...} \n\n`) and comments (`: ok`).

use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw SSE connection: the head, then the decoded body as it arrives.
pub struct Sse {
    sock: TcpStream,
    /// The response status.
    pub status: u16,
    /// The response head.
    pub head: String,
    raw: Vec<u8>,
    body: Vec<u8>,
}

impl Sse {
    /// Sends `GET target` with `extra` header lines (each ending in `\r\n`) and reads the head.
    pub async fn open(addr: SocketAddr, target: &str, extra: &str) -> Sse {
        let mut sock = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {target} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
        sock.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let end = loop {
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
                .await
                .expect("head in time")
                .unwrap();
            assert!(n > 0, "closed before the head");
            raw.extend_from_slice(&buf[..n]);
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
        };
        let head = String::from_utf8(raw[..end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        Sse {
            sock,
            status,
            head,
            raw: raw[end..].to_vec(),
            body: Vec::new(),
        }
    }

    /// Decodes the complete chunks in `raw` into `body`; `true` once the last chunk was seen.
    fn dechunk(&mut self) -> bool {
        loop {
            let Some(p) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let size = usize::from_str_radix(std::str::from_utf8(&self.raw[..p]).unwrap(), 16)
                .expect("chunk size");
            if size == 0 {
                return true;
            }
            if self.raw.len() < p + 2 + size + 2 {
                return false;
            }
            self.body.extend_from_slice(&self.raw[p + 2..p + 2 + size]);
            self.raw.drain(..p + 2 + size + 2);
        }
    }

    /// The next `\n\n`-terminated block (a frame or a comment), or `None` when the stream ends.
    pub async fn next(&mut self, within: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ended = self.dechunk();
            if let Some(p) = self.body.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.body.drain(..p + 2).collect();
                return Some(String::from_utf8(block).unwrap());
            }
            if ended {
                return None;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, self.sock.read(&mut buf))
                .await
                .expect("an SSE block in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
        }
    }

    /// The next data frame's JSON, skipping comments.
    pub async fn event(&mut self, within: Duration) -> Option<Value> {
        loop {
            let block = self.next(within).await?;
            if block.starts_with(':') {
                continue;
            }
            let json = block
                .strip_prefix("data: ")
                .and_then(|r| r.strip_suffix(" \n\n"))
                .unwrap_or_else(|| panic!("not KDF's frame: {block:?}"));
            return Some(serde_json::from_str(json).unwrap());
        }
    }

    /// The next data frame whose `_type` is `ty`, parsed; comments and other frames skipped.
    pub async fn frame(&mut self, ty: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self
                .event(left)
                .await
                .unwrap_or_else(|| panic!("no {ty} frame"));
            if v["_type"] == ty {
                return v;
            }
        }
    }
}
