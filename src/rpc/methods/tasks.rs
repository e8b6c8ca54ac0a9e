//! The shared half of every `task::<kind>::{status,cancel,user_action}`: KDF's params, answers
//! and errors (spec 2.1). Each task family only writes its `init`.

use super::{parse, Reply, RpcError};
use crate::ctx::Ctx;
use crate::rpc::kdf_errors;
use crate::tasks::TaskError;
use serde::Deserialize;
use serde_json::{json, Value};

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
struct IdReq {
    task_id: u64,
}

/// `task::<kind>::status`.
pub fn status(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    let req: StatusReq = parse(params)?;
    match ctx.tasks.status(kind, req.task_id, req.forget_if_finished) {
        Ok(s) => Ok(Reply::Json(s.to_json())),
        Err(_) => Err(kdf_errors::no_such_task(req.task_id, false)),
    }
}

/// `task::<kind>::cancel`.
pub fn cancel(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    let req: IdReq = parse(params)?;
    match ctx.tasks.cancel(kind, req.task_id) {
        Ok(()) => Ok(Reply::Json(json!("success"))),
        Err(TaskError::Finished) => Err(kdf_errors::task_finished(req.task_id)),
        Err(TaskError::NoSuchTask(id)) => Err(kdf_errors::no_such_task(id, true)),
    }
}

/// `task::<kind>::user_action`: kdfd's tasks never wait for a device, so a known task answers
/// `success` and an unknown one `NoSuchTask`, as KDF's do.
pub fn user_action(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    #[derive(Deserialize)]
    struct Req {
        task_id: u64,
        #[allow(dead_code)]
        user_action: Value,
    }
    let req: Req = parse(params)?;
    match ctx.tasks.status(kind, req.task_id, false) {
        Ok(_) => Ok(Reply::Json(json!("success"))),
        Err(_) => Err(kdf_errors::no_such_task(req.task_id, false)),
    }
}

/// Defines `status`/`cancel`/`user_action` handlers of one task kind.
#[macro_export]
macro_rules! task_handlers {
    ($kind:literal, $status:ident, $cancel:ident, $user_action:ident) => {
        /// `status` of this task kind.
        pub async fn $status(
            ctx: std::sync::Arc<$crate::ctx::Ctx>,
            params: serde_json::Value,
        ) -> Result<super::Reply, super::RpcError> {
            super::tasks::status(&ctx, $kind, params)
        }
        /// `cancel` of this task kind.
        pub async fn $cancel(
            ctx: std::sync::Arc<$crate::ctx::Ctx>,
            params: serde_json::Value,
        ) -> Result<super::Reply, super::RpcError> {
            super::tasks::cancel(&ctx, $kind, params)
        }
        /// `user_action` of this task kind.
        #[allow(dead_code)]
        pub async fn $user_action(
            ctx: std::sync::Arc<$crate::ctx::Ctx>,
            params: serde_json::Value,
        ) -> Result<super::Reply, super::RpcError> {
            super::tasks::user_action(&ctx, $kind, params)
        }
    };
}

/// `status` as an async handler body.
pub async fn status_of(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    status(ctx, kind, params)
}

/// `cancel` as an async handler body.
pub async fn cancel_of(ctx: &Ctx, kind: &str, params: Value) -> Result<Reply, RpcError> {
    cancel(ctx, kind, params)
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
    r.map_err(|e| e.task_details())
}
