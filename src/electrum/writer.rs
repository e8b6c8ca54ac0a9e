//! The writer task of a connection: it packs the requests queued in the same instant into one
//! JSON-RPC array, paces them to the server's cost budget (`budget.rs`: an array is cut to what
//! fits now, the rest waits), and pads small writes to ElectrumX (see `needs_filler`).

use super::budget::{Class, Meter};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

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

/// One request on its way to the writer, with the class that decides how much of the budget
/// it may use.
pub(super) struct Outgoing {
    pub req: Value,
    pub class: Class,
}

/// Requests not written yet, per class, in arrival order.
#[derive(Default)]
struct Queues {
    interactive: VecDeque<Value>,
    background: VecDeque<Value>,
}

impl Queues {
    fn push(&mut self, o: Outgoing) {
        match o.class {
            Class::Interactive => self.interactive.push_back(o.req),
            Class::Background => self.background.push_back(o.req),
        }
    }

    fn len(&self) -> usize {
        self.interactive.len() + self.background.len()
    }

    /// Takes, in order, the requests that fit the budget now (interactive first, each class
    /// until its first request that does not fit), charging each; at most `max` of them. When
    /// nothing fits, the error is the instant the first one will.
    fn take(&mut self, meter: &mut Meter, max: usize) -> Result<Vec<Value>, Option<Instant>> {
        let now = Instant::now();
        let mut items = Vec::new();
        let mut wake: Option<Instant> = None;
        for (class, queue) in [
            (Class::Interactive, &mut self.interactive),
            (Class::Background, &mut self.background),
        ] {
            while items.len() < max {
                let Some(head) = queue.front() else { break };
                let bytes = head.to_string().len() + 1;
                match meter.fits(now, class, meter.cost_of(head, bytes)) {
                    Ok(()) => {
                        meter.sent(now, head, bytes);
                        items.extend(queue.pop_front());
                    }
                    Err(at) => {
                        wake = Some(wake.map_or(at, |w| w.min(at)));
                        break;
                    }
                }
            }
        }
        if items.is_empty() {
            Err(wake)
        } else {
            Ok(items)
        }
    }
}

pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    closed: Arc<AtomicBool>,
    pad: Arc<AtomicBool>,
    arrays: Arc<super::arrays::Arrays>,
    meter: Arc<Mutex<Meter>>,
) {
    let mut queues = Queues::default();
    loop {
        if queues.len() == 0 {
            let Some(first) = rx.recv().await else { return };
            queues.push(first);
            // Linger while requests keep arriving (the rest of a batch is being queued, maybe
            // on another worker thread), so one batch leaves as one array; stop as soon as a
            // yield brings nothing new.
            loop {
                tokio::task::yield_now().await;
                let before = queues.len();
                while queues.len() < arrays.max {
                    match rx.try_recv() {
                        Ok(o) => queues.push(o),
                        Err(_) => break,
                    }
                }
                if queues.len() == before || queues.len() >= arrays.max {
                    break;
                }
            }
        }
        while let Ok(o) = rx.try_recv() {
            queues.push(o);
        }
        // The server does not take arrays: one request per line.
        let max = if arrays.refused() { 1 } else { arrays.max };
        let taken = queues.take(&mut lock(&meter), max);
        let mut items = match taken {
            Ok(items) => items,
            Err(wake) => {
                // Over budget: wait until the first request fits, or until a new one comes
                // (an interactive request may fit while background work waits).
                let at = wake.unwrap_or_else(|| Instant::now() + Duration::from_millis(10));
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    got = rx.recv() => match got {
                        Some(o) => queues.push(o),
                        None => return,
                    },
                }
                continue;
            }
        };
        if !arrays.refused() && pad.load(Ordering::Acquire) && needs_filler(&items) {
            let filler = json!({"jsonrpc": "2.0", "id": FILLER_ID, "method": "blockchain.block.headers", "params": [0, 8]});
            let bytes = filler.to_string().len() + 1;
            lock(&meter).sent(Instant::now(), &filler, bytes);
            items.push(filler);
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
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

    fn ids(line: &str) -> Vec<u64> {
        let v: Value = serde_json::from_str(line).unwrap();
        let items = match v {
            Value::Array(items) => items,
            one => vec![one],
        };
        items.iter().filter_map(|i| i["id"].as_u64()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn arrays_are_cut_to_the_budget_and_the_reserve_is_interactive() {
        use super::super::budget::Budget;
        use tokio::io::AsyncBufReadExt;
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Budget {
            limit: 150.0,
            reserve: 30.0,
            decay_per_sec: 1.0,
        };
        let t0 = Instant::now();
        let meter = Arc::new(Mutex::new(Meter::new(budget, t0)));
        let arrays = Arc::new(super::super::arrays::Arrays::new(500));
        let closed = Arc::new(AtomicBool::new(false));
        let pad = Arc::new(AtomicBool::new(false));
        tokio::spawn(write_loop(ours, rx, closed, pad, arrays, meter));
        let tx_get = |id: u64| json!({"jsonrpc": "2.0", "id": id, "method": "blockchain.transaction.get", "params": ["00".repeat(32), false]});
        for id in 0..150 {
            let req = tx_get(id);
            tx.send(Outgoing {
                req,
                class: Class::Background,
            })
            .unwrap();
        }
        let mut lines = tokio::io::BufReader::new(theirs).lines();
        // ~1.14 units each (1, its bytes, the expected answer's bytes): 100 fit in 120 - 5.
        let first = ids(&lines.next_line().await.unwrap().unwrap());
        assert_eq!(first, (0..100).collect::<Vec<_>>());
        // The background rest waits; an interactive request goes at once, from the reserve.
        tokio::time::advance(Duration::from_millis(100)).await;
        let req = tx_get(1000);
        tx.send(Outgoing {
            req,
            class: Class::Interactive,
        })
        .unwrap();
        assert_eq!(ids(&lines.next_line().await.unwrap().unwrap()), vec![1000]);
        assert!(t0.elapsed() < Duration::from_millis(200));
        // Then the rest at the decay rate: ~1.14 s each, after the interactive one's 1.14 too.
        let mut rest = Vec::new();
        while rest.len() < 50 {
            rest.extend(ids(&lines.next_line().await.unwrap().unwrap()));
        }
        assert_eq!(rest, (100..150).collect::<Vec<_>>());
        let took = t0.elapsed().as_secs_f64();
        assert!((55.0..62.0).contains(&took), "{took}");
    }
}
