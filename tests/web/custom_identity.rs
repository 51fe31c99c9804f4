//! The custom identity hook of docs/web.md ("A hook of your own"), run:
//! the host app signs its users in and hands dropkit a JWT, in its own
//! cookie or as a bearer token.

use drop_core::{Buyer, BuyerId, Username, async_trait};
use drop_ws::{Identity, IdentityError, IdentityHook, IdentityRequest};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{Settings, StoreFactory, TestServer};

const SECRET: &[u8] = b"the host app's own signing secret";

#[derive(Serialize, Deserialize)]
struct Claims {
    sub: String,
    name: String,
    exp: i64,
}

/// The hook, as docs/web.md shows it.
#[derive(Debug)]
struct HostJwt {
    key: DecodingKey,
}

#[async_trait]
impl IdentityHook for HostJwt {
    async fn identify(&self, req: &IdentityRequest<'_>) -> Result<Option<Identity>, IdentityError> {
        // The host's own cookie (ambient: dropkit applies the CSRF checks)
        // or a bearer token.
        let (token, ambient) = match (req.bearer_token(), req.cookie("host_jwt")) {
            (Some(t), _) => (t, false),
            (None, Some(t)) => (t, true),
            (None, None) => return Ok(None), // anonymous: buyer routes answer 401
        };
        let claims = decode::<Claims>(token, &self.key, &Validation::new(Algorithm::HS256))
            .map_err(|e| IdentityError::Rejected(e.to_string()))?
            .claims;
        let id = BuyerId::parse(&claims.sub).map_err(|e| IdentityError::Rejected(e.to_string()))?;
        let name = Username::parse(&claims.name)
            .unwrap_or_else(|_| Username::parse("member").expect("a valid name"));
        let buyer = Buyer::new(id, name);
        Ok(Some(if ambient {
            Identity::from_cookie(buyer)
        } else {
            Identity::new(buyer)
        }))
    }
}

/// A JWT the host app would issue for `sub`, valid for `secs` seconds
/// (negative: already expired).
fn jwt(sub: &str, name: &str, secs: i64) -> String {
    let claims = Claims {
        sub: sub.to_owned(),
        name: name.to_owned(),
        exp: chrono::Utc::now().timestamp() + secs,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET).expect("an HMAC key"),
    )
    .expect("a JWT")
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn a_host_jwt_identifies_buyers(factory: StoreFactory) {
    let server = TestServer::configured(factory().await, Settings::default(), |b| {
        b.identity(HostJwt {
            key: DecodingKey::from_secret(SECRET).expect("an HMAC key"),
        })
    })
    .await;
    let drop = server.create_drop("Host users", 5, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let reserve = |token: String| {
        server
            .http
            .post(server.url("/api/reservations"))
            .bearer_auth(token)
            .json(&json!({ "dropId": id }))
    };
    // A host user id, of a shape guest names could never take.
    let alice = jwt("auth0|5f3a9c", "Alice", 600);
    let (status, hold) = send(reserve(alice.clone())).await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["displayName"], "Alice");
    let path = format!("/api/reservations/{}", hold["id"].as_str().unwrap());

    // Someone else's JWT: the hold is not there for them.
    let (status, err) = send(server.http.get(server.url(&path)).bearer_auth(jwt(
        "auth0|other",
        "Mallory",
        600,
    )))
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (404, Some("RESERVATION_NOT_FOUND"))
    );
    // Expired, or signed by someone else: 401.
    let (status, err) = send(reserve(jwt("auth0|5f3a9c", "Alice", -120))).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("UNAUTHENTICATED"))
    );
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &Claims {
            sub: "auth0|5f3a9c".into(),
            name: "Alice".into(),
            exp: chrono::Utc::now().timestamp() + 600,
        },
        &EncodingKey::from_secret(b"not the host's secret").expect("an HMAC key"),
    )
    .unwrap();
    assert_eq!(send(reserve(forged)).await.0, 401);
    // The host's cookie is ambient: a cross-site form post is refused.
    let (status, _) = send(
        server
            .http
            .post(server.url("/api/purchases"))
            .header("cookie", format!("host_jwt={alice}"))
            .header("content-type", "text/plain")
            .body(json!({ "reservationId": hold["id"] }).to_string()),
    )
    .await;
    assert_eq!(status, 415);
    // And the owner buys with it from the site itself.
    let (status, bought) = send(
        server
            .http
            .post(server.url("/api/purchases"))
            .header("cookie", format!("host_jwt={alice}"))
            .json(&json!({ "reservationId": hold["id"] })),
    )
    .await;
    assert_eq!(status, 201, "{bought}");
    // No `/api/session` under a host's identity.
    assert_eq!(
        send(server.http.get(server.url("/api/session"))).await.0,
        404
    );
    server.stop().await;
}

store_tests!(a_host_jwt_identifies_buyers);
