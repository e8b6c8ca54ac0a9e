//! Wallet methods (mmrpc 2.0): `get_wallet_names`, `get_mnemonic`, `change_mnemonic_password`,
//! `delete_wallet`. Argon2id runs on the blocking pool, never on an async worker.

use super::{parse, Reply, RpcError};
use crate::ctx::Ctx;
use crate::rpc::kdf_errors;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Runs blocking wallet-file work off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::wallet::WalletError> + Send + 'static,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RpcError::Internal(format!("wallet task failed: {e}")))?
        .map_err(|e| kdf_errors::wallet(&e))
}

/// `blocking` for work that runs Argon2id: it waits for a key-stretching turn first (a full line
/// answers an error at once) and holds the turn until the work is done, even if the item's
/// time limit gives up on it first.
async fn stretched<T: Send + 'static>(
    ctx: &Ctx,
    f: impl FnOnce() -> Result<T, crate::wallet::WalletError> + Send + 'static,
) -> Result<T, RpcError> {
    let Some(turn) = ctx.key_stretch.turn().await else {
        return Err(kdf_errors::wallet_internal(
            "Too many wallet password checks at once (argon2_max_waiting); retry shortly",
        ));
    };
    blocking(move || {
        let _turn = turn;
        f()
    })
    .await
}

#[derive(Serialize)]
struct WalletNames {
    wallet_names: Vec<String>,
    activated_wallet: Option<String>,
}

/// `get_wallet_names`: every wallet file in the wallet directory, and the signed-in one.
pub async fn get_wallet_names(ctx: Arc<Ctx>, _params: Value) -> Result<Reply, RpcError> {
    // Any params are accepted, as KDF does (the SDK sends null).
    let dir = ctx.wallets.clone();
    let names = blocking(move || dir.names()).await?;
    Ok(Reply::Json(
        serde_json::to_value(WalletNames {
            wallet_names: names,
            activated_wallet: ctx.wallet_name.clone(),
        })
        .map_err(|e| RpcError::Internal(e.to_string()))?,
    ))
}

#[derive(Deserialize)]
#[serde(tag = "format", rename_all = "snake_case")]
enum MnemonicFormat {
    Plaintext { password: String },
    Encrypted,
}

/// `get_mnemonic`: the signed-in wallet's mnemonic, plaintext (with the password) or encrypted.
pub async fn get_mnemonic(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: MnemonicFormat = parse(params)?;
    let name = ctx.wallet_name.clone().ok_or_else(|| {
        kdf_errors::wallet_internal("Wallet name is not set: kdfd was started without wallet_name")
    })?;
    let dir = ctx.wallets.clone();
    let answer = match req {
        MnemonicFormat::Plaintext { password } => {
            let mnemonic = stretched(&ctx, move || dir.load(&name, &password)).await?;
            serde_json::json!({"format": "plaintext", "mnemonic": mnemonic.expose()})
        }
        MnemonicFormat::Encrypted => {
            let data = blocking(move || dir.read(&name)).await?;
            serde_json::json!({"format": "encrypted", "encrypted_mnemonic_data": data})
        }
    };
    Ok(Reply::Json(answer))
}

#[derive(Deserialize)]
struct ChangePassword {
    current_password: String,
    new_password: String,
}

/// `change_mnemonic_password`: re-encrypts the signed-in wallet's file with a new password.
pub async fn change_mnemonic_password(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: ChangePassword = parse(params)?;
    let name = ctx.wallet_name.clone().ok_or_else(|| {
        kdf_errors::wallet_internal("Wallet name is not set: kdfd was started without wallet_name")
    })?;
    if !ctx.config.wallet.allow_weak_password {
        crate::config::check_password_policy(&req.new_password).map_err(|e| {
            kdf_errors::wallet(&crate::wallet::WalletError::PasswordPolicy(e.to_string()))
        })?;
    }
    let dir = ctx.wallets.clone();
    stretched(&ctx, move || {
        dir.change_password(&name, &req.current_password, &req.new_password)
    })
    .await?;
    tracing::info!("wallet password changed");
    Ok(Reply::Json(Value::Null))
}

#[derive(Deserialize)]
struct DeleteWallet {
    wallet_name: String,
    password: String,
}

/// `delete_wallet`: removes a wallet file after checking its password; never the signed-in one.
pub async fn delete_wallet(ctx: Arc<Ctx>, params: Value) -> Result<Reply, RpcError> {
    let req: DeleteWallet = parse(params)?;
    if ctx.wallet_name.as_deref().map(str::trim) == Some(req.wallet_name.trim()) {
        return Err(kdf_errors::wallet_request(
            "Cannot delete wallet while it is active. Please log out first.",
        ));
    }
    let dir = ctx.wallets.clone();
    stretched(&ctx, move || dir.delete(&req.wallet_name, &req.password)).await?;
    tracing::info!("wallet deleted");
    Ok(Reply::Json(Value::Null))
}
