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
             WHERE r.drop_id = d.id AND r.status = 'purchased') AS purchased,
           (SELECT count(*) FROM dropkit_purchases p WHERE p.drop_id = d.id) AS purchases,
           (SELECT coalesce(sum(v.total_stock), 0) FROM dropkit_variants v WHERE v.drop_id = d.id) AS v_total,
           (SELECT coalesce(sum(v.reserved), 0) FROM dropkit_variants v WHERE v.drop_id = d.id) AS v_reserved,
           (SELECT coalesce(sum(v.sold), 0) FROM dropkit_variants v WHERE v.drop_id = d.id) AS v_sold,
           (SELECT count(*) FROM dropkit_variants v WHERE v.drop_id = d.id) AS variants
      FROM dropkit_drops d),
vcounts AS (
    SELECT v.id, v.drop_id, v.total_stock, v.reserved, v.sold, v.set_aside, v.waitlist_length,
           (SELECT count(*) FROM dropkit_waitlist w WHERE w.variant_id = v.id) AS waiting,
           (SELECT coalesce(sum(r.quantity), 0) FROM dropkit_reservations r
             WHERE r.variant_id = v.id AND r.status = 'active') AS held,
           (SELECT coalesce(sum(p.quantity), 0) FROM dropkit_purchases p
             WHERE p.variant_id = v.id AND p.status = 'completed') AS bought
      FROM dropkit_variants v)
SELECT format('variant %s of drop %s: reserved = %s but its active holds hold %s units and %s are set aside', id, drop_id, reserved, held, set_aside)
  FROM vcounts WHERE reserved <> held + set_aside
UNION ALL
SELECT format('variant %s of drop %s: waitlist_length = %s but %s buyers wait',
              id, drop_id, waitlist_length, waiting)
  FROM vcounts WHERE waitlist_length <> waiting
UNION ALL
SELECT format('variant %s of drop %s: %s units set aside, %s on sale, for a line of %s',
              id, drop_id, set_aside, total_stock - reserved - sold, waiting)
  FROM vcounts WHERE (waiting = 0 AND set_aside > 0)
                  OR (waiting > 0 AND total_stock - reserved - sold > 0)
UNION ALL
SELECT format('%s places in the line of a variant of another drop', n)
  FROM (SELECT count(*) AS n FROM dropkit_waitlist w
         WHERE NOT EXISTS (SELECT 1 FROM dropkit_variants v
                            WHERE v.id = w.variant_id AND v.drop_id = w.drop_id)) t
 WHERE n > 0
UNION ALL
SELECT format('variant %s of drop %s: sold = %s but its completed purchases are %s units',
              id, drop_id, sold, bought)
  FROM vcounts WHERE sold <> bought
UNION ALL
SELECT format('variant %s of drop %s: reserved %s + sold %s vs total %s',
              id, drop_id, reserved, sold, total_stock)
  FROM vcounts WHERE reserved < 0 OR sold < 0 OR reserved + sold > total_stock
UNION ALL
SELECT format('drop %s: total %s, reserved %s, sold %s but its variants sum to %s, %s, %s',
              id, total_stock, reserved, sold, v_total, v_reserved, v_sold)
  FROM counts WHERE total_stock <> v_total OR reserved <> v_reserved OR sold <> v_sold
UNION ALL
SELECT format('drop %s has no variant', id) FROM counts WHERE variants = 0
UNION ALL
SELECT format('drop %s: reserved %s + sold %s vs total %s', id, reserved, sold, total_stock)
  FROM counts WHERE reserved < 0 OR sold < 0 OR reserved + sold > total_stock
UNION ALL
SELECT format('drop %s: %s purchased holds but %s purchases', id, purchased, purchases)
  FROM counts WHERE purchased <> purchases
UNION ALL
SELECT format('%s purchases whose hold is not a matching purchased hold', n)
  FROM (SELECT count(*) AS n FROM dropkit_purchases p
          JOIN dropkit_reservations r ON r.id = p.reservation_id
         WHERE r.status <> 'purchased' OR r.drop_id <> p.drop_id
            OR r.buyer_id <> p.buyer_id OR r.display_name <> p.display_name
            OR r.variant_id <> p.variant_id OR r.quantity <> p.quantity) t
 WHERE n > 0
UNION ALL
SELECT format('%s purchased holds without a purchase', n)
  FROM (SELECT count(*) AS n FROM dropkit_reservations r
         WHERE r.status = 'purchased'
           AND NOT EXISTS (SELECT 1 FROM dropkit_purchases p WHERE p.reservation_id = r.id)) t
 WHERE n > 0
UNION ALL
SELECT format('%s holds or purchases of no drop, or of a variant of another drop', n)
  FROM (SELECT (SELECT count(*) FROM dropkit_reservations r
                 WHERE NOT EXISTS (SELECT 1 FROM dropkit_variants v
                                    WHERE v.id = r.variant_id AND v.drop_id = r.drop_id))
             + (SELECT count(*) FROM dropkit_purchases p
                 WHERE NOT EXISTS (SELECT 1 FROM dropkit_variants v
                                    WHERE v.id = p.variant_id AND v.drop_id = p.drop_id))
             + (SELECT count(*) FROM dropkit_variants v
                 WHERE NOT EXISTS (SELECT 1 FROM dropkit_drops d WHERE d.id = v.drop_id)) AS n) t
 WHERE n > 0
UNION ALL
SELECT format('%s buyers hold two active holds on one drop', n)
  FROM (SELECT count(*) AS n FROM (SELECT 1 FROM dropkit_reservations WHERE status = 'active'
                                    GROUP BY drop_id, buyer_id HAVING count(*) > 1) g) t
 WHERE n > 0
UNION ALL
SELECT format('buyer %s has %s units of drop %s, above its highest maxPerBuyer %s',
              u.buyer_id, u.units, u.drop_id, d.max_per_buyer_high)
  FROM (SELECT x.drop_id, x.buyer_id, sum(x.quantity) AS units
          FROM (SELECT r.drop_id, r.buyer_id, r.quantity FROM dropkit_reservations r
                 WHERE r.status = 'active'
                UNION ALL
                SELECT p.drop_id, p.buyer_id, p.quantity FROM dropkit_purchases p
                 WHERE p.status = 'completed') x
         GROUP BY x.drop_id, x.buyer_id) u
  JOIN dropkit_drops d ON d.id = u.drop_id
 WHERE u.units > d.max_per_buyer_high";

/// Every problem found, as text (empty when all is well).
pub(crate) async fn check(pool: &PgPool) -> Result<Vec<String>, DropError> {
    sqlx::query_scalar(CHECK)
        .fetch_all(pool)
        .await
        .map_err(map_sqlx)
}
