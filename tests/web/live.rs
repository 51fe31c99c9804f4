//! Live updates over the WebSocket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store_tests;
use crate::support::{Settings, StoreFactory, TestServer};

const WAIT: Duration = Duration::from_secs(5);

fn is_stock_of<'a>(drop_id: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |m| m["type"] == "stock" && m["dropId"] == drop_id
}

async fn reserve_and_purchase_reach_other_clients(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Live", 5, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let (mut b, snapshot) = server.ws().await;
    let listed = snapshot["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .expect("snapshot lists the drop");
    assert_eq!(listed["availableStock"], 5);

    let (status, hold) = server.reserve(id, "alice").await;
    assert_eq!(status, 201, "{hold}");
    let stock = b.wait_for(WAIT, is_stock_of(id)).await;
    assert_eq!(stock["availableStock"], 4, "{stock}");
    assert_eq!(stock["reservedStock"], 1);
    assert_eq!(stock["soldStock"], 0);
    assert!(stock["serverTime"].is_string());

    let (status, bought) = server.purchase(hold["id"].as_str().unwrap(), "alice").await;
    assert_eq!(status, 201, "{bought}");
    assert_eq!(bought["amountPaid"], "19.99");
    let msg = b.wait_for(WAIT, |m| m["type"] == "purchase").await;
    assert_eq!(msg["dropId"], id);
    assert_eq!(msg["username"], "alice");
    assert_eq!(msg["topPurchasers"][0]["username"], "alice");
    let stock = b.wait_for(WAIT, is_stock_of(id)).await;
    assert_eq!(stock["soldStock"], 1, "{stock}");
    assert_eq!(stock["reservedStock"], 0);
    assert_eq!(stock["availableStock"], 4);

    // The REST view agrees, and shows the buyer.
    let view = server.drop_view(id).await;
    assert_eq!(view["soldStock"], 1);
    assert_eq!(view["topPurchasers"][0]["username"], "alice");
    b.close().await;
    server.stop().await;
}

async fn expiry_reaches_clients_within_250ms(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Short hold", 3, 1.0).await;
    let id = drop["id"].as_str().unwrap();
    let (mut b, _) = server.ws().await;
    let (status, hold) = server.reserve(id, "alice").await;
    assert_eq!(status, 201);
    let expires_at: DateTime<Utc> = hold["expiresAt"].as_str().unwrap().parse().unwrap();
    let held = b.wait_for(WAIT, is_stock_of(id)).await;
    assert_eq!(held["availableStock"], 2);

    let back = b
        .wait_for(WAIT, |m| is_stock_of(id)(m) && m["availableStock"] == 3)
        .await;
    let late = Utc::now() - expires_at;
    assert!(
        late <= chrono::Duration::milliseconds(250),
        "stock came back {late} after expiresAt"
    );
    assert_eq!(back["reservedStock"], 0);
    // The hold now reads as expired, and buying it is too late.
    let (status, res) = server
        .get(&format!(
            "/api/reservations/{}",
            hold["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(res["status"], "expired");
    let (status, err) = server.purchase(hold["id"].as_str().unwrap(), "alice").await;
    assert_eq!(status, 410);
    assert_eq!(err["error"], "RESERVATION_EXPIRED");
    server.stop().await;
}

async fn expired_message_names_the_hold(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Expiring", 1, 0.3).await;
    let id = drop["id"].as_str().unwrap();
    let (mut b, _) = server.ws().await;
    let (_, hold) = server.reserve(id, "carol").await;
    let msg = b.wait_for(WAIT, |m| m["type"] == "expired").await;
    assert_eq!(msg["dropId"], id);
    assert_eq!(msg["reservationId"], hold["id"]);
    server.stop().await;
}

async fn new_drops_are_announced(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (mut b, snapshot) = server.ws().await;
    assert_eq!(snapshot["drops"].as_array().unwrap().len(), 0);
    let drop = server.create_drop("Fresh", 7, 60.0).await;
    let msg = b.wait_for(WAIT, |m| m["type"] == "dropCreated").await;
    assert_eq!(msg["drop"]["id"], drop["id"]);
    assert_eq!(msg["drop"]["availableStock"], 7);
    assert_eq!(msg["drop"]["price"], "19.99");
    // A client arriving later finds it in its snapshot.
    let (_, snapshot) = server.ws().await;
    assert_eq!(snapshot["drops"][0]["id"], drop["id"]);
    server.stop().await;
}

/// A storm of reserves: each client gets at most about one stock message
/// per tick, and the last one it gets is the final stock.
async fn stock_messages_coalesce_to_the_latest(factory: StoreFactory) {
    let tick = Duration::from_millis(100);
    let server = TestServer::with(
        factory,
        Settings {
            tick,
            ..Settings::default()
        },
    )
    .await;
    let drop = server.create_drop("Storm", 1000, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let (mut b, _) = server.ws().await;
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let http = server.http.clone();
        let url = server.url("/api/reservations");
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let res = http
                    .post(&url)
                    .json(&serde_json::json!({"dropId": id, "username": format!("u{worker}_{i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let storm = started.elapsed();
    let mut stock_msgs = 0u32;
    let mut last = None;
    while let Some(m) = b.next(Duration::from_millis(400)).await {
        if is_stock_of(&id)(&m) {
            stock_msgs += 1;
            last = Some(m);
        }
    }
    let last = last.expect("stock messages arrived");
    assert_eq!(last["availableStock"], 1000 - 320, "{last}");
    assert_eq!(last["reservedStock"], 320);
    let ticks = (storm.as_millis() / tick.as_millis()) as u32 + 2;
    assert!(
        stock_msgs <= ticks,
        "{stock_msgs} stock messages for {ticks} ticks of a {storm:?} storm"
    );
    assert!(stock_msgs < 320, "no coalescing: {stock_msgs} messages");
    server.stop().await;
}

store_tests!(
    reserve_and_purchase_reach_other_clients,
    expiry_reaches_clients_within_250ms,
    expired_message_names_the_hold,
    new_drops_are_announced,
    stock_messages_coalesce_to_the_latest,
);
