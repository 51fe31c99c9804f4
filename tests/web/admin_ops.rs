//! The admin operations over HTTP: who may use them, every drop listed,
//! edits and their refusals, pause / resume / end with the live feed
//! watching, and cancelling a purchase.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::store_tests;
use crate::support::{As, StoreFactory, TestServer};

const WAIT: Duration = Duration::from_secs(10);

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn admin(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> Value {
    let a = server.call(method, path, As::Admin, body, None).await;
    assert_eq!(a.status, 200, "{path}: {}", a.body);
    a.body
}

/// Every admin route answers 401 without a token and 403 to a buyer's
/// session; the buyer changes nothing.
async fn admin_routes_want_the_admin(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Guarded", 3, 60.0).await;
    let d = id(&drop);
    let hold = server.reserve(&d, "alice").await.1;
    let bought = server.purchase(&id(&hold), "alice").await.1;
    let p = id(&bought);
    let routes = [
        (Method::GET, "/api/admin/drops".to_owned(), None),
        (
            Method::PATCH,
            format!("/api/admin/drops/{d}"),
            Some(json!({ "name": "Taken" })),
        ),
        (Method::POST, format!("/api/admin/drops/{d}/pause"), None),
        (Method::POST, format!("/api/admin/drops/{d}/resume"), None),
        (Method::POST, format!("/api/admin/drops/{d}/end"), None),
        (
            Method::POST,
            format!("/api/admin/purchases/{p}/cancel"),
            None,
        ),
    ];
    for (method, path, body) in routes {
        let nobody = server
            .call(method.clone(), &path, As::Nobody, body.clone(), None)
            .await;
        assert_eq!(
            (nobody.status, nobody.code()),
            (401, "UNAUTHORIZED"),
            "{method} {path}"
        );
        let buyer = server
            .call(method.clone(), &path, As::Buyer("alice"), body, None)
            .await;
        assert_eq!(
            (buyer.status, buyer.code()),
            (403, "FORBIDDEN"),
            "{method} {path}"
        );
    }
    let view = server.drop_view(&d).await;
    assert_eq!(view["name"], "Guarded");
    assert_eq!(view["paused"], false);
    assert_eq!(view["soldStock"], 1);
    server.stop().await;
}

/// Admins see every drop, ended ones too; edits change what they name,
/// and refuse what breaks a rule.
async fn edits_and_the_full_list(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[2, 2], 1).await;
    let d = id(&drop);
    let ended = server.create_drop("Short", 1, 60.0).await;
    admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{}/end", id(&ended)),
        None,
    )
    .await;
    let public = server.get("/api/drops").await.1;
    assert!(
        public
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != ended["id"])
    );
    let all = admin(&server, Method::GET, "/api/admin/drops", None).await;
    let listed: Vec<&Value> = all.as_array().unwrap().iter().map(|x| &x["id"]).collect();
    assert!(
        listed.contains(&&ended["id"]) && listed.contains(&&drop["id"]),
        "{all}"
    );

    let s40 = drop["variants"][0]["id"].clone();
    let hold = server
        .post_as(
            "/api/reservations",
            json!({ "dropId": d, "variantId": s40 }),
            "alice",
        )
        .await;
    assert_eq!(hold.0, 201, "{}", hold.1);
    let path = format!("/api/admin/drops/{d}");
    let edited = admin(
        &server,
        Method::PATCH,
        &path,
        Some(json!({
            "name": "Renamed", "maxPerBuyer": 2, "holdSeconds": 30,
            "variants": [{ "id": s40, "totalStock": 5 }]
        })),
    )
    .await;
    assert_eq!(edited["name"], "Renamed");
    assert_eq!(edited["maxPerBuyer"], 2);
    assert_eq!(edited["holdSeconds"], 30);
    assert_eq!(edited["variants"][0]["totalStock"], 5);
    assert_eq!(edited["variants"][0]["reservedStock"], 1);
    assert_eq!(edited["totalStock"], 7);
    assert_eq!(server.drop_view(&d).await["name"], "Renamed");

    let below = server
        .call(
            Method::PATCH,
            &path,
            As::Admin,
            Some(json!({ "variants": [{ "id": s40, "totalStock": 0 }] })),
            None,
        )
        .await;
    assert_eq!(
        (below.status, below.code()),
        (409, "STOCK_BELOW_COMMITTED"),
        "{}",
        below.body
    );
    let locked = server
        .call(
            Method::PATCH,
            &path,
            As::Admin,
            Some(json!({ "price": "12.00" })),
            None,
        )
        .await;
    assert_eq!((locked.status, locked.code()), (409, "PRICE_LOCKED"));
    let several = server
        .call(
            Method::PATCH,
            &path,
            As::Admin,
            Some(json!({ "totalStock": 9 })),
            None,
        )
        .await;
    assert_eq!((several.status, several.code()), (422, "INVALID_INPUT"));
    assert_eq!(several.body["field"], "totalStock");
    let unknown = server
        .call(
            Method::PATCH,
            &path,
            As::Admin,
            Some(json!({ "colour": "red" })),
            None,
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.body["field"].clone()),
        (400, json!("colour"))
    );
    // A drop not yet on sale takes a new price.
    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let upcoming = server
        .create_drop_from(json!({
            "name": "Later", "price": "5.00", "totalStock": 3, "startsAt": later
        }))
        .await;
    let repriced = admin(
        &server,
        Method::PATCH,
        &format!("/api/admin/drops/{}", id(&upcoming)),
        Some(json!({ "price": "6.50", "endsAt": null })),
    )
    .await;
    assert_eq!(repriced["price"], "6.50");
    server.stop().await;
}

/// Pausing while a socket watches: the socket hears `dropUpdated`, new
/// holds are refused, a hold taken before may still be bought; pausing
/// again changes nothing; resuming and ending are heard too.
async fn pause_resume_end_with_a_watcher(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.create_drop("Paused", 5, 60.0).await;
    let d = id(&drop);
    let (_, hold) = server.reserve(&d, "carol").await;
    let (mut ws, _) = server.ws().await;
    let paused = admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{d}/pause"),
        None,
    )
    .await;
    assert_eq!(paused["paused"], true);
    let frame = ws
        .wait_for(WAIT, |m| {
            m["type"] == "dropUpdated" && m["drop"]["id"] == d.as_str()
        })
        .await;
    assert_eq!(frame["drop"]["paused"], true);
    assert!(frame["serverTime"].is_string());

    let refused = server.reserve(&d, "alice").await;
    assert_eq!(
        (refused.0, refused.1["error"].clone()),
        (409, json!("DROP_PAUSED"))
    );
    let again = admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{d}/pause"),
        None,
    )
    .await;
    assert_eq!(again, paused);
    assert_eq!(server.purchase(&id(&hold), "carol").await.0, 201);

    let resumed = admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{d}/resume"),
        None,
    )
    .await;
    assert_eq!(resumed["paused"], false);
    ws.wait_for(WAIT, |m| {
        m["type"] == "dropUpdated" && m["drop"]["id"] == d.as_str() && m["drop"]["paused"] == false
    })
    .await;
    assert_eq!(server.reserve(&d, "alice").await.0, 201);

    let ended = admin(
        &server,
        Method::POST,
        &format!("/api/admin/drops/{d}/end"),
        None,
    )
    .await;
    assert!(ended["endsAt"].is_string(), "{ended}");
    ws.wait_for(WAIT, |m| {
        m["type"] == "dropUpdated"
            && m["drop"]["id"] == d.as_str()
            && m["drop"]["endsAt"].is_string()
    })
    .await;
    let late = server.reserve(&d, "bob_b").await;
    assert_eq!(
        (late.0, late.1["error"].clone()),
        (409, json!("DROP_NOT_ACTIVE"))
    );
    ws.close().await;
    server.stop().await;
}

/// Cancelling a purchase puts its units back (a `stock` frame shows
/// them), tells its buyer's own sockets, and is idempotent.
async fn cancelling_a_purchase(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[1, 1], 1).await;
    let d = id(&drop);
    let s41 = drop["variants"][1]["id"].as_str().unwrap().to_owned();
    let (status, hold) = server
        .post_as(
            "/api/reservations",
            json!({ "dropId": d, "variantId": s41 }),
            "alice",
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    let (status, bought) = server.purchase(&id(&hold), "alice").await;
    assert_eq!(status, 201);
    let (mut mine, snapshot) = server.ws_as("alice").await;
    let listed = snapshot["drops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == d.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["variants"][1]["soldStock"], 1);
    let (mut theirs, _) = server.ws_as("bob_b").await;

    let path = format!("/api/admin/purchases/{}/cancel", id(&bought));
    let cancelled = admin(&server, Method::POST, &path, None).await;
    assert_eq!(cancelled["status"], "cancelled");
    assert!(cancelled["cancelledAt"].is_string());
    assert_eq!(cancelled["id"], bought["id"]);

    let private = mine
        .wait_for(WAIT, |m| m["type"] == "purchaseCancelled")
        .await;
    assert_eq!(private["purchaseId"], bought["id"]);
    assert_eq!(private["dropId"], d.as_str());
    let stock = theirs
        .wait_for(WAIT, |m| {
            m["type"] == "stock" && m["dropId"] == d.as_str() && m["soldStock"] == 0
        })
        .await;
    assert_eq!(stock["availableStock"], 2);
    assert_eq!(stock["variants"][1]["id"], s41.as_str());
    assert_eq!(stock["variants"][1]["availableStock"], 1);
    assert_eq!(stock["variants"][1]["soldStock"], 0);
    // Bob hears the stock, never Alice's private frame.
    while let Some(m) = theirs.next(Duration::from_millis(300)).await {
        assert_ne!(m["type"], "purchaseCancelled", "{m}");
    }

    let again = admin(&server, Method::POST, &path, None).await;
    assert_eq!(again, cancelled);
    let record = server
        .call(
            Method::GET,
            &format!("/api/purchases/{}", id(&bought)),
            As::Buyer("alice"),
            None,
            None,
        )
        .await;
    assert_eq!(record.body["status"], "cancelled");
    // The unit is on sale again, and Alice may buy again.
    let (status, _) = server
        .post_as(
            "/api/reservations",
            json!({ "dropId": d, "variantId": s41 }),
            "alice",
        )
        .await;
    assert_eq!(status, 201);
    mine.close().await;
    theirs.close().await;
    server.stop().await;
}

store_tests!(
    admin_routes_want_the_admin,
    edits_and_the_full_list,
    pause_resume_end_with_a_watcher,
    cancelling_a_purchase,
);
