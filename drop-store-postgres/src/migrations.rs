//! The schema's migrations and their history table.
//!
//! dropkit keeps its migration history in a table of its own,
//! [`HISTORY_TABLE`], not in sqlx's default `_sqlx_migrations`: a host
//! application that runs its own `sqlx::migrate!` on the same database
//! would otherwise find versions it does not know ("previously applied but
//! missing") and refuse to start, and dropkit would find the host's.
//!
//! Databases made before the history had a table of its own recorded
//! dropkit's migrations in `_sqlx_migrations`; the first start of this
//! version moves those rows (only those whose version and checksum are
//! dropkit's) into [`HISTORY_TABLE`].

use std::sync::LazyLock;

use drop_core::DropError;
use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

use crate::error::{internal, map_sqlx};

/// The table dropkit records its applied migrations in.
pub const HISTORY_TABLE: &str = "_dropkit_migrations";

/// sqlx's default history table, where older versions recorded theirs.
const SHARED_HISTORY: &str = "_sqlx_migrations";

/// Serialises history moves of concurrent starts (an arbitrary, fixed key).
const ADOPT_LOCK: i64 = 0x6472_6f70_6b69_7401;

pub(crate) static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut m = sqlx::migrate!("./migrations");
    m.dangerous_set_table_name(HISTORY_TABLE);
    m
});

/// Moves dropkit's rows out of `_sqlx_migrations` (see the module docs),
/// then applies what is missing.
pub(crate) async fn run(pool: &PgPool) -> Result<(), DropError> {
    adopt_shared_history(pool).await.map_err(map_sqlx)?;
    MIGRATOR.run(pool).await.map_err(|e| match e {
        MigrateError::Execute(e) => map_sqlx(e),
        other => internal(format!("migration failed: {other}")),
    })
}

/// One transaction under an advisory lock: creates [`HISTORY_TABLE`] like
/// `_sqlx_migrations` and moves the rows that are dropkit's into it. Does
/// nothing once [`HISTORY_TABLE`] exists or when there is nothing to move.
/// An emptied `_sqlx_migrations` is dropped: it held only dropkit's rows.
async fn adopt_shared_history(pool: &PgPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADOPT_LOCK)
        .execute(&mut *tx)
        .await?;
    let (ours, shared): (bool, bool) =
        sqlx::query_as("SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL")
            .bind(HISTORY_TABLE)
            .bind(SHARED_HISTORY)
            .fetch_one(&mut *tx)
            .await?;
    if ours || !shared {
        return tx.commit().await;
    }
    let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    let checksums: Vec<Vec<u8>> = MIGRATOR.iter().map(|m| m.checksum.to_vec()).collect();
    // Table names are constants of this module, never input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {HISTORY_TABLE} (LIKE {SHARED_HISTORY} INCLUDING ALL)"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH ours AS ( \
           DELETE FROM {SHARED_HISTORY} h \
            USING unnest($1::bigint[], $2::bytea[]) AS m(version, checksum) \
            WHERE h.version = m.version AND h.checksum = m.checksum \
           RETURNING h.*) \
         INSERT INTO {HISTORY_TABLE} SELECT * FROM ours"
    )))
    .bind(&versions)
    .bind(&checksums)
    .execute(&mut *tx)
    .await?;
    let left: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {SHARED_HISTORY}"
    )))
    .fetch_one(&mut *tx)
    .await?;
    if left == 0 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {SHARED_HISTORY}")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}
