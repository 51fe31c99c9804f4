//! Purchases as records: a repeated purchase answers the one made, each
//! can be read back, and a buyer can page through their own.

use super::*;

use std::collections::HashSet;

use crate::{MAX_PAGE, Purchase, PurchaseId, PurchaseStatus};

/// The owner asking again to buy a hold they bought gets the same
/// purchase back (`created: false`), announcing nothing, even once it is
/// cancelled; anyone else is `NOT_OWNER`.
pub async fn purchase_repeat_answers_the_same_purchase(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let (alice, bob) = (user("alice"), user("bob"));
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 0), 2), None)
        .await
        .unwrap()
        .reservation;
    let first = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(first.created && !first.replayed);
    h.advance(Duration::from_millis(20)).await;
    let mut events = store.subscribe();
    let again = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(!again.created && !again.replayed, "{again:?}");
    assert_eq!(again.purchase, first.purchase);
    assert_eq!(code(store.purchase(hold.id, &bob.id).await), "NOT_OWNER");
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 0, 2), (5, 0, 0)]).await;
    assert_eq!(
        store
            .buyer_purchases(&alice.id, None, MAX_PAGE)
            .await
            .unwrap(),
        std::slice::from_ref(&first.purchase),
        "one purchase, however often asked"
    );
    // Cancelled since: the repeat shows it as it is now, and buys nothing.
    let cancelled = store
        .cancel_purchase(first.purchase.id, None)
        .await
        .unwrap()
        .value;
    let mut events = store.subscribe();
    let late = store.purchase(hold.id, &alice.id).await.unwrap();
    assert!(!late.created);
    assert_eq!(late.purchase, cancelled);
    assert_eq!(late.purchase.status, PurchaseStatus::Cancelled);
    assert_quiet_since(h, &mut events).await;
    assert_stock(h, d.drop.id, &[(5, 0, 0), (5, 0, 0)]).await;
    verify(h).await;
}

/// A purchase reads back as it was made; an unknown id is
/// `PURCHASE_NOT_FOUND`.
pub async fn purchases_read_back(h: &dyn Harness) {
    let store = h.store();
    let d = sized_drop(h, &[("M", 5), ("L", 5)], 2).await;
    let alice = user("alice");
    let hold = store
        .reserve_with(d.drop.id, &alice, ask(variant(&d, 1), 1), None)
        .await
        .unwrap()
        .reservation;
    let p = store.purchase(hold.id, &alice.id).await.unwrap().purchase;
    assert_eq!(
        (p.reservation_id, p.drop_id, p.variant_id, p.quantity),
        (hold.id, d.drop.id, variant(&d, 1), 1)
    );
    assert_eq!(
        (&p.buyer_id, &p.display_name),
        (&alice.id, &alice.display_name)
    );
    assert_eq!(
        (p.status, p.cancelled_at),
        (PurchaseStatus::Completed, None)
    );
    assert!(p.created_at >= hold.created_at && p.created_at < hold.expires_at);
    assert_eq!(store.get_purchase(p.id).await.unwrap(), p);
    match error(store.get_purchase(PurchaseId::new()).await) {
        DropError::PurchaseNotFound { .. } => {}
        other => panic!("expected PURCHASE_NOT_FOUND, got {other:?}"),
    }
    assert_eq!(
        code(store.cancel_purchase(PurchaseId::new(), None).await),
        "PURCHASE_NOT_FOUND"
    );
    verify(h).await;
}

/// Five purchases by `buyer`, alternating between two new drops, each at
/// a later time than the one before, oldest first; and one by someone
/// else between each.
async fn five_purchases(h: &dyn Harness, buyer: &Buyer) -> (Vec<Purchase>, Vec<Purchase>) {
    let store = h.store();
    let drops = [
        sized_drop(h, &[("M", 10), ("L", 10)], 3).await,
        sized_drop(h, &[("M", 10), ("L", 10)], 3).await,
    ];
    let other = user("zed");
    let buy = |d: &DropState, who: &Buyer, i: usize| {
        let (store, who, drop_id, wanted) = (
            store.clone(),
            who.clone(),
            d.drop.id,
            ask(variant(d, i % 2), 1),
        );
        async move {
            let hold = store
                .reserve_with(drop_id, &who, wanted, None)
                .await
                .unwrap()
                .reservation;
            store.purchase(hold.id, &who.id).await.unwrap().purchase
        }
    };
    let (mut mine, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let d = &drops[i % 2];
        h.advance(Duration::from_millis(20)).await;
        mine.push(buy(d, buyer, i).await);
        if i < 3 {
            h.advance(Duration::from_millis(20)).await;
            theirs.push(buy(d, &other, i).await);
        }
    }
    (mine, theirs)
}

/// A buyer's purchases, in every drop, newest first, cancelled ones
/// included, nobody else's.
pub async fn buyer_purchases_newest_first(h: &dyn Harness) {
    let store = h.store();
    let alice = user("alice");
    assert!(
        store
            .buyer_purchases(&alice.id, None, MAX_PAGE)
            .await
            .unwrap()
            .is_empty()
    );
    let (mine, theirs) = five_purchases(h, &alice).await;
    let cancelled = store.cancel_purchase(mine[1].id, None).await.unwrap().value;
    let mut want: Vec<Purchase> = mine.clone();
    want[1] = cancelled;
    want.reverse();
    let got = store
        .buyer_purchases(&alice.id, None, MAX_PAGE)
        .await
        .unwrap();
    assert_eq!(got, want, "newest first, cancelled included");
    let drops: HashSet<DropId> = got.iter().map(|p| p.drop_id).collect();
    assert_eq!(drops.len(), 2, "across drops");
    let others = store
        .buyer_purchases(&user("zed").id, None, MAX_PAGE)
        .await
        .unwrap();
    let mut theirs = theirs;
    theirs.reverse();
    assert_eq!(others, theirs);
    verify(h).await;
}

/// Pages of `buyer_purchases`: each starts after the last of the one
/// before, with no overlap and no gap; `before` must be one of the
/// buyer's own purchases, and `limit` 1 to [`MAX_PAGE`].
pub async fn buyer_purchases_pages(h: &dyn Harness) {
    let store = h.store();
    let alice = user("alice");
    let (mine, theirs) = five_purchases(h, &alice).await;
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = store.buyer_purchases(&alice.id, before, 2).await.unwrap();
        assert!(page.len() <= 2, "{page:?}");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        pages.push(page);
        assert!(pages.len() <= 5, "paging does not end");
    }
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let all: Vec<PurchaseId> = pages.iter().flatten().map(|p| p.id).collect();
    let want: Vec<PurchaseId> = mine.iter().rev().map(|p| p.id).collect();
    assert_eq!(all, want, "no overlap, no gap, newest first");
    // A page starting in the middle.
    let mid = store
        .buyer_purchases(&alice.id, Some(mine[3].id), 10)
        .await
        .unwrap();
    let ids: Vec<PurchaseId> = mid.iter().map(|p| p.id).collect();
    assert_eq!(ids, [mine[2].id, mine[1].id, mine[0].id]);
    // Another buyer's purchase, or none at all, is not a place to start.
    for before in [theirs[0].id, PurchaseId::new()] {
        assert_eq!(
            code(store.buyer_purchases(&alice.id, Some(before), 2).await),
            "PURCHASE_NOT_FOUND"
        );
    }
    for limit in [0, MAX_PAGE + 1] {
        assert_eq!(
            code(store.buyer_purchases(&alice.id, None, limit).await),
            "INVALID_INPUT",
            "limit {limit}"
        );
    }
    assert_eq!(
        store.buyer_purchases(&alice.id, None, 1).await.unwrap(),
        [mine[4].clone()]
    );
    verify(h).await;
}
