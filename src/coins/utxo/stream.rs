//! `BALANCE:<coin>` for a UTXO coin: a producer on the event bus (`events::Hub`), fed by the
//! coin's Electrum change stream.

use super::UtxoCoin;
use crate::events::Hub;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

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
