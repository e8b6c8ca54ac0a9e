//! The bad-input corpus: well over 200 malformed requests, generated systematically, against one
//! running kdfd (plus a second one with `"max_body_bytes": 65536` for the size-cap cases).
//!
//! Every case is a body (and an HTTP method); what it must answer is not written next to it but
//! computed by `World::expect`, a small model of the documented wire behaviour:
//!
//! - a body that is not JSON: 500 `{"error": "<serde message>"}`;
//! - a body over `max_body_bytes`, or a batch over `max_batch_items`: 413 `{"error": ...}`;
//! - a legacy request (no non-null `mmrpc`, `method` a legacy name): 200 and its answer, or
//!   500 `{"error": string}`;
//! - an mmrpc 2.0 request (non-null `mmrpc`, or a `method` legacy lacks): 200 and
//!   `{"mmrpc","result","id"}`, or 400/403 and the v2 error object with `error_type` and `id`;
//! - a batch: 200 and one slot per item, in order; an error slot is an object with `"error"`,
//!   `help` is `null`; per-method caps (`stop` 1, `electrum` and `disable_coin` 500) apply;
//! - kdfd's extensions (docs/rpc.md): JSON-RPC 2.0 items (200 with `result` or `error.code`, 204
//!   and no slot for notifications) and atomic-batch envelopes (`{"batch", "atomicBatch"}`).
//!
//! The model lives in `kdfd_testkit::model` (testkit/src/model.rs) and also drives `tests/props.rs`.
//!
//! The corpus runs with modest parallelism; after every 20 cases a `version` must still succeed,
//! and at the end the daemon's RSS must be below 200 MB. Failures are collected and printed all
//! together, each with its request and response, and fail the test.
//!
//! Safety: the model refuses (panics on) anything that would change the daemon's state or reach
//! past 127.0.0.1: a `stop` with the right userpass, a `disable_coin` of the active coin, an
//! `electrum` whose servers are not the closed local port or (for the active coin) the fake.

mod support;

use bytes::Bytes;
use futures_util::future::join_all;
use kdfd::client::Client;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::electrum_fake::FakeElectrum;
use support::{base_conf, shipped_coins, Kdfd, USERPASS};

/// Longest a case may take before it counts as "no response".
const CASE_TIMEOUT: Duration = Duration::from_secs(20);
/// Cases run concurrently in chunks of this size; a `version` check follows each chunk.
const CHUNK: usize = 20;
/// The "huge string" mutation.
const HUGE_LEN: usize = 1 << 20;
/// `max_body_bytes` of the main instance (kdfd's default, set explicitly).
const MAIN_CAP: usize = 4 * 1024 * 1024;
/// `max_body_bytes` of the size-cap instance.
const SMALL_CAP: usize = 65536;
/// `max_batch_items` of both instances (kdfd's default, set explicitly).
const MAX_BATCH: usize = 1000;
/// RSS bound at the end of the corpus.
const RSS_LIMIT_KB: u64 = 200 * 1024;
/// The coin activated (against the fake Electrum) before the corpus runs.
const ACTIVE: &str = "DOC";
/// The failed-userpass delay of the corpus instances (kdfd's default is 250 ms).
const AUTH_DELAY_MS: u64 = 2;
/// A wrong userpass: the only one `stop` ever gets.
const WRONG_PASS: &str = "Wrong!Pass42";

/// Placeholders for number literals serde_json cannot hold as u64/f64; replaced in the text.
const MARK_U64_OVERFLOW: &str = "@@U64_MAX_PLUS_1@@";
const MARK_F64_OVERFLOW: &str = "@@1E400@@";

// ---------------------------------------------------------------------------------------------
// Mutations and fields
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Mutation {
    Missing,
    Null,
    Bool,
    Number,
    Str,
    Array,
    Object,
    Empty,
    Huge,
    Negative,
    Float,
    U64Max,
    U64Overflow,
    F64Overflow,
}

const MUTATIONS: [Mutation; 14] = [
    Mutation::Missing,
    Mutation::Null,
    Mutation::Bool,
    Mutation::Number,
    Mutation::Str,
    Mutation::Array,
    Mutation::Object,
    Mutation::Empty,
    Mutation::Huge,
    Mutation::Negative,
    Mutation::Float,
    Mutation::U64Max,
    Mutation::U64Overflow,
    Mutation::F64Overflow,
];

impl Mutation {
    /// The value to put in the field (`None`: remove it).
    fn value(self) -> Option<Value> {
        Some(match self {
            Mutation::Missing => return None,
            Mutation::Null => Value::Null,
            Mutation::Bool => json!(true),
            Mutation::Number => json!(7),
            Mutation::Str => json!("wrong"),
            Mutation::Array => json!([1, "a", null]),
            Mutation::Object => json!({"k": "v"}),
            Mutation::Empty => json!(""),
            Mutation::Huge => Value::String("x".repeat(HUGE_LEN)),
            Mutation::Negative => json!(-1),
            Mutation::Float => json!(1.5),
            Mutation::U64Max => json!(u64::MAX),
            Mutation::U64Overflow => json!(MARK_U64_OVERFLOW),
            Mutation::F64Overflow => json!(MARK_F64_OVERFLOW),
        })
    }

    /// Whether the mutated body stays parsable JSON (so it can go inside a batch).
    fn parsable(self) -> bool {
        !matches!(self, Mutation::F64Overflow)
    }
}

/// Serialises, turning the placeholders into the raw literals `18446744073709551616` and `1e400`.
fn to_body(v: &Value) -> String {
    v.to_string()
        .replace(&format!("\"{MARK_U64_OVERFLOW}\""), "18446744073709551616")
        .replace(&format!("\"{MARK_F64_OVERFLOW}\""), "1e400")
}

#[derive(Clone, Copy, Debug)]
enum Field {
    /// A key of the request object.
    Top(&'static str),
    /// A key of `servers[0]`.
    Server(&'static str),
    /// A key of `params` (JSON-RPC 2.0 requests).
    Param(&'static str),
}

impl Field {
    fn label(self) -> String {
        match self {
            Field::Top(k) => k.to_string(),
            Field::Server(k) => format!("servers[0].{k}"),
            Field::Param(k) => format!("params.{k}"),
        }
    }

    fn apply(self, req: &Value, m: Mutation) -> Value {
        let mut req = req.clone();
        let target = match self {
            Field::Top(_) => req.as_object_mut(),
            Field::Server(_) => req["servers"][0].as_object_mut(),
            Field::Param(_) => req["params"].as_object_mut(),
        };
        let obj = target.expect("field's parent is an object");
        let key = match self {
            Field::Top(k) | Field::Server(k) | Field::Param(k) => k,
        };
        match m.value() {
            None => {
                obj.shift_remove(key);
            }
            Some(v) => {
                obj.insert(key.to_string(), v);
            }
        }
        req
    }
}

const ENVELOPE: [Field; 5] = [
    Field::Top("method"),
    Field::Top("userpass"),
    Field::Top("mmrpc"),
    Field::Top("id"),
    Field::Top("params"),
];

fn electrum_fields() -> Vec<Field> {
    let mut f = ENVELOPE.to_vec();
    f.extend([
        Field::Top("coin"),
        Field::Top("servers"),
        Field::Server("url"),
        Field::Server("protocol"),
        Field::Server("disable_cert_verification"),
        Field::Server("timeout_sec"),
        Field::Top("mm2"),
        Field::Top("min_connected"),
        Field::Top("max_connected"),
        Field::Top("required_confirmations"),
        Field::Top("requires_notarization"),
        Field::Top("tx_history"),
        Field::Top("address_format"),
    ]);
    f
}

/// A valid (or, for `stop`, safely refused) request of each method, with the fields to mutate.
fn bases(world: &World) -> Vec<(&'static str, Value, Vec<Field>)> {
    let electrum = |coin: &str, url: &str| {
        json!({
            "userpass": USERPASS, "method": "electrum", "coin": coin,
            "servers": [{"url": url, "protocol": "TCP", "disable_cert_verification": false, "timeout_sec": 1}],
            "mm2": 1, "min_connected": 1, "max_connected": 1, "required_confirmations": 1,
            "requires_notarization": false, "tx_history": false, "address_format": {"format": "standard"}
        })
    };
    let with = |extra: &[&'static str]| {
        let mut f = ENVELOPE.to_vec();
        f.extend(extra.iter().map(|k| Field::Top(k)));
        f
    };
    vec![
        ("version", json!({"method": "version"}), with(&[])),
        ("help", json!({"method": "help"}), with(&[])),
        (
            "stop(wrong userpass)",
            json!({"method": "stop", "userpass": WRONG_PASS}),
            with(&[]),
        ),
        (
            "get_enabled_coins",
            json!({"userpass": USERPASS, "method": "get_enabled_coins"}),
            with(&[]),
        ),
        (
            "my_balance",
            json!({"userpass": USERPASS, "method": "my_balance", "coin": ACTIVE}),
            with(&["coin"]),
        ),
        (
            "disable_coin(inactive)",
            json!({"userpass": USERPASS, "method": "disable_coin", "coin": "MARTY", "force_disable": false}),
            with(&["coin", "force_disable"]),
        ),
        (
            "electrum(refused port)",
            electrum("RICK", &world.closed_url),
            electrum_fields(),
        ),
        (
            "electrum(active coin, fake server)",
            electrum(ACTIVE, world.fake_url.as_deref().expect("fake url")),
            electrum_fields(),
        ),
        (
            "jsonrpc my_balance",
            json!({"jsonrpc": "2.0", "id": 1, "method": "my_balance", "params": {"userpass": USERPASS, "coin": ACTIVE}}),
            vec![
                Field::Top("jsonrpc"),
                Field::Top("id"),
                Field::Top("method"),
                Field::Top("params"),
                Field::Param("userpass"),
                Field::Param("coin"),
            ],
        ),
        (
            "jsonrpc version",
            json!({"jsonrpc": "2.0", "id": "v", "method": "version"}),
            vec![
                Field::Top("jsonrpc"),
                Field::Top("id"),
                Field::Top("method"),
                Field::Top("params"),
            ],
        ),
        (
            "v2 get_enabled_coins",
            json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "params": {}, "id": 1}),
            with(&[]),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// The model: what each body must answer (shared with the other corpus file)
// ---------------------------------------------------------------------------------------------

use kdfd_testkit::model::*;

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

struct Case {
    name: String,
    http: &'static str,
    body: Bytes,
    expect: Expect,
}

struct Corpus<'w> {
    world: &'w World,
    cases: Vec<Case>,
    seen: HashSet<(&'static str, Bytes)>,
}

impl<'w> Corpus<'w> {
    fn new(world: &'w World) -> Self {
        Corpus {
            world,
            cases: Vec::new(),
            seen: HashSet::new(),
        }
    }

    /// Adds a POST case whose expectation the model computes; identical bodies are added once.
    fn post(&mut self, name: impl Into<String>, body: impl Into<Bytes>) {
        let body = body.into();
        let expect = self.world.expect_body(&body);
        self.raw(name, "POST", body, expect);
    }

    fn raw(&mut self, name: impl Into<String>, http: &'static str, body: Bytes, expect: Expect) {
        if self.seen.insert((http, body.clone())) {
            self.cases.push(Case {
                name: name.into(),
                http,
                body,
                expect,
            });
        }
    }
}

/// Every field of every method × every mutation, alone and (per method) as one batch.
fn field_mutations(c: &mut Corpus) {
    for (method, base, fields) in bases(c.world) {
        c.post(format!("{method}: valid base"), to_body(&base));
        let mut batch = Vec::new();
        for field in fields {
            for m in MUTATIONS {
                let mutated = field.apply(&base, m);
                let name = format!("{method}: {} {m:?}", field.label());
                c.post(name, to_body(&mutated));
                if m.parsable() && !matches!(m, Mutation::Huge) {
                    batch.push(mutated);
                }
            }
        }
        c.post(
            format!("{method}: all field mutations as one batch"),
            to_body(&Value::Array(batch)),
        );
    }
}

/// A valid request cut at every byte offset (one of them has multi-byte characters, so some cuts
/// land inside a character and make the body invalid UTF-8 too).
fn truncations(c: &mut Corpus) {
    let w = c.world;
    let electrum = json!({
        "userpass": USERPASS, "method": "electrum", "coin": "RICK",
        "servers": [{"url": w.closed_url, "protocol": "TCP", "timeout_sec": 1}],
        "required_confirmations": 1, "address_format": {"format": "standard"}
    });
    let v2 = json!({"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "params": {}, "id": 77});
    let batch = json!([
        {"method": "version"},
        {"userpass": USERPASS, "method": "my_balance", "coin": "DÖC€𝄞"},
        {"mmrpc": "2.0", "userpass": USERPASS, "method": "get_enabled_coins", "id": 5},
    ]);
    let jsonrpc = json!({"jsonrpc": "2.0", "id": "t", "method": "my_balance", "params": {"userpass": USERPASS, "coin": ACTIVE}});
    for (label, full) in [
        ("electrum", electrum),
        ("v2", v2),
        ("batch", batch),
        ("jsonrpc", jsonrpc),
    ] {
        let text = full.to_string().into_bytes();
        for cut in 0..=text.len() {
            c.post(
                format!("truncated {label} at byte {cut}/{}", text.len()),
                text[..cut].to_vec(),
            );
        }
    }
}

fn malformed_json(c: &mut Corpus) {
    let samples: &[&str] = &[
        "",
        " ",
        "\n\t\r ",
        "{",
        "}",
        "[",
        "]",
        "{bad",
        "{\"method\"}",
        "{\"method\":}",
        "{\"method\":\"version\",}",
        "{\"method\":\"version\"}}",
        "{\"method\":\"version\"} x",
        "{\"method\":\"version\"}{\"method\":\"version\"}",
        "{\"method\":\"version\"}\n{\"method\":\"version\"}",
        "{'method':'version'}",
        "{method:\"version\"}",
        "{\"method\" \"version\"}",
        "{\"method\":\"version\" \"id\":1}",
        "[,]",
        "[1,]",
        "[{\"method\":\"version\"},]",
        "[{\"method\":\"version\"}",
        "nul",
        "tru",
        "NaN",
        "Infinity",
        "-Infinity",
        "-",
        "01",
        "1.",
        ".5",
        "1e",
        "+1",
        "0x10",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\uZZZZ\"",
        "\"unterminated",
        "\"a\u{1}b\"",
        "{\"method\":\"ver\nsion\"}",
        "/* comment */ {\"method\":\"version\"}",
        "{\"method\":\"version\"} // comment",
        "\u{0}",
        "{\"method\":\"version\"}\u{0}",
        "{\"method\":\"version\",\"id\":1e400}",
        "{\"method\":\"version\",\"id\":-1e400}",
        "[1e400]",
        "{\"method\":\"version\",\"id\":18446744073709551616}",
        "{\"method\":\"version\",\"id\":123456789012345678901234567890}",
        "{\"mmrpc\":\"2.0\",\"userpass\":\"Rpc!Secret42x\",\"method\":\"get_enabled_coins\",\"id\":18446744073709551616}",
        "{\"mmrpc\":\"2.0\",\"userpass\":\"Rpc!Secret42x\",\"method\":\"get_enabled_coins\",\"id\":18446744073709551615}",
        "{\"mmrpc\":\"2.0\",\"userpass\":\"Rpc!Secret42x\",\"method\":\"get_enabled_coins\",\"id\":1.0}",
        "{\"mmrpc\":\"2.0\",\"userpass\":\"Rpc!Secret42x\",\"method\":\"get_enabled_coins\",\"id\":1e2}",
        "{\"mmrpc\":\"2.0\",\"userpass\":\"Rpc!Secret42x\",\"method\":\"get_enabled_coins\",\"id\":-0}",
        "true",
        "false",
        "null",
        "0",
        "-1",
        "1.5",
        "\"version\"",
        "{}",
        "[]",
        "[[]]",
        "[{}]",
    ];
    for s in samples {
        c.post(
            format!("malformed {:?}", clip_str(s, 60)),
            s.as_bytes().to_vec(),
        );
    }
}

fn invalid_utf8(c: &mut Corpus) {
    let samples: &[&[u8]] = &[
        b"{\"method\":\"version\",\"x\":\"\xff\"}",
        b"{\"method\":\"\xc3\"}",
        b"{\"method\":\"\xc0\xaf\"}",
        b"{\"method\":\"\xed\xa0\x80\"}",
        b"{\"method\":\"\xf4\x90\x80\x80\"}",
        b"{\"method\":\"\xf8\x88\x80\x80\x80\"}",
        b"{\"method\":\"\x80\"}",
        b"{\"\xfe\":1,\"method\":\"version\"}",
        b"{\"userpass\":\"\x80\x80\",\"method\":\"get_enabled_coins\"}",
        b"{\"userpass\":\"Rpc!Secret42x\",\"method\":\"my_balance\",\"coin\":\"DOC\xff\"}",
        b"\xef\xbb\xbf{\"method\":\"version\"}",
        b"\xff\xfe{\0\"\0m\0\"\0:\x001\0}\0",
        b"{\"method\":\"version\"}\xff",
        b"\xff{\"method\":\"version\"}",
        b"[\xff]",
        b"[{\"method\":\"version\"},\"\xe2\x82\"]",
        b"{\"method\":\"version\"\x00}",
        b"{\"method\":\"\\ud800\"}",
        b"{\"method\":\"\\udc00\"}",
        b"{\"method\":\"\\ud800\\u0041\"}",
        b"{\"method\":\"\\ud83d\\ude00\"}",
        b"{\"method\":\"version\\u0000\"}",
    ];
    for s in samples {
        c.post(format!("bytes {}", clip_bytes(s)), s.to_vec());
    }
}

fn deep_nesting(c: &mut Corpus) {
    const N: usize = 100_000;
    let open = |unit: &str, n: usize| unit.repeat(n);
    c.post("100000 × [ (unclosed)", open("[", N));
    c.post(
        "100000 × [ closed",
        format!("{}{}", open("[", N), open("]", N)),
    );
    c.post("100000 × {\"a\": (unclosed)", open("{\"a\":", N));
    c.post(
        "100000 × {\"a\": closed",
        format!("{}1{}", open("{\"a\":", N), open("}", N)),
    );
    c.post(
        "100000 × [{\"a\": alternating",
        format!("{}1{}", open("[{\"a\":", N / 2), open("}]", N / 2)),
    );
    c.post(
        "my_balance coin nested 100000 deep",
        format!(
            "{{\"userpass\":\"{USERPASS}\",\"method\":\"my_balance\",\"coin\":{}{}}}",
            open("[", N),
            open("]", N)
        ),
    );
    c.post(
        "batch item nested 100000 deep",
        format!(
            "[{{\"method\":\"version\"}},{}{}]",
            open("{\"a\":", N),
            open("}", N).replacen('}', "1}", 1)
        ),
    );
    // Around serde_json's recursion limit (128): some of these parse, some do not.
    for depth in [126, 127, 128, 129, 130] {
        c.post(
            format!("{depth} × [ closed"),
            format!("{}{}", open("[", depth), open("]", depth)),
        );
        c.post(
            format!("my_balance coin nested {depth} deep"),
            format!(
                "{{\"userpass\":\"{USERPASS}\",\"method\":\"my_balance\",\"coin\":{}1{}}}",
                open("{\"a\":", depth),
                open("}", depth)
            ),
        );
        c.post(
            format!("v2 params nested {depth} deep"),
            format!(
                "{{\"mmrpc\":\"2.0\",\"userpass\":\"{USERPASS}\",\"method\":\"get_enabled_coins\",\"params\":{}{},\"id\":3}}",
                open("[", depth),
                open("]", depth)
            ),
        );
    }
}

fn duplicate_keys(c: &mut Corpus) {
    let u = USERPASS;
    let samples = [
        r#"{"method":"version","method":"my_balance"}"#.to_string(),
        r#"{"method":"my_balance","method":"version"}"#.to_string(),
        format!(r#"{{"userpass":"wrong","userpass":"{u}","method":"get_enabled_coins"}}"#),
        format!(r#"{{"userpass":"{u}","userpass":"wrong","method":"get_enabled_coins"}}"#),
        format!(r#"{{"userpass":"{u}","userpass":null,"method":"get_enabled_coins"}}"#),
        format!(r#"{{"mmrpc":"2.0","mmrpc":"1.0","userpass":"{u}","method":"get_enabled_coins"}}"#),
        format!(r#"{{"mmrpc":"1.0","mmrpc":"2.0","userpass":"{u}","method":"get_enabled_coins"}}"#),
        format!(r#"{{"mmrpc":null,"mmrpc":"2.0","userpass":"{u}","method":"get_enabled_coins"}}"#),
        format!(r#"{{"mmrpc":"2.0","mmrpc":null,"userpass":"{u}","method":"get_enabled_coins"}}"#),
        format!(r#"{{"mmrpc":"2.0","userpass":"{u}","method":"get_enabled_coins","id":1,"id":2}}"#),
        format!(
            r#"{{"mmrpc":"2.0","userpass":"{u}","method":"get_enabled_coins","id":"x","id":2}}"#
        ),
        format!(
            r#"{{"mmrpc":"2.0","userpass":"{u}","method":"get_enabled_coins","params":[],"params":{{}}}}"#
        ),
        format!(r#"{{"userpass":"{u}","method":"my_balance","coin":"{ACTIVE}","coin":"NOPE"}}"#),
        format!(r#"{{"userpass":"{u}","method":"my_balance","coin":"NOPE","coin":"{ACTIVE}"}}"#),
        format!(r#"{{"userpass":"{u}","method":"my_balance","coin":1,"coin":"{ACTIVE}"}}"#),
        format!(r#"{{"method":"stop","userpass":"{WRONG_PASS}","userpass":"also wrong"}}"#),
        format!(
            r#"{{"userpass":"{u}","method":"electrum","coin":"RICK","servers":[{{"url":"x","url":"{}","timeout_sec":1}}]}}"#,
            c.world.closed_url
        ),
        format!(
            r#"[{{"method":"version","method":"help"}},{{"userpass":"{u}","userpass":"x","method":"get_enabled_coins"}}]"#
        ),
        format!(
            r#"{{"method":"version",{}"a":1}}"#,
            r#""a":1,"#.repeat(10_000)
        ),
        format!(
            r#"{{"userpass":"{u}",{}"method":"get_enabled_coins"}}"#,
            r#""method":"version","#.repeat(1000)
        ),
    ];
    for s in samples {
        c.post(format!("duplicate keys {:?}", clip_str(&s, 80)), s);
    }
}

fn batches(c: &mut Corpus) {
    let w = c.world;
    let u = USERPASS;
    let singles = [
        json!(1),
        json!(-1),
        json!(1.5),
        json!("x"),
        json!(""),
        json!(null),
        json!(true),
        json!(false),
        json!([]),
        json!([[]]),
        json!([{"method": "version"}]),
        json!({}),
        json!({"method": null}),
    ];
    for s in &singles {
        c.post(format!("batch [{s}]"), to_body(&json!([s])));
        c.post(
            format!("batch [version, {s}, version]"),
            to_body(&json!([{"method": "version"}, s, {"method": "version"}])),
        );
    }
    c.post(
        "batch of all scalars",
        to_body(&Value::Array(singles.to_vec())),
    );
    c.post("empty batch", "[]");
    c.post("batch of batches", "[[[1]],[[{\"method\":\"version\"}]]]");
    c.post(
        "batch [null x 100]",
        to_body(&Value::Array(vec![Value::Null; 100])),
    );
    let mixed = json!([
        {"method": "version"},
        {"userpass": u, "method": "my_balance", "coin": ACTIVE},
        {"userpass": "wrong", "method": "get_enabled_coins"},
        {"mmrpc": "2.0", "userpass": u, "method": "get_enabled_coins", "id": 11},
        {"mmrpc": "1.0", "userpass": u, "method": "get_enabled_coins", "id": 12},
        {"method": "help"},
        {"method": "stop", "userpass": WRONG_PASS},
        {"userpass": u, "method": "electrum", "coin": "RICK", "servers": [{"url": w.closed_url, "timeout_sec": 1}]},
        {"userpass": u, "method": "disable_coin", "coin": "MARTY"},
        {"userpass": u, "method": "my_balance"},
        {"userpass": u, "method": "no_such_method"},
        null, 7, "x", [], {},
        {"userpass": u, "method": "get_enabled_coins"},
    ]);
    c.post("mixed valid and invalid batch", to_body(&mixed));
    let mut reversed = mixed.as_array().unwrap().clone();
    reversed.reverse();
    c.post("mixed batch reversed", to_body(&Value::Array(reversed)));
    c.post(
        "batch with a 1 MB item",
        to_body(&json!([{"method": "version"}, {"userpass": u, "method": "my_balance", "coin": "x".repeat(HUGE_LEN)}, {"method": "version"}])),
    );
    let items = |n: usize, v: Value| Value::Array(vec![v; n]);
    c.post(
        "batch at the item cap (versions)",
        to_body(&items(MAX_BATCH, json!({"method": "version"}))),
    );
    c.post(
        "batch one over the item cap",
        to_body(&items(MAX_BATCH + 1, json!({"method": "version"}))),
    );
    c.post(
        "batch at the item cap (nulls)",
        to_body(&items(MAX_BATCH, Value::Null)),
    );
    c.post("batch of 5000 nulls", to_body(&items(5000, Value::Null)));
    let ordered: Vec<Value> = (0..MAX_BATCH)
        .map(|i| json!({"userpass": u, "method": "my_balance", "coin": format!("C{i}")}))
        .collect();
    c.post(
        "batch at the item cap (my_balance C0..C999)",
        to_body(&Value::Array(ordered)),
    );
}

fn unknown_methods(c: &mut Corpus) {
    let u = USERPASS;
    let long = "a".repeat(10_000);
    let names = [
        "",
        " ",
        "version ",
        " version",
        "VERSION",
        "Version",
        "my_balance\u{0}",
        "get_enabled_coins\n",
        "électrum",
        "💥",
        long.as_str(),
        "__proto__",
        "constructor",
        "../../etc/passwd",
        "null",
        "stop;",
        "sell",
        // Out of scope (swaps, orderbook, ZHTLC, NFTs, Lightning): KDF's NoSuchMethod.
        "buy",
        "orderbook",
        "task::enable_z_coin::init",
        "get_nft_list",
        "enable_lightning",
    ];
    for name in names {
        let n = clip_str(name, 20);
        c.post(
            format!("unknown method {n:?} legacy+userpass"),
            to_body(&json!({"userpass": u, "method": name})),
        );
        c.post(
            format!("unknown method {n:?} legacy no userpass"),
            to_body(&json!({"method": name})),
        );
        c.post(
            format!("unknown method {n:?} legacy+extra field"),
            to_body(&json!({"userpass": u, "method": name, "coin": ACTIVE})),
        );
        c.post(
            format!("unknown method {n:?} v2"),
            to_body(&json!({"mmrpc": "2.0", "userpass": u, "method": name, "id": 4})),
        );
        c.post(
            format!("unknown method {n:?} v2 wrong userpass"),
            to_body(&json!({"mmrpc": "2.0", "userpass": "wrong", "method": name, "id": 4})),
        );
    }
}

fn envelope_versions(c: &mut Corpus) {
    let versions = [
        json!("1.0"),
        json!("2"),
        json!("2.0 "),
        json!(" 2.0"),
        json!("2.00"),
        json!("3.0"),
        json!("2.0\u{0}"),
        json!("v2"),
        json!(""),
        json!("２.０"),
        json!(2),
        json!(2.0),
        json!(true),
        json!([]),
        json!({}),
        json!(["2.0"]),
        json!({"version": "2.0"}),
        json!("x".repeat(100_000)),
    ];
    for ver in versions {
        for method in ["get_enabled_coins", "version", "my_balance"] {
            c.post(
                format!("mmrpc {} with {method}", clip_str(&ver.to_string(), 20)),
                to_body(&json!({"mmrpc": ver, "userpass": USERPASS, "method": method, "id": 9})),
            );
        }
    }
}

/// kdfd's JSON-RPC 2.0 dialect beyond the field mutations: notifications, odd ids and versions.
fn jsonrpc_extras(c: &mut Corpus) {
    let u = USERPASS;
    let samples = [
        json!({"jsonrpc": "2.0", "method": "version"}),
        json!({"jsonrpc": "2.0", "method": "no_such", "params": {"userpass": u}}),
        json!({"jsonrpc": "2.0", "method": "my_balance", "params": {"userpass": "wrong", "coin": ACTIVE}}),
        json!({"jsonrpc": "2.0", "id": [1], "method": "version"}),
        json!({"jsonrpc": "2.0", "id": {"a": 1}, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": true, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": null, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": -5, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": 1.5, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": "x".repeat(10_000), "method": "version"}),
        json!({"jsonrpc": "1.0", "id": 1, "method": "version"}),
        json!({"jsonrpc": null, "id": 1, "method": "version"}),
        json!({"jsonrpc": 2.0, "id": 1, "method": "version"}),
        json!({"jsonrpc": "2.0", "id": 1}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "version", "params": [1]}),
        json!({"jsonrpc": "2.0", "method": "version", "params": [1]}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "version", "extra": 1}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "version", "mmrpc": "2.0"}),
        json!({"jsonrpc": "2.0", "id": 1, "mmrpc": "2.0", "userpass": u, "method": "get_enabled_coins"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "get_enabled_coins", "params": {"userpass": u}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "help"}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "disable_coin", "params": {"userpass": u, "coin": "MARTY"}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "stop", "params": {"userpass": WRONG_PASS}}),
        json!([{"jsonrpc": "2.0", "method": "version"}]),
        json!([{"jsonrpc": "2.0", "method": "version"}, {"jsonrpc": "2.0", "method": "help"}]),
        json!([{"jsonrpc": "2.0", "method": "version"}, {"method": "version"}, {"jsonrpc": "2.0", "id": 9, "method": "version"}]),
        json!([{"jsonrpc": "2.0", "method": "version", "params": 5}, null]),
    ];
    for s in samples {
        c.post(format!("jsonrpc {}", clip(&s)), to_body(&s));
    }
    c.post(
        "jsonrpc unparsable",
        r#"{"jsonrpc":"2.0","id":1,"method":"version""#,
    );
    c.post(
        "jsonrpc unparsable batch",
        r#"[{"jsonrpc":"2.0","id":1,"method":"version"},"#,
    );
}

/// kdfd's per-method caps inside one batch.
fn method_caps(c: &mut Corpus) {
    let stop = json!({"method": "stop", "userpass": WRONG_PASS});
    c.post(
        "batch of 3 stops (wrong userpass)",
        to_body(&json!([stop, stop, {"method": "version"}, stop])),
    );
    c.post(
        "batch of 3 stops in three dialects",
        to_body(&json!([
            {"mmrpc": "2.0", "method": "stop", "userpass": WRONG_PASS, "id": 1},
            stop,
            {"mmrpc": "2.0", "method": "stop", "userpass": WRONG_PASS, "id": 2},
            {"jsonrpc": "2.0", "method": "stop", "id": 3, "params": {"userpass": WRONG_PASS}},
            {"jsonrpc": "2.0", "method": "stop", "params": {"userpass": WRONG_PASS}},
        ])),
    );
    c.post(
        "two JSON-RPC stops with ids of bad types",
        to_body(&json!([
            {"jsonrpc": "2.0", "method": "stop", "id": [1], "params": {"userpass": WRONG_PASS}},
            {"jsonrpc": "2.0", "method": "stop", "id": {"a": 1}, "params": {"userpass": WRONG_PASS}},
            {"jsonrpc": "2.0", "method": "stop", "id": true, "params": {"userpass": WRONG_PASS}},
        ])),
    );
    c.post(
        "JSON-RPC float ids",
        to_body(&json!([
            {"jsonrpc": "2.0", "method": "version", "id": 4.6873438104122405e303},
            {"jsonrpc": "2.0", "method": "version", "id": -1.0253888466604739e248},
            {"jsonrpc": "2.0", "method": "version", "id": 0.1},
        ])),
    );
    for method in ["electrum", "disable_coin"] {
        let item = json!({"method": method, "userpass": WRONG_PASS, "coin": "RICK"});
        c.post(
            format!("batch of 501 {method} (wrong userpass)"),
            to_body(&Value::Array(vec![item; 501])),
        );
    }
}

/// kdfd's atomic-batch envelope.
fn atomic_envelopes(c: &mut Corpus) {
    let u = USERPASS;
    let version = json!({"method": "version"});
    let balance = json!({"userpass": u, "method": "my_balance", "coin": ACTIVE});
    let samples = [
        json!({"batch": []}),
        json!({"atomicBatch": []}),
        json!({"batch": null, "atomicBatch": null}),
        json!({"batch": 1}),
        json!({"atomicBatch": "x"}),
        json!({"atomicBatch": {}}),
        json!({"batch": [version, null, 1], "atomicBatch": [version]}),
        json!({"atomicBatch": [version, balance, {"userpass": u, "method": "get_enabled_coins"}]}),
        json!({"atomicBatch": [balance, {"userpass": u, "method": "my_balance", "coin": "NOPE"}, version]}),
        json!({"atomicBatch": [version, {"method": "stop", "userpass": WRONG_PASS}]}),
        json!({"atomicBatch": [1]}),
        json!({"atomicBatch": [null, version]}),
        json!({"atomicBatch": [{"method": 5}]}),
        json!({"atomicBatch": [{"method": "nope", "userpass": u}]}),
        json!({"atomicBatch": [{"method": "my_balance", "userpass": u}]}),
        json!({"atomicBatch": [{"method": "my_balance", "userpass": "wrong", "coin": ACTIVE}]}),
        json!({"atomicBatch": [{"method": "electrum", "userpass": u, "coin": "RICK", "servers": [{"url": c.world.closed_url, "timeout_sec": 1}]}]}),
        json!({"atomicBatch": [balance, {"method": "disable_coin", "userpass": u, "coin": "MARTY"}]}),
        json!({"atomicBatch": [
            {"mmrpc": "2.0", "userpass": u, "method": "get_enabled_coins", "id": 1},
            {"jsonrpc": "2.0", "id": 2, "method": "version"},
            {"jsonrpc": "2.0", "id": 3, "method": "my_balance", "params": {"userpass": u, "coin": ACTIVE}},
        ]}),
        json!({"atomicBatch": [{"mmrpc": "2.0", "userpass": u, "method": "get_enabled_coins", "params": [1]}]}),
        json!({"atomicBatch": [version, {"jsonrpc": "2.0", "method": "version"}]}),
        json!({"batch": [balance, {"method": "stop", "userpass": WRONG_PASS}, {"method": "stop", "userpass": WRONG_PASS}], "atomicBatch": [balance]}),
        json!({"batch": Value::Array(vec![version.clone(); 600]), "atomicBatch": Value::Array(vec![version.clone(); 401])}),
        json!({"batch": Value::Array(vec![version.clone(); MAX_BATCH + 1])}),
        json!({"batch": [version], "extra": 1}),
        json!({"batch": [version], "method": "version"}),
    ];
    for s in samples {
        c.post(format!("atomic {}", clip(&s)), to_body(&s));
    }
}

fn http_methods(c: &mut Corpus) {
    let version = Bytes::from_static(b"{\"method\":\"version\"}");
    let only_post = Expect::LegacyErr("Only POST requests are supported!".into());
    for m in ["GET", "PUT", "DELETE", "PATCH", "FOO"] {
        c.raw(
            format!("HTTP {m} with a body"),
            m,
            version.clone(),
            only_post.clone(),
        );
        c.raw(
            format!("HTTP {m} empty"),
            m,
            Bytes::new(),
            only_post.clone(),
        );
    }
    c.raw("HTTP OPTIONS", "OPTIONS", Bytes::new(), Expect::Preflight);
    c.raw(
        "HTTP OPTIONS with a body",
        "OPTIONS",
        version,
        Expect::Preflight,
    );
}

/// Bodies exactly at, and one byte over, the body cap, in several shapes.
fn size_cap(c: &mut Corpus, cap: usize) {
    // {"method":"version","pad":"xxx…"} of exactly `len` bytes.
    let padded = |len: usize| {
        let shell = r#"{"method":"version","pad":""}"#.len();
        format!(
            r#"{{"method":"version","pad":"{}"}}"#,
            "x".repeat(len - shell)
        )
    };
    let spaced = |len: usize| {
        let body = r#"{"method":"version"}"#;
        format!("{}{body}", " ".repeat(len - body.len()))
    };
    let broken = |len: usize| format!("[{}", "1,".repeat(len / 2)).into_bytes()[..len].to_vec();
    let batch = |len: usize| {
        let item = r#"{"method":"version"},"#;
        let n = 10;
        let fixed = 2 + item.len() * (n - 1) + r#"{"method":"version","pad":""}"#.len();
        format!(
            "[{}{{\"method\":\"version\",\"pad\":\"{}\"}}]",
            item.repeat(n - 1),
            "y".repeat(len - fixed)
        )
    };
    for (len, tag) in [(cap, "at"), (cap + 1, "one over")] {
        for (shape, body) in [
            ("padded object", padded(len).into_bytes()),
            ("leading whitespace", spaced(len).into_bytes()),
            ("invalid JSON", broken(len)),
            ("batch", batch(len).into_bytes()),
        ] {
            assert_eq!(body.len(), len);
            c.post(format!("{shape} {tag} the {cap}-byte cap"), body);
        }
    }
    c.post(format!("twice the {cap}-byte cap"), padded(2 * cap));
}

// ---------------------------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------------------------

async fn send(
    addr: SocketAddr,
    http: &str,
    body: Bytes,
) -> Result<kdfd::client::RawResponse, String> {
    let call = async {
        let mut client = Client::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        client
            .send(http, body)
            .await
            .map_err(|e| format!("no response: {e}"))
    };
    match tokio::time::timeout(CASE_TIMEOUT, call).await {
        Ok(r) => r,
        Err(_) => Err(format!("no response within {CASE_TIMEOUT:?}")),
    }
}

async fn run_case(addr: SocketAddr, case: &Case) -> Option<String> {
    let result = match send(addr, case.http, case.body.clone()).await {
        Ok(r) => check(&case.expect, r.status, &r.headers, &r.body),
        Err(e) => Err(e),
    };
    result.err().map(|e| {
        format!(
            "[{}] {} {} ({} bytes)\n    -> {e}",
            case.name,
            case.http,
            clip_bytes(&case.body),
            case.body.len()
        )
    })
}

async fn alive(addr: SocketAddr) -> Result<(), String> {
    let r = send(
        addr,
        "POST",
        Bytes::from_static(b"{\"method\":\"version\"}"),
    )
    .await?;
    check(&Expect::Version, r.status, &r.headers, &r.body)
}

/// Runs the cases in chunks of `CHUNK` concurrent requests, each chunk followed by a `version`
/// check; returns the failures.
async fn run_all(k: &Kdfd, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for (n, chunk) in cases.chunks(CHUNK).enumerate() {
        let results = join_all(chunk.iter().map(|c| run_case(k.addr, c))).await;
        failures.extend(results.into_iter().flatten());
        if let Err(e) = alive(k.addr).await {
            failures.push(format!(
                "daemon stopped serving after chunk {n} (cases {}..{}): {e}\n{}",
                n * CHUNK,
                n * CHUNK + chunk.len(),
                clip_str(&k.stderr(), 2000)
            ));
            break;
        }
    }
    failures
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_corpus() {
    let started = Instant::now();
    let fake = FakeElectrum::start_tcp();
    let mut conf = base_conf(shipped_coins());
    conf["max_body_bytes"] = json!(MAIN_CAP);
    conf["max_batch_items"] = json!(MAX_BATCH);
    // A wrong userpass costs 250 ms by default, served one at a time per IP; the corpus has
    // hundreds of them, so it runs with a short delay (the path is the same).
    conf["auth_fail_delay_ms"] = json!(AUTH_DELAY_MS);
    // The corpus checks answer shapes, not lock-outs (tests/guesses.rs): its hundreds of wrong
    // userpasses from loopback would pass loopback's threshold.
    conf["auth_lockout_exempt_loopback"] = json!(true);
    let k = Kdfd::start(conf);
    let mut small_conf = base_conf(shipped_coins());
    small_conf["max_body_bytes"] = json!(SMALL_CAP);
    small_conf["max_batch_items"] = json!(MAX_BATCH);
    small_conf["auth_fail_delay_ms"] = json!(AUTH_DELAY_MS);
    small_conf["auth_lockout_exempt_loopback"] = json!(true);
    let small = Kdfd::start(small_conf);

    // One coin active (against the fake), so the success paths of my_balance and the coin lists
    // are part of the corpus.
    let (status, v) = k
        .post(
            &json!({"userpass": USERPASS, "method": "electrum", "coin": ACTIVE,
                      "servers": [{"url": fake.url(), "timeout_sec": 5}]}),
        )
        .await;
    assert_eq!(status, 200, "activating {ACTIVE} on the fake: {v}");

    let world = World {
        closed_url: closed_port_url(),
        tickers: support::shipped_tickers(),
        active: Some(ACTIVE.to_string()),
        fake_url: Some(fake.url()),
        cap: MAIN_CAP,
    };
    let mut corpus = Corpus::new(&world);
    type Generator = fn(&mut Corpus);
    let generators: [(&str, Generator); 14] = [
        ("field mutations", field_mutations),
        ("truncations", truncations),
        ("malformed JSON", malformed_json),
        ("invalid UTF-8", invalid_utf8),
        ("deep nesting", deep_nesting),
        ("duplicate keys", duplicate_keys),
        ("batches", batches),
        ("unknown methods", unknown_methods),
        ("envelope versions", envelope_versions),
        ("JSON-RPC", jsonrpc_extras),
        ("method caps", method_caps),
        ("atomic envelopes", atomic_envelopes),
        ("HTTP methods", http_methods),
        ("size cap", |c| size_cap(c, MAIN_CAP)),
    ];
    let mut per_kind = Vec::new();
    for (kind, generate) in generators {
        let before = corpus.cases.len();
        generate(&mut corpus);
        per_kind.push(format!("{kind} {}", corpus.cases.len() - before));
    }
    let main_cases = corpus.cases;

    let small_world = World {
        cap: SMALL_CAP,
        ..world
    };
    let mut small_corpus = Corpus::new(&small_world);
    size_cap(&mut small_corpus, SMALL_CAP);
    small_corpus.post(
        "1 MB my_balance on the small cap",
        to_body(
            &json!({"userpass": USERPASS, "method": "my_balance", "coin": "x".repeat(HUGE_LEN)}),
        ),
    );
    small_corpus.post("100000 × [ on the small cap", "[".repeat(100_000));
    let small_cases = small_corpus.cases;

    let built = started.elapsed();
    let mut failures = run_all(&k, &main_cases).await;
    failures.extend(run_all(&small, &small_cases).await);
    for d in [&k, &small] {
        if let Err(e) = alive(d.addr).await {
            failures.push(format!("daemon on {} not serving at the end: {e}", d.addr));
        }
    }
    let rss = rss_kb(k.pid());
    let small_rss = rss_kb(small.pid());
    let total = main_cases.len() + small_cases.len();
    eprintln!(
        "CORPUS {total} cases ({} on the main instance: {}; {} on the {SMALL_CAP}-byte-cap instance); built in {built:?}, ran in {:?}; RSS {rss} kB (cap instance {small_rss} kB); {} failures",
        main_cases.len(),
        per_kind.join(", "),
        small_cases.len(),
        started.elapsed() - built,
        failures.len()
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(total >= 200, "the corpus has only {total} cases");
    assert!(rss < RSS_LIMIT_KB, "kdfd RSS {rss} kB after the corpus");
    assert!(
        small_rss < RSS_LIMIT_KB,
        "kdfd RSS {small_rss} kB after the cap cases"
    );
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed (listed above)",
        failures.len()
    );
}
