//! KDF's `MM2.json` and `coins` file, found and validated the way KDF finds them, plus kdfd's own
//! limits. Everything here is checked at start-up so that a bad config fails once, clearly.
//!
//! - `sources`: where the config and the coins list come from (argument, flags, env, files).
//! - `read`: typed readers of config values and KDF's password policy.
//! - `limits`: kdfd's request bounds and the brute-force defence's settings.
//! - `wallet`: the wallet keys (`wallet_name`, `wallet_password`, `passphrase`, `enable_hd`, ...).

mod limits;
mod read;
mod sources;
mod wallet;

pub use limits::{AuthLimits, Limits};
pub use read::check_password_policy;
pub use sources::Sources;
pub use wallet::{PassphraseConf, WalletConf};

use limits::{parse_auth, parse_limits};
use read::{opt_bool, opt_string, opt_u64, parse_port};
use serde_json::Value;
use sources::{coins_list, conf_text};
use std::net::IpAddr;
use std::path::PathBuf;

/// A config that cannot be used; each message is one line, KDF's text where KDF has one.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config text is not a JSON object.
    #[error("Couldn't parse mm2 config to JSON format! ({0})")]
    NotJson(String),
    /// A named file could not be read.
    #[error("File '{0}' is not present.")]
    Missing(PathBuf),
    /// A named path is a directory.
    #[error("Expected file but '{0}' is a directory.")]
    IsDir(PathBuf),
    /// No config file anywhere KDF looks.
    #[error("No config: pass a JSON object as the first argument, --conf FILE, MM_CONF_PATH, ./MM2.json or ~/.kdf/MM2.json")]
    NoConfig,
    /// No coins list anywhere KDF looks.
    #[error("No coins are set in JSON config and '{0}' file doesn't exist")]
    NoCoins(PathBuf),
    /// The coins file is not a JSON array.
    #[error("Couldn't parse coins file '{0}' as a JSON array: {1}")]
    BadCoins(PathBuf, String),
    /// A key has a value of the wrong type or range.
    #[error("{0}")]
    Invalid(String),
    /// `rpc_password` fails KDF's password policy.
    #[error("{0}")]
    WeakPassword(&'static str),
}

/// A secret config value (`rpc_password`): reads as `&str`, never shows in `Debug`, so a
/// `?config` in a log line cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The daemon's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client name part sent to Electrum servers (`"<gui> GUI/MM2 <version>"`).
    pub gui: String,
    /// KDF network id (kept for compatibility; kdfd runs no P2P).
    pub netid: u16,
    /// The wallet to open (passphrase, wallet file, HD mode); all empty is KDF's no-login mode.
    pub wallet: WalletConf,
    /// `event_streaming_configuration` is present: `/event-stream` is served (KDF answers it
    /// with a 500 otherwise).
    pub event_stream_enabled: bool,
    /// `event_streaming_configuration.access_control_allow_origin`, the one origin (or `*`) a
    /// cross-origin page may read the stream from; `None`: no cross-origin access (KDF: `*`).
    pub event_stream_origin: Option<String>,
    /// The userpass every non-public request must carry.
    pub rpc_password: Option<Secret>,
    /// Address to listen on.
    pub rpcip: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub rpcport: u16,
    /// Refuse non-public methods from non-loopback clients.
    pub rpc_local_only: bool,
    /// `Access-Control-Allow-Origin` value, and the one origin (or `*`) a cross-origin request
    /// to `/` or `/ws` may come from.
    pub rpccors: String,
    /// `rpc_allowed_hosts`: `Host` names accepted besides loopback and `rpcip` (lower-case, no
    /// port; `*` accepts any), as geth's `--http.vhosts`.
    pub rpc_allowed_hosts: Vec<String>,
    /// `dbdir`: where wallet files and the database live (see `wallet::db_root` for the default).
    pub dbdir: Option<PathBuf>,
    /// The raw coins list (entries validated by the coin registry).
    pub coins: Vec<Value>,
    /// Where the coins list came from, for messages.
    pub coins_source: String,
    /// Keys present but not read by kdfd, for a start-up warning.
    pub ignored_keys: Vec<String>,
    /// Keys of `ACCEPTED_UNUSED` present in the config, for one debug line at start.
    pub accepted_unused: Vec<String>,
    /// Bounds on requests.
    pub limits: Limits,
    /// Brute-force defence.
    pub auth: AuthLimits,
    /// Serve `my_balance` from a cache that scripthash subscriptions keep fresh.
    pub balance_cache: bool,
}

/// Every key kdfd reads, KDF's and its own; others are logged as ignored.
pub const KNOWN_KEYS: &[&str] = &[
    "gui",
    "netid",
    "passphrase",
    "rpc_password",
    "allow_weak_password",
    "rpcip",
    "rpcport",
    "rpc_local_only",
    "rpccors",
    "rpc_allowed_hosts",
    "dbdir",
    "coins",
    "enable_hd",
    "wallet_name",
    "wallet_password",
    "hd_account_id",
    "event_streaming_configuration",
    "max_finished_tasks",
    "electrum_max_array",
    "electrum_cost_budget",
    "electrum_cost_reserve",
    "electrum_cost_decay_per_sec",
    "max_body_bytes",
    "max_batch_items",
    "batch_concurrency",
    "max_inflight_items",
    "max_response_bytes",
    "batch_method_caps",
    "max_connections",
    "max_connections_per_ip",
    "max_stream_connections",
    "argon2_concurrency",
    "argon2_max_waiting",
    "item_timeout_sec",
    "electrum_timeout_sec",
    "header_timeout_sec",
    "body_timeout_sec",
    "drain_timeout_sec",
    "auth_fail_threshold",
    "auth_fail_threshold_loopback",
    "auth_fail_window_sec",
    "auth_lockout_sec",
    "auth_lockout_max_sec",
    "auth_lockout_decay_sec",
    "auth_fail_delay_ms",
    "auth_lockout_exempt_loopback",
    "balance_cache",
    "ws_max_batch_items",
    "ws_max_message_bytes",
];

/// Keys the Komodo Wallet's SDK sends that kdfd accepts and does not act on (P2P, swaps, its own
/// bookkeeping): listed once at debug level, never warned about.
pub const ACCEPTED_UNUSED: &[&str] = &[
    "mm2",
    "userhome",
    "seednodes",
    "disable_p2p",
    "i_am_seed",
    "is_bootstrap_node",
    "allow_registrations",
    "https",
];

/// Keys of a config object that kdfd does not read (KDF's P2P and swap settings, typos).
pub fn unknown_keys(conf: &Value) -> Vec<String> {
    conf.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| {
                    !KNOWN_KEYS.contains(&k.as_str()) && !ACCEPTED_UNUSED.contains(&k.as_str())
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

impl Config {
    /// Loads and validates the config and coins list from wherever KDF would find them.
    pub fn load(src: &Sources) -> Result<Config, ConfigError> {
        let text = conf_text(src)?;
        let conf: Value =
            serde_json::from_str(&text).map_err(|e| ConfigError::NotJson(e.to_string()))?;
        if !conf.is_object() {
            return Err(ConfigError::NotJson("not a JSON object".to_string()));
        }
        Config::from_json(src, &conf)
    }

    /// Validates a parsed config object.
    pub fn from_json(src: &Sources, conf: &Value) -> Result<Config, ConfigError> {
        let rpc_password = match conf.get("rpc_password") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => {
                return Err(ConfigError::Invalid(
                    "rpc_password must not be empty".to_string(),
                ))
            }
            Some(Value::String(s)) => Some(Secret(s.clone())),
            Some(_) => {
                return Err(ConfigError::Invalid(
                    "rpc_password must be string".to_string(),
                ))
            }
        };
        if let Some(pw) = &rpc_password {
            if !opt_bool(conf, "allow_weak_password", false)? {
                check_password_policy(pw)?;
            }
        }
        let wallet = wallet::parse(conf)?;
        let rpcip = match opt_string(conf, "rpcip", "rpcip is not a string")? {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(s) => s.parse().map_err(|e| {
                ConfigError::Invalid(format!("rpcip '{s}' is not an IP address: {e}"))
            })?,
        };
        let netid = match opt_u64(conf, "netid")? {
            None => 0,
            Some(7777) => {
                return Err(ConfigError::Invalid(
                    "netid 7777 is deprecated; choose another netid".to_string(),
                ))
            }
            Some(n) if n <= u16::MAX as u64 => n as u16,
            Some(_) => return Err(ConfigError::Invalid("netid must fit in u16".to_string())),
        };
        let (coins, coins_source) = coins_list(src, conf)?;
        Ok(Config {
            gui: opt_string(conf, "gui", "gui must be a string")?
                .unwrap_or_else(|| "UNKNOWN".to_string()),
            netid,
            wallet,
            event_stream_enabled: !matches!(
                conf.get("event_streaming_configuration"),
                None | Some(Value::Null)
            ),
            event_stream_origin: conf
                .get("event_streaming_configuration")
                .and_then(|v| v.get("access_control_allow_origin"))
                .and_then(Value::as_str)
                .map(str::to_string),
            rpc_password,
            rpcip,
            rpcport: parse_port(conf)?,
            rpc_local_only: opt_bool(conf, "rpc_local_only", true)?,
            rpccors: opt_string(conf, "rpccors", "rpccors must be a string")?
                .unwrap_or_else(|| "http://localhost:3000".to_string()),
            rpc_allowed_hosts: allowed_hosts(conf)?,
            dbdir: opt_string(conf, "dbdir", "dbdir must be a string")?.map(PathBuf::from),
            coins,
            coins_source,
            ignored_keys: unknown_keys(conf),
            accepted_unused: ACCEPTED_UNUSED
                .iter()
                .filter(|k| conf.get(**k).is_some())
                .map(|k| k.to_string())
                .collect(),
            limits: parse_limits(conf)?,
            auth: parse_auth(conf)?,
            balance_cache: opt_bool(conf, "balance_cache", true)?,
        })
    }
}

/// `rpc_allowed_hosts`: an array of host names (a port or trailing dot is dropped).
fn allowed_hosts(conf: &Value) -> Result<Vec<String>, ConfigError> {
    let bad =
        || ConfigError::Invalid("rpc_allowed_hosts must be an array of host names".to_string());
    match conf.get("rpc_allowed_hosts") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                let s = v.as_str().ok_or_else(bad)?.trim().to_ascii_lowercase();
                let s = match s.rsplit_once(':') {
                    Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => {
                        h.to_string()
                    }
                    _ => s,
                };
                let s = s.trim_start_matches('[').trim_end_matches(']');
                let s = s.strip_suffix('.').unwrap_or(s);
                if s.is_empty() {
                    return Err(bad());
                }
                Ok(s.to_string())
            })
            .collect(),
        Some(_) => Err(bad()),
    }
}

#[cfg(test)]
mod tests;
