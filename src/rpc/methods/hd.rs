//! HD address methods: `task::account_balance::*` (known addresses only, live balances, no scan)
//! and `get_new_address` (KDF's gap rule, persisted).

use super::activation::{accounts_json, balance_map};
use super::{parse, Reply, RpcError};
use crate::coins::utxo::UtxoCoin;
use crate::crypto::hd::Chain;
use crate::ctx::Ctx;
use crate::rpc::kdf_errors;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

crate::task_handlers!("account_balance", status, cancel, user_action);

fn hd_coin(ctx: &Ctx, ticker: &str) -> Result<Arc<UtxoCoin>, RpcError> {
    let coin = ctx
        .coins
        .get(ticker)
        .ok_or_else(|| kdf_errors::hd_no_such_coin(ticker))?;
    if coin.hd.is_none() {
        return Err(kdf_errors::not_hd(ticker));
    }
    Ok(coin)
}

#[derive(Deserialize)]
struct BalanceReq {
    coin: String,
    account_index: u32,
    #[serde(default)]
    client_id: u64,
}

/// `task::account_balance::init`.
pub async fn init(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: BalanceReq = parse(params)?;
    let coin = hd_coin(&ctx, &req.coin)?;
    let account = req.account_index;
    let id = ctx.tasks.spawn(
        "account_balance",
        req.client_id,
        json!("RequestingAccountBalance"),
        move |_| async move {
            let mut accounts = accounts_json(&coin, Some(account))
                .await
                .map_err(|e| e.task_details())?;
            let one = accounts
                .pop()
                .ok_or_else(|| kdf_errors::unknown_account(account).task_details())?;
            serde_json::to_value(one).map_err(|e| RpcError::Internal(e.to_string()).task_details())
        },
    );
    Ok(Reply::Json(json!({ "task_id": id })))
}

#[derive(Deserialize)]
struct NewAddressReq {
    coin: String,
    #[serde(default)]
    account_id: u32,
    chain: Option<Chain>,
    gap_limit: Option<u32>,
}

/// `get_new_address`.
pub async fn get_new_address(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: NewAddressReq = parse(params)?;
    let coin = hd_coin(&ctx, &req.coin)?;
    if req
        .gap_limit
        .is_some_and(|g| g > crate::coins::utxo::hd::MAX_GAP_LIMIT)
    {
        return Err(RpcError::InvalidParams(format!(
            "gap_limit is over kdfd's limit of {}",
            crate::coins::utxo::hd::MAX_GAP_LIMIT
        )));
    }
    let chain = req.chain.unwrap_or(Chain::External);
    let (addr, sats) = coin
        .new_address(ctx.store.as_ref(), req.account_id, chain, req.gap_limit)
        .await?;
    Ok(Reply::Json(json!({"new_address": {
        "address": addr.address,
        "derivation_path": addr.derivation_path,
        "chain": addr.chain,
        "balance": balance_map(&coin, sats),
    }})))
}
