-- The write paths again, with one lock order and fair, set-based expiry.
--
-- Lock order, on every path without exception: the drop row first
-- (FOR NO KEY UPDATE), then that drop's hold rows. Every transaction that
-- writes a hold of a drop holds that drop's row lock first, so once a
-- function has the drop row, no hold of that drop is being written by
-- anyone else: the hold rows need no locks of their own, and no insert can
-- wait on another transaction's uncommitted hold. (The single-caller reserve
-- used to insert its hold before locking the row; a batch holding the row
-- could then wait on that hold's unique key while the lone call waited on
-- the row: a deadlock.) The sweeper is the only path that locks several
-- drop rows; it never waits on a drop another sweeper has (see
-- dropkit_expire_due), and reserves, purchases and releases lock one drop
-- each, so no cycle can form.
--
-- Time is clock_timestamp() read after the drop lock is granted.
--
-- Every function here sets plan_cache_mode = force_custom_plan: their
-- statements take their plans from the values of the call, never from a
-- generic plan made when the table held something else.

-- Due holds of one drop, earliest first. Fairness needs it: the sweeper
-- takes each drop's earliest due holds without reading past another drop's
-- backlog, and lazy reclaim reads only its own drop.
--
-- The predicate carries "created_at < expires_at", always true (a CHECK on
-- the table), which only the sweeper and lazy reclaim state. A partial
-- index is used only by queries that imply its predicate, so the per-user
-- lookups (which name drop_id but not that clause) can never pick this
-- index over "dropkit_reservations_one_active", whatever the statistics say.
CREATE INDEX IF NOT EXISTS dropkit_reservations_due_by_drop
    ON dropkit_reservations (drop_id, expires_at)
    WHERE status = 'active' AND created_at < expires_at;

-- Reserve one unit for each of p_users (distinct, in arrival order), with
-- p_ids as the ids of the holds it may create. Grants first come, first
-- served; a user with an active hold gets it back unchanged; when short,
-- overdue holds of the drop are reclaimed first.
CREATE OR REPLACE FUNCTION dropkit_reserve(p_drop uuid, p_users text[], p_ids uuid[])
RETURNS TABLE (
    o_outcome      text,          -- ok | not_found | not_started | ended
    o_total        integer,
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_results      text[],        -- per user: created | existing | out_of_stock
    o_hold_ids     uuid[],
    o_created_at   timestamptz[],
    o_expires_at   timestamptz[],
    o_expired_ids  uuid[]         -- overdue holds this call expired
)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_expires  timestamptz;
    v_reclaim  uuid[];
    v_reserved integer;
    v_free     integer;
    v_need     integer;
    v_granted  integer := 0;
BEGIN
    IF cardinality(p_users) IS DISTINCT FROM cardinality(p_ids) THEN
        RAISE EXCEPTION 'dropkit_reserve: % users but % ids', cardinality(p_users), cardinality(p_ids);
    END IF;

    -- One caller and a free unit, the common case, in two statements. The
    -- UPDATE that counts the unit is also what takes the drop row lock (a
    -- separate lock first would cost the hot row one more write per call);
    -- then the hold is inserted, the unique index saying in the same step
    -- whether the caller already has one. The insert cannot wait on anyone:
    -- see the lock order above.
    IF cardinality(p_users) = 1 THEN
        UPDATE dropkit_drops
           SET reserved = reserved + 1, version = version + 1
         WHERE id = p_drop AND reserved + sold < total_stock
           AND (starts_at IS NULL OR starts_at <= clock_timestamp())
           AND (ends_at IS NULL OR ends_at > clock_timestamp())
        RETURNING * INTO d;
        IF FOUND THEN
            v_now := clock_timestamp();
            v_expires := v_now + d.hold_micros * interval '1 microsecond';
            IF d.ends_at IS NULL OR v_now < d.ends_at THEN
                INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
                VALUES (p_ids[1], p_drop, p_users[1], 'active', v_now, v_expires)
                ON CONFLICT (username, drop_id) WHERE status = 'active' DO NOTHING;
                IF FOUND THEN
                    o_total := d.total_stock;
                    o_reserved := d.reserved;
                    o_sold := d.sold;
                    o_version := d.version;
                    o_results := ARRAY['created'];
                    o_hold_ids := ARRAY[p_ids[1]];
                    o_created_at := ARRAY[v_now];
                    o_expires_at := ARRAY[v_expires];
                    o_expired_ids := '{}';
                    o_outcome := 'ok';
                    RETURN NEXT;
                    RETURN;
                END IF;
            END IF;
            -- The caller holds already (or the sale just closed): give the
            -- unit back, unseen by anyone, and decide below.
            UPDATE dropkit_drops SET reserved = reserved - 1, version = version - 1
             WHERE id = p_drop;
        END IF;
    END IF;

    -- Every other path: lock the drop row (already ours if the fast path
    -- tried), then decide by the time read under it.
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    o_total := d.total_stock;
    o_reserved := d.reserved;
    o_sold := d.sold;
    o_version := d.version;
    IF d.starts_at IS NOT NULL AND v_now < d.starts_at THEN
        o_outcome := 'not_started';
        RETURN NEXT;
        RETURN;
    END IF;
    IF d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN
        o_outcome := 'ended';
        RETURN NEXT;
        RETURN;
    END IF;
    v_expires := v_now + d.hold_micros * interval '1 microsecond';
    v_reserved := d.reserved;
    o_expired_ids := '{}';

    -- Otherwise (a batch, an existing hold, no free unit as counted): a
    -- caller whose own hold is overdue may hold again; that hold ends now.
    --
    -- Callers' own holds are found one buyer at a time (a LATERAL lookup
    -- with LIMIT 1 per name), never with `username = ANY (p_users)`: for a
    -- batch of a few hundred names the planner may price one scan of the
    -- table below that many index lookups, and on a hold table of tens of
    -- thousands of rows it did (tests/cold_start.rs). Per name, the
    -- one-active index is the only sensible plan whatever the statistics.
    WITH mine AS (
        SELECT h.id
          FROM unnest(p_users) AS u(name)
         CROSS JOIN LATERAL (
               SELECT r.id, r.expires_at FROM dropkit_reservations r
                WHERE r.username = u.name AND r.drop_id = p_drop AND r.status = 'active'
                LIMIT 1) h
         WHERE h.expires_at <= v_now),
    x AS (
        UPDATE dropkit_reservations r SET status = 'expired'
          FROM mine WHERE r.id = mine.id
        RETURNING r.id)
    SELECT coalesce(array_agg(x.id), '{}') INTO o_expired_ids FROM x;
    v_reserved := d.reserved - cardinality(o_expired_ids);
    v_free := d.total_stock - v_reserved - d.sold;

    -- p_users are distinct and each has at most one active hold here.
    SELECT cardinality(p_users) - count(*) INTO v_need
      FROM unnest(p_users) AS u(name)
     CROSS JOIN LATERAL (
           SELECT 1 FROM dropkit_reservations r
            WHERE r.username = u.name AND r.drop_id = p_drop AND r.status = 'active'
            LIMIT 1) h;

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
        o_expired_ids := o_expired_ids || v_reclaim;
        v_reserved := v_reserved - cardinality(v_reclaim);
        v_free := v_free + cardinality(v_reclaim);
    END IF;
    v_granted := greatest(least(v_need, v_free), 0);

    WITH req AS (
        SELECT t.name, t.rid, t.i
          FROM unnest(p_users, p_ids) WITH ORDINALITY AS t(name, rid, i)),
    ex AS (
        SELECT h.username, h.id, h.created_at, h.expires_at
          FROM unnest(p_users) AS u(name)
         CROSS JOIN LATERAL (
               SELECT r.username, r.id, r.created_at, r.expires_at FROM dropkit_reservations r
                WHERE r.username = u.name AND r.drop_id = p_drop AND r.status = 'active'
                LIMIT 1) h),
    cand AS (
        SELECT req.i, req.rid, req.name, row_number() OVER (ORDER BY req.i) AS rn
          FROM req
         WHERE NOT EXISTS (SELECT 1 FROM ex WHERE ex.username = req.name)),
    ins AS (
        INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
        SELECT cand.rid, p_drop, cand.name, 'active', v_now, v_expires
          FROM cand
         WHERE cand.rn <= v_free
         ORDER BY cand.rn
        RETURNING id)
    SELECT array_agg(CASE WHEN ex.id IS NOT NULL THEN 'existing'
                          WHEN cand.rn <= v_free THEN 'created'
                          ELSE 'out_of_stock' END ORDER BY req.i),
           array_agg(CASE WHEN ex.id IS NOT NULL THEN ex.id
                          WHEN cand.rn <= v_free THEN req.rid END ORDER BY req.i),
           array_agg(CASE WHEN ex.id IS NOT NULL THEN ex.created_at
                          WHEN cand.rn <= v_free THEN v_now END ORDER BY req.i),
           array_agg(CASE WHEN ex.id IS NOT NULL THEN ex.expires_at
                          WHEN cand.rn <= v_free THEN v_expires END ORDER BY req.i)
      INTO o_results, o_hold_ids, o_created_at, o_expires_at
      FROM req
      LEFT JOIN ex ON ex.username = req.name
      LEFT JOIN cand ON cand.i = req.i;

    -- The counters move once, for whatever this call granted and expired.
    IF v_granted > 0 OR cardinality(o_expired_ids) > 0 THEN
        UPDATE dropkit_drops
           SET reserved = v_reserved + v_granted, version = version + 1
         WHERE id = p_drop
        RETURNING reserved, version INTO o_reserved, o_version;
    END IF;
    o_outcome := 'ok';
    RETURN NEXT;
END;
$$;

-- Purchase holds of one drop: p_res[i] by p_users[i], as purchase p_pids[i].
-- Each request gets its own result; one refusal never fails the others.
-- A hold taken before the drop's endsAt may be bought until its own
-- expiresAt, as in every store: the end of the sale closes reserves only.
CREATE OR REPLACE FUNCTION dropkit_purchase(p_drop uuid, p_res uuid[], p_users text[], p_pids uuid[])
RETURNS TABLE (
    o_outcome      text,          -- ok | not_found
    o_total        integer,
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_price        bigint,
    o_results      text[],        -- per request: purchased | repeated | not_found | not_owner
                                  --   | expired | already_purchased | already_released
    o_purchased_at timestamptz[],
    o_top_users    text[],        -- the drop's latest buyers before this call, newest first
    o_top_times    timestamptz[]
)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    d        dropkit_drops%ROWTYPE;
    r        dropkit_reservations%ROWTYPE;
    v_now    timestamptz;
    v_bought integer := 0;
    v_prior  uuid;
    v_at     timestamptz;
    i        integer;
BEGIN
    IF cardinality(p_res) IS DISTINCT FROM cardinality(p_users)
       OR cardinality(p_res) IS DISTINCT FROM cardinality(p_pids) THEN
        RAISE EXCEPTION 'dropkit_purchase: arrays of different lengths';
    END IF;
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    o_total := d.total_stock;
    o_reserved := d.reserved;
    o_sold := d.sold;
    o_version := d.version;
    o_price := d.price_minor;
    SELECT coalesce(array_agg(t.username ORDER BY t.created_at DESC, t.seq DESC), '{}'),
           coalesce(array_agg(t.created_at ORDER BY t.created_at DESC, t.seq DESC), '{}')
      INTO o_top_users, o_top_times
      FROM (SELECT p.username, p.created_at, p.seq FROM dropkit_purchases p
             WHERE p.drop_id = p_drop
             ORDER BY p.created_at DESC, p.seq DESC LIMIT 3) t;

    -- No hold locks: under the drop's lock nobody else writes its holds.
    o_results := '{}';
    o_purchased_at := '{}';
    FOR i IN 1 .. coalesce(cardinality(p_res), 0) LOOP
        SELECT * INTO r FROM dropkit_reservations WHERE id = p_res[i];
        v_at := NULL;
        IF NOT FOUND OR r.drop_id <> p_drop THEN
            o_results := o_results || 'not_found'::text;
        ELSIF r.username <> p_users[i] THEN
            o_results := o_results || 'not_owner'::text;
        ELSIF r.status = 'active' AND r.expires_at <= v_now THEN
            o_results := o_results || 'expired'::text;
        ELSIF r.status = 'active' THEN
            UPDATE dropkit_reservations SET status = 'purchased' WHERE id = r.id;
            INSERT INTO dropkit_purchases (id, reservation_id, drop_id, username, amount_minor, created_at)
            VALUES (p_pids[i], r.id, p_drop, r.username, d.price_minor, v_now);
            v_bought := v_bought + 1;
            v_at := v_now;
            o_results := o_results || 'purchased'::text;
        ELSIF r.status = 'purchased' THEN
            -- A retry of a call whose answer was lost: same purchase id.
            SELECT p.id, p.created_at INTO v_prior, v_at FROM dropkit_purchases p WHERE p.reservation_id = r.id;
            IF v_prior = p_pids[i] THEN
                o_results := o_results || 'repeated'::text;
            ELSE
                v_at := NULL;
                o_results := o_results || 'already_purchased'::text;
            END IF;
        ELSIF r.status = 'released' THEN
            o_results := o_results || 'already_released'::text;
        ELSE
            o_results := o_results || 'expired'::text;
        END IF;
        o_purchased_at := o_purchased_at || v_at;
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
CREATE OR REPLACE FUNCTION dropkit_release(p_res uuid, p_user text)
RETURNS TABLE (
    o_outcome    text,   -- released | not_found | not_owner | expired | already_purchased | already_released
    o_drop       uuid,
    o_created_at timestamptz,
    o_expires_at timestamptz,
    o_total      integer,
    o_reserved   integer,
    o_sold       integer,
    o_version    bigint
)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
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
                         WHEN 'purchased' THEN 'already_purchased'
                         WHEN 'released' THEN 'already_released'
                         ELSE 'expired' END;
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
CREATE OR REPLACE FUNCTION dropkit_expire_due(p_limit integer)
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
