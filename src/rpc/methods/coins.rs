//! Coin methods: `electrum` (activation), `my_balance`, `get_enabled_coins`, `disable_coin`.

use super::{required_str, Reply, RpcError};
use crate::coins::utxo::{self, UtxoActivation};
use crate::coins::{parse_address_format, Coin};
use crate::ctx::Ctx;
use crate::electrum::ServerSpec;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

fn opt_u64(req: &Value, key: &str) -> Result<Option<u64>, RpcError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RpcError::InvalidParams(format!("'{key}': invalid type: {v}, expected u64"))
        }),
    }
}

fn opt_bool(req: &Value, key: &str) -> Result<Option<bool>, RpcError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(RpcError::InvalidParams(format!(
            "'{key}': invalid type: {v}, expected a boolean"
        ))),
    }
}

/// The server list of an activation request.
fn servers(ctx: &Ctx, req: &Value) -> Result<Vec<ServerSpec>, RpcError> {
    let list = match req.get("servers") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => {
            return Err(RpcError::InvalidParams(
                "'servers': invalid type: null, expected a sequence".into(),
            ))
        }
        Some(v) => {
            return Err(RpcError::InvalidParams(format!(
                "'servers': invalid type: {v}, expected a sequence"
            )))
        }
    };
    list.iter()
        .map(|s| ServerSpec::from_json(s, ctx.config.limits.electrum_timeout))
        .collect::<Result<_, _>>()
        .map_err(RpcError::InvalidParams)
}

/// `electrum`: activates a UTXO coin against the given Electrum servers.
pub async fn electrum(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let ticker = required_str(&req, "coin")?;
    let mm2_in_request = req.get("mm2").is_some_and(|v| !v.is_null());
    let conf = match ctx.registry.get(ticker) {
        Some(c) if c.mm2 || mm2_in_request => c,
        None if mm2_in_request => {
            return Err(RpcError::CoinConfig(format!(
                "Coin {ticker} is not in the coins file: \"protocol\" field is missing in coins file"
            )))
        }
        _ => {
            return Err(RpcError::CoinConfig(format!(
                "mm2 param is not set neither in coins config nor enable request, assuming that coin is not supported (coin {ticker})"
            )))
        }
    };
    if conf.protocol != "UTXO" {
        return Err(RpcError::CoinConfig(format!(
            "Coin {ticker} has protocol {}; kdfd activates UTXO coins only",
            conf.protocol
        )));
    }
    let servers = servers(&ctx, &req)?;
    let tx_history = opt_bool(&req, "tx_history")?.unwrap_or(false);
    let to_usize = |v: Option<u64>| v.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let activation = UtxoActivation {
        servers,
        min_connected: to_usize(opt_u64(&req, "min_connected")?),
        max_connected: to_usize(opt_u64(&req, "max_connected")?),
        required_confirmations: opt_u64(&req, "required_confirmations")?,
        requires_notarization: opt_bool(&req, "requires_notarization")?,
        format: {
            parse_address_format(req.get("address_format")).map_err(RpcError::InvalidParams)?
        },
        hd: Default::default(),
        original: {
            let mut r = req.clone();
            if let Some(o) = r.as_object_mut() {
                o.remove("userpass");
            }
            r
        },
    };
    let keys = ctx.keys.as_ref().ok_or(RpcError::NoPassphrase)?;
    // kdfd extension: legacy activation works in HD mode too (KDF fails on `my_address`); the
    // answer's address is the enabled one.
    let coin = utxo::activate(&ctx.coin_env(), conf.clone(), keys, activation).await?;
    let balance = coin.balance().await.map_err(RpcError::Electrum)?;
    if tx_history {
        ctx.history.start(coin.clone());
    }
    let (required_confirmations, requires_notarization) =
        (coin.required_confirmations, coin.requires_notarization);
    Ok(Reply::Json(json!({
        "result": "success",
        "address": coin.address,
        "balance": balance,
        "unspendable_balance": "0",
        "coin": ticker,
        "required_confirmations": required_confirmations,
        "requires_notarization": requires_notarization,
        "mature_confirmations": conf.mature_confirmations,
    })))
}

/// `my_balance`: the wallet balance of an active coin.
pub async fn my_balance(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let ticker = required_str(&req, "coin")?;
    let coin = ctx
        .coins
        .get_coin(ticker)
        .ok_or_else(|| RpcError::NoSuchCoin(ticker.to_string()))?;
    let balance = match &coin {
        Coin::Utxo(c) => c.balance().await.map_err(RpcError::Electrum)?,
        Coin::Evm(c) => c.balance().await?,
    };
    Ok(Reply::Json(json!({
        "coin": coin.ticker(),
        "balance": balance,
        "unspendable_balance": "0",
        "address": coin.address(),
    })))
}

/// Legacy `get_enabled_coins`: tickers with addresses, in activation order.
pub async fn get_enabled_coins(ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    let list: Vec<Value> = ctx
        .coins
        .list_all()
        .iter()
        .map(|c| json!({"ticker": c.ticker(), "address": c.address()}))
        .collect();
    Ok(Reply::Json(json!({ "result": list })))
}

/// v2 `get_enabled_coins`: `{"coins": [{"ticker"}]}`; `params` absent, null or `{}`.
pub async fn get_enabled_coins_v2(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    match &params {
        Value::Null => {}
        Value::Object(m) if m.is_empty() => {}
        other => {
            return Err(RpcError::InvalidParams(format!(
                "get_enabled_coins takes no params, got {other}"
            )))
        }
    }
    let list: Vec<Value> = ctx
        .coins
        .list_all()
        .iter()
        .map(|c| json!({"ticker": c.ticker()}))
        .collect();
    Ok(Reply::Json(json!({ "coins": list })))
}

/// `disable_coin`: deactivates a coin (an EVM platform takes its tokens with it); KDF's 500 body
/// when it is not active.
pub async fn disable_coin(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let ticker = required_str(&req, "coin")?;
    opt_bool(&req, "force_disable")?;
    match ctx.coins.remove(ticker) {
        Some(coin) => {
            ctx.history.stop(ticker);
            tracing::info!(coin = ticker, "coin disabled");
            Ok(Reply::Json(json!({
                "result": {"coin": coin.ticker(), "cancelled_orders": [], "passivized": false}
            })))
        }
        None => Ok(Reply::Status(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({
                "error": format!("No such coin: {ticker}"),
                "orders": {"matching": [], "cancelled": []},
                "active_swaps": [],
            }),
        )),
    }
}
