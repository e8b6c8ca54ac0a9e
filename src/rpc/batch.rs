//! The batch runner: items run concurrently (up to `batch_concurrency` at a time), each under its
//! own time limit, and the answer has one slot per item in request order.

use super::dispatch::{self, Answer, Caller};
use super::error::RpcError;
use crate::ctx::Ctx;
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use std::sync::Arc;

/// One item under the per-item time limit; used for single requests too.
pub async fn run_item(ctx: &Arc<Ctx>, caller: &Caller, item: Value) -> Answer {
    let limit = ctx.config.limits.item_timeout;
    let v2 = item.get("mmrpc").is_some_and(|v| !v.is_null());
    let id = item.get("id").and_then(Value::as_u64);
    let work = async {
        // Queue for a global slot rather than fail: the item's time limit bounds the wait.
        let _permit = ctx.inflight.acquire().await;
        dispatch::process(ctx, caller, item).await
    };
    match tokio::time::timeout(limit, work).await {
        Ok(answer) => answer,
        Err(_) => {
            let err = RpcError::Timeout(limit);
            let (status, body) = if v2 { err.v2(id) } else { err.legacy() };
            Answer {
                status,
                body: dispatch::Body::Json(body),
            }
        }
    }
}

/// Runs every item and returns the slots in request order (the caller checked the item cap).
pub async fn run(ctx: &Arc<Ctx>, caller: &Caller, items: Vec<Value>) -> Vec<Value> {
    let width = ctx.config.limits.batch_concurrency.max(1);
    // `buffered` keeps the input order while running up to `width` items at once, so every slot
    // is filled exactly once and where its request stood.
    stream::iter(items)
        .map(|item| async move { run_item(ctx, caller, item).await.into_slot() })
        .buffered(width)
        .collect()
        .await
}
