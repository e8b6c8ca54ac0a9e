//! kdfd's bounds on requests, and the brute-force defence's settings: every one is a config key.

use super::read::{as_u64_lenient, opt_bool, opt_u64};
use super::ConfigError;
use serde_json::Value;
use std::time::Duration;

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
    /// `max_finished_tasks`: finished RPC tasks kept for `status` (oldest forgotten first).
    pub max_finished_tasks: usize,
    /// `electrum_max_array`: most requests in one JSON-RPC array to an Electrum server.
    pub electrum_max_array: usize,
    /// `electrum_cost_budget`, `electrum_cost_reserve`, `electrum_cost_decay_per_sec`: the pacing
    /// of every Electrum connection against the server's session cost (`electrum::budget`).
    pub electrum_budget: crate::electrum::Budget,
    /// `batch_method_caps`: per-method overrides of the table's default caps; items past the cap
    /// get an error slot.
    pub method_caps: std::collections::HashMap<String, usize>,
    /// `ws_max_batch_items`: most items in one batch sent over `/ws`.
    pub ws_max_batch_items: usize,
    /// `ws_max_message_bytes`: largest WebSocket message (and frame) read; past it the socket is
    /// closed with 1009.
    pub ws_max_message_bytes: usize,
    /// `max_connections_per_ip`: most connections one client address (IPv6: one /64) holds;
    /// default three quarters of `max_connections`, so one client never takes every slot.
    pub max_connections_per_ip: Option<usize>,
    /// `max_stream_connections`: most `/event-stream` and `/ws` connections at once (they count
    /// toward `max_connections` too); default a quarter of it, leaving the rest to RPC.
    pub max_stream_connections: Option<usize>,
    /// `argon2_concurrency`: wallet-password checks (Argon2id, 64 MiB each) running at once.
    pub argon2_concurrency: usize,
    /// `argon2_max_waiting`: checks waiting for a turn; past it an item answers an error at once.
    pub argon2_max_waiting: usize,
}

impl Limits {
    /// `max_connections_per_ip` as configured, or its default.
    pub fn per_ip(&self) -> usize {
        self.max_connections_per_ip
            .unwrap_or_else(|| self.max_connections.saturating_mul(3).div_ceil(4))
            .max(1)
    }

    /// `max_stream_connections` as configured, or its default.
    pub fn streams(&self) -> usize {
        self.max_stream_connections
            .unwrap_or(self.max_connections / 4)
            .max(1)
    }
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
            max_finished_tasks: 1000,
            electrum_max_array: crate::electrum::DEFAULT_MAX_ARRAY,
            electrum_budget: crate::electrum::Budget::default(),
            // Only the config's overrides; each method's default cap is in the RPC method table.
            method_caps: Default::default(),
            // The seeds' providers answer WebSocket batches of at most 20 items.
            ws_max_batch_items: 20,
            ws_max_message_bytes: 1024 * 1024,
            max_connections_per_ip: None,
            max_stream_connections: None,
            argon2_concurrency: 2,
            argon2_max_waiting: 16,
        }
    }
}

/// The brute-force defence's settings (see `guard`).
#[derive(Debug, Clone)]
pub struct AuthLimits {
    /// Failed attempts within `window` that trigger a lock-out.
    pub threshold: u32,
    /// The same for loopback clients (higher: every local app shares 127.0.0.1).
    pub loopback_threshold: u32,
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
    /// Loopback clients are never locked out (they still get the delay); off by default.
    pub exempt_loopback: bool,
}

impl Default for AuthLimits {
    fn default() -> Self {
        AuthLimits {
            threshold: 10,
            loopback_threshold: 100,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(3600),
            decay: Duration::from_secs(600),
            delay: Duration::from_millis(250),
            exempt_loopback: false,
        }
    }
}

pub(super) fn parse_limits(conf: &Value) -> Result<Limits, ConfigError> {
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
    if let Some(v) = positive("electrum_max_array")? {
        l.electrum_max_array = (v as usize).min(10_000);
    }
    parse_budget(conf, &mut l.electrum_budget)?;
    if let Some(v) = positive("max_finished_tasks")? {
        l.max_finished_tasks = v as usize;
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
    if let Some(v) = positive("ws_max_batch_items")? {
        l.ws_max_batch_items = v as usize;
    }
    if let Some(v) = positive("ws_max_message_bytes")? {
        l.ws_max_message_bytes = v as usize;
    }
    if let Some(v) = positive("max_connections")? {
        l.max_connections = v as usize;
    }
    if let Some(v) = positive("max_connections_per_ip")? {
        l.max_connections_per_ip = Some(v as usize);
    }
    if let Some(v) = positive("max_stream_connections")? {
        l.max_stream_connections = Some(v as usize);
    }
    if let Some(v) = positive("argon2_concurrency")? {
        l.argon2_concurrency = (v as usize).min(64);
    }
    if let Some(v) = opt_u64(conf, "argon2_max_waiting")? {
        l.argon2_max_waiting = v as usize;
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

/// A JSON number (or numeric string) ≥ 0, fractions allowed.
fn opt_units(conf: &Value, key: &str) -> Result<Option<f64>, ConfigError> {
    let v = match conf.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match v {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(ConfigError::Invalid(format!(
            "{key} must be a non-negative number"
        ))),
    }
}

fn parse_budget(conf: &Value, b: &mut crate::electrum::Budget) -> Result<(), ConfigError> {
    if let Some(v) = opt_units(conf, "electrum_cost_budget")? {
        b.limit = v.min(1e9);
    }
    if let Some(v) = opt_units(conf, "electrum_cost_reserve")? {
        b.reserve = v;
    }
    if let Some(v) = opt_units(conf, "electrum_cost_decay_per_sec")? {
        if v == 0.0 {
            return Err(ConfigError::Invalid(
                "electrum_cost_decay_per_sec must be greater than 0".into(),
            ));
        }
        b.decay_per_sec = v;
    }
    // With the reserve at or over the budget, background work would never get a turn.
    if !b.is_off() && b.reserve >= b.limit {
        return Err(ConfigError::Invalid(format!(
            "electrum_cost_reserve ({}) must be less than electrum_cost_budget ({})",
            b.reserve, b.limit
        )));
    }
    Ok(())
}

pub(super) fn parse_auth(conf: &Value) -> Result<AuthLimits, ConfigError> {
    let mut a = AuthLimits::default();
    if let Some(v) = opt_u64(conf, "auth_fail_threshold")? {
        a.threshold = u32::try_from(v.max(1)).unwrap_or(u32::MAX);
    }
    if let Some(v) = opt_u64(conf, "auth_fail_threshold_loopback")? {
        a.loopback_threshold = u32::try_from(v.max(1)).unwrap_or(u32::MAX);
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
    a.exempt_loopback = opt_bool(conf, "auth_lockout_exempt_loopback", false)?;
    Ok(a)
}
