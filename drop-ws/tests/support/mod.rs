//! Router tests without sockets: the API over the memory store, called
//! with `tower::ServiceExt::oneshot`.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use drop_store_memory::MemoryStore;
use drop_ws::{DropApi, DropApiBuilder};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const TOKEN: &str = "test-admin-token";

/// A builder over a fresh memory store, with the test admin token.
pub fn builder() -> DropApiBuilder {
    let store = MemoryStore::new();
    let clock = store.clock();
    DropApi::builder(Arc::new(store))
        .admin_token(TOKEN)
        .clock(clock)
}

/// One request through `app`: its status and body text.
pub async fn call(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<String>,
    admin: bool,
) -> (u16, String) {
    let bearer = admin.then(|| format!("Bearer {TOKEN}"));
    let mut headers = Vec::new();
    if body.is_some() {
        headers.push((header::CONTENT_TYPE.as_str(), "application/json".to_owned()));
    }
    if let Some(bearer) = bearer {
        headers.push((header::AUTHORIZATION.as_str(), bearer));
    }
    send(app, method, path, body, &headers).await
}

/// One request through `app` with exactly `headers`: its status and body
/// text.
pub async fn send(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<String>,
    headers: &[(&str, String)],
) -> (u16, String) {
    let mut req = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    let req = req
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("a valid request");
    let res = app.clone().oneshot(req).await.expect("routers never fail");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Signs a new guest named `name` in: their session token.
pub async fn sign_in(app: &Router, name: &str) -> String {
    let body = format!(r#"{{"username":"{name}"}}"#);
    let (status, session) = json(app, "POST", "/api/session", Some(body), false).await;
    assert_eq!(status, 200, "sign in {name}: {session}");
    session["token"].as_str().expect("a token").to_owned()
}

/// `body` sent to `path` as the buyer whose session token is `token`.
pub async fn post_as(
    app: &Router,
    path: &str,
    body: String,
    token: &str,
) -> (u16, serde_json::Value) {
    let headers = [
        (header::CONTENT_TYPE.as_str(), "application/json".to_owned()),
        (header::AUTHORIZATION.as_str(), format!("Bearer {token}")),
    ];
    let (status, text) = send(app, "POST", path, Some(body), &headers).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// `call` with a JSON answer.
pub async fn json(
    app: &Router,
    method: &str,
    path: &str,
    body: Option<String>,
    admin: bool,
) -> (u16, serde_json::Value) {
    let (status, text) = call(app, method, path, body, admin).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// A request without a body as the buyer whose session token is `token`,
/// with a JSON answer.
pub async fn json_as(
    app: &Router,
    method: &str,
    path: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let headers = [(header::AUTHORIZATION.as_str(), format!("Bearer {token}"))];
    let (status, text) = send(app, method, path, None, &headers).await;
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}
