//! Methods about the daemon itself: `version`, `help`, `stop`.

use super::{Reply, RpcError};
use crate::ctx::Ctx;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::sync::Arc;

/// `version`'s answer. None of these methods takes params (KDF ignores any).
#[derive(Serialize)]
struct Version {
    result: String,
    datetime: &'static str,
}

/// `stop`'s answer.
#[derive(Serialize)]
struct Done {
    result: &'static str,
}

/// `version`: `{"result": "<version>_<git hash>", "datetime": "<build time>"}`.
pub async fn version(_ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    // The answer never changes: build it once (it is the hottest public method).
    // Kept as rendered text: a clone is one copy, not a tree of strings to build and drop.
    static ANSWER: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    let answer = match ANSWER.get() {
        Some(answer) => answer,
        None => {
            let answer = serde_json::value::to_raw_value(&Version {
                result: crate::version_string(),
                datetime: crate::build_datetime(),
            })
            .map_err(|e| RpcError::Internal(e.to_string()))?;
            ANSWER.get_or_init(|| answer)
        }
    };
    Ok(Reply::Raw(answer.clone()))
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
    Reply::json(&Done { result: "success" })
}
