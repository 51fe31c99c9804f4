//! Model-checked races on the store's critical sections.
//!
//! Run with:
//! `RUSTFLAGS="--cfg dropkit_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p drop-store-memory --release --lib loom`
//! (in a target dir of its own, e.g. `CARGO_TARGET_DIR=target/loom`).

use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, Clock, DropError, DropEvent, DropId, EventBus, EventStream, IdempotencyKey, LeaveReason,
    ManualClock, Money, NewDrop, NewVariant, ReservationStatus, ReserveRequest, Reserved, Username,
};
use futures::{FutureExt, StreamExt};
use loom::thread;

use crate::engine::Engine;

fn engine(clock: &ManualClock) -> Arc<Engine> {
    Arc::new(Engine::new(
        Arc::new(clock.clone()),
        EventBus::new(64),
        chrono::TimeDelta::minutes(10),
        chrono::TimeDelta::days(30),
        Arc::new(drop_core::OsRandom),
    ))
}

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

fn create(engine: &Engine, new: NewDrop) -> drop_core::DropState {
    engine.create_drop(new, None).unwrap().value
}

/// One unit of the drop's only variant, without a key.
fn reserve(engine: &Engine, id: DropId, buyer: &Buyer) -> Result<Reserved, DropError> {
    engine.reserve(id, buyer, ReserveRequest::default(), None)
}

/// Everything published so far (invariant 5: subscribers hear of every
/// committed change, and of nothing that did not commit).
fn heard(events: &mut EventStream) -> Vec<DropEvent> {
    let mut out = Vec::new();
    while let Some(Some(event)) = events.next().now_or_never() {
        out.push(event.expect("no event lost"));
    }
    out
}

/// Three buyers race for the last unit: exactly one wins, stock is exact.
#[test]
fn loom_three_threads_race_for_the_last_unit() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Last one", Money::ZERO, 1));
        let id = drop.drop.id;
        let mut events = engine.bus.subscribe();
        let handles: Vec<_> = ["ann", "ben", "cat"]
            .into_iter()
            .map(|name| {
                let engine = engine.clone();
                thread::spawn(move || reserve(&engine, id, &user(name)))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "{results:?}");
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, DropError::OutOfStock { .. }), "{e}");
            }
        }
        let stock = engine.get_drop(id).unwrap().stock;
        assert_eq!((stock.reserved, stock.sold, stock.available()), (1, 0, 0));
        engine.verify().unwrap();
        // One hold announced, the winner's, and one stock change; the
        // refusals announced nothing.
        let winner = results.iter().flatten().next().unwrap().reservation.id;
        let heard = heard(&mut events);
        assert!(
            matches!(
                &heard[..],
                [
                    DropEvent::HoldCreated { reservation_id, .. },
                    DropEvent::StockChanged { stock, .. },
                ] if *reservation_id == winner && stock.reserved == 1
            ),
            "{heard:?}"
        );
    });
}

/// A purchase races the sweeper while time crosses the hold's expiry:
/// the hold ends in exactly one state, and the counters agree with it.
#[test]
fn loom_purchase_races_expiry() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(
            &engine,
            NewDrop::new("Race", Money::ZERO, 1).hold(Duration::from_secs(60)),
        );
        let alice = user("alice");
        let hold = reserve(&engine, drop.drop.id, &alice).unwrap().reservation;
        let mut events = engine.bus.subscribe();

        let buyer = {
            let engine = engine.clone();
            let alice = alice.clone();
            thread::spawn(move || engine.purchase(hold.id, &alice.id, None))
        };
        let sweeper = {
            let engine = engine.clone();
            thread::spawn(move || engine.expire_due(10))
        };
        let timekeeper = {
            let clock = clock.clone();
            thread::spawn(move || clock.set(hold.expires_at))
        };
        let bought = buyer.join().unwrap();
        let swept = sweeper.join().unwrap();
        timekeeper.join().unwrap();
        // Whatever the race left active is now due.
        let late = engine.expire_due(10);
        let status = engine.get_reservation(hold.id).unwrap().status;
        match bought {
            Ok(purchased) => {
                assert!(purchased.created);
                assert_eq!(status, ReservationStatus::Purchased);
                assert_eq!(swept + late, 0);
            }
            Err(e) => {
                assert!(matches!(e, DropError::ReservationExpired { .. }), "{e}");
                assert_eq!(status, ReservationStatus::Expired);
                assert_eq!(swept + late, 1, "expired exactly once");
            }
        }
        let stock = engine.get_drop(drop.drop.id).unwrap().stock;
        assert_eq!(stock.reserved, 0);
        assert_eq!(
            stock.sold,
            u32::from(status == ReservationStatus::Purchased)
        );
        engine.verify().unwrap();
        // Exactly the ending that committed was announced, once.
        let heard = heard(&mut events);
        let count = |f: fn(&DropEvent) -> bool| heard.iter().filter(|e| f(e)).count();
        let bought = count(|e| matches!(e, DropEvent::PurchaseCompleted { .. }));
        let expired = count(|e| matches!(e, DropEvent::HoldExpired { .. }));
        assert_eq!(
            (bought, expired),
            match status {
                ReservationStatus::Purchased => (1, 0),
                _ => (0, 1),
            },
            "{heard:?}"
        );
        assert_eq!(count(|e| matches!(e, DropEvent::StockChanged { .. })), 1);
        let _ = clock.now();
    });
}

/// One user reserving twice at once gets one hold.
#[test]
fn loom_same_user_twice_gets_one_hold() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Twice", Money::ZERO, 5));
        let id = drop.drop.id;
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                thread::spawn(move || reserve(&engine, id, &user("alice")).unwrap())
            })
            .collect();
        let holds: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(holds[0].reservation.id, holds[1].reservation.id);
        assert_eq!(holds.iter().filter(|h| h.created).count(), 1);
        assert_eq!(engine.get_drop(id).unwrap().stock.reserved, 1);
        engine.verify().unwrap();
    });
}

/// A reserve that finds the user's hold another reserve has just taken
/// answers an id a purchase can find: the hold is indexed before the drop
/// lock is released, so no caller ever holds an id the store cannot look up.
#[test]
fn loom_same_user_reserve_answers_an_indexed_hold() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Indexed", Money::ZERO, 5));
        let id = drop.drop.id;
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                thread::spawn(move || {
                    let alice = user("alice");
                    let hold = reserve(&engine, id, &alice).unwrap().reservation;
                    // Straight from the answer to a lookup by id, as a
                    // client buying what it was just given does.
                    engine.get_reservation(hold.id).map(|r| r.id)
                })
            })
            .collect();
        for h in handles {
            let found = h.join().unwrap();
            assert!(found.is_ok(), "a reserve answered an unknown id: {found:?}");
        }
        engine.verify().unwrap();
    });
}

/// `active_hold` racing the reserve that creates the hold answers either
/// nothing or a hold that can be bought.
#[test]
fn loom_active_hold_answers_a_purchasable_hold() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Visible", Money::ZERO, 5));
        let id = drop.drop.id;
        let reserver = {
            let engine = engine.clone();
            thread::spawn(move || reserve(&engine, id, &user("alice")).unwrap())
        };
        let buyer = {
            let engine = engine.clone();
            thread::spawn(move || {
                let alice = user("alice");
                engine
                    .active_hold(id, &alice.id)
                    .unwrap()
                    .map(|h| engine.purchase(h.id, &alice.id, None))
            })
        };
        reserver.join().unwrap();
        if let Some(bought) = buyer.join().unwrap() {
            assert!(
                bought.is_ok(),
                "active_hold answered an unknown id: {bought:?}"
            );
        }
        engine.verify().unwrap();
    });
}

/// The same buyer asks for two different variants at once, with
/// `maxPerBuyer` 1: exactly one hold is taken, and the other call is told
/// of it (`HOLD_EXISTS`), whatever the interleaving.
#[test]
fn loom_one_buyer_two_variants_at_once_gets_one_hold() {
    // Which variant won, over the explored interleavings: each must.
    let seen = Arc::new(std::sync::Mutex::new([false; 2]));
    let seen_in_model = seen.clone();
    loom::model(move || {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(
            &engine,
            NewDrop::with_variants(
                "Sizes",
                Money::ZERO,
                [NewVariant::new("M", 1), NewVariant::new("L", 1)],
            ),
        );
        let id = drop.drop.id;
        let handles: Vec<_> = drop
            .variants
            .iter()
            .map(|v| {
                let engine = engine.clone();
                let request = ReserveRequest::new().variant(v.id);
                thread::spawn(move || engine.reserve(id, &user("alice"), request, None))
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let won: Vec<_> = results.iter().flatten().collect();
        assert_eq!(won.len(), 1, "{results:?}");
        assert!(won[0].created);
        for r in &results {
            if let Err(e) = r {
                match e {
                    DropError::HoldExists { reservation } => {
                        assert_eq!(reservation.id, won[0].reservation.id);
                    }
                    other => panic!("unexpected refusal: {other}"),
                }
            }
        }
        let state = engine.get_drop(id).unwrap();
        assert_eq!(state.stock.reserved, 1);
        assert_eq!(
            state
                .variants
                .iter()
                .map(|v| v.reserved)
                .collect::<Vec<_>>(),
            drop.variants
                .iter()
                .map(|v| u32::from(v.id == won[0].reservation.variant_id))
                .collect::<Vec<_>>()
        );
        let winner = drop
            .variants
            .iter()
            .position(|v| v.id == won[0].reservation.variant_id)
            .unwrap();
        seen_in_model.lock().unwrap()[winner] = true;
        engine.verify().unwrap();
    });
    assert_eq!(*seen.lock().unwrap(), [true; 2], "either variant may win");
}

/// A buyer's purchase, then its cancellation, race the same buyer
/// reserving again (and a reader of the stock): every variant keeps
/// `reserved + sold ≤ total` at every read, and the buyer never holds
/// plus owns more than `maxPerBuyer`. The reserve's answer says where in
/// the race it ran.
#[test]
fn loom_purchase_and_cancel_race_a_reserve() {
    // Which of the three answers the explored interleavings produced: all
    // three must come up, or the model did not explore the race.
    let seen = Arc::new(std::sync::Mutex::new([false; 3]));
    let seen_in_model = seen.clone();
    loom::model(move || {
        let seen = &seen_in_model;
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Returns", Money::ZERO, 1));
        let id = drop.drop.id;
        let alice = user("alice");
        let hold = reserve(&engine, id, &alice).unwrap().reservation;

        let admin = {
            let engine = engine.clone();
            let alice = alice.clone();
            thread::spawn(move || {
                let bought = engine.purchase(hold.id, &alice.id, None).unwrap();
                assert!(bought.created);
                let cancelled = engine.cancel_purchase(bought.purchase.id, None).unwrap();
                assert!(cancelled.changed);
            })
        };
        let again = {
            let engine = engine.clone();
            let alice = alice.clone();
            thread::spawn(move || reserve(&engine, id, &alice))
        };
        let reader = {
            let engine = engine.clone();
            thread::spawn(move || {
                let state = engine.get_drop(id).unwrap();
                for v in &state.variants {
                    assert!(v.reserved + v.sold <= v.total, "{state:?}");
                }
            })
        };
        admin.join().unwrap();
        reader.join().unwrap();
        let again = again.join().unwrap();

        let state = engine.get_drop(id).unwrap();
        let active = engine.active_hold(id, &alice.id).unwrap();
        let branch = match &again {
            // Before the purchase: the hold it was about to buy.
            Ok(r) if !r.created => {
                assert_eq!(r.reservation.id, hold.id);
                assert_eq!(active, None);
                0
            }
            // Between the two: the unit bought counts against the limit.
            Err(DropError::BuyerLimitReached { taken, .. }) => {
                assert_eq!(*taken, 1);
                assert_eq!(active, None);
                1
            }
            // After the cancellation: the unit is free again, and so is
            // the buyer's allowance.
            Ok(r) => {
                assert_eq!(active.as_ref().map(|h| h.id), Some(r.reservation.id));
                2
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        };
        seen.lock().unwrap()[branch] = true;
        assert_eq!(state.stock.sold, 0, "the purchase was cancelled");
        let held = active.map_or(0, |h| h.quantity);
        assert!(held + state.stock.sold <= drop.drop.max_per_buyer);
        assert_eq!(state.stock.reserved, held);
        engine.verify().unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [true; 3],
        "before the purchase, between, after the cancellation"
    );
}

/// Two first calls with one idempotency key race: one acts, the other
/// replays its answer, whichever gets the drop's lock first.
#[test]
fn loom_one_key_acts_once() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(&engine, NewDrop::new("Keyed", Money::ZERO, 5));
        let id = drop.drop.id;
        let key = IdempotencyKey::new("alice", "k-1", [7; 32]).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                let key = key.clone();
                thread::spawn(move || {
                    engine
                        .reserve(id, &user("alice"), ReserveRequest::default(), Some(&key))
                        .unwrap()
                })
            })
            .collect();
        let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(answers[0].reservation.id, answers[1].reservation.id);
        assert!(answers.iter().all(|a| a.created), "{answers:?}");
        assert_eq!(answers.iter().filter(|a| a.replayed).count(), 1);
        assert_eq!(engine.kept_records(), 1);
        assert_eq!(engine.get_drop(id).unwrap().stock.reserved, 1);
        engine.verify().unwrap();
    });
}

/// One key sent with the same fingerprint to two different drops at once
/// (no drop lock orders them): exactly one acts; the other replays it if
/// it comes after, or is told `IDEMPOTENCY_IN_PROGRESS` if it comes while
/// the first is acting. Never two holds.
#[test]
fn loom_one_key_on_two_drops_acts_once() {
    let seen = Arc::new(std::sync::Mutex::new([false; 2]));
    let seen_in_model = seen.clone();
    loom::model(move || {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drops: Vec<DropId> = (0..2)
            .map(|_| {
                create(&engine, NewDrop::new("Keyed", Money::ZERO, 5))
                    .drop
                    .id
            })
            .collect();
        let key = IdempotencyKey::new("alice", "k-1", [7; 32]).unwrap();
        let handles: Vec<_> = drops
            .iter()
            .map(|&id| {
                let engine = engine.clone();
                let key = key.clone();
                thread::spawn(move || {
                    engine.reserve(id, &user("alice"), ReserveRequest::default(), Some(&key))
                })
            })
            .collect();
        let answers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let acted: Vec<_> = answers.iter().flatten().filter(|a| !a.replayed).collect();
        assert_eq!(acted.len(), 1, "{answers:?}");
        let other = answers
            .iter()
            .find(|a| !a.as_ref().is_ok_and(|a| !a.replayed))
            .unwrap();
        match other {
            Ok(replay) => {
                assert_eq!(replay.reservation.id, acted[0].reservation.id);
                seen_in_model.lock().unwrap()[0] = true;
            }
            Err(DropError::IdempotencyInProgress { .. }) => {
                seen_in_model.lock().unwrap()[1] = true;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
        let held: u32 = drops
            .iter()
            .map(|&id| engine.get_drop(id).unwrap().stock.reserved)
            .sum();
        assert_eq!(held, 1, "one hold in all");
        assert_eq!(engine.kept_records(), 1);
        engine.verify().unwrap();
    });
    assert_eq!(
        *seen.lock().unwrap(),
        [true; 2],
        "a replay after, and a refusal during"
    );
}

/// Two writers on two drops and a reader following the log: every read
/// is a gapless run of numbers that goes on where the previous one
/// stopped, so a reader never sees a higher number before a lower one is
/// visible, and the log ends holding every change exactly once, each
/// drop's in the order they happened.
#[test]
fn loom_log_readers_never_see_a_gap() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let a = create(&engine, NewDrop::new("A", Money::ZERO, 2)).drop.id;
        let b = create(&engine, NewDrop::new("B", Money::ZERO, 2)).drop.id;
        let head = engine.log().head();
        assert_eq!(head, 2);

        let buyer = {
            let engine = engine.clone();
            thread::spawn(move || {
                let ann = user("ann");
                let hold = reserve(&engine, a, &ann).unwrap().reservation;
                engine.purchase(hold.id, &ann.id, None).unwrap();
            })
        };
        let holder = {
            let engine = engine.clone();
            thread::spawn(move || {
                reserve(&engine, b, &user("ben")).unwrap();
            })
        };
        let reader = {
            let engine = engine.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut cursor = head;
                for _ in 0..2 {
                    for e in engine.log().events_after(cursor, 100).unwrap() {
                        assert_eq!(e.seq, cursor + 1, "a gap after {cursor}");
                        cursor = e.seq;
                        seen.push(e);
                    }
                }
                seen
            })
        };
        buyer.join().unwrap();
        holder.join().unwrap();
        let seen = reader.join().unwrap();
        let all = engine.log().events_after(head, 100).unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(all.iter().zip(head + 1..).all(|(e, n)| e.seq == n));
        assert_eq!(
            seen[..],
            all[..seen.len()],
            "what the reader saw is a prefix"
        );
        let kinds = |drop: DropId| -> Vec<&str> {
            all.iter()
                .filter(|e| e.drop_id == drop)
                .map(|e| e.change.kind())
                .collect()
        };
        assert_eq!(kinds(a), ["holdCreated", "purchaseCompleted"]);
        assert_eq!(kinds(b), ["holdCreated"]);
        assert_eq!(engine.log().head(), head + 3);
    });
}

/// The sweeper expires the last unit's hold while a walk-in reserves it
/// and a buyer waits in line: under every interleaving the unit goes to
/// the waiter as an offered hold, and the walk-in is told `OUT_OF_STOCK`
/// (whichever of the two reclaims the overdue hold serves the line first).
#[test]
fn loom_expiry_racing_a_reserve_serves_the_waiter() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let drop = create(
            &engine,
            NewDrop::new("Line", Money::ZERO, 1).hold(Duration::from_secs(60)),
        );
        let id = drop.drop.id;
        let (holder, waiter) = (user("holder"), user("waiter"));
        let hold = reserve(&engine, id, &holder).unwrap().reservation;
        engine
            .join_waitlist(id, &waiter, ReserveRequest::default())
            .unwrap();
        clock.set(hold.expires_at);
        let mut events = engine.bus.subscribe();

        let walkin = {
            let engine = engine.clone();
            thread::spawn(move || reserve(&engine, id, &user("walkin")))
        };
        let sweeper = {
            let engine = engine.clone();
            thread::spawn(move || engine.expire_due(10))
        };
        let walked_in = walkin.join().unwrap();
        let swept = sweeper.join().unwrap();
        match walked_in {
            Err(DropError::OutOfStock { .. }) => {}
            other => panic!("the walk-in cut the line: {other:?}"),
        }
        // Reclaimed by the sweeper or by the reserve, never both.
        assert!(swept <= 1);
        let offer = engine
            .active_hold(id, &waiter.id)
            .unwrap()
            .expect("the waiter was offered the unit");
        assert!(offer.offered);
        assert_eq!(engine.waitlist_place(id, &waiter.id).unwrap(), None);
        let state = engine.get_drop(id).unwrap();
        assert_eq!(
            (
                state.variants[0].reserved,
                state.variants[0].waitlist_length
            ),
            (1, 0)
        );
        engine.verify().unwrap();
        // One expiry, one offer, one departure, announced in that order.
        let heard: Vec<DropEvent> = heard(&mut events)
            .into_iter()
            .filter(|e| !matches!(e, DropEvent::StockChanged { .. }))
            .collect();
        assert!(
            matches!(
                heard[..],
                [
                    DropEvent::HoldExpired { .. },
                    DropEvent::HoldCreated { offered: true, .. },
                    DropEvent::WaitlistLeft {
                        reason: LeaveReason::Offered,
                        ..
                    }
                ]
            ),
            "{heard:?}"
        );
    });
}

/// A release races a join for the unit it frees: either the join comes
/// first and the unit is offered to the new head, or the release does and
/// the join is told to reserve instead. The unit is never lost between
/// the two.
#[test]
fn loom_release_racing_a_join_loses_no_unit() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let id = create(&engine, NewDrop::new("Line", Money::ZERO, 1))
            .drop
            .id;
        let (holder, waiter) = (user("holder"), user("waiter"));
        let hold = reserve(&engine, id, &holder).unwrap().reservation;

        let releaser = {
            let engine = engine.clone();
            let holder = holder.clone();
            thread::spawn(move || engine.release(hold.id, &holder.id))
        };
        let joiner = {
            let engine = engine.clone();
            let waiter = waiter.clone();
            thread::spawn(move || engine.join_waitlist(id, &waiter, ReserveRequest::default()))
        };
        releaser.join().unwrap().unwrap();
        let joined = joiner.join().unwrap();
        let offer = engine.active_hold(id, &waiter.id).unwrap();
        let available = engine.get_drop(id).unwrap().variants[0].available();
        match joined {
            Ok(place) => {
                assert!(place.changed);
                assert!(offer.expect("offered once released").offered);
                assert_eq!(available, 0);
            }
            Err(DropError::WaitlistNotNeeded { .. }) => {
                assert_eq!(offer, None);
                assert_eq!(available, 1, "back on sale");
            }
            Err(e) => panic!("{e}"),
        }
        assert_eq!(engine.waitlist_place(id, &waiter.id).unwrap(), None);
        engine.verify().unwrap();
    });
}

/// Two runners draw one drop at once: exactly one draws, the other
/// answers `None`, and the draw's events are published once, in order.
#[test]
fn loom_two_runners_draw_exactly_once() {
    loom::model(|| {
        let clock = ManualClock::fixed();
        let engine = engine(&clock);
        let draw_at = clock.now() + chrono::TimeDelta::seconds(60);
        let drop = create(
            &engine,
            NewDrop::new("Raffle", Money::ZERO, 1).draw_at(draw_at),
        );
        let id = drop.drop.id;
        let (ann, ben) = (user("ann"), user("ben"));
        engine.enter_draw(id, &ann, None).unwrap();
        engine.enter_draw(id, &ben, None).unwrap();
        clock.set(draw_at);
        let mut events = engine.bus.subscribe();
        let runners: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                thread::spawn(move || engine.run_draw(id, None).unwrap())
            })
            .collect();
        let drew: Vec<_> = runners.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(drew.iter().flatten().count(), 1, "{drew:?}");
        let summary = drew.into_iter().flatten().next().unwrap();
        assert_eq!(
            (summary.entries, summary.winners, summary.waiting),
            (2, 1, 1)
        );
        let heard = heard(&mut events);
        assert!(
            matches!(
                &heard[..],
                [
                    DropEvent::HoldCreated { offered: true, .. },
                    DropEvent::DrawCompleted { winners: 1, .. },
                    DropEvent::StockChanged { .. },
                ]
            ),
            "{heard:?}"
        );
        engine.verify().unwrap();
    });
}
