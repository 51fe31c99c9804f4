//! The waiting list ([`crate::waitlist`]): who may join and in which order
//! a join checks its rules, the line's order, offered holds, set-aside
//! units, skipping, leaving, what serves the line (expiry swept or lazy,
//! release, cancellation, added stock), the end of the sale, the log, the
//! overview, and the rules raced by many tasks.

use super::*;

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::future::join_all;

use crate::{
    BuyerId, Change, DropPatch, LeaveReason, LogEntry, MAX_LOG_PAGE, NotActiveReason, Reservation,
    ReservationStatus, VariantStock, WaitlistPlace,
};

/// A drop of the named variants whose holds run out within the case
/// ([`Harness::hold`]), buyers taking up to `max` units each.
async fn expiring_sized_drop(h: &dyn Harness, sizes: &[(&str, u32)], max: u32) -> DropState {
    h.store()
        .create_drop(
            NewDrop::with_variants(
                "Expiring sized drop",
                price(),
                sizes.iter().map(|(name, n)| NewVariant::new(*name, *n)),
            )
            .max_per_buyer(max)
            .hold(h.hold()),
        )
        .await
        .expect("create drop")
}

/// `buyer` takes `quantity` units of `v`, which must succeed.
async fn hold(
    h: &dyn Harness,
    d: &DropState,
    buyer: &Buyer,
    v: VariantId,
    quantity: u32,
) -> Reservation {
    let r = h
        .store()
        .reserve_with(d.drop.id, buyer, ask(v, quantity), None)
        .await
        .expect("reserve");
    assert!(r.created, "a new hold: {r:?}");
    r.reservation
}

/// `buyer` joins the line for `quantity` units of `v`, which must be new.
async fn join(
    h: &dyn Harness,
    d: &DropState,
    buyer: &Buyer,
    v: VariantId,
    quantity: u32,
) -> WaitlistPlace {
    let a = h
        .store()
        .join_waitlist(d.drop.id, buyer, ask(v, quantity))
        .await
        .expect("join the line");
    assert!(a.changed && !a.replayed, "a new place: {a:?}");
    let p = a.value;
    assert_eq!(
        (
            p.drop_id,
            p.variant_id,
            &p.buyer_id,
            &p.display_name,
            p.quantity
        ),
        (d.drop.id, v, &buyer.id, &buyer.display_name, quantity),
        "the place answers the request"
    );
    p
}

/// The buyer's place as the store reads it now.
async fn place(h: &dyn Harness, d: &DropState, buyer: &BuyerId) -> Option<WaitlistPlace> {
    h.store()
        .waitlist_place(d.drop.id, buyer)
        .await
        .expect("waitlist_place")
}

/// Asserts the buyer stands at `position` with `set_aside` units set
/// aside, in the place `joined` they were given; answers the place read.
async fn assert_place(
    h: &dyn Harness,
    d: &DropState,
    joined: &WaitlistPlace,
    position: u32,
    set_aside: u32,
) -> WaitlistPlace {
    let got = place(h, d, &joined.buyer_id)
        .await
        .unwrap_or_else(|| panic!("{} is no longer in line", joined.buyer_id));
    let mut want = joined.clone();
    want.position = position;
    want.set_aside = set_aside;
    assert_eq!(got, want, "{}'s place", joined.buyer_id);
    got
}

/// Asserts the buyer stands in no line of the drop.
async fn assert_not_in_line(h: &dyn Harness, d: &DropState, buyer: &Buyer) {
    assert_eq!(
        place(h, d, &buyer.id).await,
        None,
        "{} stands in no line",
        buyer.id
    );
}

/// The buyer's active hold, which must be an offer of `quantity` units of
/// `v` made between `before` and `after` (exactly at `after` under an
/// exact clock), with the drop's hold window.
async fn assert_offered(
    h: &dyn Harness,
    d: &DropState,
    buyer: &Buyer,
    v: VariantId,
    quantity: u32,
    (before, after): (DateTime<Utc>, DateTime<Utc>),
) -> Reservation {
    let store = h.store();
    let hold = store
        .active_hold(d.drop.id, &buyer.id)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{} was offered no hold", buyer.id));
    assert!(hold.offered, "an offered hold: {hold:?}");
    assert_eq!(hold.status, ReservationStatus::Active);
    assert_eq!(
        (hold.drop_id, hold.variant_id, hold.quantity),
        (d.drop.id, v, quantity),
        "the place's variant and quantity"
    );
    assert_eq!(
        hold.buyer(),
        *buyer,
        "the buyer and the name they joined with"
    );
    if h.exact_time() {
        assert_eq!(hold.created_at, after, "made now");
    } else {
        assert!(
            before <= hold.created_at && hold.created_at <= after,
            "made now: {} not between {before} and {after}",
            hold.created_at
        );
    }
    let drop = store.get_drop(d.drop.id).await.unwrap().drop;
    assert_eq!(
        hold.expires_at,
        drop.hold_expiry(hold.created_at),
        "the drop's hold window from the offer on"
    );
    assert_eq!(
        store.get_reservation(hold.id).await.unwrap(),
        hold,
        "read back alike"
    );
    hold
}

/// One event in a few words, to compare sequences: the buyer's id where
/// the event names one.
fn describe(e: &DropEvent) -> String {
    match e {
        DropEvent::DropCreated { .. } => "created".into(),
        DropEvent::DropUpdated { .. } => "updated".into(),
        DropEvent::HoldCreated {
            buyer_id, offered, ..
        } => format!("{} {buyer_id}", if *offered { "offered" } else { "held" }),
        DropEvent::HoldReleased { buyer_id, .. } => format!("released {buyer_id}"),
        DropEvent::HoldExpired { .. } => "expired".into(),
        DropEvent::PurchaseCompleted { buyer_id, .. } => format!("bought {buyer_id}"),
        DropEvent::PurchaseCancelled { buyer_id, .. } => format!("cancelled {buyer_id}"),
        DropEvent::WaitlistJoined { buyer_id, .. } => format!("joined {buyer_id}"),
        DropEvent::WaitlistLeft {
            buyer_id, reason, ..
        } => format!("left {} {buyer_id}", reason.as_str()),
        DropEvent::StockChanged { .. } => "stock".into(),
        DropEvent::DrawCompleted { .. } => "drawn".into(),
    }
}

/// The events announced since `events` was subscribed (up to a marker),
/// described; the last `StockChanged` among them, if any.
async fn announced(
    h: &dyn Harness,
    events: &mut EventStream,
) -> (Vec<String>, Option<Vec<VariantStock>>) {
    let got = events_until_marker(h, events).await;
    let stock = got.iter().rev().find_map(|e| match e {
        DropEvent::StockChanged { variants, .. } => Some(variants.clone()),
        _ => None,
    });
    (got.iter().map(describe).collect(), stock)
}

/// The `waitlist_length` of each variant, in the drop's order.
fn lengths(variants: &[VariantStock]) -> Vec<u32> {
    variants.iter().map(|v| v.waitlist_length).collect()
}

/// Every log entry numbered above `after`, read page by page, but the
/// creation of the marker drops that close the event checks.
async fn log_after(h: &dyn Harness, after: u64) -> Vec<LogEntry> {
    let store = h.store();
    let mut out: Vec<LogEntry> = Vec::new();
    let mut cursor = after;
    loop {
        let page = store
            .events_after(cursor, MAX_LOG_PAGE)
            .await
            .expect("events_after");
        let Some(last) = page.last() else {
            return out;
        };
        cursor = last.seq;
        out.extend(page.into_iter().filter(
            |e| !matches!(&e.change, Change::DropCreated { drop } if drop.name == "marker"),
        ));
    }
}

/// The log's head now.
async fn log_head(h: &dyn Harness) -> u64 {
    h.store().log_head().await.expect("log_head")
}

/// What was logged since `mark`, each entry checked to concern `drop_id`.
async fn logged_since(h: &dyn Harness, mark: u64, drop_id: DropId) -> Vec<Change> {
    let got = log_after(h, mark).await;
    for pair in got.windows(2) {
        assert!(pair[0].seq < pair[1].seq, "seq increases: {got:?}");
    }
    for e in &got {
        assert_eq!(e.drop_id, drop_id, "an entry about another drop: {e:?}");
    }
    got.into_iter().map(|e| e.change).collect()
}

/// The kinds of the changes logged since `mark` (all about `drop_id`).
async fn kinds_since(h: &dyn Harness, mark: u64, drop_id: DropId) -> Vec<&'static str> {
    logged_since(h, mark, drop_id)
        .await
        .iter()
        .map(Change::kind)
        .collect()
}

/// The change a join logs.
fn joined(p: &WaitlistPlace) -> Change {
    Change::WaitlistJoined {
        buyer_id: p.buyer_id.clone(),
        display_name: p.display_name.clone(),
        variant_id: p.variant_id,
        quantity: p.quantity,
        ticket: p.ticket,
    }
}

/// The change logged when `p`'s buyer leaves the line for `reason`.
fn left(p: &WaitlistPlace, reason: LeaveReason) -> Change {
    Change::WaitlistLeft {
        buyer_id: p.buyer_id.clone(),
        variant_id: p.variant_id,
        quantity: p.quantity,
        ticket: p.ticket,
        reason,
    }
}

/// The change logged when `r` is made.
fn hold_created(r: &Reservation) -> Change {
    Change::HoldCreated {
        reservation_id: r.id,
        buyer_id: r.buyer_id.clone(),
        display_name: r.display_name.clone(),
        variant_id: r.variant_id,
        quantity: r.quantity,
        expires_at: r.expires_at,
        offered: r.offered,
    }
}

/// The change logged when `r` is given back.
fn hold_released(r: &Reservation) -> Change {
    Change::HoldReleased {
        reservation_id: r.id,
        buyer_id: r.buyer_id.clone(),
        variant_id: r.variant_id,
        quantity: r.quantity,
    }
}

/// Asserts `WAITLIST_NOT_NEEDED` for `v` of `d`.
fn assert_not_needed<T: std::fmt::Debug>(r: Result<T, DropError>, d: &DropState, v: VariantId) {
    match error(r) {
        DropError::WaitlistNotNeeded {
            drop_id,
            variant_id,
        } => assert_eq!((drop_id, variant_id), (d.drop.id, v)),
        other => panic!("expected WAITLIST_NOT_NEEDED, got {other:?}"),
    }
}

/// Asserts `ALREADY_IN_LINE` carrying the buyer's place as it is now.
fn assert_already_in_line<T: std::fmt::Debug>(r: Result<T, DropError>, now: &WaitlistPlace) {
    match error(r) {
        DropError::AlreadyInLine { place } => assert_eq!(*place, *now),
        other => panic!("expected ALREADY_IN_LINE, got {other:?}"),
    }
}

/// Asserts `DROP_NOT_ACTIVE` for `reason`.
fn assert_not_active<T: std::fmt::Debug>(r: Result<T, DropError>, reason: NotActiveReason) {
    match error(r) {
        DropError::DropNotActive { reason: got, .. } => assert_eq!(got, reason),
        other => panic!("expected DROP_NOT_ACTIVE ({reason:?}), got {other:?}"),
    }
}

/// The store's time, twice: before and after an operation, to bound the
/// instants it records.
async fn around<F, T>(h: &dyn Harness, op: F) -> (T, (DateTime<Utc>, DateTime<Utc>))
where
    F: std::future::Future<Output = T>,
{
    let before = h.now().await;
    let out = op.await;
    let after = h.now().await;
    (out, (before, after))
}

/// Joining is for a variant that cannot serve the request now:
/// `WAITLIST_NOT_NEEDED` while a reserve of it would succeed, but a
/// request for more units than are free joins, and the free ones are set
/// aside for the new head (nobody may take them past the line). A join
/// answers the place, announces `WaitlistJoined` then the stock with the
/// line's length, and logs `waitlistJoined`; joining again alike answers
/// the same place unchanged; asking for anything else is
/// `ALREADY_IN_LINE` carrying it.
pub async fn waitlist_join_needs_a_sold_out_variant(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 2), ("L", 1)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
    hold(h, &d, &alice, m, 1).await;
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    // One M is free, and L is untouched: a reserve of one would succeed.
    assert_not_needed(store.join_waitlist(d.drop.id, &bob, ask(m, 1)).await, &d, m);
    assert_not_needed(store.join_waitlist(d.drop.id, &bob, ask(l, 1)).await, &d, l);
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "refusals log nothing");
    assert_eq!(place(h, &d, &bob.id).await, None);

    // Two M cannot be had: Bob joins, and the free M is set aside for him.
    let mark = log_head(h).await;
    let bob_m = join(h, &d, &bob, m, 2).await;
    assert_eq!((bob_m.position, bob_m.set_aside), (1, 1), "{bob_m:?}");
    if h.exact_time() {
        assert_eq!(bob_m.joined_at, h.now().await);
    }
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["joined bob", "stock"]);
    let stock = stock.unwrap();
    assert_eq!(lengths(&stock), [1, 0]);
    assert_eq!((stock[0].reserved, stock[0].available()), (2, 0));
    assert_eq!(logged_since(h, mark, d.drop.id).await, [joined(&bob_m)]);
    let now = assert_stock(h, d.drop.id, &[(2, 2, 0), (1, 0, 0)]).await;
    assert_eq!(lengths(&now.variants), [1, 0]);
    assert_place(h, &d, &bob_m, 1, 1).await;
    // Nobody takes the set-aside unit past him.
    assert_eq!(
        code(store.reserve_with(d.drop.id, &carol, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );

    // Again alike: the same place, unchanged, nothing announced.
    let mark = log_head(h).await;
    let again = store
        .join_waitlist(d.drop.id, &bob, ask(m, 2))
        .await
        .unwrap();
    assert!(!again.changed && !again.replayed, "{again:?}");
    assert_eq!(again.value, bob_m);
    // Anything else: his place, whatever is free elsewhere.
    let current = assert_place(h, &d, &bob_m, 1, 1).await;
    for other in [ask(m, 1), ask(l, 1), ask(l, 2)] {
        assert_already_in_line(store.join_waitlist(d.drop.id, &bob, other).await, &current);
    }
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "nothing logged");

    // A sold-out variant: Dave joins at the head of L's line, nothing set
    // aside.
    hold(h, &d, &carol, l, 1).await;
    let _ = announced(h, &mut events).await;
    let mark = log_head(h).await;
    let dave_l = join(h, &d, &dave, l, 1).await;
    assert_eq!((dave_l.position, dave_l.set_aside), (1, 0));
    assert!(dave_l.ticket > bob_m.ticket, "tickets increase");
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["joined dave", "stock"]);
    assert_eq!(lengths(&stock.unwrap()), [1, 1]);
    assert_eq!(logged_since(h, mark, d.drop.id).await, [joined(&dave_l)]);
    let now = assert_stock(h, d.drop.id, &[(2, 2, 0), (1, 1, 0)]).await;
    assert_eq!(lengths(&now.variants), [1, 1]);
    assert_place(h, &d, &dave_l, 1, 0).await;
    verify(h).await;
}

/// A join checks its rules in the order of [`crate::waitlist`]: the drop,
/// the request, the drop's line switch, the window and the pause, the
/// buyer's place, the buyer's hold, the buyer's limit, then whether a
/// reserve would do. Each refusal below breaks its rule and every later
/// one; refusals announce and log nothing.
pub async fn waitlist_join_checks_in_documented_order(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let soon_at = now + chrono::Duration::hours(1);
    let sizes = || [NewVariant::new("M", 1), NewVariant::new("L", 1)];
    let closed = store
        .create_drop(
            NewDrop::with_variants("No line, soon", price(), sizes())
                .waitlist(false)
                .starts_at(soon_at)
                .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let soon = store
        .create_drop(
            NewDrop::with_variants("Soon", price(), sizes())
                .starts_at(soon_at)
                .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let ended = sized_drop(h, &[("M", 1)], 1).await;
    let paused = sized_drop(h, &[("M", 1)], 2).await;
    let d = sized_drop(h, &[("M", 1), ("L", 6)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol, dave, erin, frank, gina] =
        ["alice", "bob", "carol", "dave", "erin", "frank", "gina"].map(user);

    // Setting the scene. `closed` and `soon` are paused and not started;
    // `ended` is sold out and ended.
    store.set_paused(closed.drop.id, true, None).await.unwrap();
    store.set_paused(soon.drop.id, true, None).await.unwrap();
    hold(h, &ended, &alice, variant(&ended, 0), 1).await;
    store.end_drop(ended.drop.id, None).await.unwrap();
    // `paused` is sold out, Gina waits in its line, and it is paused.
    let pm = variant(&paused, 0);
    hold(h, &paused, &alice, pm, 1).await;
    join(h, &paused, &gina, pm, 1).await;
    store.set_paused(paused.drop.id, true, None).await.unwrap();
    // In `d`, M is sold out. Bob waits for one M and holds an L; Dave has
    // bought an L and holds another; Frank has bought an L; five L are
    // taken, one is free.
    hold(h, &d, &alice, m, 1).await;
    let bob_m = join(h, &d, &bob, m, 1).await;
    hold(h, &d, &bob, l, 1).await;
    let bought = hold(h, &d, &dave, l, 1).await;
    store.purchase(bought.id, &dave.id).await.unwrap();
    let dave_l = hold(h, &d, &dave, l, 1).await;
    let bought = hold(h, &d, &frank, l, 1).await;
    store.purchase(bought.id, &frank.id).await.unwrap();
    hold(h, &d, &carol, l, 1).await;

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    // The drop first, whatever is asked.
    assert_eq!(
        code(
            store
                .join_waitlist(DropId::new(), &erin, ask(VariantId::new(), 0))
                .await
        ),
        "DROP_NOT_FOUND"
    );
    // The request before the line switch, the window and the pause: the
    // variant before the quantity.
    let cm = variant(&closed, 0);
    assert_eq!(
        code(
            store
                .join_waitlist(closed.drop.id, &erin, ask(VariantId::new(), 0))
                .await
        ),
        "VARIANT_NOT_FOUND"
    );
    assert_invalid(
        store
            .join_waitlist(closed.drop.id, &erin, ReserveRequest::new().quantity(0))
            .await,
        "variantId",
    );
    assert_invalid(
        store.join_waitlist(closed.drop.id, &erin, ask(cm, 0)).await,
        "quantity",
    );
    assert_invalid(
        store.join_waitlist(closed.drop.id, &erin, ask(cm, 2)).await,
        "quantity",
    );
    // The line switch before the window and the pause.
    match error(store.join_waitlist(closed.drop.id, &erin, ask(cm, 1)).await) {
        DropError::WaitlistClosed { drop_id } => assert_eq!(drop_id, closed.drop.id),
        other => panic!("expected WAITLIST_CLOSED, got {other:?}"),
    }
    // The window before the pause; an ended drop is as closed.
    assert_not_active(
        store
            .join_waitlist(soon.drop.id, &erin, ask(variant(&soon, 0), 1))
            .await,
        NotActiveReason::NotStarted,
    );
    assert_not_active(
        store
            .join_waitlist(ended.drop.id, &erin, ask(variant(&ended, 0), 1))
            .await,
        NotActiveReason::Ended,
    );
    // The pause before the buyer's place: neither her place nor anything
    // else is answered.
    for wanted in [ask(pm, 1), ask(pm, 2)] {
        assert_eq!(
            code(store.join_waitlist(paused.drop.id, &gina, wanted).await),
            "DROP_PAUSED"
        );
    }
    // The buyer's place before their hold: Bob holds an L, but his place
    // answers.
    let bob_now = assert_place(h, &d, &bob_m, 1, 0).await;
    let same = store
        .join_waitlist(d.drop.id, &bob, ask(m, 1))
        .await
        .unwrap();
    assert!(!same.changed, "{same:?}");
    assert_eq!(same.value, bob_now);
    assert_already_in_line(
        store.join_waitlist(d.drop.id, &bob, ask(m, 2)).await,
        &bob_now,
    );
    // The hold before the limit: Dave's 1 bought + 2 would pass it.
    match error(store.join_waitlist(d.drop.id, &dave, ask(m, 2)).await) {
        DropError::HoldExists { reservation } => assert_eq!(*reservation, dave_l),
        other => panic!("expected HOLD_EXISTS, got {other:?}"),
    }
    // The limit before the stock: Frank may not have two more, sold out
    // (M) or not (L).
    for wanted in [ask(m, 2), ask(l, 2)] {
        match error(store.join_waitlist(d.drop.id, &frank, wanted).await) {
            DropError::BuyerLimitReached {
                drop_id,
                max_per_buyer,
                taken,
            } => assert_eq!((drop_id, max_per_buyer, taken), (d.drop.id, 2, 1)),
            other => panic!("expected BUYER_LIMIT_REACHED, got {other:?}"),
        }
    }
    // Last, the stock: an L is free for Erin.
    assert_not_needed(
        store.join_waitlist(d.drop.id, &erin, ask(l, 1)).await,
        &d,
        l,
    );
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "refusals log nothing");
    for (drop, buyer) in [(&d, &erin), (&d, &dave), (&d, &frank), (&closed, &erin)] {
        assert_not_in_line(h, drop, buyer).await;
    }
    assert_stock(h, d.drop.id, &[(1, 1, 0), (6, 3, 2)]).await;
    verify(h).await;
}

/// The line is served in the order buyers joined: three join a sold-out
/// variant (places 1, 2, 3); units released one by one become offered
/// holds for them in that order (a normal hold with the drop's window,
/// marked offered, the buyer's active hold), each announced as the
/// release, the offer, the buyer leaving the line (offered), then the
/// stock; the places behind move up. With the line empty, a unit freed
/// goes back on sale.
pub async fn waitlist_serves_in_line_order(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 3)], 1).await;
    let m = variant(&d, 0);
    let holders = ["alice", "bob", "carol"].map(user);
    let waiters = ["dave", "erin", "fred"].map(user);
    let mut holds = Vec::new();
    for b in &holders {
        holds.push(hold(h, &d, b, m, 1).await);
    }
    let mut places = Vec::new();
    for (i, w) in waiters.iter().enumerate() {
        let p = join(h, &d, w, m, 1).await;
        assert_eq!(p.position, i as u32 + 1, "{p:?}");
        places.push(p);
    }
    assert!(places.windows(2).all(|p| p[0].ticket < p[1].ticket));
    for (i, p) in places.iter().enumerate() {
        assert_place(h, &d, p, i as u32 + 1, 0).await;
    }
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(lengths(&now.variants), [3]);

    for turn in 0..3 {
        let mut events = store.subscribe();
        let mark = log_head(h).await;
        let (released, when) = around(h, store.release(holds[turn].id, &holders[turn].id)).await;
        released.unwrap();
        let offer = assert_offered(h, &d, &waiters[turn], m, 1, when).await;
        let (got, stock) = announced(h, &mut events).await;
        assert_eq!(
            got,
            [
                format!("released {}", holders[turn].id),
                format!("offered {}", waiters[turn].id),
                format!("left offered {}", waiters[turn].id),
                "stock".to_owned(),
            ]
        );
        let stock = stock.unwrap();
        assert_eq!(lengths(&stock), [2 - turn as u32]);
        assert_eq!((stock[0].reserved, stock[0].available()), (3, 0));
        let mut released_hold = holds[turn].clone();
        released_hold.status = ReservationStatus::Released;
        assert_eq!(
            logged_since(h, mark, d.drop.id).await,
            [
                hold_released(&released_hold),
                hold_created(&offer),
                left(&places[turn], LeaveReason::Offered),
            ]
        );
        assert_not_in_line(h, &d, &waiters[turn]).await;
        for (behind, p) in places.iter().enumerate().skip(turn + 1) {
            assert_place(h, &d, p, (behind - turn) as u32, 0).await;
        }
        let now = assert_stock(h, d.drop.id, &[(3, 3, 0)]).await;
        assert_eq!(lengths(&now.variants), [2 - turn as u32]);
    }
    // Nobody waits: Dave's unit, given back, is on sale again.
    let dave_hold = store
        .active_hold(d.drop.id, &waiters[0].id)
        .await
        .unwrap()
        .unwrap();
    let mut events = store.subscribe();
    store.release(dave_hold.id, &waiters[0].id).await.unwrap();
    let (got, _) = announced(h, &mut events).await;
    assert_eq!(got, ["released dave", "stock"]);
    assert_stock(h, d.drop.id, &[(3, 2, 0)]).await;
    hold(h, &d, &user("gina"), m, 1).await;
    verify(h).await;
}

/// No line-cutting: with someone waiting, a hold that runs out goes to
/// them, whether a sweep ends it or a reserve reclaims it lazily (no
/// sweep): the plain reserve answers `OUT_OF_STOCK`, and the variant
/// reads 0 available throughout, the overdue hold included.
pub async fn waitlist_no_line_cutting_on_expiry(h: &dyn Harness) {
    let store = h.store();
    let swept = expiring_sized_drop(h, &[("M", 1)], 1).await;
    let lazy = expiring_sized_drop(h, &[("M", 1)], 1).await;
    let (sm, lm) = (variant(&swept, 0), variant(&lazy, 0));
    let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(user);
    let a_swept = hold(h, &swept, &alice, sm, 1).await;
    let a_lazy = hold(h, &lazy, &alice, lm, 1).await;
    join(h, &swept, &bob, sm, 1).await;
    join(h, &lazy, &bob, lm, 1).await;
    advance_to(h, a_swept.expires_at.max(a_lazy.expires_at)).await;
    // Overdue, not reclaimed: still nothing free for open sale.
    for d in [&swept, &lazy] {
        let now = store.get_drop(d.drop.id).await.unwrap();
        assert_eq!(now.variants[0].available(), 0, "someone waits: {now:?}");
        assert_eq!(now.stock.available(), 0);
    }

    // Lazily: Carol's reserve reclaims Alice's hold, which goes to Bob.
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let (r, when) = around(
        h,
        store.reserve_with(lazy.drop.id, &carol, ask(lm, 1), None),
    )
    .await;
    assert_eq!(code(r), "OUT_OF_STOCK", "the line comes first");
    assert_offered(h, &lazy, &bob, lm, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["expired", "offered bob", "left offered bob", "stock"]);
    assert_eq!(lengths(&stock.unwrap()), [0]);
    assert_eq!(
        kinds_since(h, mark, lazy.drop.id).await,
        ["holdExpired", "holdCreated", "waitlistLeft"]
    );
    assert_eq!(
        store.get_reservation(a_lazy.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(
        store.active_hold(lazy.drop.id, &carol.id).await.unwrap(),
        None
    );
    assert_stock(h, lazy.drop.id, &[(1, 1, 0)]).await;

    // Swept: Alice's other hold goes to Bob too.
    let mark = log_head(h).await;
    let (swept_n, when) = around(h, store.expire_due(100)).await;
    assert_eq!(swept_n.unwrap(), 1, "only Alice's hold on the swept drop");
    assert_offered(h, &swept, &bob, sm, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["expired", "offered bob", "left offered bob", "stock"]);
    assert_eq!(lengths(&stock.unwrap()), [0]);
    assert_eq!(
        kinds_since(h, mark, swept.drop.id).await,
        ["holdExpired", "holdCreated", "waitlistLeft"]
    );
    assert_eq!(
        code(
            store
                .reserve_with(swept.drop.id, &dave, ask(sm, 1), None)
                .await
        ),
        "OUT_OF_STOCK"
    );
    assert_stock(h, swept.drop.id, &[(1, 1, 0)]).await;
    assert_not_in_line(h, &swept, &bob).await;
    assert_not_in_line(h, &lazy, &bob).await;
    verify(h).await;
}

/// A head who meanwhile bought so much that the quantity they wait for
/// would pass `maxPerBuyer`, or who holds another variant of the drop, is
/// skipped: they leave the line (skipped), and the next in line gets the
/// units.
pub async fn waitlist_skips_buyers_at_their_limit_or_holding(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1), ("L", 3)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol, dave] = ["alice", "bob", "carol", "dave"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let bob_m = join(h, &d, &bob, m, 2).await;
    let carol_m = join(h, &d, &carol, m, 1).await;
    let dave_m = join(h, &d, &dave, m, 1).await;
    // Waiting does not stop them buying elsewhere in the drop: Bob buys
    // an L (1 bought + 2 asked > 2), Carol holds one.
    let b = hold(h, &d, &bob, l, 1).await;
    store.purchase(b.id, &bob.id).await.unwrap();
    hold(h, &d, &carol, l, 1).await;
    // Units freed beyond the quantity: Bob's would have been covered.
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let (r, when) = around(h, store.release(a.id, &alice.id)).await;
    r.unwrap();
    let offer = assert_offered(h, &d, &dave, m, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        [
            "released alice",
            "left skipped bob",
            "left skipped carol",
            "offered dave",
            "left offered dave",
            "stock"
        ]
    );
    assert_eq!(lengths(&stock.unwrap()), [0, 0]);
    let logged = logged_since(h, mark, d.drop.id).await;
    assert_eq!(
        logged[1..],
        [
            left(&bob_m, LeaveReason::Skipped),
            left(&carol_m, LeaveReason::Skipped),
            hold_created(&offer),
            left(&dave_m, LeaveReason::Offered),
        ]
    );
    assert_eq!(logged[0].kind(), "holdReleased");
    for b in [&bob, &carol] {
        assert_not_in_line(h, &d, b).await;
    }
    assert_eq!(
        store.active_hold(d.drop.id, &bob.id).await.unwrap(),
        None,
        "a skipped buyer gets nothing"
    );
    assert_stock(h, d.drop.id, &[(1, 1, 0), (3, 1, 1)]).await;
    verify(h).await;
}

/// An offered hold that runs out goes to the next in line; the buyer it
/// was offered to is not put back.
pub async fn waitlist_offer_that_expires_goes_to_the_next(h: &dyn Harness) {
    let store = h.store();
    let d = expiring_sized_drop(h, &[("M", 1)], 1).await;
    let m = variant(&d, 0);
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    join(h, &d, &bob, m, 1).await;
    let carol_m = join(h, &d, &carol, m, 1).await;
    let (r, when) = around(h, store.release(a.id, &alice.id)).await;
    r.unwrap();
    let bob_offer = assert_offered(h, &d, &bob, m, 1, when).await;
    assert_place(h, &d, &carol_m, 1, 0).await;
    advance_to(h, bob_offer.expires_at).await;
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let (swept, when) = around(h, store.expire_due(100)).await;
    assert_eq!(swept.unwrap(), 1);
    assert_offered(h, &d, &carol, m, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        ["expired", "offered carol", "left offered carol", "stock"]
    );
    assert_eq!(lengths(&stock.unwrap()), [0]);
    assert_eq!(
        kinds_since(h, mark, d.drop.id).await,
        ["holdExpired", "holdCreated", "waitlistLeft"]
    );
    assert_eq!(
        store.get_reservation(bob_offer.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(
        code(store.purchase(bob_offer.id, &bob.id).await),
        "RESERVATION_EXPIRED"
    );
    assert_not_in_line(h, &d, &bob).await;
    assert_eq!(store.active_hold(d.drop.id, &bob.id).await.unwrap(), None);
    assert_stock(h, d.drop.id, &[(1, 1, 0)]).await;
    verify(h).await;
}

/// Freed units are set aside for the head until their quantity is
/// covered: one of two freed sets one aside (the variant counts it as
/// reserved, 0 available, nobody behind is served, a plain reserve is
/// refused); the second makes one offered hold of both.
pub async fn waitlist_sets_units_aside_until_covered(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 3)], 2).await;
    let m = variant(&d, 0);
    let [alice, bob, carol, dave, erin, frank] =
        ["alice", "bob", "carol", "dave", "erin", "frank"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let b = hold(h, &d, &bob, m, 1).await;
    hold(h, &d, &carol, m, 1).await;
    let dave_m = join(h, &d, &dave, m, 2).await;
    let erin_m = join(h, &d, &erin, m, 1).await;

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    store.release(a.id, &alice.id).await.unwrap();
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["released alice", "stock"], "nobody served yet");
    let stock = stock.unwrap();
    assert_eq!(
        (
            stock[0].reserved,
            stock[0].available(),
            stock[0].waitlist_length
        ),
        (3, 0, 2)
    );
    assert_eq!(kinds_since(h, mark, d.drop.id).await, ["holdReleased"]);
    assert_place(h, &d, &dave_m, 1, 1).await;
    assert_place(h, &d, &erin_m, 2, 0).await;
    assert_eq!(store.active_hold(d.drop.id, &dave.id).await.unwrap(), None);
    assert_eq!(store.active_hold(d.drop.id, &erin.id).await.unwrap(), None);
    assert_stock(h, d.drop.id, &[(3, 3, 0)]).await;
    assert_eq!(
        code(store.reserve_with(d.drop.id, &frank, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );

    let mark = log_head(h).await;
    let (r, when) = around(h, store.release(b.id, &bob.id)).await;
    r.unwrap();
    let offer = assert_offered(h, &d, &dave, m, 2, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        ["released bob", "offered dave", "left offered dave", "stock"]
    );
    assert_eq!(lengths(&stock.unwrap()), [1]);
    let logged = logged_since(h, mark, d.drop.id).await;
    assert_eq!(
        logged[1..],
        [hold_created(&offer), left(&dave_m, LeaveReason::Offered)]
    );
    assert_not_in_line(h, &d, &dave).await;
    assert_place(h, &d, &erin_m, 1, 0).await;
    assert_stock(h, d.drop.id, &[(3, 3, 0)]).await;
    verify(h).await;
}

/// Leaving: the places behind move up; a head leaving with units set
/// aside passes them to the next in line, or back on sale when nobody is
/// left; leaving when in no line answers `None`; an unknown drop is
/// `DROP_NOT_FOUND`.
pub async fn waitlist_leaving(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 2)], 2).await;
    let m = variant(&d, 0);
    let [alice, bob, carol, dave, erin, frank] =
        ["alice", "bob", "carol", "dave", "erin", "frank"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let e = hold(h, &d, &erin, m, 1).await;
    let bob_m = join(h, &d, &bob, m, 2).await;
    let carol_m = join(h, &d, &carol, m, 1).await;
    let dave_m = join(h, &d, &dave, m, 1).await;

    // Carol, second, leaves: Dave moves up.
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let gone = store.leave_waitlist(d.drop.id, &carol.id).await.unwrap();
    let mut had = carol_m.clone();
    had.position = 2;
    assert_eq!(gone, Some(had), "the place she had");
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["left left carol", "stock"]);
    assert_eq!(lengths(&stock.unwrap()), [2]);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [left(&carol_m, LeaveReason::Left)]
    );
    assert_place(h, &d, &bob_m, 1, 0).await;
    assert_place(h, &d, &dave_m, 2, 0).await;
    // Again, or never in line: nothing.
    let mark = log_head(h).await;
    assert_eq!(
        store.leave_waitlist(d.drop.id, &carol.id).await.unwrap(),
        None
    );
    assert_eq!(
        store.leave_waitlist(d.drop.id, &frank.id).await.unwrap(),
        None
    );
    assert_eq!(
        code(store.leave_waitlist(DropId::new(), &bob.id).await),
        "DROP_NOT_FOUND"
    );
    assert_eq!(
        code(store.waitlist_place(DropId::new(), &bob.id).await),
        "DROP_NOT_FOUND"
    );
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty());

    // Bob, the head, has one of his two set aside; he leaves and it goes
    // to Dave, next.
    store.release(a.id, &alice.id).await.unwrap();
    let _ = announced(h, &mut events).await;
    assert_place(h, &d, &bob_m, 1, 1).await;
    let mark = log_head(h).await;
    let (gone, when) = around(h, store.leave_waitlist(d.drop.id, &bob.id)).await;
    let mut had = bob_m.clone();
    had.set_aside = 1;
    assert_eq!(gone.unwrap(), Some(had));
    let offer = assert_offered(h, &d, &dave, m, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        [
            "left left bob",
            "offered dave",
            "left offered dave",
            "stock"
        ]
    );
    assert_eq!(lengths(&stock.unwrap()), [0]);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [
            left(&bob_m, LeaveReason::Left),
            hold_created(&offer),
            left(&dave_m, LeaveReason::Offered),
        ]
    );
    assert_stock(h, d.drop.id, &[(2, 2, 0)]).await;

    // Frank waits for two, gets one set aside, and leaves: nobody is
    // left, so it is on sale again.
    let frank_m = join(h, &d, &frank, m, 2).await;
    store.release(e.id, &erin.id).await.unwrap();
    assert_place(h, &d, &frank_m, 1, 1).await;
    let _ = announced(h, &mut events).await;
    store.leave_waitlist(d.drop.id, &frank.id).await.unwrap();
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(got, ["left left frank", "stock"]);
    let stock = stock.unwrap();
    assert_eq!((stock[0].available(), stock[0].waitlist_length), (1, 0));
    assert_stock(h, d.drop.id, &[(2, 1, 0)]).await;
    hold(h, &d, &carol, m, 1).await;
    verify(h).await;
}

/// A cancelled purchase and a stock increase serve the line, even while
/// the drop is paused (a pause stops open sale, not the line): the
/// freeing change first, then each offer and its leaving, then the stock.
pub async fn waitlist_served_by_cancellation_and_added_stock(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1), ("L", 1)], 1).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol, dave, erin] = ["alice", "bob", "carol", "dave", "erin"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let p = store.purchase(a.id, &alice.id).await.unwrap().purchase;
    let bob_m = join(h, &d, &bob, m, 1).await;
    hold(h, &d, &carol, l, 1).await;
    let dave_l = join(h, &d, &dave, l, 1).await;
    let erin_l = join(h, &d, &erin, l, 1).await;
    store.set_paused(d.drop.id, true, None).await.unwrap();

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let (r, when) = around(h, store.cancel_purchase(p.id, None)).await;
    assert!(r.unwrap().changed);
    let offer = assert_offered(h, &d, &bob, m, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        [
            "cancelled alice",
            "offered bob",
            "left offered bob",
            "stock"
        ]
    );
    assert_eq!(lengths(&stock.unwrap()), [0, 2]);
    let logged = logged_since(h, mark, d.drop.id).await;
    assert_eq!(logged[0].kind(), "purchaseCancelled");
    assert_eq!(
        logged[1..],
        [hold_created(&offer), left(&bob_m, LeaveReason::Offered)]
    );
    assert_stock(h, d.drop.id, &[(1, 1, 0), (1, 1, 0)]).await;

    let mark = log_head(h).await;
    let patch = DropPatch::new().variant_stock(l, 4);
    let (r, when) = around(h, store.update_drop(d.drop.id, &patch, None)).await;
    assert!(r.unwrap().changed);
    let dave_offer = assert_offered(h, &d, &dave, l, 1, when).await;
    let erin_offer = assert_offered(h, &d, &erin, l, 1, when).await;
    let (got, stock) = announced(h, &mut events).await;
    assert_eq!(
        got,
        [
            "updated",
            "offered dave",
            "left offered dave",
            "offered erin",
            "left offered erin",
            "stock"
        ]
    );
    let stock = stock.unwrap();
    assert_eq!(lengths(&stock), [0, 0]);
    assert_eq!((stock[1].reserved, stock[1].available()), (3, 1));
    let logged = logged_since(h, mark, d.drop.id).await;
    assert_eq!(logged[0].kind(), "dropUpdated");
    assert_eq!(
        logged[1..],
        [
            hold_created(&dave_offer),
            left(&dave_l, LeaveReason::Offered),
            hold_created(&erin_offer),
            left(&erin_l, LeaveReason::Offered),
        ]
    );
    assert_stock(h, d.drop.id, &[(1, 1, 0), (4, 3, 0)]).await;
    verify(h).await;
}

/// After the sale has ended, freed units are not offered: the buyer stays
/// in line with no hold, and the unit is not on sale either.
pub async fn waitlist_no_offers_after_the_end(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1)], 1).await;
    let m = variant(&d, 0);
    let [alice, bob] = ["alice", "bob"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let bob_m = join(h, &d, &bob, m, 1).await;
    store.end_drop(d.drop.id, None).await.unwrap();
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    store.release(a.id, &alice.id).await.unwrap();
    let (got, _) = announced(h, &mut events).await;
    assert_eq!(got, ["released alice", "stock"], "no offer after the end");
    assert_eq!(kinds_since(h, mark, d.drop.id).await, ["holdReleased"]);
    assert_eq!(store.active_hold(d.drop.id, &bob.id).await.unwrap(), None);
    let still = place(h, &d, &bob.id).await.expect("still in line");
    assert_eq!(
        (still.ticket, still.position, still.quantity),
        (bob_m.ticket, 1, 1)
    );
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(now.variants[0].available(), 0, "set aside, not on sale");
    assert_eq!(now.variants[0].waitlist_length, 1);
    verify(h).await;
}

/// The log of a join and an offer: `waitlistJoined` with the buyer's
/// display name and ticket; then, when a release serves the line,
/// `holdReleased`, `holdCreated` (offered) and `waitlistLeft` (offered)
/// in that order, each equal to what the store answered, at the store's
/// time.
pub async fn waitlist_log_records_joins_and_offers(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1)], 1).await;
    let m = variant(&d, 0);
    let alice = user("alice");
    let bob = Buyer::new(
        BuyerId::parse("id-of-bob").unwrap(),
        Username::parse("bob").unwrap(),
    );
    let a = hold(h, &d, &alice, m, 1).await;
    let mark = log_head(h).await;
    let bob_m = join(h, &d, &bob, m, 1).await;
    let entries = log_after(h, mark).await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].drop_id, d.drop.id);
    assert_eq!(
        entries[0].change,
        Change::WaitlistJoined {
            buyer_id: bob.id.clone(),
            display_name: bob.display_name.clone(),
            variant_id: m,
            quantity: 1,
            ticket: bob_m.ticket,
        }
    );
    if h.exact_time() {
        assert_eq!(entries[0].at, h.now().await);
        assert_eq!(entries[0].at, bob_m.joined_at);
    }

    let mark = log_head(h).await;
    let (r, when) = around(h, store.release(a.id, &alice.id)).await;
    let released = r.unwrap();
    let offer = assert_offered(h, &d, &bob, m, 1, when).await;
    let entries = log_after(h, mark).await;
    assert!(entries.windows(2).all(|p| p[0].seq < p[1].seq));
    let changes: Vec<Change> = entries.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        changes,
        [
            hold_released(&released),
            hold_created(&offer),
            Change::WaitlistLeft {
                buyer_id: bob.id.clone(),
                variant_id: m,
                quantity: 1,
                ticket: bob_m.ticket,
                reason: LeaveReason::Offered,
            },
        ]
    );
    assert!(matches!(
        changes[1],
        Change::HoldCreated { offered: true, .. }
    ));
    for e in &entries {
        assert_eq!(e.drop_id, d.drop.id);
        if h.exact_time() {
            assert_eq!(e.at, offer.created_at, "one change, one time");
        }
    }
    assert_eq!(log_head(h).await, entries.last().unwrap().seq);
    // The drop's own history tells the same.
    let history = store
        .drop_history(d.drop.id, mark, MAX_LOG_PAGE)
        .await
        .unwrap();
    assert_eq!(history, entries);
    verify(h).await;
}

/// The overview shows a viewer their place in the drop's line, and only
/// theirs; once served, their offered hold instead.
pub async fn waitlist_in_the_overview(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 1)], 1).await;
    let m = variant(&d, 0);
    let [alice, bob] = ["alice", "bob"].map(user);
    let a = hold(h, &d, &alice, m, 1).await;
    let bob_m = join(h, &d, &bob, m, 1).await;
    let seen = |all: Vec<crate::DropOverview>| {
        all.into_iter()
            .find(|o| o.state.drop.id == d.drop.id)
            .expect("the drop is listed")
    };
    let mine = seen(store.overview(Some(&bob.id)).await.unwrap());
    assert_eq!(mine.user_waitlist, Some(bob_m.clone()));
    assert_eq!(mine.user_reservation, None);
    assert_eq!(mine.state.variants[0].waitlist_length, 1);
    let hers = seen(store.overview(Some(&alice.id)).await.unwrap());
    assert_eq!(hers.user_waitlist, None);
    assert_eq!(hers.user_reservation, Some(a.clone()));
    let anyone = seen(store.overview(None).await.unwrap());
    assert_eq!(
        (anyone.user_waitlist, anyone.user_reservation),
        (None, None)
    );

    store.release(a.id, &alice.id).await.unwrap();
    let offer = store.active_hold(d.drop.id, &bob.id).await.unwrap();
    assert!(offer.as_ref().is_some_and(|r| r.offered), "{offer:?}");
    let mine = seen(store.overview(Some(&bob.id)).await.unwrap());
    assert_eq!(mine.user_waitlist, None);
    assert_eq!(mine.user_reservation, offer);
    verify(h).await;
}

/// Per variant, the lines as the log tells them, checked entry by entry.
#[derive(Default)]
struct LogReplay {
    /// Each variant's line: ticket → (buyer, quantity).
    lines: HashMap<VariantId, BTreeMap<u64, (BuyerId, u32)>>,
    /// Each active hold: id → (variant, units).
    holds: HashMap<crate::ReservationId, (VariantId, u32)>,
    /// Units held and sold, per variant.
    held: HashMap<VariantId, u32>,
    sold: HashMap<VariantId, u32>,
    /// Each variant's total (the race never edits them).
    totals: HashMap<VariantId, u32>,
    /// Buyers offered a hold, in the order offered.
    offered: Vec<BuyerId>,
    /// An offer made by the previous entry, waiting for its leaving entry.
    pending_offer: Option<(BuyerId, VariantId, u32)>,
}

impl LogReplay {
    fn apply(&mut self, e: &LogEntry) {
        if let Some((buyer, v, q)) = self.pending_offer.take() {
            match &e.change {
                Change::WaitlistLeft {
                    buyer_id,
                    variant_id,
                    quantity,
                    reason: LeaveReason::Offered,
                    ..
                } => assert_eq!(
                    (buyer_id, *variant_id, *quantity),
                    (&buyer, v, q),
                    "an offer is followed by its buyer leaving the line: {e:?}"
                ),
                other => panic!("an offer not followed by its leaving: {other:?}"),
            }
        }
        match &e.change {
            // The race edits no stock: the totals stay as created.
            Change::DropCreated { .. }
            | Change::DropUpdated { .. }
            | Change::DrawCompleted { .. } => {}
            Change::WaitlistJoined {
                buyer_id,
                variant_id,
                quantity,
                ticket,
                ..
            } => {
                let line = self.lines.entry(*variant_id).or_default();
                assert!(
                    line.keys().all(|t| t < ticket),
                    "a new ticket is the line's highest: {e:?}"
                );
                line.insert(*ticket, (buyer_id.clone(), *quantity));
            }
            Change::WaitlistLeft {
                buyer_id,
                variant_id,
                ticket,
                reason,
                ..
            } => {
                let line = self.lines.entry(*variant_id).or_default();
                if *reason != LeaveReason::Left {
                    assert_eq!(
                        line.keys().next(),
                        Some(ticket),
                        "offers and skips serve the head of the line: {e:?}"
                    );
                }
                let (who, _) = line.remove(ticket).expect("leaving a place held");
                assert_eq!(&who, buyer_id);
            }
            Change::HoldCreated {
                reservation_id,
                buyer_id,
                variant_id,
                quantity,
                offered,
                ..
            } => {
                let line = self.lines.entry(*variant_id).or_default();
                if *offered {
                    let head = line.values().next().expect("an offer needs a line");
                    assert_eq!(
                        (&head.0, head.1),
                        (buyer_id, *quantity),
                        "an offer goes to the head, for its quantity: {e:?}"
                    );
                    assert!(!self.offered.contains(buyer_id), "{buyer_id} offered twice");
                    self.offered.push(buyer_id.clone());
                    self.pending_offer = Some((buyer_id.clone(), *variant_id, *quantity));
                } else {
                    assert!(
                        line.is_empty(),
                        "a plain hold while {} wait: {e:?}",
                        line.len()
                    );
                }
                self.holds.insert(*reservation_id, (*variant_id, *quantity));
                *self.held.entry(*variant_id).or_default() += quantity;
            }
            Change::HoldReleased { reservation_id, .. }
            | Change::HoldExpired { reservation_id, .. } => {
                let (v, q) = self.holds.remove(reservation_id).expect("an active hold");
                *self.held.entry(v).or_default() -= q;
            }
            Change::PurchaseCompleted { reservation_id, .. } => {
                let (v, q) = self.holds.remove(reservation_id).expect("an active hold");
                *self.held.entry(v).or_default() -= q;
                *self.sold.entry(v).or_default() += q;
            }
            Change::PurchaseCancelled {
                variant_id,
                quantity,
                ..
            } => {
                *self.sold.entry(*variant_id).or_default() -= quantity;
            }
        }
        for (v, total) in &self.totals {
            let used =
                self.held.get(v).copied().unwrap_or(0) + self.sold.get(v).copied().unwrap_or(0);
            assert!(used <= *total, "oversold at {e:?}: {used} of {total}");
        }
    }
}

/// The line raced: 16 buyers join two sold-out variants (1 or 2 units
/// each) while tasks release, buy, reserve and sweep, and time passes so
/// that holds run out. Replaying the drop's log entry by entry: no
/// variant is ever oversold, every offer goes to the head of its line
/// (in ticket order, minus those skipped or gone) and is followed by its
/// leaving, no plain hold is made while the variant's line is not empty,
/// and nobody is offered twice; the places the store shows at the end are
/// the log's lines.
pub async fn waitlist_race_keeps_the_order(h: &dyn Harness) {
    const WAITERS: usize = 16;
    const EARLY: usize = 12;
    const CHURNERS: usize = 7;
    const ROUNDS: usize = 6;
    let store = h.store();
    let d = expiring_sized_drop(h, &[("M", 4), ("L", 3)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let holders: Vec<Buyer> = (0..7).map(|i| user(&format!("holder{i}"))).collect();
    let mut first_holds = Vec::new();
    for (i, b) in holders.iter().enumerate() {
        first_holds.push(hold(h, &d, b, if i < 4 { m } else { l }, 1).await);
    }
    let waiters: Vec<Buyer> = (0..WAITERS).map(|i| user(&format!("waiter{i}"))).collect();
    let wanted = |i: usize| {
        ask(
            if i.is_multiple_of(2) { m } else { l },
            1 + (i % 4 == 1) as u32,
        )
    };
    // Most join together while nothing is free: every join succeeds.
    let joins = join_all(waiters[..EARLY].iter().enumerate().map(|(i, w)| {
        let (store, w, wanted) = (store.clone(), w.clone(), wanted(i));
        tokio::spawn(async move { store.join_waitlist(d.drop.id, &w, wanted).await })
    }))
    .await;
    for j in joins {
        assert!(j.expect("task").expect("join a sold-out variant").changed);
    }
    // Then the rest join while units are given back, offers bought or
    // given back, walk-ins try their luck, sweeps run and time passes.
    let tasks: Vec<_> = waiters
        .iter()
        .enumerate()
        .skip(EARLY)
        .map(|(i, w)| {
            let (store, w, wanted) = (store.clone(), w.clone(), wanted(i));
            tokio::spawn(async move {
                match store.join_waitlist(d.drop.id, &w, wanted).await {
                    Ok(_) => {}
                    // Units may be free for a moment: a reserve would do.
                    Err(DropError::WaitlistNotNeeded { .. }) => {}
                    Err(e) => panic!("join: {e:?}"),
                }
            })
        })
        .chain(first_holds.into_iter().zip(holders.clone()).map(|(r, b)| {
            let store = store.clone();
            tokio::spawn(async move {
                let _ = store.release(r.id, &b.id).await;
            })
        }))
        .chain((0..CHURNERS).map(|t| {
            // Each churner serves offers (buys some, gives back others)
            // and tries plain reserves, which the line refuses.
            let (store, waiters) = (store.clone(), waiters.clone());
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    for (i, w) in waiters.iter().enumerate().skip(t).step_by(CHURNERS) {
                        if let Some(r) = store.active_hold(d.drop.id, &w.id).await.unwrap() {
                            if (i + round) % 3 == 0 {
                                let _ = store.purchase(r.id, &w.id).await;
                            } else {
                                let _ = store.release(r.id, &w.id).await;
                            }
                        }
                    }
                    let b = user(&format!("walkin{t}x{round}"));
                    let v = if round % 2 == 0 { m } else { l };
                    match store.reserve_with(d.drop.id, &b, ask(v, 1), None).await {
                        Ok(r) => {
                            let _ = store.release(r.reservation.id, &b.id).await;
                        }
                        Err(DropError::OutOfStock { .. }) => {}
                        Err(e) => panic!("reserve: {e:?}"),
                    }
                    store.expire_due(100).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        }))
        .collect();
    // Time passes meanwhile, so offers left alone run out.
    let clock = async {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            h.advance(h.hold() / 3).await;
            store.expire_due(100).await.unwrap();
        }
    };
    let (results, ()) = tokio::join!(join_all(tasks), clock);
    for r in results {
        r.expect("task");
    }
    // Everything left runs out.
    h.advance(h.hold()).await;
    if !h.exact_time() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Offers this sweep makes run from now on: it ends.
    while store.expire_due(100).await.unwrap() > 0 {}

    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .drop_history(d.drop.id, after, MAX_LOG_PAGE)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        history.extend(page);
    }
    let mut replay = LogReplay {
        totals: d.variants.iter().map(|v| (v.id, v.total)).collect(),
        ..LogReplay::default()
    };
    for e in &history {
        replay.apply(e);
    }
    assert!(
        replay.pending_offer.is_none(),
        "the last offer left no trace"
    );
    assert!(
        !replay.offered.is_empty(),
        "the line was served: {history:?}"
    );
    let now = store.get_drop(d.drop.id).await.unwrap();
    for v in &now.variants {
        assert!(v.reserved + v.sold <= v.total, "oversold: {v:?}");
        let line = replay.lines.get(&v.id).map_or(0, |l| l.len()) as u32;
        assert_eq!(v.waitlist_length, line, "the log's line for {}", v.id);
    }
    let mut in_line: HashSet<BuyerId> = HashSet::new();
    for (v, line) in &replay.lines {
        for (position, (buyer, quantity)) in line.values().enumerate() {
            let got = store
                .waitlist_place(d.drop.id, buyer)
                .await
                .unwrap()
                .expect("in line, as the log says");
            assert_eq!(
                (got.variant_id, got.quantity, got.position),
                (*v, *quantity, position as u32 + 1)
            );
            in_line.insert(buyer.clone());
        }
    }
    for w in &waiters {
        if !in_line.contains(&w.id) {
            assert_not_in_line(h, &d, w).await;
        }
    }
    verify(h).await;
}
