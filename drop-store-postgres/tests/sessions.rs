//! Revoked sessions on PostgreSQL: shared by every instance on the
//! database, kept per schema, and pruned by the store once expired.

mod common;

use chrono::{DateTime, Duration, Utc};
use common::store_on;
use drop_core::InventoryStore;
use drop_store_postgres::PgStore;
use sqlx::PgPool;
use uuid::Uuid;

/// The database's time, to the microsecond it keeps.
async fn db_now(pool: &PgPool) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn rows(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A revocation made through one instance is listed by another on the
/// same database, and a second revocation through the other is seen by
/// the first.
#[sqlx::test(migrations = false)]
async fn a_revocation_through_one_instance_is_listed_by_another(pool: PgPool) {
    let one = store_on(&pool, 2, PgStore::builder()).await;
    let other = store_on(&pool, 2, PgStore::builder()).await;
    let now = db_now(&pool).await;
    let id = Uuid::new_v4();
    let expires_at = now + Duration::hours(24);
    let before = other.revoked_sessions(None).await.unwrap();
    assert!(before.sessions.is_empty());

    one.revoke_session(id, expires_at).await.unwrap();
    let heard = other.revoked_sessions(Some(before.now)).await.unwrap();
    assert_eq!(heard.sessions.len(), 1, "{heard:?}");
    assert_eq!(
        (heard.sessions[0].id, heard.sessions[0].expires_at),
        (id, expires_at)
    );

    let later = expires_at + Duration::hours(1);
    other.revoke_session(id, later).await.unwrap();
    let back = one.revoked_sessions(Some(heard.now)).await.unwrap();
    assert_eq!(back.sessions.len(), 1, "{back:?}");
    assert_eq!(
        (back.sessions[0].id, back.sessions[0].expires_at),
        (id, later)
    );
    assert_eq!(rows(&pool, "dropkit_revoked_sessions").await, 1);
    one.close().await;
    other.close().await;
}

/// Recording a revocation deletes the records whose sessions have expired
/// (and only those), so the table holds one row per session still worth
/// refusing.
#[sqlx::test(migrations = false)]
async fn expired_revocations_are_deleted_as_new_ones_are_recorded(pool: PgPool) {
    let store = store_on(&pool, 2, PgStore::builder().listen(false)).await;
    let now = db_now(&pool).await;
    let (gone, past, kept, new) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    // Revoked a day ago, expired since.
    sqlx::query(
        "INSERT INTO dropkit_revoked_sessions (id, expires_at, revoked_at) \
         VALUES ($1, now() - interval '1 hour', now() - interval '1 day')",
    )
    .bind(gone)
    .execute(&pool)
    .await
    .unwrap();
    // A session that had expired before it was revoked.
    store
        .revoke_session(past, now - Duration::minutes(1))
        .await
        .unwrap();
    store
        .revoke_session(kept, now + Duration::hours(1))
        .await
        .unwrap();
    let listed = store.revoked_sessions(None).await.unwrap();
    let ids: Vec<Uuid> = listed.sessions.iter().map(|s| s.id).collect();
    assert_eq!(ids, [kept]);

    store
        .revoke_session(new, now + Duration::hours(2))
        .await
        .unwrap();
    let left: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM dropkit_revoked_sessions ORDER BY revoked_at")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, [kept, new]);
    // Revoking an expired record's session again records it afresh.
    store
        .revoke_session(past, now + Duration::hours(3))
        .await
        .unwrap();
    let listed = store.revoked_sessions(None).await.unwrap();
    let ids: Vec<Uuid> = listed.sessions.iter().map(|s| s.id).collect();
    assert_eq!(ids, [kept, new, past]);
    store.close().await;
}

/// Each schema keeps its own revocations: stores in another schema of the
/// same database never see them, and nothing lands in `public`.
#[sqlx::test(migrations = false)]
async fn revocations_stay_in_their_schema(pool: PgPool) {
    let schema_store = |schema: &'static str| {
        let options = (*pool.connect_options()).clone();
        async move {
            PgStore::builder()
                .schema(schema)
                .unwrap()
                .max_connections(2)
                .connect_with(options)
                .await
                .expect("store starts")
        }
    };
    let (a, a2, b) = (
        schema_store("shop_a").await,
        schema_store("shop_a").await,
        schema_store("shop_b").await,
    );
    let id = Uuid::new_v4();
    let expires_at = db_now(&pool).await + Duration::hours(1);
    a.revoke_session(id, expires_at).await.unwrap();
    let same = a2.revoked_sessions(None).await.unwrap();
    assert_eq!(same.sessions.iter().map(|s| s.id).collect::<Vec<_>>(), [id]);
    assert!(b.revoked_sessions(None).await.unwrap().sessions.is_empty());
    assert_eq!(rows(&pool, "shop_a.dropkit_revoked_sessions").await, 1);
    assert_eq!(rows(&pool, "shop_b.dropkit_revoked_sessions").await, 0);
    let in_public: bool =
        sqlx::query_scalar("SELECT to_regclass('public.dropkit_revoked_sessions') IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!in_public);
    for store in [&a, &a2, &b] {
        store.close().await;
    }
}

/// A store shut down refuses new revocations, like every other write.
#[sqlx::test(migrations = false)]
async fn a_closed_store_refuses_revocations(pool: PgPool) {
    let store = store_on(&pool, 2, PgStore::builder().listen(false)).await;
    store.close().await;
    let refused = store
        .revoke_session(Uuid::new_v4(), Utc::now() + Duration::hours(1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "UNAVAILABLE");
}
