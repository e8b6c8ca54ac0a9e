//! The one kdfd launcher: runs the real binary on port 0 with a config in a temp dir, waits for
//! its `listening on http://ADDR` line, and talks to it over real HTTP with the crate's client.
//!
//! The binary's path is a parameter: integration tests pass `env!("CARGO_BIN_EXE_kdfd")` (the
//! `tests/support` shim does it for them), examples use [`kdfd_bin_near_exe`].

use kdfd::client::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::USERPASS;

/// How long to wait for the ready line unless [`Launch::ready_timeout`] says otherwise.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How to start kdfd.
#[derive(Default)]
pub struct Launch<'a> {
    /// Written to MM2.json in the temp dir and passed with --conf (unless `args` say otherwise).
    pub conf: Option<Value>,
    /// Extra arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(&'a str, String)>,
    /// Pass the config with --conf (default) or leave it to the other sources.
    pub no_conf_flag: bool,
    /// Working directory (default: the temp dir).
    pub cwd: Option<PathBuf>,
    /// Run this binary instead of the one given to the launcher (the SDK replay runs `kdf`).
    pub program: Option<PathBuf>,
}

/// How the process runs, for measurements (kept out of [`Launch`] so the tests' exhaustive
/// `Launch { .. }` literals stay valid).
#[derive(Default, Clone)]
pub struct Tuning {
    /// A command put in front of the binary, split on whitespace (e.g. `valgrind --tool=callgrind`).
    pub wrapper: Option<String>,
    /// How long to wait for the ready line (default 20 s).
    pub ready_timeout: Option<Duration>,
    /// Benchmarks: keep the caller's RUST_LOG (tests default it to `kdfd=debug`) and start no
    /// watchdog process, so nothing extra logs or runs next to the measured daemon.
    pub quiet: bool,
}

/// A spawned kdfd (or any server that prints `listening on http://ADDR`) not yet known to be
/// ready; [`Spawned::wait_ready`] turns it into a [`Kdfd`]. Not killed on drop.
pub struct Spawned {
    /// The process (stdout piped, stderr in `dir/stderr.log`).
    pub child: Child,
    /// Its temp dir (config, logs).
    pub dir: tempfile::TempDir,
    /// Just before `Command::spawn`.
    pub spawned_at: Instant,
    /// Kills the child if the test process dies without dropping it (SIGKILL, CI time-out).
    pub watchdog: Option<Child>,
}

/// A running kdfd process; killed on drop.
pub struct Kdfd {
    child: Child,
    watchdog: Option<Child>,
    /// The bound RPC address.
    pub addr: SocketAddr,
    /// Just before `Command::spawn`.
    pub spawned_at: Instant,
    /// When the ready line was read.
    pub ready_at: Instant,
    dir: tempfile::TempDir,
}

/// `target/<profile>/kdfd` for the running executable: examples run from
/// `target/<profile>/examples/`, test binaries from `target/<profile>/deps/`. `$KDFD_BIN` wins.
pub fn kdfd_bin_near_exe() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("KDFD_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut dir = exe.parent().ok_or("executable has no directory")?;
    if dir
        .file_name()
        .is_some_and(|n| n == "examples" || n == "deps")
    {
        dir = dir.parent().ok_or("examples dir has no parent")?;
    }
    Ok(dir.join("kdfd"))
}

fn kill_watchdog(w: Option<Child>) {
    if let Some(mut w) = w {
        let _ = w.kill();
        let _ = w.wait();
    }
}

impl Kdfd {
    /// Starts `bin` with `conf` and waits for its ready line; panics if it does not start.
    pub fn start_with(bin: impl AsRef<Path>, conf: Value) -> Kdfd {
        Kdfd::launch_with(
            bin,
            Launch {
                conf: Some(conf),
                ..Launch::default()
            },
        )
        .expect("kdfd starts")
    }

    /// Starts `bin`; `Err(stderr)` if it exits before it is ready.
    pub fn launch_with(bin: impl AsRef<Path>, l: Launch) -> Result<Kdfd, String> {
        Kdfd::launch_tuned(bin, l, &Tuning::default())
    }

    /// [`Kdfd::launch_with`], run as `t` says.
    pub fn launch_tuned(bin: impl AsRef<Path>, l: Launch, t: &Tuning) -> Result<Kdfd, String> {
        Kdfd::spawn_with(bin, l, t)?.wait_ready(t.ready_timeout.unwrap_or(READY_TIMEOUT))
    }

    /// Spawns `bin` as `l` and `t` say without waiting for it.
    pub fn spawn_with(bin: impl AsRef<Path>, l: Launch, t: &Tuning) -> Result<Spawned, String> {
        let bin = l
            .program
            .clone()
            .unwrap_or_else(|| bin.as_ref().to_path_buf());
        let bin = bin.as_path();
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let wrapper = t.wrapper.clone().unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut cmd = match words.next() {
            Some(prog) => {
                let mut c = Command::new(prog);
                c.args(words).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.current_dir(l.cwd.clone().unwrap_or_else(|| dir.path().to_path_buf()));
        cmd.env_remove("MM_CONF_PATH").env_remove("MM_COINS_PATH");
        cmd.env("HOME", dir.path());
        if !t.quiet && std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "kdfd=debug");
        }
        if let Some(conf) = &l.conf {
            let path = dir.path().join("MM2.json");
            std::fs::write(&path, conf.to_string()).map_err(|e| format!("write conf: {e}"))?;
            if !l.no_conf_flag {
                cmd.arg("--conf").arg(&path);
            }
        }
        cmd.args(&l.args);
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log"))
            .map_err(|e| format!("stderr log: {e}"))?;
        cmd.stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null());
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let watchdog = if t.quiet {
            None
        } else {
            Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {} 2>/dev/null",
                    std::process::id(),
                    child.id()
                ))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()
        };
        Ok(Spawned {
            child,
            dir,
            spawned_at,
            watchdog,
        })
    }

    /// The temp dir the process runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Everything the process logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// A new keep-alive connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await.expect("connect to kdfd")
    }

    /// POSTs JSON on a new connection; returns status and parsed body.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.client().await.post_json(body).await.expect("post")
    }

    /// POSTs raw bytes on a new connection.
    pub async fn post_raw(
        &self,
        method: &str,
        body: impl Into<bytes::Bytes>,
    ) -> kdfd::client::RawResponse {
        self.client().await.send(method, body).await.expect("send")
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The OS process id (of the wrapper, if one was given).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's current RSS in kB.
    pub fn rss_kb(&self) -> Option<u64> {
        crate::proc_status_kb(self.pid(), "VmRSS")
    }

    /// Asks kdfd to `stop` and waits up to `timeout` for it to exit (so profilers can write their
    /// output); it is killed on drop if it does not.
    pub async fn stop(mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Ok(mut c) = Client::connect(self.addr).await {
            let stop = json!({"userpass": USERPASS, "method": "stop"});
            let _ = tokio::time::timeout(timeout, c.post_json(&stop)).await;
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Spawned {
    /// Waits up to `timeout` for the `listening on http://ADDR` line; `Err(stderr)` if the
    /// process exits first, and it is killed if the time runs out.
    pub fn wait_ready(self, timeout: Duration) -> Result<Kdfd, String> {
        let Spawned {
            mut child,
            dir,
            spawned_at,
            watchdog,
        } = self;
        let Some(stdout) = child.stdout.take() else {
            kill_watchdog(watchdog);
            return Err("the child's stdout is not piped".into());
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the ready line so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                }
            }
        });
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(5)) {
                let Ok(addr) = addr.parse() else {
                    let _ = child.kill();
                    let _ = child.wait();
                    kill_watchdog(watchdog);
                    return Err(format!("ready line address {addr:?}"));
                };
                return Ok(Kdfd {
                    child,
                    watchdog,
                    addr,
                    spawned_at,
                    ready_at: Instant::now(),
                    dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                kill_watchdog(watchdog);
                let err =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                return Err(format!("exited with {status}: {err}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                kill_watchdog(watchdog);
                return Err(format!("kdfd did not print its ready line in {timeout:?}"));
            }
        }
    }
}

impl Drop for Kdfd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        kill_watchdog(self.watchdog.take());
    }
}
