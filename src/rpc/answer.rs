//! What one item answers, whatever its dialect: `Answer` (status + body), the dialect of an item
//! and the `Head` (method, coin, userpass) the edge reads of it once. No I/O, no handler calls:
//! batches, atomic batches, the envelopes and JSON-RPC all build their answers from here.

use super::error::RpcError;
use hyper::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

/// What a single request answers: a status and a JSON or plain-text body.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status when answered alone (dropped inside a batch, as KDF does).
    pub status: StatusCode,
    /// The body.
    pub body: Body,
}

/// An answer body.
#[derive(Debug)]
pub enum Body {
    /// JSON: the batch slot is this value.
    Json(Value),
    /// JSON text rendered once from a typed answer: the batch slot is this text, as it is.
    Raw(Box<RawValue>),
    /// Plain text (`help`): the batch slot is `null`.
    Text(String),
    /// A JSON-RPC 2.0 notification: no slot at all.
    Nothing,
}

/// The three request dialects kdfd answers, each in its own shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// KDF's legacy envelope: no `mmrpc`.
    Legacy,
    /// KDF's `"mmrpc": "2.0"` envelope.
    MmRpc,
    /// JSON-RPC 2.0 (`"jsonrpc"` present): a kdfd extension.
    JsonRpc,
}

impl Dialect {
    /// The dialect an item asks for.
    pub fn of(item: &Value) -> Dialect {
        if item.get("jsonrpc").is_some() {
            Dialect::JsonRpc
        } else if item.get("mmrpc").is_some_and(|v| !v.is_null()) {
            Dialect::MmRpc
        } else {
            Dialect::Legacy
        }
    }
}

/// What the edge reads of an item once, whatever its dialect: batches, atomic batches and the
/// time-out answer all use this, so they agree on what `coin` is.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The envelope.
    pub dialect: Dialect,
    /// `method`, when a string.
    pub method: Option<&'a str>,
    /// Legacy `coin`; v2 and JSON-RPC `params.coin` or `params.ticker`.
    pub coin: Option<&'a str>,
    /// The item's `userpass` (JSON-RPC: inside `params`).
    pub userpass: Option<&'a Value>,
}

impl<'a> Head<'a> {
    /// Reads the head of an item.
    pub fn of(item: &'a Value) -> Head<'a> {
        let dialect = Dialect::of(item);
        let method = item.get("method").and_then(Value::as_str);
        let params = item.get("params");
        let coin_in = |v: Option<&'a Value>| {
            v.and_then(|v| v.get("coin").or_else(|| v.get("ticker")))
                .and_then(Value::as_str)
        };
        let (coin, userpass) = match dialect {
            Dialect::Legacy => (
                item.get("coin").and_then(Value::as_str),
                item.get("userpass"),
            ),
            Dialect::MmRpc => (coin_in(params), item.get("userpass")),
            Dialect::JsonRpc => (coin_in(params), params.and_then(|p| p.get("userpass"))),
        };
        Head {
            dialect,
            method,
            coin,
            userpass,
        }
    }
}

impl Answer {
    /// A JSON answer.
    pub fn json(status: StatusCode, v: Value) -> Answer {
        Answer {
            status,
            body: Body::Json(v),
        }
    }

    /// An answer already rendered to JSON text.
    pub fn raw(status: StatusCode, v: Box<RawValue>) -> Answer {
        Answer {
            status,
            body: Body::Raw(v),
        }
    }

    /// A legacy error answer.
    pub fn legacy_error(e: &RpcError) -> Answer {
        let (status, v) = e.legacy();
        Answer::json(status, v)
    }

    /// An error answer in the dialect of `item`.
    pub fn error_for(item: &Value, e: &RpcError) -> Answer {
        Answer::error_in(Dialect::of(item), item.get("id").cloned(), e)
    }

    /// An error answer in a dialect; `id` is the request's `id` member, if it had one.
    pub fn error_in(dialect: Dialect, id: Option<Value>, e: &RpcError) -> Answer {
        match dialect {
            Dialect::Legacy => Answer::legacy_error(e),
            Dialect::MmRpc => {
                let (status, v) = e.v2(id.as_ref().and_then(Value::as_u64));
                Answer::json(status, v)
            }
            // No `id` member: a notification, which gets no answer even when it fails.
            Dialect::JsonRpc => match id {
                None => Answer {
                    status: StatusCode::NO_CONTENT,
                    body: Body::Nothing,
                },
                // JSON-RPC allows string, number or null ids; any other is answered as null.
                Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => {
                    Answer::json(StatusCode::OK, e.jsonrpc(id))
                }
                Some(_) => Answer::json(StatusCode::OK, e.jsonrpc(Value::Null)),
            },
        }
    }

    /// The batch slot of this answer as a tree, for callers that read it (atomic batches);
    /// `None` for a notification.
    pub fn into_slot(self) -> Option<Value> {
        self.into_json().map(Json::into_tree)
    }

    /// The batch slot of this answer, as it is; `None` for a notification.
    pub fn into_json(self) -> Option<Json> {
        match self.body {
            Body::Json(v) => Some(Json::Tree(v)),
            Body::Raw(t) => Some(Json::Text(t)),
            Body::Text(_) => Some(Json::Tree(Value::Null)),
            Body::Nothing => None,
        }
    }
}

/// A JSON answer or batch slot: a tree, or text rendered once from a typed answer. Both serialise
/// as the JSON they are, so a batch is written out without re-building the text ones.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Json {
    /// A `Value` tree.
    Tree(Value),
    /// Rendered JSON text.
    Text(Box<RawValue>),
}

impl Json {
    /// As a tree, for the few callers that read a slot (atomic batches, tests).
    pub fn into_tree(self) -> Value {
        match self {
            Json::Tree(v) => v,
            // Text this process rendered is valid JSON; `Null` only if that ever broke.
            Json::Text(t) => serde_json::from_str(t.get()).unwrap_or(Value::Null),
        }
    }
}

/// Renders `v` to JSON text (a handler's typed answer, an envelope around one).
pub fn to_raw<T: Serialize + ?Sized>(v: &T) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(v).map_err(|e| RpcError::Internal(e.to_string()))
}

/// A short name of a JSON value's type, for messages.
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
