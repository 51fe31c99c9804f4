//! Draw drops ([`crate::entry`]): entering, reading and withdrawing an
//! entry and the order of their checks, `DRAW_ONLY` before the draw and
//! first come after it, the rules of a new draw drop, when the draw runs
//! (once, when due, never for a drop ended before it), what it gives
//! (offered holds, places in line in draw order, or losses), what it
//! publishes and that it verifies from that alone, beacons, its events and
//! log entries in order, an offer running out, a race of runners, and the
//! overview.
//!
//! Under a real clock a draw drop's `drawAt` is two seconds ahead of its
//! creation ([`lead`]): the cases sleep until it, so it stays short.

use super::*;

use std::collections::{HashMap, HashSet};

use futures::future::join_all;

use crate::{
    Beacon, BuyerId, Change, DrawStatus, DrawSummary, Entry, EntryOutcome, LogEntry, MAX_LOG_PAGE,
    NotActiveReason, Receipt, Reservation, ReservationStatus, SaleMode, VariantStock, verify_draw,
};

/// How far ahead of its creation a case's draw is: long under a manual
/// clock (the case jumps there), two seconds under a real one (the case
/// sleeps until it): enough for a loaded box to take a case's entries
/// (one second was not, with two suites running at once on PostgreSQL).
fn lead(h: &dyn Harness) -> chrono::Duration {
    if h.exact_time() {
        chrono::Duration::minutes(10)
    } else {
        chrono::Duration::seconds(2)
    }
}

/// A draw drop of the named variants (in that order) drawing at `at`,
/// its line on or off, buyers taking one unit each, holds of `hold`.
async fn draw_drop_at(
    h: &dyn Harness,
    sizes: &[(&str, u32)],
    line: bool,
    hold: Duration,
    at: DateTime<Utc>,
) -> DropState {
    let d = h
        .store()
        .create_drop(
            NewDrop::with_variants(
                "Draw drop",
                price(),
                sizes.iter().map(|(name, n)| NewVariant::new(*name, *n)),
            )
            .waitlist(line)
            .hold(hold)
            .draw_at(at),
        )
        .await
        .expect("create draw drop");
    assert_eq!(
        (d.drop.mode, d.drop.draw_at, d.drop.drawn_at),
        (SaleMode::Draw, Some(at), None),
        "a draw drop, not drawn"
    );
    d
}

/// A draw drop drawing [`lead`] from now whose holds never run out during
/// a case.
async fn draw_drop(h: &dyn Harness, sizes: &[(&str, u32)], line: bool) -> DropState {
    let at = h.now().await + lead(h);
    draw_drop_at(h, sizes, line, h.long_hold(), at).await
}

/// The store's time before and after an operation, to bound the instants
/// it records.
async fn around<F, T>(h: &dyn Harness, op: F) -> (T, (DateTime<Utc>, DateTime<Utc>))
where
    F: std::future::Future<Output = T>,
{
    let before = h.now().await;
    let out = op.await;
    let after = h.now().await;
    (out, (before, after))
}

/// Asserts `at` was taken during the operation bounded by `when`: exactly
/// at its end under a manual clock (which did not move).
fn assert_during(
    h: &dyn Harness,
    at: DateTime<Utc>,
    (before, after): (DateTime<Utc>, DateTime<Utc>),
    what: &str,
) {
    if h.exact_time() {
        assert_eq!(at, after, "{what}");
    } else {
        assert!(
            before <= at && at <= after,
            "{what}: {at} not between {before} and {after}"
        );
    }
}

/// `buyer` enters `d`'s draw for `v`, which must be a new entry.
async fn enter(h: &dyn Harness, d: &DropState, buyer: &Buyer, v: VariantId) -> Entry {
    let (r, when) = around(h, h.store().enter_draw(d.drop.id, buyer, Some(v))).await;
    let a = r.unwrap_or_else(|e| {
        panic!("enter the draw: {e} (ENTRIES_CLOSED: the entries took longer than the lead)")
    });
    assert!(a.changed && !a.replayed, "a new entry: {a:?}");
    let e = a.value;
    assert_eq!(
        (e.drop_id, e.variant_id, &e.buyer_id, &e.display_name),
        (d.drop.id, v, &buyer.id, &buyer.display_name),
        "the entry answers the request"
    );
    assert_eq!(
        (e.outcome, e.draw_position, e.reservation_id),
        (None, None, None),
        "not drawn yet"
    );
    assert_during(h, e.entered_at, when, "entered now");
    e
}

/// The buyer's entry as the store reads it now.
async fn entry_of(h: &dyn Harness, d: &DropState, buyer: &BuyerId) -> Option<Entry> {
    h.store()
        .draw_entry(d.drop.id, buyer)
        .await
        .expect("draw_entry")
}

/// Waits for `d`'s `drawAt`, then draws it with `beacon`: this call must
/// draw, now.
async fn draw_with(h: &dyn Harness, d: &DropState, beacon: Option<Beacon>) -> DrawSummary {
    let at = d.drop.draw_at.expect("a draw drop");
    advance_to(h, at).await;
    let (r, when) = around(h, h.store().run_draw(d.drop.id, beacon)).await;
    let s = r
        .expect("run_draw")
        .expect("the draw is due: this call draws");
    assert_eq!(s.drop_id, d.drop.id);
    assert_during(h, s.drawn_at, when, "drawn now");
    assert!(s.drawn_at >= at, "drawn at or after drawAt: {s:?}");
    s
}

/// [`draw_with`] without a beacon.
async fn draw_now(h: &dyn Harness, d: &DropState) -> DrawSummary {
    draw_with(h, d, None).await
}

/// Asserts `DROP_NOT_ACTIVE` for `reason`.
fn assert_not_active<T: std::fmt::Debug>(r: Result<T, DropError>, reason: NotActiveReason) {
    match error(r) {
        DropError::DropNotActive { reason: got, .. } => assert_eq!(got, reason),
        other => panic!("expected DROP_NOT_ACTIVE ({reason:?}), got {other:?}"),
    }
}

/// Asserts an error naming the drop by its code: `DRAW_ONLY`,
/// `ENTRIES_CLOSED`, `NOT_A_DRAW`, `DROP_PAUSED` or `WAITLIST_CLOSED`.
fn assert_refused<T: std::fmt::Debug>(r: Result<T, DropError>, want: &str, d: &DropState) {
    let e = error(r);
    let drop_id = match &e {
        DropError::DrawOnly { drop_id }
        | DropError::EntriesClosed { drop_id }
        | DropError::NotADraw { drop_id }
        | DropError::DropPaused { drop_id }
        | DropError::WaitlistClosed { drop_id } => *drop_id,
        other => panic!("expected {want}, got {other:?}"),
    };
    assert_eq!((e.code(), drop_id), (want, d.drop.id), "{e}");
}

/// The holds a draw gave: every winner's.
type Won = HashMap<BuyerId, Reservation>;

/// Reads every entrant's entry after `s`, the draw of `d` (whose variants
/// had all their units free), and checks what it gave, per variant in
/// draw order: positions 1, 2, …; the first `total` won an offered hold
/// of one unit made at the draw with the drop's window; the rest stand in
/// the variant's line in draw order from its head (line on) or lost. The
/// summary and the counters agree. Answers the entries in draw order, per
/// variant in the drop's order, and the winners' holds.
async fn assert_drawn(
    h: &dyn Harness,
    d: &DropState,
    s: &DrawSummary,
    entrants: &[&Buyer],
) -> (Vec<Entry>, Won) {
    let store = h.store();
    let mut all = Vec::new();
    for b in entrants {
        let e = entry_of(h, d, &b.id)
            .await
            .unwrap_or_else(|| panic!("{}'s entry is gone", b.id));
        assert!(e.outcome.is_some(), "drawn: {e:?}");
        all.push(e);
    }
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(now.drop.drawn_at, Some(s.drawn_at), "the drop's drawnAt");
    let mut ordered = Vec::new();
    let mut won = Won::new();
    let (mut winners, mut waiting) = (0, 0);
    let mut want_stock = Vec::new();
    for (i, v) in d.variants.iter().enumerate() {
        let mut mine: Vec<Entry> = all
            .iter()
            .filter(|e| e.variant_id == v.id)
            .cloned()
            .collect();
        mine.sort_by_key(|e| e.draw_position);
        let positions: Vec<Option<u32>> = mine.iter().map(|e| e.draw_position).collect();
        let want: Vec<Option<u32>> = (1..=mine.len() as u32).map(Some).collect();
        assert_eq!(positions, want, "variant {i}'s draw order, from 1");
        let wins = (v.total as usize).min(mine.len());
        let mut last_ticket = 0;
        for (k, e) in mine.iter().enumerate() {
            let buyer = &e.buyer_id;
            let held = store.active_hold(d.drop.id, buyer).await.unwrap();
            let place = store.waitlist_place(d.drop.id, buyer).await.unwrap();
            if k < wins {
                assert_eq!(e.outcome, Some(EntryOutcome::Won), "{e:?}");
                let id = e.reservation_id.expect("a winner's hold");
                let r = held.unwrap_or_else(|| panic!("{buyer} won and holds nothing"));
                assert_eq!(r.id, id, "the hold won is the winner's active hold");
                assert_eq!(
                    (r.drop_id, r.variant_id, r.quantity, r.offered, r.status),
                    (d.drop.id, v.id, 1, true, ReservationStatus::Active),
                    "an offered hold of one unit: {r:?}"
                );
                assert_eq!(&r.buyer_id, buyer);
                assert_eq!(r.created_at, s.drawn_at, "made at the draw");
                assert_eq!(
                    r.expires_at,
                    now.drop.hold_expiry(s.drawn_at),
                    "the drop's window from the draw on"
                );
                assert_eq!(store.get_reservation(id).await.unwrap(), r);
                assert_eq!(place, None, "a winner waits in no line");
                won.insert(buyer.clone(), r);
            } else {
                assert_eq!(e.reservation_id, None, "a loser holds nothing: {e:?}");
                assert_eq!(held, None, "{buyer} lost and holds a unit");
                if d.drop.waitlist {
                    assert_eq!(e.outcome, Some(EntryOutcome::Waiting), "{e:?}");
                    let p = place.unwrap_or_else(|| panic!("{buyer} waits in no line"));
                    assert_eq!(
                        (p.drop_id, p.variant_id, p.quantity, p.set_aside),
                        (d.drop.id, v.id, 1, 0),
                        "a place for one unit of the variant entered: {p:?}"
                    );
                    assert_eq!(
                        p.position as usize,
                        k + 1 - wins,
                        "the line follows the draw order: {p:?}"
                    );
                    assert_eq!(p.joined_at, s.drawn_at, "joined at the draw");
                    assert!(p.ticket > last_ticket, "tickets in draw order: {p:?}");
                    last_ticket = p.ticket;
                    waiting += 1;
                } else {
                    assert_eq!(e.outcome, Some(EntryOutcome::Lost), "{e:?}");
                    assert_eq!(place, None, "no line to stand in");
                }
            }
        }
        winners += wins as u32;
        want_stock.push((v.total, wins as u32, 0));
        ordered.extend(mine);
    }
    assert_eq!(
        (s.entries, s.winners, s.waiting),
        (entrants.len() as u32, winners, waiting),
        "the summary counts the entries: {s:?}"
    );
    let now = assert_stock(h, d.drop.id, &want_stock).await;
    let lines: Vec<u32> = d
        .variants
        .iter()
        .map(|v| {
            ordered
                .iter()
                .filter(|e| e.variant_id == v.id && e.outcome == Some(EntryOutcome::Waiting))
                .count() as u32
        })
        .collect();
    assert_eq!(lengths(&now.variants), lines, "each variant's line");
    (ordered, won)
}

/// The `waitlist_length` of each variant, in the drop's order.
fn lengths(variants: &[VariantStock]) -> Vec<u32> {
    variants.iter().map(|v| v.waitlist_length).collect()
}

/// The receipts of the entries for `v` with `outcome`, in draw order
/// (`entries` in draw order).
fn receipts(entries: &[Entry], v: VariantId, outcome: EntryOutcome) -> Vec<Receipt> {
    entries
        .iter()
        .filter(|e| e.variant_id == v && e.outcome == Some(outcome))
        .map(|e| e.receipt)
        .collect()
}

/// Checks the record of `d`'s draw `s` against what was known before it
/// (`before`) and the entries as drawn (in draw order): the same seed
/// hash, the draw published, verifying from the published data alone,
/// every entry listed by receipt and variant, a stock line for every
/// variant in the drop's order (all its units were free), and winners
/// that are exactly the receipts of the entries that won.
fn assert_published(
    d: &DropState,
    s: &DrawSummary,
    before: &DrawStatus,
    after: &DrawStatus,
    entries: &[Entry],
    beacon: Option<&Beacon>,
) {
    assert_eq!(
        (after.drop_id, after.draw_at, after.seed_hash),
        (d.drop.id, before.draw_at, before.seed_hash),
        "the commitment has not changed"
    );
    assert_eq!(after.beacon_name, before.beacon_name);
    assert_eq!(after.drawn_at, Some(s.drawn_at));
    let p = after.published.as_ref().expect("the draw is published");
    assert_eq!(p.seed_hash, before.seed_hash, "the seed committed to");
    assert_eq!(p.beacon.as_ref(), beacon, "the beacon mixed in");
    // Only what was published: the checker gets nothing else.
    let result = verify_draw(p).unwrap_or_else(|e| panic!("it does not verify: {e}"));
    let mut listed: Vec<(Receipt, VariantId)> = p
        .entries
        .iter()
        .map(|e| (e.receipt, e.variant_id))
        .collect();
    let mut known: Vec<(Receipt, VariantId)> =
        entries.iter().map(|e| (e.receipt, e.variant_id)).collect();
    listed.sort();
    known.sort();
    assert_eq!(listed, known, "every entry, by receipt and variant");
    let stock: Vec<(VariantId, u32)> = p.stock.iter().map(|l| (l.variant_id, l.stock)).collect();
    let want: Vec<(VariantId, u32)> = d.variants.iter().map(|v| (v.id, v.total)).collect();
    assert_eq!(stock, want, "a stock line per variant, in the drop's order");
    for v in &d.variants {
        let published = p
            .winners
            .iter()
            .find(|w| w.variant_id == v.id)
            .map(|w| w.receipts.clone())
            .unwrap_or_default();
        assert_eq!(
            published,
            receipts(entries, v.id, EntryOutcome::Won),
            "the published winners are the entries that won, in draw order"
        );
        let line = result.variant(v.id).map(|r| r.waitlist.clone());
        let rest: Vec<Receipt> = entries
            .iter()
            .filter(|e| e.variant_id == v.id && e.outcome != Some(EntryOutcome::Won))
            .map(|e| e.receipt)
            .collect();
        assert_eq!(
            line.unwrap_or_default(),
            rest,
            "the others, in the order the published draw ranks them"
        );
    }
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

/// Entering, reading, withdrawing: an entry is for one unit of the
/// variant asked, with the store's time and a receipt of its own; entering
/// again answers the same entry unchanged whatever variant is asked;
/// withdrawing answers it and forgets it (then `None`); entering again
/// after is a new entry. Entries lock no stock and announce and log
/// nothing. A first-come drop has no entries to read.
pub async fn draw_enter_read_and_withdraw(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 1), ("L", 1)], true).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(user);
    let mut events = store.subscribe();
    let mark = log_head(h).await;

    let a = enter(h, &d, &alice, m).await;
    assert_eq!(entry_of(h, &d, &alice.id).await, Some(a.clone()));
    // Again, for the same or another variant: the same entry, unchanged.
    for again in [Some(m), Some(l)] {
        let same = store.enter_draw(d.drop.id, &alice, again).await.unwrap();
        assert!(!same.changed && !same.replayed, "{same:?}");
        assert_eq!(same.value, a, "the entry as it was");
    }
    let b = enter(h, &d, &bob, m).await;
    assert_ne!(a.receipt, b.receipt, "each entry has its own receipt");
    let c = enter(h, &d, &carol, l).await;
    assert!(c.receipt != a.receipt && c.receipt != b.receipt);
    assert_eq!(entry_of(h, &d, &bob.id).await, Some(b.clone()));
    assert_eq!(entry_of(h, &d, &user("dave").id).await, None);

    // Withdrawing answers the entry; it is gone; again, nothing.
    let gone = store.withdraw_entry(d.drop.id, &alice.id).await.unwrap();
    assert_eq!(gone, Some(a.clone()));
    assert_eq!(entry_of(h, &d, &alice.id).await, None);
    assert_eq!(
        store.withdraw_entry(d.drop.id, &alice.id).await.unwrap(),
        None
    );
    assert_eq!(entry_of(h, &d, &bob.id).await, Some(b), "others stay");
    // Entering again is a new entry, now for L.
    let again = enter(h, &d, &alice, l).await;
    assert_ne!(again.receipt, a.receipt, "a new entry, a new receipt");

    // No stock moved, nothing announced or logged.
    assert_stock(h, d.drop.id, &[(1, 0, 0), (1, 0, 0)]).await;
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "entries log nothing");

    // A first-come drop has no entries; an unknown one is not found.
    let plain = new_drop(h, 1).await;
    assert_eq!(entry_of(h, &plain, &alice.id).await, None);
    assert_eq!(
        code(store.draw_entry(DropId::new(), &alice.id).await),
        "DROP_NOT_FOUND"
    );
    verify(h).await;
}

/// Entering checks, in this order: the drop; the variant (an unknown one,
/// or none named on a drop of several); `NOT_A_DRAW`; the window
/// (`DROP_NOT_ACTIVE`); `ENTRIES_CLOSED` at and after `drawAt`;
/// `DROP_PAUSED`; only then an existing entry answers. Withdrawing:
/// `DROP_NOT_FOUND`, `NOT_A_DRAW`, `ENTRIES_CLOSED` at and after `drawAt`
/// (the entry stays). Each refusal below breaks its rule and every later
/// one; refusals announce and log nothing.
pub async fn draw_entry_checks_in_documented_order(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let lead = lead(h);
    let sizes = || [NewVariant::new("M", 2), NewVariant::new("L", 2)];
    let two = |name: &str| NewDrop::with_variants(name, price(), sizes()).hold(h.long_hold());
    let first_come = store.create_drop(two("First come")).await.unwrap();
    let later = store
        .create_drop(
            two("Later")
                .starts_at(now + lead * 3)
                .draw_at(now + lead * 4),
        )
        .await
        .unwrap();
    let ended = store
        .create_drop(two("Ended").draw_at(now + lead * 4))
        .await
        .unwrap();
    let paused = store
        .create_drop(two("Paused").draw_at(now + lead * 4))
        .await
        .unwrap();
    let d = store
        .create_drop(two("Closing").draw_at(now + lead))
        .await
        .unwrap();
    let [bob, erin, gina] = ["bob", "erin", "gina"].map(user);
    let bob_d = enter(h, &d, &bob, variant(&d, 0)).await;
    let gina_p = enter(h, &paused, &gina, variant(&paused, 1)).await;
    let bob_e = enter(h, &ended, &bob, variant(&ended, 0)).await;
    store.set_paused(later.drop.id, true, None).await.unwrap();
    store.set_paused(paused.drop.id, true, None).await.unwrap();
    store.end_drop(ended.drop.id, None).await.unwrap();

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    // The drop first, whatever is asked.
    assert_eq!(
        code(
            store
                .enter_draw(DropId::new(), &erin, Some(VariantId::new()))
                .await
        ),
        "DROP_NOT_FOUND"
    );
    // The variant before the mode, the window and the pause.
    for drop in [&first_come, &later] {
        assert_eq!(
            code(
                store
                    .enter_draw(drop.drop.id, &erin, Some(VariantId::new()))
                    .await
            ),
            "VARIANT_NOT_FOUND"
        );
        assert_invalid(
            store.enter_draw(drop.drop.id, &erin, None).await,
            "variantId",
        );
    }
    assert_refused(
        store
            .enter_draw(first_come.drop.id, &erin, Some(variant(&first_come, 0)))
            .await,
        "NOT_A_DRAW",
        &first_come,
    );
    // The window before the pause: not started yet, and ended.
    assert_not_active(
        store
            .enter_draw(later.drop.id, &erin, Some(variant(&later, 0)))
            .await,
        NotActiveReason::NotStarted,
    );
    for buyer in [&erin, &bob] {
        assert_not_active(
            store
                .enter_draw(ended.drop.id, buyer, Some(variant(&ended, 0)))
                .await,
            NotActiveReason::Ended,
        );
    }
    // The pause before an existing entry.
    for buyer in [&erin, &gina] {
        assert_refused(
            store
                .enter_draw(paused.drop.id, buyer, Some(variant(&paused, 1)))
                .await,
            "DROP_PAUSED",
            &paused,
        );
    }
    // Withdrawing: the drop, then the mode.
    assert_eq!(
        code(store.withdraw_entry(DropId::new(), &bob.id).await),
        "DROP_NOT_FOUND"
    );
    assert_refused(
        store.withdraw_entry(first_come.drop.id, &bob.id).await,
        "NOT_A_DRAW",
        &first_come,
    );

    // At drawAt (exactly, under a manual clock) and after, the draw takes
    // no entries, before any pause, and no withdrawals.
    store.set_paused(d.drop.id, true, None).await.unwrap();
    assert_refused(
        store
            .enter_draw(d.drop.id, &erin, Some(variant(&d, 0)))
            .await,
        "DROP_PAUSED",
        &d,
    );
    let _ = events_until_marker(h, &mut events).await;
    let mark_paused = log_head(h).await;
    advance_to(h, now + lead).await;
    for step in 0..2 {
        for buyer in [&erin, &bob] {
            assert_refused(
                store
                    .enter_draw(d.drop.id, buyer, Some(variant(&d, 1)))
                    .await,
                "ENTRIES_CLOSED",
                &d,
            );
        }
        assert_refused(
            store.withdraw_entry(d.drop.id, &bob.id).await,
            "ENTRIES_CLOSED",
            &d,
        );
        if step == 0 {
            h.advance(Duration::from_millis(1)).await;
        }
    }
    assert_quiet_since(h, &mut events).await;
    assert!(
        log_after(h, mark_paused).await.is_empty(),
        "refusals log nothing"
    );
    assert_eq!(
        log_after(h, mark)
            .await
            .iter()
            .map(|e| e.change.kind())
            .collect::<Vec<_>>(),
        ["dropUpdated"],
        "only the pause was logged"
    );
    // Every entry is as it was; the refused buyers have none.
    assert_eq!(entry_of(h, &d, &bob.id).await, Some(bob_d));
    assert_eq!(entry_of(h, &paused, &gina.id).await, Some(gina_p));
    assert_eq!(entry_of(h, &ended, &bob.id).await, Some(bob_e));
    for drop in [&d, &later, &ended, &paused] {
        assert_eq!(entry_of(h, drop, &erin.id).await, None);
    }
    verify(h).await;
}

/// Before the draw a plain reserve or a join answers `DRAW_ONLY`, checked
/// after the request, the line's switch (a join), the window and the
/// pause; after it the drop sells first come: units no entry won are
/// reserved by whoever comes, and a sold-out variant's line takes joins.
pub async fn draw_only_until_drawn(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 1), ("L", 2)], true).await;
    let no_line = draw_drop(h, &[("M", 1)], false).await;
    let now = h.now().await;
    let later = store
        .create_drop(
            NewDrop::new("Later", price(), 1)
                .starts_at(now + lead(h) * 3)
                .draw_at(now + lead(h) * 4)
                .hold(h.long_hold()),
        )
        .await
        .unwrap();
    let paused = draw_drop(h, &[("M", 1)], true).await;
    store.set_paused(paused.drop.id, true, None).await.unwrap();
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol, dave, erin] = ["alice", "bob", "carol", "dave", "erin"].map(user);

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    // The request first.
    assert_eq!(
        code(
            store
                .reserve_with(d.drop.id, &bob, ask(VariantId::new(), 1), None)
                .await
        ),
        "VARIANT_NOT_FOUND"
    );
    assert_invalid(store.reserve(d.drop.id, &bob).await, "variantId");
    assert_invalid(
        store.join_waitlist(d.drop.id, &bob, ask(m, 2)).await,
        "quantity",
    );
    // The line's switch, the window, the pause.
    assert_refused(
        store
            .join_waitlist(no_line.drop.id, &bob, ask(variant(&no_line, 0), 1))
            .await,
        "WAITLIST_CLOSED",
        &no_line,
    );
    assert_not_active(
        store.reserve(later.drop.id, &bob).await,
        NotActiveReason::NotStarted,
    );
    assert_not_active(
        store
            .join_waitlist(later.drop.id, &bob, ask(variant(&later, 0), 1))
            .await,
        NotActiveReason::NotStarted,
    );
    assert_refused(
        store.reserve(paused.drop.id, &bob).await,
        "DROP_PAUSED",
        &paused,
    );
    assert_refused(
        store
            .join_waitlist(paused.drop.id, &bob, ask(variant(&paused, 0), 1))
            .await,
        "DROP_PAUSED",
        &paused,
    );
    // Then the draw: every variant, reserve or join.
    for v in [m, l] {
        assert_refused(
            store.reserve_with(d.drop.id, &bob, ask(v, 1), None).await,
            "DRAW_ONLY",
            &d,
        );
        assert_refused(
            store.join_waitlist(d.drop.id, &bob, ask(v, 1)).await,
            "DRAW_ONLY",
            &d,
        );
    }
    assert_refused(
        store.reserve(no_line.drop.id, &bob).await,
        "DRAW_ONLY",
        &no_line,
    );
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "refusals log nothing");
    assert_eq!(store.active_hold(d.drop.id, &bob.id).await.unwrap(), None);
    assert_stock(h, d.drop.id, &[(1, 0, 0), (2, 0, 0)]).await;

    // Alice alone enters, for M, and wins it; L was entered by nobody.
    enter(h, &d, &alice, m).await;
    let s = draw_now(h, &d).await;
    let (_, won) = assert_drawn(h, &d, &s, &[&alice]).await;
    assert!(won.contains_key(&alice.id));
    // First come now: both L are on open sale, M is gone.
    for buyer in [&bob, &carol] {
        let r = store
            .reserve_with(d.drop.id, buyer, ask(l, 1), None)
            .await
            .expect("a unit nobody won is on open sale");
        assert!(r.created && !r.reservation.offered, "{r:?}");
    }
    assert_eq!(
        code(store.reserve_with(d.drop.id, &dave, ask(l, 1), None).await),
        "OUT_OF_STOCK"
    );
    assert_eq!(
        code(store.reserve_with(d.drop.id, &dave, ask(m, 1), None).await),
        "OUT_OF_STOCK"
    );
    let p = store
        .join_waitlist(d.drop.id, &erin, ask(m, 1))
        .await
        .expect("the line takes joins after the draw");
    assert!(p.changed && p.value.position == 1, "{p:?}");
    assert_stock(h, d.drop.id, &[(1, 1, 0), (2, 2, 0)]).await;
    verify(h).await;
}

/// A new drop's draw fields: `drawAt` required for a draw drop and
/// refused for a first-come one, after `startsAt`, before `endsAt`, in the
/// future; a beacon name only for a draw drop, not blank. Refused drops
/// are not made. A draw drop reads back with its mode, `drawAt` and
/// trimmed beacon name, not drawn, its seed's hash published (each drop
/// its own seed); a first-come drop has no draw to show.
pub async fn draw_drop_creation_rules(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let lead = lead(h);
    let at = now + lead;
    let base = || NewDrop::new("Draw rules", price(), 3).hold(h.long_hold());
    let mut events = store.subscribe();

    let mut untimed = base();
    untimed.mode = SaleMode::Draw;
    assert_invalid(store.create_drop(untimed).await, "drawAt");
    let mut timed = base();
    timed.draw_at = Some(at);
    assert_invalid(store.create_drop(timed).await, "drawAt");
    for starts in [at, at + lead] {
        assert_invalid(
            store
                .create_drop(base().starts_at(starts).draw_at(at))
                .await,
            "drawAt",
        );
    }
    assert_invalid(
        store.create_drop(base().ends_at(at).draw_at(at)).await,
        "drawAt",
    );
    assert_invalid(store.create_drop(base().draw_at(now)).await, "drawAt");
    assert_invalid(
        store
            .create_drop(base().draw_at(now - chrono::Duration::seconds(1)))
            .await,
        "drawAt",
    );
    assert_invalid(
        store.create_drop(base().beacon_name("drand")).await,
        "beaconName",
    );
    assert_invalid(
        store
            .create_drop(base().draw_at(at).beacon_name("  "))
            .await,
        "beaconName",
    );
    assert_quiet_since(h, &mut events).await;
    assert_eq!(
        store.list_all_drops().await.unwrap().len(),
        1,
        "only the marker was made"
    );

    let d = store
        .create_drop(
            base()
                .starts_at(now + lead / 2)
                .ends_at(at + lead)
                .draw_at(at)
                .beacon_name("  drand round 4242 "),
        )
        .await
        .expect("a valid draw drop");
    assert_eq!(
        (
            d.drop.mode,
            d.drop.draw_at,
            d.drop.beacon_name.as_deref(),
            d.drop.drawn_at
        ),
        (SaleMode::Draw, Some(at), Some("drand round 4242"), None)
    );
    assert_eq!(store.get_drop(d.drop.id).await.unwrap().drop, d.drop);
    match next_event(&mut events).await {
        DropEvent::DropCreated { drop } => assert_eq!(drop.drop, d.drop),
        other => panic!("expected DropCreated, got {other:?}"),
    }
    let status = store.draw_status(d.drop.id).await.unwrap();
    assert_eq!(
        (
            status.drop_id,
            status.draw_at,
            status.beacon_name.as_deref(),
            status.drawn_at,
            status.published.is_none()
        ),
        (d.drop.id, at, Some("drand round 4242"), None, true)
    );
    let other = draw_drop(h, &[("M", 1)], true).await;
    let other_status = store.draw_status(other.drop.id).await.unwrap();
    assert_eq!(other_status.beacon_name, None);
    assert_ne!(other_status.seed_hash, status.seed_hash, "a seed per drop");

    let plain = store.create_drop(base()).await.unwrap();
    assert_eq!(
        (
            plain.drop.mode,
            plain.drop.draw_at,
            plain.drop.beacon_name.as_deref(),
            plain.drop.drawn_at
        ),
        (SaleMode::FirstCome, None, None, None)
    );
    assert_refused(store.draw_status(plain.drop.id).await, "NOT_A_DRAW", &plain);
    assert_eq!(
        code(store.draw_status(DropId::new()).await),
        "DROP_NOT_FOUND"
    );
    verify(h).await;
}

/// The draw runs when due, once: before `drawAt` `run_draw` answers
/// `None`, nothing is due and `next_draw_at` is the earliest `drawAt`;
/// after, `due_draws` lists the due drops earliest first, one call draws
/// (`Some`), the next answers `None`, and the drop leaves the due list.
/// `run_draw` on an unknown drop is `DROP_NOT_FOUND`, on a first-come one
/// `NOT_A_DRAW`.
pub async fn draw_runs_once_when_due(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let lead = lead(h);
    let a = draw_drop_at(h, &[("M", 2)], true, h.long_hold(), now + lead).await;
    let b = draw_drop_at(h, &[("M", 2)], true, h.long_hold(), now + lead * 2).await;
    let [alice, bob] = ["alice", "bob"].map(user);
    enter(h, &a, &alice, variant(&a, 0)).await;
    enter(h, &b, &bob, variant(&b, 0)).await;
    let plain = new_drop(h, 1).await;

    assert_eq!(
        code(store.run_draw(DropId::new(), None).await),
        "DROP_NOT_FOUND"
    );
    assert_refused(
        store.run_draw(plain.drop.id, None).await,
        "NOT_A_DRAW",
        &plain,
    );
    assert_eq!(
        store.run_draw(a.drop.id, None).await.unwrap(),
        None,
        "not due"
    );
    assert!(store.due_draws(10).await.unwrap().is_empty());
    assert_eq!(store.next_draw_at().await.unwrap(), a.drop.draw_at);
    assert_eq!(entry_of(h, &a, &alice.id).await.unwrap().outcome, None);
    assert_eq!(store.get_drop(a.drop.id).await.unwrap().drop.drawn_at, None);

    // Both due: earliest first, at most the limit.
    advance_to(h, now + lead * 2).await;
    let ids = |due: Vec<crate::DropInfo>| due.into_iter().map(|d| d.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.due_draws(10).await.unwrap()),
        [a.drop.id, b.drop.id]
    );
    assert_eq!(ids(store.due_draws(1).await.unwrap()), [a.drop.id]);
    assert_eq!(
        store.next_draw_at().await.unwrap(),
        a.drop.draw_at,
        "a draw due now is still next"
    );

    let s = draw_now(h, &a).await;
    assert_drawn(h, &a, &s, &[&alice]).await;
    assert_eq!(store.run_draw(a.drop.id, None).await.unwrap(), None, "once");
    assert_eq!(ids(store.due_draws(10).await.unwrap()), [b.drop.id]);
    assert_eq!(store.next_draw_at().await.unwrap(), b.drop.draw_at);
    assert_eq!(entry_of(h, &b, &bob.id).await.unwrap().outcome, None);

    let s = draw_now(h, &b).await;
    assert_drawn(h, &b, &s, &[&bob]).await;
    assert_eq!(store.run_draw(b.drop.id, None).await.unwrap(), None);
    assert!(store.due_draws(10).await.unwrap().is_empty());
    assert_eq!(store.next_draw_at().await.unwrap(), None);
    verify(h).await;
}

/// A drop ended before its `drawAt` never draws: it is not next, never
/// due, `run_draw` answers `None` after its `drawAt`, and its entries stay
/// undrawn; a live draw drop is unaffected.
pub async fn draw_ended_before_its_time_never_draws(h: &dyn Harness) {
    let store = h.store();
    let now = h.now().await;
    let lead = lead(h);
    let gone = draw_drop_at(h, &[("M", 2)], true, h.long_hold(), now + lead).await;
    let live = draw_drop_at(h, &[("M", 2)], true, h.long_hold(), now + lead * 2).await;
    let [alice, bob] = ["alice", "bob"].map(user);
    let a = enter(h, &gone, &alice, variant(&gone, 0)).await;
    enter(h, &live, &bob, variant(&live, 0)).await;
    store.end_drop(gone.drop.id, None).await.unwrap();
    assert_eq!(store.next_draw_at().await.unwrap(), live.drop.draw_at);

    advance_to(h, now + lead).await;
    assert!(store.due_draws(10).await.unwrap().is_empty());
    assert_eq!(store.run_draw(gone.drop.id, None).await.unwrap(), None);
    advance_to(h, now + lead * 2).await;
    let due: Vec<DropId> = store
        .due_draws(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due, [live.drop.id]);
    assert_eq!(store.run_draw(gone.drop.id, None).await.unwrap(), None);
    let s = draw_now(h, &live).await;
    assert_drawn(h, &live, &s, &[&bob]).await;
    assert!(store.due_draws(10).await.unwrap().is_empty());
    assert_eq!(store.next_draw_at().await.unwrap(), None);

    let status = store.draw_status(gone.drop.id).await.unwrap();
    assert_eq!((status.drawn_at, status.published), (None, None));
    assert_eq!(
        store.get_drop(gone.drop.id).await.unwrap().drop.drawn_at,
        None
    );
    assert_eq!(entry_of(h, &gone, &alice.id).await, Some(a), "undrawn");
    assert_eq!(
        store.active_hold(gone.drop.id, &alice.id).await.unwrap(),
        None
    );
    assert_stock(h, gone.drop.id, &[(2, 0, 0)]).await;
    verify(h).await;
}

/// Fewer entries than units: every entry wins an offered hold of one unit
/// made at the draw, expiring a hold's length after it; the units nobody
/// won are on open sale; a winner buys theirs.
pub async fn draw_fewer_entries_than_stock_all_win(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 3), ("L", 2)], true).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let [alice, bob, carol, dave, erin] = ["alice", "bob", "carol", "dave", "erin"].map(user);
    enter(h, &d, &alice, m).await;
    enter(h, &d, &bob, m).await;
    enter(h, &d, &carol, l).await;
    let s = draw_now(h, &d).await;
    assert_eq!((s.entries, s.winners, s.waiting), (3, 3, 0), "{s:?}");
    let (_, won) = assert_drawn(h, &d, &s, &[&alice, &bob, &carol]).await;
    assert_eq!(won.len(), 3);

    // The rest sells first come.
    for (buyer, v) in [(&dave, m), (&erin, l)] {
        let r = store
            .reserve_with(d.drop.id, buyer, ask(v, 1), None)
            .await
            .expect("a unit nobody won");
        assert!(r.created && !r.reservation.offered, "{r:?}");
    }
    assert_stock(h, d.drop.id, &[(3, 3, 0), (2, 2, 0)]).await;
    // A winner buys the unit won.
    let bought = store
        .purchase(won[&alice.id].id, &alice.id)
        .await
        .expect("a winner buys");
    assert!(bought.created, "{bought:?}");
    assert_stock(h, d.drop.id, &[(3, 2, 1), (2, 2, 0)]).await;
    verify(h).await;
}

/// More entries than units, over several variants: each variant has as
/// many winners as units (a variant nobody entered none), the others
/// stand in its line in draw order (`waitlist_place` positions follow
/// `draw_position`), their outcome `Waiting`; a unit a winner gives back
/// goes to the head of that line.
pub async fn draw_more_entries_than_stock_line_up(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 2), ("L", 1), ("XL", 1)], true).await;
    let (m, l, xl) = (variant(&d, 0), variant(&d, 1), variant(&d, 2));
    let buyers: Vec<Buyer> = (0..8).map(|i| user(&format!("entrant{i}"))).collect();
    for (i, b) in buyers.iter().enumerate() {
        enter(h, &d, b, if i < 5 { m } else { l }).await;
    }
    let s = draw_now(h, &d).await;
    assert_eq!((s.entries, s.winners, s.waiting), (8, 3, 5), "{s:?}");
    let entrants: Vec<&Buyer> = buyers.iter().collect();
    let (entries, won) = assert_drawn(h, &d, &s, &entrants).await;
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(lengths(&now.variants), [3, 2, 0]);

    // XL, entered by nobody, is on open sale.
    let walk_in = user("walkin");
    store
        .reserve_with(d.drop.id, &walk_in, ask(xl, 1), None)
        .await
        .expect("a variant nobody entered sells first come");
    // An M given back goes to the head of M's line: the third drawn.
    let first = entries
        .iter()
        .find(|e| e.variant_id == m && e.draw_position == Some(1))
        .unwrap();
    let third = entries
        .iter()
        .find(|e| e.variant_id == m && e.draw_position == Some(3))
        .unwrap();
    store
        .release(won[&first.buyer_id].id, &first.buyer_id)
        .await
        .unwrap();
    let offer = store
        .active_hold(d.drop.id, &third.buyer_id)
        .await
        .unwrap()
        .expect("the head of the line is offered the unit");
    assert!(offer.offered && offer.variant_id == m, "{offer:?}");
    assert_eq!(
        store
            .waitlist_place(d.drop.id, &third.buyer_id)
            .await
            .unwrap(),
        None
    );
    let fourth = entries
        .iter()
        .find(|e| e.variant_id == m && e.draw_position == Some(4))
        .unwrap();
    let p = store
        .waitlist_place(d.drop.id, &fourth.buyer_id)
        .await
        .unwrap()
        .expect("still in line");
    assert_eq!(p.position, 1, "moved up: {p:?}");
    assert_stock(h, d.drop.id, &[(2, 2, 0), (1, 1, 0), (1, 1, 0)]).await;
    verify(h).await;
}

/// A drop without a waiting list: the entries that do not win lose, still
/// ranked, and stand in no line.
pub async fn draw_without_a_line_losers_lose(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 1), ("L", 1)], false).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers = ["alice", "bob", "carol", "dave"].map(user);
    for (i, b) in buyers.iter().enumerate() {
        enter(h, &d, b, if i < 3 { m } else { l }).await;
    }
    let s = draw_now(h, &d).await;
    assert_eq!((s.entries, s.winners, s.waiting), (4, 2, 0), "{s:?}");
    let entrants: Vec<&Buyer> = buyers.iter().collect();
    let (entries, _) = assert_drawn(h, &d, &s, &entrants).await;
    let lost = entries
        .iter()
        .filter(|e| e.outcome == Some(EntryOutcome::Lost))
        .count();
    assert_eq!(lost, 2);
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(lengths(&now.variants), [0, 0]);
    verify(h).await;
}

/// What a draw publishes: before it, the seed's hash only; after, the
/// same hash, and a draw that verifies from the published data alone,
/// whose winners are exactly the receipts of the entries that won (as
/// each entrant reads theirs), with a stock line for every variant.
pub async fn draw_published_draw_verifies(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 2), ("L", 1), ("XL", 1)], true).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers: Vec<Buyer> = (0..7).map(|i| user(&format!("entrant{i}"))).collect();
    for (i, b) in buyers.iter().enumerate() {
        enter(h, &d, b, if i < 4 { m } else { l }).await;
    }
    let before = store.draw_status(d.drop.id).await.unwrap();
    assert_eq!(
        (
            before.drop_id,
            before.draw_at,
            &before.beacon_name,
            before.drawn_at,
            &before.published
        ),
        (d.drop.id, d.drop.draw_at.unwrap(), &None, None, &None),
        "only the commitment before the draw"
    );
    let s = draw_now(h, &d).await;
    let entrants: Vec<&Buyer> = buyers.iter().collect();
    let (entries, _) = assert_drawn(h, &d, &s, &entrants).await;
    let after = store.draw_status(d.drop.id).await.unwrap();
    assert_published(&d, &s, &before, &after, &entries, None);
    // Read again: the record does not change.
    assert_eq!(store.draw_status(d.drop.id).await.unwrap(), after);
    verify(h).await;
}

/// A beacon: a drop naming one refuses `run_draw` without a value, a drop
/// naming none refuses one (`INVALID_INPUT`, field `beacon`), checked
/// after the drop and its mode and before whether the draw is due, and
/// drawing nothing. With the value the draw is made, publishes it, and
/// verifies.
pub async fn draw_beacon_is_required_iff_named(h: &dyn Harness) {
    let store = h.store();
    let at = h.now().await + lead(h);
    let named = store
        .create_drop(
            NewDrop::new("Beacon drop", price(), 1)
                .hold(h.long_hold())
                .draw_at(at)
                .beacon_name("drand round 4242"),
        )
        .await
        .unwrap();
    let plain = draw_drop_at(h, &[("M", 1)], true, h.long_hold(), at).await;
    let first_come = new_drop(h, 1).await;
    let beacon = Beacon::new([0x42; 32]).unwrap();
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(user);
    for b in [&alice, &bob, &carol] {
        enter(h, &named, b, variant(&named, 0)).await;
        enter(h, &plain, b, variant(&plain, 0)).await;
    }
    let before_named = store.draw_status(named.drop.id).await.unwrap();
    assert_eq!(
        before_named.beacon_name.as_deref(),
        Some("drand round 4242")
    );
    let before_plain = store.draw_status(plain.drop.id).await.unwrap();

    let mut events = store.subscribe();
    let mark = log_head(h).await;
    assert_eq!(
        code(store.run_draw(DropId::new(), Some(beacon.clone())).await),
        "DROP_NOT_FOUND"
    );
    assert_refused(
        store
            .run_draw(first_come.drop.id, Some(beacon.clone()))
            .await,
        "NOT_A_DRAW",
        &first_come,
    );
    for due in [false, true] {
        if due {
            advance_to(h, at).await;
        }
        assert_invalid(store.run_draw(named.drop.id, None).await, "beacon");
        assert_invalid(
            store.run_draw(plain.drop.id, Some(beacon.clone())).await,
            "beacon",
        );
    }
    assert_quiet_since(h, &mut events).await;
    assert!(log_after(h, mark).await.is_empty(), "refusals log nothing");
    for d in [&named, &plain] {
        assert_eq!(store.get_drop(d.drop.id).await.unwrap().drop.drawn_at, None);
        assert_eq!(entry_of(h, d, &alice.id).await.unwrap().outcome, None);
    }

    let s = draw_with(h, &named, Some(beacon.clone())).await;
    let (entries, _) = assert_drawn(h, &named, &s, &[&alice, &bob, &carol]).await;
    let after = store.draw_status(named.drop.id).await.unwrap();
    assert_published(&named, &s, &before_named, &after, &entries, Some(&beacon));
    assert_eq!(
        store
            .run_draw(named.drop.id, Some(beacon.clone()))
            .await
            .unwrap(),
        None,
        "once"
    );

    let s = draw_now(h, &plain).await;
    let (entries, _) = assert_drawn(h, &plain, &s, &[&alice, &bob, &carol]).await;
    let after = store.draw_status(plain.drop.id).await.unwrap();
    assert_published(&plain, &s, &before_plain, &after, &entries, None);
    verify(h).await;
}

/// The draw's events, heard by a subscriber from before it: one
/// `HoldCreated { offered: true }` per winner, then `DrawCompleted` with
/// the summary's figures, then one `StockChanged` with every variant's
/// counters and line; no `WaitlistJoined`. The log tells the same, in the
/// same order, at the draw's time (stock is not logged).
pub async fn draw_events_and_log_in_order(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 1), ("L", 2)], true).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers = ["alice", "bob", "carol", "dave"].map(user);
    for (i, b) in buyers.iter().enumerate() {
        enter(h, &d, b, if i < 3 { m } else { l }).await;
    }
    let mut events = store.subscribe();
    let mark = log_head(h).await;
    let s = draw_now(h, &d).await;
    let entrants: Vec<&Buyer> = buyers.iter().collect();
    let (_, won) = assert_drawn(h, &d, &s, &entrants).await;
    assert_eq!((s.entries, s.winners, s.waiting), (4, 2, 2), "{s:?}");

    let got = events_until_marker(h, &mut events).await;
    assert_eq!(got.len(), 4, "two offers, the draw, the stock: {got:?}");
    let mut offered = HashSet::new();
    for e in &got[..2] {
        match e {
            DropEvent::HoldCreated {
                drop_id,
                reservation_id,
                buyer_id,
                variant_id,
                quantity,
                expires_at,
                offered: true,
            } => {
                let r = &won[buyer_id];
                assert_eq!(
                    (
                        *drop_id,
                        *reservation_id,
                        *variant_id,
                        *quantity,
                        *expires_at
                    ),
                    (d.drop.id, r.id, r.variant_id, 1, r.expires_at)
                );
                offered.insert(buyer_id.clone());
            }
            other => panic!("expected an offered HoldCreated, got {other:?}"),
        }
    }
    assert_eq!(
        offered,
        won.keys().cloned().collect::<HashSet<_>>(),
        "one per winner"
    );
    assert_eq!(
        got[2],
        DropEvent::DrawCompleted {
            drop_id: d.drop.id,
            drawn_at: s.drawn_at,
            entries: 4,
            winners: 2,
            waiting: 2,
        }
    );
    match &got[3] {
        DropEvent::StockChanged {
            drop_id,
            stock,
            variants,
        } => {
            assert_eq!(*drop_id, d.drop.id);
            let counters: Vec<(u32, u32, u32, u32)> = variants
                .iter()
                .map(|v| (v.total, v.reserved, v.sold, v.waitlist_length))
                .collect();
            assert_eq!(counters, [(1, 1, 0, 2), (2, 1, 0, 0)]);
            assert_eq!((stock.total, stock.reserved, stock.sold), (3, 2, 0));
            let ids: Vec<VariantId> = variants.iter().map(|v| v.id).collect();
            assert_eq!(ids, [m, l], "in the drop's order");
        }
        other => panic!("expected StockChanged, got {other:?}"),
    }

    let logged = log_after(h, mark).await;
    assert_eq!(logged.len(), 3, "two offers and the draw: {logged:?}");
    assert!(logged.windows(2).all(|p| p[0].seq < p[1].seq));
    for (e, heard) in logged[..2].iter().zip(&got[..2]) {
        let DropEvent::HoldCreated { buyer_id, .. } = heard else {
            unreachable!("checked above")
        };
        let r = &won[buyer_id];
        assert_eq!(
            e.change,
            Change::HoldCreated {
                reservation_id: r.id,
                buyer_id: r.buyer_id.clone(),
                display_name: r.display_name.clone(),
                variant_id: r.variant_id,
                quantity: 1,
                expires_at: r.expires_at,
                offered: true,
            },
            "logged in the order announced"
        );
    }
    assert_eq!(
        logged[2].change,
        Change::DrawCompleted {
            drawn_at: s.drawn_at,
            entries: 4,
            winners: 2,
            waiting: 2,
        }
    );
    for e in &logged {
        assert_eq!(e.drop_id, d.drop.id);
        if h.exact_time() {
            assert_eq!(e.at, s.drawn_at, "one change, one time");
        }
    }
    let history = store
        .drop_history(d.drop.id, mark, MAX_LOG_PAGE)
        .await
        .unwrap();
    assert_eq!(history, logged, "the drop's own history");
    verify(h).await;
}

/// A winner's offered hold that runs out goes, like any freed unit, to
/// the head of the line: the first loser in draw order, whose place the
/// second takes.
pub async fn draw_offer_that_expires_goes_to_the_next(h: &dyn Harness) {
    let store = h.store();
    let at = h.now().await + lead(h);
    let d = draw_drop_at(h, &[("M", 1)], true, h.hold(), at).await;
    let m = variant(&d, 0);
    let buyers = ["alice", "bob", "carol"].map(user);
    for b in &buyers {
        enter(h, &d, b, m).await;
    }
    let s = draw_now(h, &d).await;
    // Read without waiting: the winner's hold runs out soon under a real
    // clock.
    let mut entries = Vec::new();
    for b in &buyers {
        entries.push(entry_of(h, &d, &b.id).await.expect("an entry"));
    }
    entries.sort_by_key(|e| e.draw_position);
    let order: Vec<(Option<u32>, Option<EntryOutcome>)> = entries
        .iter()
        .map(|e| (e.draw_position, e.outcome))
        .collect();
    assert_eq!(
        order,
        [
            (Some(1), Some(EntryOutcome::Won)),
            (Some(2), Some(EntryOutcome::Waiting)),
            (Some(3), Some(EntryOutcome::Waiting)),
        ]
    );
    let (winner, next, last) = (&entries[0], &entries[1], &entries[2]);
    let won = store
        .get_reservation(winner.reservation_id.expect("won a hold"))
        .await
        .unwrap();
    assert_eq!(won.expires_at, d.drop.hold_expiry(s.drawn_at));

    advance_to(h, won.expires_at).await;
    let mut events = store.subscribe();
    let (swept, when) = around(h, store.expire_due(100)).await;
    assert_eq!(swept.unwrap(), 1, "the winner's hold");
    let offer = store
        .active_hold(d.drop.id, &next.buyer_id)
        .await
        .unwrap()
        .expect("the first loser in line is offered the unit");
    assert!(
        offer.offered && offer.variant_id == m && offer.quantity == 1,
        "{offer:?}"
    );
    assert_during(h, offer.created_at, when, "offered at the expiry");
    assert_eq!(
        store.get_reservation(won.id).await.unwrap().status,
        ReservationStatus::Expired
    );
    assert_eq!(
        store
            .waitlist_place(d.drop.id, &next.buyer_id)
            .await
            .unwrap(),
        None
    );
    let p = store
        .waitlist_place(d.drop.id, &last.buyer_id)
        .await
        .unwrap()
        .expect("the last still waits");
    assert_eq!(p.position, 1, "{p:?}");
    let got = events_until_marker(h, &mut events).await;
    let kinds: Vec<String> = got
        .iter()
        .map(|e| match e {
            DropEvent::HoldExpired { .. } => "expired".to_owned(),
            DropEvent::HoldCreated {
                buyer_id,
                offered: true,
                ..
            } => format!("offered {buyer_id}"),
            DropEvent::WaitlistLeft { buyer_id, .. } => format!("left {buyer_id}"),
            DropEvent::StockChanged { .. } => "stock".to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "expired".to_owned(),
            format!("offered {}", next.buyer_id),
            format!("left {}", next.buyer_id),
            "stock".to_owned()
        ]
    );
    let now = assert_stock(h, d.drop.id, &[(1, 1, 0)]).await;
    assert_eq!(lengths(&now.variants), [1]);
    verify(h).await;
}

/// Eight runners at once: exactly one draws, the others answer `None`;
/// the draw is whole (every winner's hold, one `drawCompleted` logged).
pub async fn draw_race_draws_once(h: &dyn Harness) {
    const RUNNERS: usize = 8;
    let store = h.store();
    let d = draw_drop(h, &[("M", 2), ("L", 1)], true).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers: Vec<Buyer> = (0..6).map(|i| user(&format!("entrant{i}"))).collect();
    for (i, b) in buyers.iter().enumerate() {
        enter(h, &d, b, if i % 2 == 0 { m } else { l }).await;
    }
    let mark = log_head(h).await;
    advance_to(h, d.drop.draw_at.unwrap()).await;
    let id = d.drop.id;
    let runs = join_all((0..RUNNERS).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.run_draw(id, None).await })
    }))
    .await;
    let drawn: Vec<DrawSummary> = runs
        .into_iter()
        .filter_map(|r| r.expect("task").expect("run_draw"))
        .collect();
    assert_eq!(drawn.len(), 1, "exactly one runner draws: {drawn:?}");
    let s = drawn[0];
    let entrants: Vec<&Buyer> = buyers.iter().collect();
    let (_, won) = assert_drawn(h, &d, &s, &entrants).await;
    assert_eq!(won.len(), 3);
    let kinds: Vec<&str> = log_after(h, mark)
        .await
        .iter()
        .map(|e| e.change.kind())
        .collect();
    assert_eq!(
        kinds,
        ["holdCreated", "holdCreated", "holdCreated", "drawCompleted"]
    );
    assert_eq!(store.run_draw(d.drop.id, None).await.unwrap(), None);
    verify(h).await;
}

/// The overview shows a viewer their own entry, and nobody else's; after
/// the draw, with its outcome, next to the hold won.
pub async fn draw_entry_in_the_overview(h: &dyn Harness) {
    let store = h.store();
    let d = draw_drop(h, &[("M", 1)], true).await;
    let plain = new_drop(h, 1).await;
    let m = variant(&d, 0);
    let [alice, bob] = ["alice", "bob"].map(user);
    let a = enter(h, &d, &alice, m).await;
    let seen = |all: Vec<crate::DropOverview>, id: DropId| {
        all.into_iter()
            .find(|o| o.state.drop.id == id)
            .expect("the drop is listed")
    };
    let mine = seen(store.overview(Some(&alice.id)).await.unwrap(), d.drop.id);
    assert_eq!(mine.user_entry, Some(a));
    assert_eq!(mine.user_reservation, None);
    let other = seen(
        store.overview(Some(&alice.id)).await.unwrap(),
        plain.drop.id,
    );
    assert_eq!(other.user_entry, None, "a first-come drop has none");
    let his = seen(store.overview(Some(&bob.id)).await.unwrap(), d.drop.id);
    assert_eq!(his.user_entry, None);
    let anyone = seen(store.overview(None).await.unwrap(), d.drop.id);
    assert_eq!(anyone.user_entry, None);

    let s = draw_now(h, &d).await;
    let (_, won) = assert_drawn(h, &d, &s, &[&alice]).await;
    let mine = seen(store.overview(Some(&alice.id)).await.unwrap(), d.drop.id);
    let entry = mine.user_entry.expect("her entry, drawn");
    assert_eq!(entry.outcome, Some(EntryOutcome::Won));
    assert_eq!(entry.reservation_id, Some(won[&alice.id].id));
    assert_eq!(mine.user_reservation.as_ref(), Some(&won[&alice.id]));
    assert_eq!(mine.state.drop.drawn_at, Some(s.drawn_at));
    verify(h).await;
}
