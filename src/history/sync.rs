//! One coin's history sync: histories of every wallet scripthash in one round trip, new
//! transactions (newest first) and the outputs their inputs spend in chunks, each chunk with its
//! block times committed on its own, then moves and removals in one database transaction. The
//! caller runs it in the Electrum background class, so it is paced to the server's cost budget.

use super::db::{self, Batch, Row};
use super::derive::{self, Mine, PrevOuts};
use crate::coins::utxo::UtxoCoin;
use crate::coins::withdraw::{decode_tx, DecodedTx};
use crate::electrum::ElectrumError;
use crate::store::{Store, StoreError};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::Txid;
use foldhash::{HashMap, HashSet};
use futures_util::StreamExt;
use serde_json::Value;
use std::collections::BTreeSet;

/// How many calls one JSON-RPC array carries, to stay within server limits.
pub const CHUNK: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("electrum: {0}")]
    Electrum(#[from] ElectrumError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("bad data from the server: {0}")]
    Bad(String),
}

/// The wallet's scripts: the enabled address (Iguana) or every known address of every account
/// (HD), each with its address script's scripthash.
pub async fn wallet_scripts(coin: &UtxoCoin) -> (Mine, Vec<(String, String)>) {
    let mut list: Vec<(String, Option<String>)> = Vec::new();
    match &coin.hd {
        None => list.push((coin.address.clone(), coin.scripthashes.first().cloned())),
        Some(hd) => {
            for account in hd.accounts.lock().await.values() {
                for a in account.all() {
                    list.push((a.address.clone(), a.scripthashes.first().cloned()));
                }
            }
        }
    }
    let mut mine = Mine::default();
    let mut shs = Vec::new();
    for (address, sh) in list {
        let Ok(kind) = crate::coins::address::parse(&coin.conf, &address) else {
            continue;
        };
        mine.scripts
            .insert(crate::coins::address::script_pubkey(&kind), address.clone());
        if let Some(sh) = sh {
            if !shs.iter().any(|(s, _)| *s == sh) {
                shs.push((sh, address));
            }
        }
    }
    (mine, shs)
}

fn unhex(s: &str) -> Result<Vec<u8>, SyncError> {
    <Vec<u8> as bitcoin::hex::FromHex>::from_hex(s)
        .map_err(|e| SyncError::Bad(format!("bad hex from the server: {e}")))
}

async fn fetch_txs(coin: &UtxoCoin, ids: &[String]) -> Result<Fetched, SyncError> {
    let mut out = HashMap::default();
    for chunk in ids.chunks(CHUNK) {
        let raws = coin.pool.transactions(chunk).await?;
        for (id, hex) in chunk.iter().zip(raws) {
            let bytes = unhex(&hex)?;
            let tx = decode_tx(&coin.conf, &bytes)
                .map_err(|e| SyncError::Bad(format!("tx {id}: {e}")))?;
            if tx.txid.to_string() != *id {
                return Err(SyncError::Bad(format!("asked for {id}, got {}", tx.txid)));
            }
            out.insert(id.clone(), (bytes, tx));
        }
    }
    Ok(out)
}

async fn block_times(coin: &UtxoCoin, heights: &[u64]) -> Result<HashMap<u64, u64>, SyncError> {
    let mut out = HashMap::default();
    for chunk in heights.chunks(CHUNK) {
        for (h, hex) in chunk.iter().zip(coin.pool.headers(chunk).await?) {
            let t = derive::header_time(&unhex(&hex)?)
                .ok_or_else(|| SyncError::Bad(format!("header {h} too short")))?;
            out.insert(*h, t);
        }
    }
    Ok(out)
}

type Fetched = HashMap<String, (Vec<u8>, DecodedTx)>;

/// One chunk's downloads: its transactions and the headers of `want` (its heights no earlier
/// chunk asked for) in one round trip, then the transactions its inputs spend that it lacks.
async fn fetch_chunk(
    coin: &UtxoCoin,
    chunk: &[String],
    want: &[u64],
) -> Result<(Fetched, PrevOuts, HashMap<u64, u64>), SyncError> {
    let (txs, times) = tokio::try_join!(fetch_txs(coin, chunk), block_times(coin, want))?;
    let missing: BTreeSet<String> = txs
        .values()
        .flat_map(|(_, tx)| tx.inputs.iter())
        .filter(|(txid, _)| *txid != Txid::all_zeros())
        .map(|(txid, _)| txid.to_string())
        .filter(|id| !txs.contains_key(id))
        .collect();
    let missing: Vec<String> = missing.into_iter().collect();
    let prev_txs = fetch_txs(coin, &missing).await?;
    let mut prevs = PrevOuts::default();
    for (_, tx) in txs.values().chain(prev_txs.values()) {
        for (n, out) in tx.outputs.iter().enumerate() {
            prevs.insert((tx.txid, n as u32), out.clone());
        }
    }
    Ok((txs, prevs, times))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One sync step, of every wallet scripthash (`only` None) or of the ones that changed.
/// `progress` hears how many transactions are left to fetch. `changed` gets the details of every
/// new or changed entry that was committed, also when the step fails half-way (the chunks before
/// the failure stay stored, and their events must not be lost).
pub async fn sync_once(
    coin: &UtxoCoin,
    store: &Store,
    progress: &(dyn Fn(usize) + Send + Sync),
    only: Option<&std::collections::HashSet<String>>,
    changed: &mut Vec<Value>,
) -> Result<(), SyncError> {
    let ticker = coin.ticker().to_string();
    let (mine, pairs) = wallet_scripts(coin).await;
    let shs: Vec<String> = pairs.iter().map(|(s, _)| s.clone()).collect();
    // Subscribes the scripthashes (with the balance cache on), so their changes reach us.
    coin.pool.balances(&shs).await?;
    let (asked, addresses): (Vec<String>, Vec<String>) = pairs
        .iter()
        .filter(|(s, _)| only.is_none_or(|o| o.contains(s)))
        .cloned()
        .unzip();
    if asked.is_empty() {
        // A change of a script history does not cover (a P2PK scripthash).
        return Ok(());
    }
    let mut keys: Vec<&String> = shs.iter().collect();
    keys.sort();
    let joined: String = keys
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let scripts_key = sha256::Hash::hash(joined.as_bytes()).to_string();
    let t = ticker.clone();
    let key = scripts_key.clone();
    let known = store.call(move |c| db::known(c, &t, &key)).await?;
    if only.is_some() && known.values().any(|k| !k.current) {
        // The script set changed (a new HD address): every entry is derived again, so every
        // scripthash's history is needed.
        return Box::pin(sync_once(coin, store, progress, None, changed)).await;
    }
    let histories = coin.pool.histories(&asked).await?;
    let mut heights: HashMap<String, u64> = HashMap::default();
    for item in histories.into_iter().flatten() {
        let h = u64::try_from(item.height).unwrap_or(0);
        let e = heights.entry(item.tx_hash).or_insert(h);
        *e = (*e).max(h);
    }
    // Only entries of the addresses asked about can have left their histories.
    let in_scope: Option<HashSet<String>> = match only {
        None => None,
        Some(_) => {
            let t = ticker.clone();
            Some(store.call(move |c| db::touching(c, &t, &addresses)).await?)
        }
    };
    let mut batch = Batch {
        remove: known
            .keys()
            .filter(|h| !heights.contains_key(*h))
            .filter(|h| in_scope.as_ref().is_none_or(|s| s.contains(*h)))
            .cloned()
            .collect(),
        ..Default::default()
    };
    let mut new_ids = Vec::new();
    for (id, &h) in &heights {
        match known.get(id) {
            Some(k) if k.current => {
                if k.height != h {
                    batch.moved.push((id.clone(), h, 0));
                }
            }
            _ => new_ids.push(id.clone()),
        }
    }
    // Newest first (the mempool, then by height down), so a long first sync fills the first
    // page of `my_tx_history` (newest first) within its first chunk while the rest trickles in
    // at the server's pace. Neighbours in height still share a chunk, so a spend and the tx it
    // spends mostly come together (no extra fetch).
    new_ids.sort_by_key(|id| {
        let h = heights.get(id).copied().unwrap_or(0);
        (
            std::cmp::Reverse(if h == 0 { u64::MAX } else { h }),
            id.clone(),
        )
    });
    let seen = now();
    let mut times: HashMap<u64, u64> = HashMap::default();
    // Each chunk is fetched, derived and committed on its own: a long first sync keeps what it
    // has done if it fails half-way, and memory stays bounded. Two chunks are fetched at once
    // unless the server is paced (the next one's transactions go out while this one's inputs
    // come back), their block
    // headers beside their transactions, and a chunk's commit (an fsync) runs while the next
    // is derived: a chunk costs about one round trip, not three. Chunks are derived and
    // committed in order, so a failed fetch leaves every earlier chunk stored.
    let chunks: Vec<&[String]> = new_ids.chunks(CHUNK).collect();
    let mut asked_heights: HashSet<u64> = HashSet::default();
    let wants: Vec<Vec<u64>> = chunks
        .iter()
        .map(|chunk| {
            chunk
                .iter()
                .filter_map(|id| heights.get(id).copied())
                .filter(|h| *h > 0 && asked_heights.insert(*h))
                .collect::<BTreeSet<u64>>()
                .into_iter()
                .collect()
        })
        .collect();
    // A paced server takes the same units either way, and a second chunk in flight would queue
    // this chunk's inputs behind the next chunk's transactions (the first page would wait).
    let depth = if coin.pool.is_paced() { 1 } else { 2 };
    // Indices, not borrowed items, in the stream: a closure over `&` arguments trips the
    // `Send` check of the spawned sync task (rustc cannot prove it for every lifetime).
    let (chunks_ref, wants_ref) = (&chunks, &wants);
    let mut fetched = futures_util::stream::iter(0..chunks.len())
        .map(move |i| fetch_chunk(coin, chunks_ref[i], &wants_ref[i]))
        .buffered(depth);
    let mut committing = None;
    let mut i = 0;
    while let Some(got) = fetched.next().await {
        let chunk = chunks[i];
        progress(new_ids.len() - i * CHUNK);
        i += 1;
        let (txs, prevs, chunk_times) = match got {
            Ok(got) => got,
            Err(e) => {
                if let Some(previous) = committing.take() {
                    changed.extend(previous.await?);
                }
                return Err(e);
            }
        };
        times.extend(chunk_times);
        let mut part = Batch::default();
        for id in chunk {
            let Some((raw, tx)) = txs.get(id) else {
                continue;
            };
            let h = heights.get(id).copied().unwrap_or(0);
            let ts = time_of(h, id, &times, &known, seen);
            let d = derive::derive(&coin.conf, raw, tx, &prevs, &mine, h, ts)
                .map_err(|e| SyncError::Bad(e.to_string()))?;
            part.upsert.push(Row {
                tx_hash: id.clone(),
                height: h,
                timestamp: ts,
                details: d.details,
                my_addresses: d.my_addresses,
                scripts_key: scripts_key.clone(),
            });
        }
        if let Some(previous) = committing.take() {
            changed.extend(previous.await?);
        }
        let t = ticker.clone();
        committing = Some(store.submit(move |c| db::apply(c, &t, part)));
    }
    drop(fetched);
    if let Some(last) = committing.take() {
        changed.extend(last.await?);
    }
    progress(0);
    // Then moves and removals, in one transaction.
    let want: Vec<u64> = batch
        .moved
        .iter()
        .map(|m| m.1)
        .filter(|h| *h > 0 && !times.contains_key(h))
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    times.extend(block_times(coin, &want).await?);
    for m in &mut batch.moved {
        m.2 = time_of(m.1, &m.0, &times, &known, seen);
    }
    if batch.moved.is_empty() && batch.remove.is_empty() {
        return Ok(());
    }
    let t = ticker;
    changed.extend(store.call(move |c| db::apply(c, &t, batch)).await?);
    Ok(())
}

/// A block's time, or for an unmined tx the first time we saw it (kept across syncs).
fn time_of(
    h: u64,
    id: &str,
    times: &HashMap<u64, u64>,
    known: &HashMap<String, db::Known>,
    seen: u64,
) -> u64 {
    if h > 0 {
        times.get(&h).copied().unwrap_or(seen)
    } else {
        known
            .get(id)
            .map_or(seen, |k| if k.height == 0 { k.timestamp } else { seen })
    }
}
