//! Upgrades: a database made by an earlier version of the store, with
//! data in it, migrates to the current schema and keeps working.
//!
//! Migrations are append-only, so "an earlier version" is the embedded
//! list cut at that version's last migration.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::assert_invariants;
use drop_core::{
    Buyer, DropError, InventoryStore, ReservationId, ReservationStatus, TopPurchaser, Username,
};
use drop_store_postgres::PgStore;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use uuid::Uuid;

/// The last migration of the first released schema.
const FIRST_STAGE: i64 = 20261128000002;

/// The last migration before the write functions answered in typed rows:
/// their answers were outcome strings in parallel arrays.
const STRING_ANSWERS: i64 = 20261130000100;

/// The last migration before holds and purchases were keyed by buyer id
/// (they were keyed by username, and the write functions answered in typed
/// rows).
const USERNAME_KEYS: i64 = 20261201000001;

/// The last migration before sessions could be revoked (holds and
/// purchases keyed by buyer id, with a display name beside it).
const BUYER_IDS: i64 = 20261202000001;

/// The last migration before drops had variants, quantities, per-buyer
/// limits and idempotency records.
const SESSIONS: i64 = 20261207000001;

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

/// The store's migrations up to and including `version`, recording their
/// history in dropkit's own table, as the versions since the first stage do.
fn own_history_up_to(version: i64) -> Migrator {
    let mut m = migrator_up_to(version);
    m.dangerous_set_table_name(drop_store_postgres::HISTORY_TABLE);
    m
}

fn user(name: &str) -> Buyer {
    Buyer::claimed(Username::parse(name).unwrap())
}

/// Data as the functions of an earlier version wrote it (their answers were
/// outcome strings in parallel arrays): a drop with a purchased, a released,
/// an overdue and an active hold.
struct OldData {
    drop_id: Uuid,
    active: (Uuid, &'static str),
    purchased: Uuid,
    overdue: (Uuid, &'static str),
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
        overdue: (ids[3], names[3]),
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

    the_old_rows_work(&store, &old).await;
}

#[sqlx::test(migrations = false)]
async fn a_database_whose_functions_answered_strings_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(STRING_ANSWERS).run(&pool).await.unwrap();
    let old = old_data(&pool).await;
    // Also a hold the old sweeper ended, and one of its own sweeps of a
    // second drop whose holds all ran out.
    let swept = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, reserved, hold_micros) \
         VALUES ($1, 'Swept', 500, 3, 1, 3600000000)",
    )
    .bind(swept)
    .execute(&pool)
    .await
    .unwrap();
    let gone = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at) \
         VALUES ($1, $2, 'frank', 'active', now() - interval '2 hours', now() - interval '1 hour')",
    )
    .bind(gone)
    .bind(swept)
    .execute(&pool)
    .await
    .unwrap();
    let took: Vec<Uuid> = sqlx::query_scalar("SELECT o_drop FROM dropkit_expire_due(1)")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(took.len(), 1, "the old sweeper ended one hold");

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _dropkit_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let embedded: Vec<i64> = PgStore::migrator().iter().map(|m| m.version).collect();
    assert_eq!(applied, embedded);

    the_old_rows_work(&store, &old).await;
    // Whichever hold the old sweeper ended reads as expired, and its drop
    // sells again.
    let ended: Vec<String> = sqlx::query_scalar(
        "SELECT status FROM dropkit_reservations WHERE id = $1 OR id = $2 ORDER BY status",
    )
    .bind(gone)
    .bind(old.overdue.0)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(ended.iter().all(|s| s == "expired"), "{ended:?}");
    let swept = drop_core::DropId::from_uuid(swept);
    let frank = store.reserve(swept, &user("frank")).await.unwrap();
    assert!(frank.created);
    assert_eq!(store.get_drop(swept).await.unwrap().stock.reserved, 1);
    assert_invariants(&store).await;
}

/// Data as the functions keyed by username wrote it (typed answers): a
/// drop with a purchased, a released, an overdue and an active hold.
async fn username_keyed_data(pool: &PgPool) -> OldData {
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
    let results: Vec<String> = sqlx::query_scalar(
        "SELECT (a).outcome::text FROM dropkit_reserve($1, $2, $3), unnest(o_answers) AS a",
    )
    .bind(drop_id)
    .bind(&names[..])
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(results, ["created"; 4]);
    let bought: Vec<String> = sqlx::query_scalar(
        "SELECT (a).outcome::text FROM dropkit_purchase($1, $2, $3, $4), unnest(o_answers) AS a",
    )
    .bind(drop_id)
    .bind(&ids[1..2])
    .bind(&names[1..2])
    .bind(&[Uuid::new_v4()][..])
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(bought, ["purchased"]);
    let released: String =
        sqlx::query_scalar("SELECT o_outcome::text FROM dropkit_release($1, $2)")
            .bind(ids[2])
            .bind(names[2])
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(released, "released");
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
        overdue: (ids[3], names[3]),
    }
}

#[sqlx::test(migrations = false)]
async fn a_database_keyed_by_username_upgrades_to_buyer_ids_with_its_data(pool: PgPool) {
    own_history_up_to(USERNAME_KEYS).run(&pool).await.unwrap();
    let old = username_keyed_data(&pool).await;

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");

    // Each username became both the buyer id and the display name.
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT buyer_id, display_name FROM dropkit_reservations \
         UNION ALL SELECT buyer_id, display_name FROM dropkit_purchases ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, String)> = ["alice", "bob", "bob", "carol", "dave"]
        .iter()
        .map(|n| (n.to_string(), n.to_string()))
        .collect();
    assert_eq!(rows, expected);
    let drop_id = drop_core::DropId::from_uuid(old.drop_id);
    let active = store
        .get_reservation(ReservationId::from_uuid(old.active.0))
        .await
        .unwrap();
    assert_eq!(active.buyer(), user(old.active.1));
    let top = store.top_purchasers(drop_id, 3).await.unwrap();
    let names: Vec<&str> = top
        .iter()
        .map(|t: &TopPurchaser| t.display_name.as_str())
        .collect();
    assert_eq!(names, ["bob"]);
    // The one-active index keys buyer ids: an old hold blocks a second one
    // for its buyer, whatever name the buyer now comes with.
    let renamed = Buyer::new(
        drop_core::BuyerId::parse(old.active.1).unwrap(),
        Username::parse("alice_again").unwrap(),
    );
    let kept = store.reserve(drop_id, &renamed).await.unwrap();
    assert!(!kept.created);
    assert_eq!(kept.reservation, active);
    // A buyer id no username could be holds next to them.
    let opaque = Buyer::new(
        drop_core::BuyerId::parse("auth0|alice").unwrap(),
        Username::parse("alice").unwrap(),
    );
    let theirs = store.reserve(drop_id, &opaque).await.unwrap();
    assert!(theirs.created);
    store
        .release(theirs.reservation.id, &opaque.id)
        .await
        .unwrap();

    the_old_rows_work(&store, &old).await;
}

/// Data as the functions keyed by buyer id wrote it: a drop with a
/// purchased, a released, an overdue and an active hold, each buyer shown
/// under a name that is not their id.
async fn buyer_keyed_data(pool: &PgPool) -> OldData {
    let drop_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, hold_micros) \
         VALUES ($1, 'Old', 1999, 10, 3600000000)",
    )
    .bind(drop_id)
    .execute(pool)
    .await
    .unwrap();
    let buyers = ["alice", "bob", "carol", "dave"];
    let names: Vec<String> = buyers.iter().map(|b| format!("{b}_shown")).collect();
    let ids: Vec<Uuid> = buyers.iter().map(|_| Uuid::new_v4()).collect();
    let results: Vec<String> = sqlx::query_scalar(
        "SELECT (a).outcome::text FROM dropkit_reserve($1, $2, $3, $4), unnest(o_answers) AS a",
    )
    .bind(drop_id)
    .bind(&buyers[..])
    .bind(&names)
    .bind(&ids)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(results, ["created"; 4]);
    let bought: Vec<String> = sqlx::query_scalar(
        "SELECT (a).outcome::text FROM dropkit_purchase($1, $2, $3, $4), unnest(o_answers) AS a",
    )
    .bind(drop_id)
    .bind(&ids[1..2])
    .bind(&buyers[1..2])
    .bind(&[Uuid::new_v4()][..])
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(bought, ["purchased"]);
    let released: String =
        sqlx::query_scalar("SELECT o_outcome::text FROM dropkit_release($1, $2)")
            .bind(ids[2])
            .bind(buyers[2])
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(released, "released");
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
        active: (ids[0], buyers[0]),
        purchased: ids[1],
        overdue: (ids[3], buyers[3]),
    }
}

#[sqlx::test(migrations = false)]
async fn a_database_keyed_by_buyer_id_upgrades_to_session_revocations_with_its_data(pool: PgPool) {
    own_history_up_to(BUYER_IDS).run(&pool).await.unwrap();
    let old = buyer_keyed_data(&pool).await;
    let table: Option<String> =
        sqlx::query_scalar("SELECT to_regclass('dropkit_revoked_sessions')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(table, None, "the previous version had no revocations");

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _dropkit_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let embedded: Vec<i64> = PgStore::migrator().iter().map(|m| m.version).collect();
    assert_eq!(applied, embedded);

    // The holds keep the names they were taken under.
    let active = store
        .get_reservation(ReservationId::from_uuid(old.active.0))
        .await
        .unwrap();
    assert_eq!(active.buyer_id.as_str(), old.active.1);
    assert_eq!(active.display_name.as_str(), "alice_shown");
    the_old_rows_work(&store, &old).await;
}

/// Revocations work on an upgraded database: recorded, listed, recorded
/// again, and gone from the list once expired.
async fn revocations_work(store: &PgStore) {
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let (id, ended) = (Uuid::new_v4(), Uuid::new_v4());
    let expires_at = now + chrono::Duration::hours(24);
    store.revoke_session(id, expires_at).await.unwrap();
    store.revoke_session(id, expires_at).await.unwrap();
    store
        .revoke_session(ended, now - chrono::Duration::seconds(1))
        .await
        .unwrap();
    let listed = store.revoked_sessions(None).await.unwrap();
    let got: Vec<_> = listed
        .sessions
        .iter()
        .map(|s| (s.id, s.expires_at))
        .collect();
    assert_eq!(got, [(id, expires_at)]);
    let since = store.revoked_sessions(Some(listed.now)).await.unwrap();
    assert!(since.sessions.is_empty(), "{since:?}");
}

/// Every old drop has one variant, `Standard`, with the drop's counters;
/// every hold and purchase names it, with quantity 1; every purchase is
/// completed. Read straight from the tables, before the store acts.
async fn one_standard_variant_each(pool: &PgPool) {
    let drops: Vec<(Uuid, i32, i32, i32, i32, bool)> = sqlx::query_as(
        "SELECT id, total_stock, reserved, sold, max_per_buyer, paused FROM dropkit_drops ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(!drops.is_empty());
    for (id, total, reserved, sold, max, paused) in drops {
        let variants: Vec<(String, i32, i32, i32, i32)> = sqlx::query_as(
            "SELECT name, position, total_stock, reserved, sold FROM dropkit_variants \
              WHERE drop_id = $1",
        )
        .bind(id)
        .fetch_all(pool)
        .await
        .unwrap();
        assert_eq!(
            variants,
            [(
                drop_core::DEFAULT_VARIANT_NAME.to_owned(),
                0,
                total,
                reserved,
                sold
            )],
            "drop {id}"
        );
        assert_eq!((max, paused), (1, false), "drop {id}");
    }
    let odd_holds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_reservations r \
          WHERE r.quantity <> 1 OR NOT EXISTS (SELECT 1 FROM dropkit_variants v \
                WHERE v.id = r.variant_id AND v.drop_id = r.drop_id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(odd_holds, 0);
    let odd_purchases: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_purchases p \
          WHERE p.quantity <> 1 OR p.status <> 'completed' OR p.cancelled_at IS NOT NULL \
             OR NOT EXISTS (SELECT 1 FROM dropkit_variants v \
                WHERE v.id = p.variant_id AND v.drop_id = p.drop_id)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(odd_purchases, 0);
    let purchases: i64 = sqlx::query_scalar("SELECT count(*) FROM dropkit_purchases")
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(purchases > 0, "the data had purchases");
}

#[sqlx::test(migrations = false)]
async fn a_database_before_variants_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(SESSIONS).run(&pool).await.unwrap();
    // A drop swept by the old sweeper: an expired hold.
    let swept = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, reserved, hold_micros) \
         VALUES ($1, 'Swept', 500, 3, 1, 3600000000)",
    )
    .bind(swept)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO dropkit_reservations \
                (id, drop_id, buyer_id, display_name, status, created_at, expires_at) \
         VALUES ($1, $2, 'frank', 'frank', 'active', now() - interval '2 hours', \
                 now() - interval '1 hour')",
    )
    .bind(Uuid::new_v4())
    .bind(swept)
    .execute(&pool)
    .await
    .unwrap();
    let took: Vec<Uuid> = sqlx::query_scalar("SELECT o_drop FROM dropkit_expire_due(10)")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(took, [swept], "the old sweeper ended frank's hold");
    let old = buyer_keyed_data(&pool).await;

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let applied: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM _dropkit_migrations WHERE success ORDER BY version",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let embedded: Vec<i64> = PgStore::migrator().iter().map(|m| m.version).collect();
    assert_eq!(applied, embedded);
    one_standard_variant_each(&pool).await;

    let drop_id = drop_core::DropId::from_uuid(old.drop_id);
    let state = store.get_drop(drop_id).await.unwrap();
    assert_eq!(state.drop.variants.len(), 1);
    assert_eq!(state.drop.variants[0].name, drop_core::DEFAULT_VARIANT_NAME);
    assert_eq!(state.drop.max_per_buyer, 1);
    assert!(!state.drop.paused);
    let variant = state.variants[0];
    // Dave's overdue hold reads as free, per variant as for the drop.
    assert_eq!((variant.total, variant.reserved, variant.sold), (10, 1, 1));
    assert_eq!(
        (state.stock.total, state.stock.reserved, state.stock.sold),
        (10, 1, 1)
    );
    let active = store
        .get_reservation(ReservationId::from_uuid(old.active.0))
        .await
        .unwrap();
    assert_eq!((active.variant_id, active.quantity), (variant.id, 1));
    // The old purchase reads back as a completed purchase of one unit.
    let bought = store
        .buyer_purchases(&user("bob").id, None, 10)
        .await
        .unwrap();
    assert_eq!(bought.len(), 1);
    assert_eq!(bought[0].variant_id, variant.id);
    assert!(bought[0].is_completed());
    // The limit of one counts the old purchase: bob may take no more.
    let more = store.reserve(drop_id, &user("bob")).await;
    assert!(
        matches!(more, Err(DropError::BuyerLimitReached { taken: 1, .. })),
        "{more:?}"
    );
    // The swept drop's counters moved with its variant's.
    let swept = store
        .get_drop(drop_core::DropId::from_uuid(swept))
        .await
        .unwrap();
    assert_eq!(swept.variants[0].reserved, 0);
    assert_eq!(swept.stock.available(), 3);
    the_old_rows_work(&store, &old).await;
}

/// What every upgrade test checks once the store has migrated: the old rows
/// read as before, and the new code acts on them.
async fn the_old_rows_work(store: &PgStore, old: &OldData) {
    // Only the sweeper still plans each statement with its arguments; the
    // other write functions' statements have one sensible plan whatever the
    // tables held (see the migration that answers in typed rows).
    let settings: Vec<(String, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT proname::text, proconfig FROM pg_proc \
          WHERE proname IN ('dropkit_reserve', 'dropkit_purchase', 'dropkit_release', \
                            'dropkit_expire_due', 'dropkit_reserve_units', \
                            'dropkit_purchase_units') ORDER BY proname",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let settings: Vec<(&str, Vec<String>)> = settings
        .iter()
        .map(|(name, config)| (name.as_str(), config.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        settings,
        [
            (
                "dropkit_expire_due",
                vec!["plan_cache_mode=force_custom_plan".to_owned()]
            ),
            ("dropkit_purchase_units", vec![]),
            ("dropkit_release", vec![]),
            ("dropkit_reserve_units", vec![]),
        ]
    );

    assert_invariants(store).await;
    let drop_id = drop_core::DropId::from_uuid(old.drop_id);
    let state = store.get_drop(drop_id).await.unwrap();
    assert_eq!((state.stock.total, state.stock.sold), (10, 1));
    let overdue = store
        .get_reservation(ReservationId::from_uuid(old.overdue.0))
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
        .purchase(
            ReservationId::from_uuid(old.active.0),
            &user(old.active.1).id,
        )
        .await
        .unwrap();
    assert_eq!(bought.purchase.amount_paid.minor(), 1999);
    // The owner repeating an old purchase gets it back.
    let again = store
        .purchase(ReservationId::from_uuid(old.purchased), &user("bob").id)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        again.purchase.reservation_id,
        ReservationId::from_uuid(old.purchased)
    );
    assert_eq!(again.purchase.quantity, 1);
    assert_eq!(again.purchase.amount_paid.minor(), 1999);
    let stranger = store
        .purchase(ReservationId::from_uuid(old.purchased), &user("mallory").id)
        .await;
    assert!(
        matches!(stranger, Err(DropError::NotOwner { .. })),
        "{stranger:?}"
    );
    assert_eq!(store.expire_due(100).await.unwrap(), 1);
    let fresh = store.reserve(drop_id, &user("erin")).await.unwrap();
    assert!(fresh.created);
    let window = fresh.reservation.expires_at - fresh.reservation.created_at;
    assert_eq!(window.to_std().unwrap(), Duration::from_secs(3600));
    // The owner of the hold that ran out holds again, and gives it back.
    let dave = store.reserve(drop_id, &user(old.overdue.1)).await.unwrap();
    assert!(dave.created);
    let released = store
        .release(dave.reservation.id, &user(old.overdue.1).id)
        .await
        .unwrap();
    assert_eq!(released.status, ReservationStatus::Released);
    let state = store.get_drop(drop_id).await.unwrap();
    assert_eq!((state.stock.reserved, state.stock.sold), (1, 2));
    assert_invariants(store).await;
    revocations_work(store).await;
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

/// A drop of one variant (10 units, `max` per buyer) made as the versions
/// since variants store it, with Ann holding `quantities[0]` units and Bob
/// having bought `quantities[1]`, through that version's
/// `dropkit_reserve_<kind>` and `dropkit_purchase_<kind>` (`units`, or
/// `logged` since the event log): the drop's id, Ann's hold and Bob's.
async fn ann_holds_bob_bought(
    pool: &PgPool,
    kind: &str,
    max: i32,
    quantities: [i32; 2],
) -> (Uuid, Uuid, Uuid) {
    let (drop_id, variant) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO dropkit_drops (id, name, price_minor, total_stock, hold_micros, max_per_buyer, \
                                    max_per_buyer_high) \
         VALUES ($1, 'Made before', 250, 10, 3600000000, $2, $2)",
    )
    .bind(drop_id)
    .bind(max)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO dropkit_variants (id, drop_id, position, name, total_stock) \
         VALUES ($1, $2, 0, 'Standard', 10)",
    )
    .bind(variant)
    .bind(drop_id)
    .execute(pool)
    .await
    .unwrap();
    let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
    let nulls: Vec<Option<String>> = vec![None, None];
    let prints: Vec<Option<Vec<u8>>> = vec![None, None];
    let outcome: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT o_outcome::text FROM dropkit_reserve_{kind}($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    )))
    .bind(drop_id)
    .bind(vec!["ann_id", "bob_id"])
    .bind(vec!["ann", "bob"])
    .bind(vec![Some(variant), Some(variant)])
    .bind(quantities.to_vec())
    .bind(vec![ann, bob])
    .bind(&nulls)
    .bind(&nulls)
    .bind(&prints)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
    let one: Vec<Option<String>> = vec![None];
    let one_print: Vec<Option<Vec<u8>>> = vec![None];
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM dropkit_purchase_{kind}($1, $2, $3, $4, $5, $6, $7)"
    )))
    .bind(drop_id)
    .bind(vec![bob])
    .bind(vec!["bob_id"])
    .bind(vec![Uuid::new_v4()])
    .bind(&one)
    .bind(&one)
    .bind(&one_print)
    .execute(pool)
    .await
    .unwrap();
    (drop_id, ann, bob)
}

/// The last migration before the event log.
const VARIANTS: i64 = 20261208000001;

/// A database with drops, holds and purchases from the version before the
/// event log: after the upgrade the log starts empty, the old rows are
/// untouched, and what happens next is logged.
#[sqlx::test(migrations = false)]
async fn a_database_before_the_event_log_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(VARIANTS).run(&pool).await.unwrap();
    // The old version's calls run on connections of their own, closed
    // before the upgrade, as an old instance's would be: a connection
    // caches the shape of a composite type once it has read one, and the
    // waiting list's migration adds a field to the variants' counters.
    let old = common::pool_like(&pool, 1).await;
    let (drop_id, ann, _) = ann_holds_bob_bought(&old, "units", 2, [2, 1]).await;
    old.close().await;
    let holds_before: Vec<(Uuid, String, i32)> =
        sqlx::query_as("SELECT id, status, quantity FROM dropkit_reservations ORDER BY buyer_id")
            .fetch_all(&pool)
            .await
            .unwrap();

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let holds_after: Vec<(Uuid, String, i32)> =
        sqlx::query_as("SELECT id, status, quantity FROM dropkit_reservations ORDER BY buyer_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(holds_after, holds_before, "the old rows are untouched");
    assert_eq!(store.log_head().await.unwrap(), 0, "the log starts empty");
    assert!(store.events_after(0, 10).await.unwrap().is_empty());

    let drop = drop_core::DropId::from_uuid(drop_id);
    let state = store.get_drop(drop).await.unwrap();
    assert_eq!((state.stock.reserved, state.stock.sold), (2, 1));
    // The old hold is released, a new one taken and bought: all logged.
    let ann_id = drop_core::BuyerId::parse("ann_id").unwrap();
    store
        .release(ReservationId::from_uuid(ann), &ann_id)
        .await
        .unwrap();
    let cid = user("cid");
    let hold = store.reserve(drop, &cid).await.unwrap().reservation;
    store.purchase(hold.id, &cid.id).await.unwrap();
    let entries = store.events_after(0, 10).await.unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e.change.kind()).collect();
    assert_eq!(kinds, ["holdReleased", "holdCreated", "purchaseCompleted"]);
    match &entries[0].change {
        drop_core::Change::HoldReleased {
            reservation_id,
            quantity,
            ..
        } => assert_eq!((reservation_id.as_uuid(), *quantity), (ann, 2)),
        other => panic!("{other:?}"),
    }
    let holder = Uuid::new_v4();
    let claim = store
        .claim_cursor("hook", holder, Duration::from_secs(60))
        .await;
    assert_eq!(claim.unwrap().map(|c| c.position), Some(0));
    assert_invariants(&store).await;
}

/// The last migration before the common batch of reserves was decided in
/// two statements.
const EVENT_LOG: i64 = 20261209000001;

/// A database of the event log's version, with holds, a purchase and their
/// entries: after the upgrade the old rows and entries are untouched, the
/// log numbers on from where it was, and a batch (the common one and one
/// that is not: a buyer twice, and one at the limit) answers as before.
#[sqlx::test(migrations = false)]
async fn a_database_of_the_event_log_version_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(EVENT_LOG).run(&pool).await.unwrap();
    // The old version's calls on connections of their own (see above).
    let old = common::pool_like(&pool, 1).await;
    let (drop_id, ann, _) = ann_holds_bob_bought(&old, "logged", 1, [1, 1]).await;
    old.close().await;
    let rows = "SELECT id::text || status || quantity FROM dropkit_reservations ORDER BY id";
    let entries =
        "SELECT seq || kind || coalesce(reservation_id::text, '') FROM dropkit_events ORDER BY seq";
    let holds_before: Vec<String> = sqlx::query_scalar(rows).fetch_all(&pool).await.unwrap();
    let log_before: Vec<String> = sqlx::query_scalar(entries).fetch_all(&pool).await.unwrap();
    assert_eq!(log_before.len(), 3, "{log_before:?}");

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let holds_after: Vec<String> = sqlx::query_scalar(rows).fetch_all(&pool).await.unwrap();
    let log_after: Vec<String> = sqlx::query_scalar(entries).fetch_all(&pool).await.unwrap();
    assert_eq!(holds_after, holds_before, "the old rows are untouched");
    assert_eq!(log_after, log_before, "the old entries are untouched");

    let drop = drop_core::DropId::from_uuid(drop_id);
    let ann_id = drop_core::BuyerId::parse("ann_id").unwrap();
    let bob_id = drop_core::BuyerId::parse("bob_id").unwrap();
    let (cid, dan) = (user("cid"), user("dan"));
    // Ann holds already (answered her hold), Bob bought his one (at the
    // limit), Cid and Dan are new: sent together, so that group commit most
    // likely makes them one batch, which is not the common one.
    let ann_again = Buyer::new(ann_id.clone(), "ann".parse().unwrap());
    let bob_again = Buyer::new(bob_id.clone(), "bob".parse().unwrap());
    let (a, b, c, d) = tokio::join!(
        store.reserve(drop, &ann_again),
        store.reserve(drop, &bob_again),
        store.reserve(drop, &cid),
        store.reserve(drop, &dan),
    );
    assert_eq!(a.unwrap().reservation.id.as_uuid(), ann, "Ann's old hold");
    assert!(
        matches!(b, Err(drop_core::DropError::BuyerLimitReached { .. })),
        "{b:?}"
    );
    let (c, d) = (c.unwrap().reservation, d.unwrap().reservation);
    // Two more new buyers: the common batch.
    let (eve, fay) = (user("eve"), user("fay"));
    let (e, f) = tokio::join!(store.reserve(drop, &eve), store.reserve(drop, &fay));
    let (e, f) = (e.unwrap().reservation, f.unwrap().reservation);
    let state = store.get_drop(drop).await.unwrap();
    assert_eq!((state.stock.reserved, state.stock.sold), (5, 1));
    assert_eq!(state.variants[0].reserved, 5);

    let entries = store.events_after(0, 20).await.unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<u64>>(), "numbered on from 3");
    let new: Vec<ReservationId> = entries[3..]
        .iter()
        .map(|e| match &e.change {
            drop_core::Change::HoldCreated { reservation_id, .. } => *reservation_id,
            other => panic!("{other:?}"),
        })
        .collect();
    let mut logged = new.clone();
    logged.sort_by_key(|id| id.as_uuid());
    let mut made = vec![c.id, d.id, e.id, f.id];
    made.sort_by_key(|id| id.as_uuid());
    assert_eq!(logged, made, "each new hold logged once");
    store.close().await;
}

/// The last migration before the waiting list.
const COMMON_BATCH: i64 = 20261210000001;

/// A database from the version before the waiting list, with drops, holds,
/// purchases and log entries: after the upgrade the old rows read as
/// before (holds not offered, logged holds not offered, drops with a line,
/// nobody in it), and the line works on the old drop.
#[sqlx::test(migrations = false)]
async fn a_database_before_the_waiting_list_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(COMMON_BATCH).run(&pool).await.unwrap();
    // The old version's calls run on connections of their own, closed
    // before the upgrade, as an old instance's would be: a connection
    // caches the shape of a composite type once it has read one.
    let old = common::pool_like(&pool, 1).await;
    // Ann holds 2 of 10 units, Bob bought 1; four more buyers take the
    // other 7 through that version's logged reserve: sold out.
    let (drop_id, ann, bob) = ann_holds_bob_bought(&old, "units", 2, [2, 1]).await;
    let variant: Uuid = sqlx::query_scalar("SELECT id FROM dropkit_variants WHERE drop_id = $1")
        .bind(drop_id)
        .fetch_one(&old)
        .await
        .unwrap();
    let buyers = ["c1_id", "c2_id", "c3_id", "c4_id"];
    let nulls: Vec<Option<String>> = vec![None; 4];
    let prints: Vec<Option<Vec<u8>>> = vec![None; 4];
    let outcome: String = sqlx::query_scalar(
        "SELECT o_outcome::text FROM dropkit_reserve_logged($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(drop_id)
    .bind(buyers.to_vec())
    .bind(vec!["cee", "cee", "cee", "cee"])
    .bind(vec![Some(variant); 4])
    .bind(vec![2, 2, 2, 1])
    .bind((0..4).map(|_| Uuid::new_v4()).collect::<Vec<_>>())
    .bind(&nulls)
    .bind(&nulls)
    .bind(&prints)
    .fetch_one(&old)
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
    let logged_before: i64 = sqlx::query_scalar("SELECT count(*) FROM dropkit_events")
        .fetch_one(&old)
        .await
        .unwrap();
    assert_eq!(logged_before, 4);
    old.close().await;

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");

    // The old rows, as before.
    let drop = drop_core::DropId::from_uuid(drop_id);
    let state = store.get_drop(drop).await.unwrap();
    assert!(state.drop.waitlist, "an old drop has a line");
    assert_eq!(
        (
            state.stock.reserved,
            state.stock.sold,
            state.stock.available()
        ),
        (9, 1, 0)
    );
    assert_eq!(state.variants[0].waitlist_length, 0);
    let old = store
        .get_reservation(ReservationId::from_uuid(ann))
        .await
        .unwrap();
    assert!(!old.offered);
    assert_eq!(old.quantity, 2);
    let bought = store
        .get_reservation(ReservationId::from_uuid(bob))
        .await
        .unwrap();
    assert_eq!(bought.status, ReservationStatus::Purchased);
    let entries = store.events_after(0, 10).await.unwrap();
    assert_eq!(entries.len(), 4);
    for e in &entries {
        match &e.change {
            drop_core::Change::HoldCreated { offered, .. } => assert!(!offered),
            other => panic!("{other:?}"),
        }
    }

    // The line, on the old drop: Dan waits for one unit, Ann gives back
    // her two: one is offered to Dan, the other goes back on sale.
    let dan = user("dan");
    let place = store
        .join_waitlist(drop, &dan, drop_core::ReserveRequest::new())
        .await
        .unwrap();
    assert!(place.changed);
    assert_eq!((place.value.position, place.value.set_aside), (1, 0));
    assert_eq!(
        store.get_drop(drop).await.unwrap().variants[0].waitlist_length,
        1
    );
    let ann_id = drop_core::BuyerId::parse("ann_id").unwrap();
    store
        .release(ReservationId::from_uuid(ann), &ann_id)
        .await
        .unwrap();
    let offer = store
        .active_hold(drop, &dan.id)
        .await
        .unwrap()
        .expect("Dan was offered a hold");
    assert!(offer.offered);
    assert_eq!(offer.quantity, 1);
    assert_eq!(store.waitlist_place(drop, &dan.id).await.unwrap(), None);
    let after = store.get_drop(drop).await.unwrap();
    assert_eq!(
        (after.stock.reserved, after.stock.available()),
        (8, 1),
        "the unit nobody waits for is back on sale"
    );
    assert_eq!(after.variants[0].waitlist_length, 0);
    let kinds: Vec<&str> = store
        .events_after(4, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.change.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "waitlistJoined",
            "holdReleased",
            "holdCreated",
            "waitlistLeft"
        ]
    );
    assert_invariants(&store).await;
}

/// The last migration before draw drops.
const WAITLIST: i64 = 20261211000001;

/// A database from the version before draw drops, with drops, holds,
/// purchases, a place in line and log entries: after the upgrade the old
/// rows read as before (first-come drops, never drawn), the old drop still
/// sells first come and serves its line, and a draw drop works beside it.
#[sqlx::test(migrations = false)]
async fn a_database_before_draws_upgrades_with_its_data(pool: PgPool) {
    own_history_up_to(WAITLIST).run(&pool).await.unwrap();
    // The old version's calls on a connection of their own (see above).
    let old = common::pool_like(&pool, 1).await;
    // Ann holds 2 of 10 units, Bob bought 1, four more buyers hold the
    // other 7 (logged): sold out. Dan waits in line for one.
    let (drop_id, ann, bob) = ann_holds_bob_bought(&old, "logged", 2, [2, 1]).await;
    let variant: Uuid = sqlx::query_scalar("SELECT id FROM dropkit_variants WHERE drop_id = $1")
        .bind(drop_id)
        .fetch_one(&old)
        .await
        .unwrap();
    let buyers = ["c1_id", "c2_id", "c3_id", "c4_id"];
    let nulls: Vec<Option<String>> = vec![None; 4];
    let prints: Vec<Option<Vec<u8>>> = vec![None; 4];
    let outcome: String = sqlx::query_scalar(
        "SELECT o_outcome::text FROM dropkit_reserve_logged($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(drop_id)
    .bind(buyers.to_vec())
    .bind(vec!["cee", "cee", "cee", "cee"])
    .bind(vec![Some(variant); 4])
    .bind(vec![2, 2, 2, 1])
    .bind((0..4).map(|_| Uuid::new_v4()).collect::<Vec<_>>())
    .bind(&nulls)
    .bind(&nulls)
    .bind(&prints)
    .fetch_one(&old)
    .await
    .unwrap();
    assert_eq!(outcome, "ok");
    let joined: String = sqlx::query_scalar(
        "SELECT o_outcome FROM dropkit_waitlist_join($1, 'dan_id', 'dan', $2, 1, true)",
    )
    .bind(drop_id)
    .bind(variant)
    .fetch_one(&old)
    .await
    .unwrap();
    assert_eq!(joined, "joined");
    old.close().await;
    let rows = "SELECT id::text || status || quantity || offered FROM dropkit_reservations \
                ORDER BY id";
    let entries = "SELECT seq || kind FROM dropkit_events ORDER BY seq";
    let holds_before: Vec<String> = sqlx::query_scalar(rows).fetch_all(&pool).await.unwrap();
    let log_before: Vec<String> = sqlx::query_scalar(entries).fetch_all(&pool).await.unwrap();
    // Ann's and Bob's holds, Bob's purchase, four holds, Dan's join.
    assert_eq!(log_before.len(), 8, "{log_before:?}");

    let store = PgStore::builder()
        .listen(false)
        .build(pool.clone())
        .await
        .expect("the store migrates the database and starts");
    let holds_after: Vec<String> = sqlx::query_scalar(rows).fetch_all(&pool).await.unwrap();
    let log_after: Vec<String> = sqlx::query_scalar(entries).fetch_all(&pool).await.unwrap();
    assert_eq!(holds_after, holds_before, "the old rows are untouched");
    assert_eq!(log_after, log_before, "the old entries are untouched");

    // The old drop: first come, never drawn, its line as it was.
    let drop = drop_core::DropId::from_uuid(drop_id);
    let state = store.get_drop(drop).await.unwrap();
    assert_eq!(state.drop.mode, drop_core::SaleMode::FirstCome);
    assert_eq!(
        (
            state.drop.draw_at,
            state.drop.drawn_at,
            state.drop.beacon_name
        ),
        (None, None, None)
    );
    assert_eq!((state.stock.reserved, state.stock.sold), (9, 1));
    assert_eq!(state.variants[0].waitlist_length, 1);
    assert!(matches!(
        store.draw_status(drop).await,
        Err(DropError::NotADraw { .. })
    ));
    let dan = drop_core::BuyerId::parse("dan_id").unwrap();
    assert_eq!(store.draw_entry(drop, &dan).await.unwrap(), None);
    let place = store.waitlist_place(drop, &dan).await.unwrap().unwrap();
    assert_eq!(place.position, 1);
    let bought = store
        .get_reservation(ReservationId::from_uuid(bob))
        .await
        .unwrap();
    assert_eq!(bought.status, ReservationStatus::Purchased);
    // It sells first come (no DRAW_ONLY): a new buyer is told it is sold
    // out; Ann's release goes to Dan, the other unit back on sale.
    assert!(matches!(
        store.reserve(drop, &user("eve")).await,
        Err(DropError::OutOfStock { .. })
    ));
    let ann_id = drop_core::BuyerId::parse("ann_id").unwrap();
    store
        .release(ReservationId::from_uuid(ann), &ann_id)
        .await
        .unwrap();
    let offer = store.active_hold(drop, &dan).await.unwrap().unwrap();
    assert!(offer.offered);
    let fay = store.reserve(drop, &user("fay")).await.unwrap();
    assert!(fay.created);

    // A draw drop on the upgraded database: entries, the draw, the line.
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(&pool)
        .await
        .unwrap();
    let draw_at = now + chrono::Duration::seconds(1);
    let made = store
        .create_drop(
            drop_core::NewDrop::new("Drawn", drop_core::Money::from_minor(100).unwrap(), 1)
                .draw_at(draw_at),
        )
        .await
        .unwrap();
    let drawn = made.drop.id;
    for name in ["gil", "hal", "ivy"] {
        store.enter_draw(drawn, &user(name), None).await.unwrap();
    }
    loop {
        let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
            .fetch_one(&pool)
            .await
            .unwrap();
        if now > draw_at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let summary = store.run_draw(drawn, None).await.unwrap().unwrap();
    assert_eq!(
        (summary.entries, summary.winners, summary.waiting),
        (3, 1, 2)
    );
    let published = store.draw_status(drawn).await.unwrap().published.unwrap();
    drop_core::verify_draw(&published).expect("the draw verifies");
    let kinds: Vec<&str> = store
        .events_after(8, 20)
        .await
        .unwrap()
        .iter()
        .map(|e| e.change.kind())
        .collect();
    assert_eq!(
        kinds,
        [
            "holdReleased",
            "holdCreated",
            "waitlistLeft",
            "holdCreated",
            "dropCreated",
            "holdCreated",
            "drawCompleted"
        ]
    );
    assert_invariants(&store).await;
    store.close().await;
}
