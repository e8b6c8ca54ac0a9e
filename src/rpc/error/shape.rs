//! The mmrpc 2.0 shape of every `RpcError`: one table row per variant.

use super::RpcError;
use hyper::StatusCode;
use serde_json::{json, Map, Value};

/// How an error looks on the wire.
pub(super) struct Shape {
    pub(super) status: StatusCode,
    pub(super) error_type: &'static str,
    pub(super) path: &'static str,
    pub(super) trace: &'static str,
    pub(super) data: Option<Value>,
}

impl RpcError {
    pub(super) fn shape(&self) -> Shape {
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
