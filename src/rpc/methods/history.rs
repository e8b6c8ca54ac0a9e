//! `my_tx_history`, v2 and legacy: pages of the coin's stored history, newest first, with
//! `confirmations` computed against the current tip.

use super::{Reply, RpcError};
use crate::coins::utxo::UtxoCoin;
use crate::crypto::hd::Chain;
use crate::ctx::Ctx;
use crate::history::pages::{self, Entry, Start};
use crate::history::{derive, SyncStatus};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::fmt::Write;
use std::sync::Arc;

/// KDF's paging: pages count from 1 (`NonZeroUsize`, so `0` is refused as KDF refuses it);
/// `FromId` is an entry's `internal_id`, hex.
#[derive(Debug, Clone, Deserialize)]
enum PagingOptions {
    PageNumber(std::num::NonZeroUsize),
    FromId(HexId),
}

/// An `internal_id`: hex, as KDF's `BytesJson` reads it.
#[derive(Debug, Clone)]
struct HexId(String);

impl<'de> Deserialize<'de> for HexId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HexId, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() || s.len() % 2 != 0 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(serde::de::Error::custom(format!(
                "invalid FromId {s:?}: expected the hex internal_id of an entry"
            )));
        }
        Ok(HexId(s.to_ascii_lowercase()))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Target {
    Iguana,
    AccountId {
        account_id: u32,
    },
    AddressId {
        account_id: u32,
        chain: Chain,
        address_id: u32,
    },
}

#[derive(Debug, Deserialize)]
struct V2Req {
    coin: String,
    #[serde(default = "ten")]
    limit: usize,
    paging_options: Option<PagingOptions>,
    target: Option<Target>,
}

fn ten() -> usize {
    10
}

/// The wallet addresses a target covers; `None` means every entry (Iguana).
async fn target_addresses(
    coin: &UtxoCoin,
    target: &Target,
) -> Result<Option<Vec<String>>, RpcError> {
    let Some(hd) = &coin.hd else {
        return match target {
            Target::Iguana => Ok(None),
            other => Err(RpcError::InvalidTarget(format!(
                "Expected \"Iguana\" target, found: {other:?}"
            ))),
        };
    };
    let accounts = hd.accounts.lock().await;
    match target {
        Target::Iguana => Err(RpcError::InvalidTarget(
            "Expected \"AccountId\" or \"AddressId\" target, found: Iguana".into(),
        )),
        Target::AccountId { account_id } => {
            let a = accounts.get(account_id).ok_or_else(|| {
                RpcError::InvalidTarget(format!("Unknown account_id: {account_id}"))
            })?;
            Ok(Some(a.all().map(|x| x.address.clone()).collect()))
        }
        Target::AddressId {
            account_id,
            chain,
            address_id,
        } => {
            let a = accounts.get(account_id).ok_or_else(|| {
                RpcError::InvalidTarget(format!("Unknown account_id: {account_id}"))
            })?;
            let addr = a
                .chain(*chain)
                .iter()
                .find(|x| x.index == *address_id)
                .ok_or_else(|| {
                    RpcError::InvalidTarget(format!(
                        "Unknown address: {account_id}/{chain:?}/{address_id}"
                    ))
                })?;
            Ok(Some(vec![addr.address.clone()]))
        }
    }
}

/// What both dialects answer from.
struct Page {
    /// The entries as one JSON array, each with its `confirmations`.
    transactions: Box<RawValue>,
    skipped: usize,
    total: usize,
    current_block: u64,
    sync_status: SyncStatus,
}

/// The stored details are JSON objects written by the sync (without `confirmations`, which
/// depends on the tip): each is copied into the array as text with `confirmations` appended,
/// so a page parses no entry.
fn transactions_json(entries: &[Entry], tip: u64) -> Result<Box<RawValue>, RpcError> {
    let len: usize = entries.iter().map(|e| e.details.len() + 24).sum();
    let mut out = String::with_capacity(len + 2);
    out.push('[');
    for (i, e) in entries.iter().enumerate() {
        let body = e
            .details
            .trim()
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .ok_or_else(|| RpcError::StorageError("a stored entry is not a JSON object".into()))?;
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        out.push_str(body);
        if !body.trim().is_empty() {
            out.push(',');
        }
        let _ = write!(
            out,
            "\"confirmations\":{}}}",
            derive::confirmations(tip, e.height)
        );
    }
    out.push(']');
    RawValue::from_string(out).map_err(|e| RpcError::StorageError(format!("stored entries: {e}")))
}

/// A page of the coin's entries for `addresses`; the coin's sync must be running.
async fn page(
    ctx: &Ctx,
    coin: &UtxoCoin,
    addresses: Option<Vec<String>>,
    start: Start,
    limit: usize,
) -> Result<Page, RpcError> {
    let ticker = coin.ticker().to_string();
    let status = ctx.history.status(&ticker);
    let store = match (&status, ctx.history.store()) {
        (SyncStatus::NotEnabled, _) | (_, None) => {
            return Err(RpcError::StorageIsNotInitialized(format!(
                "{ticker} was activated without tx_history"
            )))
        }
        (_, Some(s)) => s.clone(),
    };
    let tip = coin.pool.tip_height().await.map_err(RpcError::Electrum)?;
    let st = start.clone();
    let slice = store
        .read(move |c| pages::slice(c, &ticker, addresses.as_deref(), &st, limit))
        .await
        .map_err(|e| RpcError::StorageError(e.to_string()))?
        .ok_or_else(|| match start {
            Start::After(id) => {
                RpcError::StorageError(format!("from_id {id} is not in the history"))
            }
            Start::Skip(_) => RpcError::Internal("page start not found".into()),
        })?;
    Ok(Page {
        transactions: transactions_json(&slice.entries, tip)?,
        skipped: slice.skipped,
        total: slice.total,
        current_block: tip,
        sync_status: status,
    })
}

fn start_of(from_id: Option<&str>, page: usize, limit: usize) -> Start {
    match from_id {
        Some(id) => Start::After(id.to_string()),
        None => Start::Skip(page.saturating_sub(1).saturating_mul(limit)),
    }
}

fn total_pages(total: usize, limit: usize) -> usize {
    if limit == 0 {
        0
    } else {
        total.div_ceil(limit)
    }
}

/// v2 `my_tx_history`.
pub async fn my_tx_history_v2(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: V2Req = super::parse(params)?;
    let coin = ctx
        .coins
        .get(&req.coin)
        .ok_or_else(|| RpcError::CoinIsNotActive(req.coin.clone()))?;
    let target = req.target.clone().unwrap_or(Target::Iguana);
    let target_json = match &target {
        Target::Iguana => json!({"type": "iguana"}),
        Target::AccountId { account_id } => json!({"type": "account_id", "account_id": account_id}),
        Target::AddressId {
            account_id,
            chain,
            address_id,
        } => {
            json!({"type": "address_id", "account_id": account_id, "chain": format!("{chain:?}"), "address_id": address_id})
        }
    };
    let addresses = target_addresses(&coin, &target).await?;
    let paging = req
        .paging_options
        .unwrap_or(PagingOptions::PageNumber(std::num::NonZeroUsize::MIN));
    let (from_id, page_no, paging_json) = match &paging {
        PagingOptions::PageNumber(n) => (None, n.get(), json!({"PageNumber": n})),
        PagingOptions::FromId(id) => (Some(id.0.as_str()), 1, json!({"FromId": id.0})),
    };
    let start = start_of(from_id, page_no, req.limit);
    let p = page(&ctx, &coin, addresses, start, req.limit).await?;
    Reply::json(&V2Answer {
        coin: coin.ticker(),
        target: target_json,
        current_block: p.current_block,
        transactions: p.transactions,
        sync_status: p.sync_status.to_json(),
        limit: req.limit,
        skipped: p.skipped,
        total: p.total,
        total_pages: total_pages(p.total, req.limit),
        paging_options: paging_json,
    })
}

/// The v2 answer, in KDF's field order.
#[derive(Serialize)]
struct V2Answer<'a> {
    coin: &'a str,
    target: Value,
    current_block: u64,
    transactions: Box<RawValue>,
    sync_status: Value,
    limit: usize,
    skipped: usize,
    total: usize,
    total_pages: usize,
    paging_options: Value,
}

#[derive(Serialize)]
struct Legacy {
    result: LegacyAnswer,
}

/// The legacy answer's `result`.
#[derive(Serialize)]
struct LegacyAnswer {
    transactions: Box<RawValue>,
    limit: usize,
    skipped: usize,
    from_id: Option<String>,
    total: usize,
    current_block: u64,
    sync_status: Value,
    page_number: Option<std::num::NonZeroUsize>,
    total_pages: usize,
}

#[derive(Debug, Deserialize)]
struct LegacyReq {
    coin: String,
    #[serde(default = "ten")]
    limit: usize,
    from_id: Option<HexId>,
    #[serde(default)]
    max: bool,
    page_number: Option<std::num::NonZeroUsize>,
}

/// Legacy `my_tx_history`: `{"result": {...}}`; `max: true` returns every entry.
pub async fn my_tx_history(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let req: LegacyReq = super::parse(req)?;
    let coin = ctx
        .coins
        .get(&req.coin)
        .ok_or_else(|| RpcError::NoSuchCoin(req.coin.clone()))?;
    let page_no = req.page_number.map_or(1, |n| n.get());
    // `max`: every entry (after `from_id`, if given); the limit shown is the total.
    let (start, take) = if req.max {
        (
            start_of(req.from_id.as_ref().map(|h| h.0.as_str()), 1, 0),
            usize::MAX,
        )
    } else {
        (
            start_of(
                req.from_id.as_ref().map(|h| h.0.as_str()),
                page_no,
                req.limit,
            ),
            req.limit,
        )
    };
    let p = page(&ctx, &coin, None, start, take).await?;
    let limit = if req.max { p.total } else { req.limit };
    Reply::json(&Legacy {
        result: LegacyAnswer {
            transactions: p.transactions,
            limit,
            skipped: p.skipped,
            from_id: req.from_id.map(|h| h.0),
            total: p.total,
            current_block: p.current_block,
            sync_status: p.sync_status.to_json(),
            page_number: req.page_number,
            total_pages: total_pages(p.total, limit),
        },
    })
}
