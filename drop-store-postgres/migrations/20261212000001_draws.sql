-- Draw drops (drop_core::entry): entries until `draw_at`, then one
-- verifiable draw that gives the winners offered holds and puts the others
-- in their variant's line.
--
-- Schema:
--
-- - `dropkit_drops` gains the draw's columns: `mode` ('firstCome', the
--   default, so every drop made before this migration sells first come, or
--   'draw'), `draw_at`, `beacon_name`, the `seed` (32 bytes, drawn when the
--   drop is made; only its hash is shown until the draw), and what the
--   draw fixed: `drawn_at`, the `beacon` value mixed in, the
--   `entry_list_hash`. The published draw is not stored as a document: it
--   is read back from these, the variants' `draw_stock` and the entries'
--   outcomes (the entry list is frozen once drawn).
-- - `dropkit_variants.draw_stock`: the units the draw gave away per
--   variant (its free units at the draw); NULL before.
-- - `dropkit_entries`: one per (drop, buyer), with a receipt unique per
--   drop, the outcome (`won`, `waiting`, `lost`), the place in the
--   variant's draw order and the hold won. Unlike holds, entries have a
--   foreign key to their drop: the key-share lock its check takes is the
--   point. Entering never takes the drop's row lock (reserves take it FOR
--   NO KEY UPDATE, which a key-share lock does not conflict with), but the
--   draw takes the row FOR UPDATE, which waits for every entry in flight
--   and makes every later one see `drawn_at`: that freezes the list.
-- - `dropkit_drops_undrawn`: a partial index of the draw drops not drawn
--   yet by `draw_at`, for due_draws and next_draw_at.
--
-- No landed function is replaced: a reserve or a join of a draw drop not
-- drawn yet is refused (DRAW_ONLY) by the store before it is sent. The new
-- function has no SET clause (tests/cold_start.rs holds it to generic
-- plans made on empty tables, and measures the store's entry statement).

ALTER TABLE dropkit_drops
    ADD COLUMN mode text NOT NULL DEFAULT 'firstCome',
    ADD COLUMN draw_at timestamptz,
    ADD COLUMN beacon_name text,
    ADD COLUMN seed bytea,
    ADD COLUMN drawn_at timestamptz,
    ADD COLUMN beacon bytea,
    ADD COLUMN entry_list_hash bytea,
    ADD CONSTRAINT dropkit_drops_mode CHECK (mode IN ('firstCome', 'draw')),
    ADD CONSTRAINT dropkit_drops_draw CHECK (
        CASE WHEN mode = 'draw'
             THEN draw_at IS NOT NULL AND octet_length(seed) = 32
             ELSE draw_at IS NULL AND seed IS NULL AND beacon_name IS NULL
                  AND drawn_at IS NULL END),
    ADD CONSTRAINT dropkit_drops_drawn CHECK (
        drawn_at IS NULL OR octet_length(entry_list_hash) = 32);

ALTER TABLE dropkit_variants
    ADD COLUMN draw_stock integer,
    ADD CONSTRAINT dropkit_variants_draw_stock CHECK (draw_stock >= 0);

CREATE TABLE dropkit_entries (
    drop_id        uuid        NOT NULL REFERENCES dropkit_drops (id),
    buyer_id       text        NOT NULL,
    display_name   text        NOT NULL,
    variant_id     uuid        NOT NULL,
    receipt        bytea       NOT NULL,
    entered_at     timestamptz NOT NULL,
    outcome        text,
    draw_position  integer,
    reservation_id uuid,
    CONSTRAINT dropkit_entries_pkey PRIMARY KEY (drop_id, buyer_id),
    CONSTRAINT dropkit_entries_receipt UNIQUE (drop_id, receipt),
    CONSTRAINT dropkit_entries_receipt_length CHECK (octet_length(receipt) = 16),
    CONSTRAINT dropkit_entries_outcome CHECK (
        CASE outcome
            WHEN 'won' THEN draw_position >= 1 AND reservation_id IS NOT NULL
            WHEN 'waiting' THEN draw_position >= 1 AND reservation_id IS NULL
            WHEN 'lost' THEN draw_position >= 1 AND reservation_id IS NULL
            ELSE outcome IS NULL AND draw_position IS NULL AND reservation_id IS NULL END)
);

CREATE INDEX dropkit_drops_undrawn ON dropkit_drops (draw_at)
    WHERE mode = 'draw' AND drawn_at IS NULL;

-- Withdraws p_buyer's entry to p_drop's draw before draw_at: `withdrawn`
-- with the entry, `none`, or `drop_not_found`, `not_a_draw`,
-- `entries_closed`. Under the key-share lock, as entering (which the
-- store does in one statement per batch, src/draws.rs).
CREATE FUNCTION dropkit_withdraw_entry(p_drop uuid, p_buyer text)
RETURNS TABLE (
    o_outcome      text,
    o_variant      uuid,
    o_display_name text,
    o_receipt      bytea,
    o_entered_at   timestamptz
)
LANGUAGE plpgsql
AS $$
DECLARE
    d     dropkit_drops%ROWTYPE;
    v_now timestamptz;
BEGIN
    SELECT * INTO d FROM dropkit_drops WHERE id = p_drop FOR KEY SHARE;
    IF NOT FOUND THEN
        o_outcome := 'drop_not_found';
        RETURN NEXT;
        RETURN;
    END IF;
    v_now := clock_timestamp();
    o_outcome := CASE
        WHEN d.mode <> 'draw' THEN 'not_a_draw'
        WHEN d.drawn_at IS NOT NULL OR v_now >= d.draw_at THEN 'entries_closed' END;
    IF o_outcome IS NOT NULL THEN
        RETURN NEXT;
        RETURN;
    END IF;
    DELETE FROM dropkit_entries e WHERE e.drop_id = p_drop AND e.buyer_id = p_buyer
    RETURNING e.variant_id, e.display_name, e.receipt, e.entered_at
         INTO o_variant, o_display_name, o_receipt, o_entered_at;
    o_outcome := CASE WHEN FOUND THEN 'withdrawn' ELSE 'none' END;
    RETURN NEXT;
END;
$$;
