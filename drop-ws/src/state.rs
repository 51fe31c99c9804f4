//! What every handler shares: the store, the hub, the identity and admin
//! hooks, the metrics, the limits and the shutdown signal.

use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use drop_core::InventoryStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::bounds::WsSettings;
use crate::hub::Hub;
use crate::idempotency::InFlight;
use crate::identity::{AdminHook, IdentityHook, Sessions};
use crate::limit::Limits;
use crate::metrics::Metrics;
use crate::names::FeedNames;
use crate::origin::AllowedOrigins;
use crate::proxy::TrustedProxies;

/// The handlers' state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn InventoryStore>,
    /// Webhook deliverers run beside the API, if any.
    pub(crate) webhooks: Option<crate::webhooks::WebhookDeliveries>,
    pub(crate) hub: Hub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Option<Limits>,
    pub(crate) trusted_proxies: TrustedProxies,
    /// Who may open a WebSocket, how many, and how they are kept alive.
    pub(crate) ws: WsSettings,
    /// Who the buyer behind a request is.
    pub(crate) identity: Arc<dyn IdentityHook>,
    /// Who may use the admin routes.
    pub(crate) admin: Arc<dyn AdminHook>,
    /// The signed sessions, when they are the identity.
    pub(crate) sessions: Option<Arc<Sessions>>,
    /// Pages allowed to act with a browser's cookies, and to open sockets.
    pub(crate) origins: AllowedOrigins,
    /// How public feeds name buyers.
    pub(crate) names: FeedNames,
    pub(crate) default_hold: Duration,
    /// The keyed writes this process is answering right now.
    pub(crate) in_flight: Arc<InFlight>,
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
