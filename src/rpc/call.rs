//! The step every dialect shares below its envelope: admit the caller (local-only, then
//! userpass), then call the handler. `dispatch` (legacy, mmrpc 2.0) and `jsonrpc` both end here,
//! so neither calls back into the other.

use super::answer::{to_raw, Answer, Body};
use super::auth::{self, Caller};
use super::error::RpcError;
use super::methods::{Method, Reply};
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde::Serialize;
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

/// The envelope a handler's success goes into.
#[derive(Debug, Clone, Copy)]
pub enum Envelope {
    /// Legacy: the reply is the body.
    Legacy,
    /// mmrpc 2.0: `{"mmrpc": "2.0", "result": <reply>, "id": <id>}`.
    V2(Option<u64>),
}

/// mmrpc 2.0's success envelope, written around a result as it is (tree or rendered text).
#[derive(Serialize)]
struct V2Ok<'a, T: ?Sized> {
    mmrpc: &'static str,
    result: &'a T,
    id: Option<u64>,
}

/// Turns a handler's reply into an answer in its envelope.
pub fn reply_answer(reply: Reply, envelope: Envelope) -> Answer {
    match (reply, envelope) {
        (Reply::Json(v), Envelope::Legacy) => Answer::json(StatusCode::OK, v),
        (Reply::Raw(r), Envelope::Legacy) => Answer::raw(StatusCode::OK, r),
        (Reply::Json(v), Envelope::V2(id)) => v2_ok(&v, id),
        (Reply::Raw(r), Envelope::V2(id)) => v2_ok(&*r, id),
        (Reply::Status(status, v), _) => Answer::json(status, v),
        (Reply::Text(t), _) => Answer {
            status: StatusCode::OK,
            body: Body::Text(t),
        },
    }
}

fn v2_ok<T: Serialize + ?Sized>(result: &T, id: Option<u64>) -> Answer {
    let ok = V2Ok {
        mmrpc: "2.0",
        result,
        id,
    };
    match to_raw(&ok) {
        Ok(text) => Answer::raw(StatusCode::OK, text),
        Err(e) => {
            let (status, v) = e.v2(id);
            Answer::json(status, v)
        }
    }
}
