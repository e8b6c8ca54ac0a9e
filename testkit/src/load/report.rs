//! What a load run reports, for people and for scripts (`LOADGEN key=value ...`).

use super::{LoadMethod, LoadStats, Opts};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// The result of [`run`](super::run).
#[derive(Debug, Clone)]
pub struct Report {
    /// The options it ran with.
    pub opts: Opts,
    /// The kdfd it loaded.
    pub addr: SocketAddr,
    /// Its process id, when known.
    pub pid: Option<u32>,
    /// How long the activation batch took (when this run activated the coins).
    pub activation: Option<Duration>,
    /// The load itself.
    pub load: LoadStats,
    /// kdfd's VmRSS before the load, kB.
    pub rss_before_kb: Option<u64>,
    /// kdfd's VmRSS after the load, kB.
    pub rss_after_kb: Option<u64>,
    /// Peak VmRSS sampled every 100 ms during the load, kB.
    pub rss_peak_kb: Option<u64>,
    /// Σ lines the fake Electrum servers received during the load (when they are ours).
    pub electrum_lines: Option<usize>,
    /// Σ get_balance requests the fake servers received during the load.
    pub electrum_get_balance: Option<usize>,
}

impl Report {
    /// True when no item failed and none was lost.
    pub fn passed(&self) -> bool {
        self.load.failed == 0 && self.load.lost() == 0 && self.load.sent > 0
    }

    /// The machine-readable summary line.
    pub fn machine_line(&self) -> String {
        let l = &self.load;
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
        let kb = |v: Option<u64>| v.map_or("na".to_string(), |v| v.to_string());
        format!(
            "LOADGEN method={} clients={} batch={} seconds={} items={} ok={} failed={} lost={} \
             items_per_s={:.0} batches={} p50_ms={} p90_ms={} p99_ms={} max_ms={} \
             rss_before_kb={} rss_after_kb={} rss_peak_kb={} electrum_lines={} pass={}",
            method_name(self.opts.method),
            self.opts.clients,
            self.opts.batch,
            self.opts.seconds,
            l.sent,
            l.ok,
            l.failed,
            l.lost(),
            l.items_per_sec(),
            l.requests,
            ms(l.percentile(0.5)),
            ms(l.percentile(0.9)),
            ms(l.percentile(0.99)),
            ms(l.percentile(1.0)),
            kb(self.rss_before_kb),
            kb(self.rss_after_kb),
            kb(self.rss_peak_kb),
            self.electrum_lines
                .map_or("na".to_string(), |v| v.to_string()),
            u8::from(self.passed()),
        )
    }
}

fn method_name(m: LoadMethod) -> &'static str {
    match m {
        LoadMethod::MyBalance => "my_balance",
        LoadMethod::Version => "version",
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        let l = &self.load;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let kb = |v: Option<u64>| v.map_or("n/a".to_string(), |v| format!("{v} kB"));
        writeln!(
            f,
            "kdfd at {}{}",
            self.addr,
            self.pid.map_or(String::new(), |p| format!(" (pid {p})"))
        )?;
        if o.method == LoadMethod::MyBalance {
            writeln!(
                f,
                "coins: {} ({}), fake Electrum latency {} ms{}",
                o.coins,
                if o.addr.is_some() {
                    "already active"
                } else {
                    "one fake Electrum server each"
                },
                o.latency_ms,
                self.activation.map_or(String::new(), |d| format!(
                    ", activated in one batch in {:.1} ms",
                    ms(d)
                ))
            )?;
        }
        writeln!(
            f,
            "load: {} clients x {} {} ({}) for {} s, request timeout {} s",
            o.clients,
            o.batch,
            method_name(o.method),
            if o.batch == 1 {
                "single requests"
            } else {
                "item batches"
            },
            o.seconds,
            o.timeout_sec
        )?;
        writeln!(
            f,
            "elapsed: {:.2} s; requests answered: {} ({:.1}/s); transport errors: {}",
            l.elapsed.as_secs_f64(),
            l.requests,
            l.requests_per_sec(),
            l.transport_errors
        )?;
        writeln!(
            f,
            "items: sent {}, answered {}, ok {}, failed {}, lost {}",
            l.sent,
            l.answered,
            l.ok,
            l.failed,
            l.lost()
        )?;
        writeln!(f, "throughput: {:.0} items/s", l.items_per_sec())?;
        writeln!(
            f,
            "request latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            ms(l.percentile(0.5)),
            ms(l.percentile(0.9)),
            ms(l.percentile(0.99)),
            ms(l.percentile(1.0))
        )?;
        writeln!(
            f,
            "kdfd RSS: before {}, after {}, peak {} (VmRSS, sampled every 100 ms)",
            kb(self.rss_before_kb),
            kb(self.rss_after_kb),
            kb(self.rss_peak_kb)
        )?;
        if let (Some(lines), Some(gb)) = (self.electrum_lines, self.electrum_get_balance) {
            writeln!(
                f,
                "fake Electrum servers received {lines} lines carrying {gb} get_balance requests \
                 ({:.2} requests per my_balance item)",
                gb as f64 / (l.sent.max(1)) as f64
            )?;
        }
        for s in &l.failure_samples {
            writeln!(f, "failure: {s}")?;
        }
        write!(f, "result: {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}
