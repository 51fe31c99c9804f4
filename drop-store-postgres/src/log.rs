//! The durable event log (`dropkit_events`, migration `20261209000001`):
//! reading it, the named cursors, retention, and the append that admin
//! transactions make in Rust. The buyers' writes append inside their
//! database functions (the `*_logged` wrappers).
//!
//! Numbering order is not commit order, so every read settles first, in
//! the same call (`dropkit_log_read`, `dropkit_log_settle`): it takes the
//! last number handed out and, when that is above what the reader has
//! seen, waits until every writer that may hold a number up to it has
//! ended; then it reads up to that number in a new snapshot. Writers only
//! take a shared lock, and do not wait for each other (the migration
//! explains why that suffices). So a read after the highest number seen
//! never skips an entry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use drop_core::{
    Change, CursorClaim, CursorInfo, DropError, DropId, LogEntry, MAX_LOG_PAGE, check_cursor_name,
};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::internal;
use crate::writes::Shared;

/// Most entries one retention run moves past: a short hold of the head
/// row's lock, whatever the backlog. At one run a minute per instance this
/// prunes 600,000 entries an hour per instance.
const PRUNE_BATCH: i32 = 10_000;

/// Appends `entries` in order, as the last statement of the transaction on
/// `conn` (no lock may be taken after it). Nothing to append is no
/// statement at all.
pub(crate) async fn append(
    conn: &mut PgConnection,
    entries: &[(DropId, Change)],
) -> Result<(), sqlx::Error> {
    if entries.is_empty() {
        return Ok(());
    }
    let drops: Vec<Uuid> = entries.iter().map(|(d, _)| d.as_uuid()).collect();
    let kinds: Vec<&str> = entries.iter().map(|(_, c)| c.kind()).collect();
    let data = entries
        .iter()
        .map(|(_, c)| serde_json::to_value(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query("SELECT dropkit_log_append($1, $2, $3)")
        .bind(&drops)
        .bind(&kinds)
        .bind(&data)
        .execute(conn)
        .await?;
    Ok(())
}

/// One entry as read, with the horizon the same statement saw.
#[derive(sqlx::FromRow)]
struct EntryRow {
    pruned_to: i64,
    seq: Option<i64>,
    at: Option<DateTime<Utc>>,
    drop_id: Option<Uuid>,
    data: Option<Json<Change>>,
}

fn to_seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_seq(n: i64) -> Result<u64, DropError> {
    u64::try_from(n).map_err(|_| internal("a negative log number"))
}

fn page(limit: usize) -> i32 {
    i32::try_from(limit.min(MAX_LOG_PAGE)).unwrap_or(1)
}

/// Entries above `after` (of one drop, when `drop_id` is given): one call,
/// which waits for the writers still committing numbers it would answer.
pub(crate) async fn read(
    shared: &Shared,
    drop_id: Option<DropId>,
    after: u64,
    limit: usize,
) -> Result<Vec<LogEntry>, DropError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    // Ordered again here: the function answers in order, but the order of
    // a function scan's rows is not something SQL promises.
    const READ: &str = "SELECT o_pruned_to AS pruned_to, o_seq AS seq, o_at AS at, \
                o_drop AS drop_id, o_data AS data \
           FROM dropkit_log_read($1, $2, $3) ORDER BY o_seq";
    let (after_i, n, drop) = (to_seq(after), page(limit), drop_id.map(|d| d.as_uuid()));
    let rows = shared
        .read(|| {
            sqlx::query_as::<_, EntryRow>(READ)
                .bind(after_i)
                .bind(n)
                .bind(drop)
                .fetch_all(&shared.pool)
        })
        .await?;
    let Some(first) = rows.first() else {
        return Err(internal("the log's head row is missing"));
    };
    if after_i < first.pruned_to {
        return Err(pruned(shared, after, first.pruned_to).await?);
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (Some(seq), Some(at), Some(drop), Some(Json(change))) =
            (row.seq, row.at, row.drop_id, row.data)
        else {
            continue;
        };
        out.push(LogEntry::new(
            from_seq(seq)?,
            at,
            DropId::from_uuid(drop),
            change,
        ));
    }
    Ok(out)
}

/// `EVENTS_PRUNED` for a reader at `after`: the oldest entry kept, or the
/// next to be written when none is.
async fn pruned(shared: &Shared, after: u64, horizon: i64) -> Result<DropError, DropError> {
    let oldest: Option<i64> = shared
        .read(|| {
            sqlx::query_scalar("SELECT min(seq) FROM dropkit_events WHERE seq > $1")
                .bind(horizon)
                .fetch_one(&shared.pool)
        })
        .await?;
    Ok(DropError::EventsPruned {
        after,
        oldest: from_seq(oldest.unwrap_or(horizon.saturating_add(1)))?,
    })
}

/// The last number handed out, once every writer that may hold a number
/// up to it has ended: a consumer starting there skips nothing (a number
/// that never shows up was rolled back, and is a hole for good).
pub(crate) async fn head(shared: &Shared) -> Result<u64, DropError> {
    let n: i64 = shared
        .read(|| sqlx::query_scalar("SELECT dropkit_log_settle(0)").fetch_one(&shared.pool))
        .await?;
    from_seq(n)
}

fn lease_secs(lease: Duration) -> f64 {
    // Beyond a century is forever enough, and keeps the interval in range.
    lease.as_secs_f64().min(3.2e9)
}

/// Claims (or renews) a cursor; a new one starts at the pruned horizon,
/// read under a share lock of the head row so that a concurrent retention
/// run either sees this cursor or has moved the horizon first.
pub(crate) async fn claim(
    shared: &Shared,
    name: &str,
    holder: Uuid,
    lease: Duration,
) -> Result<Option<CursorClaim>, DropError> {
    check_cursor_name(name)?;
    let secs = lease_secs(lease);
    // `xmax = 0` only on a row this statement inserted: an updated row
    // carries the updating transaction's id there.
    let claimed: Option<(i64, bool)> = shared
        .read(|| {
            sqlx::query_as(
                "INSERT INTO dropkit_cursors AS c (name, position, holder, lease_until) \
                 SELECT $1, h.pruned_to, $2, clock_timestamp() + make_interval(secs => $3) \
                   FROM dropkit_log_head h FOR SHARE \
                 ON CONFLICT (name) DO UPDATE \
                    SET holder = excluded.holder, lease_until = excluded.lease_until \
                  WHERE c.holder IS NULL OR c.holder = excluded.holder \
                     OR c.lease_until <= clock_timestamp() \
                 RETURNING c.position, c.xmax = 0",
            )
            .bind(name)
            .bind(holder)
            .bind(secs)
            .fetch_optional(&shared.pool)
        })
        .await?;
    claimed
        .map(|(p, created)| {
            let position = from_seq(p)?;
            Ok(if created {
                CursorClaim::created(position)
            } else {
                CursorClaim::new(position)
            })
        })
        .transpose()
}

/// Moves a cursor forward while `holder`'s lease runs.
pub(crate) async fn advance(
    shared: &Shared,
    name: &str,
    holder: Uuid,
    position: u64,
) -> Result<bool, DropError> {
    check_cursor_name(name)?;
    let done = shared
        .read(|| {
            sqlx::query(
                "UPDATE dropkit_cursors SET position = greatest(position, $3) \
                  WHERE name = $1 AND holder = $2 AND lease_until > clock_timestamp()",
            )
            .bind(name)
            .bind(holder)
            .bind(to_seq(position))
            .execute(&shared.pool)
        })
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives up `holder`'s lease, if it has one.
pub(crate) async fn release(shared: &Shared, name: &str, holder: Uuid) -> Result<(), DropError> {
    check_cursor_name(name)?;
    shared
        .read(|| {
            sqlx::query(
                "UPDATE dropkit_cursors SET holder = NULL, lease_until = NULL \
                  WHERE name = $1 AND holder = $2",
            )
            .bind(name)
            .bind(holder)
            .execute(&shared.pool)
        })
        .await?;
    Ok(())
}

/// Deletes a cursor.
pub(crate) async fn remove(shared: &Shared, name: &str) -> Result<(), DropError> {
    check_cursor_name(name)?;
    shared
        .read(|| {
            sqlx::query("DELETE FROM dropkit_cursors WHERE name = $1")
                .bind(name)
                .execute(&shared.pool)
        })
        .await?;
    Ok(())
}

/// Every cursor, by name; held when a lease runs by the database clock.
pub(crate) async fn cursors(shared: &Shared) -> Result<Vec<CursorInfo>, DropError> {
    let rows: Vec<(String, i64, bool, Option<DateTime<Utc>>)> = shared
        .read(|| {
            sqlx::query_as(
                "SELECT name, position, \
                        coalesce(holder IS NOT NULL AND lease_until > clock_timestamp(), false), \
                        CASE WHEN holder IS NOT NULL THEN lease_until END \
                   FROM dropkit_cursors ORDER BY name COLLATE \"C\"",
            )
            .fetch_all(&shared.pool)
        })
        .await?;
    rows.into_iter()
        .map(|(name, position, held, until)| {
            Ok(CursorInfo::new(name, from_seq(position)?, held, until))
        })
        .collect()
}

/// One retention run: moves the horizon past up to [`PRUNE_BATCH`] old
/// entries no cursor needs (a short hold of the head row's lock), then
/// deletes the rows at or below it (no lock: nobody reads them any more). Best
/// effort, like the idempotency records' pruning it runs with: a failure
/// is logged and the next run goes on.
pub(crate) async fn prune(shared: &Shared) {
    let keep = shared.retention.as_secs_f64().min(3.2e9);
    let horizon = sqlx::query_scalar::<_, i64>("SELECT dropkit_log_prune($1, $2)")
        .bind(keep)
        .bind(PRUNE_BATCH)
        .fetch_one(&shared.pool)
        .await;
    let horizon = match horizon {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "pruning the event log failed");
            return;
        }
    };
    // Bounded too: rows a failed delete left behind go a batch at a time.
    let deleted = sqlx::query(
        "DELETE FROM dropkit_events WHERE seq IN ( \
             SELECT seq FROM dropkit_events WHERE seq <= $1 ORDER BY seq LIMIT $2)",
    )
    .bind(horizon)
    .bind(i64::from(PRUNE_BATCH) * 2)
    .execute(&shared.pool)
    .await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "deleting pruned log entries failed");
    }
}
