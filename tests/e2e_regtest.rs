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
//! the last of the tests counted in `SHARED_STACK` ends (tests/support/regtest.rs drives the stacks).
//!
//! A stack that cannot start fails the tests that need it with start.sh's stderr; nothing skips.

mod support;

use bitcoin::hashes::{sha256, Hash};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use support::regtest::*;

static SHARED_STACK: SharedStack = SharedStack::new(5);

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
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
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
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
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
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
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
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
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
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
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
