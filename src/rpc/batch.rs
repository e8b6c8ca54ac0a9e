//! The batch runner. Items run concurrently (up to `batch_concurrency` at a time), each under its
//! own time limit, and the answer has one slot per item in request order (none for JSON-RPC
//! notifications). Two kdfd rules on top of KDF's:
//!
//! - Dependency safety: an item that names a coin waits for the earlier items of the same batch
//!   that activate or disable that coin, and an activation or deactivation also waits for the
//!   earlier items that use the coin; `get_enabled_coins` waits for every earlier activation and
//!   deactivation. Items for other coins still run side by side.
//! - Per-method caps: items of a method past its cap get an error slot and do not run.

use super::answer::{Answer, Dialect, Head, Json};
use super::auth::Caller;
use super::dispatch;
use super::error::RpcError;
use super::methods::{self, Effect};
use crate::ctx::Ctx;
use futures_util::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::watch;

/// One item under the per-item time limit; used for single requests too.
pub async fn run_item(ctx: &Arc<Ctx>, caller: &Caller, item: Value) -> Answer {
    let limit = ctx.config.limits.item_timeout;
    // Kept for the time-out answer: the item itself is moved into the work.
    let dialect = Dialect::of(&item);
    let id = item.get("id").cloned();
    let work = async {
        // Queue for a global slot rather than fail: the item's time limit bounds the wait.
        // `try_acquire` first: it spends none of the task's cooperative budget, so a batch's
        // items can finish on their first poll (`run`).
        let _permit = match ctx.inflight.try_acquire() {
            Ok(permit) => Ok(permit),
            Err(_) => ctx.inflight.acquire().await,
        };
        dispatch::process(ctx, caller, item).await
    };
    match tokio::time::timeout(limit, work).await {
        Ok(answer) => answer,
        Err(_) => Answer::error_in(dialect, id, &RpcError::Timeout(limit)),
    }
}

/// For each item: the earlier items it waits for, and whether it is over its method's cap.
struct Plan {
    deps: Vec<Vec<usize>>,
    over_cap: Vec<Option<RpcError>>,
}

fn plan(ctx: &Ctx, items: &[Value]) -> Plan {
    let caps = &ctx.config.limits.method_caps;
    let mut counts: HashMap<&str, usize> = HashMap::new();
    // Per coin: the last mutator, and the users since it.
    let mut last_mutator: HashMap<&str, usize> = HashMap::new();
    let mut users_since: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut set_readers: Vec<usize> = Vec::new();
    let mut deps = Vec::with_capacity(items.len());
    let mut over_cap = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let head = Head::of(item);
        let (method, coin) = (head.method, head.coin);
        // By name, whatever the envelope: a cap must hold even for an item whose envelope fails.
        let entry = method.and_then(|m| methods::find(Dialect::Legacy, m));
        let effect = entry.map_or(Effect::None, |e| e.effect);
        over_cap.push(method.and_then(|m| {
            let cap = caps.get(m).copied().or(entry.and_then(|e| e.cap))?;
            let n = counts.entry(m).or_default();
            *n += 1;
            (*n > cap).then(|| RpcError::OverMethodCap(m.to_string(), cap))
        }));
        let mut mine = Vec::new();
        if effect == Effect::ReadsAll {
            mine.extend(last_mutator.values().copied());
            set_readers.push(i);
        }
        if let Some(c) = coin {
            mine.extend(last_mutator.get(c).copied());
            if matches!(effect, Effect::Activates | Effect::Deactivates) {
                mine.extend(users_since.remove(c).unwrap_or_default());
                // A listing of all coins is a use of every coin.
                mine.extend(set_readers.iter().copied());
                last_mutator.insert(c, i);
            } else {
                users_since.entry(c).or_default().push(i);
            }
        }
        deps.push(mine);
    }
    Plan { deps, over_cap }
}

/// Runs every item and returns the slots in request order (the caller checked the item cap).
pub async fn run(ctx: &Arc<Ctx>, caller: &Caller, items: Vec<Value>) -> Vec<Json> {
    let width = ctx.config.limits.batch_concurrency.max(1);
    let Plan { deps, mut over_cap } = plan(ctx, &items);
    // Completion signals only for the items something waits on (most batches: none).
    let mut waited_on = vec![false; items.len()];
    deps.iter().flatten().for_each(|&d| waited_on[d] = true);
    let done: Vec<Option<watch::Sender<bool>>> = waited_on
        .iter()
        .map(|&w| w.then(|| watch::channel(false).0))
        .collect();
    let done = &done;
    let jobs = items
        .into_iter()
        .zip(deps)
        .enumerate()
        .map(|(i, (item, deps))| {
            let capped = over_cap[i].take();
            async move {
                for d in deps {
                    // A dependency is always earlier, so it is running or done: no deadlock.
                    if let Some(signal) = &done[d] {
                        let _ = signal.subscribe().wait_for(|finished| *finished).await;
                    }
                }
                let answer = match capped {
                    Some(e) => Answer::error_for(&item, &e),
                    None => run_item(ctx, caller, item).await,
                };
                if let Some(signal) = &done[i] {
                    signal.send_replace(true);
                }
                answer.into_json()
            }
        });
    // Each slot is filled exactly once, where its request stood; up to `width` items wait at once.
    let mut slots: Vec<Option<Json>> = Vec::with_capacity(waited_on.len());
    let mut waiting = FuturesUnordered::new();
    for (i, job) in jobs.enumerate() {
        while waiting.len() >= width {
            if let Some((j, slot)) = waiting.next().await {
                slots[j] = slot;
            }
        }
        let mut job = Box::pin(job);
        // Most items (`version`, cached reads) finish on their first poll: answered in place, they
        // never take a place in the set of waiting items (one task record less per item).
        let first = std::future::poll_fn(|cx| Poll::Ready(job.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(slot) => slots.push(slot),
            Poll::Pending => {
                slots.push(None);
                waiting.push(async move { (i, job.await) });
            }
        }
    }
    while let Some((j, slot)) = waiting.next().await {
        slots[j] = slot;
    }
    slots.into_iter().flatten().collect()
}
