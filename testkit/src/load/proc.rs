//! Starting kdfd for a load or benchmark run, and watching its memory.

use crate::{kdfd_bin_near_exe, proc_status_kb, Kdfd, Launch, Tuning};
use anyhow::bail;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The kdfd binary: `$KDFD_BIN`, else `target/<profile>/kdfd` next to the running executable
/// (`cargo run --release --example X` → target/release/kdfd); an error says how to build it.
pub fn default_kdfd_bin() -> anyhow::Result<PathBuf> {
    let path = kdfd_bin_near_exe().map_err(anyhow::Error::msg)?;
    if !path.is_file() {
        bail!(
            "{} does not exist: run `cargo build --release` (or `cargo build` for a debug run) first (or set KDFD_BIN / --kdfd-bin)",
            path.display()
        );
    }
    warn_if_stale(&path);
    Ok(path)
}

/// Warns when a file under src/ is newer than the binary (a forgotten `cargo build --release`).
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let mut stack = vec![Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../src")).to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
            {
                eprintln!(
                    "warning: {} is newer than {}: run `cargo build --release` to measure the current code",
                    p.display(),
                    bin.display()
                );
                return;
            }
        }
    }
}

/// How a measured kdfd runs: `$KDFD_WRAPPER` in front of it, the caller's RUST_LOG, no watchdog.
pub fn measuring() -> Tuning {
    Tuning {
        wrapper: std::env::var("KDFD_WRAPPER").ok(),
        ready_timeout: None,
        quiet: true,
    }
}

/// Starts `bin` with `conf` for a measurement: `$KDFD_WRAPPER` (e.g. `valgrind --tool=callgrind`)
/// in front of it, the caller's RUST_LOG, no watchdog, [`ready_timeout`] to get ready.
pub fn start_kdfd(bin: &Path, conf: Value) -> anyhow::Result<Kdfd> {
    Kdfd::launch_tuned(
        bin,
        Launch {
            conf: Some(conf),
            ..Launch::default()
        },
        &Tuning {
            ready_timeout: Some(ready_timeout()),
            ..measuring()
        },
    )
    .map_err(|e| anyhow::anyhow!("kdfd {}: {e}", bin.display()))
}

/// How long to wait for the ready line: 20 s, or 120 s under `$KDFD_WRAPPER` (valgrind is slow).
pub fn ready_timeout() -> Duration {
    if std::env::var("KDFD_WRAPPER").is_ok_and(|w| !w.trim().is_empty()) {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(20)
    }
}

/// Samples a process's VmRSS every `every` and keeps the peak, until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling on its own thread (so a busy runtime cannot delay it).
    pub fn start(pid: u32, every: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(proc_status_kb(pid, "VmRSS").unwrap_or(0)));
        let (s, p) = (stop.clone(), peak.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmRSS") {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(every);
            }
        });
        RssSampler {
            stop,
            peak,
            handle: Some(handle),
        }
    }

    /// Stops sampling; returns the peak VmRSS in kB.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}
