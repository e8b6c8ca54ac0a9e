//! Test harness shim: everything lives in the `kdfd-testkit` crate (testkit/); this module adds
//! only the launcher entry points that know this package's binary (`CARGO_BIN_EXE_kdfd` exists
//! only inside kdfd's own tests), so the test files keep `mod support;` and `Kdfd::launch(..)`.
#![allow(dead_code, unused_imports)]

pub use kdfd_testkit::*;

pub mod bad_wallet;
pub mod hold_proxy;
pub mod kdf_ref;
pub mod node_rpc;
pub mod regtest;
pub mod sdk;
pub mod sdk_chain;
pub mod sdk_run;

use std::ops::{Deref, DerefMut};

/// The kdfd binary cargo built for these tests.
pub const KDFD_BIN: &str = env!("CARGO_BIN_EXE_kdfd");

/// A running kdfd (the testkit's [`kdfd_testkit::Kdfd`], started from [`KDFD_BIN`]).
pub struct Kdfd(pub kdfd_testkit::Kdfd);

impl Kdfd {
    /// Starts kdfd with `conf` and waits for its ready line.
    pub fn start(conf: serde_json::Value) -> Kdfd {
        Kdfd(kdfd_testkit::Kdfd::start_with(KDFD_BIN, conf))
    }

    /// Starts kdfd; `Err(stderr)` if it exits before it is ready.
    pub fn launch(l: Launch) -> Result<Kdfd, String> {
        kdfd_testkit::Kdfd::launch_with(KDFD_BIN, l).map(Kdfd)
    }
}

impl Deref for Kdfd {
    type Target = kdfd_testkit::Kdfd;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Kdfd {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
