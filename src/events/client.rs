//! One SSE client of the hub: its queue, its replay frames and what it listens to.

use super::{QUEUE, REPLAY};
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::{HashSet, VecDeque};
use tokio::sync::mpsc;

/// One queued frame: its per-client sequence number and the `data:` frame bytes.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Per-client sequence number (the SSE `id:` when asked for).
    pub seq: u64,
    /// `data: {...} \n\n`.
    pub data: Bytes,
}

/// KDF's frame for one event.
pub fn frame(streamer_id: &str, message: &Value) -> Bytes {
    let body = json!({"_type": streamer_id, "message": message});
    Bytes::from(format!("data: {body} \n\n"))
}

pub(super) struct Client {
    /// Which connection holds the id now (a reconnect takes over with a new one).
    pub conn: u64,
    pub tx: mpsc::Sender<Frame>,
    pub seq: u64,
    pub replay: VecDeque<Frame>,
    pub listening: HashSet<String>,
    /// Disconnected: kept for `GRACE` so a `Last-Event-ID` reconnect misses nothing.
    pub detached: bool,
    /// When it was detached (a hub-wide count): the oldest goes first past `MAX_DETACHED`.
    pub detached_order: u64,
    /// The timer that drops a detached client; cancelled when the id comes back, so a client
    /// that reconnects often leaves no sleeping task per disconnect.
    pub expiry: Option<tokio::task::AbortHandle>,
}

impl Client {
    pub fn cancel_expiry(&mut self) {
        if let Some(t) = self.expiry.take() {
            t.abort();
        }
    }
}

impl Client {
    pub fn push(&mut self, id: u64, data: Bytes) {
        self.seq += 1;
        let f = Frame {
            seq: self.seq,
            data,
        };
        if self.replay.len() == REPLAY {
            self.replay.pop_front();
        }
        self.replay.push_back(f.clone());
        if self.tx.is_closed() {
            return;
        }
        if self.tx.capacity() > 1 {
            let _ = self.tx.try_send(f);
            return;
        }
        tracing::warn!(
            client = id,
            "event stream client fell {QUEUE} events behind: told so and cut"
        );
        let notice = frame(
            "STREAM_LAGGED",
            &json!({"dropped_after_seq": self.seq - 1,
                    "reason": "the client fell too far behind; reconnect and re-read balances and history"}),
        );
        let _ = self.tx.try_send(Frame {
            seq: self.seq,
            data: notice,
        });
        // Replacing the sender ends this stream once the client has read what is queued.
        self.tx = mpsc::channel(1).0;
    }
}
