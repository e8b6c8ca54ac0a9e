use super::*;
use serde_json::json;

fn text(f: &Frame) -> String {
    String::from_utf8(f.data.to_vec()).unwrap()
}

#[test]
fn frames_are_kdfs_bytes() {
    let f = frame("BALANCE:KMD", &json!([{"ticker": "KMD", "address": "R1"}]));
    assert_eq!(
        &f[..],
        br#"data: {"_type":"BALANCE:KMD","message":[{"ticker":"KMD","address":"R1"}]} 

"#
    );
}

#[tokio::test]
async fn enable_errors_publish_and_disable() {
    let hub = Hub::default();
    assert_eq!(
        hub.enable(0, "HEARTBEAT", || None),
        Err(EventError::UnknownClient)
    );
    let mut c = hub.connect(0, None);
    let mut starts = 0;
    hub.enable(0, "HEARTBEAT", || {
        starts += 1;
        None
    })
    .unwrap();
    assert_eq!(
        hub.enable(0, "HEARTBEAT", || None),
        Err(EventError::ClientAlreadyListening)
    );
    let _c1 = hub.connect(1, None);
    hub.enable(1, "HEARTBEAT", || {
        starts += 1;
        None
    })
    .unwrap();
    assert_eq!(starts, 1, "a second client joins the running streamer");
    hub.publish("HEARTBEAT", json!({}));
    hub.publish("OTHER", json!(1));
    hub.publish_error("HEARTBEAT", json!("x"));
    let f = c.rx.recv().await.unwrap();
    assert_eq!(
        (f.seq, text(&f)),
        (
            1,
            "data: {\"_type\":\"HEARTBEAT\",\"message\":{}} \n\n".into()
        )
    );
    let f = c.rx.recv().await.unwrap();
    assert_eq!(
        text(&f),
        "data: {\"_type\":\"ERROR:HEARTBEAT\",\"message\":\"x\"} \n\n"
    );
    assert!(c.rx.try_recv().is_err());
    hub.disable(0, "HEARTBEAT").unwrap();
    assert_eq!(
        hub.disable(0, "HEARTBEAT"),
        Err(EventError::ClientNotListening)
    );
    assert!(hub.is_running("HEARTBEAT"), "client 1 still listens");
    tokio::time::pause();
    drop(_c1);
    assert!(!hub.has_client(1), "a disconnected client is no client");
    // Its subscriptions are kept for a Last-Event-ID reconnect, then dropped.
    assert!(hub.is_running("HEARTBEAT"));
    tokio::time::sleep(GRACE + std::time::Duration::from_millis(10)).await;
    assert!(
        !hub.is_running("HEARTBEAT"),
        "disconnect unsubscribes after the grace"
    );
}

#[tokio::test]
async fn takeover_keeps_subscriptions_and_replays() {
    let hub = Hub::default();
    let mut old = hub.connect(5, None);
    hub.enable(5, "HEARTBEAT", || None).unwrap();
    for i in 0..3 {
        hub.publish("HEARTBEAT", json!(i));
    }
    let mut new = hub.connect(5, Some(1));
    // The old stream ends after what it had queued.
    let mut old_seen = 0;
    while old.rx.recv().await.is_some() {
        old_seen += 1;
    }
    assert_eq!(old_seen, 3);
    drop(old);
    assert!(
        hub.has_client(5),
        "the old connection's drop does not evict the new one"
    );
    let replayed: Vec<u64> = [new.rx.recv().await.unwrap(), new.rx.recv().await.unwrap()]
        .iter()
        .map(|f| f.seq)
        .collect();
    assert_eq!(replayed, vec![2, 3]);
    hub.publish("HEARTBEAT", json!(9));
    assert_eq!(new.rx.recv().await.unwrap().seq, 4);
    hub.close_all();
    assert!(new.rx.recv().await.is_none());
}

#[tokio::test]
async fn task_updates_reach_their_client_only() {
    let hub = Hub::default();
    let tasks = crate::tasks::Tasks::new(10);
    let fwd = streamers::forward_tasks(hub.clone(), tasks.subscribe());
    let mut c = hub.connect(3, None);
    let id = tasks.spawn("t", 3, json!("Start"), |_| async { Ok(json!({"x": 1})) });
    tasks.spawn("t", 4, json!("Start"), |_| async { Ok(json!(0)) });
    let first = text(&c.rx.recv().await.unwrap());
    assert_eq!(
        first,
        format!(
            "data: {{\"_type\":\"TASK:{id}\",\"message\":{{\"status\":\"InProgress\",\"details\":\"Start\"}}}} \n\n"
        )
    );
    let done = text(&c.rx.recv().await.unwrap());
    assert!(
        done.contains(r#""status":"Ok","details":{"x":1}"#),
        "{done}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(c.rx.try_recv().is_err(), "client 4's task is not sent to 3");
    fwd.abort();
}

#[tokio::test]
async fn slow_client_loses_events_not_memory() {
    let hub = Hub::default();
    let mut c = hub.connect(0, None);
    hub.enable(0, "HEARTBEAT", || None).unwrap();
    for i in 0..(QUEUE + 10) {
        hub.publish("HEARTBEAT", json!(i));
    }
    let mut frames = Vec::new();
    while let Ok(f) = c.rx.try_recv() {
        frames.push(f);
    }
    // QUEUE events, then the notice, then the stream ends (the sender is gone).
    assert_eq!(frames.len(), QUEUE + 1);
    let last = String::from_utf8(frames[QUEUE].data.to_vec()).unwrap();
    assert!(
        last.starts_with(r#"data: {"_type":"STREAM_LAGGED""#),
        "{last}"
    );
    assert!(c.rx.recv().await.is_none(), "a cut client's stream ends");
}

#[tokio::test]
async fn last_event_id_reconnect_misses_nothing() {
    let hub = Hub::default();
    let c = hub.connect(3, None);
    hub.enable(3, "HEARTBEAT", || None).unwrap();
    hub.publish("HEARTBEAT", json!(1));
    hub.publish("HEARTBEAT", json!(2));
    drop(c);
    // Disconnected: not a client for enables, but events are still kept for a reconnect.
    assert_eq!(hub.enable(3, "X", || None), Err(EventError::UnknownClient));
    hub.publish("HEARTBEAT", json!(3));
    let mut c = hub.connect(3, Some(1));
    let got: Vec<String> = std::iter::from_fn(|| c.rx.try_recv().ok())
        .map(|f| String::from_utf8(f.data.to_vec()).unwrap())
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].contains("\"message\":2") && got[1].contains("\"message\":3"));
    // Still subscribed after the reconnect.
    hub.publish("HEARTBEAT", json!(4));
    assert!(c.rx.try_recv().is_ok());
    // A gap larger than the replay ring is announced.
    drop(c);
    for i in 0..(REPLAY + 5) {
        hub.publish("HEARTBEAT", json!(i));
    }
    let mut c = hub.connect(3, Some(4));
    let first = String::from_utf8(c.rx.try_recv().unwrap().data.to_vec()).unwrap();
    assert!(first.contains("STREAM_LAGGED"), "{first}");
    // Without a Last-Event-ID a reconnect starts afresh, as in KDF.
    drop(c);
    let _c = hub.connect(3, None);
    hub.enable(3, "HEARTBEAT", || None).unwrap();
}

#[tokio::test]
async fn reconnects_leave_no_grace_timers_behind() {
    // Every disconnect starts a GRACE timer; a reconnect of the id cancels it, so a client that
    // reconnects often costs no sleeping task per disconnect (the SSE soak's flat RSS).
    let hub = Hub::default();
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let base = alive();
    for i in 0..100u64 {
        drop(hub.connect(1, None));
        drop(hub.connect(2, Some(i)));
    }
    // Aborted timers are reaped when the runtime next runs them.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        alive() <= base + 2,
        "{} tasks alive, {base} before",
        alive()
    );
    // The last disconnect of each id still has its timer: after GRACE both ids are gone.
    tokio::time::pause();
    tokio::time::sleep(GRACE + std::time::Duration::from_millis(10)).await;
    assert!(hub.lock().clients.is_empty());
    assert_eq!(alive(), base);
}

#[tokio::test]
async fn detached_clients_are_capped_oldest_first() {
    let hub = Hub::default();
    let n = MAX_DETACHED as u64 + 5;
    for id in 1..=n {
        drop(hub.connect(id, None));
    }
    let inner = hub.lock();
    assert_eq!(
        inner.clients.len(),
        MAX_DETACHED,
        "kept for their grace, up to the cap"
    );
    assert!(
        (1..=5).all(|id| !inner.clients.contains_key(&id)),
        "the oldest went first"
    );
    assert!((6..=n).all(|id| inner.clients.contains_key(&id)));
    let timers = inner
        .clients
        .values()
        .filter(|c| c.expiry.is_some())
        .count();
    assert_eq!(timers, MAX_DETACHED);
}
