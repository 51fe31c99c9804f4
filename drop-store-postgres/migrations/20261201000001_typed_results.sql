-- Typed answers from the write functions, and one reserve path for one
-- caller or many.
--
-- The functions used to answer with outcome strings in parallel arrays
-- (`o_results text[]` beside `o_hold_ids uuid[]`, `o_created_at …[]`). Now
-- every outcome is a value of one enum type, and each caller's answer is
-- one composite value, so the store decodes each function's row into one
-- typed shape. The result types change, so the functions are dropped and
-- created again: an instance of an earlier version calling them after this
-- migration fails its writes (`UNAVAILABLE` after its retries); upgrade
-- every instance together.
--
-- Lock order, unchanged on every path: the drop row first (the UPDATE
-- that counts units, or FOR NO KEY UPDATE), then that drop's hold rows.
-- Time is clock_timestamp() read after the drop lock is granted.
--
-- Plans: reserve, purchase and release no longer force custom plans
-- (20261130000001 did). Each of their statements has one sensible plan
-- whatever the tables hold or held when it was first planned: updates and
-- lookups by key, lookups by buyer name on the one-active index, inserts,
-- the drop's latest purchases on its own index; the only ordered scan of
-- the hold table (lazy reclaim) states the per-drop due index's
-- predicate. tests/cold_start.rs holds them to generic plans made on
-- empty tables and reads the tuples they touch once the tables have
-- grown. Forcing custom plans on the new reserve made no measurable
-- difference to its speed (the reserve bench's BENCH_VARIANT_SQL: 1.02×).
-- The sweeper keeps force_custom_plan: its per-drop ordered scans run
-- once per batch of expiries, and nothing is lost planning them anew.

-- One index fewer on every hold written. `dropkit_reservations_due`
-- (active holds by `expires_at` alone) served only next_expiry, which now
-- takes the earliest of each drop's first entry in
-- `dropkit_reservations_due_by_drop` (one entry per drop with active
-- holds). Measured with `BENCH_VARIANT_SQL` in the reserve bench: one
-- index fewer on the hold table is 1.2–1.6× the group-commit reserves per
-- second. It was also the index whose "empty" statistics on a new
-- database invited whole-index reads (migration 20261130000002).
DROP INDEX dropkit_reservations_due;

CREATE TYPE dropkit_outcome AS ENUM (
    -- what happened to a call as a whole
    'ok', 'drop_not_found', 'not_started', 'ended',
    -- one caller's reserve
    'created', 'existing', 'out_of_stock',
    -- one caller's purchase or release
    'purchased', 'repeated', 'released',
    -- refusals about one hold
    'not_found', 'not_owner', 'expired', 'already_purchased', 'already_released'
);

-- One caller's reserve: created | existing (hold fields set) | out_of_stock.
CREATE TYPE dropkit_hold_answer AS (
    outcome    dropkit_outcome,
    hold_id    uuid,
    created_at timestamptz,
    expires_at timestamptz
);

-- One caller's purchase: purchased | repeated (with its time) | a refusal.
CREATE TYPE dropkit_purchase_answer AS (
    outcome      dropkit_outcome,
    purchased_at timestamptz
);

-- A buyer in a drop's latest purchases.
CREATE TYPE dropkit_buyer AS (
    username     text,
    purchased_at timestamptz
);

DROP FUNCTION dropkit_reserve(uuid, text[], uuid[]);
DROP FUNCTION dropkit_purchase(uuid, uuid[], text[], uuid[]);
DROP FUNCTION dropkit_release(uuid, text);
DROP FUNCTION dropkit_expire_due(integer);

-- Reserve one unit for each of p_users (distinct, in arrival order), with
-- p_ids as the ids of the holds it may create. First come, first served; a
-- user with an active hold gets it back unchanged; a user whose own hold is
-- overdue gets a new one (the old one ends); when short, the drop's overdue
-- holds are reclaimed first, only as many as needed, earliest first.
--
-- One path serves one caller or a batch, in two steps:
--
-- 1. The common case, in two statements whatever the batch size: the
--    UPDATE that counts a unit for every caller is also what takes the
--    drop row lock (a separate lock would cost the hot row one more write),
--    and one INSERT creates every caller's hold, the one-active index
--    saying in the same step whether a caller already holds one. The
--    insert cannot wait on anyone: every writer of a drop's holds holds
--    that drop's row first.
-- 2. Anything else (a caller who holds already, too few free units, a
--    drop that is not on sale): under the same lock, each caller's active
--    hold is looked up once, and the answers, the new holds and the
--    counter follow from that one lookup. Units step 1 counted and did not
--    use are given back in the same counter write.
CREATE FUNCTION dropkit_reserve(p_drop uuid, p_users text[], p_ids uuid[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,       -- ok | drop_not_found | not_started | ended
    o_total    integer,               -- the drop's counters after the call
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_answers  dropkit_hold_answer[], -- when ok: one per user, in order
    o_expired  uuid[]                 -- holds this call ended (overdue ones)
)
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_users), 0);
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_expires  timestamptz;
    v_counted  boolean := false;  -- step 1 counted n units in the row
    v_inserted integer := 0;      -- holds step 1 created
    v_hold     uuid[];            -- per user: their active hold, if any
    v_made     timestamptz[];
    v_until    timestamptz[];
    v_reclaim  uuid[];
    v_reserved integer;           -- active holds, as this call goes on
    v_free     integer;
    v_need     integer;
    v_granted  integer;
    v_version  bigint;
BEGIN
    IF n IS DISTINCT FROM coalesce(cardinality(p_ids), 0) THEN
        RAISE EXCEPTION 'dropkit_reserve: % users but % ids', n, cardinality(p_ids);
    END IF;
    o_answers := '{}';
    o_expired := '{}';

    -- Step 1.
    UPDATE dropkit_drops
       SET reserved = reserved + n, version = version + 1
     WHERE id = p_drop AND n > 0 AND reserved + sold + n <= total_stock
       AND (starts_at IS NULL OR starts_at <= clock_timestamp())
       AND (ends_at IS NULL OR ends_at > clock_timestamp())
    RETURNING * INTO d;
    IF FOUND THEN
        v_counted := true;
        v_now := clock_timestamp();
        v_expires := v_now + d.hold_micros * interval '1 microsecond';
        IF d.ends_at IS NULL OR v_now < d.ends_at THEN
            INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
            SELECT t.rid, p_drop, t.name, 'active', v_now, v_expires
              FROM unnest(p_users, p_ids) AS t(name, rid)
            ON CONFLICT (username, drop_id) WHERE status = 'active' DO NOTHING;
            GET DIAGNOSTICS v_inserted = ROW_COUNT;
            IF v_inserted = n THEN
                o_outcome := 'ok';
                o_total := d.total_stock;
                o_reserved := d.reserved;
                o_sold := d.sold;
                o_version := d.version;
                -- A lone caller's answer is a plain expression, which
                -- PL/pgSQL evaluates without the executor.
                IF n = 1 THEN
                    o_answers := ARRAY[ROW('created', p_ids[1], v_now, v_expires)::dropkit_hold_answer];
                ELSE
                    SELECT array_agg(ROW('created', t.rid, v_now, v_expires)::dropkit_hold_answer
                                     ORDER BY t.i)
                      INTO o_answers
                      FROM unnest(p_ids) WITH ORDINALITY AS t(rid, i);
                END IF;
                RETURN NEXT;
                RETURN;
            END IF;
        END IF;
    ELSE
        SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
        IF NOT FOUND THEN
            o_outcome := 'drop_not_found';
            RETURN NEXT;
            RETURN;
        END IF;
        v_now := clock_timestamp();
        v_expires := v_now + d.hold_micros * interval '1 microsecond';
    END IF;

    -- Step 2. The row's counters as they were before step 1, and the holds
    -- that exist now (step 1's included).
    v_reserved := d.reserved - CASE WHEN v_counted THEN n - v_inserted ELSE 0 END;
    v_version := d.version - CASE WHEN v_counted THEN 1 ELSE 0 END;
    o_total := d.total_stock;
    o_sold := d.sold;
    IF d.starts_at IS NOT NULL AND v_now < d.starts_at THEN
        o_outcome := 'not_started';
    ELSIF d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN
        o_outcome := 'ended';
    END IF;
    IF o_outcome IS NOT NULL THEN
        -- Only step 1 can have counted anything (it inserted nothing here).
        IF v_counted THEN
            UPDATE dropkit_drops SET reserved = v_reserved, version = v_version WHERE id = p_drop;
        END IF;
        o_reserved := v_reserved;
        o_version := v_version;
        RETURN NEXT;
        RETURN;
    END IF;

    -- Each caller's active hold, found one name at a time (a LATERAL
    -- lookup with LIMIT 1 per name), never with `username = ANY (p_users)`:
    -- for a batch of a few hundred names the planner may price one scan of
    -- the table below that many index lookups, and on a table of tens of
    -- thousands of holds it did (tests/cold_start.rs). Per name, the
    -- one-active index is the only sensible plan whatever the statistics.
    SELECT array_agg(h.id ORDER BY u.i), array_agg(h.created_at ORDER BY u.i),
           array_agg(h.expires_at ORDER BY u.i)
      INTO v_hold, v_made, v_until
      FROM unnest(p_users) WITH ORDINALITY AS u(name, i)
      LEFT JOIN LATERAL (
            SELECT r.id, r.created_at, r.expires_at FROM dropkit_reservations r
             WHERE r.username = u.name AND r.drop_id = p_drop AND r.status = 'active'
             LIMIT 1) h ON true;

    -- A caller whose own hold is overdue may hold again: that hold ends now.
    SELECT coalesce(array_agg(t.held), '{}') INTO o_expired
      FROM unnest(v_hold, v_until) AS t(held, until)
     WHERE t.until <= v_now;
    IF cardinality(o_expired) > 0 THEN
        UPDATE dropkit_reservations SET status = 'expired' WHERE id = ANY (o_expired);
        v_reserved := v_reserved - cardinality(o_expired);
    END IF;
    SELECT count(*) INTO v_need
      FROM unnest(v_hold, v_until) AS t(held, until)
     WHERE t.held IS NULL OR t.until <= v_now;
    v_free := d.total_stock - v_reserved - d.sold;

    -- Lazy reclaim: only when short, only as many as needed, earliest first.
    IF v_need > v_free THEN
        WITH x AS (
            UPDATE dropkit_reservations r SET status = 'expired'
             WHERE r.id IN (SELECT o.id FROM dropkit_reservations o
                             WHERE o.drop_id = p_drop AND o.status = 'active'
                               AND o.created_at < o.expires_at AND o.expires_at <= v_now
                             ORDER BY o.expires_at
                             LIMIT v_need - v_free)
            RETURNING r.id)
        SELECT coalesce(array_agg(x.id), '{}') INTO v_reclaim FROM x;
        o_expired := o_expired || v_reclaim;
        v_reserved := v_reserved - cardinality(v_reclaim);
        v_free := v_free + cardinality(v_reclaim);
    END IF;
    v_granted := greatest(least(v_need, v_free), 0);

    -- The callers who need a unit, ranked in arrival order; the first
    -- v_granted get one.
    WITH req AS (
        SELECT t.name, t.rid, t.held, t.made, t.until, t.i,
               (t.held IS NULL OR t.until <= v_now) AS needs
          FROM unnest(p_users, p_ids, v_hold, v_made, v_until)
               WITH ORDINALITY AS t(name, rid, held, made, until, i)),
    ranked AS (
        SELECT req.*, CASE WHEN req.needs
                           THEN count(*) FILTER (WHERE req.needs) OVER (ORDER BY req.i) END AS rank
          FROM req),
    ins AS (
        INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
        SELECT ranked.rid, p_drop, ranked.name, 'active', v_now, v_expires
          FROM ranked
         WHERE ranked.rank <= v_granted
         ORDER BY ranked.i)
    SELECT array_agg(CASE
               WHEN ranked.rank <= v_granted
                   THEN ROW('created', ranked.rid, v_now, v_expires)::dropkit_hold_answer
               WHEN ranked.needs
                   THEN ROW('out_of_stock', NULL, NULL, NULL)::dropkit_hold_answer
               -- step 1 made it
               WHEN ranked.held = ranked.rid
                   THEN ROW('created', ranked.held, ranked.made, ranked.until)::dropkit_hold_answer
               ELSE ROW('existing', ranked.held, ranked.made, ranked.until)::dropkit_hold_answer
           END ORDER BY ranked.i)
      INTO o_answers
      FROM ranked;

    -- The counter moves once, for everything this call did (and gives back
    -- what step 1 counted and did not use).
    v_reserved := v_reserved + v_granted;
    IF v_inserted > 0 OR v_granted > 0 OR cardinality(o_expired) > 0 THEN
        v_version := v_version + 1;
    END IF;
    IF v_reserved <> d.reserved OR v_version <> d.version THEN
        UPDATE dropkit_drops SET reserved = v_reserved, version = v_version WHERE id = p_drop;
    END IF;
    o_reserved := v_reserved;
    o_version := v_version;
    o_outcome := 'ok';
    RETURN NEXT;
END;
$$;

-- Purchase holds of one drop: p_res[i] by p_users[i], as purchase p_pids[i].
-- Each request gets its own answer; one refusal never fails the others.
-- A hold taken before the drop's endsAt may be bought until its own
-- expiresAt, as in every store: the end of the sale closes reserves only.
CREATE FUNCTION dropkit_purchase(p_drop uuid, p_res uuid[], p_users text[], p_pids uuid[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,           -- ok | drop_not_found
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_price    bigint,
    o_answers  dropkit_purchase_answer[], -- per request: purchased | repeated | not_found
                                          --   | not_owner | expired | already_purchased
                                          --   | already_released
    o_latest   dropkit_buyer[]            -- the drop's latest buyers before this call, newest first
)
LANGUAGE plpgsql
AS $$
DECLARE
    d        dropkit_drops%ROWTYPE;
    r        dropkit_reservations%ROWTYPE;
    v_now    timestamptz;
    v_bought integer := 0;
    v_prior  uuid;
    v_at     timestamptz;
    v_says   dropkit_outcome;
    i        integer;
BEGIN
    IF cardinality(p_res) IS DISTINCT FROM cardinality(p_users)
       OR cardinality(p_res) IS DISTINCT FROM cardinality(p_pids) THEN
        RAISE EXCEPTION 'dropkit_purchase: arrays of different lengths';
    END IF;
    o_answers := '{}';
    o_latest := '{}';
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    o_total := d.total_stock;
    o_reserved := d.reserved;
    o_sold := d.sold;
    o_version := d.version;
    o_price := d.price_minor;
    SELECT coalesce(array_agg(ROW(t.username, t.created_at)::dropkit_buyer
                              ORDER BY t.created_at DESC, t.seq DESC), '{}')
      INTO o_latest
      FROM (SELECT p.username, p.created_at, p.seq FROM dropkit_purchases p
             WHERE p.drop_id = p_drop
             ORDER BY p.created_at DESC, p.seq DESC LIMIT 3) t;

    -- No hold locks: under the drop's lock nobody else writes its holds.
    FOR i IN 1 .. coalesce(cardinality(p_res), 0) LOOP
        SELECT * INTO r FROM dropkit_reservations WHERE id = p_res[i];
        v_at := NULL;
        IF NOT FOUND OR r.drop_id <> p_drop THEN
            v_says := 'not_found';
        ELSIF r.username <> p_users[i] THEN
            v_says := 'not_owner';
        ELSIF r.status = 'active' AND r.expires_at <= v_now THEN
            v_says := 'expired';
        ELSIF r.status = 'active' THEN
            UPDATE dropkit_reservations SET status = 'purchased' WHERE id = r.id;
            INSERT INTO dropkit_purchases (id, reservation_id, drop_id, username, amount_minor, created_at)
            VALUES (p_pids[i], r.id, p_drop, r.username, d.price_minor, v_now);
            v_bought := v_bought + 1;
            v_at := v_now;
            v_says := 'purchased';
        ELSIF r.status = 'purchased' THEN
            -- A retry of a call whose answer was lost: same purchase id.
            SELECT p.id, p.created_at INTO v_prior, v_at FROM dropkit_purchases p WHERE p.reservation_id = r.id;
            IF v_prior = p_pids[i] THEN
                v_says := 'repeated';
            ELSE
                v_at := NULL;
                v_says := 'already_purchased';
            END IF;
        ELSIF r.status = 'released' THEN
            v_says := 'already_released';
        ELSE
            v_says := 'expired';
        END IF;
        o_answers := o_answers || ROW(v_says, v_at)::dropkit_purchase_answer;
    END LOOP;

    IF v_bought > 0 THEN
        UPDATE dropkit_drops
           SET reserved = reserved - v_bought, sold = sold + v_bought, version = version + 1
         WHERE id = p_drop
        RETURNING reserved, sold, version INTO o_reserved, o_sold, o_version;
    END IF;
    o_outcome := 'ok';
    RETURN NEXT;
END;
$$;

-- The owner gives a hold back. Owner and terminal states never change, so
-- they are answered from a plain read: only the owner of a hold that is
-- still active queues on the drop's lock.
CREATE FUNCTION dropkit_release(p_res uuid, p_user text)
RETURNS TABLE (
    o_outcome    dropkit_outcome, -- released | not_found | not_owner | expired
                                  --   | already_purchased | already_released
    o_drop       uuid,            -- the hold's, unless not_found
    o_created_at timestamptz,
    o_expires_at timestamptz,
    o_total      integer,         -- the drop's counters, when released
    o_reserved   integer,
    o_sold       integer,
    o_version    bigint
)
LANGUAGE plpgsql
AS $$
DECLARE
    r     dropkit_reservations%ROWTYPE;
    v_now timestamptz;
BEGIN
    SELECT * INTO r FROM dropkit_reservations WHERE id = p_res;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    o_drop := r.drop_id;
    o_created_at := r.created_at;
    o_expires_at := r.expires_at;
    IF r.username <> p_user THEN
        o_outcome := 'not_owner';
    ELSIF r.status = 'active' AND r.expires_at > clock_timestamp() THEN
        -- Still active: decide again under the lock, where it may have
        -- been bought, expired or released meanwhile.
        SELECT total_stock, reserved, sold, version INTO o_total, o_reserved, o_sold, o_version
          FROM dropkit_drops WHERE id = r.drop_id FOR NO KEY UPDATE;
        SELECT * INTO r FROM dropkit_reservations WHERE id = p_res;
        v_now := clock_timestamp();
        IF r.status = 'active' AND r.expires_at > v_now THEN
            UPDATE dropkit_reservations SET status = 'released' WHERE id = p_res;
            UPDATE dropkit_drops SET reserved = reserved - 1, version = version + 1
             WHERE id = r.drop_id
            RETURNING reserved, version INTO o_reserved, o_version;
            o_outcome := 'released';
        END IF;
    END IF;
    IF o_outcome IS NULL THEN
        o_outcome := CASE r.status
                         WHEN 'purchased' THEN 'already_purchased'::dropkit_outcome
                         WHEN 'released' THEN 'already_released'::dropkit_outcome
                         ELSE 'expired'::dropkit_outcome END;
    END IF;
    RETURN NEXT;
END;
$$;

-- Expire up to p_limit due holds, fairly across drops: each drop with due
-- holds gets its earliest one before any drop gets a second, so one drop's
-- backlog never delays another's. One result row per drop touched, and one
-- counter update per drop.
--
-- Several sweepers (instances) share the work without waiting on each
-- other: a sweeper takes a transaction-level advisory lock per drop
-- (without waiting) before its row lock, and leaves a drop another sweeper
-- has to that sweeper. It does wait for the drop row itself, which only
-- reserves, purchases and releases hold, each for one short transaction:
-- a hot drop whose row is always locked is swept in its turn, not skipped.
CREATE FUNCTION dropkit_expire_due(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint
)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_now  timestamptz := clock_timestamp();
    v_drop uuid;
    v_take bigint;
    v_ids  uuid[];
BEGIN
    FOR v_drop, v_take IN
        -- Drops with active holds (the counter says which, no hold is
        -- read for the others), each with up to p_limit of its earliest
        -- due holds; ranked so that every drop's first comes before any
        -- drop's second.
        WITH due AS (
            SELECT d.id AS drop_id, h.expires_at,
                   row_number() OVER (PARTITION BY d.id ORDER BY h.expires_at) AS rank
              FROM dropkit_drops d
              CROSS JOIN LATERAL (
                  SELECT r.expires_at FROM dropkit_reservations r
                   WHERE r.drop_id = d.id AND r.status = 'active'
                     AND r.created_at < r.expires_at AND r.expires_at <= v_now
                   ORDER BY r.expires_at
                   LIMIT p_limit) h
             WHERE d.reserved > 0),
        pick AS (SELECT due.drop_id FROM due ORDER BY due.rank, due.expires_at LIMIT p_limit)
        SELECT pick.drop_id, count(*) FROM pick GROUP BY pick.drop_id ORDER BY pick.drop_id
    LOOP
        -- Another sweeper is on this drop: it is being swept; go on.
        CONTINUE WHEN NOT pg_try_advisory_xact_lock(hashtext('dropkit_expire_due'),
                                                    hashtext(v_drop::text));
        PERFORM 1 FROM dropkit_drops WHERE id = v_drop FOR NO KEY UPDATE;
        WITH x AS (
            UPDATE dropkit_reservations r SET status = 'expired'
             WHERE r.id IN (SELECT o.id FROM dropkit_reservations o
                             WHERE o.drop_id = v_drop AND o.status = 'active'
                               AND o.created_at < o.expires_at AND o.expires_at <= v_now
                             ORDER BY o.expires_at
                             LIMIT v_take)
            RETURNING r.id)
        SELECT coalesce(array_agg(x.id), '{}') INTO v_ids FROM x;
        CONTINUE WHEN cardinality(v_ids) = 0;
        UPDATE dropkit_drops
           SET reserved = reserved - cardinality(v_ids), version = version + 1
         WHERE id = v_drop
        RETURNING id, total_stock, reserved, sold, version
             INTO o_drop, o_total, o_reserved, o_sold, o_version;
        o_expired := v_ids;
        RETURN NEXT;
    END LOOP;
END;
$$;
