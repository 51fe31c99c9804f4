//! The routers fit a host app: a host with its own `/metrics` merges them,
//! metrics can go into the host's registry, each part can be left out, and
//! a prefix reaches the OpenAPI document.

mod support;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use prometheus_client::registry::Registry;
use support::{builder, call, json};

async fn reserve_one(app: &Router) {
    let create = r#"{"name":"Host","price":"1.00","totalStock":3}"#;
    let (status, drop) = json(app, "POST", "/api/drops", Some(create.into()), true).await;
    assert_eq!(status, 201, "{drop}");
    let body = format!(
        r#"{{"dropId":"{}","username":"alice"}}"#,
        drop["id"].as_str().unwrap()
    );
    let (status, hold) = json(app, "POST", "/api/reservations", Some(body), false).await;
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
