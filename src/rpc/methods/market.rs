//! `my_orders` and `my_recent_swaps`: the Komodo Wallet polls both after sign-in. kdfd makes no
//! orders and no swaps (P2P is out of scope), so the true answers are empty, in KDF's shapes.
//! `orderbook`, `sell`, `buy` and the other market methods stay unknown methods.

use super::{parse_ref, Reply, RpcError};
use crate::ctx::Ctx;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::num::NonZeroUsize;
use std::sync::Arc;

/// `my_orders`: `{"result": {"maker_orders": {}, "taker_orders": {}}}`.
pub async fn my_orders(_ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    Ok(Reply::Json(
        json!({"result": {"maker_orders": {}, "taker_orders": {}}}),
    ))
}

/// KDF's `MySwapsFilter` plus its paging options; the coin filters change nothing here.
#[derive(Deserialize)]
struct RecentSwapsReq {
    #[serde(default = "ten")]
    limit: usize,
    #[serde(default = "first")]
    page_number: NonZeroUsize,
    #[serde(default)]
    from_uuid: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    my_coin: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    other_coin: Option<String>,
}

fn ten() -> usize {
    10
}

fn first() -> NonZeroUsize {
    NonZeroUsize::MIN
}

#[derive(Serialize)]
struct RecentSwaps {
    swaps: [(); 0],
    from_uuid: Option<String>,
    skipped: usize,
    limit: usize,
    total: usize,
    page_number: NonZeroUsize,
    total_pages: usize,
    found_records: usize,
}

/// A UUID in its hyphenated or simple form, as KDF's parser takes it.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let hex = |g: &str| g.bytes().all(|b| b.is_ascii_hexdigit());
    match groups.as_slice() {
        [one] => one.len() == 32 && hex(one),
        [a, b, c, d, e] => {
            [a.len(), b.len(), c.len(), d.len(), e.len()] == [8, 4, 4, 4, 12]
                && groups.iter().all(|g| hex(g))
        }
        _ => false,
    }
}

/// The empty page for a request's paging options.
fn empty_page(req: &Value) -> Result<Value, RpcError> {
    let r: RecentSwapsReq = parse_ref(req)?;
    if let Some(u) = r.from_uuid.as_deref().filter(|u| !is_uuid(u)) {
        return Err(RpcError::InvalidParams(format!(
            "UUID parsing failed: '{u}' is not a UUID"
        )));
    }
    let page = RecentSwaps {
        swaps: [],
        from_uuid: r.from_uuid,
        skipped: 0,
        limit: r.limit,
        total: 0,
        page_number: r.page_number,
        total_pages: 0,
        found_records: 0,
    };
    serde_json::to_value(page).map_err(|e| RpcError::Internal(e.to_string()))
}

/// Legacy `my_recent_swaps`: `{"result": <empty page>}`.
pub async fn my_recent_swaps(_ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    Ok(Reply::Json(json!({"result": empty_page(&req)?})))
}

/// v2 `my_recent_swaps`: the page is the result (the envelope adds `result`).
pub async fn my_recent_swaps_v2(_ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let params = if params.is_null() { json!({}) } else { params };
    Ok(Reply::Json(empty_page(&params)?))
}

#[cfg(test)]
mod tests {
    use super::is_uuid;

    #[test]
    fn uuids_in_both_forms() {
        assert!(is_uuid("5d02843e-d1b4-488d-aad0-114d82020453"));
        assert!(is_uuid("5d02843ed1b4488daad0114d82020453"));
        assert!(!is_uuid("abc"));
        assert!(!is_uuid("5d02843e-d1b4-488d-aad0-114d8202045g"));
    }
}
