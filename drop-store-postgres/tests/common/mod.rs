//! Shared test setup: a store on the test's own database.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::testkit::Harness;
use drop_core::{Buyer, DropId, InventoryStore, Money, NewDrop, Username, async_trait};
use drop_store_postgres::{PgStore, PgStoreBuilder};
use futures::StreamExt;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Postgres, Transaction};

/// Holds in the expiry cases: short, so the suite runs quickly on a real
/// clock, long enough that a loaded machine's slow round trips do not
/// cross them by accident. Every other case holds for an hour.
pub const HOLD: Duration = Duration::from_secs(2);

/// The conformance harness over a [`PgStore`].
#[derive(Debug)]
pub struct PgHarness {
    pub store: PgStore,
    hold: Duration,
    dyn_store: Arc<dyn InventoryStore>,
}

impl PgHarness {
    /// Group commit on (the default).
    pub async fn new(pool: PgPool) -> Self {
        Self::with(pool, PgStore::builder(), HOLD).await
    }

    /// Group commit off.
    pub async fn unbatched(pool: PgPool) -> Self {
        Self::with(pool, PgStore::builder().group_commit(false), HOLD).await
    }

    pub async fn with(pool: PgPool, builder: PgStoreBuilder, hold: Duration) -> Self {
        let store = builder.build(pool).await.expect("store starts");
        Self {
            hold,
            dyn_store: Arc::new(store.clone()),
            store,
        }
    }
}

#[async_trait]
impl Harness for PgHarness {
    fn store(&self) -> Arc<dyn InventoryStore> {
        Arc::clone(&self.dyn_store)
    }

    async fn now(&self) -> DateTime<Utc> {
        sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(self.store.pool())
            .await
            .expect("database clock")
    }

    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }

    fn exact_time(&self) -> bool {
        false
    }

    fn hold(&self) -> Duration {
        self.hold
    }

    async fn verify(&self) -> Result<(), String> {
        self.store
            .verify_invariants()
            .await
            .map_err(|e| e.to_string())
    }
}

/// A second pool on the same test database, of `size` connections.
pub async fn pool_like(pool: &PgPool, size: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with((*pool.connect_options()).clone())
        .await
        .expect("second pool")
}

/// A store on its own pool of `size` connections.
pub async fn store_on(pool: &PgPool, size: u32, builder: PgStoreBuilder) -> PgStore {
    builder
        .build(pool_like(pool, size).await)
        .await
        .expect("store starts")
}

/// Asserts the store's bookkeeping is exact.
pub async fn assert_invariants(store: &PgStore) {
    if let Err(e) = store.verify_invariants().await {
        panic!("{e}");
    }
}

pub mod proxy;

/// A pool of `size` connections on the test database, through `proxy`.
pub async fn pool_via(pool: &PgPool, proxy: &proxy::Proxy, size: u32) -> PgPool {
    let options = (*pool.connect_options())
        .clone()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        // In clear, so the proxy can see which statement goes by.
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    PgPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
        .expect("pool through the proxy")
}

/// A proxy in front of the test database's server.
pub async fn proxy_for(pool: &PgPool) -> proxy::Proxy {
    proxy::Proxy::start(proxy::server_addr(&pool.connect_options())).await
}

/// A store whose connections (its listener's too) go through `proxy`. Its
/// pool takes the builder's acquire timeout.
pub async fn store_via(
    pool: &PgPool,
    proxy: &proxy::Proxy,
    size: u32,
    builder: PgStoreBuilder,
) -> PgStore {
    let options = (*pool.connect_options())
        .clone()
        .host("127.0.0.1")
        .port(proxy.addr.port())
        // In clear, so the proxy can see which statement goes by.
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    builder
        .max_connections(size)
        .connect_with(options)
        .await
        .expect("store through the proxy")
}

/// A buyer's name.
/// A buyer known by a claimed username: id and display name alike.
pub fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

/// A drop of `stock` units held for `hold`, created through `store`.
pub async fn drop_of(store: &PgStore, stock: u32, hold: Duration) -> DropId {
    store
        .create_drop(NewDrop::new("Test", Money::from_minor(100).unwrap(), stock).hold(hold))
        .await
        .unwrap()
        .drop
        .id
}

/// Locks the drop row from outside the store, so the store's next
/// transaction on it stops half-way, waiting.
pub async fn block_drop(pool: &PgPool, drop_id: DropId) -> Transaction<'static, Postgres> {
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM dropkit_drops WHERE id = $1 FOR UPDATE")
        .bind(drop_id.as_uuid())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// The next item of `events` that `what` picks, within `within`.
pub async fn wait_event<S: futures::Stream + Unpin, T>(
    events: &mut S,
    within: Duration,
    what: impl Fn(&S::Item) -> Option<T>,
) -> Option<T> {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Some(item) => {
                    if let Some(found) = what(&item) {
                        return Some(found);
                    }
                }
                None => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// The drop's holds whose recorded status is active, counted in the table
/// (swept or not, as the database holds them).
pub async fn active_holds_in_db(pool: &PgPool, drop_id: DropId) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_reservations WHERE drop_id = $1 AND status = 'active'",
    )
    .bind(drop_id.as_uuid())
    .fetch_one(pool)
    .await
    .unwrap()
}
