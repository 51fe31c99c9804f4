//! # drop-ws
//!
//! The web layer of dropkit: the REST + WebSocket API over any
//! [`InventoryStore`](drop_core::InventoryStore), as axum [`Router`](axum::Router)s
//! you serve on their own or merge or nest into your own app, with live
//! stock for every client and one shutdown for all of it.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn drop_core::InventoryStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let api = drop_ws::DropApi::builder(store.clone())
//!     .admin_token("change-me")
//!     .rate_limit_per_minute(120)
//!     .expiry_scheduler(drop_core::ExpiryScheduler::new(store.clone()))
//!     .draw_runner(drop_core::DrawRunner::new(store))
//!     .build()
//!     .await?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let server = api.serve(listener, api.router())?;
//! // On Ctrl-C: WebSockets get 1001, requests in flight are answered, the
//! // scheduler and the draw runner stop, the store closes; then this returns.
//! server.run_until(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//!
//! | method path | what |
//! |---|---|
//! | `GET /api/drops` | live and upcoming drops with their variants, stock, top 3 buyers, the viewer's hold |
//! | `POST /api/drops` | create a drop, of one variant or several, sold first come or by a draw (`mode`, `drawAt`, `beaconName`) (admin) |
//! | `POST /api/reservations` `{dropId, variantId?, quantity?}` | hold units of one variant (201 new, 200 the same hold again) |
//! | `GET /api/reservations/{id}` | one of the caller's holds |
//! | `DELETE /api/reservations/{id}` | the owner releases |
//! | `POST /api/purchases` `{reservationId}` | complete a purchase (201; the owner repeating it: 200, the same purchase) |
//! | `GET /api/purchases/{id}`, `GET /api/me/purchases?before=&limit=` | purchase records: the buyer's own (or any, for the admin) |
//! | `POST /api/drops/{id}/waitlist` `{variantId?, quantity?}` · `GET` · `DELETE` | wait in line for a sold-out variant (201 new place, 200 the same place), see one's place, leave (204) |
//! | `POST /api/drops/{id}/entries` `{variantId?}` · `GET` · `DELETE` | enter a draw drop's draw (201 new entry, 200 the same entry), see one's entry and its outcome, withdraw before `drawAt` (204) |
//! | `GET /api/drops/{id}/draw` | a draw's public record: the seed's hash from creation; after the draw, the seed, entries, stock and winners to check it with |
//! | `GET /api/admin/drops`, `PATCH /api/admin/drops/{id}`, `POST /api/admin/drops/{id}/pause` · `/resume` · `/end`, `POST /api/admin/purchases/{id}/cancel` | admin operations |
//! | `GET /api/admin/events?after=&limit=&dropId=` | the durable event log, oldest first (admin) |
//! | `GET /api/admin/cursors` · `DELETE /api/admin/cursors/{name}` | the log's named cursors (webhook endpoints'); remove one whose consumer is gone (admin) |
//! | `GET /api/ws?after=` | WebSocket: `snapshot` (or, resuming from a `seq`, the missed frames and `resumed`), `stock`, `purchase`, `dropCreated`, `dropUpdated`, `waitlistMoved`, `drawCompleted`, and the buyer's own frames (`holdOffered`, `waitlistJoined`, `waitlistLeft`, …) |
//! | `GET /api/health/live`, `GET /api/health/ready` (= `GET /api/health`) | liveness (no store), readiness (store answers, not draining; 503 with `Retry-After` otherwise) |
//! | `GET /metrics`, `GET /api/openapi.json` | Prometheus metrics, API spec |
//!
//! The buyer is whoever the identity hook says (signed guest sessions by
//! default; see [`IdentityHook`]); the admin, whoever the admin hook lets
//! in. Every write but signing in takes an `Idempotency-Key`: a retry with
//! the same key and body is answered again (`Idempotent-Replayed: true`)
//! instead of acting twice.
//!
//! Errors are `{"error": CODE, "message": text, "field"?: name}` with a
//! fitting status: 400 bad input, 401 no identity, 403 not allowed, 404
//! unknown id (or another buyer's), 409 conflict (sold out, not active,
//! paused, a hold of something else, over the per-buyer limit), 410
//! expired hold, 422 a rule between fields or a reused idempotency key,
//! 413 body over 16 KiB, 429 rate limited (with `Retry-After`); the
//! WebSocket answers 403 to a foreign `Origin` and 503 over its caps.
//! A 5xx says only `INTERNAL` or `UNAVAILABLE`; its cause goes to the log.
//!
//! ## In a host application
//!
//! [`DropApi::router`] is the four parts together; a host that has some of
//! them already takes the others: [`DropApi::api_router`] (drops, holds,
//! purchases, WebSocket), [`DropApi::health_router`],
//! [`DropApi::openapi_router`], [`DropApi::metrics_router`].
//!
//! - **Metrics** go into the host's Prometheus registry with
//!   [`DropApiBuilder::metrics_registry`] (all named `dropkit_*`); the host
//!   serves them on its own `/metrics`.
//! - **A prefix**: `Router::new().nest("/shop", api.router())` serves
//!   `/shop/api/...` and the WebSocket at `/shop/api/ws`, and the OpenAPI
//!   document names `/shop` as its server ([`openapi_document`]).
//! - **Client addresses**: serve with
//!   `into_make_service_with_connect_info::<SocketAddr>()` (as
//!   [`DropApi::serve`] does), and name the load balancers in front with
//!   [`DropApiBuilder::trusted_proxy`], so the per-IP rate limit counts
//!   clients rather than the balancer.
//! - **Bounds**: [`DropApi::serve`] closes requests whose headers are late
//!   ([`DropApiBuilder::header_timeout`]) and connections over the caps
//!   ([`DropApiBuilder::conn_max_per_ip`], [`DropApiBuilder::conn_max`]);
//!   a host serving the router itself needs bounds of its own. The
//!   WebSocket's own bounds apply however it is served: a foreign `Origin`
//!   gets 403, sockets over [`DropApiBuilder::ws_max_per_ip`] or
//!   [`DropApiBuilder::ws_max`] get 503, and a socket that answers no ping
//!   for [`DropApiBuilder::ws_idle_timeout`] is closed.
//! - **Shutdown**: a host serving the router itself stops its server
//!   (axum's `with_graceful_shutdown`, after [`DropApi::begin_shutdown`] so
//!   WebSockets close), then calls [`DropApi::shutdown`], which waits for
//!   the API's requests, sockets, hub, scheduler and webhook deliverers and
//!   then closes the store. [`DropServer`] does all of it in one call.
//! - **Webhooks**: [`DropApiBuilder::webhooks`] runs [`Webhooks`] beside
//!   the API — purchases and cancellations POSTed to your endpoints from
//!   the store's event log, signed with HMAC-SHA256, at least once and in
//!   log order, one instance delivering per endpoint ([`webhooks`]).
//!
//! ## Live updates
//!
//! Stock changes coalesce: each client receives at most one `stock`
//! message per drop per tick (50 ms by default), always the latest value,
//! whatever the reserve rate; the first change after a quiet tick goes out
//! at once. Frames are serialized once and shared by every client through
//! a bounded queue: a client that falls behind is resent a snapshot, one
//! whose socket stalls is closed, and neither slows anyone else. Every
//! other frame comes from the store's durable event log and carries its
//! `seq`: a client that reconnects with `?after=<seq>` gets the frames it
//! missed instead of a snapshot when the gap is small.

mod admin_routes;
mod app;
mod bounds;
mod caller;
mod caps;
mod draw_routes;
mod error;
mod extract;
mod health;
mod hub;
mod idempotency;
mod identity;
mod limit;
mod metrics;
mod names;
mod openapi;
mod origin;
mod proxy;
mod purchase_routes;
mod routes;
mod schema;
mod server;
mod session_routes;
mod state;
mod waitlist_routes;
pub mod webhooks;
pub mod wire;
mod ws;

pub use app::{
    DEFAULT_BODY_LIMIT, DEFAULT_CLIENT_QUEUE, DEFAULT_CONN_MAX, DEFAULT_CONN_MAX_PER_IP,
    DEFAULT_HEADER_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TICK, DEFAULT_WS_IDLE_TIMEOUT,
    DEFAULT_WS_MAX, DEFAULT_WS_MAX_PER_IP, DEFAULT_WS_PING_INTERVAL, DropApi, DropApiBuilder,
};
pub use error::{ApiError, ErrorBody, status_of};
pub use identity::{
    AdminError, AdminHook, BearerAdmin, ClaimedIdentity, DEFAULT_ID_HEADER, DEFAULT_NAME_HEADER,
    DEFAULT_SESSION_COOKIE, DEFAULT_SESSION_TTL, DEFAULT_SIGN_INS_PER_MINUTE, HeaderIdentity,
    Identity, IdentityError, IdentityHook, IdentityRequest, SessionIdentity, SessionKey,
};
pub use metrics::Metrics;
pub use names::FeedNames;
pub use openapi::openapi_document;
pub use server::DropServer;
pub use webhooks::{EndpointStatus, WebhookDeliveries, Webhooks, WebhooksBuilder};
