-- Buyers are keyed by an opaque id, shown by a display name.
--
-- Holds and purchases were keyed by the username the caller claimed. Now
-- the store keys them by `buyer_id` (what the embedding app knows its
-- buyer by: a user id, a UUID, an email; 1–128 bytes) and keeps beside it
-- the `display_name` the public feeds show, which need not be unique.
-- Existing rows keep their meaning: the username becomes both.
--
-- `username` is renamed, not copied, and an index follows a renamed
-- column: `dropkit_reservations_one_active` keys (buyer_id, drop_id) where
-- status = 'active' from here on, "one active hold per (drop, buyer)",
-- with the buyer still leading (no plan can use it to walk all of a drop's
-- holds), and no index has to be built again over a full table. Its name
-- stays: the store maps a refusal by that name to a broken invariant.
--
-- The functions are dropped and created again (their parameters and
-- answers change): an instance of an earlier version calling them after
-- this migration fails its writes (`UNAVAILABLE` after its retries);
-- upgrade every instance together. Only dropkit_expire_due had a `SET`
-- clause (plan_cache_mode = force_custom_plan); it names no buyer and is
-- left as it is. The functions created here have none, as before.

ALTER TABLE dropkit_reservations RENAME COLUMN username TO buyer_id;
ALTER TABLE dropkit_reservations ADD COLUMN display_name text;
UPDATE dropkit_reservations SET display_name = buyer_id;
ALTER TABLE dropkit_reservations
    ALTER COLUMN display_name SET NOT NULL,
    ADD CONSTRAINT dropkit_reservations_buyer_id
        CHECK (octet_length(buyer_id) BETWEEN 1 AND 128);

ALTER TABLE dropkit_purchases RENAME COLUMN username TO buyer_id;
ALTER TABLE dropkit_purchases ADD COLUMN display_name text;
UPDATE dropkit_purchases SET display_name = buyer_id;
ALTER TABLE dropkit_purchases
    ALTER COLUMN display_name SET NOT NULL,
    ADD CONSTRAINT dropkit_purchases_buyer_id
        CHECK (octet_length(buyer_id) BETWEEN 1 AND 128);

DROP FUNCTION dropkit_reserve(uuid, text[], uuid[]);
DROP FUNCTION dropkit_purchase(uuid, uuid[], text[], uuid[]);
DROP FUNCTION dropkit_release(uuid, text);

-- A reserve's answer carries the display name of the hold it names: an
-- existing hold keeps the name it was taken under.
DROP TYPE dropkit_hold_answer;
CREATE TYPE dropkit_hold_answer AS (
    outcome      dropkit_outcome,
    hold_id      uuid,
    created_at   timestamptz,
    expires_at   timestamptz,
    display_name text
);

-- The latest buyers are public: they show names, never buyer ids.
ALTER TYPE dropkit_buyer RENAME ATTRIBUTE username TO display_name;

-- Reserve one unit for each of p_buyers (distinct buyer ids, in arrival
-- order), shown as p_names, with p_ids as the ids of the holds it may
-- create. First come, first served; a buyer with an active hold gets it
-- back unchanged (with the name it was taken under); a buyer whose own hold is
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
CREATE FUNCTION dropkit_reserve(p_drop uuid, p_buyers text[], p_names text[], p_ids uuid[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,       -- ok | drop_not_found | not_started | ended
    o_total    integer,               -- the drop's counters after the call
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_answers  dropkit_hold_answer[], -- when ok: one per buyer, in order
    o_expired  uuid[]                 -- holds this call ended (overdue ones)
)
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_buyers), 0);
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_expires  timestamptz;
    v_counted  boolean := false;  -- step 1 counted n units in the row
    v_inserted integer := 0;      -- holds step 1 created
    v_hold     uuid[];            -- per buyer: their active hold, if any
    v_made     timestamptz[];
    v_until    timestamptz[];
    v_named    text[];            -- the display name it was taken under
    v_reclaim  uuid[];
    v_reserved integer;           -- active holds, as this call goes on
    v_free     integer;
    v_need     integer;
    v_granted  integer;
    v_version  bigint;
BEGIN
    IF n IS DISTINCT FROM coalesce(cardinality(p_ids), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_names), 0) THEN
        RAISE EXCEPTION 'dropkit_reserve: % buyers but % names and % ids',
            n, cardinality(p_names), cardinality(p_ids);
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
            INSERT INTO dropkit_reservations
                   (id, drop_id, buyer_id, display_name, status, created_at, expires_at)
            SELECT t.rid, p_drop, t.buyer, t.name, 'active', v_now, v_expires
              FROM unnest(p_buyers, p_names, p_ids) AS t(buyer, name, rid)
            ON CONFLICT (buyer_id, drop_id) WHERE status = 'active' DO NOTHING;
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
                    o_answers := ARRAY[ROW('created', p_ids[1], v_now, v_expires, p_names[1])::dropkit_hold_answer];
                ELSE
                    SELECT array_agg(ROW('created', t.rid, v_now, v_expires, t.name)::dropkit_hold_answer
                                     ORDER BY t.i)
                      INTO o_answers
                      FROM unnest(p_ids, p_names) WITH ORDINALITY AS t(rid, name, i);
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

    -- Each caller's active hold, found one buyer at a time (a LATERAL
    -- lookup with LIMIT 1 per buyer), never with `buyer_id = ANY (p_buyers)`:
    -- for a batch of a few hundred buyers the planner may price one scan of
    -- the table below that many index lookups, and on a table of tens of
    -- thousands of holds it did (tests/cold_start.rs). Per buyer, the
    -- one-active index is the only sensible plan whatever the statistics.
    SELECT array_agg(h.id ORDER BY u.i), array_agg(h.created_at ORDER BY u.i),
           array_agg(h.expires_at ORDER BY u.i), array_agg(h.display_name ORDER BY u.i)
      INTO v_hold, v_made, v_until, v_named
      FROM unnest(p_buyers) WITH ORDINALITY AS u(buyer, i)
      LEFT JOIN LATERAL (
            SELECT r.id, r.created_at, r.expires_at, r.display_name FROM dropkit_reservations r
             WHERE r.buyer_id = u.buyer AND r.drop_id = p_drop AND r.status = 'active'
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
        SELECT t.buyer, t.name, t.rid, t.held, t.made, t.until, t.named, t.i,
               (t.held IS NULL OR t.until <= v_now) AS needs
          FROM unnest(p_buyers, p_names, p_ids, v_hold, v_made, v_until, v_named)
               WITH ORDINALITY AS t(buyer, name, rid, held, made, until, named, i)),
    ranked AS (
        SELECT req.*, CASE WHEN req.needs
                           THEN count(*) FILTER (WHERE req.needs) OVER (ORDER BY req.i) END AS rank
          FROM req),
    ins AS (
        INSERT INTO dropkit_reservations
               (id, drop_id, buyer_id, display_name, status, created_at, expires_at)
        SELECT ranked.rid, p_drop, ranked.buyer, ranked.name, 'active', v_now, v_expires
          FROM ranked
         WHERE ranked.rank <= v_granted
         ORDER BY ranked.i)
    SELECT array_agg(CASE
               WHEN ranked.rank <= v_granted
                   THEN ROW('created', ranked.rid, v_now, v_expires, ranked.name)::dropkit_hold_answer
               WHEN ranked.needs
                   THEN ROW('out_of_stock', NULL, NULL, NULL, NULL)::dropkit_hold_answer
               -- step 1 made it
               WHEN ranked.held = ranked.rid
                   THEN ROW('created', ranked.held, ranked.made, ranked.until, ranked.named)::dropkit_hold_answer
               ELSE ROW('existing', ranked.held, ranked.made, ranked.until, ranked.named)::dropkit_hold_answer
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

-- Purchase holds of one drop: p_res[i] by buyer p_buyers[i], as purchase
-- p_pids[i].
-- Each request gets its own answer; one refusal never fails the others.
-- A hold taken before the drop's endsAt may be bought until its own
-- expiresAt, as in every store: the end of the sale closes reserves only.
CREATE FUNCTION dropkit_purchase(p_drop uuid, p_res uuid[], p_buyers text[], p_pids uuid[])
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
    IF cardinality(p_res) IS DISTINCT FROM cardinality(p_buyers)
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
    SELECT coalesce(array_agg(ROW(t.display_name, t.created_at)::dropkit_buyer
                              ORDER BY t.created_at DESC, t.seq DESC), '{}')
      INTO o_latest
      FROM (SELECT p.display_name, p.created_at, p.seq FROM dropkit_purchases p
             WHERE p.drop_id = p_drop
             ORDER BY p.created_at DESC, p.seq DESC LIMIT 3) t;

    -- No hold locks: under the drop's lock nobody else writes its holds.
    FOR i IN 1 .. coalesce(cardinality(p_res), 0) LOOP
        SELECT * INTO r FROM dropkit_reservations WHERE id = p_res[i];
        v_at := NULL;
        IF NOT FOUND OR r.drop_id <> p_drop THEN
            v_says := 'not_found';
        ELSIF r.buyer_id <> p_buyers[i] THEN
            v_says := 'not_owner';
        ELSIF r.status = 'active' AND r.expires_at <= v_now THEN
            v_says := 'expired';
        ELSIF r.status = 'active' THEN
            UPDATE dropkit_reservations SET status = 'purchased' WHERE id = r.id;
            INSERT INTO dropkit_purchases
                   (id, reservation_id, drop_id, buyer_id, display_name, amount_minor, created_at)
            VALUES (p_pids[i], r.id, p_drop, r.buyer_id, r.display_name, d.price_minor, v_now);
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
CREATE FUNCTION dropkit_release(p_res uuid, p_buyer text)
RETURNS TABLE (
    o_outcome    dropkit_outcome, -- released | not_found | not_owner | expired
                                  --   | already_purchased | already_released
    o_drop       uuid,            -- the hold's, unless not_found
    o_display_name text,          -- the name the hold was taken under
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
    o_display_name := r.display_name;
    o_created_at := r.created_at;
    o_expires_at := r.expires_at;
    IF r.buyer_id <> p_buyer THEN
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
