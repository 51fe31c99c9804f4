//! The event log's retention in the memory store, on a manual clock:
//! old entries are pruned a few per append, a cursor keeps what it has not
//! passed, reading below the pruned horizon says so, and a new cursor
//! starts there.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{
    Buyer, Change, CursorClaim, DEFAULT_EVENT_RETENTION, DropError, DropId, InventoryStore,
    ManualClock, Money, NewDrop, Username,
};
use drop_store_memory::MemoryStore;
use uuid::Uuid;

const RETENTION: Duration = Duration::from_secs(3600);
const LEASE: Duration = Duration::from_secs(365 * 24 * 3600);

fn user(i: usize) -> Buyer {
    Buyer::claimed(Username::parse(&format!("user{i}")).unwrap())
}

fn store(retention: Duration) -> (ManualClock, MemoryStore) {
    let clock = ManualClock::fixed();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .event_retention(retention)
        .build();
    (clock, store)
}

async fn new_drop(store: &MemoryStore, stock: u32) -> DropId {
    store
        .create_drop(NewDrop::new("Logged", Money::ZERO, stock).hold(Duration::from_secs(60)))
        .await
        .unwrap()
        .drop
        .id
}

/// `n` holds taken and given back on `drop`, by buyers `from..from + n`:
/// two entries each.
async fn churn(store: &MemoryStore, drop: DropId, from: usize, n: usize) {
    for i in from..from + n {
        let b = user(i);
        let hold = store.reserve(drop, &b).await.unwrap().reservation;
        store.release(hold.id, &b.id).await.unwrap();
    }
}

fn pruned(r: Result<Vec<drop_core::LogEntry>, DropError>) -> (u64, u64) {
    match r {
        Err(DropError::EventsPruned { after, oldest }) => (after, oldest),
        other => panic!("expected EVENTS_PRUNED, got {other:?}"),
    }
}

/// Entries past the retention go, a bounded few per append; reading below
/// what is left is `EVENTS_PRUNED` naming the oldest entry kept, and a new
/// cursor starts at the horizon.
#[tokio::test]
async fn entries_past_retention_are_pruned() {
    let (clock, store) = store(RETENTION);
    let drop = new_drop(&store, 5).await;
    churn(&store, drop, 0, 10).await; // entries 1..=21
    assert_eq!(store.log_head().await.unwrap(), 21);
    assert_eq!(store.kept_log_entries(), 21);
    clock.advance(RETENTION - Duration::from_secs(1));
    churn(&store, drop, 100, 1).await; // 22, 23: nothing old enough yet
    assert_eq!(store.kept_log_entries(), 23);
    assert_eq!(store.events_after(0, 1).await.unwrap()[0].seq, 1);

    clock.advance(Duration::from_secs(1));
    // Entries 1..=21 are now exactly the retention old; each append
    // prunes a few of them, not all at once.
    churn(&store, drop, 200, 1).await; // 24, 25
    let kept = store.kept_log_entries();
    assert!(
        kept < 25 && kept > 25 - 21,
        "a bounded few pruned: {kept} kept"
    );
    let oldest = store.events_after(u64::MAX - 1, 1).await.map(|_| ());
    assert!(oldest.is_ok(), "reading past the head is fine: {oldest:?}");
    let horizon = 25 - kept as u64;
    assert_eq!(
        pruned(store.events_after(0, 10).await),
        (0, horizon + 1),
        "the oldest entry kept"
    );
    assert_eq!(
        pruned(store.drop_history(drop, horizon - 1, 10).await),
        (horizon - 1, horizon + 1)
    );
    let page = store.events_after(horizon, 1).await.unwrap();
    assert_eq!(page[0].seq, horizon + 1, "from the horizon on, all is kept");
    assert_eq!(
        store
            .claim_cursor("late", Uuid::new_v4(), LEASE)
            .await
            .unwrap(),
        Some(CursorClaim::created(horizon)),
        "a new cursor starts at the horizon"
    );
    store.remove_cursor("late").await.unwrap();

    // Later appends drain the rest of the backlog, and only it.
    churn(&store, drop, 300, 10).await; // 26..=45
    assert_eq!(store.kept_log_entries(), 45 - 21);
    let all = store.events_after(21, 1000).await.unwrap();
    assert_eq!(all.first().map(|e| e.seq), Some(22));
    assert_eq!(all.len(), 45 - 21);
    assert_eq!(pruned(store.events_after(20, 10).await), (20, 22));
    // The drop's own history starts there too.
    assert_eq!(store.drop_history(drop, 21, 1000).await.unwrap(), all);
    store.verify_invariants().unwrap();
}

/// A cursor keeps every entry above its position, however old; moving it
/// on, or removing it, lets them go.
#[tokio::test]
async fn cursors_pin_what_they_have_not_passed() {
    let (clock, store) = store(RETENTION);
    let hook = Uuid::new_v4();
    assert_eq!(
        store.claim_cursor("hook", hook, LEASE).await.unwrap(),
        Some(CursorClaim::created(0))
    );
    let drop = new_drop(&store, 5).await;
    churn(&store, drop, 0, 10).await; // 1..=21
    clock.advance(RETENTION * 2);
    churn(&store, drop, 100, 10).await; // 22..=41
    assert_eq!(
        store.kept_log_entries(),
        41,
        "the cursor has passed nothing"
    );
    assert_eq!(store.events_after(0, 1000).await.unwrap().len(), 41);

    assert!(store.advance_cursor("hook", hook, 6).await.unwrap());
    churn(&store, drop, 200, 5).await; // 42..=51
    assert_eq!(store.kept_log_entries(), 51 - 6, "only what it passed");
    assert_eq!(pruned(store.events_after(5, 10).await), (5, 7));
    assert_eq!(store.events_after(6, 1).await.unwrap()[0].seq, 7);

    // An expired lease still pins: the cursor's consumer is only away.
    clock.advance(LEASE * 2);
    churn(&store, drop, 300, 5).await;
    assert_eq!(store.kept_log_entries(), 61 - 6);

    // The lowest of several cursors is what counts.
    let audit = Uuid::new_v4();
    assert_eq!(
        store.claim_cursor("audit", audit, LEASE).await.unwrap(),
        Some(CursorClaim::created(6)),
        "a new cursor starts at the horizon"
    );
    assert!(
        store
            .claim_cursor("hook", hook, LEASE)
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.advance_cursor("hook", hook, 61).await.unwrap());
    churn(&store, drop, 400, 5).await; // 62..=71
    assert_eq!(store.kept_log_entries(), 71 - 6, "audit is still at 6");

    store.remove_cursor("audit").await.unwrap();
    assert!(store.advance_cursor("hook", hook, 71).await.unwrap());
    // Now the 71 - 6 entries kept are old enough to go and passed by
    // every cursor: they go a bounded few per append, while what the
    // appends add stays.
    clock.advance(RETENTION * 2);
    let mut appends = 0;
    while store.kept_log_entries() > 2 * appends {
        churn(&store, drop, 1000 + appends, 1).await;
        appends += 1;
        assert!(appends < 100, "pruning never caught up");
    }
    assert!(appends > 2, "not all at once: {appends} appends");
    assert_eq!(
        store.events_after(71, 1000).await.unwrap().len(),
        2 * appends
    );
    store.verify_invariants().unwrap();
}

/// A hold the sweeper ends long after its time (and whose record the
/// drop forgets in the same step) is still logged with its buyer, variant
/// and quantity.
#[tokio::test]
async fn long_overdue_expiries_are_logged_in_full() {
    let clock = ManualClock::fixed();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .retention(Duration::from_secs(1))
        .build();
    let drop = new_drop(&store, 3).await;
    let b = user(1);
    let hold = store.reserve(drop, &b).await.unwrap().reservation;
    clock.advance(Duration::from_secs(3600));
    let head = store.log_head().await.unwrap();
    assert_eq!(store.expire_due(10).await.unwrap(), 1);
    assert_eq!(store.kept_holds(), 0, "the hold was forgotten at once");
    let got = store.events_after(head, 10).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].change,
        Change::HoldExpired {
            reservation_id: hold.id,
            buyer_id: b.id.clone(),
            variant_id: hold.variant_id,
            quantity: 1,
        }
    );
    // Thirty days by default: nothing here is that old.
    assert_eq!(DEFAULT_EVENT_RETENTION, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(store.kept_log_entries(), 3);
}

/// Leases run on the store's clock: a manual clock's time, not the
/// machine's.
#[tokio::test]
async fn leases_run_on_the_store_clock() {
    let (clock, store) = store(RETENTION);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let lease = Duration::from_secs(30);
    assert!(
        store
            .claim_cursor("hook", a, lease)
            .await
            .unwrap()
            .is_some()
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.claim_cursor("hook", b, lease).await.unwrap(), None);
    clock.advance(lease - Duration::from_secs(1));
    assert_eq!(store.claim_cursor("hook", b, lease).await.unwrap(), None);
    assert!(store.advance_cursor("hook", a, 0).await.unwrap());
    clock.advance(Duration::from_secs(1));
    assert!(
        !store.advance_cursor("hook", a, 0).await.unwrap(),
        "a lapsed lease moves nothing"
    );
    assert!(
        store
            .claim_cursor("hook", b, lease)
            .await
            .unwrap()
            .is_some()
    );
    // A lease beyond the clock's range is a lease for good.
    assert!(
        store
            .claim_cursor("forever", a, Duration::MAX)
            .await
            .unwrap()
            .is_some()
    );
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    assert_eq!(store.claim_cursor("forever", b, lease).await.unwrap(), None);
}
