//! The SDK replay's runner: the environment (coins file, dbdir, fixed port, fake Electrum), `kdf`
//! spawned as the SDK spawns it, `stop`, the task loop, funding, the SDK's required fields, its
//! per-session stream and address calls, and its send on the fake.
//! A module of tests/support, used by tests/sdk_replay.rs.
#![allow(dead_code)]

use super::electrum_fake::FakeElectrum;
use super::sdk::*;
use super::sdk_chain::real_entry;
use super::{shipped_coins, Kdfd, Launch};
use bitcoin::{ScriptBuf, Txid};
use kdfd::client::Client;
use kdfd::coins::Registry;
use kdfd_testkit::history_common::{header, hex, raw, tx, BLOCK_TIME, COIN};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A port that is free now; the SDK always uses a fixed one (7783).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub struct Env {
    pub dbdir: tempfile::TempDir,
    pub coins_file: PathBuf,
    pub port: u16,
    pub fake: FakeElectrum,
    pub coins: Value,
    pub reg: Registry,
}

impl Env {
    pub fn new() -> Env {
        let dbdir = tempfile::tempdir().unwrap();
        // The SDK's coins plus the real chain's LTC-segwit-shaped entry (tests/support/sdk_chain.rs).
        let mut coins = shipped_coins();
        coins.as_array_mut().unwrap().push(real_entry());
        let coins_file = dbdir.path().join("kdf_coins.json");
        std::fs::write(&coins_file, coins.to_string()).unwrap();
        let reg = Registry::load(coins.as_array().unwrap());
        Env {
            dbdir,
            coins_file,
            port: free_port(),
            fake: FakeElectrum::start_tcp(),
            coins,
            reg,
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dbdir.path().join(".kdf")
    }

    /// Spawns `kdf '<config>'` as the SDK does and polls `version` until it answers.
    pub async fn spawn(&self, login: Option<&Login<'_>>) -> Kdfd {
        std::fs::create_dir_all(self.db()).unwrap();
        let conf = start_conf(self.port, &self.db(), login);
        let k = Kdfd::launch(Launch {
            args: vec![conf.to_string()],
            env: vec![
                ("MM_COINS_PATH", self.coins_file.display().to_string()),
                ("RUST_LOG", "kdfd=debug".to_string()),
            ],
            program: Some(PathBuf::from(env!("CARGO_BIN_EXE_kdf"))),
            ..Launch::default()
        })
        .unwrap_or_else(|e| panic!("kdf starts: {e}"));
        assert_eq!(k.addr.port(), self.port);
        let (status, v) = k.post(&legacy("version", json!({}))).await;
        assert_eq!(status, 200, "{v}");
        assert!(v["result"].is_string(), "{v}");
        // Every key the SDK sends is accepted without a warning; the unused ones are listed once.
        let log = k.stderr();
        assert!(!log.contains("WARN"), "no warning at start: {log}");
        assert_eq!(log.matches("accepted and not used").count(), 1, "{log}");
        k
    }
}

/// `stop` as the SDK sends it, with a keep-alive connection left open (so the server side
/// closes it and leaves TIME_WAIT sockets on the port); waits until `version` fails.
pub async fn stop(mut k: Kdfd) {
    let mut held = k.client().await;
    let (s, _) = held.post_json(&legacy("version", json!({}))).await.unwrap();
    assert_eq!(s, 200);
    let (status, v) = k.post(&legacy("stop", json!({}))).await;
    assert_eq!((status, &v["result"]), (200, &json!("success")), "{v}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Client::connect(k.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still answering 5 s after stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let st = k
        .wait_exit(Duration::from_secs(5))
        .expect("exits after stop");
    assert_eq!(st.code(), Some(0));
    drop(held);
    // The closed connections leave TIME_WAIT sockets on the port: a bind without SO_REUSEADDR
    // fails now, so the respawn that follows binds only because kdf sets it.
    let plain = tokio::net::TcpSocket::new_v4().unwrap();
    plain.set_reuseaddr(false).unwrap();
    let err = plain.bind(k.addr).expect_err("TIME_WAIT on the port");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

/// The resident set of a process (Linux /proc), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

pub async fn ok(k: &Kdfd, body: Value) -> Value {
    let (status, v) = k.post(&body).await;
    assert_eq!(status, 200, "{body} -> {v}");
    v
}

/// How many InProgress answers the task loops saw (the slow fake makes activations show some).
pub static IN_PROGRESS_SEEN: AtomicUsize = AtomicUsize::new(0);

/// `init`, then `status` with `forget_if_finished:false` until `Ok` (the SDK's loop); InProgress
/// details must be strings, ids integers, every answer 200.
pub async fn task(k: &Kdfd, kind: &str, init: Value, every: Duration) -> (u64, Value) {
    let v = ok(k, v2(&format!("task::{kind}::init"), init)).await;
    let id = v["result"]["task_id"].as_u64().expect("integer task id");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = v2(
            &format!("task::{kind}::status"),
            json!({"task_id": id, "forget_if_finished": false}),
        );
        let r = ok(k, body).await["result"].clone();
        match r["status"].as_str() {
            Some("Ok") => return (id, r["details"].clone()),
            Some("InProgress") => {
                assert!(r["details"].is_string(), "{r}");
                IN_PROGRESS_SEEN.fetch_add(1, Ordering::SeqCst);
            }
            _ => panic!("task {kind} {id}: {r}"),
        }
        assert!(Instant::now() < deadline, "task {kind} {id} never finished");
        tokio::time::sleep(every).await;
    }
}

/// The wallet's funding: F pays someone else, A pays 3 coins to `me` at height 90.
pub fn plant(fake: &FakeElectrum, me: &Addr, salt: u8) -> String {
    let other = ScriptBuf::from_bytes(kdfd::crypto::p2pkh_script(&[7u8; 20]));
    let f = tx(
        &[(bitcoin::hashes::Hash::from_byte_array([salt; 32]), 0)],
        &[(10 * COIN, other.clone())],
    );
    let f_id: Txid = f.compute_txid();
    let a = tx(
        &[(f_id, 0)],
        &[
            (3 * COIN, ScriptBuf::from_bytes(me.script.clone())),
            (699_990_000, other),
        ],
    );
    let a_id = a.compute_txid().to_string();
    fake.add_tx(&f_id.to_string(), &hex(&raw(&f)));
    fake.add_tx(&a_id, &hex(&raw(&a)));
    fake.set_header(90, &header(BLOCK_TIME));
    fake.set_history(&me.scripthash, &[(&a_id, 90)]);
    fake.set_unspents(&me.scripthash, &[(&a_id, 0, 3 * COIN, 90)]);
    fake.set_balance(&me.scripthash, 3 * COIN as i64, 0);
    a_id
}

/// The fields the SDK's TransactionInfo / WithdrawalResult parsers require.
pub fn check_tx(t: &Value, coin: &str, history: bool) {
    let keys: &[&str] = if history {
        &[
            "tx_hash",
            "from",
            "to",
            "my_balance_change",
            "block_height",
            "confirmations",
            "timestamp",
            "coin",
            "internal_id",
        ]
    } else {
        &[
            "tx_hex",
            "tx_hash",
            "from",
            "to",
            "block_height",
            "timestamp",
            "fee_details",
            "coin",
        ]
    };
    for key in keys {
        assert!(
            t.get(*key).is_some_and(|v| !v.is_null()),
            "{key} missing: {t}"
        );
    }
    assert_eq!(t["coin"], coin);
    assert!(t["from"].is_array() && t["to"].is_array(), "{t}");
    assert!(t["tx_hash"].as_str().is_some_and(|h| h.len() == 64), "{t}");
    if let Some(fee) = t.get("fee_details") {
        assert!(fee["amount"].is_string(), "{t}");
        assert!(["Utxo", "UtxoFixed", "UtxoPerKbyte"].contains(&fee["type"].as_str().unwrap()));
    }
}

pub async fn wallet_names(k: &Kdfd) -> Value {
    ok(k, v2("get_wallet_names", Value::Null)).await["result"].clone()
}

/// A KMD address that is not the wallet's.
pub const KMD_TO: &str = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";

/// The SDK's other per-session calls: stream management, enabled coins, HD address creation,
/// address conversion; `coins` are the enabled ones.
pub async fn streams_and_tools(k: &Kdfd, hd: bool, coins: &[&str]) {
    // No SSE client 5: the SDK looks for `UnknownClient` in the (non-200) error text.
    let (status, v) = k
        .post(&v2(
            "stream::balance::enable",
            json!({"client_id": 5, "coin": "KMD"}),
        ))
        .await;
    assert_ne!(status, 200);
    assert!(v.to_string().contains("UnknownClient"), "{v}");
    let v = ok(
        k,
        v2(
            "stream::tx_history::enable",
            json!({"client_id": 0, "coin": "KMD"}),
        ),
    )
    .await;
    assert_eq!(v["result"]["streamer_id"], "TX_HISTORY:KMD");
    let v = ok(
        k,
        v2("stream::shutdown_signal::enable", json!({"client_id": 0})),
    )
    .await;
    assert_eq!(v["result"]["streamer_id"], "SHUTDOWN_SIGNAL");
    let body = v2(
        "stream::disable",
        json!({"client_id": 0, "streamer_id": "TX_HISTORY:KMD"}),
    );
    assert_eq!(ok(k, body).await["result"]["result"], "Success");
    let v = ok(k, v2("get_enabled_coins", Value::Null)).await;
    let mut tickers: Vec<&str> = v["result"]["coins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["ticker"].as_str())
        .collect();
    let mut want = coins.to_vec();
    tickers.sort();
    want.sort();
    assert_eq!(tickers, want, "{v}");
    if hd {
        let p = json!({"coin": "KMD", "account_id": 0, "chain": "External", "gap_limit": 20});
        let v = ok(k, v2("get_new_address", p)).await;
        let a = &v["result"]["new_address"];
        assert!(
            a["derivation_path"]
                .as_str()
                .unwrap()
                .starts_with("m/44'/141'/0'/0/"),
            "{v}"
        );
        assert_eq!(a["chain"], "External");
        assert!(
            a["address"].is_string() && a["balance"]["KMD"]["spendable"].is_string(),
            "{v}"
        );
    }
    let p = json!({"coin": "KMD", "from": KMD_TO, "to_address_format": {"format": "standard"}});
    let v = ok(k, legacy("convertaddress", p)).await;
    assert_eq!(v["result"]["address"], KMD_TO);
}

/// A BTC address that is not the wallet's.
pub const BTC_TO: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";

/// The GUI's send on the fake: validateaddress, task::withdraw (preview), send_raw_transaction.
pub async fn fake_send(env: &Env, k: &Kdfd, c: &str, me: &Addr) {
    let to = if c == "KMD" { KMD_TO } else { BTC_TO };
    let v = ok(
        k,
        legacy("validateaddress", json!({"coin": c, "address": to})),
    )
    .await;
    assert_eq!(v["result"], json!({"is_valid": true}));
    let bad = json!({"coin": c, "address": "x1nonsense"});
    let v = ok(k, legacy("validateaddress", bad)).await;
    assert_eq!(v["result"]["is_valid"], false);
    assert!(v["result"]["reason"].is_string(), "{v}");
    let mut w = json!({"coin": c, "to": to, "amount": "1"});
    if c == "KMD" {
        w["kmd_rewards"] = json!({"amount": "0", "claimed_by_me": true});
    }
    let (_, d) = task(k, "withdraw", w, Duration::from_millis(500)).await;
    check_tx(&d, c, false);
    assert_eq!(d["from"], json!([me.address]));
    let raw = json!({"coin": c, "tx_hex": d["tx_hex"]});
    let v = ok(k, legacy("send_raw_transaction", raw)).await;
    // The server's answer is relayed (the fake answers a made-up id, not the txid).
    assert!(v["tx_hash"].as_str().is_some_and(|h| h.len() == 64), "{v}");
    assert_eq!(
        env.fake.broadcasts().last(),
        d["tx_hex"].as_str().map(str::to_string).as_ref()
    );
}

/// The SDK's app start: no-login `kdf`, `get_wallet_names`, `stop`.
pub async fn no_login_round(env: &Env, expect_names: Value) {
    let k = env.spawn(None).await;
    let names = wallet_names(&k).await;
    assert_eq!(names["wallet_names"], expect_names);
    assert!(names["activated_wallet"].is_null(), "{names}");
    // A few of the SDK/GUI calls kdfd does not answer yet (docs/komodo-wallet.md): KDF's
    // NoSuchMethod, which the SDK reads as text.
    for body in [
        legacy("kmd_rewards_info", json!({})),
        v2("get_token_info", json!({"protocol": {"type": "ERC20"}})),
        v2("enable_bch_with_tokens", json!({"ticker": "BCH"})),
        v2("task::enable_tendermint::init", json!({"ticker": "ATOM"})),
        v2("task::enable_z_coin::init", json!({"ticker": "ARRR"})),
        v2("task::init_trezor::init", json!({})),
    ] {
        let (status, v) = k.post(&body).await;
        assert_ne!(status, 200, "{body}");
        assert!(v.to_string().contains("NoSuchMethod"), "{body} -> {v}");
    }
    stop(k).await;
}
