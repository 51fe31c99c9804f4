//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use crate::wire::HealthView;

/// Readiness: `200 {"status":"ok"}` when this instance can serve (the
/// store answers in time, and, for a shared store, hears other instances)
/// and is not draining; 503 `UNAVAILABLE` with `Retry-After` otherwise.
#[utoipa::path(
    get, path = "/api/health/ready",
    responses(
        (status = 200, description = "Ready to serve", body = HealthView),
        (status = 503, description = "Store unavailable or server draining", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))),
    )
)]
pub(crate) async fn ready(State(app): State<AppState>) -> Result<Json<HealthView>, ApiError> {
    if app.is_draining() {
        return Err(ApiError::unavailable("the server is shutting down").with_detail("draining"));
    }
    app.store.health().await.map_err(|err| {
        ApiError::unavailable("the store is unavailable").with_detail(err.to_string())
    })?;
    Ok(Json(HealthView { status: "ok" }))
}

/// `GET /api/health`: readiness, kept for existing probes.
#[utoipa::path(
    get, path = "/api/health",
    responses(
        (status = 200, description = "Ready to serve (same as /api/health/ready)", body = HealthView),
        (status = 503, description = "Store unavailable or server draining", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))),
    )
)]
pub(crate) async fn health(state: State<AppState>) -> Result<Json<HealthView>, ApiError> {
    ready(state).await
}

/// Liveness: `200 {"status":"ok"}` while the process serves HTTP. Never
/// asks the store, so a database outage does not get the process
/// restarted.
#[utoipa::path(
    get, path = "/api/health/live",
    responses((status = 200, description = "The process is alive", body = HealthView))
)]
pub(crate) async fn live() -> Json<HealthView> {
    Json(HealthView { status: "ok" })
}
