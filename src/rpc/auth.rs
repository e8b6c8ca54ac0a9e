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
    /// Shared by the items of one HTTP request (or WebSocket message): what its values counted.
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
///
/// The first value a request shows behaves as one attempt, however many items repeat it. Every
/// other distinct value is a guess of its own, counted (and delayed, one at a time) before it is
/// answered whether it is right or not, so the lock-out a batch of guesses earns does not depend
/// on whether one of them was right, and once it is locked out no slot tells which one was.
pub async fn check(ctx: &Ctx, caller: &Caller, userpass: Option<&Value>) -> Result<(), RpcError> {
    let guard = &ctx.auth;
    if let Some(secs) = guard.locked(caller.ip) {
        return Err(RpcError::LockedOut(secs));
    }
    let given = match userpass {
        Some(Value::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let wrong = || match given {
        None => RpcError::UserpassNotSet,
        Some(_) => RpcError::UserpassInvalid,
    };
    let first = caller.attempt.first.get_or_init(|| given.map(Box::from));
    if first.as_deref() != given {
        return check_other(ctx, caller, given)
            .await
            .map_err(|e| e.unwrap_or_else(wrong));
    }
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
    // The first value, repeated by many items, is one attempt: the delay applies to each item,
    // but they wait concurrently (one request: one delay).
    let first = !caller.attempt.failed.swap(true, Ordering::AcqRel);
    if first {
        let delay_lock = guard.failed(caller.ip);
        let _serial = delay_lock.lock().await;
        tokio::time::sleep(guard.limits.delay).await;
    } else {
        tokio::time::sleep(guard.limits.delay).await;
    }
    Err(wrong())
}

/// A value other than the request's first: counted as a failure (right or wrong) the first time
/// this request shows it, then answered only if that left the caller unlocked. `Err(None)`: wrong.
async fn check_other(
    ctx: &Ctx,
    caller: &Caller,
    given: Option<&str>,
) -> Result<(), Option<RpcError>> {
    let guard = &ctx.auth;
    let digest = sha256::Hash::hash(given.map_or(&[0xff][..], str::as_bytes)).to_byte_array();
    let mut seen = caller.attempt.others.lock().await;
    // Locked out while this item waited its turn: refused without another count.
    if let Some(secs) = guard.locked(caller.ip) {
        return Err(Some(RpcError::LockedOut(secs)));
    }
    if seen.insert(digest) {
        let delay_lock = guard.failed(caller.ip);
        let _serial = delay_lock.lock().await;
        tokio::time::sleep(guard.limits.delay).await;
    }
    drop(seen);
    if let Some(secs) = guard.locked(caller.ip) {
        return Err(Some(RpcError::LockedOut(secs)));
    }
    match (given, ctx.config.rpc_password.as_deref()) {
        (Some(g), Some(e)) if same_secret(g, e) => Ok(()),
        _ => Err(None),
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
