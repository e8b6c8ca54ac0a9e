//! The bad-input corpus for the wallet-era methods (HD activation, account balances, new
//! addresses, wallet files, withdraw and raw broadcasts, EVM activation), against the real
//! binary over real HTTP. Every case must get a clear error of KDF's type; after each case the
//! daemon still answers `version`, and at the end nothing was written to disk (the `dbdir`
//! listing and the wallet files are unchanged), nothing was broadcast and nothing became
//! active. Start-up cases (malformed mnemonics, bad wallet names) must exit 1 with one error
//! line and leave no wallet file behind.
//!
//! The general corpus (envelopes, JSON, batches, caps) is tests/bad_input.rs.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::bad_wallet::cases::{self, Case};
use support::bad_wallet::{garbage_http, TANK, WALLET_PW};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, shipped_coins, Kdfd, Launch, USERPASS};

/// Every path under `dir` (relative), with the bytes of each `*.json` file: what a refused
/// request must not change. SQLite files are listed by name only (the daemon's own WAL
/// bookkeeping may touch them).
fn snapshot(dir: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), None);
                walk(root, &p, out);
            } else if rel.ends_with(".json") {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            } else if !rel.ends_with("-wal") && !rel.ends_with("-shm") {
                out.insert(rel, None);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

async fn alive(k: &Kdfd) -> Result<(), String> {
    let fut = k.client();
    let mut c = tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "connect timed out".to_string())?;
    let (s, v) = c
        .post_json(&json!({"method": "version"}))
        .await
        .map_err(|e| format!("version: {e}"))?;
    match s == 200 && v["result"].is_string() {
        true => Ok(()),
        false => Err(format!("version answered {s} {v}")),
    }
}

async fn enabled(k: &Kdfd) -> Value {
    let (s, v) = k
        .post(&json!({"userpass": USERPASS, "method": "get_enabled_coins"}))
        .await;
    assert_eq!(s, 200, "{v}");
    v["result"].clone()
}

/// Runs the cases one by one (some are big); returns the failures.
async fn run(k: &Kdfd, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let body = case.body.to_string();
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            k.client().await.send("POST", body.clone()).await
        })
        .await;
        let verdict = match answer {
            Err(_) => Err("no answer in 30 s".to_string()),
            Ok(Err(e)) => Err(format!("no answer: {e}")),
            Ok(Ok(r)) => case.want.check(r.status, &r.body),
        };
        if let Err(e) = verdict {
            failures.push(format!("[{}] {} -> {e}", case.name, clip(&body)));
        }
        if let Err(e) = alive(k).await {
            failures.push(format!("[{}] daemon stopped serving: {e}", case.name));
            break;
        }
    }
    failures
}

fn clip(s: &str) -> String {
    kdfd_testkit::model::clip_str(s, 240)
}

fn report(label: &str, total: usize, failures: &[String]) {
    eprintln!("CORPUS {label}: {total} cases, {} failures", failures.len());
    for f in failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{label}: {} failures", failures.len());
}

/// HD wallet with a wallet file: enable_utxo, account_balance, get_new_address and the wallet
/// methods; task ids that never existed or were forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hd_and_wallet_methods() {
    let fake = FakeElectrum::start_tcp();
    let db = tempfile::tempdir().unwrap();
    let mut conf = base_conf(cases::hd_coins());
    conf["passphrase"] = json!(TANK);
    conf["enable_hd"] = json!(true);
    conf["wallet_name"] = json!("w1");
    conf["wallet_password"] = json!(WALLET_PW);
    conf["dbdir"] = json!(db.path());
    let k = Kdfd::start(conf);
    // RICK active (HD), so account_balance and get_new_address reach their own checks.
    let done = cases::task_result(&k, "enable_utxo", cases::enable_rick(&fake.url())).await;
    assert_eq!(done["status"], "Ok", "{done}");
    let forgotten = cases::forgotten_task(&k, &fake.url()).await;
    let before_disk = snapshot(db.path());
    let before_coins = enabled(&k).await;

    let all = cases::hd_cases(&fake.url(), forgotten);
    let failures = run(&k, &all).await;
    assert_eq!(enabled(&k).await, before_coins, "nothing (half-)active");
    assert_eq!(snapshot(db.path()), before_disk, "nothing written");
    report("hd and wallet methods", all.len(), &failures);
}

/// Iguana wallet with DOC on the fake: withdraw and send_raw_transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withdraw_and_broadcast() {
    let fake = FakeElectrum::start_tcp();
    cases::fund_bob(&fake);
    let db = tempfile::tempdir().unwrap();
    let mut conf = base_conf(shipped_coins());
    conf["dbdir"] = json!(db.path());
    let k = Kdfd::start(conf);
    let (_, v) = k
        .post(&support::req(
            "electrum",
            json!({"coin": "DOC", "servers": [{"url": fake.url()}]}),
        ))
        .await;
    assert_eq!(v["result"], "success", "{v}");
    // The valid base of the withdraw cases works (so the refusals below are about the input).
    let (s, v) = k.post(&cases::withdraw(json!({}))).await;
    assert_eq!(s, 200, "valid withdraw: {v}");
    let before_disk = snapshot(db.path());
    let before_coins = enabled(&k).await;

    let all = cases::send_cases();
    let failures = run(&k, &all).await;
    assert_eq!(fake.broadcasts(), Vec::<String>::new(), "nothing broadcast");
    assert_eq!(enabled(&k).await, before_coins);
    assert_eq!(snapshot(db.path()), before_disk, "nothing written");
    report("withdraw and broadcast", all.len(), &failures);
}

/// EVM activation: bad checksums, decimals, URLs, and nodes answering garbage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evm_activation() {
    let not_json = garbage_http::Server::start(garbage_http::Answer::NotJson);
    let not_hex = garbage_http::Server::start(garbage_http::Answer::NotHex);
    let db = tempfile::tempdir().unwrap();
    let mut conf = base_conf(cases::evm_coins());
    conf["dbdir"] = json!(db.path());
    let k = Kdfd::start(conf);
    let before_disk = snapshot(db.path());

    let all = cases::evm_cases(&not_json.url(), &not_hex.url());
    let failures = run(&k, &all).await;
    assert_eq!(enabled(&k).await, json!([]), "nothing (half-)active");
    assert_eq!(snapshot(db.path()), before_disk, "nothing written");
    assert!(
        not_json.requests() > 0 && not_hex.requests() > 0,
        "the garbage nodes were asked"
    );
    report("EVM activation", all.len(), &failures);
}

/// Start-up refusals: exit 1, one error line, no wallet file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_refusals() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (name, extra) in cases::startup_cases() {
        total += 1;
        let db = tempfile::tempdir().unwrap();
        let mut conf = base_conf(cases::hd_coins());
        conf["dbdir"] = json!(db.path());
        if let (Some(o), Value::Object(e)) = (conf.as_object_mut(), extra) {
            o.extend(e);
        }
        let out = Kdfd::launch(Launch {
            conf: Some(conf),
            env: vec![("RUST_LOG", "off".into())],
            ..Launch::default()
        });
        let verdict = match out {
            Ok(_) => Err("started".to_string()),
            Err(e) => cases::one_line_exit_1(&e),
        };
        let wallets: Vec<String> = snapshot(db.path())
            .into_keys()
            .filter(|p| p.ends_with(".json"))
            .collect();
        if let Err(e) = verdict {
            failures.push(format!("[{name}] {e}"));
        }
        if !wallets.is_empty() {
            failures.push(format!("[{name}] wallet files written: {wallets:?}"));
        }
    }
    report("start-up refusals", total, &failures);
}
