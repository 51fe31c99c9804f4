//! Live updates over the WebSocket.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store_tests;
use crate::support::{Identity, Settings, StoreFactory, TestServer};

/// How long a test waits for a message that must come (far above what any
/// of them takes; only a failure waits this long).
const WAIT: Duration = Duration::from_secs(10);

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
    // Stock travels on the coalescing board and purchases on the log's
    // queue: either may reach the client first.
    let (mut msg, mut stock) = (None, None);
    while msg.is_none() || stock.is_none() {
        let m = b
            .wait_for(WAIT, |m| {
                (m["type"] == "purchase" && m["dropId"] == id)
                    || (is_stock_of(id)(m) && m["soldStock"] == 1)
            })
            .await;
        if m["type"] == "purchase" {
            msg = Some(m);
        } else {
            stock = Some(m);
        }
    }
    let (msg, stock) = (msg.unwrap(), stock.unwrap());
    assert_eq!(msg["dropId"], id);
    assert!(
        msg["seq"].as_u64().unwrap() > snapshot["seq"].as_u64().unwrap(),
        "{msg} after {snapshot}"
    );
    assert_eq!(msg["displayName"], "alice");
    assert_eq!(msg["username"], "alice", "the deprecated alias");
    assert_eq!(msg["topPurchasers"][0]["displayName"], "alice");
    assert_eq!(msg["topPurchasers"][0]["username"], "alice");
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

/// How late after `expiresAt` the freed unit may reach a client. The chain
/// (scheduler wake-up, sweep, hub tick of 50 ms, socket) takes a few
/// milliseconds on an idle machine; the bound is generous for a loaded
/// 2-core CI box, yet a scheduler that polled (the seed swept every 5 s)
/// or missed the wake-up (it then sleeps up to 30 s) still fails it.
const EXPIRY_LATENESS: Duration = Duration::from_millis(1500);

async fn expiry_reaches_clients_promptly(factory: StoreFactory) {
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
    eprintln!(
        "stock came back {} ms after expiresAt",
        late.num_milliseconds()
    );
    // Never before the hold ran out (the server's clock is this machine's).
    assert!(
        late >= chrono::Duration::zero(),
        "stock came back {late} early"
    );
    assert!(
        late.to_std().unwrap() <= EXPIRY_LATENESS,
        "stock came back {late} after expiresAt"
    );
    assert_eq!(back["reservedStock"], 0);
    // The hold now reads as expired, and buying it is too late.
    let (status, res) = server
        .get_as(
            &format!("/api/reservations/{}", hold["id"].as_str().unwrap()),
            "alice",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(res["status"], "expired");
    let (status, err) = server.purchase(hold["id"].as_str().unwrap(), "alice").await;
    assert_eq!(status, 410);
    assert_eq!(err["error"], "RESERVATION_EXPIRED");
    server.stop().await;
}

/// Twenty holds running out reach clients as stock, not as twenty frames
/// (one per hold, to every client), and the expire counter counts each once.
async fn expiries_arrive_as_stock(factory: StoreFactory) {
    const HOLDS: u32 = 20;
    let server = TestServer::start(factory).await;
    // Connected first, so the drop's creation is a frame it surely gets
    // (one taken after may or may not be in its snapshot already).
    let (mut b, snapshot) = server.ws().await;
    let drop = server.create_drop("Expiring", HOLDS, 1.0).await;
    let id = drop["id"].as_str().unwrap();
    b.wait_for(WAIT, |m| {
        m["type"] == "dropCreated" && m["drop"]["id"] == id
    })
    .await;
    for i in 0..HOLDS {
        let (status, _) = server.reserve(id, &format!("carol_{i}")).await;
        assert_eq!(status, 201);
    }
    // Everything the client hears until every unit is back, and a little
    // after (a frame per hold would follow its stock closely).
    let mut heard = Vec::new();
    loop {
        let m = b.next(WAIT).await.expect("the stock came back");
        let done = is_stock_of(id)(&m) && m["availableStock"] == HOLDS;
        heard.push(m);
        if done {
            break;
        }
    }
    while let Some(m) = b.next(Duration::from_millis(300)).await {
        heard.push(m);
    }
    let types: Vec<&str> = heard.iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(
        types.iter().all(|t| *t == "stock"),
        "only stock frames expected after {snapshot}: {heard:?}"
    );
    let last = heard.last().unwrap();
    assert_eq!(last["reservedStock"], 0, "{last}");
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = format!("dropkit_operations_total{{op=\"expire\",outcome=\"ok\"}} {HOLDS}");
    assert!(metrics.contains(&line), "no `{line}` in\n{metrics}");
    server.stop().await;
}

async fn new_drops_are_announced(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (mut b, _) = server.ws().await;
    let drop = server.create_drop("Fresh", 7, 60.0).await;
    let msg = b
        .wait_for(WAIT, |m| {
            m["type"] == "dropCreated" && m["drop"]["id"] == drop["id"]
        })
        .await;
    assert_eq!(msg["drop"]["id"], drop["id"]);
    assert!(msg["seq"].is_u64(), "{msg}");
    assert_eq!(msg["drop"]["availableStock"], 7);
    assert_eq!(msg["drop"]["price"], "19.99");
    // A client arriving later finds it in its snapshot.
    let (_, snapshot) = server.ws().await;
    assert!(
        snapshot["drops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == drop["id"]),
        "{snapshot}"
    );
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
            // A storm of buyers named in the body, as load tools send it.
            identity: Identity::Claimed,
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
    // Read until the final stock arrives (however slow the machine), then
    // whatever else comes soon after, which could only add to the count.
    let mut stock_msgs = 0u32;
    let mut last = loop {
        let m = b.next(WAIT).await.expect("the final stock arrived");
        if is_stock_of(&id)(&m) {
            stock_msgs += 1;
            if m["reservedStock"] == 320 {
                break m;
            }
        }
    };
    // Flushes are at least a tick apart, and every one of them came before
    // the final frame reached this client: a bound relative to how long it
    // all took, so a slow machine cannot break it but a hub that sent one
    // frame per change does.
    let storm = started.elapsed();
    while let Some(m) = b.next(Duration::from_millis(400)).await {
        if is_stock_of(&id)(&m) {
            stock_msgs += 1;
            last = m;
        }
    }
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

/// A client that connects and never reads does not hold up the others:
/// they keep receiving the latest stock while its socket backs up.
async fn a_stalled_client_does_not_slow_the_others(factory: StoreFactory) {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::with(
        factory,
        Settings {
            tick: Duration::from_millis(20),
            client_queue: 8,
            ..Settings::default()
        },
    )
    .await;
    let drop = server.create_drop("Crowded", 1000, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    // A WebSocket handshake, then silence: this client never reads, and
    // its small receive window soon stops the server's writes to it.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(
            b"GET /api/ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let (mut live, _) = server.ws().await;
    // Purchases make discrete events (a queue per client) and stock
    // changes (latest value only); push far more than a queue holds.
    for i in 0..300 {
        let user = format!("buyer_{i}");
        let (status, hold) = server.reserve(&id, &user).await;
        assert_eq!(status, 201);
        let (status, _) = server.purchase(hold["id"].as_str().unwrap(), &user).await;
        assert_eq!(status, 201);
    }
    let last = live
        .wait_for(WAIT, |m| is_stock_of(&id)(m) && m["soldStock"] == 300)
        .await;
    assert_eq!(last["availableStock"], 700);
    assert_eq!(
        server.api.metrics().ws_clients(),
        2,
        "both clients are still connected"
    );
    std::mem::drop(stalled);
    server.stop().await;
}

/// Public feeds name buyers as configured: initials, or not at all; the
/// buyer's own hold still shows their name to them.
async fn feeds_shorten_or_hide_names(factory: StoreFactory) {
    for (names, shown) in [
        (drop_ws::FeedNames::Initials, Some("A.")),
        (drop_ws::FeedNames::Hide, None),
    ] {
        let server = TestServer::configured(factory().await, Settings::default(), |b| {
            b.feed_names(names)
        })
        .await;
        let drop = server.create_drop("Discreet", 5, 60.0).await;
        let id = drop["id"].as_str().unwrap();
        let (mut watcher, _) = server.ws().await;
        let (_, hold) = server.reserve(id, "alice").await;
        assert_eq!(
            hold["displayName"], "alice",
            "the buyer sees their own name"
        );
        let (status, _) = server.purchase(hold["id"].as_str().unwrap(), "alice").await;
        assert_eq!(status, 201);
        let msg = watcher
            .wait_for(WAIT, |m| m["type"] == "purchase" && m["dropId"] == id)
            .await;
        let view = server.drop_view(id).await;
        for named in [&msg, &msg["topPurchasers"][0], &view["topPurchasers"][0]] {
            for field in ["displayName", "username"] {
                assert_eq!(
                    named.get(field).and_then(Value::as_str),
                    shown,
                    "{names:?}: {named}"
                );
            }
        }
        assert!(view["topPurchasers"][0]["purchasedAt"].is_string());
        assert!(!msg.to_string().contains("alice"), "{names:?}: {msg}");
        watcher.close().await;
        server.stop().await;
    }
}

store_tests!(
    feeds_shorten_or_hide_names,
    a_stalled_client_does_not_slow_the_others,
    reserve_and_purchase_reach_other_clients,
    expiry_reaches_clients_promptly,
    expiries_arrive_as_stock,
    new_drops_are_announced,
    stock_messages_coalesce_to_the_latest,
);
