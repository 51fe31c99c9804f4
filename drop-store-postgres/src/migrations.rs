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
//!
//! With a schema ([`PgStoreBuilder::schema`](crate::PgStoreBuilder::schema))
//! the migrations run on one connection whose `search_path` is that schema
//! alone: the migration files name no schema, so every object, the history
//! table included, lands in it. That connection is closed afterwards rather
//! than handed back to the pool with a changed `search_path`.

use std::sync::LazyLock;

use drop_core::DropError;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{Connection, PgConnection, PgPool};

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

/// Creates `schema` if it is missing, moves dropkit's rows out of
/// `_sqlx_migrations` (see the module docs), then applies what is missing.
/// `schema` is a validated identifier (see the builder), never raw input.
pub(crate) async fn run(pool: &PgPool, schema: Option<&str>) -> Result<(), DropError> {
    let mut conn = pool.acquire().await.map_err(map_sqlx)?;
    if let Some(schema) = schema {
        conn.close_on_drop();
        enter_schema(&mut conn, schema).await.map_err(map_sqlx)?;
    }
    adopt_shared_history(&mut conn).await.map_err(map_sqlx)?;
    // `run_direct`: `run(&mut conn)` goes through `Acquire`, whose
    // lifetimes make every future awaiting this one not `Send` (see the
    // `send_probe` checks in lib.rs).
    MIGRATOR
        .run_direct(None, &mut *conn, false)
        .await
        .map_err(|e| match e {
            MigrateError::Execute(e) => map_sqlx(e),
            other => internal(format!("migration failed: {other}")),
        })
}

/// Creates `schema` unless it exists (so a role without `CREATE` on the
/// database can use a schema made for it), then makes it the connection's
/// whole `search_path`.
async fn enter_schema(conn: &mut PgConnection, schema: &str) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    // Instances starting at once create it once.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ADOPT_LOCK)
        .execute(&mut *tx)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *tx)
            .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET search_path TO \"{schema}\""
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks that the pool's connections find dropkit's objects in `schema`:
/// it is on their `search_path`, and no schema before it holds objects
/// named like dropkit's (which would be used instead).
pub(crate) async fn check_schema(pool: &PgPool, schema: &str) -> Result<(), DropError> {
    let (first, path): (Option<String>, String) = sqlx::query_as(
        "SELECT (SELECT s.name FROM unnest(current_schemas(false)) WITH ORDINALITY AS s(name, pos) \
                  WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                                 WHERE n.nspname = s.name AND c.relname LIKE 'dropkit\\_%') \
                     OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
                                 WHERE n.nspname = s.name AND p.proname LIKE 'dropkit\\_%') \
                  ORDER BY s.pos LIMIT 1), \
                current_setting('search_path')",
    )
    .fetch_one(pool)
    .await
    .map_err(map_sqlx)?;
    match first {
        Some(found) if found == schema => Ok(()),
        Some(other) => Err(DropError::invalid(
            "schema",
            format!(
                "the pool's search_path ({path}) finds dropkit's objects in schema {other:?} \
                 before {schema:?}; put {schema:?} first among them"
            ),
        )),
        None => Err(DropError::invalid(
            "schema",
            format!(
                "the pool's search_path ({path}) does not reach dropkit's objects in schema \
                 {schema:?}: add the schema to it (or let the store open its pool), and migrate"
            ),
        )),
    }
}

/// One transaction under an advisory lock: creates [`HISTORY_TABLE`] like
/// `_sqlx_migrations` and moves the rows that are dropkit's into it. Does
/// nothing once [`HISTORY_TABLE`] exists or when there is nothing to move.
/// An emptied `_sqlx_migrations` is dropped: it held only dropkit's rows.
async fn adopt_shared_history(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
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
