//! Sending: `withdraw` (legacy and v2), `task::withdraw::{init,status,cancel}`,
//! `send_raw_transaction` and `get_raw_transaction` (spec 2.6–2.7). The transaction is built
//! and signed by `coins::withdraw`; it is never broadcast here.

use super::address::{active_coin, signer, validate, AddressSelector};
use super::tasks::{cancel_of, client_id, outcome, status_of};
use super::{required_str, Reply, RpcError};
use crate::coins::withdraw::{self, Unspent, WithdrawError, WithdrawSpec};
use crate::coins::{format_amount, parse_address, script_pubkey, UtxoCoin};
use crate::ctx::Ctx;
use crate::tasks::Progress;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The task kind of `task::withdraw::*`.
const KIND: &str = "withdraw";
/// Longest `tx_hex` accepted by `send_raw_transaction` (1 MB of hex = 500 kB of transaction).
const MAX_TX_HEX: usize = 1_000_000;
/// 21 million coins in satoshis: no amount above it is real.
const MAX_SATS: u64 = 21_000_000 * 100_000_000;

#[derive(Deserialize)]
struct WithdrawReq {
    coin: String,
    to: String,
    #[serde(default)]
    amount: Option<Value>,
    #[serde(default)]
    max: bool,
    #[serde(default)]
    fee: Option<Value>,
    #[serde(default)]
    from: Option<AddressSelector>,
    #[serde(default)]
    memo: Option<String>,
}

/// A request amount (decimal string or JSON number) in satoshis, refused when negative, with
/// more decimals than the coin has, or above 21 M coins.
fn strict_amount(v: &Value, decimals: u32) -> Result<u64, RpcError> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(RpcError::InvalidParams(format!(
                "'amount': expected a decimal string or a number, got {other}"
            )))
        }
    };
    let d: Decimal = text
        .parse()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| {
            RpcError::InvalidParams(format!("'amount': {text:?} is not a decimal number"))
        })?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(RpcError::InvalidParams(format!(
            "'amount': {text} is negative"
        )));
    }
    if d.normalize().scale() > decimals {
        return Err(RpcError::InvalidParams(format!(
            "'amount': {text} has more than {decimals} decimal places"
        )));
    }
    let sats = withdraw::parse_amount(&d.normalize().to_string(), decimals)
        .map_err(|_| RpcError::InvalidParams(format!("'amount': {text} is too large")))?;
    if sats > MAX_SATS {
        return Err(RpcError::InvalidParams(format!(
            "'amount': {text} is more than 21000000 coins"
        )));
    }
    Ok(sats)
}

fn step(progress: Option<&Progress>, stage: &str) {
    if let Some(p) = progress {
        p.set(json!(stage));
    }
}

/// Builds and signs the withdrawal; KDF's `TransactionDetails`.
async fn run(ctx: &Ctx, req: WithdrawReq, progress: Option<&Progress>) -> Result<Value, RpcError> {
    let coin = withdraw_coin(ctx, &req.coin)?;
    let conf = coin.conf.clone();
    let to_kind = validate(&conf, &req.to)
        .map_err(|e| RpcError::Withdraw(WithdrawError::InvalidAddress(e)))?;
    let amount = match (&req.amount, req.max) {
        (_, true) | (None, _) | (Some(Value::Null), _) => 0,
        (Some(v), false) => strict_amount(v, conf.decimals)?,
    };
    let fee = match &req.fee {
        Some(f) if !f.is_null() => {
            withdraw::fee_policy_from_request(f, conf.decimals).map_err(RpcError::Withdraw)?
        }
        _ => {
            // txfee 0 means a dynamic rate from Electrum (KDF's estimate_fee_blocks default 1).
            let dynamic = if conf.txfee == Some(0) {
                let rate = coin
                    .pool
                    .estimate_fee(1)
                    .await
                    .map_err(RpcError::Electrum)?;
                withdraw::estimatefee_to_sat_per_kb(rate)
            } else {
                None
            };
            withdraw::default_fee_policy(&conf, dynamic)
        }
    };
    let sender = signer(ctx, &coin, req.from.as_ref(), "withdraw")?;
    let from_script = parse_address(&conf, &sender.address)
        .map(|k| script_pubkey(&k))
        .map_err(RpcError::Internal)?;
    let sh = sender
        .scripthashes
        .first()
        .cloned()
        .ok_or_else(|| RpcError::Internal("the sender has no scripthash".into()))?;

    step(progress, "GeneratingTransaction");
    let lists = coin
        .pool
        .unspents(std::slice::from_ref(&sh))
        .await
        .map_err(RpcError::Electrum)?;
    let unspents = lists
        .into_iter()
        .flatten()
        .map(|u| {
            let txid = u.tx_hash.parse().map_err(|e| {
                RpcError::Internal(format!("Electrum gave a bad txid {}: {e}", u.tx_hash))
            })?;
            Ok(Unspent {
                txid,
                vout: u.tx_pos,
                value: u.value,
                height: u32::try_from(u.height.max(0)).unwrap_or(u32::MAX),
            })
        })
        .collect::<Result<Vec<_>, RpcError>>()?;
    let spec = WithdrawSpec {
        to_script: script_pubkey(&to_kind),
        amount,
        max: req.max,
        fee,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    step(progress, "SigningTransaction");
    let lock_time = u32::try_from(now).unwrap_or(u32::MAX);
    let signed = withdraw::build(
        &conf,
        &sender.key,
        &from_script,
        &unspents,
        &spec,
        lock_time,
    )
    .map_err(RpcError::Withdraw)?;

    step(progress, "Finishing");
    let fmt = |sats: i128| format_amount(sats, conf.decimals);
    Ok(json!({
        "tx_hex": signed.tx_hex,
        "tx_hash": signed.tx_hash,
        "from": [sender.address],
        "to": [req.to],
        "total_amount": fmt(i128::from(signed.total_amount)),
        "spent_by_me": fmt(i128::from(signed.spent_by_me)),
        "received_by_me": fmt(i128::from(signed.received_by_me)),
        "my_balance_change": fmt(i128::from(signed.my_balance_change)),
        "block_height": 0,
        "timestamp": now,
        "fee_details": {"type": "Utxo", "coin": conf.ticker, "amount": fmt(i128::from(signed.fee))},
        "coin": conf.ticker,
        "internal_id": "",
        "transaction_type": "StandardTransfer",
        "memo": req.memo,
    }))
}

/// The coin a withdraw spends from; KDF's `WithdrawError::NoSuchCoin` is a 404.
fn withdraw_coin(ctx: &Ctx, ticker: &str) -> Result<Arc<UtxoCoin>, RpcError> {
    active_coin(ctx, ticker).map_err(|e| match e {
        RpcError::NoSuchCoin(c) => crate::rpc::kdf_errors::hd_no_such_coin(&c),
        other => other,
    })
}

/// `withdraw` (legacy and v2): the signed transaction's details, not broadcast.
pub async fn withdraw(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: WithdrawReq = super::parse(params)?;
    run(&ctx, req, None).await.map(Reply::Json)
}

/// `task::withdraw::init`: `{"task_id"}`; an inactive coin fails here, not in the task.
pub async fn init(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let client = client_id(&params)?;
    let req: WithdrawReq = super::parse(params)?;
    withdraw_coin(&ctx, &req.coin)?;
    let task_ctx = ctx.clone();
    let id = ctx
        .tasks
        .spawn(KIND, client, json!("Preparing"), move |p| async move {
            outcome(run(&task_ctx, req, Some(&p)).await)
        });
    Ok(Reply::Json(json!({ "task_id": id })))
}

/// `task::withdraw::status`.
pub async fn status(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    status_of(&ctx, KIND, params).await
}

/// `task::withdraw::cancel`.
pub async fn cancel(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    cancel_of(&ctx, KIND, params).await
}

/// Legacy `send_raw_transaction`: `{"tx_hash"}`; Electrum's refusal text passes through.
pub async fn send_raw_transaction(ctx: Arc<Ctx>, req: Value) -> Result<Reply, RpcError> {
    let coin = active_coin(&ctx, required_str(&req, "coin")?)?;
    let tx_hex = required_str(&req, "tx_hex")?.trim();
    if tx_hex.len() > MAX_TX_HEX {
        return Err(RpcError::InvalidParams(format!(
            "'tx_hex' is {} characters; the limit is {MAX_TX_HEX}",
            tx_hex.len()
        )));
    }
    check_hex(tx_hex).map_err(|e| RpcError::InvalidParams(format!("Invalid 'tx_hex': {e}")))?;
    let txid = check_tx(&coin.conf, tx_hex)
        .map_err(|e| RpcError::InvalidParams(format!("Invalid 'tx_hex': {e}")))?;
    let tx_hash = match coin.pool.broadcast(tx_hex).await {
        Ok(hash) => hash,
        // The node has it already (a second broadcast, or a retry after a lost answer): that is
        // the success the user asked for, not a failure to interpret.
        Err(crate::electrum::ElectrumError::Rpc(_, msg))
            if already_known(&msg) && txid.is_some() =>
        {
            tracing::info!("broadcast of a transaction the node already has: answered its hash");
            txid.map(|t| t.to_string()).unwrap_or_default()
        }
        Err(e) => return Err(RpcError::Electrum(e)),
    };
    Ok(Reply::Json(json!({ "tx_hash": tx_hash })))
}

/// The node's words for "I have this transaction already" (bitcoind and its forks, ElectrumX's
/// wrapping keeps them).
fn already_known(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "already in block chain",
        "txn-already-known",
        "txn-already-in-mempool",
        "transaction already in mempool",
        "already have transaction",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// Refuses bytes that are no transaction at all (truncated, trailing garbage), so they are never
/// broadcast; a well-formed transaction kdfd cannot fully decode (shielded parts, other
/// overwintered versions) is left for the node to judge. Answers the txid when it is known.
fn check_tx(conf: &crate::coins::CoinConf, hex: &str) -> Result<Option<bitcoin::Txid>, String> {
    use withdraw::{DecodeError, ParseError};
    let bytes = <Vec<u8> as bitcoin::hex::FromHex>::from_hex(hex).map_err(|e| e.to_string())?;
    match withdraw::decode_tx(conf, &bytes) {
        Ok(tx) => Ok(Some(tx.txid)),
        Err(DecodeError::Overwintered(ParseError::Shielded | ParseError::NotV4(_))) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

fn check_hex(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty".into());
    }
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits".into());
    }
    match s.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        Some((i, c)) => Err(format!("invalid character {c:?} at position {i}")),
        None => Ok(()),
    }
}

#[derive(Deserialize)]
struct RawTxReq {
    coin: String,
    tx_hash: String,
}

/// v2 `get_raw_transaction`: `{"tx_hex"}` from Electrum.
pub async fn get_raw_transaction(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: RawTxReq = super::parse(params)?;
    let coin = active_coin(&ctx, &req.coin)?;
    let h = req
        .tx_hash
        .trim()
        .trim_start_matches("0x")
        .to_ascii_lowercase();
    if h.len() != 64 || check_hex(&h).is_err() {
        return Err(RpcError::InvalidHash(format!(
            "'{}' is not a 32-byte hex transaction hash",
            req.tx_hash
        )));
    }
    let txs = coin
        .pool
        .transactions(&[h])
        .await
        .map_err(RpcError::Electrum)?;
    let tx_hex = txs
        .into_iter()
        .next()
        .ok_or_else(|| RpcError::Internal("Electrum answered no transaction".into()))?;
    Ok(Reply::Json(json!({ "tx_hex": tx_hex })))
}
