//! What one buyer may take: one active hold per drop, and at most the
//! drop's `maxPerBuyer` units held plus bought; and the order in which a
//! reserve checks its rules.

use super::*;

use crate::{NotActiveReason, Reservation};

/// Asserts a `HOLD_EXISTS` carrying `hold`.
fn assert_hold_exists<T: std::fmt::Debug>(r: Result<T, DropError>, hold: &Reservation) {
    match error(r) {
        DropError::HoldExists { reservation } => assert_eq!(*reservation, *hold),
        other => panic!("expected HOLD_EXISTS, got {other:?}"),
    }
}

/// Asserts a `BUYER_LIMIT_REACHED` for `drop_id` with the figures given.
fn assert_limit<T: std::fmt::Debug>(
    r: Result<T, DropError>,
    drop_id: DropId,
    max: u32,
    taken: u32,
) {
    match error(r) {
        DropError::BuyerLimitReached {
            drop_id: d,
            max_per_buyer,
            taken: t,
        } => assert_eq!((d, max_per_buyer, t), (drop_id, max, taken)),
        other => panic!("expected BUYER_LIMIT_REACHED, got {other:?}"),
    }
}

/// One active hold per (drop, buyer): asking again for the same variant
/// and quantity answers it unchanged (`created: false`, nothing
/// announced); asking for anything else is `HOLD_EXISTS` carrying it.
/// Another drop is another matter.
pub async fn one_hold_per_buyer_and_drop(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 3).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let alice = user("alice");
    let first = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    assert!(first.created);
    let hold = first.reservation;
    h.advance(Duration::from_millis(50)).await;
    let mut events = store.subscribe();
    let again = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    assert!(!again.created && !again.replayed);
    assert_eq!(again.reservation, hold, "unchanged, not extended");
    for other in [ask(m, 1), ask(m, 3), ask(l, 2), ask(l, 1)] {
        assert_hold_exists(
            store.reserve_with(d.drop.id, &alice, other, None).await,
            &hold,
        );
    }
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 2, 0), (5, 0, 0)]).await;
    assert_eq!(
        store.active_hold(d.drop.id, &alice.id).await.unwrap(),
        Some(hold.clone())
    );
    // In another drop she holds as anyone.
    let other = sized_drop(h, &[("M", 5), ("L", 5)], 3).await;
    assert!(
        store
            .reserve_with(other.drop.id, &alice, ask(variant(&other, 1), 1), None)
            .await
            .unwrap()
            .created
    );
    // Given back, the next reserve makes a new hold of whatever she asks.
    store.release(hold.id, &alice.id).await.unwrap();
    let next = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), None)
        .await
        .unwrap();
    assert!(next.created);
    assert_ne!(next.reservation.id, hold.id);
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 1, 0)]).await;
    verify(h).await;
}

/// `maxPerBuyer` counts what a buyer bought across every variant: with a
/// limit of 2 and one unit bought, one more can be held, not two.
pub async fn max_per_buyer_counts_across_variants(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let alice = user("alice");
    let first = store
        .reserve_with(d.drop.id, &alice, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    store.purchase(first.id, &alice.id).await.unwrap();
    let mut events = store.subscribe();
    assert_limit(
        store.reserve_with(d.drop.id, &alice, ask(l, 2), None).await,
        d.drop.id,
        2,
        1,
    );
    assert_limit(
        store.reserve_with(d.drop.id, &alice, ask(m, 2), None).await,
        d.drop.id,
        2,
        1,
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    let second = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    store.purchase(second.id, &alice.id).await.unwrap();
    for wanted in [ask(m, 1), ask(l, 1)] {
        assert_limit(
            store.reserve_with(d.drop.id, &alice, wanted, None).await,
            d.drop.id,
            2,
            2,
        );
    }
    // The limit is per buyer: Bob takes his two.
    let bob = user("bob");
    let b = store
        .reserve_with(d.drop.id, &bob, ask(m, 2), None)
        .await
        .unwrap();
    assert!(b.created);
    assert_stock(h, d.drop.id, &[(5, 2, 1), (5, 0, 1)]).await;
    verify(h).await;
}

/// A cancelled purchase no longer counts: its buyer may take its units
/// again.
pub async fn cancelled_purchases_give_the_budget_back(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let alice = user("alice");
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap()
        .reservation;
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    assert_limit(
        store.reserve_with(d.drop.id, &alice, ask(l, 1), None).await,
        d.drop.id,
        2,
        2,
    );
    store.cancel_purchase(p.id, None).await.unwrap();
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 0)]).await;
    let again = store
        .reserve_with(d.drop.id, &alice, ask(l, 2), None)
        .await
        .unwrap();
    assert!(again.created);
    store
        .purchase(again.reservation.id, &alice.id)
        .await
        .unwrap();
    assert_limit(
        store.reserve_with(d.drop.id, &alice, ask(m, 1), None).await,
        d.drop.id,
        2,
        2,
    );
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 2)]).await;
    verify(h).await;
}

/// Released and expired holds do not count against `maxPerBuyer`, swept
/// or not.
pub async fn released_and_expired_holds_do_not_count(h: &dyn Harness) {
    let store = h.store();
    let d = store
        .create_drop(
            NewDrop::with_variants(
                "Expiring sizes",
                price(),
                [NewVariant::new("M", 4), NewVariant::new("L", 4)],
            )
            .max_per_buyer(2)
            .hold(h.hold()),
        )
        .await
        .unwrap();
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let alice = user("alice");
    let first = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap()
        .reservation;
    store.release(first.id, &alice.id).await.unwrap();
    let second = store
        .reserve_with(d.drop.id, &alice, ask(l, 2), None)
        .await
        .unwrap();
    assert!(second.created, "a released hold does not count");
    advance_to(h, second.reservation.expires_at).await;
    // Overdue, not swept: it neither blocks nor counts.
    let third = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    assert!(third.created, "an expired hold does not count");
    assert_ne!(third.reservation.id, second.reservation.id);
    let p = store
        .purchase(third.reservation.id, &alice.id)
        .await
        .unwrap()
        .purchase;
    assert_eq!(p.quantity, 2);
    assert_limit(
        store.reserve_with(d.drop.id, &alice, ask(l, 1), None).await,
        d.drop.id,
        2,
        2,
    );
    store.expire_due(100).await.unwrap();
    assert_stock(h, d.drop.id, &[(4, 0, 2), (4, 0, 0)]).await;
    verify(h).await;
}

/// A reserve checks its rules in the documented order, so every store
/// refuses a request that breaks several with the same code: the drop,
/// then the request, then the window and the pause, then the buyer's
/// hold, then the buyer's limit, then the stock.
pub async fn reserve_checks_in_documented_order(h: &dyn Harness) {
    let store = h.store();
    let alice = user("alice");
    let now = h.now().await;
    let later = sized_drop(h, &[("M", 1), ("L", 1)], 1).await;
    let soon = store
        .create_drop(
            NewDrop::with_variants(
                "Soon",
                price(),
                [NewVariant::new("M", 1), NewVariant::new("L", 1)],
            )
            .starts_at(now + chrono::Duration::hours(1))
            .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let sm = variant(&soon, 0);
    let mut events = store.subscribe();

    // 1 before 2: an unknown drop, whatever is asked.
    assert_eq!(
        code(
            store
                .reserve_with(DropId::new(), &alice, ask(VariantId::new(), 0), None)
                .await
        ),
        "DROP_NOT_FOUND"
    );
    // 2 before 3: a drop not started yet still checks the request first,
    // the variant before the quantity.
    assert_eq!(
        code(
            store
                .reserve_with(soon.drop.id, &alice, ask(VariantId::new(), 0), None)
                .await
        ),
        "VARIANT_NOT_FOUND"
    );
    assert_invalid(
        store
            .reserve_with(
                soon.drop.id,
                &alice,
                ReserveRequest::new().quantity(0),
                None,
            )
            .await,
        "variantId",
    );
    assert_invalid(
        store
            .reserve_with(soon.drop.id, &alice, ask(sm, 0), None)
            .await,
        "quantity",
    );
    assert_invalid(
        store
            .reserve_with(soon.drop.id, &alice, ask(sm, 2), None)
            .await,
        "quantity",
    );
    // 3: outside the window before paused.
    store.set_paused(soon.drop.id, true, None).await.unwrap();
    let e = error(
        store
            .reserve_with(soon.drop.id, &alice, ask(sm, 1), None)
            .await,
    );
    assert!(
        matches!(
            e,
            DropError::DropNotActive {
                reason: NotActiveReason::NotStarted,
                ..
            }
        ),
        "{e:?}"
    );
    // Paused with a bad request: the request first.
    store.set_paused(later.drop.id, true, None).await.unwrap();
    assert_invalid(
        store
            .reserve_with(later.drop.id, &alice, ask(variant(&later, 0), 2), None)
            .await,
        "quantity",
    );
    assert_eq!(
        code(
            store
                .reserve_with(later.drop.id, &alice, ask(variant(&later, 0), 1), None)
                .await
        ),
        "DROP_PAUSED"
    );
    store.set_paused(later.drop.id, false, None).await.unwrap();
    let got = events_until_marker(h, &mut events).await;
    assert!(
        got.len() == 3
            && got
                .iter()
                .all(|e| matches!(e, DropEvent::DropUpdated { .. })),
        "two pauses and a resume, nothing for refusals: {got:?}"
    );

    // 3 before 4: a paused drop refuses even the hold its buyer has.
    let d = sized_drop(h, &[("M", 1), ("L", 2)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let (bob, carol) = (user("bob"), user("carol"));
    let bob_m = store
        .reserve_with(d.drop.id, &bob, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    store.purchase(bob_m.id, &bob.id).await.unwrap();
    // Bob has bought M's only unit and holds one L: M is sold out and a
    // second unit of it would pass his limit, but his hold comes first
    // (4 before 5 and 6).
    let bob_l = store
        .reserve_with(d.drop.id, &bob, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    let mut events = store.subscribe();
    assert_hold_exists(
        store.reserve_with(d.drop.id, &bob, ask(m, 1), None).await,
        &bob_l,
    );
    store.set_paused(d.drop.id, true, None).await.unwrap();
    assert_eq!(
        code(store.reserve_with(d.drop.id, &bob, ask(l, 1), None).await),
        "DROP_PAUSED"
    );
    store.set_paused(d.drop.id, false, None).await.unwrap();
    // Bob's hold comes before the stock: the same request answers it
    // although nothing is free.
    let carol_l = store
        .reserve_with(d.drop.id, &carol, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    let same = store
        .reserve_with(d.drop.id, &bob, ask(l, 1), None)
        .await
        .unwrap();
    assert!(!same.created);
    assert_eq!(same.reservation, bob_l);
    // 5 before 6: with no hold, Bob's limit comes before M's empty stock.
    store.purchase(bob_l.id, &bob.id).await.unwrap();
    assert_limit(
        store.reserve_with(d.drop.id, &bob, ask(m, 1), None).await,
        d.drop.id,
        2,
        2,
    );
    // And within the limit, the stock.
    assert_eq!(
        code(store.reserve_with(d.drop.id, &carol, ask(m, 1), None).await),
        "HOLD_EXISTS"
    );
    store.release(carol_l.id, &carol.id).await.unwrap();
    assert_eq!(
        code(store.reserve_with(d.drop.id, &carol, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );
    let got = events_until_marker(h, &mut events).await;
    let kinds: Vec<&str> = got
        .iter()
        .filter_map(|e| match e {
            DropEvent::DropUpdated { .. } => Some("updated"),
            DropEvent::HoldCreated { .. } => Some("held"),
            DropEvent::PurchaseCompleted { .. } => Some("bought"),
            DropEvent::HoldReleased { .. } => Some("released"),
            DropEvent::StockChanged { .. } => None,
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        ["updated", "updated", "held", "bought", "released"],
        "a pause, a resume, Carol's hold, Bob's purchase, Carol's release; \
         nothing for refusals"
    );
    assert_stock(h, d.drop.id, &[(1, 0, 1), (2, 0, 1)]).await;
    assert_stock(h, later.drop.id, &[(1, 0, 0), (1, 0, 0)]).await;
    verify(h).await;
}
