//! The waiting list in the memory store, on a manual clock: every way a
//! unit is freed serves the line in the same critical section, the events
//! and log entries come in the documented order, and the store's own
//! invariants (set-aside units counted as reserved, nothing on open sale
//! while anyone waits) hold after each step.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, Change, Clock, DropError, DropEvent, DropPatch, DropState, EventStream, InventoryStore,
    LeaveReason, ManualClock, Money, NewDrop, NewVariant, ReserveRequest, Username, VariantId,
};
use drop_store_memory::MemoryStore;
use futures::{FutureExt, StreamExt};

const HOLD: Duration = Duration::from_secs(60);

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

fn store() -> (ManualClock, MemoryStore) {
    let clock = ManualClock::fixed();
    (clock.clone(), MemoryStore::with_clock(Arc::new(clock)))
}

async fn sized(store: &MemoryStore, sizes: &[(&str, u32)], max: u32) -> DropState {
    store
        .create_drop(
            NewDrop::with_variants(
                "Sized",
                Money::ZERO,
                sizes.iter().map(|(n, s)| NewVariant::new(*n, *s)),
            )
            .max_per_buyer(max)
            .hold(HOLD),
        )
        .await
        .unwrap()
}

fn ask(v: VariantId, quantity: u32) -> ReserveRequest {
    ReserveRequest::new().variant(v).quantity(quantity)
}

async fn hold(store: &MemoryStore, d: &DropState, b: &Buyer, v: VariantId, q: u32) {
    store
        .reserve_with(d.drop.id, b, ask(v, q), None)
        .await
        .expect("reserve");
}

async fn join(store: &MemoryStore, d: &DropState, b: &Buyer, v: VariantId, q: u32) -> u64 {
    let a = store
        .join_waitlist(d.drop.id, b, ask(v, q))
        .await
        .expect("join");
    assert!(a.changed);
    a.value.ticket
}

/// Every event published so far, in a few words.
fn heard(events: &mut EventStream) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(e)) = events.next().now_or_never() {
        out.push(match e.unwrap() {
            DropEvent::DropUpdated { .. } => "updated".to_owned(),
            DropEvent::HoldCreated {
                buyer_id, offered, ..
            } => format!("{} {buyer_id}", if offered { "offered" } else { "held" }),
            DropEvent::HoldReleased { buyer_id, .. } => format!("released {buyer_id}"),
            DropEvent::HoldExpired { .. } => "expired".to_owned(),
            DropEvent::PurchaseCompleted { buyer_id, .. } => format!("bought {buyer_id}"),
            DropEvent::PurchaseCancelled { buyer_id, .. } => format!("cancelled {buyer_id}"),
            DropEvent::WaitlistJoined { buyer_id, .. } => format!("joined {buyer_id}"),
            DropEvent::WaitlistLeft {
                buyer_id, reason, ..
            } => format!("left {} {buyer_id}", reason.as_str()),
            DropEvent::StockChanged { variants, .. } => format!(
                "stock {}",
                variants
                    .iter()
                    .map(|v| format!("{}/{}/{}", v.reserved, v.available(), v.waitlist_length))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            other => format!("{other:?}"),
        });
    }
    out
}

/// Each variant's (reserved, available, waitlist length) as read now.
async fn counters(store: &MemoryStore, d: &DropState) -> Vec<(u32, u32, u32)> {
    store
        .get_drop(d.drop.id)
        .await
        .unwrap()
        .variants
        .iter()
        .map(|v| (v.reserved, v.available(), v.waitlist_length))
        .collect()
}

async fn offered_to(store: &MemoryStore, d: &DropState, b: &Buyer) -> drop_core::Reservation {
    let r = store
        .active_hold(d.drop.id, &b.id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} holds nothing", b.id));
    assert!(r.offered, "{r:?}");
    r
}

#[tokio::test]
async fn the_sweeper_offers_what_expires_and_logs_it_in_order() {
    let (clock, store) = store();
    let d = sized(&store, &[("M", 1)], 2).await;
    let m = d.variants[0].id;
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    let ticket = join(&store, &d, &bob, m, 1).await;
    assert_eq!(counters(&store, &d).await, [(1, 0, 1)]);
    let mark = store.log_head().await.unwrap();
    let mut events = store.subscribe();
    clock.advance(HOLD);
    // Overdue but not yet swept: the unit is owed to Bob, not on sale.
    assert_eq!(counters(&store, &d).await, [(1, 0, 1)]);
    assert_eq!(store.expire_due(10).await.unwrap(), 1);
    assert_eq!(
        heard(&mut events),
        ["expired", "offered bob", "left offered bob", "stock 1/0/0"]
    );
    let offer = offered_to(&store, &d, &bob).await;
    assert_eq!(
        (offer.created_at, offer.expires_at, offer.quantity),
        (clock.now(), clock.now() + chrono::Duration::seconds(60), 1)
    );
    let log: Vec<Change> = store
        .events_after(mark, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(matches!(log[0], Change::HoldExpired { .. }));
    assert!(matches!(
        &log[1],
        Change::HoldCreated { offered: true, buyer_id, .. } if *buyer_id == bob.id
    ));
    assert_eq!(
        log[2],
        Change::WaitlistLeft {
            buyer_id: bob.id.clone(),
            variant_id: m,
            quantity: 1,
            ticket,
            reason: LeaveReason::Offered,
        }
    );
    assert_eq!(
        store.waitlist_place(d.drop.id, &bob.id).await.unwrap(),
        None
    );
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn a_reserve_reclaims_overdue_holds_for_the_line_first() {
    let (clock, store) = store();
    let d = sized(&store, &[("M", 2)], 2).await;
    let m = d.variants[0].id;
    let [alice, amy, bob, walkin] = ["alice", "amy", "bob", "walkin"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    hold(&store, &d, &amy, m, 1).await;
    join(&store, &d, &bob, m, 1).await;
    clock.advance(HOLD);
    let mut events = store.subscribe();
    // Two units ran out: the first goes to Bob, the second to the walk-in.
    hold(&store, &d, &walkin, m, 1).await;
    assert_eq!(
        heard(&mut events),
        [
            "expired",
            "expired",
            "offered bob",
            "left offered bob",
            "held walkin",
            "stock 2/0/0"
        ]
    );
    offered_to(&store, &d, &bob).await;
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn a_reserve_never_cuts_the_line() {
    let (clock, store) = store();
    let d = sized(&store, &[("M", 1)], 2).await;
    let m = d.variants[0].id;
    let [alice, bob, walkin] = ["alice", "bob", "walkin"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    join(&store, &d, &bob, m, 1).await;
    clock.advance(HOLD);
    let err = store
        .reserve_with(d.drop.id, &walkin, ask(m, 1), None)
        .await
        .unwrap_err();
    assert!(matches!(err, DropError::OutOfStock { .. }), "{err}");
    offered_to(&store, &d, &bob).await;
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn units_are_set_aside_until_the_head_is_covered_and_pass_on_when_they_leave() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 2)], 2).await;
    let m = d.variants[0].id;
    let [alice, amy, bob, carol] = ["alice", "amy", "bob", "carol"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    hold(&store, &d, &amy, m, 1).await;
    join(&store, &d, &bob, m, 2).await;
    join(&store, &d, &carol, m, 1).await;
    let a = store
        .active_hold(d.drop.id, &alice.id)
        .await
        .unwrap()
        .unwrap();
    store.release(a.id, &alice.id).await.unwrap();
    // One unit is not enough for Bob: it waits for him, off sale.
    let bob_place = store
        .waitlist_place(d.drop.id, &bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((bob_place.position, bob_place.set_aside), (1, 1));
    let carol_place = store
        .waitlist_place(d.drop.id, &carol.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((carol_place.position, carol_place.set_aside), (2, 0));
    assert_eq!(counters(&store, &d).await, [(2, 0, 2)]);
    // Bob leaves: the unit set aside goes to Carol, who wanted one.
    let mut events = store.subscribe();
    let left = store.leave_waitlist(d.drop.id, &bob.id).await.unwrap();
    assert_eq!(left, Some(bob_place));
    assert_eq!(
        heard(&mut events),
        [
            "left left bob",
            "offered carol",
            "left offered carol",
            "stock 2/0/0"
        ]
    );
    offered_to(&store, &d, &carol).await;
    assert_eq!(
        store.leave_waitlist(d.drop.id, &bob.id).await.unwrap(),
        None
    );
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn the_last_to_leave_puts_set_aside_units_back_on_sale() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 2)], 2).await;
    let m = d.variants[0].id;
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    // One free, Bob wants two: he joins and the free one is set aside.
    join(&store, &d, &bob, m, 2).await;
    assert_eq!(counters(&store, &d).await, [(2, 0, 1)]);
    store.leave_waitlist(d.drop.id, &bob.id).await.unwrap();
    assert_eq!(counters(&store, &d).await, [(1, 1, 0)]);
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn cancellation_and_added_stock_serve_the_line() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 1)], 2).await;
    let m = d.variants[0].id;
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    let a = store
        .active_hold(d.drop.id, &alice.id)
        .await
        .unwrap()
        .unwrap();
    let bought = store.purchase(a.id, &alice.id).await.unwrap().purchase;
    join(&store, &d, &bob, m, 1).await;
    join(&store, &d, &carol, m, 1).await;
    let mut events = store.subscribe();
    store.cancel_purchase(bought.id, None).await.unwrap();
    assert_eq!(
        heard(&mut events),
        [
            "cancelled alice",
            "offered bob",
            "left offered bob",
            "stock 1/0/1"
        ]
    );
    let patch = DropPatch::new().total_stock(2);
    let edited = store.update_drop(d.drop.id, &patch, None).await.unwrap();
    assert_eq!(
        heard(&mut events),
        [
            "updated",
            "offered carol",
            "left offered carol",
            "stock 2/0/0"
        ]
    );
    // The answer is the state after the line was served.
    assert_eq!(edited.value.variants[0].waitlist_length, 0);
    assert_eq!(edited.value.variants[0].reserved, 2);
    offered_to(&store, &d, &carol).await;
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn set_aside_units_do_not_stop_a_lower_stock() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 3)], 3).await;
    let m = d.variants[0].id;
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    join(&store, &d, &bob, m, 3).await;
    assert_eq!(counters(&store, &d).await, [(3, 0, 1)]);
    let patch = DropPatch::new().total_stock(1);
    store.update_drop(d.drop.id, &patch, None).await.unwrap();
    assert_eq!(counters(&store, &d).await, [(1, 0, 1)]);
    let place = store
        .waitlist_place(d.drop.id, &bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(place.set_aside, 0);
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn a_pause_does_not_stop_offers_but_the_end_does() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 2)], 1).await;
    let m = d.variants[0].id;
    let [alice, amy, bob, carol] = ["alice", "amy", "bob", "carol"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    hold(&store, &d, &amy, m, 1).await;
    join(&store, &d, &bob, m, 1).await;
    join(&store, &d, &carol, m, 1).await;
    store.set_paused(d.drop.id, true, None).await.unwrap();
    let a = store
        .active_hold(d.drop.id, &alice.id)
        .await
        .unwrap()
        .unwrap();
    store.release(a.id, &alice.id).await.unwrap();
    offered_to(&store, &d, &bob).await;
    store.end_drop(d.drop.id, None).await.unwrap();
    let a = store
        .active_hold(d.drop.id, &amy.id)
        .await
        .unwrap()
        .unwrap();
    store.release(a.id, &amy.id).await.unwrap();
    // After the end the unit stays set aside for Carol.
    assert_eq!(store.active_hold(d.drop.id, &carol.id).await.unwrap(), None);
    let place = store
        .waitlist_place(d.drop.id, &carol.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((place.position, place.set_aside), (1, 1));
    assert_eq!(counters(&store, &d).await, [(2, 0, 1)]);
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn a_head_whose_own_hold_ran_out_is_offered_not_skipped() {
    let (clock, store) = store();
    let d = sized(&store, &[("M", 1), ("L", 1)], 2).await;
    let (m, l) = (d.variants[0].id, d.variants[1].id);
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    join(&store, &d, &bob, m, 1).await;
    hold(&store, &d, &bob, l, 1).await;
    clock.advance(HOLD);
    // Both holds run out at once, Alice's first: Bob's overdue hold of L
    // holds nothing, so he gets the M.
    let mut events = store.subscribe();
    let a = store.active_hold(d.drop.id, &alice.id).await.unwrap();
    assert_eq!(a, None);
    assert_eq!(store.expire_due(1).await.unwrap(), 1);
    assert_eq!(
        heard(&mut events),
        [
            "expired",
            "expired",
            "offered bob",
            "left offered bob",
            "stock 1/0/0 0/1/0"
        ]
    );
    let offer = offered_to(&store, &d, &bob).await;
    assert_eq!(offer.variant_id, m);
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn a_drop_without_a_line_refuses_joins_and_frees_to_sale() {
    let (_, store) = store();
    let d = store
        .create_drop(NewDrop::new("No line", Money::ZERO, 1).waitlist(false))
        .await
        .unwrap();
    let [alice, bob] = ["alice", "bob"].map(user);
    let r = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let err = store
        .join_waitlist(d.drop.id, &bob, ReserveRequest::new())
        .await
        .unwrap_err();
    assert!(matches!(err, DropError::WaitlistClosed { .. }), "{err}");
    store.release(r.id, &alice.id).await.unwrap();
    store.reserve(d.drop.id, &bob).await.unwrap();
    store.verify_invariants().unwrap();
}

#[tokio::test]
async fn the_overview_shows_the_viewers_place() {
    let (_, store) = store();
    let d = sized(&store, &[("M", 1)], 1).await;
    let m = d.variants[0].id;
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &d, &alice, m, 1).await;
    let ticket = join(&store, &d, &bob, m, 1).await;
    let seen = store.overview(Some(&bob.id)).await.unwrap();
    let place = seen[0].user_waitlist.as_ref().expect("Bob's place");
    assert_eq!((place.ticket, place.position), (ticket, 1));
    let seen = store.overview(Some(&alice.id)).await.unwrap();
    assert_eq!(seen[0].user_waitlist, None);
    assert_eq!(seen[0].state.variants[0].waitlist_length, 1);
}

#[tokio::test]
async fn tickets_are_store_wide_and_increasing() {
    let (_, store) = store();
    let one = sized(&store, &[("M", 1)], 1).await;
    let two = sized(&store, &[("M", 1)], 1).await;
    let [alice, bob] = ["alice", "bob"].map(user);
    hold(&store, &one, &alice, one.variants[0].id, 1).await;
    hold(&store, &two, &alice, two.variants[0].id, 1).await;
    let a = join(&store, &one, &bob, one.variants[0].id, 1).await;
    let b = join(&store, &two, &bob, two.variants[0].id, 1).await;
    assert!(a < b, "{a} then {b}");
    // Joining again alike answers the same place, unchanged, logged once.
    let head = store.log_head().await.unwrap();
    let again = store
        .join_waitlist(one.drop.id, &bob, ask(one.variants[0].id, 1))
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(again.value.ticket, a);
    assert_eq!(store.log_head().await.unwrap(), head);
}
