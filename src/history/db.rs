//! The SQL the history sync runs on the history tables (their schema is store migrations 2 and
//! 3, in `store::MIGRATIONS`; the pages `my_tx_history` reads are in `pages`). Plain sync
//! functions: they run on the store's thread through `Store::call`.

use crate::store::StoreError;
use foldhash::{HashMap, HashSet};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

/// A stored tx's height and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    pub height: u64,
    pub timestamp: u64,
    /// Derived for the current script set.
    pub current: bool,
}

/// One entry to write.
#[derive(Debug, Clone)]
pub struct Row {
    pub tx_hash: String,
    pub height: u64,
    pub timestamp: u64,
    pub details: Value,
    pub my_addresses: Vec<String>,
    pub scripts_key: String,
}

/// What one sync step changes, written in one transaction.
#[derive(Debug, Default)]
pub struct Batch {
    /// New or re-derived entries (replace any stored one).
    pub upsert: Vec<Row>,
    /// Entries whose height/time changed: (tx_hash, height, timestamp).
    pub moved: Vec<(String, u64, u64)>,
    /// Entries in no history any more (reorged out, replaced).
    pub remove: Vec<String>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The stored txs of a coin; `current` says whether each was derived for `scripts_key`.
pub fn known(
    conn: &Connection,
    coin: &str,
    scripts_key: &str,
) -> Result<HashMap<String, Known>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT tx_hash, height, timestamp, scripts_key FROM tx_history WHERE coin = ?1",
    )?;
    let rows = st.query_map([coin], |r| {
        Ok((
            r.get::<_, String>(0)?,
            Known {
                height: to_u64(r.get(1)?),
                timestamp: to_u64(r.get(2)?),
                current: r.get::<_, String>(3)? == scripts_key,
            },
        ))
    })?;
    Ok(rows.collect::<Result<HashMap<_, _>, _>>()?)
}

/// The stored txs of a coin that touch any of `addresses`.
pub fn touching(
    conn: &Connection,
    coin: &str,
    addresses: &[String],
) -> Result<HashSet<String>, StoreError> {
    let mut st =
        conn.prepare_cached("SELECT tx_hash FROM tx_address WHERE coin = ?1 AND address = ?2")?;
    let mut out = HashSet::default();
    for a in addresses {
        let rows = st.query_map(params![coin, a], |r| r.get::<_, String>(0))?;
        for r in rows {
            out.insert(r?);
        }
    }
    Ok(out)
}

/// Applies a sync step atomically; returns the details of every new or changed entry (an upsert
/// whose details equal the stored ones is neither). Statements are prepared once per connection
/// (a first sync runs them once per transaction).
pub fn apply(conn: &mut Connection, coin: &str, b: Batch) -> Result<Vec<Value>, StoreError> {
    let tx = conn.transaction()?;
    let mut changed = Vec::new();
    {
        let mut del_tx =
            tx.prepare_cached("DELETE FROM tx_history WHERE coin = ?1 AND tx_hash = ?2")?;
        let mut del_addr =
            tx.prepare_cached("DELETE FROM tx_address WHERE coin = ?1 AND tx_hash = ?2")?;
        let mut get =
            tx.prepare_cached("SELECT details FROM tx_history WHERE coin = ?1 AND tx_hash = ?2")?;
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO tx_history
                 (coin, tx_hash, height, timestamp, details, scripts_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut put_addr = tx.prepare_cached(
            "INSERT OR IGNORE INTO tx_address (coin, tx_hash, address) VALUES (?1, ?2, ?3)",
        )?;
        let mut moved = tx.prepare_cached(
            "UPDATE tx_history SET height = ?3, timestamp = ?4, details = ?5
             WHERE coin = ?1 AND tx_hash = ?2",
        )?;
        for h in &b.remove {
            del_tx.execute(params![coin, h])?;
            del_addr.execute(params![coin, h])?;
        }
        for r in b.upsert {
            let old: Option<String> = get
                .query_row(params![coin, r.tx_hash], |row| row.get(0))
                .optional()?;
            put.execute(params![
                coin,
                r.tx_hash,
                to_i64(r.height),
                to_i64(r.timestamp),
                r.details.to_string(),
                r.scripts_key
            ])?;
            if old.is_some() {
                del_addr.execute(params![coin, r.tx_hash])?;
            }
            for a in &r.my_addresses {
                put_addr.execute(params![coin, r.tx_hash, a])?;
            }
            // A re-derivation that changes nothing (a new HD address the tx does not touch) is
            // no news: KDF's history loop reports a stored tx once, not again per new address.
            let same = old
                .and_then(|o| serde_json::from_str::<Value>(&o).ok())
                .is_some_and(|o| o == r.details);
            if !same {
                changed.push(r.details);
            }
        }
        for (h, height, time) in &b.moved {
            let old: Option<String> = get.query_row(params![coin, h], |r| r.get(0)).optional()?;
            let Some(old) = old else { continue };
            let mut d: Value = serde_json::from_str(&old)
                .map_err(|e| StoreError::Invalid(format!("stored details of {h}: {e}")))?;
            d["block_height"] = (*height).into();
            d["timestamp"] = (*time).into();
            moved.execute(params![
                coin,
                h,
                to_i64(*height),
                to_i64(*time),
                d.to_string()
            ])?;
            changed.push(d);
        }
    }
    tx.commit()?;
    Ok(changed)
}
