//! The accept loop: a connection limit and a per-address one (503 past them), header timeouts, one task per connection
//! (a panicking request answers 500 on it), and a graceful shutdown that answers what is in flight.
//! Connections allow upgrades (`/ws`); a WebSocket keeps its connection slot until it closes.

use super::http::{self, HttpResponse};
use crate::ctx::Ctx;
use hyper::service::service_fn;
use hyper::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// Serves RPC on `listener` until `shutdown` resolves or a `stop` request arrives, then lets
/// in-flight requests finish (up to the drain timeout) and returns.
pub async fn run(listener: TcpListener, ctx: Arc<Ctx>, shutdown: impl Future<Output = ()>) {
    let limits = ctx.config.limits.clone();
    // hyper-util's GracefulShutdown does not take upgradeable HTTP/1 connections, so the drain is
    // ours: `draining` asks every connection to finish, and each holds a `drained` sender until
    // it has (the receiver sees the end once all are dropped).
    let draining = watch::channel(false).0;
    let (drained, mut all_drained) = mpsc::channel::<()>(1);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_ip: PerIp = Arc::default();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    let pruner = {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                ctx.auth.prune();
            }
        })
    };
    let task_events =
        crate::events::streamers::forward_tasks(ctx.events.clone(), ctx.tasks.subscribe());
    let history_events =
        crate::events::streamers::forward_history(ctx.events.clone(), ctx.history.subscribe());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
            _ = ctx.shutdown_requested() => break,
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let ip = peer.ip();
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            refuse(&builder, io, &ctx, "Too many connections; retry shortly");
            continue;
        };
        let Some(from_ip) = IpSlot::take(&per_ip, ip, limits.per_ip()) else {
            refuse(
                &builder,
                io,
                &ctx,
                "Too many connections from this address (max_connections_per_ip); retry shortly",
            );
            continue;
        };
        let permit = ConnPermit {
            _slot: permit,
            _from_ip: from_ip,
        };
        let ctx = ctx.clone();
        // Shared with a WebSocket the connection upgrades to, which outlives the HTTP connection.
        let permit = Arc::new(permit);
        let slot = super::ws::Slot {
            permit: permit.clone(),
            draining: draining.subscribe(),
            drained: drained.clone(),
        };
        let svc = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            let ctx = ctx.clone();
            req.extensions_mut().insert(slot.clone());
            async move { Ok::<_, Infallible>(guarded(ctx, ip, req).await) }
        });
        let conn = builder.serve_connection(io, svc).with_upgrades();
        let mut stop = draining.subscribe();
        let drained = drained.clone();
        tokio::spawn(async move {
            tokio::pin!(conn);
            let ended = tokio::select! {
                ended = conn.as_mut() => ended,
                // The guard `wait_for` returns must not live across the await below.
                _ = async { drop(stop.wait_for(|d| *d).await) } => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
            drop(drained);
        });
    }
    drop(listener);
    pruner.abort();
    task_events.abort();
    history_events.abort();
    // Event streams never end by themselves: close them (after what they queued, such as the
    // SHUTDOWN_SIGNAL event) so the drain is not held up by them.
    ctx.events.close_all();
    tracing::info!("shutting down: no new connections, draining in-flight requests");
    draining.send_replace(true);
    drop(drained);
    tokio::select! {
        _ = all_drained.recv() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(limits.drain_timeout) => {
            tracing::warn!(timeout = ?limits.drain_timeout, "drain timeout: closing remaining connections");
        }
    }
}

type PerIp = Arc<dashmap::DashMap<IpAddr, usize>>;

/// One connection's share of `max_connections_per_ip` (IPv6: per /64, as the auth guard counts).
struct IpSlot {
    map: PerIp,
    key: IpAddr,
}

impl IpSlot {
    fn take(map: &PerIp, ip: IpAddr, max: usize) -> Option<IpSlot> {
        let key = crate::guard::key(ip);
        let mut n = map.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        drop(n);
        Some(IpSlot {
            map: map.clone(),
            key,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        // The entry goes with its last connection, so the map holds only connected clients.
        self.map.remove_if_mut(&self.key, |_, n| {
            *n -= 1;
            *n == 0
        });
    }
}

/// What a connection holds until it ends (or, upgraded, until its WebSocket closes).
pub struct ConnPermit {
    _slot: OwnedSemaphorePermit,
    _from_ip: IpSlot,
}

/// Answers every request of a connection that got no slot with 503, then closes it.
fn refuse(
    builder: &hyper::server::conn::http1::Builder,
    io: TokioIo<tokio::net::TcpStream>,
    ctx: &Arc<Ctx>,
    msg: &'static str,
) {
    let ctx = ctx.clone();
    let svc = service_fn(move |_req| {
        let r = http::json_response(
            &ctx,
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "error": msg }),
        );
        async move { Ok::<_, Infallible>(r) }
    });
    let conn = builder.clone().keep_alive(false).serve_connection(io, svc);
    tokio::spawn(conn);
}

/// Runs the request, turning a panic into a 500 answer instead of a dead connection.
async fn guarded(
    ctx: Arc<Ctx>,
    ip: IpAddr,
    req: hyper::Request<hyper::body::Incoming>,
) -> HttpResponse {
    use futures_util::FutureExt;
    // AssertUnwindSafe: a panic drops the request's state, and nothing shared is left half-updated
    // (shared state sits behind locks that recover from poisoning).
    match std::panic::AssertUnwindSafe(http::handle(ctx.clone(), ip, req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(_) => {
            tracing::error!("request handler panicked");
            http::json_response(
                &ctx,
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "The RPC service aborted without responding."}),
            )
        }
    }
}
