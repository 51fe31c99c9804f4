//! The API nested under a prefix in a host's router, over real sockets:
//! every route, the WebSocket and the OpenAPI document agree on it.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use drop_core::ExpiryScheduler;
use drop_ws::DropApi;
use serde_json::{Value, json};

use crate::support::{TOKEN, WsClient, memory_store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_follows_the_prefix() {
    let backend = memory_store().await;
    let api = DropApi::builder(backend.store.clone())
        .admin_token(TOKEN)
        .claimed_identity()
        .clock(backend.clock.clone())
        .expiry_scheduler(ExpiryScheduler::new(backend.store).clock(backend.clock))
        .build()
        .await
        .unwrap();
    let app = Router::new()
        .route("/", get(|| async { "the host's home" }))
        .nest("/shop", api.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = api.serve(listener, app).unwrap();
    let base = format!("http://{}", server.local_addr());
    let http = reqwest::Client::new();

    let res = http
        .post(format!("{base}/shop/api/drops"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "Nested", "price": "5.00", "totalStock": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let drop: Value = res.json().await.unwrap();
    let id = drop["id"].as_str().unwrap().to_owned();

    let (stream, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/shop/api/ws", server.local_addr()))
            .await
            .expect("the WebSocket is under the prefix");
    let mut ws = WsClient { stream };
    let snapshot = ws.next(Duration::from_secs(5)).await.expect("snapshot");
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["drops"][0]["id"], id.as_str());

    let res = http
        .post(format!("{base}/shop/api/reservations"))
        .json(&json!({"dropId": id, "username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let stock = ws
        .wait_for(Duration::from_secs(10), |m| {
            m["type"] == "stock" && m["dropId"] == id.as_str()
        })
        .await;
    assert_eq!(stock["availableStock"], 3);

    let doc: Value = http
        .get(format!("{base}/shop/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["servers"][0]["url"], "/shop");
    for path in [
        "/api/drops",
        "/api/reservations",
        "/api/purchases",
        "/api/health",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
        let status = http
            .request(
                if path == "/api/reservations" || path == "/api/purchases" {
                    reqwest::Method::POST
                } else {
                    reqwest::Method::GET
                },
                format!("{base}{}{path}", doc["servers"][0]["url"].as_str().unwrap()),
            )
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status();
        assert_ne!(
            status, 404,
            "{path}: the document's server and path reach a route"
        );
    }
    for (path, want) in [
        ("/shop/metrics", 200),
        ("/shop/api/health/ready", 200),
        ("/", 200),
        ("/api/drops", 404),
        ("/metrics", 404),
    ] {
        let status = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, want, "{path}");
    }
    let res = http
        .get(format!("{base}/shop/api/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "NOT_FOUND");

    server.shutdown().await.unwrap();
}
