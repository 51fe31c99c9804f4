//! `Idempotency-Key` over HTTP: a replay answers the first request's
//! status with `Idempotent-Replayed: true`, another body with the same key
//! is 422, a key is the caller's own, and a second request arriving while
//! the first is still being answered is 409.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use drop_core::{
    Applied, Buyer, BuyerId, DropError, DropId, DropPatch, DropState, EventStream, IdempotencyKey,
    IdempotencyRecord, InventoryStore, NewDrop, Purchase, PurchaseId, Purchased, Reservation,
    ReservationId, ReserveRequest, Reserved, RevokedSessions, TopPurchaser, async_trait,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::Notify;
use uuid::Uuid;

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

/// A store whose first `reserve_with` waits, once armed, until it is let
/// go: the test holds the first of two keyed requests inside the store
/// while the second arrives, so the race is certain.
#[derive(Debug)]
struct Gate {
    inner: Arc<dyn InventoryStore>,
    armed: AtomicBool,
    entered: Notify,
    release: Notify,
}

#[async_trait]
impl InventoryStore for Gate {
    async fn create_drop_with(
        &self,
        new: NewDrop,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.create_drop_with(new, key).await
    }
    async fn list_drops(&self) -> Result<Vec<DropState>, DropError> {
        self.inner.list_drops().await
    }
    async fn list_all_drops(&self) -> Result<Vec<DropState>, DropError> {
        self.inner.list_all_drops().await
    }
    async fn get_drop(&self, id: DropId) -> Result<DropState, DropError> {
        self.inner.get_drop(id).await
    }
    async fn reserve_with(
        &self,
        id: DropId,
        buyer: &Buyer,
        request: ReserveRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Reserved, DropError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.entered.notify_one();
            self.release.notified().await;
        }
        self.inner.reserve_with(id, buyer, request, key).await
    }
    async fn purchase_with(
        &self,
        id: ReservationId,
        buyer: &BuyerId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Purchased, DropError> {
        self.inner.purchase_with(id, buyer, key).await
    }
    async fn get_purchase(&self, id: PurchaseId) -> Result<Purchase, DropError> {
        self.inner.get_purchase(id).await
    }
    async fn buyer_purchases(
        &self,
        buyer: &BuyerId,
        before: Option<PurchaseId>,
        limit: usize,
    ) -> Result<Vec<Purchase>, DropError> {
        self.inner.buyer_purchases(buyer, before, limit).await
    }
    async fn update_drop(
        &self,
        id: DropId,
        patch: &DropPatch,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.update_drop(id, patch, key).await
    }
    async fn set_paused(
        &self,
        id: DropId,
        paused: bool,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.set_paused(id, paused, key).await
    }
    async fn end_drop(
        &self,
        id: DropId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<DropState>, DropError> {
        self.inner.end_drop(id, key).await
    }
    async fn cancel_purchase(
        &self,
        id: PurchaseId,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Purchase>, DropError> {
        self.inner.cancel_purchase(id, key).await
    }
    async fn idempotency_record(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, DropError> {
        self.inner.idempotency_record(caller, key).await
    }
    async fn release(&self, id: ReservationId, buyer: &BuyerId) -> Result<Reservation, DropError> {
        self.inner.release(id, buyer).await
    }
    async fn get_reservation(&self, id: ReservationId) -> Result<Reservation, DropError> {
        self.inner.get_reservation(id).await
    }
    async fn active_hold(
        &self,
        id: DropId,
        buyer: &BuyerId,
    ) -> Result<Option<Reservation>, DropError> {
        self.inner.active_hold(id, buyer).await
    }
    async fn top_purchasers(
        &self,
        id: DropId,
        limit: usize,
    ) -> Result<Vec<TopPurchaser>, DropError> {
        self.inner.top_purchasers(id, limit).await
    }
    async fn expire_due(&self, limit: usize) -> Result<usize, DropError> {
        self.inner.expire_due(limit).await
    }
    async fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.inner.next_expiry().await
    }
    fn subscribe(&self) -> EventStream {
        self.inner.subscribe()
    }
    async fn revoke_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), DropError> {
        self.inner.revoke_session(id, expires_at).await
    }
    async fn revoked_sessions(
        &self,
        since: Option<DateTime<Utc>>,
    ) -> Result<RevokedSessions, DropError> {
        self.inner.revoked_sessions(since).await
    }
    async fn store_time(&self) -> Result<Option<DateTime<Utc>>, DropError> {
        self.inner.store_time().await
    }
    async fn health(&self) -> Result<(), DropError> {
        self.inner.health().await
    }
    async fn close(&self) {
        self.inner.close().await
    }
}

/// Two requests with one key, the first held inside the store until the
/// second has been answered: the second is 409 `IDEMPOTENCY_IN_PROGRESS`;
/// once the first is answered, the key replays it. Another buyer's
/// request with the same key is not held up.
async fn a_key_in_progress_is_409(factory: StoreFactory) {
    let backend = factory().await;
    let gate = Arc::new(Gate {
        inner: backend.store,
        armed: AtomicBool::new(false),
        entered: Notify::new(),
        release: Notify::new(),
    });
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

    gate.armed.store(true, Ordering::SeqCst);
    let entered = gate.entered.notified();
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
    gate.release.notify_one();
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
