//! Admin operations: listing every drop, editing, pausing, ending, and
//! cancelling purchases.

use super::*;

use std::collections::HashSet;

use crate::{Applied, DropPatch, NotActiveReason, PurchaseStatus};

/// The `DropUpdated` events among `got`, each drop's state as announced.
fn updates(got: &[DropEvent]) -> Vec<&DropState> {
    got.iter()
        .filter_map(|e| match e {
            DropEvent::DropUpdated { drop } => Some(drop),
            _ => None,
        })
        .collect()
}

/// Asserts that `applied` changed the drop, and that the change was
/// announced as exactly one `DropUpdated` carrying the state answered.
/// Answers the events, for further checks.
async fn assert_announced(
    h: &dyn Harness,
    events: &mut EventStream,
    applied: &Applied<DropState>,
) -> Vec<DropEvent> {
    assert!(applied.changed && !applied.replayed, "{applied:?}");
    let got = events_until_marker(h, events).await;
    let announced = updates(&got);
    assert_eq!(announced.len(), 1, "one DropUpdated: {got:?}");
    assert_eq!(*announced[0], applied.value, "the state after the change");
    got
}

/// Whether `got` holds a `StockChanged`.
fn stock_changed(got: &[DropEvent]) -> bool {
    got.iter()
        .any(|e| matches!(e, DropEvent::StockChanged { .. }))
}

/// `list_all_drops` lists every drop, ended ones too, newest first;
/// `list_drops` leaves ended ones out.
pub async fn list_all_drops_includes_ended_ones(h: &dyn Harness) {
    let store = h.store();
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(new_drop(h, 2).await.drop.id);
        h.advance(Duration::from_millis(20)).await;
    }
    let ended = store.end_drop(made[1], None).await.unwrap();
    assert!(ended.changed);
    let all: Vec<DropId> = store
        .list_all_drops()
        .await
        .unwrap()
        .iter()
        .map(|d| d.drop.id)
        .collect();
    assert_eq!(all, [made[2], made[1], made[0]], "newest first");
    let open: HashSet<DropId> = store
        .list_drops()
        .await
        .unwrap()
        .iter()
        .map(|d| d.drop.id)
        .collect();
    assert_eq!(open, HashSet::from([made[0], made[2]]));
    // Ended, it still reads by id.
    let read = store.get_drop(made[1]).await.unwrap();
    assert_eq!(read.drop, ended.value.drop);
    verify(h).await;
}

/// Admin writes on a drop or purchase that does not exist are not found.
pub async fn admin_writes_on_unknown_ids(h: &dyn Harness) {
    let store = h.store();
    let mut events = store.subscribe();
    let nowhere = DropId::new();
    assert_eq!(
        code(
            store
                .update_drop(nowhere, &DropPatch::new().name("x"), None)
                .await
        ),
        "DROP_NOT_FOUND"
    );
    assert_eq!(
        code(store.set_paused(nowhere, true, None).await),
        "DROP_NOT_FOUND"
    );
    assert_eq!(code(store.end_drop(nowhere, None).await), "DROP_NOT_FOUND");
    assert_eq!(
        code(store.cancel_purchase(crate::PurchaseId::new(), None).await),
        "PURCHASE_NOT_FOUND"
    );
    assert_quiet_since(h, &mut events).await;
}

/// Editing the name and the price: the price only before the sale starts
/// (`PRICE_LOCKED` after); each change announced as `DropUpdated`, an
/// empty patch changing and announcing nothing, a refused one neither.
pub async fn update_drop_name_and_price(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let d = store
        .create_drop(
            NewDrop::with_variants(
                "Soon",
                price(),
                [NewVariant::new("M", 3), NewVariant::new("L", 3)],
            )
            .max_per_buyer(2)
            .starts_at(now + chrono::Duration::hours(1))
            .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let cheaper = Money::from_minor(15_000).unwrap();
    let mut events = store.subscribe();
    let renamed = store
        .update_drop(
            d.drop.id,
            &DropPatch::new().name("  Renamed ").price(cheaper),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (renamed.value.drop.name.as_str(), renamed.value.drop.price),
        ("Renamed", cheaper)
    );
    let got = assert_announced(h, &mut events, &renamed).await;
    assert!(!stock_changed(&got), "no stock changed: {got:?}");
    assert_eq!(store.get_drop(d.drop.id).await.unwrap(), renamed.value);

    let mut events = store.subscribe();
    let empty = store
        .update_drop(d.drop.id, &DropPatch::new(), None)
        .await
        .unwrap();
    assert!(!empty.changed && !empty.replayed);
    assert_eq!(empty.value, renamed.value);
    assert_invalid(
        store
            .update_drop(d.drop.id, &DropPatch::new().name(" "), None)
            .await,
        "name",
    );
    assert_invalid(
        store
            .update_drop(d.drop.id, &DropPatch::new().total_stock(9), None)
            .await,
        "totalStock",
    );
    assert_quiet_since(h, &mut events).await;

    // Clearing the start opens the sale (from the drop's creation), which
    // locks the price: the sale pays the price set before.
    let mut events = store.subscribe();
    let opened = store
        .update_drop(d.drop.id, &DropPatch::new().starts_at(None), None)
        .await
        .unwrap();
    assert_eq!(opened.value.drop.starts_at, None);
    assert_announced(h, &mut events, &opened).await;
    let mut events = store.subscribe();
    let e = error(
        store
            .update_drop(d.drop.id, &DropPatch::new().price(price()), None)
            .await,
    );
    assert!(
        matches!(e, DropError::PriceLocked { drop_id } if drop_id == d.drop.id),
        "{e:?}"
    );
    // Nor does a refused patch change its other fields.
    assert_eq!(
        code(
            store
                .update_drop(
                    d.drop.id,
                    &DropPatch::new().name("Other").price(price()),
                    None
                )
                .await
        ),
        "PRICE_LOCKED"
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(
        store.get_drop(d.drop.id).await.unwrap().drop.name,
        "Renamed"
    );
    let alice = user("alice");
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 0), 2), None)
        .await
        .unwrap()
        .reservation;
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    assert_eq!(p.amount_paid, Money::from_minor(30_000).unwrap());
    verify(h).await;
}

/// Stock edits: never below a variant's reserved + sold
/// (`STOCK_BELOW_COMMITTED`); down to it is fine; raised, the new units
/// are free at once; each edit announced with `DropUpdated` and
/// `StockChanged`.
pub async fn update_drop_stock(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 3).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    let b = store
        .reserve_with(d.drop.id, &bob, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    store.purchase(b.id, &bob.id).await.unwrap();
    let mut events = store.subscribe();
    let e = error(
        store
            .update_drop(d.drop.id, &DropPatch::new().variant_stock(m, 2), None)
            .await,
    );
    match e {
        DropError::StockBelowCommitted {
            drop_id,
            variant_id,
            committed,
        } => assert_eq!((drop_id, variant_id, committed), (d.drop.id, m, 3)),
        other => panic!("expected STOCK_BELOW_COMMITTED, got {other:?}"),
    }
    // One bad variant refuses the whole patch.
    assert_eq!(
        code(
            store
                .update_drop(
                    d.drop.id,
                    &DropPatch::new().variant_stock(l, 9).variant_stock(m, 0),
                    None
                )
                .await
        ),
        "STOCK_BELOW_COMMITTED"
    );
    assert_eq!(
        code(
            store
                .update_drop(
                    d.drop.id,
                    &DropPatch::new().variant_stock(VariantId::new(), 9),
                    None
                )
                .await
        ),
        "VARIANT_NOT_FOUND"
    );
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 2, 1), (5, 0, 0)]).await;

    let mut events = store.subscribe();
    let down = store
        .update_drop(
            d.drop.id,
            &DropPatch::new().variant_stock(m, 3).variant_stock(l, 1),
            None,
        )
        .await
        .unwrap();
    assert!(down.changed);
    assert_counters(&down.value, &[(3, 2, 1), (1, 0, 0)]);
    let got = events_until_marker(h, &mut events).await;
    assert_eq!(updates(&got), [&down.value], "{got:?}");
    assert!(
        got.iter().any(|e| matches!(e,
            DropEvent::StockChanged { drop_id, variants, stock }
                if *drop_id == d.drop.id && *variants == down.value.variants
                   && stock.total == 4)),
        "{got:?}"
    );
    assert_stock(h, d.drop.id, &[(3, 2, 1), (1, 0, 0)]).await;
    assert_eq!(
        code(store.reserve_with(d.drop.id, &carol, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );
    // Raised: free at once.
    let up = store
        .update_drop(d.drop.id, &DropPatch::new().variant_stock(m, 5), None)
        .await
        .unwrap();
    assert_counters(&up.value, &[(5, 2, 1), (1, 0, 0)]);
    let c = store
        .reserve_with(d.drop.id, &carol, ask(m, 2), None)
        .await
        .unwrap();
    assert!(c.created);
    assert_stock(h, d.drop.id, &[(5, 4, 1), (1, 0, 0)]).await;
    // A drop of one variant takes `totalStock`.
    let one = new_drop(h, 2).await;
    store.reserve(one.drop.id, &alice).await.unwrap();
    assert_eq!(
        code(
            store
                .update_drop(one.drop.id, &DropPatch::new().total_stock(0), None)
                .await
        ),
        "STOCK_BELOW_COMMITTED"
    );
    let more = store
        .update_drop(one.drop.id, &DropPatch::new().total_stock(7), None)
        .await
        .unwrap();
    assert_counters(&more.value, &[(7, 1, 0)]);
    assert_stock(h, one.drop.id, &[(7, 1, 0)]).await;
    verify(h).await;
}

/// `maxPerBuyer` edits limit what buyers take next, never what they have;
/// a new hold length applies to holds taken from then on.
pub async fn update_drop_limit_and_hold_length(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 1).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let (alice, bob) = (user("alice"), user("bob"));
    let first = store
        .reserve_with(d.drop.id, &alice, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    store.purchase(first.id, &alice.id).await.unwrap();
    assert_eq!(
        code(store.reserve_with(d.drop.id, &alice, ask(l, 1), None).await),
        "BUYER_LIMIT_REACHED"
    );
    let longer = h.long_hold() * 2;
    let mut events = store.subscribe();
    let raised = store
        .update_drop(
            d.drop.id,
            &DropPatch::new().max_per_buyer(2).hold(longer),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        (raised.value.drop.max_per_buyer, raised.value.drop.hold),
        (2, longer)
    );
    assert_announced(h, &mut events, &raised).await;
    assert_eq!(
        code(store.reserve_with(d.drop.id, &alice, ask(l, 2), None).await),
        "BUYER_LIMIT_REACHED"
    );
    let second = store
        .reserve_with(d.drop.id, &alice, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    assert_eq!(
        (second.expires_at - second.created_at).to_std().unwrap(),
        longer,
        "a hold taken after the edit has the new length"
    );
    // Bob's hold, taken before the next edit, keeps its length.
    let bob_hold = store
        .reserve_with(d.drop.id, &bob, ask(m, 2), None)
        .await
        .unwrap()
        .reservation;
    let lowered = store
        .update_drop(
            d.drop.id,
            &DropPatch::new().max_per_buyer(1).hold(h.long_hold()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(lowered.value.drop.max_per_buyer, 1);
    let bob_now = store.get_reservation(bob_hold.id).await.unwrap();
    assert_eq!(
        bob_now, bob_hold,
        "an edit takes nothing back, shortens nothing"
    );
    let bought = store.purchase(bob_hold.id, &bob.id).await.unwrap().purchase;
    assert_eq!(bought.quantity, 2);
    let carol = user("carol");
    assert_invalid(
        store.reserve_with(d.drop.id, &carol, ask(m, 2), None).await,
        "quantity",
    );
    let c = store
        .reserve_with(d.drop.id, &carol, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    assert_eq!(
        (c.expires_at - c.created_at).to_std().unwrap(),
        h.long_hold()
    );
    assert_invalid(
        store
            .update_drop(d.drop.id, &DropPatch::new().max_per_buyer(0), None)
            .await,
        "maxPerBuyer",
    );
    assert_stock(h, d.drop.id, &[(5, 1, 3), (5, 1, 0)]).await;
    verify(h).await;
}

/// A paused drop refuses new holds (`DROP_PAUSED`) while the holds taken
/// before can still be bought; pausing twice, or resuming a running drop,
/// changes and announces nothing.
pub async fn pause_and_resume(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 1).await;
    let m = variant(&d, 0);
    let (alice, bob) = (user("alice"), user("bob"));
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(m, 1), None)
        .await
        .unwrap()
        .reservation;
    let mut events = store.subscribe();
    let paused = store.set_paused(d.drop.id, true, None).await.unwrap();
    assert!(paused.value.drop.paused);
    assert_announced(h, &mut events, &paused).await;
    assert!(store.get_drop(d.drop.id).await.unwrap().drop.paused);

    let mut events = store.subscribe();
    let e = error(store.reserve_with(d.drop.id, &bob, ask(m, 1), None).await);
    assert!(
        matches!(e, DropError::DropPaused { drop_id } if drop_id == d.drop.id),
        "{e:?}"
    );
    let twice = store.set_paused(d.drop.id, true, None).await.unwrap();
    assert!(!twice.changed && !twice.replayed);
    assert!(twice.value.drop.paused);
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.active_hold(d.drop.id, &bob.id).await.unwrap(), None);

    let p = store
        .purchase(hold.id, &alice.id)
        .await
        .expect("a hold taken before the pause can be bought");
    assert!(p.created);
    assert_stock(h, d.drop.id, &[(5, 0, 1), (5, 0, 0)]).await;

    let mut events = store.subscribe();
    let resumed = store.set_paused(d.drop.id, false, None).await.unwrap();
    assert!(!resumed.value.drop.paused);
    assert_announced(h, &mut events, &resumed).await;
    let mut events = store.subscribe();
    let again = store.set_paused(d.drop.id, false, None).await.unwrap();
    assert!(!again.changed);
    assert_quiet_since(h, &mut events).await;
    assert!(
        store
            .reserve_with(d.drop.id, &bob, ask(m, 1), None)
            .await
            .unwrap()
            .created
    );
    assert_stock(h, d.drop.id, &[(5, 1, 1), (5, 0, 0)]).await;
    verify(h).await;
}

/// Ending a drop closes its sale now: it leaves `list_drops`, new holds
/// are `DROP_NOT_ACTIVE`, and a hold taken before may still be bought
/// until its own `expiresAt`, not after. Ending it again changes nothing.
pub async fn end_drop_stops_the_sale(h: &dyn Harness) {
    let store = h.store();
    let d = store
        .create_drop(NewDrop::new("Ending", price(), 5).hold(h.hold()))
        .await
        .unwrap();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let a = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let b = store.reserve(d.drop.id, &bob).await.unwrap().reservation;
    let before = h.now().await;
    let mut events = store.subscribe();
    let ended = store.end_drop(d.drop.id, None).await.unwrap();
    let after = h.now().await;
    let ends_at = ended.value.drop.ends_at.expect("an end");
    assert!(
        before <= ends_at && ends_at <= after,
        "ends now: {ends_at} between {before} and {after}"
    );
    assert_announced(h, &mut events, &ended).await;
    assert!(
        store
            .list_drops()
            .await
            .unwrap()
            .iter()
            .all(|s| s.drop.id != d.drop.id),
        "an ended drop is not listed"
    );
    assert!(
        store
            .list_all_drops()
            .await
            .unwrap()
            .iter()
            .any(|s| s.drop.id == d.drop.id)
    );
    let e = error(store.reserve(d.drop.id, &carol).await);
    assert!(
        matches!(
            e,
            DropError::DropNotActive {
                reason: NotActiveReason::Ended,
                ..
            }
        ),
        "{e:?}"
    );
    let mut events = store.subscribe();
    let again = store.end_drop(d.drop.id, None).await.unwrap();
    assert!(!again.changed);
    assert_eq!(again.value.drop.ends_at, Some(ends_at));
    assert_quiet_since(h, &mut events).await;
    let p = store
        .purchase(a.id, &alice.id)
        .await
        .expect("a hold taken before the end may be bought in its window");
    assert!(p.created);
    advance_to(h, b.expires_at).await;
    assert_eq!(
        code(store.purchase(b.id, &bob.id).await),
        "RESERVATION_EXPIRED"
    );
    store.expire_due(100).await.unwrap();
    assert_stock(h, d.drop.id, &[(5, 0, 1)]).await;
    verify(h).await;
}

/// Ending a drop that has not started yet: it never opens (its `startsAt`
/// is cleared, so the window stays well formed), and it is ended, not
/// upcoming.
pub async fn end_drop_before_its_start(h: &dyn Harness) {
    let store = h.store();
    let start = h.now().await + chrono::Duration::hours(1);
    let d = store
        .create_drop(NewDrop::new("Never", price(), 5).starts_at(start))
        .await
        .unwrap();
    let ended = store.end_drop(d.drop.id, None).await.unwrap();
    assert!(ended.changed);
    assert_eq!(ended.value.drop.starts_at, None, "{:?}", ended.value.drop);
    let ends_at = ended.value.drop.ends_at.expect("an end");
    assert!(ends_at < start);
    assert_eq!(store.get_drop(d.drop.id).await.unwrap(), ended.value);
    assert!(
        store
            .list_drops()
            .await
            .unwrap()
            .iter()
            .all(|s| s.drop.id != d.drop.id),
        "an ended drop is not upcoming"
    );
    let e = error(store.reserve(d.drop.id, &user("alice")).await);
    assert!(
        matches!(
            e,
            DropError::DropNotActive {
                reason: NotActiveReason::Ended,
                ..
            }
        ),
        "{e:?}"
    );
    verify(h).await;
}

/// Cancelling a purchase puts its units back on sale at once and says so
/// (`PurchaseCancelled`, then `StockChanged`); the purchase reads as
/// cancelled; cancelling it again changes and announces nothing.
pub async fn cancel_purchase_returns_the_units(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 2), ("L", 2)], 2).await;
    let m = variant(&d, 0);
    let (alice, bob) = (user("alice"), user("bob"));
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap()
        .reservation;
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    assert_eq!(
        code(store.reserve_with(d.drop.id, &bob, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );
    h.advance(Duration::from_millis(20)).await;
    let mut events = store.subscribe();
    let cancelled = store.cancel_purchase(p.id, None).await.unwrap();
    assert!(cancelled.changed && !cancelled.replayed);
    let c = &cancelled.value;
    assert_eq!((c.id, c.status), (p.id, PurchaseStatus::Cancelled));
    let at = c.cancelled_at.expect("cancelled_at is set");
    assert!(
        at >= p.created_at,
        "cancelled at {at}, bought at {}",
        p.created_at
    );
    assert_eq!(
        (
            c.reservation_id,
            c.variant_id,
            c.quantity,
            c.amount_paid,
            c.created_at
        ),
        (
            p.reservation_id,
            p.variant_id,
            p.quantity,
            p.amount_paid,
            p.created_at
        ),
        "the record keeps what was bought"
    );
    let got = events_until_marker(h, &mut events).await;
    let cancel_at = got
        .iter()
        .position(|e| matches!(e,
            DropEvent::PurchaseCancelled { drop_id, purchase_id, reservation_id, buyer_id, variant_id, quantity }
                if *drop_id == d.drop.id && *purchase_id == p.id && *reservation_id == hold.id
                   && *buyer_id == alice.id && *variant_id == m && *quantity == 2))
        .unwrap_or_else(|| panic!("no PurchaseCancelled in {got:?}"));
    let stock_at = got
        .iter()
        .position(|e| {
            matches!(e,
            DropEvent::StockChanged { drop_id, variants, .. }
                if *drop_id == d.drop.id && variants[0].sold == 0 && variants[0].total == 2)
        })
        .unwrap_or_else(|| panic!("no StockChanged in {got:?}"));
    assert!(cancel_at < stock_at, "StockChanged follows: {got:?}");
    assert_eq!(store.get_purchase(p.id).await.unwrap(), *c);
    assert_stock(h, d.drop.id, &[(2, 0, 0), (2, 0, 0)]).await;
    // Back on sale at once.
    let b = store
        .reserve_with(d.drop.id, &bob, ask(m, 2), None)
        .await
        .unwrap();
    assert!(b.created);

    let mut events = store.subscribe();
    let again = store.cancel_purchase(p.id, None).await.unwrap();
    assert!(!again.changed && !again.replayed);
    assert_eq!(again.value, *c, "unchanged, cancelled_at included");
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(2, 2, 0), (2, 0, 0)]).await;
    verify(h).await;
}
