//! Building the web layer: configuration, shared state and the router.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::routing::{any, get, post};
use drop_core::{Clock, DEFAULT_HOLD, DropError, InventoryStore, SystemClock};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::json_errors;
use crate::hub::Hub;
use crate::limit::Limits;
use crate::{ApiError, Metrics, routes, ws};

/// Largest request body accepted.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
/// Default coalescing window for stock messages.
pub const DEFAULT_TICK: Duration = Duration::from_millis(50);
/// Default number of frames a WebSocket client may fall behind.
pub const DEFAULT_CLIENT_QUEUE: usize = 256;
/// Default time limit of one HTTP request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn InventoryStore>,
    pub(crate) hub: Hub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) limits: Option<Limits>,
    pub(crate) admin_token: String,
    pub(crate) default_hold: Duration,
    pub(crate) cancel: CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Inner {
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

/// Configures a [`DropApi`]. Every setter documents its default.
pub struct DropApiBuilder {
    store: Arc<dyn InventoryStore>,
    admin_token: Option<String>,
    cors_origins: Vec<HeaderValue>,
    rate_limit: u32,
    default_hold: Duration,
    tick: Duration,
    client_queue: usize,
    body_limit: usize,
    request_timeout: Duration,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
}

impl fmt::Debug for DropApiBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropApiBuilder")
            .field("store", &self.store)
            .field("cors_origins", &self.cors_origins)
            .field("rate_limit", &self.rate_limit)
            .field("tick", &self.tick)
            .finish_non_exhaustive()
    }
}

impl DropApiBuilder {
    /// The bearer token `POST /api/drops` requires. Required: without one,
    /// [`build`](Self::build) fails (no token means no admin, not an open door).
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Adds a browser origin (e.g. `http://localhost:5173`) allowed by CORS.
    /// Defaults to none: only same-origin pages may call the API.
    pub fn cors_origin(mut self, origin: &str) -> Result<Self, DropError> {
        let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.ends_with('/');
        let value = HeaderValue::from_str(origin)
            .ok()
            .filter(|_| valid)
            .ok_or_else(|| {
                DropError::invalid(
                    "corsOrigin",
                    "must be scheme://host[:port] with no trailing slash",
                )
            })?;
        self.cors_origins.push(value);
        Ok(self)
    }

    /// Reserve and purchase requests allowed per minute per client IP and
    /// per username; 0 turns limiting off. Defaults to 0.
    pub fn rate_limit_per_minute(mut self, n: u32) -> Self {
        self.rate_limit = n;
        self
    }

    /// The hold length of drops created without `holdSeconds`. Defaults to 60 s.
    pub fn default_hold(mut self, hold: Duration) -> Self {
        self.default_hold = hold;
        self
    }

    /// The coalescing window: each drop's stock goes to clients at most
    /// once per tick. Defaults to 50 ms.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// How many messages a WebSocket client may fall behind before it is
    /// resent a snapshot. Defaults to 256.
    pub fn client_queue(mut self, n: usize) -> Self {
        self.client_queue = n.max(1);
        self
    }

    /// The largest request body, in bytes. Defaults to 16 KiB.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The time limit of one HTTP request. Defaults to 10 s.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The clock `serverTime` is read from; give the store's clock.
    /// Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A token that stops the hub and closes every WebSocket when
    /// cancelled. Defaults to a fresh one ([`DropApi::shutdown`] cancels it).
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Loads the live drops and starts the hub on the current runtime.
    pub async fn build(self) -> Result<DropApi, DropError> {
        let admin_token = self
            .admin_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| DropError::invalid("adminToken", "must not be empty"))?;
        let metrics = Arc::new(Metrics::new());
        let (hub, hub_task) = Hub::start(
            self.store.clone(),
            self.clock,
            metrics.clone(),
            self.tick,
            self.client_queue,
            self.cancel.clone(),
        )
        .await?;
        let state = AppState(Arc::new(Inner {
            store: self.store,
            hub,
            metrics,
            limits: NonZeroU32::new(self.rate_limit).map(Limits::per_minute),
            admin_token,
            default_hold: self.default_hold,
            cancel: self.cancel,
        }));
        Ok(DropApi {
            state,
            hub_task: std::sync::Mutex::new(Some(hub_task)),
            cors_origins: self.cors_origins,
            body_limit: self.body_limit,
            request_timeout: self.request_timeout,
        })
    }
}

/// The dropkit web API: REST, WebSocket, health, metrics and OpenAPI, as
/// an axum [`Router`] to serve or nest.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn drop_core::InventoryStore>) -> Result<(), Box<dyn std::error::Error>> {
/// let api = drop_ws::DropApi::builder(store).admin_token("secret").build().await?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(
///     listener,
///     api.router().into_make_service_with_connect_info::<std::net::SocketAddr>(),
/// )
/// .await?;
/// # Ok(()) }
/// ```
///
/// Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so
/// the per-IP rate limit sees client addresses (without it only the
/// per-username limit applies).
pub struct DropApi {
    state: AppState,
    hub_task: std::sync::Mutex<Option<JoinHandle<()>>>,
    cors_origins: Vec<HeaderValue>,
    body_limit: usize,
    request_timeout: Duration,
}

impl fmt::Debug for DropApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropApi")
            .field("store", &self.state.store)
            .field("hub", &self.state.hub)
            .finish_non_exhaustive()
    }
}

impl DropApi {
    /// Starts configuring an API over `store`.
    pub fn builder(store: Arc<dyn InventoryStore>) -> DropApiBuilder {
        DropApiBuilder {
            store,
            admin_token: None,
            cors_origins: Vec::new(),
            rate_limit: 0,
            default_hold: DEFAULT_HOLD,
            tick: DEFAULT_TICK,
            client_queue: DEFAULT_CLIENT_QUEUE,
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            clock: Arc::new(SystemClock),
            cancel: CancellationToken::new(),
        }
    }

    /// The routes: everything under `/api` plus `GET /metrics`.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route(
                "/api/drops",
                get(routes::list_drops).post(routes::create_drop),
            )
            .route("/api/reservations", post(routes::reserve))
            .route(
                "/api/reservations/{id}",
                get(routes::get_reservation).delete(routes::release),
            )
            .route("/api/purchases", post(routes::purchase))
            .route("/api/health", get(routes::health))
            .route("/api/health/live", get(routes::live))
            .route("/api/health/ready", get(routes::ready))
            .route("/api/openapi.json", get(routes::openapi))
            .route("/metrics", get(routes::metrics))
            .route_layer(middleware::from_fn_with_state(
                self.state.clone(),
                routes::record_latency,
            ))
            .route("/api/ws", get(ws::upgrade))
            .route("/api", any(routes::not_found))
            .route("/api/{*rest}", any(routes::not_found))
            .layer(RequestBodyLimitLayer::new(self.body_limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.request_timeout,
            ))
            .layer(middleware::map_response(json_errors))
            .with_state(self.state.clone());
        let api = if self.cors_origins.is_empty() {
            api
        } else {
            api.layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(self.cors_origins.clone()))
                    .allow_methods([Method::GET, Method::POST, Method::DELETE])
                    .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                    .max_age(Duration::from_secs(600)),
            )
        };
        api.layer(TraceLayer::new_for_http())
    }

    /// The broadcast hub.
    pub fn hub(&self) -> &Hub {
        &self.state.hub
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The store behind the API.
    pub fn store(&self) -> &Arc<dyn InventoryStore> {
        &self.state.store
    }

    /// The token that stops the hub and closes WebSockets.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.state.cancel
    }

    /// Closes every WebSocket (close code 1001) and stops the hub; returns
    /// when the hub has stopped. HTTP requests are the server's to drain
    /// (`axum::serve(..).with_graceful_shutdown(..)`).
    pub async fn shutdown(&self) {
        self.state.cancel.cancel();
        let task = self
            .hub_task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
