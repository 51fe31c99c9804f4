//! Graceful shutdown: every request the server took is answered, and
//! WebSocket clients are told the server is going away.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::store_tests;
use crate::support::{StoreFactory, TestServer};

async fn shutdown_leaves_no_request_half_done(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Draining", 1_000_000, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let store = server.api.store().clone();
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
    let reserved = store
        .get_drop(id.parse().unwrap())
        .await
        .unwrap()
        .stock
        .reserved;
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
