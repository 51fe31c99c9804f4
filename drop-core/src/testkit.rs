//! The store conformance suite (feature `testkit`).
//!
//! Every store runs the same cases. A store crate implements [`Harness`]
//! for a fresh store and stamps the cases into its tests with
//! [`conformance_suite!`](crate::conformance_suite):
//!
//! ```ignore
//! drop_core::conformance_suite! {
//!     #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//!     () => MyHarness::new().await
//! }
//! ```
//!
//! The attribute and the argument list are the caller's, so a database
//! store can use `#[sqlx::test]` and receive a fresh pool per case:
//! `(pool: PgPool) => PgHarness::new(pool).await`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::join_all;
use uuid::Uuid;

use crate::{Buyer, BuyerId};
use crate::{
    DropError, DropEvent, DropId, DropState, EventStream, InventoryStore, Money, NewDrop,
    ReservationId, ReservationStatus, RevokedSession, Username,
};

/// What the suite needs from a store under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// The store (a fresh, empty one per case).
    fn store(&self) -> Arc<dyn InventoryStore>;

    /// The store's current time (the manual clock's, or the database's
    /// approximately).
    async fn now(&self) -> DateTime<Utc>;

    /// Moves the store's time forward by at least `by`: exactly, for a
    /// manual clock; by sleeping, for a real one.
    async fn advance(&self, by: Duration);

    /// Whether [`advance`](Harness::advance) is exact (a manual clock), so
    /// boundary cases can land exactly on an instant.
    fn exact_time(&self) -> bool;

    /// The hold duration the expiry cases give their drops: long under a
    /// manual clock, short (a second or two) under a real one, long enough
    /// that a slow round trip does not cross it by accident.
    fn hold(&self) -> Duration;

    /// The hold duration of every other case: so long that no case ever
    /// sees a hold run out, however slow the machine. Defaults to an hour.
    fn long_hold(&self) -> Duration {
        Duration::from_secs(3600)
    }

    /// Checks the store's own bookkeeping (counters against records).
    async fn verify(&self) -> Result<(), String>;
}

/// A buyer known by a claimed username: id and display name alike.
fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).expect("valid test username"))
}

fn price() -> Money {
    Money::from_minor(19_999).expect("valid price")
}

/// A drop whose holds never run out during a case.
async fn new_drop(h: &dyn Harness, stock: u32) -> DropState {
    h.store()
        .create_drop(NewDrop::new("Test drop", price(), stock).hold(h.long_hold()))
        .await
        .expect("create drop")
}

/// A drop whose holds run out within the case ([`Harness::hold`]).
async fn expiring_drop(h: &dyn Harness, stock: u32) -> DropState {
    h.store()
        .create_drop(NewDrop::new("Expiring drop", price(), stock).hold(h.hold()))
        .await
        .expect("create drop")
}

/// Waits until the store's time has reached `at`.
async fn advance_to(h: &dyn Harness, at: DateTime<Utc>) {
    let now = h.now().await;
    if let Ok(left) = (at - now).to_std() {
        h.advance(left).await;
    }
    if !h.exact_time() {
        // A real clock read over a network may lag a sleep: wait it out.
        while h.now().await < at {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn verify(h: &dyn Harness) {
    if let Err(e) = h.verify().await {
        panic!("store bookkeeping is inconsistent: {e}");
    }
}

/// How long to wait for an event that should come.
const EVENT_WAIT: Duration = Duration::from_secs(5);

async fn next_event(events: &mut EventStream) -> DropEvent {
    match tokio::time::timeout(EVENT_WAIT, events.next()).await {
        Ok(Some(Ok(e))) => e,
        Ok(Some(Err(lost))) => panic!("events lost in a quiet test: {lost}"),
        Ok(None) => panic!("event stream ended"),
        Err(_) => panic!("no event within {EVENT_WAIT:?}"),
    }
}

/// The next `n` events.
async fn next_events(events: &mut EventStream, n: usize) -> Vec<DropEvent> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_event(events).await);
    }
    out
}

/// Asserts that the failed operations before this call emitted nothing:
/// performs a marker change and checks it is the very next event.
async fn assert_quiet_since(h: &dyn Harness, events: &mut EventStream) {
    let marker = h
        .store()
        .create_drop(NewDrop::new("marker", Money::ZERO, 1))
        .await
        .expect("create marker drop");
    match next_event(events).await {
        DropEvent::DropCreated { drop } if drop.drop.id == marker.drop.id => {}
        other => panic!("a failed operation emitted an event: {other:?}"),
    }
}

/// How many holds, purchases and expiries subscribers heard of.
#[derive(Debug, Default)]
struct EventCounts {
    created: usize,
    bought: usize,
    expired: usize,
}

/// Counts the events since `events` was subscribed, up to a marker change
/// made now: every committed change before the marker has been published
/// by the time the marker is (invariant 5).
async fn event_counts(h: &dyn Harness, events: &mut EventStream) -> EventCounts {
    let marker = h
        .store()
        .create_drop(NewDrop::new("marker", Money::ZERO, 1))
        .await
        .expect("create marker drop");
    let mut counts = EventCounts::default();
    loop {
        match next_event(events).await {
            DropEvent::DropCreated { drop } if drop.drop.id == marker.drop.id => return counts,
            DropEvent::HoldCreated { .. } => counts.created += 1,
            DropEvent::PurchaseCompleted { .. } => counts.bought += 1,
            DropEvent::HoldExpired { .. } => counts.expired += 1,
            _ => {}
        }
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, DropError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.code(),
    }
}

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
        (
            NewDrop {
                total_stock: 0,
                ..ok.clone()
            },
            "totalStock",
        ),
        (
            NewDrop {
                total_stock: 1_000_001,
                ..ok.clone()
            },
            "totalStock",
        ),
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
    assert_eq!(
        (hold.expires_at - hold.created_at).to_std().unwrap(),
        h.long_hold(),
        "expiresAt = createdAt + hold"
    );
    let stock = store.get_drop(d.drop.id).await.unwrap().stock;
    assert_eq!((stock.reserved, stock.sold, stock.available()), (1, 0, 2));
    assert!(stock.version > d.stock.version);
    let got = next_events(&mut events, 2).await;
    assert!(got.iter().any(|e| matches!(e,
        DropEvent::HoldCreated { reservation_id, buyer_id, expires_at, .. }
            if *reservation_id == hold.id && *buyer_id == alice.id
               && *expires_at == hold.expires_at)));
    assert!(
        got.iter().any(|e| matches!(e,
        DropEvent::StockChanged { drop_id, stock: s } if *drop_id == d.drop.id && s.reserved == 1))
    );
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
    // Having bought, the user may reserve again: a new hold.
    let again = store.reserve(d.drop.id, &alice).await.unwrap();
    assert!(again.created);
    assert_ne!(again.reservation.id, hold.id);
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
    assert_eq!(
        code(store.purchase(bought.id, &bob.id).await),
        "ALREADY_PURCHASED"
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
    let p = store.purchase(a.id, &alice.id).await.unwrap();
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
        .expect("a hold taken before the end may be bought until it expires");
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
    let p = store.purchase(b.reservation.id, &second.id).await.unwrap();
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
            let p = store.purchase(r.reservation.id, &buyer.id).await.unwrap();
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

/// A session expiring `secs` seconds after `now`, to the microsecond (the
/// precision every store keeps).
fn session_expiry(now: DateTime<Utc>, secs: i64) -> DateTime<Utc> {
    let at = now + chrono::Duration::seconds(secs);
    DateTime::from_timestamp_micros(at.timestamp_micros()).expect("valid instant")
}

/// A revoked session is listed, with its expiry and the store's time of
/// the revocation; the answer carries the store's time of the read.
pub async fn revoked_sessions_are_listed(h: &dyn Harness) {
    let store = h.store();
    let empty = store.revoked_sessions(None).await.unwrap();
    assert!(empty.sessions.is_empty(), "{empty:?}");
    let before = h.now().await;
    let id = Uuid::new_v4();
    let expires_at = session_expiry(before, 86_400);
    store.revoke_session(id, expires_at).await.unwrap();
    let after = h.now().await;
    let listed = store.revoked_sessions(None).await.unwrap();
    assert_eq!(listed.sessions.len(), 1, "{listed:?}");
    let r = &listed.sessions[0];
    assert_eq!((r.id, r.expires_at), (id, expires_at));
    assert!(
        before <= r.revoked_at && r.revoked_at <= after,
        "revoked at {} by the store's clock, between {before} and {after}",
        r.revoked_at
    );
    assert!(
        listed.now >= r.revoked_at && listed.now >= after,
        "{listed:?}"
    );
    assert!(empty.now <= before, "{empty:?}");
    // Revoking a session ends nothing else.
    let d = new_drop(h, 1).await;
    store.reserve(d.drop.id, &user("alice")).await.unwrap();
    verify(h).await;
}

/// `since` lists the revocations recorded at or after it, oldest first;
/// a poller asking from the previous answer's `now` hears of the newer.
pub async fn revoked_sessions_since(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    store
        .revoke_session(a, session_expiry(now, 3600))
        .await
        .unwrap();
    h.advance(Duration::from_millis(20)).await;
    let first = store.revoked_sessions(None).await.unwrap();
    let ids = |r: &[RevokedSession]| r.iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(&first.sessions), [a]);
    h.advance(Duration::from_millis(20)).await;
    store
        .revoke_session(b, session_expiry(now, 3600))
        .await
        .unwrap();
    h.advance(Duration::from_millis(20)).await;
    store
        .revoke_session(c, session_expiry(now, 3600))
        .await
        .unwrap();
    let next = store.revoked_sessions(Some(first.now)).await.unwrap();
    assert_eq!(ids(&next.sessions), [b, c], "recorded since the first read");
    assert!(next.sessions[0].revoked_at < next.sessions[1].revoked_at);
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(ids(&all.sessions), [a, b, c], "oldest first");
    // The bound is inclusive.
    let from_b = store
        .revoked_sessions(Some(all.sessions[1].revoked_at))
        .await
        .unwrap();
    assert_eq!(ids(&from_b.sessions), [b, c]);
    let later = next.now + chrono::Duration::seconds(1);
    let none = store.revoked_sessions(Some(later)).await.unwrap();
    assert!(none.sessions.is_empty(), "{none:?}");
}

/// A revocation is listed until its session's expiry, then no more; one
/// whose session had already expired is never listed.
pub async fn expired_revocations_are_not_listed(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let hold = i64::try_from(h.hold().as_secs())
        .expect("short hold")
        .max(1);
    let (soon, later, past) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let soon_at = session_expiry(now, hold);
    store.revoke_session(soon, soon_at).await.unwrap();
    store
        .revoke_session(later, session_expiry(now, 86_400))
        .await
        .unwrap();
    store
        .revoke_session(past, session_expiry(now, -60))
        .await
        .unwrap();
    let ids = |r: Vec<RevokedSession>| r.into_iter().map(|s| s.id).collect::<HashSet<_>>();
    let listed = store.revoked_sessions(None).await.unwrap();
    assert!(listed.now < soon_at, "the case ran slower than {hold} s");
    assert_eq!(ids(listed.sessions), HashSet::from([soon, later]));
    advance_to(h, soon_at).await;
    let left = store.revoked_sessions(None).await.unwrap();
    assert_eq!(ids(left.sessions), HashSet::from([later]));
    // A revoke after the expiry (which may prune) keeps the others.
    let another = Uuid::new_v4();
    store
        .revoke_session(another, session_expiry(now, 86_400))
        .await
        .unwrap();
    let since_start = store.revoked_sessions(Some(now)).await.unwrap();
    assert_eq!(ids(since_start.sessions), HashSet::from([later, another]));
}

/// Revoking a session again is fine: it stays listed once, with the later
/// expiry, and is listed again to a poller that already heard of it.
pub async fn revoking_twice_is_fine(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let (id, other) = (Uuid::new_v4(), Uuid::new_v4());
    let (early, late) = (session_expiry(now, 3600), session_expiry(now, 7200));
    store.revoke_session(id, early).await.unwrap();
    store.revoke_session(other, late).await.unwrap();
    h.advance(Duration::from_millis(20)).await;
    let first = store.revoked_sessions(None).await.unwrap();
    assert_eq!(first.sessions.len(), 2);
    h.advance(Duration::from_millis(20)).await;
    store.revoke_session(id, early).await.unwrap();
    store.revoke_session(id, late).await.unwrap();
    // An earlier expiry than the one recorded does not shorten it.
    store.revoke_session(id, early).await.unwrap();
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(all.sessions.len(), 2, "{all:?}");
    let again = all.sessions.iter().find(|s| s.id == id).expect("listed");
    assert_eq!(again.expires_at, late);
    let was = first.sessions.iter().find(|s| s.id == id).expect("listed");
    assert!(again.revoked_at > was.revoked_at, "{again:?} after {was:?}");
    let news = store.revoked_sessions(Some(first.now)).await.unwrap();
    let news: Vec<Uuid> = news.sessions.iter().map(|s| s.id).collect();
    assert_eq!(news, [id]);
    // Many at once, of one session: still one record.
    let results = join_all((0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.revoke_session(id, late).await })
    }))
    .await;
    for r in results {
        r.expect("task").expect("revoke");
    }
    let all = store.revoked_sessions(None).await.unwrap();
    assert_eq!(all.sessions.iter().filter(|s| s.id == id).count(), 1);
}

/// Stamps every conformance case into the calling module as a test.
///
/// `#[attr] (args) => setup`: each case becomes `#[attr] async fn case(args)`
/// whose body evaluates `setup` (a [`Harness`]) and runs the case on it.
#[macro_export]
macro_rules! conformance_suite {
    (#[$attr:meta] ($($args:tt)*) => $setup:expr) => {
        $crate::__conformance_cases! {
            #[$attr] ($($args)*) => $setup;
            create_get_and_list,
            create_rejects_invalid_drops,
            unknown_ids_are_not_found,
            reserve_holds_one_unit,
            reserve_again_returns_same_hold_unchanged,
            one_active_hold_per_user_under_concurrency,
            out_of_stock,
            purchase_completes_hold,
            purchase_refusals,
            release_frees_the_unit,
            purchase_after_expiry_fails_without_sweeper,
            expiry_boundary_is_exact,
            lazy_reclaim_of_overdue_holds,
            expire_due_sweeps_once,
            purchase_racing_expiry,
            sale_windows,
            top_purchasers_newest_first,
            stock_versions_grow,
            stress_concurrent_reserves,
            object_safe_and_shared,
            purchase_after_end_of_sale_within_the_hold,
            reserve_before_start_is_refused,
            release_of_an_expired_hold,
            overdue_holds_read_as_free_before_the_sweep,
            buyers_sharing_a_display_name_are_different_buyers,
            buyer_ids_that_are_not_usernames,
            hold_events_carry_the_buyer_id,
            revoked_sessions_are_listed,
            revoked_sessions_since,
            expired_revocations_are_not_listed,
            revoking_twice_is_fine,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    (#[$attr:meta] $args:tt => $setup:expr; $($case:ident),* $(,)?) => {
        $(
            #[$attr]
            async fn $case $args {
                let harness = $setup;
                $crate::testkit::$case(&harness).await;
            }
        )*
    };
}
