//! The second-stage rules under concurrency: idempotency keys, one hold
//! per buyer, `maxPerBuyer` and stock edits, each raced by many tasks.

use super::*;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;

use crate::{DropPatch, MAX_PAGE, ReservationId, Reserved, VariantStock};

/// Asserts `reserved + sold ≤ total` for every variant, saying where.
fn assert_within_total(variants: &[VariantStock], when: &str) {
    for v in variants {
        assert!(
            v.reserved + v.sold <= v.total,
            "oversold {when}: variant {} has {} reserved + {} sold of {}",
            v.id,
            v.reserved,
            v.sold,
            v.total
        );
    }
}

/// Every per-variant figure announced among `got` keeps within its total.
fn assert_announced_within_total(got: &[DropEvent]) {
    for e in got {
        match e {
            DropEvent::StockChanged { variants, .. } => {
                assert_within_total(variants, "in a StockChanged event");
            }
            DropEvent::DropUpdated { drop } => {
                assert_within_total(&drop.variants, "in a DropUpdated event");
            }
            _ => {}
        }
    }
}

/// Recounts a drop's counters from the buyers' records (their active
/// holds and their standing purchases) and asserts the drop's counters
/// equal the recount.
async fn assert_recount(h: &dyn Harness, d: &DropState, buyers: &[Buyer]) {
    let store = h.store();
    let mut held: HashMap<VariantId, u32> = HashMap::new();
    let mut sold: HashMap<VariantId, u32> = HashMap::new();
    for b in buyers {
        if let Some(hold) = store.active_hold(d.drop.id, &b.id).await.unwrap() {
            *held.entry(hold.variant_id).or_default() += hold.quantity;
        }
        for p in store.buyer_purchases(&b.id, None, MAX_PAGE).await.unwrap() {
            if p.drop_id == d.drop.id && p.is_completed() {
                *sold.entry(p.variant_id).or_default() += p.quantity;
            }
        }
    }
    let now = store.get_drop(d.drop.id).await.unwrap();
    for v in &now.variants {
        assert_eq!(
            (v.reserved, v.sold),
            (
                held.get(&v.id).copied().unwrap_or(0),
                sold.get(&v.id).copied().unwrap_or(0)
            ),
            "variant {}: counters against a recount of holds and purchases",
            v.id
        );
    }
    assert_within_total(&now.variants, "after the race");
}

/// Many concurrent reserves with one idempotency key make one hold: one
/// call acts, every other replays it, and all name the same hold.
pub async fn concurrent_reserves_with_one_key_make_one_hold(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 10), ("L", 10)], 2).await;
    let m = variant(&d, 0);
    let alice = user("alice");
    let key = idem(alice.id.as_str(), "one-key", 1);
    let mut events = store.subscribe();
    let results = join_all((0..24).map(|_| {
        let (store, alice, key) = (store.clone(), alice.clone(), key.clone());
        tokio::spawn(async move {
            store
                .reserve_with(d.drop.id, &alice, ask(m, 2), Some(&key))
                .await
        })
    }))
    .await;
    let answers: Vec<_> = results
        .into_iter()
        .map(|r| r.expect("task").expect("every answer names the hold"))
        .collect();
    let ids: HashSet<ReservationId> = answers.iter().map(|a| a.reservation.id).collect();
    assert_eq!(ids.len(), 1, "one hold: {ids:?}");
    let acted = answers.iter().filter(|a| !a.replayed).count();
    assert_eq!(acted, 1, "exactly one call acts, the others replay");
    assert!(answers.iter().all(|a| a.created), "the hold was created");
    let counts = event_counts(h, &mut events).await;
    assert_eq!(counts.created, 1, "one HoldCreated");
    assert_stock(h, d.drop.id, &[(10, 2, 0), (10, 0, 0)]).await;
    let record = store
        .idempotency_record(alice.id.as_str(), "one-key")
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(
        record.entity,
        crate::Recorded::Reservation(*ids.iter().next().unwrap())
    );
    verify(h).await;
}

/// A buyer reserving several variants of a drop at once gets exactly one
/// hold; every other call is `HOLD_EXISTS` carrying it. Several buyers do
/// so together.
pub async fn concurrent_reserves_of_different_variants_give_one_hold(h: &dyn Harness) {
    let store = h.store();
    let sizes: Vec<(String, u32)> = (0..6).map(|i| (format!("V{i}"), 10)).collect();
    let sizes: Vec<(&str, u32)> = sizes.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    let d = sized_drop(h, &sizes, 1).await;
    let buyers: Vec<Buyer> = (0..4).map(|i| user(&format!("racer{i}"))).collect();
    let mut events = store.subscribe();
    let tasks = buyers.iter().flat_map(|b| {
        d.drop.variants.iter().map(|v| {
            let (store, b, wanted) = (store.clone(), b.clone(), ask(v.id, 1));
            tokio::spawn(async move {
                let r = store.reserve_with(d.drop.id, &b, wanted, None).await;
                (b, r)
            })
        })
    });
    let results = join_all(tasks.collect::<Vec<_>>()).await;
    let mut won: HashMap<String, crate::Reservation> = HashMap::new();
    let mut refused: Vec<(String, Box<crate::Reservation>)> = Vec::new();
    for r in results {
        let (b, r) = r.expect("task");
        match r {
            Ok(r) => {
                assert!(r.created, "{r:?}");
                let before = won.insert(b.id.as_str().to_owned(), r.reservation);
                assert!(before.is_none(), "{} got two holds", b.id);
            }
            Err(DropError::HoldExists { reservation }) => {
                refused.push((b.id.as_str().to_owned(), reservation));
            }
            Err(e) => panic!("expected a hold or HOLD_EXISTS, got {e:?}"),
        }
    }
    assert_eq!(won.len(), buyers.len(), "each buyer got one hold");
    assert_eq!(refused.len(), buyers.len() * 5);
    for (b, hold) in refused {
        assert_eq!(*hold, won[&b], "HOLD_EXISTS carries the buyer's hold");
    }
    let counts = event_counts(h, &mut events).await;
    assert_eq!(counts.created, buyers.len());
    let now = store.get_drop(d.drop.id).await.unwrap();
    assert_eq!(now.stock.reserved, 4);
    assert_recount(h, &d, &buyers).await;
    verify(h).await;
}

/// Stock edits racing reserves and purchases: no variant is ever seen (in
/// an answer, an event or a read) with more reserved + sold than its
/// total, a refused edit is `STOCK_BELOW_COMMITTED`, and the counters end
/// equal to a recount, with the totals of the last edit that took.
pub async fn stock_edits_racing_sales_never_oversell(h: &dyn Harness) {
    const BUYERS: usize = 48;
    let store = h.store();
    let d = sized_drop(h, &[("M", 12), ("L", 12)], 1).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers: Vec<Buyer> = (0..BUYERS).map(|i| user(&format!("shopper{i}"))).collect();
    let mut events = store.subscribe();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let now = store.get_drop(d.drop.id).await.unwrap();
                assert_within_total(&now.variants, "in a read");
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let editor = {
        let store = store.clone();
        tokio::spawn(async move {
            let plan = [
                (4, 20),
                (20, 3),
                (0, 12),
                (12, 0),
                (8, 30),
                (30, 8),
                (2, 2),
                (16, 16),
            ];
            let mut last = (12, 12);
            let (mut took, mut refused) = (0, 0);
            for round in 0..3 {
                for (tm, tl) in plan {
                    let patch = DropPatch::new()
                        .variant_stock(m, tm + round)
                        .variant_stock(l, tl + round);
                    match store.update_drop(d.drop.id, &patch, None).await {
                        Ok(a) => {
                            assert_within_total(&a.value.variants, "in an edit's answer");
                            last = (tm + round, tl + round);
                            took += 1;
                        }
                        Err(e) => {
                            assert_eq!(e.code(), "STOCK_BELOW_COMMITTED", "{e}");
                            refused += 1;
                        }
                    }
                    tokio::task::yield_now().await;
                }
            }
            (last, took, refused)
        })
    };
    let sales = join_all(buyers.iter().enumerate().map(|(i, b)| {
        let (store, b) = (store.clone(), b.clone());
        let wanted = ask(if i % 2 == 0 { m } else { l }, 1);
        tokio::spawn(async move {
            match store.reserve_with(d.drop.id, &b, wanted, None).await {
                Ok(r) => {
                    assert!(r.created);
                    if i % 4 < 2 {
                        let p = store.purchase(r.reservation.id, &b.id).await.unwrap();
                        assert!(p.created);
                    }
                    true
                }
                Err(e) => {
                    assert_eq!(e.code(), "OUT_OF_STOCK", "{e}");
                    false
                }
            }
        })
    }))
    .await;
    let ((last_m, last_l), took, refused) = editor.await.expect("editor");
    stop.store(true, Ordering::Relaxed);
    reader.await.expect("reader");
    assert_eq!(took + refused, 24);
    let held = sales
        .into_iter()
        .map(|r| r.expect("task"))
        .filter(|ok| *ok)
        .count();
    let got = events_until_marker(h, &mut events).await;
    assert_announced_within_total(&got);
    let created = got
        .iter()
        .filter(|e| matches!(e, DropEvent::HoldCreated { .. }))
        .count();
    assert_eq!(created, held, "one HoldCreated per hold granted");
    let now = store.get_drop(d.drop.id).await.unwrap();
    let totals: Vec<u32> = now.variants.iter().map(|v| v.total).collect();
    assert_eq!(totals, [last_m, last_l], "the last edit that took stands");
    assert_eq!(now.drop.total_stock, last_m + last_l);
    assert_recount(h, &d, &buyers).await;
    verify(h).await;
}

/// A buyer at their limit (one unit bought, one held, `maxPerBuyer` 2)
/// buys their hold while an admin cancels their earlier purchase and they
/// keep asking for more: whatever the interleaving, they never hold plus
/// own more than two units, get at most one new hold, and the counters
/// equal a recount.
pub async fn purchase_cancel_and_reserve_race_keeps_the_limit(h: &dyn Harness) {
    const BUYERS: usize = 8;
    let store = h.store();
    let d = sized_drop(h, &[("M", 50), ("L", 50)], 2).await;
    let (m, l) = (variant(&d, 0), variant(&d, 1));
    let buyers: Vec<Buyer> = (0..BUYERS).map(|i| user(&format!("limit{i}"))).collect();
    let mut setup = Vec::new();
    for b in &buyers {
        let first = store
            .reserve_with(d.drop.id, b, ask(m, 1), None)
            .await
            .unwrap()
            .reservation;
        let p = store.purchase(first.id, &b.id).await.unwrap().purchase;
        let hold = store
            .reserve_with(d.drop.id, b, ask(l, 1), None)
            .await
            .unwrap()
            .reservation;
        setup.push((p.id, hold.id));
    }
    let mut tasks = Vec::new();
    for (b, (purchase, hold)) in buyers.iter().zip(&setup) {
        let (purchase, hold) = (*purchase, *hold);
        for k in 0..6 {
            let (store, b) = (store.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                match k {
                    0 => {
                        let p = store.purchase(hold, &b.id).await.unwrap();
                        assert!(p.created);
                        None
                    }
                    1 => {
                        let c = store.cancel_purchase(purchase, None).await.unwrap();
                        assert!(c.changed);
                        None
                    }
                    _ => {
                        let wanted = ask(if k % 2 == 0 { m } else { l }, 1);
                        match store.reserve_with(d.drop.id, &b, wanted, None).await {
                            Ok(r) => Some((b.id.as_str().to_owned(), r)),
                            Err(e) => {
                                assert!(
                                    matches!(e.code(), "HOLD_EXISTS" | "BUYER_LIMIT_REACHED"),
                                    "{e}"
                                );
                                None
                            }
                        }
                    }
                }
            }));
        }
    }
    // Asking again for the hold still held answers it (not created);
    // anything else granted is a new hold.
    let mut answers: HashMap<String, Vec<Reserved>> = HashMap::new();
    for t in join_all(tasks).await {
        if let Some((b, r)) = t.expect("task") {
            answers.entry(b).or_default().push(r);
        }
    }
    for (b, (_, first_hold)) in buyers.iter().zip(&setup) {
        let answers = answers.remove(b.id.as_str()).unwrap_or_default();
        let created: HashSet<ReservationId> = answers
            .iter()
            .filter(|r| r.created)
            .map(|r| r.reservation.id)
            .collect();
        assert!(
            created.len() <= 1,
            "{} got {} new holds",
            b.id,
            created.len()
        );
        for r in answers.iter().filter(|r| !r.created) {
            assert!(
                r.reservation.id == *first_hold || created.contains(&r.reservation.id),
                "{} was answered a hold it never had: {r:?}",
                b.id
            );
        }
        let mut units = 0;
        if let Some(hold) = store.active_hold(d.drop.id, &b.id).await.unwrap() {
            units += hold.quantity;
        }
        for p in store.buyer_purchases(&b.id, None, MAX_PAGE).await.unwrap() {
            if p.is_completed() {
                units += p.quantity;
            }
        }
        assert!(units <= 2, "{} holds and owns {units} units, limit 2", b.id);
    }
    assert_recount(h, &d, &buyers).await;
    verify(h).await;
}
