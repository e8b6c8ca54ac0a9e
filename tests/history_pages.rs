//! `history::pages` against a brute-force model: every start, limit and filter over a history
//! with unmined entries and height ties gives the page the plain sorted list gives. And the read
//! connection answers while the writer is busy, and sees every acknowledged write.

use kdfd::history::db::{self, Batch, Row};
use kdfd::history::pages::{self, Start};
use kdfd::store::Store;
use serde_json::{json, Value};
use std::time::Duration;

/// Entry `i`: height `i % 7` (0 = unmined, so several of each height), touching X when even
/// and Y when divisible by 3.
fn rows(n: usize) -> Vec<(String, u64, Vec<String>)> {
    (0..n)
        .map(|i| {
            let hash = format!("{:064x}", (i * 2_654_435_761) % 1_000_003);
            let mut addrs = Vec::new();
            if i % 2 == 0 {
                addrs.push("X".to_string());
            }
            if i % 3 == 0 {
                addrs.push("Y".to_string());
            }
            (hash, (i % 7) as u64, addrs)
        })
        .collect()
}

fn to_row((hash, height, addrs): &(String, u64, Vec<String>)) -> Row {
    Row {
        tx_hash: hash.clone(),
        height: *height,
        timestamp: 1,
        details: json!({"tx_hash": hash, "block_height": height, "to": addrs}),
        my_addresses: addrs.clone(),
        scripts_key: "k".into(),
    }
}

/// The order the module promises: unmined first by hash, then height down, ties by hash.
fn model(all: &[(String, u64, Vec<String>)], filter: Option<&[String]>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = all
        .iter()
        .filter(|(_, _, a)| filter.is_none_or(|f| a.iter().any(|x| f.contains(x))))
        .map(|(h, height, _)| (h.clone(), *height))
        .collect();
    v.sort_by(|a, b| {
        let key = |x: &(String, u64)| (x.1 != 0, std::cmp::Reverse(x.1));
        key(a).cmp(&key(b)).then_with(|| a.0.cmp(&b.0))
    });
    v
}

#[tokio::test]
async fn every_page_matches_the_sorted_list() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("h.sqlite")).unwrap();
    let all = rows(40);
    let batch = Batch {
        upsert: all.iter().map(to_row).collect(),
        ..Default::default()
    };
    store.call(move |c| db::apply(c, "T", batch)).await.unwrap();
    let filters: [Option<Vec<String>>; 3] = [
        None,
        Some(vec!["X".into()]),
        Some(vec!["X".into(), "Y".into()]),
    ];
    for filter in filters {
        let want = model(&all, filter.as_deref());
        let mut starts: Vec<Start> = (0..=want.len() + 1).map(Start::Skip).collect();
        starts.extend(want.iter().map(|(h, _)| Start::After(h.clone())));
        for start in starts {
            for limit in [0, 1, 3, 7, 100] {
                let (f, st) = (filter.clone(), start.clone());
                let got = store
                    .read(move |c| pages::slice(c, "T", f.as_deref(), &st, limit))
                    .await
                    .unwrap()
                    .unwrap();
                let skipped = match &start {
                    Start::Skip(n) => *n,
                    Start::After(id) => want.iter().position(|(h, _)| h == id).unwrap() + 1,
                };
                let expect: Vec<(String, u64)> =
                    want.iter().skip(skipped).take(limit).cloned().collect();
                let seen: Vec<(String, u64)> = got
                    .entries
                    .iter()
                    .map(|e| {
                        let d: Value = serde_json::from_str(&e.details).unwrap();
                        (d["tx_hash"].as_str().unwrap().to_string(), e.height)
                    })
                    .collect();
                let at = format!("filter {filter:?} start {start:?} limit {limit}");
                assert_eq!(got.total, want.len(), "{at}");
                assert_eq!(got.skipped, skipped, "{at}");
                assert_eq!(seen, expect, "{at}");
            }
        }
        let f = filter.clone();
        let missing = store
            .read(move |c| pages::slice(c, "T", f.as_deref(), &Start::After("ff".into()), 5))
            .await
            .unwrap();
        assert!(missing.is_none(), "an unknown FromId names no entry");
    }
    // Another coin's entries are not on the page.
    let other = store
        .read(|c| pages::slice(c, "U", None, &Start::Skip(0), 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((other.total, other.entries.len()), (0, 0));
}

#[tokio::test]
async fn reads_do_not_wait_for_the_writer_and_see_what_it_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("h.sqlite")).unwrap();
    let first = Batch {
        upsert: rows(3).iter().map(to_row).collect(),
        ..Default::default()
    };
    store.call(move |c| db::apply(c, "T", first)).await.unwrap();
    // The writer thread is held until the read has answered: a read queued behind the writer
    // would never answer (the timeout turns that into a failure, not a hang).
    let (release, held) = std::sync::mpsc::channel::<()>();
    let busy = store.submit(move |_| {
        let _ = held.recv();
        Ok(())
    });
    let page = tokio::time::timeout(
        Duration::from_secs(10),
        store.read(|c| pages::slice(c, "T", None, &Start::Skip(0), 10)),
    )
    .await
    .expect("the read waited for the writer")
    .unwrap()
    .unwrap();
    assert_eq!(page.total, 3);
    release.send(()).unwrap();
    busy.await.unwrap();
    let more = Batch {
        upsert: rows(5).iter().map(to_row).collect(),
        ..Default::default()
    };
    store.call(move |c| db::apply(c, "T", more)).await.unwrap();
    let page = store
        .read(|c| pages::slice(c, "T", None, &Start::Skip(0), 10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.total, 5, "a read after an acknowledged write sees it");
}
