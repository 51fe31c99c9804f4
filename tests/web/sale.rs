//! The sale rules over HTTP: variants, quantities, one hold per buyer and
//! drop, `maxPerBuyer` across holds and purchases, repeated purchases, and
//! purchase records with their pagination.

use reqwest::Method;
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{As, StoreFactory, TestServer};

fn variant(drop: &Value, i: usize) -> String {
    drop["variants"][i]["id"].as_str().unwrap().to_owned()
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn reserve(
    server: &TestServer,
    user: &str,
    drop: &Value,
    variant: Option<&str>,
    quantity: Option<u32>,
) -> crate::support::Answer {
    let mut body = json!({ "dropId": drop["id"] });
    if let Some(v) = variant {
        body["variantId"] = json!(v);
    }
    if let Some(q) = quantity {
        body["quantity"] = json!(q);
    }
    server
        .call(
            Method::POST,
            "/api/reservations",
            As::Buyer(user),
            Some(body),
            None,
        )
        .await
}

async fn buy(server: &TestServer, user: &str, hold: &str) -> crate::support::Answer {
    server
        .call(
            Method::POST,
            "/api/purchases",
            As::Buyer(user),
            Some(json!({ "reservationId": hold })),
            None,
        )
        .await
}

/// A drop of several sizes: the size must be named, a quantity is held
/// all at once, per size, and bought at the price × quantity.
async fn several_sizes_hold_a_quantity(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[3, 2], 2).await;
    assert_eq!(drop["totalStock"], 5);
    assert_eq!(drop["maxPerBuyer"], 2);
    assert_eq!(drop["paused"], false);
    assert_eq!(drop["variants"][0]["name"], "40");
    assert_eq!(drop["variants"][1]["availableStock"], 2);
    let (s40, s41) = (variant(&drop, 0), variant(&drop, 1));

    let unnamed = reserve(&server, "alice", &drop, None, None).await;
    assert_eq!(
        (unnamed.status, unnamed.code()),
        (400, "INVALID_INPUT"),
        "{}",
        unnamed.body
    );
    assert_eq!(unnamed.body["field"], "variantId");
    let over = reserve(&server, "alice", &drop, Some(&s41), Some(3)).await;
    assert_eq!((over.status, over.code()), (400, "INVALID_INPUT"));
    assert_eq!(over.body["field"], "quantity");
    let nowhere = reserve(
        &server,
        "alice",
        &drop,
        Some("6f1c1d2e-8a7b-4c3d-9e0f-112233445566"),
        None,
    )
    .await;
    assert_eq!((nowhere.status, nowhere.code()), (404, "VARIANT_NOT_FOUND"));

    let hold = reserve(&server, "alice", &drop, Some(&s41), Some(2)).await;
    assert_eq!(hold.status, 201, "{}", hold.body);
    assert_eq!(hold.body["variantId"], s41.as_str());
    assert_eq!(hold.body["quantity"], 2);
    let again = reserve(&server, "alice", &drop, Some(&s41), Some(2)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["id"], hold.body["id"]);
    assert_eq!(again.body["expiresAt"], hold.body["expiresAt"]);

    let view = server.drop_view(&id(&drop)).await;
    assert_eq!(view["variants"][1]["reservedStock"], 2);
    assert_eq!(view["variants"][1]["availableStock"], 0);
    assert_eq!(view["variants"][0]["availableStock"], 3);
    assert_eq!(view["availableStock"], 3);
    let mine = server.get_as("/api/drops", "alice").await.1;
    let mine = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == drop["id"])
        .unwrap()
        .clone();
    assert_eq!(mine["userReservation"]["id"], hold.body["id"]);
    assert_eq!(mine["userReservation"]["variantId"], s41.as_str());
    assert_eq!(mine["userReservation"]["quantity"], 2);

    let sold_out = reserve(&server, "bob_b", &drop, Some(&s41), Some(1)).await;
    assert_eq!((sold_out.status, sold_out.code()), (409, "OUT_OF_STOCK"));
    let other_size = reserve(&server, "bob_b", &drop, Some(&s40), Some(1)).await;
    assert_eq!(other_size.status, 201, "{}", other_size.body);

    let bought = buy(&server, "alice", &id(&hold.body)).await;
    assert_eq!(bought.status, 201, "{}", bought.body);
    let p = &bought.body;
    assert_eq!(p["quantity"], 2);
    assert_eq!(p["amountPaid"], "20.00");
    assert_eq!(p["variantId"], s41.as_str());
    assert_eq!(p["dropId"], drop["id"]);
    assert_eq!(p["status"], "completed");
    assert_eq!(p["cancelledAt"], Value::Null);
    assert_eq!(p["buyer"]["displayName"], "alice");
    assert_eq!(p["username"], "alice");
    let view = server.drop_view(&id(&drop)).await;
    assert_eq!(view["variants"][1]["soldStock"], 2);
    assert_eq!(view["soldStock"], 2);
    server.stop().await;
}

/// Asking for something else while holding answers 409 `HOLD_EXISTS`
/// with the hold the caller has.
async fn another_hold_answers_the_existing_one(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[3, 3], 2).await;
    let (s40, s41) = (variant(&drop, 0), variant(&drop, 1));
    let hold = reserve(&server, "alice", &drop, Some(&s40), Some(1)).await;
    assert_eq!(hold.status, 201);
    for (v, q) in [(&s41, 1), (&s40, 2)] {
        let clash = reserve(&server, "alice", &drop, Some(v), Some(q)).await;
        assert_eq!((clash.status, clash.code()), (409, "HOLD_EXISTS"));
        assert!(clash.body["message"].is_string());
        let theirs = &clash.body["reservation"];
        assert_eq!(theirs["id"], hold.body["id"], "{}", clash.body);
        assert_eq!(theirs["variantId"], s40.as_str());
        assert_eq!(theirs["quantity"], 1);
        assert_eq!(theirs["status"], "active");
    }
    // Nothing more is held.
    assert_eq!(server.drop_view(&id(&drop)).await["reservedStock"], 1);
    server.stop().await;
}

/// What a buyer bought counts towards `maxPerBuyer`.
async fn bought_units_count_towards_the_limit(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[5, 5], 2).await;
    let (s40, s41) = (variant(&drop, 0), variant(&drop, 1));
    let hold = reserve(&server, "alice", &drop, Some(&s40), Some(1)).await;
    assert_eq!(buy(&server, "alice", &id(&hold.body)).await.status, 201);
    let two = reserve(&server, "alice", &drop, Some(&s41), Some(2)).await;
    assert_eq!(
        (two.status, two.code()),
        (409, "BUYER_LIMIT_REACHED"),
        "{}",
        two.body
    );
    let one = reserve(&server, "alice", &drop, Some(&s41), Some(1)).await;
    assert_eq!(one.status, 201, "{}", one.body);
    assert_eq!(buy(&server, "alice", &id(&one.body)).await.status, 201);
    let more = reserve(&server, "alice", &drop, Some(&s40), Some(1)).await;
    assert_eq!((more.status, more.code()), (409, "BUYER_LIMIT_REACHED"));
    // Another buyer has their own allowance.
    let bob = reserve(&server, "bob_b", &drop, Some(&s40), Some(2)).await;
    assert_eq!(bob.status, 201, "{}", bob.body);
    server.stop().await;
}

/// The owner repeating a purchase (a lost answer) gets the same purchase
/// with 200; another buyer still gets 404.
async fn a_repeated_purchase_answers_the_same_purchase(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Once", 3, 60.0).await;
    let hold = reserve(&server, "alice", &drop, None, None).await;
    assert_eq!(hold.status, 201);
    let first = buy(&server, "alice", &id(&hold.body)).await;
    assert_eq!(first.status, 201);
    let again = buy(&server, "alice", &id(&hold.body)).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body);
    let stranger = buy(&server, "bob_b", &id(&hold.body)).await;
    assert_eq!(
        (stranger.status, stranger.code()),
        (404, "RESERVATION_NOT_FOUND")
    );
    assert_eq!(server.drop_view(&id(&drop)).await["soldStock"], 1);
    server.stop().await;
}

/// A purchase is readable by its buyer and admins only; the buyer's list
/// is newest first, a page at a time.
async fn purchase_records_and_pages(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let mut ids = Vec::new();
    for name in ["First", "Second", "Third"] {
        let drop = server.create_drop(name, 2, 60.0).await;
        let hold = reserve(&server, "alice", &drop, None, None).await;
        let bought = buy(&server, "alice", &id(&hold.body)).await;
        assert_eq!(bought.status, 201);
        ids.push(id(&bought.body));
    }
    let path = format!("/api/purchases/{}", ids[0]);
    let own = server
        .call(Method::GET, &path, As::Buyer("alice"), None, None)
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.body["id"], ids[0].as_str());
    let admin = server.call(Method::GET, &path, As::Admin, None, None).await;
    assert_eq!(admin.body, own.body);
    let other = server
        .call(Method::GET, &path, As::Buyer("bob_b"), None, None)
        .await;
    assert_eq!((other.status, other.code()), (404, "PURCHASE_NOT_FOUND"));
    let nobody = server
        .call(Method::GET, &path, As::Nobody, None, None)
        .await;
    assert_eq!((nobody.status, nobody.code()), (401, "UNAUTHENTICATED"));

    let page = |query: String| {
        let server = &server;
        async move {
            let a = server
                .call(
                    Method::GET,
                    &format!("/api/me/purchases{query}"),
                    As::Buyer("alice"),
                    None,
                    None,
                )
                .await;
            assert_eq!(a.status, 200, "{}", a.body);
            a.body
        }
    };
    let all = page(String::new()).await;
    let listed: Vec<&str> = all["purchases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    assert_eq!(all["nextBefore"], Value::Null);

    let first = page("?limit=2".into()).await;
    assert_eq!(first["purchases"].as_array().unwrap().len(), 2);
    assert_eq!(first["purchases"][0]["id"], ids[2].as_str());
    assert_eq!(first["nextBefore"], ids[1].as_str());
    let second = page(format!("?limit=2&before={}", ids[1])).await;
    assert_eq!(second["purchases"].as_array().unwrap().len(), 1);
    assert_eq!(second["purchases"][0]["id"], ids[0].as_str());
    assert_eq!(second["nextBefore"], Value::Null);

    // Bob has none, and cannot page through Alice's.
    let bobs = server
        .call(
            Method::GET,
            "/api/me/purchases",
            As::Buyer("bob_b"),
            None,
            None,
        )
        .await;
    assert_eq!(bobs.body, json!({ "purchases": [], "nextBefore": null }));
    let foreign = server
        .call(
            Method::GET,
            &format!("/api/me/purchases?before={}", ids[1]),
            As::Buyer("bob_b"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.code()),
        (404, "PURCHASE_NOT_FOUND")
    );
    server.stop().await;
}

store_tests!(
    several_sizes_hold_a_quantity,
    another_hold_answers_the_existing_one,
    bought_units_count_towards_the_limit,
    a_repeated_purchase_answers_the_same_purchase,
    purchase_records_and_pages,
);
