//! The stream of "scripthash X changed" events of a pool, from `blockchain.scripthash.subscribe`
//! notifications. The balance cache is one consumer; history sync and the event stream subscribe
//! the same way, each with its own receiver.

use serde_json::Value;
use tokio::sync::broadcast;

/// One status change.
#[derive(Debug, Clone)]
pub struct Change {
    /// The scripthash whose status changed.
    pub scripthash: String,
    /// The new status hash (or null when the history became empty).
    pub status: Value,
}

/// The publisher side; cheap to clone.
#[derive(Clone)]
pub struct Changes {
    tx: broadcast::Sender<Change>,
}

impl Default for Changes {
    fn default() -> Changes {
        // A lagging consumer misses old changes and re-reads (every consumer handles `Lagged`:
        // the cache forgets all, streamers re-send all, history re-syncs). 32 slots, as the
        // connection's buffer: 1024 preallocated ~150 kB per pool (P4: 41 → 26 MB, 100 coins).
        Changes {
            tx: broadcast::channel(32).0,
        }
    }
}

impl Changes {
    /// Publishes a change; no subscriber is fine.
    pub fn publish(&self, scripthash: &str, status: Value) {
        let _ = self.tx.send(Change {
            scripthash: scripthash.to_string(),
            status,
        });
    }

    /// Changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }
}

impl super::Pool {
    /// Status changes of this coin's subscribed scripthashes from now on.
    pub fn changes(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}
