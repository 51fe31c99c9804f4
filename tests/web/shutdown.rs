//! Graceful shutdown: one call stops everything; every request the server
//! took is answered, WebSocket clients are told the server is going away,
//! and the store closes last.

use std::future::IntoFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use drop_core::{DropId, InventoryStore};

use crate::store_tests;
use crate::support::{StoreFactory, TestServer, postgres_store};

/// The store's view of a drop's held units after the server's store has
/// closed: the memory store keeps serving reads, a PostgreSQL database is
/// opened again.
async fn reserved_after_close(
    closed: &Arc<dyn InventoryStore>,
    database_url: Option<&str>,
    id: DropId,
) -> u32 {
    let reopened: Arc<dyn InventoryStore> = match database_url {
        None => closed.clone(),
        Some(url) => Arc::new(drop_store_postgres::PgStore::connect(url).await.unwrap()),
    };
    let reserved = reopened.get_drop(id).await.unwrap().stock.reserved;
    reopened.close().await;
    reserved
}

async fn shutdown_leaves_no_request_half_done(factory: StoreFactory) {
    // Buyers named in the body, as load tools send them.
    let server = TestServer::with(factory, claimed()).await;
    let drop = server.create_drop("Draining", 1_000_000, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let store = server.api.store().clone();
    let database_url = server.database_url.clone();
    let (mut ws, _) = server.ws().await;

    let answered = Arc::new(AtomicU32::new(0));
    let mut workers = Vec::new();
    for w in 0..16 {
        let http = server.http.clone();
        let url = server.url("/api/reservations");
        let id = id.clone();
        let answered = answered.clone();
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let res = http
                    .post(&url)
                    .json(&serde_json::json!({"dropId": id, "username": format!("w{w}_{i}")}))
                    .send()
                    .await;
                match res {
                    Ok(res) => {
                        // A response was started: it must be whole and a success.
                        assert_eq!(res.status(), 201);
                        let body: serde_json::Value = res.json().await.expect("whole body");
                        assert_eq!(body["status"], "active");
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    // Refused after the listener closed: never processed.
                    Err(_) => return,
                }
            }
        }));
    }
    // Shut down in the middle of the load: once requests are flowing
    // (however long a loaded machine takes to get there).
    let flowing = tokio::time::Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::SeqCst) < 32 {
        assert!(
            tokio::time::Instant::now() < flowing,
            "no requests answered within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained = tokio::time::timeout(Duration::from_secs(10), server.stop()).await;
    assert!(drained.is_ok(), "shutdown did not drain within 10 s");
    for w in workers {
        tokio::time::timeout(Duration::from_secs(10), w)
            .await
            .expect("worker ends")
            .expect("no worker saw a broken answer");
    }
    let answered = answered.load(Ordering::SeqCst);
    assert!(answered > 0, "no request ran before the shutdown");
    let reserved = reserved_after_close(&store, database_url.as_deref(), id.parse().unwrap()).await;
    assert_eq!(
        reserved, answered,
        "every hold the store made was answered, and nothing else"
    );

    // The WebSocket client was told the server is going away.
    let mut close_code = None;
    while let Ok(Some(Ok(msg))) =
        tokio::time::timeout(Duration::from_secs(10), ws.stream.next()).await
    {
        if let Message::Close(frame) = msg {
            close_code = frame.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(close_code, Some(1001));
}

store_tests!(shutdown_leaves_no_request_half_done);

/// A reserve of `drop_id` as `username`, held up inside PostgreSQL: the
/// drop's row is locked from outside until the returned transaction ends.
/// Returns once the request is waiting on the lock.
struct HeldUp {
    outside: sqlx::PgPool,
    lock: sqlx::Transaction<'static, sqlx::Postgres>,
    request: tokio::task::JoinHandle<(u16, serde_json::Value)>,
}

impl HeldUp {
    async fn start(database_url: &str, base: &str, drop_id: &str) -> Self {
        let outside = sqlx::PgPool::connect(database_url).await.unwrap();
        let mut lock = outside.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR UPDATE")
            .bind(uuid::Uuid::parse_str(drop_id).unwrap())
            .execute(&mut *lock)
            .await
            .unwrap();
        let url = format!("{base}/api/reservations");
        let body = serde_json::json!({"dropId": drop_id, "username": "late_buyer"});
        let request = tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<serde_json::Value>().await.unwrap())
        });
        let waiting = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&outside)
            .await
            .unwrap();
            if n > 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < waiting,
                "the reserve never reached the lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            outside,
            lock,
            request,
        }
    }

    /// Lets the reserve go on; its answer.
    async fn release(self) -> (u16, serde_json::Value) {
        self.lock.rollback().await.unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(10), self.request)
            .await
            .expect("the request completes")
            .unwrap();
        self.outside.close().await;
        answer
    }
}

/// Reads until a close frame; its code.
async fn close_code(ws: &mut crate::support::WsClient) -> Option<u16> {
    while let Ok(Some(Ok(msg))) =
        tokio::time::timeout(Duration::from_secs(10), ws.stream.next()).await
    {
        if let Message::Close(frame) = msg {
            return frame.map(|f| u16::from(f.code));
        }
    }
    None
}

/// A reserve held up inside PostgreSQL while shutdown starts: the
/// WebSocket is told 1001 at once, the request still completes, and the
/// shutdown call returns only after it, with every socket gone and the
/// store closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_request_in_flight_then_closes_the_store() {
    let server = TestServer::with(postgres_store, claimed()).await;
    let drop = server.create_drop("Last call", 5, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let (mut ws, _) = server.ws().await;
    let api = server.api.clone();
    let url = server.database_url.clone().unwrap();
    let held = HeldUp::start(&url, &server.url(""), &id).await;

    let shutdown = tokio::spawn(server.stop());
    assert_eq!(
        close_code(&mut ws).await,
        Some(1001),
        "the socket is told at once"
    );
    // The request is still held up, so the shutdown cannot be over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!held.request.is_finished(), "the reserve is still waiting");
    assert!(
        !shutdown.is_finished(),
        "shutdown returned with a request in flight"
    );

    let (status, hold) = held.release().await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["status"], "active");
    tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .expect("shutdown returns once the request is answered")
        .unwrap();
    assert_eq!(api.metrics().ws_clients(), 0, "every socket task has ended");
    assert!(
        api.store().health().await.is_err(),
        "the store is closed when shutdown returns"
    );
    let reserved = reserved_after_close(api.store(), Some(&url), id.parse().unwrap()).await;
    assert_eq!(reserved, 1, "the answered hold is in the database");
}

/// A host that serves the router itself and calls `DropApi::shutdown`
/// while its own server still runs: the API waits for the request in
/// flight (its body is still arriving) before it reports everything
/// stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_alone_waits_for_its_requests_in_flight() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let backend = crate::support::memory_store().await;
    let api = drop_ws::DropApi::builder(backend.store)
        .admin_token(crate::support::TOKEN)
        .claimed_identity()
        .clock(backend.clock)
        .build()
        .await
        .unwrap();
    let created = api
        .store()
        .create_drop(drop_core::NewDrop::new(
            "Hosted",
            drop_core::Money::from_minor(100).unwrap(),
            5,
        ))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let entered = Arc::new(tokio::sync::Notify::new());
    let app = api.router().layer(axum::middleware::from_fn({
        let entered = entered.clone();
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let entered = entered.clone();
            async move {
                let mut answer = std::pin::pin!(next.run(req));
                if let std::task::Poll::Ready(res) = futures::poll!(answer.as_mut()) {
                    return res;
                }
                entered.notify_one();
                answer.await
            }
        }
    }));
    let host = tokio::spawn(axum::serve(listener, app).into_future());

    let body = format!(
        r#"{{"dropId":"{}","username":"slow_buyer"}}"#,
        created.drop.id
    );
    let (first, rest) = body.split_at(10);
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!(
            "POST /api/reservations HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
            body.len()
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    // The host's own layer says when the API has begun the request (its
    // first poll ran, so it is counted), while the body is still awaited.
    tokio::time::timeout(Duration::from_secs(30), entered.notified())
        .await
        .expect("the request reaches the API");

    let shutdown = tokio::spawn({
        let api = api.clone();
        async move { api.shutdown().await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown returned with a request in flight"
    );
    tcp.write_all(rest.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_string(&mut answer))
        .await
        .expect("the answer comes")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .expect("shutdown returns once the request is answered")
        .unwrap();
    host.abort();
}

/// Draining takes the instance out of a balancer's rotation (readiness
/// 503) while everything else goes on serving, WebSockets included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_fails_readiness_and_serves_everything_else() {
    let server = TestServer::start(crate::support::memory_store).await;
    let drop = server.create_drop("Draining", 10, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let (mut ws, _) = server.ws().await;
    server.api.drain();

    let res = server
        .http
        .get(server.url("/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    let (status, _) = server.get("/api/health/live").await;
    assert_eq!(status, 200);
    let (status, _) = server.reserve(&id, "still_served").await;
    assert_eq!(status, 201);
    let stock = ws
        .wait_for(Duration::from_secs(10), |m| {
            m["type"] == "stock" && m["dropId"] == id.as_str()
        })
        .await;
    assert_eq!(
        stock["reservedStock"], 1,
        "the socket still gets live stock"
    );

    server.stop().await;
    assert_eq!(close_code(&mut ws).await, Some(1001));
}

/// `run_until` with a drain period: on the signal the instance turns
/// unready first and keeps its sockets, and stops only after the period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_drains_for_the_period_before_it_stops() {
    const DRAIN: Duration = Duration::from_secs(3);
    let backend = crate::support::memory_store().await;
    let api = drop_ws::DropApi::builder(backend.store)
        .admin_token(crate::support::TOKEN)
        .claimed_identity()
        .clock(backend.clock)
        .build()
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = api.serve(listener, api.router()).unwrap().drain_for(DRAIN);
    let addr = server.local_addr();
    let (signal, signalled) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run_until(async {
        let _ = signalled.await;
    }));
    let (stream, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/ws"))
        .await
        .unwrap();
    let mut ws = crate::support::WsClient { stream };
    ws.next(Duration::from_secs(5)).await.expect("snapshot");
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client| async move {
        http.get(format!("http://{addr}/api/health/ready"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    };
    assert_eq!(ready(http.clone()).await.unwrap(), 200);

    let signalled_at = tokio::time::Instant::now();
    signal.send(()).unwrap();
    // Unready at once, while the socket stays open.
    let mut unready = false;
    while signalled_at.elapsed() < DRAIN {
        if matches!(ready(http.clone()).await, Ok(503)) {
            unready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(unready, "readiness never failed while draining");
    assert_eq!(
        close_code(&mut ws).await,
        Some(1001),
        "closed when the drain ends"
    );
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops after the drain")
        .unwrap()
        .unwrap();
    assert!(
        signalled_at.elapsed() >= DRAIN,
        "stopped {:?} after the signal, before the drain period",
        signalled_at.elapsed()
    );
}

/// Buyers named in the body (claimed identity), as load tools send them.
fn claimed() -> crate::support::Settings {
    crate::support::Settings {
        identity: crate::support::Identity::Claimed,
        ..crate::support::Settings::default()
    }
}
