//! One HTTP request: CORS preflight, method and size checks, JSON parsing, then a single item or a
//! batch. Any path is accepted and any content type is read as JSON, as KDF does; `GET /ws` is the
//! WebSocket endpoint (`ws`), whose messages go through the same `answer_body`.

use super::answer::Body as AnswerBody;
use super::auth::Caller;
use super::batch;
use super::error::RpcError;
use crate::ctx::Ctx;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// How much of an over-size body is read and thrown away before the 413 goes out: a client that
/// is still writing would otherwise see a broken pipe instead of the answer.
const OVERSIZE_DRAIN: usize = 32 * 1024 * 1024;

enum BodyError {
    TooLarge,
    Read(hyper::Error),
}

/// Reads the body up to `limit` bytes; past it, drains (bounded) and reports `TooLarge`.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyError::Read)?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit {
            if seen > limit.saturating_add(OVERSIZE_DRAIN) {
                break;
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if seen > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(buf.freeze())
}

/// Whether raw bytes mention a `"jsonrpc"` member.
fn memchr_jsonrpc(bytes: &[u8]) -> bool {
    bytes.windows(9).any(|w| w == b"\"jsonrpc\"")
}

/// The body of every response: a whole buffer, or the event stream.
pub type HttpBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;

/// The response type of every request.
pub type HttpResponse = Response<HttpBody>;

/// A whole-buffer body.
pub fn full(b: Bytes) -> HttpBody {
    Full::new(b).boxed_unsync()
}

fn respond(ctx: &Ctx, status: StatusCode, body: Bytes, content_type: &'static str) -> HttpResponse {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(origin) = HeaderValue::from_str(&ctx.config.rpccors) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    r
}

/// A parsed body's answer before it becomes an HTTP response or a WebSocket message: the status
/// and the body (JSON, `help`'s text, or empty when there is nothing to answer).
pub struct Answered {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body; empty for a 204 (only JSON-RPC notifications).
    pub body: Bytes,
}

impl Answered {
    fn nothing() -> Answered {
        Answered {
            status: StatusCode::NO_CONTENT,
            body: Bytes::new(),
        }
    }
}

/// Serialises an answer; one over `max_response_bytes` becomes an error instead.
fn render<T: serde::Serialize + ?Sized>(ctx: &Ctx, status: StatusCode, v: &T) -> Answered {
    // Cannot fail: every map key kdfd writes is a string.
    let body =
        serde_json::to_string(v).unwrap_or_else(|e| json!({ "error": e.to_string() }).to_string());
    sized(ctx, status, body)
}

/// An answer already rendered; one over `max_response_bytes` becomes an error instead.
fn sized(ctx: &Ctx, status: StatusCode, body: String) -> Answered {
    let limit = ctx.config.limits.max_response_bytes;
    if body.len() > limit {
        let msg = json!({"error": format!("Response of {} bytes is larger than the limit of {limit} bytes; split the batch", body.len())});
        return Answered {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Bytes::from(msg.to_string()),
        };
    }
    Answered {
        status,
        body: Bytes::from(body),
    }
}

/// A JSON response; one over `max_response_bytes` becomes an error instead.
pub fn json_response(ctx: &Ctx, status: StatusCode, v: &Value) -> HttpResponse {
    let a = render(ctx, status, v);
    respond(ctx, a.status, a.body, "application/json")
}

fn error_response(ctx: &Ctx, status: StatusCode, msg: impl Into<String>) -> HttpResponse {
    json_response(ctx, status, &json!({ "error": msg.into() }))
}

/// The password of an `Authorization: Basic` (password part) or `Bearer` header.
fn header_userpass(req: &Request<Incoming>) -> Option<String> {
    use bitcoin::base64::Engine;
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Some(rest.trim().to_string()),
        "basic" => {
            let decoded = bitcoin::base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            text.split_once(':').map(|(_, pass)| pass.to_string())
        }
        _ => None,
    }
}

/// Handles one HTTP request; never fails (every problem is a JSON error response).
pub async fn handle(ctx: Arc<Ctx>, ip: IpAddr, req: Request<Incoming>) -> HttpResponse {
    use super::door::{self, Route};
    // KDF routes the event stream by path, before anything else, whatever the HTTP method.
    let route = match req.uri().path() {
        super::sse::PATH => Route::Events,
        super::ws::PATH if req.method() == Method::GET => Route::Ws,
        _ => Route::Rpc,
    };
    // One front door for every route: Host (DNS rebinding), then Origin (cross-origin pages).
    if let Err(refused) = door::admit(&ctx, route, req.headers()) {
        return *refused;
    }
    match route {
        Route::Events => {
            let userpass = header_userpass(&req);
            return super::sse::handle(&ctx, ip, req, userpass).await;
        }
        Route::Ws => {
            let userpass = header_userpass(&req);
            return super::ws::handle(ctx, ip, req, userpass).await;
        }
        Route::Rpc => {}
    }
    let caller = Caller::new(ip, header_userpass(&req));
    if req.method() == Method::OPTIONS {
        let mut r = respond(&ctx, StatusCode::OK, Bytes::new(), "text/plain");
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Authorization"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("3600"),
        );
        return r;
    }
    if req.method() != Method::POST {
        return error_response(
            &ctx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "Only POST requests are supported!",
        );
    }
    let limits = &ctx.config.limits;
    let read = read_body(req.into_body(), limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.body_timeout, read).await {
        Err(_) => {
            return error_response(
                &ctx,
                StatusCode::REQUEST_TIMEOUT,
                "Request body was not received in time",
            )
        }
        Ok(Err(BodyError::TooLarge)) => {
            let mut r = error_response(
                &ctx,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "Request body is larger than the limit of {} bytes",
                    limits.max_body_bytes
                ),
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        Ok(Err(BodyError::Read(e))) => {
            return error_response(
                &ctx,
                StatusCode::BAD_REQUEST,
                format!("Could not read the request body: {e}"),
            )
        }
        Ok(Ok(bytes)) => bytes,
    };
    let a = answer_body(&ctx, &caller, &bytes, limits.max_batch_items).await;
    respond(&ctx, a.status, a.body, "application/json")
}

/// Answers one request body (a single item, a batch of at most `max_batch_items`, or an atomic
/// envelope) exactly as a POST does; the WebSocket endpoint sends its messages through here too.
pub async fn answer_body(
    ctx: &Arc<Ctx>,
    caller: &Caller,
    bytes: &[u8],
    max_batch_items: usize,
) -> Answered {
    // KDF answers an unparsable body with 500 and serde's message (which quotes no input).
    let parsed: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(ip = %caller.ip, bytes = bytes.len(), error = %e, "unparsable body");
            // A body that speaks JSON-RPC gets its parse error (-32700) in that dialect.
            if memchr_jsonrpc(bytes) {
                let v = super::jsonrpc::parse_error(&e.to_string());
                return render(ctx, StatusCode::INTERNAL_SERVER_ERROR, &v);
            }
            return render(
                ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": e.to_string() }),
            );
        }
    };
    tracing::debug!(
        ip = %caller.ip,
        bytes = bytes.len(),
        items = parsed.as_array().map_or(1, Vec::len),
        "request"
    );
    match parsed {
        Value::Array(items) => {
            if items.len() > max_batch_items {
                let (status, v) = RpcError::BatchTooLarge(items.len(), max_batch_items).legacy();
                return render(ctx, status, &v);
            }
            let was_empty = items.is_empty();
            let slots = batch::run(ctx, caller, items).await;
            if slots.is_empty() && !was_empty {
                // Only JSON-RPC notifications: nothing to answer.
                return Answered::nothing();
            }
            render(ctx, StatusCode::OK, &slots)
        }
        Value::Object(obj) if super::atomic::is_envelope(&obj) => {
            match super::atomic::run(ctx, caller, obj).await {
                Ok(v) => render(ctx, StatusCode::OK, &v),
                Err(e) => {
                    let (status, v) = e.legacy();
                    render(ctx, status, &v)
                }
            }
        }
        single => {
            let answer = batch::run_item(ctx, caller, single).await;
            match answer.body {
                AnswerBody::Json(v) => render(ctx, answer.status, &v),
                AnswerBody::Raw(t) => sized(ctx, answer.status, String::from(Box::<str>::from(t))),
                AnswerBody::Text(t) => Answered {
                    status: answer.status,
                    body: Bytes::from(t),
                },
                AnswerBody::Nothing => Answered::nothing(),
            }
        }
    }
}
