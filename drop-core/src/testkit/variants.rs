//! Variants: each has its own stock, the drop's figures are their sums,
//! and a reserve names the variant it wants.

use super::*;

use crate::{DEFAULT_VARIANT_NAME, MAX_VARIANTS, PurchaseStatus, VariantStock};

/// Whether every variant keeps `reserved + sold ≤ total`.
fn within_total(variants: &[VariantStock]) -> bool {
    variants.iter().all(|v| v.reserved + v.sold <= v.total)
}

/// Each variant has its own counters; a hold and a purchase move only
/// theirs, the drop's figures are the sums, and the events say which
/// variant and how many units.
pub async fn variants_have_their_own_stock(h: &dyn Harness) {
    let store = h.store();
    let mut events = store.subscribe();
    let d = sized_drop(h, &[("M", 3), ("L", 2), ("XL", 0)], 2).await;
    let names: Vec<&str> = d.drop.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["M", "L", "XL"], "variants in creation order");
    assert_eq!(d.drop.max_per_buyer, 2);
    assert_counters(&d, &[(3, 0, 0), (2, 0, 0), (0, 0, 0)]);
    match next_event(&mut events).await {
        DropEvent::DropCreated { drop } => assert_eq!(drop, d),
        other => panic!("expected DropCreated, got {other:?}"),
    }
    let (m, l, xl) = (variant(&d, 0), variant(&d, 1), variant(&d, 2));
    let (alice, bob) = (user("alice"), user("bob"));

    let a = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    assert!(a.created && !a.replayed);
    let hold = a.reservation;
    assert_eq!((hold.variant_id, hold.quantity), (m, 2));
    let got = next_events(&mut events, 2).await;
    assert!(
        got.iter().any(|e| matches!(e,
            DropEvent::HoldCreated { reservation_id, variant_id, quantity, .. }
                if *reservation_id == hold.id && *variant_id == m && *quantity == 2)),
        "{got:?}"
    );
    let changed = got
        .iter()
        .find_map(|e| match e {
            DropEvent::StockChanged {
                drop_id,
                stock,
                variants,
            } if *drop_id == d.drop.id => Some((*stock, variants.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no StockChanged in {got:?}"));
    let after = assert_stock(h, d.drop.id, &[(3, 2, 0), (2, 0, 0), (0, 0, 0)]).await;
    assert_eq!(
        changed.1, after.variants,
        "StockChanged carries every variant"
    );
    assert_eq!(
        (changed.0.total, changed.0.reserved, changed.0.sold),
        (5, 2, 0),
        "StockChanged carries the sums"
    );

    let b = store
        .reserve_with(d.drop.id, &bob, ask(l, 1), None)
        .await
        .unwrap()
        .reservation;
    assert_eq!((b.variant_id, b.quantity), (l, 1));
    assert_stock(h, d.drop.id, &[(3, 2, 0), (2, 1, 0), (0, 0, 0)]).await;
    // A variant with no stock of its own is sold out, whatever the others
    // have left.
    assert_eq!(
        code(
            store
                .reserve_with(d.drop.id, &user("carol"), ask(xl, 1), None)
                .await
        ),
        "OUT_OF_STOCK"
    );

    let mut events = store.subscribe();
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    assert_eq!((p.variant_id, p.quantity), (m, 2));
    assert_eq!(p.status, PurchaseStatus::Completed);
    let got = next_events(&mut events, 2).await;
    assert!(
        got.iter().any(|e| matches!(e,
            DropEvent::PurchaseCompleted { purchase_id, variant_id, quantity, .. }
                if *purchase_id == p.id && *variant_id == m && *quantity == 2)),
        "{got:?}"
    );
    assert!(
        got.iter().any(|e| matches!(e,
            DropEvent::StockChanged { variants, .. }
                if variants.len() == 3 && within_total(variants)
                   && variants[0].sold == 2 && variants[0].reserved == 0)),
        "{got:?}"
    );
    assert_stock(h, d.drop.id, &[(3, 0, 2), (2, 1, 0), (0, 0, 0)]).await;
    // Every read shows the same counters.
    let listed = store.list_drops().await.unwrap();
    let listed = listed.iter().find(|s| s.drop.id == d.drop.id).unwrap();
    assert_counters(listed, &[(3, 0, 2), (2, 1, 0), (0, 0, 0)]);
    verify(h).await;
}

/// On a drop of several variants a reserve must name one, of this drop;
/// refusals hold nothing and announce nothing.
pub async fn reserve_names_a_variant_of_the_drop(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 3), ("L", 3)], 1).await;
    let other = sized_drop(h, &[("S", 3), ("XS", 3)], 1).await;
    let alice = user("alice");
    let mut events = store.subscribe();
    assert_invalid(store.reserve(d.drop.id, &alice).await, "variantId");
    assert_invalid(
        store
            .reserve_with(d.drop.id, &alice, ReserveRequest::new().quantity(1), None)
            .await,
        "variantId",
    );
    for wanted in [VariantId::new(), variant(&other, 0)] {
        let e = error(
            store
                .reserve_with(d.drop.id, &alice, ask(wanted, 1), None)
                .await,
        );
        match e {
            DropError::VariantNotFound {
                drop_id,
                variant_id,
            } => assert_eq!((drop_id, variant_id), (d.drop.id, wanted)),
            other => panic!("expected VARIANT_NOT_FOUND, got {other:?}"),
        }
    }
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    let after = assert_stock(h, d.drop.id, &[(3, 0, 0), (3, 0, 0)]).await;
    assert_eq!(after.stock.version, d.stock.version, "nothing changed");
    // Named, it holds.
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 1), 1), None)
        .await
        .unwrap()
        .reservation;
    assert_eq!(hold.variant_id, variant(&d, 1));
    assert_stock(h, d.drop.id, &[(3, 0, 0), (3, 1, 0)]).await;
    verify(h).await;
}

/// A drop created without variants has one, named
/// [`DEFAULT_VARIANT_NAME`], with all its stock; a reserve that names it
/// and one that does not ask for the same thing.
pub async fn a_drop_without_variants_has_one(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 4).await;
    assert_eq!(d.drop.variants.len(), 1);
    assert_eq!(d.drop.variants[0].name, DEFAULT_VARIANT_NAME);
    assert_eq!(d.drop.max_per_buyer, 1, "one unit per buyer by default");
    assert!(!d.drop.paused);
    assert_counters(&d, &[(4, 0, 0)]);
    let only = variant(&d, 0);
    let alice = user("alice");
    let first = store.reserve(d.drop.id, &alice).await.unwrap();
    assert!(first.created);
    assert_eq!(
        (first.reservation.variant_id, first.reservation.quantity),
        (only, 1)
    );
    let named = store
        .reserve_with(d.drop.id, &alice, ask(only, 1), None)
        .await
        .unwrap();
    assert!(!named.created, "the same variant and quantity");
    assert_eq!(named.reservation, first.reservation);
    assert_stock(h, d.drop.id, &[(4, 1, 0)]).await;
    let read = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(read.drop, d.drop);
    verify(h).await;
}

/// Variants are checked when a drop is created: 1 to 100 of them, names
/// unique within the drop (after trimming), the stock summing to at least
/// one unit. Refusals create and announce nothing.
pub async fn variant_creation_rules(h: &dyn Harness) {
    let store = h.store();
    let mut events = store.subscribe();
    let many = |n: usize| -> Vec<NewVariant> {
        (0..n)
            .map(|i| NewVariant::new(format!("V{i}"), 1))
            .collect()
    };
    let bad = [
        (NewDrop::with_variants("Tee", price(), []), "variants"),
        (
            NewDrop::with_variants("Tee", price(), many(MAX_VARIANTS + 1)),
            "variants",
        ),
        (
            NewDrop::with_variants(
                "Tee",
                price(),
                [NewVariant::new("M", 1), NewVariant::new(" M ", 1)],
            ),
            "variants[1].name",
        ),
        (
            NewDrop::with_variants(
                "Tee",
                price(),
                [NewVariant::new("M", 0), NewVariant::new("L", 0)],
            ),
            "variants",
        ),
        (
            NewDrop::with_variants("Tee", price(), [NewVariant::new("  ", 1)]),
            "variants[0].name",
        ),
    ];
    for (new, field) in bad {
        assert_invalid(store.create_drop(new).await, field);
    }
    assert_quiet_since(h, &mut events).await;
    assert!(
        store
            .list_all_drops()
            .await
            .unwrap()
            .iter()
            .all(|d| d.drop.name == "marker"),
        "a refused drop was created"
    );

    let full = store
        .create_drop(NewDrop::with_variants("Tee", price(), many(MAX_VARIANTS)).hold(h.long_hold()))
        .await
        .unwrap();
    let names: Vec<String> = full.drop.variants.iter().map(|v| v.name.clone()).collect();
    assert_eq!(
        names,
        (0..MAX_VARIANTS)
            .map(|i| format!("V{i}"))
            .collect::<Vec<_>>()
    );
    assert_counters(&full, &[(1, 0, 0); MAX_VARIANTS]);
    let read = assert_stock(h, full.drop.id, &[(1, 0, 0); MAX_VARIANTS]).await;
    assert_eq!(read.drop, full.drop);
    // Names are trimmed, and a variant may start with no stock.
    let trimmed = store
        .create_drop(NewDrop::with_variants(
            "Tee",
            price(),
            [NewVariant::new("  M ", 0), NewVariant::new("L", 2)],
        ))
        .await
        .unwrap();
    let names: Vec<&str> = trimmed
        .drop
        .variants
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(names, ["M", "L"]);
    assert_counters(&trimmed, &[(0, 0, 0), (2, 0, 0)]);
    verify(h).await;
}

/// A reserve is all or nothing: asking for more units of a variant than
/// it has free holds none of them, and says `OUT_OF_STOCK`, even when
/// other variants have plenty.
pub async fn quantity_is_all_or_nothing(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 2), ("L", 5)], 3).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let (alice, bob) = (user("alice"), user("bob"));
    let mut events = store.subscribe();
    let e = error(store.reserve_with(d.drop.id, &alice, ask(m, 3), None).await);
    assert!(
        matches!(e, DropError::OutOfStock { drop_id } if drop_id == d.drop.id),
        "{e:?}"
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    assert_stock(h, d.drop.id, &[(2, 0, 0), (5, 0, 0)]).await;
    // What is free can be had, to the last unit.
    let a = store
        .reserve_with(d.drop.id, &alice, ask(m, 2), None)
        .await
        .unwrap();
    assert!(a.created);
    assert_eq!(a.reservation.quantity, 2);
    assert_eq!(
        code(store.reserve_with(d.drop.id, &bob, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );
    let b = store
        .reserve_with(d.drop.id, &bob, ask(l, 3), None)
        .await
        .unwrap();
    assert_eq!((b.reservation.variant_id, b.reservation.quantity), (l, 3));
    assert_stock(h, d.drop.id, &[(2, 2, 0), (5, 3, 0)]).await;
    // Released, all of a hold's units are free again.
    store.release(a.reservation.id, &alice.id).await.unwrap();
    assert_stock(h, d.drop.id, &[(2, 0, 0), (5, 3, 0)]).await;
    let c = store
        .reserve_with(d.drop.id, &user("carol"), ask(m, 2), None)
        .await
        .unwrap();
    assert_eq!(c.reservation.quantity, 2);
    assert_stock(h, d.drop.id, &[(2, 2, 0), (5, 3, 0)]).await;
    verify(h).await;
}

/// A quantity of 0, or above the drop's `maxPerBuyer` (whatever the stock),
/// is `INVALID_INPUT` naming `quantity`.
pub async fn quantity_out_of_range_is_invalid(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 10), ("L", 10)], 2).await;
    let one = new_drop(h, 10).await;
    let alice = user("alice");
    let mut events = store.subscribe();
    for quantity in [0, 3, 100] {
        assert_invalid(
            store
                .reserve_with(d.drop.id, &alice, ask(variant(&d, 0), quantity), None)
                .await,
            "quantity",
        );
    }
    // The default limit is one unit.
    assert_invalid(
        store
            .reserve_with(one.drop.id, &alice, ReserveRequest::new().quantity(2), None)
            .await,
        "quantity",
    );
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(10, 0, 0), (10, 0, 0)]).await;
    assert_stock(h, one.drop.id, &[(10, 0, 0)]).await;
    // The limit itself is fine.
    let r = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 0), 2), None)
        .await
        .unwrap();
    assert_eq!(r.reservation.quantity, 2);
    verify(h).await;
}

/// A purchase pays the price times the quantity, and records both.
pub async fn purchase_pays_price_times_quantity(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 3).await;
    let l = variant(&d, 1);
    let alice = user("alice");
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(l, 3), None)
        .await
        .unwrap()
        .reservation;
    let mut events = store.subscribe();
    let bought = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(bought.created && !bought.replayed);
    let p = bought.purchase;
    let three = Money::from_minor(price().minor() * 3).unwrap();
    assert_eq!(p.amount_paid, three);
    assert_eq!(
        (p.reservation_id, p.drop_id, p.variant_id, p.quantity),
        (hold.id, d.drop.id, l, 3)
    );
    assert_eq!(
        (&p.buyer_id, &p.display_name),
        (&alice.id, &alice.display_name)
    );
    assert_eq!(
        (p.status, p.cancelled_at),
        (PurchaseStatus::Completed, None)
    );
    let got = next_events(&mut events, 2).await;
    assert!(
        got.iter().any(|e| matches!(e,
            DropEvent::PurchaseCompleted { purchase_id, amount_paid, quantity, variant_id, .. }
                if *purchase_id == p.id && *amount_paid == three && *quantity == 3
                   && *variant_id == l)),
        "{got:?}"
    );
    assert_eq!(store.get_purchase(p.id).await.unwrap(), p);
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 3)]).await;
    verify(h).await;
}
