//! The bookkeeping proof behind [`PgStore::verify_invariants`](crate::PgStore::verify_invariants).

use drop_core::DropError;
use sqlx::{PgPool, Row};

use crate::error::map_sqlx;

/// Every problem found, as text (empty when all is well). One repeatable
/// read snapshot, so concurrent writes cannot make it disagree with itself.
pub(crate) async fn check(pool: &PgPool) -> Result<Vec<String>, DropError> {
    let mut tx = pool.begin().await.map_err(map_sqlx)?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await
        .map_err(map_sqlx)?;
    let mut problems = Vec::new();
    let counters = sqlx::query(
        "SELECT d.id, d.total_stock, d.reserved, d.sold, \
            (SELECT count(*) FROM dropkit_reservations r WHERE r.drop_id = d.id AND r.status = 'active') AS active, \
            (SELECT count(*) FROM dropkit_reservations r WHERE r.drop_id = d.id AND r.status = 'purchased') AS purchased, \
            (SELECT count(*) FROM dropkit_purchases p WHERE p.drop_id = d.id) AS purchases \
         FROM dropkit_drops d",
    )
    .fetch_all(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    for row in counters {
        let get = |c: &str| -> Result<i64, DropError> {
            row.try_get::<i64, _>(c)
                .or_else(|_| row.try_get::<i32, _>(c).map(i64::from))
                .map_err(map_sqlx)
        };
        let id: uuid::Uuid = row.try_get("id").map_err(map_sqlx)?;
        let (total, reserved, sold) = (get("total_stock")?, get("reserved")?, get("sold")?);
        let (active, purchased, purchases) = (get("active")?, get("purchased")?, get("purchases")?);
        if reserved != active {
            problems.push(format!(
                "drop {id}: reserved = {reserved} but {active} active holds"
            ));
        }
        if sold != purchased || sold != purchases {
            problems.push(format!(
                "drop {id}: sold = {sold} but {purchased} purchased holds and {purchases} purchases"
            ));
        }
        if reserved < 0 || sold < 0 || reserved + sold > total {
            problems.push(format!(
                "drop {id}: reserved {reserved} + sold {sold} vs total {total}"
            ));
        }
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_purchases p JOIN dropkit_reservations r ON r.id = p.reservation_id \
         WHERE r.status <> 'purchased' OR r.drop_id <> p.drop_id OR r.username <> p.username",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    if orphans > 0 {
        problems.push(format!(
            "{orphans} purchases whose hold is not a matching purchased hold"
        ));
    }
    let unpaid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM dropkit_reservations r WHERE r.status = 'purchased' \
         AND NOT EXISTS (SELECT 1 FROM dropkit_purchases p WHERE p.reservation_id = r.id)",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    if unpaid > 0 {
        problems.push(format!("{unpaid} purchased holds without a purchase"));
    }
    let orphans: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM dropkit_reservations r \
                  WHERE NOT EXISTS (SELECT 1 FROM dropkit_drops d WHERE d.id = r.drop_id)) \
              + (SELECT count(*) FROM dropkit_purchases p \
                  WHERE NOT EXISTS (SELECT 1 FROM dropkit_drops d WHERE d.id = p.drop_id))",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    if orphans > 0 {
        problems.push(format!("{orphans} holds or purchases of no drop"));
    }
    let doubled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM dropkit_reservations WHERE status = 'active' \
         GROUP BY drop_id, username HAVING count(*) > 1) t",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(map_sqlx)?;
    if doubled > 0 {
        problems.push(format!("{doubled} users hold two active holds on one drop"));
    }
    tx.commit().await.map_err(map_sqlx)?;
    Ok(problems)
}
