//! Idempotency keys: a write repeated with its key replays instead of
//! acting again.

use super::*;

use crate::{DropPatch, PurchaseStatus, Recorded, ReservationStatus};

/// Asserts `IDEMPOTENCY_KEY_REUSED`.
fn assert_reused<T: std::fmt::Debug>(r: Result<T, DropError>) {
    match error(r) {
        DropError::IdempotencyKeyReused { .. } => {}
        other => panic!("expected IDEMPOTENCY_KEY_REUSED, got {other:?}"),
    }
}

/// Asserts the store keeps `caller`'s record under `key`, for `entity`.
async fn assert_recorded(
    h: &dyn Harness,
    caller: &str,
    key: &str,
    fingerprint: u8,
    entity: Recorded,
    created: bool,
) {
    let record = h
        .store()
        .idempotency_record(caller, key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no record of {caller}'s key {key}"));
    assert_eq!(
        (
            record.caller.as_str(),
            record.key.as_str(),
            record.fingerprint,
            record.entity,
            record.created
        ),
        (caller, key, [fingerprint; 32], entity, created)
    );
}

/// A reserve repeated with its key answers the same hold as it is now,
/// marked replayed, holding and announcing nothing more, even after the
/// hold ended; the key with another request is `IDEMPOTENCY_KEY_REUSED`.
pub async fn idempotent_reserve_replays(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let alice = user("alice");
    let key = idem(alice.id.as_str(), "reserve-1", 1);
    let first = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), Some(&key))
        .await
        .unwrap();
    assert!(first.created && !first.replayed);
    assert_recorded(
        h,
        alice.id.as_str(),
        "reserve-1",
        1,
        Recorded::Reservation(first.reservation.id),
        true,
    )
    .await;
    let mut events = store.subscribe();
    let again = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), Some(&key))
        .await
        .unwrap();
    assert!(again.replayed && again.created, "{again:?}");
    assert_eq!(again.reservation, first.reservation);
    assert_reused(
        store
            .reserve_with(
                d.drop.id,
                &alice,
                ask(l, 1),
                Some(&idem(alice.id.as_str(), "reserve-1", 2)),
            )
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 2, 0), (5, 0, 0)]).await;
    // Released since: the replay shows the hold released, and holds
    // nothing anew.
    store
        .release(first.reservation.id, &alice.id)
        .await
        .unwrap();
    // The key comes first (step 0): on a paused drop the replay still
    // answers, and reusing the key fails as reuse whatever else is wrong.
    store.set_paused(d.drop.id, true, None).await.unwrap();
    let mut events = store.subscribe();
    let late = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), Some(&key))
        .await
        .unwrap();
    assert!(late.replayed);
    assert_eq!(late.reservation.id, first.reservation.id);
    assert_eq!(late.reservation.status, ReservationStatus::Released);
    assert_reused(
        store
            .reserve_with(
                DropId::new(),
                &alice,
                ask(l, 1),
                Some(&idem(alice.id.as_str(), "reserve-1", 2)),
            )
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    store.set_paused(d.drop.id, false, None).await.unwrap();
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 0)]).await;
    // A hold answered unchanged (not created) replays as such.
    let plain = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    let k2 = idem(alice.id.as_str(), "reserve-2", 3);
    let found = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), Some(&k2))
        .await
        .unwrap();
    assert!(!found.created && !found.replayed);
    assert_eq!(found.reservation, plain);
    let replay = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), Some(&k2))
        .await
        .unwrap();
    assert!(replay.replayed && !replay.created, "{replay:?}");
    assert_eq!(replay.reservation, plain);
    verify(h).await;
}

/// A purchase repeated with its key replays: the same purchase, marked
/// replayed, nothing sold twice or announced.
pub async fn idempotent_purchase_replays(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let alice = user("alice");
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 1), 2), None)
        .await
        .unwrap()
        .reservation;
    let key = idem(alice.id.as_str(), "buy-1", 7);
    let first = store
        .purchase_with(hold.id, &alice.id, Some(&key))
        .await
        .unwrap();
    assert!(first.created && !first.replayed);
    assert_recorded(
        h,
        alice.id.as_str(),
        "buy-1",
        7,
        Recorded::Purchase(first.purchase.id),
        true,
    )
    .await;
    let mut events = store.subscribe();
    let again = store
        .purchase_with(hold.id, &alice.id, Some(&key))
        .await
        .unwrap();
    assert!(again.replayed && again.created, "{again:?}");
    assert_eq!(again.purchase, first.purchase);
    assert_reused(
        store
            .purchase_with(
                hold.id,
                &alice.id,
                Some(&idem(alice.id.as_str(), "buy-1", 8)),
            )
            .await,
    );
    // A key is one request's, whatever the operation.
    assert_reused(
        store
            .reserve_with(
                d.drop.id,
                &alice,
                ask(variant(&d, 0), 1),
                Some(&idem(alice.id.as_str(), "buy-1", 9)),
            )
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 2)]).await;
    assert_eq!(
        store
            .buyer_purchases(&alice.id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    // Cancelled since: the replay answers the purchase as it is now.
    let cancelled = store
        .cancel_purchase(first.purchase.id, None)
        .await
        .unwrap()
        .value;
    let mut events = store.subscribe();
    let late = store
        .purchase_with(hold.id, &alice.id, Some(&key))
        .await
        .unwrap();
    assert!(late.replayed);
    assert_eq!(late.purchase, cancelled);
    assert_eq!(late.purchase.status, PurchaseStatus::Cancelled);
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 0)]).await;
    verify(h).await;
}

/// The admin writes replay too: create, update, pause, end and cancel,
/// each answering the entity as it is now without acting again, even when
/// it changed since; each refusing the key with another request.
pub async fn idempotent_admin_writes_replay(h: &dyn Harness) {
    let store = h.store();
    let admin = "admin";
    let new = NewDrop::with_variants(
        "Keyed",
        price(),
        [NewVariant::new("M", 4), NewVariant::new("L", 4)],
    )
    .max_per_buyer(2)
    .hold(h.long_hold());

    // Create.
    let k_create = idem(admin, "create", 1);
    let created = store
        .create_drop_with(new.clone(), Some(&k_create))
        .await
        .unwrap();
    assert!(created.changed && !created.replayed);
    let id = created.value.drop.id;
    assert_recorded(h, admin, "create", 1, Recorded::Drop(id), true).await;
    let mut events = store.subscribe();
    let again = store
        .create_drop_with(new.clone(), Some(&k_create))
        .await
        .unwrap();
    assert!(again.replayed && !again.changed, "{again:?}");
    assert_eq!(again.value, created.value);
    assert_reused(
        store
            .create_drop_with(
                new.clone().max_per_buyer(1),
                Some(&idem(admin, "create", 2)),
            )
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    let drops = store.list_all_drops().await.unwrap();
    assert_eq!(
        drops.iter().filter(|d| d.drop.name == "Keyed").count(),
        1,
        "one drop created"
    );

    // Update: a replay after another edit answers the drop as it is now.
    let k_update = idem(admin, "update", 3);
    let rename = DropPatch::new().name("First name");
    let updated = store
        .update_drop(id, &rename, Some(&k_update))
        .await
        .unwrap();
    assert!(updated.changed);
    assert_recorded(h, admin, "update", 3, Recorded::Drop(id), false).await;
    store
        .update_drop(id, &DropPatch::new().name("Second name"), None)
        .await
        .unwrap();
    let mut events = store.subscribe();
    let replay = store
        .update_drop(id, &rename, Some(&k_update))
        .await
        .unwrap();
    assert!(replay.replayed && !replay.changed);
    assert_eq!(replay.value.drop.name, "Second name", "not applied again");
    assert_reused(
        store
            .update_drop(
                id,
                &DropPatch::new().name("Third"),
                Some(&idem(admin, "update", 4)),
            )
            .await,
    );

    assert_quiet_since(h, &mut events).await;

    // Pause: replayed after a resume, it does not pause again.
    let k_pause = idem(admin, "pause", 5);
    assert!(
        store
            .set_paused(id, true, Some(&k_pause))
            .await
            .unwrap()
            .changed
    );
    assert_recorded(h, admin, "pause", 5, Recorded::Drop(id), false).await;
    store.set_paused(id, false, None).await.unwrap();
    let mut events = store.subscribe();
    let replay = store.set_paused(id, true, Some(&k_pause)).await.unwrap();
    assert!(replay.replayed && !replay.changed);
    assert!(
        !replay.value.drop.paused,
        "the replay paused the drop again"
    );
    assert_reused(
        store
            .set_paused(id, false, Some(&idem(admin, "pause", 6)))
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    assert!(!store.get_drop(id).await.unwrap().drop.paused);

    // Cancel: replayed, the same cancelled purchase.
    let alice = user("alice");
    let hold = store
        .reserve_with(id, &alice, ask(variant(&created.value, 0), 2), None)
        .await
        .unwrap()
        .reservation;
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    let k_cancel = idem(admin, "cancel", 9);
    let cancelled = store.cancel_purchase(p.id, Some(&k_cancel)).await.unwrap();
    assert!(cancelled.changed);
    assert_recorded(h, admin, "cancel", 9, Recorded::Purchase(p.id), false).await;
    let mut events = store.subscribe();
    let replay = store.cancel_purchase(p.id, Some(&k_cancel)).await.unwrap();
    assert!(replay.replayed && !replay.changed);
    assert_eq!(replay.value, cancelled.value);
    assert_eq!(replay.value.status, PurchaseStatus::Cancelled);
    assert_reused(
        store
            .cancel_purchase(p.id, Some(&idem(admin, "cancel", 10)))
            .await,
    );
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, id, &[(4, 0, 0), (4, 0, 0)]).await;

    // End.
    let k_end = idem(admin, "end", 11);
    let ended = store.end_drop(id, Some(&k_end)).await.unwrap();
    assert!(ended.changed);
    let mut events = store.subscribe();
    let replay = store.end_drop(id, Some(&k_end)).await.unwrap();
    assert!(replay.replayed && !replay.changed);
    assert_eq!(replay.value.drop.ends_at, ended.value.drop.ends_at);
    assert_reused(store.end_drop(id, Some(&idem(admin, "end", 12))).await);
    assert_quiet_since(h, &mut events).await;
    verify(h).await;
}

/// A refused write records nothing: retried with the same key once the
/// cause is gone, it acts afresh.
pub async fn refused_writes_record_nothing(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1), ("L", 1)], 1).await;
    let m = variant(&d, 0);
    let (alice, bob) = (user("alice"), user("bob"));
    let a = store
        .reserve_with(d.drop.id, &alice, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    let key = idem(bob.id.as_str(), "try", 1);
    assert_eq!(
        code(
            store
                .reserve_with(d.drop.id, &bob, ask(m, 1), Some(&key))
                .await
        ),
        "OUT_OF_STOCK"
    );
    assert_eq!(
        store
            .idempotency_record(bob.id.as_str(), "try")
            .await
            .unwrap(),
        None
    );
    store.release(a.id, &alice.id).await.unwrap();
    let retry = store
        .reserve_with(d.drop.id, &bob, ask(m, 1), Some(&key))
        .await
        .unwrap();
    assert!(retry.created && !retry.replayed, "acted afresh: {retry:?}");
    assert_recorded(
        h,
        bob.id.as_str(),
        "try",
        1,
        Recorded::Reservation(retry.reservation.id),
        true,
    )
    .await;

    // An admin edit refused, then possible.
    let admin_key = idem("admin", "shrink", 2);
    let shrink = DropPatch::new().variant_stock(m, 0);
    assert_eq!(
        code(
            store
                .update_drop(d.drop.id, &shrink, Some(&admin_key))
                .await
        ),
        "STOCK_BELOW_COMMITTED"
    );
    assert_eq!(
        store.idempotency_record("admin", "shrink").await.unwrap(),
        None
    );
    store.release(retry.reservation.id, &bob.id).await.unwrap();
    let shrunk = store
        .update_drop(d.drop.id, &shrink, Some(&admin_key))
        .await
        .unwrap();
    assert!(shrunk.changed && !shrunk.replayed);
    assert_counters(&shrunk.value, &[(0, 0, 0), (1, 0, 0)]);

    // A purchase refused (not the owner's) records nothing either.
    let c = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 1), 1), None)
        .await
        .unwrap()
        .reservation;
    let buy_key = idem(bob.id.as_str(), "buy", 3);
    assert_eq!(
        code(store.purchase_with(c.id, &bob.id, Some(&buy_key)).await),
        "NOT_OWNER"
    );
    assert_eq!(
        store
            .idempotency_record(bob.id.as_str(), "buy")
            .await
            .unwrap(),
        None
    );
    assert_stock(h, d.drop.id, &[(0, 0, 0), (1, 1, 0)]).await;
    verify(h).await;
}

/// Keys belong to their caller: another caller sending the same key and
/// request acts on their own.
pub async fn idempotency_keys_are_per_caller(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 1).await;
    let m = variant(&d, 0);
    let (alice, bob) = (user("alice"), user("bob"));
    let a = store
        .reserve_with(
            d.drop.id,
            &alice,
            ask(m, 1),
            Some(&idem(alice.id.as_str(), "same-key", 1)),
        )
        .await
        .unwrap();
    let b = store
        .reserve_with(
            d.drop.id,
            &bob,
            ask(m, 1),
            Some(&idem(bob.id.as_str(), "same-key", 1)),
        )
        .await
        .unwrap();
    assert!(a.created && b.created && !b.replayed, "{b:?}");
    assert_ne!(a.reservation.id, b.reservation.id);
    assert_eq!(b.reservation.buyer_id, bob.id);
    assert_recorded(
        h,
        alice.id.as_str(),
        "same-key",
        1,
        Recorded::Reservation(a.reservation.id),
        true,
    )
    .await;
    assert_recorded(
        h,
        bob.id.as_str(),
        "same-key",
        1,
        Recorded::Reservation(b.reservation.id),
        true,
    )
    .await;
    assert_eq!(
        store.idempotency_record("carol", "same-key").await.unwrap(),
        None
    );
    // Admins are callers too.
    let one = store
        .create_drop_with(
            NewDrop::new("One", price(), 1),
            Some(&idem("admin-1", "same-key", 1)),
        )
        .await
        .unwrap();
    let two = store
        .create_drop_with(
            NewDrop::new("One", price(), 1),
            Some(&idem("admin-2", "same-key", 1)),
        )
        .await
        .unwrap();
    assert!(one.changed && two.changed && !two.replayed);
    assert_ne!(one.value.drop.id, two.value.drop.id);
    assert_stock(h, d.drop.id, &[(5, 2, 0), (5, 0, 0)]).await;
    verify(h).await;
}
