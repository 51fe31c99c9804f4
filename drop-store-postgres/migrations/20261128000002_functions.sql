-- The store's write paths, each one statement (one round trip, one short
-- transaction) so the drop row is locked for as little time as possible.
--
-- Lock order, everywhere: the drop row first (FOR NO KEY UPDATE, which does
-- not block foreign-key checks), then hold rows. The sweeper takes drop rows
-- in id order. So no two of these can deadlock.
--
-- Time is clock_timestamp() read after the drop lock is granted: the
-- database's clock at the moment the decision is made.

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
LANGUAGE plpgsql AS $$
DECLARE
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_reclaim  uuid[];
    v_reserved integer;
    v_free     integer;
    v_need     integer;
    v_granted  integer;
    v_id       uuid;
    v_created  timestamptz;
    v_expires  timestamptz;
    v_had      boolean;
BEGIN
    IF cardinality(p_users) IS DISTINCT FROM cardinality(p_ids) THEN
        RAISE EXCEPTION 'dropkit_reserve: % users but % ids', cardinality(p_users), cardinality(p_ids);
    END IF;

    IF cardinality(p_users) = 1 THEN
        -- One caller, the common case: write the hold first, then take the
        -- drop row with the very UPDATE that counts it, so the hot row is
        -- locked only for that UPDATE and the commit (as long as a bare
        -- counter update). The hold row is invisible to others until then;
        -- a drop's name, hold and window never change, so they can be read
        -- unlocked. Anything unusual (an existing hold, no free unit, the
        -- window) goes the locked way below.
        SELECT * INTO d FROM dropkit_drops WHERE id = p_drop;
        v_now := clock_timestamp();
        -- (A drop that looks sold out skips the optimistic write: a storm
        -- of refused callers must not write and delete a hold each.)
        IF FOUND
           AND d.reserved + d.sold < d.total_stock
           AND (d.starts_at IS NULL OR v_now >= d.starts_at)
           AND (d.ends_at IS NULL OR v_now < d.ends_at) THEN
            v_expires := v_now + d.hold_micros * interval '1 microsecond';
            INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
            VALUES (p_ids[1], p_drop, p_users[1], 'active', v_now, v_expires)
            ON CONFLICT (username, drop_id) WHERE status = 'active' DO NOTHING;
            IF FOUND THEN
                UPDATE dropkit_drops
                   SET reserved = reserved + 1, version = version + 1
                 WHERE id = p_drop AND reserved + sold < total_stock
                RETURNING total_stock, reserved, sold, version
                     INTO o_total, o_reserved, o_sold, o_version;
                IF FOUND THEN
                    o_results := ARRAY['created'];
                    o_hold_ids := ARRAY[p_ids[1]];
                    o_created_at := ARRAY[v_now];
                    o_expires_at := ARRAY[v_expires];
                    o_expired_ids := '{}';
                    o_outcome := 'ok';
                    RETURN NEXT;
                    RETURN;
                END IF;
                -- No free unit as counted: take the hold back and decide
                -- under the lock (overdue holds may be reclaimed).
                DELETE FROM dropkit_reservations WHERE id = p_ids[1];
            END IF;
        END IF;
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

    IF cardinality(p_users) = 1 THEN
        -- One caller (no group commit, or a lone call): the same rules in
        -- the fewest statements, since this runs under the drop's lock.
        SELECT r.id, r.created_at, r.expires_at INTO v_id, v_created, v_expires
          FROM dropkit_reservations r
         WHERE r.username = p_users[1] AND r.drop_id = p_drop AND r.status = 'active';
        v_had := FOUND;
        IF v_had AND v_expires > v_now THEN
            o_results := ARRAY['existing'];
            o_hold_ids := ARRAY[v_id];
            o_created_at := ARRAY[v_created];
            o_expires_at := ARRAY[v_expires];
            o_expired_ids := '{}';
            o_outcome := 'ok';
            RETURN NEXT;
            RETURN;
        END IF;
        o_expired_ids := '{}';
        v_reserved := d.reserved;
        IF v_had THEN
            -- The caller's own hold is overdue: it ends now.
            UPDATE dropkit_reservations SET status = 'expired' WHERE id = v_id;
            o_expired_ids := ARRAY[v_id];
            v_reserved := v_reserved - 1;
        END IF;
        v_free := d.total_stock - v_reserved - d.sold;
        IF v_free < 1 THEN
            WITH x AS (
                UPDATE dropkit_reservations r SET status = 'expired'
                 WHERE r.id IN (SELECT o.id FROM dropkit_reservations o
                                 WHERE o.drop_id = p_drop AND o.status = 'active' AND o.expires_at <= v_now
                                 ORDER BY o.expires_at
                                 LIMIT 1
                                 FOR UPDATE)
                RETURNING r.id)
            SELECT coalesce(array_agg(x.id), '{}') INTO v_reclaim FROM x;
            o_expired_ids := o_expired_ids || v_reclaim;
            v_reserved := v_reserved - cardinality(v_reclaim);
            v_free := v_free + cardinality(v_reclaim);
        END IF;
        IF v_free < 1 THEN
            v_granted := 0;
            o_results := ARRAY['out_of_stock'];
            o_hold_ids := ARRAY[NULL::uuid];
            o_created_at := ARRAY[NULL::timestamptz];
            o_expires_at := ARRAY[NULL::timestamptz];
        ELSE
            v_granted := 1;
            v_expires := v_now + d.hold_micros * interval '1 microsecond';
            INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
            VALUES (p_ids[1], p_drop, p_users[1], 'active', v_now, v_expires);
            o_results := ARRAY['created'];
            o_hold_ids := ARRAY[p_ids[1]];
            o_created_at := ARRAY[v_now];
            o_expires_at := ARRAY[v_expires];
        END IF;
        IF v_granted > 0 OR cardinality(o_expired_ids) > 0 THEN
            UPDATE dropkit_drops
               SET reserved = v_reserved + v_granted, version = version + 1
             WHERE id = p_drop
            RETURNING reserved, version INTO o_reserved, o_version;
        END IF;
        o_outcome := 'ok';
        RETURN NEXT;
        RETURN;
    END IF;

    -- A caller whose own hold is overdue may hold again: that hold ends now.
    WITH x AS (
        UPDATE dropkit_reservations r SET status = 'expired'
         WHERE r.drop_id = p_drop AND r.status = 'active'
           AND r.username = ANY (p_users) AND r.expires_at <= v_now
        RETURNING r.id)
    SELECT coalesce(array_agg(x.id), '{}') INTO o_expired_ids FROM x;
    v_reserved := d.reserved - cardinality(o_expired_ids);
    v_free := d.total_stock - v_reserved - d.sold;

    -- p_users are distinct and each has at most one active hold here.
    SELECT cardinality(p_users) - count(*) INTO v_need
      FROM dropkit_reservations r
     WHERE r.username = ANY (p_users) AND r.drop_id = p_drop AND r.status = 'active';

    -- Lazy reclaim: only when short, only as many as needed.
    IF v_need > v_free THEN
        WITH x AS (
            UPDATE dropkit_reservations r SET status = 'expired'
             WHERE r.id IN (SELECT o.id FROM dropkit_reservations o
                             WHERE o.drop_id = p_drop AND o.status = 'active' AND o.expires_at <= v_now
                             ORDER BY o.expires_at
                             LIMIT v_need - v_free
                             FOR UPDATE)
            RETURNING r.id)
        SELECT coalesce(array_agg(x.id), '{}') INTO v_reclaim FROM x;
        o_expired_ids := o_expired_ids || v_reclaim;
        v_reserved := v_reserved - cardinality(v_reclaim);
        v_free := v_free + cardinality(v_reclaim);
    END IF;
    v_granted := least(v_need, v_free);

    WITH req AS (
        SELECT t.name, t.rid, t.i
          FROM unnest(p_users, p_ids) WITH ORDINALITY AS t(name, rid, i)),
    ex AS (
        SELECT r.username, r.id, r.created_at, r.expires_at
          FROM dropkit_reservations r
         WHERE r.drop_id = p_drop AND r.status = 'active' AND r.username = ANY (p_users)),
    cand AS (
        SELECT req.i, req.rid, req.name, row_number() OVER (ORDER BY req.i) AS rn
          FROM req
         WHERE NOT EXISTS (SELECT 1 FROM ex WHERE ex.username = req.name)),
    ins AS (
        INSERT INTO dropkit_reservations (id, drop_id, username, status, created_at, expires_at)
        SELECT cand.rid, p_drop, cand.name, 'active', v_now,
               v_now + d.hold_micros * interval '1 microsecond'
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
                          WHEN cand.rn <= v_free THEN v_now + d.hold_micros * interval '1 microsecond' END
                     ORDER BY req.i)
      INTO o_results, o_hold_ids, o_created_at, o_expires_at
      FROM req
      LEFT JOIN ex ON ex.username = req.name
      LEFT JOIN cand ON cand.i = req.i;

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
CREATE OR REPLACE FUNCTION dropkit_purchase(p_drop uuid, p_res uuid[], p_users text[], p_pids uuid[])
RETURNS TABLE (
    o_outcome      text,          -- ok | not_found | ended
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
LANGUAGE plpgsql AS $$
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
    IF d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN
        o_outcome := 'ended';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT coalesce(array_agg(t.username ORDER BY t.created_at DESC, t.seq DESC), '{}'),
           coalesce(array_agg(t.created_at ORDER BY t.created_at DESC, t.seq DESC), '{}')
      INTO o_top_users, o_top_times
      FROM (SELECT p.username, p.created_at, p.seq FROM dropkit_purchases p
             WHERE p.drop_id = p_drop
             ORDER BY p.created_at DESC, p.seq DESC LIMIT 3) t;

    PERFORM 1 FROM dropkit_reservations WHERE id = ANY (p_res) ORDER BY id FOR UPDATE;
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

-- The owner gives a hold back.
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
LANGUAGE plpgsql AS $$
DECLARE
    r     dropkit_reservations%ROWTYPE;
    v_now timestamptz;
BEGIN
    -- A hold never changes drop, so its drop can be read before locking.
    SELECT drop_id INTO o_drop FROM dropkit_reservations WHERE id = p_res;
    IF NOT FOUND THEN
        o_outcome := 'not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT total_stock, reserved, sold, version INTO o_total, o_reserved, o_sold, o_version
      FROM dropkit_drops WHERE id = o_drop FOR NO KEY UPDATE;
    SELECT * INTO r FROM dropkit_reservations WHERE id = p_res FOR UPDATE;
    v_now := clock_timestamp();
    o_created_at := r.created_at;
    o_expires_at := r.expires_at;
    IF r.username <> p_user THEN
        o_outcome := 'not_owner';
    ELSIF r.status = 'active' AND r.expires_at <= v_now THEN
        o_outcome := 'expired';
    ELSIF r.status = 'active' THEN
        UPDATE dropkit_reservations SET status = 'released' WHERE id = p_res;
        UPDATE dropkit_drops SET reserved = reserved - 1, version = version + 1
         WHERE id = o_drop
        RETURNING reserved, version INTO o_reserved, o_version;
        o_outcome := 'released';
    ELSIF r.status = 'purchased' THEN
        o_outcome := 'already_purchased';
    ELSIF r.status = 'released' THEN
        o_outcome := 'already_released';
    ELSE
        o_outcome := 'expired';
    END IF;
    RETURN NEXT;
END;
$$;

-- Expire up to p_limit due holds, one result row per drop touched. Holds
-- are taken with SKIP LOCKED and drops in id order, so any number of
-- sweepers may run at once and each hold expires exactly once.
CREATE OR REPLACE FUNCTION dropkit_expire_due(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint
)
LANGUAGE plpgsql AS $$
DECLARE
    v_now  timestamptz := clock_timestamp();
    v_left integer := p_limit;
    v_drop uuid;
    v_ids  uuid[];
BEGIN
    FOR v_drop IN
        SELECT DISTINCT due.drop_id
          FROM (SELECT r.drop_id FROM dropkit_reservations r
                 WHERE r.status = 'active' AND r.expires_at <= v_now
                 ORDER BY r.expires_at LIMIT p_limit) due
         ORDER BY due.drop_id
    LOOP
        EXIT WHEN v_left <= 0;
        PERFORM 1 FROM dropkit_drops WHERE id = v_drop FOR NO KEY UPDATE;
        WITH due AS (
            SELECT r.id FROM dropkit_reservations r
             WHERE r.drop_id = v_drop AND r.status = 'active' AND r.expires_at <= v_now
             ORDER BY r.expires_at
             LIMIT v_left
             FOR UPDATE SKIP LOCKED),
        x AS (
            UPDATE dropkit_reservations r SET status = 'expired'
              FROM due WHERE r.id = due.id
            RETURNING r.id)
        SELECT coalesce(array_agg(x.id), '{}') INTO v_ids FROM x;
        CONTINUE WHEN cardinality(v_ids) = 0;
        UPDATE dropkit_drops
           SET reserved = reserved - cardinality(v_ids), version = version + 1
         WHERE id = v_drop
        RETURNING id, total_stock, reserved, sold, version
             INTO o_drop, o_total, o_reserved, o_sold, o_version;
        o_expired := v_ids;
        v_left := v_left - cardinality(v_ids);
        RETURN NEXT;
    END LOOP;
END;
$$;
