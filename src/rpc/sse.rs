//! `/event-stream?id=<u64>`: KDF's SSE endpoint, routed by path before any RPC handling, any HTTP
//! method. kdfd extensions (docs/events.md): a `: ok` comment on connect, a keep-alive comment
//! every 15 s, a reconnect with an open id takes over instead of failing, opt-in `id:` fields with
//! `Last-Event-ID` replay, and the userpass when listening on a non-loopback address.

use super::http::{self, HttpBody, HttpResponse};
use crate::ctx::Ctx;
use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

/// The path KDF routes to the event stream.
pub const PATH: &str = "/event-stream";
/// How often an idle stream gets a comment, so proxies and clients see it is alive.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `%XX` and `+` decoding of one query value.
fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The decoded value of a query parameter.
pub(super) fn param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| decode(v))
}

fn plain(status: StatusCode, text: &'static str) -> HttpResponse {
    let mut r = Response::new(http::full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// Answers one `/event-stream` request (the front door has checked `Host` and `Origin`).
pub async fn handle(
    ctx: &Ctx,
    ip: IpAddr,
    req: Request<Incoming>,
    header_userpass: Option<String>,
) -> HttpResponse {
    if !ctx.config.event_stream_enabled {
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Event streaming is disabled",
        );
    }
    let query = req.uri().query().unwrap_or("");
    if !ctx.config.rpcip.is_loopback() {
        // Through the brute-force guard, as every other userpass check.
        let given = param(query, "userpass")
            .or(header_userpass)
            .map(serde_json::Value::String);
        let caller = super::auth::Caller::new(ip, None);
        if let Err(e) = super::auth::check(ctx, &caller, given.as_ref()).await {
            let status = match e {
                super::error::RpcError::LockedOut(_) => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::FORBIDDEN,
            };
            let mut r = plain(status, "Userpass is invalid!");
            if let super::error::RpcError::LockedOut(secs) = e {
                *r.body_mut() = http::full(Bytes::from(format!(
                    "Too many failed attempts: locked out, retry in {secs} s"
                )));
            }
            return r;
        }
    }
    // Held by the body until the stream ends, so streams leave room for RPC connections.
    let Ok(stream_slot) = ctx.streams.clone().try_acquire_owned() else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many event streams and WebSockets open (max_stream_connections); retry shortly",
        );
    };
    // KDF: a missing or non-numeric id means client 0.
    let id = param(query, "id")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let last_seen = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let with_ids =
        last_seen.is_some() || param(query, "event_ids").is_some_and(|v| v == "1" || v == "true");
    let conn = ctx.events.connect(id, last_seen);
    tracing::debug!(client = id, with_ids, "event stream opened");
    let mut r = Response::new(body(conn, with_ids, stream_slot));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // No configured origin: no CORS header, so no other origin's page may read the stream.
    if let Some(o) = ctx.config.event_stream_origin.as_deref() {
        if let Ok(o) = HeaderValue::from_str(o) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        }
    }
    r
}

/// The stream body: `: ok`, then frames as they come, comments when idle; ends when the
/// connection is taken over or the daemon shuts down. Dropping it (client gone) drops the
/// `Connection`, which unsubscribes the client.
fn body(
    conn: crate::events::Connection,
    with_ids: bool,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> HttpBody {
    struct State {
        conn: crate::events::Connection,
        hello: bool,
        _slot: tokio::sync::OwnedSemaphorePermit,
    }
    let state = State {
        conn,
        hello: true,
        _slot: slot,
    };
    let frames = futures_util::stream::unfold(state, move |mut s| async move {
        if s.hello {
            s.hello = false;
            return Some((Bytes::from_static(b": ok\n\n"), s));
        }
        match tokio::time::timeout(KEEP_ALIVE, s.conn.rx.recv()).await {
            Err(_) => Some((Bytes::from_static(b": keep-alive\n\n"), s)),
            Ok(None) => None,
            Ok(Some(f)) if with_ids => {
                let mut b = format!("id: {}\n", f.seq).into_bytes();
                b.extend_from_slice(&f.data);
                Some((Bytes::from(b), s))
            }
            Ok(Some(f)) => Some((f.data, s)),
        }
    });
    let frames = futures_util::StreamExt::map(frames, |b| Ok::<_, Infallible>(Frame::data(b)));
    StreamBody::new(frames).boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::{decode, param};

    #[test]
    fn query_values() {
        assert_eq!(
            param("id=7&userpass=a%21b+c", "userpass").as_deref(),
            Some("a!b c")
        );
        assert_eq!(param("id=7", "id").as_deref(), Some("7"));
        assert_eq!(param("idx=7", "id"), None);
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%41"), "%zzA");
    }
}
