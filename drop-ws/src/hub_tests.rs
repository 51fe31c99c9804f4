//! The hub on its own, over the memory store on a manual clock and tokio's
//! paused time: discrete frames come from the log, numbered and in order
//! (a lagging bus loses none), a buyer's own frames go to that buyer only,
//! a client resumes from a position, ended drops are forgotten, and
//! expiries are counted once across instances.

use std::sync::Arc;
use std::time::Duration;

use drop_core::testkit::{StoreHooks, Wrapped};
use drop_core::{
    Buyer, BuyerId, Clock, DropEvent, DropPatch, EventBus, EventStream, InventoryStore,
    ManualClock, Money, NewDrop, ReservationId, Username,
};
use drop_store_memory::MemoryStore;
use tokio::sync::broadcast::error::TryRecvError;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Batch, Hub};
use crate::metrics::Metrics;
use crate::names::FeedNames;

const TICK: Duration = Duration::from_millis(50);

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

async fn start(store: Arc<dyn InventoryStore>, clock: &ManualClock) -> (Hub, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let hub = Hub::start(
        store,
        Arc::new(clock.clone()),
        metrics.clone(),
        super::HubSettings {
            tick: TICK,
            queue: 64,
            names: FeedNames::Show,
        },
        CancellationToken::new(),
        &TaskTracker::new(),
    )
    .await
    .unwrap();
    (hub, metrics)
}

/// A memory store on a manual clock, with one drop of `stock` units.
async fn one_drop(name: &str, stock: u32) -> (ManualClock, MemoryStore, drop_core::DropId) {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let id = store
        .create_drop(NewDrop::new(name, Money::ZERO, stock))
        .await
        .unwrap()
        .drop
        .id;
    (clock, store, id)
}

/// Lets the hub task run (paused time: sleeping moves tokio's clock).
async fn settle() {
    tokio::time::sleep(Duration::from_secs(3)).await;
}

fn resyncs(metrics: &Metrics) -> String {
    metrics
        .encode()
        .lines()
        .find(|l| l.starts_with("dropkit_hub_resyncs_total"))
        .unwrap()
        .to_owned()
}

/// The discrete frames a socket of `viewer` would send, of what `sub` has
/// received so far.
fn received(sub: &mut super::Subscription, viewer: Option<&BuyerId>) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    loop {
        match sub.frames.try_recv() {
            Ok(batch) => match &*batch {
                Batch::Frames(frames) => out.extend(
                    frames
                        .iter()
                        .filter(|f| f.seq > sub.floor && f.is_for(viewer))
                        .map(|f| {
                            let v: serde_json::Value =
                                serde_json::from_str(f.frame.as_str()).unwrap();
                            assert_eq!(v["seq"], f.seq, "{v}");
                            v
                        }),
                ),
                Batch::Resync => panic!("unexpected resync"),
            },
            Err(TryRecvError::Empty) => return out,
            Err(err) => panic!("{err}"),
        }
    }
}

fn kinds(frames: &[serde_json::Value]) -> Vec<&str> {
    frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
}

/// A buyer's socket hears of their own holds ending (expired, released,
/// bought), those taken before it opened included, and of nobody else's.
#[tokio::test(start_paused = true)]
async fn private_frames_go_only_to_the_holder() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let drop_id = store
        .create_drop(NewDrop::new("Mine", Money::ZERO, 10).hold(Duration::from_secs(30)))
        .await
        .unwrap()
        .drop
        .id;
    let other = store
        .create_drop(NewDrop::new("Other", Money::ZERO, 10).hold(Duration::from_secs(300)))
        .await
        .unwrap()
        .drop
        .id;
    let (hub, _) = start(Arc::new(store.clone()), &clock).await;
    let (ann, bob) = (user("ann"), user("bob"));
    // Taken before ann's socket opened.
    let early = store.reserve(other, &ann).await.unwrap().reservation;
    let mut sub = hub.subscribe();
    let expiring = store.reserve(drop_id, &ann).await.unwrap().reservation;
    let bobs = store.reserve(drop_id, &bob).await.unwrap().reservation;
    settle().await;
    assert!(
        received(&mut sub, Some(&ann.id)).is_empty(),
        "nothing ended yet"
    );

    clock.advance(Duration::from_secs(31));
    store.expire_due(10).await.unwrap();
    store.purchase(early.id, &ann.id).await.unwrap();
    settle().await;
    let mut bob_sub = hub.subscribe();
    let all: Vec<serde_json::Value> = {
        // One socket of each, and a visitor's, over the same frames.
        let frames = received(&mut sub, Some(&ann.id));
        let private: Vec<(&str, &str)> = frames
            .iter()
            .filter(|f| f["type"] != "purchase")
            .map(|f| {
                (
                    f["type"].as_str().unwrap(),
                    f["reservationId"].as_str().unwrap(),
                )
            })
            .collect();
        let (expiring_id, early_id) = (expiring.id.to_string(), early.id.to_string());
        assert_eq!(
            private,
            vec![
                ("holdExpired", expiring_id.as_str()),
                ("holdPurchased", early_id.as_str())
            ]
        );
        frames
    };
    // Ordered by the log: the expiry before the purchase and its frames.
    let seqs: Vec<u64> = all.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "{seqs:?}");
    assert_eq!(kinds(&all), ["holdExpired", "purchase", "holdPurchased"]);
    assert!(
        !all.iter()
            .any(|f| f["reservationId"] == bobs.id.to_string()),
        "bob's hold told to ann: {all:?}"
    );

    // Bob's socket (joined later) hears of his release, ann's does not.
    let mut ann_sub = hub.subscribe();
    let later = store.reserve(other, &bob).await.unwrap().reservation;
    store.release(later.id, &bob.id).await.unwrap();
    settle().await;
    let bob_got = received(&mut bob_sub, Some(&bob.id));
    assert_eq!(kinds(&bob_got), ["holdReleased"], "{bob_got:?}");
    assert_eq!(bob_got[0]["reservationId"], later.id.to_string());
    assert!(
        received(&mut ann_sub, Some(&ann.id)).is_empty(),
        "bob's hold told to ann"
    );
}

/// Every discrete frame carries its entry's number: above the snapshot's,
/// increasing, and a frame per purchase in the order they happened.
#[tokio::test(start_paused = true)]
async fn discrete_frames_carry_increasing_seq() {
    let (clock, store, drop_id) = one_drop("Numbered", 10).await;
    let (hub, _) = start(Arc::new(store.clone()), &clock).await;
    let mut sub = hub.subscribe();
    let snapshot: serde_json::Value = serde_json::from_str(sub.first[0].as_str()).unwrap();
    assert_eq!(snapshot["type"], "snapshot");
    let at = snapshot["seq"].as_u64().unwrap();
    assert_eq!(at, store.log_head().await.unwrap());
    let names = ["ann", "ben", "cat", "dan"];
    for name in names {
        let hold = store
            .reserve(drop_id, &user(name))
            .await
            .unwrap()
            .reservation;
        store.purchase(hold.id, &user(name).id).await.unwrap();
    }
    let created = store
        .create_drop(NewDrop::new("Later", Money::ZERO, 3))
        .await
        .unwrap()
        .drop
        .id;
    settle().await;
    let frames = received(&mut sub, None);
    assert_eq!(
        kinds(&frames),
        [
            "purchase",
            "purchase",
            "purchase",
            "purchase",
            "dropCreated"
        ]
    );
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert!(seqs[0] > at, "{seqs:?} after {at}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let buyers: Vec<&str> = frames[..4]
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(buyers, names);
    assert_eq!(frames[4]["drop"]["id"], created.to_string());
    assert_eq!(hub.cursor(), store.log_head().await.unwrap());
}

/// A bus that lags (events lost before the hub read them) no longer loses
/// purchase frames: they come from the log.
#[tokio::test(start_paused = true)]
async fn a_lagged_bus_loses_no_purchase_frame() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let drop = store
        .create_drop(NewDrop::new("Lossy", Money::ZERO, 5))
        .await
        .unwrap();
    // The hub hears a bus of two places that the test floods, never the
    // store's own events.
    let relay = Arc::new(Wrapped::new(
        Arc::new(store.clone()),
        Relay(EventBus::new(2)),
    ));
    let (hub, metrics) = start(relay.clone(), &clock).await;
    let mut sub = hub.subscribe();
    let before = resyncs(&metrics);
    let hold = store
        .reserve(drop.drop.id, &user("ann"))
        .await
        .unwrap()
        .reservation;
    store.purchase(hold.id, &user("ann").id).await.unwrap();
    // Far more than the bus holds: the hub misses them, purchase included.
    let flood = (0..10).map(|_| DropEvent::HoldExpired {
        drop_id: drop.drop.id,
        reservation_id: ReservationId::new(),
    });
    relay.hooks.0.publish(flood);
    settle().await;
    assert_ne!(resyncs(&metrics), before, "the bus did not lag");
    let frames = received(&mut sub, Some(&user("ann").id));
    assert_eq!(kinds(&frames), ["purchase", "holdPurchased"], "{frames:?}");
    assert_eq!(frames[0]["displayName"], "ann");
}

/// A client that left at a position gets, on resuming, the frames of what
/// it missed (its buyer's own among them), then stock, then `resumed`; far
/// behind, or ahead of the log, it gets nothing (a snapshot instead).
#[tokio::test(start_paused = true)]
async fn resuming_replays_what_was_missed() {
    let (clock, store, drop_id) = one_drop("Again", 5).await;
    let (hub, _) = start(Arc::new(store.clone()), &clock).await;
    let left = hub.cursor();
    let (ann, bob) = (user("ann"), user("bob"));
    for buyer in [&ann, &bob] {
        let hold = store.reserve(drop_id, buyer).await.unwrap().reservation;
        store.purchase(hold.id, &buyer.id).await.unwrap();
    }
    settle().await;
    let position = hub.cursor();
    assert!(position > left);
    // From the frames the hub keeps, and, by a hub started since (which
    // has none of them), from the store.
    let (later, _) = start(Arc::new(store.clone()), &clock).await;
    assert_eq!(later.cursor(), position);
    for hub in [&hub, &later] {
        let sub = hub
            .resume(&store, left, Some(&ann.id))
            .await
            .expect("resumes");
        assert_eq!(sub.floor, position);
        let first: Vec<serde_json::Value> = sub
            .first
            .iter()
            .map(|f| serde_json::from_str(f.as_str()).unwrap())
            .collect();
        assert_eq!(
            kinds(&first),
            ["purchase", "holdPurchased", "purchase", "stock", "resumed"]
        );
        assert_eq!(first[0]["displayName"], "ann");
        assert_eq!(first[2]["displayName"], "bob");
        assert!(first[0]["seq"].as_u64().unwrap() > left);
        assert_eq!(first[3]["soldStock"], 2);
        assert_eq!(first[4]["after"], left);
        assert_eq!(first[4]["seq"], position);
        // Bob's socket resumes with his own frame, not ann's.
        let bobs: Vec<serde_json::Value> = hub
            .resume(&store, left, Some(&bob.id))
            .await
            .unwrap()
            .first
            .iter()
            .map(|f| serde_json::from_str(f.as_str()).unwrap())
            .collect();
        assert_eq!(
            kinds(&bobs),
            ["purchase", "purchase", "holdPurchased", "stock", "resumed"]
        );
        assert_eq!(bobs[2]["seq"], bobs[1]["seq"]);
    }

    assert!(
        hub.resume(&store, position + 5, None).await.is_none(),
        "beyond the log"
    );
    assert!(hub.resume(&store, position, None).await.is_some());
}

/// A drop that ends leaves the hub's copy, the board and the snapshot
/// within the hub's check interval; the sweep of its last hold afterwards
/// is ignored (no reload, nothing comes back).
#[tokio::test(start_paused = true)]
async fn ended_drops_are_forgotten() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let ends = clock.now() + chrono::Duration::seconds(60);
    let ending = store
        .create_drop(
            NewDrop::new("Ending", Money::ZERO, 5)
                .ends_at(ends)
                .hold(Duration::from_secs(30)),
        )
        .await
        .unwrap()
        .drop
        .id;
    let lasting = store
        .create_drop(NewDrop::new("Lasting", Money::ZERO, 5))
        .await
        .unwrap()
        .drop
        .id;
    let (hub, metrics) = start(Arc::new(store.clone()), &clock).await;
    store.reserve(lasting, &user("bob")).await.unwrap();
    clock.advance(Duration::from_secs(45));
    // Taken before the end, running out after it.
    store.reserve(ending, &user("ann")).await.unwrap();
    settle().await;
    assert_eq!(hub.drop_count(), 2);
    assert!(hub.subscribe().stock.borrow().contains_key(&ending));

    clock.advance(Duration::from_secs(16));
    settle().await;
    assert_eq!(hub.drop_count(), 1, "the ended drop is still kept");
    let sub = hub.subscribe();
    assert!(
        !sub.stock.borrow().contains_key(&ending),
        "still on the board"
    );
    assert!(sub.stock.borrow().contains_key(&lasting));
    assert!(!sub.first[0].contains(&ending.to_string()));
    assert!(sub.first[0].contains(&lasting.to_string()));

    // Its last hold is swept after the end: nothing changes, no reload,
    // but the expiry is counted.
    let before = resyncs(&metrics);
    clock.advance(Duration::from_secs(30));
    assert_eq!(store.expire_due(10).await.unwrap(), 2);
    settle().await;
    assert_eq!(hub.drop_count(), 1);
    assert!(!hub.subscribe().stock.borrow().contains_key(&ending));
    assert_eq!(resyncs(&metrics), before);
    assert!(
        metrics
            .encode()
            .contains("dropkit_operations_total{op=\"expire\",outcome=\"ok\"} 2\n"),
        "{}",
        metrics.encode()
    );
}

/// A hub started after a drop ended hears of it only from late events:
/// the first makes it reload once, the next are ignored.
#[tokio::test(start_paused = true)]
async fn events_of_a_drop_that_ended_before_start_reload_once() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let ends = clock.now() + chrono::Duration::seconds(60);
    let ended = store
        .create_drop(
            NewDrop::new("Ended", Money::ZERO, 5)
                .ends_at(ends)
                .hold(Duration::from_secs(50)),
        )
        .await
        .unwrap()
        .drop
        .id;
    store.reserve(ended, &user("ann")).await.unwrap();
    clock.advance(Duration::from_secs(30));
    store.reserve(ended, &user("ben")).await.unwrap();
    clock.advance(Duration::from_secs(31));
    let (hub, metrics) = start(Arc::new(store.clone()), &clock).await;
    assert_eq!(hub.drop_count(), 0);
    let at_start = resyncs(&metrics);

    assert_eq!(store.expire_due(10).await.unwrap(), 1);
    settle().await;
    let after_first = resyncs(&metrics);
    assert_ne!(
        after_first, at_start,
        "an unknown drop makes the hub reload"
    );

    clock.advance(Duration::from_secs(30));
    assert_eq!(store.expire_due(10).await.unwrap(), 1);
    settle().await;
    assert_eq!(resyncs(&metrics), after_first, "reloaded again");
    assert_eq!(hub.drop_count(), 0);
}

/// Events of "another instance" injected into a store's feed, as the
/// PostgreSQL store relays them: subscribers hear this bus instead.
#[derive(Debug)]
struct Relay(EventBus);

impl StoreHooks for Relay {
    fn subscribe(&self, _: &dyn InventoryStore) -> EventStream {
        self.0.subscribe()
    }
}

/// Each instance counts the expiries it committed, not those it hears of
/// from the others, so the instances' counters add up to the expiries.
#[tokio::test(start_paused = true)]
async fn expiries_from_other_instances_are_not_counted_here() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let drop = store
        .create_drop(NewDrop::new("Counted", Money::ZERO, 5))
        .await
        .unwrap();
    let relay = Arc::new(Wrapped::new(Arc::new(store), Relay(EventBus::new(64))));
    let (hub, metrics) = start(relay.clone(), &clock).await;
    let expired = || DropEvent::HoldExpired {
        drop_id: drop.drop.id,
        reservation_id: ReservationId::new(),
    };
    relay.hooks.0.publish_remote((0..5).map(|_| expired()));
    relay.hooks.0.publish((0..2).map(|_| expired()));
    // Events are applied in order: once this drop is in, so are the others.
    let other = relay
        .inner
        .create_drop(NewDrop::new("Marker", Money::ZERO, 1))
        .await
        .unwrap();
    relay
        .hooks
        .0
        .publish([DropEvent::DropCreated { drop: other }]);
    settle().await;
    assert_eq!(hub.drop_count(), 2);
    let text = metrics.encode();
    assert!(
        text.contains("dropkit_operations_total{op=\"expire\",outcome=\"ok\"} 2\n"),
        "{text}"
    );
}

/// An edit that reopens an ended drop (a later `endsAt`) brings it back
/// into the hub's copy, and so into every new snapshot; an edit of an
/// ended drop the hub no longer shows is not news.
#[tokio::test(start_paused = true)]
async fn an_edit_reopening_an_ended_drop_brings_it_back() {
    let (clock, store, id) = one_drop("Again", 5).await;
    let (hub, _) = start(Arc::new(store.clone()), &clock).await;
    assert_eq!(hub.drop_count(), 1);
    store.end_drop(id, None).await.unwrap();
    clock.advance(Duration::from_secs(1));
    settle().await;
    assert_eq!(hub.drop_count(), 0, "an ended drop is forgotten");

    store
        .update_drop(id, &DropPatch::new().name("Renamed"), None)
        .await
        .unwrap();
    settle().await;
    assert_eq!(hub.drop_count(), 0, "still ended");

    let later = clock.now() + chrono::Duration::hours(1);
    store
        .update_drop(id, &DropPatch::new().ends_at(Some(later)), None)
        .await
        .unwrap();
    settle().await;
    assert_eq!(hub.drop_count(), 1, "reopened");
    let snapshot: serde_json::Value =
        serde_json::from_str(hub.subscribe().first[0].as_str()).unwrap();
    assert_eq!(snapshot["drops"][0]["name"], "Renamed");
    assert_eq!(snapshot["drops"][0]["paused"], false);
}

/// A drop's frame shows the drop as its entry has it, even when the log is
/// read before the bus event of the same change arrives (a follow-up read,
/// another instance's change): a pause is framed paused, and a drop created
/// meanwhile is framed at all.
#[tokio::test(start_paused = true)]
async fn drop_frames_read_before_their_bus_event_show_the_change() {
    let (clock, store, id) = one_drop("Early", 5).await;
    // The hub hears only what the test publishes.
    let relay = Arc::new(Wrapped::new(Arc::new(store), Relay(EventBus::new(64))));
    let (hub, _) = start(relay.clone(), &clock).await;
    let mut sub = hub.subscribe();
    relay.inner.set_paused(id, true, None).await.unwrap();
    let created = relay
        .inner
        .create_drop(NewDrop::new("Unheard", Money::ZERO, 3))
        .await
        .unwrap();
    // Some other change the log has frames for makes the hub read it.
    relay.hooks.0.publish_remote([DropEvent::HoldExpired {
        drop_id: id,
        reservation_id: ReservationId::new(),
    }]);
    settle().await;
    let frames = received(&mut sub, None);
    assert_eq!(kinds(&frames), ["dropUpdated", "dropCreated"], "{frames:?}");
    assert_eq!(frames[0]["drop"]["paused"], true, "{}", frames[0]);
    assert_eq!(frames[1]["drop"]["name"], "Unheard", "{}", frames[1]);
    assert_eq!(frames[1]["drop"]["availableStock"], 3, "{}", frames[1]);
    assert_eq!(hub.drop_count(), 2);

    // The bus events arriving late change nothing the frames said.
    relay
        .hooks
        .0
        .publish([DropEvent::DropCreated { drop: created }]);
    settle().await;
    assert!(received(&mut sub, None).is_empty());
    let snapshot: serde_json::Value =
        serde_json::from_str(hub.subscribe().first[0].as_str()).unwrap();
    let paused: Vec<bool> = snapshot["drops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["paused"].as_bool().unwrap())
        .collect();
    assert_eq!(paused.len(), 2);
    assert!(
        paused.contains(&true) && paused.contains(&false),
        "{snapshot}"
    );
}

/// The waiting list's entries make their frames: an offered hold and a
/// join go to their buyer alone, a leave tells its buyer why and everyone
/// that the line moved; a hold taken by a reserve makes none.
#[tokio::test(start_paused = true)]
async fn waitlist_entries_make_their_frames() {
    use drop_core::{Change, LeaveReason, LogEntry, VariantId};

    let (clock, store, drop_id) = one_drop("Line", 1).await;
    let (hub, _) = start(Arc::new(store), &clock).await;
    let ann = user("ann");
    let variant = VariantId::new();
    let reservation = ReservationId::new();
    let at = clock.now();
    let expires_at = at + chrono::Duration::seconds(60);
    let held = |offered| {
        LogEntry::new(
            7,
            at,
            drop_id,
            Change::HoldCreated {
                reservation_id: reservation,
                buyer_id: ann.id.clone(),
                display_name: ann.display_name.clone(),
                variant_id: variant,
                quantity: 2,
                expires_at,
                offered,
            },
        )
    };
    let joined = LogEntry::new(
        5,
        at,
        drop_id,
        Change::WaitlistJoined {
            buyer_id: ann.id.clone(),
            display_name: ann.display_name.clone(),
            variant_id: variant,
            quantity: 2,
            ticket: 41,
        },
    );
    let left = LogEntry::new(
        8,
        at,
        drop_id,
        Change::WaitlistLeft {
            buyer_id: ann.id.clone(),
            variant_id: variant,
            quantity: 2,
            ticket: 41,
            reason: LeaveReason::Offered,
        },
    );
    let frames = |entry: &LogEntry| {
        let state = hub.lock();
        hub.frames_of(&state, entry, at)
            .into_iter()
            .map(|f| {
                let json: serde_json::Value = serde_json::from_str(f.frame.as_str()).unwrap();
                (f.to, json)
            })
            .collect::<Vec<_>>()
    };

    assert!(frames(&held(false)).is_empty(), "a reserve's hold is stock");

    let offered = frames(&held(true));
    assert_eq!(offered.len(), 1, "{offered:?}");
    let (to, msg) = &offered[0];
    assert_eq!(to.as_ref(), Some(&ann.id));
    assert_eq!(msg["type"], "holdOffered");
    assert_eq!(msg["seq"], 7);
    assert_eq!(msg["dropId"], drop_id.to_string());
    let hold = &msg["reservation"];
    assert_eq!(hold["id"], reservation.to_string());
    assert_eq!(hold["dropId"], drop_id.to_string());
    assert_eq!(hold["variantId"], variant.to_string());
    assert_eq!(hold["quantity"], 2);
    assert_eq!(hold["status"], "active");
    assert_eq!(hold["offered"], true);
    assert_eq!(hold["displayName"], "ann");
    assert_eq!(hold["createdAt"], crate::wire::time(at));
    assert_eq!(hold["expiresAt"], crate::wire::time(expires_at));

    let join = frames(&joined);
    assert_eq!(join.len(), 1, "{join:?}");
    assert_eq!(join[0].0.as_ref(), Some(&ann.id));
    let msg = &join[0].1;
    assert_eq!(msg["type"], "waitlistJoined");
    assert_eq!(
        (
            msg["seq"].as_u64(),
            msg["ticket"].as_u64(),
            msg["quantity"].as_u64()
        ),
        (Some(5), Some(41), Some(2))
    );
    assert_eq!(msg["variantId"], variant.to_string());

    let leave = frames(&left);
    let shapes: Vec<(bool, &str)> = leave
        .iter()
        .map(|(to, m)| (to.is_some(), m["type"].as_str().unwrap()))
        .collect();
    assert_eq!(shapes, [(false, "waitlistMoved"), (true, "waitlistLeft")]);
    let moved = &leave[0].1;
    assert_eq!(moved["ticket"], 41);
    assert_eq!(moved["variantId"], variant.to_string());
    assert_eq!(moved["seq"], 8);
    // The public frame names nobody.
    assert!(!moved.to_string().contains("ann"), "{moved}");
    let own = &leave[1];
    assert_eq!(own.0.as_ref(), Some(&ann.id));
    assert_eq!(own.1["reason"], "offered");
    assert_eq!(own.1["ticket"], 41);

    // A drop the hub does not keep (ended and forgotten) moves no line
    // that clients show: only the buyer hears.
    let elsewhere = LogEntry::new(9, at, drop_core::DropId::new(), left.change.clone());
    let kinds: Vec<String> = frames(&elsewhere)
        .iter()
        .map(|(_, m)| m["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["waitlistLeft"]);
}
