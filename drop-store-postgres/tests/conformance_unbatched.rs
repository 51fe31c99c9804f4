//! The drop-core conformance suite against real PostgreSQL with group
//! commit off: one transaction per call.

mod common;

use common::PgHarness;
use sqlx::PgPool;

drop_core::conformance_suite! {
    #[sqlx::test(migrations = false)]
    (pool: PgPool) => PgHarness::unbatched(pool).await
}
