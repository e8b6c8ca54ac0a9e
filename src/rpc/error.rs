//! Every error a request can get, and the one place that turns it into KDF's wire shapes: the
//! legacy `{"error": "..."}` and the mmrpc 2.0 error object.

use crate::electrum::ElectrumError;
use hyper::StatusCode;
use serde_json::{json, Map, Value};
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
    Kdf(Box<super::kdf_errors::KdfError>),
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
            C::InvalidParams(m) => RpcError::InvalidParams(m),
            C::NoKey => RpcError::NoPassphrase,
            C::ActivationFailed(e) => RpcError::ActivationFailed(e),
            C::Electrum(e) => RpcError::Electrum(e),
            C::Storage(m) => RpcError::Internal(m),
            C::Hd(f) => {
                use crate::coins::utxo::HdFailure as H;
                match f {
                    H::NotHd => super::kdf_errors::not_hd(""),
                    H::UnknownAccount(a) => super::kdf_errors::unknown_account(a),
                    H::EmptyAddressesLimitReached(g) => super::kdf_errors::empty_addresses_limit(g),
                    H::AddressLimitReached(m) => super::kdf_errors::address_limit(m),
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

/// How an error looks on the wire.
struct Shape {
    status: StatusCode,
    error_type: &'static str,
    path: &'static str,
    trace: &'static str,
    data: Option<Value>,
}

impl RpcError {
    fn shape(&self) -> Shape {
        use RpcError::*;
        let s = |status, error_type, path, trace, data| Shape {
            status,
            error_type,
            path,
            trace,
            data,
        };
        let bad = StatusCode::BAD_REQUEST;
        let forbidden = StatusCode::FORBIDDEN;
        let internal = StatusCode::INTERNAL_SERVER_ERROR;
        match self {
            UserpassNotSet => s(
                forbidden,
                "UserpassIsNotSet",
                "dispatcher",
                "dispatcher:150]",
                None,
            ),
            UserpassInvalid => s(
                forbidden,
                "UserpassIsInvalid",
                "dispatcher",
                "dispatcher:150]",
                None,
            ),
            LockedOut(secs) => s(
                StatusCode::TOO_MANY_REQUESTS,
                "UserpassIsInvalid",
                "dispatcher",
                "dispatcher:150]",
                Some(json!({"error_type": "RetryAfterSecs", "error_data": secs})),
            ),
            LocalHostOnly => s(
                forbidden,
                "LocalHostOnly",
                "dispatcher",
                "dispatcher:94]",
                None,
            ),
            NoSuchMethod => s(bad, "NoSuchMethod", "dispatcher", "dispatcher:271]", None),
            InvalidRequest(m) => s(
                bad,
                "InvalidRequest",
                "dispatcher",
                "dispatcher:84]",
                Some(json!(m)),
            ),
            InvalidMmRpcVersion(m) => s(
                bad,
                "InvalidMmRpcVersion",
                "rpc",
                "rpc:204]",
                Some(json!(m)),
            ),
            InvalidParams(m) => s(
                bad,
                "InvalidRequest",
                "dispatcher",
                "dispatcher:125]",
                Some(json!(m)),
            ),
            NotAnObject(_) => s(bad, "InvalidRequest", "dispatcher", "dispatcher:84]", None),
            NoSuchCoin(c) => s(
                bad,
                "NoSuchCoin",
                "coins",
                "coins]",
                Some(json!({"coin": c})),
            ),
            AlreadyActive(c) => s(
                bad,
                "CoinIsAlreadyActivated",
                "coins",
                "coins]",
                Some(json!({"ticker": c})),
            ),
            CoinConfig(m) => s(
                bad,
                "CoinConfigIsNotFound",
                "coins",
                "coins]",
                Some(json!(m)),
            ),
            NoPassphrase => s(internal, "Internal", "crypto", "crypto]", None),
            ActivationFailed(e) | Electrum(e) => s(
                internal,
                "Transport",
                "electrum",
                "electrum]",
                Some(json!(e.to_string())),
            ),
            Timeout(d) => s(
                StatusCode::REQUEST_TIMEOUT,
                "Timeout",
                "rpc",
                "rpc]",
                Some(json!(d.as_secs_f64())),
            ),
            BatchTooLarge(..) => s(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BatchTooLarge",
                "rpc",
                "rpc]",
                None,
            ),
            OverMethodCap(m, cap) => s(
                StatusCode::TOO_MANY_REQUESTS,
                "OverMethodCap",
                "rpc",
                "rpc]",
                Some(json!({"method": m, "cap": cap})),
            ),
            Internal(m) => s(internal, "Internal", "rpc", "rpc]", Some(json!(m))),
            Kdf(k) => s(
                StatusCode::from_u16(k.status).unwrap_or(internal),
                k.error_type,
                k.path,
                k.trace,
                k.data.clone(),
            ),
            Withdraw(e) => {
                use crate::coins::withdraw::WithdrawError as W;
                let status = match e {
                    W::InternalError(_) => internal,
                    _ => bad,
                };
                let data = match e {
                    W::NotSufficientBalance {
                        coin,
                        available,
                        required,
                    } => json!({"coin": coin, "available": available, "required": required}),
                    W::AmountTooLow { amount, threshold } => {
                        json!({"amount": amount, "threshold": threshold})
                    }
                    W::ZeroBalanceToWithdrawMax => Value::Null,
                    W::InvalidFeePolicy(m)
                    | W::InvalidAddress(m)
                    | W::UnsupportedCoin(m)
                    | W::InternalError(m) => json!(m),
                };
                let data = (!data.is_null()).then_some(data);
                s(status, e.error_type(), "withdraw", "withdraw]", data)
            }
            NoSuchTask(id) => s(bad, "NoSuchTask", "rpc_task", "rpc_task]", Some(json!(id))),
            NoSuchTaskToCancel(id) => s(
                StatusCode::NOT_FOUND,
                "NoSuchTask",
                "rpc_task",
                "rpc_task]",
                Some(json!(id)),
            ),
            TaskFinished => s(
                StatusCode::CONFLICT,
                "TaskFinished",
                "rpc_task",
                "rpc_task]",
                None,
            ),
            PrefixNotFound => s(
                internal,
                "PrefixNotFound",
                "utxo_common",
                "utxo_common]",
                None,
            ),
            SignatureDecoding(m) => s(
                bad,
                "SignatureDecodingError",
                "utxo_common",
                "utxo_common]",
                Some(json!(m)),
            ),
            AddressDecoding(m) => s(
                bad,
                "AddressDecodingError",
                "utxo_common",
                "utxo_common]",
                Some(json!(m)),
            ),
            InvalidHash(m) => s(
                bad,
                "InvalidHashError",
                "lp_coins",
                "lp_coins]",
                Some(json!(m)),
            ),
            StreamEnable(m) => s(
                bad,
                "EnableError",
                "streaming",
                "streaming]",
                Some(json!(m)),
            ),
            StreamDisable(m) => s(
                bad,
                "DisableError",
                "streaming",
                "streaming]",
                Some(json!(m)),
            ),
            StreamCoinNotFound(_) => s(
                StatusCode::NOT_FOUND,
                "CoinNotFound",
                "streaming",
                "streaming]",
                None,
            ),
            EvmTransport(e) | EvmUnreachable(e) => s(
                StatusCode::BAD_GATEWAY,
                "Transport",
                "eth",
                "eth]",
                Some(json!(e.to_string())),
            ),
            ChainIdMismatch { expected, got } => s(
                bad,
                "ChainIdMismatch",
                "eth",
                "eth]",
                Some(json!({"expected": expected, "got": got})),
            ),
            PlatformNotActive(p) => s(
                bad,
                "PlatformCoinIsNotActivated",
                "token",
                "token]",
                Some(json!(p)),
            ),
            PlatformAlreadyActive(t) => s(
                bad,
                "PlatformIsAlreadyActivated",
                "platform_coin_with_tokens",
                "platform_coin_with_tokens]",
                Some(json!(t)),
            ),
            TokenAlreadyActive(t) => s(
                bad,
                "TokenIsAlreadyActivated",
                "token",
                "token]",
                Some(json!(t)),
            ),
            CoinIsNotActive(c) => s(
                StatusCode::NOT_FOUND,
                "CoinIsNotActive",
                "my_tx_history_v2",
                "my_tx_history_v2]",
                Some(json!(c)),
            ),
            StorageIsNotInitialized(m) => s(
                internal,
                "StorageIsNotInitialized",
                "my_tx_history_v2",
                "my_tx_history_v2]",
                Some(json!(m)),
            ),
            InvalidTarget(m) => s(
                bad,
                "InvalidTarget",
                "my_tx_history_v2",
                "my_tx_history_v2]",
                Some(json!(m)),
            ),
            StorageError(m) => s(
                internal,
                "StorageError",
                "my_tx_history_v2",
                "my_tx_history_v2]",
                Some(json!(m)),
            ),
        }
    }

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

    /// The JSON-RPC 2.0 error code: the standard ones, and kdfd's application codes
    /// (documented in docs/rpc.md).
    pub fn jsonrpc_code(&self) -> i64 {
        use RpcError::*;
        match self {
            InvalidRequest(_) | NotAnObject(_) | InvalidMmRpcVersion(_) => -32600,
            NoSuchMethod => -32601,
            InvalidParams(_) => -32602,
            Internal(_) => -32603,
            UserpassNotSet => -32001,
            UserpassInvalid => -32002,
            LockedOut(_) => -32003,
            LocalHostOnly => -32004,
            NoSuchCoin(_) => -32010,
            AlreadyActive(_) => -32011,
            CoinConfig(_) => -32012,
            NoPassphrase => -32013,
            ActivationFailed(_) => -32020,
            Electrum(_) => -32021,
            Timeout(_) => -32030,
            BatchTooLarge(..) | OverMethodCap(..) => -32031,
            Kdf(_) => -32050,
            Withdraw(_) => -32040,
            NoSuchTask(_) | NoSuchTaskToCancel(_) => -32041,
            TaskFinished => -32042,
            PrefixNotFound => -32043,
            SignatureDecoding(_) | AddressDecoding(_) | InvalidHash(_) => -32602,
            StreamEnable(_) => -32060,
            StreamDisable(_) => -32061,
            StreamCoinNotFound(_) => -32062,
            EvmTransport(_) | EvmUnreachable(_) => -32021,
            ChainIdMismatch { .. } => -32012,
            PlatformNotActive(_) => -32010,
            PlatformAlreadyActive(_) | TokenAlreadyActive(_) => -32011,
            CoinIsNotActive(_) => -32010,
            StorageIsNotInitialized(_) | StorageError(_) => -32040,
            InvalidTarget(_) => -32602,
        }
    }

    /// The JSON-RPC 2.0 error response: `data` carries kdfd's error type and data.
    pub fn jsonrpc(&self, id: Value) -> Value {
        let shape = self.shape();
        let mut data = Map::new();
        data.insert("error_type".into(), json!(shape.error_type));
        if let Some(d) = shape.data {
            data.insert("error_data".into(), d);
        }
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": self.jsonrpc_code(), "message": self.to_string(), "data": data},
        })
    }

    /// The error object a failed task reports as its `Error` details: the mmrpc 2.0 error
    /// without `mmrpc` and `id`.
    pub fn task_details(&self) -> Value {
        self.details()
    }

    /// The v2 error object without `mmrpc` and `id`: a task's `Error` details.
    pub fn details(&self) -> Value {
        let (_, mut v) = self.v2(None);
        if let Some(m) = v.as_object_mut() {
            m.remove("mmrpc");
            m.remove("id");
        }
        v
    }

    /// The HTTP status of the v2 answer.
    pub fn v2_status(&self) -> StatusCode {
        self.shape().status
    }

    /// The mmrpc 2.0 answer, with the request's `id` echoed.
    pub fn v2(&self, id: Option<u64>) -> (StatusCode, Value) {
        let shape = self.shape();
        let mut m = Map::new();
        m.insert("mmrpc".into(), json!("2.0"));
        m.insert("error".into(), json!(self.to_string()));
        m.insert("error_path".into(), json!(shape.path));
        m.insert("error_trace".into(), json!(shape.trace));
        m.insert("error_type".into(), json!(shape.error_type));
        if let Some(d) = shape.data {
            m.insert("error_data".into(), d);
        }
        m.insert("id".into(), json!(id));
        (shape.status, Value::Object(m))
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
