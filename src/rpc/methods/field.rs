//! Typed pieces of legacy requests that keep kdfd's legacy wording. serde's own text names no
//! field (`invalid type: string "x", expected u64`), and legacy clients see which key was wrong,
//! so these readers say `'<key>': invalid type: <json>, expected <what>` as the hand-written
//! readers did.

use super::RpcError;
use serde::de::{DeserializeOwned, Deserializer, Error};
use serde::Deserialize;
use serde_json::Value;

/// A field that may be absent: `null` reads as absent, and a value `take` refuses (handing it
/// back) is `'<key>': invalid type: <value>, expected <what>`.
fn optional<'de, D, T>(
    d: D,
    key: &str,
    what: &str,
    take: impl FnOnce(Value) -> Result<T, Value>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => take(v)
            .map(Some)
            .map_err(|v| D::Error::custom(format!("'{key}': invalid type: {v}, expected {what}"))),
    }
}

/// One `deserialize_with` reader per key, named after the key (use with `#[serde(default)]`).
macro_rules! readers {
    ($($key:ident: $t:ty = $what:literal, $take:expr;)*) => {$(
        pub fn $key<'de, D: Deserializer<'de>>(d: D) -> Result<Option<$t>, D::Error> {
            optional(d, stringify!($key), $what, $take)
        }
    )*};
}

readers! {
    min_connected: u64 = "u64", |v| v.as_u64().ok_or(v);
    max_connected: u64 = "u64", |v| v.as_u64().ok_or(v);
    required_confirmations: u64 = "u64", |v| v.as_u64().ok_or(v);
    requires_notarization: bool = "a boolean", |v| v.as_bool().ok_or(v);
    tx_history: bool = "a boolean", |v| v.as_bool().ok_or(v);
    force_disable: bool = "a boolean", |v| v.as_bool().ok_or(v);
    servers: Vec<Value> = "a sequence", |v| match v {
        Value::Array(list) => Ok(list),
        v => Err(v),
    };
}

/// `coin`, with KDF's `No 'coin' field` when it is absent or `null`.
#[derive(Deserialize)]
struct CoinField {
    #[serde(default, deserialize_with = "coin")]
    coin: Option<String>,
}

fn coin<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        v => Err(D::Error::custom(format!(
            "'coin' must be a string, got {v}"
        ))),
    }
}

/// A legacy request that names a coin, as `(ticker, T)`. `coin` is read before the method's own
/// fields (KDF looks at it first), so a request without one says so whatever else is wrong.
pub fn with_coin<T: DeserializeOwned>(req: &Value) -> Result<(String, T), RpcError> {
    let invalid = |e: serde_json::Error| RpcError::InvalidParams(e.to_string());
    let CoinField { coin } = CoinField::deserialize(req).map_err(invalid)?;
    let coin = coin.ok_or_else(|| RpcError::InvalidParams("No 'coin' field".into()))?;
    Ok((coin, T::deserialize(req).map_err(invalid)?))
}

/// The params of a method that takes none: absent, `null` or `{}`. Anything else is refused, so
/// a misspelt argument is not silently ignored.
struct NoParams;

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NoParams, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(NoParams),
            Value::Object(m) if m.is_empty() => Ok(NoParams),
            v => Err(D::Error::custom(format!("takes no params, got {v}"))),
        }
    }
}

/// Checks that `method` got no params (`{method} takes no params, got <params>`).
pub fn no_params(method: &str, params: &Value) -> Result<(), RpcError> {
    NoParams::deserialize(params)
        .map(|NoParams| ())
        .map_err(|e| RpcError::InvalidParams(format!("{method} {e}")))
}
