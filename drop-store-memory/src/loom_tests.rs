//! Model-checked races on the store's critical sections.
//!
//! Run with:
//! `RUSTFLAGS="--cfg dropkit_loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p drop-store-memory --release --lib loom`
//! (in a target dir of its own, e.g. `CARGO_TARGET_DIR=target/loom`).

use std::sync::Arc;
use std::time::Duration;

use drop_core::Buyer;
use drop_core::{
    Clock, DropError, DropEvent, EventBus, EventStream, ManualClock, Money, NewDrop,
    ReservationStatus, Transition, Username,
};
use futures::{FutureExt, StreamExt};
use loom::thread;

use crate::engine::Engine;

fn engine(clock: &ManualClock) -> Arc<Engine> {
    Arc::new(Engine::new(
        Arc::new(clock.clone()),
        EventBus::new(64),
        chrono::TimeDelta::minutes(10),
    ))
}

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
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
        let drop = engine
            .create_drop(NewDrop::new("Last one", Money::ZERO, 1))
            .unwrap();
        let id = drop.drop.id;
        let mut events = engine.bus.subscribe();
        let handles: Vec<_> = ["ann", "ben", "cat"]
            .into_iter()
            .map(|name| {
                let engine = engine.clone();
                thread::spawn(move || engine.reserve(id, &user(name)))
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
        let drop = engine
            .create_drop(NewDrop::new("Race", Money::ZERO, 1).hold(Duration::from_secs(60)))
            .unwrap();
        let alice = user("alice");
        let hold = engine.reserve(drop.drop.id, &alice).unwrap().reservation;
        let mut events = engine.bus.subscribe();

        let buyer = {
            let engine = engine.clone();
            let alice = alice.clone();
            thread::spawn(move || engine.transition(hold.id, Transition::Purchase, &alice.id))
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
            Ok((_, purchase)) => {
                assert!(purchase.is_some());
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
        let drop = engine
            .create_drop(NewDrop::new("Twice", Money::ZERO, 5))
            .unwrap();
        let id = drop.drop.id;
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                thread::spawn(move || engine.reserve(id, &user("alice")).unwrap())
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
        let drop = engine
            .create_drop(NewDrop::new("Indexed", Money::ZERO, 5))
            .unwrap();
        let id = drop.drop.id;
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let engine = engine.clone();
                thread::spawn(move || {
                    let alice = user("alice");
                    let hold = engine.reserve(id, &alice).unwrap().reservation;
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
        let drop = engine
            .create_drop(NewDrop::new("Visible", Money::ZERO, 5))
            .unwrap();
        let id = drop.drop.id;
        let reserver = {
            let engine = engine.clone();
            thread::spawn(move || engine.reserve(id, &user("alice")).unwrap())
        };
        let buyer = {
            let engine = engine.clone();
            thread::spawn(move || {
                let alice = user("alice");
                engine
                    .active_hold(id, &alice.id)
                    .unwrap()
                    .map(|h| engine.transition(h.id, Transition::Purchase, &alice.id))
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
