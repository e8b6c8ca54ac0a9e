//! EVM test helpers: the one copy lives in the test kit (`kdfd_testkit::anvil`, also used by the
//! bench); this module re-exports it so the test files keep `mod evm_support;`.
#![allow(unused_imports)]

pub use kdfd_testkit::anvil::*;
