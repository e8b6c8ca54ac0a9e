//! The Komodo Wallet's SDK session replayed against the real `kdf` binary over real HTTP:
//! spawned as the SDK spawns it (`kdf '<config>'`, `MM_COINS_PATH`), on a fixed port that each
//! restart after `stop` must bind again at once, against the in-process fake Electrum server for
//! KMD and BTC-segwit. Each step asserts the fields the SDK reads as required
//! (kdf-wallet-compat.md 0.1, 2, 4).

mod support;

use kdfd_testkit::history_common::{BLOCK_TIME, COIN};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::sdk::*;
use support::sdk_run::*;
use support::Kdfd;

const COINS: [&str; 2] = ["KMD", "BTC-segwit"];
const WALLET_PW: &str = "Wallet-pass-1!";
const KMD_TO: &str = "R9o9xTocqr6CeEDGDH6mEYpwLoMz6jNjMW";
const BTC_TO: &str = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq";
const TANK: &str = "tank abandon bind salon remove wisdom net size aspect direct source fossil";

/// The enabled addresses of a wallet's coins and their funding txids.
type Funded = Vec<(Addr, String)>;

/// One signed-in session: everything the GUI does from login to sign-out. `funded` is empty on a
/// wallet's first session (the fake is funded then); returns the mnemonic and the funding.
async fn session(env: &Env, login: &Login<'_>, funded: &Funded) -> (String, Funded) {
    let first = funded.is_empty();
    let k = env.spawn(Some(login)).await;
    let names = wallet_names(&k).await;
    assert_eq!(names["activated_wallet"], login.name, "{names}");
    assert!(names["wallet_names"]
        .as_array()
        .unwrap()
        .contains(&json!(login.name)));
    let v = ok(
        &k,
        v2(
            "get_mnemonic",
            json!({"format": "plaintext", "password": login.password}),
        ),
    )
    .await;
    assert_eq!(v["result"]["format"], "plaintext");
    let mnemonic = v["result"]["mnemonic"].as_str().unwrap().to_string();
    assert_eq!(mnemonic.split(' ').count(), 12, "{mnemonic}");
    kdfd::crypto::hd::HdSeed::from_mnemonic(&mnemonic).expect("BIP39");
    if let Some(p) = login.passphrase {
        assert_eq!(mnemonic, p);
    }
    let addrs: Vec<Addr> = COINS
        .iter()
        .map(|c| expected_addr(&env.reg, c, &mnemonic, login.hd))
        .collect();
    let txids: Vec<String> = if first {
        addrs
            .iter()
            .enumerate()
            .map(|(i, a)| plant(&env.fake, a, 9 + i as u8))
            .collect()
    } else {
        assert_eq!(
            funded.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
            addrs,
            "same addresses"
        );
        for a in &addrs {
            env.fake.set_balance(&a.scripthash, 3 * COIN as i64, 0);
        }
        funded.iter().map(|f| f.1.clone()).collect()
    };

    // SSE preflight, then the stream: 200, text/event-stream, `: ok` first.
    ok(&k, legacy("version", json!({}))).await;
    let mut sse = Sse::open(k.addr, "/event-stream?id=0", "").await;
    assert_eq!(sse.status, 200, "{}", sse.head);
    assert!(sse
        .head
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream"));
    let first_block = sse.next(Duration::from_secs(2)).await.unwrap();
    assert!(first_block.starts_with(": ok"), "{first_block:?}");

    // Both coins at once, as CoinsBloc does; a slow server so InProgress is seen.
    let gets_before = env.fake.method_count("blockchain.transaction.get");
    env.fake.set_latency(Duration::from_millis(150));
    let enabled = ok(&k, v2("get_enabled_coins", Value::Null)).await;
    assert_eq!(enabled["result"]["coins"], json!([]));
    let inits: Vec<Value> = COINS
        .iter()
        .map(|c| enable_utxo(c, &env.fake.url(), &coin_entry(&env.coins, c)))
        .collect();
    let tick = Duration::from_millis(500);
    let seen = IN_PROGRESS_SEEN.load(Ordering::SeqCst);
    let ((kmd_id, kmd), (_, btc)) = tokio::join!(
        task(&k, "enable_utxo", inits[0].clone(), tick),
        task(&k, "enable_utxo", inits[1].clone(), tick)
    );
    env.fake.set_latency(Duration::ZERO);
    assert!(
        IN_PROGRESS_SEEN.load(Ordering::SeqCst) > seen,
        "InProgress seen while activating"
    );
    for (d, (c, a)) in [kmd, btc].iter().zip(COINS.iter().zip(&addrs)) {
        assert_eq!(d["ticker"], *c);
        assert_eq!(d["current_block"], 100);
        let wb = &d["wallet_balance"];
        if login.hd {
            assert_eq!(wb["wallet_type"], "HD", "{d}");
            let a0 = &wb["accounts"][0]["addresses"][0];
            assert_eq!(a0["address"], a.address.as_str(), "{d}");
            assert_eq!(a0["balance"][*c]["spendable"], "3", "{d}");
        } else {
            assert_eq!(wb["wallet_type"], "Iguana", "{d}");
            assert_eq!(wb["address"], a.address.as_str());
            assert_eq!(wb["balance"][*c]["spendable"], "3", "{d}");
        }
    }
    // The SDK keeps polling finished tasks: the same answer every time, nothing grows.
    let poll = v2(
        "task::enable_utxo::status",
        json!({"task_id": kmd_id, "forget_if_finished": false}),
    );
    let once = ok(&k, poll.clone()).await;
    for _ in 0..50 {
        assert_eq!(ok(&k, poll.clone()).await, once);
    }
    let rss = rss_kib(k.pid());
    for _ in 0..500 {
        assert_eq!(ok(&k, poll.clone()).await, once);
    }
    let grown = rss_kib(k.pid()).saturating_sub(rss);
    assert!(grown < 2048, "500 status polls grew RSS by {grown} KiB");

    // Balances: HD account_balance (status every 500 ms), Iguana my_balance.
    for (c, a) in COINS.iter().zip(&addrs) {
        if login.hd {
            let (_, d) = task(
                &k,
                "account_balance",
                json!({"coin": c, "account_index": 0}),
                tick,
            )
            .await;
            assert_eq!(d["account_index"], 0);
            assert_eq!(d["addresses"][0]["address"], a.address.as_str(), "{d}");
            assert_eq!(d["total_balance"][*c]["spendable"], "3", "{d}");
        } else {
            let v = ok(&k, legacy("my_balance", json!({"coin": c}))).await;
            assert_eq!(
                (v["address"].as_str(), v["balance"].as_str()),
                (Some(&*a.address), Some("3"))
            );
        }
    }
    for zero_arg in [
        "get_enabled_coins",
        "get_wallet_names",
        "get_public_key",
        "get_public_key_hash",
    ] {
        ok(&k, v2(zero_arg, Value::Null)).await;
    }

    // Real time: a payment arrives as a BALANCE event.
    let v = ok(
        &k,
        v2(
            "stream::balance::enable",
            json!({"client_id": 0, "coin": "KMD"}),
        ),
    )
    .await;
    assert_eq!(v["result"]["streamer_id"], "BALANCE:KMD");
    let paid = if first { 4 } else { 5 } * COIN as i64;
    env.fake.set_balance(&addrs[0].scripthash, paid, 0);
    let ev = sse.frame("BALANCE:KMD", Duration::from_secs(10)).await;
    let m = &ev["message"];
    let entry = if m.is_array() { &m[0] } else { m };
    assert_eq!(entry["address"], addrs[0].address.as_str(), "{ev}");
    assert_eq!(
        entry["balance"]["spendable"],
        if first { "4" } else { "5" },
        "{ev}"
    );

    streams_and_tools(&k, login.hd).await;

    // History (v2; HD: target account 0), from Electrum the first time, from SQLite after.
    for (c, txid) in COINS.iter().zip(&txids) {
        let mut p = json!({"coin": c, "limit": 10, "paging_options": {"PageNumber": 1}});
        if login.hd {
            p["target"] = json!({"type": "account_id", "account_id": 0});
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        if !first {
            // Signed in again: the entry is answered at once, from the database.
            let r = ok(&k, v2("my_tx_history", p.clone())).await["result"].clone();
            assert_eq!(r["total"], 1, "history from the database at once: {r}");
        }
        let r = loop {
            let r = ok(&k, v2("my_tx_history", p.clone())).await["result"].clone();
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
    if !first {
        // No history transaction is downloaded again (the sync may re-read the inputs of an entry
        // whose address set changed since, e.g. after get_new_address: at most one per coin here).
        let gets = env.fake.method_count("blockchain.transaction.get");
        assert!(
            gets <= gets_before + COINS.len(),
            "history came from the database: {gets} > {gets_before}"
        );
    }

    // Send: validateaddress, task::withdraw (preview), send_raw_transaction.
    for (c, to) in COINS.iter().zip([KMD_TO, BTC_TO]) {
        let v = ok(
            &k,
            legacy("validateaddress", json!({"coin": c, "address": to})),
        )
        .await;
        assert_eq!(v["result"], json!({"is_valid": true}));
        let v = ok(
            &k,
            legacy(
                "validateaddress",
                json!({"coin": c, "address": "x1nonsense"}),
            ),
        )
        .await;
        assert_eq!(v["result"]["is_valid"], false);
        assert!(v["result"]["reason"].is_string(), "{v}");
        let mut w = json!({"coin": c, "to": to, "amount": "1"});
        if *c == "KMD" {
            w["kmd_rewards"] = json!({"amount": "0", "claimed_by_me": true});
        }
        let (_, d) = task(&k, "withdraw", w, tick).await;
        check_tx(&d, c, false);
        assert_eq!(
            d["from"],
            json!([addrs[if *c == "KMD" { 0 } else { 1 }].address])
        );
        let v = ok(
            &k,
            legacy(
                "send_raw_transaction",
                json!({"coin": c, "tx_hex": d["tx_hex"]}),
            ),
        )
        .await;
        // The server's answer is relayed (the fake answers a made-up id, not the txid).
        assert!(v["tx_hash"].as_str().is_some_and(|h| h.len() == 64), "{v}");
        assert_eq!(
            env.fake.broadcasts().last(),
            d["tx_hex"].as_str().map(str::to_string).as_ref()
        );
    }
    stop(k).await;
    (mnemonic, addrs.into_iter().zip(txids).collect())
}

/// The SDK's other per-session calls: stream management, enabled coins, HD address creation,
/// address conversion.
async fn streams_and_tools(k: &Kdfd, hd: bool) {
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
    tickers.sort();
    assert_eq!(tickers, ["BTC-segwit", "KMD"], "{v}");
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

/// Sign-in to an existing wallet: the SDK sends name, password and mode, never the mnemonic.
fn sign_in<'a>(l: &Login<'a>) -> Login<'a> {
    Login {
        name: l.name,
        password: l.password,
        hd: l.hd,
        passphrase: None,
        register: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_session_hd_new_wallet_then_iguana_import() {
    let env = Env::new();
    no_login_round(&env, json!([])).await;

    // A new HD wallet: no passphrase, so kdf makes the mnemonic; then sign out and back in.
    let hd = Login {
        name: "My HD",
        password: WALLET_PW,
        hd: true,
        passphrase: None,
        register: true,
    };
    let (m, funded) = session(&env, &hd, &Vec::new()).await;
    no_login_round(&env, json!(["My HD"])).await;
    assert_eq!(session(&env, &sign_in(&hd), &funded).await.0, m);

    // An imported seed in Iguana mode, then sign in again.
    let ig = Login {
        name: "imported",
        password: WALLET_PW,
        hd: false,
        passphrase: Some(TANK),
        register: true,
    };
    let (_, funded) = session(&env, &ig, &Vec::new()).await;
    assert_eq!(session(&env, &sign_in(&ig), &funded).await.0, TANK);
    no_login_round(&env, json!(["My HD", "imported"])).await;
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
