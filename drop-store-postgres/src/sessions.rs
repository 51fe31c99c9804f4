//! Revoked sign-in sessions: `dropkit_revoked_sessions`, which every
//! instance on the database reads and writes.
//!
//! Both statements are single and idempotent, and announce nothing, so a
//! transient fault is retried like a read's: no commit can leave events
//! unpublished. Times are the database's, like every other time here.

use chrono::{DateTime, Utc};
use drop_core::{DropError, RevokedSession, RevokedSessions};
use sqlx::FromRow;
use uuid::Uuid;

use crate::writes::Shared;

/// Most expired rows one revocation deletes: a backlog (after a quiet
/// spell with many sessions ending) is spread over later revocations.
const PRUNE_BATCH: i64 = 1_000;

/// Records (or records again) that session `id` is revoked, and deletes
/// expired records. A session revoked twice keeps the later expiry and
/// takes the new `revoked_at`, so pollers hear of it again.
///
/// The pruning skips rows another revocation is deleting (no waiting, no
/// deadlock between two of them) and never touches the row being written
/// (a statement may not modify one row twice).
pub(crate) async fn revoke(
    shared: &Shared,
    id: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), DropError> {
    const SQL: &str = "WITH pruned AS ( \
           DELETE FROM dropkit_revoked_sessions WHERE id IN ( \
             SELECT id FROM dropkit_revoked_sessions \
              WHERE expires_at <= now() AND id <> $1 \
              ORDER BY expires_at LIMIT $3 FOR UPDATE SKIP LOCKED)) \
         INSERT INTO dropkit_revoked_sessions AS r (id, expires_at) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE \
            SET expires_at = greatest(r.expires_at, excluded.expires_at), \
                revoked_at = excluded.revoked_at";
    shared
        .read(|| {
            sqlx::query(SQL)
                .bind(id)
                .bind(expires_at)
                .bind(PRUNE_BATCH)
                .execute(&shared.pool)
        })
        .await
        .map(|_| ())
}

/// The revocations asked for, in arrays: one row whatever their number,
/// with the time of the read even when there are none.
#[derive(Debug, FromRow)]
struct RevokedRow {
    now: DateTime<Utc>,
    ids: Vec<Uuid>,
    expires: Vec<DateTime<Utc>>,
    revoked: Vec<DateTime<Utc>>,
}

/// The unexpired revocations recorded at or after `since`, oldest first,
/// and the database's time of the read.
///
/// The time is the statement's start, taken before its snapshot: a
/// revocation missing from the answer committed after that, so one whose
/// `revoked_at` is earlier than the answer's `now` took longer than the
/// difference to commit (what the callers' overlap covers).
pub(crate) async fn revoked(
    shared: &Shared,
    since: Option<DateTime<Utc>>,
) -> Result<RevokedSessions, DropError> {
    const SQL: &str = "SELECT statement_timestamp() AS now, \
            coalesce(array_agg(id ORDER BY revoked_at, id), '{}') AS ids, \
            coalesce(array_agg(expires_at ORDER BY revoked_at, id), '{}') AS expires, \
            coalesce(array_agg(revoked_at ORDER BY revoked_at, id), '{}') AS revoked \
       FROM dropkit_revoked_sessions \
      WHERE revoked_at >= coalesce($1, '-infinity'::timestamptz) \
        AND expires_at > statement_timestamp()";
    let row = shared
        .read(|| {
            sqlx::query_as::<_, RevokedRow>(SQL)
                .bind(since)
                .fetch_one(&shared.pool)
        })
        .await?;
    let sessions = row
        .ids
        .into_iter()
        .zip(row.expires)
        .zip(row.revoked)
        .map(|((id, expires_at), revoked_at)| RevokedSession::new(id, expires_at, revoked_at))
        .collect();
    Ok(RevokedSessions::new(sessions, row.now))
}
