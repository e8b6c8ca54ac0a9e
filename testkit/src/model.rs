//! The model of kdfd's documented answers (docs/rpc.md), shared by tests/bad_input.rs and
//! tests/props.rs so both judge answers by one set of rules: [`World::expect_body`] says what a
//! body must answer, [`check`] compares an HTTP answer with it.

use crate::{BOB_R_ADDRESS, USERPASS};
use serde_json::{json, Map, Value};

/// `max_batch_items` (kdfd's default; the corpus configs set it explicitly).
pub const MAX_BATCH: usize = 1000;

/// What a body must answer.
#[derive(Debug, Clone)]
pub enum Expect {
    /// 200 `{"result": "<version>", "datetime": ...}`.
    Version,
    /// 200, plain text naming the methods (`null` in a batch).
    Help,
    /// 200 and exactly this legacy `get_enabled_coins` body.
    EnabledCoins(Value),
    /// 200 `{"coin": <coin>, "balance": ..., "address": bob's, ...}`.
    Balance(String),
    /// 500 `{"error": <string containing the needle>, ...}`.
    LegacyErr(String),
    /// 500 `{"error": "<serde message>"}` and nothing else (the JSON-RPC -32700 object when the
    /// body mentions `"jsonrpc"`).
    ParseErr { jsonrpc: bool },
    /// 200 `{"mmrpc": "2.0", "result": {"coins": <coins>}, "id": <id>}`.
    V2Coins { id: Value, coins: Value },
    /// The v2 error object with this status, `error_type` and `id`.
    V2Err(u16, &'static str, Value),
    /// A JSON-RPC 2.0 answer (kdfd extension): 200, this `id`, and a result (checked like the
    /// legacy answer) or an error with this code (0: any code).
    Rpc {
        id: Value,
        outcome: Result<Box<Expect>, i64>,
    },
    /// A JSON-RPC 2.0 notification: 204 and no body alone, no slot in a batch.
    Nothing,
    /// 200 and these slots (notifications already left out).
    Batch(Vec<Expect>),
    /// An atomic-batch envelope (kdfd extension): 200 `{"batch": [...], "atomicBatch":
    /// {"status": ...}}`; `Ok(n)`: success with n details, `Err(i)`: failed at index i.
    Atomic {
        batch: Option<Vec<Expect>>,
        atomic: Option<Result<usize, usize>>,
    },
    /// 413 `{"error": ...}`.
    TooLarge,
    /// 200 with an empty body (CORS preflight).
    Preflight,
}

pub const LEGACY_METHODS: [&str; 7] = [
    "version",
    "help",
    "stop",
    "electrum",
    "my_balance",
    "get_enabled_coins",
    "disable_coin",
];

/// kdfd's default per-batch method caps.
pub fn method_cap(method: &str) -> Option<usize> {
    match method {
        "stop" => Some(1),
        "electrum" | "disable_coin" => Some(500),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Legacy,
    MmRpc,
    JsonRpc,
}

pub fn dialect(v: &Value) -> Dialect {
    if v.get("jsonrpc").is_some() {
        Dialect::JsonRpc
    } else if v.get("mmrpc").is_some_and(|m| !m.is_null()) {
        Dialect::MmRpc
    } else {
        Dialect::Legacy
    }
}

pub fn u64_id(o: &Value) -> Value {
    o.get("id")
        .and_then(Value::as_u64)
        .map_or(Value::Null, Value::from)
}

/// What the corpus knows about the daemon it talks to.
pub struct World {
    /// 127.0.0.1 and a port nothing listens on.
    pub closed_url: String,
    /// Tickers of the coins file.
    pub tickers: Vec<String>,
    /// The coin activated before the run, if any, and the fake Electrum it uses.
    pub active: Option<String>,
    pub fake_url: Option<String>,
    pub cap: usize,
}

impl World {
    /// The expected answer to an HTTP POST with this body.
    pub fn expect_body(&self, body: &[u8]) -> Expect {
        if body.len() > self.cap {
            return Expect::TooLarge;
        }
        match serde_json::from_slice::<Value>(body) {
            Err(_) => Expect::ParseErr {
                jsonrpc: body.windows(9).any(|w| w == b"\"jsonrpc\""),
            },
            Ok(v) => self.expect(&v),
        }
    }

    pub fn expect(&self, v: &Value) -> Expect {
        match v {
            Value::Array(items) if items.len() > MAX_BATCH => Expect::TooLarge,
            Value::Array(items) => {
                let slots = self.batch(items);
                if slots.is_empty() && !items.is_empty() {
                    Expect::Nothing
                } else {
                    Expect::Batch(slots)
                }
            }
            Value::Object(o)
                if !o.is_empty() && o.keys().all(|k| k == "batch" || k == "atomicBatch") =>
            {
                self.atomic(o)
            }
            other => self.item(other),
        }
    }

    /// The slots of a batch: per-method caps first, notifications left out.
    pub fn batch(&self, items: &[Value]) -> Vec<Expect> {
        let mut counts = std::collections::HashMap::new();
        items
            .iter()
            .map(|item| {
                if let Some(m) = item.get("method").and_then(Value::as_str) {
                    if let Some(cap) = method_cap(m) {
                        let n = counts.entry(m.to_string()).or_insert(0usize);
                        *n += 1;
                        if *n > cap {
                            return over_cap(item);
                        }
                    }
                }
                self.item(item)
            })
            .filter(|e| !matches!(e, Expect::Nothing))
            .collect()
    }

    pub fn item(&self, v: &Value) -> Expect {
        let Value::Object(o) = v else {
            return Expect::LegacyErr("Invalid request: expected a JSON object".into());
        };
        if o.contains_key("jsonrpc") {
            return self.jsonrpc(o);
        }
        match o.get("mmrpc").filter(|m| !m.is_null()) {
            Some(version) => self.v2(o, version),
            None => match o.get("method").and_then(Value::as_str) {
                Some(m) if LEGACY_METHODS.contains(&m) => self.legacy(m, o),
                // KDF 2.5: a method the legacy table lacks is retried as mmrpc 2.0.
                _ => self.v2(o, &json!("2.0")),
            },
        }
    }

    pub fn legacy(&self, method: &str, o: &Map<String, Value>) -> Expect {
        match method {
            "version" => return Expect::Version,
            "help" => return Expect::Help,
            _ => {}
        }
        match o.get("userpass") {
            Some(Value::String(s)) if s == USERPASS => {}
            Some(Value::String(_)) => return Expect::LegacyErr("Userpass is invalid!".into()),
            _ => return Expect::LegacyErr("Userpass is not set!".into()),
        }
        let coin = o.get("coin");
        match method {
            "stop" => panic!("corpus bug: a stop with the right userpass would end the daemon"),
            "get_enabled_coins" => Expect::EnabledCoins(json!({"result": self
                .active
                .iter()
                .map(|c| json!({"ticker": c, "address": BOB_R_ADDRESS}))
                .collect::<Vec<_>>()})),
            "my_balance" => match coin {
                Some(Value::String(c)) if self.is_active(c) => Expect::Balance(c.clone()),
                Some(Value::String(c)) => Expect::LegacyErr(format!("No such coin: {c}")),
                None | Some(Value::Null) => Expect::LegacyErr("No 'coin' field".into()),
                Some(_) => Expect::LegacyErr(String::new()),
            },
            "disable_coin" => {
                if coin
                    .and_then(Value::as_str)
                    .is_some_and(|c| self.is_active(c))
                {
                    panic!("corpus bug: would disable the active coin");
                }
                match (coin, o.get("force_disable")) {
                    (Some(Value::String(c)), None | Some(Value::Null | Value::Bool(_))) => {
                        Expect::LegacyErr(format!("No such coin: {c}"))
                    }
                    (None | Some(Value::Null), _) => Expect::LegacyErr("No 'coin' field".into()),
                    _ => Expect::LegacyErr(String::new()),
                }
            }
            "electrum" => {
                // Only the closed port, or the fake for the coin that is already active: so every
                // electrum case fails, and none changes what is active.
                let servers = o.get("servers").and_then(Value::as_array);
                let ticker = coin.and_then(Value::as_str).unwrap_or("");
                let could_activate =
                    !self.is_active(ticker) && self.tickers.iter().any(|t| t == ticker);
                for s in servers.into_iter().flatten() {
                    if let Some(url) = s.get("url").and_then(Value::as_str) {
                        let ok = url == self.closed_url
                            || !url.contains(':')
                            || (self.fake_url.as_deref() == Some(url) && !could_activate);
                        assert!(ok, "corpus bug: electrum {ticker} would connect to {url}");
                    }
                }
                Expect::LegacyErr(String::new())
            }
            other => unreachable!("{other}"),
        }
    }

    pub fn is_active(&self, coin: &str) -> bool {
        self.active.as_deref() == Some(coin)
    }

    /// The mmrpc 2.0 path: version, envelope, auth, method table, params.
    pub fn v2(&self, o: &Map<String, Value>, version: &Value) -> Expect {
        let coins: Value = self.active.iter().map(|c| json!({"ticker": c})).collect();
        let id = o
            .get("id")
            .and_then(Value::as_u64)
            .map_or(Value::Null, Value::from);
        let bad = |t| Expect::V2Err(400, t, id.clone());
        if version != "2.0" {
            return bad("InvalidMmRpcVersion");
        }
        const KEYS: [&str; 5] = ["mmrpc", "userpass", "method", "params", "id"];
        if o.keys().any(|k| !KEYS.contains(&k.as_str())) {
            return bad("InvalidRequest");
        }
        let userpass = match o.get("userpass") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return bad("InvalidRequest"),
        };
        let Some(Value::String(method)) = o.get("method") else {
            return bad("InvalidRequest");
        };
        match o.get("id") {
            None | Some(Value::Null) => {}
            Some(v) if v.is_u64() => {}
            Some(_) => return bad("InvalidRequest"),
        }
        match userpass {
            None => return Expect::V2Err(403, "UserpassIsNotSet", id),
            Some(u) if u != USERPASS => return Expect::V2Err(403, "UserpassIsInvalid", id),
            Some(_) => {}
        }
        if method != "get_enabled_coins" {
            return bad("NoSuchMethod");
        }
        match o.get("params") {
            None | Some(Value::Null) => Expect::V2Coins { id, coins },
            Some(Value::Object(p)) if p.is_empty() => Expect::V2Coins { id, coins },
            Some(_) => bad("InvalidRequest"),
        }
    }

    /// kdfd's JSON-RPC 2.0 dialect: `params` are the legacy request's fields.
    pub fn jsonrpc(&self, o: &Map<String, Value>) -> Expect {
        let id = match o.get("id") {
            None => None,
            Some(v @ (Value::Null | Value::Number(_) | Value::String(_))) => Some(v.clone()),
            Some(_) => return rpc_err(Some(Value::Null), -32600),
        };
        let or_null = |id: &Option<Value>| Some(id.clone().unwrap_or(Value::Null));
        if o.get("jsonrpc") != Some(&json!("2.0")) {
            return rpc_err(or_null(&id), -32600);
        }
        let Some(Value::String(name)) = o.get("method") else {
            return rpc_err(or_null(&id), -32600);
        };
        let mut params = match o.get("params") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(p)) => p.clone(),
            Some(_) => return rpc_err(id, -32602),
        };
        if o.keys()
            .any(|k| !["jsonrpc", "id", "method", "params"].contains(&k.as_str()))
        {
            return rpc_err(id, -32600);
        }
        let userpass = params.remove("userpass");
        let outcome = if LEGACY_METHODS.contains(&name.as_str()) {
            params.insert("method".into(), json!(name));
            if let Some(u) = userpass {
                params.insert("userpass".into(), u);
            }
            match self.legacy(name, &params) {
                Expect::LegacyErr(needle) if needle.starts_with("Userpass is not set") => {
                    Err(-32001)
                }
                Expect::LegacyErr(needle) if needle.starts_with("Userpass is invalid") => {
                    Err(-32002)
                }
                Expect::LegacyErr(_) => Err(0),
                ok => Ok(Box::new(ok)),
            }
        } else {
            match userpass {
                Some(Value::String(s)) if s == USERPASS => Err(-32601),
                Some(Value::String(_)) => Err(-32002),
                _ => Err(-32001),
            }
        };
        match id {
            None => Expect::Nothing,
            Some(id) => Expect::Rpc { id, outcome },
        }
    }

    /// kdfd's atomic-batch envelope.
    pub fn atomic(&self, o: &Map<String, Value>) -> Expect {
        let mut parts = Vec::new();
        for name in ["batch", "atomicBatch"] {
            match o.get(name) {
                None | Some(Value::Null) => parts.push(None),
                Some(Value::Array(items)) => parts.push(Some(items.as_slice())),
                Some(_) => return Expect::LegacyErr(format!("'{name}' must be an array")),
            }
        }
        let total: usize = parts.iter().flatten().map(|p| p.len()).sum();
        if total > MAX_BATCH {
            return Expect::TooLarge;
        }
        let batch = parts[0].map(|items| self.batch(items));
        let atomic = parts[1].map(|items| {
            if let Some(i) = items.iter().position(|item| !self.atomic_valid(item)) {
                return Err(i);
            }
            match items.iter().position(|item| is_error(&self.item(item))) {
                Some(i) => Err(i),
                None => Ok(items.len()),
            }
        });
        Expect::Atomic { batch, atomic }
    }

    /// An atomic item's check before anything runs.
    pub fn atomic_valid(&self, item: &Value) -> bool {
        if !item.is_object() {
            return false;
        }
        let d = dialect(item);
        let Some(method) = item.get("method").and_then(Value::as_str) else {
            return false;
        };
        let known = match d {
            Dialect::MmRpc => method == "get_enabled_coins",
            _ => LEGACY_METHODS.contains(&method),
        };
        let (coin, userpass) = match d {
            Dialect::Legacy => (item.get("coin"), item.get("userpass")),
            Dialect::MmRpc => (item["params"].get("coin"), item.get("userpass")),
            Dialect::JsonRpc => (item["params"].get("coin"), item["params"].get("userpass")),
        };
        let needs_coin = ["electrum", "my_balance", "disable_coin"].contains(&method);
        let public = method == "version" || method == "help";
        // A JSON-RPC notification's failure could not be seen, so it is refused.
        let notification = d == Dialect::JsonRpc && item.get("id").is_none();
        known
            && (!needs_coin || coin.is_some_and(Value::is_string))
            && method != "stop"
            && !notification
            && (public || userpass == Some(&json!(USERPASS)))
    }
}

pub fn rpc_err(id: Option<Value>, code: i64) -> Expect {
    match id {
        None => Expect::Nothing,
        Some(id) => Expect::Rpc {
            id,
            outcome: Err(code),
        },
    }
}

pub fn over_cap(item: &Value) -> Expect {
    match dialect(item) {
        Dialect::Legacy => Expect::LegacyErr("over the cap".into()),
        Dialect::MmRpc => Expect::V2Err(429, "OverMethodCap", u64_id(item)),
        // An id of a type JSON-RPC does not allow is answered as null (docs/rpc.md, 2.4).
        Dialect::JsonRpc => match item.get("id") {
            Some(Value::Null | Value::Number(_) | Value::String(_)) | None => {
                rpc_err(item.get("id").cloned(), -32031)
            }
            Some(_) => rpc_err(Some(Value::Null), 0),
        },
    }
}

/// Whether the slot of this answer is an error (has "error").
pub fn is_error(e: &Expect) -> bool {
    match e {
        Expect::LegacyErr(_) | Expect::ParseErr { .. } | Expect::V2Err(..) | Expect::TooLarge => {
            true
        }
        Expect::Rpc { outcome, .. } => outcome.is_err(),
        _ => false,
    }
}

pub fn status_of(e: &Expect) -> u16 {
    match e {
        Expect::Version
        | Expect::Help
        | Expect::EnabledCoins(_)
        | Expect::Balance(_)
        | Expect::V2Coins { .. }
        | Expect::Rpc { .. }
        | Expect::Batch(_)
        | Expect::Atomic { .. }
        | Expect::Preflight => 200,
        Expect::Nothing => 204,
        Expect::LegacyErr(_) | Expect::ParseErr { .. } => 500,
        Expect::V2Err(s, ..) => *s,
        Expect::TooLarge => 413,
    }
}

pub fn check_slots(items: &[Expect], v: &Value) -> Result<(), String> {
    let Some(slots) = v.as_array() else {
        return Err(format!("batch answer is not an array: {}", clip(v)));
    };
    if slots.len() != items.len() {
        return Err(format!(
            "batch of {} answered items got {} slots",
            items.len(),
            slots.len()
        ));
    }
    for (i, (e, s)) in items.iter().zip(slots).enumerate() {
        // Inside a batch every error slot is an object with "error".
        if is_error(e) && s.get("error").is_none() {
            return Err(format!(
                "slot {i}: error slot without \"error\": {}",
                clip(s)
            ));
        }
        check_value(e, s).map_err(|m| format!("slot {i}: {m}"))?;
    }
    Ok(())
}

/// Checks a JSON answer (a whole body, or one batch slot) against the expectation.
pub fn check_value(e: &Expect, v: &Value) -> Result<(), String> {
    let ok = match e {
        Expect::Version => v["result"].is_string() && v["datetime"].is_string(),
        Expect::Help => v.is_null(), // only reached for batch slots
        Expect::EnabledCoins(expected) => v == expected,
        Expect::Balance(coin) => {
            v["coin"] == coin.as_str()
                && v["balance"].is_string()
                && v["address"] == BOB_R_ADDRESS
                && v.get("error").is_none()
        }
        Expect::LegacyErr(needle) => v["error"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s.contains(needle.as_str())),
        Expect::ParseErr { jsonrpc: true } => {
            v["jsonrpc"] == "2.0"
                && v["id"].is_null()
                && v["error"]["code"] == -32700
                && v["error"]["message"].is_string()
        }
        Expect::ParseErr { jsonrpc: false } | Expect::TooLarge => {
            v.as_object().is_some_and(|o| o.len() == 1) && v["error"].is_string()
        }
        Expect::V2Coins { id, coins } => {
            *v == json!({"mmrpc": "2.0", "result": {"coins": coins}, "id": id})
        }
        Expect::V2Err(_, error_type, id) => {
            v["mmrpc"] == "2.0"
                && v["error"].is_string()
                && v["error_path"].is_string()
                && v["error_trace"].is_string()
                && v["error_type"] == *error_type
                && v.get("id") == Some(id)
        }
        Expect::Rpc { id, outcome } => {
            if v["jsonrpc"] == "2.0" && v.get("id") != Some(id) {
                return Err(format!(
                    "JSON-RPC id not echoed exactly: expected {id}, got {}",
                    clip(&v["id"])
                ));
            }
            let envelope = v["jsonrpc"] == "2.0";
            envelope
                && match outcome {
                    Ok(inner) => {
                        v.get("error").is_none()
                            && match inner.as_ref() {
                                Expect::Help => v["result"]
                                    .as_str()
                                    .is_some_and(|t| t.contains("my_balance")),
                                other => check_value(other, &v["result"]).is_ok(),
                            }
                    }
                    Err(code) => {
                        v.get("result").is_none()
                            && v["error"]["code"].is_i64()
                            && (*code == 0 || v["error"]["code"] == *code)
                            && v["error"]["message"].is_string()
                    }
                }
        }
        Expect::Batch(items) => {
            check_slots(items, v)?;
            true
        }
        Expect::Atomic { batch, atomic } => {
            let keys = v.as_object().map_or(0, Map::len);
            if keys != usize::from(batch.is_some()) + usize::from(atomic.is_some()) {
                return Err(format!("atomic envelope answered {}", clip(v)));
            }
            if let Some(items) = batch {
                check_slots(items, &v["batch"]).map_err(|m| format!("batch: {m}"))?;
            }
            match atomic {
                None => true,
                Some(Ok(n)) => {
                    v["atomicBatch"]["status"] == "success"
                        && v["atomicBatch"]["details"].as_array().map(Vec::len) == Some(*n)
                }
                Some(Err(i)) => {
                    v["atomicBatch"]["status"] == "failed"
                        && v["atomicBatch"]["failed_index"] == *i
                        && v["atomicBatch"]["message"].is_string()
                }
            }
        }
        Expect::Nothing | Expect::Preflight => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {}, got {}", describe(e), clip(v)))
    }
}

pub fn describe(e: &Expect) -> String {
    match e {
        Expect::LegacyErr(n) => format!("legacy error containing {:?}", clip_str(n, 80)),
        Expect::Batch(items) => format!("batch of {} slots", items.len()),
        Expect::Atomic { .. } => "atomic envelope".into(),
        other => clip_str(&format!("{other:?}"), 200),
    }
}

pub fn check(
    e: &Expect,
    status: u16,
    headers: &hyper::HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    if status != status_of(e) {
        return Err(format!(
            "status {status}, expected {} ({}); body {}",
            status_of(e),
            describe(e),
            clip_bytes(body)
        ));
    }
    match e {
        Expect::Help => {
            let text = String::from_utf8_lossy(body);
            if text.contains("my_balance") && serde_json::from_slice::<Value>(body).is_err() {
                Ok(())
            } else {
                Err(format!("help answered {}", clip_bytes(body)))
            }
        }
        Expect::Preflight | Expect::Nothing => match body.is_empty() {
            true => Ok(()),
            false => Err(format!("expected an empty body, got {}", clip_bytes(body))),
        },
        _ => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|err| format!("body is not JSON ({err}): {}", clip_bytes(body)))?;
            let ct = headers
                .get("content-type")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("");
            if ct != "application/json" {
                return Err(format!("content-type {ct:?} for a JSON body"));
            }
            check_value(e, &v)
        }
    }
}

pub fn clip_str(s: &str, n: usize) -> String {
    if s.len() <= n {
        return s.to_string();
    }
    let mut end = n;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…({} bytes)", &s[..end], s.len())
}

pub fn clip(v: &Value) -> String {
    clip_str(&v.to_string(), 300)
}

pub fn clip_bytes(b: &[u8]) -> String {
    let shown = &b[..b.len().min(300)];
    let mut s = format!("{:?}", String::from_utf8_lossy(shown));
    if b.len() > 300 {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s
}
