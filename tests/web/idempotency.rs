//! `Idempotency-Key` over HTTP: a replay answers the first request's
//! status with `Idempotent-Replayed: true`, another body with the same key
//! is 422, a key is the caller's own, and a second request arriving while
//! the first is still being answered is 409.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use drop_core::async_trait;
use drop_core::testkit::{StoreHooks, Wrapped};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::store_tests;
use crate::support::{As, Backend, Settings, StoreFactory, TestServer};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// Replays, reuse with another body, and keys scoped per buyer, on every
/// keyed route.
async fn keys_replay_and_refuse_reuse(factory: StoreFactory) {
    let server = TestServer::start(factory).await;
    let drop = server.sized_drop(&[3, 3], 2).await;
    let d = id(&drop);
    let s40 = drop["variants"][0]["id"].clone();
    let post = |user: &'static str, path: &'static str, body: Value, key: &'static str| {
        let server = &server;
        async move {
            server
                .call(Method::POST, path, As::Buyer(user), Some(body), Some(key))
                .await
        }
    };

    let first = post(
        "alice",
        "/api/reservations",
        json!({ "dropId": d, "variantId": s40, "quantity": 2 }),
        "hold-1",
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert!(!first.replayed());
    // Key order and spacing are not a different request.
    let replay = server
        .http
        .post(server.url("/api/reservations"))
        .bearer_auth(server.token("alice").await)
        .header("idempotency-key", "hold-1")
        .header("content-type", "application/json")
        .body(format!(
            "{{ \"quantity\": 2,\n \"variantId\": {s40}, \"dropId\": \"{d}\" }}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed, first.body);
    assert_eq!(server.drop_view(&d).await["reservedStock"], 2);

    let reused = post(
        "alice",
        "/api/reservations",
        json!({ "dropId": d, "variantId": s40, "quantity": 1 }),
        "hold-1",
    )
    .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "IDEMPOTENCY_KEY_REUSED"),
        "{}",
        reused.body
    );
    // The same key on another route is another request too.
    let elsewhere = post(
        "alice",
        "/api/purchases",
        json!({ "reservationId": first.body["id"] }),
        "hold-1",
    )
    .await;
    assert_eq!(elsewhere.status, 422, "{}", elsewhere.body);

    // Bob's key of the same name is his own.
    let bobs = post(
        "bob_b",
        "/api/reservations",
        json!({ "dropId": d, "variantId": s40, "quantity": 1 }),
        "hold-1",
    )
    .await;
    assert_eq!(bobs.status, 201, "{}", bobs.body);
    assert!(!bobs.replayed());
    assert_ne!(bobs.body["id"], first.body["id"]);

    // A purchase replayed answers 201, as the first did.
    let buy = json!({ "reservationId": first.body["id"] });
    let bought = post("alice", "/api/purchases", buy.clone(), "buy-1").await;
    assert_eq!(bought.status, 201);
    let again = post("alice", "/api/purchases", buy.clone(), "buy-1").await;
    assert_eq!((again.status, again.replayed()), (201, true));
    assert_eq!(again.body, bought.body);
    // Without the key, the repeat is the plain 200 of a bought hold.
    let plain = server.purchase(&id(&first.body), "alice").await;
    assert_eq!(plain.0, 200);

    // Admin writes: create, pause, cancel.
    let create = json!({ "name": "Keyed", "price": 1, "totalStock": 2 });
    let made = server
        .call(
            Method::POST,
            "/api/drops",
            As::Admin,
            Some(create.clone()),
            Some("mk"),
        )
        .await;
    assert_eq!(made.status, 201);
    let remade = server
        .call(
            Method::POST,
            "/api/drops",
            As::Admin,
            Some(create),
            Some("mk"),
        )
        .await;
    assert_eq!((remade.status, remade.replayed()), (201, true));
    assert_eq!(remade.body["id"], made.body["id"]);
    let all = server
        .call(Method::GET, "/api/admin/drops", As::Admin, None, None)
        .await;
    let keyed = all
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "Keyed");
    assert_eq!(keyed.count(), 1);

    let pause = format!("/api/admin/drops/{d}/pause");
    let paused = server
        .call(Method::POST, &pause, As::Admin, None, Some("p-1"))
        .await;
    assert_eq!((paused.status, paused.replayed()), (200, false));
    let repaused = server
        .call(Method::POST, &pause, As::Admin, None, Some("p-1"))
        .await;
    assert_eq!((repaused.status, repaused.replayed()), (200, true));
    assert_eq!(repaused.body["paused"], true);
    let resume = format!("/api/admin/drops/{d}/resume");
    let wrong = server
        .call(Method::POST, &resume, As::Admin, None, Some("p-1"))
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    let cancel = format!("/api/admin/purchases/{}/cancel", id(&bought.body));
    let c1 = server
        .call(Method::POST, &cancel, As::Admin, None, Some("c-1"))
        .await;
    let c2 = server
        .call(Method::POST, &cancel, As::Admin, None, Some("c-1"))
        .await;
    assert_eq!((c1.status, c2.status, c2.replayed()), (200, 200, true));
    assert_eq!(c2.body, c1.body);
    server.stop().await;
}

/// Holds the first `reserve_with` after it is armed until it is let go:
/// the test holds the first of two keyed requests inside the store while
/// the second arrives, so the race is certain.
#[derive(Debug, Default)]
struct Gate {
    armed: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl StoreHooks for Gate {
    async fn before_reserve(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
    }
}

/// Two requests with one key, the first held inside the store until the
/// second has been answered: the second is 409 `IDEMPOTENCY_IN_PROGRESS`;
/// once the first is answered, the key replays it. Another buyer's
/// request with the same key is not held up.
async fn a_key_in_progress_is_409(factory: StoreFactory) {
    let backend = factory().await;
    let gate = Arc::new(Wrapped::new(backend.store, Gate::default()));
    let backend = Backend {
        store: gate.clone(),
        clock: backend.clock,
        database_url: backend.database_url,
    };
    let server = Arc::new(TestServer::on(backend, Settings::default()).await);
    let drop = server.create_drop("Raced", 5, 60.0).await;
    let body = json!({ "dropId": drop["id"] });
    // Sign in first, so the held request is the reserve itself.
    server.token("alice").await;
    server.token("bob_b").await;

    gate.hooks.armed.store(true, Ordering::SeqCst);
    let entered = gate.hooks.entered.notified();
    let first = tokio::spawn({
        let server = server.clone();
        let body = body.clone();
        async move {
            server
                .call(
                    Method::POST,
                    "/api/reservations",
                    As::Buyer("alice"),
                    Some(body),
                    Some("race"),
                )
                .await
        }
    });
    entered.await;
    let second = server
        .call(
            Method::POST,
            "/api/reservations",
            As::Buyer("alice"),
            Some(body.clone()),
            Some("race"),
        )
        .await;
    assert_eq!(
        (second.status, second.code()),
        (409, "IDEMPOTENCY_IN_PROGRESS"),
        "{}",
        second.body
    );
    // The key is per buyer: Bob's goes through while Alice's is held.
    let bobs = server
        .call(
            Method::POST,
            "/api/reservations",
            As::Buyer("bob_b"),
            Some(body.clone()),
            Some("race"),
        )
        .await;
    assert_eq!(bobs.status, 201, "{}", bobs.body);
    gate.hooks.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(
        (first.status, first.replayed()),
        (201, false),
        "{}",
        first.body
    );
    let third = server
        .call(
            Method::POST,
            "/api/reservations",
            As::Buyer("alice"),
            Some(body),
            Some("race"),
        )
        .await;
    assert_eq!((third.status, third.replayed()), (201, true));
    assert_eq!(third.body["id"], first.body["id"]);
    assert_eq!(server.drop_view(&id(&drop)).await["reservedStock"], 2);
    Arc::into_inner(server).expect("one owner").stop().await;
}

store_tests!(keys_replay_and_refuse_reuse, a_key_in_progress_is_409);
