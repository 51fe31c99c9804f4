//! Many buyers at once over real HTTP.

use std::sync::Arc;

use crate::store_tests;
use crate::support::{StoreFactory, TestServer};

async fn two_hundred_buyers_twenty_units(factory: StoreFactory) {
    let server = Arc::new(TestServer::start(factory).await);
    let drop = server.create_drop("Scarce", 20, 60.0).await;
    let id = drop["id"].as_str().unwrap().to_owned();
    // Signed in beforehand, so that the 200 reserves are what races.
    for i in 0..200 {
        server.token(&format!("buyer_{i}")).await;
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let server = server.clone();
            let id = id.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                server.reserve(&id, &format!("buyer_{i}")).await
            })
        })
        .collect();
    let mut ok = 0;
    let mut sold_out = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => ok += 1,
            409 => {
                assert_eq!(body["error"], "OUT_OF_STOCK", "{body}");
                sold_out += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, sold_out), (20, 180));
    let view = server.drop_view(&id).await;
    assert_eq!(view["availableStock"], 0);
    assert_eq!(view["reservedStock"], 20);
    Arc::into_inner(server).expect("sole owner").stop().await;
}

async fn reserving_twice_returns_the_same_hold(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Once", 5, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let (s1, first) = server.reserve(id, "dave").await;
    let (s2, again) = server.reserve(id, "dave").await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(first, again, "the hold comes back unchanged");
    let view = server
        .get_as("/api/drops", "dave")
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(view["userReservation"]["id"], first["id"]);
    assert_eq!(view["userReservation"]["expiresAt"], first["expiresAt"]);
    assert_eq!(view["availableStock"], 4);
    server.stop().await;
}

async fn release_and_ownership(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Give back", 1, 60.0).await;
    let id = drop["id"].as_str().unwrap();
    let (_, hold) = server.reserve(id, "erin").await;
    let hid = hold["id"].as_str().unwrap();
    let path = format!("/api/reservations/{hid}");

    // Another buyer's hold is not there for them (never "not yours").
    let (status, err) = server.purchase(hid, "mallory").await;
    assert_eq!(
        (status, err["error"].as_str()),
        (404, Some("RESERVATION_NOT_FOUND"))
    );
    let (status, err) = server.delete_as(&path, "mallory").await;
    assert_eq!(
        (status, err["error"].as_str()),
        (404, Some("RESERVATION_NOT_FOUND"))
    );
    assert_eq!(server.get_as(&path, "mallory").await.0, 404);
    assert_eq!(server.get(&path).await.0, 401, "no session");

    let (status, released) = server.delete_as(&path, "erin").await;
    assert_eq!(status, 200);
    assert_eq!(released["status"], "released");
    assert_eq!(server.drop_view(id).await["availableStock"], 1);

    let (status, err) = server.purchase(hid, "erin").await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("ALREADY_RELEASED"))
    );
    let (status, shown) = server.get_as(&path, "erin").await;
    assert_eq!(status, 200);
    assert_eq!(shown["status"], "released");
    // Exactly the hold's own fields: nothing about other users.
    let mut keys: Vec<_> = shown.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "displayName",
            "dropId",
            "expiresAt",
            "id",
            "offered",
            "quantity",
            "status",
            "username",
            "variantId"
        ]
    );

    // Someone else takes the unit; buying it twice answers the same
    // purchase (the first answer may have been lost), and sells nothing more.
    let (_, hold2) = server.reserve(id, "frank").await;
    let h2 = hold2["id"].as_str().unwrap();
    let (status, first) = server.purchase(h2, "frank").await;
    assert_eq!(status, 201);
    let (status, again) = server.purchase(h2, "frank").await;
    assert_eq!((status, &again), (200, &first));
    assert_eq!(server.drop_view(id).await["soldStock"], 1);
    let (status, err) = server.reserve(id, "gina").await;
    assert_eq!((status, err["error"].as_str()), (409, Some("OUT_OF_STOCK")));
    server.stop().await;
}

async fn not_yet_started_and_ended_drops(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, upcoming) = {
        let res = server
            .http
            .post(server.url("/api/drops"))
            .bearer_auth(crate::support::TOKEN)
            .json(&serde_json::json!({
                "name": "Soon", "price": 5, "totalStock": 3, "startsAt": later
            }))
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json::<serde_json::Value>().await.unwrap(),
        )
    };
    assert_eq!(status, 201, "{upcoming}");
    assert_eq!(upcoming["price"], "5.00");
    let (status, err) = server
        .reserve(upcoming["id"].as_str().unwrap(), "hank")
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("DROP_NOT_ACTIVE"))
    );
    server.stop().await;
}

store_tests!(
    two_hundred_buyers_twenty_units,
    reserving_twice_returns_the_same_hold,
    release_and_ownership,
    not_yet_started_and_ended_drops,
);
