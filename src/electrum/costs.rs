//! ElectrumX 2.0's charge per request (`bump_cost` calls in electrumx `server/session.py`), as
//! `budget::Meter` needs them: what a request costs before its answer, and what the answer adds.
//! Where a charge depends on data the request does not show (history length, unspent count),
//! the last history length seen for that scripthash stands in; unknown methods cost 1.

use serde_json::Value;

/// Units per byte sent or received (ElectrumX's `BANDWIDTH_UNIT_COST`, default 5000).
const PER_BYTE: f64 = 1.0 / 5000.0;
/// `error_base_cost` of aiorpcx: any error answer.
const ERROR: f64 = 100.0;
/// Bytes of one history entry in an answer (`{"tx_hash": "<64>", "height": N}`, ~90).
const HISTORY_ENTRY_BYTES: usize = 90;
/// Bytes of one unspent entry in an answer (~110).
const UNSPENT_ENTRY_BYTES: usize = 110;
/// Characters of one history entry in a status string (`<64 hex>:<height>:`).
const STATUS_ENTRY_CHARS: usize = 72;
/// ElectrumX serves at most this many headers per `blockchain.block.headers`.
const MAX_HEADERS: u64 = 2016;

/// Methods whose charge or answer needs more than a constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    History,
    Mempool,
    Unspent,
    Subscribe,
    Unsubscribe,
    Other,
}

/// What writing one request costs.
pub(super) struct Estimate {
    pub method: Method,
    pub scripthash: Option<String>,
    /// The server's charge for the request.
    pub charge: f64,
    /// The expected answer's bandwidth, charged now, taken back when the answer arrives
    /// (whose bytes are then charged as they are).
    pub allowance: f64,
    /// History entries or unspents the answer is expected to hold.
    pub expected_items: usize,
}

/// What an answer adds beyond its bytes.
pub(super) struct Settled {
    pub extra: f64,
    /// History length seen, to remember for the scripthash.
    pub items: Option<usize>,
}

pub(super) fn bytes(n: usize) -> f64 {
    n as f64 * PER_BYTE
}

fn param_u64(params: &Value, i: usize) -> u64 {
    params.get(i).and_then(Value::as_u64).unwrap_or(0)
}

/// The charge of `item` (a JSON-RPC request object). `size` is the known history length of a
/// scripthash.
pub(super) fn estimate(item: &Value, size: impl Fn(&str) -> Option<usize>) -> Estimate {
    let method = item.get("method").and_then(Value::as_str).unwrap_or("");
    let params = item.get("params").unwrap_or(&Value::Null);
    let scripthash = method
        .starts_with("blockchain.scripthash.")
        .then(|| params.get(0).and_then(Value::as_str).map(str::to_string))
        .flatten();
    let n = scripthash.as_deref().and_then(&size).unwrap_or(0);
    let nf = n as f64;
    let (kind, charge, answer_bytes) = match method {
        "server.version" => (Method::Other, 0.5, 60),
        "server.ping" => (Method::Other, 0.1, 40),
        "server.features" => (Method::Other, 0.2, 400),
        "server.banner" => (Method::Other, 0.5, 200),
        "server.donation_address" => (Method::Other, 0.1, 60),
        "server.peers.subscribe" => (Method::Other, 1.0, 200),
        "blockchain.headers.subscribe" => (Method::Other, 0.25, 230),
        "blockchain.block.header" => {
            let cp = param_u64(params, 1) > 0;
            (Method::Other, if cp { 1.25 } else { 0.25 }, 200)
        }
        "blockchain.block.headers" => {
            let count = param_u64(params, 1).min(MAX_HEADERS);
            let cp = if param_u64(params, 2) > 0 { 1.0 } else { 0.0 };
            (
                Method::Other,
                count as f64 / 50.0 + cp,
                60 + 160 * count as usize,
            )
        }
        // 0.1, plus 2 when the server's fee cache misses (assumed).
        "blockchain.estimatefee" => (Method::Other, 2.1, 50),
        "blockchain.relayfee" => (Method::Other, 1.0, 50),
        // 1 + unspents / 50; there are no more unspents than history entries.
        "blockchain.scripthash.get_balance" => (Method::Other, 1.0 + nf / 50.0, 70),
        // History lookup 0.1 (+0.1 + n/1000 when not cached) plus the mempool part 0.25.
        "blockchain.scripthash.get_history" => (
            Method::History,
            0.45 + nf * 0.001,
            60 + HISTORY_ENTRY_BYTES * n,
        ),
        "blockchain.scripthash.get_mempool" => (Method::Mempool, 0.25, 60),
        "blockchain.scripthash.listunspent" => (
            Method::Unspent,
            1.0 + nf / 50.0,
            60 + UNSPENT_ENTRY_BYTES * n,
        ),
        // The history lookup, plus 0.1 and hashing the status string.
        "blockchain.scripthash.subscribe" => (
            Method::Subscribe,
            0.3 + nf * (0.001 + STATUS_ENTRY_CHARS as f64 * 0.00002),
            100,
        ),
        "blockchain.scripthash.unsubscribe" => (Method::Unsubscribe, 0.1, 40),
        "blockchain.transaction.get" => (Method::Other, 1.0, 600),
        "blockchain.transaction.broadcast" => {
            let hex = params.get(0).and_then(Value::as_str).map_or(0, str::len);
            (Method::Other, 0.25 + hex as f64 / 5000.0, 100)
        }
        _ => (Method::Other, 1.0, 100),
    };
    let expected_items = match kind {
        Method::History | Method::Unspent => n,
        _ => 0,
    };
    Estimate {
        method: kind,
        scripthash,
        charge,
        allowance: bytes(answer_bytes),
        expected_items,
    }
}

/// What an answer adds: 100 for an error, the per-entry part of a history or unspent list the
/// estimate did not expect.
pub(super) fn settle(method: Method, expected: usize, error: bool, result: &Value) -> Settled {
    if error {
        return Settled {
            extra: ERROR,
            items: None,
        };
    }
    let list = result.as_array();
    let n = list.map_or(0, Vec::len);
    let unconfirmed = || {
        list.map_or(0, |l| {
            l.iter()
                .filter(|e| e.get("height").and_then(Value::as_i64).unwrap_or(0) <= 0)
                .count()
        })
    };
    let more = n.saturating_sub(expected) as f64;
    match method {
        Method::History => Settled {
            extra: more * 0.001 + unconfirmed() as f64 / 50.0,
            items: Some(n),
        },
        Method::Mempool => Settled {
            extra: n as f64 / 50.0,
            items: None,
        },
        Method::Unspent => Settled {
            extra: more / 50.0,
            items: None,
        },
        _ => Settled {
            extra: 0.0,
            items: None,
        },
    }
}

/// A status notification means the server computed the scripthash's status: a history lookup.
pub(super) fn notification(method: &str, size: Option<usize>) -> f64 {
    match method {
        "blockchain.scripthash.subscribe" => {
            let n = size.unwrap_or(0) as f64;
            0.3 + n * (0.001 + STATUS_ENTRY_CHARS as f64 * 0.00002)
        }
        _ => 0.0,
    }
}
