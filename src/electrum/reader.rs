//! The reader task of a connection: answers go to their waiters, notifications to the
//! connection's listeners, a refused array back to the writer as single requests, and every line
//! to the cost meter (the server charges for the bytes it sends, and some answers tell what the
//! request really cost).

use super::budget::{Class, Meter};
use super::conn::{fail_all, lock, Notification, Pending, MAX_LINE};
use super::writer::Outgoing;
use super::ElectrumError;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

/// What the reader task shares with the connection.
pub(super) struct Reader {
    pub label: String,
    pub pending: Pending,
    pub closed: Arc<AtomicBool>,
    pub notify: broadcast::Sender<Notification>,
    pub arrays: Arc<super::arrays::Arrays>,
    /// The writer's queue, to send a refused array's requests again one by one.
    pub resend: mpsc::UnboundedSender<Outgoing>,
    pub meter: Arc<Mutex<Meter>>,
    pub tip: Arc<Mutex<Option<(u64, Instant)>>>,
}

/// Charges one line to the meter: its bytes, and what each reply or notification in it says.
fn meter_line(meter: &Mutex<Meter>, bytes: usize, msg: &Value) {
    let now = Instant::now();
    let mut m = lock(meter);
    m.received(now, bytes);
    let one = |m: &mut Meter, v: &Value| match v.get("method").and_then(Value::as_str) {
        Some(method) => m.notified(now, method, v.get("params").unwrap_or(&Value::Null)),
        None => m.answered(now, v),
    };
    match msg {
        Value::Array(items) => items.iter().for_each(|v| one(&mut m, v)),
        v => one(&mut m, v),
    }
}

pub(super) async fn read_loop<R: AsyncRead + Unpin>(r: Reader, read: R) {
    let Reader {
        label,
        pending,
        closed,
        notify,
        arrays,
        resend,
        meter,
        tip,
    } = r;
    let mut reader = BufReader::new(read);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(server = %label, error = %e, "electrum read failed");
                break;
            }
        };
        if n == 0 || (buf.last() != Some(&b'\n') && n as u64 >= MAX_LINE) {
            break;
        }
        let msg: Value = match serde_json::from_slice(&buf) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(server = %label, error = %e, "electrum server sent invalid JSON; dropping connection");
                break;
            }
        };
        meter_line(&meter, n, &msg);
        if msg.get("method").and_then(Value::as_str) == Some("blockchain.headers.subscribe") {
            if let Some(h) = msg["params"][0].get("height").and_then(Value::as_u64) {
                *lock(&tip) = Some((h, Instant::now()));
            }
        }
        match msg {
            Value::Array(items) => {
                arrays.answered(&items);
                items
                    .into_iter()
                    .for_each(|m| dispatch(&label, m, &pending, &notify))
            }
            m if is_refusal(&m) => match arrays.refused_array() {
                Some(items) => {
                    tracing::info!(server = %label, error = %m, "server refused a JSON-RPC array; sending single requests from now on");
                    for item in items {
                        if item.get("id").and_then(Value::as_u64) != Some(super::writer::FILLER_ID)
                        {
                            // Already charged once; charged again when rewritten, which errs
                            // on the safe side.
                            let _ = resend.send(Outgoing {
                                req: item,
                                class: Class::Interactive,
                            });
                        }
                    }
                }
                None => dispatch(&label, m, &pending, &notify),
            },
            m => dispatch(&label, m, &pending, &notify),
        }
    }
    closed.store(true, Ordering::Release);
    fail_all(&pending, &ElectrumError::Closed(label));
}

/// An error object that names no request: what a server that refuses arrays answers to one.
fn is_refusal(msg: &Value) -> bool {
    msg.get("error").is_some_and(|e| !e.is_null())
        && msg.get("id").is_none_or(Value::is_null)
        && msg.get("method").is_none()
}

fn dispatch(label: &str, msg: Value, pending: &Pending, notify: &broadcast::Sender<Notification>) {
    if let Some(method) = msg.get("method").and_then(Value::as_str) {
        let _ = notify.send(Notification {
            method: method.to_string(),
            params: msg.get("params").cloned().unwrap_or(Value::Null),
        });
        return;
    }
    let Some(id) = msg.get("id").and_then(Value::as_u64) else {
        tracing::debug!(server = %label, "electrum reply without a usable id ignored");
        return;
    };
    let waiters = lock(pending).take(id);
    if waiters.is_empty() {
        return;
    }
    let reply = match msg.get("error").filter(|e| !e.is_null()) {
        Some(err) => {
            let text = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            Err(ElectrumError::Rpc(label.to_string(), text))
        }
        None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
    };
    for tx in waiters {
        let _ = tx.send(reply.clone());
    }
}
