//! The brute-force defence around the userpass check: per-IP failure counts, delays and lock-outs.
//!
//! A wrong userpass costs the caller a fixed delay (bitcoind: 250 ms), served one at a time per
//! client IP, so guessing is slow however many requests run in parallel, and other clients never
//! wait. Past a threshold of failures within a window, the IP is locked out for a while; the
//! lock-out doubles with each repeat offence and the offence count decays with good behaviour, so
//! no lock-out is permanent.
//!
//! What counts is guesses, not requests: each distinct wrong userpass of a request (a batch, an
//! atomic envelope) is one failure (`rpc::auth`). Loopback has its own, higher threshold
//! (KDF issue #2060: a stale local app should not lock the owner's GUI out at once) but is locked
//! out too, since another local user or a browser page is also loopback
//! (`auth_lockout_exempt_loopback: true` restores the old exemption). IPv6 clients are counted
//! per /64, the block one host usually holds, so rotating addresses in it buys nothing.
//!
//! It lives below `ctx` (not in `rpc`) because both the RPC front and the event stream count
//! failures in it.

use crate::config::AuthLimits;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

/// One HTTP request's share of the defence. The first userpass value it shows is one attempt
/// however many items repeat it; every other distinct value is an attempt of its own.
#[derive(Debug, Default)]
pub struct Attempt {
    /// The first userpass value an item of this request showed (`None`: no userpass).
    pub(crate) first: std::sync::OnceLock<Option<Box<str>>>,
    /// The first value was wrong and has been counted.
    pub(crate) failed: AtomicBool,
    /// The userpass that already passed in this request, so the other items skip the hashing.
    pub(crate) passed: std::sync::OnceLock<Box<str>>,
    /// Digests of the other values already counted; also serialises their checks, so a
    /// repeated value waits for its first count before it is answered.
    pub(crate) others: tokio::sync::Mutex<std::collections::HashSet<[u8; 32]>>,
}

/// Per-IP state.
struct Record {
    window_start: Instant,
    failures: u32,
    locked_until: Option<Instant>,
    offences: u32,
    last_offence: Instant,
    /// Serialises this IP's failure delays.
    delay: Arc<tokio::sync::Mutex<()>>,
}

/// Failure counts and lock-outs per client IP.
pub struct Guard {
    pub(crate) limits: AuthLimits,
    records: DashMap<IpAddr, Mutex<Record>>,
}

impl Guard {
    /// A guard with the configured limits.
    pub fn new(limits: AuthLimits) -> Guard {
        Guard {
            limits,
            records: DashMap::new(),
        }
    }

    fn exempt(&self, ip: IpAddr) -> bool {
        self.limits.exempt_loopback && ip.is_loopback()
    }

    fn threshold(&self, ip: IpAddr) -> u32 {
        if ip.is_loopback() {
            self.limits.loopback_threshold
        } else {
            self.limits.threshold
        }
    }

    /// Seconds left of the IP's lock-out, if it is locked out.
    pub(crate) fn locked(&self, ip: IpAddr) -> Option<u64> {
        if self.exempt(ip) {
            return None;
        }
        let rec = self.records.get(&key(ip))?;
        let rec = lock(&rec);
        let until = rec.locked_until?;
        let now = Instant::now();
        (until > now).then(|| (until - now).as_secs_f64().ceil() as u64)
    }

    /// Records a failed attempt and returns the delay lock to wait on.
    pub(crate) fn failed(&self, ip: IpAddr) -> Arc<tokio::sync::Mutex<()>> {
        let now = Instant::now();
        let entry = self.records.entry(key(ip)).or_insert_with(|| {
            Mutex::new(Record {
                window_start: now,
                failures: 0,
                locked_until: None,
                offences: 0,
                last_offence: now,
                delay: Arc::default(),
            })
        });
        let mut rec = lock(&entry);
        // A check refused for the lock-out is not another failure: one batch of guesses must not
        // double the lock-out again and again.
        if rec.locked_until.is_some_and(|t| t > now) && !self.exempt(ip) {
            return rec.delay.clone();
        }
        // Good behaviour pays off: one offence forgiven per quiet decay period.
        let quiet =
            now.duration_since(rec.last_offence).as_secs() / self.limits.decay.as_secs().max(1);
        rec.offences = rec
            .offences
            .saturating_sub(quiet.min(u32::MAX as u64) as u32);
        if now.duration_since(rec.window_start) > self.limits.window {
            rec.window_start = now;
            rec.failures = 0;
        }
        rec.failures += 1;
        if rec.failures >= self.threshold(ip) && !self.exempt(ip) {
            let factor = 1u32.checked_shl(rec.offences.min(20)).unwrap_or(u32::MAX);
            let lockout = self
                .limits
                .lockout
                .saturating_mul(factor)
                .min(self.limits.max_lockout);
            rec.locked_until = Some(now + lockout);
            rec.offences += 1;
            rec.last_offence = now;
            rec.failures = 0;
            rec.window_start = now;
            tracing::warn!(%ip, ?lockout, "too many failed userpass attempts: client locked out");
        }
        rec.delay.clone()
    }

    /// A correct userpass clears the failure count (offences decay with time).
    pub(crate) fn succeeded(&self, ip: IpAddr) {
        if let Some(rec) = self.records.get(&key(ip)) {
            lock(&rec).failures = 0;
        }
    }

    /// Forgets IPs with nothing left to remember, so the map cannot grow without bound.
    pub fn prune(&self) {
        let now = Instant::now();
        let keep = self.limits.max_lockout.max(self.limits.decay * 20);
        self.records.retain(|_, rec| {
            let rec = lock(rec);
            rec.locked_until.is_some_and(|t| t > now)
                || now.duration_since(rec.window_start) < self.limits.window
                || now.duration_since(rec.last_offence) < keep && rec.offences > 0
        });
    }
}

/// The unit the guard counts: an IPv4 address, an IPv6 /64 (`::1` stays itself).
pub fn key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) if !v6.is_loopback() => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(bits))
        }
        other => other,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits() -> AuthLimits {
        AuthLimits {
            threshold: 3,
            loopback_threshold: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(10),
            max_lockout: Duration::from_secs(35),
            decay: Duration::from_secs(600),
            delay: Duration::ZERO,
            exempt_loopback: true,
        }
    }

    #[test]
    fn lockout_grows_and_is_capped() {
        let g = Guard::new(limits());
        let ip = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
        for _ in 0..2 {
            g.failed(ip);
        }
        assert_eq!(g.locked(ip), None);
        g.failed(ip);
        assert_eq!(g.locked(ip), Some(10));
        // Failures refused for the lock-out do not count.
        for _ in 0..5 {
            g.failed(ip);
        }
        assert_eq!(g.locked(ip), Some(10));
        // Repeat offences (after the lock-out ends) double it, up to the cap.
        let unlock = |g: &Guard| {
            let rec = g.records.get(&key(ip)).unwrap();
            lock(&rec).locked_until = Some(Instant::now());
        };
        unlock(&g);
        for _ in 0..3 {
            g.failed(ip);
        }
        assert_eq!(g.locked(ip), Some(20));
        unlock(&g);
        for _ in 0..3 {
            g.failed(ip);
        }
        assert_eq!(g.locked(ip), Some(35));
    }

    #[test]
    fn loopback_is_exempt_when_configured() {
        let g = Guard::new(limits());
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..10 {
            g.failed(lo);
        }
        assert_eq!(g.locked(lo), None);
        // Without the exemption loopback is locked out too, at its own higher threshold.
        let g = Guard::new(AuthLimits {
            exempt_loopback: false,
            ..limits()
        });
        for _ in 0..4 {
            g.failed(lo);
        }
        assert_eq!(g.locked(lo), None);
        g.failed(lo);
        assert_eq!(g.locked(lo), Some(10));
    }

    #[test]
    fn ipv6_counts_per_64() {
        let g = Guard::new(limits());
        for i in 0..3u16 {
            let ip = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, i, i, i, i));
            g.failed(ip);
        }
        let same = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
        assert_eq!(g.locked(same), Some(10), "one /64, one record");
        let next = IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 1, 3, 0, 0, 0, 1));
        assert_eq!(g.locked(next), None);
        assert_eq!(
            key("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            key("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn success_resets_the_count_and_prune_forgets() {
        let g = Guard::new(limits());
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9));
        g.failed(ip);
        g.failed(ip);
        g.succeeded(ip);
        g.failed(ip);
        assert_eq!(g.locked(ip), None);
        g.prune();
        assert_eq!(g.records.len(), 1, "still inside the window");
    }
}
