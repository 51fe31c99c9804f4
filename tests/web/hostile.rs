//! Hostile clients against buyer identity (signed sessions): every attempt
//! to act as another buyer, with a forged, expired or signed-out token,
//! from another site, or to lock a buyer out is answered with its
//! documented error and leaves the store as it was.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use drop_core::{ExpiryScheduler, ManualClock};
use drop_store_memory::MemoryStore;
use drop_ws::{DropApi, DropServer, SessionIdentity, SessionKey};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::store_tests;
use crate::support::{
    Backend, Settings, StoreFactory, TOKEN, TestServer, WsClient, memory_store, postgres_store,
};

const WAIT: Duration = Duration::from_secs(10);

/// Sends a request: (status, JSON answer, or `null` for an empty one).
async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// `token` on every buyer route (and the session route): as a bearer,
/// and the reserve also as the cookie. `url` makes a path absolute.
async fn every_buyer_route(
    http: &reqwest::Client,
    url: impl Fn(&str) -> String,
    token: &str,
    hold: &str,
    drop_id: &str,
) -> Vec<(u16, Value)> {
    let held = url(&format!("/api/reservations/{hold}"));
    vec![
        send(http.get(url("/api/session")).bearer_auth(token)).await,
        send(http.get(&held).bearer_auth(token)).await,
        send(http.delete(&held).bearer_auth(token)).await,
        send(
            http.post(url("/api/purchases"))
                .bearer_auth(token)
                .json(&json!({ "reservationId": hold })),
        )
        .await,
        send(
            http.post(url("/api/reservations"))
                .bearer_auth(token)
                .json(&json!({ "dropId": drop_id })),
        )
        .await,
        send(
            http.post(url("/api/reservations"))
                .header("cookie", format!("dropkit_session={token}"))
                .json(&json!({ "dropId": drop_id })),
        )
        .await,
    ]
}

/// Asserts an error answer: its status and machine code.
#[track_caller]
fn refused(answer: &(u16, Value), status: u16, code: &str, what: &str) {
    assert_eq!(answer.0, status, "{what}: {}", answer.1);
    assert_eq!(answer.1["error"], code, "{what}: {}", answer.1);
}

/// Available, reserved and sold stock of a drop, as the public list says.
async fn stock(s: &TestServer, drop_id: &str) -> (u64, u64, u64) {
    let d = s.drop_view(drop_id).await;
    (
        d["availableStock"].as_u64().unwrap(),
        d["reservedStock"].as_u64().unwrap(),
        d["soldStock"].as_u64().unwrap(),
    )
}

/// The owner still reads their hold as active.
async fn still_active(s: &TestServer, id: &str, owner: &str) {
    let (status, hold) = s.get_as(&format!("/api/reservations/{id}"), owner).await;
    assert_eq!(status, 200, "{hold}");
    assert_eq!(hold["status"], "active", "{hold}");
}

/// A victim with an active hold on a fresh drop of 5: (drop id, hold id).
async fn victim_hold(s: &TestServer) -> (String, String) {
    let drop = s.create_drop("Target", 5, 600.0).await;
    let drop_id = drop["id"].as_str().unwrap().to_owned();
    let (status, hold) = s.reserve(&drop_id, "victim").await;
    assert_eq!(status, 201, "{hold}");
    (drop_id, hold["id"].as_str().unwrap().to_owned())
}

/// A server built here for what `Settings` does not reach: a shared
/// session key, a session lifetime, a WebSocket cap per address.
struct Own {
    addr: SocketAddr,
    http: reqwest::Client,
    server: DropServer,
}

impl Own {
    async fn start(backend: Backend, key: SessionKey, ttl: Duration, ws_per_ip: usize) -> Self {
        let scheduler = ExpiryScheduler::new(backend.store.clone()).clock(backend.clock.clone());
        let api = DropApi::builder(backend.store.clone())
            .admin_token(TOKEN)
            .tick(Duration::from_millis(50))
            .clock(backend.clock)
            .expiry_scheduler(scheduler)
            .sessions(SessionIdentity::new(key).ttl(ttl).sign_ins_per_minute(0))
            .ws_max_per_ip(ws_per_ip)
            // Room for every connection the WebSocket cap is tested with,
            // so that cap is the one that answers.
            .conn_max_per_ip(1024)
            .build()
            .await
            .expect("api builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = api.serve(listener, api.router()).expect("server starts");
        Self {
            addr: server.local_addr(),
            http: reqwest::Client::new(),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn token(&self, name: &str) -> String {
        let (status, answer) = send(
            self.http
                .post(self.url("/api/session"))
                .json(&json!({ "username": name })),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
        answer["token"].as_str().unwrap().to_owned()
    }

    async fn create_drop(&self, stock: u32) -> String {
        let (status, drop) = send(self.http.post(self.url("/api/drops")).bearer_auth(TOKEN).json(
            &json!({ "name": "Own", "price": "5.00", "totalStock": stock, "holdSeconds": 3600 }),
        ))
        .await;
        assert_eq!(status, 201, "{drop}");
        drop["id"].as_str().unwrap().to_owned()
    }

    async fn available(&self, drop_id: &str) -> u64 {
        let (status, drops) = send(self.http.get(self.url("/api/drops"))).await;
        assert_eq!(status, 200);
        let drop = drops
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == drop_id)
            .cloned()
            .expect("drop listed");
        drop["availableStock"].as_u64().unwrap()
    }

    async fn stop(self) {
        self.server.shutdown().await.expect("server ran");
    }
}

/// Another signed-in guest cannot read, release or buy the victim's hold,
/// by its id, by guessing, or by naming the victim the old way.
async fn another_buyers_hold_is_not_there(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    let (drop_id, hold) = victim_hold(&s).await;
    let before = stock(&s, &drop_id).await;
    assert_eq!(before, (4, 1, 0));
    let bearer = s.token("attacker").await;
    let guess = uuid::Uuid::new_v4().to_string();

    let attempts: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "read the victim's hold",
            s.http.get(s.url(&format!("/api/reservations/{hold}"))),
        ),
        (
            "release the victim's hold",
            s.http.delete(s.url(&format!("/api/reservations/{hold}"))),
        ),
        (
            "buy the victim's hold",
            s.http
                .post(s.url("/api/purchases"))
                .json(&json!({ "reservationId": hold })),
        ),
        (
            "read a guessed hold",
            s.http.get(s.url(&format!("/api/reservations/{guess}"))),
        ),
        (
            "release a guessed hold",
            s.http.delete(s.url(&format!("/api/reservations/{guess}"))),
        ),
        (
            "buy a guessed hold",
            s.http
                .post(s.url("/api/purchases"))
                .json(&json!({ "reservationId": guess })),
        ),
        (
            "release naming the victim in the query",
            s.http
                .delete(s.url(&format!("/api/reservations/{hold}?username=victim"))),
        ),
        (
            "release naming the victim in the body",
            s.http
                .delete(s.url(&format!("/api/reservations/{hold}")))
                .json(&json!({ "username": "victim" })),
        ),
        (
            "buy naming the victim in the body",
            s.http
                .post(s.url("/api/purchases"))
                .json(&json!({ "reservationId": hold, "username": "victim" })),
        ),
    ];
    for (what, req) in attempts {
        let answer = send(req.bearer_auth(&bearer)).await;
        refused(&answer, 404, "RESERVATION_NOT_FOUND", what);
        assert_eq!(stock(&s, &drop_id).await, before, "{what}");
    }

    // Without credentials the old `?username=` names nobody.
    let answer = send(
        s.http
            .delete(s.url(&format!("/api/reservations/{hold}?username=victim"))),
    )
    .await;
    refused(&answer, 401, "UNAUTHENTICATED", "release by name alone");
    let answer = send(
        s.http
            .post(s.url("/api/purchases"))
            .json(&json!({ "reservationId": hold, "username": "victim" })),
    )
    .await;
    refused(&answer, 401, "UNAUTHENTICATED", "buy by name alone");

    // The list shows nobody's hold but the caller's own.
    for req in [
        s.http.get(s.url("/api/drops?username=victim")),
        s.http
            .get(s.url("/api/drops?username=victim"))
            .bearer_auth(&bearer),
    ] {
        let (status, drops) = send(req).await;
        assert_eq!(status, 200, "{drops}");
        let drop = drops
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == drop_id.as_str())
            .unwrap();
        assert!(drop["userReservation"].is_null(), "{drop}");
    }

    // A body naming the victim acts for the caller.
    let (status, own) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&bearer)
            .json(&json!({ "dropId": drop_id, "username": "victim" })),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(own["displayName"], "attacker", "{own}");
    assert_ne!(own["id"], hold.as_str());
    let (status, mine) = s.get_as("/api/drops", "attacker").await;
    assert_eq!(status, 200);
    let mine = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["userReservation"]["id"], own["id"], "{mine}");

    still_active(&s, &hold, "victim").await;
    let (status, theirs) = s.get_as("/api/drops", "victim").await;
    assert_eq!(status, 200);
    let theirs = theirs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(theirs["userReservation"]["id"], hold.as_str(), "{theirs}");
    // The victim's hold and the attacker's own: nothing sold.
    assert_eq!(stock(&s, &drop_id).await, (3, 2, 0));
    assert!(
        s.drop_view(&drop_id).await["topPurchasers"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    s.stop().await;
}

/// Tokens this server did not sign as they are, and the admin token used
/// as a buyer's: 401, and nothing moves.
async fn forged_tokens_are_refused(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    let elsewhere = TestServer::start(memory_store).await;
    let (drop_id, hold) = victim_hold(&s).await;
    let before = stock(&s, &drop_id).await;

    let victim = s.token("victim").await;
    let attacker = s.token("attacker").await;
    let foreign = elsewhere.token("victim").await;
    let parts = |t: &str| {
        let p: Vec<String> = t.split('.').map(str::to_owned).collect();
        assert_eq!(p.len(), 3, "v1.<payload>.<mac>: {t}");
        p
    };
    let (v, a) = (parts(&victim), parts(&attacker));
    // The victim's claims under the attacker's signature.
    let swapped = format!("{}.{}.{}", a[0], v[1], a[2]);
    // One character of the payload changed.
    let mut payload = a[1].clone().into_bytes();
    let i = payload.len() / 2;
    payload[i] = if payload[i] == b'A' { b'B' } else { b'A' };
    let tampered = format!("{}.{}.{}", a[0], String::from_utf8(payload).unwrap(), a[2]);
    let truncated = attacker[..attacker.len() - 3].to_owned();
    let bad: [(&str, &str); 8] = [
        ("signed with another key", &foreign),
        ("payload of another token", &swapped),
        ("payload changed", &tampered),
        ("truncated", &truncated),
        ("garbage", "garbage"),
        ("empty parts", "v1.."),
        ("another version", "v2.a.b"),
        ("the admin token", TOKEN),
    ];
    for (what, token) in bad {
        let answers = [
            send(s.http.get(s.url("/api/session")).bearer_auth(token)).await,
            send(
                s.http
                    .post(s.url("/api/reservations"))
                    .bearer_auth(token)
                    .json(&json!({ "dropId": drop_id })),
            )
            .await,
            send(
                s.http
                    .get(s.url(&format!("/api/reservations/{hold}")))
                    .bearer_auth(token),
            )
            .await,
            send(
                s.http
                    .delete(s.url(&format!("/api/reservations/{hold}")))
                    .bearer_auth(token),
            )
            .await,
            send(
                s.http
                    .post(s.url("/api/purchases"))
                    .bearer_auth(token)
                    .json(&json!({ "reservationId": hold })),
            )
            .await,
        ];
        for answer in &answers {
            refused(answer, 401, "UNAUTHENTICATED", what);
        }
        // The same token in the cookie.
        let answer = send(
            s.http
                .post(s.url("/api/reservations"))
                .header("cookie", format!("dropkit_session={token}"))
                .json(&json!({ "dropId": drop_id })),
        )
        .await;
        refused(&answer, 401, "UNAUTHENTICATED", what);
        assert_eq!(stock(&s, &drop_id).await, before, "{what}");
    }

    // A buyer's token is no admin's.
    let drops_before = s.get("/api/drops").await.1.as_array().unwrap().len();
    let answer = send(
        s.http
            .post(s.url("/api/drops"))
            .bearer_auth(&attacker)
            .json(&json!({ "name": "Mine", "price": "1.00", "totalStock": 1, "holdSeconds": 60 })),
    )
    .await;
    refused(&answer, 403, "FORBIDDEN", "a buyer creating a drop");
    assert_eq!(
        s.get("/api/drops").await.1.as_array().unwrap().len(),
        drops_before
    );

    still_active(&s, &hold, "victim").await;
    assert_eq!(stock(&s, &drop_id).await, before);
    elsewhere.stop().await;
    s.stop().await;
}

/// A token used after signing out is refused, and the hold it took stays.
async fn signed_out_token_is_refused(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    let (drop_id, hold) = victim_hold(&s).await;
    let before = stock(&s, &drop_id).await;
    let token = s.token("victim").await;
    let answer = send(s.http.delete(s.url("/api/session")).bearer_auth(&token)).await;
    assert_eq!(answer.0, 204, "{}", answer.1);

    let answers = every_buyer_route(&s.http, |p| s.url(p), &token, &hold, &drop_id).await;
    for answer in &answers {
        refused(answer, 401, "UNAUTHENTICATED", "signed out");
    }
    // The list still answers, to nobody in particular.
    let (status, drops) = send(s.http.get(s.url("/api/drops")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{drops}");
    assert_eq!(stock(&s, &drop_id).await, before);
    s.stop().await;
}

/// A session past its lifetime is refused; the hold it took (longer
/// than the session) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_is_refused() {
    let clock = ManualClock::new(chrono::Utc::now());
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let backend = Backend {
        store: Arc::new(store),
        clock: Arc::new(clock.clone()),
        database_url: None,
    };
    let s = Own::start(
        backend,
        SessionKey::generate(),
        Duration::from_secs(60),
        drop_ws::DEFAULT_WS_MAX_PER_IP,
    )
    .await;
    let drop_id = s.create_drop(5).await;
    let token = s.token("victim").await;
    let (status, hold) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&token)
            .json(&json!({ "dropId": drop_id })),
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    let hold = hold["id"].as_str().unwrap().to_owned();
    let (status, session) = send(s.http.get(s.url("/api/session")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{session}");

    clock.advance(Duration::from_secs(61));
    let answers = every_buyer_route(&s.http, |p| s.url(p), &token, &hold, &drop_id).await;
    for answer in &answers {
        refused(answer, 401, "UNAUTHENTICATED", "expired");
    }
    assert_eq!(s.available(&drop_id).await, 4, "the hold is still taken");
    // A fresh sign-in works on the moved clock.
    let fresh = s.token("victim").await;
    let (status, _) = send(s.http.get(s.url("/api/session")).bearer_auth(&fresh)).await;
    assert_eq!(status, 200);
    s.stop().await;
}

/// Signing out through one instance ends the session on another
/// instance over the same database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_out_reaches_another_instance() {
    let first = postgres_store().await;
    let url = first.database_url.clone().expect("a database");
    let second = drop_store_postgres::PgStore::connect(&url)
        .await
        .expect("second store");
    let second = Backend {
        store: Arc::new(second),
        clock: Arc::new(drop_core::SystemClock),
        database_url: Some(url),
    };
    let key = SessionKey::from_secret(&[42; 32]).unwrap();
    let cap = drop_ws::DEFAULT_WS_MAX_PER_IP;
    let a = Own::start(first, key.clone(), drop_ws::DEFAULT_SESSION_TTL, cap).await;
    let b = Own::start(second, key, drop_ws::DEFAULT_SESSION_TTL, cap).await;
    let token = a.token("victim").await;
    let (status, session) = send(b.http.get(b.url("/api/session")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "the instances share the key: {session}");

    let (status, _) = send(a.http.delete(a.url("/api/session")).bearer_auth(&token)).await;
    assert_eq!(status, 204);
    let answer = send(a.http.get(a.url("/api/session")).bearer_auth(&token)).await;
    refused(
        &answer,
        401,
        "UNAUTHENTICATED",
        "on the instance signed out through",
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer = send(b.http.get(b.url("/api/session")).bearer_auth(&token)).await;
        if answer.0 == 401 {
            refused(&answer, 401, "UNAUTHENTICATED", "on the other instance");
            break;
        }
        assert_eq!(answer.0, 200, "{}", answer.1);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the other instance still takes the signed-out token"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// A write carried by the session cookie must be JSON from an allowed
/// page; a bearer token is not sent by browsers on their own, so it is
/// exempt.
async fn cookie_writes_need_json_from_an_allowed_page(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    let (drop_id, hold) = victim_hold(&s).await;
    let before = stock(&s, &drop_id).await;
    let token = s.token("victim").await;
    let cookie = format!("dropkit_session={token}");
    let own_origin = format!("http://{}", s.addr);
    let body = json!({ "dropId": drop_id }).to_string();

    let forged: [(&str, reqwest::RequestBuilder, u16, &str); 5] = [
        (
            "a form-like text/plain body",
            s.http
                .post(s.url("/api/reservations"))
                .header("cookie", &cookie)
                .header("content-type", "text/plain")
                .body(body.clone()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "no content type",
            s.http
                .post(s.url("/api/reservations"))
                .header("cookie", &cookie)
                .body(body.clone()),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            "JSON from another site",
            s.http
                .post(s.url("/api/reservations"))
                .header("cookie", &cookie)
                .header("origin", "https://evil.example")
                .json(&json!({ "dropId": drop_id })),
            403,
            "FORBIDDEN",
        ),
        (
            "a purchase from another site",
            s.http
                .post(s.url("/api/purchases"))
                .header("cookie", &cookie)
                .header("origin", "https://evil.example")
                .json(&json!({ "reservationId": hold })),
            403,
            "FORBIDDEN",
        ),
        (
            "a release from another site",
            s.http
                .delete(s.url(&format!("/api/reservations/{hold}")))
                .header("cookie", &cookie)
                .header("origin", "https://evil.example"),
            403,
            "FORBIDDEN",
        ),
    ];
    for (what, req, status, code) in forged {
        refused(&send(req).await, status, code, what);
        assert_eq!(stock(&s, &drop_id).await, before, "{what}");
        still_active(&s, &hold, "victim").await;
    }

    // Signing out from another site is refused too, and the session lives.
    let answer = send(
        s.http
            .delete(s.url("/api/session"))
            .header("cookie", &cookie)
            .header("origin", "https://evil.example"),
    )
    .await;
    refused(&answer, 403, "FORBIDDEN", "sign out from another site");
    let (status, session) = send(s.http.get(s.url("/api/session")).header("cookie", &cookie)).await;
    assert_eq!(status, 200, "{session}");

    // The site's own page: the write goes through (the existing hold).
    let (status, same) = send(
        s.http
            .post(s.url("/api/reservations"))
            .header("cookie", &cookie)
            .header("origin", &own_origin)
            .json(&json!({ "dropId": drop_id })),
    )
    .await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(same["id"], hold.as_str());
    let other = s.create_drop("Other", 5, 600.0).await;
    let other = other["id"].as_str().unwrap();
    let (status, fresh) = send(
        s.http
            .post(s.url("/api/reservations"))
            .header("cookie", &cookie)
            .header("origin", &own_origin)
            .json(&json!({ "dropId": other })),
    )
    .await;
    assert_eq!(status, 201, "{fresh}");

    // Bearer tokens: no Origin or content-type rule; the body is still
    // read as JSON whatever its declared type.
    let plain = s.token("plain").await;
    let (status, answer) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&plain)
            .header("content-type", "text/plain")
            .body(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "bearer, text/plain: {answer}");
    let (status, answer) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&plain)
            .header("content-type", "text/plain")
            .body("dropId=nothing"),
    )
    .await;
    assert_eq!(status, 400, "bearer, not JSON: {answer}");
    assert_eq!(answer["error"], "INVALID_JSON", "{answer}");
    let foreign = s.token("foreign").await;
    let (status, answer) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&foreign)
            .header("origin", "https://evil.example")
            .json(&json!({ "dropId": drop_id })),
    )
    .await;
    assert_eq!(status, 201, "bearer from another origin: {answer}");
    assert_eq!(stock(&s, &drop_id).await, (2, 3, 0));
    still_active(&s, &hold, "victim").await;
    s.stop().await;
}

/// A WebSocket upgrade with its `Origin` header: the socket and its
/// snapshot, or the refusal's status and answer.
async fn ws_upgrade(
    addr: SocketAddr,
    origin: Option<&str>,
) -> Result<(WsClient, Value), (u16, Value)> {
    let mut req = format!("ws://{addr}/api/ws").into_client_request().unwrap();
    if let Some(origin) = origin {
        req.headers_mut().insert("origin", origin.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((stream, _)) => {
            let mut client = WsClient { stream };
            let snapshot = client.next(WAIT).await.expect("snapshot");
            assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
            Ok((client, snapshot))
        }
        Err(tungstenite::Error::Http(res)) => {
            let status = res.status().as_u16();
            let body = res
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null);
            Err((status, body))
        }
        Err(err) => panic!("WebSocket upgrade: {err}"),
    }
}

/// A page on another site cannot open the live feed (with the visitor's
/// cookie it would hear their holds); the site's own page can.
async fn foreign_websocket_is_refused(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    for origin in [
        "https://evil.example",
        "null",
        &format!("http://{}.evil", s.addr),
    ] {
        match ws_upgrade(s.addr, Some(origin)).await {
            Ok(_) => panic!("a socket from {origin} opened"),
            Err(answer) => refused(&answer, 403, "FORBIDDEN", origin),
        }
    }
    let (client, _) = ws_upgrade(s.addr, Some(&format!("http://{}", s.addr)))
        .await
        .expect("the site's own page");
    client.close().await;
    let (client, _) = ws_upgrade(s.addr, None).await.expect("no Origin");
    client.close().await;
    s.stop().await;
}

/// A client on `source` (another loopback address, so it counts apart
/// from the others under the per-address limit).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .build()
        .unwrap()
}

/// Flooding reserves that name the victim spends only the attacker's
/// budget: the victim's own next reserve goes through.
async fn naming_the_victim_does_not_lock_them_out(factory: StoreFactory) {
    let s = TestServer::with(
        factory,
        Settings {
            rate_limit: 3,
            ..Settings::default()
        },
    )
    .await;
    let drop = s.create_drop("Wanted", 5, 600.0).await;
    let drop_id = drop["id"].as_str().unwrap();
    let attacker = s.token("attacker").await;
    let victim = s.token("victim").await;

    // Without credentials, naming the victim is nobody.
    for _ in 0..5 {
        let answer = send(
            s.http
                .post(s.url("/api/reservations"))
                .json(&json!({ "dropId": drop_id, "username": "victim" })),
        )
        .await;
        refused(
            &answer,
            401,
            "UNAUTHENTICATED",
            "unsigned, naming the victim",
        );
    }
    // From 40 addresses (3 requests each, within each address's budget),
    // so only the buyer limit can stop them.
    let mut not_found = 0;
    for i in 0..120u8 {
        let http = client_from(Ipv4Addr::new(127, 0, 0, 10 + i / 3));
        let missing = uuid::Uuid::new_v4().to_string();
        let answer = send(
            http.post(s.url("/api/reservations"))
                .bearer_auth(&attacker)
                .json(&json!({ "dropId": missing, "username": "victim" })),
        )
        .await;
        match answer.0 {
            404 => {
                refused(&answer, 404, "DROP_NOT_FOUND", "a drop that is not there");
                not_found += 1;
            }
            429 => {
                refused(&answer, 429, "RATE_LIMITED", "the attacker's budget");
                let message = answer.1["message"].as_str().unwrap();
                assert!(message.contains("buyer"), "{message}");
            }
            _ => panic!("attempt {i}: {}: {}", answer.0, answer.1),
        }
    }
    assert_eq!(not_found, 3, "the attacker's own budget of 3");
    assert_eq!(stock(&s, drop_id).await, (5, 0, 0));

    let http = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let (status, hold) = send(
        http.post(s.url("/api/reservations"))
            .bearer_auth(&victim)
            .json(&json!({ "dropId": drop_id })),
    )
    .await;
    assert_eq!(status, 201, "the victim's own reserve: {hold}");
    assert_eq!(hold["displayName"], "victim");
    assert_eq!(stock(&s, drop_id).await, (4, 1, 0));
    s.stop().await;
}

/// Without trusted proxies, `X-Forwarded-For` is the client's word and
/// the limit counts the connection's address.
async fn spoofed_forwarded_for_is_not_an_address(factory: StoreFactory) {
    let s = TestServer::with(
        factory,
        Settings {
            rate_limit: 3,
            ..Settings::default()
        },
    )
    .await;
    let drop = s.create_drop("Spoofed", 10, 600.0).await;
    let drop_id = drop["id"].as_str().unwrap();
    for (i, xff) in [
        "203.0.113.1",
        "203.0.113.2",
        "198.51.100.7, 203.0.113.3",
        "2001:db8::4",
        "192.0.2.5",
    ]
    .into_iter()
    .enumerate()
    {
        let guest = format!("guest{i}");
        let token = s.token(&guest).await;
        let answer = send(
            s.http
                .post(s.url("/api/reservations"))
                .bearer_auth(&token)
                .header("x-forwarded-for", xff)
                .header("x-real-ip", xff)
                .header("forwarded", format!("for=\"{xff}\""))
                .json(&json!({ "dropId": drop_id })),
        )
        .await;
        if i < 3 {
            assert_eq!(
                answer.0, 201,
                "{guest} within the address's budget: {}",
                answer.1
            );
        } else {
            refused(&answer, 429, "RATE_LIMITED", &guest);
            let message = answer.1["message"].as_str().unwrap();
            assert!(message.contains("address"), "{message}");
        }
    }
    assert_eq!(stock(&s, drop_id).await, (7, 3, 0));
    s.stop().await;
}

/// A buyer's own frames reach their own sockets only.
async fn private_frames_reach_only_their_buyer(factory: StoreFactory) {
    let s = TestServer::start(factory).await;
    let drop = s.create_drop("Brief", 3, 1.0).await;
    let drop_id = drop["id"].as_str().unwrap();
    let (mut mine, _) = s.ws_as("victim").await;
    let (mut theirs, _) = s.ws_as("other").await;
    let (mut anonymous, _) = s.ws().await;
    let (status, hold) = s.reserve(drop_id, "victim").await;
    assert_eq!(status, 201, "{hold}");
    let hold = hold["id"].as_str().unwrap();

    let expired = mine
        .wait_for(Duration::from_secs(20), |m| m["type"] == "holdExpired")
        .await;
    assert_eq!(expired["reservationId"], hold, "{expired}");
    assert_eq!(expired["dropId"], drop_id, "{expired}");

    // The others hear the stock come back, and nothing private.
    for socket in [&mut theirs, &mut anonymous] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = socket.next(left).await.expect("the stock coming back");
            let kind = m["type"].as_str().unwrap_or_default();
            assert!(!kind.starts_with("hold"), "another buyer's frame: {m}");
            if kind == "stock" && m["dropId"] == drop_id && m["availableStock"] == 3 {
                break;
            }
        }
        // Whatever follows shortly is not private either.
        while let Some(m) = socket.next(Duration::from_millis(500)).await {
            assert!(
                !m["type"].as_str().unwrap_or_default().starts_with("hold"),
                "{m}"
            );
        }
    }
    for socket in [mine, theirs, anonymous] {
        socket.close().await;
    }
    s.stop().await;
}

/// Guest sign-ins are limited per client address: a script cannot mint
/// guests (and their budgets) without end, while another address signs
/// in as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_are_limited_per_address() {
    let s = TestServer::with(
        memory_store,
        Settings {
            sign_ins_per_minute: 3,
            ..Settings::default()
        },
    )
    .await;
    let sign_in = |client: &reqwest::Client| {
        client
            .post(s.url("/api/session"))
            .json(&json!({ "username": "minted" }))
    };
    let from = client_from(Ipv4Addr::new(127, 0, 0, 7));
    for _ in 0..3 {
        assert_eq!(send(sign_in(&from)).await.0, 200);
    }
    let res = sign_in(&from).send().await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED", "{body}");
    let (status, other) = send(sign_in(&client_from(Ipv4Addr::new(127, 0, 0, 8)))).await;
    assert_eq!(status, 200, "{other}");
    s.stop().await;
}

store_tests!(
    another_buyers_hold_is_not_there,
    forged_tokens_are_refused,
    signed_out_token_is_refused,
    cookie_writes_need_json_from_an_allowed_page,
    foreign_websocket_is_refused,
    naming_the_victim_does_not_lock_them_out,
    spoofed_forwarded_for_is_not_an_address,
    private_frames_reach_only_their_buyer,
);

/// One address opening 10,000 sockets against a cap of 100: the first
/// 100 open, every attempt past the cap is a 503, and the open ones keep
/// hearing the drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sockets_from_one_address() {
    const CAP: usize = 100;
    const ATTEMPTS: usize = 10_000;
    let s = Own::start(
        memory_store().await,
        SessionKey::generate(),
        drop_ws::DEFAULT_SESSION_TTL,
        CAP,
    )
    .await;
    let mut open = Vec::with_capacity(CAP);
    for _ in 0..CAP {
        let (client, _) = ws_upgrade(s.addr, None).await.expect("under the cap");
        open.push(client);
    }
    let addr = s.addr;
    let answers: Vec<Result<u16, String>> = futures::stream::iter(CAP..ATTEMPTS)
        .map(|_| async move {
            match ws_upgrade(addr, None).await {
                Err((503, body)) if body["error"] == "UNAVAILABLE" => Ok(503),
                Err((status, body)) => Err(format!("{status}: {body}")),
                Ok((client, _)) => {
                    client.close().await;
                    Err("opened past the cap".to_owned())
                }
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let wrong: Vec<&String> = answers.iter().filter_map(|a| a.as_ref().err()).collect();
    assert_eq!(answers.len(), ATTEMPTS - CAP);
    assert!(
        wrong.is_empty(),
        "{} of {} attempts past the cap not refused with 503, e.g. {:?}",
        wrong.len(),
        answers.len(),
        &wrong[..wrong.len().min(5)]
    );

    let drop_id = s.create_drop(10).await;
    let token = s.token("buyer").await;
    let (status, hold) = send(
        s.http
            .post(s.url("/api/reservations"))
            .bearer_auth(&token)
            .json(&json!({ "dropId": drop_id })),
    )
    .await;
    assert_eq!(status, 201, "{hold}");
    for client in &mut open {
        let id = drop_id.as_str();
        client
            .wait_for(WAIT, |m| {
                m["type"] == "stock" && m["dropId"] == id && m["availableStock"] == 9
            })
            .await;
    }
    for client in open {
        client.close().await;
    }
    s.stop().await;
}
