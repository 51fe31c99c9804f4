//! The draw runner driving the memory store, under tokio's paused time:
//! it draws each drop at its `drawAt`, wakes for a drop created while it
//! sleeps, waits for a named beacon, and two runners draw each drop once.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Beacon, Buyer, Change, Clock, DrawRunner, DropEvent, DropId, EntryOutcome, InventoryStore,
    ManualClock, Money, NewDrop, RecordedBeacons, Username, verify_draw,
};
use drop_store_memory::MemoryStore;
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

/// Wall time that follows tokio's (paused) clock, so auto-advance moves
/// the store's time and the runner's sleeps together.
#[derive(Debug)]
struct TokioClock {
    base: DateTime<Utc>,
    start: Instant,
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.base + chrono::Duration::from_std(self.start.elapsed()).unwrap()
    }
}

fn store() -> (MemoryStore, Arc<dyn Clock>) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock {
        base: ManualClock::fixed().now(),
        start: Instant::now(),
    });
    (MemoryStore::with_clock(clock.clone()), clock)
}

fn buyer(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

/// A one-unit draw drop drawing `in_` from now, with two entries.
async fn draw_drop(store: &MemoryStore, clock: &dyn Clock, in_: Duration) -> DropId {
    let at = clock.now() + chrono::Duration::from_std(in_).unwrap();
    let id = store
        .create_drop(NewDrop::new("Draw", Money::ZERO, 1).draw_at(at))
        .await
        .unwrap()
        .drop
        .id;
    for name in ["ann", "bob"] {
        store.enter_draw(id, &buyer(name), None).await.unwrap();
    }
    id
}

/// Waits (on tokio's paused clock) for the drop's `DrawCompleted`, and
/// answers the instant it came.
async fn drawn(
    events: &mut drop_core::EventStream,
    id: DropId,
    clock: &dyn Clock,
) -> DateTime<Utc> {
    loop {
        match events.next().await {
            Some(Ok(DropEvent::DrawCompleted { drop_id, .. })) if drop_id == id => {
                return clock.now();
            }
            Some(_) => {}
            None => panic!("the store's events ended"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn draws_at_draw_at_and_wakes_for_a_drop_created_while_asleep() {
    let (store, clock) = store();
    let mut events = store.subscribe();
    let cancel = CancellationToken::new();
    // An hour's safety-net sleep: only the creation event can wake it in time.
    let runner = DrawRunner::new(Arc::new(store.clone()))
        .clock(clock.clone())
        .max_sleep(Duration::from_secs(3600))
        .spawn(cancel.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    let id = draw_drop(&store, clock.as_ref(), Duration::from_secs(10)).await;
    let draw_at = store.get_drop(id).await.unwrap().drop.draw_at.unwrap();
    let at = tokio::time::timeout(
        Duration::from_secs(60),
        drawn(&mut events, id, clock.as_ref()),
    )
    .await
    .expect("drawn within a minute, not after the hour's sleep");
    assert!(at >= draw_at, "not before drawAt: {at} < {draw_at}");
    assert!(
        at - draw_at < chrono::Duration::seconds(1),
        "drawn on time: {at} vs {draw_at}"
    );
    let status = store.draw_status(id).await.unwrap();
    verify_draw(status.published.as_ref().expect("published")).expect("checks out");
    runner.stop().await;
}

#[tokio::test(start_paused = true)]
async fn two_runners_draw_every_drop_once() {
    let (store, clock) = store();
    let cancel = CancellationToken::new();
    let runners: Vec<_> = (0..2)
        .map(|_| {
            DrawRunner::new(Arc::new(store.clone()))
                .clock(clock.clone())
                .spawn(cancel.clone())
        })
        .collect();
    let mut events = store.subscribe();
    let mut drops = Vec::new();
    for i in 0..5 {
        drops.push(draw_drop(&store, clock.as_ref(), Duration::from_secs(5 + i)).await);
    }
    for id in &drops {
        tokio::time::timeout(
            Duration::from_secs(60),
            drawn(&mut events, *id, clock.as_ref()),
        )
        .await
        .expect("drawn");
    }
    // Both runners look again after the last draw; nothing is drawn twice.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let log = store.events_after(0, 1000).await.unwrap();
    let draws = log
        .iter()
        .filter(|e| matches!(e.change, Change::DrawCompleted { .. }))
        .count();
    assert_eq!(draws, drops.len(), "one draw per drop");
    for id in &drops {
        let mut won = 0;
        for name in ["ann", "bob"] {
            let entry = store.draw_entry(*id, &buyer(name).id).await.unwrap();
            if entry.and_then(|e| e.outcome) == Some(EntryOutcome::Won) {
                won += 1;
            }
        }
        assert_eq!(won, 1, "one unit, one winner");
    }
    cancel.cancel();
    for r in runners {
        r.await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_named_beacon_waits_for_its_value() {
    let (store, clock) = store();
    let at = clock.now() + chrono::Duration::seconds(5);
    let id = store
        .create_drop(
            NewDrop::new("Beacon draw", Money::ZERO, 1)
                .draw_at(at)
                .beacon_name("drand quicknet round 1"),
        )
        .await
        .unwrap()
        .drop
        .id;
    store.enter_draw(id, &buyer("ann"), None).await.unwrap();
    let cancel = CancellationToken::new();

    // A runner that does not know the value leaves the drop undrawn.
    let blind = DrawRunner::new(Arc::new(store.clone()))
        .clock(clock.clone())
        .spawn(cancel.clone());
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(store.get_drop(id).await.unwrap().drop.drawn_at.is_none());
    blind.stop().await;

    // One that knows it draws, and the published draw names the value.
    let value = Beacon::new(vec![0xf6, 0x68, 0xe3, 0x44]).unwrap();
    let mut events = store.subscribe();
    let knowing = DrawRunner::new(Arc::new(store.clone()))
        .clock(clock.clone())
        .beacons(Arc::new(
            RecordedBeacons::new().with("drand quicknet round 1", value.clone()),
        ))
        .spawn(CancellationToken::new());
    tokio::time::timeout(
        Duration::from_secs(60),
        drawn(&mut events, id, clock.as_ref()),
    )
    .await
    .expect("drawn once the value is known");
    let published = store.draw_status(id).await.unwrap().published.unwrap();
    assert_eq!(published.beacon.as_ref(), Some(&value));
    verify_draw(&published).expect("checks out with the beacon");
    knowing.stop().await;
}
