//! The bookkeeping proof behind [`PgStore::verify_invariants`](crate::PgStore::verify_invariants).

use drop_core::DropError;
use sqlx::PgPool;

use crate::error::map_sqlx;

/// Every problem found, one line each, in one statement: a statement reads
/// one snapshot, so concurrent writes cannot make the checks disagree with
/// each other.
const CHECK: &str = "\
WITH counts AS (
    SELECT d.id, d.total_stock, d.reserved, d.sold,
           (SELECT count(*) FROM dropkit_reservations r
             WHERE r.drop_id = d.id AND r.status = 'active') AS active,
           (SELECT count(*) FROM dropkit_reservations r
             WHERE r.drop_id = d.id AND r.status = 'purchased') AS purchased,
           (SELECT count(*) FROM dropkit_purchases p WHERE p.drop_id = d.id) AS purchases
      FROM dropkit_drops d)
SELECT format('drop %s: reserved = %s but %s active holds', id, reserved, active)
  FROM counts WHERE reserved <> active
UNION ALL
SELECT format('drop %s: sold = %s but %s purchased holds and %s purchases',
              id, sold, purchased, purchases)
  FROM counts WHERE sold <> purchased OR sold <> purchases
UNION ALL
SELECT format('drop %s: reserved %s + sold %s vs total %s', id, reserved, sold, total_stock)
  FROM counts WHERE reserved < 0 OR sold < 0 OR reserved + sold > total_stock
UNION ALL
SELECT format('%s purchases whose hold is not a matching purchased hold', n)
  FROM (SELECT count(*) AS n FROM dropkit_purchases p
          JOIN dropkit_reservations r ON r.id = p.reservation_id
         WHERE r.status <> 'purchased' OR r.drop_id <> p.drop_id
            OR r.buyer_id <> p.buyer_id OR r.display_name <> p.display_name) t
 WHERE n > 0
UNION ALL
SELECT format('%s purchased holds without a purchase', n)
  FROM (SELECT count(*) AS n FROM dropkit_reservations r
         WHERE r.status = 'purchased'
           AND NOT EXISTS (SELECT 1 FROM dropkit_purchases p WHERE p.reservation_id = r.id)) t
 WHERE n > 0
UNION ALL
SELECT format('%s holds or purchases of no drop', n)
  FROM (SELECT (SELECT count(*) FROM dropkit_reservations r
                 WHERE NOT EXISTS (SELECT 1 FROM dropkit_drops d WHERE d.id = r.drop_id))
             + (SELECT count(*) FROM dropkit_purchases p
                 WHERE NOT EXISTS (SELECT 1 FROM dropkit_drops d WHERE d.id = p.drop_id)) AS n) t
 WHERE n > 0
UNION ALL
SELECT format('%s users hold two active holds on one drop', n)
  FROM (SELECT count(*) AS n FROM (SELECT 1 FROM dropkit_reservations WHERE status = 'active'
                                    GROUP BY drop_id, buyer_id HAVING count(*) > 1) g) t
 WHERE n > 0";

/// Every problem found, as text (empty when all is well).
pub(crate) async fn check(pool: &PgPool) -> Result<Vec<String>, DropError> {
    sqlx::query_scalar(CHECK)
        .fetch_all(pool)
        .await
        .map_err(map_sqlx)
}
