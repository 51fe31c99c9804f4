//! The REST handlers.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use drop_core::{DropError, ReservationId, Username};

use crate::app::AppState;
use crate::extract::{JsonBody, parse_json};
use crate::wire::{
    CreateDropBody, DropView, HealthView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, UsernameQuery,
};
use crate::{ApiError, ErrorBody};

fn username(raw: &str) -> Result<Username, ApiError> {
    Ok(Username::parse(raw)?)
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(q)| q)
        .map_err(|rej| ApiError::invalid("query", rej.body_text()))
}

fn reservation_id(p: Result<Path<String>, PathRejection>) -> Result<ReservationId, ApiError> {
    let Path(raw) = p.map_err(|rej| ApiError::invalid("id", rej.body_text()))?;
    raw.parse::<ReservationId>()
        .map_err(|_| ApiError::invalid("id", "must be a reservation id (UUID)"))
}

/// Counts an operation's outcome and passes the result through.
fn counted<T>(app: &AppState, op: &'static str, r: Result<T, DropError>) -> Result<T, ApiError> {
    match r {
        Ok(v) => {
            app.metrics.operation(op, "ok");
            Ok(v)
        }
        Err(err) => {
            app.metrics.operation(op, err.code());
            Err(err.into())
        }
    }
}

fn client_ip(req_ext: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    req_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Live and upcoming drops, with the viewer's hold when `username` is given.
#[utoipa::path(
    get, path = "/api/drops", params(UsernameQuery),
    responses(
        (status = 200, description = "Drops that have not ended", body = [DropView]),
        (status = 400, description = "Bad username", body = ErrorBody),
    )
)]
pub(crate) async fn list_drops(
    State(app): State<AppState>,
    q: Result<Query<UsernameQuery>, QueryRejection>,
) -> Result<Json<Vec<DropView>>, ApiError> {
    let q = query(q)?;
    let viewer = match q.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(username(raw)?),
    };
    let drops = app.store.overview(viewer.as_ref()).await?;
    Ok(Json(drops.iter().map(DropView::from).collect()))
}

/// Creates a drop (admin bearer token required).
#[utoipa::path(
    post, path = "/api/drops", request_body = CreateDropBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = DropView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 401, description = "No token", body = ErrorBody),
        (status = 403, description = "Wrong token", body = ErrorBody),
    )
)]
pub(crate) async fn create_drop(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<DropView>), ApiError> {
    // Authenticate before reading the body, so strangers learn nothing
    // about the validation rules.
    app.check_admin(headers.get(header::AUTHORIZATION))?;
    let body: CreateDropBody = parse_json(&body)?;
    let new = body.into_new_drop(app.default_hold)?;
    let state = app.store.create_drop(new).await?;
    Ok((StatusCode::CREATED, Json(DropView::new(&state, &[], None))))
}

/// Reserves one unit: 201 with a new hold, 200 with the caller's existing one.
#[utoipa::path(
    post, path = "/api/reservations", request_body = ReserveBody,
    responses(
        (status = 201, description = "New hold", body = ReservationView),
        (status = 200, description = "The caller's existing hold, unchanged", body = ReservationView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 404, description = "No such drop", body = ErrorBody),
        (status = 409, description = "Sold out or not active", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub(crate) async fn reserve(
    State(app): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
    let ip = client_ip(req.extensions());
    let JsonBody(body) = JsonBody::<ReserveBody>::from_req(req).await?;
    let drop_id = body.drop_id.parse()?;
    let user = username(&body.username)?;
    if let Some(limits) = &app.limits {
        limits.check(ip, user.as_str())?;
    }
    let reserved = counted(&app, "reserve", app.store.reserve(drop_id, &user).await)?;
    let status = if reserved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ReservationView::from(&reserved.reservation))))
}

/// A hold's status and expiry.
#[utoipa::path(
    get, path = "/api/reservations/{id}",
    params(("id" = String, Path, description = "Reservation id")),
    responses(
        (status = 200, description = "The hold", body = ReservationView),
        (status = 400, description = "Not an id", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
    )
)]
pub(crate) async fn get_reservation(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ReservationView>, ApiError> {
    let id = reservation_id(id)?;
    let res = app.store.get_reservation(id).await?;
    Ok(Json(ReservationView::from(&res)))
}

/// The owner gives a hold back (username in the body or the query).
#[utoipa::path(
    delete, path = "/api/reservations/{id}",
    params(("id" = String, Path, description = "Reservation id"), UsernameQuery),
    request_body(content = ReleaseBody, description = "Optional: the owner's username"),
    responses(
        (status = 200, description = "Released", body = ReservationView),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "Unknown", body = ErrorBody),
        (status = 409, description = "Already purchased or released", body = ErrorBody),
        (status = 410, description = "Expired", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(app): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<UsernameQuery>, QueryRejection>,
    body: axum::body::Bytes,
) -> Result<Json<ReservationView>, ApiError> {
    let id = reservation_id(id)?;
    let from_query = query(q)?.username;
    let from_body = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_json::<ReleaseBody>(&body)?.username
    };
    let raw = from_body
        .or(from_query)
        .ok_or_else(|| ApiError::invalid("username", "missing field `username`"))?;
    let user = username(&raw)?;
    let res = counted(&app, "release", app.store.release(id, &user).await)?;
    Ok(Json(ReservationView::from(&res)))
}

/// Completes a purchase within the hold's window.
#[utoipa::path(
    post, path = "/api/purchases", request_body = PurchaseBody,
    responses(
        (status = 201, description = "Bought", body = PurchaseView),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 403, description = "Not the owner", body = ErrorBody),
        (status = 404, description = "Unknown hold", body = ErrorBody),
        (status = 409, description = "Already purchased or released", body = ErrorBody),
        (status = 410, description = "Hold expired", body = ErrorBody),
        (status = 429, description = "Rate limited", body = ErrorBody),
    )
)]
pub(crate) async fn purchase(
    State(app): State<AppState>,
    req: Request,
) -> Result<(StatusCode, Json<PurchaseView>), ApiError> {
    let ip = client_ip(req.extensions());
    let JsonBody(body) = JsonBody::<PurchaseBody>::from_req(req).await?;
    let id: ReservationId = body.reservation_id.parse()?;
    let user = username(&body.username)?;
    if let Some(limits) = &app.limits {
        limits.check(ip, user.as_str())?;
    }
    let bought = counted(&app, "purchase", app.store.purchase(id, &user).await)?;
    Ok((StatusCode::CREATED, Json(PurchaseView::from(&bought))))
}

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
    if app.cancel.is_cancelled() {
        return Err(ApiError::unavailable("the server is shutting down"));
    }
    app.store.health().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness check failed");
        ApiError::unavailable("the store is unavailable")
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

/// Prometheus text exposition.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

/// The OpenAPI document.
pub(crate) async fn openapi() -> Response {
    use utoipa::OpenApi as _;
    Json(crate::openapi::ApiDoc::openapi()).into_response()
}

/// Any other path under `/api`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}

/// Records the latency of every request by matched route.
pub(crate) async fn record_latency(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let res = next.run(req).await;
    app.metrics.request(
        method.as_str(),
        &route,
        res.status().as_u16(),
        started.elapsed(),
    );
    res
}
