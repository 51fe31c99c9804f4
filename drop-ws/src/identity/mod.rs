//! Who is asking: the identity hook the host application supplies (or one
//! of the three dropkit ships), and the admin hook.
//!
//! The web layer never takes a request's word for who sent it. Each buyer
//! route asks the configured [`IdentityHook`] for the [`Identity`] behind
//! the request; without one the route answers `401 UNAUTHENTICATED`.
//! Admin routes ask the [`AdminHook`].
//!
//! Provided hooks:
//! - [`SessionIdentity`]: signed guest sessions (`POST /api/session`),
//!   carried in an `HttpOnly` cookie or as a bearer token;
//! - [`HeaderIdentity`]: the buyer named by headers an authenticating
//!   proxy sets, believed only from configured proxy addresses;
//! - [`ClaimedIdentity`]: the username the request names, unchecked
//!   (insecure: for load tests and demos only).

mod claimed;
mod header;
mod session;

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header as http_header};
use drop_core::Buyer;

pub use claimed::ClaimedIdentity;
pub use header::{DEFAULT_ID_HEADER, DEFAULT_NAME_HEADER, HeaderIdentity};
pub use session::{
    DEFAULT_SESSION_COOKIE, DEFAULT_SESSION_TTL, DEFAULT_SIGN_INS_PER_MINUTE, SessionIdentity,
    SessionKey,
};
pub(crate) use session::{SessionToken, Sessions};

/// What a hook may read of a request: its method, URI and headers, the
/// client's address (behind trusted proxies, the forwarded one) and the
/// peer's, and the username the request claims (only for hooks that
/// [read claims](IdentityHook::reads_claimed_username)).
#[derive(Debug, Clone, Copy)]
pub struct IdentityRequest<'a> {
    pub(crate) method: &'a Method,
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) client_ip: Option<IpAddr>,
    pub(crate) peer_ip: Option<IpAddr>,
    pub(crate) claimed: Option<&'a str>,
}

impl<'a> IdentityRequest<'a> {
    /// A request as the hooks see it; for testing a hook of your own.
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        Self {
            method,
            uri,
            headers,
            client_ip: None,
            peer_ip: None,
            claimed: None,
        }
    }

    /// The same request from `client` (as the rate limits count it) over a
    /// connection from `peer`.
    pub fn with_addresses(mut self, client: Option<IpAddr>, peer: Option<IpAddr>) -> Self {
        self.client_ip = client;
        self.peer_ip = peer;
        self
    }

    /// The same request claiming to be from `username`.
    pub fn with_claimed_username(mut self, username: Option<&'a str>) -> Self {
        self.claimed = username;
        self
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// One header as text; `None` when absent or not visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer_token(&self) -> Option<&str> {
        bearer(self.headers.get(http_header::AUTHORIZATION)?)
    }

    /// The value of cookie `name`.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie(self.headers, name)
    }

    /// The client's address: the peer's, or behind a trusted proxy the one
    /// it forwarded. `None` when the server was started without client
    /// addresses.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The address of the connection's other end (a proxy, when there is
    /// one).
    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.peer_ip
    }

    /// The username the request names (in its JSON body, or `?username=`),
    /// given only to hooks that [read claims](IdentityHook::reads_claimed_username).
    pub fn claimed_username(&self) -> Option<&str> {
        self.claimed
    }
}

/// The buyer behind a request, as a hook vouches for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    buyer: Buyer,
    ambient: bool,
}

impl Identity {
    /// A buyer identified by a credential the client sent on purpose (a
    /// bearer token, a header set by a trusted proxy).
    pub fn new(buyer: Buyer) -> Self {
        Self {
            buyer,
            ambient: false,
        }
    }

    /// A buyer identified by a credential the browser adds by itself (a
    /// cookie). Writes identified this way are open to cross-site request
    /// forgery, so they must come as JSON (`415` otherwise) and from an
    /// allowed `Origin` (`403` otherwise).
    pub fn from_cookie(buyer: Buyer) -> Self {
        Self {
            buyer,
            ambient: true,
        }
    }

    /// The buyer.
    pub fn buyer(&self) -> &Buyer {
        &self.buyer
    }

    /// Whether the browser sent the credential by itself (see
    /// [`from_cookie`](Self::from_cookie)).
    pub fn is_ambient(&self) -> bool {
        self.ambient
    }

    pub(crate) fn into_buyer(self) -> Buyer {
        self.buyer
    }
}

/// Why a hook refused a request's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// The credentials are wrong, forged or expired: `401
    /// UNAUTHENTICATED` with this message.
    Rejected(String),
    /// The hook cannot decide now (its own backend is down): `503
    /// UNAVAILABLE`, detail logged.
    Unavailable(String),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rejected(m) => write!(f, "credentials refused: {m}"),
            Self::Unavailable(m) => write!(f, "identity unavailable: {m}"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// Tells the web layer who sent a request. Implement it over your own
/// authentication (a session of your app, a JWT, mTLS) and give it to
/// [`DropApiBuilder::identity`](crate::DropApiBuilder::identity).
///
/// ```
/// use drop_core::async_trait;
/// use drop_core::{Buyer, BuyerId, Username};
/// use drop_ws::{Identity, IdentityError, IdentityHook, IdentityRequest};
///
/// /// Buyers signed in by the host app, which puts its user id in a
/// /// header after checking the user's own session.
/// #[derive(Debug)]
/// struct HostSession;
///
/// #[async_trait]
/// impl IdentityHook for HostSession {
///     async fn identify(
///         &self,
///         request: &IdentityRequest<'_>,
///     ) -> Result<Option<Identity>, IdentityError> {
///         let Some(user) = request.header("x-host-user") else {
///             return Ok(None); // anonymous: buyer routes answer 401
///         };
///         let id = BuyerId::parse(user).map_err(|e| IdentityError::Rejected(e.to_string()))?;
///         let name = Username::parse("member").expect("a valid name");
///         Ok(Some(Identity::new(Buyer::new(id, name))))
///     }
/// }
/// ```
#[async_trait]
pub trait IdentityHook: Send + Sync + fmt::Debug + 'static {
    /// The identity behind `request`: `Ok(None)` when it carries no
    /// credentials (anonymous), `Err` when it carries credentials that
    /// do not hold. Called on every buyer request, so keep it cheap
    /// (verify a signature; cache what needs a lookup).
    async fn identify(
        &self,
        request: &IdentityRequest<'_>,
    ) -> Result<Option<Identity>, IdentityError>;

    /// Whether the hook reads the username a request claims
    /// ([`IdentityRequest::claimed_username`]); only [`ClaimedIdentity`]
    /// does. When true, requests carry `username` in their bodies and
    /// `?username=` as the original API did, and the OpenAPI document
    /// says so. Defaults to false.
    fn reads_claimed_username(&self) -> bool {
        false
    }
}

/// Why an admin request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// No admin credentials: `401 UNAUTHORIZED` (with a bearer challenge).
    Unauthenticated(String),
    /// Credentials that are not an admin's: `403 FORBIDDEN`.
    Forbidden(String),
}

/// Decides who may use the admin routes (creating drops). Give one to
/// [`DropApiBuilder::admin`](crate::DropApiBuilder::admin); the default is
/// [`BearerAdmin`].
#[async_trait]
pub trait AdminHook: Send + Sync + fmt::Debug + 'static {
    /// `Ok(())` when `request` comes from an admin.
    async fn authorize(&self, request: &IdentityRequest<'_>) -> Result<(), AdminError>;
}

/// Admins are whoever sends `Authorization: Bearer <token>` with this
/// token. Compared in constant time.
pub struct BearerAdmin {
    token: String,
}

impl fmt::Debug for BearerAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAdmin").finish_non_exhaustive()
    }
}

impl BearerAdmin {
    /// Admins by `token`; `None` when it is blank (no token means no
    /// admin, not an open door).
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token = token.into();
        (!token.trim().is_empty()).then_some(Self { token })
    }
}

#[async_trait]
impl AdminHook for BearerAdmin {
    async fn authorize(&self, request: &IdentityRequest<'_>) -> Result<(), AdminError> {
        let Some(auth) = request.headers.get(http_header::AUTHORIZATION) else {
            return Err(AdminError::Unauthenticated(
                "an admin bearer token is required".into(),
            ));
        };
        let token = bearer(auth).ok_or_else(|| {
            AdminError::Unauthenticated("use `Authorization: Bearer <admin token>`".into())
        })?;
        if !constant_time_eq(token.as_bytes(), self.token.as_bytes()) {
            return Err(AdminError::Forbidden("the admin token is wrong".into()));
        }
        Ok(())
    }
}

/// The token of `Bearer <token>` (the scheme is case-insensitive).
pub(crate) fn bearer(value: &HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http_header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k == name).then(|| v.trim_matches('"'))
        })
}

/// Compares without stopping at the first difference, so the time taken
/// tells nothing about how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_bearer_tokens_are_read_exactly() {
        let mut h = HeaderMap::new();
        h.append(
            http_header::COOKIE,
            "a=1; dropkit_session=tok.en; b=2".parse().unwrap(),
        );
        h.append(http_header::COOKIE, "c=3".parse().unwrap());
        assert_eq!(cookie(&h, "dropkit_session"), Some("tok.en"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "dropkit"), None);
        assert_eq!(bearer(&"Bearer abc".parse().unwrap()), Some("abc"));
        assert_eq!(bearer(&"bearer  abc ".parse().unwrap()), Some("abc"));
        assert_eq!(bearer(&"Basic abc".parse().unwrap()), None);
        assert_eq!(bearer(&"Bearer ".parse().unwrap()), None);
    }
}
