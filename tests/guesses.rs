//! The brute-force guard counts guesses, not requests (src/rpc/auth.rs, src/guard.rs): each
//! distinct userpass of a batch is one attempt, loopback is locked out past its own threshold,
//! and a locked-out batch's slots do not tell which guess was right.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{base_conf, Kdfd, USERPASS};

fn conf(extra: Value) -> Value {
    let mut c = base_conf(json!([]));
    if let (Some(o), Value::Object(e)) = (c.as_object_mut(), extra) {
        o.extend(e);
    }
    c
}

fn item(userpass: &str) -> Value {
    json!({"userpass": userpass, "method": "get_enabled_coins"})
}

/// Counts the slots: (right answers, wrong-userpass answers, lock-out answers).
fn tally(slots: &[Value]) -> (usize, usize, usize) {
    let mut t = (0, 0, 0);
    for s in slots {
        match s["error"].as_str() {
            None if s["result"].is_array() => t.0 += 1,
            Some(e) if e.contains("Userpass is invalid!") => t.1 += 1,
            Some(e) if e.contains("locked out") => t.2 += 1,
            _ => panic!("unexpected slot {s}"),
        }
    }
    t
}

#[tokio::test]
async fn a_batch_of_guesses_is_many_attempts_and_hides_the_right_one() {
    let k = Kdfd::start(conf(
        json!({"auth_fail_threshold_loopback": 5, "auth_fail_delay_ms": 10}),
    ));
    // 40 distinct guesses, the right one among them (at 30).
    let mut batch: Vec<Value> = (0..40).map(|i| item(&format!("Guess!{i:03}x"))).collect();
    batch[30] = item(USERPASS);
    let (status, v) = k.post(&Value::Array(batch)).await;
    assert_eq!(status, 200);
    let slots = v.as_array().unwrap();
    let (right, wrong, locked) = tally(slots);
    eprintln!("MEASURE guesses: 40 distinct in one batch -> {wrong} counted as wrong, {locked} locked out, {right} right");
    assert_eq!(right, 0, "the right guess must not show: {}", slots[30]);
    assert!(slots[30]["error"].as_str().unwrap().contains("locked out"));
    assert!(wrong <= 5, "{wrong} wrong answers past a threshold of 5");
    assert_eq!(wrong + locked, 40);
    // The lock-out holds for the next request, right userpass or not.
    let (status, _) = k.post(&item(USERPASS)).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn a_repeated_wrong_userpass_is_still_one_attempt() {
    // A GUI with a stale password sends one value in many items: one attempt, not 50.
    let k = Kdfd::start(conf(
        json!({"auth_fail_threshold_loopback": 3, "auth_fail_delay_ms": 10}),
    ));
    let batch = Value::Array(vec![item("Stale!Pass1"); 50]);
    for _ in 0..2 {
        let (status, v) = k.post(&batch).await;
        assert_eq!(status, 200);
        assert_eq!(tally(v.as_array().unwrap()), (0, 50, 0));
    }
    let (status, v) = k.post(&item(USERPASS)).await;
    assert_eq!((status, v), (200, json!({"result": []})));
    // The right userpass with a wrong one after it: the right one answers, the other is counted.
    let (_, v) = k.post(&json!([item(USERPASS), item("Other!Guess2")])).await;
    assert_eq!(tally(v.as_array().unwrap()), (1, 1, 0));
}

#[tokio::test]
async fn loopback_is_locked_out_past_its_threshold() {
    let k = Kdfd::start(conf(
        json!({"auth_fail_threshold_loopback": 3, "auth_fail_delay_ms": 0, "auth_lockout_sec": 2}),
    ));
    for i in 0..3 {
        let (status, _) = k.post(&item(&format!("Guess!{i}x"))).await;
        assert_eq!(status, 500);
    }
    let (status, v) = k.post(&item(USERPASS)).await;
    assert_eq!(status, 429, "{v}");
    let (status, _) = k.post(&json!({"method": "version"})).await;
    assert_eq!(status, 200, "public methods still answer");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = k.post(&item(USERPASS)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn guessing_rate_from_loopback() {
    // The measure (12 000 guesses in 3.2 s from loopback before): 1 000 distinct guesses
    // in one batch, the default threshold (100) and a 20 ms delay (the default is 250 ms).
    let k = Kdfd::start(conf(json!({"auth_fail_delay_ms": 20})));
    let batch: Vec<Value> = (0..1000).map(|i| item(&format!("Guess!{i:04}x"))).collect();
    let t = Instant::now();
    let (status, v) = k.post(&Value::Array(batch)).await;
    let took = t.elapsed();
    assert_eq!(status, 200);
    let (right, wrong, locked) = tally(v.as_array().unwrap());
    eprintln!(
        "MEASURE guesses: 1000 distinct from loopback in {took:?}: {wrong} checked, {locked} locked out"
    );
    assert_eq!(right, 0);
    assert!(wrong <= 100, "{wrong} checked past the loopback threshold");
    assert_eq!(wrong + locked, 1000);
    // Each checked guess waited its turn: about 100 x 20 ms at least.
    assert!(took >= Duration::from_millis(1900), "{took:?}");
}
