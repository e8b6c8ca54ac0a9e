//! One request object → one answer: envelope detection (legacy or mmrpc 2.0), the local-only and
//! userpass checks, the method lookup and the handler call. Batches call this once per item.

use super::error::RpcError;
use super::methods::{self, Method, Reply};
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// What a single request answers: a status and a JSON or plain-text body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status when answered alone (dropped inside a batch, as KDF does).
    pub status: StatusCode,
    /// The body.
    pub body: Body,
}

/// An answer body.
#[derive(Debug)]
pub enum Body {
    /// JSON: the batch slot is this value.
    Json(Value),
    /// Plain text (`help`): the batch slot is `null`.
    Text(String),
    /// A JSON-RPC 2.0 notification: no slot at all.
    Nothing,
}

/// The three request dialects kdfd answers, each in its own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// KDF's legacy envelope: no `mmrpc`.
    Legacy,
    /// KDF's `"mmrpc": "2.0"` envelope.
    MmRpc,
    /// JSON-RPC 2.0 (`"jsonrpc"` present): a kdfd extension.
    JsonRpc,
}

impl Dialect {
    /// The dialect an item asks for.
    pub fn of(item: &Value) -> Dialect {
        if item.get("jsonrpc").is_some() {
            Dialect::JsonRpc
        } else if item.get("mmrpc").is_some_and(|v| !v.is_null()) {
            Dialect::MmRpc
        } else {
            Dialect::Legacy
        }
    }
}

/// What the edge reads of an item once, whatever its dialect: batches, atomic batches and the
/// time-out answer all use this, so they agree on what `coin` is.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The envelope.
    pub dialect: Dialect,
    /// `method`, when a string.
    pub method: Option<&'a str>,
    /// Legacy `coin`; v2 and JSON-RPC `params.coin` or `params.ticker`.
    pub coin: Option<&'a str>,
    /// The item's `userpass` (JSON-RPC: inside `params`).
    pub userpass: Option<&'a Value>,
}

impl<'a> Head<'a> {
    /// Reads the head of an item.
    pub fn of(item: &'a Value) -> Head<'a> {
        let dialect = Dialect::of(item);
        let method = item.get("method").and_then(Value::as_str);
        let params = item.get("params");
        let coin_in = |v: Option<&'a Value>| {
            v.and_then(|v| v.get("coin").or_else(|| v.get("ticker")))
                .and_then(Value::as_str)
        };
        let (coin, userpass) = match dialect {
            Dialect::Legacy => (
                item.get("coin").and_then(Value::as_str),
                item.get("userpass"),
            ),
            Dialect::MmRpc => (coin_in(params), item.get("userpass")),
            Dialect::JsonRpc => (coin_in(params), params.and_then(|p| p.get("userpass"))),
        };
        Head {
            dialect,
            method,
            coin,
            userpass,
        }
    }
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: StatusCode, v: Value) -> Answer {
        Answer {
            status,
            body: Body::Json(v),
        }
    }

    /// A legacy error answer.
    pub fn legacy_error(e: &RpcError) -> Answer {
        let (status, v) = e.legacy();
        Answer::json(status, v)
    }

    /// An error answer in the dialect of `item`.
    pub fn error_for(item: &Value, e: &RpcError) -> Answer {
        Answer::error_in(Dialect::of(item), item.get("id").cloned(), e)
    }

    /// An error answer in a dialect; `id` is the request's `id` member, if it had one.
    pub fn error_in(dialect: Dialect, id: Option<Value>, e: &RpcError) -> Answer {
        match dialect {
            Dialect::Legacy => Answer::legacy_error(e),
            Dialect::MmRpc => {
                let (status, v) = e.v2(id.as_ref().and_then(Value::as_u64));
                Answer::json(status, v)
            }
            // No `id` member: a notification, which gets no answer even when it fails.
            Dialect::JsonRpc => match id {
                None => Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Body::Nothing,
                },
                // JSON-RPC allows string, number or null ids; any other is answered as null.
                Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => {
                    Answer::json(StatusCode::OK, e.jsonrpc(id))
                }
                Some(_) => Answer::json(StatusCode::OK, e.jsonrpc(Value::Null)),
            },
        }
    }

    /// The batch slot of this answer; `None` for a notification.
    pub fn into_slot(self) -> Option<Value> {
        match self.body {
            Body::Json(v) => Some(v),
            Body::Text(_) => Some(Value::Null),
            Body::Nothing => None,
        }
    }
}

/// Who sent the request, for the local-only and brute-force checks.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The TCP peer address.
    pub ip: IpAddr,
    /// Shared by the items of one HTTP request, so a batch counts as one attempt.
    pub attempt: Arc<crate::guard::Attempt>,
    /// The password of an `Authorization` header (JSON-RPC 2.0 items only).
    pub header_userpass: Option<Arc<str>>,
}

impl Caller {
    /// A caller for one new HTTP request.
    pub fn new(ip: IpAddr, header_userpass: Option<String>) -> Caller {
        Caller {
            ip,
            attempt: Arc::default(),
            header_userpass: header_userpass.map(Arc::from),
        }
        .canonical()
    }

    /// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`; see them as IPv4, so
    /// `127.0.0.1` is loopback however the daemon listens.
    fn canonical(mut self) -> Caller {
        self.ip = self.ip.to_canonical();
        self
    }
}

/// The mmrpc 2.0 envelope; unknown keys are refused, as KDF does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct V2Request {
    #[allow(dead_code)]
    mmrpc: Value,
    userpass: Option<String>,
    method: String,
    #[serde(default)]
    params: Value,
    id: Option<u64>,
}

#[derive(Deserialize)]
enum MmRpcVersion {
    #[serde(rename = "2.0")]
    V2,
}

/// Answers one request object (or anything else found where one should be).
pub async fn process(ctx: &Arc<Ctx>, caller: &Caller, item: Value) -> Answer {
    let Value::Object(mut obj) = item else {
        return Answer::legacy_error(&RpcError::NotAnObject(kind_of(&item)));
    };
    if obj.contains_key("jsonrpc") {
        return super::jsonrpc::process(ctx, caller, obj).await;
    }
    if obj.get("mmrpc").is_some_and(|v| !v.is_null()) {
        return v2(ctx, caller, obj).await;
    }
    let legacy = obj
        .get("method")
        .and_then(Value::as_str)
        .and_then(methods::legacy);
    match legacy {
        Some(m) => legacy_call(ctx, caller, m, obj).await,
        None => {
            // KDF 2.5: a method the legacy table lacks is retried as mmrpc 2.0.
            obj.insert("mmrpc".into(), json!("2.0"));
            v2(ctx, caller, obj).await
        }
    }
}

/// A short name of a JSON value's type, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

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
    super::auth::check(ctx, caller, userpass).await
}

async fn legacy_call(
    ctx: &Arc<Ctx>,
    caller: &Caller,
    m: &'static Method,
    obj: Map<String, Value>,
) -> Answer {
    if let Err(e) = admit(ctx, caller, m, obj.get("userpass")).await {
        return Answer::legacy_error(&e);
    }
    tracing::trace!(method = m.name, "legacy item");
    match (m.handler)(ctx.clone(), Value::Object(obj)).await {
        Ok(reply) => reply_answer(reply, |v| v),
        Err(e) => {
            tracing::debug!(method = m.name, error = %e, "legacy item failed");
            Answer::legacy_error(&e)
        }
    }
}

async fn v2(ctx: &Arc<Ctx>, caller: &Caller, obj: Map<String, Value>) -> Answer {
    let raw_id = obj.get("id").and_then(Value::as_u64);
    let fail = |e: RpcError, id| {
        let (status, v) = e.v2(id);
        Answer::json(status, v)
    };
    let version = obj.get("mmrpc").cloned().unwrap_or(Value::Null);
    if let Err(e) = serde_json::from_value::<MmRpcVersion>(version) {
        return fail(RpcError::InvalidMmRpcVersion(e.to_string()), raw_id);
    }
    let req: V2Request = match serde_json::from_value(Value::Object(obj)) {
        Ok(r) => r,
        Err(e) => return fail(RpcError::InvalidRequest(e.to_string()), raw_id),
    };
    let id = req.id;
    let userpass = req.userpass.map(Value::String);
    let Some(m) = methods::v2(&req.method) else {
        // Auth first, so the method table is not probed without the password.
        let probe = Method::private_probe();
        return match admit(ctx, caller, &probe, userpass.as_ref()).await {
            Err(e) => fail(e, id),
            Ok(()) => fail(RpcError::NoSuchMethod, id),
        };
    };
    if let Err(e) = admit(ctx, caller, m, userpass.as_ref()).await {
        return fail(e, id);
    }
    match (m.handler)(ctx.clone(), req.params).await {
        Ok(reply) => reply_answer(
            reply,
            |result| json!({"mmrpc": "2.0", "result": result, "id": id}),
        ),
        Err(e) => fail(e, id),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Sources};

    fn ctx(extra: Value) -> Arc<Ctx> {
        let mut conf =
            json!({"rpc_password": "Rpc!Secret42x", "coins": [], "auth_fail_delay_ms": 0});
        if let (Some(c), Value::Object(e)) = (conf.as_object_mut(), extra) {
            c.extend(e);
        }
        let config = Config::from_json(&Sources::default(), &conf).expect("config");
        Arc::new(Ctx::new(config).expect("ctx"))
    }

    fn slot(a: Answer) -> Value {
        a.into_slot().unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn remote_clients_get_public_methods_only() {
        let remote = Caller::new("10.0.0.5".parse().unwrap(), None);
        let c = ctx(json!({}));
        let item = json!({"userpass": "Rpc!Secret42x", "method": "get_enabled_coins"});
        let a = process(&c, &remote, item.clone()).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            slot(a),
            json!({"error": "Selected method is not allowed: Selected method can only be called from localhost."})
        );
        let v2 = json!({"mmrpc": "2.0", "userpass": "Rpc!Secret42x", "method": "get_enabled_coins", "id": 1});
        let a = process(&c, &remote, v2.clone()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
        assert_eq!(slot(a)["error_type"], "LocalHostOnly");
        assert!(
            slot(process(&c, &remote, json!({"method": "version"})).await)["result"].is_string()
        );
        // With rpc_local_only off, the userpass decides.
        let open = ctx(json!({"rpc_local_only": false}));
        assert_eq!(
            slot(process(&open, &remote, item).await),
            json!({"result": []})
        );
    }

    #[tokio::test]
    async fn remote_lockout_applies_without_exemption() {
        let c = ctx(json!({"rpc_local_only": false, "auth_fail_threshold": 2}));
        let remote = || Caller::new("10.0.0.7".parse().unwrap(), None);
        let bad = json!({"userpass": "nope", "method": "get_enabled_coins"});
        for _ in 0..2 {
            assert!(slot(process(&c, &remote(), bad.clone()).await)["error"]
                .as_str()
                .unwrap()
                .contains("Userpass is invalid!"));
        }
        let good = json!({"userpass": "Rpc!Secret42x", "method": "get_enabled_coins"});
        let a = process(&c, &remote(), good.clone()).await;
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        // Another address is not affected.
        let other = Caller::new("10.0.0.8".parse().unwrap(), None);
        assert_eq!(slot(process(&c, &other, good).await), json!({"result": []}));
    }
}
