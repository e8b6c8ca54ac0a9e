//! Electrum servers as coins see them.
//!
//! - `conn`: one connection; same-instant requests leave as one JSON-RPC array, identical
//!   concurrent reads share one upstream call.
//! - `writer`: a connection's writer task: arrays cut to the cost budget, and the filler that
//!   keeps ElectrumX from holding small replies; `reader`: its reader task.
//! - `budget` and `costs`: the estimate of what ElectrumX charges the session, per request and
//!   per byte, that paces the writer; background work leaves a reserve to interactive requests.
//! - `hub`: connections shared by every coin that lists the same server.
//! - `pool`: one coin's servers in priority order: failover, back-off, keep-alive pings, and a
//!   balance cache kept fresh by scripthash subscriptions.
//! - `tls`: certificate verification on or off.
//!
//! kdfd talks to Electrum with its own small async client (`conn`) instead of the blocking
//! `electrum-client` crate: that crate sends its own fixed `server.version` client name, and sends a
//! batch as separate lines, which stock ElectrumX 2.0 holds for up to a second each. Ours sends
//! KDF's handshake and turns requests made in the same instant into one JSON-RPC array.

mod arrays;
pub mod budget;
mod cache;
mod conn;
mod costs;
mod hub;
mod pool;
mod reader;
mod reads;
pub(crate) mod tls;
mod watch;
mod writer;

pub use arrays::DEFAULT_MAX_ARRAY;
pub use budget::{background, Budget};
pub use conn::{Connection, Notification, Wire};
pub use hub::Hub;
pub use pool::{Pool, PoolHandle};
pub use reads::{HistoryItem, UnspentItem};
pub use watch::Change;

use serde_json::Value;
use std::time::Duration;

/// What went wrong talking to Electrum servers.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ElectrumError {
    /// TCP connect or TLS handshake failed.
    #[error("{0}: connection failed: {1}")]
    Connect(String, String),
    /// No answer in time.
    #[error("{0}: no answer within {1:?}")]
    Timeout(String, Duration),
    /// The connection closed (or was closed after garbage).
    #[error("{0}: connection closed")]
    Closed(String),
    /// The server answered the request with a JSON-RPC error.
    #[error("{0}: server error: {1}")]
    Rpc(String, String),
    /// The server refused the protocol version.
    #[error("{0}: server refused protocol version: {1}")]
    Version(String, String),
    /// The server answered with something that is not the expected shape.
    #[error("{0}: unexpected answer: {1}")]
    BadResponse(String, String),
    /// Every server failed; the list says why each did.
    #[error("All servers errored: [{0}]")]
    AllFailed(String),
    /// The server list itself is unusable.
    #[error("{0}")]
    Config(String),
}

/// One server entry of an activation request.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// As given, for messages.
    pub url: String,
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// `protocol: "SSL"`.
    pub tls: bool,
    /// False when `disable_cert_verification` is true.
    pub verify_cert: bool,
    /// Connect, handshake and per-request timeout.
    pub timeout: Duration,
}

impl ServerSpec {
    /// Parses one `servers` entry (`url`, `protocol`, `disable_cert_verification`, `timeout_sec`).
    pub fn from_json(v: &Value, default_timeout: Duration) -> Result<ServerSpec, String> {
        let url = v
            .get("url")
            .and_then(Value::as_str)
            .ok_or("each server needs a string 'url'")?;
        let tls = match v.get("protocol") {
            None | Some(Value::Null) => false,
            Some(Value::String(p)) => match p.to_ascii_uppercase().as_str() {
                "TCP" => false,
                "SSL" => true,
                "WS" | "WSS" => {
                    return Err(format!("{url}: protocol {p} is not supported natively"))
                }
                _ => return Err(format!("{url}: unknown protocol '{p}' (TCP or SSL)")),
            },
            Some(_) => return Err(format!("{url}: protocol must be a string")),
        };
        let verify_cert = match v.get("disable_cert_verification") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => !b,
            Some(_) => return Err(format!("{url}: disable_cert_verification must be a bool")),
        };
        let timeout = match v.get("timeout_sec") {
            None | Some(Value::Null) => default_timeout,
            Some(t) => match t.as_f64() {
                Some(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                _ => {
                    return Err(format!(
                        "{url}: timeout_sec must be a number of seconds in (0, 3600]"
                    ))
                }
            },
        };
        let (host, port) = url
            .rsplit_once(':')
            .ok_or_else(|| format!("{url}: url must be HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{url}: '{port}' is not a port number"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{url}: empty host"));
        }
        Ok(ServerSpec {
            url: url.to_string(),
            host: host.to_string(),
            port,
            tls,
            verify_cert,
            timeout,
        })
    }
}

/// An Electrum balance, in the coin's smallest unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Confirmed (including immature coinbase, as Electrum reports it).
    pub confirmed: i64,
    /// Mempool delta; may be negative.
    pub unconfirmed: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_specs() {
        let t = Duration::from_secs(20);
        let s = ServerSpec::from_json(&json!({"url": "127.0.0.1:50001"}), t).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.tls, s.verify_cert),
            ("127.0.0.1", 50001, false, true)
        );
        let s = ServerSpec::from_json(
            &json!({"url": "electrum.example:50002", "protocol": "SSL", "disable_cert_verification": true, "timeout_sec": 2}),
            t,
        )
        .unwrap();
        assert!(s.tls && !s.verify_cert);
        assert_eq!(s.timeout, Duration::from_secs(2));
        for bad in [
            json!({}),
            json!({"url": "nohost"}),
            json!({"url": "h:99999"}),
            json!({"url": "h:1", "protocol": "WSS"}),
            json!({"url": "h:1", "timeout_sec": -1}),
            json!({"url": "h:1", "disable_cert_verification": "yes"}),
        ] {
            assert!(ServerSpec::from_json(&bad, t).is_err(), "{bad}");
        }
    }

    #[test]
    fn balances_parse() {
        let b = cache::parse_balance("s", json!({"confirmed": 5, "unconfirmed": -2})).unwrap();
        assert_eq!(
            b,
            Balance {
                confirmed: 5,
                unconfirmed: -2
            }
        );
        assert!(cache::parse_balance("s", json!({"x": 1})).is_err());
    }
}
