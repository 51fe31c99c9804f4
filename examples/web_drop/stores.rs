//! Opening the store the options name.

use std::sync::Arc;
use std::time::Duration;

use drop_core::{Clock, InventoryStore, SystemClock};
use drop_store_memory::MemoryStore;

use crate::options::{Options, Secret, StoreKind};

/// A store and the clock it keeps time by.
pub(crate) struct Opened {
    pub(crate) store: Arc<dyn InventoryStore>,
    pub(crate) clock: Arc<dyn Clock>,
}

pub(crate) async fn open(opts: &Options) -> Result<Opened, Box<dyn std::error::Error>> {
    match opts.store {
        StoreKind::Memory => {
            let store = MemoryStore::new();
            let clock = store.clock();
            Ok(Opened {
                store: Arc::new(store),
                clock,
            })
        }
        StoreKind::Postgres => {
            let url = opts
                .database_url
                .as_ref()
                .map(Secret::expose)
                .ok_or("--store postgres needs --database-url or DROPKIT_DATABASE_URL")?;
            let store = drop_store_postgres::PgStore::builder()
                .group_commit(!opts.no_group_commit)
                .acquire_timeout(Duration::from_millis(opts.db_acquire_timeout_ms.max(1)))
                .max_connections(opts.db_max_connections.max(2))
                .migrate(!opts.no_migrate)
                .connect(url)
                .await?;
            // The database keeps the time, so the scheduler and
            // `serverTime` use the system clock and only turn it into sleeps.
            Ok(Opened {
                store: Arc::new(store),
                clock: Arc::new(SystemClock),
            })
        }
    }
}
