//! The hub on its own, over the memory store on a manual clock and tokio's
//! paused time: ended drops are forgotten, and expiries are counted once
//! across instances.

use std::sync::Arc;
use std::time::Duration;

use drop_core::testkit::{StoreHooks, Wrapped};
use drop_core::{
    Buyer, Clock, DropEvent, DropPatch, EventBus, EventStream, InventoryStore, ManualClock, Money,
    NewDrop, ReservationId, Username,
};
use drop_store_memory::MemoryStore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Hub;
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

/// The frames a private feed has received so far.
fn received(feed: &mut super::PrivateFeed) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    while let Ok(frame) = feed.frames.try_recv() {
        out.push(serde_json::from_str(frame.as_str()).unwrap());
    }
    out
}

/// A buyer's socket hears of their own holds ending (expired, released,
/// bought), those taken before it opened included, and of nobody else's.
#[tokio::test(start_paused = true)]
async fn private_feeds_tell_only_the_holder() {
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
    // Taken before ann's socket opened: the socket tells the hub.
    let early = store.reserve(other, &ann).await.unwrap().reservation;
    let mut ann_feed = hub.private_feed(&ann.id);
    ann_feed.know([early.id]);
    let mut bob_feed = hub.private_feed(&bob.id);
    let expiring = store.reserve(drop_id, &ann).await.unwrap().reservation;
    let bobs = store.reserve(drop_id, &bob).await.unwrap().reservation;
    settle().await;
    assert!(received(&mut ann_feed).is_empty(), "nothing ended yet");

    clock.advance(Duration::from_secs(31));
    store.expire_due(10).await.unwrap();
    store.purchase(early.id, &ann.id).await.unwrap();
    settle().await;
    let ann_got = received(&mut ann_feed);
    let kinds: Vec<(&str, &str)> = ann_got
        .iter()
        .map(|f| {
            (
                f["type"].as_str().unwrap(),
                f["reservationId"].as_str().unwrap(),
            )
        })
        .collect();
    let (expiring_id, early_id) = (expiring.id.to_string(), early.id.to_string());
    assert_eq!(
        kinds,
        vec![
            ("holdExpired", expiring_id.as_str()),
            ("holdPurchased", early_id.as_str())
        ]
    );
    let bob_got = received(&mut bob_feed);
    assert_eq!(bob_got.len(), 1, "{bob_got:?}");
    assert_eq!(bob_got[0]["type"], "holdExpired");
    assert_eq!(bob_got[0]["reservationId"], bobs.id.to_string());

    // A closed socket's buyer is forgotten: their next hold is not tracked.
    drop(bob_feed);
    let later = store.reserve(other, &bob).await.unwrap().reservation;
    settle().await;
    store.release(later.id, &bob.id).await.unwrap();
    settle().await;
    assert!(received(&mut ann_feed).is_empty(), "bob's hold told to ann");
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
    assert!(!sub.snapshot.contains(&ending.to_string()));
    assert!(sub.snapshot.contains(&lasting.to_string()));

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
    let clock = ManualClock::fixed();
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let id = store
        .create_drop(NewDrop::new("Again", Money::ZERO, 5))
        .await
        .unwrap()
        .drop
        .id;
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
        serde_json::from_str(hub.subscribe().snapshot.as_str()).unwrap();
    assert_eq!(snapshot["drops"][0]["name"], "Renamed");
    assert_eq!(snapshot["drops"][0]["paused"], false);
}
