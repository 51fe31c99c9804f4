//! The REST handlers of drops, holds and purchases.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use drop_core::{Buyer, DropError, ReservationId};

use crate::caller::{Admin, Caller, Viewer};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, OptionalJsonBody, QueryParams, ReservationPath};
use crate::state::AppState;
use crate::wire::{
    CreateDropBody, DropView, PurchaseBody, PurchaseView, ReleaseBody, ReservationView,
    ReserveBody, UsernameQuery,
};

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

/// Through the web API another buyer's hold is simply not there: a 404,
/// never "not yours", so ids tell a stranger nothing.
fn not_theirs(err: DropError) -> DropError {
    match err {
        DropError::NotOwner { reservation_id } => DropError::ReservationNotFound { reservation_id },
        other => other,
    }
}

/// The per-address and per-buyer rate limits, when on.
fn limited(
    app: &AppState,
    caller_ip: Option<std::net::IpAddr>,
    buyer: &Buyer,
) -> Result<(), ApiError> {
    match &app.limits {
        Some(limits) => limits.check(caller_ip, buyer.id.as_str()),
        None => Ok(()),
    }
}

/// Live and upcoming drops, each with the caller's own hold.
#[utoipa::path(
    get, path = "/api/drops", operation_id = "listDrops", params(UsernameQuery),
    responses(
        (status = 200, description = "Drops that have not ended", body = [DropView]),
        (status = 400, description = "`INVALID_INPUT`: a username that breaks the rules", body = ErrorBody),
    )
)]
pub(crate) async fn list_drops(
    State(app): State<AppState>,
    Viewer(viewer): Viewer,
) -> Result<Json<Vec<DropView>>, ApiError> {
    let drops = app.store.overview(viewer.as_ref().map(|b| &b.id)).await?;
    Ok(Json(
        drops.iter().map(|d| DropView::of(d, app.names)).collect(),
    ))
}

/// Creates a drop (admin only).
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
    Ok((
        StatusCode::CREATED,
        Json(DropView::new(&state, &[], None, app.names)),
    ))
}

/// Reserves one unit for the caller: 201 with a new hold, 200 with their
/// existing one.
#[utoipa::path(
    post, path = "/api/reservations", operation_id = "reserve", request_body = ReserveBody,
    responses(
        (status = 201, description = "New hold", body = ReservationView),
        (status = 200, description = "The caller's existing hold, unchanged", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`DROP_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUT_OF_STOCK`, or `DROP_NOT_ACTIVE` (not started yet, or ended)", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn reserve(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ReserveBody>,
) -> Result<(StatusCode, Json<ReservationView>), ApiError> {
    let ip = caller.client_ip();
    let drop_id = body.drop_id.parse()?;
    let claimed = claimed_name(&caller, body.username.as_ref())?;
    let buyer = caller.resolve(&app, claimed).await?;
    limited(&app, ip, &buyer)?;
    let reserved = counted(&app, "reserve", app.store.reserve(drop_id, &buyer).await)?;
    let status = if reserved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(ReservationView::from(&reserved.reservation))))
}

/// One of the caller's holds: its status and expiry.
#[utoipa::path(
    get, path = "/api/reservations/{id}", operation_id = "getReservation",
    params(("id" = Uuid, Path, description = "Reservation id")),
    responses(
        (status = 200, description = "The hold, whatever its status (a released or expired hold \
            stays readable, with that status)", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` on `id`: not a UUID", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
    )
)]
pub(crate) async fn get_reservation(
    State(app): State<AppState>,
    caller: Caller,
    ReservationPath(id): ReservationPath,
) -> Result<Json<ReservationView>, ApiError> {
    let res = if caller.is_claimed() {
        // The original API: a hold is readable by its id alone.
        app.store.get_reservation(id).await?
    } else {
        let buyer = caller.resolve(&app, None).await?;
        let res = app.store.get_reservation(id).await?;
        if res.buyer_id != buyer.id {
            return Err(DropError::ReservationNotFound { reservation_id: id }.into());
        }
        res
    };
    Ok(Json(ReservationView::from(&res)))
}

/// The caller gives one of their holds back. Releasing ends the hold, it
/// does not erase it: the hold stays readable with
/// `GET /api/reservations/{id}`, status `released`.
#[utoipa::path(
    delete, path = "/api/reservations/{id}", operation_id = "release",
    params(("id" = Uuid, Path, description = "Reservation id"), UsernameQuery),
    request_body(content = ReleaseBody, description = "Optional: the owner's username (it wins over `?username=`)"),
    responses(
        (status = 200, description = "Released; the hold stays readable with status `released`", body = ReservationView),
        (status = 400, description = "`INVALID_INPUT` (`id` not a UUID, or a username that breaks the rules) \
            or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER` (claimed identity only); or `FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
        (status = 409, description = "`ALREADY_PURCHASED` or `ALREADY_RELEASED`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`", body = ErrorBody),
        (status = 422, description = "`INVALID_INPUT` on `username`: the owner is named neither in the \
            body nor in the query (a rule between two places, which the schema cannot state)", body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(app): State<AppState>,
    caller: Caller,
    ReservationPath(id): ReservationPath,
    QueryParams(q): QueryParams<UsernameQuery>,
    OptionalJsonBody(body): OptionalJsonBody<ReleaseBody>,
) -> Result<Json<ReservationView>, ApiError> {
    if !caller.is_claimed() {
        let buyer = caller.resolve(&app, None).await?;
        let res = app.store.release(id, &buyer.id).await.map_err(not_theirs);
        let res = counted(&app, "release", res)?;
        return Ok(Json(ReservationView::from(&res)));
    }
    // Claimed identity: a `?username=` is checked even when the body
    // names the owner, so no input is accepted unread.
    let from_query = match q.username.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(raw) => Some(caller_name(raw)?),
    };
    let name = match body.and_then(|b| b.username) {
        Some(raw) => raw,
        None => from_query.ok_or_else(|| {
            ApiError::invalid("username", "name the owner in the body or in `?username=`")
                .with_status(StatusCode::UNPROCESSABLE_ENTITY)
        })?,
    };
    let buyer = caller.resolve(&app, Some(&name)).await?;
    let res = counted(&app, "release", app.store.release(id, &buyer.id).await)?;
    Ok(Json(ReservationView::from(&res)))
}

/// The `username` a body names, read only under claimed identity (other
/// identities ignore the field whatever it holds): a string, or a 400 on
/// `username` as the original API answered.
fn claimed_name<'a>(
    caller: &Caller,
    raw: Option<&'a serde_json::Value>,
) -> Result<Option<&'a str>, ApiError> {
    if !caller.is_claimed() {
        return Ok(None);
    }
    raw.map(|v| {
        <&str as serde::Deserialize>::deserialize(v)
            .map_err(|err| ApiError::invalid("username", err.to_string()))
    })
    .transpose()
}

/// A claimed name, checked.
fn caller_name(raw: &str) -> Result<String, ApiError> {
    drop_core::Username::parse(raw)?;
    Ok(raw.to_owned())
}

/// Buys one of the caller's holds within its window.
#[utoipa::path(
    post, path = "/api/purchases", operation_id = "purchase", request_body = PurchaseBody,
    responses(
        (status = 201, description = "Bought", body = PurchaseView),
        (status = 400, description = "`INVALID_INPUT` (a field breaks its schema) or `INVALID_JSON`", body = ErrorBody),
        (status = 401, description = "`UNAUTHENTICATED`: no valid session", body = ErrorBody),
        (status = 403, description = "`NOT_OWNER` (claimed identity only); or `FORBIDDEN`: a cookie-signed request from a page of another origin", body = ErrorBody),
        (status = 404, description = "`RESERVATION_NOT_FOUND`: no such hold, or not the caller's", body = ErrorBody),
        (status = 409, description = "`ALREADY_PURCHASED` or `ALREADY_RELEASED`", body = ErrorBody),
        (status = 410, description = "`RESERVATION_EXPIRED`: the hold ran out (even if no sweeper has run yet)", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: a cookie-signed request whose body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (per client address and per buyer)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn purchase(
    State(app): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<PurchaseBody>,
) -> Result<(StatusCode, Json<PurchaseView>), ApiError> {
    let ip = caller.client_ip();
    let claimed = caller.is_claimed();
    let id: ReservationId = body.reservation_id.parse()?;
    let name = claimed_name(&caller, body.username.as_ref())?;
    let buyer = caller.resolve(&app, name).await?;
    limited(&app, ip, &buyer)?;
    let mut bought = app.store.purchase(id, &buyer.id).await;
    if !claimed {
        bought = bought.map_err(not_theirs);
    }
    let bought = counted(&app, "purchase", bought)?;
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
