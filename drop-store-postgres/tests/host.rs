//! The store inside a host application's database: a schema of its own,
//! a channel of its own, a listener that may connect elsewhere, the
//! application's pool and migration pipeline.

mod common;

use std::time::Duration;

use common::{assert_invariants, drop_of, user, wait_event};
use drop_core::{DropEvent, InventoryStore};
use drop_store_postgres::{PgStore, PgStoreBuilder};
use futures::StreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

const HOUR: Duration = Duration::from_secs(3600);

fn options(pool: &PgPool) -> PgConnectOptions {
    (*pool.connect_options()).clone()
}

/// A store that opens its own small pool on the test database.
async fn store_in(pool: &PgPool, builder: PgStoreBuilder) -> PgStore {
    builder
        .max_connections(4)
        .connect_with(options(pool))
        .await
        .expect("store starts")
}

async fn schema_store(pool: &PgPool, schema: &str) -> PgStore {
    store_in(pool, PgStore::builder().schema(schema).unwrap()).await
}

/// Whether the relation `name` (schema-qualified) exists.
async fn exists(pool: &PgPool, name: &str) -> bool {
    sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Two stores in two schemas of one database share nothing: not rows, not
/// events, although each schema's own instances hear each other.
#[sqlx::test(migrations = false)]
async fn stores_in_two_schemas_see_neither_rows_nor_events_of_the_other(pool: PgPool) {
    let a = schema_store(&pool, "shop_a").await;
    let a2 = schema_store(&pool, "shop_a").await;
    let b = schema_store(&pool, "shop_b").await;
    let b2 = schema_store(&pool, "shop_b").await;
    let mut on_a2 = a2.subscribe();
    let mut on_b = b.subscribe();

    let drop_a = drop_of(&a, 3, HOUR).await;
    let held = a.reserve(drop_a, &user("ann")).await.unwrap();
    // A's other instance hears the hold: its notification went out.
    let heard = wait_event(&mut on_a2, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::HoldCreated { reservation_id, .. }) => Some(*reservation_id),
        _ => None,
    })
    .await;
    assert_eq!(heard, Some(held.reservation.id));
    // A change in B's schema, made by B's other instance, is the first
    // thing B hears: nothing of A's came before it.
    let drop_b = drop_of(&b2, 1, HOUR).await;
    let first = tokio::time::timeout(Duration::from_secs(10), on_b.next())
        .await
        .expect("B hears its own schema's change");
    match first {
        Some(Ok(DropEvent::DropCreated { drop })) => assert_eq!(drop.drop.id, drop_b),
        other => panic!("B heard something else first: {other:?}"),
    }

    let listed: Vec<_> = b.list_drops().await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.drop.id).collect::<Vec<_>>(),
        vec![drop_b]
    );
    assert_eq!(
        b.get_drop(drop_a).await.unwrap_err().code(),
        "DROP_NOT_FOUND"
    );
    assert_eq!(
        b.reserve(drop_a, &user("bob")).await.unwrap_err().code(),
        "DROP_NOT_FOUND"
    );
    let listed: Vec<_> = a.list_drops().await.unwrap();
    assert_eq!(
        listed.iter().map(|d| d.drop.id).collect::<Vec<_>>(),
        vec![drop_a]
    );

    // Everything, the history included, is in the schemas; nothing in public.
    for name in [
        "shop_a.dropkit_drops",
        "shop_a.dropkit_reservations",
        "shop_a._dropkit_migrations",
        "shop_b.dropkit_purchases",
        "shop_b._dropkit_migrations",
    ] {
        assert!(exists(&pool, name).await, "{name} is missing");
    }
    for name in [
        "public.dropkit_drops",
        "public._dropkit_migrations",
        "public._sqlx_migrations",
    ] {
        assert!(!exists(&pool, name).await, "{name} exists");
    }
    let functions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE p.proname LIKE 'dropkit\\_%' AND n.nspname NOT IN ('shop_a', 'shop_b')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(functions, 0, "dropkit functions outside the schemas");
    let (in_a, in_b): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM shop_a.dropkit_reservations), \
                (SELECT count(*) FROM shop_b.dropkit_reservations)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((in_a, in_b), (1, 0));
    for store in [&a, &a2, &b, &b2] {
        assert_invariants(store).await;
        store.close().await;
    }
}

/// A database made without a schema (the default, as every earlier
/// version did) keeps working, and a store told `schema("public")` is the
/// same store: same tables, same channel.
#[sqlx::test(migrations = false)]
async fn a_database_made_without_a_schema_keeps_working(pool: PgPool) {
    let old = PgStore::builder().build(pool.clone()).await.unwrap();
    let drop_id = drop_of(&old, 2, HOUR).await;
    old.reserve(drop_id, &user("ann")).await.unwrap();
    assert!(exists(&pool, "public.dropkit_drops").await);

    let default = store_in(&pool, PgStore::builder()).await;
    let public = store_in(&pool, PgStore::builder().schema("public").unwrap()).await;
    for store in [&default, &public] {
        let drop = store.get_drop(drop_id).await.unwrap();
        assert_eq!(drop.stock.reserved, 1);
    }
    let mut on_public = public.subscribe();
    let held = default.reserve(drop_id, &user("bob")).await.unwrap();
    let heard = wait_event(&mut on_public, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::HoldCreated { reservation_id, .. }) => Some(*reservation_id),
        _ => None,
    })
    .await;
    assert_eq!(heard, Some(held.reservation.id), "one channel for both");
    let schemas: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'dropkit%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(schemas, 0, "no schema was created");
    assert_invariants(&public).await;
    for store in [&old, &default, &public] {
        store.close().await;
    }
}

/// On the application's pool, the store uses the pool's `search_path` as
/// it is: a pool that does not reach the schema is refused with a clear
/// error; one that lists it works, and the application's own tables stay
/// where its `search_path` puts them.
#[sqlx::test(migrations = false)]
async fn an_applications_pool_must_reach_the_schema(pool: PgPool) {
    let refused = PgStore::builder()
        .schema("kit")
        .unwrap()
        .build(pool.clone())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "INVALID_INPUT");
    assert_eq!(refused.field(), Some("schema"));
    assert!(refused.to_string().contains("search_path"), "{refused}");
    // The migration connection was not handed back with its search_path.
    for _ in 0..4 {
        let path: String = sqlx::query_scalar("SHOW search_path")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert!(!path.contains("kit"), "{path}");
    }

    let apps = PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options(&pool).options([("search_path", "public,kit")]))
        .await
        .unwrap();
    sqlx::query("CREATE TABLE orders (id int)")
        .execute(&apps)
        .await
        .unwrap();
    let store = PgStore::builder()
        .schema("kit")
        .unwrap()
        .build(apps.clone())
        .await
        .unwrap();
    let drop_id = drop_of(&store, 1, HOUR).await;
    store.reserve(drop_id, &user("ann")).await.unwrap();
    assert!(exists(&pool, "public.orders").await);
    assert!(exists(&pool, "kit.dropkit_drops").await);
    assert!(!exists(&pool, "public.dropkit_drops").await);
    assert_invariants(&store).await;
    store.close().await;

    // A schema earlier on the path holding dropkit's tables would take
    // the queries: refused too.
    PgStore::migrate(&pool).await.unwrap();
    let shadowed = PgStore::builder()
        .schema("kit")
        .unwrap()
        .migrate(false)
        .build(apps.clone())
        .await
        .unwrap_err();
    assert_eq!(shadowed.field(), Some("schema"));
    assert!(shadowed.to_string().contains("\"public\""), "{shadowed}");
}

/// A host application runs dropkit's migrations in its own pipeline, into
/// a schema, and starts the store without migrating.
#[sqlx::test(migrations = false)]
async fn an_application_migrates_a_schema_in_its_own_pipeline(pool: PgPool) {
    // With the migrator alone, on a connection set to the schema.
    let mut conn = sqlx::PgConnection::connect_with(&options(&pool))
        .await
        .unwrap();
    sqlx::raw_sql("CREATE SCHEMA kit; SET search_path TO kit")
        .execute(&mut conn)
        .await
        .unwrap();
    PgStore::migrator().run(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let store = store_in(
        &pool,
        PgStore::builder().schema("kit").unwrap().migrate(false),
    )
    .await;
    let drop_id = drop_of(&store, 1, HOUR).await;
    store.reserve(drop_id, &user("ann")).await.unwrap();
    store.close().await;

    // With the builder's step, which also creates the schema.
    let builder = PgStore::builder().schema("other_kit").unwrap();
    builder.run_migrations(&pool).await.unwrap();
    assert!(exists(&pool, "other_kit._dropkit_migrations").await);
    let store = store_in(&pool, builder.migrate(false)).await;
    drop_of(&store, 1, HOUR).await;
    store.close().await;
    assert!(!exists(&pool, "public.dropkit_drops").await);
}

/// A store refuses names that are not plain identifiers, before any SQL.
#[test]
fn names_that_are_not_identifiers_are_refused() {
    for bad in ["kit; DROP SCHEMA public CASCADE", "Kit", "pg_kit", ""] {
        let err = PgStore::builder().schema(bad).unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(err.field(), Some("schema"));
        let err = PgStore::builder().channel(bad).unwrap_err();
        assert_eq!(err.field(), Some("channel"));
    }
    let err = PgStore::builder().listener_url("not a url").unwrap_err();
    assert_eq!(err.field(), Some("listenerUrl"));
}

/// The listener connects where it is told (here: the same server under
/// another application name, standing for a direct connection beside a
/// transaction-pooling proxy), listens on the configured channel, and
/// events still cross between instances.
#[sqlx::test(migrations = false)]
async fn the_listener_connects_where_it_is_told(pool: PgPool) {
    let listener = |name: &str| options(&pool).application_name(name);
    let a = store_in(
        &pool,
        PgStore::builder()
            .schema("kit")
            .unwrap()
            .channel("kit_feed")
            .unwrap()
            .listener_options(listener("kit_listener_a")),
    )
    .await;
    let b = store_in(
        &pool,
        PgStore::builder()
            .schema("kit")
            .unwrap()
            .channel("kit_feed")
            .unwrap()
            .listener_options(listener("kit_listener_b")),
    )
    .await;
    let listening: Vec<(String, String)> = sqlx::query_as(
        "SELECT application_name, query FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' \
         ORDER BY application_name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        listening,
        vec![
            (
                "kit_listener_a".to_owned(),
                "LISTEN \"kit_feed\"".to_owned()
            ),
            (
                "kit_listener_b".to_owned(),
                "LISTEN \"kit_feed\"".to_owned()
            ),
        ]
    );
    let mut on_b = b.subscribe();
    let drop_id = drop_of(&a, 1, HOUR).await;
    let heard = wait_event(&mut on_b, Duration::from_secs(10), |e| match e {
        Ok(DropEvent::DropCreated { drop }) => Some(drop.drop.id),
        _ => None,
    })
    .await;
    assert_eq!(heard, Some(drop_id));
    a.close().await;
    b.close().await;
}
