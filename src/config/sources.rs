//! Where the config and the coins list come from, in KDF's order.

use super::ConfigError;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Where to look for files, as given by flags and the environment.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// A JSON object given as the first argument.
    pub inline: Option<String>,
    /// `--conf FILE`.
    pub conf_file: Option<PathBuf>,
    /// `--coins FILE`.
    pub coins_file: Option<PathBuf>,
    /// `MM_CONF_PATH`.
    pub env_conf: Option<PathBuf>,
    /// `MM_COINS_PATH`.
    pub env_coins: Option<PathBuf>,
    /// The user's home directory, for `~/.kdf/`.
    pub home: Option<PathBuf>,
}

impl Sources {
    /// Reads `MM_CONF_PATH`, `MM_COINS_PATH` and `HOME` from the environment.
    pub fn from_env() -> Sources {
        let path = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        Sources {
            env_conf: path("MM_CONF_PATH"),
            env_coins: path("MM_COINS_PATH"),
            home: path("HOME"),
            ..Sources::default()
        }
    }
}

pub(super) fn read_file(path: &Path) -> Result<String, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::IsDir(path.to_path_buf()));
    }
    std::fs::read_to_string(path).map_err(|_| ConfigError::Missing(path.to_path_buf()))
}

/// Finds the config text: argument JSON, `--conf`, `MM_CONF_PATH`, `./MM2.json`, `~/.kdf/MM2.json`.
pub(super) fn conf_text(src: &Sources) -> Result<String, ConfigError> {
    if let Some(path) = &src.conf_file {
        return read_file(path);
    }
    if let Some(text) = &src.inline {
        return Ok(text.clone());
    }
    if let Some(path) = &src.env_conf {
        return read_file(path);
    }
    let local = PathBuf::from("MM2.json");
    if local.is_file() {
        return read_file(&local);
    }
    if let Some(home) = &src.home {
        let p = home.join(".kdf").join("MM2.json");
        if p.is_file() {
            return read_file(&p);
        }
    }
    Err(ConfigError::NoConfig)
}

/// The entries of a coins list in either shape: KDF's `coins` array, or the Komodo Wallet
/// SDK's `coins_config*.json` object keyed by ticker (an entry without `coin` takes its key).
fn entries(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(list) => Ok(list),
        Value::Object(map) => Ok(map
            .into_iter()
            .map(|(ticker, mut entry)| {
                if let Some(o) = entry.as_object_mut() {
                    o.entry("coin").or_insert(Value::String(ticker));
                }
                entry
            })
            .collect()),
        _ => Err("not an array of coin entries or an object of them keyed by ticker".into()),
    }
}

/// Finds the coins list: `--coins`, inline `coins`, `MM_COINS_PATH`, `./coins`, `~/.kdf/coins`.
pub(super) fn coins_list(src: &Sources, conf: &Value) -> Result<(Vec<Value>, String), ConfigError> {
    let from_file = |path: &Path| -> Result<(Vec<Value>, String), ConfigError> {
        let text = read_file(path)?;
        let v = serde_json::from_str::<Value>(&text)
            .map_err(|e| ConfigError::BadCoins(path.into(), e.to_string()))?;
        entries(v)
            .map(|list| (list, path.display().to_string()))
            .map_err(|e| ConfigError::BadCoins(path.into(), e))
    };
    if let Some(path) = &src.coins_file {
        return from_file(path);
    }
    match conf.get("coins") {
        Some(Value::Null) | None => {}
        Some(v) => {
            return entries(v.clone())
                .map(|list| (list, "config".to_string()))
                .map_err(|e| ConfigError::Invalid(format!("coins: {e}")))
        }
    }
    if let Some(path) = &src.env_coins {
        return from_file(path);
    }
    let local = PathBuf::from("coins");
    if local.exists() {
        return from_file(&local);
    }
    let home = src
        .home
        .as_ref()
        .map(|h| h.join(".kdf").join("coins"))
        .unwrap_or(local);
    if home.exists() {
        return from_file(&home);
    }
    Err(ConfigError::NoCoins(home))
}
