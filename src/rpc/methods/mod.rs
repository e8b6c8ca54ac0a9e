//! The dispatch tables: every RPC method kdfd answers, legacy and mmrpc 2.0. Adding a method is
//! one handler function plus one line here.

mod coins;
mod history;
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

/// What a method does to the set of active coins: batches order items by it, atomic batches undo
/// by it. This is the only list of which method touches which coin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Touches no coin.
    None,
    /// Reads (or uses) the coin it names.
    ReadsCoin,
    /// Activates the coin it names; undone by deactivating it.
    Activates,
    /// Deactivates the coin it names; undone by re-activating it with its original request.
    Deactivates,
    /// Reads the whole set of active coins.
    ReadsAll,
    /// Stops the daemon; never part of an atomic batch.
    Stops,
}

impl Effect {
    /// Whether the method needs a `coin` (legacy) or `params.coin`/`params.ticker` (v2).
    pub fn names_coin(self) -> bool {
        matches!(
            self,
            Effect::ReadsCoin | Effect::Activates | Effect::Deactivates
        )
    }
}

/// A table entry.
pub struct Method {
    /// The `method` string.
    pub name: &'static str,
    /// Answered without a userpass (KDF's public methods).
    pub public: bool,
    /// What it does to coin state.
    pub effect: Effect,
    /// Default per-batch cap (`batch_method_caps` in the config overrides it).
    pub cap: Option<usize>,
    /// The handler.
    pub handler: Handler,
}

impl Method {
    /// A stand-in for an unknown method: private, so auth runs before "No such method".
    pub fn private_probe() -> Method {
        Method {
            name: "",
            public: false,
            effect: Effect::None,
            cap: None,
            handler: |_, _| Box::pin(async { Err(RpcError::NoSuchMethod) }),
        }
    }
}

/// `method!(name, public|private, effect, cap, handler)`: one table line per method.
macro_rules! method {
    ($name:literal, public, $effect:ident, $cap:expr, $f:path) => {
        method!(@ $name, true, $effect, $cap, $f)
    };
    ($name:literal, private, $effect:ident, $cap:expr, $f:path) => {
        method!(@ $name, false, $effect, $cap, $f)
    };
    (@ $name:literal, $public:literal, $effect:ident, $cap:expr, $f:path) => {
        Method {
            name: $name,
            public: $public,
            effect: Effect::$effect,
            cap: $cap,
            handler: |ctx, req| Box::pin($f(ctx, req)),
        }
    };
}

/// Methods answered without `mmrpc`.
#[rustfmt::skip]
static LEGACY: &[Method] = &[
    method!("version",           public,  None,        None,      node::version),
    method!("help",              public,  None,        None,      node::help),
    method!("stop",              private, Stops,       Some(1),   node::stop),
    method!("electrum",          private, Activates,   Some(500), coins::electrum),
    method!("my_balance",        private, ReadsCoin,   None,      coins::my_balance),
    method!("get_enabled_coins", private, ReadsAll,    None,      coins::get_enabled_coins),
    method!("disable_coin",      private, Deactivates, Some(500), coins::disable_coin),
    // history (hist)
    method!("my_tx_history",     private, ReadsCoin,   None,      history::my_tx_history),
];

/// Methods answered with `"mmrpc": "2.0"` (and, by fallback, without it when legacy lacks them).
#[rustfmt::skip]
static V2: &[Method] = &[
    method!("get_enabled_coins", private, ReadsAll,    None,      coins::get_enabled_coins_v2),
    // history (hist)
    method!("my_tx_history",     private, ReadsCoin,   None,      history::my_tx_history_v2),
];

/// Looks up a legacy method.
pub fn legacy(name: &str) -> Option<&'static Method> {
    LEGACY.iter().find(|m| m.name == name)
}

/// Looks up an mmrpc 2.0 method.
pub fn v2(name: &str) -> Option<&'static Method> {
    V2.iter().find(|m| m.name == name)
}

/// The entry an item of `dialect` reaches: legacy first (falling back to v2, as KDF 2.5 does),
/// v2 only for mmrpc items.
pub fn find(dialect: super::dispatch::Dialect, name: &str) -> Option<&'static Method> {
    match dialect {
        super::dispatch::Dialect::MmRpc => v2(name),
        _ => legacy(name).or_else(|| v2(name)),
    }
}

/// Every method name, for `help`.
pub fn names() -> impl Iterator<Item = (&'static str, &'static str)> {
    LEGACY
        .iter()
        .map(|m| ("legacy", m.name))
        .chain(V2.iter().map(|m| ("mmrpc 2.0", m.name)))
}

/// A method's params as its typed request; serde's text becomes the `InvalidRequest` answer.
/// `null` params read as `{}`, so zero-argument methods accept `"params": null`.
pub fn parse<T: serde::de::DeserializeOwned>(params: Value) -> Result<T, RpcError> {
    let params = match params {
        Value::Null => Value::Object(Default::default()),
        v => v,
    };
    serde_json::from_value(params).map_err(|e| RpcError::InvalidParams(e.to_string()))
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
