//! The real-chain regtest stack driver shared by the e2e suites: a Litecoin regtest node and a
//! real ElectrumX 2.0 started by `scripts/electrum-regtest/start.sh` on 127.0.0.1 (each stack in
//! its own run dir with free ports, ended by a watchdog if the test process dies), chain
//! changes under a lock (`Stack::chain()`), and kdfd launched with the regtest coins fixture.
//!
//! A stack that cannot start fails the tests that need it with start.sh's stderr; nothing skips.

pub mod wallet;

use super::{Kdfd, Launch, USERPASS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const KIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/electrum-regtest");
pub const COINS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/regtest-coins.json"
);
/// Litecoin regtest P2PKH version byte, WIF version byte and bech32 HRP.
pub const PUBTYPE: u8 = 111;
pub const WIFTYPE: u8 = 239;
pub const HRP: &str = "rltc";
/// How long any one kdfd request may take before the test fails instead of hanging.
pub const HTTP_LIMIT: Duration = Duration::from_secs(45);
/// How long the chain indexer may take to show a change.
pub const INDEX_LIMIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------------------------
// The regtest stack
// ------------------------------------------------------------------------------------------------

/// Only one start.sh at a time: its "port 0" picks a free port and binds it a moment later, so two
/// concurrent starts could pick the same one.
pub static START_LOCK: Mutex<()> = Mutex::new(());
/// Set by any test that fails, so the stacks' logs are shown when they are stopped.
pub static ANY_FAILED: AtomicBool = AtomicBool::new(false);

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ER_* variables a caller may set for the kit (install location, interpreter); every other
/// ER_* from the environment is dropped so that nothing changes the chain the tests expect.
pub const ER_PASSTHROUGH: &[&str] = &[
    "ER_CACHE_DIR",
    "ER_PYTHON",
    "ER_LITECOIND",
    "ER_START_TIMEOUT",
];

/// `timeout` runs the script in its own process group and kills the whole group when it is late.
pub fn kit_command(run_dir: &Path, limit_secs: u64, script: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=5")
        .arg(limit_secs.to_string())
        .arg(format!("{KIT}/{script}"));
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("ER_") && !ER_PASSTHROUGH.contains(&k.as_str()) {
            cmd.env_remove(k);
        }
    }
    cmd.env("ER_RUN_DIR", run_dir).stdin(Stdio::null());
    cmd
}

/// Runs a kit command to its end. While it runs, `$RUN/inflight/<pid>` names it (its pid is also
/// its process group, made by `timeout`), so that the watchdog can end it if the tests die first.
pub fn kit_output(run_dir: &Path, mut cmd: Command) -> std::io::Result<std::process::Output> {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let marker = run_dir.join("inflight").join(child.id().to_string());
    let _ = std::fs::create_dir_all(run_dir.join("inflight"));
    let _ = std::fs::write(&marker, "");
    let out = child.wait_with_output();
    let _ = std::fs::remove_file(&marker);
    out
}

/// Runs once the test process ($1) is gone: ends the kit commands still running for the run dir
/// ($2) with their whole process groups (a start.sh cut short must not launch anything after the
/// clean-up), wakes a frozen ElectrumX, then runs stop.sh ($3) and deletes the run dir.
pub const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
for f in "$2"/inflight/*; do [ -e "$f" ] && kill -TERM -- "-${f##*/}" 2>/dev/null; done
for f in "$2"/inflight/*; do
  i=0; while [ -e "$f" ] && kill -0 "${f##*/}" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
done
[ -f "$2/electrumx.pid" ] && kill -CONT "$(cat "$2/electrumx.pid")" 2>/dev/null
ER_RUN_DIR="$2" ER_CLEAN=1 exec "$3"
"#;

pub fn kv(out: &str, key: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running node + ElectrumX.
pub struct Stack {
    label: String,
    pub run_dir: PathBuf,
    env: HashMap<String, String>,
    watchdog: Mutex<Option<Child>>,
    stopped: AtomicBool,
    chain: Mutex<()>,
}

impl Stack {
    /// Starts a fresh stack in its own run dir with free ports; `Err` carries start.sh's output.
    pub fn start(label: &str) -> Result<Stack, String> {
        Self::start_with(label, &[])
    }

    /// As `start`, with extra ER_* settings for start.sh (e.g. `ER_COST_LIMITS=stock`).
    pub fn start_with(label: &str, settings: &[(&str, &str)]) -> Result<Stack, String> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let run_dir =
            std::env::temp_dir().join(format!("kdfd-e2e-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&run_dir)
            .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
        // The watchdog first, so that even a half-started stack goes away with the test process.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("kdfd-e2e-watchdog")
            .arg(std::process::id().to_string())
            .arg(&run_dir)
            .arg(format!("{KIT}/stop.sh"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot spawn the stack watchdog: {e}"))?;
        let mut stack = Stack {
            label: label.to_string(),
            run_dir,
            env: HashMap::new(),
            watchdog: Mutex::new(Some(watchdog)),
            stopped: AtomicBool::new(false),
            chain: Mutex::new(()),
        };
        let t0 = Instant::now();
        let out = {
            let _one = lock(&START_LOCK);
            let mut cmd = kit_command(&stack.run_dir, 300, "start.sh");
            cmd.env("ER_NODE_RPC_PORT", "0")
                .env("ER_TCP_PORT", "0")
                .env("ER_SSL_PORT", "0")
                .envs(settings.iter().copied());
            kit_output(&stack.run_dir, cmd)
        };
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                stack.stop();
                return Err(format!("cannot run {KIT}/start.sh: {e}"));
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() {
            stack.stop();
            return Err(format!(
                "the electrum-regtest stack '{label}' did not start: start.sh exited with {} after {:.1} s\n\
                 --- start.sh stderr ---\n{stderr}\n--- start.sh stdout ---\n{stdout}",
                out.status,
                t0.elapsed().as_secs_f64()
            ));
        }
        for line in stdout.lines() {
            if let Some((k, v)) = line.split_once('=') {
                stack.env.insert(k.to_string(), v.to_string());
            }
        }
        for key in [
            "ELECTRUM_TCP",
            "ELECTRUM_SSL",
            "MINER_ADDRESS",
            "NODE_RPC_PORT",
        ] {
            if stack.env.get(key).is_none_or(|v| v.is_empty()) {
                stack.stop();
                return Err(format!("start.sh printed no {key}=\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"));
            }
        }
        for key in ["ELECTRUM_TCP", "ELECTRUM_SSL"] {
            if !stack.env[key].starts_with("127.0.0.1:") {
                stack.stop();
                return Err(format!("{key}={} is not on 127.0.0.1", stack.env[key]));
            }
        }
        eprintln!(
            "[e2e] stack '{label}' up in {:.1} s: electrum tcp {} ssl {}, run dir {}",
            t0.elapsed().as_secs_f64(),
            stack.tcp(),
            stack.ssl(),
            stack.run_dir.display()
        );
        Ok(stack)
    }

    pub fn tcp(&self) -> &str {
        &self.env["ELECTRUM_TCP"]
    }

    pub fn ssl(&self) -> &str {
        &self.env["ELECTRUM_SSL"]
    }

    pub fn miner(&self) -> &str {
        &self.env["MINER_ADDRESS"]
    }

    /// A KEY=VALUE that start.sh printed (e.g. `ELECTRUMX_ADMIN_PORT`, `NODE_RPC_USER`).
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    /// Runs a kit script; panics with its output when it fails or runs past `limit_secs`.
    pub fn run(&self, script: &str, args: &[&str], limit_secs: u64) -> String {
        let t0 = Instant::now();
        let mut cmd = kit_command(&self.run_dir, limit_secs, script);
        cmd.args(args);
        let out =
            kit_output(&self.run_dir, cmd).unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            panic!(
                "[stack {}] {script} {args:?} failed with {} after {:.1} s\n--- stderr ---\n{}\n--- stdout ---\n{stdout}",
                self.label,
                out.status,
                t0.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        stdout
    }

    /// `ercli.py ARGS`: its output as JSON (plain strings as JSON strings).
    pub fn ercli(&self, args: &[&str]) -> Value {
        let out = self.run("ercli.py", args, 60);
        let out = out.trim();
        serde_json::from_str(out).unwrap_or_else(|_| Value::String(out.to_string()))
    }

    /// A node RPC call.
    pub fn node(&self, method: &str, args: &[&str]) -> Value {
        let mut all = vec!["rpc", method];
        all.extend_from_slice(args);
        self.ercli(&all)
    }

    /// What ElectrumX itself says about an address: (confirmed, unconfirmed) in satoshis.
    pub fn electrum_balance(&self, addr: &str) -> (i64, i64) {
        let v = self.ercli(&["balance", addr]);
        match (v["confirmed"].as_i64(), v["unconfirmed"].as_i64()) {
            (Some(c), Some(u)) => (c, u),
            _ => panic!("ercli.py balance {addr} answered {v}"),
        }
    }

    /// Waits until ElectrumX reports exactly (confirmed, unconfirmed) for `addr`.
    pub fn wait_indexed(&self, addr: &str, want: (i64, i64)) {
        let deadline = Instant::now() + INDEX_LIMIT;
        loop {
            let got = self.electrum_balance(addr);
            if got == want {
                return;
            }
            if Instant::now() > deadline {
                panic!("ElectrumX still reports {got:?} for {addr} after {INDEX_LIMIT:?}; expected {want:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Exclusive use of the chain (mining and funding) until the guard drops.
    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stack: self,
            _guard: lock(&self.chain),
        }
    }

    /// `electrumx-restart.sh stop|start`; returns how long it took.
    pub fn electrumx(&self, action: &str) -> Duration {
        let t0 = Instant::now();
        self.run("electrumx-restart.sh", &[action], 150);
        t0.elapsed()
    }

    /// Stops both processes and deletes the run dir (once); shows the logs when a test failed.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        if std::thread::panicking() || ANY_FAILED.load(Ordering::SeqCst) {
            for log in ["electrumx.log", "node.log"] {
                let text = std::fs::read_to_string(self.run_dir.join(log)).unwrap_or_default();
                eprintln!(
                    "[e2e] stack '{}' {log} (last 25 lines):\n{}",
                    self.label,
                    tail(&text, 25)
                );
            }
        }
        let mut cmd = kit_command(&self.run_dir, 90, "stop.sh");
        cmd.env("ER_CLEAN", "1");
        let out = kit_output(&self.run_dir, cmd);
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "[e2e] stop.sh for stack '{}' exited with {}: {}",
                self.label,
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("[e2e] cannot run stop.sh for stack '{}': {e}", self.label),
        }
        if let Some(mut w) = lock(&self.watchdog).take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Mining and funding, with the chain to oneself.
pub struct Chain<'a> {
    pub stack: &'a Stack,
    _guard: MutexGuard<'a, ()>,
}

impl Chain<'_> {
    /// `mine.sh N ADDR` (waits until ElectrumX indexed the blocks); returns the new height.
    pub fn mine(&self, n: u32, addr: &str) -> u64 {
        let out = self.stack.run("mine.sh", &[&n.to_string(), addr], 120);
        kv(&out, "HEIGHT")
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("mine.sh printed {out}"))
    }

    /// `fund.sh ADDR AMOUNT CONF`; returns the txid.
    pub fn fund(&self, addr: &str, amount: &str, conf: u32) -> String {
        let out = self
            .stack
            .run("fund.sh", &[addr, amount, &conf.to_string()], 180);
        kv(&out, "TXID").unwrap_or_else(|| panic!("fund.sh printed {out}"))
    }

    /// Whether a transaction is still in the node's mempool.
    pub fn in_mempool(&self, txid: &str) -> bool {
        let v = self.stack.node("getrawmempool", &[]);
        v.as_array().is_some_and(|a| a.iter().any(|t| t == txid))
    }
}

/// A stack shared by the `tests` tests of one test binary that call [`SharedStack::user`]; the
/// last of them to finish stops it. Declare one per binary:
/// `static SHARED: SharedStack = SharedStack::new(N);`.
pub struct SharedStack {
    tests: usize,
    cell: OnceLock<Result<Stack, String>>,
    done: AtomicUsize,
}

impl SharedStack {
    pub const fn new(tests: usize) -> SharedStack {
        SharedStack {
            tests,
            cell: OnceLock::new(),
            done: AtomicUsize::new(0),
        }
    }

    /// Marks the calling test as a user until the guard drops.
    pub fn user(&'static self) -> SharedUser {
        SharedUser(self)
    }

    /// The stack, started on first use.
    pub fn get(&'static self) -> &'static Stack {
        match self.cell.get_or_init(|| Stack::start("shared")) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Held by each shared-stack test for its whole run.
pub struct SharedUser(&'static SharedStack);

impl Drop for SharedUser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            ANY_FAILED.store(true, Ordering::SeqCst);
        }
        if self.0.done.fetch_add(1, Ordering::SeqCst) + 1 == self.0.tests {
            if let Some(Ok(stack)) = self.0.cell.get() {
                stack.stop();
            }
        }
    }
}

/// A stack for one test only, stopped when it drops.
pub fn private(label: &str) -> Stack {
    Stack::start(label).unwrap_or_else(|e| panic!("{e}"))
}

/// Marks a private-stack test as failed when it panics (so the stack logs are shown).
pub struct FailureFlag;

impl Drop for FailureFlag {
    fn drop(&mut self) {
        if std::thread::panicking() {
            ANY_FAILED.store(true, Ordering::SeqCst);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// kdfd
// ------------------------------------------------------------------------------------------------

/// kdfd with the regtest coins file and `passphrase`; `extra` keys are merged into the config.
pub fn start_kdfd(passphrase: &str, extra: Value) -> Daemon {
    let mut conf = json!({
        "gui": "kdfd-e2e",
        "netid": 9998,
        "rpc_password": USERPASS,
        "rpcport": 0,
        "passphrase": passphrase,
    });
    if let (Some(obj), Value::Object(more)) = (conf.as_object_mut(), extra) {
        obj.extend(more);
    }
    let kdfd = Kdfd::launch(Launch {
        conf: Some(conf),
        args: vec!["--coins".into(), COINS_FIXTURE.into()],
        ..Launch::default()
    })
    .unwrap_or_else(|e| panic!("kdfd did not start: {e}"));
    // The harness kills kdfd when its handle drops, which never happens if the test process is
    // killed: this guard (in its own process group) ends kdfd then.
    let guard = Command::new("sh")
        .arg("-c")
        .arg(KDFD_GUARD)
        .arg("kdfd-e2e-guard")
        .arg(std::process::id().to_string())
        .arg(kdfd.pid().to_string())
        .arg(kdfd.dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("spawn the kdfd guard");
    Daemon { guard, kdfd }
}

/// Waits while both the test process ($1) and kdfd ($2) live; if the test process went first,
/// ends kdfd (after checking that $2 is still the kdfd running in dir $3).
pub const KDFD_GUARD: &str = r#"
ours() { kill -0 "$2" 2>/dev/null && tr '\0' ' ' <"/proc/$2/cmdline" | grep -qF -- "$3"; }
while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
ours "$@" && kill "$2"
i=0; while ours "$@" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ours "$@" && kill -KILL "$2"
"#;

/// A kdfd and its guard.
pub struct Daemon {
    guard: Child,
    pub kdfd: Kdfd,
}

impl std::ops::Deref for Daemon {
    type Target = Kdfd;
    fn deref(&self) -> &Kdfd {
        &self.kdfd
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.guard.kill();
        let _ = self.guard.wait();
    }
}

/// One POST; (status, body, round-trip time). Fails instead of waiting past `limit`.
pub fn post_within(k: &Kdfd, body: &Value, limit: Duration) -> (u16, Value, Duration) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let t0 = Instant::now();
    let r = rt.block_on(async { tokio::time::timeout(limit, k.post(body)).await });
    let took = t0.elapsed();
    match r {
        Ok((status, v)) => (status, v, took),
        Err(_) => panic!(
            "kdfd gave no answer within {limit:?} to {body}\n--- kdfd log tail ---\n{}",
            tail(&k.stderr(), 40)
        ),
    }
}

pub fn post(k: &Kdfd, body: &Value) -> (u16, Value) {
    let (s, v, _) = post_within(k, body, HTTP_LIMIT);
    (s, v)
}

/// Asserts `(status, body)` equals the expectation exactly, with kdfd's log on failure.
#[track_caller]
pub fn expect_exact(k: &Kdfd, what: &str, got: (u16, Value), want: (u16, Value)) {
    if got != want {
        panic!(
            "{what}:\n  got      {} {}\n  expected {} {}\n--- kdfd log tail ---\n{}",
            got.0,
            got.1,
            want.0,
            want.1,
            tail(&k.stderr(), 40)
        );
    }
}

pub fn req(method: &str, extra: Value) -> Value {
    super::req(method, extra)
}

pub fn electrum(coin: &str, servers: Value) -> Value {
    req("electrum", json!({"coin": coin, "servers": servers}))
}

pub fn my_balance(coin: &str) -> Value {
    req("my_balance", json!({"coin": coin}))
}

/// `my_balance` after a chain change kdfd learns of by notification: ElectrumX already reports the
/// new balance (`Stack::wait_indexed`), kdfd may take a moment longer when it serves balances from
/// its subscription-fed cache. Polls for up to 5 s, then asserts the exact answer; a lag is shown.
#[track_caller]
pub fn expect_balance(k: &Kdfd, what: &str, coin: &str, address: &str, balance: &str) {
    let want = (200, balance_of(coin, address, balance));
    let t0 = Instant::now();
    let mut polls = 0;
    loop {
        polls += 1;
        let got = post(k, &my_balance(coin));
        if got == want || t0.elapsed() > Duration::from_secs(5) {
            if polls > 1 && got == want {
                eprintln!(
                    "[e2e] NOTE {what}: kdfd showed the new balance {:.0} ms after ElectrumX did ({polls} polls)",
                    t0.elapsed().as_secs_f64() * 1e3
                );
            }
            expect_exact(k, what, got, want);
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// KDF's legacy `electrum` success answer for the regtest coins (entry values from the fixture).
pub fn activated(coin: &str, address: &str, balance: &str) -> Value {
    json!({
        "result": "success",
        "address": address,
        "balance": balance,
        "unspendable_balance": "0",
        "coin": coin,
        "required_confirmations": 1,
        "requires_notarization": false,
        "mature_confirmations": 100,
    })
}

pub fn balance_of(coin: &str, address: &str, balance: &str) -> Value {
    json!({"coin": coin, "balance": balance, "unspendable_balance": "0", "address": address})
}

/// The wallet kdfd derives from a passphrase, computed with the crate's own crypto.
pub struct Wallet {
    pub p2pkh: String,
    pub segwit: String,
}

pub fn wallet(passphrase: &str) -> Wallet {
    let key = kdfd::crypto::KeyPair::from_passphrase(passphrase).expect("valid passphrase");
    let h160 = key.hash160();
    Wallet {
        p2pkh: kdfd::crypto::p2pkh_address(&[PUBTYPE], &h160),
        segwit: kdfd::crypto::segwit_address(HRP, &h160).expect("bech32 address"),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts the legacy error shape: HTTP 500 and an object whose only key is a string "error".
#[track_caller]
pub fn error_text(k: &Kdfd, what: &str, got: &(u16, Value)) -> String {
    let only_error = got.1.as_object().is_some_and(|o| o.len() == 1) && got.1["error"].is_string();
    if got.0 != 500 || !only_error {
        panic!(
            "{what}: expected HTTP 500 with {{\"error\": \"...\"}}, got {} {}\n--- kdfd log tail ---\n{}",
            got.0,
            got.1,
            tail(&k.stderr(), 40)
        );
    }
    got.1["error"].as_str().unwrap_or_default().to_string()
}
