//! The brute-force defence around the userpass check: per-IP failure counts, delays and lock-outs.
//!
//! A wrong userpass costs the caller a fixed delay (bitcoind: 250 ms), served one at a time per
//! client IP, so guessing is slow however many requests run in parallel, and other clients never
//! wait. Past a threshold of failures within a window, the IP is locked out for a while; the
//! lock-out doubles with each repeat offence and the offence count decays with good behaviour, so
//! no lock-out is permanent. Loopback is exempt from lock-outs by default (KDF issue #2060: a stale
//! local app must not lock the owner's GUI out), but not from the delay.
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

/// One HTTP request's share of the defence: however many items of it fail, it is one attempt.
#[derive(Debug, Default)]
pub struct Attempt {
    pub(crate) failed: AtomicBool,
    /// The userpass that already passed in this request, so the other items skip the hashing.
    pub(crate) passed: std::sync::OnceLock<Box<str>>,
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

    /// Seconds left of the IP's lock-out, if it is locked out.
    pub(crate) fn locked(&self, ip: IpAddr) -> Option<u64> {
        if self.exempt(ip) {
            return None;
        }
        let rec = self.records.get(&ip)?;
        let rec = lock(&rec);
        let until = rec.locked_until?;
        let now = Instant::now();
        (until > now).then(|| (until - now).as_secs_f64().ceil() as u64)
    }

    /// Records a failed attempt and returns the delay lock to wait on.
    pub(crate) fn failed(&self, ip: IpAddr) -> Arc<tokio::sync::Mutex<()>> {
        let now = Instant::now();
        let entry = self.records.entry(ip).or_insert_with(|| {
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
        if rec.failures >= self.limits.threshold && !self.exempt(ip) {
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
        if let Some(rec) = self.records.get(&ip) {
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
        // Repeat offences double the lock-out, up to the cap.
        for _ in 0..3 {
            g.failed(ip);
        }
        assert_eq!(g.locked(ip), Some(20));
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
        let g = Guard::new(AuthLimits {
            exempt_loopback: false,
            ..limits()
        });
        for _ in 0..3 {
            g.failed(lo);
        }
        assert_eq!(g.locked(lo), Some(10));
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
