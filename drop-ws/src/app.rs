//! Building the web layer: configuration, the routers, and shutdown.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware;
use axum::routing::{any, delete, get, patch, post};
use drop_core::{
    Clock, DEFAULT_HOLD, DrawRunner, DropError, ExpiryScheduler, InventoryStore, SystemClock,
};
use prometheus_client::registry::Registry;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::bounds::{ConnSettings, WsSettings};
use crate::caps::Caps;
use crate::error::error_responses;
use crate::hub::{Hub, HubSettings};
use crate::identity::{
    AdminHook, BearerAdmin, ClaimedIdentity, IdentityHook, SessionIdentity, SessionKey,
};
use crate::limit::Limits;
use crate::metrics::{self, Metrics};
use crate::names::FeedNames;
use crate::openapi::DocShape;
use crate::origin::AllowedOrigins;
use crate::proxy::{Network, TrustedProxies};
use crate::state::{AppState, Inner, track_requests};
use crate::webhooks::{WebhookDeliveries, WebhooksBuilder};
use crate::{
    admin_routes, draw_routes, health, openapi, purchase_routes, routes, session_routes,
    waitlist_routes, ws,
};

/// Largest request body accepted.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024;
/// Default coalescing window for stock messages.
pub const DEFAULT_TICK: Duration = Duration::from_millis(50);
/// Default number of batches of discrete frames (at most one per tick) a
/// WebSocket client may fall behind before it is resent a snapshot.
pub const DEFAULT_CLIENT_QUEUE: usize = 256;
/// Default time limit of one HTTP request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time a request's headers may take to arrive (and a kept-alive
/// connection may wait idle for its next request).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on HTTP connections open at once from one client address.
pub const DEFAULT_CONN_MAX_PER_IP: usize = 256;
/// Default cap on HTTP connections open at once in all, WebSockets included.
pub const DEFAULT_CONN_MAX: usize = 10_000;
/// Default cap on WebSockets open at once from one client address.
pub const DEFAULT_WS_MAX_PER_IP: usize = 128;
/// Default cap on WebSockets open at once in all.
pub const DEFAULT_WS_MAX: usize = 8_192;
/// Default time between two pings the server sends each WebSocket.
pub const DEFAULT_WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// Default time after which a WebSocket the server has heard nothing
/// from (not even the answer to a ping) is closed.
pub const DEFAULT_WS_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Configures a [`DropApi`]. Every setter documents its default.
pub struct DropApiBuilder {
    store: Arc<dyn InventoryStore>,
    admin: Option<Arc<dyn AdminHook>>,
    admin_token_blank: bool,
    identity: Option<Arc<dyn IdentityHook>>,
    sessions: Option<SessionIdentity>,
    names: FeedNames,
    cors_origins: Vec<HeaderValue>,
    trusted_proxies: TrustedProxies,
    rate_limit: u32,
    default_hold: Duration,
    tick: Duration,
    client_queue: usize,
    body_limit: usize,
    request_timeout: Duration,
    conn: ConnSettings,
    ws_max_per_ip: usize,
    ws_max: usize,
    ws_ping_interval: Duration,
    ws_idle_timeout: Duration,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
    metrics: Option<Metrics>,
    scheduler: Option<ExpiryScheduler>,
    draw_runner: Option<DrawRunner>,
    webhooks: Option<WebhooksBuilder>,
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
    /// Admins are whoever sends `Authorization: Bearer <token>`
    /// ([`BearerAdmin`]). An admin is required: without this or
    /// [`admin`](Self::admin), [`build`](Self::build) fails (no token
    /// means no admin, not an open door). Buyer tokens are never admin
    /// tokens, nor the other way round.
    pub fn admin_token(mut self, token: impl Into<String>) -> Self {
        match BearerAdmin::new(token) {
            Some(admin) => {
                self.admin = Some(Arc::new(admin));
                self.admin_token_blank = false;
            }
            None => self.admin_token_blank = true,
        }
        self
    }

    /// Decides who may use the admin routes with a hook of the host
    /// application's (its own staff login, say).
    pub fn admin(mut self, hook: impl AdminHook) -> Self {
        self.admin = Some(Arc::new(hook));
        self.admin_token_blank = false;
        self
    }

    /// Who the buyer behind a request is, by a hook of the host
    /// application's (see [`IdentityHook`]). Defaults to signed guest
    /// sessions with a generated key ([`sessions`](Self::sessions)).
    pub fn identity(mut self, hook: impl IdentityHook) -> Self {
        self.identity = Some(Arc::new(hook));
        self.sessions = None;
        self
    }

    /// Signed guest sessions as the identity, with `POST/GET/DELETE
    /// /api/session` to sign in and out. The default, with a generated
    /// key; give a [`SessionKey`](crate::SessionKey) from configuration
    /// so that sessions outlive a restart and every instance accepts them.
    pub fn sessions(mut self, sessions: SessionIdentity) -> Self {
        self.sessions = Some(sessions);
        self.identity = None;
        self
    }

    /// The original API's identity: the buyer is whatever username the
    /// request names ([`ClaimedIdentity`]). Insecure (anyone can act as
    /// anyone); for load tests and demos. Logs a warning at build.
    pub fn claimed_identity(self) -> Self {
        self.identity(ClaimedIdentity)
    }

    /// How public feeds (recent buyers, the live feed's purchases) name
    /// buyers. Defaults to [`FeedNames::Show`].
    pub fn feed_names(mut self, names: FeedNames) -> Self {
        self.names = names;
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

    /// Trusts `X-Forwarded-For` from peers in `network` (an address such
    /// as `10.0.0.7`, or a network such as `10.0.0.0/8`): behind a load
    /// balancer, the per-IP rate limit then counts the client's address
    /// instead of the balancer's. Each hop is believed only while the hop
    /// that reported it is trusted, so a client cannot choose its address.
    /// Defaults to none (the peer's address is the client's).
    pub fn trusted_proxy(mut self, network: &str) -> Result<Self, DropError> {
        let network = Network::parse(network).ok_or_else(|| {
            DropError::invalid(
                "trustedProxy",
                "must be an IP address or a network such as 10.0.0.0/8",
            )
        })?;
        self.trusted_proxies.push(network);
        Ok(self)
    }

    /// Reserve and purchase requests allowed per minute per client
    /// address (an IPv6 client counts by its /64) and per buyer; 0 turns
    /// limiting off. Limits are kept per process. Defaults to 0.
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

    /// How many batches of discrete frames (at most one per tick) a
    /// WebSocket client may fall behind before it is resent a snapshot.
    /// Defaults to 256.
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

    /// How long a request's headers may take to arrive, counted from when
    /// the server starts waiting for them: from the connection's opening,
    /// or on a kept-alive connection from the previous answer, so this is
    /// also the keep-alive idle timeout. A connection over it is closed.
    /// `Duration::ZERO` turns it off. Applies to [`DropApi::serve`].
    /// Defaults to 10 s.
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.conn.header_timeout = (!d.is_zero()).then_some(d);
        self
    }

    /// The most HTTP connections (WebSockets included) one client address
    /// may have open at once; 0 = no cap. Trusted proxies
    /// ([`trusted_proxy`](Self::trusted_proxy)) count towards
    /// [`conn_max`](Self::conn_max) only. Over it a new connection is
    /// closed as soon as it is accepted. Applies to [`DropApi::serve`].
    /// Defaults to 256.
    pub fn conn_max_per_ip(mut self, n: usize) -> Self {
        self.conn.per_ip = n;
        self
    }

    /// The most HTTP connections (WebSockets included) open at once; 0 =
    /// no cap. Keep it below the process's descriptor limit. Over it a new
    /// connection is closed as soon as it is accepted. Applies to
    /// [`DropApi::serve`]. Defaults to 10,000.
    pub fn conn_max(mut self, n: usize) -> Self {
        self.conn.total = n;
        self
    }

    /// The most WebSockets one client address (behind trusted proxies,
    /// the forwarded one) may have open at once; 0 = no cap. Over it the
    /// upgrade is refused with `503 UNAVAILABLE` and `Retry-After`.
    /// Defaults to 128.
    pub fn ws_max_per_ip(mut self, n: usize) -> Self {
        self.ws_max_per_ip = n;
        self
    }

    /// The most WebSockets open at once; 0 = no cap. Over it the upgrade
    /// is refused with `503 UNAVAILABLE` and `Retry-After`. Defaults to
    /// 8,192.
    pub fn ws_max(mut self, n: usize) -> Self {
        self.ws_max = n;
        self
    }

    /// How often the server pings each WebSocket (browsers answer on
    /// their own). Defaults to 20 s.
    pub fn ws_ping_interval(mut self, d: Duration) -> Self {
        self.ws_ping_interval = d.max(Duration::from_millis(1));
        self
    }

    /// A WebSocket the server has heard nothing from for this long, not
    /// even a pong, is closed (checked at each ping). `Duration::ZERO`
    /// turns it off. Defaults to 60 s.
    pub fn ws_idle_timeout(mut self, d: Duration) -> Self {
        self.ws_idle_timeout = d;
        self
    }

    /// The clock `serverTime` is read from; give the store's clock.
    /// Defaults to the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A token that begins shutdown when cancelled: every WebSocket is
    /// closed (1001), readiness fails, the hub and the scheduler stop.
    /// Defaults to a fresh one ([`DropApi::begin_shutdown`] cancels it).
    pub fn cancel_token(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Registers the metrics in the host application's `registry` (under
    /// the `dropkit_` prefix) instead of a registry of the API's own; the
    /// host then exposes them with its own, and
    /// [`DropApi::metrics_router`] serves nothing. Defaults to an own
    /// registry, served at `GET /metrics`.
    pub fn metrics_registry(mut self, registry: &mut Registry) -> Self {
        self.metrics = Some(Metrics::registered_in(registry));
        self
    }

    /// Runs `scheduler` (configured with the store's clock) beside the
    /// API, as one of its tasks: [`DropApi::shutdown`] stops it and waits
    /// for it. Defaults to none (run one yourself, or let holds be
    /// reclaimed lazily; stock then comes back only when next needed).
    pub fn expiry_scheduler(mut self, scheduler: ExpiryScheduler) -> Self {
        self.scheduler = Some(scheduler);
        self
    }

    /// Runs `runner` (configured with the store's clock, and with the
    /// beacons of drops that name one) beside the API, as one of its
    /// tasks, like the [expiry scheduler](Self::expiry_scheduler): it makes
    /// each draw drop's draw at its `drawAt`, and [`DropApi::shutdown`]
    /// stops it and waits for it. Any number of instances may run one: a
    /// draw is made exactly once. Defaults to none (draw drops then never
    /// draw unless a runner runs elsewhere).
    pub fn draw_runner(mut self, runner: DrawRunner) -> Self {
        self.draw_runner = Some(runner);
        self
    }

    /// Runs webhook deliverers ([`WebhooksBuilder`]) beside the API, as
    /// its tasks: they start with [`build`](Self::build) (which refuses a
    /// configuration they refuse), and [`DropApi::shutdown`] stops them,
    /// letting each give its cursor up, before it closes the store. Their
    /// metrics join the API's own registry unless the builder was given
    /// one. [`DropApi::webhooks`] reports on them. Defaults to none.
    pub fn webhooks(mut self, webhooks: WebhooksBuilder) -> Self {
        self.webhooks = Some(webhooks);
        self
    }

    /// Loads the live drops and starts the hub (and the scheduler and the
    /// webhooks, when given) on the current runtime.
    pub async fn build(self) -> Result<DropApi, DropError> {
        let admin = self
            .admin
            .filter(|_| !self.admin_token_blank)
            .ok_or_else(|| DropError::invalid("adminToken", "must not be empty"))?;
        let (identity, sessions): (Arc<dyn IdentityHook>, _) = match (self.identity, self.sessions)
        {
            (Some(hook), _) => (hook, None),
            (None, sessions) => {
                let sessions = sessions.unwrap_or_else(|| {
                    tracing::info!(
                        "buyers sign in with sessions signed by a generated key: they end when \
                         this process does, and other instances do not accept them"
                    );
                    SessionIdentity::new(SessionKey::generate())
                });
                let shared = sessions.sessions.clone();
                (Arc::new(sessions), Some(shared))
            }
        };
        if identity.reads_claimed_username() {
            tracing::warn!(
                "INSECURE: buyers are whoever a request says they are (claimed identity); \
                 for load tests and demos only"
            );
        }
        let revocations = match &sessions {
            Some(s) => Some(
                s.clone()
                    .attach(self.store.clone(), self.clock.clone(), self.cancel.clone())
                    .await?,
            ),
            None => None,
        };
        let mut webhooks = self.webhooks;
        let metrics = Arc::new(match self.metrics {
            Some(metrics) => metrics,
            None => Metrics::new_with(|registry| {
                webhooks = webhooks.take().map(|w| {
                    if w.has_metrics() {
                        w
                    } else {
                        w.metrics_registry(registry)
                    }
                });
            }),
        });
        let tasks = TaskTracker::new();
        let hub = Hub::start(
            self.store.clone(),
            self.clock,
            metrics.clone(),
            HubSettings {
                tick: self.tick,
                queue: self.client_queue,
                names: self.names,
            },
            self.cancel.clone(),
            &tasks,
        )
        .await?;
        if let Some(scheduler) = self.scheduler {
            tasks.spawn(scheduler.run(self.cancel.clone()));
        }
        if let Some(runner) = self.draw_runner {
            tasks.spawn(runner.run(self.cancel.clone()));
        }
        if let Some(follow) = revocations {
            tasks.spawn(follow);
        }
        let webhooks = match webhooks {
            Some(w) => {
                let deliveries = w.spawn(self.store.clone(), self.cancel.child_token())?;
                let stopped = deliveries.clone();
                tasks.spawn(async move { stopped.stopped().await });
                Some(deliveries)
            }
            None => None,
        };
        let state = AppState(Arc::new(Inner {
            store: self.store,
            hub,
            metrics,
            limits: NonZeroU32::new(self.rate_limit).map(Limits::per_minute),
            trusted_proxies: self.trusted_proxies,
            ws: WsSettings {
                caps: Caps::new(self.ws_max_per_ip, self.ws_max),
                ping_interval: self.ws_ping_interval,
                idle_timeout: (!self.ws_idle_timeout.is_zero()).then_some(self.ws_idle_timeout),
            },
            identity,
            admin,
            sessions,
            origins: AllowedOrigins(self.cors_origins.clone()),
            names: self.names,
            default_hold: self.default_hold,
            in_flight: Arc::default(),
            webhooks,
            cancel: self.cancel,
            draining: AtomicBool::new(false),
            tasks,
        }));
        Ok(DropApi {
            state,
            store_closed: Arc::new(OnceCell::new()),
            cors_origins: self.cors_origins,
            body_limit: self.body_limit,
            request_timeout: self.request_timeout,
            conn: self.conn,
        })
    }
}

/// The dropkit web API: REST, WebSocket, health, metrics and OpenAPI, as
/// axum [`Router`]s to serve, merge or nest, and one shutdown for all of
/// it.
///
/// ```no_run
/// # async fn demo(store: std::sync::Arc<dyn drop_core::InventoryStore>) -> Result<(), Box<dyn std::error::Error>> {
/// let api = drop_ws::DropApi::builder(store.clone())
///     .admin_token("secret")
///     .expiry_scheduler(drop_core::ExpiryScheduler::new(store))
///     .build()
///     .await?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let server = api.serve(listener, api.router())?;
/// server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
///
/// Serving it yourself, do it with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the per-IP
/// rate limit sees client addresses (without it only the per-buyer
/// limit applies), and call [`shutdown`](Self::shutdown) once your server
/// has stopped.
///
/// Cloning is cheap and every clone is the same API.
#[derive(Clone)]
pub struct DropApi {
    pub(crate) state: AppState,
    store_closed: Arc<OnceCell<()>>,
    cors_origins: Vec<HeaderValue>,
    body_limit: usize,
    request_timeout: Duration,
    pub(crate) conn: ConnSettings,
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
            admin: None,
            admin_token_blank: false,
            identity: None,
            sessions: None,
            names: FeedNames::Show,
            cors_origins: Vec::new(),
            trusted_proxies: TrustedProxies::default(),
            rate_limit: 0,
            default_hold: DEFAULT_HOLD,
            tick: DEFAULT_TICK,
            client_queue: DEFAULT_CLIENT_QUEUE,
            body_limit: DEFAULT_BODY_LIMIT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            conn: ConnSettings {
                header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
                per_ip: DEFAULT_CONN_MAX_PER_IP,
                total: DEFAULT_CONN_MAX,
            },
            ws_max_per_ip: DEFAULT_WS_MAX_PER_IP,
            ws_max: DEFAULT_WS_MAX,
            ws_ping_interval: DEFAULT_WS_PING_INTERVAL,
            ws_idle_timeout: DEFAULT_WS_IDLE_TIMEOUT,
            clock: Arc::new(SystemClock),
            cancel: CancellationToken::new(),
            metrics: None,
            scheduler: None,
            draw_runner: None,
            webhooks: None,
        }
    }

    /// Every route: [`api_router`](Self::api_router),
    /// [`health_router`](Self::health_router),
    /// [`openapi_router`](Self::openapi_router) and
    /// [`metrics_router`](Self::metrics_router). Merge it into your app,
    /// or nest it under a prefix (`Router::nest("/shop", api.router())`):
    /// the WebSocket and the OpenAPI document follow the prefix. A host
    /// that has some of these routes already merges the parts it wants.
    pub fn router(&self) -> Router {
        self.api_router()
            .merge(self.health_router())
            .merge(self.openapi_router())
            .merge(self.metrics_router())
    }

    /// Drops, holds, purchases, the admin operations and the WebSocket
    /// (`/api/drops`, `/api/reservations`, `/api/purchases`,
    /// `/api/me/purchases`, `/api/admin/...`, `/api/ws`), and a JSON 404
    /// for any other path under `/api`.
    pub fn api_router(&self) -> Router {
        let timed = Router::new()
            .route(
                "/api/drops",
                get(routes::list_drops).post(routes::create_drop),
            )
            .route(
                "/api/drops/{id}/entries",
                post(draw_routes::enter)
                    .get(draw_routes::entry)
                    .delete(draw_routes::withdraw),
            )
            .route("/api/drops/{id}/draw", get(draw_routes::draw))
            .route(
                "/api/drops/{id}/waitlist",
                post(waitlist_routes::join)
                    .get(waitlist_routes::place)
                    .delete(waitlist_routes::leave),
            )
            .route("/api/reservations", post(routes::reserve))
            .route(
                "/api/reservations/{id}",
                get(routes::get_reservation).delete(routes::release),
            )
            .route("/api/purchases", post(routes::purchase))
            .route("/api/purchases/{id}", get(purchase_routes::get_purchase))
            .route("/api/me/purchases", get(purchase_routes::my_purchases))
            .route("/api/admin/drops", get(admin_routes::list_all_drops))
            .route("/api/admin/drops/{id}", patch(admin_routes::update_drop))
            .route("/api/admin/drops/{id}/pause", post(admin_routes::pause))
            .route("/api/admin/drops/{id}/resume", post(admin_routes::resume))
            .route("/api/admin/drops/{id}/end", post(admin_routes::end))
            .route(
                "/api/admin/purchases/{id}/cancel",
                post(admin_routes::cancel_purchase),
            )
            .route("/api/admin/events", get(admin_routes::events))
            .route("/api/admin/cursors", get(admin_routes::cursors))
            .route(
                "/api/admin/cursors/{name}",
                delete(admin_routes::remove_cursor),
            );
        let timed = if self.state.sessions.is_some() {
            timed.route(
                "/api/session",
                post(session_routes::sign_in)
                    .get(session_routes::get_session)
                    .delete(session_routes::sign_out),
            )
        } else {
            timed
        };
        let routes = self
            .timed(timed)
            // Not timed: a socket's lifetime is not a request's latency.
            .route("/api/ws", get(ws::upgrade))
            .route("/api", any(routes::not_found))
            .route("/api/{*rest}", any(routes::not_found))
            .with_state(self.state.clone());
        self.finish(routes)
    }

    /// `GET /api/health` (= readiness), `GET /api/health/live`,
    /// `GET /api/health/ready`.
    pub fn health_router(&self) -> Router {
        let routes = Router::new()
            .route("/api/health", get(health::health))
            .route("/api/health/live", get(health::live))
            .route("/api/health/ready", get(health::ready));
        let routes = self.timed(routes).with_state(self.state.clone());
        self.finish(routes)
    }

    /// `GET /api/openapi.json`. Nested under a prefix, the document names
    /// the prefix as its server.
    pub fn openapi_router(&self) -> Router {
        let routes = Router::new().route("/api/openapi.json", get(openapi::serve));
        let routes = self.timed(routes).with_state(self.doc_shape());
        self.finish(routes)
    }

    /// `GET /metrics`, the Prometheus text exposition; an empty router
    /// when the metrics were registered in the host's registry
    /// ([`DropApiBuilder::metrics_registry`]).
    pub fn metrics_router(&self) -> Router {
        if !self.state.metrics.has_own_registry() {
            return Router::new();
        }
        let routes = Router::new().route("/metrics", get(metrics::expose));
        let routes = self.timed(routes).with_state(self.state.metrics.clone());
        self.finish(routes)
    }

    /// Records each route's latency by matched path.
    fn timed<S: Clone + Send + Sync + 'static>(&self, routes: Router<S>) -> Router<S> {
        routes.route_layer(middleware::from_fn_with_state(
            self.state.metrics.clone(),
            metrics::record_latency,
        ))
    }

    /// The layers every part shares: body limit, timeout, JSON errors and
    /// their logging, request tracking for shutdown, CORS, tracing.
    fn finish(&self, routes: Router) -> Router {
        let routes = routes
            .layer(RequestBodyLimitLayer::new(self.body_limit))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                self.request_timeout,
            ))
            .layer(middleware::from_fn(error_responses))
            .layer(middleware::from_fn_with_state(
                self.state.clone(),
                track_requests,
            ));
        let routes = if self.cors_origins.is_empty() {
            routes
        } else {
            routes.layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(self.cors_origins.clone()))
                    .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
                    .allow_headers([
                        header::CONTENT_TYPE,
                        header::AUTHORIZATION,
                        crate::idempotency::KEY_HEADER,
                    ])
                    .expose_headers([crate::idempotency::REPLAYED_HEADER])
                    .max_age(Duration::from_secs(600)),
            )
        };
        // Spans for every request; failures are logged by `error_responses`
        // alone (once, with their cause), not again here.
        routes.layer(TraceLayer::new_for_http().on_failure(()))
    }

    /// What the OpenAPI document must say of this configuration.
    pub(crate) fn doc_shape(&self) -> DocShape {
        DocShape {
            sessions: self.state.sessions.is_some(),
            claimed: self.state.identity.reads_claimed_username(),
        }
    }

    /// The OpenAPI document of this API as configured (its identity
    /// decides whether `/api/session` exists and whether requests name
    /// their buyer), mounted at `prefix` (`""` at the root).
    pub fn openapi_document(&self, prefix: &str) -> utoipa::openapi::OpenApi {
        openapi::document(prefix, self.doc_shape())
    }

    /// This instance's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The store behind the API.
    pub fn store(&self) -> &Arc<dyn InventoryStore> {
        &self.state.store
    }

    /// The token whose cancellation begins shutdown.
    pub fn cancel_token(&self) -> &CancellationToken {
        &self.state.cancel
    }

    /// Starts draining: readiness answers 503 from now on, so load
    /// balancers send this instance no new work, while everything else,
    /// WebSockets included, goes on serving until shutdown. Give the
    /// balancers a few probe periods, then shut down.
    pub fn drain(&self) {
        self.state.draining.store(true, Ordering::Relaxed);
    }

    /// Begins shutdown and returns at once: readiness answers 503, every
    /// WebSocket is closed with code 1001 ("going away"), the hub and the
    /// scheduler stop. Requests in flight, and new ones while the server
    /// still accepts them, are served as usual.
    pub fn begin_shutdown(&self) {
        self.state.cancel.cancel();
    }

    /// The webhook deliverers started with the API
    /// ([`DropApiBuilder::webhooks`]), to read their status.
    pub fn webhooks(&self) -> Option<&WebhookDeliveries> {
        self.state.webhooks.as_ref()
    }

    /// Stops the API and waits for it: [begins
    /// shutdown](Self::begin_shutdown), waits for every request in flight,
    /// every WebSocket, the hub, the scheduler and the webhook deliverers
    /// (which give their cursors up), then closes the store
    /// ([`InventoryStore::close`]). Call it once your server has stopped
    /// accepting connections (axum's `with_graceful_shutdown`), or let
    /// [`DropServer::shutdown`](crate::DropServer::shutdown) do it all.
    /// Calling it again waits for the same end.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        if let Some(webhooks) = &self.state.webhooks {
            // Already stopping (their token is a child of the API's).
            webhooks.stopped().await;
        }
        self.state.tasks.close();
        self.state.tasks.wait().await;
        self.store_closed
            .get_or_init(|| async { self.state.store.close().await })
            .await;
    }
}
