//! `POST/GET/DELETE /api/session`: signing guests in and out, when the API
//! runs on signed sessions ([`SessionIdentity`](crate::SessionIdentity)).

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use drop_core::Username;

use crate::caller::{Head, forgery_checks, unauthenticated};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::identity::{IdentityError, SessionToken, Sessions};
use crate::state::AppState;
use crate::wire::{BuyerView, SessionView, SignInBody, time};

/// A write that passed the cross-site checks, taken before the body is
/// read: a page elsewhere could otherwise sign its visitors in as a guest
/// of its choosing.
pub(crate) struct SameSiteWrite(Head);

impl FromRequestParts<AppState> for SameSiteWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let head = Head::of(parts, app);
        forgery_checks(app, &head)?;
        Ok(Self(head))
    }
}

fn sessions(app: &AppState) -> &Sessions {
    app.sessions
        .as_deref()
        .expect("session routes are mounted only with sessions")
}

fn view(token: &SessionToken, raw: Option<String>) -> SessionView {
    SessionView {
        buyer: BuyerView {
            id: token.buyer.id.to_string(),
            display_name: token.buyer.display_name.to_string(),
        },
        token: raw,
        expires_at: time(token.expires_at),
    }
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Signs a guest in: a new buyer with `username` as display name, a
/// session cookie, and the same session as a bearer token.
#[utoipa::path(
    post, path = "/api/session", operation_id = "signIn", request_body = SignInBody,
    responses(
        (status = 200, description = "Signed in. The answer sets the session cookie \
            (`HttpOnly; SameSite=Lax`); `token` is the same session for `Authorization: Bearer`.",
            body = SessionView,
            headers(("Set-Cookie" = String, description = "The session cookie"))),
        (status = 400, description = "`INVALID_INPUT` on `username`, or `INVALID_JSON`", body = ErrorBody),
        (status = 403, description = "`FORBIDDEN`: sent from a page of another origin", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED`: too many sign-ins from this address", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn sign_in(
    State(app): State<AppState>,
    SameSiteWrite(head): SameSiteWrite,
    JsonBody(body): JsonBody<SignInBody>,
) -> Result<Response, ApiError> {
    let s = sessions(&app);
    let name = Username::parse(&body.username)?;
    s.check_sign_in(head.client_ip)?;
    let (raw, token) = s.sign_in(name);
    app.metrics.operation("sign_in", "ok");
    let cookie = s.set_cookie(&raw);
    Ok(with_cookie(
        Json(view(&token, Some(raw))).into_response(),
        &cookie,
    ))
}

/// The signed-in buyer.
#[utoipa::path(
    get, path = "/api/session", operation_id = "getSession",
    security(("session" = []), ("sessionToken" = [])),
    responses(
        (status = 200, description = "Signed in (no `token`: it is not answered again)", body = SessionView),
        (status = 401, description = "`UNAUTHENTICATED`: not signed in, or the session expired or was signed out", body = ErrorBody),
    )
)]
pub(crate) async fn get_session(
    State(app): State<AppState>,
    head: Head,
) -> Result<Json<SessionView>, ApiError> {
    match sessions(&app).token_of(&head.request(None)) {
        Ok(Some(token)) => Ok(Json(view(&token, None))),
        Ok(None) => Err(unauthenticated("not signed in")),
        Err(IdentityError::Rejected(m) | IdentityError::Unavailable(m)) => Err(unauthenticated(m)),
    }
}

/// Signs out: the session ends on every instance and the cookie is
/// cleared. Answers 204 also when there was no session to end.
#[utoipa::path(
    delete, path = "/api/session", operation_id = "signOut",
    responses(
        (status = 204, description = "Signed out (or was not signed in); the cookie is cleared",
            headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 403, description = "`FORBIDDEN`: sent with the cookie from a page of another origin", body = ErrorBody),
    )
)]
pub(crate) async fn sign_out(
    State(app): State<AppState>,
    head: Head,
) -> Result<Response, ApiError> {
    let s = sessions(&app);
    if let Ok(Some(token)) = s.token_of(&head.request(None)) {
        if token.from_cookie {
            forgery_checks(&app, &head)?;
        }
        s.revoke(&token).await?;
        app.metrics.operation("sign_out", "ok");
    }
    Ok(with_cookie(
        StatusCode::NO_CONTENT.into_response(),
        &s.clear_cookie(),
    ))
}
