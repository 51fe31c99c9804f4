//! The waiting list across instances: two stores on one database serve
//! one line while both release, buy and sweep at once.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{assert_invariants, store_on, user};
use drop_core::{
    Buyer, BuyerId, Change, DropEvent, DropId, EventStream, InventoryStore, LeaveReason, LogEntry,
    MAX_LOG_PAGE, Money, NewDrop, ReservationId,
};
use drop_store_postgres::PgStore;
use futures::StreamExt;
use futures::future::join_all;
use sqlx::PgPool;

/// Units of the drop: all held when the line forms.
const UNITS: usize = 12;
/// Buyers in line, more than the units, so the line outlives many offers.
const WAITERS: usize = 40;
/// Hold window: longer than the line takes to form, short enough that
/// offers left alone run out within the test.
const HOLD: Duration = Duration::from_millis(1500);
/// How long the stores may take to serve everything.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every entry of the drop's history, oldest first.
async fn history(store: &PgStore, drop_id: DropId) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = Vec::new();
    let mut after = 0;
    loop {
        let page = store
            .drop_history(drop_id, after, MAX_LOG_PAGE)
            .await
            .unwrap();
        let Some(last) = page.last() else {
            return out;
        };
        after = last.seq;
        out.extend(page);
    }
}

/// Counts the offered holds `events` announces, until `done` is set and
/// nothing more came for a while.
fn count_offers(
    mut events: EventStream,
    done: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<BTreeMap<ReservationId, usize>> {
    tokio::spawn(async move {
        let mut heard = BTreeMap::new();
        loop {
            match tokio::time::timeout(Duration::from_millis(500), events.next()).await {
                Ok(Some(Ok(DropEvent::HoldCreated {
                    reservation_id,
                    offered: true,
                    ..
                }))) => *heard.entry(reservation_id).or_insert(0) += 1,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(lost))) => panic!("events lost: {lost:?}"),
                Ok(None) => return heard,
                Err(_) if done.load(Ordering::SeqCst) => return heard,
                Err(_) => {}
            }
        }
    })
}

/// Whether the drop is at rest: no hold active in the table, and nobody in
/// line unless every unit is sold.
async fn at_rest(pool: &PgPool, drop_id: DropId) -> bool {
    let (active, waiting, free_or_held): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dropkit_reservations \
                  WHERE drop_id = $1 AND status = 'active'), \
                (SELECT count(*) FROM dropkit_waitlist WHERE drop_id = $1), \
                (SELECT (total_stock - sold)::bigint FROM dropkit_drops WHERE id = $1)",
    )
    .bind(drop_id.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap();
    active == 0 && (waiting == 0 || free_or_held == 0)
}

/// Two instances, one line. Holders give back their units through both
/// instances while both sweep; buyers offered a hold buy it (through the
/// other instance), give it back, or let it run out. The log, replayed,
/// must show every unit freed while anyone waited offered exactly once,
/// to the head of the line as it stood; both instances must announce each
/// offer exactly once.
#[sqlx::test(migrations = false)]
async fn two_instances_serve_one_line_each_freed_unit_once_to_the_head(pool: PgPool) {
    let stores = [
        store_on(&pool, 4, PgStore::builder()).await,
        store_on(&pool, 4, PgStore::builder()).await,
    ];
    let drop_id = stores[0]
        .create_drop(NewDrop::new("Line", Money::from_minor(100).unwrap(), UNITS as u32).hold(HOLD))
        .await
        .unwrap()
        .drop
        .id;
    let done = Arc::new(AtomicBool::new(false));
    let heard = [
        count_offers(stores[0].subscribe(), done.clone()),
        count_offers(stores[1].subscribe(), done.clone()),
    ];

    let holders: Vec<Buyer> = (0..UNITS).map(|i| user(&format!("holder{i}"))).collect();
    let mut holds = Vec::new();
    for (i, h) in holders.iter().enumerate() {
        let r = stores[i % 2].reserve(drop_id, h).await.unwrap();
        holds.push(r.reservation.id);
    }
    let waiters: Vec<Buyer> = (0..WAITERS).map(|i| user(&format!("waiter{i}"))).collect();
    for (i, w) in waiters.iter().enumerate() {
        let place = stores[i % 2]
            .join_waitlist(drop_id, w, drop_core::ReserveRequest::new())
            .await
            .unwrap();
        assert!(place.changed);
        assert_eq!(place.value.position as usize, i + 1);
    }

    let start = Instant::now();
    // The holders give their units back, half through each instance.
    let releases = holds.iter().zip(&holders).enumerate().map(|(i, (r, h))| {
        let (store, r, id) = (stores[i % 2].clone(), *r, h.id.clone());
        tokio::spawn(async move {
            let _ = store.release(r, &id).await;
        })
    });
    // Both instances sweep.
    let sweepers = stores.iter().map(|store| {
        let (store, pool) = (store.clone(), pool.clone());
        tokio::spawn(async move {
            while start.elapsed() < DEADLINE && !at_rest(&pool, drop_id).await {
                store.expire_due(100).await.unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    });
    // Buyers answer their offers through the instance that did not make
    // the line's first call for them: a third buy, a third give back, a
    // third let it run out.
    let answerers = (0..4).map(|t| {
        let (stores, waiters, pool) = (stores.clone(), waiters.clone(), pool.clone());
        tokio::spawn(async move {
            let mut answered = HashSet::new();
            while start.elapsed() < DEADLINE && !at_rest(&pool, drop_id).await {
                for (i, w) in waiters.iter().enumerate().skip(t).step_by(4) {
                    let store = &stores[(i + 1) % 2];
                    let Some(r) = store.active_hold(drop_id, &w.id).await.unwrap() else {
                        continue;
                    };
                    assert!(r.offered, "only offers are held now: {r:?}");
                    if !answered.insert(r.id) {
                        continue;
                    }
                    match i % 3 {
                        0 => {
                            let _ = store.purchase(r.id, &w.id).await;
                        }
                        1 => {
                            let _ = store.release(r.id, &w.id).await;
                        }
                        _ => {}
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    });
    let tasks: Vec<_> = releases.chain(sweepers).chain(answerers).collect();
    for t in join_all(tasks).await {
        t.expect("task");
    }
    assert!(
        at_rest(&pool, drop_id).await,
        "the stores did not serve the line within {DEADLINE:?}"
    );

    // Replay the log: the line by ticket, and the units owed to it.
    let entries = history(&stores[0], drop_id).await;
    let mut line: BTreeMap<u64, BuyerId> = BTreeMap::new();
    let mut owed = 0usize;
    let mut pending: Option<(BuyerId, u64)> = None;
    let mut offered: Vec<ReservationId> = Vec::new();
    let mut served = HashSet::new();
    for e in &entries {
        if let Some((buyer, _)) = &pending {
            match &e.change {
                Change::WaitlistLeft {
                    buyer_id, reason, ..
                } => {
                    assert_eq!(
                        (buyer_id, *reason),
                        (buyer, LeaveReason::Offered),
                        "an offer is followed by its place leaving: {e:?}"
                    );
                }
                other => panic!("an offer not followed by its place: {other:?}"),
            }
        }
        match &e.change {
            Change::WaitlistJoined {
                buyer_id, ticket, ..
            } => {
                assert!(line.insert(*ticket, buyer_id.clone()).is_none());
            }
            Change::HoldReleased { quantity, .. } | Change::HoldExpired { quantity, .. }
                if !line.is_empty() =>
            {
                owed += *quantity as usize;
            }
            Change::HoldCreated {
                reservation_id,
                buyer_id,
                quantity,
                offered: true,
                ..
            } => {
                let (ticket, head) = line.iter().next().expect("an offer with nobody in line");
                assert_eq!(buyer_id, head, "offered to the head of the line");
                assert!(owed >= *quantity as usize, "an offer of units not freed");
                owed -= *quantity as usize;
                pending = Some((buyer_id.clone(), *ticket));
                offered.push(*reservation_id);
                continue;
            }
            Change::HoldCreated { .. } if !line.is_empty() => {
                panic!("a plain hold while people wait: {e:?}")
            }
            Change::WaitlistLeft {
                buyer_id, ticket, ..
            } => {
                if let Some((_, t)) = &pending {
                    assert_eq!(t, ticket);
                }
                assert_eq!(line.remove(ticket).as_ref(), Some(buyer_id));
                assert!(served.insert(buyer_id.clone()), "served twice: {buyer_id}");
            }
            _ => {}
        }
        pending = None;
    }
    assert!(pending.is_none());
    assert_eq!(owed, 0, "every unit freed while people waited was offered");
    assert!(offered.len() >= UNITS, "every holder's unit was offered");
    // Those served were the first in line, in order.
    let mut order: Vec<&BuyerId> = waiters.iter().map(|w| &w.id).collect();
    order.truncate(served.len());
    assert!(
        order.iter().all(|b| served.contains(*b)),
        "a prefix of the line"
    );

    // Both instances announced each offer exactly once.
    done.store(true, Ordering::SeqCst);
    let want: BTreeMap<ReservationId, usize> = offered.iter().map(|r| (*r, 1)).collect();
    for (i, counted) in heard.into_iter().enumerate() {
        assert_eq!(counted.await.unwrap(), want, "instance {i}'s offers");
    }
    assert_invariants(&stores[0]).await;
    for store in &stores {
        store.close().await;
    }
}

/// Joins of one drop are grouped like reserves: with the drop's lock held
/// from outside, 32 joins queue up and commit in a few transactions (rows
/// written by one transaction share its `xmin`), and every caller still
/// gets their own answer: places in ticket order, a refusal for the
/// buyer holding a hold, the same place for a buyer asking twice.
#[sqlx::test(migrations = false)]
async fn a_storm_of_joins_commits_in_few_transactions_each_answered(pool: PgPool) {
    const JOINERS: usize = 32;
    let store = store_on(&pool, 8, PgStore::builder()).await;
    assert!(store.group_commit());
    let drop_id = common::drop_of(&store, 1, Duration::from_secs(600)).await;
    let holder = user("holder");
    store.reserve(drop_id, &holder).await.unwrap();

    let blocker = common::block_drop(&pool, drop_id).await;
    let mut calls = Vec::new();
    for i in 0..JOINERS {
        let (store, buyer) = (store.clone(), user(&format!("joiner{i:02}")));
        calls.push(tokio::spawn(async move {
            store
                .join_waitlist(drop_id, &buyer, drop_core::ReserveRequest::new())
                .await
        }));
    }
    let twice = {
        let store = store.clone();
        tokio::spawn(async move {
            let b = user("joiner00");
            store
                .join_waitlist(drop_id, &b, drop_core::ReserveRequest::new())
                .await
        })
    };
    let refused = {
        let (store, holder) = (store.clone(), holder.clone());
        tokio::spawn(async move {
            store
                .join_waitlist(drop_id, &holder, drop_core::ReserveRequest::new())
                .await
        })
    };
    // Every call is queued or waiting on the lock before it is let go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocker.rollback().await.unwrap();

    let mut tickets = Vec::new();
    for call in calls {
        let joined = call.await.unwrap().expect("a place");
        tickets.push(joined.value.ticket);
    }
    let again = twice.await.unwrap().expect("the same place");
    assert_eq!(
        refused.await.unwrap().unwrap_err().code(),
        "HOLD_EXISTS",
        "the holder may not wait"
    );
    tickets.sort_unstable();
    tickets.dedup();
    assert_eq!(tickets.len(), JOINERS, "one place each");
    assert!(tickets.contains(&again.value.ticket));
    for (i, ticket) in tickets.iter().enumerate() {
        let name = sqlx::query_scalar::<_, String>(
            "SELECT buyer_id FROM dropkit_waitlist WHERE drop_id = $1 AND ticket = $2",
        )
        .bind(drop_id.as_uuid())
        .bind(i64::try_from(*ticket).unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
        let place = store
            .waitlist_place(drop_id, &BuyerId::parse(&name).unwrap())
            .await
            .unwrap()
            .expect("in line");
        assert_eq!(place.position as usize, i + 1, "places follow tickets");
    }
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM dropkit_waitlist WHERE drop_id = $1",
    )
    .bind(drop_id.as_uuid())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        transactions <= 4,
        "{JOINERS} joins queued behind one lock committed in {transactions} transactions"
    );
    let joined = history(&store, drop_id)
        .await
        .iter()
        .filter(|e| matches!(e.change, Change::WaitlistJoined { .. }))
        .count();
    assert_eq!(joined, JOINERS, "one log entry per place");
    assert_invariants(&store).await;
}
