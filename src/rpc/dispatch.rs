//! The envelope step: one request object → one answer. It reads the dialect once and hands the
//! item to its processor: legacy and mmrpc 2.0 here, JSON-RPC 2.0 in `jsonrpc`. Every processor
//! ends in `call` (admit, then the handler), so the flow runs one way:
//! `dispatch → {jsonrpc, call} → auth`. Batches call this once per item.

use super::answer::{kind_of, Answer, Dialect};
use super::auth::Caller;
use super::call::{call, no_such_method, reply_answer, Envelope};
use super::error::RpcError;
use super::methods;
use crate::ctx::Ctx;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

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
    let dialect = Dialect::of(&item);
    let Value::Object(obj) = item else {
        return Answer::legacy_error(&RpcError::NotAnObject(kind_of(&item)));
    };
    match dialect {
        Dialect::JsonRpc => super::jsonrpc::process(ctx, caller, obj).await,
        Dialect::MmRpc => v2(ctx, caller, obj).await,
        Dialect::Legacy => legacy(ctx, caller, obj).await,
    }
}

/// A legacy item; a method the legacy table lacks is retried as mmrpc 2.0 (KDF 2.5).
async fn legacy(ctx: &Arc<Ctx>, caller: &Caller, mut obj: Map<String, Value>) -> Answer {
    let Some(m) = obj
        .get("method")
        .and_then(Value::as_str)
        .and_then(methods::legacy)
    else {
        obj.insert("mmrpc".into(), json!("2.0"));
        return v2(ctx, caller, obj).await;
    };
    tracing::trace!(method = m.name, "legacy item");
    let userpass = obj.get("userpass").cloned();
    match call(ctx, caller, m, userpass.as_ref(), Value::Object(obj)).await {
        Ok(reply) => reply_answer(reply, Envelope::Legacy),
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
        return fail(no_such_method(ctx, caller, userpass.as_ref()).await, id);
    };
    match call(ctx, caller, m, userpass.as_ref(), req.params).await {
        Ok(reply) => reply_answer(reply, Envelope::V2(id)),
        Err(e) => fail(e, id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Sources};
    use hyper::StatusCode;

    fn ctx(extra: Value) -> Arc<Ctx> {
        // Each context locks its own dbdir (one daemon per dbdir); the directory outlives the test.
        let db = Box::leak(Box::new(tempfile::tempdir().expect("dbdir")));
        let mut conf = json!({"rpc_password": "Rpc!Secret42x", "coins": [], "auth_fail_delay_ms": 0,
            "dbdir": db.path()});
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
