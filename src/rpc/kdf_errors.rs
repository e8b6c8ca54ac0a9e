//! KDF's typed mmrpc 2.0 errors for wallets, HD addresses, coin activation tasks and the task
//! protocol: `error_type`, HTTP status, text and `error_data` as KDF answers them (spec:
//! kdf-wallet-compat.md 2.1–2.4, 2.12). Part of the one error mapping (`rpc/error.rs`).

use super::error::RpcError;
use serde_json::{json, Value};

/// One typed error.
#[derive(Debug, Clone)]
pub struct KdfError {
    /// HTTP status.
    pub status: u16,
    /// `error_type`.
    pub error_type: &'static str,
    /// `error_path`.
    pub path: &'static str,
    /// `error_trace`.
    pub trace: &'static str,
    /// `error`.
    pub message: String,
    /// `error_data`.
    pub data: Option<Value>,
}

fn kdf(
    status: u16,
    error_type: &'static str,
    path: &'static str,
    message: String,
    data: Option<Value>,
) -> RpcError {
    RpcError::Kdf(Box::new(KdfError {
        status,
        error_type,
        path,
        trace: path,
        message,
        data,
    }))
}

/// `NoSuchTask` for `status` (400) or `cancel` (404).
pub fn no_such_task(id: u64, on_cancel: bool) -> RpcError {
    let status = if on_cancel { 404 } else { 400 };
    kdf(
        status,
        "NoSuchTask",
        "rpc_common",
        format!("No such task '{id}'"),
        Some(json!(id)),
    )
}

/// `TaskFinished` (cancel of a finished task).
pub fn task_finished(id: u64) -> RpcError {
    kdf(
        409,
        "TaskFinished",
        "rpc_common",
        "Task is finished already".into(),
        Some(json!(id)),
    )
}

/// `CoinIsAlreadyActivated` (task init).
pub fn already_activated(ticker: &str) -> RpcError {
    kdf(
        400,
        "CoinIsAlreadyActivated",
        "init_standalone_coin",
        format!("Coin {ticker} is activated already"),
        Some(json!({ "ticker": ticker })),
    )
}

/// `CoinConfigIsNotFound`.
pub fn coin_config_not_found(ticker: &str) -> RpcError {
    kdf(
        400,
        "CoinConfigIsNotFound",
        "init_standalone_coin",
        format!("Coin {ticker} config is not found"),
        Some(json!(ticker)),
    )
}

/// `UnexpectedCoinProtocol`.
pub fn unexpected_protocol(ticker: &str, protocol: &str) -> RpcError {
    kdf(
        400,
        "UnexpectedCoinProtocol",
        "init_standalone_coin",
        format!("Unexpected platform protocol {protocol} for {ticker}"),
        Some(json!({ "ticker": ticker, "protocol": {"type": protocol} })),
    )
}

/// `TokenConfigIsNotFound` (EVM token activation).
pub fn token_config_not_found(ticker: &str) -> RpcError {
    kdf(
        400,
        "TokenConfigIsNotFound",
        "token",
        format!("Token {ticker} config is not found"),
        Some(json!(ticker)),
    )
}

/// `UnexpectedTokenProtocol`: a token entry kdfd cannot use (bad contract checksum, decimals).
pub fn unexpected_token_protocol(ticker: &str, message: &str) -> RpcError {
    kdf(
        400,
        "UnexpectedTokenProtocol",
        "token",
        message.to_string(),
        Some(json!({ "ticker": ticker, "error": message })),
    )
}

/// `CoinCreationError` (the task's Error details when activation fails).
pub fn coin_creation(ticker: &str, error: &str) -> RpcError {
    kdf(
        400,
        "CoinCreationError",
        "init_standalone_coin",
        format!("Error on platform coin {ticker} creation: {error}"),
        Some(json!({ "ticker": ticker, "error": error })),
    )
}

/// `CoinIsNotFound` (400), as KDF's `SignatureError`/`VerificationError` wrap its coin lookup.
pub fn coin_is_not_found(coin: &str) -> RpcError {
    let inner = format!("No such coin {coin}");
    kdf(
        400,
        "CoinIsNotFound",
        "lp_coins",
        format!("Coin is not found: {inner}"),
        Some(json!(inner)),
    )
}

/// `NoSuchCoin` as KDF's HD and withdraw errors answer it (404).
pub fn hd_no_such_coin(coin: &str) -> RpcError {
    kdf(
        404,
        "NoSuchCoin",
        "lp_coins",
        format!("No such coin {coin}"),
        Some(json!({ "coin": coin })),
    )
}

/// `CoinIsActivatedNotWithHDWallet`.
pub fn not_hd(coin: &str) -> RpcError {
    kdf(
        400,
        "CoinIsActivatedNotWithHDWallet",
        "hd_wallet",
        "Coin is expected to be activated with the HD wallet derivation method".to_string(),
        Some(json!(coin)),
    )
}

/// `UnknownAccount`.
pub fn unknown_account(account_id: u32) -> RpcError {
    kdf(
        400,
        "UnknownAccount",
        "hd_wallet",
        format!("HD account '{account_id}' is not activated"),
        Some(json!({ "account_id": account_id })),
    )
}

/// `EmptyAddressesLimitReached`.
pub fn empty_addresses_limit(gap_limit: u32) -> RpcError {
    kdf(
        400,
        "EmptyAddressesLimitReached",
        "get_new_address",
        format!("Addresses limit reached. Max number of empty addresses: {gap_limit}"),
        Some(json!({ "gap_limit": gap_limit })),
    )
}

/// `AddressLimitReached`.
pub fn address_limit(max: u32) -> RpcError {
    kdf(
        400,
        "AddressLimitReached",
        "get_new_address",
        format!("Addresses limit reached. Max number of addresses: {max}"),
        Some(json!({ "max_addresses_number": max })),
    )
}

/// Errors of the wallet methods (`MnemonicRpcError`, `get_wallet_names`, `delete_wallet`).
pub fn wallet(e: &crate::wallet::WalletError) -> RpcError {
    use crate::wallet::WalletError as W;
    let text = e.to_string();
    match e {
        W::InvalidPassword => kdf(
            400,
            "InvalidPassword",
            "lp_wallet",
            text.clone(),
            Some(json!(text)),
        ),
        W::MnemonicFileNotFound | W::WalletNotFound(_) | W::BadName(_) => kdf(
            400,
            "InvalidRequest",
            "lp_wallet",
            text.clone(),
            Some(json!(text)),
        ),
        W::PasswordPolicy(_) => kdf(
            400,
            "PasswordPolicyViolation",
            "lp_wallet",
            text.clone(),
            Some(json!(text)),
        ),
        W::Storage(_) | W::BadFile(_) => kdf(
            500,
            "WalletsStorageError",
            "lp_wallet",
            text.clone(),
            Some(json!(text)),
        ),
        _ => kdf(
            500,
            "Internal",
            "lp_wallet",
            text.clone(),
            Some(json!(text)),
        ),
    }
}

/// An `InvalidRequest` of the wallet methods with KDF's text.
pub fn wallet_request(text: &str) -> RpcError {
    kdf(
        400,
        "InvalidRequest",
        "lp_wallet",
        text.to_string(),
        Some(json!(text)),
    )
}

/// `Internal` of the wallet methods (e.g. no named wallet is signed in).
pub fn wallet_internal(text: &str) -> RpcError {
    kdf(
        500,
        "Internal",
        "lp_wallet",
        text.to_string(),
        Some(json!(text)),
    )
}
