//! Drops, holds, purchases and expiry: the cases every store has run
//! since drops had one variant.

use super::*;
use std::collections::HashSet;

use futures::future::join_all;

use crate::{ReservationId, ReservationStatus};

/// Creating, reading and listing drops; the creation event.
pub async fn create_get_and_list(h: &dyn Harness) {
    let store = h.store();
    let mut events = store.subscribe();
    let created = new_drop(h, 7).await;
    assert_eq!(created.drop.name, "Test drop");
    assert_eq!(created.drop.price, price());
    assert_eq!(created.drop.hold, h.long_hold());
    assert_eq!(
        (
            created.stock.total,
            created.stock.reserved,
            created.stock.sold
        ),
        (7, 0, 0)
    );
    assert_eq!(created.stock.available(), 7);
    match next_event(&mut events).await {
        DropEvent::DropCreated { drop } => assert_eq!(drop, created),
        other => panic!("expected DropCreated, got {other:?}"),
    }
    let got = store.get_drop(created.drop.id).await.unwrap();
    assert_eq!(got.drop, created.drop);
    let listed = store.list_drops().await.unwrap();
    assert!(listed.iter().any(|d| d.drop.id == created.drop.id));
    // Names are trimmed.
    let trimmed = store
        .create_drop(NewDrop::new("  Air Max  ", Money::ZERO, 1))
        .await
        .unwrap();
    assert_eq!(trimmed.drop.name, "Air Max");
    verify(h).await;
}

/// Invalid drops are refused with the field named, and announce nothing.
pub async fn create_rejects_invalid_drops(h: &dyn Harness) {
    let store = h.store();
    let mut events = store.subscribe();
    let now = h.now().await;
    let ok = NewDrop::new("Fine", price(), 5);
    let bad = [
        (
            NewDrop {
                name: String::new(),
                ..ok.clone()
            },
            "name",
        ),
        (
            NewDrop {
                name: "x".repeat(101),
                ..ok.clone()
            },
            "name",
        ),
        (NewDrop::new("Fine", price(), 0), "totalStock"),
        (NewDrop::new("Fine", price(), 1_000_001), "totalStock"),
        (
            ok.clone()
                .starts_at(now + chrono::Duration::hours(2))
                .ends_at(now + chrono::Duration::hours(1)),
            "endsAt",
        ),
        (ok.clone().hold(Duration::ZERO), "holdSeconds"),
        // An end already past, on the store's clock.
        (
            ok.clone().ends_at(now - chrono::Duration::seconds(1)),
            "endsAt",
        ),
        // Instants a database cannot keep (PostgreSQL stops at 4713 BC).
        (
            ok.clone().starts_at(
                "-5000-01-01T00:00:00Z"
                    .parse::<DateTime<Utc>>()
                    .expect("chrono reads year -5000"),
            ),
            "startsAt",
        ),
    ];
    for (new, field) in bad {
        let err = store.create_drop(new).await.unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(err.field(), Some(field), "{err}");
    }
    assert_quiet_since(h, &mut events).await;
}

/// Unknown ids get the not-found codes.
pub async fn unknown_ids_are_not_found(h: &dyn Harness) {
    let store = h.store();
    let alice = user("alice");
    assert_eq!(code(store.get_drop(DropId::new()).await), "DROP_NOT_FOUND");
    assert_eq!(
        code(store.reserve(DropId::new(), &alice).await),
        "DROP_NOT_FOUND"
    );
    assert_eq!(
        code(store.top_purchasers(DropId::new(), 3).await),
        "DROP_NOT_FOUND"
    );
    let rid = ReservationId::new();
    assert_eq!(
        code(store.get_reservation(rid).await),
        "RESERVATION_NOT_FOUND"
    );
    assert_eq!(
        code(store.purchase(rid, &alice.id).await),
        "RESERVATION_NOT_FOUND"
    );
    assert_eq!(
        code(store.release(rid, &alice.id).await),
        "RESERVATION_NOT_FOUND"
    );
}

/// A reserve holds one unit for the drop's hold duration and says so.
pub async fn reserve_holds_one_unit(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 3).await;
    let mut events = store.subscribe();
    let alice = user("alice");
    let r = store.reserve(d.drop.id, &alice).await.unwrap();
    assert!(r.created);
    let hold = &r.reservation;
    assert_eq!(hold.status, ReservationStatus::Active);
    assert_eq!(hold.drop_id, d.drop.id);
    assert_eq!(hold.buyer(), alice);
    assert_eq!((hold.variant_id, hold.quantity), (variant(&d, 0), 1));
    assert_eq!(
        (hold.expires_at - hold.created_at).to_std().unwrap(),
        h.long_hold(),
        "expiresAt = createdAt + hold"
    );
    let stock = assert_stock(h, d.drop.id, &[(3, 1, 0)]).await.stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (1, 0, 2));
    assert!(stock.version > d.stock.version);
    let got = next_events(&mut events, 2).await;
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::HoldCreated { reservation_id, buyer_id, expires_at, variant_id, quantity, .. }
            if *reservation_id == hold.id && *buyer_id == alice.id
               && *expires_at == hold.expires_at && *variant_id == hold.variant_id
               && *quantity == 1)));
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::StockChanged { drop_id, stock: s, variants }
            if *drop_id == d.drop.id && s.reserved == 1 && variants.len() == 1
               && variants[0].reserved == 1)));
    assert_eq!(store.get_reservation(hold.id).await.unwrap(), *hold);
    assert_eq!(
        store
            .active_hold(d.drop.id, &alice.id)
            .await
            .unwrap()
            .as_ref(),
        Some(hold)
    );
    assert_eq!(
        store.active_hold(d.drop.id, &user("bob").id).await.unwrap(),
        None
    );
    verify(h).await;
}

/// Reserving again while holding returns the same hold, unchanged, and
/// announces nothing.
pub async fn reserve_again_returns_same_hold_unchanged(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 3).await;
    let alice = user("alice");
    let first = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    h.advance(Duration::from_millis(50)).await;
    let mut events = store.subscribe();
    let again = store.reserve(d.drop.id, &alice).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.reservation, first, "the hold must not be extended");
    assert_eq!(store.get_drop(d.drop.id).await.unwrap().stock.reserved, 1);
    assert_quiet_since(h, &mut events).await;
    verify(h).await;
}

/// Many concurrent reserves by one user give one hold.
pub async fn one_active_hold_per_user_under_concurrency(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 10).await;
    let alice = user("alice");
    let mut events = store.subscribe();
    let results = join_all((0..32).map(|_| {
        let store = store.clone();
        let alice = alice.clone();
        tokio::spawn(async move { store.reserve(d.drop.id, &alice).await })
    }))
    .await;
    let ids: HashSet<ReservationId> = results
        .into_iter()
        .map(|r| r.expect("task").expect("reserve").reservation.id)
        .collect();
    assert_eq!(ids.len(), 1, "one user got several holds");
    assert_eq!(store.get_drop(d.drop.id).await.unwrap().stock.reserved, 1);
    let counts = event_counts(h, &mut events).await;
    assert_eq!(counts.created, 1, "one hold, one HoldCreated");
    verify(h).await;
}

/// The last unit goes to one buyer; the next gets `OUT_OF_STOCK` and
/// nothing is announced for the refusal.
pub async fn out_of_stock(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 2).await;
    store.reserve(d.drop.id, &user("alice")).await.unwrap();
    store.reserve(d.drop.id, &user("bob")).await.unwrap();
    let mut events = store.subscribe();
    assert_eq!(
        code(store.reserve(d.drop.id, &user("carol")).await),
        "OUT_OF_STOCK"
    );
    assert_quiet_since(h, &mut events).await;
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.available()), (2, 0));
    verify(h).await;
}

/// Purchase turns the hold into a sale at the drop's price.
pub async fn purchase_completes_hold(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 3).await;
    let alice = user("alice");
    let hold = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let mut events = store.subscribe();
    let p = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(p.created && !p.replayed);
    let p = p.purchase;
    assert_eq!(p.reservation_id, hold.id);
    assert_eq!(p.drop_id, d.drop.id);
    assert_eq!(
        (&p.buyer_id, &p.display_name),
        (&alice.id, &alice.display_name)
    );
    assert_eq!(p.amount_paid, price());
    let after = store.get_reservation(hold.id).await.unwrap();
    assert_eq!(after.status, ReservationStatus::Purchased);
    assert_eq!(after.expires_at, hold.expires_at);
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (0, 1, 2));
    let got = next_events(&mut events, 2).await;
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::PurchaseCompleted { reservation_id, buyer_id, display_name, top_purchasers, .. }
            if *reservation_id == hold.id && *buyer_id == alice.id
               && *display_name == alice.display_name
               && top_purchasers.first().map(|t| &t.display_name) == Some(&alice.display_name))));
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::StockChanged { stock: s, .. } if s.sold == 1 && s.reserved == 0)));
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    // Having bought the one unit a buyer may have, she may not hold more.
    assert_eq!(
        code(store.reserve(d.drop.id, &alice).await),
        "BUYER_LIMIT_REACHED"
    );
    verify(h).await;
}

/// Every way a purchase can be refused, each announcing nothing.
pub async fn purchase_refusals(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 5).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let held = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let bought = store.reserve(d.drop.id, &bob).await.unwrap().reservation;
    store.purchase(bought.id, &bob.id).await.unwrap();
    let carol = user("carol");
    let released = store.reserve(d.drop.id, &carol).await.unwrap().reservation;
    store.release(released.id, &carol.id).await.unwrap();

    let mut events = store.subscribe();
    assert_eq!(code(store.purchase(held.id, &bob.id).await), "NOT_OWNER");
    // A bought hold is its owner's to ask about again, nobody else's.
    assert_eq!(
        code(store.purchase(bought.id, &alice.id).await),
        "NOT_OWNER"
    );
    assert_eq!(
        code(store.purchase(released.id, &carol.id).await),
        "ALREADY_RELEASED"
    );
    assert_eq!(
        code(store.release(bought.id, &bob.id).await),
        "ALREADY_PURCHASED"
    );
    assert_eq!(code(store.release(held.id, &bob.id).await), "NOT_OWNER");
    assert_quiet_since(h, &mut events).await;
    // The refusals changed nothing.
    assert_eq!(
        store.get_reservation(held.id).await.unwrap().status,
        ReservationStatus::Active
    );
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold), (1, 1));
    verify(h).await;
}

/// Release gives the unit back at once.
pub async fn release_frees_the_unit(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 1).await;
    let alice = user("alice");
    let hold = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let mut events = store.subscribe();
    let released = store.release(hold.id, &alice.id).await.unwrap();
    assert_eq!(released.status, ReservationStatus::Released);
    assert_eq!(released.id, hold.id);
    let got = next_events(&mut events, 2).await;
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::HoldReleased { reservation_id, buyer_id, .. }
            if *reservation_id == hold.id && *buyer_id == alice.id)));
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::StockChanged { stock: s, .. } if s.reserved == 0)));
    assert_eq!(
        code(store.release(hold.id, &alice.id).await),
        "ALREADY_RELEASED"
    );
    // The unit is free for someone else.
    store.reserve(d.drop.id, &user("bob")).await.unwrap();
    verify(h).await;
}

/// At or after `expiresAt` a purchase fails as expired even though no
/// sweeper has run, and the hold reads as expired.
pub async fn purchase_after_expiry_fails_without_sweeper(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_drop(h, 2).await;
    let alice = user("alice");
    let hold = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    h.advance(h.hold()).await;
    assert_eq!(
        code(store.purchase(hold.id, &alice.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_eq!(
        code(store.release(hold.id, &alice.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_eq!(
        store.get_reservation(hold.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!(stock.sold, 0);
    verify(h).await;
}

/// Exactly at `expiresAt` the hold is expired; before, it can be bought.
/// A manual clock lands on the instant and a microsecond before it; a real
/// clock checks both sides with a margin, on the store's own clock: a
/// purchase well before the end succeeds and is stamped before it, and one
/// made once the store's time has reached `expiresAt` fails, the hold reads
/// as expired and its unit as free, although no sweeper ran.
pub async fn expiry_boundary_is_exact(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_drop(h, 2).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let a = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let b = store.reserve(d.drop.id, &bob).await.unwrap().reservation;
    if h.exact_time() {
        h.advance(h.hold() - Duration::from_micros(1)).await;
    } else {
        // Half the hold left: a purchase cannot take that long.
        advance_to(
            h,
            a.expires_at - chrono::Duration::from_std(h.hold() / 2).unwrap(),
        )
        .await;
    }
    let p = store.purchase(a.id, &alice.id).await.unwrap().purchase;
    assert!(
        p.created_at < a.expires_at,
        "bought at {} after expiry",
        p.created_at
    );
    assert!(p.created_at >= a.created_at);
    assert_eq!(
        store.get_reservation(b.id).await.unwrap().status,
        ReservationStatus::Active
    );
    if h.exact_time() {
        h.advance(Duration::from_micros(1)).await;
        assert_eq!(h.now().await, b.expires_at, "exactly at the boundary");
    } else {
        advance_to(h, b.expires_at).await;
    }
    let mut events = store.subscribe();
    assert_eq!(
        code(store.purchase(b.id, &bob.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(
        store.get_reservation(b.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (0, 1, 1));
    verify(h).await;
}

/// A hold past its expiry that no sweeper touched does not block a reserve
/// of the last unit.
pub async fn lazy_reclaim_of_overdue_holds(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_drop(h, 1).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let a = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    assert_eq!(code(store.reserve(d.drop.id, &bob).await), "OUT_OF_STOCK");
    h.advance(h.hold()).await;
    let mut events = store.subscribe();
    let b = store
        .reserve(d.drop.id, &bob)
        .await
        .expect("overdue hold must not block");
    assert!(b.created);
    // The lazy expiry is a committed change like any other: announced.
    let got = next_events(&mut events, 3).await;
    assert!(
        got.iter().any(|e| matches!(e, DropEvent::HoldExpired { reservation_id, .. } if *reservation_id == a.id)),
        "{got:?}"
    );
    assert!(
        got.iter().any(|e| matches!(e, DropEvent::HoldCreated { reservation_id, .. } if *reservation_id == b.reservation.id)),
        "{got:?}"
    );
    assert_eq!(
        store.get_reservation(a.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (1, 0, 0));
    // And Alice, whose hold lapsed, may queue again like anyone.
    assert_eq!(code(store.reserve(d.drop.id, &alice).await), "OUT_OF_STOCK");
    verify(h).await;
}

/// The sweeper expires due holds once, frees their units and says so;
/// `next_expiry` points at the earliest active hold.
pub async fn expire_due_sweeps_once(h: &dyn Harness) {
    let store = h.store();
    assert_eq!(store.next_expiry().await.unwrap(), None);
    let d = expiring_drop(h, 5).await;
    let mut holds = Vec::new();
    for name in ["alice", "bob", "carol"] {
        holds.push(
            store
                .reserve(d.drop.id, &user(name))
                .await
                .unwrap()
                .reservation,
        );
    }
    let earliest = holds.iter().map(|r| r.expires_at).min().unwrap();
    assert_eq!(store.next_expiry().await.unwrap(), Some(earliest));
    assert_eq!(
        store.expire_due(100).await.unwrap(),
        0,
        "nothing is due yet"
    );
    h.advance(h.hold()).await;
    let mut events = store.subscribe();
    // In batches: a limit of 2 leaves one for the next call.
    assert_eq!(store.expire_due(2).await.unwrap(), 2);
    assert_eq!(store.expire_due(2).await.unwrap(), 1);
    assert_eq!(store.expire_due(2).await.unwrap(), 0);
    let got = next_events(&mut events, 4).await;
    let expired: HashSet<ReservationId> = got
        .iter()
        .filter_map(|e| match e {
            DropEvent::HoldExpired { reservation_id, .. } => Some(*reservation_id),
            _ => None,
        })
        .collect();
    assert!(expired.len() >= 2, "{got:?}");
    for r in &holds {
        assert_eq!(
            store.get_reservation(r.id).await.unwrap().status,
            ReservationStatus::Expired
        );
    }
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.available()), (0, 5));
    assert_eq!(store.next_expiry().await.unwrap(), None);
    verify(h).await;
}

/// Purchases racing the sweeper: those made well before `expiresAt` all
/// win, those made after it all lose, those at the boundary go either way;
/// whatever the split, every hold ends in exactly one state, a purchase
/// exists iff its hold is purchased, and subscribers hear of each end once.
pub async fn purchase_racing_expiry(h: &dyn Harness) {
    const EARLY: usize = 10;
    const EDGE: usize = 20;
    const LATE: usize = 10;
    let n = EARLY + EDGE + LATE;
    let store = h.store();
    let mut events = store.subscribe();
    let d = expiring_drop(h, n as u32).await;
    let mut holds = Vec::new();
    for i in 0..n {
        let u = user(&format!("user{i}"));
        holds.push((store.reserve(d.drop.id, &u).await.unwrap().reservation, u));
    }
    let first_end = holds.iter().map(|(r, _)| r.expires_at).min().unwrap();
    let last_end = holds.iter().map(|(r, _)| r.expires_at).max().unwrap();

    // The sweeper runs through all three rounds.
    let stop = Arc::new(tokio::sync::Notify::new());
    let sweeper = {
        let store = store.clone();
        let stop = stop.clone();
        let exact = h.exact_time();
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                total += store.expire_due(7).await.unwrap();
                let pause = async {
                    if exact {
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                tokio::select! {
                    () = stop.notified() => return total,
                    () = pause => {}
                }
            }
        })
    };
    let buy = |range: std::ops::Range<usize>| {
        join_all(holds[range].iter().enumerate().map(|(i, (r, u))| {
            let store = store.clone();
            let (id, u) = (r.id, u.clone());
            tokio::spawn(async move {
                if i % 2 == 0 {
                    tokio::task::yield_now().await;
                }
                store.purchase(id, &u.id).await
            })
        }))
    };

    // Well before the end: every purchase wins.
    if !h.exact_time() {
        assert!(
            h.now().await < first_end - chrono::Duration::from_std(h.hold() / 2).unwrap(),
            "reserving took half the hold: the machine is too slow for this case"
        );
    }
    let early = buy(0..EARLY).await;
    // At the boundary: either way.
    if h.exact_time() {
        h.advance(h.hold() - Duration::from_micros(1)).await;
    } else {
        advance_to(h, first_end - chrono::Duration::milliseconds(5)).await;
    }
    let edge = buy(EARLY..EARLY + EDGE);
    if h.exact_time() {
        tokio::task::yield_now().await;
        h.advance(Duration::from_micros(1)).await;
    }
    let edge = edge.await;
    // After the end: every purchase loses.
    advance_to(h, last_end).await;
    let late = buy(EARLY + EDGE..n).await;
    stop.notify_one();
    let swept = sweeper.await.unwrap() + store.expire_due(1000).await.unwrap();

    let mut bought = 0;
    let results = early.into_iter().chain(edge).chain(late);
    for (i, (res, (r, _))) in results.zip(&holds).enumerate() {
        let status = store.get_reservation(r.id).await.unwrap().status;
        match res.unwrap() {
            Ok(p) => {
                assert!(i < EARLY + EDGE, "hold {i} bought after its expiry");
                assert!(p.created, "hold {i}: the first purchase makes it");
                let p = p.purchase;
                assert_eq!(p.reservation_id, r.id);
                assert!(p.created_at < r.expires_at);
                assert_eq!(status, ReservationStatus::Purchased);
                bought += 1;
            }
            Err(e) => {
                assert!(i >= EARLY, "hold {i} refused well before its expiry: {e}");
                assert_eq!(e.code(), "RESERVATION_EXPIRED", "{e}");
                assert_eq!(status, ReservationStatus::Expired);
            }
        }
    }
    assert_eq!(bought + swept, n, "each hold ends exactly once");
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold as usize), (0, bought));
    let counts = event_counts(h, &mut events).await;
    assert_eq!(
        (counts.created, counts.bought, counts.expired),
        (n, bought, swept),
        "one event per hold created, bought and expired"
    );
    verify(h).await;
}

/// Sales windows: before `startsAt` and from `endsAt` on, no reserve;
/// ended drops leave the list.
pub async fn sale_windows(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let step = chrono::Duration::from_std(h.hold()).unwrap();
    let alice = user("alice");
    let upcoming = store
        .create_drop(
            NewDrop::new("Soon", price(), 3)
                .starts_at(now + step)
                .hold(h.hold()),
        )
        .await
        .unwrap();
    let closing = store
        .create_drop(
            NewDrop::new("Closing", price(), 3)
                .ends_at(now + step * 2)
                .hold(h.hold()),
        )
        .await
        .unwrap();
    assert_eq!(
        code(store.reserve(upcoming.drop.id, &alice).await),
        "DROP_NOT_ACTIVE"
    );
    let listed: HashSet<DropId> = store
        .list_drops()
        .await
        .unwrap()
        .iter()
        .map(|d| d.drop.id)
        .collect();
    assert!(
        listed.contains(&upcoming.drop.id),
        "upcoming drops are listed"
    );
    assert!(listed.contains(&closing.drop.id));
    store.reserve(closing.drop.id, &alice).await.unwrap();
    h.advance(h.hold() + h.hold() / 10).await;
    store
        .reserve(upcoming.drop.id, &alice)
        .await
        .expect("open after startsAt");
    h.advance(h.hold()).await;
    assert_eq!(
        code(store.reserve(closing.drop.id, &user("bob")).await),
        "DROP_NOT_ACTIVE"
    );
    let listed: HashSet<DropId> = store
        .list_drops()
        .await
        .unwrap()
        .iter()
        .map(|d| d.drop.id)
        .collect();
    assert!(
        !listed.contains(&closing.drop.id),
        "ended drops are not listed"
    );
    // An ended drop can still be read by id.
    store.get_drop(closing.drop.id).await.unwrap();
    verify(h).await;
}

/// The three most recent buyers, newest first, also in the purchase event.
pub async fn top_purchasers_newest_first(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 10).await;
    assert!(store.top_purchasers(d.drop.id, 3).await.unwrap().is_empty());
    let names = ["ann", "ben", "cat", "dan"];
    let mut events = store.subscribe();
    for name in names {
        let u = user(name);
        let r = store.reserve(d.drop.id, &u).await.unwrap().reservation;
        // Distinct purchase times.
        h.advance(Duration::from_millis(20)).await;
        store.purchase(r.id, &u.id).await.unwrap();
    }
    let top = store.top_purchasers(d.drop.id, 3).await.unwrap();
    let got: Vec<&str> = top.iter().map(|t| t.display_name.as_str()).collect();
    assert_eq!(got, ["dan", "cat", "ben"]);
    assert!(
        top.windows(2)
            .all(|w| w[0].purchased_at >= w[1].purchased_at)
    );
    let mut last_top = None;
    let mut seen = 0;
    while seen < names.len() {
        if let DropEvent::PurchaseCompleted { top_purchasers, .. } = next_event(&mut events).await {
            seen += 1;
            last_top = Some(top_purchasers);
        }
    }
    assert_eq!(last_top.as_ref(), Some(&top));
    let overview = store.overview(Some(&user("ann").id)).await.unwrap();
    let mine = overview
        .iter()
        .find(|o| o.state.drop.id == d.drop.id)
        .unwrap();
    assert_eq!(mine.top_purchasers, top);
    assert_eq!(mine.user_reservation, None);
    verify(h).await;
}

/// Stock versions grow with every change.
pub async fn stock_versions_grow(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 5).await;
    let alice = user("alice");
    let v0 = d.stock.version;
    let r = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let v1 = store.get_drop(d.drop.id).await.unwrap().stock.version;
    store.purchase(r.id, &alice.id).await.unwrap();
    let v2 = store.get_drop(d.drop.id).await.unwrap().stock.version;
    assert!(v0 < v1 && v1 < v2, "{v0} {v1} {v2}");
}

/// 1,000 concurrent reserves by distinct users on 100 units: exactly 100
/// holds, 900 `OUT_OF_STOCK`, exact arithmetic.
pub async fn stress_concurrent_reserves(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 100).await;
    let mut events = store.subscribe();
    let results = join_all((0..1000).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.reserve(d.drop.id, &user(&format!("buyer{i}"))).await })
    }))
    .await;
    let mut granted = HashSet::new();
    let mut refused = 0;
    for r in results {
        match r.expect("task") {
            Ok(r) => {
                assert!(r.created);
                granted.insert(r.reservation.id);
            }
            Err(e) if e.code() == "OUT_OF_STOCK" => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(granted.len(), 100);
    assert_eq!(refused, 900);
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!(
        (stock.total, stock.reserved, stock.sold, stock.available()),
        (100, 100, 0, 0)
    );
    let counts = event_counts(h, &mut events).await;
    assert_eq!(
        (counts.created, counts.expired),
        (100, 0),
        "one HoldCreated per hold granted, nothing for refusals"
    );
    verify(h).await;
}

/// The store works through `Arc<dyn InventoryStore>` from many tasks.
pub async fn object_safe_and_shared(h: &dyn Harness) {
    let store: Arc<dyn InventoryStore> = h.store();
    let d = new_drop(h, 4).await;
    let mut events = store.subscribe();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let u = user(&format!("shopper{i}"));
                let r = store.reserve(d.drop.id, &u).await?.reservation;
                store.purchase(r.id, &u.id).await
            })
        })
        .collect();
    for handle in handles {
        handle.await.unwrap().unwrap();
    }
    assert_eq!(store.get_drop(d.drop.id).await.unwrap().stock.sold, 4);
    let counts = event_counts(h, &mut events).await;
    assert_eq!((counts.created, counts.bought), (4, 4));
    store.health().await.unwrap();
    verify(h).await;
}

/// A hold taken before the sale ends may be bought after `endsAt`, until
/// its own `expiresAt`; reserves stop at `endsAt`.
pub async fn purchase_after_end_of_sale_within_the_hold(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let half = chrono::Duration::from_std(h.hold() / 2).unwrap();
    let d = store
        .create_drop(
            NewDrop::new("Last call", price(), 3)
                .ends_at(now + half)
                .hold(h.hold()),
        )
        .await
        .unwrap();
    let alice = user("alice");
    let hold = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    assert!(hold.expires_at > now + half, "the hold outlives the sale");
    advance_to(h, now + half).await;
    assert_eq!(
        code(store.reserve(d.drop.id, &user("bob")).await),
        "DROP_NOT_ACTIVE"
    );
    let mut events = store.subscribe();
    let p = store
        .purchase(hold.id, &alice.id)
        .await
        .expect("a hold taken before the end may be bought until it expires")
        .purchase;
    assert!(p.created_at >= now + half && p.created_at < hold.expires_at);
    let got = next_events(&mut events, 2).await;
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::PurchaseCompleted { reservation_id, .. } if *reservation_id == hold.id)));
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold), (0, 1));
    verify(h).await;
}

/// Before `startsAt` a reserve is refused, announces nothing and holds
/// nothing; from `startsAt` on it succeeds.
pub async fn reserve_before_start_is_refused(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let start = now + chrono::Duration::from_std(h.hold()).unwrap();
    let d = store
        .create_drop(
            NewDrop::new("Soon", price(), 2)
                .starts_at(start)
                .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let alice = user("alice");
    let mut events = store.subscribe();
    let err = store.reserve(d.drop.id, &alice).await.unwrap_err();
    assert_eq!(err.code(), "DROP_NOT_ACTIVE");
    assert!(
        matches!(
            err,
            DropError::DropNotActive {
                reason: crate::NotActiveReason::NotStarted,
                ..
            }
        ),
        "{err:?}"
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.active_hold(d.drop.id, &alice.id).await.unwrap(), None);
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.version), (0, d.stock.version));
    advance_to(h, start).await;
    assert!(store.reserve(d.drop.id, &alice).await.unwrap().created);
    verify(h).await;
}

/// Releasing a hold whose time is up fails as expired, swept or not, and
/// changes and announces nothing.
pub async fn release_of_an_expired_hold(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_drop(h, 2).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let a = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let b = store.reserve(d.drop.id, &bob).await.unwrap().reservation;
    advance_to(h, a.expires_at.max(b.expires_at)).await;
    let mut events = store.subscribe();
    // Not swept yet.
    assert_eq!(
        code(store.release(a.id, &alice.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(store.expire_due(10).await.unwrap(), 2);
    let mut events = store.subscribe();
    // Swept.
    assert_eq!(
        code(store.release(b.id, &bob.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_eq!(
        code(store.release(a.id, &alice.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_quiet_since(h, &mut events).await;
    for id in [a.id, b.id] {
        assert_eq!(
            store.get_reservation(id).await.unwrap().status,
            ReservationStatus::Expired
        );
    }
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (0, 0, 2));
    verify(h).await;
}

/// Holds past their time count as free in every read of the stock (a
/// drop, the list, the overview) before any sweeper runs, and sweeping
/// them changes nothing a client sees but the version.
pub async fn overdue_holds_read_as_free_before_the_sweep(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_drop(h, 3).await;
    let (alice, bob) = (user("alice"), user("bob"));
    store.reserve(d.drop.id, &alice).await.unwrap();
    let b = store.reserve(d.drop.id, &bob).await.unwrap().reservation;
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.available()), (2, 1), "held in time");
    // A hold that is not overdue keeps counting.
    let other = new_drop(h, 3).await;
    store.reserve(other.drop.id, &user("carol")).await.unwrap();
    advance_to(h, b.expires_at).await;
    let bob_hold = store.active_hold(d.drop.id, &bob.id).await.unwrap();
    assert_eq!(bob_hold, None, "both holds are overdue");

    let read = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((read.reserved, read.available()), (0, 3), "get_drop");
    let listed = store.list_drops().await.unwrap();
    let listed = listed.iter().find(|s| s.drop.id == d.drop.id).unwrap();
    assert_eq!(listed.stock.available(), 3, "list_drops");
    let overview = store.overview(Some(&alice.id)).await.unwrap();
    let mine = overview
        .iter()
        .find(|o| o.state.drop.id == d.drop.id)
        .unwrap();
    assert_eq!(mine.state.stock.available(), 3, "overview");
    assert_eq!(mine.user_reservation, None);
    let held = overview
        .iter()
        .find(|o| o.state.drop.id == other.drop.id)
        .unwrap();
    assert_eq!(held.state.stock.reserved, 1, "a hold in its time counts");

    store.expire_due(100).await.unwrap();
    let swept = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((swept.reserved, swept.available()), (0, 3));
    verify(h).await;
}
