//! The RPC front: HTTP server, request bodies, envelopes, batches and the method tables. Only this
//! module knows HTTP and KDF's wire shapes.
//!
//! - `server`: accept loop, connection limit, graceful shutdown.
//! - `door`: the admission every route shares: `Host` (DNS rebinding) and `Origin` checks.
//! - `http`: one HTTP request → body checks → single item or batch.
//! - `batch`: concurrent items, answers in request order, dependency-safe, per-method caps.
//! - `atomic`: `{"batch", "atomicBatch"}` envelopes: all-or-nothing item sets with rollback.
//! - `dispatch`: the envelope step: one item → its dialect's processor (legacy, mmrpc 2.0 here).
//! - `jsonrpc`: the JSON-RPC 2.0 dialect's processor.
//! - `call`: below every processor: admit (local-only, userpass), then the handler.
//! - `answer`: `Answer`, `Dialect` and the `Head` read of an item; no I/O.
//! - `auth`: `Caller` and the userpass check.
//! - `error`: every error and its legacy and mmrpc 2.0 shapes.
//! - `methods`: the dispatch tables and the handlers.
//! - `sse`: the `/event-stream` endpoint (KDF's SSE).
//! - `ws`: the `/ws` WebSocket endpoint: RPC bodies as text messages, and pushed events.

mod answer;
mod atomic;
mod auth;
mod batch;
mod call;
mod dispatch;
mod door;
pub mod error;
mod http;
mod jsonrpc;
mod kdf_errors;
mod methods;
mod server;
mod sse;
mod ws;

pub use server::run;
