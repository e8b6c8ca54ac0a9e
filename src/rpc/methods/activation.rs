//! `task::enable_utxo::{init,status,cancel,user_action}`: KDF's task-based UTXO activation
//! (spec 2.2), iguana and HD, with `UtxoActivationParams` (unknown keys tolerated).

use super::{parse, Reply, RpcError};
use crate::coins::parse_address_format;
use crate::coins::utxo::hd::{AddressId, HdParams, ScanPolicy};
use crate::coins::utxo::{self, UtxoActivation, UtxoCoin};
use crate::ctx::Ctx;
use crate::electrum::ServerSpec;
use crate::rpc::kdf_errors;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

crate::task_handlers!("enable_utxo", status, cancel, user_action);

#[derive(Deserialize)]
struct InitReq {
    ticker: String,
    activation_params: Params,
    #[serde(default)]
    client_id: u64,
}

/// `UtxoActivationParams`: KDF has no `deny_unknown_fields` here (the SDK sends coins-file keys).
#[derive(Deserialize)]
struct Params {
    mode: Mode,
    #[serde(default)]
    tx_history: bool,
    required_confirmations: Option<u64>,
    requires_notarization: Option<bool>,
    address_format: Option<Value>,
    gap_limit: Option<u32>,
    #[serde(default)]
    scan_policy: ScanPolicy,
    min_addresses_number: Option<u32>,
    priv_key_policy: Option<Value>,
    #[serde(default)]
    path_to_address: AddressId,
}

#[derive(Deserialize)]
#[serde(tag = "rpc", content = "rpc_data")]
enum Mode {
    Electrum {
        servers: Vec<Value>,
        min_connected: Option<usize>,
        max_connected: Option<usize>,
    },
    Native,
}

/// `{"spendable", "unspendable"}` keyed by ticker, as KDF's `CoinBalanceMap`.
pub fn balance_map(coin: &UtxoCoin, sats: i128) -> BTreeMap<String, Value> {
    let amount = crate::coins::format_amount(sats, coin.conf.decimals);
    BTreeMap::from([(
        coin.ticker().to_string(),
        json!({"spendable": amount, "unspendable": "0"}),
    )])
}

/// KDF's `HDAccountBalance`.
#[derive(Serialize)]
pub struct AccountJson {
    account_index: u32,
    derivation_path: String,
    total_balance: BTreeMap<String, Value>,
    addresses: Vec<Value>,
}

/// The accounts of an HD coin in KDF's shape.
pub async fn accounts_json(
    coin: &UtxoCoin,
    only: Option<u32>,
) -> Result<Vec<AccountJson>, RpcError> {
    let accounts = coin.account_balances(only).await?;
    Ok(accounts
        .into_iter()
        .map(|a| AccountJson {
            account_index: a.id,
            derivation_path: a.derivation_path,
            total_balance: balance_map(coin, a.total),
            addresses: a
                .addresses
                .iter()
                .map(|x| {
                    json!({"address": x.address, "derivation_path": x.derivation_path,
                           "chain": x.chain, "balance": balance_map(coin, x.sats)})
                })
                .collect(),
        })
        .collect())
}

/// The `wallet_balance` of an activation result, tagged by `wallet_type`.
pub async fn wallet_balance(coin: &UtxoCoin) -> Result<Value, RpcError> {
    if coin.hd.is_some() {
        let accounts = accounts_json(coin, None).await?;
        return Ok(json!({"wallet_type": "HD", "accounts": accounts}));
    }
    let sats = coin.balance_sats().await.map_err(RpcError::Electrum)?;
    Ok(
        json!({"wallet_type": "Iguana", "address": coin.address, "balance": balance_map(coin, sats)}),
    )
}

/// Deactivates `ticker` on drop unless disarmed (`ticker` taken).
struct Deactivate<'a> {
    ctx: &'a Ctx,
    ticker: Option<String>,
}

impl Drop for Deactivate<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            if self.ctx.coins.remove(&t).is_some() {
                tracing::info!(coin = %t, "activation cancelled or failed: coin deactivated");
            }
        }
    }
}

/// `task::enable_utxo::init`: checks what KDF checks before the task, then activates in a task.
pub async fn init(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: InitReq = parse(params.clone())?;
    let ticker = req.ticker.clone();
    if ctx.coins.get(&ticker).is_some() {
        return Err(kdf_errors::already_activated(&ticker));
    }
    if let Some(why) = ctx.registry.refusal(&ticker) {
        return Err(kdf_errors::coin_creation(&ticker, why));
    }
    let conf = ctx
        .registry
        .get(&ticker)
        .ok_or_else(|| kdf_errors::coin_config_not_found(&ticker))?;
    if conf.protocol != "UTXO" {
        return Err(kdf_errors::unexpected_protocol(&ticker, &conf.protocol));
    }
    let p = req.activation_params;
    let (servers, min_connected, max_connected) = match p.mode {
        Mode::Electrum {
            servers,
            min_connected,
            max_connected,
        } => (servers, min_connected, max_connected),
        Mode::Native => {
            return Err(kdf_errors::coin_creation(
                &ticker,
                "native (coin daemon) mode is not supported by kdfd; use Electrum",
            ))
        }
    };
    if p.priv_key_policy
        .as_ref()
        .is_some_and(|v| v != "ContextPrivKey")
    {
        return Err(kdf_errors::coin_creation(
            &ticker,
            "only the ContextPrivKey key policy is supported by kdfd (no Trezor, no WalletConnect)",
        ));
    }
    let timeout = ctx.config.limits.electrum_timeout;
    let servers = servers
        .iter()
        .map(|s| ServerSpec::from_json(s, timeout))
        .collect::<Result<Vec<_>, _>>()
        .map_err(RpcError::InvalidParams)?;
    let format =
        parse_address_format(p.address_format.as_ref()).map_err(RpcError::InvalidParams)?;
    let activation = UtxoActivation {
        servers,
        min_connected,
        max_connected,
        required_confirmations: p.required_confirmations,
        requires_notarization: p.requires_notarization,
        format,
        hd: HdParams {
            gap_limit: p.gap_limit.unwrap_or(20),
            scan_policy: p.scan_policy,
            min_addresses_number: p.min_addresses_number,
            path_to_address: p.path_to_address,
        },
        want_tip: true,
        original: params,
    };
    crate::coins::utxo::hd::check_params(&activation.hd).map_err(RpcError::from)?;
    let tx_history = p.tx_history;
    let task_ctx = ctx.clone();
    let id = ctx.tasks.spawn(
        "enable_utxo",
        req.client_id,
        json!("ActivatingCoin"),
        move |progress| async move {
            let ctx = task_ctx;
            let run = async {
                let keys = ctx.keys.as_ref().ok_or(RpcError::NoPassphrase)?;
                let coin = utxo::activate(&ctx.coin_env(), conf, keys, activation)
                    .await
                    .map_err(|e| match e {
                        crate::coins::CoinError::AlreadyActive(t) => {
                            kdf_errors::already_activated(&t)
                        }
                        e => kdf_errors::coin_creation(&ticker, &e.to_string()),
                    })?;
                // Until the task answers Ok, a cancel (the future dropped) or a failure below
                // deactivates the coin again: as in KDF, a cancelled activation leaves no coin.
                let mut undo = Deactivate {
                    ctx: &ctx,
                    ticker: Some(ticker.clone()),
                };
                progress.set(json!("RequestingWalletBalance"));
                let current_block = match coin
                    .tip_at_activation
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    0 => coin.pool.tip_height().await.map_err(RpcError::Electrum)?,
                    tip => tip,
                };
                let wallet_balance = wallet_balance(&coin).await?;
                undo.ticker = None;
                if tx_history {
                    crate::rpc::methods::start_history(&ctx, &coin);
                }
                Ok::<Value, RpcError>(json!({
                    "ticker": ticker,
                    "current_block": current_block,
                    "wallet_balance": wallet_balance,
                }))
            };
            run.await.map_err(|e| e.task_details())
        },
    );
    Ok(Reply::Json(json!({ "task_id": id })))
}
