//! Upgrades: a database made by an earlier version of the store, with
//! data in it, migrates to the current schema and keeps working.
//!
//! Migrations are append-only, so "an earlier version" is the embedded
//! list cut at that version's last migration.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::assert_invariants;
use drop_core::{DropError, InventoryStore, ReservationId, ReservationStatus, Username};
use drop_store_postgres::PgStore;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

/// The last migration of the first released schema.
const FIRST_STAGE: i64 = 20261128000002;

/// The store's migrations up to and including `version`, recording their
/// history where the first stage did: sqlx's default `_sqlx_migrations`.
fn migrator_up_to(version: i64) -> Migrator {
    let all = PgStore::migrator();
    Migrator {
        migrations: Cow::Owned(
            all.migrations
                .iter()
                .filter(|m| m.version <= version)
                .cloned()
                .collect(),
        ),
        ..Migrator::DEFAULT
    }
}

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

/// Data as the first-stage functions wrote it: a drop with a purchased,
/// a released, an overdue and an active hold.
struct OldData {
    drop_id: Uuid,
    active: (Uuid, &'static str),
    purchased: Uuid,
    overdue: Uuid,
}

async fn old_data(pool: &PgPool) -> OldData {
    let drop_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, hold_micros) \
         VALUES ($1, 'Old', 1999, 10, 3600000000)",
    )
    .bind(drop_id)
    .execute(pool)
    .await
    .unwrap();
    let names = ["alice", "bob", "carol", "dave"];
    let ids: Vec<Uuid> = names.iter().map(|_| Uuid::new_v4()).collect();
    let results: Vec<String> =
        sqlx::query_scalar("SELECT unnest(o_results) FROM dropkit_reserve($1, $2, $3)")
            .bind(drop_id)
            .bind(&names[..])
            .bind(&ids)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(results, ["created"; 4]);
    let bought: Vec<String> =
        sqlx::query_scalar("SELECT unnest(o_results) FROM dropkit_purchase($1, $2, $3, $4)")
            .bind(drop_id)
            .bind(&ids[1..2])
            .bind(&names[1..2])
            .bind(&[Uuid::new_v4()][..])
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(bought, ["purchased"]);
    let released: String = sqlx::query_scalar("SELECT o_outcome FROM dropkit_release($1, $2)")
        .bind(ids[2])
        .bind(names[2])
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(released, "released");
    // Dave's hold ran out an hour ago and nobody swept it.
    sqlx::query(
        "UPDATE dropkit_reservations SET created_at = created_at - interval '2 hours', \
                expires_at = expires_at - interval '2 hours' WHERE id = $1",
    )
    .bind(ids[3])
    .execute(pool)
    .await
    .unwrap();
    OldData {
        drop_id,
        active: (ids[0], names[0]),
        purchased: ids[1],
        overdue: ids[3],
    }
}

#[sqlx::test(migrations = false)]
async fn a_first_stage_database_with_data_upgrades(pool: PgPool) {
    migrator_up_to(FIRST_STAGE).run(&pool).await.unwrap();
    let old = old_data(&pool).await;

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates an old database and starts");

    // Every migration is recorded in dropkit's own history table: the
    // first stage's rows were moved out of `_sqlx_migrations`, which held
    // nothing else and is gone.
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _dropkit_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let embedded: Vec<i64> = PgStore::migrator().iter().map(|m| m.version).collect();
    assert_eq!(applied, embedded);
    let shared: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(shared, None);

    // The write functions now plan each statement with its arguments.
    let settings: Vec<(String, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT proname::text, proconfig FROM pg_proc \
          WHERE proname IN ('dropkit_reserve', 'dropkit_purchase', 'dropkit_release', \
                            'dropkit_expire_due') ORDER BY proname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(settings.len(), 4, "{settings:?}");
    for (name, config) in &settings {
        let config = config.clone().unwrap_or_default();
        assert!(
            config
                .iter()
                .any(|c| c == "plan_cache_mode=force_custom_plan"),
            "{name} has {config:?}"
        );
    }

    // The old rows read as before, and the new code acts on them.
    assert_invariants(&store).await;
    let drop_id = drop_core::DropId::from_uuid(old.drop_id);
    let state = store.get_drop(drop_id).await.unwrap();
    assert_eq!((state.stock.total, state.stock.sold), (10, 1));
    let overdue = store
        .get_reservation(ReservationId::from_uuid(old.overdue))
        .await
        .unwrap();
    assert_eq!(overdue.status, ReservationStatus::Expired);
    let repeat = store.reserve(drop_id, &user(old.active.1)).await.unwrap();
    assert!(!repeat.created);
    assert_eq!(
        repeat.reservation.id,
        ReservationId::from_uuid(old.active.0)
    );
    let bought = store
        .purchase(ReservationId::from_uuid(old.active.0), &user(old.active.1))
        .await
        .unwrap();
    assert_eq!(bought.amount_paid.minor(), 1999);
    let again = store
        .purchase(ReservationId::from_uuid(old.purchased), &user("bob"))
        .await;
    assert!(
        matches!(again, Err(DropError::AlreadyPurchased { .. })),
        "{again:?}"
    );
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    let fresh = store.reserve(drop_id, &user("erin")).await.unwrap();
    assert!(fresh.created);
    let window = fresh.reservation.expires_at - fresh.reservation.created_at;
    assert_eq!(window.to_std().unwrap(), Duration::from_secs(3600));
    assert_invariants(&store).await;
}

/// A host application's own migrations, as `sqlx::migrate!` would record
/// them in `_sqlx_migrations`.
fn app_migrator() -> Migrator {
    Migrator::with_migrations(vec![sqlx::migrate::Migration::new(
        1,
        Cow::Borrowed("app things"),
        sqlx::migrate::MigrationType::Simple,
        sqlx::SqlStr::from_static("CREATE TABLE app_things (id bigint PRIMARY KEY)"),
        false,
    )])
}

#[sqlx::test(migrations = false)]
async fn the_host_apps_migrations_and_dropkits_share_a_database_in_either_order(pool: PgPool) {
    // The app first, then dropkit, then the app again (its next start).
    app_migrator().run(&pool).await.unwrap();
    PgStore::migrate(&pool).await.unwrap();
    app_migrator()
        .run(&pool)
        .await
        .expect("the app still starts");
    PgStore::migrate(&pool).await.expect("dropkit still starts");
    let app_rows: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(app_rows, [1]);
}

#[sqlx::test(migrations = false)]
async fn an_old_database_shared_with_a_host_app_keeps_the_apps_history(pool: PgPool) {
    // The first stage wrote dropkit's history into the app's table, so the
    // app could only start by ignoring versions it did not know.
    migrator_up_to(FIRST_STAGE).run(&pool).await.unwrap();
    let mut tolerant = app_migrator();
    tolerant.set_ignore_missing(true);
    tolerant.run(&pool).await.unwrap();
    assert!(app_migrator().run(&pool).await.is_err(), "the old wall");
    PgStore::migrate(&pool).await.unwrap();
    app_migrator()
        .run(&pool)
        .await
        .expect("the app still starts");
    let app_rows: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(app_rows, [1], "only the app's own history is left there");
}

#[sqlx::test(migrations = false)]
async fn a_store_told_not_to_migrate_leaves_the_schema_to_the_app(pool: PgPool) {
    let refused = PgStore::builder()
        .listen(false)
        .migrate(false)
        .build(pool.clone())
        .await
        .unwrap()
        .get_drop(drop_core::DropId::new())
        .await;
    // No tables: the store did not create them, so its first query fails.
    assert!(refused.is_err());
    let tables: Option<String> = sqlx::query_scalar("SELECT to_regclass('dropkit_drops')::text")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(tables, None);

    // The app's pipeline runs dropkit's migrator; then the store works.
    PgStore::migrator().run(&pool).await.unwrap();
    let store = PgStore::builder()
        .listen(false)
        .migrate(false)
        .build(pool.clone())
        .await
        .unwrap();
    assert!(matches!(
        store.get_drop(drop_core::DropId::new()).await,
        Err(DropError::DropNotFound { .. })
    ));
}
