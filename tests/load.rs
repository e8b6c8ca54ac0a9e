//! A short run of the load generator (`kdfd_testkit::load`, behind examples/loadgen) against the real binary: concurrent
//! clients sending batches, with zero failed or lost items and flat memory. The long run (50
//! clients x 100-item batches x 60 s) is documented in docs/reliability.md.

use kdfd_testkit::load as loadgen;

async fn run(opts: loadgen::Opts) -> loadgen::Report {
    let report = loadgen::run(opts).await.expect("load set-up");
    eprintln!("{}", report.machine_line());
    assert!(report.passed(), "{report}");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_load_holds_with_flat_memory() {
    let base = || loadgen::Opts {
        kdfd_bin: Some(env!("CARGO_BIN_EXE_kdfd").into()),
        ..loadgen::Opts::default()
    };
    // Cached balances, then every read upstream (fake servers with a little latency).
    let cached = run(loadgen::Opts {
        clients: 10,
        batch: 50,
        seconds: 3.0,
        ..base()
    })
    .await;
    let cold = run(loadgen::Opts {
        clients: 10,
        batch: 50,
        seconds: 3.0,
        latency_ms: 5,
        conf_extra: Some(serde_json::json!({"balance_cache": false})),
        ..base()
    })
    .await;
    for r in [&cached, &cold] {
        let (Some(before), Some(after)) = (r.rss_before_kb, r.rss_after_kb) else {
            panic!("no RSS readings: {r}");
        };
        assert!(
            after < before + 80 * 1024,
            "RSS grew from {before} kB to {after} kB"
        );
        assert!(r.load.sent >= 1000, "too little load to judge: {r}");
    }
}
