//! Every error a request can get, and the one place that turns it into KDF's wire shapes.
//!
//! - `mod.rs`: the `RpcError` enum, its `From` conversions and the legacy `{"error": "..."}`.
//! - `shape`: the mmrpc 2.0 table (status, `error_type`, `error_path`, `error_trace`,
//!   `error_data`) and the v2 error object.
//! - `jsonrpc`: the JSON-RPC 2.0 codes and error object.

mod jsonrpc;
mod shape;

use crate::electrum::ElectrumError;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// An error answered to one request (or one batch item).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// No `userpass` in the request.
    #[error("Userpass is not set!")]
    UserpassNotSet,
    /// A `userpass` that does not match `rpc_password`.
    #[error("Userpass is invalid!")]
    UserpassInvalid,
    /// Too many wrong userpasses from this client; retry later.
    #[error("Too many failed userpass attempts from this address: locked out, retry in {0} s")]
    LockedOut(u64),
    /// A non-public method from a non-loopback client while `rpc_local_only` is on.
    #[error("Selected method can be called from localhost only!")]
    LocalHostOnly,
    /// Neither table knows the method.
    #[error("No such method")]
    NoSuchMethod,
    /// The v2 envelope cannot be parsed.
    #[error("Error parsing request: {0}")]
    InvalidRequest(String),
    /// `mmrpc` is not `"2.0"`.
    #[error("Error parsing mmrpc version: {0}")]
    InvalidMmRpcVersion(String),
    /// The method's parameters are missing or of the wrong type.
    #[error("{0}")]
    InvalidParams(String),
    /// An array element (or a whole body) that is not a JSON object.
    #[error("Invalid request: expected a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// The coin is not activated.
    #[error("No such coin: {0}")]
    NoSuchCoin(String),
    /// The coin is activated, or being activated, already.
    #[error("Coin {0} already initialized")]
    AlreadyActive(String),
    /// The coin cannot be activated as asked (not in the coins file, wrong protocol, bad format).
    #[error("{0}")]
    CoinConfig(String),
    /// No passphrase in the config: KDF's no-login mode.
    #[error("'CryptoCtx' is not initialized: set 'passphrase' in the config to use coins")]
    NoPassphrase,
    /// The first balance query of an activation failed, so the coin was not activated.
    #[error("Deactivated coin due to error in balance querying: {0}")]
    ActivationFailed(ElectrumError),
    /// A balance query failed.
    #[error("{0}")]
    Electrum(ElectrumError),
    /// The item ran past its time limit.
    #[error("Request timed out after {0:?}")]
    Timeout(Duration),
    /// A batch larger than `max_batch_items`.
    #[error("Batch has {0} items; the limit is {1}")]
    BatchTooLarge(usize, usize),
    /// An item past its method's per-batch cap.
    #[error("Batch holds more than {1} '{0}' items; this one is over the cap")]
    OverMethodCap(String, usize),
    /// Something that should not happen.
    #[error("Internal error: {0}")]
    Internal(String),
    /// One of KDF's typed mmrpc 2.0 errors of the wallet round (wallets, HD, tasks), built by the
    /// constructors in `rpc/kdf_errors.rs`.
    #[error("{}", .0.message)]
    Kdf(Box<crate::rpc::kdf_errors::KdfError>),
    // sending and address tools (addr helper)
    /// A withdrawal the library refused (KDF's `WithdrawError`).
    #[error("{0}")]
    Withdraw(crate::coins::withdraw::WithdrawError),
    /// `task::*::status` (and `user_action`) of an unknown task: 400.
    #[error("No such task '{0}'")]
    NoSuchTask(u64),
    /// `task::*::cancel` of an unknown task: KDF answers 404 here.
    #[error("No such task '{0}'")]
    NoSuchTaskToCancel(u64),
    /// `task::*::cancel` of a finished task.
    #[error("Task is finished already")]
    TaskFinished,
    /// The coin has no `sign_message_prefix`.
    #[error("sign_message_prefix is not set in coin config")]
    PrefixNotFound,
    /// `verify_message` with a signature that cannot be decoded.
    #[error("{0}")]
    SignatureDecoding(String),
    /// `verify_message` with an address that is not the coin's.
    #[error("{0}")]
    AddressDecoding(String),
    /// `get_raw_transaction` with a `tx_hash` that is not 32 bytes of hex.
    #[error("Invalid hash: {0}")]
    InvalidHash(String),
    /// `stream::*::enable` refused: KDF's `EnableError`, the reason (a streamer-manager error
    /// name such as `UnknownClient`, or a config complaint) is the data.
    #[error("{0}")]
    StreamEnable(String),
    /// `stream::disable` refused: KDF's `DisableError`.
    #[error("{0}")]
    StreamDisable(String),
    /// `stream::*::enable` for a coin that is not active: KDF's `CoinNotFound` (404, no data).
    #[error("Coin {0} is not found")]
    StreamCoinNotFound(String),
    /// An EVM node read failed after failover.
    #[error("{0}")]
    EvmTransport(crate::evm::EvmError),
    /// No EVM node answered at activation; nothing was activated.
    #[error("Failed to get client version for all nodes: {0}")]
    EvmUnreachable(crate::evm::EvmError),
    /// kdfd difference: the node's `eth_chainId` is not the coins file's `chain_id`.
    #[error("Chain id mismatch: the coins file says {expected}, the node reports {got}")]
    ChainIdMismatch {
        /// From the coins file.
        expected: u64,
        /// From `eth_chainId`.
        got: u64,
    },
    /// A token whose platform coin is not active.
    #[error("Platform coin {0} is not activated")]
    PlatformNotActive(String),
    /// v2 EVM activation of a platform that is active already (KDF's `PlatformIsAlreadyActivated`).
    #[error("Platform coin {0} is already activated")]
    PlatformAlreadyActive(String),
    /// v2 EVM activation of a token that is active already (KDF's `TokenIsAlreadyActivated`).
    #[error("Token {0} is already activated")]
    TokenAlreadyActive(String),
    /// v2 history of a coin that is not active.
    #[error("Coin {0} is not active")]
    CoinIsNotActive(String),
    /// History asked of a coin activated without `tx_history: true`.
    #[error("Storage is not initialized for {0}")]
    StorageIsNotInitialized(String),
    /// A history `target` that does not fit the wallet mode.
    #[error("{0}")]
    InvalidTarget(String),
    /// The history database failed (or a `FromId` it does not hold).
    #[error("{0}")]
    StorageError(String),
}

impl From<crate::coins::CoinError> for RpcError {
    fn from(e: crate::coins::CoinError) -> RpcError {
        use crate::coins::CoinError as C;
        match e {
            C::NoSuchCoin(c) => RpcError::NoSuchCoin(c),
            C::AlreadyActive(c) => RpcError::AlreadyActive(c),
            C::Config(m) => RpcError::CoinConfig(m),
            C::TokenConfigNotFound(t) => super::kdf_errors::token_config_not_found(&t),
            C::TokenProtocol { ticker, message } => {
                super::kdf_errors::unexpected_token_protocol(&ticker, &message)
            }
            C::InvalidParams(m) => RpcError::InvalidParams(m),
            C::NoKey => RpcError::NoPassphrase,
            C::ActivationFailed(e) => RpcError::ActivationFailed(e),
            C::Electrum(e) => RpcError::Electrum(e),
            C::Storage(m) => RpcError::Internal(m),
            C::Hd(f) => {
                use crate::coins::utxo::HdFailure as H;
                match f {
                    H::NotHd => crate::rpc::kdf_errors::not_hd(""),
                    H::UnknownAccount(a) => crate::rpc::kdf_errors::unknown_account(a),
                    H::EmptyAddressesLimitReached(g) => {
                        crate::rpc::kdf_errors::empty_addresses_limit(g)
                    }
                    H::AddressLimitReached(m) => crate::rpc::kdf_errors::address_limit(m),
                }
            }
            C::Evm(e) => RpcError::EvmTransport(e),
            C::EvmActivation(crate::evm::EvmError::ChainIdMismatch { expected, got }) => {
                RpcError::ChainIdMismatch { expected, got }
            }
            C::EvmActivation(e)
                if e.is_node_fault() || matches!(e, crate::evm::EvmError::AllNodesFailed(_)) =>
            {
                RpcError::EvmUnreachable(e)
            }
            C::EvmActivation(e) => RpcError::EvmTransport(e),
            C::PlatformNotActive(p) => RpcError::PlatformNotActive(p),
        }
    }
}

impl RpcError {
    /// The text of the legacy `{"error": ...}` (KDF's own wording for auth and local-only).
    fn legacy_text(&self) -> String {
        match self {
            RpcError::LocalHostOnly => {
                "Selected method is not allowed: Selected method can only be called from localhost."
                    .to_string()
            }
            RpcError::NoSuchMethod => "No such method.".to_string(),
            other => other.to_string(),
        }
    }

    /// The legacy answer: HTTP 500 (413/429 where they say more) and `{"error": "..."}`.
    pub fn legacy(&self) -> (StatusCode, Value) {
        let status = match self {
            RpcError::BatchTooLarge(..) => StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::LockedOut(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, json!({ "error": self.legacy_text() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userpass_not_set_is_kdfs_object() {
        let (status, body) = RpcError::UserpassNotSet.v2(None);
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body.to_string(),
            r#"{"mmrpc":"2.0","error":"Userpass is not set!","error_path":"dispatcher","error_trace":"dispatcher:150]","error_type":"UserpassIsNotSet","id":null}"#
        );
    }

    #[test]
    fn legacy_is_500_with_error_text() {
        let (status, body) = RpcError::NoSuchCoin("RICK".into()).legacy();
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body, json!({"error": "No such coin: RICK"}));
        let (_, body) =
            RpcError::InvalidMmRpcVersion("unknown variant `1.0`, expected `2.0`".into())
                .v2(Some(7));
        assert_eq!(body["error_type"], "InvalidMmRpcVersion");
        assert_eq!(body["error_data"], "unknown variant `1.0`, expected `2.0`");
        assert_eq!(body["id"], 7);
    }
}
