//! The cost meter against ElectrumX's arithmetic, on tokio's paused clock.

use super::*;
use serde_json::json;

fn req(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

fn tx_get(id: u64) -> Value {
    req(
        id,
        "blockchain.transaction.get",
        json!(["00".repeat(32), false]),
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[tokio::test(start_paused = true)]
async fn cost_accrues_and_decays_as_electrumx_counts_it() {
    let t0 = Instant::now();
    let mut m = Meter::new(Budget::default(), t0);
    assert!(close(m.level(t0), 5.0), "a session starts at 5");
    // 100 raw transactions: 1 each, the request bytes, and the expected answers' bytes.
    let item = tx_get(1);
    let bytes = item.to_string().len() + 1;
    for id in 0..100 {
        m.sent(t0, &tx_get(id), bytes);
    }
    let want = 5.0 + 100.0 * (1.0 + (bytes + 600) as f64 / 5000.0);
    assert!(close(m.level(t0), want), "{} vs {want}", m.level(t0));
    // Answers: their real bytes replace the allowance; a failed one costs 100.
    m.received(t0, 100 * 600);
    for id in 0..99 {
        m.answered(t0, &json!({"id": id, "result": "00"}));
    }
    m.answered(
        t0,
        &json!({"id": 99, "error": {"code": 1, "message": "no"}}),
    );
    assert!(close(m.level(t0), want + 100.0));
    // 1 unit per second at the default, down to 0 and no further.
    tokio::time::advance(Duration::from_secs(50)).await;
    assert!(close(m.level(Instant::now()), want + 50.0));
    tokio::time::advance(Duration::from_secs(1000)).await;
    assert_eq!(m.level(Instant::now()), 0.0);
}

#[tokio::test(start_paused = true)]
async fn history_answers_teach_later_costs() {
    let t0 = Instant::now();
    let mut m = Meter::new(Budget::default(), t0);
    let sh = "ab".repeat(32);
    let hist = req(1, "blockchain.scripthash.get_history", json!([sh]));
    let before = m.cost_of(&hist, 100);
    m.sent(t0, &hist, 100);
    let entries: Vec<Value> = (0..2000)
        .map(|i| json!({"tx_hash": "00".repeat(32), "height": i + 1}))
        .collect();
    let level = m.level(t0);
    m.answered(t0, &json!({"id": 1, "result": entries}));
    // 2000 entries at 0.001 each, beyond the 0.45 the request was charged.
    assert!(close(
        m.level(t0),
        level + 2.0 - before + 0.45 + 100.0 / 5000.0
    ));
    // The next reads of that scripthash are priced for 2000 entries / unspents.
    let balance = req(2, "blockchain.scripthash.get_balance", json!([sh]));
    assert!(m.cost_of(&balance, 0) > 41.0);
    let sub = req(3, "blockchain.scripthash.subscribe", json!([sh]));
    assert!(m.cost_of(&sub, 0) > 5.0);
}

#[tokio::test(start_paused = true)]
async fn a_burst_beyond_the_budget_is_paced() {
    let budget = Budget {
        limit: 150.0,
        reserve: 20.0,
        decay_per_sec: 1.0,
    };
    let t0 = Instant::now();
    let mut m = Meter::new(budget, t0);
    // Background work stops at 130: 5 on connect, then 125 one-unit requests.
    let mut sent = 0;
    while m.fits(t0, Class::Background, 1.0).is_ok() {
        m.add(t0, 1.0);
        sent += 1;
    }
    assert_eq!(sent, 125);
    // The next fits once one unit has decayed, and not before.
    let at = m.fits(t0, Class::Background, 1.0).unwrap_err();
    let wait = at - t0;
    assert!(wait >= Duration::from_secs(1) && wait <= Duration::from_millis(1002));
    tokio::time::advance(Duration::from_millis(500)).await;
    assert!(m.fits(Instant::now(), Class::Background, 1.0).is_err());
    tokio::time::sleep_until(at).await;
    assert!(m.fits(Instant::now(), Class::Background, 1.0).is_ok());
    // Over a minute, the pace is the decay rate: 60 more, give or take the one in flight.
    let start = Instant::now();
    let mut more = 0;
    while Instant::now() - start < Duration::from_secs(60) {
        match m.fits(Instant::now(), Class::Background, 1.0) {
            Ok(()) => {
                m.add(Instant::now(), 1.0);
                more += 1;
            }
            Err(at) => tokio::time::sleep_until(at).await,
        }
    }
    assert!((59..=61).contains(&more), "{more}");
    // A request bigger than the room still goes, once the estimate is back to zero.
    let t = Instant::now();
    let at = m.fits(t, Class::Background, 500.0).unwrap_err();
    assert!(at - t >= Duration::from_secs(129));
    tokio::time::sleep_until(at).await;
    assert!(m.fits(Instant::now(), Class::Background, 500.0).is_ok());
}

#[tokio::test(start_paused = true)]
async fn the_reserve_lets_interactive_requests_through() {
    let budget = Budget {
        limit: 150.0,
        reserve: 20.0,
        decay_per_sec: 1.0,
    };
    let t0 = Instant::now();
    let mut m = Meter::new(budget, t0);
    // 5 on connect + 125: background work is at its 130.
    m.add(t0, 125.0);
    assert!(m.fits(t0, Class::Background, 1.0).is_err());
    // The 20 units of the reserve are the user's: their reads go at once.
    for _ in 0..20 {
        assert!(m.fits(t0, Class::Interactive, 1.0).is_ok());
        m.add(t0, 1.0);
    }
    assert!(m.fits(t0, Class::Interactive, 1.0).is_err());
    // Off means never waiting.
    let mut off = Meter::new(Budget::off(), t0);
    off.add(t0, 1e6);
    assert!(off.fits(t0, Class::Background, 1.0).is_ok());
}

#[tokio::test(start_paused = true)]
async fn subscriptions_slow_the_decay() {
    let t0 = Instant::now();
    let mut m = Meter::new(Budget::default(), t0);
    for id in 0..2000 {
        let sub = req(
            id,
            "blockchain.scripthash.subscribe",
            json!([format!("{id:064}")]),
        );
        m.sent(t0, &sub, 0);
    }
    let level = m.level(t0);
    tokio::time::advance(Duration::from_secs(100)).await;
    // 10000 / (10000 + 5 × 2000) = 0.5 units per second.
    assert!(close(m.level(Instant::now()), level - 50.0));
}

#[tokio::test]
async fn the_class_follows_the_task() {
    assert_eq!(current(), Class::Interactive);
    assert_eq!(background(async { current() }).await, Class::Background);
    let spawned = background(async { tokio::spawn(async { current() }).await });
    assert_eq!(spawned.await.unwrap(), Class::Interactive);
}

#[tokio::test(start_paused = true)]
async fn a_reconnect_carries_the_cost_on() {
    let t0 = Instant::now();
    let mut m = Meter::new(Budget::default(), t0);
    m.add(t0, 600.0);
    let sub = req(
        1,
        "blockchain.scripthash.subscribe",
        json!(["ab".repeat(32)]),
    );
    m.sent(t0, &sub, 0);
    tokio::time::advance(Duration::from_secs(100)).await;
    let now = Instant::now();
    let before = m.level(now);
    // ElectrumX keeps the closed session's cost in its group: the new session is not free.
    m.reconnected(now);
    assert!(close(m.level(now), before + 5.0));
    assert_eq!(m.written_at(1), None, "the old session's requests are gone");
    // Paused until server.version names ElectrumX again.
    assert!(m.fits(now, Class::Background, 1e6).is_ok());
    m.set_budget(Budget::default());
    assert!(m.fits(now, Class::Background, 200.0).is_err());
}
