//! The dispatch tables: every RPC method kdfd answers, legacy and mmrpc 2.0. Adding a method is
//! one handler function plus one line here.

mod coins;
mod node;

use super::error::RpcError;
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler answers on success.
pub enum Reply {
    /// JSON: the legacy body, or the v2 `result`.
    Json(Value),
    /// A plain-text body (`help`); `null` in a batch.
    Text(String),
    /// A body with its own status, sent as is in both envelopes (KDF's `disable_coin` errors).
    Status(StatusCode, Value),
}

/// The future a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, RpcError>> + Send>>;

/// A handler gets the whole request object (legacy) or its `params` (v2).
pub type Handler = fn(Arc<Ctx>, Value) -> HandlerFuture;

/// A table entry.
pub struct Method {
    /// The `method` string.
    pub name: &'static str,
    /// Answered without a userpass (KDF's public methods).
    pub public: bool,
    /// The handler.
    pub handler: Handler,
}

impl Method {
    /// A stand-in for an unknown method: private, so auth runs before "No such method".
    pub fn private_probe() -> Method {
        Method {
            name: "",
            public: false,
            handler: |_, _| Box::pin(async { Err(RpcError::NoSuchMethod) }),
        }
    }
}

macro_rules! method {
    ($name:literal, $public:literal, $f:path) => {
        Method {
            name: $name,
            public: $public,
            handler: |ctx, req| Box::pin($f(ctx, req)),
        }
    };
}

/// Methods answered without `mmrpc`.
static LEGACY: &[Method] = &[
    method!("version", true, node::version),
    method!("help", true, node::help),
    method!("stop", false, node::stop),
    method!("electrum", false, coins::electrum),
    method!("my_balance", false, coins::my_balance),
    method!("get_enabled_coins", false, coins::get_enabled_coins),
    method!("disable_coin", false, coins::disable_coin),
];

/// Methods answered with `"mmrpc": "2.0"` (and, by fallback, without it when legacy lacks them).
static V2: &[Method] = &[method!(
    "get_enabled_coins",
    false,
    coins::get_enabled_coins_v2
)];

/// Looks up a legacy method.
pub fn legacy(name: &str) -> Option<&'static Method> {
    LEGACY.iter().find(|m| m.name == name)
}

/// Looks up an mmrpc 2.0 method.
pub fn v2(name: &str) -> Option<&'static Method> {
    V2.iter().find(|m| m.name == name)
}

/// Every method name, for `help`.
pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
    LEGACY
        .iter()
        .map(|m| ("legacy", m.name))
        .chain(V2.iter().map(|m| ("mmrpc 2.0", m.name)))
}

/// A required string field of a legacy request, with KDF's `No '<field>' field` error.
pub fn required_str<'a>(req: &'a Value, field: &str) -> Result<&'a str, RpcError> {
    match req.get(field) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(RpcError::InvalidParams(format!("No '{field}' field"))),
        Some(v) => Err(RpcError::InvalidParams(format!(
            "'{field}' must be a string, got {v}"
        ))),
    }
}
