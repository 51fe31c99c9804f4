//! The REST handlers of drops, holds and purchases.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use drop_core::{DropError, ReservationId, Username};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ClientIp, JsonBody, OptionalJsonBody, QueryParams, ReservationPath};
use crate::state::AppState;
use crate::wire::{
    CreateDropBody, DropView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, UsernameQuery,
};

fn username(raw: &str) -> Result<Username, ApiError> {
    Ok(Username::parse(raw)?)
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
    QueryParams(q): QueryParams<UsernameQuery>,
) -> Result<Json<Vec<DropView>>, ApiError> {
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
    _: Admin,
    JsonBody(body): JsonBody<CreateDropBody>,
) -> Result<(StatusCode, Json<DropView>), ApiError> {
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
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ReserveBody>,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
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
    ReservationPath(id): ReservationPath,
) -> Result<Json<ReservationView>, ApiError> {
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
    ReservationPath(id): ReservationPath,
    QueryParams(q): QueryParams<UsernameQuery>,
    OptionalJsonBody(body): OptionalJsonBody<ReleaseBody>,
) -> Result<Json<ReservationView>, ApiError> {
    let raw = body
        .and_then(|b| b.username)
        .or(q.username)
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
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<PurchaseBody>,
) -> Result<(StatusCode, Json<PurchaseView>), ApiError> {
    let id: ReservationId = body.reservation_id.parse()?;
    let user = username(&body.username)?;
    if let Some(limits) = &app.limits {
        limits.check(ip, user.as_str())?;
    }
    let bought = counted(&app, "purchase", app.store.purchase(id, &user).await)?;
    Ok((StatusCode::CREATED, Json(PurchaseView::from(&bought))))
}

/// Any other path under `/api`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}
