//! The one-statement overview against the reference built from parts.

mod common;

use std::time::Duration;

use drop_core::{Buyer, InventoryStore, Money, NewDrop, Username, overview_by_parts};
use drop_store_postgres::PgStore;
use sqlx::PgPool;

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

/// Forty drops in every shape the screen shows (no buyers, fewer and more
/// than three, the viewer holding or not, a drop not started, one whose
/// sale has ended): `PgStore::overview`, one statement, answers exactly
/// what the default implementation (2N + 1 calls) answers, for a viewer
/// with holds, one without, and no viewer.
#[sqlx::test(migrations = false)]
async fn overview_equals_the_default_on_many_drops(pool: PgPool) {
    let store = PgStore::builder().build(pool).await.unwrap();
    let db_now = || async {
        sqlx::query_scalar::<_, chrono::DateTime<chrono::Utc>>("SELECT clock_timestamp()")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    let now = db_now().await;
    let viewer = user("viewer");
    let mut ending = Vec::new();
    for i in 0..40u32 {
        let mut new = NewDrop::new(
            format!("Drop {i}"),
            Money::from_minor(i64::from(i) * 100).unwrap(),
            50,
        )
        .hold(Duration::from_secs(600));
        if i % 7 == 3 && i % 11 != 5 {
            new = new.starts_at(now + chrono::Duration::hours(i64::from(i)));
        }
        if i % 11 == 5 {
            new = new.ends_at(db_now().await + chrono::Duration::milliseconds(500));
        }
        let d = store.create_drop(new).await.unwrap();
        if i % 11 == 5 {
            ending.push(d.drop.id);
        }
        if i % 7 == 3 || i % 11 == 5 {
            continue; // not started, or about to end: nothing to buy
        }
        for b in 0..(i % 6) {
            let buyer = user(&format!("buyer{i}x{b}"));
            let hold = store.reserve(d.drop.id, &buyer).await.unwrap().reservation;
            store.purchase(hold.id, &buyer.id).await.unwrap();
        }
        if i % 3 == 0 {
            store.reserve(d.drop.id, &viewer).await.unwrap();
        }
        if i % 4 == 0 {
            store.reserve(d.drop.id, &user("someone")).await.unwrap();
        }
    }
    // Let the ending drops end: both must leave them out.
    tokio::time::sleep(Duration::from_millis(600)).await;

    for who in [Some(viewer.id.clone()), Some(user("nobody").id), None] {
        let fast = store.overview(who.as_ref()).await.unwrap();
        let reference = overview_by_parts(&store, who.as_ref()).await.unwrap();
        assert_eq!(fast, reference, "viewer {who:?}");
        assert!(fast.iter().all(|o| !ending.contains(&o.state.drop.id)));
        assert_eq!(fast.len(), 40 - ending.len());
    }
    let with_holds = store.overview(Some(&viewer.id)).await.unwrap();
    assert_eq!(
        with_holds
            .iter()
            .filter(|o| o.user_reservation.is_some())
            .count(),
        (0..40u32)
            .filter(|i| i % 3 == 0 && i % 7 != 3 && i % 11 != 5)
            .count()
    );
    assert!(with_holds.iter().any(|o| o.top_purchasers.len() == 3));
}
