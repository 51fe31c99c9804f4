//! The shared conformance suite against the memory store, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::testkit::Harness;
use drop_core::{Clock, InventoryStore, ManualClock, async_trait};
use drop_store_memory::MemoryStore;

struct MemoryHarness {
    clock: ManualClock,
    store: MemoryStore,
}

impl MemoryHarness {
    fn new() -> Self {
        let clock = ManualClock::fixed();
        let store = MemoryStore::with_clock(Arc::new(clock.clone()));
        Self { clock, store }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn store(&self) -> Arc<dyn InventoryStore> {
        Arc::new(self.store.clone())
    }

    async fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn exact_time(&self) -> bool {
        true
    }

    fn hold(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn verify(&self) -> Result<(), String> {
        self.store.verify_invariants()
    }
}

drop_core::conformance_suite! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    () => MemoryHarness::new()
}
