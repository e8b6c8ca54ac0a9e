//! EVM coins (ETH-type platforms and ERC-20 tokens): addresses, amounts, coins-file entries and a
//! JSON-RPC client that batches, splits, re-splits and fails over.
//!
//! - `address`: wallet key → EIP-55 address; KDF's strict parse of contract and user addresses.
//! - `amount`: U256 base units → KDF's minimal decimal string.
//! - `conf`: `protocol_data` of ETH / ERC20 entries.
//! - `client`: `EvmClient`, the public face: node order, failover, back-off, typed answers.
//! - `abi`: ERC-20 calls and hex decoding of results.
//! - `batch`: one worker per node that coalesces concurrent calls into JSON-RPC arrays.
//! - `http`: one keep-alive HTTP/1 connection to a node, with time and size bounds.

mod abi;
pub mod address;
pub mod amount;
mod batch;
pub mod client;
pub mod conf;
mod http;

pub use client::{ClientOptions, EvmClient, Query};
pub use conf::{ConfError, EvmConf};

/// What an EVM node call can fail with. `Clone` because one failed HTTP request answers every
/// call it carried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvmError {
    /// The coin has no node URL.
    #[error("at least one node URL is required")]
    NoNodes,
    /// A node URL that cannot be used.
    #[error("bad node URL '{url}': {reason}")]
    BadUrl {
        /// As given.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connect, TLS or HTTP protocol failure.
    #[error("{url}: transport error: {reason}")]
    Transport {
        /// The node.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The node took longer than the per-request timeout.
    #[error("{url}: no answer within {ms} ms")]
    Timeout {
        /// The node.
        url: String,
        /// The timeout.
        ms: u64,
    },
    /// A non-2xx HTTP status.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The node.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The answer was larger than allowed.
    #[error("{url}: response larger than {limit} bytes")]
    ResponseTooLarge {
        /// The node.
        url: String,
        /// The bound.
        limit: usize,
    },
    /// The answer is not JSON, not JSON-RPC, or its result is not the expected hex.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
    /// The node answered the call with a JSON-RPC error (final: another node would say the same).
    #[error("RPC error {code}: {message}")]
    Rpc {
        /// JSON-RPC error code.
        code: i64,
        /// Its message.
        message: String,
        /// Its `data`, as JSON text, if any.
        data: Option<String>,
    },
    /// The node serves another chain.
    #[error("chain id mismatch: expected {expected}, node reports {got}")]
    ChainIdMismatch {
        /// From the coin's config.
        expected: u64,
        /// From `eth_chainId`.
        got: u64,
    },
    /// Every node was tried; one line per node.
    #[error("all nodes failed: {}", .0.join("; "))]
    AllNodesFailed(Vec<String>),
    /// The client was dropped while a call was queued.
    #[error("client closed")]
    Closed,
}

impl EvmError {
    /// Whether the node (not the call) is at fault, so the next node should be tried.
    pub fn is_node_fault(&self) -> bool {
        matches!(
            self,
            EvmError::Transport { .. }
                | EvmError::Timeout { .. }
                | EvmError::HttpStatus { .. }
                | EvmError::ResponseTooLarge { .. }
                | EvmError::InvalidResponse(_)
                | EvmError::Closed
        )
    }
}
