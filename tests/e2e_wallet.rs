//! Real-chain wallet suite: the real kdfd binary against a real Litecoin regtest node and a real
//! ElectrumX 2.0 (tests/support/regtest.rs drives the stack). HD gap-limit scans of addresses the
//! node funded, and withdrawals that the node itself then judges: amounts, fee, change, spends.
//!
//! Both scenarios share one stack; each uses its own mnemonic or passphrase, so neither sees the
//! other's coins, and every chain change goes through `Stack::chain()`.

mod support;

use kdfd::crypto::hd::Chain;
use serde_json::{json, Value};
use support::regtest::wallet::*;
use support::regtest::*;
use support::Kdfd;

static SHARED_STACK: SharedStack = SharedStack::new(2);

/// BIP39's first English test vector: a fixed, valid mnemonic for the HD scan.
const SCAN_MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                             abandon abandon abandon about";

const COINS: [&str; 2] = ["LTCR", "LTCR-segwit"];

/// The addresses the scan must find, with what the node sends them (coin units), per coin.
const FUNDED: [(Chain, u32, &str); 4] = [
    (Chain::External, 0, "0.1"),
    (Chain::External, 3, "0.3"),
    (Chain::External, 19, "1.9"),
    (Chain::Internal, 2, "0.02"),
];

/// Past the gap: with gap_limit 20 the scan after external 19 probes 20..=40 and stops.
const PAST_GAP: u32 = 41;
/// Inside the gap of a rescan (after 19) but past the known count after `get_new_address` (21).
const AFTER_RESTART: u32 = 25;

/// The accounts part of an HD `wallet_balance`: (chain, index, address, spendable sats) sorted.
fn listed(wallet_balance: &Value, ticker: &str) -> Vec<(String, u32, String, i64)> {
    assert_eq!(wallet_balance["wallet_type"], "HD", "{wallet_balance}");
    let accounts = wallet_balance["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 1, "one account: {wallet_balance}");
    listed_addresses(&accounts[0]["addresses"], ticker)
}

fn listed_addresses(addresses: &Value, ticker: &str) -> Vec<(String, u32, String, i64)> {
    let mut out: Vec<_> = addresses
        .as_array()
        .expect("addresses")
        .iter()
        .map(|a| {
            let path = a["derivation_path"].as_str().expect("derivation_path");
            let index: u32 = path.rsplit('/').next().unwrap().parse().unwrap();
            let bal = &a["balance"][ticker];
            assert_eq!(bal["unspendable"], "0", "{a}");
            (
                a["chain"].as_str().expect("chain").to_string(),
                index,
                a["address"].as_str().expect("address").to_string(),
                sats(&bal["spendable"]),
            )
        })
        .collect();
    out.sort();
    out
}

/// What kdfd must list for `ticker`: `external` and `internal` known addresses of the scan
/// mnemonic, with the funded balances.
fn expected(ticker: &str, external: u32, internal: u32) -> Vec<(String, u32, String, i64)> {
    let conf = fixture_conf(ticker);
    let mut out = Vec::new();
    for (chain, count, name) in [
        (Chain::External, external, "External"),
        (Chain::Internal, internal, "Internal"),
    ] {
        for i in 0..count {
            let funded = FUNDED
                .iter()
                .find(|(c, idx, _)| *c == chain && *idx == i)
                .map(|(_, _, amount)| sats(&json!(amount)))
                .unwrap_or(0);
            out.push((
                name.to_string(),
                i,
                hd_address(&conf, SCAN_MNEMONIC, chain, i),
                funded,
            ));
        }
    }
    out.sort();
    out
}

/// Scenario 1: HD scan on the real chain; then account balance, a new address, and a restart
/// on the same dbdir that keeps the accounts without rescanning.
#[test]
fn hd_scan_on_the_real_chain() {
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
    let funded_total: i64 = FUNDED.iter().map(|(_, _, a)| sats(&json!(a))).sum();
    {
        let chain = stack.chain();
        for ticker in COINS {
            let conf = fixture_conf(ticker);
            assert!(
                conf.derivation_path.is_some(),
                "{ticker} has a derivation_path"
            );
            for (c, i, amount) in FUNDED {
                chain.fund(&hd_address(&conf, SCAN_MNEMONIC, c, i), amount, 0);
            }
            let past = hd_address(&conf, SCAN_MNEMONIC, Chain::External, PAST_GAP);
            chain.fund(&past, "4.1", 0);
        }
        chain.mine(1, stack.miner());
    }
    for ticker in COINS {
        let conf = fixture_conf(ticker);
        for (c, i, amount) in FUNDED {
            stack.wait_indexed(
                &hd_address(&conf, SCAN_MNEMONIC, c, i),
                (sats(&json!(amount)), 0),
            );
        }
    }

    let dbdir = tempfile::tempdir().expect("dbdir");
    let extra = json!({"enable_hd": true, "dbdir": dbdir.path()});
    let k = start_kdfd(SCAN_MNEMONIC, extra.clone());
    for ticker in COINS {
        let conf = fixture_conf(ticker);
        let details = enable_utxo_task(&k, stack, ticker);
        let wb = &details["wallet_balance"];
        let acc = &wb["accounts"][0];
        assert_eq!(
            acc["derivation_path"],
            format!("{}/0'", conf.derivation_path.as_deref().unwrap()),
            "{ticker}"
        );
        assert_eq!(
            sats(&acc["total_balance"][ticker]["spendable"]),
            funded_total,
            "{ticker}: {acc}"
        );
        // External: last used 19 → 20 known; internal: last used 2 → 3 known; 41 unfound.
        let got = listed(wb, ticker);
        assert_eq!(got, expected(ticker, 20, 3), "{ticker} scan");
        let past = hd_address(&conf, SCAN_MNEMONIC, Chain::External, PAST_GAP);
        assert!(
            got.iter().all(|(_, _, a, _)| *a != past),
            "{ticker}: {past} is past the gap"
        );
        // The node agrees the one past the gap does hold coins (so not finding it is the gap).
        assert_eq!(stack.electrum_balance(&past), (410_000_000, 0));

        let ab = run_task(
            &k,
            "account_balance",
            json!({"coin": ticker, "account_index": 0}),
        );
        assert_eq!(ab["status"], "Ok", "{ab}");
        assert_eq!(
            listed_addresses(&ab["details"]["addresses"], ticker),
            expected(ticker, 20, 3),
            "{ticker} account_balance"
        );
        assert_eq!(
            sats(&ab["details"]["total_balance"][ticker]["spendable"]),
            funded_total
        );

        let na = v2_ok(
            &k,
            "get_new_address",
            json!({"coin": ticker, "account_id": 0, "chain": "External", "gap_limit": 20}),
        );
        let new = &na["new_address"];
        assert_eq!(
            new["derivation_path"],
            hd_path(&conf, Chain::External, 20),
            "{na}"
        );
        assert_eq!(
            new["address"],
            hd_address(&conf, SCAN_MNEMONIC, Chain::External, 20)
        );
        assert_eq!(sats(&new["balance"][ticker]["spendable"]), 0, "{na}");
    }
    drop(k);

    // A payment kdfd has not seen, inside a rescan's gap window: a restart that rescanned would
    // list external 0..=25; one that keeps the stored counts lists 0..=20 (21 known).
    {
        let chain = stack.chain();
        for ticker in COINS {
            let conf = fixture_conf(ticker);
            let a = hd_address(&conf, SCAN_MNEMONIC, Chain::External, AFTER_RESTART);
            chain.fund(&a, "2.5", 0);
        }
        chain.mine(1, stack.miner());
    }
    let k = start_kdfd(SCAN_MNEMONIC, extra);
    for ticker in COINS {
        let details = enable_utxo_task(&k, stack, ticker);
        assert_eq!(
            listed(&details["wallet_balance"], ticker),
            expected(ticker, 21, 3),
            "{ticker} after restart: the stored counts, no rescan"
        );
    }
}

/// BIP39's "legal winner" test vector: the HD wallet of the withdraw scenario.
const WITHDRAW_MNEMONIC: &str =
    "legal winner thank year wave sausage worth useful legal winner thank yellow";
const IGUANA: &str = "kdfd e2e wallet: iguana withdraw";

fn legacy_withdraw(k: &Kdfd, params: Value) -> Value {
    let (status, v) = post(k, &req("withdraw", params));
    assert_eq!(status, 200, "withdraw: {v}\n{}", tail(&k.stderr(), 30));
    v
}

/// A fresh node wallet address of `kind` ("legacy" or "bech32"). Under the chain lock: the node
/// wallet fails a key generation that races another one ("GenerateNewKey: AddKey failed", seen
/// when a concurrent `sendtoaddress` took a change key).
fn node_address(stack: &Stack, kind: &str) -> String {
    let _chain = stack.chain();
    let a = stack.node("getnewaddress", &["", kind]);
    a.as_str().expect("getnewaddress").to_string()
}

fn received_by(stack: &Stack, address: &str) -> i64 {
    sats(&stack.node("getreceivedbyaddress", &[address]))
}

/// Scenario 2 (issue 13.4): withdrawals from an Iguana and an HD wallet, P2PKH and P2WPKH, to the
/// node and between the wallets; `max`; re-broadcasts; `task::withdraw` once. The node judges.
///
/// Re-broadcasts, as observed: while the tx is in the mempool the node (Litecoin 0.21) accepts
/// it again and ElectrumX answers its txid, so kdfd answers the same `tx_hash`, as KDF does. Once
/// mined the node refuses it (-27 "Transaction already in block chain"); ElectrumX wraps that as
/// "the transaction was rejected by network rules.\n\nTransaction already in block chain\n[hex]",
/// and kdfd answers the same `tx_hash` then too: the node has the transaction, which is what the
/// user asked for (issue 13.3), not a failure to interpret.
#[test]
fn withdraw_checked_by_the_node() {
    let _user = SHARED_STACK.user();
    let stack = SHARED_STACK.get();
    let w = wallet(IGUANA);
    // (ticker, iguana address, HD address 0/0, the node address kind it pays, fee of 1-in 2-out)
    let plan: Vec<(&str, String, String, &str, i64)> = vec![
        (
            "LTCR",
            w.p2pkh.clone(),
            hd_address(&fixture_conf("LTCR"), WITHDRAW_MNEMONIC, Chain::External, 0),
            "legacy",
            // 10 + one 148-byte P2PKH input + two 34-byte P2PKH outputs, at 1000 sat/kB.
            226,
        ),
        (
            "LTCR-segwit",
            w.segwit.clone(),
            hd_address(
                &fixture_conf("LTCR-segwit"),
                WITHDRAW_MNEMONIC,
                Chain::External,
                0,
            ),
            "bech32",
            // ceil((113 * 4 + 110) / 4) vbytes: one P2WPKH input (72-byte signature), two
            // 31-byte P2WPKH outputs.
            141,
        ),
    ];
    {
        let chain = stack.chain();
        for (_, iguana, hd, _, _) in &plan {
            chain.fund(iguana, "1", 0);
            chain.fund(hd, "1", 0);
        }
        chain.mine(1, stack.miner());
    }
    for (_, iguana, hd, _, _) in &plan {
        stack.wait_indexed(iguana, (100_000_000, 0));
        stack.wait_indexed(hd, (100_000_000, 0));
    }
    let ki = start_kdfd(IGUANA, json!({}));
    let kh = start_kdfd(WITHDRAW_MNEMONIC, json!({"enable_hd": true}));
    for (ticker, iguana, _, _, _) in &plan {
        expect_exact(
            &ki,
            "electrum",
            post(&ki, &electrum(ticker, json!([{"url": stack.tcp()}]))),
            (200, activated(ticker, iguana, "1")),
        );
        enable_utxo_task(&kh, stack, ticker);
    }

    for (ticker, iguana, hd, kind, fee_1in2out) in &plan {
        let conf = fixture_conf(ticker);
        // Legacy withdraw, Iguana → node: 1 LTC in, 0.3 out, the rest back as change.
        let to_node = node_address(stack, kind);
        let d = legacy_withdraw(&ki, json!({"coin": ticker, "to": to_node, "amount": "0.3"}));
        let tx = check_sent(stack, &ki, &d, iguana, &to_node, Some(30_000_000));
        assert_eq!(
            tx.fee(),
            *fee_1in2out,
            "{ticker}: KDF's fee for 1 in, 2 out"
        );
        assert_eq!(received_by(stack, &to_node), 30_000_000);
        let change = tx.paid_to(iguana);
        assert_eq!(change, 100_000_000 - 30_000_000 - fee_1in2out);

        // Confirmed now: the node refuses it as "already in block chain"; kdfd answers the hash.
        let (status, v) = broadcast(&ki, ticker, d["tx_hex"].as_str().unwrap());
        assert_eq!(status, 200, "{ticker}: re-broadcast of a mined tx: {v}");
        assert_eq!(v["tx_hash"], d["tx_hash"], "{ticker}: the same hash");

        // v2 withdraw, HD 0/0 → the Iguana address (the `from` path given explicitly).
        let path = hd_path(&conf, Chain::External, 0);
        let d = v2_ok(
            &kh,
            "withdraw",
            json!({"coin": ticker, "to": iguana, "amount": "0.25",
                   "from": {"derivation_path": path}}),
        );
        let tx = check_sent(stack, &kh, &d, hd, iguana, Some(25_000_000));
        assert_eq!(tx.fee(), *fee_1in2out, "{ticker} HD: 1 in, 2 out");
        stack.wait_indexed(iguana, (change + 25_000_000, 0));

        // max: both Iguana outputs (the change and the HD payment) to the node, no change.
        let to_node = node_address(stack, kind);
        let d = legacy_withdraw(&ki, json!({"coin": ticker, "to": to_node, "max": true}));
        let tx = check_sent(stack, &ki, &d, iguana, &to_node, None);
        assert_eq!(tx.inputs.len(), 2, "{ticker} max spends both outputs");
        assert_eq!(tx.fee(), Reported::of(&d, ticker).fee);
        assert_eq!(received_by(stack, &to_node), change + 25_000_000 - tx.fee());
        stack.wait_indexed(iguana, (0, 0));
        expect_balance(&ki, "my_balance after max", ticker, iguana, "0");
        for i in &tx.raw["vin"].as_array().unwrap()[..] {
            let n = i["vout"].to_string();
            let spent = stack.node("gettxout", &[i["txid"].as_str().unwrap(), &n]);
            assert!(
                spent.is_null() || spent == "",
                "{ticker}: input spent: {spent}"
            );
        }
    }

    // task::withdraw once: HD, no `from` (the enabled address 0/0), to the node.
    let (ticker, _, hd, kind, _) = &plan[0];
    let to_node = node_address(stack, kind);
    let r = run_task(
        &kh,
        "withdraw",
        json!({"coin": ticker, "to": to_node, "amount": "0.1"}),
    );
    assert_eq!(r["status"], "Ok", "{r}");
    check_sent(stack, &kh, &r["details"], hd, &to_node, Some(10_000_000));
    assert_eq!(received_by(stack, &to_node), 10_000_000);
}
