//! The durable event log: what each operation appends (and what it does
//! not), reading it in pages, named cursors and their leases, and a
//! follower racing many writers that must never miss an entry.

use super::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use uuid::Uuid;

use crate::{
    BuyerId, Change, CursorClaim, DropAction, DropPatch, LogEntry, MAX_LOG_PAGE, PurchaseId,
    Reservation, ReservationId,
};

/// Every entry numbered above `after`, read page by page.
async fn entries_after(h: &dyn Harness, after: u64) -> Vec<LogEntry> {
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
        out.extend(page);
    }
}

/// The whole log.
async fn whole_log(h: &dyn Harness) -> Vec<LogEntry> {
    entries_after(h, 0).await
}

/// The log's head now.
async fn head(h: &dyn Harness) -> u64 {
    h.store().log_head().await.expect("log_head")
}

/// Asserts that `entries` are numbered in strictly increasing order.
fn assert_increasing(entries: &[LogEntry]) {
    for pair in entries.windows(2) {
        assert!(
            pair[0].seq < pair[1].seq,
            "seq must strictly increase: {} then {}",
            pair[0].seq,
            pair[1].seq
        );
    }
}

/// What was logged since `mark` (a head read before the operation):
/// asserts every entry concerns `drop_id`, is numbered above `mark` in
/// increasing order, and, under an exact clock, carries the store's time.
async fn logged_since(h: &dyn Harness, mark: u64, drop_id: DropId) -> Vec<Change> {
    let got = entries_after(h, mark).await;
    assert_increasing(&got);
    let now = h.now().await;
    for e in &got {
        assert!(e.seq > mark, "entry {} at or below the head {mark}", e.seq);
        assert_eq!(e.drop_id, drop_id, "entry about another drop: {e:?}");
        if h.exact_time() {
            assert_eq!(e.at, now, "the store's time when it committed: {e:?}");
        }
    }
    if let Some(last) = got.last() {
        assert_eq!(head(h).await, last.seq, "log_head is the last seq");
    }
    got.into_iter().map(|e| e.change).collect()
}

/// Asserts that nothing was logged since `mark`.
async fn assert_nothing_logged(h: &dyn Harness, mark: u64, what: &str) {
    let got = entries_after(h, mark).await;
    assert!(got.is_empty(), "{what} logged {got:?}");
    assert_eq!(head(h).await, mark, "{what} moved the head");
}

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

fn hold_expired(r: &Reservation) -> Change {
    Change::HoldExpired {
        reservation_id: r.id,
        buyer_id: r.buyer_id.clone(),
        variant_id: r.variant_id,
        quantity: r.quantity,
    }
}

fn hold_released(r: &Reservation) -> Change {
    Change::HoldReleased {
        reservation_id: r.id,
        buyer_id: r.buyer_id.clone(),
        variant_id: r.variant_id,
        quantity: r.quantity,
    }
}

fn updated(action: DropAction, d: &DropState) -> Change {
    Change::DropUpdated {
        action,
        drop: d.drop.clone(),
    }
}

/// A fresh store's log is empty; creating a drop, holding, buying several
/// units and cancelling the purchase each log exactly one entry, equal to
/// what the store answered.
pub async fn log_records_holds_purchases_and_cancellations(h: &dyn Harness) {
    let store = h.store();
    assert_eq!(head(h).await, 0, "a fresh store's log is empty");
    assert!(whole_log(h).await.is_empty());

    let d = sized_drop(h, &[("M", 3), ("L", 3)], 2).await;
    let got = logged_since(h, 0, d.drop.id).await;
    assert_eq!(
        got,
        [Change::DropCreated {
            drop: d.drop.clone()
        }]
    );

    let alice = Buyer::new(
        BuyerId::parse("id-of-alice").unwrap(),
        Username::parse("alice").unwrap(),
    );
    let mark = head(h).await;
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 1), 2), None)
        .await
        .unwrap()
        .reservation;
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [hold_created(&hold)]
    );

    let mark = head(h).await;
    let bought = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    let amount = price().times(2).unwrap();
    assert_eq!(bought.amount_paid, amount);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [Change::PurchaseCompleted {
            purchase_id: bought.id,
            reservation_id: hold.id,
            buyer_id: alice.id.clone(),
            display_name: alice.display_name.clone(),
            variant_id: variant(&d, 1),
            quantity: 2,
            amount,
        }]
    );

    let mark = head(h).await;
    let cancelled = store.cancel_purchase(bought.id, None).await.unwrap();
    assert!(cancelled.changed);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [Change::PurchaseCancelled {
            purchase_id: bought.id,
            reservation_id: hold.id,
            buyer_id: alice.id.clone(),
            variant_id: variant(&d, 1),
            quantity: 2,
            amount,
        }]
    );

    // The whole log, read at once, is those four, in order.
    let all = whole_log(h).await;
    assert_increasing(&all);
    let kinds: Vec<&str> = all.iter().map(|e| e.change.kind()).collect();
    assert_eq!(
        kinds,
        [
            "dropCreated",
            "holdCreated",
            "purchaseCompleted",
            "purchaseCancelled"
        ]
    );
    if h.exact_time() {
        assert!(all.windows(2).all(|p| p[0].at <= p[1].at), "{all:?}");
    }
    verify(h).await;
}

/// Releasing logs `HoldReleased`; a hold that runs out logs
/// `HoldExpired`, whether the sweeper ends it or a reserve reclaims it,
/// and a reserve that reclaims logs the expiry before its own hold.
pub async fn log_records_releases_and_expiries(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 3).await;
    let alice = user("alice");
    let hold = store.reserve(d.drop.id, &alice).await.unwrap().reservation;
    let mark = head(h).await;
    store.release(hold.id, &alice.id).await.unwrap();
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [hold_released(&hold)]
    );

    // Through the sweeper.
    let e = expiring_drop(h, 5).await;
    let mut holds = Vec::new();
    for name in ["bob", "carol"] {
        holds.push(
            store
                .reserve(e.drop.id, &user(name))
                .await
                .unwrap()
                .reservation,
        );
    }
    advance_to(h, holds.iter().map(|r| r.expires_at).max().unwrap()).await;
    let mark = head(h).await;
    assert_eq!(store.expire_due(100).await.unwrap(), 2);
    let got = logged_since(h, mark, e.drop.id).await;
    assert_eq!(got.len(), 2, "{got:?}");
    for r in &holds {
        assert!(got.contains(&hold_expired(r)), "{r:?} in {got:?}");
    }
    let mark = head(h).await;
    assert_eq!(store.expire_due(100).await.unwrap(), 0);
    assert_nothing_logged(h, mark, "a sweep with nothing due").await;

    // Through a reserve that needs the overdue hold's unit.
    let one = expiring_drop(h, 1).await;
    let dave_hold = store
        .reserve(one.drop.id, &user("dave"))
        .await
        .unwrap()
        .reservation;
    advance_to(h, dave_hold.expires_at).await;
    let mark = head(h).await;
    let erin_hold = store
        .reserve(one.drop.id, &user("erin"))
        .await
        .expect("an overdue hold never blocks")
        .reservation;
    assert_eq!(
        logged_since(h, mark, one.drop.id).await,
        [hold_expired(&dave_hold), hold_created(&erin_hold)],
        "the expiry first, then the new hold"
    );
    verify(h).await;
}

/// Editing, pausing, resuming and ending log `DropUpdated` with the
/// action and the drop as it is after the change.
pub async fn log_records_admin_changes(h: &dyn Harness) {
    let store = h.store();
    let d = new_drop(h, 4).await;
    let mark = head(h).await;
    let edited = store
        .update_drop(
            d.drop.id,
            &DropPatch::new().name("Renamed").total_stock(6),
            None,
        )
        .await
        .unwrap();
    assert!(edited.changed);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [updated(DropAction::Edited, &edited.value)]
    );
    let mark = head(h).await;
    let paused = store.set_paused(d.drop.id, true, None).await.unwrap();
    assert!(paused.value.drop.paused);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [updated(DropAction::Paused, &paused.value)]
    );
    let mark = head(h).await;
    let resumed = store.set_paused(d.drop.id, false, None).await.unwrap();
    assert!(!resumed.value.drop.paused);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [updated(DropAction::Resumed, &resumed.value)]
    );
    let mark = head(h).await;
    let ended = store.end_drop(d.drop.id, None).await.unwrap();
    assert!(ended.changed);
    assert_eq!(
        logged_since(h, mark, d.drop.id).await,
        [updated(DropAction::Ended, &ended.value)]
    );
    let kinds: Vec<&str> = whole_log(h).await.iter().map(|e| e.change.kind()).collect();
    assert_eq!(
        kinds,
        [
            "dropCreated",
            "dropUpdated",
            "dropUpdated",
            "dropUpdated",
            "dropUpdated"
        ]
    );
    verify(h).await;
}

/// Refusals, idempotent replays and repeats that change nothing log
/// nothing.
pub async fn log_skips_refusals_replays_and_repeats(h: &dyn Harness) {
    let store = h.store();
    let (alice, bob) = (user("alice"), user("bob"));

    // Keyed create, then its replay.
    let key = idem("admin", "create-1", 1);
    let d = store
        .create_drop_with(
            NewDrop::new("Keyed", price(), 1).hold(h.long_hold()),
            Some(&key),
        )
        .await
        .unwrap();
    assert!(!d.replayed);
    let d = d.value;
    let mark = head(h).await;
    let again = store
        .create_drop_with(
            NewDrop::new("Keyed", price(), 1).hold(h.long_hold()),
            Some(&key),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_nothing_logged(h, mark, "a replayed create").await;
    assert_invalid(
        store.create_drop(NewDrop::new(" ", price(), 1)).await,
        "name",
    );
    assert_nothing_logged(h, mark, "a refused create").await;

    // Keyed reserve, its replay, an unkeyed repeat, and refusals.
    let rkey = idem(alice.id.as_str(), "reserve-1", 2);
    let hold = store
        .reserve_with(d.drop.id, &alice, ReserveRequest::default(), Some(&rkey))
        .await
        .unwrap()
        .reservation;
    let mark = head(h).await;
    let replayed = store
        .reserve_with(d.drop.id, &alice, ReserveRequest::default(), Some(&rkey))
        .await
        .unwrap();
    assert!(replayed.replayed);
    let repeat = store.reserve(d.drop.id, &alice).await.unwrap();
    assert!(!repeat.created, "the same hold, unchanged");
    assert_eq!(code(store.reserve(d.drop.id, &bob).await), "OUT_OF_STOCK");
    assert_eq!(
        code(store.reserve(DropId::new(), &bob).await),
        "DROP_NOT_FOUND"
    );
    assert_eq!(
        code(
            store
                .reserve_with(d.drop.id, &alice, ReserveRequest::new().quantity(0), None)
                .await
        ),
        "INVALID_INPUT"
    );
    assert_eq!(code(store.purchase(hold.id, &bob.id).await), "NOT_OWNER");
    assert_eq!(code(store.release(hold.id, &bob.id).await), "NOT_OWNER");
    assert_eq!(
        code(store.purchase(ReservationId::new(), &alice.id).await),
        "RESERVATION_NOT_FOUND"
    );
    assert_nothing_logged(h, mark, "replays, repeats and refused holds").await;

    // Keyed purchase, its replay, an unkeyed repeat.
    let pkey = idem(alice.id.as_str(), "purchase-1", 3);
    let bought = store
        .purchase_with(hold.id, &alice.id, Some(&pkey))
        .await
        .unwrap()
        .purchase;
    let mark = head(h).await;
    assert!(
        store
            .purchase_with(hold.id, &alice.id, Some(&pkey))
            .await
            .unwrap()
            .replayed
    );
    let repeat = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(!repeat.created && repeat.purchase.id == bought.id);
    assert_eq!(
        code(store.release(hold.id, &alice.id).await),
        "ALREADY_PURCHASED"
    );
    assert_nothing_logged(h, mark, "purchase replays and repeats").await;

    // A released hold bought: refused.
    let other = new_drop(h, 2).await;
    let carol = user("carol");
    let gone = store
        .reserve(other.drop.id, &carol)
        .await
        .unwrap()
        .reservation;
    store.release(gone.id, &carol.id).await.unwrap();
    let mark = head(h).await;
    assert_eq!(
        code(store.purchase(gone.id, &carol.id).await),
        "ALREADY_RELEASED"
    );
    assert_nothing_logged(h, mark, "buying a released hold").await;

    // Admin repeats that change nothing, and refused admin writes.
    assert!(
        store
            .set_paused(other.drop.id, true, None)
            .await
            .unwrap()
            .changed
    );
    let mark = head(h).await;
    assert!(
        !store
            .set_paused(other.drop.id, true, None)
            .await
            .unwrap()
            .changed
    );
    assert_eq!(
        code(store.reserve(other.drop.id, &bob).await),
        "DROP_PAUSED"
    );
    assert!(
        store
            .set_paused(other.drop.id, false, None)
            .await
            .unwrap()
            .changed
    );
    let mark2 = head(h).await;
    assert!(mark2 > mark);
    assert!(
        !store
            .set_paused(other.drop.id, false, None)
            .await
            .unwrap()
            .changed
    );
    assert!(
        !store
            .update_drop(other.drop.id, &DropPatch::new(), None)
            .await
            .unwrap()
            .changed
    );
    assert_invalid(
        store
            .update_drop(other.drop.id, &DropPatch::new().name(" "), None)
            .await,
        "name",
    );
    assert!(
        store
            .cancel_purchase(bought.id, None)
            .await
            .unwrap()
            .changed
    );
    let mark3 = head(h).await;
    assert!(mark3 > mark2);
    assert!(
        !store
            .cancel_purchase(bought.id, None)
            .await
            .unwrap()
            .changed
    );
    assert_eq!(
        code(store.cancel_purchase(PurchaseId::new(), None).await),
        "PURCHASE_NOT_FOUND"
    );
    assert!(store.end_drop(other.drop.id, None).await.unwrap().changed);
    let mark4 = head(h).await;
    assert!(!store.end_drop(other.drop.id, None).await.unwrap().changed);
    assert_nothing_logged(h, mark4, "repeated admin writes").await;
    let kinds: Vec<&str> = entries_after(h, mark)
        .await
        .iter()
        .map(|e| e.change.kind())
        .collect();
    assert_eq!(
        kinds,
        ["dropUpdated", "purchaseCancelled", "dropUpdated"],
        "only the changes that changed something"
    );
    verify(h).await;
}

/// Reading the log in pages: `limit` 1 walks it entry by entry, 0
/// answers nothing, a limit above [`MAX_LOG_PAGE`] is capped; reading at
/// the head answers nothing; `drop_history` holds one drop's entries
/// only, paged alike.
pub async fn log_pages_and_drop_history(h: &dyn Harness) {
    let store = h.store();
    let a = new_drop(h, 10).await;
    let b = new_drop(h, 10).await;
    for i in 0..4 {
        for d in [&a, &b] {
            let buyer = user(&format!("buyer{i}"));
            let hold = store.reserve(d.drop.id, &buyer).await.unwrap().reservation;
            if i % 2 == 0 {
                store.purchase(hold.id, &buyer.id).await.unwrap();
            }
        }
    }
    let all = whole_log(h).await;
    assert_eq!(all.len(), 2 + 8 + 4, "{all:?}");
    assert_increasing(&all);
    assert_eq!(head(h).await, all.last().unwrap().seq);
    assert_eq!(store.events_after(0, 0).await.unwrap(), []);
    assert_eq!(store.events_after(head(h).await, 10).await.unwrap(), []);

    let mut walked = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.events_after(cursor, 1).await.unwrap();
        assert!(page.len() <= 1, "limit 1: {page:?}");
        let Some(e) = page.into_iter().next() else {
            break;
        };
        cursor = e.seq;
        walked.push(e);
    }
    assert_eq!(walked, all, "entry by entry, the same log");
    // From the middle on.
    let mid = all[5].seq;
    assert_eq!(store.events_after(mid, 100).await.unwrap(), all[6..]);
    assert_eq!(store.events_after(mid, 3).await.unwrap(), all[6..9]);

    for d in [&a, &b] {
        let want: Vec<LogEntry> = all
            .iter()
            .filter(|e| e.drop_id == d.drop.id)
            .cloned()
            .collect();
        assert_eq!(want.len(), 7);
        let history = store
            .drop_history(d.drop.id, 0, MAX_LOG_PAGE)
            .await
            .unwrap();
        assert_eq!(history, want, "one drop's entries");
        assert_eq!(
            store.drop_history(d.drop.id, 0, 0).await.unwrap(),
            [],
            "limit 0"
        );
        let mut paged = Vec::new();
        let mut cursor = 0;
        loop {
            let page = store.drop_history(d.drop.id, cursor, 2).await.unwrap();
            assert!(page.len() <= 2);
            let Some(last) = page.last() else { break };
            cursor = last.seq;
            paged.extend(page);
        }
        assert_eq!(paged, want, "paged by 2");
        assert_eq!(
            store
                .drop_history(d.drop.id, want[3].seq, 100)
                .await
                .unwrap(),
            want[4..]
        );
    }
    assert_eq!(
        store.drop_history(DropId::new(), 0, 10).await.unwrap(),
        [],
        "a drop without entries has an empty history"
    );

    // More entries than one page holds.
    let big = new_drop(h, MAX_LOG_PAGE as u32 + 10).await;
    let buyers: Vec<Buyer> = (0..MAX_LOG_PAGE + 1)
        .map(|i| user(&format!("many{i}")))
        .collect();
    for chunk in buyers.chunks(32) {
        let done = join_all(chunk.iter().map(|b| {
            let (store, b) = (store.clone(), b.clone());
            async move { store.reserve(big.drop.id, &b).await }
        }))
        .await;
        for r in done {
            r.expect("reserve");
        }
    }
    let first = store.events_after(0, MAX_LOG_PAGE + 500).await.unwrap();
    assert_eq!(first.len(), MAX_LOG_PAGE, "a page is capped");
    let capped = store.events_after(0, usize::MAX).await.unwrap();
    assert_eq!(capped, first);
    let history = store
        .drop_history(big.drop.id, 0, usize::MAX)
        .await
        .unwrap();
    assert_eq!(history.len(), MAX_LOG_PAGE, "a history page is capped");
    let rest = entries_after(h, first.last().unwrap().seq).await;
    let total = first.len() + rest.len();
    assert_eq!(total, 14 + 1 + MAX_LOG_PAGE + 1, "every entry, once");
    verify(h).await;
}

/// Claiming, renewing, advancing, releasing and removing a cursor, and
/// the names a cursor may have.
pub async fn log_cursors_are_leased(h: &dyn Harness) {
    let store = h.store();
    let lease = Duration::from_secs(600);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    // Some entries, so a position means something.
    let d = new_drop(h, 5).await;
    for name in ["alice", "bob"] {
        store.reserve(d.drop.id, &user(name)).await.unwrap();
    }
    let head_now = head(h).await;

    assert_eq!(
        store.claim_cursor("hook", a, lease).await.unwrap(),
        Some(CursorClaim::created(0)),
        "a new cursor starts at 0 when nothing was pruned, made by this claim"
    );
    assert_eq!(
        store.claim_cursor("hook", a, lease).await.unwrap(),
        Some(CursorClaim::new(0)),
        "its holder renews"
    );
    assert_eq!(
        store.claim_cursor("hook", b, lease).await.unwrap(),
        None,
        "another holder waits while the lease runs"
    );
    assert!(store.advance_cursor("hook", a, head_now).await.unwrap());
    assert!(
        store.advance_cursor("hook", a, 0).await.unwrap(),
        "the holder may ask to move back"
    );
    assert_eq!(
        store.claim_cursor("hook", a, lease).await.unwrap(),
        Some(CursorClaim::new(head_now)),
        "but the cursor never moves back"
    );
    assert!(
        !store.advance_cursor("hook", b, head_now + 5).await.unwrap(),
        "a non-holder cannot move it"
    );
    assert!(
        !store.advance_cursor("nobody", a, 1).await.unwrap(),
        "nor can anyone move a cursor that does not exist"
    );
    // Releasing by a non-holder does nothing.
    store.release_cursor("hook", b).await.unwrap();
    assert_eq!(store.claim_cursor("hook", b, lease).await.unwrap(), None);
    // The holder's release lets another claim at once, where it stood.
    store.release_cursor("hook", a).await.unwrap();
    assert_eq!(
        store.claim_cursor("hook", b, lease).await.unwrap(),
        Some(CursorClaim::new(head_now))
    );
    assert!(!store.advance_cursor("hook", a, head_now).await.unwrap());

    // Cursors are independent of one another.
    assert_eq!(
        store.claim_cursor("audit", a, lease).await.unwrap(),
        Some(CursorClaim::created(0))
    );

    // Removal forgets it: a new claim starts over, whoever held it.
    store.remove_cursor("hook").await.unwrap();
    store.remove_cursor("hook").await.unwrap();
    assert_eq!(
        store.claim_cursor("hook", a, lease).await.unwrap(),
        Some(CursorClaim::created(0))
    );
    assert_eq!(
        store.claim_cursor("audit", b, lease).await.unwrap(),
        None,
        "removing one cursor leaves the others"
    );

    let long = "x".repeat(crate::CURSOR_NAME_MAX + 1);
    for bad in ["", "a\nb", long.as_str()] {
        assert_invalid(store.claim_cursor(bad, a, lease).await, "cursor");
        assert_invalid(store.advance_cursor(bad, a, 1).await, "cursor");
        assert_invalid(store.release_cursor(bad, a).await, "cursor");
        assert_invalid(store.remove_cursor(bad).await, "cursor");
    }
    let longest = "y".repeat(crate::CURSOR_NAME_MAX);
    assert!(
        store
            .claim_cursor(&longest, a, lease)
            .await
            .unwrap()
            .is_some()
    );
    // Cursors are not log entries.
    assert_eq!(head(h).await, head_now);
}

/// Cursors are listed by name with their positions and whether a lease
/// runs; a released cursor is listed unheld, a removed one not at all.
pub async fn log_cursors_are_listed(h: &dyn Harness) {
    let store = h.store();
    assert!(store.cursors().await.unwrap().is_empty(), "no cursor yet");
    store
        .create_drop(NewDrop::new("Listed", Money::ZERO, 5))
        .await
        .unwrap();
    let head = store.log_head().await.unwrap();
    assert!(head > 0, "the drop's creation is logged");
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_secs(600);
    store.claim_cursor("webhook:b", a, lease).await.unwrap();
    store.claim_cursor("audit", b, lease).await.unwrap();
    assert!(store.advance_cursor("audit", b, head).await.unwrap());
    store.release_cursor("webhook:b", a).await.unwrap();

    let listed = store.cursors().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["audit", "webhook:b"], "by name");
    let (audit, hook) = (&listed[0], &listed[1]);
    assert_eq!((audit.position, audit.held), (head, true));
    assert!(audit.lease_until.is_some(), "a running lease has an end");
    assert_eq!((hook.position, hook.held), (0, false), "released");
    assert_eq!(hook.lease_until, None, "released");

    store.remove_cursor("webhook:b").await.unwrap();
    let names: Vec<String> = store
        .cursors()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["audit"]);
}

/// A lease that runs out lets another holder take the cursor over, at
/// the position the first had reached; the first may no longer move it.
pub async fn log_cursor_leases_run_out(h: &dyn Harness) {
    let store = h.store();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let d = new_drop(h, 2).await;
    store.reserve(d.drop.id, &user("alice")).await.unwrap();
    let at = head(h).await;
    let short = Duration::from_secs(1);
    assert!(
        store
            .claim_cursor("hook", a, short)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.advance_cursor("hook", a, at).await.unwrap());
    assert_eq!(store.claim_cursor("hook", b, short).await.unwrap(), None);
    h.advance(short).await;
    // Generous: a slow machine may take its time, a fast one stops early.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let claim = loop {
        if let Some(claim) = store
            .claim_cursor("hook", b, Duration::from_secs(600))
            .await
            .unwrap()
        {
            break claim;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lease never ran out"
        );
        h.advance(Duration::from_millis(100)).await;
    };
    assert_eq!(
        claim,
        CursorClaim::new(at),
        "where the first holder left it"
    );
    assert!(
        !store.advance_cursor("hook", a, at + 1).await.unwrap(),
        "the old holder has lost it"
    );
    assert_eq!(
        store.claim_cursor("hook", a, short).await.unwrap(),
        None,
        "and cannot take it back while the new lease runs"
    );
}

/// One writer's answers: what the log must hold because of it.
#[derive(Debug, Default)]
struct Answered {
    holds: Vec<ReservationId>,
    purchases: Vec<PurchaseId>,
    releases: Vec<ReservationId>,
    refused: usize,
}

/// Many writers on several drops, and one follower reading after the
/// highest number it has seen, as fast as it can: it sees every entry
/// exactly once, in order, the same as one read of the whole log
/// afterwards, and the log holds every hold, purchase and release the
/// writers were answered, once each, and nothing refused.
pub async fn log_follower_never_misses_an_entry(h: &dyn Harness) {
    const WRITERS: usize = 16;
    const ROUNDS: usize = 30;
    const DROPS: usize = 4;
    let store = h.store();
    let mut drops = Vec::new();
    for _ in 0..DROPS {
        // Scarce enough that some reserves are refused.
        drops.push(new_drop(h, 25).await.drop.id);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let follower = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut seen: Vec<LogEntry> = Vec::new();
            let mut cursor = 0;
            let mut reads = 0usize;
            loop {
                // Read the stop flag before the page: once it is set, the
                // page is read after every writer finished, so an empty
                // page then means the follower has caught up.
                let stopping = stop.load(Ordering::Acquire);
                let page = store.events_after(cursor, 200).await.expect("follow");
                reads += 1;
                for e in &page {
                    assert!(
                        e.seq > cursor,
                        "entry {} seen after {cursor}: out of order or twice",
                        e.seq
                    );
                    cursor = e.seq;
                }
                let empty = page.is_empty();
                seen.extend(page);
                if empty && stopping {
                    return (seen, reads);
                }
                if empty {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let writers = (0..WRITERS).map(|w| {
        let (store, drops) = (store.clone(), drops.clone());
        tokio::spawn(async move {
            let mut answered = Answered::default();
            for round in 0..ROUNDS {
                let buyer = user(&format!("w{w}r{round}"));
                let drop_id = drops[(w + round) % drops.len()];
                let hold = match store.reserve(drop_id, &buyer).await {
                    Ok(r) => {
                        assert!(r.created);
                        answered.holds.push(r.reservation.id);
                        r.reservation
                    }
                    Err(e) => {
                        assert_eq!(e.code(), "OUT_OF_STOCK", "{e}");
                        answered.refused += 1;
                        continue;
                    }
                };
                if (w + round) % 3 == 0 {
                    let p = store.purchase(hold.id, &buyer.id).await.expect("purchase");
                    answered.purchases.push(p.purchase.id);
                    // A repeat is answered but logs nothing.
                    store.purchase(hold.id, &buyer.id).await.expect("repeat");
                } else {
                    store.release(hold.id, &buyer.id).await.expect("release");
                    answered.releases.push(hold.id);
                    assert_eq!(
                        code(store.purchase(hold.id, &buyer.id).await),
                        "ALREADY_RELEASED"
                    );
                }
            }
            answered
        })
    });
    let answered: Vec<Answered> = join_all(writers)
        .await
        .into_iter()
        .map(|r| r.expect("writer"))
        .collect();
    stop.store(true, Ordering::Release);
    let (seen, reads) = follower.await.expect("follower");
    assert!(reads > 0);

    let all = whole_log(h).await;
    assert_increasing(&all);
    assert_eq!(seen.len(), all.len(), "the follower saw every entry once");
    assert_eq!(seen, all, "and exactly the log, in its order");

    let mut logged: HashMap<&str, Vec<String>> = HashMap::new();
    for e in &all {
        let id = match &e.change {
            Change::DropCreated { drop } => drop.id.to_string(),
            Change::HoldCreated { reservation_id, .. }
            | Change::HoldReleased { reservation_id, .. } => reservation_id.to_string(),
            Change::PurchaseCompleted { purchase_id, .. } => purchase_id.to_string(),
            other => panic!("nothing else happened: {other:?}"),
        };
        logged.entry(e.change.kind()).or_default().push(id);
    }
    let once = |kind: &str, want: Vec<String>| {
        let mut got = logged.get(kind).cloned().unwrap_or_default();
        got.sort();
        let unique: HashSet<&String> = got.iter().collect();
        assert_eq!(unique.len(), got.len(), "a {kind} logged twice");
        let mut want = want;
        want.sort();
        assert_eq!(got, want, "every {kind} answered, once, and nothing else");
    };
    once("dropCreated", drops.iter().map(|d| d.to_string()).collect());
    once(
        "holdCreated",
        answered
            .iter()
            .flat_map(|a| a.holds.iter().map(|r| r.to_string()))
            .collect(),
    );
    once(
        "purchaseCompleted",
        answered
            .iter()
            .flat_map(|a| a.purchases.iter().map(|p| p.to_string()))
            .collect(),
    );
    once(
        "holdReleased",
        answered
            .iter()
            .flat_map(|a| a.releases.iter().map(|r| r.to_string()))
            .collect(),
    );
    let refused: usize = answered.iter().map(|a| a.refused).sum();
    let holds: usize = answered.iter().map(|a| a.holds.len()).sum();
    assert_eq!(refused + holds, WRITERS * ROUNDS);
    assert!(refused > 0, "stock ran out, so some reserves were refused");
    assert_eq!(head(h).await, all.last().unwrap().seq);
    verify(h).await;
}
