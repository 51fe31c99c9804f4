//! Signed guest sessions: `POST /api/session` signs a guest in, and the
//! token it answers (in an `HttpOnly` cookie, or as a bearer token)
//! identifies them until it expires or they sign out.
//!
//! A token is `v1.<payload>.<mac>`: the payload (session id, buyer id,
//! display name, expiry; base64url JSON) signed with HMAC-SHA256 under
//! the instance's key. Checking one needs no lookup, so it costs the hot
//! path a hash, not a round trip. Signing out must still end a token
//! everywhere, so revocations are written to the store (shared by every
//! instance) and each instance keeps the list in memory, reading what is
//! new from the store every second.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, TimeDelta, Utc};
use drop_core::{Buyer, BuyerId, Clock, DropError, InventoryStore, Username};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Identity, IdentityError, IdentityHook, IdentityRequest};
use crate::error::ApiError;
use crate::proxy::client_key;

/// How long a session lasts by default.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The session cookie's default name.
pub const DEFAULT_SESSION_COOKIE: &str = "dropkit_session";
/// Sign-ins allowed per minute per client address by default.
pub const DEFAULT_SIGN_INS_PER_MINUTE: u32 = 30;

/// The shortest key accepted: 256 bits, HMAC-SHA256's own strength.
const MIN_KEY_BYTES: usize = 32;
/// How often an instance reads the revocations other instances wrote.
const REVOCATION_POLL: Duration = Duration::from_secs(1);
/// How far back each read reaches before the previous one's time: a
/// revocation is stamped before it commits, so it may become visible
/// with a stamp a little in the past.
const REVOCATION_OVERLAP: TimeDelta = TimeDelta::seconds(60);
/// Tokens are short; anything longer is not one, and is refused before
/// any work is spent on it.
const MAX_TOKEN: usize = 1024;
/// The token format's version, also bound into the signature.
const VERSION: &str = "v1";

/// The secret sessions are signed with. Instances that serve the same
/// buyers must share it (give it through configuration); a generated key
/// ends every session when the process restarts.
#[derive(Clone)]
pub struct SessionKey {
    mac: Hmac<Sha256>,
    generated: bool,
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKey")
            .field("generated", &self.generated)
            .finish_non_exhaustive()
    }
}

impl SessionKey {
    /// A key from `secret`, at least 32 bytes (e.g. the output of
    /// `openssl rand -base64 32`, used as it is).
    pub fn from_secret(secret: &[u8]) -> Result<Self, DropError> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(DropError::invalid(
                "sessionKey",
                format!("must be at least {MIN_KEY_BYTES} bytes"),
            ));
        }
        Ok(Self {
            mac: Hmac::new_from_slice(secret).expect("HMAC takes keys of any length"),
            generated: false,
        })
    }

    /// A fresh random key, good for one process.
    pub fn generate() -> Self {
        let mut secret = [0u8; MIN_KEY_BYTES];
        getrandom::fill(&mut secret).expect("the operating system's random source works");
        let mut key = Self::from_secret(&secret).expect("long enough");
        key.generated = true;
        key
    }

    /// Whether the key was [generated](Self::generate) rather than given.
    pub fn is_generated(&self) -> bool {
        self.generated
    }

    fn sign(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(VERSION.as_bytes());
        mac.update(b".");
        mac.update(payload.as_bytes());
        mac
    }
}

/// Signed guest sessions, the default identity: see the module docs of
/// [`identity`](crate::IdentityHook) and `POST /api/session`.
///
/// A sign-in creates a new random buyer id (`g_` and 32 hex digits); the
/// username given is only the display name, so names need not be unique.
/// The token travels in an `HttpOnly; SameSite=Lax` cookie for browsers
/// (writes identified by it must then be JSON and from an allowed
/// `Origin`) or as `Authorization: Bearer <token>` for other clients.
///
/// Give it to [`DropApiBuilder::sessions`](crate::DropApiBuilder::sessions),
/// which also mounts `/api/session` and connects the sessions to the
/// store (for sign-outs shared by every instance); as a plain
/// [`identity`](crate::DropApiBuilder::identity) hook it would only check
/// tokens. Configure it before handing it over; it is not `Clone`, so
/// one configuration serves one API.
#[derive(Debug)]
pub struct SessionIdentity {
    pub(crate) sessions: Arc<Sessions>,
}

impl SessionIdentity {
    /// Sessions signed with `key`, lasting 24 h, in cookie
    /// `dropkit_session` (not `Secure`), 30 sign-ins per minute per client
    /// address.
    pub fn new(key: SessionKey) -> Self {
        Self {
            sessions: Arc::new(Sessions {
                key,
                ttl: DEFAULT_SESSION_TTL,
                cookie: DEFAULT_SESSION_COOKIE.to_owned(),
                secure: false,
                sign_ins: NonZeroU32::new(DEFAULT_SIGN_INS_PER_MINUTE)
                    .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
                revoked: RwLock::default(),
                backend: OnceLock::new(),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Sessions)) -> Self {
        f(Arc::get_mut(&mut self.sessions).expect("configured before use"));
        self
    }

    /// How long a session lasts (at least a minute). Defaults to 24 h.
    pub fn ttl(self, ttl: Duration) -> Self {
        self.edit(|s| s.ttl = ttl.max(Duration::from_secs(60)))
    }

    /// Marks the cookie `Secure` (sent over HTTPS only): set it whenever
    /// the site is served over HTTPS. Defaults to off, so the demo works
    /// on `http://localhost`.
    pub fn secure_cookie(self, secure: bool) -> Self {
        self.edit(|s| s.secure = secure)
    }

    /// The cookie's name. Defaults to `dropkit_session`.
    pub fn cookie_name(self, name: &str) -> Self {
        self.edit(|s| s.cookie = name.to_owned())
    }

    /// Sign-ins allowed per minute per client address (an IPv6 client
    /// counts by its /64); 0 lifts the limit. Defaults to 30.
    pub fn sign_ins_per_minute(self, n: u32) -> Self {
        self.edit(|s| {
            s.sign_ins = NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n)));
        })
    }
}

#[async_trait]
impl IdentityHook for SessionIdentity {
    async fn identify(
        &self,
        request: &IdentityRequest<'_>,
    ) -> Result<Option<Identity>, IdentityError> {
        self.sessions.identify(request)
    }
}

/// The claims a token carries, as bytes: the session id (16), the expiry
/// in Unix seconds (8, big-endian), the buyer id's length (1), the buyer
/// id, then the display name. A fixed layout rather than JSON: every
/// buyer request reads one, so reading it should cost next to nothing.
struct Claims<'a> {
    session: Uuid,
    expires: i64,
    buyer_id: &'a str,
    name: &'a str,
}

impl<'a> Claims<'a> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(25 + self.buyer_id.len() + self.name.len());
        out.extend_from_slice(self.session.as_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        // Buyer ids are at most 128 bytes (drop-core's BUYER_ID_MAX).
        out.push(u8::try_from(self.buyer_id.len()).expect("a buyer id fits in 255 bytes"));
        out.extend_from_slice(self.buyer_id.as_bytes());
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    fn decode(raw: &'a [u8]) -> Option<Self> {
        let session = Uuid::from_slice(raw.get(..16)?).ok()?;
        let expires = i64::from_be_bytes(raw.get(16..24)?.try_into().ok()?);
        let id_len = usize::from(*raw.get(24)?);
        let buyer_id = std::str::from_utf8(raw.get(25..25 + id_len)?).ok()?;
        let name = std::str::from_utf8(raw.get(25 + id_len..)?).ok()?;
        Some(Self {
            session,
            expires,
            buyer_id,
            name,
        })
    }
}

/// A checked session token.
#[derive(Debug, Clone)]
pub(crate) struct SessionToken {
    pub(crate) id: Uuid,
    pub(crate) buyer: Buyer,
    pub(crate) expires_at: DateTime<Utc>,
    /// Whether it came in the cookie (rather than as a bearer token).
    pub(crate) from_cookie: bool,
}

/// What the store and the clock give a running session hook.
struct Backend {
    store: Arc<dyn InventoryStore>,
    clock: Arc<dyn Clock>,
}

/// The sessions' state, shared by the hook and the `/api/session` routes.
pub(crate) struct Sessions {
    key: SessionKey,
    ttl: Duration,
    cookie: String,
    secure: bool,
    sign_ins: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Revoked session ids, with when their tokens expire anyway.
    revoked: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    backend: OnceLock<Backend>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("key", &self.key)
            .field("ttl", &self.ttl)
            .field("cookie", &self.cookie)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Connects the sessions to the store and clock and loads the
    /// revocations still in force; then the returned task reads new ones
    /// from the store every second until `cancel`. Called once, when the
    /// API is built.
    pub(crate) async fn attach(
        self: Arc<Self>,
        store: Arc<dyn InventoryStore>,
        clock: Arc<dyn Clock>,
        cancel: CancellationToken,
    ) -> Result<impl Future<Output = ()> + Send + 'static, DropError> {
        let first = store.revoked_sessions(None).await?;
        self.remember(&first.sessions, first.now);
        let _ = self.backend.set(Backend {
            store: store.clone(),
            clock,
        });
        let mut since = first.now - REVOCATION_OVERLAP;
        Ok(async move {
            let mut failing = false;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(REVOCATION_POLL) => {}
                }
                match store.revoked_sessions(Some(since)).await {
                    Ok(read) => {
                        if failing {
                            tracing::info!("session revocations readable again");
                            failing = false;
                        }
                        self.remember(&read.sessions, read.now);
                        since = read.now - REVOCATION_OVERLAP;
                    }
                    Err(err) => {
                        if !failing {
                            tracing::warn!(error = %err, "cannot read session revocations; retrying");
                            failing = true;
                        }
                    }
                }
            }
        })
    }

    fn remember(&self, sessions: &[drop_core::RevokedSession], now: DateTime<Utc>) {
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        // Expired tokens are refused on their own; forget them.
        revoked.retain(|_, until| *until > now);
        for s in sessions {
            revoked.insert(s.id, s.expires_at);
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.backend.get().map_or_else(Utc::now, |b| b.clock.now())
    }

    /// A new guest named `name`: its token and what it says.
    pub(crate) fn sign_in(&self, name: Username) -> (String, SessionToken) {
        let buyer_id = BuyerId::parse(&format!("g_{}", Uuid::new_v4().simple()))
            .expect("a guest id is a valid buyer id");
        let now = self.now();
        let expires_at = now + TimeDelta::from_std(self.ttl).unwrap_or(TimeDelta::days(1));
        let claims = Claims {
            session: Uuid::new_v4(),
            buyer_id: buyer_id.as_str(),
            name: name.as_str(),
            expires: expires_at.timestamp(),
        };
        let payload = B64.encode(claims.encode());
        let mac = B64.encode(self.key.sign(&payload).finalize().into_bytes());
        let token = format!("{VERSION}.{payload}.{mac}");
        // Expiry as the token states it: whole seconds.
        let expires_at = DateTime::from_timestamp(claims.expires, 0).unwrap_or(expires_at);
        let session = claims.session;
        (
            token,
            SessionToken {
                id: session,
                buyer: Buyer::new(buyer_id, name),
                expires_at,
                from_cookie: false,
            },
        )
    }

    /// Checks a token: signed with this key, not expired, not revoked.
    pub(crate) fn verify(&self, token: &str) -> Result<SessionToken, IdentityError> {
        let refused = |why: &str| IdentityError::Rejected(why.to_owned());
        if token.len() > MAX_TOKEN {
            return Err(refused("not a session token"));
        }
        let mut parts = token.split('.');
        let (Some(VERSION), Some(payload), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(refused("not a session token"));
        };
        let mac = B64
            .decode(mac)
            .map_err(|_| refused("not a session token"))?;
        self.key
            .sign(payload)
            .verify_slice(&mac)
            .map_err(|_| refused("the session token is not valid"))?;
        // Signed by this key, so well-formed; checked anyway.
        let raw = B64
            .decode(payload)
            .map_err(|_| refused("the session token is not valid"))?;
        let claims =
            Claims::decode(&raw).ok_or_else(|| refused("the session token is not valid"))?;
        let expires_at = DateTime::from_timestamp(claims.expires, 0)
            .ok_or_else(|| refused("the session token is not valid"))?;
        if expires_at <= self.now() {
            return Err(refused("the session has expired; sign in again"));
        }
        if self
            .revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&claims.session)
        {
            return Err(refused("the session was signed out; sign in again"));
        }
        let buyer = BuyerId::parse(claims.buyer_id)
            .ok()
            .zip(Username::parse(claims.name).ok())
            .map(|(id, name)| Buyer::new(id, name))
            .ok_or_else(|| refused("the session token is not valid"))?;
        Ok(SessionToken {
            id: claims.session,
            buyer,
            expires_at,
            from_cookie: false,
        })
    }

    /// The session a request carries: a bearer token first (a client
    /// that sends one means it), else the cookie. `Ok(None)` without
    /// either. Every credential sent must hold: a valid token beside a
    /// forged or ended cookie is refused, not picked from.
    pub(crate) fn token_of(
        &self,
        request: &IdentityRequest<'_>,
    ) -> Result<Option<SessionToken>, IdentityError> {
        // An empty cookie is no credential (what is left of one cleared
        // by hand, or sent by a generic client for the cookie scheme).
        let from_cookie = request
            .cookie(&self.cookie)
            .filter(|token| !token.is_empty())
            .map(|token| {
                self.verify(token).map(|t| SessionToken {
                    from_cookie: true,
                    ..t
                })
            })
            .transpose()?;
        if let Some(token) = request.bearer_token() {
            return self.verify(token).map(Some);
        }
        if request
            .headers()
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Err(IdentityError::Rejected(
                "use `Authorization: Bearer <session token>`".into(),
            ));
        }
        Ok(from_cookie)
    }

    fn identify(&self, request: &IdentityRequest<'_>) -> Result<Option<Identity>, IdentityError> {
        Ok(self.token_of(request)?.map(|t| {
            if t.from_cookie {
                Identity::from_cookie(t.buyer)
            } else {
                Identity::new(t.buyer)
            }
        }))
    }

    /// Ends `token`'s session on every instance: recorded in the store,
    /// and at once here.
    pub(crate) async fn revoke(&self, token: &SessionToken) -> Result<(), DropError> {
        if let Some(backend) = self.backend.get() {
            backend
                .store
                .revoke_session(token.id, token.expires_at)
                .await?;
        }
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.id, token.expires_at);
        Ok(())
    }

    /// `Err(429)` when `ip` has signed in too often.
    pub(crate) fn check_sign_in(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let (Some(limiter), Some(ip)) = (&self.sign_ins, ip) else {
            return Ok(());
        };
        use governor::clock::{Clock as _, DefaultClock};
        limiter.check_key(&client_key(ip)).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::rate_limited("address", wait.as_secs_f64().ceil() as u64)
        })
    }

    /// The `Set-Cookie` value that stores `token` until it expires.
    pub(crate) fn set_cookie(&self, token: &str) -> String {
        format!(
            "{}={token}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.cookie,
            self.ttl.as_secs(),
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the cookie.
    pub(crate) fn clear_cookie(&self) -> String {
        format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.cookie,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, Method, Uri};

    fn sessions() -> Arc<Sessions> {
        SessionIdentity::new(SessionKey::generate()).sessions
    }

    fn name(n: &str) -> Username {
        Username::parse(n).unwrap()
    }

    #[test]
    fn a_token_names_its_guest_and_nothing_else_passes() {
        let s = sessions();
        let (token, signed) = s.sign_in(name("alice"));
        let checked = s.verify(&token).expect("valid");
        assert_eq!(checked.buyer, signed.buyer);
        assert_eq!(checked.buyer.display_name.as_str(), "alice");
        assert!(checked.buyer.id.as_str().starts_with("g_"));
        let (_, again) = s.sign_in(name("alice"));
        assert_ne!(
            again.buyer.id, signed.buyer.id,
            "every sign-in is a new guest"
        );

        let (payload, mac) = token["v1.".len()..].split_once('.').unwrap();
        // Another key's token, a changed payload, a cut signature, junk.
        let (foreign, _) = sessions().sign_in(name("alice"));
        let raw = B64.decode(payload).unwrap();
        let mut claims = Claims::decode(&raw).unwrap();
        claims.buyer_id = "victim";
        let forged = format!("v1.{}.{mac}", B64.encode(claims.encode()));
        for bad in [
            foreign.as_str(),
            forged.as_str(),
            &token[..token.len() - 2],
            "v1..",
            "v2.a.b",
            "",
            "test-admin-token",
        ] {
            assert!(
                matches!(s.verify(bad), Err(IdentityError::Rejected(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cookies_are_ambient_and_bearer_tokens_are_not() {
        let s = sessions();
        let (token, _) = s.sign_in(name("bob"));
        let (method, uri) = (Method::POST, Uri::from_static("/api/reservations"));
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            format!("dropkit_session={token}").parse().unwrap(),
        );
        let id = s
            .identify(&IdentityRequest::new(&method, &uri, &h))
            .unwrap()
            .unwrap();
        assert!(id.is_ambient());
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let id = s
            .identify(&IdentityRequest::new(&method, &uri, &h))
            .unwrap()
            .unwrap();
        assert!(!id.is_ambient());
        let mut h = HeaderMap::new();
        h.insert("authorization", "Basic Ym9iOmJvYg==".parse().unwrap());
        assert!(
            s.identify(&IdentityRequest::new(&method, &uri, &h))
                .is_err()
        );
        assert!(
            s.identify(&IdentityRequest::new(&method, &uri, &HeaderMap::new()))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_bad_cookie_beside_a_good_token_is_refused() {
        let s = sessions();
        let (token, _) = s.sign_in(name("bob"));
        let (method, uri) = (Method::GET, Uri::from_static("/api/reservations/x"));
        let mut h = HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        h.insert("cookie", "dropkit_session=forged".parse().unwrap());
        assert!(
            s.identify(&IdentityRequest::new(&method, &uri, &h))
                .is_err()
        );
    }

    #[test]
    fn an_empty_cookie_is_no_credential() {
        let s = sessions();
        let (token, _) = s.sign_in(name("bob"));
        let (method, uri) = (Method::GET, Uri::from_static("/api/reservations/x"));
        let mut h = HeaderMap::new();
        h.insert("cookie", "dropkit_session=".parse().unwrap());
        assert!(
            s.identify(&IdentityRequest::new(&method, &uri, &h))
                .unwrap()
                .is_none()
        );
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let who = s
            .identify(&IdentityRequest::new(&method, &uri, &h))
            .unwrap()
            .expect("the bearer token");
        assert_eq!(who.into_buyer().display_name.as_str(), "bob");
    }

    #[test]
    fn keys_must_be_long() {
        assert!(SessionKey::from_secret(&[7; 31]).is_err());
        assert!(SessionKey::from_secret(&[7; 32]).is_ok());
        assert!(SessionKey::generate().is_generated());
    }
}
