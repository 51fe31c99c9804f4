//! The admin token, rate limits, the body limit, and the operational
//! endpoints.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{Settings, StoreFactory, TOKEN, TestServer};

async fn admin_token_rules(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let body = json!({"name": "Guarded", "price": "10.00", "totalStock": 3});
    let url = server.url("/api/drops");

    let res = server.http.post(&url).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "UNAUTHORIZED");

    let res = server
        .http
        .post(&url)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    let res = server
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "FORBIDDEN");

    let res = server
        .http
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Everything else is public.
    assert_eq!(server.get("/api/drops").await.0, 200);
    server.stop().await;
}

fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::from(ip)))
        .build()
        .unwrap()
}

async fn rate_limit_answers_429(factory: StoreFactory) {
    let server = TestServer::with(
        factory,
        Settings {
            rate_limit: 3,
            ..Settings::default()
        },
    )
    .await;
    let drop = server.create_drop("Limited", 100, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let url = server.url("/api/reservations");

    // Per address: a fourth request from one address is refused, whoever sends it.
    let a = client_from([127, 0, 0, 2]);
    for user in ["ann_1", "ann_2", "ann_3"] {
        let res = a
            .post(&url)
            .json(&json!({"dropId": id, "username": user}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = a
        .post(&url)
        .json(&json!({"dropId": id, "username": "ann_4"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "RATE_LIMITED");

    // Per username: the same name from fresh addresses is refused too.
    for (i, ip) in [[127, 0, 0, 3], [127, 0, 0, 4], [127, 0, 0, 5]]
        .into_iter()
        .enumerate()
    {
        let res = client_from(ip)
            .post(&url)
            .json(&json!({"dropId": id, "username": "bea"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), if i == 0 { 201 } else { 200 });
    }
    let res = client_from([127, 0, 0, 6])
        .post(&url)
        .json(&json!({"dropId": id, "username": "bea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "RATE_LIMITED");
    // Reading is never limited.
    assert_eq!(server.get("/api/drops").await.0, 200);
    server.stop().await;
}

async fn oversized_bodies_answer_413(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let big = format!(r#"{{"dropId":"{}","username":"x"}}"#, "a".repeat(1 << 20));
    for (path, admin) in [
        ("/api/reservations", false),
        ("/api/purchases", false),
        ("/api/drops", true),
    ] {
        let mut req = server
            .http
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(big.clone());
        if admin {
            req = req.bearer_auth(TOKEN);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 413, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "PAYLOAD_TOO_LARGE", "{path}");
    }
    server.stop().await;
}

async fn health_metrics_and_openapi(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (status, health) = server.get("/api/health").await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let drop = server.create_drop("Counted", 1, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    server.reserve(id, "ivan").await;
    server.reserve(id, "judy").await;
    let (_ws, _) = server.ws().await;
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        r#"dropkit_operations_total{op="reserve",outcome="ok"} 1"#,
        r#"dropkit_operations_total{op="reserve",outcome="OUT_OF_STOCK"} 1"#,
        "dropkit_ws_clients 1",
        "dropkit_http_request_duration_seconds_bucket",
        "dropkit_hub_flush_delay_seconds",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }

    let (status, spec) = server.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/drops",
        "/api/reservations",
        "/api/reservations/{id}",
        "/api/purchases",
        "/api/health",
    ] {
        assert!(spec["paths"][path].is_object(), "spec lacks {path}");
    }
    assert!(spec["components"]["schemas"]["DropView"].is_object());
    server.stop().await;
}

store_tests!(
    admin_token_rules,
    rate_limit_answers_429,
    oversized_bodies_answer_413,
    health_metrics_and_openapi,
);
