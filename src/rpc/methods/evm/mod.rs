//! EVM activation: legacy `enable` (ETH-type and ERC20 coins), mmrpc 2.0
//! `enable_eth_with_tokens` and `enable_erc20`. Balances, listings and `disable_coin` are the
//! shared handlers in `coins.rs`.

use super::{required_str, Reply, RpcError};
use crate::coins::evm::{
    activate_erc20, activate_eth, Erc20Source, EthActivation, EvmCoin, TokenActivation,
};
use crate::coins::CoinConf;
use crate::crypto::WalletKeys;
use crate::ctx::Ctx;
use crate::evm::address;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

mod task;
pub use task::{task_cancel, task_init, task_status};

/// KDF's H160 parse of swap contracts (impl-serde): 40 hex digits, `0x` optional, any case, no
/// checksum; the zero address is refused. kdfd checks it and uses it for nothing else yet.
fn swap_contract(field: &str, v: Option<&Value>, required: bool) -> Result<(), RpcError> {
    let expected = "a (both 0x-prefixed or not) hex string with length of 40";
    let s = match v {
        None | Some(Value::Null) if !required => return Ok(()),
        None | Some(Value::Null) => {
            return Err(RpcError::InvalidParams(format!(
                "invalid type: null, expected {expected}"
            )))
        }
        Some(Value::String(s)) => s,
        Some(other) => {
            return Err(RpcError::InvalidParams(format!(
                "'{field}': invalid type: {other}, expected {expected}"
            )))
        }
    };
    let hex = s.strip_prefix("0x").unwrap_or(s);
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(RpcError::InvalidParams(format!(
            "'{field}': invalid value {s:?}, expected {expected}"
        )));
    }
    if hex.chars().all(|c| c == '0') {
        return Err(RpcError::InvalidParams(format!(
            "{field} can't be zero address"
        )));
    }
    Ok(())
}

fn opt_u64(req: &Value, key: &str) -> Result<Option<u64>, RpcError> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            RpcError::InvalidParams(format!("'{key}': invalid type: {v}, expected u64"))
        }),
    }
}

/// The coin's entry, with KDF's `mm2` rule.
fn coin_conf(ctx: &Ctx, ticker: &str, mm2_in_request: bool) -> Result<Arc<CoinConf>, RpcError> {
    if let Some(why) = ctx.registry.refusal(ticker) {
        return Err(RpcError::CoinConfig(format!(
            "Coin {ticker} is listed in the coins file but not supported: {why}"
        )));
    }
    match ctx.registry.get(ticker) {
        Some(c) if c.mm2 || mm2_in_request => Ok(c),
        None => Err(RpcError::CoinConfig(format!(
            "Coin {ticker} config is not found in the coins file"
        ))),
        _ => Err(RpcError::CoinConfig(format!(
            "mm2 param is not set neither in coins config nor enable request, assuming that coin is not supported (coin {ticker})"
        ))),
    }
}

fn keys(ctx: &Ctx) -> Result<&WalletKeys, RpcError> {
    ctx.keys.as_ref().ok_or(RpcError::NoPassphrase)
}

fn balance_obj(spendable: &str) -> Value {
    json!({"spendable": spendable, "unspendable": "0"})
}

/// `derivation_method` of v2 answers.
fn derivation(ctx: &Ctx) -> Value {
    match ctx.keys.as_ref().is_some_and(WalletKeys::is_hd) {
        true => json!({"type": "HDWallet"}),
        false => json!({"type": "Iguana"}),
    }
}

/// The legacy `urls` list.
fn urls(req: &Value) -> Result<Vec<String>, RpcError> {
    let list = match req.get("urls") {
        Some(Value::Array(l)) => l,
        None | Some(Value::Null) => {
            return Err(RpcError::InvalidParams(
                "invalid type: null, expected a sequence".into(),
            ))
        }
        Some(v) => {
            return Err(RpcError::InvalidParams(format!(
                "'urls': invalid type: {v}, expected a sequence"
            )))
        }
    };
    list.iter()
        .map(|u| {
            u.as_str().map(str::to_string).ok_or_else(|| {
                RpcError::InvalidParams(format!("'urls': invalid type: {u}, expected a string"))
            })
        })
        .collect()
}

fn legacy_answer(coin: &EvmCoin, balance: &str) -> Reply {
    Reply::Json(json!({
        "result": "success",
        "address": coin.display_address(),
        "balance": balance,
        "unspendable_balance": "0",
        "coin": coin.conf.ticker,
        "required_confirmations": coin.required_confirmations,
        "requires_notarization": false,
    }))
}

/// Legacy `enable` for ETH-type and ERC20 coins (`urls`, `swap_contract_address` required;
/// `gas_station_*` and unknown keys ignored).
pub async fn enable(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let ticker = required_str(&req, "coin")?;
    let conf = coin_conf(&ctx, ticker, req.get("mm2").is_some_and(|v| !v.is_null()))?;
    if conf.protocol != "ETH" && conf.protocol != "ERC20" {
        return Err(RpcError::CoinConfig(format!(
            "Coin {ticker} has protocol {}; kdfd's 'enable' activates ETH and ERC20 coins (use 'electrum' for UTXO)",
            conf.protocol
        )));
    }
    let urls = urls(&req)?;
    if urls.is_empty() {
        return Err(RpcError::InvalidParams(
            "Enable request for ETH coin must have at least 1 node URL".into(),
        ));
    }
    swap_contract(
        "swap_contract_address",
        req.get("swap_contract_address"),
        true,
    )?;
    swap_contract(
        "fallback_swap_contract",
        req.get("fallback_swap_contract"),
        false,
    )?;
    let required_confirmations = opt_u64(&req, "required_confirmations")?;
    let keys = keys(&ctx)?;
    if conf.protocol == "ETH" {
        let act = EthActivation {
            urls,
            required_confirmations,
            tokens: Vec::new(),
        };
        let done = activate_eth(&ctx.coins, &ctx.registry, conf, keys, act, true).await?;
        let balance = done.balances.map(|(b, _)| b).unwrap_or_default();
        Ok(legacy_answer(&done.platform, &balance))
    } else {
        let (coin, balance) = activate_erc20(
            &ctx.coins,
            &ctx.registry,
            conf,
            keys,
            Erc20Source::Urls(urls),
            required_confirmations,
        )
        .await?;
        Ok(legacy_answer(&coin, &balance))
    }
}

#[derive(Deserialize)]
struct NodeReq {
    url: String,
    #[serde(default)]
    #[allow(dead_code)]
    komodo_proxy: bool,
}

#[derive(Deserialize)]
struct TokenReq {
    ticker: String,
    #[serde(default)]
    required_confirmations: Option<u64>,
    #[serde(default)]
    protocol: Option<Value>,
}

#[derive(Deserialize)]
struct EthWithTokensReq {
    ticker: String,
    #[serde(default)]
    nodes: Vec<NodeReq>,
    /// kdfd convenience: plain URLs, appended to `nodes`.
    #[serde(default)]
    rpc_urls: Vec<String>,
    swap_contract_address: Value,
    #[serde(default)]
    fallback_swap_contract: Option<Value>,
    erc20_tokens_requests: Vec<TokenReq>,
    #[serde(default = "yes")]
    get_balances: bool,
    #[serde(default)]
    required_confirmations: Option<u64>,
    #[serde(default)]
    mm2: Option<Value>,
}

fn yes() -> bool {
    true
}

fn no_custom_tokens(ticker: &str, protocol: &Option<Value>) -> Result<(), RpcError> {
    match protocol {
        None | Some(Value::Null) => Ok(()),
        Some(_) => Err(RpcError::CoinConfig(format!(
            "Custom token {ticker}: a 'protocol' in the request is not supported by kdfd; add the token to the coins file"
        ))),
    }
}

/// v2 `enable_eth_with_tokens`: the platform and its tokens, all or nothing; balances in one
/// JSON-RPC array.
pub async fn enable_eth_with_tokens(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: EthWithTokensReq = super::parse(params)?;
    eth_with_tokens(&ctx, req).await.map(Reply::Json)
}

/// The work of `enable_eth_with_tokens` and its task.
async fn eth_with_tokens(ctx: &Arc<Ctx>, req: EthWithTokensReq) -> Result<Value, RpcError> {
    swap_contract(
        "swap_contract_address",
        Some(&req.swap_contract_address),
        true,
    )?;
    swap_contract(
        "fallback_swap_contract",
        req.fallback_swap_contract.as_ref(),
        false,
    )?;
    for t in &req.erc20_tokens_requests {
        no_custom_tokens(&t.ticker, &t.protocol)?;
    }
    let conf = coin_conf(ctx, &req.ticker, req.mm2.is_some_and(|v| !v.is_null()))?;
    let urls: Vec<String> = req
        .nodes
        .into_iter()
        .map(|n| n.url)
        .chain(req.rpc_urls)
        .collect();
    if urls.is_empty() {
        return Err(RpcError::InvalidParams(
            "Enable request for ETH coin must have at least 1 node".into(),
        ));
    }
    let act = EthActivation {
        urls,
        required_confirmations: req.required_confirmations,
        tokens: req
            .erc20_tokens_requests
            .into_iter()
            .map(|t| TokenActivation {
                ticker: t.ticker,
                required_confirmations: t.required_confirmations,
            })
            .collect(),
    };
    let keys = keys(ctx)?;
    let done = activate_eth(&ctx.coins, &ctx.registry, conf, keys, act, req.get_balances)
        .await
        .map_err(|e| match RpcError::from(e) {
            // KDF's v2 names which of the two is active already.
            RpcError::AlreadyActive(t) if t == req.ticker => RpcError::PlatformAlreadyActive(t),
            RpcError::AlreadyActive(t) => RpcError::TokenAlreadyActive(t),
            other => other,
        })?;
    let addr = done.platform.display_address();
    let mut eth = json!({"derivation_method": derivation(ctx), "pubkey": done.platform.pubkey});
    let mut erc20 = eth.clone();
    match &done.balances {
        Some((platform, tokens)) => {
            eth["balances"] = balance_obj(platform);
            let map: Map<String, Value> = done
                .tokens
                .iter()
                .zip(tokens)
                .map(|(c, b)| (c.conf.ticker.clone(), balance_obj(b)))
                .collect();
            erc20["balances"] = Value::Object(map);
        }
        None => {
            let tickers: Vec<&str> = done.tokens.iter().map(|c| c.conf.ticker.as_str()).collect();
            erc20["tickers"] = json!(tickers);
        }
    }
    Ok(json!({
        "current_block": done.current_block,
        "eth_addresses_infos": {addr.clone(): eth},
        "erc20_addresses_infos": {addr: erc20},
        "nfts_infos": {},
    }))
}

#[derive(Deserialize)]
struct EnableErc20Req {
    ticker: String,
    #[serde(default)]
    protocol: Option<Value>,
    activation_params: Erc20Params,
}

#[derive(Deserialize)]
struct Erc20Params {
    #[serde(default)]
    required_confirmations: Option<u64>,
}

/// v2 `enable_erc20`: a token on an active platform, through the platform's nodes.
pub async fn enable_erc20(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: EnableErc20Req = super::parse(params)?;
    no_custom_tokens(&req.ticker, &req.protocol)?;
    let conf = coin_conf(&ctx, &req.ticker, true)?;
    let keys = keys(&ctx)?;
    let (coin, balance) = activate_erc20(
        &ctx.coins,
        &ctx.registry,
        conf,
        keys,
        Erc20Source::Platform,
        req.activation_params.required_confirmations,
    )
    .await
    .map_err(|e| match RpcError::from(e) {
        RpcError::AlreadyActive(t) => RpcError::TokenAlreadyActive(t),
        other => other,
    })?;
    Ok(Reply::Json(json!({
        "balances": {coin.display_address(): balance_obj(&balance)},
        "platform_coin": coin.platform,
        "token_contract_address": coin.contract().map(|c| address::lower_hex(&c)),
        "required_confirmations": coin.required_confirmations,
    })))
}
