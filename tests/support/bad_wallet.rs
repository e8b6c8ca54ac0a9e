//! Case tables and a garbage-answering HTTP server for tests/bad_input_wallet.rs.

pub mod cases;
pub mod garbage_http;

use super::USERPASS;
use serde_json::{json, Value};

/// The HD test mnemonic (KDF's test vectors).
pub const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";
/// The wallet password of the corpus's wallet file.
pub const WALLET_PW: &str = "Strong-Pass1!";

/// An mmrpc 2.0 request with the test userpass.
pub fn v2(method: &str, params: Value) -> Value {
    json!({"mmrpc": "2.0", "userpass": USERPASS, "method": method, "params": params, "id": 3})
}
