//! Idempotency records: reading them back to answer a replay, and
//! pruning them once they are older than
//! [`IDEMPOTENCY_RETENTION`](drop_core::IDEMPOTENCY_RETENTION).
//!
//! Every write records its key in its own transaction (the write functions
//! and [`crate::admin`]); a replay is answered here from one statement
//! that reads the record joined with the hold or purchase it names.

use std::time::Duration;

use drop_core::{
    Applied, DropError, DropState, IDEMPOTENCY_RETENTION, IdempotencyKey, Purchase, Purchased,
    Recorded, Reserved,
};
use tokio::time::Instant;

use crate::error::internal;
use crate::rows::KeyRow;
use crate::writes::Shared;

/// How often one instance prunes old records, at most.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most records one prune deletes: a short statement, whatever the backlog.
const PRUNE_BATCH: i64 = 2_000;

/// The record of `caller`'s write under `key`, with its entity: one
/// statement, primary-key probes only.
pub(crate) async fn lookup(
    shared: &Shared,
    caller: &str,
    key: &str,
) -> Result<Option<KeyRow>, DropError> {
    const SQL: &str = concat!("SELECT ", key_columns!());
    shared
        .read(|| {
            sqlx::query_as::<_, KeyRow>(SQL)
                .bind(caller)
                .bind(key)
                .fetch_optional(&shared.pool)
        })
        .await
}

fn reused(key: &IdempotencyKey) -> DropError {
    DropError::IdempotencyKeyReused {
        key: key.key().to_owned(),
    }
}

/// A record that must exist (a transaction said it was taken) but is not
/// there: it was pruned or its writer rolled back; the caller retries.
fn vanished() -> DropError {
    DropError::Unavailable {
        store: crate::error::STORE,
        source: "an idempotency record changed while it was read; retry".into(),
    }
}

/// The record under `key`, checked against its fingerprint.
async fn matching(shared: &Shared, key: &IdempotencyKey) -> Result<Option<KeyRow>, DropError> {
    let Some(row) = lookup(shared, key.caller(), key.key()).await? else {
        return Ok(None);
    };
    row.record(key.caller(), key.key())?.matches(key)?;
    Ok(Some(row))
}

/// The answer to a reserve sent again with `key`, if one is recorded.
pub(crate) async fn reserve_replay(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Option<Reserved>, DropError> {
    let Some(row) = matching(shared, key).await? else {
        return Ok(None);
    };
    let Recorded::Reservation(_) = row.entity()? else {
        return Err(reused(key));
    };
    let mut hold = row
        .hold()?
        .ok_or_else(|| internal("a recorded hold is missing"))?;
    hold.status = hold.effective_status(row.now);
    Ok(Some(Reserved::replay(hold, row.created())))
}

/// [`reserve_replay`] for a caller whose key a batch found taken.
pub(crate) async fn replay_reserve(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Reserved, DropError> {
    reserve_replay(shared, key).await?.ok_or_else(vanished)
}

/// The answer to a purchase (or a cancel) sent again with `key`, if one
/// is recorded.
pub(crate) async fn purchase_record(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Option<(Purchase, bool)>, DropError> {
    let Some(row) = matching(shared, key).await? else {
        return Ok(None);
    };
    let Recorded::Purchase(_) = row.entity()? else {
        return Err(reused(key));
    };
    let purchase = row
        .purchase()?
        .ok_or_else(|| internal("a recorded purchase is missing"))?;
    Ok(Some((purchase, row.created())))
}

/// The answer to a purchase sent again with `key`, if one is recorded.
pub(crate) async fn purchase_replay(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Option<Purchased>, DropError> {
    Ok(purchase_record(shared, key)
        .await?
        .map(|(p, created)| Purchased::replay(p, created)))
}

/// [`purchase_replay`] for a caller whose key a batch found taken.
pub(crate) async fn replay_purchase(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Purchased, DropError> {
    purchase_replay(shared, key).await?.ok_or_else(vanished)
}

/// The answer to a cancel sent again with `key`, if one is recorded.
pub(crate) async fn cancel_replay(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Option<Applied<Purchase>>, DropError> {
    Ok(purchase_record(shared, key)
        .await?
        .map(|(p, _)| Applied::replay(p)))
}

/// The answer to a drop write (create or edit) sent again with `key`, if
/// one is recorded: the drop as it is now.
pub(crate) async fn drop_replay(
    shared: &Shared,
    key: &IdempotencyKey,
) -> Result<Option<Applied<DropState>>, DropError> {
    let Some(row) = matching(shared, key).await? else {
        return Ok(None);
    };
    let Recorded::Drop(drop_id) = row.entity()? else {
        return Err(reused(key));
    };
    let state = crate::admin::read_drop(shared, drop_id).await?;
    Ok(Some(Applied::replay(state)))
}

/// Deletes up to [`PRUNE_BATCH`] records older than the retention, and
/// prunes the event log (`crate::log::prune`), at most once per
/// [`PRUNE_EVERY`] per instance. Best effort: a failure is
/// logged, and the next sweep tries again.
pub(crate) async fn prune(shared: &Shared) {
    {
        let mut last = shared.pruned.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
    }
    let deleted = sqlx::query(
        "DELETE FROM dropkit_idempotency WHERE (caller, key) IN ( \
             SELECT caller, key FROM dropkit_idempotency \
              WHERE recorded_at < clock_timestamp() - make_interval(secs => $1) \
              ORDER BY recorded_at LIMIT $2)",
    )
    .bind(IDEMPOTENCY_RETENTION.as_secs_f64())
    .bind(PRUNE_BATCH)
    .execute(&shared.pool)
    .await;
    if let Err(e) = deleted {
        tracing::warn!(error = %e, "pruning old idempotency records failed");
    }
    crate::log::prune(shared).await;
}
