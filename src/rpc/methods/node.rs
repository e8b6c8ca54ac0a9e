//! Methods about the daemon itself: `version`, `help`, `stop`.

use super::{Reply, RpcError};
use crate::ctx::Ctx;
use serde_json::{json, Value};
use std::sync::Arc;

/// `version`: `{"result": "<version>_<git hash>", "datetime": "<build time>"}`.
pub async fn version(_ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    // The answer never changes: build it once (it is the hottest public method).
    static ANSWER: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let answer = ANSWER.get_or_init(|| {
        json!({
            "result": crate::version_string(),
            "datetime": crate::build_datetime(),
        })
    });
    Ok(Reply::Json(answer.clone()))
}

/// `help`: plain text, as KDF answers it (so `null` inside a batch).
pub async fn help(_ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    let mut text = String::from("\nkdfd answers these methods (see docs/rpc.md):\n");
    for (dialect, name) in super::names() {
        text.push_str(&format!("        {name} ({dialect})\n"));
    }
    Ok(Reply::Text(text))
}

/// `stop`: answers, then starts a graceful shutdown that lets in-flight requests finish.
pub async fn stop(ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    ctx.request_shutdown();
    Ok(Reply::Json(json!({"result": "success"})))
}
