//! Coin methods: `electrum` (activation), `my_balance`, `get_enabled_coins`, `disable_coin`.

use super::field::{self, no_params, with_coin};
use super::{Reply, RpcError};
use crate::coins::utxo::{self, UtxoActivation};
use crate::coins::{parse_address_format, Coin};
use crate::ctx::Ctx;
use crate::electrum::ServerSpec;
use hyper::StatusCode;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// What `electrum` reads before the coin's own fields: whether the request sets `mm2` (KDF looks
/// the coin up before it parses its servers).
#[derive(Deserialize)]
struct ElectrumHead {
    #[serde(default)]
    mm2: Option<IgnoredAny>,
}

/// The rest of an `electrum` request (legacy: the whole object, so unknown keys are allowed).
#[derive(Deserialize)]
struct ElectrumReq {
    #[serde(default, deserialize_with = "field::servers")]
    servers: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "field::min_connected")]
    min_connected: Option<u64>,
    #[serde(default, deserialize_with = "field::max_connected")]
    max_connected: Option<u64>,
    #[serde(default, deserialize_with = "field::required_confirmations")]
    required_confirmations: Option<u64>,
    #[serde(default, deserialize_with = "field::requires_notarization")]
    requires_notarization: Option<bool>,
    /// Checked, not used: kdfd keeps no legacy history switch.
    #[serde(default, rename = "tx_history", deserialize_with = "field::tx_history")]
    tx_history: Option<bool>,
    #[serde(default)]
    address_format: Option<Value>,
}

#[derive(Serialize)]
struct ElectrumAnswer<'a> {
    result: &'static str,
    address: &'a str,
    balance: String,
    unspendable_balance: &'static str,
    coin: &'a str,
    required_confirmations: u64,
    requires_notarization: bool,
    mature_confirmations: u64,
}

/// `electrum`: activates a UTXO coin against the given Electrum servers.
pub async fn electrum(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let (ticker, head): (String, ElectrumHead) = with_coin(&req)?;
    let mm2_in_request = head.mm2.is_some();
    if let Some(why) = ctx.registry.refusal(&ticker) {
        return Err(RpcError::CoinConfig(format!(
            "Coin {ticker} is listed in the coins file but not supported: {why}"
        )));
    }
    let conf = match ctx.registry.get(&ticker) {
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
    let r: ElectrumReq = super::parse_ref(&req)?;
    let servers = r
        .servers
        .ok_or_else(|| {
            RpcError::InvalidParams("'servers': invalid type: null, expected a sequence".into())
        })?
        .iter()
        .map(|s| ServerSpec::from_json(s, ctx.config.limits.electrum_timeout))
        .collect::<Result<_, _>>()
        .map_err(RpcError::InvalidParams)?;
    let to_usize = |v: Option<u64>| v.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let activation = UtxoActivation {
        servers,
        min_connected: to_usize(r.min_connected),
        max_connected: to_usize(r.max_connected),
        required_confirmations: r.required_confirmations,
        requires_notarization: r.requires_notarization,
        format: parse_address_format(r.address_format.as_ref()).map_err(RpcError::InvalidParams)?,
        hd: Default::default(),
        // History pages need the tip: read with the first balance (same array), it is known
        // before the first `my_tx_history` (and kept current by header notifications).
        want_tip: r.tx_history.unwrap_or(false),
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
    if r.tx_history.unwrap_or(false) {
        ctx.history.start(coin.clone());
    }
    Reply::json(&ElectrumAnswer {
        result: "success",
        address: &coin.address,
        balance,
        unspendable_balance: "0",
        coin: &ticker,
        required_confirmations: coin.required_confirmations,
        requires_notarization: coin.requires_notarization,
        mature_confirmations: conf.mature_confirmations,
    })
}

#[derive(Serialize)]
struct BalanceAnswer<'a> {
    coin: &'a str,
    balance: String,
    unspendable_balance: &'static str,
    address: String,
}

/// `my_balance`: the wallet balance of an active coin.
pub async fn my_balance(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let (ticker, IgnoredAny): (String, IgnoredAny) = with_coin(&req)?;
    let coin = ctx
        .coins
        .get_coin(&ticker)
        .ok_or(RpcError::NoSuchCoin(ticker))?;
    let balance = match &coin {
        Coin::Utxo(c) => c.balance().await.map_err(RpcError::Electrum)?,
        Coin::Evm(c) => c.balance().await?,
    };
    Reply::json(&BalanceAnswer {
        coin: coin.ticker(),
        balance,
        unspendable_balance: "0",
        address: coin.address(),
    })
}

/// A legacy answer's `{"result": ...}`.
#[derive(Serialize)]
struct LegacyResult<T> {
    result: T,
}

#[derive(Serialize)]
struct CoinsList<'a> {
    coins: Vec<Enabled<'a>>,
}

/// One active coin; the legacy listing adds its address.
#[derive(Serialize)]
struct Enabled<'a> {
    ticker: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
}

/// Legacy `get_enabled_coins`: tickers with addresses, in activation order.
pub async fn get_enabled_coins(ctx: Arc<Ctx>, _req: Value) -> Result<Reply, RpcError> {
    let coins = ctx.coins.list_all();
    let result: Vec<Enabled> = coins
        .iter()
        .map(|c| Enabled {
            ticker: c.ticker(),
            address: Some(c.address()),
        })
        .collect();
    Reply::json(&LegacyResult { result })
}

/// v2 `get_enabled_coins`: `{"coins": [{"ticker"}]}`; `params` absent, null or `{}`.
pub async fn get_enabled_coins_v2(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    no_params("get_enabled_coins", &params)?;
    let coins = ctx.coins.list_all();
    let list: Vec<Enabled> = coins
        .iter()
        .map(|c| Enabled {
            ticker: c.ticker(),
            address: None,
        })
        .collect();
    Reply::json(&CoinsList { coins: list })
}

/// The rest of a `disable_coin` request.
#[derive(Deserialize)]
struct DisableReq {
    /// Checked, not used: kdfd has no orders or swaps a forced disable would cancel.
    #[serde(
        default,
        rename = "force_disable",
        deserialize_with = "field::force_disable"
    )]
    _force_disable: Option<bool>,
}

#[derive(Serialize)]
struct Disabled<'a> {
    coin: &'a str,
    cancelled_orders: [&'static str; 0],
    passivized: bool,
}

/// `disable_coin`: deactivates a coin (an EVM platform takes its tokens with it); KDF's 500 body
/// when it is not active.
pub async fn disable_coin(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let (ticker, DisableReq { .. }): (String, DisableReq) = with_coin(&req)?;
    match ctx.coins.remove(&ticker) {
        Some(coin) => {
            ctx.history.stop(&ticker);
            tracing::info!(coin = ticker, "coin disabled");
            Reply::json(&LegacyResult {
                result: Disabled {
                    coin: coin.ticker(),
                    cancelled_orders: [],
                    passivized: false,
                },
            })
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
