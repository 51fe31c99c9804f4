//! Serving a router on a listener, with one shutdown for the server and
//! everything the API runs.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::Service as _;

use crate::app::DropApi;
use crate::bounds::ConnSettings;
use crate::caps::{Caps, Slot};
use crate::proxy::TrustedProxies;

/// A running server: an app (the API's router, or a host's router that
/// includes it) on a listener, stopped by one call,
/// [`shutdown`](Self::shutdown). Made by [`DropApi::serve`].
pub struct DropServer {
    api: DropApi,
    addr: SocketAddr,
    drain_for: Duration,
    stop: CancellationToken,
    served: JoinHandle<io::Result<()>>,
}

impl fmt::Debug for DropServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DropApi {
    /// Serves `app` on `listener` in a task of its own, with client
    /// addresses (for the per-IP limits) and `TCP_NODELAY` (live updates
    /// are small frames, sent at once). `app` is usually
    /// [`router`](Self::router), or a host's router that includes it.
    ///
    /// Connections are bounded as configured on the builder: a request's
    /// headers must arrive within
    /// [`header_timeout`](crate::DropApiBuilder::header_timeout) (which is
    /// also how long a kept-alive connection may wait idle for its next
    /// request), and a connection over
    /// [`conn_max_per_ip`](crate::DropApiBuilder::conn_max_per_ip) or
    /// [`conn_max`](crate::DropApiBuilder::conn_max) is closed as soon as
    /// it is accepted, before anything is read from it.
    pub fn serve(&self, listener: TcpListener, app: Router) -> io::Result<DropServer> {
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let edge = Edge {
            settings: self.conn,
            caps: Caps::new(self.conn.per_ip, self.conn.total),
            trusted_proxies: self.state.trusted_proxies.clone(),
        };
        let served = tokio::spawn(accept_loop(listener, app, edge, stop.clone()));
        Ok(DropServer {
            api: self.clone(),
            addr,
            drain_for: Duration::ZERO,
            stop,
            served,
        })
    }
}

/// What the accept loop needs besides the app.
struct Edge {
    settings: ConnSettings,
    caps: Caps,
    trusted_proxies: TrustedProxies,
}

/// Accepts until `stop`, then lets every connection finish its request
/// in flight (kept-alive ones close at once) and returns.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    edge: Edge,
    stop: CancellationToken,
) -> io::Result<()> {
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.settings.header_timeout)
        .keep_alive(true);
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                // Out of descriptors (or memory): accepting again at once
                // would spin; wait for connections to close.
                tracing::error!(error = %err, "accept error");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let exempt = edge.trusted_proxies.trusts(peer.ip());
        let slot = match edge.caps.acquire(peer.ip(), exempt) {
            Ok(slot) => slot,
            Err(over) => {
                // Dropped unread: the cheapest answer, and the one that
                // costs a flood the most (it learns nothing, keeps nothing).
                tracing::debug!(%peer, ?over, "connection refused: over the cap");
                continue;
            }
        };
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let io = TokioIo::new(Counted { tcp, _slot: slot });
        let service = service_fn({
            let app = app.clone();
            move |mut req: Request<Incoming>| {
                // What `into_make_service_with_connect_info` would give.
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().call(req)
            }
        });
        let conn = http.serve_connection(io, service).with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// How long to wait after an accept error that is not one connection's.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Errors that concern one connection only (the client gave up before it
/// was accepted): the next accept may well succeed.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A connection holding its place under the caps for as long as it is
/// open, after an upgrade to a WebSocket too (the socket owns it then).
struct Counted {
    tcp: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl DropServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API it serves.
    pub fn api(&self) -> &DropApi {
        &self.api
    }

    /// How long [`run_until`](Self::run_until) keeps serving, unready
    /// ([`DropApi::drain`]), between the signal and the shutdown, so that
    /// load balancers stop sending new connections before the listener
    /// closes. Defaults to none.
    pub fn drain_for(mut self, period: Duration) -> Self {
        self.drain_for = period;
        self
    }

    /// Stops everything, in order, and returns when all of it has stopped:
    /// readiness fails and every WebSocket is closed with code 1001; the
    /// listener closes and every request in flight is answered; the hub
    /// and the expiry scheduler and draw runner stop; the store closes
    /// ([`DropApi::shutdown`]). The error is the server's, if it failed.
    pub async fn shutdown(self) -> io::Result<()> {
        let Self {
            api, stop, served, ..
        } = self;
        api.begin_shutdown();
        stop.cancel();
        let result = joined(served.await);
        api.shutdown().await;
        result
    }

    /// Serves until `signal` completes (e.g. SIGTERM), drains for the
    /// [`drain_for`](Self::drain_for) period, then
    /// [shuts down](Self::shutdown). Should the server fail first, the
    /// rest is shut down all the same and its error returned.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> io::Result<()> {
        tokio::select! {
            () = signal => {}
            result = &mut self.served => {
                self.api.shutdown().await;
                return joined(result);
            }
        }
        if !self.drain_for.is_zero() {
            self.api.drain();
            tokio::select! {
                () = tokio::time::sleep(self.drain_for) => {}
                result = &mut self.served => {
                    self.api.shutdown().await;
                    return joined(result);
                }
            }
        }
        self.shutdown().await
    }
}

fn joined(result: Result<io::Result<()>, tokio::task::JoinError>) -> io::Result<()> {
    result.map_err(io::Error::other)?
}
