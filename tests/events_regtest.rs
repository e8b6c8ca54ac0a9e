//! BALANCE and TX_HISTORY events against the real chain: a Litecoin regtest node and a real
//! ElectrumX 2.0 (tests/support/regtest.rs, one stack shared by both tests), kdfd with an Iguana
//! wallet (LTCR, legacy `electrum`) and with an HD wallet (LTCR-segwit, `task::enable_utxo`), both
//! with `tx_history: true`. The node pays the wallet (`sendtoaddress`); the SSE client must get
//! the new balance in KDF's list form (checked against ElectrumX) and the new history entry
//! (checked against the node's `getrawtransaction` and `gettransaction`); a block then brings the
//! entry's confirmation as another TX_HISTORY event (a kdfd extension: KDF's v2 history loop
//! updates its storage silently). Finally the client disconnects, misses a payment, and
//! reconnects with `Last-Event-ID`: it must get exactly what a client that stayed connected (the
//! witness, listening to the same streamers) got meanwhile, with the same sequence numbers. The
//! HD wallet then makes a new address and is paid on it: its own BALANCE event, one TX_HISTORY
//! event, and no stored entry sent again.
//!
//! The two tests run in parallel on one chain, so a block mined by one also confirms the other's
//! payment: every wait below looks for a matching event, and the replay is judged against the
//! witness rather than against a fixed list.

mod support;

use kdfd::crypto::hd::Chain;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::regtest::wallet::{fixture_conf, hd_address, node_tx, sats};
use support::regtest::{start_kdfd, wallet, Daemon, SharedStack, Stack};
use support::sse::Recorder;
use support::USERPASS;

static SHARED: SharedStack = SharedStack::new(2);
/// Held from a payment until its unconfirmed events were seen, and around every block: without
/// it the other test's block could confirm the payment before kdfd's history sync saw it in the
/// mempool, and the unconfirmed entry would (rightly) never be reported.
static MEMPOOL_WINDOW: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const IGUANA: &str = "kdfd events regtest: iguana wallet";
/// BIP39's "letter advice" test vector: the HD wallet of these tests only.
const HD_MNEMONIC: &str =
    "letter advice cage absurd amount doctor acoustic avoid letter advice cage above";
const WAIT: Duration = Duration::from_secs(30);

fn v2(method: &str, params: Value) -> Value {
    json!({"userpass": USERPASS, "mmrpc": "2.0", "method": method, "params": params})
}

fn amount(s: i64) -> String {
    kdfd::coins::format_amount(i128::from(s), 8)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking part")
}

/// The wallet under test in one kdfd.
struct Setup {
    k: Daemon,
    coin: &'static str,
    address: String,
    _db: tempfile::TempDir,
}

async fn launch(stack: &'static Stack, hd: bool) -> Setup {
    let db = tempfile::tempdir().unwrap();
    let mut extra = json!({"dbdir": db.path(),
        "event_streaming_configuration": {"access_control_allow_origin": "*"}});
    if hd {
        extra["enable_hd"] = json!(true);
    }
    let phrase = if hd { HD_MNEMONIC } else { IGUANA };
    let k = blocking(move || start_kdfd(phrase, extra)).await;
    let server = json!([{"url": stack.tcp()}]);
    if !hd {
        let (status, v) = k
            .post(
                &json!({"userpass": USERPASS, "method": "electrum", "coin": "LTCR",
                "servers": server, "tx_history": true}),
            )
            .await;
        let address = wallet(IGUANA).p2pkh;
        assert_eq!((status, &v["address"]), (200, &json!(address)), "{v}");
        return Setup {
            k,
            coin: "LTCR",
            address,
            _db: db,
        };
    }
    let coin = "LTCR-segwit";
    let (_, v) = k
        .post(&v2(
            "task::enable_utxo::init",
            json!({"ticker": coin, "activation_params": {
            "mode": {"rpc": "Electrum", "rpc_data": {"servers": server}}, "tx_history": true}}),
        ))
        .await;
    let id = v["result"]["task_id"].clone();
    assert!(id.is_u64(), "{v}");
    let until = Instant::now() + WAIT;
    let status = loop {
        let (_, s) = k
            .post(&v2(
                "task::enable_utxo::status",
                json!({"task_id": id, "forget_if_finished": false}),
            ))
            .await;
        if s["result"]["status"] != "InProgress" || Instant::now() > until {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["result"]["status"], "Ok", "{status}");
    let address = hd_address(&fixture_conf(coin), HD_MNEMONIC, Chain::External, 0);
    let listed = &status["result"]["details"]["wallet_balance"]["accounts"][0]["addresses"];
    assert_eq!(listed[0]["address"], json!(address), "{status}");
    Setup {
        k,
        coin,
        address,
        _db: db,
    }
}

/// The TX_HISTORY message the node's own view of `txid` calls for (the payer is the node's
/// wallet, so nothing is spent by us).
fn expected_entry(stack: &Stack, coin: &str, txid: &str, me: &str) -> Value {
    let tx = node_tx(stack, txid);
    let mut from: Vec<String> = Vec::new();
    for i in &tx.inputs {
        if !from.contains(&i.address) {
            from.push(i.address.clone());
        }
    }
    let mut to: Vec<String> = Vec::new();
    for o in &tx.outputs {
        if !to.contains(&o.address) {
            to.push(o.address.clone());
        }
    }
    let total_in: i64 = tx.inputs.iter().map(|i| i.sats).sum();
    let received = tx.paid_to(me);
    // The node wallet's view agrees: it sent exactly what we received, and paid the fee.
    let gt = stack.node("gettransaction", &[txid]);
    assert_eq!(-sats(&gt["amount"]), received, "gettransaction {gt}");
    assert_eq!(-sats(&gt["fee"]), tx.fee(), "gettransaction {gt}");
    json!({"tx_hex": tx.raw["hex"], "tx_hash": txid, "from": from, "to": to,
        "total_amount": amount(total_in), "spent_by_me": "0", "received_by_me": amount(received),
        "my_balance_change": amount(received),
        "fee_details": {"type": "Utxo", "coin": coin, "amount": amount(tx.fee())},
        "coin": coin, "internal_id": txid, "transaction_type": "StandardTransfer", "memo": null})
}

fn assert_entry(got: &Value, want: &Value) {
    for (key, v) in want.as_object().unwrap() {
        assert_eq!(&got[key], v, "field {key} of {got}");
    }
    // KDF's event carries TransactionDetails without `confirmations` (it depends on the tip).
    assert!(got.get("confirmations").is_none(), "{got}");
}

/// The node pays `me` (`fund.sh`: `sendtoaddress`, then waits until ElectrumX has it).
async fn pay(stack: &'static Stack, me: &str, coins: &'static str) -> String {
    let me = me.to_string();
    blocking(move || stack.chain().fund(&me, coins, 0)).await
}

/// One block, outside any payment's window.
async fn mine(stack: &'static Stack) {
    let _window = MEMPOOL_WINDOW.lock().await;
    blocking(move || stack.chain().mine(1, stack.miner())).await;
}

async fn scenario(hd: bool) {
    let _user = SHARED.user();
    let stack: &'static Stack = blocking(|| SHARED.get()).await;
    let s = launch(stack, hd).await;
    let (k, coin, me) = (&s.k, s.coin, s.address.as_str());
    let mut main = Recorder::open(k, 1, None, WAIT).await;
    let mut witness = Recorder::open(k, 2, None, WAIT).await;
    for id in [1, 2] {
        for kind in ["balance", "tx_history"] {
            let method = format!("stream::{kind}::enable");
            let (status, v) = k
                .post(&v2(&method, json!({"client_id": id, "coin": coin})))
                .await;
            assert_eq!(status, 200, "{method}: {v}");
        }
    }
    let balance_is = |want: i64| {
        let want = amount(want);
        move |m: &Value| m[0]["balance"]["spendable"] == want.as_str()
    };

    // 1. A payment: the new balance, then the new entry.
    let t0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let window = MEMPOOL_WINDOW.lock().await;
    let tx1 = pay(stack, me, "0.5").await;
    let (c, u) = stack.electrum_balance(me);
    assert_eq!(c + u, 50_000_000, "ElectrumX's view of {me}");
    let b1 = main
        .find(k, 0, &format!("BALANCE:{coin}"), balance_is(c + u))
        .await;
    assert_eq!(
        main.frames[b1].1["message"],
        json!([{"ticker": coin, "address": me,
                "balance": {"spendable": amount(c + u), "unspendable": "0"}}])
    );
    let ty = format!("TX_HISTORY:{coin}");
    let is_tx = |txid: &str, mined: bool| {
        let txid = txid.to_string();
        move |m: &Value| m["tx_hash"] == txid.as_str() && (m["block_height"] != 0) == mined
    };
    let i = main.find(k, 0, &ty, is_tx(&tx1, false)).await;
    let entry = main.frames[i].1["message"].clone();
    let want = expected_entry(stack, coin, &tx1, me);
    assert_entry(&entry, &want);
    assert_eq!(entry["block_height"], 0, "{entry}");
    let seen = entry["timestamp"].as_u64().unwrap();
    assert!(
        t0 <= seen && seen <= t0 + 60,
        "first-seen time {seen}, t0 {t0}"
    );

    drop(window);

    // 2. A block: the same entry again with its height and the block's time.
    mine(stack).await;
    let i = main.find(k, i, &ty, is_tx(&tx1, true)).await;
    let mined = main.frames[i].1["message"].clone();
    assert_entry(&mined, &want);
    let info = stack.node("getrawtransaction", &[&tx1, "true"]);
    let block = stack.node("getblock", &[info["blockhash"].as_str().unwrap()]);
    assert_eq!(mined["block_height"], block["height"], "{mined}");
    assert_eq!(mined["timestamp"], block["time"], "{mined}");
    // The status change of the block also re-reads the balance: unchanged, now confirmed. (The
    // other test's block may have been the one that confirmed it, so search from the first.)
    main.find(k, b1 + 1, &format!("BALANCE:{coin}"), balance_is(c + u))
        .await;

    // 3. Disconnected: the witness (same streamers) sees a payment; the reconnect with the last
    // id must replay exactly what the witness got after it.
    witness.catch_up(k, main.last()).await;
    let n = main.frames.len();
    assert_eq!(
        witness.frames[..n],
        main.frames[..],
        "both clients saw the same"
    );
    let last = main.last();
    drop(main);
    let window = MEMPOOL_WINDOW.lock().await;
    let tx2 = pay(stack, me, "0.25").await;
    let (c, u) = stack.electrum_balance(me);
    assert_eq!(c + u, 75_000_000, "ElectrumX's view of {me}");
    witness.find(k, n, &ty, is_tx(&tx2, false)).await;
    witness
        .find(k, n, &format!("BALANCE:{coin}"), balance_is(c + u))
        .await;
    drop(window);
    let mut main = Recorder::open(k, 1, Some(last), WAIT).await;
    let upto = witness.last();
    main.catch_up(k, upto).await;
    let replay: Vec<_> = main
        .frames
        .iter()
        .filter(|f| f.0 <= upto)
        .cloned()
        .collect();
    let missed: Vec<_> = witness
        .frames
        .iter()
        .filter(|f| f.0 > last)
        .cloned()
        .collect();
    assert_eq!(replay, missed, "the replay is exactly what was missed");
    let seqs: Vec<u64> = main.frames.iter().map(|f| f.0).collect();
    let want_seqs: Vec<u64> = (last + 1..=main.last()).collect();
    assert_eq!(seqs, want_seqs, "no duplicates, no gaps");
    let once = |pred: &dyn Fn(&Value) -> bool, t: &str| {
        replay
            .iter()
            .filter(|f| f.1["_type"] == t && pred(&f.1["message"]))
            .count()
    };
    assert_eq!(once(&is_tx(&tx2, false), &ty), 1, "{replay:?}");
    let new_balance = format!("BALANCE:{coin}");
    assert!(once(&balance_is(c + u), &new_balance) >= 1, "{replay:?}");
    let i = replay
        .iter()
        .position(|f| f.1["_type"] == ty.as_str() && is_tx(&tx2, false)(&f.1["message"]))
        .unwrap();
    assert_entry(
        &replay[i].1["message"],
        &expected_entry(stack, coin, &tx2, me),
    );

    // 4. Live again after the replay: the next block's events continue the same sequence.
    mine(stack).await;
    let i = main.find(k, 0, &ty, is_tx(&tx2, true)).await;
    witness.catch_up(k, main.frames[i].0).await;
    let live: Vec<_> = witness
        .frames
        .iter()
        .filter(|f| f.0 > last && f.0 <= main.frames[i].0)
        .cloned()
        .collect();
    assert_eq!(main.frames[..=i], live[..], "live frames after the replay");
    if hd {
        new_address_is_streamed_too(k, stack, coin, main).await;
    }
}

/// HD: an address made after the streams were enabled has its own BALANCE events, its payment
/// is one TX_HISTORY event, and the new address (a new script set, so every stored entry is
/// derived again) sends no stored entry again.
async fn new_address_is_streamed_too(
    k: &Daemon,
    stack: &'static Stack,
    coin: &str,
    mut main: Recorder,
) {
    let n = main.frames.len();
    let (status, na) = k
        .post(&v2(
            "get_new_address",
            json!({"coin": coin, "account_id": 0, "chain": "External", "gap_limit": 20}),
        ))
        .await;
    assert_eq!(status, 200, "{na}");
    let new = hd_address(&fixture_conf(coin), HD_MNEMONIC, Chain::External, 1);
    assert_eq!(na["result"]["new_address"]["address"], new.as_str(), "{na}");
    let window = MEMPOOL_WINDOW.lock().await;
    let tx3 = pay(stack, &new, "0.1").await;
    let on_new = new.clone();
    let b = main
        .find(k, n, &format!("BALANCE:{coin}"), move |m| {
            m[0]["address"] == on_new.as_str()
        })
        .await;
    assert_eq!(
        main.frames[b].1["message"],
        json!([{"ticker": coin, "address": new,
                "balance": {"spendable": "0.1", "unspendable": "0"}}])
    );
    let ty = format!("TX_HISTORY:{coin}");
    let id = tx3.clone();
    let h = main
        .find(k, n, &ty, move |m| m["tx_hash"] == id.as_str())
        .await;
    drop(window);
    assert_entry(
        &main.frames[h].1["message"],
        &expected_entry(stack, coin, &tx3, &new),
    );
    // The sync that found tx3 derived the stored entries again (first, oldest first): none of
    // them is news.
    let resent: Vec<_> = main.frames[n..=h]
        .iter()
        .filter(|f| f.1["_type"] == ty.as_str() && f.1["message"]["tx_hash"] != tx3.as_str())
        .collect();
    assert!(resent.is_empty(), "stored entries sent again: {resent:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iguana_balance_and_history_events_on_the_real_chain() {
    scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hd_balance_and_history_events_on_the_real_chain() {
    scenario(true).await;
}
