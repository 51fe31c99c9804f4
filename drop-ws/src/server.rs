//! Serving a router on a listener, with one shutdown for the server and
//! everything the API runs.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::app::DropApi;

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
    /// addresses (for the per-IP rate limit) and `TCP_NODELAY` (live
    /// updates are small frames, sent at once). `app` is usually
    /// [`router`](Self::router), or a host's router that includes it.
    pub fn serve(&self, listener: TcpListener, app: Router) -> io::Result<DropServer> {
        let addr = listener.local_addr()?;
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "cannot set TCP_NODELAY");
            }
        });
        let stop = CancellationToken::new();
        let served = tokio::spawn(
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .into_future(),
        );
        Ok(DropServer {
            api: self.clone(),
            addr,
            drain_for: Duration::ZERO,
            stop,
            served,
        })
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
    /// and the expiry scheduler stop; the store closes
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
