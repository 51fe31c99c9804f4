//! [`PgStoreBuilder`]: the store's settings.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use drop_core::{DEFAULT_EVENT_CAPACITY, DEFAULT_EVENT_RETENTION, DrawRandom, DropError, OsRandom};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::PgStore;
use crate::error::map_sqlx;
use crate::fanout::{DEFAULT_CHANNEL, FeedSettings};
use crate::migrations;

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
    pub(crate) schema: Option<String>,
    pub(crate) channel: Option<String>,
    pub(crate) listener: Option<PgConnectOptions>,
    pub(crate) event_log: bool,
    pub(crate) event_retention: Duration,
    pub(crate) draw_random: Arc<dyn DrawRandom>,
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
            schema: None,
            channel: None,
            listener: None,
            event_log: true,
            event_retention: DEFAULT_EVENT_RETENTION,
            draw_random: Arc::new(OsRandom),
        }
    }
}

impl PgStoreBuilder {
    /// Where draw drops' seeds (drawn when a drop is made) and entries'
    /// receipts come from: the operating system ([`OsRandom`]) unless
    /// told otherwise. [`drop_core::SeededRandom`] makes tests' draws the
    /// same on every run; never use it for real draws.
    pub fn draw_random(mut self, random: Arc<dyn DrawRandom>) -> Self {
        self.draw_random = random;
        self
    }

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

    /// Group commit: concurrent reserves (and purchases, joins of its
    /// waiting list and entries to its draw) of one drop share one transaction, gathered while the previous one is in flight (no
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

    /// Whether writes append to the durable event log (read with
    /// [`events_after`](drop_core::InventoryStore::events_after)). Defaults
    /// to `true`. With `false` the write functions are called without their
    /// logging wrappers: the log's cost is gone, and so is the log —
    /// `events_after`, `drop_history` and cursors still work but see
    /// nothing new from this instance's writes (nor do webhooks or the
    /// audit view). Every instance sharing a database should agree.
    pub fn event_log(mut self, on: bool) -> Self {
        self.event_log = on;
        self
    }

    /// How long log entries are kept. Defaults to
    /// [`DEFAULT_EVENT_RETENTION`] (30 days). Older entries are pruned
    /// where idempotency records are (during
    /// [`expire_due`](drop_core::InventoryStore::expire_due), at most once a
    /// minute per instance, a bounded number per run), but never one that
    /// a cursor has not passed.
    pub fn event_retention(mut self, keep: Duration) -> Self {
        self.event_retention = keep;
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

    /// The schema every dropkit table, function, index and the migration
    /// history live in; created (by the migrations) if absent. Defaults to
    /// none: the connections' own `search_path` decides, which is `public`
    /// on a default database — where every earlier version put them, so an
    /// existing database goes on working unchanged.
    ///
    /// A name is 1–63 characters of `a-z`, `0-9` and `_`, not starting with
    /// a digit nor with `pg_`; anything else is refused here
    /// (`INVALID_INPUT`), so the name can never carry SQL.
    ///
    /// How the store reaches its schema: a pool the store opens
    /// ([`connect`](Self::connect), [`connect_with`](Self::connect_with))
    /// gets `search_path` set to the schema on every connection. A pool
    /// handed to [`build`](Self::build) is the application's and is not
    /// changed: its `search_path` must list the schema (for instance
    /// `options([("search_path", "public,dropkit")])` on its connect
    /// options, or `ALTER ROLE … SET search_path`), with no schema before it
    /// holding dropkit objects. `build` checks that and refuses the pool
    /// with `INVALID_INPUT` (field `schema`) otherwise, rather than let
    /// queries land in another schema.
    pub fn schema(mut self, name: &str) -> Result<Self, DropError> {
        self.schema = Some(identifier("schema", name)?);
        Ok(self)
    }

    /// The `LISTEN/NOTIFY` channel instances exchange events on; the same
    /// name rules as [`schema`](Self::schema). Defaults to
    /// `dropkit_events` without a schema or with `public` (the channel of
    /// every earlier version, so old and new instances hear each other),
    /// and to `dropkit_events_<schema>` otherwise (a name too long for that
    /// gets a hash of the schema instead). Every store of one schema must
    /// use the same channel; stores of different schemas must not.
    pub fn channel(mut self, name: &str) -> Result<Self, DropError> {
        self.channel = Some(identifier("channel", name)?);
        Ok(self)
    }

    /// Where the event listener connects, when it must not go where the
    /// pool goes: `LISTEN` needs a session of its own, which a
    /// transaction-pooling proxy (PgBouncer in transaction mode) does not
    /// keep. Defaults to the pool's own connect options. The listener holds
    /// one connection, outside the pool, either way.
    pub fn listener_url(self, url: &str) -> Result<Self, DropError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DropError::invalid("listenerUrl", e.to_string()))?;
        Ok(self.listener_options(options))
    }

    /// Like [`listener_url`](Self::listener_url), with connect options.
    pub fn listener_options(mut self, options: PgConnectOptions) -> Self {
        self.listener = Some(options);
        self
    }

    /// Creates the schema if needed, moves an older version's history out
    /// of `_sqlx_migrations`, and applies the migrations that are missing,
    /// all in [`schema`](Self::schema). What a start does unless
    /// [`migrate`](Self::migrate) is off; call it from an application's own
    /// migration step instead. Forward only, safe to run from every
    /// instance at once.
    pub async fn run_migrations(&self, pool: &PgPool) -> Result<(), DropError> {
        migrations::run(pool, self.schema.as_deref()).await
    }

    /// The channel events travel on (see [`channel`](Self::channel)).
    pub(crate) fn channel_name(&self) -> Arc<str> {
        if let Some(channel) = &self.channel {
            return channel.as_str().into();
        }
        match self.schema.as_deref() {
            None | Some("public") => DEFAULT_CHANNEL.into(),
            Some(schema) => {
                let named = format!("{DEFAULT_CHANNEL}_{schema}");
                if named.len() <= MAX_IDENTIFIER {
                    named.into()
                } else {
                    format!("{DEFAULT_CHANNEL}_{:016x}", fnv1a(schema)).into()
                }
            }
        }
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

    /// Opens a pool with `options` (its connections' `search_path` set to
    /// the [`schema`](Self::schema), if one is set), migrates, starts.
    /// [`PgStore::close`] closes this pool.
    pub async fn connect_with(self, options: PgConnectOptions) -> Result<PgStore, DropError> {
        let options = match &self.schema {
            // Quoted although the name needs no quotes: the value is an
            // identifier list, read as such.
            Some(schema) => options.options([("search_path", format!("\"{schema}\""))]),
            None => options,
        };
        let pool = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .connect_with(options)
            .await
            .map_err(map_sqlx)?;
        PgStore::start(pool, &self, true).await
    }

    /// A store on an application's `pool` (its own size, timeouts and
    /// `search_path` apply), migrated and started. [`PgStore::close`]
    /// leaves this pool open: it is the application's. The store uses up
    /// to [`max_connections`](Self::max_connections)' worth of the pool's
    /// connections only as calls need them (one per write, read or batch
    /// in flight); the event listener holds one more, outside the pool.
    pub async fn build(self, pool: PgPool) -> Result<PgStore, DropError> {
        PgStore::start(pool, &self, false).await
    }
}

/// PostgreSQL's longest identifier (`NAMEDATALEN - 1` bytes).
const MAX_IDENTIFIER: usize = 63;

/// `name` if it is an identifier that needs no quoting anywhere: 1–63 of
/// `a-z`, `0-9`, `_`, not starting with a digit, not `pg_…` (reserved for
/// the system's schemas).
fn identifier(field: &'static str, name: &str) -> Result<String, DropError> {
    let bad = |why: &str| Err(DropError::invalid(field, format!("{name:?} {why}")));
    if name.is_empty() || name.len() > MAX_IDENTIFIER {
        return bad("must be 1 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return bad("may hold only a-z, 0-9 and _");
    }
    if name.as_bytes()[0].is_ascii_digit() {
        return bad("must not start with a digit");
    }
    if name.starts_with("pg_") {
        return bad("must not start with pg_ (reserved by PostgreSQL)");
    }
    Ok(name.to_owned())
}

/// FNV-1a, 64 bits: a hash that never changes between versions or
/// processes, so every instance derives the same channel.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_identifiers_or_refused() {
        for good in ["dropkit", "shop_a", "_x", "a1", &"a".repeat(63)] {
            assert_eq!(identifier("schema", good).unwrap(), good);
        }
        for bad in [
            "",
            "Shop",
            "shop-a",
            "1shop",
            "pg_shop",
            "a\"; DROP TABLE x; --",
            "shop a",
            "schön",
            &"a".repeat(64),
        ] {
            let err = identifier("schema", bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_INPUT", "{bad:?}");
            assert_eq!(err.field(), Some("schema"));
        }
    }

    #[test]
    fn the_channel_follows_the_schema_and_keeps_the_old_name_for_public() {
        let channel = |b: PgStoreBuilder| b.channel_name().to_string();
        assert_eq!(channel(PgStore::builder()), "dropkit_events");
        assert_eq!(
            channel(PgStore::builder().schema("public").unwrap()),
            "dropkit_events"
        );
        assert_eq!(
            channel(PgStore::builder().schema("shop").unwrap()),
            "dropkit_events_shop"
        );
        let long = PgStore::builder().schema(&"s".repeat(60)).unwrap();
        let derived = channel(long.clone());
        assert!(derived.len() <= MAX_IDENTIFIER, "{derived}");
        assert_eq!(derived, channel(long), "stable");
        assert_ne!(
            derived,
            channel(PgStore::builder().schema(&"t".repeat(60)).unwrap())
        );
        assert_eq!(
            channel(
                PgStore::builder()
                    .schema("shop")
                    .unwrap()
                    .channel("mine")
                    .unwrap()
            ),
            "mine"
        );
    }
}
