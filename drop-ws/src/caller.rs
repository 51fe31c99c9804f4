//! Who is asking, as handlers take it: the request's head handed to the
//! identity hook, the cross-site rules for credentials a browser sends by
//! itself, and the admin check.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use drop_core::{Buyer, Username};

use crate::error::ApiError;
use crate::identity::{AdminError, Identity, IdentityError, IdentityRequest};
use crate::state::AppState;
use crate::wire::UsernameQuery;

/// What identity needs of a request, kept past the extractors so a hook
/// that reads claims can run once the body is parsed.
#[derive(Debug)]
pub(crate) struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    pub(crate) client_ip: Option<IpAddr>,
    peer_ip: Option<IpAddr>,
}

/// The peer's address and the client's (behind trusted proxies, the
/// forwarded one).
fn addresses(parts: &Parts, app: &AppState) -> (Option<IpAddr>, Option<IpAddr>) {
    // As axum's `ConnectInfo` extractor reads it: the server's, or the
    // one a host or a test set with `MockConnectInfo`.
    let peer_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .or_else(|| {
            parts
                .extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|MockConnectInfo(addr)| addr.ip())
        });
    let client_ip = peer_ip.map(|peer| app.trusted_proxies.client(peer, &parts.headers));
    (peer_ip, client_ip)
}

/// The request as hooks see it, read in place: nothing of it is copied.
fn request_of<'a>(
    parts: &'a Parts,
    app: &AppState,
    claimed: Option<&'a str>,
) -> IdentityRequest<'a> {
    let (peer_ip, client_ip) = addresses(parts, app);
    IdentityRequest {
        method: &parts.method,
        uri: &parts.uri,
        headers: &parts.headers,
        client_ip,
        peer_ip,
        claimed,
    }
}

impl Head {
    pub(crate) fn of(parts: &Parts, app: &AppState) -> Self {
        let (peer_ip, client_ip) = addresses(parts, app);
        Self {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            client_ip,
            peer_ip,
        }
    }

    pub(crate) fn request<'a>(&'a self, claimed: Option<&'a str>) -> IdentityRequest<'a> {
        IdentityRequest {
            method: &self.method,
            uri: &self.uri,
            headers: &self.headers,
            client_ip: self.client_ip,
            peer_ip: self.peer_ip,
            claimed,
        }
    }

    pub(crate) fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}

impl FromRequestParts<AppState> for Head {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, app))
    }
}

/// Asks the hook; a refusal is `401 UNAUTHENTICATED` (or 503).
async fn identify(
    app: &AppState,
    request: &IdentityRequest<'_>,
) -> Result<Option<Identity>, ApiError> {
    app.identity
        .identify(request)
        .await
        .map_err(|err| match err {
            IdentityError::Rejected(message) => unauthenticated(message),
            IdentityError::Unavailable(detail) => {
                ApiError::unavailable("cannot tell who is asking now").with_detail(detail)
            }
        })
}

pub(crate) fn unauthenticated(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
}

/// The buyer a buyer route acts for. Without an identity the route
/// answers 401 before reading the body, so strangers learn nothing of
/// its rules. Under a hook that reads claims the buyer is known only
/// once the body is parsed: [`resolve`](Self::resolve) then asks.
#[derive(Debug)]
pub(crate) struct Caller {
    known: Option<Buyer>,
    /// Kept only under a hook that reads claims, which runs after the body.
    head: Option<Head>,
    client_ip: Option<IpAddr>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if app.identity.reads_claimed_username() {
            let head = Head::of(parts, app);
            return Ok(Self {
                known: None,
                client_ip: head.client_ip,
                head: Some(head),
            });
        }
        let request = request_of(parts, app, None);
        let client_ip = request.client_ip;
        let identity = identify(app, &request)
            .await?
            .ok_or_else(|| unauthenticated("sign in first"))?;
        if identity.is_ambient() {
            forgery_checks_on(app, &parts.method, &parts.headers)?;
        }
        Ok(Self {
            known: Some(identity.into_buyer()),
            head: None,
            client_ip,
        })
    }
}

impl Caller {
    /// The buyer; `claimed` is the username the request names, read only
    /// under a hook that reads claims (where a bad one is a 400 on
    /// `username`, as the original API answered).
    pub(crate) async fn resolve(
        self,
        app: &AppState,
        claimed: Option<&str>,
    ) -> Result<Buyer, ApiError> {
        if let Some(buyer) = self.known {
            return Ok(buyer);
        }
        let raw =
            claimed.ok_or_else(|| ApiError::invalid("username", "missing field `username`"))?;
        // The shape first, so a bad name is a 400 naming the field.
        Username::parse(raw)?;
        let head = self
            .head
            .as_ref()
            .expect("kept under a hook that reads claims");
        identify(app, &head.request(Some(raw)))
            .await?
            .map(Identity::into_buyer)
            .ok_or_else(|| unauthenticated("name the buyer"))
    }

    /// Whether the buyer is named by the request (claims) rather than
    /// known from its credentials.
    pub(crate) fn is_claimed(&self) -> bool {
        self.known.is_none()
    }

    /// The client's address, for the per-address rate limit.
    pub(crate) fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }
}

/// The viewer of a public route (the drops list, the live feed): a
/// buyer when the request identifies one, anonymous otherwise. Bad
/// credentials make an anonymous viewer, not an error: a page with an
/// expired cookie still shows the drops. Under a hook that reads claims
/// the viewer is `?username=` (a bad one is a 400 on `username`).
#[derive(Debug)]
pub(crate) struct Viewer(pub(crate) Option<Buyer>);

impl Viewer {
    /// The viewer of a request seen as `request` (its claim not yet set).
    pub(crate) async fn of(app: &AppState, request: IdentityRequest<'_>) -> Result<Self, ApiError> {
        let claimed = if app.identity.reads_claimed_username() {
            let Query(query) = Query::<UsernameQuery>::try_from_uri(request.uri)
                .map_err(|rej| ApiError::invalid("query", rej.body_text()))?;
            let Some(raw) = query
                .username
                .map(|raw| raw.trim().to_owned())
                .filter(|raw| !raw.is_empty())
            else {
                return Ok(Self(None));
            };
            Username::parse(&raw)?;
            Some(raw)
        } else {
            None
        };
        let request = request.with_claimed_username(claimed.as_deref());
        match identify(app, &request).await {
            Ok(identity) => Ok(Self(identity.map(Identity::into_buyer))),
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => Ok(Self(None)),
            Err(err) => Err(err),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        Self::of(app, request_of(parts, app, None)).await
    }
}

/// A browser adds cookies to requests any page makes, so a write
/// identified by one must show it comes from an allowed page: a JSON body
/// (a cross-site form can only send form encodings and `text/plain`
/// without asking the server first) and an allowed `Origin`.
pub(crate) fn forgery_checks(app: &AppState, head: &Head) -> Result<(), ApiError> {
    forgery_checks_on(app, &head.method, &head.headers)
}

fn forgery_checks_on(app: &AppState, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if *method == Method::POST && !is_json(headers) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as `Content-Type: application/json`",
        ));
    }
    if !app.origins.allows(headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "requests from this origin are not allowed",
        ));
    }
    Ok(())
}

/// `Content-Type: application/json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Proof that the admin hook let the request in. Taken before the body,
/// so strangers learn nothing about the validation rules.
#[derive(Debug)]
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        app.admin
            .authorize(&request_of(parts, app, None))
            .await
            .map(|()| Admin)
            .map_err(|err| match err {
                AdminError::Unauthenticated(m) => ApiError::unauthorized(m),
                AdminError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            })
    }
}

/// Whoever may read a purchase: an admin (the admin hook lets the
/// request in), or else a buyer, who sees only their own.
#[derive(Debug)]
pub(crate) enum Reader {
    /// The admin hook let the request in.
    Admin,
    /// A buyer (resolved as for any buyer route).
    Buyer(Box<Caller>),
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        if app
            .admin
            .authorize(&request_of(parts, app, None))
            .await
            .is_ok()
        {
            return Ok(Self::Admin);
        }
        Caller::from_request_parts(parts, app)
            .await
            .map(|c| Self::Buyer(Box::new(c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_recognised_with_parameters_and_in_any_case() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, v.parse().unwrap());
            is_json(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("Application/JSON; charset=utf-8"));
        assert!(!ct("text/plain"));
        assert!(!ct("application/x-www-form-urlencoded"));
        assert!(!ct("application/jsonp"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
