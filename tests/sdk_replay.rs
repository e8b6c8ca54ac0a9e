//! The Komodo Wallet's SDK session replayed against the real `kdf` binary over real HTTP:
//! spawned as the SDK spawns it (`kdf '<config>'`, `MM_COINS_PATH`), on a fixed port that each
//! restart after `stop` must bind again at once. The wallet's coins are activated together, as
//! the GUI does: KMD and BTC-segwit against the in-process fake Electrum server, and the regtest
//! LTC-segwit entry against the real ElectrumX of a Litecoin regtest stack, where the node pays
//! the wallet, mines, receives its withdrawals and judges every number (tests/support/sdk_chain.rs).
//! Each step asserts the fields the SDK reads as required (kdf-wallet-compat.md 0.1, 2, 4).

mod support;

use kdfd_testkit::history_common::{BLOCK_TIME, COIN};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::regtest::{private, FailureFlag};
use support::sdk::*;
use support::sdk_chain::*;
use support::sdk_run::*;
use support::Kdfd;

/// The coins on the fake server; [`REAL`] is on the real chain.
const FAKE: [&str; 2] = ["KMD", "BTC-segwit"];
const WALLET_PW: &str = "Wallet-pass-1!";
const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

/// What a wallet's session leaves for the next one: the mnemonic, the fake coins' addresses and
/// funding txids, and the real coin's ledger.
struct Wallet {
    mnemonic: String,
    fake: Vec<(Addr, String)>,
    real: Ledger,
}

/// One signed-in session: everything the GUI does from login to sign-out. `before` is the
/// wallet's previous session (`None` on its first, when the fake is funded).
async fn session(env: &Env, node: &Node<'_>, login: &Login<'_>, before: Option<&Wallet>) -> Wallet {
    let first = before.is_none();
    let mut real = before.map(|w| w.real.clone()).unwrap_or_default();
    if !first {
        // Paid while signed out, and its download held back: after the restart the history
        // answers from the database before its sync has caught up.
        real.receive(node, "0.5");
        node.mine();
        node.proxy.hold(true);
    }
    let k = env.spawn(Some(login)).await;
    let mnemonic = signed_in(&k, login).await;
    let addrs: Vec<Addr> = FAKE
        .iter()
        .map(|c| expected_addr(&env.reg, c, &mnemonic, login.hd))
        .collect();
    let real_addr = expected_addr(&env.reg, REAL, &mnemonic, login.hd).address;
    let txids: Vec<String> = match before {
        None => {
            real.address = real_addr;
            let plants = addrs.iter().enumerate();
            plants
                .map(|(i, a)| plant(&env.fake, a, 9 + i as u8))
                .collect()
        }
        Some(w) => {
            assert_eq!(
                w.mnemonic, mnemonic,
                "the same mnemonic from the wallet file"
            );
            let same: Vec<Addr> = w.fake.iter().map(|f| f.0.clone()).collect();
            assert_eq!(
                (&same, &real.address),
                (&addrs, &real_addr),
                "same addresses"
            );
            for a in &addrs {
                env.fake.set_balance(&a.scripthash, 3 * COIN as i64, 0);
            }
            w.fake.iter().map(|f| f.1.clone()).collect()
        }
    };

    // SSE preflight, then the stream: 200, text/event-stream, `: ok` first.
    ok(&k, legacy("version", json!({}))).await;
    let mut sse = Sse::open(k.addr, "/event-stream?id=0", "").await;
    assert_eq!(sse.status, 200, "{}", sse.head);
    let head = sse.head.to_ascii_lowercase();
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let first_block = sse.next(Duration::from_secs(2)).await.unwrap();
    assert!(first_block.starts_with(": ok"), "{first_block:?}");

    // All coins at once, as CoinsBloc does; a slow fake so InProgress is seen.
    let gets_before = env.fake.method_count("blockchain.transaction.get");
    env.fake.set_latency(Duration::from_millis(150));
    let enabled = ok(&k, v2("get_enabled_coins", Value::Null)).await;
    assert_eq!(enabled["result"]["coins"], json!([]));
    let init = |c: &str, url: &str| enable_utxo(c, url, &coin_entry(&env.coins, c));
    let tick = Duration::from_millis(500);
    let seen = IN_PROGRESS_SEEN.load(Ordering::SeqCst);
    let ((kmd_id, kmd), (_, btc), (_, ltc)) = tokio::join!(
        task(&k, "enable_utxo", init(FAKE[0], &env.fake.url()), tick),
        task(&k, "enable_utxo", init(FAKE[1], &env.fake.url()), tick),
        task(&k, "enable_utxo", init(REAL, &node.proxy.addr), tick)
    );
    env.fake.set_latency(Duration::ZERO);
    assert!(
        IN_PROGRESS_SEEN.load(Ordering::SeqCst) > seen,
        "InProgress seen while activating"
    );
    for (d, (c, a)) in [kmd, btc].iter().zip(FAKE.iter().zip(&addrs)) {
        check_fake_activation(d, c, a, login.hd);
    }
    check_activation(&ltc, node, &real, login.hd);
    if let Some(w) = before {
        history_from_db(&k, node, &w.real, login.hd).await;
    }
    finished_task_polls(&k, kmd_id).await;

    // Balances: HD account_balance (status every 500 ms), Iguana my_balance.
    for (c, a) in FAKE.iter().zip(&addrs) {
        check_fake_balance(&k, c, a, login.hd).await;
    }
    check_balance(&k, node, &real, login.hd).await;
    for zero_arg in [
        "get_enabled_coins",
        "get_wallet_names",
        "get_public_key",
        "get_public_key_hash",
    ] {
        ok(&k, v2(zero_arg, Value::Null)).await;
    }

    // Real time: a payment arrives as a BALANCE event, on the fake and from the node.
    let paid = if first { 4 } else { 5 };
    enable_balance(&k, "KMD").await;
    env.fake
        .set_balance(&addrs[0].scripthash, paid * COIN as i64, 0);
    balance_event(&mut sse, "KMD", &addrs[0].address, &paid.to_string(), None).await;
    enable_balance(&k, REAL).await;
    let (txid, _) = real.receive(node, "1.5");
    balance_event(&mut sse, REAL, &real.address, &amount(real.balance), None).await;
    let mempool = node.call("getrawmempool", json!([]));
    assert!(
        mempool.as_array().unwrap().contains(&json!(txid)),
        "unconfirmed: {mempool}"
    );
    node.mine();
    check_balance(&k, node, &real, login.hd).await;

    let mut coins = FAKE.to_vec();
    coins.push(REAL);
    streams_and_tools(&k, login.hd, &coins).await;

    // History (v2; HD: target account 0), from Electrum the first time, from SQLite after.
    for (c, txid) in FAKE.iter().zip(&txids) {
        check_fake_history(&k, c, txid, login.hd, first).await;
    }
    if !first {
        // No history transaction is downloaded again (the sync may re-read the inputs of an entry
        // whose address set changed since, e.g. after get_new_address: at most one per coin here).
        let gets = env.fake.method_count("blockchain.transaction.get");
        assert!(
            gets <= gets_before + FAKE.len(),
            "history came from the database: {gets} > {gets_before}"
        );
    }
    check_history(&k, node, &real, login.hd).await;

    // Send: validateaddress, task::withdraw (preview), send_raw_transaction.
    for (c, a) in FAKE.iter().zip(&addrs) {
        fake_send(env, &k, c, a).await;
    }
    let held = amount(real.balance);
    send_checked(&k, node, &mut real, "1").await;
    let left = amount(real.balance);
    balance_event(&mut sse, REAL, &real.address, &left, Some(&held)).await;
    check_history(&k, node, &real, login.hd).await;
    check_balance(&k, node, &real, login.hd).await;
    stop(k).await;
    Wallet {
        mnemonic,
        fake: addrs.into_iter().zip(txids).collect(),
        real,
    }
}

/// `get_wallet_names` (the wallet is active) and `get_mnemonic` (plaintext, BIP39).
async fn signed_in(k: &Kdfd, login: &Login<'_>) -> String {
    let names = wallet_names(k).await;
    assert_eq!(names["activated_wallet"], login.name, "{names}");
    let all = names["wallet_names"].as_array().unwrap();
    assert!(all.contains(&json!(login.name)), "{names}");
    let p = json!({"format": "plaintext", "password": login.password});
    let v = ok(k, v2("get_mnemonic", p)).await;
    assert_eq!(v["result"]["format"], "plaintext");
    let mnemonic = v["result"]["mnemonic"].as_str().unwrap().to_string();
    assert_eq!(mnemonic.split(' ').count(), 12, "{mnemonic}");
    kdfd::crypto::hd::HdSeed::from_mnemonic(&mnemonic).expect("BIP39");
    if let Some(p) = login.passphrase {
        assert_eq!(mnemonic, p);
    }
    mnemonic
}

fn check_fake_activation(d: &Value, c: &str, a: &Addr, hd: bool) {
    assert_eq!(d["ticker"], c);
    assert_eq!(d["current_block"], 100);
    let wb = &d["wallet_balance"];
    if hd {
        assert_eq!(wb["wallet_type"], "HD", "{d}");
        let a0 = &wb["accounts"][0]["addresses"][0];
        assert_eq!(a0["address"], a.address.as_str(), "{d}");
        assert_eq!(a0["balance"][c]["spendable"], "3", "{d}");
    } else {
        assert_eq!(wb["wallet_type"], "Iguana", "{d}");
        assert_eq!(wb["address"], a.address.as_str());
        assert_eq!(wb["balance"][c]["spendable"], "3", "{d}");
    }
}

/// The SDK keeps polling finished tasks: the same answer every time, nothing grows.
async fn finished_task_polls(k: &Kdfd, id: u64) {
    let poll = v2(
        "task::enable_utxo::status",
        json!({"task_id": id, "forget_if_finished": false}),
    );
    let once = ok(k, poll.clone()).await;
    for _ in 0..50 {
        assert_eq!(ok(k, poll.clone()).await, once);
    }
    let rss = rss_kib(k.pid());
    for _ in 0..500 {
        assert_eq!(ok(k, poll.clone()).await, once);
    }
    let grown = rss_kib(k.pid()).saturating_sub(rss);
    assert!(grown < 2048, "500 status polls grew RSS by {grown} KiB");
}

async fn check_fake_balance(k: &Kdfd, c: &str, a: &Addr, hd: bool) {
    if hd {
        let p = json!({"coin": c, "account_index": 0});
        let (_, d) = task(k, "account_balance", p, Duration::from_millis(500)).await;
        assert_eq!(d["account_index"], 0);
        assert_eq!(d["addresses"][0]["address"], a.address.as_str(), "{d}");
        assert_eq!(d["total_balance"][c]["spendable"], "3", "{d}");
    } else {
        let v = ok(k, legacy("my_balance", json!({"coin": c}))).await;
        assert_eq!(
            (v["address"].as_str(), v["balance"].as_str()),
            (Some(&*a.address), Some("3"))
        );
    }
}

async fn enable_balance(k: &Kdfd, coin: &str) {
    let p = json!({"client_id": 0, "coin": coin});
    let v = ok(k, v2("stream::balance::enable", p)).await;
    assert_eq!(v["result"]["streamer_id"], format!("BALANCE:{coin}"));
}

/// The next BALANCE event of `coin` shows `address` with `spendable` (KDF sends a list, one
/// entry per address whose balance changed; the SDK takes either shape). Events that still show
/// `unchanged` (a repeat, e.g. when the payment confirms) are passed over.
async fn balance_event(
    sse: &mut Sse,
    coin: &str,
    address: &str,
    spendable: &str,
    unchanged: Option<&str>,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = sse.frame(&format!("BALANCE:{coin}"), left).await;
        let m = &ev["message"];
        let entries = if m.is_array() {
            m.as_array().unwrap().clone()
        } else {
            vec![m.clone()]
        };
        let entry = entries.iter().find(|e| e["address"] == address);
        let got = &entry.unwrap_or_else(|| panic!("no {address} in {ev}"))["balance"]["spendable"];
        if unchanged.is_none_or(|u| got != u) {
            assert_eq!(got, spendable, "{ev}");
            return;
        }
    }
}

async fn check_fake_history(k: &Kdfd, c: &str, txid: &str, hd: bool, first: bool) {
    if !first {
        // Signed in again: the entry is answered at once, from the database.
        let r = history_page(k, c, hd).await;
        assert_eq!(r["total"], 1, "history from the database at once: {r}");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let r = loop {
        let r = history_page(k, c, hd).await;
        if r["total"] == 1 && r["sync_status"]["state"] == "Finished" {
            break r;
        }
        assert!(Instant::now() < deadline, "history: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for key in [
        "current_block",
        "limit",
        "skipped",
        "sync_status",
        "total",
        "total_pages",
    ] {
        assert!(!r[key].is_null(), "{key}: {r}");
    }
    let t = &r["transactions"][0];
    check_tx(t, c, true);
    assert_eq!(
        (&t["tx_hash"], &t["my_balance_change"]),
        (&json!(txid), &json!("3"))
    );
    assert_eq!(
        (&t["confirmations"], &t["timestamp"]),
        (&json!(11), &json!(BLOCK_TIME))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_session_hd_new_wallet_then_iguana_import() {
    let _flag = FailureFlag;
    // One regtest stack for both wallets, started while the app-start round runs.
    let stack = tokio::task::spawn_blocking(|| private("sdk"));
    let env = Env::new();
    no_login_round(&env, json!([])).await;
    let stack = stack.await.unwrap();
    let node = Node::new(&stack).await;

    // A new HD wallet: no passphrase, so kdf makes the mnemonic; then sign out and back in.
    let hd = Login {
        name: "My HD",
        password: WALLET_PW,
        hd: true,
        passphrase: None,
        register: true,
    };
    let w = session(&env, &node, &hd, None).await;
    no_login_round(&env, json!(["My HD"])).await;
    session(&env, &node, &sign_in(&hd), Some(&w)).await;

    // An imported seed in Iguana mode, then sign in again.
    let ig = Login {
        name: "imported",
        password: WALLET_PW,
        hd: false,
        passphrase: Some(TANK),
        register: true,
    };
    let w = session(&env, &node, &ig, None).await;
    assert_eq!(w.mnemonic, TANK);
    session(&env, &node, &sign_in(&ig), Some(&w)).await;
    no_login_round(&env, json!(["My HD", "imported"])).await;
    tokio::task::block_in_place(|| drop(stack));
}

#[tokio::test]
async fn start_up_errors_exit_1_with_one_line() {
    let env = Env::new();
    let hd = Login {
        name: "w",
        password: WALLET_PW,
        hd: true,
        passphrase: Some(TANK),
        register: true,
    };
    let k = env.spawn(Some(&hd)).await;
    stop(k).await;
    let conf = |login: &Login| start_conf(env.port, &env.db(), Some(login));
    let wrong = Login {
        password: "Other-pass-2!",
        ..sign_in(&hd)
    };
    let mismatch = Login {
        passphrase: Some(
            "spice describe gravity federal blast come thank unfair canal monkey style afraid",
        ),
        ..sign_in(&hd)
    };
    for (what, arg) in [
        ("wrong password", conf(&wrong).to_string()),
        ("passphrase mismatch", conf(&mismatch).to_string()),
        ("not JSON", "{not json".to_string()),
        ("not an object", "nonsense".to_string()),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kdf"))
            .arg(&arg)
            .env("MM_COINS_PATH", &env.coins_file)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
    }
}
