//! Generic `task::<kind>::status` / `cancel` handlers for every task family (KDF's RPC-task
//! protocol, spec 2.1), and the shaping of a failed task's `Error` details.

use super::{Reply, RpcError};
use crate::ctx::Ctx;
use crate::tasks::TaskError;
use serde::Deserialize;
use serde_json::{json, Value};

/// `{"task_id", "forget_if_finished"}`; KDF defaults `forget_if_finished` to true.
#[derive(Deserialize)]
struct StatusReq {
    task_id: u64,
    #[serde(default = "yes")]
    forget_if_finished: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct CancelReq {
    task_id: u64,
}

/// `task::<kind>::status`: the `{"status","details"}` object (HTTP 200 for every status);
/// an unknown (or forgotten, or cancelled) task is `NoSuchTask` 400.
pub async fn status_of(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    let req: StatusReq = super::parse(params)?;
    match ctx.tasks.status(kind, req.task_id, req.forget_if_finished) {
        Ok(status) => Ok(Reply::Json(status.to_json())),
        Err(TaskError::NoSuchTask(id)) => Err(RpcError::NoSuchTask(id)),
        // `status` never reports `Finished`; map it anyway rather than panic.
        Err(TaskError::Finished) => Err(RpcError::TaskFinished),
    }
}

/// `task::<kind>::cancel`: `"success"`; `NoSuchTask` 404, `TaskFinished` 409.
pub async fn cancel_of(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    let req: CancelReq = super::parse(params)?;
    match ctx.tasks.cancel(kind, req.task_id) {
        Ok(()) => Ok(Reply::Json(json!("success"))),
        Err(TaskError::NoSuchTask(id)) => Err(RpcError::NoSuchTaskToCancel(id)),
        Err(TaskError::Finished) => Err(RpcError::TaskFinished),
    }
}

/// The `client_id` of an init request (the SSE client for status events; default 0).
pub fn client_id(params: &Value) -> Result<u64, RpcError> {
    match params.get("client_id") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| {
            RpcError::InvalidParams(format!("'client_id': invalid type: {v}, expected u64"))
        }),
    }
}

/// What a task's future returns: the method result, or the v2 error object without
/// `mmrpc`/`id` (KDF's task `Error` details).
pub fn outcome(r: Result<Value, RpcError>) -> Result<Value, Value> {
    r.map_err(|e| e.details())
}
