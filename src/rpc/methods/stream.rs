//! `stream::*`: enabling and disabling event streamers for an SSE client (KDF's streaming
//! activations). The events themselves are `crate::events`.

use super::{parse, Reply};
use crate::ctx::Ctx;
use crate::events::{streamers, EventError, Hub};
use crate::rpc::error::RpcError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

fn enable_error(e: EventError) -> RpcError {
    RpcError::StreamEnable(e.to_string())
}

/// Registers the client with the streamer, starting `task` if it is the first listener.
fn enable<F, Fut>(hub: &Hub, client_id: u64, streamer_id: &str, task: F) -> Result<Reply, RpcError>
where
    F: FnOnce(Hub) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    hub.enable(client_id, streamer_id, || {
        Some(tokio::spawn(task(hub.clone())).abort_handle())
    })
    .map_err(enable_error)?;
    Ok(Reply::Json(json!({ "streamer_id": streamer_id })))
}

#[derive(Deserialize)]
struct CoinReq {
    #[serde(default)]
    client_id: u64,
    coin: String,
    #[serde(default)]
    config: Option<Value>,
}

/// `stream::balance::enable {client_id, coin, config?}`.
pub async fn balance_enable(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: CoinReq = parse(params)?;
    let coin = ctx
        .coins
        .get(&req.coin)
        .ok_or_else(|| RpcError::StreamCoinNotFound(req.coin.clone()))?;
    // KDF: UTXO balance streaming takes no config.
    if req.config.as_ref().is_some_and(|c| !c.is_null()) {
        return Err(RpcError::StreamEnable(
            "Invalid config provided. No config needed".into(),
        ));
    }
    let streamer_id = format!("BALANCE:{}", coin.ticker());
    enable(&ctx.events, req.client_id, &streamer_id, move |hub| {
        // Subscribed before `enable` answers, so a payment right after the answer is not missed.
        let changes = coin.pool.changes();
        crate::coins::utxo::stream::utxo_balance(hub, coin, changes)
    })
}

/// `stream::tx_history::enable {client_id, coin}`. The feed is published into the hub by the
/// history sync (`Hub::publish("TX_HISTORY:<coin>", tx)`); here the client only registers.
pub async fn tx_history_enable(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: CoinReq = parse(params)?;
    let coin = ctx
        .coins
        .get(&req.coin)
        .ok_or_else(|| RpcError::StreamCoinNotFound(req.coin.clone()))?;
    let streamer_id = format!("TX_HISTORY:{}", coin.ticker());
    ctx.events
        .enable(req.client_id, &streamer_id, || None)
        .map_err(enable_error)?;
    Ok(Reply::Json(json!({ "streamer_id": streamer_id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeartbeatConfig {
    stream_interval_seconds: f64,
}

#[derive(Deserialize)]
struct HeartbeatReq {
    #[serde(default)]
    client_id: u64,
    config: HeartbeatConfig,
}

/// `stream::heartbeat::enable {client_id, config: {stream_interval_seconds}}`.
pub async fn heartbeat_enable(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: HeartbeatReq = parse(params)?;
    let secs = req.config.stream_interval_seconds;
    // A zero or tiny interval would flood the client; 0.1 s is already more than anyone needs.
    if !secs.is_finite() || !(0.1..=86_400.0).contains(&secs) {
        return Err(RpcError::InvalidParams(format!(
            "stream_interval_seconds must be between 0.1 and 86400, got {secs}"
        )));
    }
    let every = Duration::from_secs_f64(secs);
    enable(&ctx.events, req.client_id, "HEARTBEAT", move |hub| {
        streamers::heartbeat(hub, every)
    })
}

#[derive(Deserialize)]
struct ClientReq {
    #[serde(default)]
    client_id: u64,
}

/// `stream::shutdown_signal::enable {client_id}`; the event is sent by the signal handler.
pub async fn shutdown_signal_enable(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: ClientReq = parse(params)?;
    ctx.events
        .enable(req.client_id, "SHUTDOWN_SIGNAL", || None)
        .map_err(enable_error)?;
    Ok(Reply::Json(json!({"streamer_id": "SHUTDOWN_SIGNAL"})))
}

#[derive(Deserialize)]
struct DisableReq {
    #[serde(default)]
    client_id: u64,
    streamer_id: String,
}

/// `stream::disable {client_id, streamer_id}`.
pub async fn disable(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: DisableReq = parse(params)?;
    ctx.events
        .disable(req.client_id, &req.streamer_id)
        .map_err(|e| RpcError::StreamDisable(e.to_string()))?;
    Ok(Reply::Json(json!({"result": "Success"})))
}
