//! The drop-core conformance suite against real PostgreSQL, group commit
//! on (the default). Each case gets a fresh database.

mod common;

use common::PgHarness;
use sqlx::PgPool;

drop_core::conformance_suite! {
    #[sqlx::test(migrations = false)]
    (pool: PgPool) => PgHarness::new(pool).await
}
