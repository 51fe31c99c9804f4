//! Buyers are known by id: display names are only shown.

use super::*;
use std::collections::HashMap;

use futures::future::join_all;

use crate::{BuyerId, ReservationId, ReservationStatus};

/// Holds are keyed by buyer id, not by display name: two buyers who share
/// a name are two buyers (each holds a unit, neither may act on the
/// other's hold), and the public lists show the name only.
pub async fn buyers_sharing_a_display_name_are_different_buyers(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 5).await;
    let name = Username::parse("sam").expect("valid name");
    let first = Buyer::new(BuyerId::parse("user-1").expect("id"), name.clone());
    let second = Buyer::new(BuyerId::parse("user-2").expect("id"), name.clone());
    let a = store.reserve(d.drop.id, &first).await.unwrap();
    let b = store.reserve(d.drop.id, &second).await.unwrap();
    assert!(a.created && b.created, "each buyer gets their own hold");
    assert_ne!(a.reservation.id, b.reservation.id);
    assert_eq!(a.reservation.buyer(), first);
    assert_eq!(b.reservation.buyer(), second);
    // Coming back under another name finds the same hold, under the name
    // it was taken with.
    let renamed = Buyer::new(
        first.id.clone(),
        Username::parse("samuel").expect("valid name"),
    );
    let again = store.reserve(d.drop.id, &renamed).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation, a.reservation);
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!(stock.reserved, 2);
    assert_eq!(
        code(store.purchase(a.reservation.id, &second.id).await),
        "NOT_OWNER"
    );
    assert_eq!(
        code(store.release(b.reservation.id, &first.id).await),
        "NOT_OWNER"
    );
    // Nor is the name a buyer of its own.
    assert_eq!(
        code(store.release(a.reservation.id, &BuyerId::from(&name)).await),
        "NOT_OWNER"
    );
    assert_eq!(
        store.active_hold(d.drop.id, &first.id).await.unwrap(),
        Some(a.reservation.clone())
    );
    assert_eq!(
        store
            .active_hold(d.drop.id, &BuyerId::from(&name))
            .await
            .unwrap(),
        None
    );
    let p = store
        .purchase(b.reservation.id, &second.id)
        .await
        .unwrap()
        .purchase;
    assert_eq!((&p.buyer_id, &p.display_name), (&second.id, &name));
    let top = store.top_purchasers(d.drop.id, 3).await.unwrap();
    assert_eq!(top.len(), 1);
    assert_eq!(top[0].display_name, name);
    let overview = store.overview(Some(&first.id)).await.unwrap();
    let mine = overview
        .iter()
        .find(|o| o.state.drop.id == d.drop.id)
        .unwrap();
    assert_eq!(mine.user_reservation, Some(a.reservation));
    verify(h).await;
}

/// A buyer id need not be a valid username: an email, an auth provider's
/// subject, a UUID, 128 bytes of anything printable all hold, buy and
/// release, and come back exactly as given.
pub async fn buyer_ids_that_are_not_usernames(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 8).await;
    let name = Username::parse("guest").expect("valid name");
    let long = format!("{}é", "z".repeat(126));
    let ids = [
        "ann@example.com",
        "auth0|abc",
        "6f1c2a9e-1b7d-4c55-9a0e-3f2b8d7c6e10",
        " spaced 'quoted\" ",
        long.as_str(),
    ];
    for raw in ids {
        let buyer = Buyer::new(BuyerId::parse(raw).expect("valid id"), name.clone());
        let r = store.reserve(d.drop.id, &buyer).await.unwrap();
        assert!(r.created, "{raw:?}");
        assert_eq!(r.reservation.buyer_id.as_str(), raw);
        let again = store.reserve(d.drop.id, &buyer).await.unwrap();
        assert!(!again.created, "{raw:?}: one active hold per buyer");
        assert_eq!(again.reservation, r.reservation);
        assert_eq!(
            store.get_reservation(r.reservation.id).await.unwrap(),
            r.reservation
        );
        assert_eq!(
            store.active_hold(d.drop.id, &buyer.id).await.unwrap(),
            Some(r.reservation.clone())
        );
        if raw.starts_with('a') {
            let p = store
                .purchase(r.reservation.id, &buyer.id)
                .await
                .unwrap()
                .purchase;
            assert_eq!(p.buyer_id, buyer.id);
        } else {
            let released = store.release(r.reservation.id, &buyer.id).await.unwrap();
            assert_eq!(released.status, ReservationStatus::Released);
        }
    }
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold), (0, 2));
    verify(h).await;
}

/// The hold events name the buyer by id (not by display name), each its
/// own, also when several buyers' calls are served together.
pub async fn hold_events_carry_the_buyer_id(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 8).await;
    let buyers: Vec<Buyer> = (0..6)
        .map(|i| {
            Buyer::new(
                BuyerId::parse(&format!("auth0|buyer-{i}")).expect("valid id"),
                // Two buyers to a name: only the id tells them apart.
                Username::parse(&format!("shared_{}", i / 2)).expect("valid name"),
            )
        })
        .collect();
    let mut events = store.subscribe();
    let holds = join_all(buyers.iter().map(|b| {
        let (store, b) = (store.clone(), b.clone());
        tokio::spawn(async move { store.reserve(d.drop.id, &b).await })
    }))
    .await;
    let holds: Vec<_> = holds
        .into_iter()
        .map(|r| r.expect("task").expect("reserve").reservation)
        .collect();
    // Half buy (at once), the others give their holds back.
    let bought = join_all(holds.iter().zip(&buyers).take(3).map(|(hold, b)| {
        let (store, id, b) = (store.clone(), hold.id, b.id.clone());
        tokio::spawn(async move { store.purchase(id, &b).await })
    }))
    .await;
    for p in bought {
        p.expect("task").expect("purchase");
    }
    for (hold, b) in holds.iter().zip(&buyers).skip(3) {
        store.release(hold.id, &b.id).await.expect("release");
    }
    let owner: HashMap<ReservationId, &Buyer> =
        holds.iter().map(|hold| hold.id).zip(&buyers).collect();
    let marker = store
        .create_drop(NewDrop::new("marker", Money::ZERO, 1))
        .await
        .expect("create marker drop");
    let (mut created, mut bought, mut released) = (0, 0, 0);
    loop {
        match next_event(&mut events).await {
            DropEvent::DropCreated { drop } if drop.drop.id == marker.drop.id => break,
            DropEvent::HoldCreated {
                reservation_id,
                buyer_id,
                ..
            } => {
                assert_eq!(buyer_id, owner[&reservation_id].id, "HoldCreated");
                created += 1;
            }
            DropEvent::PurchaseCompleted {
                reservation_id,
                buyer_id,
                display_name,
                ..
            } => {
                let buyer = owner[&reservation_id];
                assert_eq!(buyer_id, buyer.id, "PurchaseCompleted");
                assert_eq!(display_name, buyer.display_name, "PurchaseCompleted");
                bought += 1;
            }
            DropEvent::HoldReleased {
                reservation_id,
                buyer_id,
                ..
            } => {
                assert_eq!(buyer_id, owner[&reservation_id].id, "HoldReleased");
                released += 1;
            }
            _ => {}
        }
    }
    assert_eq!((created, bought, released), (6, 3, 3));
    verify(h).await;
}
