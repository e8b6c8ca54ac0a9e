//! The reads `my_tx_history` runs on the history tables: pages, newest first. They run on the
//! store's read connection (`Store::read`), inside one read transaction, so `total` and the
//! entries come from one snapshot while the sync writes beside them.
//!
//! Order: unmined first (by hash), then by height descending, ties by hash. Index
//! `tx_history_page (coin, height DESC, tx_hash)` (store migration 3) serves both parts in
//! that order, so a page reads the index up to its end and the details of its own rows only;
//! the details stay text, as stored (the answer splices them in without parsing).

use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

/// Where a page starts: after `n` entries, or after the entry with this id.
#[derive(Debug, Clone)]
pub enum Start {
    Skip(usize),
    After(String),
}

/// One stored entry: its height and its details as stored (JSON text, no `confirmations`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub height: u64,
    pub details: String,
}

/// One page and where it sits.
#[derive(Debug, Clone)]
pub struct Slice {
    pub total: usize,
    pub skipped: usize,
    pub entries: Vec<Entry>,
}

fn to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn count(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> Result<usize, StoreError> {
    let n: i64 = conn.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        height: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
        details: r.get(1)?,
    })
}

const UNMINED: &str = "SELECT height, details FROM tx_history
     WHERE coin = ?1 AND height = 0 ORDER BY tx_hash LIMIT ?2 OFFSET ?3";
const MINED: &str = "SELECT height, details FROM tx_history
     WHERE coin = ?1 AND height > 0 ORDER BY height DESC, tx_hash LIMIT ?2 OFFSET ?3";
/// The same order, hashes only: read from the index alone.
const ORDER: [&str; 2] = [
    "SELECT tx_hash FROM tx_history WHERE coin = ?1 AND height = 0 ORDER BY tx_hash",
    "SELECT tx_hash FROM tx_history WHERE coin = ?1 AND height > 0 ORDER BY height DESC, tx_hash",
];

/// `limit` entries after the first `skip`, from the unmined part, then the mined part.
fn range(
    conn: &Connection,
    coin: &str,
    unmined: usize,
    skip: usize,
    limit: usize,
) -> Result<Vec<Entry>, StoreError> {
    let mut out = Vec::new();
    for (sql, offset) in [(UNMINED, skip), (MINED, skip.saturating_sub(unmined))] {
        let want = limit - out.len();
        if want == 0 {
            break;
        }
        let mut st = conn.prepare_cached(sql)?;
        for r in st.query_map(params![coin, to_i64(want), to_i64(offset)], entry)? {
            out.push(r?);
        }
    }
    Ok(out)
}

/// The position of `id` in the order (0-based), or `None` when it is not stored.
fn position(
    conn: &Connection,
    coin: &str,
    id: &str,
    unmined: usize,
) -> Result<Option<usize>, StoreError> {
    let height: Option<i64> = conn
        .prepare_cached("SELECT height FROM tx_history WHERE coin = ?1 AND tx_hash = ?2")?
        .query_row(params![coin, id], |r| r.get(0))
        .optional()?;
    let Some(h) = height else { return Ok(None) };
    let before = if h == 0 {
        count(
            conn,
            "SELECT count(*) FROM tx_history WHERE coin = ?1 AND height = 0 AND tx_hash < ?2",
            params![coin, id],
        )?
    } else {
        unmined
            + count(
                conn,
                "SELECT count(*) FROM tx_history WHERE coin = ?1 AND height > ?2",
                params![coin, h],
            )?
            + count(
                conn,
                "SELECT count(*) FROM tx_history WHERE coin = ?1 AND height = ?2 AND tx_hash < ?3",
                params![coin, h, id],
            )?
    };
    Ok(Some(before))
}

/// The page of entries touching one of `addresses`: the order comes from the index alone, and
/// only the page's rows are read.
fn filtered(
    conn: &Connection,
    coin: &str,
    addresses: &[String],
    start: &Start,
    limit: usize,
) -> Result<Option<Slice>, StoreError> {
    let set = super::db::touching(conn, coin, addresses)?;
    let mut order = Vec::new();
    for sql in ORDER {
        let mut st = conn.prepare_cached(sql)?;
        let rows = st.query_map([coin], |r| r.get::<_, String>(0))?;
        for h in rows {
            let h = h?;
            if set.contains(&h) {
                order.push(h);
            }
        }
    }
    let skipped = match start {
        Start::Skip(n) => *n,
        Start::After(id) => match order.iter().position(|h| h == id) {
            Some(i) => i + 1,
            None => return Ok(None),
        },
    };
    let mut get = conn.prepare_cached(
        "SELECT height, details FROM tx_history WHERE coin = ?1 AND tx_hash = ?2",
    )?;
    let mut entries = Vec::new();
    for h in order.iter().skip(skipped).take(limit) {
        entries.push(get.query_row(params![coin, h], entry)?);
    }
    Ok(Some(Slice {
        total: order.len(),
        skipped,
        entries,
    }))
}

/// A page of a coin's entries (see the module for the order). With `addresses`, only entries
/// touching one of them. `None` when `Start::After` names no entry.
pub fn slice(
    conn: &Connection,
    coin: &str,
    addresses: Option<&[String]>,
    start: &Start,
    limit: usize,
) -> Result<Option<Slice>, StoreError> {
    if let Some(list) = addresses {
        return filtered(conn, coin, list, start, limit);
    }
    let total = count(
        conn,
        "SELECT count(*) FROM tx_history WHERE coin = ?1",
        [coin],
    )?;
    let unmined = count(
        conn,
        "SELECT count(*) FROM tx_history WHERE coin = ?1 AND height = 0",
        [coin],
    )?;
    let skipped = match start {
        Start::Skip(n) => *n,
        Start::After(id) => match position(conn, coin, id, unmined)? {
            Some(i) => i + 1,
            None => return Ok(None),
        },
    };
    let entries = if skipped >= total {
        Vec::new()
    } else {
        range(conn, coin, unmined, skipped, limit)?
    };
    Ok(Some(Slice {
        total,
        skipped,
        entries,
    }))
}

/// Every entry of a coin, parsed (see `slice` for the order and the filter).
pub fn list(
    conn: &Connection,
    coin: &str,
    addresses: Option<&[String]>,
) -> Result<Vec<Value>, StoreError> {
    let Some(s) = slice(conn, coin, addresses, &Start::Skip(0), usize::MAX)? else {
        return Ok(Vec::new());
    };
    s.entries
        .iter()
        .map(|e| {
            serde_json::from_str(&e.details)
                .map_err(|err| StoreError::Invalid(format!("stored details: {err}")))
        })
        .collect()
}
