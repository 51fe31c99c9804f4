-- The waiting list (drop_core::waitlist): one line per variant, freed
-- units set aside for the head and offered to them as a hold.
--
-- Schema:
--
-- - `dropkit_waitlist`: one row per buyer waiting, at most one per
--   (drop, buyer). `ticket` (from `dropkit_waitlist_ticket_seq`, never
--   reused) orders the line. The primary key is (variant_id, ticket): it
--   finds a line's head and counts a place's position, and there is no
--   index on the ticket alone, which a plan could walk from the oldest
--   ticket of every line to count one place's position.
-- - `dropkit_variants.set_aside`: units set aside for the head of the
--   variant's line. They are COUNTED IN `reserved` (on the variant and in
--   the drop's sum), so every check that reads `total - reserved - sold`
--   as the units on open sale (the reserves' fast path, the common batch,
--   the CHECKs) sees 0 while anyone waits, with no change: nobody cuts the
--   line. `waitlist_length` counts the line's rows, kept with them, so the
--   stock frames read it from the variant row.
-- - `dropkit_variant_stock` gains `waitlist_length`: every answer of the
--   write functions carries it. A client connection caches a composite
--   type's fields the first time it reads one (sqlx does): connections of
--   an instance of the previous version must not be reused after this
--   migration (a new instance's pool starts after it).
-- - `dropkit_drops.waitlist` (on by default, so drops made before this
--   migration have a line) and `dropkit_reservations.offered` (false for
--   every hold made before).
-- - `dropkit_events.offered`: holdCreated entries kept in typed columns
--   say whether the hold was offered; entries written before read false.
--
-- The rule is in ONE function, dropkit_serve_line, called under the drop's
-- lock by every path that frees units, in the transaction that frees
-- them: the sweeper, the reserves (their lazy reclaim, and a caller's own
-- overdue hold), a release, a head leaving, a cancelled purchase, an
-- admin edit (added stock, a window opened again). So instances never
-- offer one unit twice, and an offer is committed with the freeing change
-- or not at all. It answers what it did as steps (dropkit_line_step), in
-- the order they are logged and announced: the holds it ended, then per
-- head in line order a skip, or an offered hold followed by the head
-- leaving the line.
--
-- The functions whose answers gain the steps (dropkit_reserve_units,
-- dropkit_release, dropkit_expire_due and their logged wrappers) are
-- dropped and created anew: upgrade every instance together, as for the
-- variants migration. dropkit_expire_due keeps its
-- `SET plan_cache_mode = force_custom_plan`; the others had no SET clause
-- and have none (tests/cold_start.rs holds them, and the new functions of
-- the line, to generic plans made on empty tables).
-- dropkit_purchase_units is restated only to answer `waitlist_length`
-- (it had no SET clause).

ALTER TABLE dropkit_drops ADD COLUMN waitlist boolean NOT NULL DEFAULT true;

ALTER TABLE dropkit_variants
    ADD COLUMN set_aside integer NOT NULL DEFAULT 0,
    ADD COLUMN waitlist_length integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT dropkit_variants_set_aside CHECK (set_aside BETWEEN 0 AND reserved),
    ADD CONSTRAINT dropkit_variants_waitlist_length CHECK (waitlist_length >= 0);

ALTER TABLE dropkit_reservations ADD COLUMN offered boolean NOT NULL DEFAULT false;

ALTER TABLE dropkit_events ADD COLUMN offered boolean;

ALTER TYPE dropkit_variant_stock ADD ATTRIBUTE waitlist_length integer;

CREATE SEQUENCE dropkit_waitlist_ticket_seq AS bigint MINVALUE 1;

-- No foreign keys, as for holds: every writer holds the drop's row.
CREATE TABLE dropkit_waitlist (
    ticket       bigint      NOT NULL DEFAULT nextval('dropkit_waitlist_ticket_seq'),
    drop_id      uuid        NOT NULL,
    variant_id   uuid        NOT NULL,
    buyer_id     text        NOT NULL,
    display_name text        NOT NULL,
    quantity     integer     NOT NULL,
    joined_at    timestamptz NOT NULL,
    CONSTRAINT dropkit_waitlist_pkey PRIMARY KEY (variant_id, ticket),
    CONSTRAINT dropkit_waitlist_quantity CHECK (quantity BETWEEN 1 AND 100),
    CONSTRAINT dropkit_waitlist_one_place UNIQUE (drop_id, buyer_id)
);

-- One thing the line did, in order (see dropkit_serve_line).
CREATE TYPE dropkit_line_step AS (
    kind         text,         -- expired | offered | skipped | left
    hold_id      uuid,         -- expired, offered: the hold
    variant_id   uuid,
    buyer_id     text,
    display_name text,         -- offered: the name the place was taken under
    quantity     integer,      -- the hold's, or the place's
    created_at   timestamptz,  -- offered
    expires_at   timestamptz,  -- offered
    ticket       bigint        -- offered, skipped, left: the place's
);

-- A drop's variants with their counters, in the drop's order.
CREATE OR REPLACE FUNCTION dropkit_variants_of(p_drop uuid)
RETURNS dropkit_variant_stock[]
LANGUAGE sql STABLE
AS $$
    SELECT coalesce(array_agg(ROW(v.id, v.name, v.total_stock, v.reserved, v.sold,
                                  v.waitlist_length)::dropkit_variant_stock
                              ORDER BY v.position), '{}')
      FROM dropkit_variants v WHERE v.drop_id = p_drop
$$;

-- Serves the lines of p_drop's variants at p_now. The caller holds the
-- drop's row (FOR NO KEY UPDATE) and has written its own changes to the
-- variant rows. Answers the steps taken, in order.
--
-- Per variant with a line (or units still set aside):
--
-- - Every unit neither reserved nor sold is set aside (so `available`
--   stays 0 while anyone waits). Nobody waiting: what is set aside goes
--   back on sale.
-- - Only while the sale is open (a pause does not stop the line): the
--   head with an active hold of the drop, or whose units bought plus the
--   quantity asked would pass maxPerBuyer, is skipped. A head's own
--   overdue hold ends first (it would stand in the way of the offered
--   hold, and an overdue hold never blocks an offer); its units are freed
--   like any other's. When the head lacks units, the variant's overdue
--   holds are reclaimed, earliest first, only as many units as the head
--   lacks. A head whose quantity is covered gets one offered hold with the
--   drop's hold window and leaves the line; the next head is served.
--
-- A hold ended here of another variant frees units there: the variants
-- are served again until nothing moves.
CREATE FUNCTION dropkit_serve_line(p_drop uuid, p_now timestamptz)
RETURNS dropkit_line_step[]
LANGUAGE plpgsql
AS $$
DECLARE
    d        dropkit_drops%ROWTYPE;
    v        dropkit_variants%ROWTYPE;
    w        dropkit_waitlist%ROWTYPE;
    h        dropkit_reservations%ROWTYPE;
    v_steps  dropkit_line_step[] := '{}';
    v_open   boolean;
    v_again  boolean := true;
    v_delta  integer := 0;   -- the change of the drop's reserved units
    v_moved  boolean := false;
    v_held   boolean;
    v_bought integer;
    v_vid    uuid;
    v_id     uuid;
    v_more   dropkit_line_step[];
BEGIN
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop;
    IF NOT FOUND THEN
        RETURN v_steps;
    END IF;
    v_open := (d.starts_at IS NULL OR d.starts_at <= p_now)
              AND (d.ends_at IS NULL OR d.ends_at > p_now);
    WHILE v_again LOOP
        v_again := false;
        FOR v_vid IN SELECT x.id FROM dropkit_variants x
                      WHERE x.drop_id = p_drop AND (x.waitlist_length > 0 OR x.set_aside > 0)
                      ORDER BY x.position LOOP
            -- Read afresh: serving another variant may have freed units here.
            SELECT * INTO v FROM dropkit_variants WHERE id = v_vid;
            IF v.waitlist_length > 0 AND v.total_stock - v.reserved - v.sold > 0 THEN
                v_delta := v_delta + (v.total_stock - v.reserved - v.sold);
                v.set_aside := v.set_aside + (v.total_stock - v.reserved - v.sold);
                v.reserved := v.total_stock - v.sold;
            END IF;
            WHILE v_open AND v.waitlist_length > 0 LOOP
                SELECT * INTO w FROM dropkit_waitlist
                 WHERE variant_id = v.id ORDER BY ticket LIMIT 1;
                EXIT WHEN NOT FOUND;
                SELECT * INTO h FROM dropkit_reservations
                 WHERE buyer_id = w.buyer_id AND drop_id = p_drop AND status = 'active'
                 LIMIT 1;
                v_held := FOUND;
                IF v_held AND h.expires_at <= p_now THEN
                    UPDATE dropkit_reservations SET status = 'expired' WHERE id = h.id;
                    v_steps := v_steps || ROW('expired', h.id, h.variant_id, h.buyer_id, NULL,
                                              h.quantity, NULL, NULL, NULL)::dropkit_line_step;
                    IF h.variant_id = v.id THEN
                        -- Still reserved: set aside for the line instead.
                        v.set_aside := v.set_aside + h.quantity;
                    ELSE
                        UPDATE dropkit_variants SET reserved = reserved - h.quantity
                         WHERE id = h.variant_id;
                        v_delta := v_delta - h.quantity;
                        v_again := true;
                    END IF;
                    v_held := false;
                END IF;
                IF NOT v_held THEN
                    SELECT coalesce(sum(p.quantity), 0)::integer INTO v_bought
                      FROM dropkit_purchases p
                     WHERE p.buyer_id = w.buyer_id AND p.drop_id = p_drop
                       AND p.status = 'completed';
                END IF;
                IF v_held OR v_bought + w.quantity > d.max_per_buyer THEN
                    DELETE FROM dropkit_waitlist WHERE variant_id = v.id AND ticket = w.ticket;
                    v.waitlist_length := v.waitlist_length - 1;
                    v_steps := v_steps || ROW('skipped', NULL, v.id, w.buyer_id, w.display_name,
                                              w.quantity, NULL, NULL, w.ticket)::dropkit_line_step;
                    CONTINUE;
                END IF;
                IF v.set_aside < w.quantity THEN
                    -- Lazy reclaim for the head: the variant's overdue
                    -- holds, earliest first, as many units as it lacks.
                    WITH c AS (
                        SELECT o.id, o.quantity,
                               sum(o.quantity) OVER (ORDER BY o.expires_at, o.id) AS run
                          FROM (SELECT r.id, r.quantity, r.expires_at FROM dropkit_reservations r
                                 WHERE r.drop_id = p_drop AND r.status = 'active'
                                   AND r.created_at < r.expires_at AND r.expires_at <= p_now
                                   AND r.variant_id = v.id
                                 ORDER BY r.expires_at
                                 LIMIT w.quantity - v.set_aside) o),
                    x AS (
                        UPDATE dropkit_reservations r SET status = 'expired'
                          FROM c
                         WHERE r.id = c.id AND c.run - c.quantity < w.quantity - v.set_aside
                        RETURNING r.id, r.variant_id, r.buyer_id, r.quantity, r.expires_at)
                    SELECT coalesce(array_agg(ROW('expired', x.id, x.variant_id, x.buyer_id, NULL,
                                                  x.quantity, NULL, NULL, NULL)::dropkit_line_step
                                              ORDER BY x.expires_at, x.id), '{}')
                      INTO v_more FROM x;
                    v_steps := v_steps || v_more;
                    v.set_aside := v.set_aside
                                   + coalesce((SELECT sum(s.quantity) FROM unnest(v_more) s), 0);
                END IF;
                EXIT WHEN v.set_aside < w.quantity;
                v_id := gen_random_uuid();
                INSERT INTO dropkit_reservations
                       (id, drop_id, variant_id, quantity, buyer_id, display_name, status,
                        created_at, expires_at, offered)
                VALUES (v_id, p_drop, v.id, w.quantity, w.buyer_id, w.display_name, 'active',
                        p_now, p_now + d.hold_micros * interval '1 microsecond', true);
                -- The units stay reserved: set aside before, held now.
                v.set_aside := v.set_aside - w.quantity;
                DELETE FROM dropkit_waitlist WHERE variant_id = v.id AND ticket = w.ticket;
                v.waitlist_length := v.waitlist_length - 1;
                v_steps := v_steps || ROW('offered', v_id, v.id, w.buyer_id, w.display_name,
                                          w.quantity, p_now,
                                          p_now + d.hold_micros * interval '1 microsecond',
                                          w.ticket)::dropkit_line_step;
            END LOOP;
            IF v.waitlist_length = 0 AND v.set_aside > 0 THEN
                -- Nobody waits any more: back on open sale.
                v.reserved := v.reserved - v.set_aside;
                v_delta := v_delta - v.set_aside;
                v.set_aside := 0;
            END IF;
            UPDATE dropkit_variants x
               SET reserved = v.reserved, set_aside = v.set_aside,
                   waitlist_length = v.waitlist_length
             WHERE x.id = v.id
               AND (x.reserved, x.set_aside, x.waitlist_length)
                   IS DISTINCT FROM (v.reserved, v.set_aside, v.waitlist_length);
            v_moved := v_moved OR FOUND;
        END LOOP;
    END LOOP;
    IF v_moved OR v_delta <> 0 OR cardinality(v_steps) > 0 THEN
        UPDATE dropkit_drops SET reserved = reserved + v_delta, version = version + 1
         WHERE id = p_drop;
    END IF;
    RETURN v_steps;
END;
$$;

-- A waitlistJoined or waitlistLeft change as drop-core's serde writes it.
CREATE FUNCTION dropkit_log_place(
    p_kind text, p_buyer text, p_name text, p_variant uuid, p_quantity integer,
    p_ticket bigint, p_reason text)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$
    SELECT CASE p_kind
        WHEN 'waitlistJoined' THEN
            jsonb_build_object('type', p_kind, 'buyerId', p_buyer, 'displayName', p_name,
                               'variantId', p_variant, 'quantity', p_quantity,
                               'ticket', p_ticket)
        ELSE jsonb_build_object('type', p_kind, 'buyerId', p_buyer, 'variantId', p_variant,
                                'quantity', p_quantity, 'ticket', p_ticket,
                                'reason', p_reason)
    END
$$;

-- The log entries of lines' steps (step i of drop p_drops[i]), in order: holdExpired; holdCreated
-- (offered) then waitlistLeft (offered); waitlistLeft (skipped, left).
-- As dropkit_log_append: the shared lock before the numbers, nothing to
-- append takes no lock, and it is the last write of its transaction (or
-- followed only by further appends).
CREATE FUNCTION dropkit_log_steps(p_drops uuid[], p_steps dropkit_line_step[])
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_at timestamptz;
BEGIN
    IF coalesce(cardinality(p_steps), 0) = 0 THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1685221232, dropkit_log_lock_key());
    v_at := clock_timestamp();
    -- An offered hold is two entries: the hold (part 1), the place (2).
    INSERT INTO dropkit_events (seq, at, drop_id, kind, data, reservation_id, buyer_id,
                                display_name, variant_id, quantity, expires_at, offered)
    SELECT nextval('dropkit_events_seq'), v_at, e.drop_id, e.kind, e.data, e.hold_id, e.buyer_id,
           e.display_name, e.variant_id, e.quantity, e.expires_at, e.offered
      FROM (SELECT s.i, p.part, p_drops[s.i] AS drop_id,
                   CASE WHEN s.kind = 'expired' THEN 'holdExpired'
                        WHEN s.kind = 'offered' AND p.part = 1 THEN 'holdCreated'
                        ELSE 'waitlistLeft' END AS kind,
                   CASE WHEN s.kind = 'expired' OR (s.kind = 'offered' AND p.part = 1) THEN NULL
                        ELSE dropkit_log_place('waitlistLeft', s.buyer_id, NULL, s.variant_id,
                                               s.quantity, s.ticket, s.kind) END AS data,
                   CASE WHEN s.kind = 'expired' OR (s.kind = 'offered' AND p.part = 1)
                        THEN s.hold_id END AS hold_id,
                   CASE WHEN s.kind = 'expired' OR (s.kind = 'offered' AND p.part = 1)
                        THEN s.buyer_id END AS buyer_id,
                   CASE WHEN s.kind = 'offered' AND p.part = 1 THEN s.display_name END
                       AS display_name,
                   CASE WHEN s.kind = 'expired' OR (s.kind = 'offered' AND p.part = 1)
                        THEN s.variant_id END AS variant_id,
                   CASE WHEN s.kind = 'expired' OR (s.kind = 'offered' AND p.part = 1)
                        THEN s.quantity END AS quantity,
                   CASE WHEN s.kind = 'offered' AND p.part = 1 THEN s.expires_at END
                       AS expires_at,
                   CASE WHEN s.kind = 'offered' AND p.part = 1 THEN true END AS offered
              FROM unnest(p_steps) WITH ORDINALITY AS s(kind, hold_id, variant_id, buyer_id,
                                                        display_name, quantity, created_at,
                                                        expires_at, ticket, i)
              CROSS JOIN LATERAL (SELECT generate_series(1, CASE WHEN s.kind = 'offered'
                                                                 THEN 2 ELSE 1 END) AS part) p
             ORDER BY s.i, p.part) e
     ORDER BY e.i, e.part;
END;
$$;

-- An entry's change as drop-core's serde writes a `Change` (as in the
-- event log's migration), holdCreated now with `offered` (false for the
-- entries written before there was a line).
CREATE OR REPLACE FUNCTION dropkit_log_data(e dropkit_events)
RETURNS jsonb
LANGUAGE sql STABLE
AS $$
    SELECT CASE
        WHEN e.data IS NOT NULL THEN e.data
        WHEN e.kind = 'holdCreated' THEN
            jsonb_build_object('type', e.kind, 'reservationId', e.reservation_id,
                               'buyerId', e.buyer_id, 'displayName', e.display_name,
                               'variantId', e.variant_id, 'quantity', e.quantity,
                               'expiresAt', dropkit_log_time(e.expires_at),
                               'offered', coalesce(e.offered, false))
        WHEN e.kind = 'purchaseCompleted' THEN
            jsonb_build_object('type', e.kind, 'purchaseId', e.purchase_id,
                               'reservationId', e.reservation_id, 'buyerId', e.buyer_id,
                               'displayName', e.display_name, 'variantId', e.variant_id,
                               'quantity', e.quantity,
                               'amount', dropkit_log_money(e.amount_minor))
        -- holdReleased, holdExpired
        ELSE jsonb_build_object('type', e.kind, 'reservationId', e.reservation_id,
                                'buyerId', e.buyer_id, 'variantId', e.variant_id,
                                'quantity', e.quantity)
    END
$$;

-- A buyer's place in a line with its position (1 for the head) and the
-- units set aside for it (the head's, at most its quantity).
--
-- The position is a count over the line's key range, (variant, ticket)
-- up to the place's ticket. One long line makes one variant_id most of
-- the table, and with it every plan that does not know which variant is
-- asked (a generic plan, or the count correlated with the place found)
-- estimates a range of thousands and scans the whole table instead
-- (tests/cold_start.rs caught it). `enable_seqscan = off` leaves the key
-- the only sensible way: the count reads the places ahead, no more. A
-- migration that replaces this function must restate the SET clause.
CREATE FUNCTION dropkit_waitlist_place(p_drop uuid, p_buyer text)
RETURNS TABLE (
    o_ticket       bigint,
    o_variant      uuid,
    o_display_name text,
    o_quantity     integer,
    o_joined_at    timestamptz,
    o_position     integer,
    o_set_aside    integer
)
LANGUAGE sql STABLE
SET enable_seqscan = off
AS $$
    SELECT w.ticket, w.variant_id, w.display_name, w.quantity, w.joined_at, pos.n,
           CASE WHEN pos.n = 1 THEN least(v.set_aside, w.quantity) ELSE 0 END
      FROM dropkit_waitlist w
      JOIN dropkit_variants v ON v.id = w.variant_id
      CROSS JOIN LATERAL (SELECT count(*)::integer AS n FROM dropkit_waitlist x
                           WHERE x.variant_id = w.variant_id AND x.ticket <= w.ticket) pos
     WHERE w.drop_id = p_drop AND w.buyer_id = p_buyer
$$;

-- Puts p_buyer (shown as p_name) in the line for p_quantity units of
-- variant p_variant (NULL: the drop's only one) of p_drop, checked in the
-- order of drop_core::waitlist under the drop's lock. Answers the outcome
-- (text): drop_not_found | variant_not_found | variant_required |
-- bad_quantity | waitlist_closed | not_started | ended | paused |
-- in_line (the same place, unchanged) | already_in_line (another place)
-- | hold_exists (o_hold_*) | buyer_limit (o_taken) | waitlist_not_needed
-- | joined; the place for in_line, already_in_line and joined; the steps
-- serving the line took after a join (reclaimed holds); the counters.
-- With p_log, a join is logged (waitlistJoined, then the steps) as the
-- call's last statement.
CREATE FUNCTION dropkit_waitlist_join(
    p_drop uuid, p_buyer text, p_name text, p_variant uuid, p_quantity integer, p_log boolean)
RETURNS TABLE (
    o_outcome        text,
    o_max_per_buyer  integer,
    o_taken          integer,
    o_ticket         bigint,
    o_variant        uuid,
    o_display_name   text,
    o_quantity       integer,
    o_joined_at      timestamptz,
    o_position       integer,
    o_set_aside      integer,
    o_hold_id        uuid,
    o_hold_variant   uuid,
    o_hold_quantity  integer,
    o_hold_name      text,
    o_hold_created   timestamptz,
    o_hold_expires   timestamptz,
    o_hold_offered   boolean,
    o_steps          dropkit_line_step[],
    o_total          integer,
    o_reserved       integer,
    o_sold           integer,
    o_version        bigint,
    o_variants       dropkit_variant_stock[]
)
LANGUAGE plpgsql
AS $$
DECLARE
    d       dropkit_drops%ROWTYPE;
    v       dropkit_variants%ROWTYPE;
    h       dropkit_reservations%ROWTYPE;
    w       dropkit_waitlist%ROWTYPE;
    v_now   timestamptz;
    v_units integer;
BEGIN
    o_steps := '{}';
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    o_max_per_buyer := d.max_per_buyer;
    IF p_variant IS NULL THEN
        SELECT * INTO v FROM dropkit_variants x WHERE x.drop_id = p_drop AND x.position = 0
           AND NOT EXISTS (SELECT 1 FROM dropkit_variants y
                            WHERE y.drop_id = p_drop AND y.position = 1);
        IF NOT FOUND THEN
            o_outcome := 'variant_required';
        END IF;
    ELSE
        SELECT * INTO v FROM dropkit_variants x WHERE x.id = p_variant AND x.drop_id = p_drop;
        IF NOT FOUND THEN
            o_outcome := 'variant_not_found';
        END IF;
    END IF;
    IF o_outcome IS NULL AND (p_quantity IS NULL OR p_quantity < 1
                              OR p_quantity > d.max_per_buyer
                              OR d.price_minor * p_quantity > 100000000000) THEN
        o_outcome := 'bad_quantity';
    END IF;
    IF o_outcome IS NULL AND NOT d.waitlist THEN
        o_outcome := 'waitlist_closed';
    END IF;
    IF o_outcome IS NULL THEN
        o_outcome := CASE
            WHEN d.starts_at IS NOT NULL AND v_now < d.starts_at THEN 'not_started'
            WHEN d.ends_at IS NOT NULL AND v_now >= d.ends_at THEN 'ended'
            WHEN d.paused THEN 'paused' END;
    END IF;
    IF o_outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO w FROM dropkit_waitlist x WHERE x.drop_id = p_drop AND x.buyer_id = p_buyer;
    IF FOUND THEN
        o_outcome := CASE WHEN w.variant_id = v.id AND w.quantity = p_quantity
                          THEN 'in_line' ELSE 'already_in_line' END;
        SELECT * INTO o_ticket, o_variant, o_display_name, o_quantity, o_joined_at, o_position,
                      o_set_aside
          FROM dropkit_waitlist_place(p_drop, p_buyer);
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO h FROM dropkit_reservations r
     WHERE r.buyer_id = p_buyer AND r.drop_id = p_drop AND r.status = 'active'
       AND r.expires_at > v_now
     LIMIT 1;
    IF FOUND THEN
        o_outcome := 'hold_exists';
        o_hold_id := h.id;
        o_hold_variant := h.variant_id;
        o_hold_quantity := h.quantity;
        o_hold_name := h.display_name;
        o_hold_created := h.created_at;
        o_hold_expires := h.expires_at;
        o_hold_offered := h.offered;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT coalesce(sum(p.quantity), 0)::integer INTO o_taken
      FROM dropkit_purchases p
     WHERE p.buyer_id = p_buyer AND p.drop_id = p_drop AND p.status = 'completed';
    IF o_taken + p_quantity > d.max_per_buyer THEN
        o_outcome := 'buyer_limit';
        RETURN NEXT;
        RETURN;
    END IF;
    o_taken := NULL;
    IF v.waitlist_length = 0 THEN
        -- A reserve would reclaim the variant's overdue holds: they count
        -- as free (no more of them read than the request needs).
        SELECT coalesce(sum(o.quantity), 0)::integer INTO v_units
          FROM (SELECT r.quantity FROM dropkit_reservations r
                 WHERE r.drop_id = p_drop AND r.status = 'active'
                   AND r.created_at < r.expires_at AND r.expires_at <= v_now
                   AND r.variant_id = v.id
                 ORDER BY r.expires_at
                 LIMIT p_quantity) o;
        IF v.total_stock - v.reserved - v.sold + v_units >= p_quantity THEN
            o_outcome := 'waitlist_not_needed';
            o_variant := v.id;
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    INSERT INTO dropkit_waitlist (drop_id, variant_id, buyer_id, display_name, quantity, joined_at)
    VALUES (p_drop, v.id, p_buyer, p_name, p_quantity, v_now);
    UPDATE dropkit_variants SET waitlist_length = waitlist_length + 1 WHERE id = v.id;
    UPDATE dropkit_drops SET version = version + 1 WHERE id = p_drop;
    -- A line that was empty: the units free now (fewer than asked) are
    -- set aside for its new head. Behind others nothing is free (the
    -- units are theirs already) and nothing is owed to the new place.
    IF v.waitlist_length = 0 THEN
        o_steps := dropkit_serve_line(p_drop, v_now);
    END IF;
    -- The new place is the line's last (tickets grow, and the drop's lock
    -- orders the joins): its position is the line's length, with no count
    -- of the places ahead, which a long line would make a long read.
    SELECT x.ticket, x.variant_id, x.display_name, x.quantity, x.joined_at
      INTO o_ticket, o_variant, o_display_name, o_quantity, o_joined_at
      FROM dropkit_waitlist x WHERE x.drop_id = p_drop AND x.buyer_id = p_buyer;
    SELECT x.waitlist_length, CASE WHEN x.waitlist_length = 1
                                   THEN least(x.set_aside, p_quantity) ELSE 0 END
      INTO o_position, o_set_aside
      FROM dropkit_variants x WHERE x.id = v.id;
    SELECT x.total_stock, x.reserved, x.sold, x.version INTO o_total, o_reserved, o_sold, o_version
      FROM dropkit_drops x WHERE x.id = p_drop;
    o_variants := dropkit_variants_of(p_drop);
    o_outcome := 'joined';
    IF p_log THEN
        PERFORM dropkit_log_append(
                    ARRAY[p_drop], ARRAY['waitlistJoined'],
                    ARRAY[dropkit_log_place('waitlistJoined', p_buyer, p_name, v.id, p_quantity,
                                            o_ticket, NULL)]);
        PERFORM dropkit_log_steps(array_fill(p_drop, ARRAY[cardinality(o_steps)]), o_steps);
    END IF;
    RETURN NEXT;
END;
$$;

-- Takes p_buyer out of p_drop's line: answers drop_not_found, none (they
-- stood in none) or left with the place they had (its position and the
-- units set aside for it before they left), the steps (their leaving,
-- then what serving the line did with the units set aside for them) and
-- the counters. With p_log, the steps are logged as the call's last
-- statement.
CREATE FUNCTION dropkit_waitlist_leave(p_drop uuid, p_buyer text, p_log boolean)
RETURNS TABLE (
    o_outcome      text,
    o_ticket       bigint,
    o_variant      uuid,
    o_display_name text,
    o_quantity     integer,
    o_joined_at    timestamptz,
    o_position     integer,
    o_set_aside    integer,
    o_steps        dropkit_line_step[],
    o_total        integer,
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_variants     dropkit_variant_stock[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM dropkit_drops WHERE id = p_drop FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO o_ticket, o_variant, o_display_name, o_quantity, o_joined_at, o_position,
                  o_set_aside
      FROM dropkit_waitlist_place(p_drop, p_buyer);
    IF NOT FOUND THEN
        o_outcome := 'none';
        RETURN NEXT;
        RETURN;
    END IF;
    DELETE FROM dropkit_waitlist WHERE variant_id = o_variant AND ticket = o_ticket;
    UPDATE dropkit_variants SET waitlist_length = waitlist_length - 1 WHERE id = o_variant;
    UPDATE dropkit_drops SET version = version + 1 WHERE id = p_drop;
    o_steps := ARRAY[ROW('left', NULL, o_variant, p_buyer, o_display_name, o_quantity, NULL,
                         NULL, o_ticket)::dropkit_line_step]
               || dropkit_serve_line(p_drop, clock_timestamp());
    SELECT x.total_stock, x.reserved, x.sold, x.version INTO o_total, o_reserved, o_sold, o_version
      FROM dropkit_drops x WHERE x.id = p_drop;
    o_variants := dropkit_variants_of(p_drop);
    o_outcome := 'left';
    IF p_log THEN
        PERFORM dropkit_log_steps(array_fill(p_drop, ARRAY[cardinality(o_steps)]), o_steps);
    END IF;
    RETURN NEXT;
END;
$$;

-- The purchases, restated to answer each variant's `waitlist_length`
-- (purchases free no units: nothing to serve).
CREATE OR REPLACE FUNCTION dropkit_purchase_units(
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
    vwait    integer[];
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
           array_agg(v.sold ORDER BY v.position), array_agg(v.waitlist_length ORDER BY v.position)
      INTO vid, vname, vtotal, vres, vsold, vwait
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
    SELECT array_agg(ROW(t.id, t.name, t.total, t.reserved, t.sold, t.wait)::dropkit_variant_stock
                     ORDER BY t.j)
      INTO o_variants
      FROM unnest(vid, vname, vtotal, vres, vsold, vwait) WITH ORDINALITY
           AS t(id, name, total, reserved, sold, wait, j);
    o_total := d.total_stock;
    o_outcome := 'ok';
    RETURN NEXT;
END;
$$;

DROP FUNCTION dropkit_reserve_logged(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[]);
DROP FUNCTION dropkit_reserve_units(uuid, text[], text[], uuid[], integer[], uuid[], text[], text[], bytea[]);
DROP FUNCTION dropkit_release_logged(uuid, text);
DROP FUNCTION dropkit_release(uuid, text);
DROP FUNCTION dropkit_expire_due_logged(integer);
DROP FUNCTION dropkit_expire_due(integer);

-- The reserves, as in the event log's migration, with the line: a caller
-- asking for a variant people wait for is out of stock (its units,
-- overdue holds included, are the line's), and units this call frees where
-- people wait (a caller's own overdue hold) are served to the line at the
-- end (`o_steps`).
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
    o_expired  uuid[],                  -- holds this call ended (overdue ones)
    o_steps    dropkit_line_step[]      -- what serving the lines did afterwards
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
    vwait      integer[];          -- each variant's line length
    v_serve    boolean := false;   -- units freed where people wait
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
    v_simple   boolean;            -- the common batch (below)
    v_sum_var  integer[];          -- its variants' indexes and the
    v_sum_qty  integer[];          -- units asked of each
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
    o_steps := '{}';

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
           array_agg(v.sold ORDER BY v.position), array_agg(v.waitlist_length ORDER BY v.position)
      INTO vid, vname, vtotal, vres, vsold, vwait
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

    -- The common batch, decided in two statements rather than a loop step
    -- per caller: the sale is open, and every caller names a variant of
    -- this drop (or it has one), asks a quantity within the limit, holds
    -- nothing, is alone in the batch, has a fresh key or none, and stays
    -- within the limit with what they bought; and each variant has the
    -- units all its callers ask. Then every caller gets a hold, exactly as
    -- the loop below would decide one by one. Anything else takes the loop.
    IF v_window IS NULL THEN
        SELECT bool_and(c.j IS NOT NULL AND c.q BETWEEN 1 AND d.max_per_buyer
                        AND d.price_minor * c.q <= 100000000000
                        AND c.h IS NULL AND NOT c.rec AND c.bo + c.q <= d.max_per_buyer)
               AND count(DISTINCT c.b) = n,
               array_agg(c.j ORDER BY c.i)
          INTO v_simple, a_var
          FROM (SELECT u.i, u.q, u.b, u.h, u.rec, u.bo,
                       CASE WHEN u.v IS NULL
                            THEN CASE WHEN cardinality(vid) = 1 THEN 1 END
                            ELSE array_position(vid, u.v) END AS j
                  FROM unnest(p_variants, p_quantities, p_buyers, h_id, recorded, bought)
                       WITH ORDINALITY AS u(v, q, b, h, rec, bo, i)) c;
        IF v_simple THEN
            SELECT bool_and(s.need <= vtotal[s.j] - vres[s.j] - vsold[s.j] AND vwait[s.j] = 0),
                   array_agg(s.j), array_agg(s.need)
              INTO v_simple, v_sum_var, v_sum_qty
              FROM (SELECT t.j, sum(t.q)::integer AS need
                      FROM unnest(a_var, p_quantities) AS t(j, q) GROUP BY t.j) s;
        END IF;
        IF v_simple THEN
            FOR x IN 1 .. cardinality(v_sum_var) LOOP
                vres[v_sum_var[x]] := vres[v_sum_var[x]] + v_sum_qty[x];
            END LOOP;
            a_out := array_fill('created'::dropkit_outcome, ARRAY[n]);
            h_id := p_ids;
            SELECT array_agg(vid[t.j] ORDER BY t.i) INTO h_var
              FROM unnest(a_var) WITH ORDINALITY AS t(j, i);
            h_qty := p_quantities;
            h_made := array_fill(v_now, ARRAY[n]);
            h_until := array_fill(v_expires, ARRAY[n]);
            h_name := p_names;
        ELSE
            a_var := array_fill(NULL::integer, ARRAY[n]);
        END IF;
    END IF;

    FOR i IN 1 .. CASE WHEN v_simple THEN 0 ELSE n END LOOP
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
                -- Where people wait, the units are theirs (served below).
                v_serve := v_serve OR vwait[k] > 0;
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
        IF vwait[j] > 0 THEN
            -- People wait for this variant: no unit of it is on open
            -- sale. Its overdue holds are reclaimed for the line's head
            -- (below), not for this caller.
            a_out[i] := 'out_of_stock';
            v_serve := true;
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

    IF v_serve THEN
        -- The lines' turn, after this call's own changes are written; then
        -- the counters as serving left them.
        o_steps := dropkit_serve_line(p_drop, v_now);
        SELECT x.reserved, x.version INTO o_reserved, o_version
          FROM dropkit_drops x WHERE x.id = p_drop;
        o_variants := dropkit_variants_of(p_drop);
    ELSE
        SELECT array_agg(ROW(t.id, t.name, t.total, t.reserved, t.sold, t.wait)::dropkit_variant_stock
                         ORDER BY t.j)
          INTO o_variants
          FROM unnest(vid, vname, vtotal, vres, vsold, vwait) WITH ORDINALITY
               AS t(id, name, total, reserved, sold, wait, j);
    END IF;
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

CREATE FUNCTION dropkit_reserve_logged(
    p_drop uuid, p_buyers text[], p_names text[], p_variants uuid[], p_quantities integer[],
    p_ids uuid[], p_callers text[], p_keys text[], p_prints bytea[])
RETURNS TABLE (
    o_outcome  dropkit_outcome,
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_max_per_buyer integer,
    o_answers  dropkit_unit_answer[],
    o_expired  uuid[],
    o_steps    dropkit_line_step[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT u.* INTO o_outcome, o_total, o_reserved, o_sold, o_version, o_variants,
                    o_max_per_buyer, o_answers, o_expired, o_steps
      FROM dropkit_reserve_units(p_drop, p_buyers, p_names, p_variants, p_quantities,
                                 p_ids, p_callers, p_keys, p_prints) u;
    IF o_outcome = 'ok' THEN
        IF cardinality(o_expired) > 0 THEN
            PERFORM dropkit_log_expired(o_expired);
        END IF;
        PERFORM dropkit_log_holds(p_drop, p_buyers, o_answers);
        PERFORM dropkit_log_steps(array_fill(p_drop, ARRAY[cardinality(o_steps)]), o_steps);
    END IF;
    RETURN NEXT;
END;
$$;

-- A release, as before, then the line of the variant it gave units back
-- to, if people wait for it.
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
    o_variants     dropkit_variant_stock[],
    o_steps        dropkit_line_step[]  -- what serving the line did with the units
)
LANGUAGE plpgsql
AS $$
DECLARE
    r      dropkit_reservations%ROWTYPE;
    v_now  timestamptz;
    v_wait integer;
BEGIN
    o_steps := '{}';
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
            UPDATE dropkit_variants SET reserved = reserved - r.quantity WHERE id = r.variant_id
            RETURNING waitlist_length INTO v_wait;
            UPDATE dropkit_drops SET reserved = reserved - r.quantity, version = version + 1
             WHERE id = r.drop_id
            RETURNING total_stock, reserved, sold, version INTO o_total, o_reserved, o_sold, o_version;
            IF v_wait > 0 THEN
                -- People wait for the variant: the units are theirs.
                o_steps := dropkit_serve_line(r.drop_id, v_now);
                SELECT x.reserved, x.version INTO o_reserved, o_version
                  FROM dropkit_drops x WHERE x.id = r.drop_id;
            END IF;
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

CREATE FUNCTION dropkit_release_logged(p_res uuid, p_buyer text)
RETURNS TABLE (
    o_outcome      dropkit_outcome,
    o_drop         uuid,
    o_display_name text,
    o_created_at   timestamptz,
    o_expires_at   timestamptz,
    o_variant      uuid,
    o_quantity     integer,
    o_total        integer,
    o_reserved     integer,
    o_sold         integer,
    o_version      bigint,
    o_variants     dropkit_variant_stock[],
    o_steps        dropkit_line_step[]
)
LANGUAGE plpgsql
AS $$
BEGIN
    SELECT u.* INTO o_outcome, o_drop, o_display_name, o_created_at, o_expires_at, o_variant,
                    o_quantity, o_total, o_reserved, o_sold, o_version, o_variants, o_steps
      FROM dropkit_release(p_res, p_buyer) u;
    IF o_outcome = 'released' THEN
        PERFORM dropkit_log_append_typed(
            ARRAY[o_drop], ARRAY['holdReleased'], ARRAY[p_res], ARRAY[NULL::uuid], ARRAY[p_buyer],
            ARRAY[NULL::text], ARRAY[o_variant], ARRAY[o_quantity], ARRAY[NULL::bigint],
            ARRAY[NULL::timestamptz]);
        PERFORM dropkit_log_steps(array_fill(o_drop, ARRAY[cardinality(o_steps)]), o_steps);
    END IF;
    RETURN NEXT;
END;
$$;

-- The sweep, as before (its SET clause restated), then the lines of each
-- drop swept where people wait for a variant that got units back.
CREATE FUNCTION dropkit_expire_due(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_steps    dropkit_line_step[]     -- what serving the drop's lines did
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
    v_line  boolean;
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
            RETURNING v.id, v.waitlist_length)
        SELECT coalesce((SELECT array_agg(x.id) FROM x), '{}'),
               coalesce((SELECT sum(x.quantity) FROM x), 0)::integer,
               coalesce((SELECT bool_or(per.waitlist_length > 0) FROM per), false)
          INTO v_ids, v_units, v_line;
        CONTINUE WHEN cardinality(v_ids) = 0;
        UPDATE dropkit_drops
           SET reserved = reserved - v_units, version = version + 1
         WHERE id = v_drop
        RETURNING id, total_stock, reserved, sold, version
             INTO o_drop, o_total, o_reserved, o_sold, o_version;
        o_steps := '{}';
        IF v_line THEN
            -- People wait for a variant that got units back: theirs.
            o_steps := dropkit_serve_line(v_drop, v_now);
            SELECT x.reserved, x.version INTO o_reserved, o_version
              FROM dropkit_drops x WHERE x.id = v_drop;
        END IF;
        o_variants := dropkit_variants_of(v_drop);
        o_expired := v_ids;
        RETURN NEXT;
    END LOOP;
END;
$$;

-- dropkit_expire_due, logged: per drop in its answer's order, a
-- holdExpired per hold it expired, then the steps serving its lines took.
-- The entries are appended after the whole sweep (the append is the last
-- thing a transaction does: see the event log's migration).
CREATE FUNCTION dropkit_expire_due_logged(p_limit integer)
RETURNS TABLE (
    o_drop     uuid,
    o_expired  uuid[],
    o_total    integer,
    o_reserved integer,
    o_sold     integer,
    o_version  bigint,
    o_variants dropkit_variant_stock[],
    o_steps    dropkit_line_step[]
)
LANGUAGE plpgsql
AS $$
DECLARE
    v_drops uuid[] := '{}';
    v_all   dropkit_line_step[] := '{}';
    v_some  dropkit_line_step[];
BEGIN
    FOR o_drop, o_expired, o_total, o_reserved, o_sold, o_version, o_variants, o_steps IN
        SELECT * FROM dropkit_expire_due(p_limit)
    LOOP
        SELECT coalesce(array_agg(ROW('expired', r.id, r.variant_id, r.buyer_id, NULL, r.quantity,
                                      NULL, NULL, NULL)::dropkit_line_step ORDER BY e.i), '{}')
          INTO v_some
          FROM unnest(o_expired) WITH ORDINALITY AS e(id, i)
          JOIN dropkit_reservations r ON r.id = e.id;
        v_some := v_some || o_steps;
        v_all := v_all || v_some;
        v_drops := v_drops || array_fill(o_drop, ARRAY[cardinality(v_some)]);
        RETURN NEXT;
    END LOOP;
    PERFORM dropkit_log_steps(v_drops, v_all);
END;
$$;
