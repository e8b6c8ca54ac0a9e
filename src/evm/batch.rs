//! One worker task per node. Calls queued while the worker is busy, or in the same scheduler tick,
//! leave together as JSON-RPC arrays of at most `limit` items and `max_bytes` bytes. An array the
//! node refuses whole (one error object instead of an array, as anvil does past its 2 MiB body
//! cap, or an array that answers none of our ids) is halved until single calls go out alone.

use super::http::HttpConn;
use super::EvmError;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// One queued call.
pub(crate) struct Pending {
    pub method: &'static str,
    pub params: Value,
    pub reply: oneshot::Sender<Result<Value, EvmError>>,
}

/// What the worker needs besides its queue.
#[derive(Clone)]
pub(crate) struct WorkerOpts {
    pub limit: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
    pub max_response: usize,
    pub linger_quiet: Duration,
    pub linger_max: Duration,
    /// HTTP requests sent, shared by all nodes of a client (tests and benchmarks read it).
    pub requests: Arc<AtomicU64>,
}

/// A call with its id and its serialised form.
struct Item {
    id: u64,
    text: String,
    reply: oneshot::Sender<Result<Value, EvmError>>,
}

/// Runs until every sender is dropped.
pub(crate) async fn run(
    conn: HttpConn,
    mut rx: mpsc::UnboundedReceiver<Vec<Pending>>,
    o: WorkerOpts,
) {
    // One keep-alive connection per array of a round: a round's arrays go out at the same time,
    // so a split batch still costs one round trip.
    let mut conns = vec![conn];
    let mut next_id: u64 = 1;
    while let Some(first) = rx.recv().await {
        let mut queued = first;
        // Linger while calls keep arriving: the rest of a client batch may still be on its way
        // from another worker thread. Stop once nothing new came for `linger_quiet` (yielding, so
        // a single-threaded runtime lets the submitters run), or after `linger_max` in all.
        let start = Instant::now();
        let mut last = start;
        loop {
            tokio::task::yield_now().await;
            let now = Instant::now();
            let mut got = false;
            while let Ok(more) = rx.try_recv() {
                queued.extend(more);
                got = true;
            }
            if got {
                last = now;
            } else if now - last >= o.linger_quiet {
                break;
            }
            if now - start >= o.linger_max {
                break;
            }
        }
        let items: Vec<Item> = queued
            .into_iter()
            .filter(|p| !p.reply.is_closed())
            .map(|p| {
                let id = next_id;
                next_id = next_id.wrapping_add(1);
                let text =
                    json!({"jsonrpc": "2.0", "id": id, "method": p.method, "params": p.params})
                        .to_string();
                Item {
                    id,
                    text,
                    reply: p.reply,
                }
            })
            .collect();
        let mut chunked = chunks(items, o.limit, o.max_bytes);
        while conns.len() < chunked.len() {
            let url = conns[0].url.clone();
            conns.push(HttpConn::new(url));
        }
        let rounds = conns
            .iter_mut()
            .zip(chunked.drain(..))
            .map(|(conn, chunk)| round(conn, chunk, &o));
        futures_util::future::join_all(rounds).await;
    }
}

/// Splits by count and bytes, preserving order.
fn chunks(items: Vec<Item>, limit: usize, max_bytes: usize) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0;
    for it in items {
        let len = it.text.len() + 1;
        match out.last_mut() {
            Some(last) if last.len() < limit.max(1) && bytes + len <= max_bytes => {
                bytes += len;
                last.push(it);
            }
            _ => {
                bytes = len + 1;
                out.push(vec![it]);
            }
        }
    }
    out
}

/// Sends one array of a round (halving it while the node refuses it whole); a node failure fails
/// what is left of it at once, so the caller can move on to the next node without waiting out
/// one timeout per half.
async fn round(conn: &mut HttpConn, chunk: Vec<Item>, o: &WorkerOpts) {
    let mut stack = vec![chunk];
    while let Some(chunk) = stack.pop() {
        match send(conn, &chunk, o).await {
            Ok(Answer::Items(mut by_id)) => {
                for it in chunk {
                    let r = by_id.remove(&it.id).unwrap_or_else(|| {
                        Err(EvmError::InvalidResponse(format!(
                            "no answer for id {}",
                            it.id
                        )))
                    });
                    let _ = it.reply.send(r);
                }
            }
            Ok(Answer::Refused(err)) => {
                if chunk.len() > 1 {
                    tracing::debug!(url = %conn.url.url, items = chunk.len(), "evm batch refused whole; halving");
                    let mut first = chunk;
                    let second = first.split_off(first.len() / 2);
                    stack.push(second);
                    stack.push(first);
                } else {
                    for it in chunk {
                        let _ = it.reply.send(Err(err.clone()));
                    }
                }
            }
            Err(e) => {
                for it in chunk.into_iter().chain(stack.drain(..).flatten()) {
                    let _ = it.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

enum Answer {
    /// Each id's outcome.
    Items(HashMap<u64, Result<Value, EvmError>>),
    /// The node refused the array as a whole, with this error.
    Refused(EvmError),
}

async fn send(conn: &mut HttpConn, chunk: &[Item], o: &WorkerOpts) -> Result<Answer, EvmError> {
    let body = if chunk.len() == 1 {
        chunk[0].text.clone()
    } else {
        let mut s =
            String::with_capacity(chunk.iter().map(|i| i.text.len() + 1).sum::<usize>() + 1);
        s.push('[');
        for (n, it) in chunk.iter().enumerate() {
            if n > 0 {
                s.push(',');
            }
            s.push_str(&it.text);
        }
        s.push(']');
        s
    };
    o.requests.fetch_add(1, Ordering::Relaxed);
    let raw = conn
        .post(Bytes::from(body), o.timeout, o.max_response)
        .await?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| {
        EvmError::InvalidResponse(format!(
            "{}: body is not JSON ({e}): {}",
            conn.url.url,
            preview(&raw)
        ))
    })?;
    Ok(parse_answer(v, chunk))
}

/// Reads a node's answer to a chunk; `chunk.len() == 1` means it was sent as a plain object.
fn parse_answer(v: Value, chunk: &[Item]) -> Answer {
    match v {
        Value::Array(list) => {
            let mut by_id = HashMap::new();
            let mut anonymous_error = None;
            for entry in list {
                match entry.get("id").and_then(Value::as_u64) {
                    Some(id) => {
                        by_id.insert(id, outcome(&entry));
                    }
                    None => {
                        if anonymous_error.is_none() && entry.get("error").is_some() {
                            anonymous_error = Some(outcome(&entry));
                        }
                    }
                }
            }
            let answered = chunk.iter().any(|it| by_id.contains_key(&it.id));
            match anonymous_error {
                // `[{"id":null,"error":…}]`: some providers' "batch too large".
                Some(Err(e)) if !answered => Answer::Refused(e),
                _ => Answer::Items(by_id),
            }
        }
        obj @ Value::Object(_) if chunk.len() == 1 => {
            let mut by_id = HashMap::new();
            by_id.insert(chunk[0].id, outcome(&obj));
            Answer::Items(by_id)
        }
        obj @ Value::Object(_) => match outcome(&obj) {
            Err(e @ EvmError::Rpc { .. }) => Answer::Refused(e),
            _ => Answer::Refused(EvmError::InvalidResponse(
                "an object answered a batch".into(),
            )),
        },
        other => Answer::Items(
            chunk
                .iter()
                .map(|it| {
                    let e = EvmError::InvalidResponse(format!(
                        "not a JSON-RPC answer: {}",
                        short(&other)
                    ));
                    (it.id, Err(e))
                })
                .collect(),
        ),
    }
}

/// One JSON-RPC response object → its result or its error.
fn outcome(entry: &Value) -> Result<Value, EvmError> {
    if let Some(err) = entry.get("error").filter(|e| !e.is_null()) {
        return Err(EvmError::Rpc {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            data: err.get("data").map(Value::to_string),
        });
    }
    entry
        .get("result")
        .cloned()
        .ok_or_else(|| EvmError::InvalidResponse(format!("no result or error: {}", short(entry))))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(200).collect()
}

fn preview(raw: &[u8]) -> String {
    String::from_utf8_lossy(&raw[..raw.len().min(200)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: u64) -> Vec<Item> {
        (1..=n)
            .map(|id| Item {
                id,
                text: format!("{{\"id\":{id}}}"),
                reply: oneshot::channel().0,
            })
            .collect()
    }

    #[test]
    fn chunking_by_count_and_bytes() {
        let sizes: Vec<usize> = chunks(items(250), 100, usize::MAX)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        // Each item is 8-9 bytes plus a comma: 30 bytes hold 3 of them.
        let c = chunks(items(7), 100, 30);
        assert!(c
            .iter()
            .all(|c| c.iter().map(|i| i.text.len() + 1).sum::<usize>() < 31));
        assert_eq!(c.iter().map(Vec::len).sum::<usize>(), 7);
        assert_eq!(chunks(items(3), 0, usize::MAX).len(), 3);
    }

    #[test]
    fn answers() {
        let c = items(2);
        let Answer::Items(m) = parse_answer(
            json!([{"id":2,"result":"0x1"},{"id":1,"error":{"code":3,"message":"execution reverted","data":"0x"}}]),
            &c,
        ) else {
            panic!()
        };
        assert_eq!(m[&2], Ok(json!("0x1")));
        assert!(matches!(&m[&1], Err(EvmError::Rpc { code: 3, .. })));
        let refused =
            json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Invalid request"}});
        assert!(matches!(
            parse_answer(refused.clone(), &c),
            Answer::Refused(EvmError::Rpc { code: -32600, .. })
        ));
        assert!(matches!(
            parse_answer(
                json!([{"id":null,"error":{"code":-32005,"message":"batch too large"}}]),
                &c
            ),
            Answer::Refused(_)
        ));
        // A lone call gets its error as its own answer.
        let one = items(1);
        let Answer::Items(m) = parse_answer(refused, &one) else {
            panic!()
        };
        assert!(matches!(&m[&1], Err(EvmError::Rpc { code: -32600, .. })));
        let Answer::Items(m) = parse_answer(json!(5), &one) else {
            panic!()
        };
        assert!(matches!(&m[&1], Err(EvmError::InvalidResponse(_))));
    }
}
