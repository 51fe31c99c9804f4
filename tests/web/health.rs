//! Liveness and readiness, and fast 503s while PostgreSQL is unreachable
//! (cut off by a TCP proxy inside the test; the server itself keeps
//! running).

use std::sync::Arc;
use std::time::{Duration, Instant};

use drop_store_postgres::PgStore;
use sqlx::postgres::PgConnectOptions;

use crate::proxy::{Mode, Proxy};
use crate::support::{Backend, Settings, TestServer};

/// A fresh database, and its connect options pointing at `proxy`.
async fn database_behind(proxy_to: &mut Option<Proxy>) -> PgConnectOptions {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let admin = sqlx::PgPool::connect(&url).await.expect("PostgreSQL");
    let name = format!("dropkit_web_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create database");
    let options = (*admin.connect_options()).clone().database(&name);
    admin.close().await;
    let proxy = Proxy::start(crate::proxy::server_addr(&options)).await;
    let options = options
        .host("127.0.0.1")
        .port(proxy.addr.port())
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    *proxy_to = Some(proxy);
    options
}

async fn status_of(server: &TestServer, path: &str) -> (u16, Option<String>) {
    let res = server.http.get(server.url(path)).send().await.unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_fast_and_liveness_stays_up() {
    let mut proxy = None;
    let options = database_behind(&mut proxy).await;
    let proxy = proxy.unwrap();
    let acquire = Duration::from_secs(1);
    let store = PgStore::builder()
        .acquire_timeout(acquire)
        .listener_timeout(Duration::from_secs(2))
        .connect_with(options)
        .await
        .expect("store");
    let server = TestServer::on(
        Backend {
            store: Arc::new(store.clone()),
            clock: Arc::new(drop_core::SystemClock),
            database_url: None,
        },
        Settings {
            // Buyers named in the body, as load tools send them.
            identity: crate::support::Identity::Claimed,
            ..Settings::default()
        },
    )
    .await;
    let drop = server.create_drop("Outage", 100, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    for path in ["/api/health", "/api/health/ready", "/api/health/live"] {
        assert_eq!(status_of(&server, path).await.0, 200, "{path}");
    }

    proxy.set(Mode::Cut);
    // Bounds are relative to the acquire timeout: one wait for a
    // connection, never the request timeout (10 s) nor retries on top.
    let bound = acquire * 5 / 2;
    for i in 0..3 {
        let started = Instant::now();
        let res = server
            .http
            .post(server.url("/api/reservations"))
            .json(&serde_json::json!({"dropId": id, "username": format!("buyer{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "1");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "UNAVAILABLE");
        assert!(
            started.elapsed() < bound,
            "reserve: {:?}",
            started.elapsed()
        );
        for path in ["/api/health", "/api/health/ready"] {
            let started = Instant::now();
            let (status, retry) = status_of(&server, path).await;
            assert_eq!((status, retry.as_deref()), (503, Some("1")), "{path}");
            assert!(started.elapsed() < bound, "{path}: {:?}", started.elapsed());
        }
        assert_eq!(status_of(&server, "/api/health/live").await.0, 200);
    }

    proxy.set(Mode::Forward);
    let back = Instant::now();
    while status_of(&server, "/api/health/ready").await.0 != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "never ready again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, _) = server.reserve(&id, "after").await;
    assert_eq!(status, 201);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_draining_and_liveness_does_not() {
    let server = TestServer::start(crate::support::memory_store).await;
    assert_eq!(status_of(&server, "/api/health/ready").await.0, 200);
    // What a graceful shutdown does first.
    server.api.begin_shutdown();
    assert_eq!(
        status_of(&server, "/api/health/ready").await,
        (503, Some("1".to_owned()))
    );
    assert_eq!(status_of(&server, "/api/health").await.0, 503);
    assert_eq!(status_of(&server, "/api/health/live").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_the_health_routes() {
    let server = TestServer::start(crate::support::memory_store).await;
    let (status, doc) = server.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    for path in ["/api/health", "/api/health/live", "/api/health/ready"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} missing");
    }
    server.stop().await;
}
