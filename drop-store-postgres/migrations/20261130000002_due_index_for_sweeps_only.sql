-- The due-holds index serves the sweeper, lazy reclaim and next_expiry, and
-- nothing else.
--
-- An index created on an empty table is recorded as empty (pg_class says 0
-- tuples) until VACUUM or ANALYZE next looks at it, which in a flash sale on
-- a new database can be a minute or more after the storm began. The old
-- `dropkit_reservations_due` was partial on `status = 'active'` alone, so any
-- statement about active holds could read it whole, and a whole "empty"
-- index looks free: the batched reserve chose it to find its callers' own
-- holds (`username = ANY (...)`) and read every active hold per batch
-- (measured: ≈ 330 tuples per call with 20,000 active holds, growing with
-- them; tests/cold_start.rs).
--
-- The added `expires_at IS NOT NULL` changes no row (the column is NOT
-- NULL) but changes which statements may use the index: only those with a
-- strict condition on `expires_at` (`expires_at <= now`, the sweeper's and
-- lazy reclaim's) or an ordered scan of it (`min(expires_at)` adds the same
-- test) imply it. Lookups by buyer can only use the one-active index.
--
-- Rebuilding takes a SHARE lock on the hold table for the length of the
-- build (writes wait; seconds per million holds).

DROP INDEX IF EXISTS dropkit_reservations_due;
CREATE INDEX dropkit_reservations_due
    ON dropkit_reservations (expires_at)
    WHERE status = 'active' AND expires_at IS NOT NULL;
