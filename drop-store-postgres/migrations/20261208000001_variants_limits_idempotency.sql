-- Variants, quantities, per-buyer limits, purchase records, admin state
-- and idempotency records.
--
-- Schema:
--
-- - `dropkit_variants`: one row per variant (size, colour) with its own
--   counters under the same CHECKs the drop row has, so the database
--   refuses an oversell of any one variant. The drop row keeps the sums
--   (`total_stock`, `reserved`, `sold` are now units, not holds) and stays
--   the lock every writer of the drop takes first: a variant row is only
--   ever written by a transaction that holds its drop's row.
-- - Holds carry `variant_id` and `quantity`; purchases carry `variant_id`,
--   `quantity`, `status` (completed | cancelled) and `cancelled_at`.
-- - Drops carry `max_per_buyer` (units a buyer may hold plus have bought,
--   not cancelled) and `paused`.
-- - `dropkit_idempotency`: (caller, key) → the request's fingerprint and
--   the entity the write made or changed, recorded in the transaction of
--   the write. Pruned after a day (`recorded_at` index), a few thousand
--   rows at a time, by the store's sweeps.
--
-- Existing data keeps its meaning: every drop gets one variant named
-- `Standard` holding its total and counters; every hold and purchase
-- points at it with quantity 1; every purchase is completed.
--
-- The write functions are dropped and created anew under new names or
-- with new answers: an instance of an earlier version calling them after
-- this migration fails its writes (`UNAVAILABLE` after its retries);
-- upgrade every instance together. dropkit_expire_due had
-- `SET plan_cache_mode = force_custom_plan` and keeps it; the others had
-- no SET clause and the new ones have none (tests/cold_start.rs holds
-- them to generic plans made on empty tables).

-- `max_per_buyer_high` is the highest limit the drop has had: lowering
-- the limit takes nothing back from buyers, so that is the bound their
-- units are checked against (verify_invariants).
ALTER TABLE dropkit_drops
    ADD COLUMN max_per_buyer integer NOT NULL DEFAULT 1,
    ADD COLUMN max_per_buyer_high integer NOT NULL DEFAULT 1,
    ADD COLUMN paused boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT dropkit_drops_max_per_buyer CHECK (max_per_buyer BETWEEN 1 AND 100),
    ADD CONSTRAINT dropkit_drops_max_per_buyer_high CHECK (max_per_buyer_high >= max_per_buyer);

-- No foreign key to the drop, as for holds: every writer reads the drop
-- row first, and drops are never deleted (verify_invariants checks).
CREATE TABLE dropkit_variants (
    id          uuid    PRIMARY KEY,
    drop_id     uuid    NOT NULL,
    position    integer NOT NULL,
    name        text    NOT NULL,
    total_stock integer NOT NULL,
    reserved    integer NOT NULL DEFAULT 0,
    sold        integer NOT NULL DEFAULT 0,
    CONSTRAINT dropkit_variants_total_nonneg    CHECK (total_stock >= 0),
    CONSTRAINT dropkit_variants_reserved_nonneg CHECK (reserved >= 0),
    CONSTRAINT dropkit_variants_sold_nonneg     CHECK (sold >= 0),
    CONSTRAINT dropkit_variants_no_oversell     CHECK (reserved + sold <= total_stock),
    CONSTRAINT dropkit_variants_position        UNIQUE (drop_id, position),
    CONSTRAINT dropkit_variants_name            UNIQUE (drop_id, name)
);

INSERT INTO dropkit_variants (id, drop_id, position, name, total_stock, reserved, sold)
SELECT gen_random_uuid(), d.id, 0, 'Standard', d.total_stock, d.reserved, d.sold
  FROM dropkit_drops d;

ALTER TABLE dropkit_reservations
    ADD COLUMN variant_id uuid,
    ADD COLUMN quantity integer NOT NULL DEFAULT 1,
    ADD CONSTRAINT dropkit_reservations_quantity CHECK (quantity BETWEEN 1 AND 100);
UPDATE dropkit_reservations r SET variant_id = v.id
  FROM dropkit_variants v WHERE v.drop_id = r.drop_id;
ALTER TABLE dropkit_reservations ALTER COLUMN variant_id SET NOT NULL;

ALTER TABLE dropkit_purchases
    ADD COLUMN variant_id uuid,
    ADD COLUMN quantity integer NOT NULL DEFAULT 1,
    ADD COLUMN status text NOT NULL DEFAULT 'completed',
    ADD COLUMN cancelled_at timestamptz,
    ADD CONSTRAINT dropkit_purchases_quantity CHECK (quantity BETWEEN 1 AND 100),
    ADD CONSTRAINT dropkit_purchases_status CHECK (
        (status = 'completed' AND cancelled_at IS NULL)
        OR (status = 'cancelled' AND cancelled_at IS NOT NULL));
UPDATE dropkit_purchases p SET variant_id = v.id
  FROM dropkit_variants v WHERE v.drop_id = p.drop_id;
ALTER TABLE dropkit_purchases ALTER COLUMN variant_id SET NOT NULL;

-- The per-buyer limit: units a buyer bought (not cancelled) in a drop, one
-- probe per buyer. The buyer leads, as in the one-active index, so no plan
-- can use it to walk a drop's purchases.
CREATE INDEX dropkit_purchases_buyer_units
    ON dropkit_purchases (buyer_id, drop_id) INCLUDE (quantity)
    WHERE status = 'completed';

-- A buyer's purchases, newest first, by pages.
CREATE INDEX dropkit_purchases_by_buyer ON dropkit_purchases (buyer_id, seq);

CREATE TABLE dropkit_idempotency (
    caller      text        NOT NULL,
    key         text        NOT NULL,
    fingerprint bytea       NOT NULL,
    entity_kind text        NOT NULL,
    entity_id   uuid        NOT NULL,
    created     boolean     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT dropkit_idempotency_pkey PRIMARY KEY (caller, key),
    CONSTRAINT dropkit_idempotency_kind
        CHECK (entity_kind IN ('drop', 'reservation', 'purchase')),
    CONSTRAINT dropkit_idempotency_fingerprint CHECK (octet_length(fingerprint) = 32)
);

CREATE INDEX dropkit_idempotency_age ON dropkit_idempotency (recorded_at);

-- One variant's counters, as the write functions answer them.
CREATE TYPE dropkit_variant_stock AS (
    id          uuid,
    name        text,
    total_stock integer,
    reserved    integer,
    sold        integer
);

-- New refusals. (A value added here cannot be used in this transaction;
-- the functions below only name them in bodies run later.)
ALTER TYPE dropkit_outcome ADD VALUE 'paused';
ALTER TYPE dropkit_outcome ADD VALUE 'variant_not_found';
ALTER TYPE dropkit_outcome ADD VALUE 'variant_required';
ALTER TYPE dropkit_outcome ADD VALUE 'bad_quantity';
ALTER TYPE dropkit_outcome ADD VALUE 'hold_exists';
ALTER TYPE dropkit_outcome ADD VALUE 'buyer_limit';
ALTER TYPE dropkit_outcome ADD VALUE 'key_taken';

-- One caller's reserve: the hold it names (created, existing, or the one
-- that stands in the way for hold_exists), or `taken` units for
-- buyer_limit.
CREATE TYPE dropkit_unit_answer AS (
    outcome      dropkit_outcome,
    hold_id      uuid,
    created_at   timestamptz,
    expires_at   timestamptz,
    display_name text,
    variant_id   uuid,
    quantity     integer,
    taken        integer
);

-- One request's purchase: the purchase it names (made now, or made
-- before for a repeat).
CREATE TYPE dropkit_bought_answer AS (
    outcome      dropkit_outcome,
    purchase_id  uuid,
    variant_id   uuid,
    quantity     integer,
    amount_minor bigint,
    status       text,
    created_at   timestamptz,
    cancelled_at timestamptz,
    display_name text
);

DROP FUNCTION dropkit_reserve(uuid, text[], text[], uuid[]);
DROP FUNCTION dropkit_purchase(uuid, uuid[], text[], uuid[]);
DROP FUNCTION dropkit_release(uuid, text);
DROP FUNCTION dropkit_expire_due(integer);

-- A drop's variants with their counters, in the drop's order.
CREATE FUNCTION dropkit_variants_of(p_drop uuid)
RETURNS dropkit_variant_stock[]
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(array_agg(ROW(v.id, v.name, v.total_stock, v.reserved, v.sold)::dropkit_variant_stock
                              ORDER BY v.position), '{}')
      FROM dropkit_variants v WHERE v.drop_id = p_drop
$$;

-- Reserve for each caller i: p_quantities[i] units of variant
-- p_variants[i] (NULL: the drop's only one) of p_drop for buyer
-- p_buyers[i] shown as p_names[i], as hold p_ids[i]; with an idempotency
-- key when p_callers[i] is not NULL (p_keys[i], fingerprint p_prints[i]).
-- Callers in arrival order; a buyer may appear more than once.
--
-- Under the drop's lock, per caller, in the trait's order: a key already
-- recorded (key_taken: the store answers it from the record); the request
-- (variant_not_found, variant_required, bad_quantity); the sale window
-- and pause (not_started, ended, paused); the buyer's active hold
-- (existing when it is the same variant and quantity, else hold_exists);
-- the limit (buyer_limit: units bought, not cancelled, plus the quantity
-- above max_per_buyer); the variant's stock, all or nothing, reclaiming
-- the variant's overdue holds only as needed (out_of_stock). A caller's
-- own overdue hold ends first.
--
-- The lookups are one statement for the whole batch (per buyer: its
-- active hold and its bought units, each one index probe, and the key's
-- record); the decisions are made on arrays in memory; then one INSERT
-- for the holds, one UPDATE for the variants that moved, one for the drop.
-- A lone caller without a key first tries the shortest way (see below).
-- A key another transaction records meanwhile (the same key sent to two
-- drops at once) makes that caller key_taken: it gets no hold, and the
-- batch goes on.
CREATE FUNCTION dropkit_reserve_units(
    p_drop uuid, p_buyers text[], p_names text[], p_variants uuid[], p_quantities integer[],
    p_ids uuid[], p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,         -- ok | drop_not_found
    o_total    integer,                 -- the drop's counters after the call
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[], -- each variant's, in order
    o_max_per_buyer integer,            -- the drop's limit
    o_answers  dropkit_unit_answer[],   -- when ok: one per caller, in order
    o_expired  uuid[]                   -- holds this call ended (overdue ones)
)
LANGUAGE plpgsql
AS $$
DECLARE
    n          integer := coalesce(cardinality(p_buyers), 0);
    d          dropkit_drops%ROWTYPE;
    v_now      timestamptz;
    v_expires  timestamptz;
    v_window   dropkit_outcome;
    vid        uuid[];
    vname      text[];
    vtotal     integer[];
    vres       integer[];
    vsold      integer[];
    vres0      integer[];
    h_id       uuid[];
    h_var      uuid[];
    h_qty      integer[];
    h_made     timestamptz[];
    h_until    timestamptz[];
    h_name     text[];
    bought     integer[];
    recorded   boolean[];
    a_out      dropkit_outcome[];
    a_var      integer[];          -- per caller: the variant's index, once known
    v_keyed    boolean := false;
    v_taken    integer[];
    v_reclaim  uuid[];
    v_lost     integer[];
    v_units    integer;
    v_free     integer;
    v_changed  boolean := false;
    j          integer;
    k          integer;
    q          integer;
    k_var      uuid;
BEGIN
    IF n IS DISTINCT FROM coalesce(cardinality(p_names), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_variants), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_quantities), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_ids), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_callers), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_keys), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_prints), 0) THEN
        RAISE EXCEPTION 'dropkit_reserve_units: arrays of different lengths';
    END IF;
    o_answers := '{}';
    o_expired := '{}';

    IF n = 1 AND p_callers[1] IS NULL AND p_quantities[1] BETWEEN 1 AND 100 THEN
        -- One caller without a key, the common case of a lone call: the
        -- UPDATE that counts the units is also what takes the drop's lock,
        -- the variant's UPDATE checks its stock, one probe checks the
        -- limit, and the INSERT says through the one-active index whether
        -- the buyer holds already. Anything else (a hold, a short variant,
        -- the limit, a bad request) gives the units back and goes the
        -- general way below, under the lock already held.
        q := p_quantities[1];
        UPDATE dropkit_drops
           SET reserved = reserved + q, version = version + 1
         WHERE id = p_drop AND q <= max_per_buyer AND NOT paused
           AND price_minor * q <= 100000000000
           AND reserved + sold + q <= total_stock
           AND (starts_at IS NULL OR starts_at <= clock_timestamp())
           AND (ends_at IS NULL OR ends_at > clock_timestamp())
        RETURNING * INTO d;
        IF FOUND THEN
            v_now := clock_timestamp();
            v_expires := v_now + d.hold_micros * interval '1 microsecond';
            IF p_variants[1] IS NULL THEN
                -- The drop's only variant (none at position 1).
                UPDATE dropkit_variants v SET reserved = v.reserved + q
                 WHERE v.drop_id = p_drop AND v.position = 0
                   AND v.reserved + v.sold + q <= v.total_stock
                   AND NOT EXISTS (SELECT 1 FROM dropkit_variants w
                                    WHERE w.drop_id = p_drop AND w.position = 1)
                RETURNING v.id INTO k_var;
            ELSE
                UPDATE dropkit_variants v SET reserved = v.reserved + q
                 WHERE v.id = p_variants[1] AND v.drop_id = p_drop
                   AND v.reserved + v.sold + q <= v.total_stock
                RETURNING v.id INTO k_var;
            END IF;
            IF k_var IS NOT NULL THEN
                SELECT coalesce(sum(p.quantity), 0)::integer INTO v_units
                  FROM dropkit_purchases p
                 WHERE p.buyer_id = p_buyers[1] AND p.drop_id = p_drop AND p.status = 'completed';
                IF v_units + q <= d.max_per_buyer THEN
                    INSERT INTO dropkit_reservations
                           (id, drop_id, variant_id, quantity, buyer_id, display_name, status,
                            created_at, expires_at)
                    VALUES (p_ids[1], p_drop, k_var, q, p_buyers[1], p_names[1], 'active',
                            v_now, v_expires)
                    ON CONFLICT (buyer_id, drop_id) WHERE status = 'active' DO NOTHING;
                    IF FOUND THEN
                        o_outcome := 'ok';
                        o_total := d.total_stock;
                        o_reserved := d.reserved;
                        o_sold := d.sold;
                        o_version := d.version;
                        o_max_per_buyer := d.max_per_buyer;
                        o_variants := dropkit_variants_of(p_drop);
                        o_answers := ARRAY[ROW('created', p_ids[1], v_now, v_expires, p_names[1],
                                               k_var, q, NULL)::dropkit_unit_answer];
                        RETURN NEXT;
                        RETURN;
                    END IF;
                END IF;
                UPDATE dropkit_variants SET reserved = reserved - q WHERE id = k_var;
            END IF;
            UPDATE dropkit_drops SET reserved = reserved - q, version = version - 1
             WHERE id = p_drop;
        END IF;
    END IF;

    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    v_expires := v_now + d.hold_micros * interval '1 microsecond';
    o_max_per_buyer := d.max_per_buyer;
    IF d.starts_at IS NOT NULL AND v_now < d.starts_at THEN
        v_window := 'not_started';
    ELSIF d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN
        v_window := 'ended';
    ELSIF d.paused THEN
        v_window := 'paused';
    END IF;

    SELECT array_agg(v.id ORDER BY v.position), array_agg(v.name ORDER BY v.position),
           array_agg(v.total_stock ORDER BY v.position), array_agg(v.reserved ORDER BY v.position),
           array_agg(v.sold ORDER BY v.position)
      INTO vid, vname, vtotal, vres, vsold
      FROM dropkit_variants v WHERE v.drop_id = p_drop;
    vres0 := vres;

    -- Per caller, one probe each: the active hold (one-active index), the
    -- units bought (the buyer-units index) and the key's record (its
    -- primary key). LATERAL with the buyer named, never `= ANY`, so that
    -- no plan reads a drop's holds or purchases whole.
    SELECT array_agg(h.id ORDER BY u.i), array_agg(h.variant_id ORDER BY u.i),
           array_agg(h.quantity ORDER BY u.i), array_agg(h.created_at ORDER BY u.i),
           array_agg(h.expires_at ORDER BY u.i), array_agg(h.display_name ORDER BY u.i),
           array_agg(coalesce(b.units, 0) ORDER BY u.i),
           array_agg(k.caller IS NOT NULL ORDER BY u.i),
           bool_or(u.caller IS NOT NULL)
      INTO h_id, h_var, h_qty, h_made, h_until, h_name, bought, recorded, v_keyed
      FROM unnest(p_buyers, p_callers, p_keys) WITH ORDINALITY AS u(buyer, caller, key, i)
      LEFT JOIN LATERAL (
            SELECT r.id, r.variant_id, r.quantity, r.created_at, r.expires_at, r.display_name
              FROM dropkit_reservations r
             WHERE r.buyer_id = u.buyer AND r.drop_id = p_drop AND r.status = 'active'
             LIMIT 1) h ON true
      LEFT JOIN LATERAL (
            SELECT sum(p.quantity)::integer AS units FROM dropkit_purchases p
             WHERE p.buyer_id = u.buyer AND p.drop_id = p_drop AND p.status = 'completed') b ON true
      LEFT JOIN dropkit_idempotency k ON k.caller = u.caller AND k.key = u.key;

    a_out := array_fill(NULL::dropkit_outcome, ARRAY[n]);
    a_var := array_fill(NULL::integer, ARRAY[n]);
    v_taken := array_fill(NULL::integer, ARRAY[n]);
    FOR i IN 1 .. n LOOP
        q := p_quantities[i];
        IF recorded[i] THEN
            a_out[i] := 'key_taken';
            CONTINUE;
        END IF;
        IF p_variants[i] IS NULL THEN
            j := CASE WHEN cardinality(vid) = 1 THEN 1 END;
            IF j IS NULL THEN
                a_out[i] := 'variant_required';
                CONTINUE;
            END IF;
        ELSE
            j := array_position(vid, p_variants[i]);
            IF j IS NULL THEN
                a_out[i] := 'variant_not_found';
                CONTINUE;
            END IF;
        END IF;
        a_var[i] := j;
        -- Above the limit, or a total above the largest amount
        -- (drop_core::money::MONEY_MAX_MINOR): a hold granted can be paid.
        IF q IS NULL OR q < 1 OR q > d.max_per_buyer
           OR d.price_minor * q > 100000000000 THEN
            a_out[i] := 'bad_quantity';
            CONTINUE;
        END IF;
        IF v_window IS NOT NULL THEN
            a_out[i] := v_window;
            CONTINUE;
        END IF;
        IF h_id[i] IS NOT NULL AND h_until[i] > v_now THEN
            a_out[i] := CASE WHEN h_var[i] = vid[j] AND h_qty[i] = q
                             THEN 'existing'::dropkit_outcome ELSE 'hold_exists'::dropkit_outcome END;
            CONTINUE;
        END IF;
        IF h_id[i] IS NOT NULL THEN
            -- The caller's own hold is overdue: it ends now (unless an
            -- earlier caller's reclaim ended it already).
            UPDATE dropkit_reservations SET status = 'expired'
             WHERE id = h_id[i] AND status = 'active';
            IF FOUND THEN
                k := array_position(vid, h_var[i]);
                vres[k] := vres[k] - h_qty[i];
                o_expired := o_expired || h_id[i];
                v_changed := true;
            END IF;
            h_id[i] := NULL;
        END IF;
        IF bought[i] + q > d.max_per_buyer THEN
            a_out[i] := 'buyer_limit';
            v_taken[i] := bought[i];
            CONTINUE;
        END IF;
        v_free := vtotal[j] - vres[j] - vsold[j];
        IF v_free < q THEN
            -- Lazy reclaim: this variant's overdue holds, earliest first,
            -- only as many units as needed (each hold is one unit or
            -- more, so that many holds at most are read).
            WITH c AS (
                SELECT o.id, o.quantity,
                       sum(o.quantity) OVER (ORDER BY o.expires_at, o.id) AS run
                  FROM (SELECT r.id, r.quantity, r.expires_at FROM dropkit_reservations r
                         WHERE r.drop_id = p_drop AND r.status = 'active'
                           AND r.created_at < r.expires_at AND r.expires_at <= v_now
                           AND r.variant_id = vid[j]
                         ORDER BY r.expires_at
                         LIMIT q - v_free) o),
            x AS (
                UPDATE dropkit_reservations r SET status = 'expired'
                  FROM c
                 WHERE r.id = c.id AND c.run - c.quantity < q - v_free
                RETURNING r.id, r.quantity)
            SELECT coalesce(array_agg(x.id), '{}'), coalesce(sum(x.quantity), 0)::integer
              INTO v_reclaim, v_units FROM x;
            IF v_units > 0 THEN
                vres[j] := vres[j] - v_units;
                o_expired := o_expired || v_reclaim;
                v_free := v_free + v_units;
                v_changed := true;
            END IF;
        END IF;
        IF v_free < q THEN
            a_out[i] := 'out_of_stock';
            CONTINUE;
        END IF;
        vres[j] := vres[j] + q;
        a_out[i] := 'created';
        -- The same buyer later in this batch finds this hold.
        FOREACH k IN ARRAY array_positions(p_buyers, p_buyers[i]) LOOP
            IF k > i THEN
                h_id[k] := p_ids[i];
                h_var[k] := vid[j];
                h_qty[k] := q;
                h_made[k] := v_now;
                h_until[k] := v_expires;
                h_name[k] := p_names[i];
            END IF;
        END LOOP;
        h_id[i] := p_ids[i];
        h_var[i] := vid[j];
        h_qty[i] := q;
        h_made[i] := v_now;
        h_until[i] := v_expires;
        h_name[i] := p_names[i];
    END LOOP;

    IF v_keyed THEN
        -- Record the keys of the callers served, in key order (two batches
        -- recording the same keys wait on each other in one order). A key
        -- recorded by another transaction meanwhile, or twice in this
        -- batch, leaves its caller key_taken, with no hold.
        WITH t AS (
            SELECT DISTINCT ON (t.caller, t.key) t.caller, t.key, t.print, t.i::integer AS i
              FROM unnest(p_callers, p_keys, p_prints, a_out) WITH ORDINALITY AS t(caller, key, print, said, i)
             WHERE t.caller IS NOT NULL AND t.said IN ('created', 'existing')
             ORDER BY t.caller, t.key, t.i),
        ins AS (
            INSERT INTO dropkit_idempotency (caller, key, fingerprint, entity_kind, entity_id, created, recorded_at)
            SELECT t.caller, t.key, t.print, 'reservation', h_id[t.i], a_out[t.i] = 'created', v_now
              FROM t ORDER BY t.caller, t.key
            ON CONFLICT DO NOTHING
            RETURNING caller, key)
        SELECT coalesce(array_agg(u.i::integer), '{}') INTO v_lost
          FROM unnest(p_callers, p_keys, a_out) WITH ORDINALITY AS u(caller, key, said, i)
         WHERE u.caller IS NOT NULL AND u.said IN ('created', 'existing')
           AND NOT EXISTS (SELECT 1 FROM t JOIN ins ON ins.caller = t.caller AND ins.key = t.key
                            WHERE t.i = u.i);
        FOREACH k IN ARRAY v_lost LOOP
            IF a_out[k] = 'created' THEN
                -- Not made after all: its units go back (a later caller of
                -- this batch refused for them is not asked again; this
                -- race needs one key sent to two drops at once).
                j := a_var[k];
                vres[j] := vres[j] - p_quantities[k];
            END IF;
            a_out[k] := 'key_taken';
        END LOOP;
    END IF;

    INSERT INTO dropkit_reservations
           (id, drop_id, variant_id, quantity, buyer_id, display_name, status, created_at, expires_at)
    SELECT t.rid, p_drop, vid[t.j], t.q, t.buyer, t.name, 'active', v_now, v_expires
      FROM unnest(p_ids, a_var, p_quantities, p_buyers, p_names, a_out)
           AS t(rid, j, q, buyer, name, said)
     WHERE t.said = 'created';
    IF FOUND THEN
        v_changed := true;
    END IF;

    IF v_changed THEN
        UPDATE dropkit_variants v SET reserved = t.reserved
          FROM unnest(vid, vres, vres0) AS t(id, reserved, was)
         WHERE v.id = t.id AND t.reserved <> t.was;
        UPDATE dropkit_drops
           SET reserved = (SELECT sum(x) FROM unnest(vres) x), version = version + 1
         WHERE id = p_drop
        RETURNING reserved, version INTO o_reserved, o_version;
    ELSE
        o_reserved := d.reserved;
        o_version := d.version;
    END IF;

    SELECT array_agg(ROW(t.id, t.name, t.total, t.reserved, t.sold)::dropkit_variant_stock ORDER BY t.j)
      INTO o_variants
      FROM unnest(vid, vname, vtotal, vres, vsold) WITH ORDINALITY AS t(id, name, total, reserved, sold, j);
    SELECT array_agg(CASE
               WHEN t.said IN ('created', 'existing', 'hold_exists')
                   THEN ROW(t.said, t.hid, t.made, t.until, t.hname, t.hvar, t.hqty, NULL)::dropkit_unit_answer
               WHEN t.said = 'buyer_limit'
                   THEN ROW(t.said, NULL, NULL, NULL, NULL, NULL, NULL, t.taken)::dropkit_unit_answer
               ELSE ROW(t.said, NULL, NULL, NULL, NULL, NULL, NULL, NULL)::dropkit_unit_answer
           END ORDER BY t.i)
      INTO o_answers
      FROM unnest(a_out, h_id, h_made, h_until, h_name, h_var, h_qty, v_taken)
           WITH ORDINALITY AS t(said, hid, made, until, hname, hvar, hqty, taken, i);
    o_answers := coalesce(o_answers, '{}');
    o_outcome := 'ok';
    o_total := d.total_stock;
    o_sold := d.sold;
    RETURN NEXT;
END;
$$;

-- Purchase holds of one drop: p_res[i] by buyer p_buyers[i], as purchase
-- p_pids[i], with an idempotency key when p_callers[i] is not NULL. Each
-- request gets its own answer; one refusal never fails the others. The
-- drop's price × the hold's quantity is paid. A hold bought already
-- answers its purchase (`repeated`: the store tells the owner's repeat
-- from a retry of its own by the purchase id), cancelled or not. A hold
-- taken before the drop's endsAt may be bought until its own expiresAt,
-- paused or not: the end and the pause close reserves only.
CREATE FUNCTION dropkit_purchase_units(
    p_drop uuid, p_res uuid[], p_buyers text[], p_pids uuid[],
    p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,         -- ok | drop_not_found
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_answers  dropkit_bought_answer[], -- per request: purchased | repeated | not_found
                                        --   | not_owner | expired | already_released | key_taken
    o_latest   dropkit_buyer[]          -- the drop's latest buyers before this call, newest first
)
LANGUAGE plpgsql
AS $$
DECLARE
    n        integer := coalesce(cardinality(p_res), 0);
    d        dropkit_drops%ROWTYPE;
    r        dropkit_reservations%ROWTYPE;
    p        dropkit_purchases%ROWTYPE;
    v_now    timestamptz;
    vid      uuid[];
    vname    text[];
    vtotal   integer[];
    vres     integer[];
    vsold    integer[];
    vres0    integer[];
    v_units  integer := 0;
    v_says   dropkit_outcome;
    v_amount bigint;
    j        integer;
BEGIN
    IF n IS DISTINCT FROM coalesce(cardinality(p_buyers), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_pids), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_callers), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_keys), 0)
       OR n IS DISTINCT FROM coalesce(cardinality(p_prints), 0) THEN
        RAISE EXCEPTION 'dropkit_purchase_units: arrays of different lengths';
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
    SELECT array_agg(v.id ORDER BY v.position), array_agg(v.name ORDER BY v.position),
           array_agg(v.total_stock ORDER BY v.position), array_agg(v.reserved ORDER BY v.position),
           array_agg(v.sold ORDER BY v.position)
      INTO vid, vname, vtotal, vres, vsold
      FROM dropkit_variants v WHERE v.drop_id = p_drop;
    vres0 := vres;
    SELECT coalesce(array_agg(ROW(t.display_name, t.created_at)::dropkit_buyer
                              ORDER BY t.created_at DESC, t.seq DESC), '{}')
      INTO o_latest
      FROM (SELECT x.display_name, x.created_at, x.seq FROM dropkit_purchases x
             WHERE x.drop_id = p_drop
             ORDER BY x.created_at DESC, x.seq DESC LIMIT 3) t;

    -- No hold locks: under the drop's lock nobody else writes its holds.
    FOR i IN 1 .. n LOOP
        p := NULL;
        v_says := NULL;
        IF p_callers[i] IS NOT NULL THEN
            PERFORM 1 FROM dropkit_idempotency WHERE caller = p_callers[i] AND key = p_keys[i];
            IF FOUND THEN
                v_says := 'key_taken';
            END IF;
        END IF;
        IF v_says IS NULL THEN
            SELECT * INTO r FROM dropkit_reservations WHERE id = p_res[i];
            IF NOT FOUND OR r.drop_id <> p_drop THEN
                v_says := 'not_found';
            ELSIF r.buyer_id <> p_buyers[i] THEN
                v_says := 'not_owner';
            ELSIF r.status = 'active' AND r.expires_at <= v_now THEN
                v_says := 'expired';
            ELSIF r.status = 'active' THEN
                v_says := 'purchased';
                v_amount := d.price_minor * r.quantity;
                p.id := p_pids[i];
                p.variant_id := r.variant_id;
                p.quantity := r.quantity;
                p.amount_minor := v_amount;
                p.status := 'completed';
                p.created_at := v_now;
                p.display_name := r.display_name;
            ELSIF r.status = 'purchased' THEN
                SELECT * INTO p FROM dropkit_purchases x WHERE x.reservation_id = r.id;
                v_says := 'repeated';
            ELSIF r.status = 'released' THEN
                v_says := 'already_released';
            ELSE
                v_says := 'expired';
            END IF;
            IF v_says IN ('purchased', 'repeated') AND p_callers[i] IS NOT NULL THEN
                INSERT INTO dropkit_idempotency
                       (caller, key, fingerprint, entity_kind, entity_id, created, recorded_at)
                VALUES (p_callers[i], p_keys[i], p_prints[i], 'purchase', p.id,
                        v_says = 'purchased', v_now)
                ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    -- Recorded by another transaction meanwhile.
                    v_says := 'key_taken';
                    p := NULL;
                END IF;
            END IF;
            IF v_says = 'purchased' THEN
                UPDATE dropkit_reservations SET status = 'purchased' WHERE id = r.id;
                INSERT INTO dropkit_purchases
                       (id, reservation_id, drop_id, variant_id, quantity, buyer_id, display_name,
                        amount_minor, status, created_at)
                VALUES (p_pids[i], r.id, p_drop, r.variant_id, r.quantity, r.buyer_id,
                        r.display_name, v_amount, 'completed', v_now);
                j := array_position(vid, r.variant_id);
                vres[j] := vres[j] - r.quantity;
                vsold[j] := vsold[j] + r.quantity;
                v_units := v_units + r.quantity;
            END IF;
        END IF;
        o_answers := o_answers || ROW(v_says, p.id, p.variant_id, p.quantity, p.amount_minor,
                                      p.status, p.created_at, p.cancelled_at,
                                      p.display_name)::dropkit_bought_answer;
    END LOOP;

    IF v_units > 0 THEN
        UPDATE dropkit_variants v SET reserved = t.reserved, sold = t.sold
          FROM unnest(vid, vres, vsold, vres0) AS t(id, reserved, sold, was)
         WHERE v.id = t.id AND t.reserved <> t.was;
        UPDATE dropkit_drops
           SET reserved = reserved - v_units, sold = sold + v_units, version = version + 1
         WHERE id = p_drop
        RETURNING reserved, sold, version INTO o_reserved, o_sold, o_version;
    ELSE
        o_reserved := d.reserved;
        o_sold := d.sold;
        o_version := d.version;
    END IF;
    SELECT array_agg(ROW(t.id, t.name, t.total, t.reserved, t.sold)::dropkit_variant_stock ORDER BY t.j)
      INTO o_variants
      FROM unnest(vid, vname, vtotal, vres, vsold) WITH ORDINALITY AS t(id, name, total, reserved, sold, j);
    o_total := d.total_stock;
    o_outcome := 'ok';
    RETURN NEXT;
END;
$$;

-- The owner gives a hold back. Owner and terminal states never change, so
-- they are answered from a plain read: only the owner of a hold that is
-- still active queues on the drop's lock.
CREATE FUNCTION dropkit_release(p_res uuid, p_buyer text)
RETURNS TABLE (
    o_outcome      dropkit_outcome, -- released | not_found | not_owner | expired
                                    --   | already_purchased | already_released
    o_drop         uuid,            -- the hold's, unless not_found
    o_display_name text,            -- the name the hold was taken under
    o_created_at   timestamptz,
    o_expires_at   timestamptz,
    o_variant      uuid,
    o_quantity     integer,
    o_total        integer,         -- the drop's counters, when released
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_variants     dropkit_variant_stock[]
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
    o_variant := r.variant_id;
    o_quantity := r.quantity;
    IF r.buyer_id <> p_buyer THEN
        o_outcome := 'not_owner';
    ELSIF r.status = 'active' AND r.expires_at > clock_timestamp() THEN
        -- Still active: decide again under the lock, where it may have
        -- been bought, expired or released meanwhile.
        PERFORM 1 FROM dropkit_drops WHERE id = r.drop_id FOR NO KEY UPDATE;
        SELECT * INTO r FROM dropkit_reservations WHERE id = p_res;
        v_now := clock_timestamp();
        IF r.status = 'active' AND r.expires_at > v_now THEN
            UPDATE dropkit_reservations SET status = 'released' WHERE id = p_res;
            UPDATE dropkit_variants SET reserved = reserved - r.quantity WHERE id = r.variant_id;
            UPDATE dropkit_drops SET reserved = reserved - r.quantity, version = version + 1
             WHERE id = r.drop_id
            RETURNING total_stock, reserved, sold, version INTO o_total, o_reserved, o_sold, o_version;
            o_variants := dropkit_variants_of(r.drop_id);
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

-- Expire up to p_limit due holds, fairly across drops (as in
-- 20261201000001), moving each variant's counter by the units it held.
-- Keeps the plan_cache_mode setting the previous version had.
CREATE FUNCTION dropkit_expire_due(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[]
)
LANGUAGE plpgsql
SET plan_cache_mode = force_custom_plan
AS $$
DECLARE
    v_now   timestamptz := clock_timestamp();
    v_drop  uuid;
    v_take  bigint;
    v_ids   uuid[];
    v_units integer;
BEGIN
    FOR v_drop, v_take IN
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
            RETURNING r.id, r.variant_id, r.quantity),
        per AS (
            UPDATE dropkit_variants v SET reserved = v.reserved - s.units
              FROM (SELECT x.variant_id, sum(x.quantity)::integer AS units FROM x GROUP BY x.variant_id) s
             WHERE v.id = s.variant_id
            RETURNING v.id)
        SELECT coalesce((SELECT array_agg(x.id) FROM x), '{}'),
               coalesce((SELECT sum(x.quantity) FROM x), 0)::integer
          INTO v_ids, v_units;
        CONTINUE WHEN cardinality(v_ids) = 0;
        UPDATE dropkit_drops
           SET reserved = reserved - v_units, version = version + 1
         WHERE id = v_drop
        RETURNING id, total_stock, reserved, sold, version
             INTO o_drop, o_total, o_reserved, o_sold, o_version;
        o_variants := dropkit_variants_of(v_drop);
        o_expired := v_ids;
        RETURN NEXT;
    END LOOP;
END;
$$;
