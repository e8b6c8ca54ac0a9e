//! kdfd: a daemon that answers the Komodo DeFi Framework (KDF, ex mm2) RPC.
//!
//! - `config`: finds and validates `MM2.json` and the `coins` file the way KDF does.
//! - `ctx`: the shared state a handler can reach.
//! - `rpc`: HTTP server, envelopes (legacy and mmrpc 2.0), batches, auth and the method tables.
//! - `coins`: coin registry, active coins, the UTXO coin.
//! - `electrum`: async Electrum client: connections, failover, timeouts, keep-alive.
//! - `evm`: EVM coins: EIP-55 addresses, amounts, coins-file entries, a batching JSON-RPC client.
//! - `crypto`: passphrase → key → addresses and scripthashes; the only holder of private keys.
//! - `client`: a minimal HTTP/1 client for tests, benchmarks and the load generator.
//! - `wallet`: KDF wallet files (`<db_root>/<name>.json`) and the start-up wallet logic.
//! - `store`: the per-wallet SQLite database (HD accounts), on its own thread.
//! - `private_fs`: owner-only directories and files in dbdir (0700/0600 whatever the umask).
//! - `events`: KDF's event streaming (SSE clients, streamers); the endpoint is `rpc::sse`.

pub mod client;
pub mod coins;
pub mod config;
pub mod crypto;
pub mod ctx;
pub mod electrum;
pub mod events;
pub mod evm;
pub mod guard;
pub mod history;
pub mod private_fs;
pub mod rpc;
pub mod store;
pub mod tasks;
pub mod wallet;

/// `<crate version>_<git short hash or KDFD_BUILD_TAG>`, as KDF's `version` reports it.
pub fn version_string() -> String {
    concat!(env!("CARGO_PKG_VERSION"), "_", env!("KDFD_GIT_HASH")).to_string()
}

/// The build time in RFC 3339 (UTC), formatted once.
pub fn build_datetime() -> &'static str {
    static DATETIME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DATETIME.get_or_init(|| rfc3339(env!("KDFD_BUILD_UNIX").parse().unwrap_or(0)))
}

/// Formats unix seconds as `YYYY-MM-DDTHH:MM:SS+00:00`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date crate for one timestamp.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(super::rfc3339(1_753_722_000), "2025-07-28T17:00:00+00:00");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
    }
}
