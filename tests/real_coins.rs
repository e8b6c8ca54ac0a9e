//! The public KomodoPlatform/coins file, pinned at commit 519e6a34 (782 entries) in
//! `tests/fixtures/kdf-coins-519e6a3.json`: kdfd starts on it in both file shapes, refuses per
//! coin with a reason, and shows for every UTXO entry it serves the address and balance the real
//! KDF shows (the reference binary, on the same seed and the same fake Electrum server, whose
//! balances are derived from each scripthash, so equal balances mean equal scripts).

mod support;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::kdf_ref::KdfRef;
use support::{electrum_fake::FakeElectrum, req, Kdfd, Launch, PASSPHRASE, USERPASS};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/kdf-coins-519e6a3.json"
);

fn fixture() -> Vec<Value> {
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    serde_json::from_str(&text).expect("fixture is a JSON array")
}

fn protocol(e: &Value) -> &str {
    e["protocol"]["type"].as_str().unwrap_or("")
}

/// Entries kdfd keeps but refuses at activation, and the words its reason must contain.
/// A coin added to the real file later either works like KDF or lands here on purpose.
fn refused_at_activation(e: &Value) -> Option<&'static str> {
    match protocol(e) {
        "UTXO" | "ETH" | "ERC20" => None,
        _ => Some("is not supported by kdfd (it serves UTXO, ETH and ERC20)"),
    }
}

/// UTXO entries kdfd activates but will not sign for, and the words of the reason.
fn refused_at_signing(e: &Value) -> Option<&'static str> {
    if e["coin"] == "GRS" {
        Some("Groestlcoin transactions (single SHA-256 txids")
    } else if e.get("fork_id").is_some() {
        Some("fork id (SIGHASH_FORKID")
    } else if e.get("isPoS").is_some() {
        Some("proof-of-stake transactions (isPoS")
    } else if e.get("isPoSV").is_some() {
        Some("PoSV transactions (isPoSV")
    } else {
        None
    }
}

/// The log without its ANSI colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn launch_on(args: Vec<String>, env: Vec<(&str, String)>) -> Kdfd {
    let mut conf = support::base_conf(Value::Null);
    conf.as_object_mut().unwrap().remove("coins");
    Kdfd::launch(Launch {
        conf: Some(conf),
        args,
        env,
        ..Launch::default()
    })
    .expect("kdfd starts on the real coins file")
}

#[tokio::test]
async fn the_real_file_loads_in_both_shapes_and_refuses_per_coin() {
    let entries = fixture();
    assert_eq!(entries.len(), 782);
    let k = launch_on(vec!["--coins".into(), FIXTURE.into()], vec![]);
    let (status, v) = k.post(&req("get_enabled_coins", json!({}))).await;
    assert_eq!((status, &v), (200, &json!({"result": []})));
    // One info line per reason, each naming its coins; the served count is in the config line.
    let log = plain(&k.stderr());
    let refused: Vec<&Value> = entries
        .iter()
        .filter(|e| refused_at_activation(e).is_some())
        .collect();
    let reason_lines = log
        .lines()
        .filter(|l| l.contains("coins listed but refused at activation"))
        .count();
    let reasons: BTreeSet<String> = refused
        .iter()
        .map(|e| match protocol(e) {
            "UTXO" => refused_at_activation(e).unwrap_or_default().to_string(),
            p => p.to_string(),
        })
        .collect();
    assert_eq!(reason_lines, reasons.len(), "one line per reason:\n{log}");
    assert!(log.contains(&format!("refused={}", refused.len())), "{log}");
    // A refused coin answers its reason, in the legacy and the v2 shape.
    let (_, v) = k
        .post(&req(
            "electrum",
            json!({"coin": "ATOM", "servers": [{"url": "127.0.0.1:1"}]}),
        ))
        .await;
    let text = v["error"].as_str().unwrap_or_default();
    assert!(
        text.contains("ATOM") && text.contains("protocol type TENDERMINT"),
        "{v}"
    );
    let (status, v) = k
        .post(
            &json!({"userpass": USERPASS, "mmrpc": "2.0", "method": "task::enable_utxo::init",
            "params": {"ticker": "ZOMBIE", "activation_params": {"mode": {"rpc": "Electrum",
            "rpc_data": {"servers": [{"url": "127.0.0.1:1"}]}}}}}),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error_type"], "CoinCreationError", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("protocol type ZHTLC"),
        "{v}"
    );
    drop(k);

    // The SDK's coins_config*.json shape: an object keyed by ticker, through MM_COINS_PATH.
    let dir = tempfile::tempdir().unwrap();
    let keyed: serde_json::Map<String, Value> = entries
        .iter()
        .map(|e| (e["coin"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let path = dir.path().join("coins_config_unfiltered.json");
    std::fs::write(&path, Value::Object(keyed).to_string()).unwrap();
    let k = launch_on(vec![], vec![("MM_COINS_PATH", path.display().to_string())]);
    let log = plain(&k.stderr());
    assert!(log.contains(&format!("refused={}", refused.len())), "{log}");
    assert!(
        log.contains(&format!("coins={}", 782 - refused.len())),
        "{log}"
    );
}

fn electrum_req(userpass: &str, coin: &str, url: &str) -> Value {
    json!({"userpass": userpass, "method": "electrum", "coin": coin, "mm2": 1,
        "servers": [{"url": url}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_utxo_entry_shows_what_the_real_kdf_shows() {
    let entries = fixture();
    let utxo: Vec<&Value> = entries.iter().filter(|e| protocol(e) == "UTXO").collect();
    assert_eq!(utxo.len(), 164);
    let fake = FakeElectrum::start_tcp();
    fake.derive_unplanted_balances();
    let url = fake.url();
    let kdf = KdfRef::start(FIXTURE.as_ref(), PASSPHRASE, USERPASS).await;
    let k = launch_on(vec!["--coins".into(), FIXTURE.into()], vec![]);

    let batch = |userpass: &str| -> Value {
        Value::Array(
            utxo.iter()
                .map(|e| electrum_req(userpass, e["coin"].as_str().unwrap(), &url))
                .collect(),
        )
    };
    let (_, theirs) = kdf.post(&batch(USERPASS)).await;
    let (status, ours) = k.post(&batch(USERPASS)).await;
    assert_eq!(status, 200);
    let (theirs, ours) = (theirs.as_array().unwrap(), ours.as_array().unwrap());
    assert_eq!((theirs.len(), ours.len()), (164, 164));

    let mut outcome: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for ((e, t), o) in utxo.iter().zip(theirs).zip(ours) {
        let ticker = e["coin"].as_str().unwrap();
        if let Some(why) = refused_at_activation(e) {
            let text = o["error"].as_str().unwrap_or_default();
            assert!(text.contains(ticker) && text.contains(why), "{ticker}: {o}");
            outcome
                .entry("refused at activation")
                .or_default()
                .push(ticker);
            continue;
        }
        assert_eq!(
            t["result"], "success",
            "the reference KDF activates {ticker}: {t}"
        );
        assert_eq!(o["result"], "success", "{ticker}: {o}");
        assert_eq!(o["address"], t["address"], "{ticker}: the address");
        assert_eq!(o["balance"], t["balance"], "{ticker}: the balance");
        assert_ne!(
            o["balance"], "0",
            "{ticker}: a derived balance is never zero here"
        );
        outcome
            .entry("same address and balance as KDF")
            .or_default()
            .push(ticker);
    }

    // Signing: the coins kdfd activates but cannot sign for answer why, not a transaction.
    for e in &utxo {
        let ticker = e["coin"].as_str().unwrap();
        let Some(why) = refused_at_signing(e).filter(|_| refused_at_activation(e).is_none()) else {
            continue;
        };
        let to = ours
            .iter()
            .zip(&utxo)
            .find(|(_, u)| u["coin"] == e["coin"])
            .map(|(o, _)| o["address"].clone())
            .unwrap();
        let (_, v) = k
            .post(&req(
                "withdraw",
                json!({"coin": ticker, "to": to, "amount": "1"}),
            ))
            .await;
        let text = v["error"].as_str().unwrap_or_default();
        assert!(
            text.contains(why),
            "{ticker}: withdraw answers the reason: {v}"
        );
        outcome
            .entry("activates, refuses to sign")
            .or_default()
            .push(ticker);
    }
    // CashAddr coins: convertaddress both ways and validateaddress answer as KDF's do.
    for (coin, network) in [
        ("BCH", "bitcoincash"),
        ("XEC", "ecash"),
        ("tBCH", "bchtest"),
    ] {
        let ours_addr = ours
            .iter()
            .zip(&utxo)
            .find(|(_, u)| u["coin"] == coin)
            .map(|(o, _)| o["address"].as_str().unwrap().to_string())
            .unwrap();
        let standard = req(
            "convertaddress",
            json!({"coin": coin, "from": ours_addr,
            "to_address_format": {"format": "standard"}}),
        );
        let (_, t) = kdf.post(&standard).await;
        let (_, o) = k.post(&standard).await;
        assert_eq!(o, t, "{coin} to standard");
        let legacy = o["result"]["address"].as_str().unwrap().to_string();
        let back = req(
            "convertaddress",
            json!({"coin": coin, "from": legacy,
            "to_address_format": {"format": "cashaddress", "network": network}}),
        );
        let (_, t) = kdf.post(&back).await;
        let (_, o) = k.post(&back).await;
        assert_eq!(o, t, "{coin} to cashaddress");
        assert_eq!(o["result"]["address"], ours_addr.as_str());
        for addr in [ours_addr.clone(), legacy, ours_addr.replace(':', ":x")] {
            let v = req("validateaddress", json!({"coin": coin, "address": addr}));
            let (_, t) = kdf.post(&v).await;
            let (_, o) = k.post(&v).await;
            assert_eq!(
                o["result"]["is_valid"], t["result"]["is_valid"],
                "{coin} {addr}: {o} {t}"
            );
        }
    }
    for (what, tickers) in &outcome {
        eprintln!("{what}: {} ({})", tickers.len(), tickers.join(", "));
    }
    let count = |what: &str| outcome.get(what).map_or(0, Vec::len);
    assert_eq!(count("refused at activation"), 0);
    assert_eq!(count("same address and balance as KDF"), 164);
    assert_eq!(count("activates, refuses to sign"), 27);
}

/// The Komodo Wallet polls `my_orders` and `my_recent_swaps` after sign-in: kdfd makes neither,
/// and answers exactly what KDF answers with none (v2 included); a bad `from_uuid` is an error
/// on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_swap_lists_are_empty_as_kdf_shows_them() {
    let kdf = KdfRef::start(FIXTURE.as_ref(), PASSPHRASE, USERPASS).await;
    let k = launch_on(vec!["--coins".into(), FIXTURE.into()], vec![]);
    let uuid = "5d02843e-d1b4-488d-aad0-114d82020453";
    let same = [
        req("my_orders", json!({})),
        req("my_recent_swaps", json!({})),
        req("my_recent_swaps", json!({"limit": 5, "page_number": 2})),
        req(
            "my_recent_swaps",
            json!({"limit": 0, "from_uuid": uuid, "my_coin": "KMD"}),
        ),
        json!({"userpass": USERPASS, "mmrpc": "2.0", "method": "my_recent_swaps", "params": {}, "id": 7}),
    ];
    for r in &same {
        let (_, theirs) = kdf.post(r).await;
        let (status, ours) = k.post(r).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(ours, theirs, "{r}");
    }
    for bad in [json!({"from_uuid": "abc"}), json!({"limit": "x"})] {
        let r = req("my_recent_swaps", bad);
        let (_, theirs) = kdf.post(&r).await;
        let (_, ours) = k.post(&r).await;
        assert!(
            theirs["error"].is_string() && ours["error"].is_string(),
            "{theirs} {ours}"
        );
    }
}
