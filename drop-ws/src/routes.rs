//! The REST handlers of drops, holds and purchases.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use drop_core::{Buyer, DropError, ReservationId, Username};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Admin, ClientIp, JsonBody, OptionalJsonBody, QueryParams, ReservationPath};
use crate::state::AppState;
use crate::wire::{
    CreateDropBody, DropView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, UsernameQuery,
};

/// The buyer a claimed username names: the username is both the store's
/// key for them and their display name, so the wire format stays as it was.
fn username(raw: &str) -> Result<Buyer, ApiError> {
    Ok(Buyer::claimed(Username::parse(raw)?))
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
    get, path = "/api/drops", operation_id = "listDrops", params(UsernameQuery),
    responses(
        (status = 200, description = "Drops that have not ended", body = [DropView]),
        (status = 400, description = "`INVALID_INPUT`: a username that breaks the rules", body = ErrorBody),
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
    let drops = app.store.overview(viewer.as_ref().map(|b| &b.id)).await?;
    Ok(Json(drops.iter().map(DropView::from).collect()))
}

/// Creates a drop (admin bearer token required).
#[utoipa::path(
    post, path = "/api/drops", operation_id = "createDrop", request_body = CreateDropBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = DropView),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHORIZED`: no bearer token", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`FORBIDDEN`: the token is wrong", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `startsAt` or `endsAt`: an instant outside \
            1970-01-01T00:00:00Z – 9999-12-31T23:59:59Z, `endsAt` not after `startsAt`, or `endsAt` \
            already passed. Rules between fields and against the clock, which the schema cannot state.",
            body = ErrorBody),
    )
)]
pub(crate) async fn create_drop(
    State(app): State<AppState>,
    _: Admin,
    JsonBody(body): JsonBody<CreateDropBody>,
) -> Result<(StatusCode, Json<DropView>), ApiError> {
    let new = body.into_new_drop(app.default_hold).map_err(time_rule)?;
    let state = app
        .store
        .create_drop(new)
        .await
        .map_err(|err| time_rule(err.into()))?;
    Ok((StatusCode::CREATED, Json(DropView::new(&state, &[], None))))
}

/// Reserves one unit: 201 with a new hold, 200 with the caller's existing one.
#[utoipa::path(
    post, path = "/api/reservations", operation_id = "reserve", request_body = ReserveBody,
    responses(
        (status = 201, description = "New hold", body = ReservationView),
        (status = 200, description = "The caller's existing hold, unchanged", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema) or `INVALID_JSON`", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUT_OF_STOCK`, or `DROP_NOT_ACTIVE` (not started yet, or ended)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per username)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
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
        limits.check(ip, user.id.as_str())?;
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
    get, path = "/api/reservations/{id}", operation_id = "getReservation",
    params(("id" = Uuid, Path, description = "Reservation id")),
    responses(
        (status = 200, description = "The hold, whatever its status (a released or expired hold \
            stays readable, with that status)", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`", body = ErrorBody),
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
/// Releasing ends the hold, it does not erase it: the hold stays readable
/// with `GET /api/reservations/{id}`, status `released`.
#[utoipa::path(
    delete, path = "/api/reservations/{id}", operation_id = "release",
    params(("id" = Uuid, Path, description = "Reservation id"), UsernameQuery),
    request_body(content = ReleaseBody, description = "Optional: the owner's username (it wins over `?username=`)"),
    responses(
        (status = 200, description = "Released; the hold stays readable with status `released`", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID, or a username that breaks the rules) \
            or `INVALID_JSON`", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER`", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ALREADY_PURCHASED` or `ALREADY_RELEASED`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `username`: the owner is named neither in the \
            body nor in the query (a rule between two places, which the schema cannot state)", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(app): State<AppState>,
    ReservationPath(id): ReservationPath,
    QueryParams(q): QueryParams<UsernameQuery>,
    OptionalJsonBody(body): OptionalJsonBody<ReleaseBody>,
) -> Result<Json<ReservationView>, ApiError> {
    // A `?username=` is checked even when the body names the owner, so
    // no input is accepted unread.
    let from_query = match q.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(username(raw)?),
    };
    let user = match body.and_then(|b| b.username) {
        Some(raw) => username(&raw)?,
        None => from_query.ok_or_else(|| {
            ApiError::invalid("username", "name the owner in the body or in `?username=`")
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        })?,
    };
    let res = counted(&app, "release", app.store.release(id, &user.id).await)?;
    Ok(Json(ReservationView::from(&res)))
}

/// Completes a purchase within the hold's window.
#[utoipa::path(
    post, path = "/api/purchases", operation_id = "purchase", request_body = PurchaseBody,
    responses(
        (status = 201, description = "Bought", body = PurchaseView),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema) or `INVALID_JSON`", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER`", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`ALREADY_PURCHASED` or `ALREADY_RELEASED`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`: the hold ran out (even if no sweeper has run yet)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per username)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
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
        limits.check(ip, user.id.as_str())?;
    }
    let bought = counted(&app, "purchase", app.store.purchase(id, &user.id).await)?;
    Ok((StatusCode::CREATED, Json(PurchaseView::from(&bought))))
}

/// `INVALID_INPUT` on `startsAt`/`endsAt` from drop validation is a rule
/// between fields or against the clock (the shape was checked while
/// parsing), so it answers 422, keeping 400 for what the schema states.
fn time_rule(err: ApiError) -> ApiError {
    if err.code() == "INVALID_INPUT" && matches!(err.field(), Some("startsAt" | "endsAt")) {
        err.with_status(StatusCode::UNPROCESSABLE_ENTITY)
    } else {
        err
    }
}

/// Any other path under `/api`.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
}
