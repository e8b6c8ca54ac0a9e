//! The step every dialect shares below its envelope: admit the caller (local-only, then
//! userpass), then call the handler. `dispatch` (legacy, mmrpc 2.0) and `jsonrpc` both end here,
//! so neither calls back into the other.

use super::answer::{Answer, Body};
use super::auth::{self, Caller};
use super::error::RpcError;
use super::methods::{Method, Reply};
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde_json::Value;
use std::sync::Arc;

/// Checks the caller may run `m` with the `userpass` given.
pub async fn admit(
    ctx: &Ctx,
    caller: &Caller,
    m: &Method,
    userpass: Option<&Value>,
) -> Result<(), RpcError> {
    if m.public {
        return Ok(());
    }
    if ctx.config.rpc_local_only && !caller.ip.is_loopback() {
        return Err(RpcError::LocalHostOnly);
    }
    auth::check(ctx, caller, userpass).await
}

/// Admits the caller for `m`, then runs its handler on `input`.
pub async fn call(
    ctx: &Arc<Ctx>,
    caller: &Caller,
    m: &'static Method,
    userpass: Option<&Value>,
    input: Value,
) -> Result<Reply, RpcError> {
    admit(ctx, caller, m, userpass).await?;
    (m.handler)(ctx.clone(), input).await
}

/// The error for a method no table has: auth runs first, so the tables cannot be probed
/// without the password.
pub async fn no_such_method(ctx: &Ctx, caller: &Caller, userpass: Option<&Value>) -> RpcError {
    match admit(ctx, caller, &Method::private_probe(), userpass).await {
        Err(e) => e,
        Ok(()) => RpcError::NoSuchMethod,
    }
}

/// Turns a handler's reply into an answer; `wrap` shapes a JSON success.
pub fn reply_answer(reply: Reply, wrap: impl FnOnce(Value) -> Value) -> Answer {
    match reply {
        Reply::Json(v) => Answer::json(StatusCode::OK, wrap(v)),
        Reply::Status(status, v) => Answer::json(status, v),
        Reply::Text(t) => Answer {
            status: StatusCode::OK,
            body: Body::Text(t),
        },
    }
}
