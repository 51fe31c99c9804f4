-- Plans that do not depend on what the tables held when a connection first
-- ran the write functions.
--
-- PL/pgSQL prepares each statement once per connection. After five runs
-- PostgreSQL may switch a statement to a generic plan (one made without the
-- parameters' values) and keep it for the life of the connection. On a new
-- database those first runs meet empty tables, where every plan costs
-- nothing, and the generic plan chosen for the batched reserve walked the
-- whole `dropkit_reservations_due` index (every active hold) to find the
-- callers' own holds: measured at ~40,000 index tuples read per batch with
-- 20,000 active holds, and a flash sale's first storm ran at a sixth of the
-- speed of the same storm after a restart. `force_custom_plan` plans every
-- statement with its real arguments against the table as it is now (sizes
-- come from the relation itself, so this holds before any ANALYZE too).
--
-- `CREATE OR REPLACE FUNCTION` drops a function's SET clauses: a later
-- migration that replaces one of these functions must restate
-- `SET plan_cache_mode = force_custom_plan` (tests/cold_start.rs fails
-- otherwise).

ALTER FUNCTION dropkit_reserve(uuid, text[], uuid[])
    SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION dropkit_purchase(uuid, uuid[], text[], uuid[])
    SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION dropkit_release(uuid, text)
    SET plan_cache_mode = force_custom_plan;
ALTER FUNCTION dropkit_expire_due(integer)
    SET plan_cache_mode = force_custom_plan;
