//! Pacing against ElectrumX's cost model: an estimate, per connection, of the cost the server
//! keeps for our session (electrumx `server/session.py`, aiorpcx `session.py`).
//!
//! ElectrumX starts a session at 5 units, adds each request's charge (`costs.rs`), adds 1/5000 of
//! a unit per byte either way and 100 per error, and lets the total decay at a steady rate
//! (`COST_HARD_LIMIT / (10000 + 5 × subscriptions)`, 1 unit/s by default). Past `COST_SOFT_LIMIT`
//! (1000) it delays every request and lowers the session's concurrency; past `COST_HARD_LIMIT`
//! (10000) it disconnects. The writer sends a request only when this estimate, with the request
//! added, stays under the budget: background work up to `limit - reserve`, interactive requests
//! up to `limit`, so a user's read never queues behind a long sync.

use super::costs;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Defaults of the config keys (`electrum_cost_budget`, `_reserve`, `_decay_per_sec`). The budget
/// leaves ElectrumX's soft limit (1000) 200 units of head room: ElectrumX applies the decay only
/// when it recomputes a session's cost (every 100 units of change), so its raw figure runs up to
/// 100 above the decayed one, and answers are only charged here once they arrive.
pub const DEFAULT_BUDGET: f64 = 800.0;
pub const DEFAULT_RESERVE: f64 = 100.0;
pub const DEFAULT_DECAY: f64 = 1.0;

/// What a session costs on connect.
const CONNECT: f64 = 5.0;
/// Scripthash sizes remembered per connection; past this the map starts over.
const MAX_SIZES: usize = 100_000;

/// The pacing settings of every connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Most units the estimate may reach; 0 turns pacing off.
    pub limit: f64,
    /// Units only interactive requests may use.
    pub reserve: f64,
    /// The server's decay in units per second (before its subscription discount).
    pub decay_per_sec: f64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            limit: DEFAULT_BUDGET,
            reserve: DEFAULT_RESERVE,
            decay_per_sec: DEFAULT_DECAY,
        }
    }
}

impl Budget {
    /// No pacing at all.
    pub fn off() -> Budget {
        Budget {
            limit: 0.0,
            ..Budget::default()
        }
    }

    pub fn is_off(&self) -> bool {
        self.limit <= 0.0
    }
}

/// Who is waiting for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A user waits: may use the whole budget.
    Interactive,
    /// Bulk work (history sync): stops at `limit - reserve`.
    Background,
}

tokio::task_local! {
    static CLASS: Class;
}

/// Runs `fut` with every Electrum request it makes in the background class.
pub async fn background<F: std::future::Future>(fut: F) -> F::Output {
    CLASS.scope(Class::Background, fut).await
}

/// The class of requests made from the current task (interactive unless inside `background`).
pub fn current() -> Class {
    CLASS.try_with(|c| *c).unwrap_or(Class::Interactive)
}

/// A request written and not answered yet: what to settle when its answer comes.
struct Open {
    /// When it was written: a request's time limit runs from here, not from while it queued.
    at: Instant,
    method: costs::Method,
    scripthash: Option<String>,
    /// The answer's expected share already charged at write time.
    allowance: f64,
    /// What its answer was expected to hold (history entries, unspents).
    expected_items: usize,
}

/// A meter for a server not connected before: counting from the start, pacing once the server
/// says it is ElectrumX (`Connection::open`).
pub(super) fn new_meter() -> std::sync::Arc<std::sync::Mutex<Meter>> {
    std::sync::Arc::new(std::sync::Mutex::new(Meter::new(
        Budget::off(),
        Instant::now(),
    )))
}

/// The estimate for one server's session.
pub(super) struct Meter {
    budget: Budget,
    level: f64,
    at: Instant,
    /// Scripthashes subscribed (ElectrumX keeps them in a dict: a repeat is not a new one).
    subs: std::collections::HashSet<String>,
    open: HashMap<u64, Open>,
    /// History length per scripthash, from answers: bounds what its next reads cost.
    sizes: HashMap<String, usize>,
}

impl Meter {
    pub fn new(budget: Budget, now: Instant) -> Meter {
        Meter {
            budget,
            level: CONNECT,
            at: now,
            subs: Default::default(),
            open: HashMap::new(),
            sizes: HashMap::new(),
        }
    }

    /// A new session to the same server: ElectrumX starts it at 5 but keeps the closed one's
    /// cost in the session group (refunding it at 2 units/s), so the estimate carries on (it
    /// decays at the slower session rate: on the safe side). Pacing waits for `server.version`.
    pub fn reconnected(&mut self, now: Instant) {
        self.budget = Budget::off();
        self.open.clear();
        self.subs.clear();
        self.add(now, CONNECT);
    }

    pub fn is_paced(&self) -> bool {
        !self.budget.is_off()
    }

    /// Starts (or stops) pacing with `budget`; the estimate so far stays.
    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    fn rate(&self) -> f64 {
        // ElectrumX slows the decay for sessions with subscriptions (their notifications cost
        // it later), every 300 s; using the slower rate from the start errs on the safe side.
        self.budget.decay_per_sec * 10_000.0 / (10_000.0 + 5.0 * self.subs.len() as f64)
    }

    /// The estimate now.
    pub fn level(&mut self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level - dt * self.rate()).max(0.0);
        self.at = now;
        self.level
    }

    fn add(&mut self, now: Instant, units: f64) {
        let level = self.level(now);
        self.level = (level + units).max(0.0);
    }

    fn room(&self, class: Class) -> f64 {
        match class {
            Class::Interactive => self.budget.limit,
            Class::Background => (self.budget.limit - self.budget.reserve).max(0.0),
        }
    }

    /// Whether `units` more fit now for `class`; if not, the instant they will. A request
    /// larger than the room goes once the estimate is back to zero, so nothing waits forever.
    pub fn fits(&mut self, now: Instant, class: Class, units: f64) -> Result<(), Instant> {
        if self.budget.is_off() {
            return Ok(());
        }
        let level = self.level(now);
        let room = self.room(class);
        // The slack absorbs float rounding after a sleep of exactly the computed time.
        if level + units <= room + 1e-6 || level <= 1e-6 {
            return Ok(());
        }
        let excess = (level + units - room).min(level);
        let secs = (excess / self.rate()).min(86_400.0);
        Err(now + Duration::from_secs_f64(secs) + Duration::from_millis(1))
    }

    /// What writing `item` (one request object, `bytes` long on the wire) will cost.
    pub fn cost_of(&self, item: &Value, bytes: usize) -> f64 {
        let est = costs::estimate(item, |sh| self.sizes.get(sh).copied());
        est.charge + est.allowance + costs::bytes(bytes)
    }

    /// `item` was written: charge it and remember what its answer should settle.
    pub fn sent(&mut self, now: Instant, item: &Value, bytes: usize) {
        let est = costs::estimate(item, |sh| self.sizes.get(sh).copied());
        self.add(now, est.charge + est.allowance + costs::bytes(bytes));
        if let Some(sh) = &est.scripthash {
            match est.method {
                costs::Method::Subscribe if self.subs.len() < MAX_SIZES => {
                    self.subs.insert(sh.clone());
                }
                costs::Method::Unsubscribe => {
                    self.subs.remove(sh);
                }
                _ => {}
            }
        }
        if let Some(id) = item.get("id").and_then(Value::as_u64) {
            self.open.insert(
                id,
                Open {
                    at: now,
                    method: est.method,
                    scripthash: est.scripthash,
                    allowance: est.allowance,
                    expected_items: est.expected_items,
                },
            );
        }
    }

    /// When request `id` was written, if it was and is not answered yet.
    pub fn written_at(&self, id: u64) -> Option<Instant> {
        self.open.get(&id).map(|o| o.at)
    }

    /// A line of `bytes` arrived (the server charged for sending it).
    pub fn received(&mut self, now: Instant, bytes: usize) {
        self.add(now, costs::bytes(bytes));
    }

    /// One reply object arrived: settle its request against what the answer holds.
    pub fn answered(&mut self, now: Instant, msg: &Value) {
        let Some(open) = msg
            .get("id")
            .and_then(Value::as_u64)
            .and_then(|id| self.open.remove(&id))
        else {
            return;
        };
        let error = msg.get("error").is_some_and(|e| !e.is_null());
        let result = msg.get("result").unwrap_or(&Value::Null);
        let s = costs::settle(open.method, open.expected_items, error, result);
        self.add(now, s.extra - open.allowance);
        if let (Some(n), Some(sh)) = (s.items, open.scripthash) {
            if self.sizes.len() >= MAX_SIZES {
                self.sizes.clear();
            }
            self.sizes.insert(sh, n);
        }
    }

    /// A notification arrived; a scripthash status cost the server a history lookup.
    pub fn notified(&mut self, now: Instant, method: &str, params: &Value) {
        let size = params
            .get(0)
            .and_then(Value::as_str)
            .and_then(|sh| self.sizes.get(sh).copied());
        self.add(now, costs::notification(method, size));
    }
}

#[cfg(test)]
#[path = "budget_tests.rs"]
mod tests;
