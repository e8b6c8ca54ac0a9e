//! KDF's event streaming: SSE clients (by u64 id), streamers (`BALANCE:<coin>`, `TX_HISTORY:<coin>`,
//! `TASK:<id>`, `HEARTBEAT`, `SHUTDOWN_SIGNAL`) and who listens to what. The HTTP side lives in
//! `rpc::sse`; the streamer tasks in `streamers`.
//!
//! - A frame is KDF's, byte for byte: `data: {"_type":"<id>","message":<payload>} \n\n`.
//! - Each client has a bounded queue. A client that falls `QUEUE` events behind is told so by
//!   one last event (`STREAM_LAGGED`, a kdfd extension) and its stream ends after it, so the
//!   daemon never buffers without limit and the client knows to reconnect and re-read.
//! - Each client keeps its last `REPLAY` frames with a sequence number, for `Last-Event-ID`
//!   replay when it reconnects (takes over) with the same id.
//! - A streamer's task runs while at least one client listens; the last `disable` (or
//!   disconnect) stops it.

mod client;
pub mod streamers;

use client::Client;
pub use client::{frame, Frame};

use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Frames a client may have queued before new ones are dropped.
pub const QUEUE: usize = 256;
/// Frames kept per client for `Last-Event-ID` replay.
pub const REPLAY: usize = 64;
/// How long a disconnected client's subscriptions and replay frames are kept for a reconnect
/// that names its `Last-Event-ID` (a reconnect without one starts afresh, as in KDF).
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// At most this many disconnected clients are kept for their grace: past it the longest
/// disconnected goes at once, so a flood of short-lived ids cannot grow memory (~2 KB each)
/// for `GRACE`.
pub const MAX_DETACHED: usize = 1024;

/// Why an enable or disable fails; the names are KDF's streamer-manager errors (the SDK matches
/// on `UnknownClient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// No SSE connection with that id.
    #[error("UnknownClient")]
    UnknownClient,
    /// The client listens to that streamer already.
    #[error("ClientAlreadyListening")]
    ClientAlreadyListening,
    /// `disable` of a streamer the client does not listen to.
    #[error("ClientNotListening")]
    ClientNotListening,
}

struct Streamer {
    clients: HashSet<u64>,
    task: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    streamers: HashMap<String, Streamer>,
    /// Disconnects so far (orders the detached clients).
    detaches: u64,
}

/// Clients and streamers; cheap to clone (tasks hold a clone).
#[derive(Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    next_conn: Arc<AtomicU64>,
}

/// An open SSE connection. Dropping it disconnects the client (unless another connection took
/// the id over meanwhile).
pub struct Connection {
    hub: Hub,
    /// The client id.
    pub id: u64,
    conn: u64,
    /// Frames to write, replayed ones first; ends when the connection is taken over or the hub
    /// closes.
    pub rx: mpsc::Receiver<Frame>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.hub.disconnect(self.id, self.conn);
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the stream of client `id`. An open stream with the same id is taken over: it ends,
    /// and the new one keeps the client's subscriptions. With `last_seen`, the kept frames after
    /// that sequence number are queued first.
    pub fn connect(&self, id: u64, last_seen: Option<u64>) -> Connection {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        // One slot more than QUEUE: room for the lag notice.
        let (tx, rx) = mpsc::channel(QUEUE + 1);
        let mut inner = self.lock();
        // A disconnected client that comes back without a Last-Event-ID starts afresh (KDF).
        if last_seen.is_none() && inner.clients.get(&id).is_some_and(|c| c.detached) {
            if let Some(mut c) = inner.clients.remove(&id) {
                c.cancel_expiry();
                for s in c.listening {
                    leave(&mut inner, id, &s);
                }
            }
        }
        match inner.clients.get_mut(&id) {
            Some(c) => {
                tracing::info!(
                    client = id,
                    detached = c.detached,
                    "event stream reconnected: taking over"
                );
                c.conn = conn;
                c.detached = false;
                c.cancel_expiry();
                // Dropping the old sender ends the old stream after what it has queued.
                c.tx = tx;
                if let Some(last) = last_seen {
                    let oldest = c.replay.front().map_or(c.seq + 1, |f| f.seq);
                    if last + 1 < oldest && last < c.seq {
                        // More was missed than is kept: say so, so the client re-reads.
                        let notice = frame(
                            "STREAM_LAGGED",
                            &json!({"dropped_after_seq": last,
                                    "reason": "more events were missed than kdfd keeps; re-read balances and history"}),
                        );
                        let _ = c.tx.try_send(Frame {
                            seq: last,
                            data: notice,
                        });
                    }
                    for f in c.replay.iter().filter(|f| f.seq > last) {
                        let _ = c.tx.try_send(f.clone());
                    }
                }
            }
            None => {
                inner.clients.insert(
                    id,
                    Client {
                        conn,
                        tx,
                        seq: 0,
                        replay: VecDeque::new(),
                        listening: HashSet::new(),
                        detached: false,
                        detached_order: 0,
                        expiry: None,
                    },
                );
            }
        }
        Connection {
            hub: self.clone(),
            id,
            conn,
            rx,
        }
    }

    /// Connection `conn` of client `id` ended: the client is kept, detached, for `GRACE` (inside a
    /// runtime), then dropped and unsubscribed everywhere unless it reconnected.
    fn disconnect(&self, id: u64, conn: u64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return self.expire_now(id, conn);
        };
        let mut inner = self.lock();
        let order = inner.detaches + 1;
        let Some(c) = inner.clients.get_mut(&id).filter(|c| c.conn == conn) else {
            return;
        };
        c.detached = true;
        c.detached_order = order;
        let hub = self.clone();
        // Spawning does not block, so it may happen under the lock: the handle is stored
        // before any reconnect could look for it.
        let timer = rt.spawn(async move {
            tokio::time::sleep(GRACE).await;
            hub.expire(id, conn);
        });
        c.cancel_expiry();
        c.expiry = Some(timer.abort_handle());
        inner.detaches = order;
        let mut count = 0;
        let mut oldest = (u64::MAX, id, conn);
        for (cid, c) in inner.clients.iter().filter(|(_, c)| c.detached) {
            count += 1;
            oldest = oldest.min((c.detached_order, *cid, c.conn));
        }
        if count > MAX_DETACHED {
            drop(inner);
            self.expire(oldest.1, oldest.2);
        }
    }

    /// Outside a runtime there is no timer: the client goes at once.
    fn expire_now(&self, id: u64, conn: u64) {
        if let Some(c) = self.lock().clients.get_mut(&id).filter(|c| c.conn == conn) {
            c.detached = true;
        }
        self.expire(id, conn);
    }

    /// Drops client `id` if it is still the detached connection `conn`.
    fn expire(&self, id: u64, conn: u64) {
        let mut inner = self.lock();
        if inner
            .clients
            .get(&id)
            .is_none_or(|c| c.conn != conn || !c.detached)
        {
            return;
        }
        if let Some(mut c) = inner.clients.remove(&id) {
            // Gone before its grace ended (past `MAX_DETACHED`): its timer goes too.
            c.cancel_expiry();
            for s in c.listening {
                leave(&mut inner, id, &s);
            }
        }
        tracing::debug!(client = id, "event stream client gone");
    }

    /// Whether a client with this id is connected.
    pub fn has_client(&self, id: u64) -> bool {
        self.lock().clients.get(&id).is_some_and(|c| !c.detached)
    }

    /// Adds client `id` to `streamer_id`. When the streamer is not running yet, `start` spawns its
    /// task (called under the hub's lock, so two enables never start two tasks; it must not block).
    pub fn enable<F>(&self, id: u64, streamer_id: &str, start: F) -> Result<(), EventError>
    where
        F: FnOnce() -> Option<tokio::task::AbortHandle>,
    {
        let mut inner = self.lock();
        let client = inner
            .clients
            .get_mut(&id)
            .filter(|c| !c.detached)
            .ok_or(EventError::UnknownClient)?;
        if !client.listening.insert(streamer_id.to_string()) {
            return Err(EventError::ClientAlreadyListening);
        }
        let streamer = inner
            .streamers
            .entry(streamer_id.to_string())
            .or_insert_with(|| Streamer {
                clients: HashSet::new(),
                task: None,
            });
        if streamer.clients.is_empty() {
            if let Some(old) = streamer.task.take() {
                old.abort();
            }
            streamer.task = start();
        }
        streamer.clients.insert(id);
        Ok(())
    }

    /// Removes client `id` from `streamer_id`; the last one out stops the streamer.
    pub fn disable(&self, id: u64, streamer_id: &str) -> Result<(), EventError> {
        let mut inner = self.lock();
        let client = inner
            .clients
            .get_mut(&id)
            .ok_or(EventError::UnknownClient)?;
        if !client.listening.remove(streamer_id) {
            return Err(EventError::ClientNotListening);
        }
        leave(&mut inner, id, streamer_id);
        Ok(())
    }

    /// Sends an event to every client listening to `streamer_id`.
    pub fn publish(&self, streamer_id: &str, message: Value) {
        self.broadcast(streamer_id, streamer_id, &message);
    }

    /// Sends `ERROR:<streamer_id>` to every client listening to `streamer_id`.
    pub fn publish_error(&self, streamer_id: &str, message: Value) {
        self.broadcast(streamer_id, &format!("ERROR:{streamer_id}"), &message);
    }

    fn broadcast(&self, streamer_id: &str, event_type: &str, message: &Value) {
        let mut inner = self.lock();
        let Some(ids) = inner
            .streamers
            .get(streamer_id)
            .map(|s| s.clients.iter().copied().collect::<Vec<_>>())
        else {
            return;
        };
        let data = frame(event_type, message);
        for id in ids {
            if let Some(c) = inner.clients.get_mut(&id) {
                c.push(id, data.clone());
            }
        }
    }

    /// Sends an event to one client whatever it listens to (`TASK:<id>`); dropped if absent.
    pub fn send_to(&self, id: u64, event_type: &str, message: &Value) {
        if let Some(c) = self.lock().clients.get_mut(&id) {
            c.push(id, frame(event_type, message));
        }
    }

    /// Whether the streamer has listeners (its task runs).
    pub fn is_running(&self, streamer_id: &str) -> bool {
        self.lock()
            .streamers
            .get(streamer_id)
            .is_some_and(|s| !s.clients.is_empty())
    }

    /// Ends every stream (after what each has queued) and stops every streamer: shutdown.
    pub fn close_all(&self) {
        let mut inner = self.lock();
        for (_, mut c) in inner.clients.drain() {
            c.cancel_expiry();
        }
        for (_, s) in inner.streamers.drain() {
            if let Some(t) = s.task {
                t.abort();
            }
        }
    }
}

fn leave(inner: &mut Inner, id: u64, streamer_id: &str) {
    let Some(s) = inner.streamers.get_mut(streamer_id) else {
        return;
    };
    s.clients.remove(&id);
    if s.clients.is_empty() {
        if let Some(t) = s.task.take() {
            t.abort();
        }
        inner.streamers.remove(streamer_id);
    }
}

#[cfg(test)]
mod tests;
