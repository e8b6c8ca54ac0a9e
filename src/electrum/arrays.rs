//! What a connection knows about its server and JSON-RPC arrays: the most requests one array may
//! carry (servers cap them: Fulcrum counts 345 in flight per IP), the arrays still unanswered, and
//! whether the server refused an array — some servers answer an array with one error object and
//! no ids (Fulcrum before 1.6). Then the requests of that array are sent again one by one, and
//! every later write is single requests.

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The default array size: well under Fulcrum's per-IP cap, and what other wallets settled on
/// (BlueWallet: 40-100).
pub const DEFAULT_MAX_ARRAY: usize = 100;
/// Unanswered arrays remembered per connection; older ones are forgotten (their requests time
/// out as usual).
const MAX_REMEMBERED: usize = 256;

/// Shared by a connection's reader and writer.
pub(super) struct Arrays {
    /// The most requests in one array (1 means never an array).
    pub max: usize,
    refused: AtomicBool,
    sent: Mutex<VecDeque<Vec<Value>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ids(items: &[Value]) -> impl Iterator<Item = u64> + '_ {
    items
        .iter()
        .filter_map(|v| v.get("id").and_then(Value::as_u64))
}

impl Arrays {
    pub fn new(max: usize) -> Arrays {
        Arrays {
            max: max.max(1),
            refused: AtomicBool::new(false),
            sent: Mutex::default(),
        }
    }

    /// Whether writes must be single requests.
    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Acquire)
    }

    /// Remembers an array that was written.
    pub fn sent(&self, items: &[Value]) {
        let mut sent = lock(&self.sent);
        if sent.len() >= MAX_REMEMBERED {
            sent.pop_front();
        }
        sent.push_back(items.to_vec());
    }

    /// An array answer arrived: forget the array it answers.
    pub fn answered(&self, reply: &[Value]) {
        let got: Vec<u64> = ids(reply).collect();
        let mut sent = lock(&self.sent);
        if let Some(i) = sent.iter().position(|a| ids(a).any(|id| got.contains(&id))) {
            sent.remove(i);
        }
    }

    /// A lone error object without an id arrived while arrays were unanswered: the server refused
    /// the oldest one. Returns its requests, to send again singly, and switches to single writes.
    pub fn refused_array(&self) -> Option<Vec<Value>> {
        let items = lock(&self.sent).pop_front()?;
        self.refused.store(true, Ordering::Release);
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_and_refusals_are_matched() {
        let a = Arrays::new(100);
        let one = vec![json!({"id": 1}), json!({"id": 2})];
        let two = vec![json!({"id": 3}), json!({"id": 4})];
        a.sent(&one);
        a.sent(&two);
        // Answers come back in any order (ElectrumX: completion order).
        a.answered(&[json!({"id": 4, "result": 0}), json!({"id": 3, "result": 0})]);
        assert!(!a.refused());
        assert_eq!(a.refused_array(), Some(one));
        assert!(a.refused());
        assert_eq!(a.refused_array(), None);
        assert_eq!(Arrays::new(0).max, 1);
    }
}
