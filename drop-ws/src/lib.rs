//! # drop-ws
//!
//! The web layer of dropkit: the REST + WebSocket API over any
//! [`InventoryStore`](drop_core::InventoryStore), as an axum [`Router`](axum::Router)
//! you serve on its own or nest into your own app, and the broadcast
//! [`Hub`] that keeps every client's stock live.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn drop_core::InventoryStore>) -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::SocketAddr;
//! let api = drop_ws::DropApi::builder(store)
//!     .admin_token("change-me")
//!     .rate_limit_per_minute(120)
//!     .build()
//!     .await?;
//! let app = axum::Router::new().merge(api.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
//! # Ok(()) }
//! ```
//!
//! ## Endpoints
//!
//! | method path | what |
//! |---|---|
//! | `GET /api/drops?username=` | live and upcoming drops with stock, top 3 buyers, the viewer's hold |
//! | `POST /api/drops` | create a drop (`Authorization: Bearer <admin token>`) |
//! | `POST /api/reservations` `{dropId, username}` | reserve one unit (201 new, 200 existing hold) |
//! | `GET /api/reservations/{id}` | a hold's status and expiry |
//! | `DELETE /api/reservations/{id}` | the owner releases (`{username}` body or `?username=`) |
//! | `POST /api/purchases` `{reservationId, username}` | complete a purchase |
//! | `GET /api/ws` | WebSocket: `snapshot`, `stock`, `purchase`, `dropCreated` (an expiry shows as `stock`) |
//! | `GET /api/health/live`, `GET /api/health/ready` (= `GET /api/health`) | liveness (no store), readiness (store answers, not draining; 503 with `Retry-After` otherwise) |
//! | `GET /metrics`, `GET /api/openapi.json` | Prometheus metrics, API spec |
//!
//! Errors are `{"error": CODE, "message": text, "field"?: name}` with a
//! fitting status: 400 bad input, 401/403 admin token, 404 unknown id,
//! 409 conflict (sold out, not active, already purchased), 410 expired
//! hold, 413 body over 16 KiB, 429 rate limited (with `Retry-After`).
//!
//! ## Live updates
//!
//! Stock changes coalesce: each client receives at most one `stock`
//! message per drop per tick (50 ms by default), always the latest value,
//! whatever the reserve rate; the first change after a quiet tick goes out
//! at once. Frames are serialized once and shared by every client through
//! a bounded queue: a client that falls behind is resent a snapshot, one
//! whose socket stalls is closed, and neither slows anyone else.

mod app;
mod error;
mod extract;
mod health;
mod hub;
mod limit;
mod metrics;
mod openapi;
mod proxy;
mod routes;
mod server;
mod state;
pub mod wire;
mod ws;

pub use app::{
    DEFAULT_BODY_LIMIT, DEFAULT_CLIENT_QUEUE, DEFAULT_REQUEST_TIMEOUT, DEFAULT_TICK, DropApi,
    DropApiBuilder,
};
pub use error::{ApiError, ErrorBody, status_of};
pub use metrics::Metrics;
pub use openapi::openapi_document;
pub use server::DropServer;
