//! Atomic batches (a kdfd extension): `{"batch": [...], "atomicBatch": [...]}`. `batch` runs first
//! as a regular batch. `atomicBatch` items are all validated before any runs, then run one after
//! another; when one fails, the effects of those before it are undone in reverse order (an
//! activation is deactivated, a deactivation re-activated with its original request).

use super::answer::{kind_of, Dialect, Head, Json};
use super::auth::Caller;
use super::batch;
use super::call;
use super::error::RpcError;
use super::methods::{self, Effect};
use crate::ctx::Ctx;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// Whether a body object is an atomic-batch envelope rather than a request.
pub fn is_envelope(obj: &Map<String, Value>) -> bool {
    !obj.is_empty() && obj.keys().all(|k| k == "batch" || k == "atomicBatch")
}

/// Answers an atomic-batch envelope.
pub async fn run(
    ctx: &Arc<Ctx>,
    caller: &Caller,
    mut obj: Map<String, Value>,
) -> Result<Value, RpcError> {
    let part = |v: Option<Value>, name: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(RpcError::InvalidRequest(format!(
            "'{name}' must be an array"
        ))),
    };
    let regular = part(obj.remove("batch"), "batch")?;
    let atomic = part(obj.remove("atomicBatch"), "atomicBatch")?;
    let total = regular.as_ref().map_or(0, Vec::len) + atomic.as_ref().map_or(0, Vec::len);
    let max = ctx.config.limits.max_batch_items;
    if total > max {
        return Err(RpcError::BatchTooLarge(total, max));
    }
    let mut out = Map::new();
    if let Some(items) = regular {
        out.insert(
            "batch".into(),
            Value::Array(
                batch::run(ctx, caller, items)
                    .await
                    .into_iter()
                    .map(Json::into_tree)
                    .collect(),
            ),
        );
    }
    if let Some(items) = atomic {
        out.insert("atomicBatch".into(), run_atomic(ctx, caller, items).await);
    }
    Ok(Value::Object(out))
}

/// Checks an item before anything runs: an object, a known method, a coin where one is needed,
/// and a valid userpass.
async fn validate(ctx: &Ctx, caller: &Caller, item: &Value) -> Result<(), String> {
    if !item.is_object() {
        return Err(format!("item is {}, not a request object", kind_of(item)));
    }
    let head = Head::of(item);
    let method = head.method.ok_or("item has no string 'method'")?;
    let entry =
        methods::find(head.dialect, method).ok_or_else(|| format!("No such method: {method}"))?;
    if entry.effect.names_coin() && head.coin.is_none() {
        return Err(format!("'{method}' needs a string 'coin'"));
    }
    if entry.effect == Effect::Stops {
        return Err(format!("'{method}' cannot be part of an atomic batch"));
    }
    if head.dialect == Dialect::JsonRpc && item.get("id").is_none() {
        // A notification's failure could not be seen, so it could not be rolled back.
        return Err(
            "a JSON-RPC notification cannot be part of an atomic batch: give it an id".into(),
        );
    }
    let header = caller.header_userpass.as_deref().map(|p| json!(p));
    let userpass = match (head.userpass, head.dialect) {
        (None, Dialect::JsonRpc) => header.as_ref(),
        (u, _) => u,
    };
    call::admit(ctx, caller, entry, userpass)
        .await
        .map_err(|e| e.to_string())
}

/// Whether a slot is an error in its dialect.
fn failure_message(slot: &Value) -> Option<String> {
    let err = slot.get("error")?;
    Some(match err {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_string),
    })
}

/// How to undo one successful item.
enum Undo {
    Deactivate(String),
    Reactivate(Value),
}

async fn run_atomic(ctx: &Arc<Ctx>, caller: &Caller, items: Vec<Value>) -> Value {
    for (i, item) in items.iter().enumerate() {
        if let Err(message) = validate(ctx, caller, item).await {
            return json!({"status": "failed", "failed_index": i, "message": message, "details": []});
        }
    }
    let mut details = Vec::with_capacity(items.len());
    let mut undo = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let head = Head::of(&item);
        let effect = head
            .method
            .and_then(|m| methods::find(head.dialect, m))
            .map_or(Effect::None, |m| m.effect);
        let coin = head.coin.map(str::to_string);
        // Captured before a deactivation runs, so it can be re-activated as it was.
        let original = match (effect, &coin) {
            (Effect::Deactivates, Some(c)) => ctx.coins.get(c).map(|coin| coin.activation.clone()),
            _ => None,
        };
        let slot = batch::run_item(ctx, caller, item)
            .await
            .into_slot()
            .unwrap_or(Value::Null);
        if let Some(message) = failure_message(&slot) {
            details.push(slot);
            let mut answer = json!({"status": "failed", "failed_index": i, "message": message, "details": details});
            let problems = rollback(ctx, undo).await;
            if !problems.is_empty() {
                // Say so when the world could not be put back as it was.
                answer["rollback_errors"] = json!(problems);
            }
            return answer;
        }
        match (effect, coin) {
            (Effect::Activates, Some(c)) => undo.push(Undo::Deactivate(c)),
            (Effect::Deactivates, Some(_)) => undo.extend(original.map(Undo::Reactivate)),
            _ => {}
        }
        details.push(slot);
    }
    json!({"status": "success", "details": details})
}

/// Undoes the steps in reverse order; returns what could not be undone.
async fn rollback(ctx: &Arc<Ctx>, undo: Vec<Undo>) -> Vec<String> {
    let mut problems = Vec::new();
    for step in undo.into_iter().rev() {
        match step {
            Undo::Deactivate(coin) => {
                ctx.coins.remove(&coin);
                ctx.history.stop(&coin);
                tracing::info!(coin, "atomic batch rolled back: coin deactivated");
            }
            Undo::Reactivate(request) => {
                let coin = request
                    .get("coin")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                let Some(m) = methods::legacy("electrum") else {
                    continue;
                };
                if let Err(e) = (m.handler)(ctx.clone(), request).await {
                    tracing::warn!(coin, error = %e, "atomic batch rollback could not re-activate a coin");
                    problems.push(format!("could not re-activate {coin}: {e}"));
                }
            }
        }
    }
    problems
}
