//! The front door every route (`/`, `/event-stream`, `/ws`) goes through before anything else.
//!
//! - `Host`: a loopback name or IP (`localhost`, `127.0.0.0/8`, `[::1]`), the configured `rpcip`
//!   (any IP literal when `rpcip` is unspecified, `0.0.0.0` or `::`) or a name listed in
//!   `rpc_allowed_hosts`; else 421. A page served from a DNS-rebinding domain (`evil.example`
//!   resolving to 127.0.0.1) sends its own name, so it never reaches a handler. An IP literal
//!   cannot be rebound. A request without `Host` is let in: every browser sends one, so a missing
//!   `Host` is a raw tool (HTTP/1.0, a test's socket), never a page.
//! - `Origin`: a browser's cross-origin request carries it; it must be one the route allows
//!   (`rpccors` for `/` and `/ws`, `event_streaming_configuration.access_control_allow_origin`
//!   for `/event-stream`, `*` allowing any), else 403. A no-cors request (an `<img>`, a
//!   `fetch(..., {mode: "no-cors"})`) may carry no `Origin`, but a browser marks it
//!   `Sec-Fetch-Site: cross-site` or `same-site`: refused too unless the route allows `*`.

use super::http::{self, HttpResponse};
use crate::ctx::Ctx;
use hyper::header::{self, HeaderMap};
use hyper::StatusCode;
use serde_json::json;
use std::net::IpAddr;

/// Which origins a route lets in.
#[derive(Clone, Copy)]
pub enum Route {
    /// `/` and every other path: `rpccors`.
    Rpc,
    /// `/ws`: `rpccors`, as a POST.
    Ws,
    /// `/event-stream`: its own key; none when the key is absent.
    Events,
}

/// The host part of a `Host` value, lower-case, without port or trailing dot; `None` if malformed.
fn host_part(value: &str) -> Option<String> {
    let v = value.trim();
    let host = if let Some(rest) = v.strip_prefix('[') {
        let (inner, tail) = rest.split_once(']')?;
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        inner
    } else {
        match v.rsplit_once(':') {
            Some((h, port)) if is_port(port) => h,
            Some(_) => return None,
            None => v,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a `Host` value names this daemon in a way no rebinding domain can.
pub fn host_allowed(value: &str, rpcip: IpAddr, extra: &[String]) -> bool {
    let Some(host) = host_part(value) else {
        return false;
    };
    if extra.iter().any(|h| h == "*" || *h == host) {
        return true;
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        let ip = ip.to_canonical();
        return ip.is_loopback() || ip == rpcip.to_canonical() || rpcip.is_unspecified();
    }
    host == "localhost"
}

/// Whether a request's `Origin` (or, without one, its `Sec-Fetch-Site`) is let in by `allowed`
/// (`None`: no cross-origin access at all).
pub fn origin_allowed(headers: &HeaderMap, allowed: Option<&str>) -> bool {
    let any = allowed == Some("*");
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            any || match (origin.to_str(), allowed) {
                (Ok(o), Some(a)) => {
                    let o = o.trim().trim_end_matches('/');
                    o.eq_ignore_ascii_case(a.trim().trim_end_matches('/'))
                }
                _ => false,
            }
        }
        None => {
            any || !headers
                .get("sec-fetch-site")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|s| {
                    s.eq_ignore_ascii_case("cross-site") || s.eq_ignore_ascii_case("same-site")
                })
        }
    }
}

/// The shortened, printable form of a header value for an error message.
fn shown(v: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(v)
        .chars()
        .filter(|c| !c.is_control())
        .take(80)
        .collect();
    s
}

/// `Ok` if the request may go on to its route; else the answer it gets.
pub fn admit(ctx: &Ctx, route: Route, headers: &HeaderMap) -> Result<(), Box<HttpResponse>> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let (first, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return Err(refuse(
            ctx,
            StatusCode::BAD_REQUEST,
            "More than one Host header".to_string(),
        ));
    }
    if let Some(h) = first {
        let ok = h
            .to_str()
            .is_ok_and(|v| host_allowed(v, ctx.config.rpcip, &ctx.config.rpc_allowed_hosts));
        if !ok {
            tracing::debug!(host = %shown(h.as_bytes()), "refused: Host not allowed");
            return Err(refuse(
                ctx,
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "Host '{}' is not allowed: kdfd answers only loopback names, rpcip and the names in rpc_allowed_hosts",
                    shown(h.as_bytes())
                ),
            ));
        }
    }
    let allowed = match route {
        Route::Rpc | Route::Ws => Some(ctx.config.rpccors.as_str()),
        Route::Events => ctx.config.event_stream_origin.as_deref(),
    };
    if !origin_allowed(headers, allowed) {
        let origin = headers
            .get(header::ORIGIN)
            .map_or_else(|| "(none)".to_string(), |o| shown(o.as_bytes()));
        tracing::debug!(%origin, "refused: cross-origin request");
        let key = match route {
            Route::Rpc | Route::Ws => "rpccors",
            Route::Events => "event_streaming_configuration.access_control_allow_origin",
        };
        return Err(refuse(
            ctx,
            StatusCode::FORBIDDEN,
            format!("Origin '{origin}' is not allowed: a cross-origin request needs its origin in {key}"),
        ));
    }
    Ok(())
}

fn refuse(ctx: &Ctx, status: StatusCode, msg: String) -> Box<HttpResponse> {
    let mut r = http::json_response(ctx, status, &json!({ "error": msg }));
    r.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    Box::new(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn hosts() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:7783",
            "127.1.2.3:80",
            "localhost",
            "LocalHost.:7783",
            "[::1]:7783",
            "[::1]",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(host_allowed(ok, LO, &[]), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:7783",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]:7783",
            "127.0.0.1:x",
            "127.0.0.1:7783:1",
            "",
            "[::1",
        ] {
            assert!(!host_allowed(bad, LO, &[]), "{bad}");
        }
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        assert!(host_allowed("192.168.1.5:7783", lan, &[]));
        assert!(!host_allowed("192.168.1.6:7783", lan, &[]));
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        assert!(host_allowed("192.168.1.6:7783", any, &[]));
        assert!(!host_allowed("wallet.lan:7783", any, &[]));
        assert!(host_allowed("wallet.lan:7783", any, &["wallet.lan".into()]));
        assert!(host_allowed("anything", LO, &["*".into()]));
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins() {
        let gui = Some("http://localhost:3000");
        assert!(origin_allowed(&headers(&[]), gui));
        assert!(origin_allowed(&headers(&[]), None));
        assert!(origin_allowed(
            &headers(&[("origin", "http://localhost:3000")]),
            gui
        ));
        assert!(!origin_allowed(
            &headers(&[("origin", "http://evil.example")]),
            gui
        ));
        assert!(!origin_allowed(&headers(&[("origin", "null")]), gui));
        assert!(!origin_allowed(
            &headers(&[("origin", "http://localhost:3000")]),
            None
        ));
        assert!(origin_allowed(
            &headers(&[("origin", "http://evil.example")]),
            Some("*")
        ));
        assert!(!origin_allowed(
            &headers(&[("sec-fetch-site", "cross-site")]),
            gui
        ));
        assert!(origin_allowed(&headers(&[("sec-fetch-site", "none")]), gui));
        assert!(origin_allowed(
            &headers(&[("sec-fetch-site", "cross-site")]),
            Some("*")
        ));
    }
}
