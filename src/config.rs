//! KDF's `MM2.json` and `coins` file, found and validated the way KDF finds them, plus kdfd's own
//! limits. Everything here is checked at start-up so that a bad config fails once, clearly.

use serde_json::Value;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// kdfd's bounds on what one client may make it do; every one is a config key.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted request body in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Most items in one batch; a larger batch runs nothing.
    pub max_batch_items: usize,
    /// How many items of one batch run at the same time.
    pub batch_concurrency: usize,
    /// Time limit of one item; past it the item's slot gets an error.
    pub item_timeout: Duration,
    /// Connect + request timeout for Electrum servers without their own `timeout_sec`.
    pub electrum_timeout: Duration,
    /// How long a graceful shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Most HTTP connections served at once (503 past it).
    pub max_connections: usize,
    /// Time a client has to send its request headers.
    pub header_timeout: Duration,
    /// Time a client has to send its request body.
    pub body_timeout: Duration,
    /// Most batch items (and single requests) running at once across all clients; more wait.
    pub max_inflight_items: usize,
    /// Largest response body; a larger answer is replaced by an error.
    pub max_response_bytes: usize,
    /// `batch_method_caps`: per-method overrides of the table's default caps; items past the cap
    /// get an error slot.
    pub method_caps: std::collections::HashMap<String, usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            max_batch_items: 1000,
            batch_concurrency: 1000,
            item_timeout: Duration::from_secs(60),
            electrum_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(30),
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_inflight_items: 20_000,
            max_response_bytes: 64 * 1024 * 1024,
            // Only the config's overrides; each method's default cap is in the RPC method table.
            method_caps: Default::default(),
        }
    }
}

/// The brute-force defence's settings (see `guard`).
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Failed attempts within `window` that trigger a lock-out.
    pub threshold: u32,
    /// Window over which failures are counted.
    pub window: Duration,
    /// First lock-out; doubles with each repeat offence.
    pub lockout: Duration,
    /// Longest lock-out.
    pub max_lockout: Duration,
    /// One offence is forgiven per quiet period of this length.
    pub decay: Duration,
    /// Delay of every failed check, served one at a time per client IP.
    pub delay: Duration,
    /// Loopback clients are never locked out (they still get the delay).
    pub exempt_loopback: bool,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            threshold: 10,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(3600),
            decay: Duration::from_secs(600),
            delay: Duration::from_millis(250),
            exempt_loopback: true,
        }
    }
}

/// The daemon's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// Client name part sent to Electrum servers (`"<gui> GUI/MM2 <version>"`).
    pub gui: String,
    /// KDF network id (kept for compatibility; kdfd runs no P2P).
    pub netid: u16,
    /// Wallet passphrase, WIF or `0x` hex key; `None` is KDF's no-login mode.
    pub passphrase: Option<String>,
    /// The userpass every non-public request must carry.
    pub rpc_password: Option<String>,
    /// Address to listen on.
    pub rpcip: IpAddr,
    /// Port to listen on; 0 picks a free one.
    pub rpcport: u16,
    /// Refuse non-public methods from non-loopback clients.
    pub rpc_local_only: bool,
    /// `Access-Control-Allow-Origin` value.
    pub rpccors: String,
    /// Database directory (kdfd keeps no state there yet).
    pub dbdir: Option<PathBuf>,
    /// The raw coins list (entries validated by the coin registry).
    pub coins: Vec<Value>,
    /// Where the coins list came from, for messages.
    pub coins_source: String,
    /// Keys present but not read by kdfd, for a start-up warning.
    pub ignored_keys: Vec<String>,
    /// Bounds on requests.
    pub limits: Limits,
    /// Brute-force defence.
    pub auth: AuthLimits,
    /// Serve `my_balance` from a cache that scripthash subscriptions keep fresh.
    pub balance_cache: bool,
}

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

fn read_file(path: &Path) -> Result<String, ConfigError> {
    if path.is_dir() {
        return Err(ConfigError::IsDir(path.to_path_buf()));
    }
    std::fs::read_to_string(path).map_err(|_| ConfigError::Missing(path.to_path_buf()))
}

/// Finds the config text: argument JSON, `--conf`, `MM_CONF_PATH`, `./MM2.json`, `~/.kdf/MM2.json`.
fn conf_text(src: &Sources) -> Result<String, ConfigError> {
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

/// Finds the coins list: `--coins`, inline `coins`, `MM_COINS_PATH`, `./coins`, `~/.kdf/coins`.
fn coins_list(src: &Sources, conf: &Value) -> Result<(Vec<Value>, String), ConfigError> {
    let from_file = |path: &Path| -> Result<(Vec<Value>, String), ConfigError> {
        let text = read_file(path)?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(list)) => Ok((list, path.display().to_string())),
            Ok(_) => Err(ConfigError::BadCoins(path.into(), "not an array".into())),
            Err(e) => Err(ConfigError::BadCoins(path.into(), e.to_string())),
        }
    };
    if let Some(path) = &src.coins_file {
        return from_file(path);
    }
    match conf.get("coins") {
        Some(Value::Array(list)) => return Ok((list.clone(), "config".to_string())),
        Some(Value::Null) | None => {}
        Some(_) => return Err(ConfigError::Invalid("coins must be an array".into())),
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
fn as_u64_lenient(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn opt_u64(conf: &Value, key: &str) -> Result<Option<u64>, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_u64_lenient(v)
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid(format!("{key} must be a non-negative integer"))),
    }
}

fn opt_bool(conf: &Value, key: &str, default: bool) -> Result<bool, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ConfigError::Invalid(format!("{key} must be true or false"))),
    }
}

fn opt_string(conf: &Value, key: &str, msg: &str) -> Result<Option<String>, ConfigError> {
    match conf.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ConfigError::Invalid(msg.to_string())),
    }
}

/// Validates `rpcport` as KDF does: 0 = any free port, below 1024 or above 65535 refused.
fn parse_port(conf: &Value) -> Result<u16, ConfigError> {
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

fn parse_limits(conf: &Value) -> Result<Limits, ConfigError> {
    let mut l = Limits::default();
    let positive = |key: &str| -> Result<Option<u64>, ConfigError> {
        match opt_u64(conf, key)? {
            Some(0) => Err(ConfigError::Invalid(format!("{key} must be at least 1"))),
            v => Ok(v),
        }
    };
    if let Some(v) = positive("max_body_bytes")? {
        l.max_body_bytes = v as usize;
    }
    if let Some(v) = positive("max_batch_items")? {
        l.max_batch_items = v as usize;
    }
    if let Some(v) = positive("batch_concurrency")? {
        l.batch_concurrency = v as usize;
    }
    if let Some(v) = positive("max_inflight_items")? {
        l.max_inflight_items = v as usize;
    }
    if let Some(v) = positive("max_response_bytes")? {
        l.max_response_bytes = v as usize;
    }
    match conf.get("batch_method_caps") {
        None | Some(Value::Null) => {}
        Some(Value::Object(caps)) => {
            for (method, cap) in caps {
                let n = as_u64_lenient(cap).filter(|n| *n > 0).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "batch_method_caps.{method} must be a positive integer"
                    ))
                })?;
                l.method_caps.insert(method.clone(), n as usize);
            }
        }
        Some(_) => {
            return Err(ConfigError::Invalid(
                "batch_method_caps must be an object of method: positive integer".into(),
            ))
        }
    }
    if let Some(v) = positive("max_connections")? {
        l.max_connections = v as usize;
    }
    if let Some(v) = positive("item_timeout_sec")? {
        l.item_timeout = Duration::from_secs(v);
    }
    if let Some(v) = positive("electrum_timeout_sec")? {
        l.electrum_timeout = Duration::from_secs(v);
    }
    if let Some(v) = positive("header_timeout_sec")? {
        l.header_timeout = Duration::from_secs(v);
    }
    if let Some(v) = positive("body_timeout_sec")? {
        l.body_timeout = Duration::from_secs(v);
    }
    if let Some(v) = positive("drain_timeout_sec")? {
        l.drain_timeout = Duration::from_secs(v);
    }
    Ok(l)
}

fn parse_auth(conf: &Value) -> Result<AuthLimits, ConfigError> {
    let mut a = AuthLimits::default();
    if let Some(v) = opt_u64(conf, "auth_fail_threshold")? {
        a.threshold = u32::try_from(v.max(1)).unwrap_or(u32::MAX);
    }
    let secs = |key: &str, target: &mut Duration| -> Result<(), ConfigError> {
        if let Some(v) = opt_u64(conf, key)? {
            *target = Duration::from_secs(v);
        }
        Ok(())
    };
    secs("auth_fail_window_sec", &mut a.window)?;
    secs("auth_lockout_sec", &mut a.lockout)?;
    secs("auth_lockout_max_sec", &mut a.max_lockout)?;
    secs("auth_lockout_decay_sec", &mut a.decay)?;
    if let Some(v) = opt_u64(conf, "auth_fail_delay_ms")? {
        a.delay = Duration::from_millis(v);
    }
    a.exempt_loopback = opt_bool(conf, "auth_lockout_exempt_loopback", true)?;
    Ok(a)
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
    "dbdir",
    "coins",
    "enable_hd",
    "max_body_bytes",
    "max_batch_items",
    "batch_concurrency",
    "max_inflight_items",
    "max_response_bytes",
    "batch_method_caps",
    "max_connections",
    "item_timeout_sec",
    "electrum_timeout_sec",
    "header_timeout_sec",
    "body_timeout_sec",
    "drain_timeout_sec",
    "auth_fail_threshold",
    "auth_fail_window_sec",
    "auth_lockout_sec",
    "auth_lockout_max_sec",
    "auth_lockout_decay_sec",
    "auth_fail_delay_ms",
    "auth_lockout_exempt_loopback",
    "balance_cache",
];

/// Keys of a config object that kdfd does not read (KDF's P2P and swap settings, typos).
pub fn unknown_keys(conf: &Value) -> Vec<String> {
    conf.as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
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
            Some(Value::String(s)) => Some(s.clone()),
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
        if opt_bool(conf, "enable_hd", false)? {
            // HD wallets derive other addresses than iguana mode: refusing beats showing the
            // user addresses KDF would not show.
            return Err(ConfigError::Invalid(
                "enable_hd: true (HD wallets) is not supported by kdfd yet; remove it to use the iguana key".into(),
            ));
        }
        let passphrase = opt_string(conf, "passphrase", "passphrase must be a string")?;
        if passphrase.as_deref() == Some("") {
            return Err(ConfigError::Invalid(
                "Passphrase cannot be an empty string".to_string(),
            ));
        }
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
            passphrase,
            rpc_password,
            rpcip,
            rpcport: parse_port(conf)?,
            rpc_local_only: opt_bool(conf, "rpc_local_only", true)?,
            rpccors: opt_string(conf, "rpccors", "rpccors must be a string")?
                .unwrap_or_else(|| "http://localhost:3000".to_string()),
            dbdir: opt_string(conf, "dbdir", "dbdir must be a string")?.map(PathBuf::from),
            coins,
            coins_source,
            ignored_keys: unknown_keys(conf),
            limits: parse_limits(conf)?,
            auth: parse_auth(conf)?,
            balance_cache: opt_bool(conf, "balance_cache", true)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(conf: Value) -> Result<Config, ConfigError> {
        Config::from_json(&Sources::default(), &conf)
    }

    #[test]
    fn password_policy_in_kdf_order() {
        let cases = [
            ("myPassword1!", "Password can't contain the word password"),
            (
                "Ab1!",
                "Password length should be at least 8 characters long",
            ),
            ("Abcdefg!", "Password should contain at least 1 digit"),
            (
                "ABCDEFG1!",
                "Password should contain at least 1 lowercase character",
            ),
            (
                "abcdefg1!",
                "Password should contain at least 1 uppercase character",
            ),
            (
                "Abcdefg12",
                "Password should contain at least 1 special character",
            ),
            (
                "Abccc1!xyz",
                "Password can't contain the same character 3 times in a row",
            ),
        ];
        for (pw, msg) in cases {
            assert_eq!(
                check_password_policy(pw).unwrap_err().to_string(),
                msg,
                "{pw}"
            );
        }
        assert!(check_password_policy("Str0ng!Pass-ok").is_ok());
    }

    #[test]
    fn weak_password_allowed_when_asked() {
        let c = json!({"rpc_password": "weak", "coins": []});
        assert!(load(c).is_err());
        let c = json!({"rpc_password": "weak", "allow_weak_password": true, "coins": []});
        assert_eq!(load(c).unwrap().rpc_password.as_deref(), Some("weak"));
        let c = json!({"rpc_password": "", "coins": []});
        assert_eq!(
            load(c).unwrap_err().to_string(),
            "rpc_password must not be empty"
        );
        let c = json!({"rpc_password": 5, "coins": []});
        assert_eq!(
            load(c).unwrap_err().to_string(),
            "rpc_password must be string"
        );
    }

    #[test]
    fn ports_as_kdf() {
        let port = |v: Value| load(json!({"rpcport": v, "coins": []})).map(|c| c.rpcport);
        assert_eq!(port(Value::Null).unwrap(), 7783);
        assert_eq!(port(json!(0)).unwrap(), 0);
        assert_eq!(port(json!("8000")).unwrap(), 8000);
        assert_eq!(port(json!(80)).unwrap_err().to_string(), "rpcport < 1024");
        assert_eq!(port(json!(70000)).unwrap_err().to_string(), "rpcport > u16");
        assert!(port(json!(-5)).is_err());
    }

    #[test]
    fn defaults() {
        let c = load(json!({"coins": []})).unwrap();
        assert_eq!(c.rpcip.to_string(), "127.0.0.1");
        assert!(c.rpc_local_only);
        assert_eq!(c.rpccors, "http://localhost:3000");
        assert_eq!(c.gui, "UNKNOWN");
        assert_eq!(c.limits.max_batch_items, 1000);
        assert!(load(json!({"coins": [], "rpcip": 1})).is_err());
        assert!(load(json!({"coins": [], "netid": 7777})).is_err());
        assert!(load(json!({"coins": [], "passphrase": ""})).is_err());
        assert!(load(json!({"coins": [], "max_batch_items": 0})).is_err());
    }
}
