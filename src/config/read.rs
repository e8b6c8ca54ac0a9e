//! Typed readers of config values (each error one line naming the key) and KDF's password policy.

use super::ConfigError;
use serde_json::Value;

/// KDF's password policy, checks in KDF's order.
pub fn check_password_policy(pw: &str) -> Result<(), ConfigError> {
    use ConfigError::WeakPassword as W;
    if pw.to_lowercase().contains("password") {
        return Err(W("Password can't contain the word password"));
    }
    if pw.chars().count() < 8 {
        return Err(W("Password length should be at least 8 characters long"));
    }
    if !pw.chars().any(|c| c.is_ascii_digit()) {
        return Err(W("Password should contain at least 1 digit"));
    }
    if !pw.chars().any(|c| c.is_lowercase()) {
        return Err(W("Password should contain at least 1 lowercase character"));
    }
    if !pw.chars().any(|c| c.is_uppercase()) {
        return Err(W("Password should contain at least 1 uppercase character"));
    }
    if !pw.chars().any(|c| !c.is_ascii_alphanumeric()) {
        return Err(W("Password should contain at least 1 special character"));
    }
    let chars: Vec<char> = pw.chars().collect();
    if chars.windows(3).any(|w| w[0] == w[1] && w[1] == w[2]) {
        return Err(W(
            "Password can't contain the same character 3 times in a row",
        ));
    }
    Ok(())
}

/// A u64 from a JSON number or a numeric string (KDF accepts both for ports).
pub(super) fn as_u64_lenient(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub(super) fn opt_u64(conf: &Value, key: &str) -> Result<Option<u64>, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_u64_lenient(v)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid(format!("{key} must be a non-negative integer"))),
    }
}

pub(super) fn opt_bool(conf: &Value, key: &str, default: bool) -> Result<bool, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ConfigError::Invalid(format!("{key} must be true or false"))),
    }
}

pub(super) fn opt_string(
    conf: &Value,
    key: &str,
    msg: &str,
) -> Result<Option<String>, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::Invalid(msg.to_string())),
    }
}

/// Validates `rpcport` as KDF does: 0 = any free port, below 1024 or above 65535 refused.
pub(super) fn parse_port(conf: &Value) -> Result<u16, ConfigError> {
    let Some(v) = conf.get("rpcport").filter(|v| !v.is_null()) else {
        return Ok(7783);
    };
    let port = as_u64_lenient(v)
        .ok_or_else(|| ConfigError::Invalid("rpcport must be a number".to_string()))?;
    match port {
        0 => Ok(0),
        1..=1023 => Err(ConfigError::Invalid("rpcport < 1024".to_string())),
        p if p > u16::MAX as u64 => Err(ConfigError::Invalid("rpcport > u16".to_string())),
        p => Ok(p as u16),
    }
}
