//! Reconnecting WebSockets resume from the last `seq` they saw: the frames
//! they missed and nothing twice, or a snapshot when the gap is too large.

use std::time::Duration;

use serde_json::Value;

use crate::store_tests;
use crate::support::{Identity, Settings, StoreFactory, TestServer, WsClient};

/// How long a test waits for a message that must come (far above what any
/// of them takes; only a failure waits this long).
const WAIT: Duration = Duration::from_secs(10);
/// How long a test listens for frames that must not come.
const QUIET: Duration = Duration::from_millis(400);

/// A WebSocket opened with `?after=` (when given) as `user` (when given).
async fn connect(server: &TestServer, after: Option<u64>, user: Option<&str>) -> WsClient {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let query = after.map(|a| format!("?after={a}")).unwrap_or_default();
    let mut req = format!("ws://{}/api/ws{query}", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(user) = user {
        let token = server.token(user).await;
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (stream, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("websocket connects");
    WsClient { stream }
}

/// The frames a socket starts with, up to and including the one that says
/// how it joined (`snapshot` or `resumed`).
async fn start_of(client: &mut WsClient) -> (Vec<Value>, Value) {
    let mut before = Vec::new();
    loop {
        let m = client.next(WAIT).await.expect("the socket starts");
        if m["type"] == "snapshot" || m["type"] == "resumed" {
            return (before, m);
        }
        before.push(m);
    }
}

fn seq(m: &Value) -> u64 {
    m["seq"].as_u64().unwrap_or_else(|| panic!("no seq in {m}"))
}

fn purchase_of(drop_id: &str) -> impl Fn(&Value) -> bool + '_ {
    move |m| m["type"] == "purchase" && m["dropId"] == drop_id
}

/// Reserves and buys one unit as `user`.
async fn buy(server: &TestServer, drop_id: &str, user: &str) -> Value {
    let (status, hold) = server.reserve(drop_id, user).await;
    assert_eq!(status, 201, "{hold}");
    let (status, bought) = server.purchase(hold["id"].as_str().unwrap(), user).await;
    assert_eq!(status, 201, "{bought}");
    hold
}

/// A client that leaves and comes back with the last `seq` it saw gets
/// exactly the purchase frames it missed (no snapshot), the stock, then
/// live frames: nothing missed, nothing twice.
async fn a_reconnect_resumes_with_exactly_the_missed_frames(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Resumable", 10, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    // Stays connected throughout, to know when the server has framed
    // everything.
    let (mut watcher, _) = server.ws().await;
    let (mut client, snapshot) = server.ws().await;
    assert!(snapshot["seq"].is_u64(), "{snapshot}");

    buy(&server, id, "alice").await;
    let first = client.wait_for(WAIT, purchase_of(id)).await;
    assert_eq!(first["displayName"], "alice");
    assert!(seq(&first) > seq(&snapshot), "{first} after {snapshot}");
    watcher.wait_for(WAIT, purchase_of(id)).await;
    let last_seen = seq(&first);
    client.close().await;

    buy(&server, id, "bob").await;
    buy(&server, id, "carol").await;
    for name in ["bob", "carol"] {
        let m = watcher.wait_for(WAIT, purchase_of(id)).await;
        assert_eq!(m["displayName"], name);
    }

    let mut client = connect(&server, Some(last_seen), None).await;
    let (missed, resumed) = start_of(&mut client).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    assert_eq!(resumed["after"], last_seen);
    let purchases: Vec<&Value> = missed.iter().filter(|m| m["type"] == "purchase").collect();
    let names: Vec<&str> = purchases
        .iter()
        .map(|m| m["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"], "{missed:?}");
    let seqs: Vec<u64> = purchases.iter().map(|m| seq(m)).collect();
    assert!(seqs[0] > last_seen && seqs[0] < seqs[1], "{seqs:?}");
    assert!(seqs[1] <= seq(&resumed), "{seqs:?} {resumed}");
    // No public frame it saw already, and the stock as it is now.
    // (The drop's creation may be among them: the hub may have read it
    // after the first snapshot was taken.)
    assert!(
        missed
            .iter()
            .all(|m| m["type"] == "stock" || seq(m) > last_seen),
        "{missed:?}"
    );
    let stock = missed
        .iter()
        .find(|m| m["type"] == "stock" && m["dropId"] == id)
        .expect("the drop's stock");
    assert_eq!(stock["soldStock"], 3, "{stock}");

    // Then live.
    buy(&server, id, "dave").await;
    let live = client.wait_for(WAIT, purchase_of(id)).await;
    assert_eq!(live["displayName"], "dave");
    assert!(seq(&live) > seq(&resumed));
    while let Some(m) = client.next(QUIET).await {
        assert_ne!(m["type"], "purchase", "a purchase twice: {m}");
        assert_ne!(m["type"], "snapshot", "{m}");
    }
    client.close().await;
    watcher.close().await;
    server.stop().await;
}

/// Too far behind (more changes than a resume replays), or at a position
/// the log never had: a snapshot, as for a new client. A bad `after` is
/// refused before the upgrade.
async fn far_behind_or_unknown_positions_get_a_snapshot(factory: StoreFactory) {
    const HOLDS: u32 = 1_010;
    let server = TestServer::with(
        factory,
        Settings {
            identity: Identity::Claimed,
            ..Settings::default()
        },
    )
    .await;
    let drop = server.create_drop("Busy", HOLDS + 1, 600.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    let (mut watcher, snapshot) = server.ws().await;
    let left = seq(&snapshot);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let http = server.http.clone();
        let url = server.url("/api/reservations");
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for i in (worker..HOLDS).step_by(8) {
                let res = http
                    .post(&url)
                    .json(&serde_json::json!({"dropId": id, "username": format!("user_{i}")}))
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
    // A purchase makes the server read past every hold.
    buy(&server, &id, "buyer").await;
    let bought = watcher.wait_for(WAIT, purchase_of(&id)).await;
    assert!(seq(&bought) > left + 1_000, "{bought}");

    let mut client = connect(&server, Some(left), None).await;
    let (before, first) = start_of(&mut client).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(first["type"], "snapshot", "{first}");
    assert!(seq(&first) >= seq(&bought));
    client.close().await;

    // Close behind is resumed (nothing missed: only the stock).
    let mut client = connect(&server, Some(seq(&bought)), None).await;
    let (_, first) = start_of(&mut client).await;
    assert_eq!(first["type"], "resumed", "{first}");
    client.close().await;

    // Beyond anything the log has.
    let mut client = connect(&server, Some(u64::MAX), None).await;
    let (_, first) = start_of(&mut client).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    client.close().await;

    for bad in ["abc", "-1", "1.5", "18446744073709551616"] {
        let res = server
            .http
            .get(server.url(&format!("/api/ws?after={bad}")))
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "after={bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "INVALID_INPUT", "after={bad}: {body}");
    }
    watcher.close().await;
    server.stop().await;
}

/// A buyer's own frames are resumed to that buyer's socket only: another
/// buyer resuming from the same position sees the public frames alone.
async fn private_frames_resume_only_to_their_buyer(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Private", 10, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let (mut watcher, _) = server.ws().await;
    let (alice_ws, snapshot) = server.ws_as("alice").await;
    let left = seq(&snapshot);
    alice_ws.close().await;
    // Bob has a session too, from before.
    server.token("bob").await;

    let bought = buy(&server, id, "alice").await;
    watcher.wait_for(WAIT, purchase_of(id)).await;
    // A hold on another drop (one unit each per buyer), given back.
    let other = server.create_drop("Private too", 10, 60.0).await;
    let (status, hold) = server.reserve(other["id"].as_str().unwrap(), "alice").await;
    assert_eq!(status, 201, "{hold}");
    let hold_id = hold["id"].as_str().unwrap();
    let (status, _) = server
        .delete_as(&format!("/api/reservations/{hold_id}"), "alice")
        .await;
    assert!(status < 300, "release: {status}");
    // A marker purchase: once the watcher has it, the release is framed.
    buy(&server, id, "carol").await;
    watcher.wait_for(WAIT, purchase_of(id)).await;

    let mut alice = connect(&server, Some(left), Some("alice")).await;
    let (missed, resumed) = start_of(&mut alice).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    let kinds: Vec<&str> = missed
        .iter()
        .filter(|m| m["type"] != "stock" && m["type"] != "dropCreated")
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["purchase", "holdPurchased", "holdReleased", "purchase"],
        "{missed:?}"
    );
    let own: Vec<&Value> = missed
        .iter()
        .filter(|m| m["type"] == "holdPurchased" || m["type"] == "holdReleased")
        .collect();
    assert_eq!(own[0]["reservationId"], bought["id"]);
    assert_eq!(own[1]["reservationId"], hold["id"]);
    let seqs: Vec<u64> = missed
        .iter()
        .filter(|m| m["type"] != "stock" && m["type"] != "dropCreated")
        .map(seq)
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");

    let mut bob = connect(&server, Some(left), Some("bob")).await;
    let (missed, resumed) = start_of(&mut bob).await;
    assert_eq!(resumed["type"], "resumed", "{resumed}");
    let kinds: Vec<&str> = missed
        .iter()
        .filter(|m| m["type"] != "stock" && m["type"] != "dropCreated")
        .map(|m| m["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["purchase", "purchase"], "{missed:?}");
    assert!(
        !missed.iter().any(|m| m.to_string().contains(hold_id)),
        "{missed:?}"
    );
    alice.close().await;
    bob.close().await;
    watcher.close().await;
    server.stop().await;
}

store_tests!(
    a_reconnect_resumes_with_exactly_the_missed_frames,
    far_behind_or_unknown_positions_get_a_snapshot,
    private_frames_resume_only_to_their_buyer,
);
