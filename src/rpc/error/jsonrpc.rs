//! The JSON-RPC 2.0 shape of every `RpcError`: the standard codes and kdfd's application codes
//! (documented in docs/rpc.md).

use super::RpcError;
use serde_json::{json, Map, Value};

impl RpcError {
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
            StorageIsNotInitialized(_) | StorageError(_) => -32044,
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
}
