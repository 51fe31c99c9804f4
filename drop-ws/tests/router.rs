//! The routers fit a host app: a host with its own `/metrics` merges them,
//! metrics can go into the host's registry, each part can be left out, and
//! a prefix reaches the OpenAPI document.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::Request;
use axum::routing::get;
use drop_ws::{SessionIdentity, SessionKey};
use prometheus_client::registry::Registry;
use support::{builder, call, json, post_as, sign_in};
use tower::ServiceExt;

async fn reserve_one(app: &Router) {
    let create = r#"{"name":"Host","price":"1.00","totalStock":3}"#;
    let (status, drop) = json(app, "POST", "/api/drops", Some(create.into()), true).await;
    assert_eq!(status, 201, "{drop}");
    let token = sign_in(app, "alice").await;
    let body = format!(r#"{{"dropId":"{}"}}"#, drop["id"].as_str().unwrap());
    let (status, hold) = post_as(app, "/api/reservations", body, &token).await;
    assert_eq!(status, 201, "{hold}");
}

/// The host's `/metrics`, over the host's registry.
async fn host_metrics(State(registry): State<Arc<Mutex<Registry>>>) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry.lock().unwrap()).unwrap();
    out
}

#[tokio::test]
async fn a_host_with_its_own_metrics_route_merges_the_api() {
    let mut registry = Registry::default();
    let api = builder()
        .metrics_registry(&mut registry)
        .build()
        .await
        .unwrap();
    let registry = Arc::new(Mutex::new(registry));
    // Would panic on a second `GET /metrics`.
    let app = Router::new()
        .route("/metrics", get(host_metrics))
        .with_state(registry)
        .merge(api.router());
    reserve_one(&app).await;
    let (status, text) = call(&app, "GET", "/metrics", None, false).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"dropkit_operations_total{op="reserve",outcome="ok"} 1"#),
        "the host's registry holds the API's metrics:\n{text}"
    );
    assert!(
        text.contains("dropkit_http_request_duration_seconds"),
        "{text}"
    );
}

#[tokio::test]
async fn each_part_can_be_left_out() {
    let api = builder().build().await.unwrap();
    // The host keeps its own metrics and health, and takes only the API
    // and its document.
    let app = Router::new()
        .route("/metrics", get(|| async { "host metrics" }))
        .route("/api/health", get(|| async { "host health" }))
        .merge(api.api_router())
        .merge(api.openapi_router());
    reserve_one(&app).await;
    assert_eq!(
        call(&app, "GET", "/metrics", None, false).await,
        (200, "host metrics".to_owned())
    );
    assert_eq!(
        call(&app, "GET", "/api/health", None, false).await,
        (200, "host health".to_owned())
    );
    let (status, _) = call(&app, "GET", "/api/openapi.json", None, false).await;
    assert_eq!(status, 200);
    // Its own metrics are still counted, for whoever reads them.
    assert!(api.metrics().encode().contains("dropkit_operations_total"));

    // Each of the others, alone.
    let (status, text) = call(&api.metrics_router(), "GET", "/metrics", None, false).await;
    assert_eq!(status, 200);
    assert!(text.contains("dropkit_operations_total"), "{text}");
    let (status, _) = call(&api.health_router(), "GET", "/api/health/live", None, false).await;
    assert_eq!(status, 200);
    let (status, _) = call(&api.api_router(), "GET", "/metrics", None, false).await;
    assert_eq!(status, 404, "the API router has no /metrics");
}

#[tokio::test]
async fn the_document_names_the_prefix_it_is_nested_at() {
    let api = builder().build().await.unwrap();
    let app = Router::new().nest("/shop", api.router());
    let (status, doc) = json(&app, "GET", "/shop/api/openapi.json", None, false).await;
    assert_eq!(status, 200);
    assert_eq!(doc["servers"][0]["url"], "/shop");
    assert!(doc["paths"]["/api/drops"]["get"].is_object());

    let (status, doc) = json(&api.router(), "GET", "/api/openapi.json", None, false).await;
    assert_eq!(status, 200);
    assert!(
        doc.get("servers").is_none(),
        "at the root there is no prefix"
    );
    assert_eq!(
        doc,
        serde_json::to_value(drop_ws::openapi_document("")).unwrap()
    );
}

/// A reserve from `client` (as `X-Forwarded-For`) by the buyer whose
/// session token is `token`: its status.
async fn reserve_from(app: &Router, drop_id: &str, client: &str, token: &str) -> u16 {
    let req = Request::post("/api/reservations")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-for", client)
        .body(Body::from(format!(r#"{{"dropId":"{drop_id}"}}"#)))
        .unwrap();
    app.clone().oneshot(req).await.unwrap().status().as_u16()
}

/// An API allowing one reserve a minute per address and per buyer, whose
/// guests may sign in as often as they like (so only those two limits
/// speak), behind a proxy at 10.0.0.0/8.
async fn limited_api() -> drop_ws::DropApi {
    builder()
        .sessions(SessionIdentity::new(SessionKey::generate()).sign_ins_per_minute(0))
        .rate_limit_per_minute(1)
        .trusted_proxy("10.0.0.0/8")
        .unwrap()
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn behind_a_trusted_proxy_rate_limits_count_the_forwarded_client() {
    let api = limited_api().await;
    // Every request arrives from the load balancer.
    let app = api
        .router()
        .layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 2], 40000))));
    let create = r#"{"name":"Proxied","price":"1.00","totalStock":50}"#;
    let (_, drop) = json(&app, "POST", "/api/drops", Some(create.into()), true).await;
    let id = drop["id"].as_str().unwrap();
    let one = sign_in(&app, "buyer_one").await;
    let two = sign_in(&app, "buyer_two").await;
    let three = sign_in(&app, "buyer_three").await;
    // Two clients behind one balancer each have their own budget...
    assert_eq!(reserve_from(&app, id, "198.51.100.1", &one).await, 201);
    assert_eq!(reserve_from(&app, id, "198.51.100.2", &two).await, 201);
    // ...and one client spends its own, whichever buyer it signs in as,
    // and whatever it claims left of the balancer's entry.
    assert_eq!(
        reserve_from(&app, id, "7.7.7.7, 198.51.100.1", &three).await,
        429
    );
    // A buyer has a budget of their own too, from any address.
    assert_eq!(reserve_from(&app, id, "198.51.100.3", &one).await, 429);
    assert_eq!(reserve_from(&app, id, "198.51.100.4", &three).await, 201);
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_its_address() {
    let api = limited_api().await;
    let app = api
        .router()
        .layer(MockConnectInfo(SocketAddr::from(([203, 0, 113, 5], 40000))));
    let create = r#"{"name":"Direct","price":"1.00","totalStock":50}"#;
    let (_, drop) = json(&app, "POST", "/api/drops", Some(create.into()), true).await;
    let id = drop["id"].as_str().unwrap();
    let one = sign_in(&app, "buyer_one").await;
    let two = sign_in(&app, "buyer_two").await;
    assert_eq!(reserve_from(&app, id, "198.51.100.1", &one).await, 201);
    assert_eq!(reserve_from(&app, id, "198.51.100.2", &two).await, 429);
}

#[tokio::test]
async fn a_trusted_proxy_must_be_an_address_or_a_network() {
    for bad in ["", "10.0.0.0/99", "proxy.internal"] {
        let err = builder().trusted_proxy(bad).unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT", "{bad}");
    }
}
