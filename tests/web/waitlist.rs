//! The waiting list over HTTP and the WebSocket: joining, reading and
//! leaving one's place, the refusals, the offered hold reaching the waiter
//! (`holdOffered`) and the line moving for everyone (`waitlistMoved`), and
//! what a refresh shows afterwards.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{As, Identity, Settings, StoreFactory, TestServer};

/// How long a test waits for a message that must come (only a failure
/// waits this long).
const WAIT: Duration = Duration::from_secs(10);

fn line(drop_id: &str) -> String {
    format!("/api/drops/{drop_id}/waitlist")
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
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

/// A one-unit drop whose unit `holder` holds: the line is what is left.
async fn sold_out(server: &TestServer, hold_seconds: f64, holder: &str) -> (String, Value) {
    let drop = server.create_drop("Line", 1, hold_seconds).await;
    let d = id(&drop);
    let (status, hold) = server.reserve(&d, holder).await;
    assert_eq!(status, 201, "{hold}");
    (d, hold)
}

/// Asserts `place` is a well-formed place of `drop_id`, with no buyer id.
fn check_place(place: &Value, drop_id: &str, position: u64) {
    assert_eq!(place["dropId"], drop_id, "{place}");
    assert!(place["variantId"].is_string(), "{place}");
    assert!(place["ticket"].is_u64(), "{place}");
    assert_eq!(place["position"], position, "{place}");
    assert_eq!(place["setAside"], 0, "{place}");
    let joined = place["joinedAt"].as_str().expect("joinedAt");
    chrono::DateTime::parse_from_rfc3339(joined).expect("joinedAt is RFC 3339");
    let keys: Vec<&str> = place
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "dropId",
            "joinedAt",
            "position",
            "quantity",
            "setAside",
            "ticket",
            "variantId"
        ],
        "no buyer id or anything else: {place}"
    );
}

async fn join_see_and_leave(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (d, _) = sold_out(&server, 60.0, "alice").await;
    let path = line(&d);

    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");
    check_place(&bob, &d, 1);
    assert_eq!(bob["quantity"], 1);
    // The same request again: the same place, 200.
    let (status, again) = server
        .post_as(&path, json!({ "quantity": 1 }), "bob_b")
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["ticket"], bob["ticket"]);
    assert_eq!(again["position"], 1);
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
    assert_eq!(keyed.body["ticket"], bob["ticket"]);
    assert!(!keyed.replayed());

    let (status, carol) = server.post_as(&path, json!({}), "carol").await;
    assert_eq!(status, 201, "{carol}");
    check_place(&carol, &d, 2);
    assert!(carol["ticket"].as_u64() > bob["ticket"].as_u64());

    let (status, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["place"]["ticket"], bob["ticket"]);
    check_place(&read["place"], &d, 1);

    // The drop shows the line, and each viewer their own place.
    let view = listed_for(&server, &d, "carol").await;
    assert_eq!(view["waitlist"], true);
    assert_eq!(view["availableStock"], 0);
    assert_eq!(view["variants"][0]["waitlistLength"], 2, "{view}");
    assert_eq!(view["userWaitlist"]["ticket"], carol["ticket"], "{view}");
    assert_eq!(view["userWaitlist"]["position"], 2);
    let alice = listed_for(&server, &d, "alice").await;
    assert_eq!(alice["userWaitlist"], Value::Null, "{alice}");
    assert_eq!(alice["userReservation"]["offered"], false, "{alice}");

    // Leaving: 204, and again 204.
    let gone = server
        .call(Method::DELETE, &path, As::Buyer("bob_b"), None, None)
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    assert_eq!(gone.body, Value::Null, "no body");
    let again = server
        .call(Method::DELETE, &path, As::Buyer("bob_b"), None, None)
        .await;
    assert_eq!(again.status, 204, "{}", again.body);
    let (status, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(status, 200);
    assert_eq!(read, json!({ "place": null }));
    // Carol moved up.
    let (_, read) = server.get_as(&path, "carol").await;
    assert_eq!(read["place"]["position"], 1, "{read}");
    let view = listed_for(&server, &d, "carol").await;
    assert_eq!(view["variants"][0]["waitlistLength"], 1, "{view}");
    server.stop().await;
}

async fn refusals_are_4xx(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let unknown = "6f1c1d2e-8a7b-4c3d-9e0f-112233445566";
    let expect = |answer: (u16, Value), status: u16, code: &str| {
        assert_eq!(answer.0, status, "{code}: {}", answer.1);
        assert_eq!(answer.1["error"], code, "{}", answer.1);
        answer.1
    };

    // No credentials.
    let nobody = server
        .call(
            Method::POST,
            &line(unknown),
            As::Nobody,
            Some(json!({})),
            None,
        )
        .await;
    assert_eq!((nobody.status, nobody.code()), (401, "UNAUTHENTICATED"));

    // Unknown drop, every method.
    expect(
        server.post_as(&line(unknown), json!({}), "bob_b").await,
        404,
        "DROP_NOT_FOUND",
    );
    expect(
        server.get_as(&line(unknown), "bob_b").await,
        404,
        "DROP_NOT_FOUND",
    );
    let gone = server
        .call(
            Method::DELETE,
            &line(unknown),
            As::Buyer("bob_b"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (gone.status, gone.code()),
        (404, "DROP_NOT_FOUND"),
        "{}",
        gone.body
    );

    // Units free: reserve instead.
    let open = id(&server.create_drop("Open", 3, 60.0).await);
    expect(
        server.post_as(&line(&open), json!({}), "bob_b").await,
        409,
        "WAITLIST_NOT_NEEDED",
    );

    let (d, alice_hold) = sold_out(&server, 60.0, "alice").await;
    let path = line(&d);
    expect(
        server
            .post_as(&path, json!({ "variantId": unknown }), "bob_b")
            .await,
        404,
        "VARIANT_NOT_FOUND",
    );
    // Above maxPerBuyer (1): the field is named.
    let err = expect(
        server
            .post_as(&path, json!({ "quantity": 2 }), "bob_b")
            .await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "quantity");
    let err = expect(
        server
            .post_as(&path, json!({ "quantity": 0 }), "bob_b")
            .await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "quantity");
    // The holder buys or releases first.
    let err = expect(
        server.post_as(&path, json!({}), "alice").await,
        409,
        "HOLD_EXISTS",
    );
    assert_eq!(err["reservation"]["id"], alice_hold["id"], "{err}");

    // A line closed by the drop.
    let closed = server
        .create_drop_from(json!({
            "name": "No line", "price": "1.00", "totalStock": 1, "holdSeconds": 60, "waitlist": false
        }))
        .await;
    assert_eq!(closed["waitlist"], false);
    let closed = id(&closed);
    let (status, _) = server.reserve(&closed, "alice").await;
    assert_eq!(status, 201);
    expect(
        server.post_as(&line(&closed), json!({}), "bob_b").await,
        409,
        "WAITLIST_CLOSED",
    );

    // Not started yet.
    let later = server
        .create_drop_from(json!({
            "name": "Later", "price": "1.00", "totalStock": 1, "holdSeconds": 60,
            "startsAt": "2999-01-01T00:00:00Z"
        }))
        .await;
    expect(
        server.post_as(&line(&id(&later)), json!({}), "bob_b").await,
        409,
        "DROP_NOT_ACTIVE",
    );

    // Paused.
    let paused = server
        .call(
            Method::POST,
            &format!("/api/admin/drops/{d}/pause"),
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!(paused.status, 200, "{}", paused.body);
    expect(
        server.post_as(&path, json!({}), "bob_b").await,
        409,
        "DROP_PAUSED",
    );

    // Two variants: one line per buyer and drop.
    let sized = server.sized_drop(&[1, 1], 2).await;
    let s = id(&sized);
    let (v0, v1) = (id(&sized["variants"][0]), id(&sized["variants"][1]));
    for (user, v) in [("alice", &v0), ("dave", &v1)] {
        let (status, hold) = server
            .post_as(
                "/api/reservations",
                json!({ "dropId": s, "variantId": v }),
                user,
            )
            .await;
        assert_eq!(status, 201, "{hold}");
    }
    let err = expect(
        server.post_as(&line(&s), json!({}), "bob_b").await,
        400,
        "INVALID_INPUT",
    );
    assert_eq!(err["field"], "variantId");
    let (status, place) = server
        .post_as(&line(&s), json!({ "variantId": v0 }), "bob_b")
        .await;
    assert_eq!(status, 201, "{place}");
    let err = expect(
        server
            .post_as(&line(&s), json!({ "variantId": v1 }), "bob_b")
            .await,
        409,
        "ALREADY_IN_LINE",
    );
    assert_eq!(err["place"]["variantId"], v0.as_str(), "{err}");
    assert_eq!(err["place"]["ticket"], place["ticket"]);
    let err = expect(
        server
            .post_as(
                &line(&s),
                json!({ "variantId": v0, "quantity": 2 }),
                "bob_b",
            )
            .await,
        409,
        "ALREADY_IN_LINE",
    );
    assert_eq!(err["place"]["quantity"], 1, "{err}");

    // What they bought counts: over maxPerBuyer is refused.
    let bought = id(&server.create_drop("Bought", 2, 60.0).await);
    let (_, hold) = server.reserve(&bought, "erin").await;
    let (status, _) = server.purchase(&id(&hold), "erin").await;
    assert_eq!(status, 201);
    let (status, _) = server.reserve(&bought, "frank").await;
    assert_eq!(status, 201);
    expect(
        server.post_as(&line(&bought), json!({}), "erin").await,
        409,
        "BUYER_LIMIT_REACHED",
    );
    server.stop().await;
}

/// A released hold goes to the head of the line: the waiter's socket gets
/// `holdOffered` then `waitlistLeft`, every socket `waitlistMoved`, and a
/// refresh shows the offered hold and the line moved.
async fn a_release_offers_the_hold_to_the_head(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (d, alice_hold) = sold_out(&server, 60.0, "alice").await;
    let path = line(&d);
    let (mut bob_ws, _) = server.ws_as("bob_b").await;
    let (mut watcher, _) = server.ws().await;

    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");
    let joined = bob_ws
        .wait_for(WAIT, |m| m["type"] == "waitlistJoined")
        .await;
    assert_eq!(joined["dropId"], d.as_str());
    assert_eq!(joined["ticket"], bob["ticket"]);
    assert_eq!(joined["variantId"], bob["variantId"]);
    assert_eq!(joined["quantity"], 1);
    assert!(joined["seq"].is_u64(), "{joined}");
    let (status, carol) = server.post_as(&path, json!({}), "carol").await;
    assert_eq!(status, 201, "{carol}");

    let released = server
        .delete_as(&format!("/api/reservations/{}", id(&alice_hold)), "alice")
        .await;
    assert_eq!(released.0, 200, "{}", released.1);

    let offered = bob_ws.wait_for(WAIT, |m| m["type"] == "holdOffered").await;
    assert_eq!(offered["dropId"], d.as_str());
    let hold = &offered["reservation"];
    assert_eq!(hold["offered"], true, "{offered}");
    assert_eq!(hold["status"], "active");
    assert_eq!(hold["quantity"], 1);
    assert_eq!(hold["dropId"], d.as_str());
    assert_eq!(hold["variantId"], bob["variantId"]);
    assert_eq!(hold["displayName"], "bob_b");
    let created: chrono::DateTime<chrono::Utc> =
        hold["createdAt"].as_str().unwrap().parse().unwrap();
    let expires: chrono::DateTime<chrono::Utc> =
        hold["expiresAt"].as_str().unwrap().parse().unwrap();
    // `createdAt` is when the offer was logged: on PostgreSQL a few
    // milliseconds after the hold's own start, which `expiresAt` counts from.
    let window = (expires - created).num_milliseconds();
    assert!((59_000..=60_000).contains(&window), "{window} ms: {hold}");
    let left = bob_ws.wait_for(WAIT, |m| m["type"] == "waitlistLeft").await;
    assert_eq!(left["reason"], "offered");
    assert_eq!(left["ticket"], bob["ticket"]);
    assert_eq!(
        left["seq"],
        offered["seq"].as_u64().unwrap() + 1,
        "{offered} then {left}"
    );

    let moved = watcher
        .wait_for(WAIT, |m| m["type"] == "waitlistMoved")
        .await;
    assert_eq!(moved["dropId"], d.as_str());
    assert_eq!(moved["ticket"], bob["ticket"]);
    assert_eq!(moved["variantId"], bob["variantId"]);
    assert!(
        moved.get("buyerId").is_none() && moved.get("reason").is_none(),
        "{moved}"
    );

    // The refresh agrees: bob holds an offered hold and waits no more;
    // carol is at the head, with nothing set aside.
    let bob_view = listed_for(&server, &d, "bob_b").await;
    assert_eq!(bob_view["userReservation"]["id"], hold["id"], "{bob_view}");
    assert_eq!(bob_view["userReservation"]["offered"], true);
    assert_eq!(bob_view["userWaitlist"], Value::Null);
    assert_eq!(bob_view["availableStock"], 0);
    assert_eq!(bob_view["reservedStock"], 1);
    assert_eq!(bob_view["variants"][0]["waitlistLength"], 1);
    let carol_view = listed_for(&server, &d, "carol").await;
    assert_eq!(carol_view["userReservation"], Value::Null);
    assert_eq!(carol_view["userWaitlist"]["position"], 1, "{carol_view}");
    let (status, read) = server
        .get_as(
            &format!("/api/reservations/{}", hold["id"].as_str().unwrap()),
            "bob_b",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(read["offered"], true, "{read}");
    assert_eq!(read["status"], "active");
    assert_eq!(
        read["expiresAt"], hold["expiresAt"],
        "the frame's hold is the hold"
    );

    // The log tells it in order.
    let events = server
        .call(
            Method::GET,
            &format!("/api/admin/events?dropId={d}"),
            As::Admin,
            None,
            None,
        )
        .await;
    assert_eq!(events.status, 200, "{}", events.body);
    let kinds: Vec<(&str, Option<bool>, Option<&str>)> = events.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["offered"].as_bool(),
                e["reason"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("dropCreated", None, None),
            ("holdCreated", Some(false), None),
            ("waitlistJoined", None, None),
            ("waitlistJoined", None, None),
            ("holdReleased", None, None),
            ("holdCreated", Some(true), None),
            ("waitlistLeft", None, Some("offered")),
        ],
        "{}",
        events.body
    );

    // The offered hold is bought like any other.
    let (status, bought) = server.purchase(hold["id"].as_str().unwrap(), "bob_b").await;
    assert_eq!(status, 201, "{bought}");
    bob_ws.close().await;
    watcher.close().await;
    server.stop().await;
}

/// A hold running out goes to the head of the line too, on the scheduler's
/// sweep; and the offered hold, left to run out, goes back on sale when
/// nobody else waits.
async fn an_expiry_offers_the_hold_to_the_head(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (d, _) = sold_out(&server, 1.0, "alice").await;
    let (mut bob_ws, _) = server.ws_as("bob_b").await;
    let (mut watcher, _) = server.ws().await;
    let (status, bob) = server.post_as(&line(&d), json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");

    let offered = bob_ws.wait_for(WAIT, |m| m["type"] == "holdOffered").await;
    assert_eq!(offered["reservation"]["offered"], true, "{offered}");
    assert_eq!(offered["reservation"]["variantId"], bob["variantId"]);
    let moved = watcher
        .wait_for(WAIT, |m| m["type"] == "waitlistMoved")
        .await;
    assert_eq!(moved["ticket"], bob["ticket"]);
    // Its own window runs out too; with nobody in line the unit is back.
    let back = watcher
        .wait_for(WAIT, |m| {
            m["type"] == "stock" && m["dropId"] == d.as_str() && m["availableStock"] == 1
        })
        .await;
    assert_eq!(back["variants"][0]["waitlistLength"], 0, "{back}");
    bob_ws.close().await;
    watcher.close().await;
    server.stop().await;
}

/// Another buyer neither sees nor removes someone's place, nor hears of it
/// on their socket.
async fn a_place_is_its_buyers_alone(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let (d, _) = sold_out(&server, 60.0, "alice").await;
    let path = line(&d);
    let (mut carol_ws, _) = server.ws_as("carol").await;
    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");

    let (status, read) = server.get_as(&path, "carol").await;
    assert_eq!((status, &read), (200, &json!({ "place": null })));
    let removed = server
        .call(Method::DELETE, &path, As::Buyer("carol"), None, None)
        .await;
    assert_eq!(removed.status, 204);
    let (_, read) = server.get_as(&path, "bob_b").await;
    assert_eq!(
        read["place"]["ticket"], bob["ticket"],
        "bob still waits: {read}"
    );
    assert_eq!(
        listed_for(&server, &d, "carol").await["userWaitlist"],
        Value::Null
    );
    let (status, public) = server.get("/api/drops").await;
    assert_eq!(status, 200);
    let listed = public
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == d.as_str())
        .unwrap();
    assert_eq!(listed["userWaitlist"], Value::Null);
    assert_eq!(listed["variants"][0]["waitlistLength"], 1);
    // Carol's socket hears the stock (the line's length), never bob's join.
    while let Some(m) = carol_ws.next(Duration::from_millis(500)).await {
        assert_ne!(m["type"], "waitlistJoined", "bob's join told to carol: {m}");
    }
    carol_ws.close().await;
    server.stop().await;
}

/// The original wire: the buyer named in the body (join) or `?username=`.
async fn claimed_identity_names_the_buyer(factory: StoreFactory) {
    let settings = Settings {
        identity: Identity::Claimed,
        ..Settings::default()
    };
    let server = TestServer::with(factory, settings).await;
    let (d, _) = sold_out(&server, 60.0, "alice").await;
    let path = line(&d);
    let (status, bob) = server.post_as(&path, json!({}), "bob_b").await;
    assert_eq!(status, 201, "{bob}");
    let (status, read) = server.get(&format!("{path}?username=bob_b")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["place"]["ticket"], bob["ticket"]);
    let (status, read) = server.get(&format!("{path}?username=carol")).await;
    assert_eq!((status, &read["place"]), (200, &Value::Null));
    let view = listed_for(&server, &d, "bob_b").await;
    assert_eq!(view["userWaitlist"]["ticket"], bob["ticket"], "{view}");
    let (status, _) = server.get(&path).await;
    assert_eq!(status, 400, "no buyer named");
    let res = server
        .http
        .delete(server.url(&format!("{path}?username=bob_b")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (_, read) = server.get(&format!("{path}?username=bob_b")).await;
    assert_eq!(read["place"], Value::Null);
    server.stop().await;
}

store_tests!(
    join_see_and_leave,
    refusals_are_4xx,
    a_release_offers_the_hold_to_the_head,
    an_expiry_offers_the_hold_to_the_head,
    a_place_is_its_buyers_alone,
    claimed_identity_names_the_buyer,
);
