//! The userpass check every non-public item goes through; the brute-force state it feeds is
//! `crate::guard`, and `Caller`, who is asking.

use super::error::RpcError;
use crate::ctx::Ctx;
use bitcoin::hashes::{sha256, Hash};
use serde_json::Value;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Who sent the request, for the local-only and brute-force checks.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The TCP peer address.
    pub ip: IpAddr,
    /// Shared by the items of one HTTP request, so a batch counts as one attempt.
    pub attempt: Arc<crate::guard::Attempt>,
    /// The password of an `Authorization` header (JSON-RPC 2.0 items only).
    pub header_userpass: Option<Arc<str>>,
}

impl Caller {
    /// A caller for one new HTTP request.
    pub fn new(ip: IpAddr, header_userpass: Option<String>) -> Caller {
        Caller {
            ip,
            attempt: Arc::default(),
            header_userpass: header_userpass.map(Arc::from),
        }
        .canonical()
    }

    /// IPv4 clients of a dual-stack listener arrive as `::ffff:a.b.c.d`; see them as IPv4, so
    /// `127.0.0.1` is loopback however the daemon listens.
    fn canonical(mut self) -> Caller {
        self.ip = self.ip.to_canonical();
        self
    }
}

/// Compares without an early exit, so timing tells nothing about how much of a guess was right.
/// Hashing first makes the length of the secret invisible too.
pub(super) fn same_secret(given: &str, expected: &str) -> bool {
    let a = sha256::Hash::hash(given.as_bytes()).to_byte_array();
    let b = sha256::Hash::hash(expected.as_bytes()).to_byte_array();
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Checks one item's `userpass` against `rpc_password`, applying the lock-out and the delay.
pub async fn check(ctx: &Ctx, caller: &Caller, userpass: Option<&Value>) -> Result<(), RpcError> {
    let guard = &ctx.auth;
    if let Some(secs) = guard.locked(caller.ip) {
        return Err(RpcError::LockedOut(secs));
    }
    let given = match userpass {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    // Comparing with a string this same request already proved right leaks nothing.
    if let (Some(g), Some(known)) = (given, caller.attempt.passed.get()) {
        if g == &**known {
            return Ok(());
        }
    }
    // Without rpc_password every userpass is wrong, as in KDF's legacy path.
    let ok = matches!((given, ctx.config.rpc_password.as_deref()), (Some(g), Some(e)) if same_secret(g, e));
    if let (true, Some(g)) = (ok, given) {
        if caller.attempt.passed.set(g.into()).is_ok() {
            guard.succeeded(caller.ip);
        }
        return Ok(());
    }
    // A batch is one attempt, however many of its items fail; the delay applies to each item,
    // but they wait concurrently (one request: one delay).
    let first = !caller.attempt.failed.swap(true, Ordering::AcqRel);
    if first {
        let delay_lock = guard.failed(caller.ip);
        let _serial = delay_lock.lock().await;
        tokio::time::sleep(guard.limits.delay).await;
    } else {
        tokio::time::sleep(guard.limits.delay).await;
    }
    match given {
        None => Err(RpcError::UserpassNotSet),
        Some(_) => Err(RpcError::UserpassInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn compares_whole_secrets() {
        assert!(same_secret("Str0ng!Pass", "Str0ng!Pass"));
        assert!(!same_secret("Str0ng!Pas", "Str0ng!Pass"));
        assert!(!same_secret("", "x"));
    }
}
