//! Real-chain end-to-end suite: the real kdfd binary against a real Litecoin regtest node and a real
//! ElectrumX 2.0 server, both started by `scripts/electrum-regtest/start.sh` on 127.0.0.1.
//!
//! Stacks:
//! - one shared stack for the scenarios that only add coins to their own addresses (SSL, funding,
//!   segwit, batch, failover). Every one of them uses its own kdfd and its own passphrase, and every
//!   chain change (mining, funding) goes through `Stack::chain()`, a lock, so that a test can hold
//!   a transaction unconfirmed for as long as it needs;
//! - a private stack for the mined-coinbase scenario (its exact balance needs blocks 1..=101 with
//!   an empty mempool: Litecoin regtest halves every 150 blocks and fees go to the coinbase);
//! - a private stack for the ElectrumX stop/restart scenario, so no other test sees the outage.
//!
//! No stack outlives the test binary: each has a watchdog (its own process group, so a Ctrl-C on
//! the test does not kill it) that runs `stop.sh` once the test process is gone. In the normal
//! case the stacks are stopped synchronously: a private one when its test ends, the shared one when
//! the last of the `SHARED_TESTS` tests using it ends.
//!
//! A stack that cannot start fails the tests that need it with start.sh's stderr; nothing skips.

mod support;

use bitcoin::hashes::{sha256, Hash};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::{Kdfd, Launch, USERPASS};

const KIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/electrum-regtest");
const COINS_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/regtest-coins.json"
);
/// Litecoin regtest P2PKH version byte, WIF version byte and bech32 HRP.
const PUBTYPE: u8 = 111;
const WIFTYPE: u8 = 239;
const HRP: &str = "rltc";
/// How long any one kdfd request may take before the test fails instead of hanging.
const HTTP_LIMIT: Duration = Duration::from_secs(45);
/// How long the chain indexer may take to show a change.
const INDEX_LIMIT: Duration = Duration::from_secs(20);

// ------------------------------------------------------------------------------------------------
// The regtest stack
// ------------------------------------------------------------------------------------------------

/// Only one start.sh at a time: its "port 0" picks a free port and binds it a moment later, so two
/// concurrent starts could pick the same one.
static START_LOCK: Mutex<()> = Mutex::new(());
/// Set by any test that fails, so the stacks' logs are shown when they are stopped.
static ANY_FAILED: AtomicBool = AtomicBool::new(false);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The ER_* variables a caller may set for the kit (install location, interpreter); every other
/// ER_* from the environment is dropped so that nothing changes the chain the tests expect.
const ER_PASSTHROUGH: &[&str] = &[
    "ER_CACHE_DIR",
    "ER_PYTHON",
    "ER_LITECOIND",
    "ER_START_TIMEOUT",
];

/// `timeout` runs the script in its own process group and kills the whole group when it is late.
fn kit_command(run_dir: &Path, limit_secs: u64, script: &str) -> Command {
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
fn kit_output(run_dir: &Path, mut cmd: Command) -> std::io::Result<std::process::Output> {
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
const WATCHDOG: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 1; done
for f in "$2"/inflight/*; do [ -e "$f" ] && kill -TERM -- "-${f##*/}" 2>/dev/null; done
for f in "$2"/inflight/*; do
  i=0; while [ -e "$f" ] && kill -0 "${f##*/}" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
done
[ -f "$2/electrumx.pid" ] && kill -CONT "$(cat "$2/electrumx.pid")" 2>/dev/null
ER_RUN_DIR="$2" ER_CLEAN=1 exec "$3"
"#;

fn kv(out: &str, key: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(str::to_string)
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A running node + ElectrumX.
struct Stack {
    label: String,
    run_dir: PathBuf,
    env: HashMap<String, String>,
    watchdog: Mutex<Option<Child>>,
    stopped: AtomicBool,
    chain: Mutex<()>,
}

impl Stack {
    /// Starts a fresh stack in its own run dir with free ports; `Err` carries start.sh's output.
    fn start(label: &str) -> Result<Stack, String> {
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
                .env("ER_SSL_PORT", "0");
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

    fn tcp(&self) -> &str {
        &self.env["ELECTRUM_TCP"]
    }

    fn ssl(&self) -> &str {
        &self.env["ELECTRUM_SSL"]
    }

    fn miner(&self) -> &str {
        &self.env["MINER_ADDRESS"]
    }

    /// Runs a kit script; panics with its output when it fails or runs past `limit_secs`.
    fn run(&self, script: &str, args: &[&str], limit_secs: u64) -> String {
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
    fn ercli(&self, args: &[&str]) -> Value {
        let out = self.run("ercli.py", args, 60);
        let out = out.trim();
        serde_json::from_str(out).unwrap_or_else(|_| Value::String(out.to_string()))
    }

    /// A node RPC call.
    fn node(&self, method: &str, args: &[&str]) -> Value {
        let mut all = vec!["rpc", method];
        all.extend_from_slice(args);
        self.ercli(&all)
    }

    /// What ElectrumX itself says about an address: (confirmed, unconfirmed) in satoshis.
    fn electrum_balance(&self, addr: &str) -> (i64, i64) {
        let v = self.ercli(&["balance", addr]);
        match (v["confirmed"].as_i64(), v["unconfirmed"].as_i64()) {
            (Some(c), Some(u)) => (c, u),
            _ => panic!("ercli.py balance {addr} answered {v}"),
        }
    }

    /// Waits until ElectrumX reports exactly (confirmed, unconfirmed) for `addr`.
    fn wait_indexed(&self, addr: &str, want: (i64, i64)) {
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
    fn chain(&self) -> Chain<'_> {
        Chain {
            stack: self,
            _guard: lock(&self.chain),
        }
    }

    /// `electrumx-restart.sh stop|start`; returns how long it took.
    fn electrumx(&self, action: &str) -> Duration {
        let t0 = Instant::now();
        self.run("electrumx-restart.sh", &[action], 150);
        t0.elapsed()
    }

    /// Stops both processes and deletes the run dir (once); shows the logs when a test failed.
    fn stop(&self) {
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
struct Chain<'a> {
    stack: &'a Stack,
    _guard: MutexGuard<'a, ()>,
}

impl Chain<'_> {
    /// `mine.sh N ADDR` (waits until ElectrumX indexed the blocks); returns the new height.
    fn mine(&self, n: u32, addr: &str) -> u64 {
        let out = self.stack.run("mine.sh", &[&n.to_string(), addr], 120);
        kv(&out, "HEIGHT")
            .and_then(|h| h.parse().ok())
            .unwrap_or_else(|| panic!("mine.sh printed {out}"))
    }

    /// `fund.sh ADDR AMOUNT CONF`; returns the txid.
    fn fund(&self, addr: &str, amount: &str, conf: u32) -> String {
        let out = self
            .stack
            .run("fund.sh", &[addr, amount, &conf.to_string()], 180);
        kv(&out, "TXID").unwrap_or_else(|| panic!("fund.sh printed {out}"))
    }

    /// Whether a transaction is still in the node's mempool.
    fn in_mempool(&self, txid: &str) -> bool {
        let v = self.stack.node("getrawmempool", &[]);
        v.as_array().is_some_and(|a| a.iter().any(|t| t == txid))
    }
}

/// The tests that use the shared stack; the last of them to finish stops it.
const SHARED_TESTS: usize = 5;
static SHARED: OnceLock<Result<Stack, String>> = OnceLock::new();
static SHARED_DONE: AtomicUsize = AtomicUsize::new(0);

/// Held by each shared-stack test for its whole run.
struct SharedUser;

impl Drop for SharedUser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            ANY_FAILED.store(true, Ordering::SeqCst);
        }
        if SHARED_DONE.fetch_add(1, Ordering::SeqCst) + 1 == SHARED_TESTS {
            if let Some(Ok(stack)) = SHARED.get() {
                stack.stop();
            }
        }
    }
}

fn shared() -> &'static Stack {
    match SHARED.get_or_init(|| Stack::start("shared")) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A stack for one test only, stopped when it drops.
fn private(label: &str) -> Stack {
    Stack::start(label).unwrap_or_else(|e| panic!("{e}"))
}

/// Marks a private-stack test as failed when it panics (so the stack logs are shown).
struct FailureFlag;

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
fn start_kdfd(passphrase: &str, extra: Value) -> Daemon {
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
const KDFD_GUARD: &str = r#"
ours() { kill -0 "$2" 2>/dev/null && tr '\0' ' ' <"/proc/$2/cmdline" | grep -qF -- "$3"; }
while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
ours "$@" && kill "$2"
i=0; while ours "$@" && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
ours "$@" && kill -KILL "$2"
"#;

/// A kdfd and its guard.
struct Daemon {
    guard: Child,
    kdfd: Kdfd,
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
fn post_within(k: &Kdfd, body: &Value, limit: Duration) -> (u16, Value, Duration) {
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

fn post(k: &Kdfd, body: &Value) -> (u16, Value) {
    let (s, v, _) = post_within(k, body, HTTP_LIMIT);
    (s, v)
}

/// Asserts `(status, body)` equals the expectation exactly, with kdfd's log on failure.
#[track_caller]
fn expect_exact(k: &Kdfd, what: &str, got: (u16, Value), want: (u16, Value)) {
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

fn req(method: &str, extra: Value) -> Value {
    support::req(method, extra)
}

fn electrum(coin: &str, servers: Value) -> Value {
    req("electrum", json!({"coin": coin, "servers": servers}))
}

fn my_balance(coin: &str) -> Value {
    req("my_balance", json!({"coin": coin}))
}

/// `my_balance` after a chain change kdfd learns of by notification: ElectrumX already reports the
/// new balance (`Stack::wait_indexed`), kdfd may take a moment longer when it serves balances from
/// its subscription-fed cache. Polls for up to 5 s, then asserts the exact answer; a lag is shown.
#[track_caller]
fn expect_balance(k: &Kdfd, what: &str, coin: &str, address: &str, balance: &str) {
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
fn activated(coin: &str, address: &str, balance: &str) -> Value {
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

fn balance_of(coin: &str, address: &str, balance: &str) -> Value {
    json!({"coin": coin, "balance": balance, "unspendable_balance": "0", "address": address})
}

/// The wallet kdfd derives from a passphrase, computed with the crate's own crypto.
struct Wallet {
    p2pkh: String,
    segwit: String,
}

fn wallet(passphrase: &str) -> Wallet {
    let key = kdfd::crypto::KeyPair::from_passphrase(passphrase).expect("valid passphrase");
    let h160 = key.hash160();
    Wallet {
        p2pkh: kdfd::crypto::p2pkh_address(&[PUBTYPE], &h160),
        segwit: kdfd::crypto::segwit_address(HRP, &h160).expect("bech32 address"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts the legacy error shape: HTTP 500 and an object whose only key is a string "error".
#[track_caller]
fn error_text(k: &Kdfd, what: &str, got: &(u16, Value)) -> String {
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

// ------------------------------------------------------------------------------------------------
// Scenarios
// ------------------------------------------------------------------------------------------------

/// Scenario 1 (own stack): 101 blocks mined to kdfd's address give exactly 101 × 50 LTC; the
/// address kdfd shows is the one the node derives from the same private key (P2PKH and bech32).
/// Also times activations against the real ElectrumX.
#[test]
fn mined_coinbase_balance_over_tcp() {
    let _flag = FailureFlag;
    let stack = private("mined");

    // A known private key, so the node can derive the addresses from it independently.
    let secret = sha256::Hash::hash(b"kdfd e2e regtest: mined coinbase").to_byte_array();
    let passphrase = format!("0x{}", hex(&secret));
    let w = wallet(&passphrase);
    let mut wif_payload = vec![WIFTYPE];
    wif_payload.extend_from_slice(&secret);
    wif_payload.push(1); // compressed
    let wif = bitcoin::base58::encode_check(&wif_payload);
    let derive = |kind: &str| -> String {
        let desc = format!("{kind}({wif})");
        let info = stack.node("getdescriptorinfo", &[&desc]);
        let checksum = info["checksum"]
            .as_str()
            .unwrap_or_else(|| panic!("getdescriptorinfo {kind}: {info}"));
        let addrs = stack.node("deriveaddresses", &[&format!("{desc}#{checksum}")]);
        addrs[0]
            .as_str()
            .unwrap_or_else(|| panic!("deriveaddresses {kind}: {addrs}"))
            .to_string()
    };
    let node_p2pkh = derive("pkh");
    let node_segwit = derive("wpkh");
    assert_eq!(
        w.p2pkh, node_p2pkh,
        "P2PKH address: crate vs node (from WIF {wif})"
    );
    assert_eq!(
        w.segwit, node_segwit,
        "bech32 address: crate vs node (from WIF {wif})"
    );
    for a in [&node_p2pkh, &node_segwit] {
        let v = stack.node("validateaddress", &[a]);
        assert_eq!(v["isvalid"], json!(true), "node validateaddress {a}: {v}");
    }

    let height = stack.chain().mine(101, &w.p2pkh);
    assert_eq!(height, 101, "a fresh chain mined 101 blocks");
    // Electrum counts immature coinbase as confirmed: 101 blocks below the first halving (150).
    stack.wait_indexed(&w.p2pkh, (101 * 50 * 100_000_000, 0));

    let k = start_kdfd(&passphrase, json!({}));
    let (status, body, first) = post_within(
        &k,
        &electrum("LTCR", json!([{"url": stack.tcp()}])),
        HTTP_LIMIT,
    );
    expect_exact(
        &k,
        "electrum LTCR over TCP",
        (status, body.clone()),
        (200, activated("LTCR", &node_p2pkh, "5050")),
    );
    expect_exact(
        &k,
        "my_balance LTCR",
        post(&k, &my_balance("LTCR")),
        (200, balance_of("LTCR", &node_p2pkh, "5050")),
    );
    expect_exact(
        &k,
        "electrum LTCR-segwit over TCP",
        post(&k, &electrum("LTCR-segwit", json!([{"url": stack.tcp()}]))),
        (200, activated("LTCR-segwit", &node_segwit, "0")),
    );
    expect_exact(
        &k,
        "get_enabled_coins",
        post(&k, &req("get_enabled_coins", json!({}))),
        (
            200,
            json!({"result": [{"ticker": "LTCR", "address": node_p2pkh}, {"ticker": "LTCR-segwit", "address": node_segwit}]}),
        ),
    );

    // Activation timings: the first one above, then disable + activate again a few times.
    let mut again = Vec::new();
    for _ in 0..5 {
        expect_exact(
            &k,
            "disable_coin LTCR",
            post(&k, &req("disable_coin", json!({"coin": "LTCR"}))),
            (
                200,
                json!({"result": {"coin": "LTCR", "cancelled_orders": [], "passivized": false}}),
            ),
        );
        let (s, v, took) = post_within(
            &k,
            &electrum("LTCR", json!([{"url": stack.tcp()}])),
            HTTP_LIMIT,
        );
        expect_exact(
            &k,
            "electrum LTCR again",
            (s, v),
            (200, activated("LTCR", &node_p2pkh, "5050")),
        );
        again.push(took);
    }
    again.sort();
    eprintln!(
        "[e2e] TIMING activation of LTCR (electrum over TCP, real ElectrumX 2.0, HTTP round trip): first {:.1} ms; \
         5 re-activations min {:.1} / median {:.1} / max {:.1} ms",
        first.as_secs_f64() * 1e3,
        again[0].as_secs_f64() * 1e3,
        again[2].as_secs_f64() * 1e3,
        again[4].as_secs_f64() * 1e3
    );
}

/// Scenario 2: SSL with the kit's self-signed certificate: refused while certificates are
/// verified (and the coin stays inactive), accepted with `disable_cert_verification`.
#[test]
fn ssl_activation_and_certificate_rejection() {
    let _user = SharedUser;
    let stack = shared();
    let w = wallet("kdfd e2e regtest: ssl");
    let k = start_kdfd("kdfd e2e regtest: ssl", json!({}));

    let refused = post(
        &k,
        &electrum("LTCR", json!([{"url": stack.ssl(), "protocol": "SSL"}])),
    );
    let err = error_text(
        &k,
        "electrum over SSL with certificate verification",
        &refused,
    );
    for part in [stack.ssl(), "TLS handshake failed", "certificate"] {
        assert!(
            err.contains(part),
            "the error should mention {part:?}: {err}"
        );
    }
    eprintln!("[e2e] SSL with verification refused: {err}");
    expect_exact(
        &k,
        "my_balance after the refused activation",
        post(&k, &my_balance("LTCR")),
        (500, json!({"error": "No such coin: LTCR"})),
    );
    expect_exact(
        &k,
        "get_enabled_coins after the refused activation",
        post(&k, &req("get_enabled_coins", json!({}))),
        (200, json!({"result": []})),
    );

    let servers =
        json!([{"url": stack.ssl(), "protocol": "SSL", "disable_cert_verification": true}]);
    expect_exact(
        &k,
        "electrum over SSL without verification",
        post(&k, &electrum("LTCR", servers)),
        (200, activated("LTCR", &w.p2pkh, "0")),
    );
    expect_exact(
        &k,
        "my_balance over SSL",
        post(&k, &my_balance("LTCR")),
        (200, balance_of("LTCR", &w.p2pkh, "0")),
    );
}

/// Scenario 3: an unconfirmed payment counts at once, and still counts once confirmed.
#[test]
fn funding_unconfirmed_then_confirmed() {
    let _user = SharedUser;
    let stack = shared();
    let w = wallet("kdfd e2e regtest: funding");
    let k = start_kdfd("kdfd e2e regtest: funding", json!({}));
    expect_exact(
        &k,
        "electrum LTCR",
        post(&k, &electrum("LTCR", json!([{"url": stack.tcp()}]))),
        (200, activated("LTCR", &w.p2pkh, "0")),
    );

    let chain = stack.chain();
    let txid = chain.fund(&w.p2pkh, "1.5", 0);
    stack.wait_indexed(&w.p2pkh, (0, 150_000_000));
    expect_balance(
        &k,
        "my_balance with 1.5 unconfirmed",
        "LTCR",
        &w.p2pkh,
        "1.5",
    );
    assert!(
        chain.in_mempool(&txid),
        "{txid} was confirmed while the chain was locked"
    );

    chain.mine(1, stack.miner());
    assert!(
        !chain.in_mempool(&txid),
        "{txid} is still unconfirmed after a block"
    );
    stack.wait_indexed(&w.p2pkh, (150_000_000, 0));
    drop(chain);
    expect_balance(&k, "my_balance with 1.5 confirmed", "LTCR", &w.p2pkh, "1.5");
}

/// Scenario 4: LTCR-segwit for the same key: a bech32 address, funded and read back exactly, and
/// kept apart from the P2PKH balance.
#[test]
fn segwit_activation_and_funding() {
    let _user = SharedUser;
    let stack = shared();
    let w = wallet("kdfd e2e regtest: segwit");
    assert!(w.segwit.starts_with("rltc1q"), "{}", w.segwit);
    let k = start_kdfd("kdfd e2e regtest: segwit", json!({}));
    let tcp = json!([{"url": stack.tcp()}]);
    expect_exact(
        &k,
        "electrum LTCR",
        post(&k, &electrum("LTCR", tcp.clone())),
        (200, activated("LTCR", &w.p2pkh, "0")),
    );
    expect_exact(
        &k,
        "electrum LTCR-segwit",
        post(&k, &electrum("LTCR-segwit", tcp)),
        (200, activated("LTCR-segwit", &w.segwit, "0")),
    );

    stack.chain().fund(&w.segwit, "2.25", 1);
    stack.wait_indexed(&w.segwit, (225_000_000, 0));
    expect_balance(
        &k,
        "my_balance LTCR-segwit",
        "LTCR-segwit",
        &w.segwit,
        "2.25",
    );
    expect_exact(
        &k,
        "my_balance LTCR",
        post(&k, &my_balance("LTCR")),
        (200, balance_of("LTCR", &w.p2pkh, "0")),
    );
}

/// Scenario 5: the KDF docs' batch: one POST with three activations, one of them with a wrong
/// userpass; then one POST with both balances.
#[test]
fn kdf_docs_batch_activation() {
    let _user = SharedUser;
    let stack = shared();
    let w = wallet("kdfd e2e regtest: batch");
    {
        let chain = stack.chain();
        chain.fund(&w.p2pkh, "0.7", 0);
        chain.fund(&w.segwit, "0.3", 1);
    }
    // The P2PKH payment may have been confirmed by the segwit one's block: wait for the total.
    let deadline = Instant::now() + INDEX_LIMIT;
    loop {
        let (confirmed, unconfirmed) = stack.electrum_balance(&w.p2pkh);
        if confirmed + unconfirmed == 70_000_000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ElectrumX shows {confirmed}+{unconfirmed} for {}, not 0.7",
            w.p2pkh
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stack.wait_indexed(&w.segwit, (30_000_000, 0));

    let k = start_kdfd("kdfd e2e regtest: batch", json!({}));
    let tcp = json!([{"url": stack.tcp()}]);
    let mut wrong = electrum("LTCR", tcp.clone());
    wrong["userpass"] = json!("wrong");
    let batch = json!([
        electrum("LTCR", tcp.clone()),
        electrum("LTCR-segwit", tcp),
        wrong
    ]);
    expect_exact(
        &k,
        "batch of activations",
        post(&k, &batch),
        (
            200,
            json!([
                activated("LTCR", &w.p2pkh, "0.7"),
                activated("LTCR-segwit", &w.segwit, "0.3"),
                {"error": "Userpass is invalid!"},
            ]),
        ),
    );
    expect_exact(
        &k,
        "batch of balances",
        post(&k, &json!([my_balance("LTCR"), my_balance("LTCR-segwit")])),
        (
            200,
            json!([
                balance_of("LTCR", &w.p2pkh, "0.7"),
                balance_of("LTCR-segwit", &w.segwit, "0.3")
            ]),
        ),
    );
}

/// Scenario 6 (own stack): ElectrumX goes away: `my_balance` fails fast with a 500; ElectrumX comes
/// back on the same port: `my_balance` works again without re-activation. Then ElectrumX hangs
/// (SIGSTOP): `my_balance` fails within the configured Electrum timeout, and recovers on SIGCONT.
#[test]
fn electrumx_stop_and_restart() {
    let _flag = FailureFlag;
    let stack = private("restart");
    let w = wallet("kdfd e2e regtest: restart");
    stack.chain().mine(1, &w.p2pkh);
    stack.wait_indexed(&w.p2pkh, (50 * 100_000_000, 0));

    let k = start_kdfd(
        "kdfd e2e regtest: restart",
        json!({"electrum_timeout_sec": 3}),
    );
    expect_exact(
        &k,
        "electrum LTCR",
        post(&k, &electrum("LTCR", json!([{"url": stack.tcp()}]))),
        (200, activated("LTCR", &w.p2pkh, "50")),
    );
    expect_exact(
        &k,
        "my_balance before the outage",
        post(&k, &my_balance("LTCR")),
        (200, balance_of("LTCR", &w.p2pkh, "50")),
    );

    let stop_took = stack.electrumx("stop");
    for attempt in 1..=2 {
        let (status, body, took) = post_within(&k, &my_balance("LTCR"), Duration::from_secs(15));
        let err = error_text(
            &k,
            &format!("my_balance #{attempt} while ElectrumX is down"),
            &(status, body),
        );
        assert!(
            took < Duration::from_secs(10),
            "my_balance #{attempt} took {took:?} while ElectrumX was down"
        );
        assert!(err.starts_with("All servers errored: ["), "{err}");
        assert!(
            err.contains(&format!(
                "{}: connection failed: Connection refused",
                stack.tcp()
            )),
            "{err}"
        );
        eprintln!(
            "[e2e] ElectrumX down: my_balance #{attempt} answered 500 in {:.1} ms: {err}",
            took.as_secs_f64() * 1e3
        );
    }
    expect_exact(
        &k,
        "get_enabled_coins while ElectrumX is down",
        post(&k, &req("get_enabled_coins", json!({}))),
        (
            200,
            json!({"result": [{"ticker": "LTCR", "address": w.p2pkh}]}),
        ),
    );

    let start_took = stack.electrumx("start");
    let t0 = Instant::now();
    let mut tries = 0;
    let recovered = loop {
        tries += 1;
        let (status, body) = post(&k, &my_balance("LTCR"));
        if status == 200 {
            break (status, body);
        }
        if t0.elapsed() > Duration::from_secs(30) {
            panic!(
                "my_balance still fails {:?} after ElectrumX came back: {status} {body}\n--- kdfd log tail ---\n{}",
                t0.elapsed(),
                tail(&k.stderr(), 40)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let recovery = t0.elapsed();
    expect_exact(
        &k,
        "my_balance after ElectrumX came back",
        recovered,
        (200, balance_of("LTCR", &w.p2pkh, "50")),
    );
    eprintln!(
        "[e2e] TIMING ElectrumX stop {:.1} s, start {:.1} s; kdfd's my_balance recovered {:.0} ms after start returned \
         ({tries} request(s), no re-activation)",
        stop_took.as_secs_f64(),
        start_took.as_secs_f64(),
        recovery.as_secs_f64() * 1e3
    );

    // The new connection serves live data.
    stack.chain().mine(1, &w.p2pkh);
    stack.wait_indexed(&w.p2pkh, (100 * 100_000_000, 0));
    expect_balance(
        &k,
        "my_balance after one more block",
        "LTCR",
        &w.p2pkh,
        "100",
    );

    // ElectrumX frozen (SIGSTOP): the kernel still accepts connections but nothing answers, so
    // only kdfd's own timeout (electrum_timeout_sec: 3) can end a request that needs the server.
    let frozen = Frozen::new(&stack);
    let limit = Duration::from_secs(10);
    let timeout_text = format!("{}: no answer within 3s", stack.tcp());
    // my_balance may be served from kdfd's subscription-fed balance cache (nothing changed on
    // chain) or fail on the timeout: either way in time, and never with a wrong balance.
    let (status, body, took) = post_within(&k, &my_balance("LTCR"), Duration::from_secs(15));
    assert!(
        took < limit,
        "my_balance took {took:?} while ElectrumX was frozen"
    );
    if status == 200 {
        let want = (200, balance_of("LTCR", &w.p2pkh, "100"));
        expect_exact(
            &k,
            "my_balance while ElectrumX is frozen",
            (status, body),
            want,
        );
        eprintln!(
            "[e2e] ElectrumX frozen: my_balance answered 200 (cached balance) in {:.1} ms",
            took.as_secs_f64() * 1e3
        );
    } else {
        let err = error_text(&k, "my_balance while ElectrumX is frozen", &(status, body));
        assert!(err.contains(&timeout_text), "{err}");
        eprintln!(
            "[e2e] ElectrumX frozen: my_balance answered 500 in {:.1} s: {err}",
            took.as_secs_f64()
        );
    }
    // Activating another coin must ask the server: it fails on the timeout and stays inactive.
    let tcp = json!([{"url": stack.tcp()}]);
    let (status, body, took) = post_within(
        &k,
        &electrum("LTCR-segwit", tcp.clone()),
        Duration::from_secs(15),
    );
    let err = error_text(
        &k,
        "electrum LTCR-segwit while ElectrumX is frozen",
        &(status, body),
    );
    assert!(
        took < limit,
        "electrum took {took:?} while ElectrumX was frozen"
    );
    assert!(err.contains(&timeout_text), "{err}");
    eprintln!(
        "[e2e] ElectrumX frozen: electrum LTCR-segwit answered 500 in {:.1} s: {err}",
        took.as_secs_f64()
    );
    expect_exact(
        &k,
        "my_balance LTCR-segwit after its failed activation",
        post(&k, &my_balance("LTCR-segwit")),
        (500, json!({"error": "No such coin: LTCR-segwit"})),
    );
    drop(frozen);
    let t0 = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let (status, body) = post(&k, &my_balance("LTCR"));
        if status == 200 {
            let want = (200, balance_of("LTCR", &w.p2pkh, "100"));
            expect_exact(
                &k,
                "my_balance after ElectrumX thawed",
                (status, body),
                want,
            );
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "my_balance still fails after ElectrumX thawed: {status} {body}\n--- kdfd log tail ---\n{}",
            tail(&k.stderr(), 40)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "[e2e] TIMING kdfd's my_balance recovered {:.0} ms after ElectrumX was thawed ({tries} request(s))",
        t0.elapsed().as_secs_f64() * 1e3
    );
    expect_exact(
        &k,
        "electrum LTCR-segwit after ElectrumX thawed",
        post(&k, &electrum("LTCR-segwit", tcp)),
        (200, activated("LTCR-segwit", &w.segwit, "0")),
    );
}

/// Keeps a stack's ElectrumX stopped with SIGSTOP until dropped (SIGCONT, also on panic).
struct Frozen {
    pid: String,
}

impl Frozen {
    fn new(stack: &Stack) -> Frozen {
        let pid =
            std::fs::read_to_string(stack.run_dir.join("electrumx.pid")).expect("electrumx.pid");
        let frozen = Frozen {
            pid: pid.trim().to_string(),
        };
        assert!(!frozen.pid.is_empty(), "no ElectrumX pid recorded");
        let ok = Command::new("kill")
            .args(["-STOP", &frozen.pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -STOP {} failed", frozen.pid);
        frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid]).status();
    }
}

/// Scenario 7: the first server is a closed port; activation fails over to the real ElectrumX.
#[test]
fn failover_from_closed_port() {
    let _user = SharedUser;
    let stack = shared();
    let w = wallet("kdfd e2e regtest: failover");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
        l.local_addr().expect("local addr").port()
    };
    let k = start_kdfd("kdfd e2e regtest: failover", json!({}));
    let servers = json!([{"url": format!("127.0.0.1:{closed}")}, {"url": stack.tcp()}]);
    let (status, body, took) = post_within(&k, &electrum("LTCR", servers), HTTP_LIMIT);
    expect_exact(
        &k,
        "electrum LTCR with a closed first server",
        (status, body),
        (200, activated("LTCR", &w.p2pkh, "0")),
    );
    eprintln!(
        "[e2e] TIMING activation with failover from a closed port: {:.1} ms",
        took.as_secs_f64() * 1e3
    );
    expect_exact(
        &k,
        "my_balance after failover",
        post(&k, &my_balance("LTCR")),
        (200, balance_of("LTCR", &w.p2pkh, "0")),
    );
}
