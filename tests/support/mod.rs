//! Test harness: runs the real kdfd binary on port 0 with a config in a temp dir, and talks to it
//! over real HTTP with the crate's own client.
#![allow(dead_code)]

pub mod electrum_fake;
pub mod regtest;

use kdfd::client::Client;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The rpc_password of every test config (passes KDF's policy).
pub const USERPASS: &str = "Rpc!Secret42x";
/// The wallet passphrase of every test config (KDF's "bob passphrase" vectors).
pub const PASSPHRASE: &str = "bob passphrase";
/// bob's address for pubtype 60 coins (RICK, MORTY, DOC, MARTY, KMD).
pub const BOB_R_ADDRESS: &str = "RRnMcSeKiLrNdbp91qNVQwwXx5azD4S4CD";

/// A config with the test userpass and passphrase on a free port; coins inline.
pub fn base_conf(coins: Value) -> Value {
    json!({
        "gui": "kdfd-test",
        "netid": 9998,
        "passphrase": PASSPHRASE,
        "rpc_password": USERPASS,
        "rpcport": 0,
        "coins": coins,
    })
}

/// The shipped coins file as JSON.
pub fn shipped_coins() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/coins")).expect("coins file");
    serde_json::from_str(&text).expect("coins file is JSON")
}

/// `n` test-only UTXO coins named T0..T{n-1} (pubtype 60, like RICK).
pub fn test_coins(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"coin": format!("T{i}"), "mm2": 1, "protocol": {"type": "UTXO"}}))
            .collect(),
    )
}

/// A running kdfd process; killed on drop.
pub struct Kdfd {
    child: Child,
    /// Kills kdfd if the test process dies without dropping us (SIGKILL, CI time-out).
    watchdog: Option<Child>,
    /// The bound RPC address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

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
    /// The binary to run (default: kdfd; the SDK replay runs `CARGO_BIN_EXE_kdf`).
    pub program: Option<PathBuf>,
}

impl Kdfd {
    /// Starts kdfd with `conf` and waits for its ready line.
    pub fn start(conf: Value) -> Kdfd {
        Kdfd::launch(Launch {
            conf: Some(conf),
            ..Launch::default()
        })
        .expect("kdfd starts")
    }

    /// Starts kdfd; `Err(stderr)` if it exits before it is ready.
    pub fn launch(l: Launch) -> Result<Kdfd, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let program = l
            .program
            .clone()
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kdfd")));
        let mut cmd = Command::new(program);
        cmd.current_dir(l.cwd.clone().unwrap_or_else(|| dir.path().to_path_buf()));
        cmd.env_remove("MM_CONF_PATH").env_remove("MM_COINS_PATH");
        cmd.env("HOME", dir.path());
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "kdfd=debug");
        }
        if let Some(conf) = &l.conf {
            let path = dir.path().join("MM2.json");
            std::fs::write(&path, conf.to_string()).expect("write conf");
            if !l.no_conf_flag {
                cmd.arg("--conf").arg(&path);
            }
        }
        cmd.args(&l.args);
        for (k, v) in &l.env {
            cmd.env(k, v);
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        cmd.stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null());
        let mut child = cmd.spawn().expect("spawn kdfd");
        let watchdog = Command::new("sh")
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
            .ok();
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ready = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.trim().to_string());
                    ready = true;
                }
                if ready {
                    // Keep draining so the child never blocks on a full pipe.
                    continue;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(addr) = rx.recv_timeout(Duration::from_millis(20)) {
                let addr = addr.parse().expect("bound address");
                return Ok(Kdfd {
                    child,
                    watchdog,
                    addr,
                    dir,
                });
            }
            if let Ok(Some(status)) = child.try_wait() {
                if let Some(mut w) = watchdog {
                    let _ = w.kill();
                    let _ = w.wait();
                }
                let err =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                return Err(format!("exited with {status}: {err}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                if let Some(mut w) = watchdog {
                    let _ = w.kill();
                    let _ = w.wait();
                }
                return Err("kdfd did not print its ready line in 20 s".into());
            }
        }
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

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Kdfd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = &mut self.watchdog {
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// True when every slot of a batch answer is a successful activation.
pub fn all_activated(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|slots| slots.iter().all(|s| s["result"] == "success"))
}

/// The tickers of the shipped coins file.
pub fn shipped_tickers() -> Vec<String> {
    shipped_coins()
        .as_array()
        .expect("coins array")
        .iter()
        .filter_map(|c| c["coin"].as_str().map(String::from))
        .collect()
}

/// A legacy request with the test userpass.
pub fn req(method: &str, extra: Value) -> Value {
    let mut v = json!({"userpass": USERPASS, "method": method});
    if let (Some(obj), Value::Object(more)) = (v.as_object_mut(), extra) {
        obj.extend(more);
    }
    v
}

/// Electrum scripthashes of bob's key: (P2PKH, P2PK) — computed with the crate's own crypto,
/// whose vectors are unit-tested against KDF's.
pub fn bob_scripthashes() -> (String, String) {
    let k = kdfd::crypto::KeyPair::from_passphrase(PASSPHRASE).expect("key");
    (
        kdfd::crypto::scripthash(&kdfd::crypto::p2pkh_script(&k.hash160())),
        kdfd::crypto::scripthash(&kdfd::crypto::p2pk_script(&k.public_key())),
    )
}
