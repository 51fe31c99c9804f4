//! What `use dropkit::*` brings into scope: everything a host app wires,
//! and nothing that shadows the prelude.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use dropkit::*;

/// Compiles only while no glob-imported item is named `Drop`: a struct of
/// that name would shadow the prelude's trait and this impl would fail.
struct Flag(Arc<AtomicBool>);

impl Drop for Flag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn the_prelude_drop_trait_is_not_shadowed() {
    let dropped = Arc::new(AtomicBool::new(false));
    drop(Flag(dropped.clone()));
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test]
async fn wiring_needs_only_dropkit_paths() {
    let memory = MemoryStore::new();
    let store: Arc<dyn InventoryStore> = Arc::new(memory.clone());
    let stop = CancellationToken::new();
    let scheduler: SchedulerHandle = ExpiryScheduler::new(store.clone())
        .clock(memory.clock())
        .spawn(stop.clone());
    let created = store
        .create_drop(NewDrop::new("Facade", Money::ZERO, 1))
        .await
        .expect("created");
    let info: &DropInfo = &created.drop;
    assert_eq!(info.name, "Facade");
    // Variants, quantities, edits and idempotency keys are named through
    // the facade too.
    let sized = store
        .create_drop(
            NewDrop::with_variants("Sized", Money::ZERO, [NewVariant::new("42", 2)])
                .max_per_buyer(2),
        )
        .await
        .expect("created");
    let buyer = Buyer::claimed(Username::parse("facade").unwrap());
    let key = IdempotencyKey::new("b:facade", "k-1", [7; 32]).unwrap();
    let held = store
        .reserve_with(
            sized.drop.id,
            &buyer,
            ReserveRequest::new().quantity(2),
            Some(&key),
        )
        .await
        .expect("held");
    assert_eq!(held.reservation.quantity, 2);
    let edited: Applied<DropState> = store
        .update_drop(sized.drop.id, &DropPatch::new().name("Resized"), None)
        .await
        .expect("edited");
    assert_eq!(edited.value.drop.name, "Resized");
    scheduler.stop().await;
    assert!(stop.is_cancelled());

    // The PostgreSQL pool types and the web layer are named through the
    // facade too (features `postgres` and `web`).
    let _: fn() -> PgPoolOptions = PgPoolOptions::new;
    let _: Option<PgPool> = None;
    let _: Option<PgConnectOptions> = None;
    let _: Option<DropServer> = None;
    let _ = web::openapi_document("");
}

/// The conformance suite, feature `testkit`, is reachable for a store of
/// one's own.
#[allow(dead_code)]
fn a_harness_is_named_through_the_facade(h: &dyn testkit::Harness) -> Arc<dyn InventoryStore> {
    h.store()
}
