//! The JSON-RPC 2.0 dialect (a kdfd extension): items with `"jsonrpc": "2.0"` call the same
//! methods as KDF's envelopes, with `params` as an object, `id` matching, standard error codes,
//! notifications, and the userpass in `params.userpass` or an `Authorization` header.

use super::answer::{kind_of, to_raw, Answer, Body, Json};
use super::auth::Caller;
use super::call::{call, no_such_method};
use super::error::RpcError;
use super::methods::{self, Method, Reply};
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// JSON-RPC's success envelope, written around a result as it is (tree or rendered text).
#[derive(Serialize)]
struct Success<'a> {
    jsonrpc: &'static str,
    id: &'a Option<Value>,
    result: &'a Json,
}

/// A JSON-RPC 2.0 error answer (or nothing, for a notification).
fn error(id: &Option<Value>, e: &RpcError) -> Answer {
    match id {
        None => Answer {
            status: StatusCode::NO_CONTENT,
            body: Body::Nothing,
        },
        Some(id) => Answer::json(StatusCode::OK, e.jsonrpc(id.clone())),
    }
}

/// The -32700 answer to a body that is not JSON, when it looks like JSON-RPC.
pub fn parse_error(message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("Parse error: {message}")}})
}

/// Answers one JSON-RPC 2.0 item.
pub async fn process(ctx: &Arc<Ctx>, caller: &Caller, mut obj: Map<String, Value>) -> Answer {
    // An id of a type JSON-RPC does not allow is answered with a null id, as the spec says.
    let id = match obj.remove("id") {
        None => None,
        Some(v @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(v),
        Some(_) => {
            return error(
                &Some(Value::Null),
                &RpcError::InvalidRequest("id must be a string, a number or null".into()),
            )
        }
    };
    if obj.get("jsonrpc") != Some(&json!("2.0")) {
        let e = RpcError::InvalidRequest("jsonrpc must be exactly \"2.0\"".into());
        return error(&id.or(Some(Value::Null)), &e);
    }
    let name = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => {
            let e = RpcError::InvalidRequest("method must be a string".into());
            return error(&id.or(Some(Value::Null)), &e);
        }
    };
    let mut params = match obj.remove("params") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(other) => {
            let e = RpcError::InvalidParams(format!(
                "params must be an object of named parameters, got {}",
                kind_of(&other)
            ));
            return error(&id, &e);
        }
    };
    if let Some(extra) = obj.keys().find(|k| *k != "jsonrpc") {
        let e = RpcError::InvalidRequest(format!("unknown member '{extra}'"));
        return error(&id, &e);
    }
    let userpass = params.remove("userpass").or_else(|| {
        caller
            .header_userpass
            .as_deref()
            .map(|p| Value::String(p.to_string()))
    });
    let answer = run(ctx, caller, &name, params, userpass).await;
    let ok = answer.and_then(|result| {
        to_raw(&Success {
            jsonrpc: "2.0",
            id: &id,
            result: &result,
        })
    });
    let answer = match ok {
        Ok(text) => Answer::raw(StatusCode::OK, text),
        Err(e) => error(&id, &e),
    };
    if id.is_none() {
        // A notification runs, but gets no slot.
        return Answer {
            status: StatusCode::NO_CONTENT,
            body: Body::Nothing,
        };
    }
    answer
}

async fn run(
    ctx: &Arc<Ctx>,
    caller: &Caller,
    name: &str,
    params: Map<String, Value>,
    userpass: Option<Value>,
) -> Result<Json, RpcError> {
    // The legacy table takes top-level fields, which are exactly the named params.
    let (method, input): (&'static Method, Value) = if let Some(m) = methods::legacy(name) {
        let mut req = params;
        req.insert("method".into(), json!(name));
        (m, Value::Object(req))
    } else if let Some(m) = methods::v2(name) {
        let input = if params.is_empty() {
            Value::Null
        } else {
            Value::Object(params)
        };
        (m, input)
    } else {
        return Err(no_such_method(ctx, caller, userpass.as_ref()).await);
    };
    match call(ctx, caller, method, userpass.as_ref(), input).await? {
        Reply::Json(v) => Ok(Json::Tree(v)),
        Reply::Raw(r) => Ok(Json::Text(r)),
        Reply::Status(status, v) if status.is_success() => Ok(Json::Tree(v)),
        Reply::Status(_, v) => Err(status_error(v)),
        Reply::Text(t) => Ok(Json::Tree(Value::String(t))),
    }
}

/// A handler's own error body (KDF's `disable_coin`) as a JSON-RPC error.
fn status_error(body: Value) -> RpcError {
    let msg = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("request failed");
    match msg.strip_prefix("No such coin: ") {
        Some(coin) => RpcError::NoSuchCoin(coin.to_string()),
        None => RpcError::Internal(msg.to_string()),
    }
}
