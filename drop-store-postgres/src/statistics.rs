//! First statistics for a new database's tables.
//!
//! An index built on an empty table is recorded as holding 0 tuples, and
//! PostgreSQL scales that figure with the index's size until VACUUM or
//! ANALYZE next looks at it: 0 times anything stays 0. The partial indexes
//! on active holds therefore look free to read whole, and a query the
//! planner could answer from one of them reads every active hold. On a new
//! database autovacuum first analyzes the tables up to a minute (its nap)
//! after a flash sale has begun, the worst moment to run on such plans.
//!
//! So a store watches the hold, purchase and waiting-list tables until each has been
//! analyzed once (by anyone) and, once one of them has taken
//! [`FIRST_ANALYZE_AFTER`] changes without statistics, analyzes it itself.
//! From then on autovacuum's own thresholds keep the figures right. The
//! task stops as soon as every one has statistics, and for good if the
//! database refuses (ANALYZE needs the tables' owner). Table names are
//! resolved through the connections' `search_path`, so a store in a schema
//! of its own watches its own tables.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Changes a never-analyzed table takes before the store analyzes it.
pub(crate) const FIRST_ANALYZE_AFTER: i64 = 500;

/// How often the tables' state is read while they lack statistics.
const POLL: Duration = Duration::from_secs(1);

/// The tables watched, as identifiers and as `pg_stat_user_tables` names.
const TABLES: [&str; 3] = [
    "dropkit_reservations",
    "dropkit_purchases",
    "dropkit_waitlist",
];

/// Watches until every table has been analyzed once; see the module docs.
pub(crate) async fn first_analyze(pool: PgPool, cancel: CancellationToken) {
    let mut done = [false; TABLES.len()];
    while !done.iter().all(|d| *d) {
        for (i, table) in TABLES.iter().enumerate() {
            if done[i] {
                continue;
            }
            match step(&pool, table).await {
                Ok(analyzed) => done[i] = analyzed,
                Err(e) if is_permission(&e) => {
                    tracing::warn!(
                        table,
                        "cannot ANALYZE (not the table's owner); plans rely on autovacuum: {e}"
                    );
                    return;
                }
                // A transient fault: look again next round.
                Err(e) => tracing::debug!(table, "statistics check failed: {e}"),
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Analyzes `table` if it needs it; `Ok(true)` once it has statistics.
async fn step(pool: &PgPool, table: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(bool, i64)> = sqlx::query_as(
        "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL, n_mod_since_analyze \
           FROM pg_stat_user_tables WHERE relid = to_regclass($1)",
    )
    .bind(table)
    .fetch_optional(pool)
    .await?;
    let Some((analyzed, changes)) = row else {
        return Ok(false);
    };
    if analyzed {
        return Ok(true);
    }
    if changes < FIRST_ANALYZE_AFTER {
        return Ok(false);
    }
    // One instance analyzes; the others see it done on their next look.
    let mut tx = pool.begin().await?;
    // Keyed by the table's oid: stores of other schemas in the same
    // database analyze their own tables without waiting on this one.
    let mine: bool = sqlx::query_scalar(
        "SELECT pg_try_advisory_xact_lock(hashtext('dropkit first analyze ' || to_regclass($1)::oid))",
    )
    .bind(table)
    .fetch_one(&mut *tx)
    .await?;
    if mine {
        // `table` is one of `TABLES`, never input.
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
            .execute(&mut *tx)
            .await?;
        tracing::debug!(
            table,
            changes,
            "analyzed a table that had no statistics yet"
        );
    }
    tx.commit().await?;
    Ok(mine)
}

fn is_permission(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c == "42501")
}
