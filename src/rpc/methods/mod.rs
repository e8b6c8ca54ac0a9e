//! The dispatch tables: every RPC method kdfd answers, legacy and mmrpc 2.0. Adding a method is
//! one handler function plus one line here.

mod activation;
mod address;
mod coins;
mod evm;
mod field;
mod hd;
mod history;
mod market;
mod node;
mod send;
mod stream;
pub mod tasks;
mod wallet;

use super::error::RpcError;
use crate::ctx::Ctx;
use hyper::StatusCode;
use serde_json::value::RawValue;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler answers on success.
pub enum Reply {
    /// JSON: the legacy body, or the v2 `result`.
    Json(Value),
    /// The same, already rendered from a typed answer (no `Value` tree is built or dropped).
    Raw(Box<RawValue>),
    /// A plain-text body (`help`); `null` in a batch.
    Text(String),
    /// A body with its own status, sent as is in both envelopes (KDF's `disable_coin` errors).
    Status(StatusCode, Value),
}

impl Reply {
    /// A typed answer as JSON.
    pub fn json<T: serde::Serialize>(answer: &T) -> Result<Reply, RpcError> {
        serde_json::value::to_raw_value(answer)
            .map(Reply::Raw)
            .map_err(|e| RpcError::Internal(e.to_string()))
    }
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
    // sending and address tools (addr helper)
    method!("validateaddress",      private, ReadsCoin, None, address::validateaddress),
    method!("convertaddress",       private, ReadsCoin, None, address::convertaddress),
    method!("show_priv_key",        private, ReadsCoin, None, address::show_priv_key),
    method!("withdraw",             private, ReadsCoin, None, send::withdraw),
    method!("send_raw_transaction", private, ReadsCoin, None, send::send_raw_transaction),
    // evm (evmrpc helper)
    method!("enable",            private, Activates,   Some(500), evm::enable),
    // history (hist)
    method!("my_tx_history",     private, ReadsCoin,   None,      history::my_tx_history),
    // orders and swaps: kdfd makes none, so both are truthfully empty
    method!("my_orders",         private, None,        None,      market::my_orders),
    method!("my_recent_swaps",   private, None,        None,      market::my_recent_swaps),
];

/// Methods answered with `"mmrpc": "2.0"` (and, by fallback, without it when legacy lacks them).
#[rustfmt::skip]
static V2: &[Method] = &[
    method!("get_enabled_coins", private, ReadsAll,    None,      coins::get_enabled_coins_v2),
    // wallets and HD (lead)
    method!("get_wallet_names",  private, None,        None,      wallet::get_wallet_names),
    method!("get_mnemonic",      private, None,        Some(4),   wallet::get_mnemonic),
    method!("change_mnemonic_password", private, None, Some(1),   wallet::change_mnemonic_password),
    method!("delete_wallet",     private, None,        Some(1),   wallet::delete_wallet),
    method!("task::enable_utxo::init",        private, Activates, Some(500), activation::init),
    method!("task::enable_utxo::status",      private, None,      None,      activation::status),
    method!("task::enable_utxo::cancel",      private, None,      None,      activation::cancel),
    method!("task::enable_utxo::user_action", private, None,      None,      activation::user_action),
    method!("task::account_balance::init",    private, ReadsCoin, None,      hd::init),
    method!("task::account_balance::status",  private, None,      None,      hd::status),
    method!("task::account_balance::cancel",  private, None,      None,      hd::cancel),
    method!("get_new_address",   private, ReadsCoin,   None,      hd::get_new_address),
    // sending and address tools (addr helper)
    method!("convert_utxo_address",     private, ReadsCoin, None, address::convert_utxo_address),
    method!("sign_message",             private, ReadsCoin, None, address::sign_message),
    method!("verify_message",           private, ReadsCoin, None, address::verify_message),
    method!("get_public_key",           private, None,      None, address::get_public_key),
    method!("get_public_key_hash",      private, None,      None, address::get_public_key_hash),
    method!("withdraw",                 private, ReadsCoin, None, send::withdraw),
    method!("task::withdraw::init",     private, ReadsCoin, None, send::init),
    method!("task::withdraw::status",   private, None,      None, send::status),
    method!("task::withdraw::cancel",   private, None,      None, send::cancel),
    method!("get_raw_transaction",      private, ReadsCoin, None, send::get_raw_transaction),
    // stream (sse)
    method!("stream::balance::enable",         private, ReadsCoin, None, stream::balance_enable),
    method!("stream::tx_history::enable",      private, ReadsCoin, None, stream::tx_history_enable),
    method!("stream::heartbeat::enable",       private, None,      None, stream::heartbeat_enable),
    method!("stream::shutdown_signal::enable", private, None,      None, stream::shutdown_signal_enable),
    method!("stream::disable",                 private, None,      None, stream::disable),
    // evm (evmrpc helper)
    method!("enable_eth_with_tokens", private, Activates, Some(500), evm::enable_eth_with_tokens),
    method!("enable_erc20",      private, Activates,   Some(500), evm::enable_erc20),
    method!("task::enable_eth::init",   private, Activates, Some(500), evm::task_init),
    method!("task::enable_eth::status", private, None,      None,      evm::task_status),
    method!("task::enable_eth::cancel", private, None,      None,      evm::task_cancel),
    // history (hist)
    method!("my_tx_history",     private, ReadsCoin,   None,      history::my_tx_history_v2),
    method!("my_recent_swaps",   private, None,        None,      market::my_recent_swaps_v2),
];

/// Starts the coin's background history sync (`tx_history: true`).
pub fn start_history(ctx: &Ctx, coin: &Arc<crate::coins::utxo::UtxoCoin>) {
    ctx.history.start(coin.clone());
}

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
pub fn find(dialect: super::answer::Dialect, name: &str) -> Option<&'static Method> {
    match dialect {
        super::answer::Dialect::MmRpc => v2(name),
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

/// `parse` without taking the params: for a legacy request a handler also keeps whole (the
/// activation request stored for atomic rollback).
pub fn parse_ref<T: serde::de::DeserializeOwned>(params: &Value) -> Result<T, RpcError> {
    T::deserialize(params).map_err(|e| RpcError::InvalidParams(e.to_string()))
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
