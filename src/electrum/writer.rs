//! The writer task of a connection: it packs the requests queued in the same instant into one
//! JSON-RPC array, and pads small writes to ElectrumX (see `needs_filler`).

use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Id of the filler request; its answer matches no waiter and is dropped.
pub(super) const FILLER_ID: u64 = u64::MAX;
/// Methods whose answers are small (about 45 to 110 bytes each).
const SMALL_REPLIES: &[&str] = &[
    "blockchain.scripthash.get_balance",
    "blockchain.scripthash.subscribe",
    "blockchain.scripthash.unsubscribe",
    "server.ping",
    "blockchain.estimatefee",
    "blockchain.relayfee",
];

/// Stock ElectrumX 2.0 holds any answer under 1 KiB for up to a second (to pad it), once a
/// connection has received 1 KiB. A write whose answers would all be small therefore carries one
/// extra request with a ~1.3 KiB answer (8 block headers from genesis), so the answer leaves at once.
fn needs_filler(items: &[Value]) -> bool {
    // 24 answers of the smallest kind still make less than 1.1 KiB.
    items.len() < 24
        && items.iter().all(|r| {
            r.get("method")
                .and_then(Value::as_str)
                .is_some_and(|m| SMALL_REPLIES.contains(&m))
        })
}

pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Value>,
    closed: Arc<AtomicBool>,
    pad: Arc<AtomicBool>,
    arrays: Arc<super::arrays::Arrays>,
) {
    while let Some(first) = rx.recv().await {
        if arrays.refused() {
            // The server does not take arrays: one request per line.
            let mut line = first.to_string();
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() || write.flush().await.is_err() {
                closed.store(true, Ordering::Release);
                return;
            }
            continue;
        }
        let max_array = arrays.max;
        let mut items = vec![first];
        // Linger while requests keep arriving (the rest of a batch is being queued, maybe on
        // another worker thread), so one batch leaves as one array; stop as soon as a yield
        // brings nothing new.
        loop {
            tokio::task::yield_now().await;
            let before = items.len();
            while items.len() < max_array {
                match rx.try_recv() {
                    Ok(v) => items.push(v),
                    Err(_) => break,
                }
            }
            if items.len() == before || items.len() >= max_array {
                break;
            }
        }
        if pad.load(Ordering::Acquire) && needs_filler(&items) {
            items.push(json!({"jsonrpc": "2.0", "id": FILLER_ID, "method": "blockchain.block.headers", "params": [0, 8]}));
        }
        let mut line = if items.len() == 1 {
            items.pop().map(|v| v.to_string()).unwrap_or_default()
        } else {
            arrays.sent(&items);
            Value::Array(items).to_string()
        };
        line.push('\n');
        tracing::trace!(bytes = line.len(), "electrum write");
        if write.write_all(line.as_bytes()).await.is_err() || write.flush().await.is_err() {
            closed.store(true, Ordering::Release);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str) -> Value {
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []})
    }

    #[test]
    fn only_small_writes_get_a_filler() {
        assert!(needs_filler(&[req("blockchain.scripthash.get_balance")]));
        assert!(needs_filler(&[
            req("blockchain.scripthash.get_balance"),
            req("blockchain.scripthash.subscribe")
        ]));
        // Big enough on their own, or answers of unknown size.
        assert!(needs_filler(&vec![
            req("blockchain.scripthash.subscribe");
            23
        ]));
        assert!(!needs_filler(&vec![
            req("blockchain.scripthash.get_balance");
            24
        ]));
        assert!(!needs_filler(&[req("blockchain.transaction.get")]));
        assert!(!needs_filler(&[req("server.version")]));
    }
}
