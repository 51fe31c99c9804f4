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
            .bearer_auth(server.token(user).await)
            .json(&json!({ "dropId": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    let res = a
        .post(&url)
        .bearer_auth(server.token("ann_4").await)
        .json(&json!({ "dropId": id }))
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

    // Per buyer: the same buyer from fresh addresses is refused too.
    let bea = server.token("bea").await;
    for (i, ip) in [[127, 0, 0, 3], [127, 0, 0, 4], [127, 0, 0, 5]]
        .into_iter()
        .enumerate()
    {
        let res = client_from(ip)
            .post(&url)
            .bearer_auth(&bea)
            .json(&json!({ "dropId": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), if i == 0 { 201 } else { 200 });
    }
    let res = client_from([127, 0, 0, 6])
        .post(&url)
        .bearer_auth(&bea)
        .json(&json!({ "dropId": id }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let body = res.json::<Value>().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
    assert!(
        body["message"].as_str().unwrap().contains("buyer"),
        "{body}"
    );
    // Reading is never limited.
    assert_eq!(server.get("/api/drops").await.0, 200);
    server.stop().await;
}

/// Declares a body of `len` bytes over a raw socket and reads the answer.
/// An oversized body is refused from its `Content-Length` alone, so it is
/// sent only when `send_body` (sending a refused one would race the
/// server's close against our read).
async fn post_large(
    server: &TestServer,
    path: &str,
    len: usize,
    admin: bool,
    send_body: bool,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    // The admin's token, or a signed-in buyer's: the body is read after
    // the caller is known.
    let auth = if admin {
        format!("Authorization: Bearer {TOKEN}\r\n")
    } else {
        format!(
            "Authorization: Bearer {}\r\n",
            server.token("big_body").await
        )
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n{auth}Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    // The write half is handed back rather than dropped: dropping it
    // would half-close the socket, which HTTP/1 servers take as the client
    // leaving.
    let writer = tokio::spawn(async move {
        let sent = async {
            wr.write_all(head.as_bytes()).await?;
            if send_body {
                let mut body = vec![b' '; len];
                body[0] = b'{';
                wr.write_all(&body).await?;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        (wr, sent)
    });
    let mut raw = Vec::new();
    let read = rd.read_to_end(&mut raw).await;
    let _ = writer.await;
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line from {path} ({len}): {text:?} {read:?}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    // The answer may be chunked: keep what lies between the braces.
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) => &body[a..=b],
        _ => panic!("no JSON body in {text:?}"),
    };
    (status, serde_json::from_str(json).unwrap())
}

async fn oversized_bodies_answer_413(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    for (path, admin) in [
        ("/api/reservations", false),
        ("/api/purchases", false),
        ("/api/drops", true),
    ] {
        let (status, body) = post_large(&server, path, 1 << 20, admin, false).await;
        assert_eq!(status, 413, "{path}");
        assert_eq!(body["error"], "PAYLOAD_TOO_LARGE", "{path}");
    }
    // Just over the 16 KiB limit is refused too; just under is read.
    let (status, _) = post_large(&server, "/api/reservations", 16 * 1024 + 1, false, false).await;
    assert_eq!(status, 413);
    let (status, body) = post_large(&server, "/api/reservations", 16 * 1024, false, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("INVALID_JSON"))
    );
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

/// Requests with invented methods all land in one `other` series, however
/// many names a client makes up.
async fn invented_methods_do_not_grow_metrics(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let mut invented = Vec::new();
    for _ in 0..200 {
        let name = format!("X{}", uuid::Uuid::new_v4().simple()).to_uppercase();
        let method = reqwest::Method::from_bytes(name.as_bytes()).unwrap();
        let res = server
            .http
            .request(method, server.url("/api/drops"))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{name}: {}", res.status());
        invented.push(name);
    }
    let text = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("dropkit_http_request_duration_seconds_count"))
        .collect();
    assert!(series.len() <= 3, "{} series: {series:#?}", series.len());
    assert!(
        series
            .iter()
            .any(|l| l.contains(r#"method="other""#) && l.ends_with(" 200")),
        "{series:#?}"
    );
    assert!(!invented.iter().any(|m| text.contains(m.as_str())));
    server.stop().await;
}

async fn cors_allows_only_configured_origins(factory: StoreFactory) {
    let server = TestServer::with(
        factory,
        Settings {
            cors_origins: vec!["http://localhost:5173"],
            ..Settings::default()
        },
    )
    .await;
    let preflight = |origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url("/api/reservations"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let res = preflight("http://localhost:5173").await.unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let res = preflight("http://evil.example").await.unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    server.stop().await;
}

store_tests!(
    admin_token_rules,
    cors_allows_only_configured_origins,
    rate_limit_answers_429,
    oversized_bodies_answer_413,
    health_metrics_and_openapi,
    invented_methods_do_not_grow_metrics,
);
