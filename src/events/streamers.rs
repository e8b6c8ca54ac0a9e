//! The streamer tasks that need no coin: TASK and TX_HISTORY forwarding, HEARTBEAT. The UTXO
//! BALANCE streamer sits with the coins it reads (`coins::utxo::stream`).

use super::Hub;
use serde_json::json;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Forwards every task status change to its SSE client as `TASK:<id>` (dropped if that client
/// is absent, as KDF does). Runs until the task table is gone.
pub fn forward_tasks(
    hub: Hub,
    mut rx: tokio::sync::broadcast::Receiver<crate::tasks::Update>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(u) => hub.send_to(u.client_id, &format!("TASK:{}", u.task_id), &u.status),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "task events fell behind; some were dropped");
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// `TX_HISTORY:<coin>`: every new or changed history entry from the history sync, to the
/// clients that enabled that coin's streamer.
pub fn forward_history(
    hub: Hub,
    mut rx: tokio::sync::broadcast::Receiver<(String, serde_json::Value)>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok((ticker, tx)) => hub.publish(&format!("TX_HISTORY:{ticker}"), tx),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "history events fell behind; some were dropped");
                }
                Err(RecvError::Closed) => return,
            }
        }
    })
}

/// `HEARTBEAT`: `{}` every `every`.
pub async fn heartbeat(hub: Hub, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; KDF's first heartbeat comes after one interval.
    tick.tick().await;
    loop {
        tick.tick().await;
        hub.publish("HEARTBEAT", json!({}));
    }
}
