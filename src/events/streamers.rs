//! The streamer tasks: TASK forwarding, HEARTBEAT, and the UTXO BALANCE streamer.

use super::Hub;
use crate::coins::utxo::UtxoCoin;
use serde_json::{json, Value};
use std::sync::Arc;
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

/// The address a scripthash belongs to, and every scripthash of that address (P2PKH and P2PK
/// both count toward a standard address's balance).
async fn owner(coin: &UtxoCoin, sh: &str) -> Option<(String, Vec<String>)> {
    if coin.scripthashes.iter().any(|s| s == sh) {
        return Some((coin.address.clone(), coin.scripthashes.clone()));
    }
    let hd = coin.hd.as_ref()?;
    let accounts = hd.accounts.lock().await;
    let found = accounts
        .values()
        .flat_map(|a| a.all())
        .find(|a| a.scripthashes.iter().any(|s| s == sh))
        .map(|a| (a.address.clone(), a.scripthashes.clone()));
    found
}

/// Every wallet address with its scripthashes: the enabled one, then the known HD ones.
async fn addresses(coin: &UtxoCoin) -> Vec<(String, Vec<String>)> {
    let mut out = vec![(coin.address.clone(), coin.scripthashes.clone())];
    if let Some(hd) = &coin.hd {
        for a in hd.accounts.lock().await.values().flat_map(|a| a.all()) {
            if a.address != coin.address {
                out.push((a.address.clone(), a.scripthashes.clone()));
            }
        }
    }
    out
}

/// One BALANCE event message: KDF's list form, for the changed address only.
async fn balance_message(
    coin: &UtxoCoin,
    address: String,
    shs: &[String],
) -> Result<Value, String> {
    let balances = coin.pool.balances(shs).await.map_err(|e| e.to_string())?;
    let sats: i128 = balances
        .iter()
        .map(|b| b.confirmed as i128 + b.unconfirmed as i128)
        .sum();
    Ok(json!([{
        "ticker": coin.ticker(),
        "address": address,
        "balance": {
            "spendable": crate::coins::format_amount(sats, coin.conf.decimals),
            "unspendable": "0",
        },
    }]))
}

/// `BALANCE:<coin>` for a UTXO coin: on each status notification of a wallet scripthash, that
/// address's balance. No initial event (as KDF). Ends when the coin's pool goes away.
pub async fn utxo_balance(
    hub: Hub,
    coin: Arc<UtxoCoin>,
    mut changes: tokio::sync::broadcast::Receiver<crate::electrum::Change>,
) {
    let streamer_id = format!("BALANCE:{}", coin.ticker());
    // Reading every wallet scripthash's balance subscribes it (when the balance cache is on),
    // so notifications arrive for each known address.
    if let Err(e) = coin.all_scripthashes_balance().await {
        tracing::warn!(coin = coin.ticker(), error = %e, "balance streamer: first read failed");
    }
    loop {
        let owners = match changes.recv().await {
            Ok(c) => owner(&coin, &c.scripthash).await.into_iter().collect(),
            Err(RecvError::Lagged(n)) => {
                // Which addresses changed is lost: send every address's balance instead.
                tracing::warn!(
                    coin = coin.ticker(),
                    missed = n,
                    "balance changes fell behind"
                );
                addresses(&coin).await
            }
            Err(RecvError::Closed) => return,
        };
        for (address, shs) in owners {
            match balance_message(&coin, address, &shs).await {
                Ok(m) => hub.publish(&streamer_id, m),
                Err(e) => hub.publish_error(&streamer_id, json!(e)),
            }
        }
    }
}
