//! Draw drops over HTTP and the WebSocket: entering, reading and
//! withdrawing one's entry, the refusals, the draw runner drawing at
//! `drawAt` (winners told by `holdOffered`, everyone by `drawCompleted`),
//! the draw's public record before and after (checked with
//! `drop_core::verify_draw`), and what a refresh shows afterwards.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::DrawRunner;
use reqwest::Method;
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{As, Identity, Settings, StoreFactory, TestServer, WsClient};

/// How long a test waits for a message that must come (only a failure
/// waits this long).
const WAIT: Duration = Duration::from_secs(60);

fn entries(drop_id: &str) -> String {
    format!("/api/drops/{drop_id}/entries")
}

fn draw(drop_id: &str) -> String {
    format!("/api/drops/{drop_id}/draw")
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// A server with the draw runner, on the store's clock, as `web_drop`
/// runs it.
async fn server_with_runner(factory: StoreFactory, settings: Settings) -> TestServer {
    let backend = factory().await;
    let runner = DrawRunner::new(backend.store.clone())
        .clock(backend.clock.clone())
        .max_sleep(Duration::from_millis(500));
    TestServer::configured(backend, settings, |b| b.draw_runner(runner)).await
}

/// An instant `secs` from now, RFC 3339.
fn in_secs(secs: f64) -> String {
    let at = Utc::now() + chrono::Duration::milliseconds((secs * 1000.0) as i64);
    at.to_rfc3339()
}

/// A draw drop of `stock` units drawing in `secs` seconds: its view.
async fn draw_drop(server: &TestServer, stock: u32, secs: f64) -> Value {
    server
        .create_drop_from(json!({
            "name": "Raffle", "price": "25.00", "totalStock": stock, "holdSeconds": 60,
            "mode": "draw", "drawAt": in_secs(secs)
        }))
        .await
}

/// `user`'s view of the drop in `GET /api/drops`.
async fn listed_for(server: &TestServer, drop_id: &str, user: &str) -> Value {
    let (status, drops) = server.get_as("/api/drops", user).await;
    assert_eq!(status, 200, "{drops}");
    drops
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop_id)
        .cloned()
        .expect("drop listed")
}

/// Asserts `entry` is a well-formed entry of `drop_id`, not drawn yet,
/// naming no buyer.
fn check_entry(entry: &Value, drop_id: &str) {
    assert_eq!(entry["dropId"], drop_id, "{entry}");
    assert!(entry["variantId"].is_string(), "{entry}");
    let receipt = entry["receipt"].as_str().expect("receipt");
    assert!(
        !receipt.is_empty() && receipt.chars().all(|c| c.is_ascii_hexdigit()),
        "{entry}"
    );
    let at = entry["enteredAt"].as_str().expect("enteredAt");
    DateTime::parse_from_rfc3339(at).expect("enteredAt is RFC 3339");
    assert_eq!(entry["outcome"], Value::Null, "{entry}");
    assert_eq!(entry["drawPosition"], Value::Null, "{entry}");
    assert_eq!(entry["reservationId"], Value::Null, "{entry}");
    let mut keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "drawPosition",
            "dropId",
            "enteredAt",
            "outcome",
            "receipt",
            "reservationId",
            "variantId"
        ],
        "no buyer id, no name, nothing else: {entry}"
    );
}

/// A status and code, with the body for the failure message.
fn expect(answer: (u16, Value), status: u16, code: &str) -> Value {
    assert_eq!(answer.0, status, "{code}: {}", answer.1);
    assert_eq!(answer.1["error"], code, "{}", answer.1);
    answer.1
}

async fn enter_read_and_withdraw(factory: StoreFactory) {
    let server = server_with_runner(factory, Settings::default()).await;
    // Far enough ahead that the runner leaves it alone.
    let drop = draw_drop(&server, 2, 3600.0).await;
    let d = id(&drop);
    assert_eq!(drop["mode"], "draw", "{drop}");
    assert!(drop["drawAt"].is_string(), "{drop}");
    assert_eq!(drop["beaconName"], Value::Null, "{drop}");
    assert_eq!(drop["drawnAt"], Value::Null, "{drop}");
    assert_eq!(drop["userEntry"], Value::Null, "{drop}");
    let path = entries(&d);

    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");
    check_entry(&bob, &d);
    assert_eq!(bob["variantId"], drop["variants"][0]["id"]);
    // Entering again: the same entry, 200.
    let (status, again) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, bob);
    // An Idempotency-Key is accepted and changes nothing.
    let keyed = server
        .call(
            Method::POST,
            &path,
            As::Buyer("bob_b"),
            Some(json!({})),
            Some("any-key"),
        )
        .await;
    assert_eq!(keyed.status, 200, "{}", keyed.body);
    assert_eq!(keyed.body, bob);
    assert!(!keyed.replayed());

    let (status, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read, json!({ "entry": bob }));

    // Each viewer sees their own entry only.
    let view = listed_for(&server, &d, "bob_b").await;
    assert_eq!(view["userEntry"], bob, "{view}");
    assert_eq!(view["mode"], "draw");
    let carol_view = listed_for(&server, &d, "carol").await;
    assert_eq!(carol_view["userEntry"], Value::Null, "{carol_view}");
    let (status, anonymous) = server.get("/api/drops").await;
    assert_eq!(status, 200);
    let anonymous = anonymous
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == d.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(anonymous["userEntry"], Value::Null, "{anonymous}");

    // Another buyer can neither see nor withdraw Bob's entry.
    let (status, read) = server.get_as(&path, "carol").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read, json!({ "entry": null }));
    let theirs = server
        .call(Method::DELETE, &path, As::Buyer("carol"), None, None)
        .await;
    assert_eq!(theirs.status, 204, "{}", theirs.body);
    let (_, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(read["entry"]["receipt"], bob["receipt"], "{read}");

    // Carol enters: her own entry, another receipt.
    let (status, carol) = server.post_as(&path, json!({}), "carol").await;
    assert_eq!(status, 201, "{carol}");
    assert_ne!(carol["receipt"], bob["receipt"]);

    // Withdrawing: 204, and again 204; Carol's entry stays.
    let gone = server
        .call(Method::DELETE, &path, As::Buyer("bob_b"), None, None)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(gone.body, Value::Null, "no body");
    let again = server
        .call(Method::DELETE, &path, As::Buyer("bob_b"), None, None)
        .await;
    assert_eq!(again.status, 204, "{}", again.body);
    let (_, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(read, json!({ "entry": null }));
    let (_, read) = server.get_as(&path, "carol").await;
    assert_eq!(read["entry"], carol, "{read}");

    // The public record before the draw: the commitment only.
    let (status, record) = server.get(&draw(&d)).await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["dropId"], d.as_str());
    assert_eq!(record["drawAt"], drop["drawAt"]);
    let hash = record["seedHash"].as_str().expect("seedHash");
    assert_eq!(hash.len(), 64, "{record}");
    assert_eq!(record["drawnAt"], Value::Null);
    assert_eq!(record["published"], Value::Null);
    server.stop().await;
}

async fn refusals_are_4xx(factory: StoreFactory) {
    let server = server_with_runner(factory, Settings::default()).await;
    let unknown = "6f1c1d2e-8a7b-4c3d-9e0f-112233445566";

    // No credentials.
    let nobody = server
        .call(
            Method::POST,
            &entries(unknown),
            As::Nobody,
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!((nobody.status, nobody.code()), (401, "UNAUTHENTICATED"));

    // Unknown drop, every method.
    expect(
        server.post_as(&entries(unknown), json!({}), "bob_b").await,
        404,
        "DROP_NOT_FOUND",
    );
    expect(
        server.get_as(&entries(unknown), "bob_b").await,
        404,
        "DROP_NOT_FOUND",
    );
    expect(
        server.delete_as(&entries(unknown), "bob_b").await,
        404,
        "DROP_NOT_FOUND",
    );
    expect(server.get(&draw(unknown)).await, 404, "DROP_NOT_FOUND");

    // Malformed ids.
    let err = expect(
        server.post_as(&entries("nope"), json!({}), "bob_b").await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "id");
    let err = expect(server.get(&draw("nope")).await, 400, "INVALID_INPUT");
    assert_eq!(err["field"], "id");

    let drop = draw_drop(&server, 1, 3600.0).await;
    let d = id(&drop);
    let err = expect(
        server
            .post_as(&entries(&d), json!({ "variantId": "nope" }), "bob_b")
            .await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "variantId");
    let err = expect(
        server
            .post_as(&entries(&d), json!({ "variantId": 7 }), "bob_b")
            .await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "variantId", "{err}");
    expect(
        server
            .post_as(&entries(&d), json!({ "variantId": unknown }), "bob_b")
            .await,
        404,
        "VARIANT_NOT_FOUND",
    );

    // A draw drop not drawn yet sells only by its draw.
    expect(server.reserve(&d, "bob_b").await, 409, "DRAW_ONLY");
    expect(
        server
            .post_as(&format!("/api/drops/{d}/waitlist"), json!({}), "bob_b")
            .await,
        409,
        "DRAW_ONLY",
    );

    // A first-come drop has no draw.
    let open = id(&server.create_drop("Open", 3, 60.0).await);
    expect(
        server.post_as(&entries(&open), json!({}), "bob_b").await,
        409,
        "NOT_A_DRAW",
    );
    expect(server.get(&draw(&open)).await, 409, "NOT_A_DRAW");
    let (status, read) = server.get_as(&entries(&open), "bob_b").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read, json!({ "entry": null }));

    // Two variants: which one must be named.
    let sized = server
        .create_drop_from(json!({
            "name": "Sized raffle", "price": "10.00", "holdSeconds": 60,
            "variants": [{ "name": "40", "totalStock": 1 }, { "name": "41", "totalStock": 1 }],
            "drawAt": in_secs(3600.0)
        }))
        .await;
    assert_eq!(
        sized["mode"], "draw",
        "drawAt alone makes a draw drop: {sized}"
    );
    let err = expect(
        server
            .post_as(&entries(&id(&sized)), json!({}), "bob_b")
            .await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "variantId");

    // Creating: the draw's rules between fields and against the clock.
    for (body, field) in [
        (json!({ "mode": "draw" }), "drawAt"),
        (
            json!({ "mode": "draw", "drawAt": "2001-01-01T00:00:00Z" }),
            "drawAt",
        ),
        (
            json!({ "mode": "firstCome", "drawAt": in_secs(3600.0) }),
            "drawAt",
        ),
        (json!({ "beaconName": "drand" }), "beaconName"),
    ] {
        let mut full = json!({ "name": "Bad", "price": "1.00", "totalStock": 1 });
        for (k, v) in body.as_object().unwrap() {
            full[k] = v.clone();
        }
        let answer = server
            .call(Method::POST, "/api/drops", As::Admin, Some(full), None)
            .await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(answer.code(), "INVALID_INPUT", "{}", answer.body);
        assert_eq!(answer.body["field"], field, "{}", answer.body);
    }
    let answer = server
        .call(
            Method::POST,
            "/api/drops",
            As::Admin,
            Some(json!({ "name": "Bad", "price": "1.00", "totalStock": 1, "mode": "lottery" })),
            None,
        )
        .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.body["field"], "mode", "{}", answer.body);

    // Entries close at `drawAt`: entering and withdrawing are refused
    // from then on, whether or not the draw was made yet.
    let soon = draw_drop(&server, 1, 1.0).await;
    let s = id(&soon);
    wait_past(&soon).await;
    expect(
        server.post_as(&entries(&s), json!({}), "bob_b").await,
        409,
        "ENTRIES_CLOSED",
    );
    expect(
        server.delete_as(&entries(&s), "bob_b").await,
        409,
        "ENTRIES_CLOSED",
    );
    server.stop().await;
}

/// Sleeps until the drop's `drawAt` has passed (by this machine's clock,
/// which every store here keeps time by).
async fn wait_past(drop: &Value) {
    let at: DateTime<Utc> = drop["drawAt"]
        .as_str()
        .expect("drawAt")
        .parse()
        .expect("RFC 3339");
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + Duration::from_millis(100)).await;
}

/// Reads `socket` until its `drawCompleted` frame for `drop_id`: that
/// frame, and the `holdOffered` frame before it, if any.
async fn until_drawn(socket: &mut WsClient, drop_id: &str) -> (Value, Option<Value>) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut offered = None;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(frame) = socket.next(left).await else {
            panic!("no drawCompleted within {WAIT:?}");
        };
        if frame["dropId"] != drop_id {
            continue;
        }
        match frame["type"].as_str() {
            Some("holdOffered") => offered = Some(frame),
            Some("drawCompleted") => return (frame, offered),
            _ => {}
        }
    }
}

async fn the_runner_draws_and_everyone_hears(factory: StoreFactory) {
    let server = server_with_runner(factory, Settings::default()).await;
    // Signed in and listening before the drop exists, so that entering
    // fits in the time before its draw.
    let (mut alice_ws, _) = server.ws_as("alice").await;
    let (mut bob_ws, _) = server.ws_as("bob_b").await;
    let (mut anonymous_ws, _) = server.ws().await;

    // Two entries must land before `drawAt`: eight seconds leave room on a
    // loaded machine (the runner draws as soon as it has come).
    let drop = draw_drop(&server, 1, 8.0).await;
    let d = id(&drop);
    let path = entries(&d);
    let (status, alice) = server.post_as(&path, json!({}), "alice").await;
    assert_eq!(status, 201, "{alice}");
    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");
    let (status, before) = server.get(&draw(&d)).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["published"], Value::Null, "{before}");

    // Everyone hears of the draw, the anonymous socket too.
    let (public, none) = until_drawn(&mut anonymous_ws, &d).await;
    assert!(none.is_none(), "an anonymous socket gets no private frame");
    assert_eq!(public["entries"], 2, "{public}");
    assert_eq!(public["winners"], 1, "{public}");
    assert_eq!(public["waiting"], 1, "{public}");
    let drawn_at = public["drawnAt"].as_str().expect("drawnAt").to_owned();
    assert!(public["seq"].is_u64(), "{public}");
    let (alice_frame, alice_offer) = until_drawn(&mut alice_ws, &d).await;
    let (bob_frame, bob_offer) = until_drawn(&mut bob_ws, &d).await;
    assert_eq!(alice_frame, public_without_time(&public, &alice_frame));
    assert_eq!(bob_frame, public_without_time(&public, &bob_frame));

    // Exactly one of them won, and was offered the unit on their socket.
    let (winner, winner_entry, offer, loser, loser_entry) = match (alice_offer, bob_offer) {
        (Some(offer), None) => ("alice", &alice, offer, "bob_b", &bob),
        (None, Some(offer)) => ("bob_b", &bob, offer, "alice", &alice),
        other => panic!("one winner, one holdOffered: {other:?}"),
    };
    let hold = &offer["reservation"];
    assert_eq!(hold["offered"], true, "{offer}");
    assert_eq!(hold["status"], "active", "{offer}");
    assert_eq!(hold["quantity"], 1, "{offer}");
    assert_eq!(hold["dropId"], d.as_str());
    assert!(
        offer["seq"].as_u64() < public["seq"].as_u64(),
        "holdOffered first"
    );

    let (_, won) = server.get_as(&path, winner).await;
    let won = &won["entry"];
    assert_eq!(won["receipt"], winner_entry["receipt"], "{won}");
    assert_eq!(won["outcome"], "won", "{won}");
    assert_eq!(won["drawPosition"], 1, "{won}");
    assert_eq!(won["reservationId"], hold["id"], "{won}");
    let (_, lost) = server.get_as(&path, loser).await;
    let lost = &lost["entry"];
    assert_eq!(lost["receipt"], loser_entry["receipt"], "{lost}");
    assert_eq!(lost["outcome"], "waiting", "{lost}");
    assert_eq!(lost["drawPosition"], 2, "{lost}");
    assert_eq!(lost["reservationId"], Value::Null, "{lost}");

    // The public record now publishes the draw, which anyone can check.
    let (status, after) = server.get(&draw(&d)).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(
        after["seedHash"], before["seedHash"],
        "the commitment holds"
    );
    assert_eq!(after["drawnAt"], drawn_at.as_str());
    let published: drop_core::PublishedDraw =
        serde_json::from_value(after["published"].clone()).expect("a published draw");
    drop_core::verify_draw(&published).expect("the draw verifies");
    assert_eq!(after["published"]["seedHash"], before["seedHash"]);
    let receipts: Vec<String> = published
        .entries
        .iter()
        .map(|e| e.receipt.to_string())
        .collect();
    assert_eq!(receipts.len(), 2, "{after}");
    for e in [&alice, &bob] {
        assert!(
            receipts.contains(&e["receipt"].as_str().unwrap().to_owned()),
            "{after}"
        );
    }
    let winners: Vec<String> = published
        .winners
        .iter()
        .flat_map(|w| w.receipts.iter().map(ToString::to_string))
        .collect();
    assert_eq!(winners, [winner_entry["receipt"].as_str().unwrap()]);

    // A refresh shows the outcome, the offered hold and the place in line.
    let view = listed_for(&server, &d, winner).await;
    assert_eq!(view["drawnAt"], drawn_at.as_str(), "{view}");
    assert_eq!(view["userEntry"]["outcome"], "won", "{view}");
    assert_eq!(view["userReservation"]["id"], hold["id"], "{view}");
    assert_eq!(view["userReservation"]["offered"], true, "{view}");
    let view = listed_for(&server, &d, loser).await;
    assert_eq!(view["userEntry"]["outcome"], "waiting", "{view}");
    assert_eq!(view["userWaitlist"]["position"], 1, "{view}");
    // A new socket's snapshot shows the drop drawn.
    let (fresh, snapshot) = server.ws().await;
    let shown = snapshot["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == d.as_str())
        .cloned()
        .expect("in the snapshot");
    assert_eq!(shown["drawnAt"], drawn_at.as_str(), "{shown}");

    // The admin's log view: the winner's offered hold, then the draw.
    let log = server
        .call(
            Method::GET,
            &format!("/api/admin/events?dropId={d}"),
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!(log.status, 200, "{}", log.body);
    let kinds: Vec<&str> = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|k| *k != "dropCreated")
        .collect();
    assert_eq!(kinds, ["holdCreated", "drawCompleted"], "{}", log.body);
    let logged = log.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "drawCompleted")
        .cloned()
        .unwrap();
    assert_eq!(logged["seq"], public["seq"], "{logged}");
    assert_eq!(logged["drawnAt"], drawn_at.as_str(), "{logged}");
    assert_eq!(
        (&logged["entries"], &logged["winners"], &logged["waiting"]),
        (&json!(2), &json!(1), &json!(1)),
        "{logged}"
    );

    // The drop now sells first come: no more DRAW_ONLY, no more entries.
    let (status, refused) = server.reserve(&d, "carol").await;
    assert_eq!(status, 409, "{refused}");
    assert_ne!(refused["error"], "DRAW_ONLY", "{refused}");
    expect(
        server.post_as(&path, json!({}), "carol").await,
        409,
        "ENTRIES_CLOSED",
    );

    for socket in [alice_ws, bob_ws, anonymous_ws, fresh] {
        socket.close().await;
    }
    server.stop().await;
}

/// `public` as another socket got it: the same but for `serverTime`.
fn public_without_time(public: &Value, other: &Value) -> Value {
    let mut v = public.clone();
    v["serverTime"] = other["serverTime"].clone();
    v
}

async fn claimed_identity_names_the_buyer(factory: StoreFactory) {
    let server = server_with_runner(
        factory,
        Settings {
            identity: Identity::Claimed,
            ..Settings::default()
        },
    )
    .await;
    let d = id(&draw_drop(&server, 1, 3600.0).await);
    let path = entries(&d);
    let (status, entry) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{entry}");
    check_entry(&entry, &d);
    let (status, read) = server.get(&format!("{path}?username=bob_b")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["entry"], entry);
    let (_, other) = server.get(&format!("{path}?username=carol")).await;
    assert_eq!(other, json!({ "entry": null }));
    let res = server
        .http
        .delete(server.url(&format!("{path}?username=bob_b")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (_, read) = server.get(&format!("{path}?username=bob_b")).await;
    assert_eq!(read, json!({ "entry": null }));
    server.stop().await;
}

store_tests!(
    enter_read_and_withdraw,
    refusals_are_4xx,
    the_runner_draws_and_everyone_hears,
    claimed_identity_names_the_buyer,
);
