//! Variants, quantities and the per-buyer limit under concurrency: several
//! store instances on one database, many buyers at once.

mod common;

use std::sync::Arc;

use common::{assert_invariants, store_on, user};
use drop_core::{DropId, InventoryStore, Money, NewDrop, NewVariant, ReserveRequest, VariantId};
use drop_store_postgres::PgStore;
use futures::future::join_all;
use sqlx::PgPool;
use tokio::sync::Barrier;

/// A drop of `stock` units per variant named in `names`, `max` per buyer,
/// with an hour's hold.
async fn drop_with(
    store: &PgStore,
    names: &[&str],
    stock: u32,
    max: u32,
) -> (DropId, Vec<VariantId>) {
    let state = store
        .create_drop(
            NewDrop::with_variants(
                "Sizes",
                Money::from_minor(1_000).unwrap(),
                names.iter().map(|n| NewVariant::new(*n, stock)),
            )
            .max_per_buyer(max)
            .hold(std::time::Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let ids = state.drop.variants.iter().map(|v| v.id).collect();
    (state.drop.id, ids)
}

/// One buyer asks two instances at once for one unit each of two
/// variants, with a limit of one: exactly one hold, the other call told
/// `HOLD_EXISTS` (whichever instance wins), for every buyer of many.
#[sqlx::test(migrations = false)]
async fn the_same_buyer_on_two_instances_gets_one_hold(pool: PgPool) {
    let a = store_on(&pool, 8, PgStore::builder()).await;
    let b = store_on(&pool, 8, PgStore::builder()).await;
    let (drop_id, variants) = drop_with(&a, &["M", "L"], 1_000, 1).await;
    let buyers = 60;
    let start = Arc::new(Barrier::new(buyers * 2));
    let calls = (0..buyers).flat_map(|i| {
        [(a.clone(), variants[0]), (b.clone(), variants[1])]
            .into_iter()
            .map(move |(store, variant)| (i, store, variant))
    });
    let answers = join_all(calls.map(|(i, store, variant)| {
        let start = Arc::clone(&start);
        tokio::spawn(async move {
            let buyer = user(&format!("twin{i}"));
            start.wait().await;
            let got = store
                .reserve_with(
                    drop_id,
                    &buyer,
                    ReserveRequest::new().variant(variant),
                    None,
                )
                .await;
            (i, got)
        })
    }))
    .await;
    let mut holds = vec![0; buyers];
    let mut refused = vec![0; buyers];
    for answer in answers {
        let (i, got) = answer.unwrap();
        match got {
            Ok(r) => {
                assert!(r.created);
                holds[i] += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), "HOLD_EXISTS", "{e}");
                refused[i] += 1;
            }
        }
    }
    assert_eq!(holds, vec![1; buyers], "one hold per buyer");
    assert_eq!(refused, vec![1; buyers], "the other call refused");
    let state = a.get_drop(drop_id).await.unwrap();
    assert_eq!(state.stock.reserved, u32::try_from(buyers).unwrap());
    assert_invariants(&a).await;
    a.close().await;
    b.close().await;
}

/// What one buyer of the stress test ended with.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    held: u32,
    bought: u32,
    released: u32,
    cancelled: u32,
    out_of_stock: u32,
}

/// 2,000 buyers, 3 variants, quantities 1–2 under a limit of 2, through 32
/// connections on two instances: reserves, purchases, releases, admin
/// cancels and reserves again after a cancel, all at once. Then the books
/// must balance exactly: per variant, the counters equal the holds and
/// purchases, never above the stock, no buyer over the limit.
#[sqlx::test(migrations = false)]
async fn two_thousand_buyers_three_variants_two_instances(pool: PgPool) {
    let a = store_on(&pool, 16, PgStore::builder()).await;
    let b = store_on(&pool, 16, PgStore::builder()).await;
    let stock = 300;
    let (drop_id, variants) = drop_with(&a, &["S", "M", "L"], stock, 2).await;
    let buyers = 2_000usize;
    let results = join_all((0..buyers).map(|i| {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let admin = if i % 2 == 0 { b.clone() } else { a.clone() };
        let variant = variants[i % 3];
        tokio::spawn(async move {
            let buyer = user(&format!("buyer{i}"));
            let quantity = 1 + u32::try_from(i % 2).unwrap();
            let ask = ReserveRequest::new().variant(variant).quantity(quantity);
            let mut tally = Tally::default();
            let hold = match store.reserve_with(drop_id, &buyer, ask, None).await {
                Ok(r) => r.reservation,
                Err(e) if e.code() == "OUT_OF_STOCK" => {
                    tally.out_of_stock += 1;
                    return tally;
                }
                Err(e) => panic!("buyer{i}: {e}"),
            };
            assert_eq!((hold.variant_id, hold.quantity), (variant, quantity));
            tally.held += quantity;
            if i % 5 == 0 {
                store.release(hold.id, &buyer.id).await.unwrap();
                tally.released += quantity;
                return tally;
            }
            if i % 3 != 0 {
                return tally;
            }
            let bought = store.purchase(hold.id, &buyer.id).await.unwrap();
            assert!(bought.created);
            assert_eq!(
                bought.purchase.amount_paid.minor(),
                1_000 * i64::from(quantity)
            );
            tally.bought += quantity;
            if i % 7 == 0 {
                let cancelled = admin
                    .cancel_purchase(bought.purchase.id, None)
                    .await
                    .unwrap();
                assert!(cancelled.changed);
                tally.cancelled += quantity;
                // The limit counts the cancelled units no more.
                match store.reserve_with(drop_id, &buyer, ask, None).await {
                    Ok(r) => tally.held += r.reservation.quantity,
                    Err(e) if e.code() == "OUT_OF_STOCK" => tally.out_of_stock += 1,
                    Err(e) => panic!("buyer{i} after the cancel: {e}"),
                }
            }
            tally
        })
    }))
    .await;
    let mut total = Tally::default();
    for r in results {
        let t = r.unwrap();
        total.held += t.held;
        total.bought += t.bought;
        total.released += t.released;
        total.cancelled += t.cancelled;
        total.out_of_stock += t.out_of_stock;
    }
    assert_invariants(&a).await;
    // Demand (about 3,000 units) is far above the stock (900).
    assert!(total.out_of_stock > 0, "{total:?}");
    let state = a.get_drop(drop_id).await.unwrap();
    let sold = total.bought - total.cancelled;
    let reserved = total.held - total.released - total.bought;
    assert_eq!(
        (state.stock.reserved, state.stock.sold),
        (reserved, sold),
        "{total:?}"
    );
    for v in &state.variants {
        assert!(v.reserved + v.sold <= v.total, "{v:?}");
    }
    assert_eq!(
        state.variants.iter().map(|v| v.reserved).sum::<u32>(),
        state.stock.reserved
    );
    a.close().await;
    b.close().await;
}

/// A batch that is not the common one (a buyer who holds already, one at
/// the limit, two new ones) and then a common one (two new buyers) answer
/// as each caller alone would, and every hold made is logged once.
#[sqlx::test(migrations = false)]
async fn mixed_and_common_batches_answer_each_caller(pool: PgPool) {
    let store = store_on(&pool, 8, PgStore::builder()).await;
    let (drop_id, _) = drop_with(&store, &["Standard"], 10, 1).await;
    let (ann, bob) = (user("ann"), user("bob"));
    let held = store.reserve(drop_id, &ann).await.unwrap().reservation;
    let bobs = store.reserve(drop_id, &bob).await.unwrap().reservation;
    store.purchase(bobs.id, &bob.id).await.unwrap();
    let head = store.log_head().await.unwrap();

    // Sent together, so that group commit most likely makes them one batch.
    let (cid, dan) = (user("cid"), user("dan"));
    let (a, b, c, d) = tokio::join!(
        store.reserve(drop_id, &ann),
        store.reserve(drop_id, &bob),
        store.reserve(drop_id, &cid),
        store.reserve(drop_id, &dan),
    );
    assert_eq!(a.unwrap().reservation.id, held.id, "Ann's own hold");
    assert!(
        matches!(b, Err(drop_core::DropError::BuyerLimitReached { .. })),
        "{b:?}"
    );
    let (c, d) = (c.unwrap().reservation, d.unwrap().reservation);
    let (eve, fay) = (user("eve"), user("fay"));
    let (e, f) = tokio::join!(store.reserve(drop_id, &eve), store.reserve(drop_id, &fay));
    let (e, f) = (e.unwrap().reservation, f.unwrap().reservation);
    let state = store.get_drop(drop_id).await.unwrap();
    assert_eq!((state.stock.reserved, state.stock.sold), (5, 1));
    assert_eq!(state.variants[0].reserved, 5);

    let entries = store.events_after(head, 20).await.unwrap();
    let mut logged: Vec<uuid::Uuid> = entries
        .iter()
        .map(|e| match &e.change {
            drop_core::Change::HoldCreated { reservation_id, .. } => reservation_id.as_uuid(),
            other => panic!("{other:?}"),
        })
        .collect();
    logged.sort();
    let mut made: Vec<uuid::Uuid> = [c.id, d.id, e.id, f.id].map(|id| id.as_uuid()).to_vec();
    made.sort();
    assert_eq!(logged, made, "each new hold logged once");
    assert_invariants(&store).await;
}
