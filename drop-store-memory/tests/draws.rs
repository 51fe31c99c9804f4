//! Draw drops in the memory store, beyond the shared conformance suite:
//! entries racing the draw, several runners at once, the line the draw
//! fills, withdrawals reordering the kept entries, and the store's own
//! invariants after each step. Time is a manual clock; nothing here
//! asserts on timing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Beacon, Buyer, Change, Clock, DrawRandom, DropError, DropEvent, DropState, EntryOutcome,
    EventStream, InventoryStore, ManualClock, Money, NewDrop, NewVariant, ReserveRequest,
    SeededRandom, Username, VariantId, verify_draw,
};
use drop_store_memory::MemoryStore;
use futures::{FutureExt, StreamExt};

const HOLD: Duration = Duration::from_secs(60);
/// How long after the test's start the draws are due.
const UNTIL_DRAW: Duration = Duration::from_secs(600);

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

fn store(label: &str) -> (ManualClock, MemoryStore) {
    let clock = ManualClock::fixed();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .draw_random(Arc::new(SeededRandom::new(label)))
        .build();
    (clock, store)
}

fn draw_at(clock: &ManualClock) -> DateTime<Utc> {
    clock.now() + UNTIL_DRAW
}

/// A draw drop of these variants, drawing `UNTIL_DRAW` from now.
async fn draw_drop(
    store: &MemoryStore,
    clock: &ManualClock,
    sizes: &[(&str, u32)],
    waitlist: bool,
) -> DropState {
    store
        .create_drop(
            NewDrop::with_variants(
                "Raffle",
                Money::ZERO,
                sizes.iter().map(|(n, s)| NewVariant::new(*n, *s)),
            )
            .hold(HOLD)
            .waitlist(waitlist)
            .draw_at(draw_at(clock)),
        )
        .await
        .unwrap()
}

fn variant(d: &DropState, i: usize) -> VariantId {
    d.drop.variants[i].id
}

/// What the subscriber has heard so far, by kind.
fn heard(events: &mut EventStream) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(Some(e)) = events.next().now_or_never() {
        out.push(match e.unwrap() {
            DropEvent::HoldCreated { offered, .. } => format!("hold offered={offered}"),
            DropEvent::DrawCompleted { .. } => "drawn".to_owned(),
            DropEvent::StockChanged { .. } => "stock".to_owned(),
            other => format!("{other:?}"),
        });
    }
    out
}

fn code<T: std::fmt::Debug>(r: Result<T, DropError>) -> &'static str {
    r.expect_err("an error").code()
}

/// Many tasks enter while another moves the clock to `drawAt` and draws:
/// every entry that was taken is drawn (it is in the published list and
/// has an outcome), every refusal is `ENTRIES_CLOSED` and left nothing
/// behind. None is lost between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entries_racing_the_draw_are_drawn_or_refused_never_lost() {
    const EARLY: usize = 50;
    const RACING: usize = 400;
    let (clock, store) = store("racing the draw");
    let d = draw_drop(&store, &clock, &[("S", 7), ("M", 5)], true).await;
    let id = d.drop.id;
    let at = d.drop.draw_at.unwrap();
    for i in 0..EARLY {
        let v = variant(&d, i % 2);
        let a = store
            .enter_draw(id, &user(&format!("early{i}")), Some(v))
            .await
            .unwrap();
        assert!(a.changed);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(RACING + 1));
    let mut enters = Vec::new();
    for i in 0..RACING {
        let (store, barrier, v) = (store.clone(), barrier.clone(), variant(&d, i % 2));
        enters.push(tokio::spawn(async move {
            let buyer = user(&format!("racer{i}"));
            barrier.wait().await;
            let answer = store.enter_draw(id, &buyer, Some(v)).await;
            (buyer, answer)
        }));
    }
    let drawer = {
        let (store, clock, barrier) = (store.clone(), clock.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            // Let some entries in first, so the race has both outcomes.
            tokio::task::yield_now().await;
            clock.set(at);
            loop {
                if let Some(summary) = store.run_draw(id, None).await.unwrap() {
                    return summary;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut taken = vec![];
    let mut refused = vec![];
    for task in enters {
        let (buyer, answer) = task.await.unwrap();
        match answer {
            Ok(a) => {
                assert!(a.changed);
                taken.push(buyer);
            }
            Err(DropError::EntriesClosed { .. }) => refused.push(buyer),
            Err(e) => panic!("unexpected refusal {e:?}"),
        }
    }
    let summary = drawer.await.unwrap();
    eprintln!("{} racers entered, {} refused", taken.len(), refused.len());
    assert_eq!(summary.entries as usize, EARLY + taken.len());
    assert_eq!(summary.winners, 12);
    assert_eq!(summary.waiting as usize, EARLY + taken.len() - 12);

    let status = store.draw_status(id).await.unwrap();
    let published = status.published.expect("drawn");
    let receipts: HashSet<_> = published.entries.iter().map(|e| e.receipt).collect();
    assert_eq!(receipts.len(), EARLY + taken.len());
    for buyer in &taken {
        let entry = store
            .draw_entry(id, &buyer.id)
            .await
            .unwrap()
            .expect("kept");
        assert!(entry.outcome.is_some(), "{entry:?} was not drawn");
        assert!(receipts.contains(&entry.receipt), "{entry:?} not published");
    }
    for buyer in &refused {
        assert_eq!(store.draw_entry(id, &buyer.id).await.unwrap(), None);
    }
    verify_draw(&published).expect("the published draw checks out");
    store.verify_invariants().unwrap();
}

/// Several runners call `run_draw` at once: exactly one draws, the others
/// answer `None`, and the draw's events and log entries appear once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_runners_draw_exactly_once() {
    const RUNNERS: usize = 16;
    let (clock, store) = store("several runners");
    let d = draw_drop(&store, &clock, &[("one", 3)], true).await;
    let id = d.drop.id;
    for i in 0..10 {
        store
            .enter_draw(id, &user(&format!("buyer{i}")), None)
            .await
            .unwrap();
    }
    let mark = store.log_head().await.unwrap();
    let mut events = store.subscribe();
    clock.advance(UNTIL_DRAW);
    let barrier = Arc::new(tokio::sync::Barrier::new(RUNNERS));
    let runners: Vec<_> = (0..RUNNERS)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.run_draw(id, None).await.unwrap()
            })
        })
        .collect();
    let mut drew = 0;
    for r in runners {
        drew += usize::from(r.await.unwrap().is_some());
    }
    assert_eq!(drew, 1);
    assert_eq!(store.run_draw(id, None).await.unwrap(), None);
    let heard = heard(&mut events);
    assert_eq!(
        heard,
        [
            "hold offered=true",
            "hold offered=true",
            "hold offered=true",
            "drawn",
            "stock"
        ]
    );
    let log: Vec<Change> = store
        .events_after(mark, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.change)
        .collect();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log[..3].iter().all(|c| matches!(
        c,
        Change::HoldCreated {
            offered: true,
            quantity: 1,
            ..
        }
    )));
    assert!(matches!(
        log[3],
        Change::DrawCompleted {
            entries: 10,
            winners: 3,
            waiting: 7,
            ..
        }
    ));
    store.verify_invariants().unwrap();
}

/// The draw puts the losers in line in draw order: increasing tickets,
/// positions after the winners', no `waitlistJoined` per place; a
/// winner's unit freed goes to the first of them, and the winners' holds
/// start at the draw.
#[tokio::test]
async fn the_line_follows_the_draw_order() {
    let (clock, store) = store("line order");
    let d = draw_drop(&store, &clock, &[("S", 2), ("M", 1), ("L", 0)], true).await;
    let id = d.drop.id;
    let buyers: Vec<Buyer> = (0..12).map(|i| user(&format!("buyer{i}"))).collect();
    for (i, b) in buyers.iter().enumerate() {
        store
            .enter_draw(id, b, Some(variant(&d, i % 3)))
            .await
            .unwrap();
    }
    clock.advance(UNTIL_DRAW + Duration::from_secs(5));
    let drawn_at = clock.now();
    let summary = store.run_draw(id, None).await.unwrap().unwrap();
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (12, 3, 9)
    );
    assert_eq!(summary.drawn_at, drawn_at);
    let state = store.get_drop(id).await.unwrap();
    assert_eq!(state.drop.drawn_at, Some(drawn_at));
    let lengths: Vec<u32> = state.variants.iter().map(|v| v.waitlist_length).collect();
    let reserved: Vec<u32> = state.variants.iter().map(|v| v.reserved).collect();
    assert_eq!((lengths, reserved), (vec![2, 3, 4], vec![2, 1, 0]));

    for (i, v) in d.drop.variants.iter().enumerate() {
        let mut entries = Vec::new();
        for b in buyers.iter().skip(i).step_by(3) {
            entries.push((b, store.draw_entry(id, &b.id).await.unwrap().unwrap()));
        }
        entries.sort_by_key(|(_, e)| e.draw_position);
        let positions: Vec<u32> = entries
            .iter()
            .map(|(_, e)| e.draw_position.unwrap())
            .collect();
        assert_eq!(positions, [1, 2, 3, 4]);
        let stock = d.variants[i].total as usize;
        let mut last_ticket = 0;
        for (k, (b, e)) in entries.iter().enumerate() {
            assert_eq!(e.variant_id, v.id);
            if k < stock {
                assert_eq!(e.outcome, Some(EntryOutcome::Won));
                let hold = store.active_hold(id, &b.id).await.unwrap().unwrap();
                assert_eq!(Some(hold.id), e.reservation_id);
                assert!(hold.offered);
                assert_eq!((hold.quantity, hold.created_at), (1, drawn_at));
                assert_eq!(hold.expires_at, drawn_at + HOLD);
            } else {
                assert_eq!(e.outcome, Some(EntryOutcome::Waiting));
                assert_eq!(e.reservation_id, None);
                let place = store.waitlist_place(id, &b.id).await.unwrap().unwrap();
                assert_eq!(place.position as usize, k + 1 - stock);
                assert_eq!((place.quantity, place.joined_at), (1, drawn_at));
                assert!(place.ticket > last_ticket, "tickets follow the draw");
                last_ticket = place.ticket;
            }
        }
    }
    store.verify_invariants().unwrap();

    // S's first winner gives the unit back: S's first in line is offered it.
    let s: Vec<&Buyer> = buyers.iter().step_by(3).collect();
    let mut by_position = Vec::new();
    for b in &s {
        by_position.push((store.draw_entry(id, &b.id).await.unwrap().unwrap(), *b));
    }
    by_position.sort_by_key(|(e, _)| e.draw_position);
    let (winner_entry, winner) = &by_position[0];
    let next = by_position[2].1;
    store
        .release(winner_entry.reservation_id.unwrap(), &winner.id)
        .await
        .unwrap();
    let offer = store
        .active_hold(id, &next.id)
        .await
        .unwrap()
        .expect("offered");
    assert!(offer.offered);
    assert_eq!(store.waitlist_place(id, &next.id).await.unwrap(), None);
    store.verify_invariants().unwrap();
}

/// Before the draw, a plain reserve and a join answer `DRAW_ONLY` (after
/// the not-active and paused checks); after it, units nobody won are on
/// open sale and the drop sells first come.
#[tokio::test]
async fn draw_only_until_drawn_then_first_come() {
    let (clock, store) = store("draw only");
    let d = draw_drop(&store, &clock, &[("one", 5)], true).await;
    let id = d.drop.id;
    let (ann, bob, cat) = (user("ann"), user("bob"), user("cat"));
    assert_eq!(code(store.reserve(id, &ann).await), "DRAW_ONLY");
    let join = store.join_waitlist(id, &ann, ReserveRequest::new()).await;
    assert_eq!(code(join), "DRAW_ONLY");
    store.set_paused(id, true, None).await.unwrap();
    assert_eq!(code(store.reserve(id, &ann).await), "DROP_PAUSED");
    let join = store.join_waitlist(id, &ann, ReserveRequest::new()).await;
    assert_eq!(code(join), "DROP_PAUSED");
    store.set_paused(id, false, None).await.unwrap();

    store.enter_draw(id, &ann, None).await.unwrap();
    store.enter_draw(id, &bob, None).await.unwrap();
    clock.advance(UNTIL_DRAW);
    // Due, but not drawn yet: still draw only, and entries are closed.
    assert_eq!(code(store.reserve(id, &cat).await), "DRAW_ONLY");
    assert_eq!(
        code(store.enter_draw(id, &cat, None).await),
        "ENTRIES_CLOSED"
    );
    assert_eq!(
        code(store.withdraw_entry(id, &ann.id).await),
        "ENTRIES_CLOSED"
    );
    store.run_draw(id, None).await.unwrap().unwrap();
    let state = store.get_drop(id).await.unwrap();
    assert_eq!((state.stock.reserved, state.stock.available()), (2, 3));
    let held = store.reserve(id, &cat).await.unwrap();
    assert!(held.created && !held.reservation.offered);
    // A winner's existing hold answers unchanged, as any hold does.
    assert!(!store.reserve(id, &ann).await.unwrap().created);
    store.verify_invariants().unwrap();
}

/// Withdrawing reorders the kept entries (the last moves into the hole):
/// every other buyer still finds their own entry, and the draw sees
/// exactly the entries left.
#[tokio::test]
async fn withdrawals_keep_every_other_entry() {
    let (clock, store) = store("withdrawals");
    let d = draw_drop(&store, &clock, &[("one", 2)], false).await;
    let id = d.drop.id;
    let buyers: Vec<Buyer> = (0..6).map(|i| user(&format!("buyer{i}"))).collect();
    let mut receipts = Vec::new();
    for b in &buyers {
        receipts.push(store.enter_draw(id, b, None).await.unwrap().value.receipt);
    }
    let gone = store
        .withdraw_entry(id, &buyers[1].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.receipt, receipts[1]);
    assert_eq!(store.withdraw_entry(id, &buyers[1].id).await.unwrap(), None);
    store
        .withdraw_entry(id, &buyers[5].id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.entry_count(id).unwrap(), 4);
    for (i, b) in buyers.iter().enumerate() {
        let entry = store.draw_entry(id, &b.id).await.unwrap();
        match i {
            1 | 5 => assert_eq!(entry, None),
            _ => assert_eq!(entry.unwrap().receipt, receipts[i]),
        }
    }
    // Entering again after withdrawing is a new entry, with a new receipt.
    let again = store.enter_draw(id, &buyers[1], None).await.unwrap();
    assert!(again.changed);
    assert_ne!(again.value.receipt, receipts[1]);
    store.verify_invariants().unwrap();

    clock.advance(UNTIL_DRAW);
    let summary = store.run_draw(id, None).await.unwrap().unwrap();
    // No waiting list: the others lose, with their place in the draw.
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (5, 2, 0)
    );
    let mut outcomes = Vec::new();
    for b in &buyers {
        if let Some(e) = store.draw_entry(id, &b.id).await.unwrap() {
            outcomes.push((e.draw_position.unwrap(), e.outcome.unwrap()));
        }
    }
    outcomes.sort_by_key(|(p, _)| *p);
    let expected: Vec<(u32, EntryOutcome)> = (1..=5)
        .map(|p| {
            (
                p,
                if p <= 2 {
                    EntryOutcome::Won
                } else {
                    EntryOutcome::Lost
                },
            )
        })
        .collect();
    assert_eq!(outcomes, expected);
    let state = store.get_drop(id).await.unwrap();
    assert_eq!(state.variants[0].waitlist_length, 0);
    store.verify_invariants().unwrap();
}

/// The seed comes from the store's `DrawRandom` at creation: its hash is
/// public from then on, and the seed itself only after the draw. A drop
/// naming a beacon needs its value to draw; one that names none refuses
/// a value. A drop ended before `drawAt` never draws and is no runner's
/// business.
#[tokio::test]
async fn seed_beacon_and_the_runners_questions() {
    let (clock, store) = store("seed and beacon");
    let expected = SeededRandom::new("seed and beacon").seed();
    let beaconed = store
        .create_drop(
            NewDrop::new("Beaconed", Money::ZERO, 2)
                .draw_at(draw_at(&clock))
                .beacon_name("drand round 1"),
        )
        .await
        .unwrap();
    let plain = draw_drop(&store, &clock, &[("one", 1)], true).await;
    let ended = store
        .create_drop(
            NewDrop::new("Ended", Money::ZERO, 1)
                .draw_at(draw_at(&clock) - Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let first_come = store
        .create_drop(NewDrop::new("First come", Money::ZERO, 1))
        .await
        .unwrap();
    let (b, p, e) = (beaconed.drop.id, plain.drop.id, ended.drop.id);

    let status = store.draw_status(b).await.unwrap();
    assert_eq!(status.seed_hash, expected.hash());
    assert_eq!(status.beacon_name.as_deref(), Some("drand round 1"));
    assert_eq!((status.drawn_at, status.published), (None, None));
    assert_eq!(
        code(store.draw_status(first_come.drop.id).await),
        "NOT_A_DRAW"
    );
    assert_eq!(
        code(store.run_draw(first_come.drop.id, None).await),
        "NOT_A_DRAW"
    );
    assert_eq!(
        store
            .draw_entry(first_come.drop.id, &user("ann").id)
            .await
            .unwrap(),
        None
    );

    store.end_drop(e, None).await.unwrap();
    assert_eq!(
        store.next_draw_at().await.unwrap(),
        Some(plain.drop.draw_at.unwrap())
    );
    assert!(store.due_draws(10).await.unwrap().is_empty());
    // Not due yet: no draw, but the beacon rule is checked first.
    match store.run_draw(b, None).await {
        Err(DropError::InvalidInput { field, .. }) => assert_eq!(field, "beacon"),
        other => panic!("a drop naming a beacon drew without it: {other:?}"),
    }
    let beacon: Beacon = "0123abcd".parse().unwrap();
    assert_eq!(
        code(store.run_draw(p, Some(beacon.clone())).await),
        "INVALID_INPUT"
    );
    assert_eq!(store.run_draw(b, Some(beacon.clone())).await.unwrap(), None);

    store.enter_draw(b, &user("ann"), None).await.unwrap();
    clock.advance(UNTIL_DRAW);
    let due: Vec<_> = store
        .due_draws(10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(due.len(), 2);
    assert!(due.contains(&b) && due.contains(&p) && !due.contains(&e));
    assert_eq!(store.due_draws(1).await.unwrap().len(), 1);
    assert_eq!(
        store.run_draw(e, None).await.unwrap(),
        None,
        "ended before its draw"
    );

    let summary = store
        .run_draw(b, Some(beacon.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((summary.entries, summary.winners), (1, 1));
    let status = store.draw_status(b).await.unwrap();
    let published = status.published.unwrap();
    assert_eq!(published.seed, expected);
    assert_eq!(published.beacon, Some(beacon));
    assert_eq!(status.drawn_at, Some(clock.now()));
    verify_draw(&published).unwrap();
    // The empty draw still draws (and publishes an empty list).
    let summary = store.run_draw(p, None).await.unwrap().unwrap();
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (0, 0, 0)
    );
    assert_eq!(store.next_draw_at().await.unwrap(), None);
    assert!(store.due_draws(10).await.unwrap().is_empty());
    store.verify_invariants().unwrap();
}

/// The buyer's overview of a draw drop carries their entry.
#[tokio::test]
async fn the_overview_shows_the_viewers_entry() {
    let (clock, store) = store("overview");
    let d = draw_drop(&store, &clock, &[("one", 1)], true).await;
    let ann = user("ann");
    let entry = store.enter_draw(d.drop.id, &ann, None).await.unwrap().value;
    let overview = store.overview(Some(&ann.id)).await.unwrap();
    let mine = overview
        .iter()
        .find(|o| o.state.drop.id == d.drop.id)
        .unwrap();
    assert_eq!(mine.user_entry.as_ref(), Some(&entry));
    let theirs = store.overview(Some(&user("bob").id)).await.unwrap();
    assert_eq!(theirs[0].user_entry, None);
    assert_eq!(store.overview(None).await.unwrap()[0].user_entry, None);
}
