//! kdfd load generator: C concurrent keep-alive clients send B-item batches for T seconds and
//! the run is judged on throughput, batch latency, failed and lost items, and kdfd's memory.
//!
//! ```sh
//! cargo build --release                      # the load generator runs target/release/kdfd
//! cargo run --release --example loadgen -- --clients 50 --batch 100 --seconds 60
//! cargo run --release --example loadgen -- --method version --clients 64 --batch 1 --seconds 5
//! cargo run --release --example loadgen -- --addr 127.0.0.1:7783 --coins 2 --tickers RICK,MORTY
//! ```
//!
//! The engine is `kdfd_testkit::load` (testkit/src/load/), shared with tests/load.rs and the
//! bench. The exit code is 0 only when nothing failed and nothing was lost. The last line of the
//! output is machine-readable: `LOADGEN key=value ...`.

use clap::Parser;
use kdfd_testkit::load::{run, Opts};

fn main() -> std::process::ExitCode {
    let opts = Opts::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(opts)) {
        Ok(report) => {
            println!("{report}");
            println!("{}", report.machine_line());
            if report.passed() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadgen: set-up failed: {e:#}");
            println!("LOADGEN error=setup pass=0");
            std::process::ExitCode::from(2)
        }
    }
}
