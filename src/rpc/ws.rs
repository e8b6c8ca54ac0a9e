//! `GET /ws`: the RPC over WebSocket (RFC 6455, via tokio-tungstenite on the socket hyper
//! upgraded). Each text message is one request body (a single item, a batch or an atomic
//! envelope) answered by `http::answer_body`, exactly as a POST, with a batch cap of its own
//! (`ws_max_batch_items`, 20). `?client_id=N` on the upgrade URL also delivers that event client's
//! frames on the socket as text messages `{"_type":..,"message":..}` (see docs/rpc.md).
//!
//! Bounds: the connection keeps its server connection slot; messages past `ws_max_message_bytes`
//! close with 1009, binary messages with 1003; at most `INFLIGHT` messages run at once (then the
//! socket is not read); answers leave in message order through a queue of `OUT_QUEUE`, and a
//! client that lets it fill (it does not read) is dropped.

use super::auth::Caller;
use super::http::{self, HttpResponse};
use crate::ctx::Ctx;
use crate::events::Connection as EventClient;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesOrdered, SplitSink};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// The path of the WebSocket endpoint.
pub const PATH: &str = "/ws";
/// Messages of one socket being answered at once; past it the socket is not read.
const INFLIGHT: usize = 16;
/// Outgoing messages (answers and events) waiting for the client; a full queue drops it.
const OUT_QUEUE: usize = 64;
/// How long one write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing socket waits for the client's close reply.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the accept loop gives each request of a connection, so a WebSocket it upgrades to keeps
/// the connection's slot, hears the drain and holds it up until it has closed.
#[derive(Clone)]
pub struct Slot {
    /// The connection slot (shared with the HTTP connection).
    pub permit: Arc<super::server::ConnPermit>,
    /// Becomes true when the server drains.
    pub draining: watch::Receiver<bool>,
    /// Held until the socket is closed; the drain waits for every holder.
    pub drained: mpsc::Sender<()>,
}

type Socket = WebSocketStream<TokioIo<Upgraded>>;

fn error_json(ctx: &Ctx, status: StatusCode, text: &str) -> HttpResponse {
    http::json_response(ctx, status, &json!({ "error": text }))
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Answers a `GET /ws`: checks the handshake, answers 101 and serves the socket in its own task.
pub async fn handle(
    ctx: Arc<Ctx>,
    ip: IpAddr,
    mut req: Request<Incoming>,
    header_userpass: Option<String>,
) -> HttpResponse {
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    let (true, true, Some(key)) = (
        header_has(&req, header::UPGRADE, "websocket"),
        header_has(&req, header::CONNECTION, "upgrade"),
        key,
    ) else {
        let mut r = error_json(
            &ctx,
            StatusCode::UPGRADE_REQUIRED,
            "This path is the WebSocket endpoint: send a WebSocket upgrade",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        let mut r = error_json(
            &ctx,
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version",
        );
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let client_id = match super::sse::param(&query, "client_id") {
        None => None,
        Some(v) => match v.parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => return error_json(&ctx, StatusCode::BAD_REQUEST, "client_id must be a u64"),
        },
    };
    if client_id.is_some() {
        // The same rules as `/event-stream`, with the brute-force guard on the userpass.
        if !ctx.config.event_stream_enabled {
            return error_json(
                &ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Event streaming is disabled",
            );
        }
        if !ctx.config.rpcip.is_loopback() {
            let given = super::sse::param(&query, "userpass").or(header_userpass.clone());
            let given = given.map(serde_json::Value::String);
            let caller = Caller::new(ip, None);
            if let Err(e) = super::auth::check(&ctx, &caller, given.as_ref()).await {
                let (status, v) = e.legacy();
                return http::json_response(&ctx, status, &v);
            }
        }
    }
    // A stream slot, kept until the socket closes, so sockets and event streams together leave
    // room for RPC connections.
    let Ok(stream_slot) = ctx.streams.clone().try_acquire_owned() else {
        return error_json(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many event streams and WebSockets open (max_stream_connections); retry shortly",
        );
    };
    let slot = req.extensions_mut().remove::<Slot>();
    let upgrade = hyper::upgrade::on(&mut req);
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let task_ctx = ctx.clone();
    tokio::spawn(async move {
        let upgraded = match upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "websocket upgrade failed");
                return;
            }
        };
        let max = task_ctx.config.limits.ws_max_message_bytes;
        let config = WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        // Connected only now, so a failed upgrade leaves no event client behind.
        let events = client_id.map(|id| task_ctx.events.connect(id, None));
        tracing::debug!(%ip, client = ?client_id, "websocket opened");
        let (permit, draining, drained) = match slot {
            Some(Slot {
                permit,
                draining,
                drained,
            }) => (Some(permit), Some(draining), Some(drained)),
            None => (None, None, None),
        };
        serve(task_ctx, ip, header_userpass, socket, events, draining).await;
        tracing::debug!(%ip, "websocket closed");
        // Only now is the slot free and the drain no longer waiting for this socket.
        drop((permit, drained, stream_slot));
    });
    let mut r = Response::new(http::full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// How the read loop ended.
enum End {
    /// The client closed or went away.
    Gone,
    /// We close with this code and reason.
    Close(CloseCode, &'static str),
    /// Drop the socket without a close handshake (the client does not read).
    Abort,
}

/// One message's answer: `None` when there is nothing to send (only notifications).
fn answer(
    ctx: Arc<Ctx>,
    caller: Caller,
    text: tungstenite::Utf8Bytes,
) -> BoxFuture<'static, Option<Message>> {
    async move {
        let max = ctx.config.limits.ws_max_batch_items;
        // As over HTTP, a panicking handler answers an error instead of killing the socket.
        let work = http::answer_body(&ctx, &caller, text.as_bytes(), max);
        let body = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
            Ok(a) => a.body,
            Err(_) => {
                tracing::error!("request handler panicked");
                Bytes::from(
                    json!({"error": "The RPC service aborted without responding."}).to_string(),
                )
            }
        };
        if body.is_empty() {
            return None;
        }
        tungstenite::Utf8Bytes::try_from(body)
            .ok()
            .map(Message::Text)
    }
    .boxed()
}

/// The event's JSON out of the hub's SSE frame (`data: {...} \n\n`).
fn event_text(data: &[u8]) -> Option<Message> {
    let json = data.strip_prefix(b"data: ")?;
    let json = json
        .strip_suffix(b" \n\n")
        .or_else(|| json.strip_suffix(b"\n\n"))?;
    tungstenite::Utf8Bytes::try_from(Bytes::copy_from_slice(json))
        .ok()
        .map(Message::Text)
}

async fn next_event(events: &mut Option<EventClient>) -> Option<crate::events::Frame> {
    match events {
        Some(c) => c.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn drained(draining: &mut Option<watch::Receiver<bool>>) {
    match draining {
        Some(rx) => {
            let _ = rx.wait_for(|d| *d).await;
        }
        None => std::future::pending().await,
    }
}

/// Writes queued messages; ends on a close frame, a write error or a write stuck past the timeout.
async fn write_loop(mut sink: SplitSink<Socket, Message>, mut rx: mpsc::Receiver<Message>) {
    while let Some(m) = rx.recv().await {
        let closing = matches!(m, Message::Close(_));
        match tokio::time::timeout(WRITE_TIMEOUT, sink.send(m)).await {
            Ok(Ok(())) if !closing => {}
            _ => return,
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}

async fn serve(
    ctx: Arc<Ctx>,
    ip: IpAddr,
    header_userpass: Option<String>,
    socket: Socket,
    mut events: Option<EventClient>,
    mut draining: Option<watch::Receiver<bool>>,
) {
    let (sink, mut stream) = socket.split();
    let (out, out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let mut writer = tokio::spawn(write_loop(sink, out_rx));
    let mut inflight: FuturesOrdered<BoxFuture<'static, Option<Message>>> = FuturesOrdered::new();
    let end = loop {
        let mut queued = None;
        tokio::select! {
            Some(answer) = inflight.next(), if !inflight.is_empty() => queued = answer,
            frame = next_event(&mut events) => match frame {
                Some(f) => queued = event_text(&f.data),
                // Taken over by another connection with the same id: RPC goes on, events stop.
                None => events = None,
            },
            msg = stream.next(), if inflight.len() < INFLIGHT => match msg {
                None => break End::Gone,
                Some(Ok(Message::Text(text))) => {
                    // One caller per message: a message is one attempt for the brute-force guard.
                    let caller = Caller::new(ip, header_userpass.clone());
                    inflight.push_back(answer(ctx.clone(), caller, text));
                }
                Some(Ok(Message::Binary(_))) => {
                    break End::Close(CloseCode::Unsupported, "binary messages are not supported: send JSON as text");
                }
                // tungstenite answers pings and the close handshake itself.
                Some(Ok(Message::Close(_))) => break End::Gone,
                Some(Ok(_)) => {}
                Some(Err(tungstenite::Error::Capacity(_))) => {
                    break End::Close(CloseCode::Size, "message is larger than ws_max_message_bytes");
                }
                Some(Err(tungstenite::Error::Utf8(_))) => {
                    break End::Close(CloseCode::Invalid, "text message is not UTF-8");
                }
                Some(Err(e)) => {
                    tracing::debug!(%ip, error = %e, "websocket read failed");
                    break End::Abort;
                }
            },
            _ = drained(&mut draining) => break End::Close(CloseCode::Away, "shutting down"),
            _ = &mut writer => break End::Abort,
        }
        if let Some(m) = queued {
            if out.try_send(m).is_err() {
                tracing::warn!(%ip, "websocket client is not reading: dropping it");
                break End::Abort;
            }
        }
    };
    drop(events);
    match end {
        End::Abort => writer.abort(),
        End::Gone | End::Close(..) => {
            if let End::Close(code, reason) = end {
                tracing::debug!(%ip, ?code, reason, "closing websocket");
                let frame = CloseFrame {
                    code,
                    reason: reason.into(),
                };
                let _ = out.try_send(Message::Close(Some(frame)));
            }
            drop(out);
            // Let the close frame (ours or tungstenite's reply) go out and the client answer it.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let _ = (&mut writer).await;
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
            writer.abort();
        }
    }
}
