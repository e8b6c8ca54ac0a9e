//! Typed Electrum reads and writes beyond balances: histories, unspents, transactions, headers,
//! fee estimates and broadcasts. Calls made together go out as one JSON-RPC array (the
//! connection's writer coalesces them), so a window of probes costs one round trip per server.

use super::{Connection, ElectrumError, Pool};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// How long a tip learnt from the server is used without asking again. The server pushes each
/// new tip to a subscribed connection, so this only bounds a server that does not.
const TIP_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(120);

/// One `blockchain.scripthash.get_history` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HistoryItem {
    /// Transaction id (hex, display order).
    pub tx_hash: String,
    /// Block height; 0 or -1 in the mempool.
    pub height: i64,
}

/// One `blockchain.scripthash.listunspent` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct UnspentItem {
    /// Transaction id (hex, display order).
    pub tx_hash: String,
    /// Output index.
    pub tx_pos: u32,
    /// Amount in satoshis.
    pub value: u64,
    /// Block height; 0 in the mempool.
    pub height: i64,
}

fn typed<T: for<'de> Deserialize<'de>>(
    label: &str,
    what: &str,
    v: Value,
) -> Result<T, ElectrumError> {
    serde_json::from_value(v)
        .map_err(|e| ElectrumError::BadResponse(label.to_string(), format!("{what}: {e}")))
}

async fn each<T: for<'de> Deserialize<'de>>(
    conn: Arc<Connection>,
    method: &'static str,
    params: Vec<Value>,
) -> Result<Vec<T>, ElectrumError> {
    let calls = params.into_iter().map(|p| conn.call(method, p));
    futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| typed(conn.label(), method, r?))
        .collect()
}

impl Pool {
    /// The histories of many scripthashes, in order, in one round trip.
    pub async fn histories(&self, shs: &[String]) -> Result<Vec<Vec<HistoryItem>>, ElectrumError> {
        let params: Vec<Value> = shs.iter().map(|sh| json!([sh])).collect();
        self.request(|conn| each(conn, "blockchain.scripthash.get_history", params.clone()))
            .await
    }

    /// The unspent outputs of many scripthashes, in order, in one round trip.
    pub async fn unspents(&self, shs: &[String]) -> Result<Vec<Vec<UnspentItem>>, ElectrumError> {
        let params: Vec<Value> = shs.iter().map(|sh| json!([sh])).collect();
        self.request(|conn| each(conn, "blockchain.scripthash.listunspent", params.clone()))
            .await
    }

    /// Raw transactions (hex) by id, in order, in one round trip.
    pub async fn transactions(&self, txids: &[String]) -> Result<Vec<String>, ElectrumError> {
        let params: Vec<Value> = txids.iter().map(|t| json!([t, false])).collect();
        self.request(|conn| each(conn, "blockchain.transaction.get", params.clone()))
            .await
    }

    /// Block headers (hex) by height, in order, in one round trip.
    pub async fn headers(&self, heights: &[u64]) -> Result<Vec<String>, ElectrumError> {
        let params: Vec<Value> = heights.iter().map(|h| json!([h])).collect();
        self.request(|conn| each(conn, "blockchain.block.header", params.clone()))
            .await
    }

    /// The current chain tip height.
    pub async fn tip_height(&self) -> Result<u64, ElectrumError> {
        #[derive(Deserialize)]
        struct Tip {
            height: u64,
        }
        self.request(|conn| async move {
            if let Some(h) = conn.known_tip(TIP_MAX_AGE) {
                return Ok(h);
            }
            let v = conn.call("blockchain.headers.subscribe", json!([])).await?;
            let h = typed::<Tip>(conn.label(), "blockchain.headers.subscribe", v)?.height;
            conn.note_tip(h);
            Ok(h)
        })
        .await
    }

    /// `blockchain.estimatefee` in coins per kB; negative when the server cannot tell.
    pub async fn estimate_fee(&self, blocks: u32) -> Result<f64, ElectrumError> {
        self.request(|conn| async move {
            let v = conn.call("blockchain.estimatefee", json!([blocks])).await?;
            typed::<f64>(conn.label(), "blockchain.estimatefee", v)
        })
        .await
    }

    /// Broadcasts a raw transaction; the server's error text passes through.
    pub async fn broadcast(&self, tx_hex: &str) -> Result<String, ElectrumError> {
        let hex = tx_hex.to_string();
        self.request(|conn| {
            let hex = hex.clone();
            async move {
                let v = conn
                    .call("blockchain.transaction.broadcast", json!([hex]))
                    .await?;
                typed::<String>(conn.label(), "blockchain.transaction.broadcast", v)
            }
        })
        .await
    }
}
