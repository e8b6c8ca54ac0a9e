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
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
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

/// An SSE connection opened with `event_ids=1`: every data frame it has read, in order, as
/// (sequence number, parsed frame), so tests can compare streams and check `Last-Event-ID`
/// replays. Each wait fails after `within` with the frames so far and kdfd's log tail.
pub struct Recorder {
    sse: Sse,
    within: Duration,
    /// Every data frame read so far.
    pub frames: Vec<(u64, Value)>,
}

impl Recorder {
    /// Opens `/event-stream?id=ID&event_ids=1`, with `Last-Event-ID: N` when given, and reads
    /// the `: ok` comment.
    pub async fn open(k: &crate::Kdfd, id: u64, last_seen: Option<u64>, within: Duration) -> Self {
        let extra = last_seen.map_or(String::new(), |n| format!("Last-Event-ID: {n}\r\n"));
        let target = format!("/event-stream?id={id}&event_ids=1");
        let mut sse = Sse::open(k.addr, &target, &extra).await;
        assert_eq!(sse.status, 200, "{}", sse.head);
        assert_eq!(sse.next(within).await.as_deref(), Some(": ok\n\n"));
        Recorder {
            sse,
            within,
            frames: Vec::new(),
        }
    }

    /// Reads one more data frame (comments skipped); fails at `until`.
    async fn read(&mut self, k: &crate::Kdfd, until: tokio::time::Instant, what: &str) {
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            // The outer limit fires first, so the failure says what was awaited.
            let Ok(block) = tokio::time::timeout(left, self.sse.next(left + self.within)).await
            else {
                let log = k.stderr();
                let lines: Vec<&str> = log.lines().collect();
                panic!(
                    "no {what} event within {:?}; frames so far: {:?}\n--- kdfd log ---\n{}",
                    self.within,
                    self.frames,
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            };
            let block = block.unwrap_or_else(|| panic!("the stream ended awaiting {what}"));
            if block.starts_with(':') {
                continue;
            }
            let (id, data) = block
                .strip_prefix("id: ")
                .and_then(|r| r.split_once('\n'))
                .unwrap_or_else(|| panic!("a frame without an id line: {block:?}"));
            let json = data
                .strip_prefix("data: ")
                .and_then(|r| r.strip_suffix(" \n\n"))
                .unwrap_or_else(|| panic!("not KDF's frame: {block:?}"));
            let seq = id.parse().expect("numeric id");
            self.frames.push((seq, serde_json::from_str(json).unwrap()));
            return;
        }
    }

    /// The index of the first frame at or after `from` whose `_type` is `ty` and whose
    /// `message` `pred` accepts, reading as needed.
    pub async fn find(
        &mut self,
        k: &crate::Kdfd,
        from: usize,
        ty: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> usize {
        let until = tokio::time::Instant::now() + self.within;
        let mut i = from;
        loop {
            while i < self.frames.len() {
                let f = &self.frames[i].1;
                if f["_type"] == ty && pred(&f["message"]) {
                    return i;
                }
                i += 1;
            }
            self.read(k, until, ty).await;
        }
    }

    /// Reads until a frame with sequence number `seq` or later has arrived.
    pub async fn catch_up(&mut self, k: &crate::Kdfd, seq: u64) {
        let until = tokio::time::Instant::now() + self.within;
        while self.last() < seq {
            self.read(k, until, &format!("seq {seq}")).await;
        }
    }

    /// The last sequence number read (0 before any frame).
    pub fn last(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.0)
    }
}
