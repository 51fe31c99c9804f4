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
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    if admin {
        req = req.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    let req = req
        .body(body.map_or_else(Body::empty, Body::from))
        .expect("a valid request");
    let res = app.clone().oneshot(req).await.expect("routers never fail");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
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
