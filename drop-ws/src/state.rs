//! What every handler shares: the store, the hub, the metrics, the limits
//! and the shutdown signal.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use drop_core::InventoryStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bounds::WsSettings;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::proxy::TrustedProxies;

/// The handlers' state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn InventoryStore>,
    pub(crate) hub: Hub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Option<Limits>,
    pub(crate) trusted_proxies: TrustedProxies,
    /// Who may open a WebSocket, how many, and how they are kept alive.
    pub(crate) ws: WsSettings,
    pub(crate) admin_token: String,
    pub(crate) default_hold: Duration,
    /// Cancelled when shutdown begins: WebSockets close, readiness fails,
    /// the hub and the scheduler stop.
    pub(crate) cancel: CancellationToken,
    /// Set when the instance is draining: readiness fails so balancers
    /// send no new work, while everything else goes on serving.
    pub(crate) draining: AtomicBool,
    /// Every request in flight, every WebSocket, the hub and the
    /// scheduler: shutdown waits for all of them before closing the store.
    pub(crate) tasks: TaskTracker,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
    /// Whether readiness must fail: draining, or shutting down.
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed) || self.cancel.is_cancelled()
    }

    /// 401 without a bearer token, 403 with a wrong one.
    pub(crate) fn check_admin(&self, auth: Option<&HeaderValue>) -> Result<(), ApiError> {
        let Some(auth) = auth else {
            return Err(ApiError::unauthorized("an admin bearer token is required"));
        };
        let token = auth
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("use `Authorization: Bearer <admin token>`"))?;
        if !constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "the admin token is wrong",
            ));
        }
        Ok(())
    }
}

/// Compares without an early exit, so response time does not reveal how
/// much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Counts every request as a task of the API until its answer is ready,
/// so that shutdown closes the store only after the last one.
pub(crate) async fn track_requests(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    app.tasks.track_future(next.run(req)).await
}
