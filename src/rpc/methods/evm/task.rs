//! `task::enable_eth::{init,status,cancel}`: `enable_eth_with_tokens` run as a task.

use super::{eth_with_tokens, yes, EthWithTokensReq};
use crate::ctx::Ctx;
use crate::rpc::error::RpcError;
use crate::rpc::methods::Reply;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task kind of `task::enable_eth::*`.
const TASK: &str = "enable_eth";

#[derive(Deserialize)]
struct TaskInit {
    #[serde(default)]
    client_id: u64,
    #[serde(flatten)]
    req: EthWithTokensReq,
}

/// `task::enable_eth::init`: `enable_eth_with_tokens` as a task; answers `{"task_id"}` at once.
/// The params are checked before the task starts, so a bad request fails here.
pub async fn task_init(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let init: TaskInit = crate::rpc::methods::parse(params)?;
    let work_ctx = ctx.clone();
    let id = ctx.tasks.spawn(
        TASK,
        init.client_id,
        json!("ActivatingCoin"),
        move |_| async move {
            eth_with_tokens(&work_ctx, init.req)
                .await
                .map_err(|e| e.task_details())
        },
    );
    Ok(Reply::Json(json!({ "task_id": id })))
}

#[derive(Deserialize)]
struct TaskStatus {
    task_id: u64,
    #[serde(default = "yes")]
    forget_if_finished: bool,
}

fn task_error(id: u64, on_cancel: bool, e: crate::tasks::TaskError) -> RpcError {
    match e {
        crate::tasks::TaskError::NoSuchTask(_) => {
            crate::rpc::kdf_errors::no_such_task(id, on_cancel)
        }
        crate::tasks::TaskError::Finished => crate::rpc::kdf_errors::task_finished(id),
    }
}

/// `task::enable_eth::status`.
pub async fn task_status(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: TaskStatus = crate::rpc::methods::parse(params)?;
    let status = ctx
        .tasks
        .status(TASK, req.task_id, req.forget_if_finished)
        .map_err(|e| task_error(req.task_id, false, e))?;
    Ok(Reply::Json(status.to_json()))
}

#[derive(Deserialize)]
struct TaskCancel {
    task_id: u64,
}

/// `task::enable_eth::cancel`: drops the activation (its reservations are freed).
pub async fn task_cancel(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: TaskCancel = crate::rpc::methods::parse(params)?;
    ctx.tasks
        .cancel(TASK, req.task_id)
        .map_err(|e| task_error(req.task_id, true, e))?;
    Ok(Reply::Json(json!("success")))
}
