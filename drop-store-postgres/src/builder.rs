//! [`PgStoreBuilder`]: the store's settings.

use std::str::FromStr;
use std::time::Duration;

use drop_core::{DEFAULT_EVENT_CAPACITY, DropError};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::PgStore;
use crate::error::map_sqlx;
use crate::fanout::FeedSettings;

/// The default of [`PgStoreBuilder::acquire_timeout`].
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings for a [`PgStore`]. Every setter consumes and returns the
/// builder; finish with [`connect`](Self::connect),
/// [`connect_with`](Self::connect_with) or [`build`](Self::build).
#[derive(Debug, Clone)]
pub struct PgStoreBuilder {
    pub(crate) max_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) group_commit: bool,
    pub(crate) batch_cap: usize,
    pub(crate) retries: u32,
    pub(crate) listen: bool,
    pub(crate) event_capacity: usize,
    pub(crate) notify_queue: usize,
    pub(crate) notify_interval: Duration,
    pub(crate) migrate: bool,
    pub(crate) listener_timeout: Duration,
}

impl Default for PgStoreBuilder {
    fn default() -> Self {
        Self {
            max_connections: 32,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            group_commit: true,
            batch_cap: 256,
            retries: 3,
            listen: true,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            notify_queue: 65_536,
            notify_interval: Duration::from_millis(20),
            migrate: true,
            listener_timeout: Duration::from_secs(10),
        }
    }
}

impl PgStoreBuilder {
    /// Connections in the pool [`connect`](Self::connect) opens (at least
    /// 1). Defaults to 32. The event listener holds one more of its own.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a call waits for a connection (a free one, or a new one
    /// to open) before failing with `UNAVAILABLE`; also the bound of
    /// [`health`](drop_core::InventoryStore::health). A call that timed out
    /// here is not retried: when the database is down, callers hear so
    /// within about this long. Defaults to 1 s
    /// ([`DEFAULT_ACQUIRE_TIMEOUT`]); raise it if calls queue longer than
    /// that for a connection under normal load (a small pool, many drops).
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// Group commit: concurrent reserves (and purchases) of one drop share
    /// one transaction, gathered while the previous one is in flight (no
    /// timer: a lone call goes at once). Defaults to `true`.
    pub fn group_commit(mut self, on: bool) -> Self {
        self.group_commit = on;
        self
    }

    /// The most calls one group-commit batch takes (at least 1). Defaults
    /// to 256.
    pub fn batch_cap(mut self, n: usize) -> Self {
        self.batch_cap = n.max(1);
        self
    }

    /// How many times a call (or a whole batch) is retried after a
    /// transient fault (lost connection, deadlock, serialization failure)
    /// before it fails with `UNAVAILABLE`. Defaults to 3.
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Whether to exchange events with other instances through
    /// `LISTEN/NOTIFY`. Defaults to `true`; turn it off only for a process
    /// that is the database's sole user.
    pub fn listen(mut self, on: bool) -> Self {
        self.listen = on;
        self
    }

    /// How far a local subscriber may fall behind before it is told it
    /// lost events. Defaults to [`DEFAULT_EVENT_CAPACITY`].
    pub fn event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n.max(1);
        self
    }

    /// Events waiting to be sent to other instances before the oldest are
    /// dropped (and the other instances told to resync). Defaults to
    /// 65,536.
    pub fn notify_queue(mut self, n: usize) -> Self {
        self.notify_queue = n.max(1);
        self
    }

    /// How long the notifier lets events gather before it sends them to
    /// other instances in one `NOTIFY` (each is a commit of its own, so this
    /// caps them at about `1 / interval` per second). Other instances hear
    /// of changes this much later. Defaults to 20 ms.
    pub fn notify_interval(mut self, interval: Duration) -> Self {
        self.notify_interval = interval;
        self
    }

    /// Whether starting the store applies its migrations. Defaults to on.
    /// Turn it off when the application runs migrations in its own
    /// pipeline: [`PgStore::migrate`] (or [`PgStore::migrator`]) before the
    /// store starts.
    pub fn migrate(mut self, on: bool) -> Self {
        self.migrate = on;
        self
    }

    /// How long the cross-instance listener may hear nothing before it
    /// takes its connection for dead (a half-open TCP connection gives no
    /// error), reconnects and tells subscribers to resync. It sends itself
    /// a heartbeat four times per period. Defaults to 10 s.
    pub fn listener_timeout(mut self, timeout: Duration) -> Self {
        self.listener_timeout = timeout.max(Duration::from_millis(10));
        self
    }

    pub(crate) fn feed(&self) -> FeedSettings {
        FeedSettings {
            queue: self.notify_queue,
            interval: self.notify_interval,
            heartbeat: self.listener_timeout / 4,
            silence: self.listener_timeout,
        }
    }

    /// Opens a pool on `database_url` (e.g.
    /// `postgres://user:pass@host/db?sslmode=require`), migrates, starts.
    pub async fn connect(self, database_url: &str) -> Result<PgStore, DropError> {
        let options = PgConnectOptions::from_str(database_url)
            .map_err(|e| DropError::invalid("databaseUrl", e.to_string()))?;
        self.connect_with(options).await
    }

    /// Opens a pool with `options`, migrates, starts.
    pub async fn connect_with(self, options: PgConnectOptions) -> Result<PgStore, DropError> {
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(map_sqlx)?;
        self.build(pool).await
    }

    /// A store on an existing `pool` (its own size and timeouts apply),
    /// migrated and started.
    pub async fn build(self, pool: PgPool) -> Result<PgStore, DropError> {
        PgStore::start(pool, &self).await
    }
}
